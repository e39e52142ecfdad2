//! Plain types shared by every layer: the aligned market, the PnL components and ledger rows,
//! trades and settlements, maintenance brackets. Nothing here imports another module of the
//! crate except `time` and `error`; everything else may import it.

pub mod bracket;
pub mod costs;
pub mod dated;
pub mod funding;
pub mod market;
pub mod pnl;
pub mod trade;

pub use bracket::Bracket;
pub use costs::{CostModel, CostSchedule, Costs, Depth, DepthSeries, FirstLeg, MarketCosts, OrderType, SpreadEstimator, DEPTH_LEVELS};
pub use dated::DatedContracts;
pub use funding::{FundingSeries, Settlement};
pub use market::{Coverage, DerivativePath, Instrument, LegSwitch, MarketTimeline, PremiumSeries, StaleSpan, SwitchReason, WarmUp};
pub use pnl::{events, state, NoLedger, Pnl, Recorder, StepRow};
pub use trade::{FundingPayment, Trade, TradeReason};
