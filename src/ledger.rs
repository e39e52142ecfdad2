//! The ledger: one row per step with equity, positions and every PnL component, plus the trade
//! and funding-settlement records. The engine writes rows through [`Recorder`], so a sweep can
//! skip per-step storage while a single run keeps every row.

use anyhow::Result;
use polars::prelude::*;

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
}

/// Position state on a ledger row.
pub mod state {
    pub const FLAT: i8 = 0;
    /// Long spot, short perp.
    pub const LONG_CARRY: i8 = 1;
    /// Short spot, long perp.
    pub const REVERSE_CARRY: i8 = -1;
    /// Spot left unhedged after the perp was liquidated.
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

/// Keeps every row, column by column (so writing the frame moves vectors instead of copying).
pub struct FullLedger {
    ts_ms: Vec<i64>,
    state: Vec<i32>,
    events: Vec<i32>,
    /// One vector per float field, in [`FullLedger::FLOAT_COLUMNS`] order.
    floats: Vec<Vec<f64>>,
}

impl Default for FullLedger {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl FullLedger {
    /// Names of the float columns, in storage order.
    pub const FLOAT_COLUMNS: [&'static str; 20] = [
        "spot_price", "perp_price", "mark_price", "spot_qty", "perp_qty", "cash", "perp_margin", "equity",
        "pnl_spot", "pnl_perp", "pnl_funding", "pnl_fees", "pnl_slippage", "pnl_staking", "pnl_borrow", "pnl_liquidation",
        "pnl_total", "liquidation_price", "liquidation_distance", "funding_signal_apr",
    ];

    /// A ledger with room for `steps` rows.
    pub fn with_capacity(steps: usize) -> Self {
        Self {
            ts_ms: Vec::with_capacity(steps),
            state: Vec::with_capacity(steps),
            events: Vec::with_capacity(steps),
            floats: (0..Self::FLOAT_COLUMNS.len()).map(|_| Vec::with_capacity(steps)).collect(),
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ts_ms.len()
    }

    /// Whether the ledger is empty.
    pub fn is_empty(&self) -> bool {
        self.ts_ms.is_empty()
    }

    /// Row `i` as a [`StepRow`].
    pub fn row(&self, i: usize) -> StepRow {
        let f = |k: usize| self.floats[k][i];
        StepRow {
            ts_ms: self.ts_ms[i],
            spot_price: f(0),
            perp_price: f(1),
            mark_price: f(2),
            state: self.state[i] as i8,
            events: self.events[i] as u8,
            spot_qty: f(3),
            perp_qty: f(4),
            cash: f(5),
            perp_margin: f(6),
            equity: f(7),
            pnl: Pnl { spot: f(8), perp: f(9), funding: f(10), fees: f(11), slippage: f(12), staking: f(13), borrow: f(14), liquidation: f(15) },
            liquidation_price: f(17),
            liquidation_distance: f(18),
            funding_signal_apr: f(19),
        }
    }

    /// Every row, in order.
    pub fn rows(&self) -> impl Iterator<Item = StepRow> + '_ {
        (0..self.len()).map(|i| self.row(i))
    }

    /// One float column by name (see [`FullLedger::FLOAT_COLUMNS`]).
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        Self::FLOAT_COLUMNS.iter().position(|c| *c == name).map(|k| self.floats[k].as_slice())
    }

    /// The ledger as a frame: `ts` (UTC), `state`, `events`, then the float columns.
    pub fn to_frame(&self) -> Result<DataFrame> {
        let mut columns = vec![
            Column::new("ts".into(), &self.ts_ms).cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC)))?,
            Column::new("state".into(), &self.state),
            Column::new("events".into(), &self.events),
        ];
        for (name, values) in Self::FLOAT_COLUMNS.iter().zip(&self.floats) {
            columns.push(Column::new((*name).into(), values));
        }
        Ok(DataFrame::new(self.len(), columns)?)
    }
}

impl Recorder for FullLedger {
    #[inline]
    fn record(&mut self, row: &StepRow) {
        self.ts_ms.push(row.ts_ms);
        self.state.push(i32::from(row.state));
        self.events.push(i32::from(row.events));
        let p = &row.pnl;
        let values = [
            row.spot_price, row.perp_price, row.mark_price, row.spot_qty, row.perp_qty, row.cash, row.perp_margin, row.equity,
            p.spot, p.perp, p.funding, p.fees, p.slippage, p.staking, p.borrow, p.liquidation,
            p.total(), row.liquidation_price, row.liquidation_distance, row.funding_signal_apr,
        ];
        for (column, value) in self.floats.iter_mut().zip(values) {
            column.push(value);
        }
    }
}

/// Why a trade happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeReason {
    Entry,
    Exit,
    Rebalance,
    TopUp,
    Liquidation,
    Final,
}

impl TradeReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            TradeReason::Entry => "entry",
            TradeReason::Exit => "exit",
            TradeReason::Rebalance => "rebalance",
            TradeReason::TopUp => "top_up",
            TradeReason::Liquidation => "liquidation",
            TradeReason::Final => "final",
        }
    }
}

/// One fill.
#[derive(Debug, Clone, Copy)]
pub struct Trade {
    pub ts_ms: i64,
    pub step: usize,
    /// `spot` or `perp`.
    pub leg: &'static str,
    pub reason: TradeReason,
    /// Signed quantity (+ buy, − sell), in the base asset.
    pub qty: f64,
    /// Bar close the order was priced against.
    pub reference_price: f64,
    /// Price filled at, after slippage.
    pub fill_price: f64,
    /// Fee paid (quote, ≥ 0).
    pub fee: f64,
    /// Slippage cost (quote, ≥ 0).
    pub slippage: f64,
}

/// Trades as a frame.
pub fn trades_frame(trades: &[Trade]) -> Result<DataFrame> {
    let ts: Vec<i64> = trades.iter().map(|t| t.ts_ms).collect();
    let columns = vec![
        Column::new("ts".into(), ts).cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC)))?,
        Column::new("step".into(), trades.iter().map(|t| t.step as u64).collect::<Vec<u64>>()),
        Column::new("leg".into(), trades.iter().map(|t| t.leg).collect::<Vec<&str>>()),
        Column::new("reason".into(), trades.iter().map(|t| t.reason.as_str()).collect::<Vec<&str>>()),
        Column::new("qty".into(), trades.iter().map(|t| t.qty).collect::<Vec<f64>>()),
        Column::new("reference_price".into(), trades.iter().map(|t| t.reference_price).collect::<Vec<f64>>()),
        Column::new("fill_price".into(), trades.iter().map(|t| t.fill_price).collect::<Vec<f64>>()),
        Column::new("notional".into(), trades.iter().map(|t| (t.qty * t.fill_price).abs()).collect::<Vec<f64>>()),
        Column::new("fee".into(), trades.iter().map(|t| t.fee).collect::<Vec<f64>>()),
        Column::new("slippage".into(), trades.iter().map(|t| t.slippage).collect::<Vec<f64>>()),
    ];
    Ok(DataFrame::new(trades.len(), columns)?)
}

/// One funding settlement applied to a position.
#[derive(Debug, Clone, Copy)]
pub struct SettlementPaid {
    pub settle_ms: i64,
    pub rate: f64,
    pub interval_hours: f64,
    /// Price the notional was valued at.
    pub price: f64,
    /// Perp quantity held at the settlement (signed).
    pub perp_qty: f64,
    /// Funding received (+) or paid (−): −perp_qty × rate × price.
    pub amount: f64,
}
