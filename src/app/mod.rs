//! The commands, each a pipeline over the layers below: [`pipeline`] (load → align → simulate
//! → measure, shared by all), [`backtest`], [`caps`] (one carry under several funding rule
//! sets), [`venues`] (funding across venues), [`sweep`], [`stress`], and the data tools
//! [`inspect`] and [`convert`]; [`term`] (the dated basis per tenor).

pub mod backtest;
pub mod caps;
pub mod catalog;
pub mod convert;
pub mod inspect;
pub mod perp_perp;
pub mod pipeline;
pub mod portfolio;
pub mod stress;
pub mod sweep;
pub mod term;
pub mod venues;
