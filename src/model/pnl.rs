//! The PnL of a step split by cause, the ledger row the engine reports each step, its event
//! flags and position states, and the [`Recorder`] that receives rows (so a sweep can keep
//! nothing per step while a single run keeps every row).

/// PnL of one step (or a total), split by cause, in quote currency. The components sum to the
/// change in equity.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pnl {
    /// Spot quantity held × spot price change.
    pub spot: f64,
    /// Perp quantity × mark change, plus the mark-vs-last gap on perp fills.
    pub perp: f64,
    /// Funding received (+) or paid (−).
    pub funding: f64,
    /// Trading fees (≤ 0).
    pub fees: f64,
    /// Fill price versus bar close (≤ 0).
    pub slippage: f64,
    /// Staking yield on a long spot leg (≥ 0).
    pub staking: f64,
    /// Borrow cost of a short spot leg (≤ 0).
    pub borrow: f64,
    /// Liquidation fee (and any loss beyond margin covered by the insurance fund).
    pub liquidation: f64,
}

impl Pnl {
    /// Names of the components, in column order.
    pub const NAMES: [&'static str; 8] = ["spot", "perp", "funding", "fees", "slippage", "staking", "borrow", "liquidation"];

    /// The components as an array, in [`Pnl::NAMES`] order.
    pub fn values(&self) -> [f64; 8] {
        [self.spot, self.perp, self.funding, self.fees, self.slippage, self.staking, self.borrow, self.liquidation]
    }

    /// Sum of all components.
    #[inline]
    pub fn total(&self) -> f64 {
        self.spot + self.perp + self.funding + self.fees + self.slippage + self.staking + self.borrow + self.liquidation
    }

    /// Add another PnL into this one.
    #[inline]
    pub fn add(&mut self, other: &Pnl) {
        self.spot += other.spot;
        self.perp += other.perp;
        self.funding += other.funding;
        self.fees += other.fees;
        self.slippage += other.slippage;
        self.staking += other.staking;
        self.borrow += other.borrow;
        self.liquidation += other.liquidation;
    }
}

/// Event flags on a ledger row (bit set).
pub mod events {
    pub const ENTRY: u8 = 1;
    pub const EXIT: u8 = 2;
    pub const REBALANCE: u8 = 4;
    pub const TOP_UP: u8 = 8;
    pub const LIQUIDATION: u8 = 16;
    pub const FUNDING: u8 = 32;
    /// The spot close was stale: no decisions that need spot (liquidations are still checked).
    pub const MASKED: u8 = 64;
    /// The step lies outside some source's coverage (`allow_partial_coverage`).
    pub const UNCOVERED: u8 = 128;
}

/// Position state on a ledger row.
pub mod state {
    pub const FLAT: i8 = 0;
    /// Long spot, short perp.
    pub const LONG_CARRY: i8 = 1;
    /// Short spot, long perp.
    pub const REVERSE_CARRY: i8 = -1;
    /// One leg left unhedged after the other was liquidated (`after_liquidation = "hold"`, or
    /// until the surviving leg is closed or re-hedged at the next decision).
    pub const UNHEDGED_SPOT: i8 = 2;
}

/// One step, as the engine reports it.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepRow {
    pub ts_ms: i64,
    pub spot_price: f64,
    pub perp_price: f64,
    pub mark_price: f64,
    pub state: i8,
    pub events: u8,
    pub spot_qty: f64,
    pub perp_qty: f64,
    pub cash: f64,
    /// Perp margin balance: wallet plus unrealised PnL at the mark.
    pub perp_margin: f64,
    pub equity: f64,
    pub pnl: Pnl,
    pub liquidation_price: f64,
    pub liquidation_distance: f64,
    pub funding_signal_apr: f64,
}

/// Receives each step's row.
pub trait Recorder {
    fn record(&mut self, row: &StepRow);
}

/// Keeps nothing per step (sweeps): the engine's summary still has totals and daily equity.
pub struct NoLedger;

impl Recorder for NoLedger {
    #[inline]
    fn record(&mut self, _row: &StepRow) {}
}
