//! The PnL of a step split by cause, the ledger row the engine reports each step, its event
//! flags and position states, and the [`Recorder`] that receives rows (so a sweep can keep
//! nothing per step while a single run keeps every row).

/// Where the PnL chart draws a component: components of one group are summed into one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChartGroup {
    /// Funding received or paid.
    Funding,
    /// Staking yield on the spot leg.
    Staking,
    /// Borrow cost of a short spot leg (drawn only when there is any).
    Borrow,
    /// Spot and perp price PnL: near zero for a hedged carry.
    Basis,
    /// Fees and slippage.
    Costs,
    /// What liquidations took (or the insurance fund gave back).
    Liquidation,
    /// Interest idle cash earned at the cash rate (drawn only when there is any).
    Interest,
}

/// One PnL component: its field name, its `ledger.parquet` column, what it means, and the
/// line of the PnL chart it belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Component {
    /// Field of [`Pnl`] and key in `metrics.json`'s `pnl` object.
    pub name: &'static str,
    /// Column in `ledger.parquet`.
    pub column: &'static str,
    /// What the component holds.
    pub meaning: &'static str,
    /// The PnL chart's line that draws it.
    pub chart_group: ChartGroup,
}

/// The one definition of the PnL components: the [`Pnl`] struct, its names, columns, sums and
/// chart groups all come from this list, so adding a component is one line here.
macro_rules! pnl_components {
    ($( $(#[doc = $doc:literal])* $field:ident => $group:ident ),* $(,)?) => {
        /// PnL of one step (or a total), split by cause, in quote currency. The components sum
        /// to the change in equity.
        #[derive(Debug, Clone, Copy, Default, PartialEq)]
        pub struct Pnl {
            $( $(#[doc = $doc])* pub $field: f64, )*
        }

        impl Pnl {
            /// Number of components.
            pub const COUNT: usize = [$( stringify!($field) ),*].len();
            /// Names of the components, in column order.
            pub const NAMES: [&'static str; Self::COUNT] = [$( stringify!($field) ),*];
            /// Every component with its column, meaning and chart group, in column order.
            pub const COMPONENTS: [Component; Self::COUNT] = [$(
                Component { name: stringify!($field), column: concat!("pnl_", stringify!($field)), meaning: concat!($($doc),*), chart_group: ChartGroup::$group },
            )*];

            /// The components as an array, in [`Pnl::NAMES`] order.
            #[inline]
            pub fn values(&self) -> [f64; Self::COUNT] {
                [$( self.$field ),*]
            }

            /// Components from an array in [`Pnl::NAMES`] order.
            #[inline]
            pub fn from_values(values: [f64; Self::COUNT]) -> Pnl {
                let [$( $field ),*] = values;
                Pnl { $( $field ),* }
            }

            /// Sum of all components.
            #[inline]
            pub fn total(&self) -> f64 {
                0.0 $( + self.$field )*
            }

            /// Add another PnL into this one.
            #[inline]
            pub fn add(&mut self, other: &Pnl) {
                $( self.$field += other.$field; )*
            }
        }
    };
}

pnl_components! {
    /// Spot quantity held × spot price change.
    spot => Basis,
    /// Perp quantity × mark change, plus the mark-vs-last gap on perp fills.
    perp => Basis,
    /// Funding received (+) or paid (−).
    funding => Funding,
    /// Trading fees (≤ 0).
    fees => Costs,
    /// Fill price versus bar close (≤ 0).
    slippage => Costs,
    /// Staking yield on a long spot leg (≥ 0).
    staking => Staking,
    /// Borrow cost of a short spot leg (≤ 0).
    borrow => Borrow,
    /// Liquidation fee or forfeited margin (−), and any loss beyond margin covered by the
    /// insurance fund (+); venue-default write-offs (−) and recoveries (+).
    liquidation => Liquidation,
    /// A coin-margined (inverse) perp's margin, held in the coin, × the coin's price change
    /// (0 for linear perps).
    coin_margin => Basis,
    /// Interest idle cash earned at the cash rate (`portfolio.cash_earns`; ≥ 0).
    interest => Interest,
}

/// Event flags on a ledger row (bit set).
pub mod events {
    /// A carry was opened at the step (or a liquidated leg reopened, `after_liquidation = "rehedge"`).
    pub const ENTRY: u8 = 1;
    /// The position was closed at the step: by the entry rule, after a liquidation, or at the end.
    pub const EXIT: u8 = 2;
    /// The perp was resized back to the hedge ratio after delta drifted.
    pub const REBALANCE: u8 = 4;
    /// Margin was topped up (cash moved or both legs shrunk), for the perp or a spot-margin call.
    pub const TOP_UP: u8 = 8;
    /// A leg (perp, borrowed spot or both) was liquidated during the bar.
    pub const LIQUIDATION: u8 = 16;
    /// A funding settlement was paid or received on the perp held at the step.
    pub const FUNDING: u8 = 32;
    /// The spot close was stale: no decisions that need spot (liquidations are still checked).
    pub const MASKED: u8 = 64;
    /// The step lies outside some source's coverage (`allow_partial_coverage`).
    pub const UNCOVERED: u8 = 128;
}

/// Position state on a ledger row.
pub mod state {
    /// No position.
    pub const FLAT: i8 = 0;
    /// Long spot, short perp.
    pub const LONG_CARRY: i8 = 1;
    /// Short spot, long perp.
    pub const REVERSE_CARRY: i8 = -1;
    /// One leg left unhedged after the other was liquidated (`after_liquidation = "hold"`, or
    /// until the surviving leg is closed or re-hedged at the next decision).
    pub const UNHEDGED_SPOT: i8 = 2;
    /// An order is being worked (`max_participation`, `leg_delay_ms`) and the legs stand apart:
    /// one leg's fills are ahead of the other's.
    pub const LEGGING: i8 = 3;
}

/// One step, as the engine reports it.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepRow {
    /// Step time (perp bar close), epoch ms UTC.
    pub ts_ms: i64,
    /// Spot close at the step, quote currency.
    pub spot_price: f64,
    /// Perp last (close) at the step, quote currency.
    pub perp_price: f64,
    /// Mark price at the step, quote currency.
    pub mark_price: f64,
    /// Position state after the step's decisions: one of the [`state`] codes.
    pub state: i8,
    /// What happened at the step: a bit set of [`events`] flags.
    pub events: u8,
    /// Spot quantity held after the step, base asset (negative: borrowed, the reverse carry).
    pub spot_qty: f64,
    /// Perp quantity held after the step, base asset (negative: short).
    pub perp_qty: f64,
    /// Cash outside the perp account (reserve, short-sale proceeds), quote currency.
    pub cash: f64,
    /// Perp margin balance: wallet plus unrealised PnL at the mark.
    pub perp_margin: f64,
    /// Equity after the step: cash + spot quantity × spot close + perp margin, quote currency.
    pub equity: f64,
    /// The step's PnL by component, quote currency; sums to the change in equity.
    pub pnl: Pnl,
    /// Mark price at which the perp would be liquidated, checked against the next bar; NaN
    /// without a perp position.
    pub liquidation_price: f64,
    /// Distance from the mark to the perp's liquidation price, decimal of the mark (0.1 = a
    /// 10 % adverse move); NaN without a perp position.
    pub liquidation_distance: f64,
    /// Trailing funding signal, decimal APR; NaN in `always_on` mode and until the lookback
    /// is covered.
    pub funding_signal_apr: f64,
    /// The part of `pnl` booked in the spot leg's account (spot price, staking, borrow, and
    /// the fees, slippage and liquidation paid from cash); the perp leg's is the rest. Not a
    /// ledger column.
    pub spot_leg: Pnl,
    /// Quote moved out of the spot account towards the perp this step (negative: back in).
    /// Not a ledger column.
    pub moved_out_of_spot_account: f64,
    /// Quote that arrived in the perp account this step (negative: taken out). Not a ledger
    /// column.
    pub moved_into_perp_account: f64,
}

/// Receives each step's row.
pub trait Recorder {
    /// Receive one step's row; called once per step, in step order.
    fn record(&mut self, row: &StepRow);
}

/// Keeps nothing per step (sweeps): the engine's summary still has totals and daily equity.
pub struct NoLedger;

impl Recorder for NoLedger {
    #[inline]
    fn record(&mut self, _row: &StepRow) {}
}
