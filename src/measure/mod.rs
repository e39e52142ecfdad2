//! Measuring a run: the in-memory ledger and its Parquet frames ([`ledger`]), and the return,
//! risk and carry statistics of `metrics.json` ([`metrics`]).

pub mod book;
pub mod ledger;
pub mod metrics;
