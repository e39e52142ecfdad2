//! Plain types shared by every layer: the aligned market, the PnL components and ledger rows,
//! trades and settlements, maintenance brackets. Nothing here imports another module of the
//! crate except `time` and `error`; everything else may import it.

pub mod bracket;
pub mod costs;
pub mod market;
pub mod pnl;
pub mod trade;

pub use bracket::Bracket;
pub use costs::{CostSchedule, Costs, OrderType};
pub use market::{Coverage, FundingEvent, MarketTimeline, PremiumSeries, SettledRate, StaleSpan};
pub use pnl::{events, state, NoLedger, Pnl, Recorder, StepRow};
pub use trade::{Settlement, SettlementPaid, Trade, TradeReason};
