//! basis: a backtester for delta-neutral basis (carry) trades on crypto perpetual futures.
//!
//! Data flows one way: [`data`] loads and aligns spot, perp and funding history into a
//! [`data::align::MarketTimeline`]; [`engine`] simulates the carry over its slices and writes a
//! [`ledger`]; [`metrics`] measures the run; [`report`] draws its charts and HTML page;
//! [`backtest`] and [`output`] write it all to `reports/<run>/`. [`cli`] is the command line.

pub mod error;

pub mod backtest;
pub mod cli;
pub mod config;
pub mod data;
pub mod engine;
pub mod ledger;
pub mod margin;
pub mod metrics;
pub mod output;
pub mod report;
pub mod rng;
pub mod strategy;
pub mod stress;
pub mod sweep;
pub mod time;
pub mod venue;
