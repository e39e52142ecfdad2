//! basis: a backtester for delta-neutral basis (carry) trades on crypto perpetual futures.
//!
//! Data flows one way, and so do the module dependencies (a test checks them):
//!
//! - [`model`] (with [`time`], [`rng`], [`error`]): plain types every layer shares.
//! - [`data`] loads and aligns spot, perp, mark and funding into a [`model::MarketTimeline`];
//!   [`venue`] holds each venue's rules as data; [`sim`] runs the carry over the timeline;
//!   [`measure`] keeps the ledger and computes metrics. These import `model` and each other
//!   without cycles (`measure` and `venue` read `sim` and `data` types, never the reverse).
//! - [`config`] reads the TOML and builds the inputs of the layer below; [`render`] draws charts
//!   and HTML; [`output`] writes run folders atomically; [`signal`] computes named signals on
//!   the step clock and turns a `rules` or `target` strategy into the engine's decisions.
//! - [`app`] composes them into commands; [`cli`] parses arguments and dispatches.

#![warn(missing_docs)]

pub mod error;
pub mod model;
pub mod parquet;
pub mod rng;
pub mod time;

pub mod data;
pub mod measure;
pub mod sim;
pub mod venue;

pub mod config;
pub mod output;
pub mod render;
pub mod signal;

pub mod app;
pub mod cli;

/// The polars this crate is built with, for the Python extension (the same build: no second
/// polars, no features that could drift).
pub use polars;
/// polars' Arrow layer (its C data interface moves tables to Python without copies).
pub use polars_arrow;
