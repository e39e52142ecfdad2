//! `basis sweep`: one carry config varied over thousands of configurations.
//!
//! The market is loaded once; each distinct window (start, end, staking APR, counterfactual
//! funding rules) is aligned once and shared read-only by every configuration that uses it.
//! Configurations run in parallel (rayon) in chunks; each finished chunk is written as its own
//! Parquet part, atomically, into a hidden `.<name>.partial/` folder, so a killed sweep resumes
//! where it stopped and loses nothing. When every chunk is done, the parts become
//! `results.parquet` and the report in `<name>/`. `--shard i/n` runs configurations with
//! `id % n == i` (see [`spec`] for how a configuration is rebuilt from its id).

pub mod report;
pub mod run;
pub mod spec;
pub mod walk_forward;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{anyhow, Result};

use crate::app::pipeline::align_for;
use crate::config::Config;
use crate::data::align::MarketTimeline;
use crate::data::MarketData;
use crate::measure::ledger::NoLedger;
use crate::measure::metrics::{self, Metrics};

/// Number of metrics a sweep records per configuration: the `swept` metrics of
/// [`metrics::TABLE`].
pub const METRIC_COUNT: usize = 32;

/// Result columns after the parameters, in order (all f64; counts as floats): the `swept`
/// metrics of [`metrics::TABLE`], in the report's order.
pub static METRIC_NAMES: std::sync::LazyLock<[&'static str; METRIC_COUNT]> = std::sync::LazyLock::new(|| {
    let names: Vec<&'static str> = swept().map(|spec| spec.name).collect();
    names.try_into().unwrap_or_else(|v: Vec<&str>| panic!("metrics::TABLE has {} swept metrics, METRIC_COUNT says {METRIC_COUNT}", v.len()))
});

fn swept() -> impl Iterator<Item = &'static metrics::MetricSpec> {
    metrics::report_rows().into_iter().filter(|spec| spec.swept)
}

/// The metric columns a sweep can rank on.
pub fn metric_names() -> &'static [&'static str] {
    METRIC_NAMES.as_slice()
}

/// A run's metrics in [`METRIC_NAMES`] order.
pub fn metric_values(m: &Metrics) -> [f64; METRIC_COUNT] {
    let mut values = [f64::NAN; METRIC_COUNT];
    for (slot, spec) in values.iter_mut().zip(swept()) {
        *slot = (spec.value)(m);
    }
    values
}

/// The fields of a config that change its aligned market: the window, the staking APR used
/// where there is no staking series, counterfactual funding rules, and the dated leg's schedule
/// (instrument, roll rules, and what `best` decides on: the funding lookback and the costs), and
/// whether a market cost model needs the bars' detail.
fn market_key(config: &Config) -> String {
    let v = &config.venue;
    let s = &config.strategy;
    let counterfactual = v.funding == crate::config::FundingRatesFrom::Counterfactual;
    let dated = (s.instrument != crate::config::InstrumentChoice::Perp).then(|| {
        format!("{:?}|{}|{}|{}|{}|{:?}|{:?}", s.instrument, s.min_days_to_expiry, s.roll_days_before, s.switch_horizon_days, s.lookback_settlements, s.lookback_hours, config.costs)
    });
    format!(
        "{:?}|{}|{:?}|{:?}|{}|{}|{:?}|{:?}|{:?}|{:?}",
        dated,
        // A market cost model needs the bars' ranges and volumes kept on the timeline.
        config.costs.needs_bar_detail(),
        config.strategy.start,
        config.strategy.end,
        config.portfolio.staking_apr.to_bits(),
        counterfactual,
        counterfactual.then_some(&v.preset),
        counterfactual.then_some(v.premium),
        counterfactual.then_some(v.funding_cap.map(f64::to_bits)),
        counterfactual.then_some(v.funding_floor.map(f64::to_bits)),
    )
}

type Slot = Arc<OnceLock<std::result::Result<Arc<MarketTimeline>, String>>>;

type PairSlot = Arc<OnceLock<std::result::Result<Arc<crate::app::portfolio::Prepared>, String>>>;

/// Loaded market data, and its aligned timelines by market key (each built once, on first use).
/// A book's sweep loads no data up front: each pair's market is prepared once, on first use.
pub struct Markets {
    /// The market data the sweep's base config names, loaded once (None for a book).
    pub data: Option<MarketData>,
    timelines: Mutex<HashMap<String, Slot>>,
    pairs: Mutex<HashMap<String, PairSlot>>,
    /// Market cost series, by timeline and cost model (built once, shared by the
    /// configurations that differ in other keys).
    costs: Mutex<HashMap<String, Arc<std::sync::OnceLock<Result<Option<Arc<crate::model::MarketCosts>>, String>>>>>,
}

impl Markets {
    /// Load the data a config names (its `[data]` section is the sweep's).
    pub fn load(config: &Config) -> Result<Markets> {
        Ok(Markets { data: Some(crate::data::load(&config.data)?), timelines: Mutex::new(HashMap::new()), pairs: Mutex::new(HashMap::new()), costs: Mutex::new(HashMap::new()) })
    }

    /// A book's markets: its pairs', prepared as they are asked for.
    pub fn for_book() -> Markets {
        Markets { data: None, timelines: Mutex::new(HashMap::new()), pairs: Mutex::new(HashMap::new()), costs: Mutex::new(HashMap::new()) }
    }

    /// A book pair's prepared market, shared: keyed by its data, window and funding settings.
    pub fn pair(&self, config: &Config) -> Result<crate::app::portfolio::Prepared> {
        let key = format!("{}|{}", serde_json::to_string(&config.data).map_err(|e| anyhow!("pair data: {e}"))?, market_key(config));
        let slot = {
            let mut map = self.pairs.lock().map_err(|_| anyhow!("pair cache poisoned"))?;
            map.entry(key).or_default().clone()
        };
        let prepared = slot
            .get_or_init(|| {
                std::thread::scope(|scope| {
                    scope
                        .spawn(|| crate::app::pipeline::prepare(config).map(Arc::new).map_err(|e| format!("{e:#}")))
                        .join()
                        .unwrap_or_else(|_| Err("preparing the pair panicked".to_string()))
                })
            })
            .clone()
            .map_err(|e| crate::input_error!("{e}"))?;
        Ok((*prepared).clone())
    }

    /// The aligned timeline for a config, shared.
    pub fn timeline(&self, config: &Config) -> Result<Arc<MarketTimeline>> {
        let Some(data) = &self.data else { return Err(anyhow!("a book's sweep has no single market")) };
        let slot = {
            let mut map = self.timelines.lock().map_err(|_| anyhow!("timeline cache poisoned"))?;
            map.entry(market_key(config)).or_default().clone()
        };
        // Aligned on a plain thread: a rayon worker waiting on polars would steal another
        // configuration's job and re-enter this same OnceLock (a deadlock).
        slot.get_or_init(|| {
            std::thread::scope(|scope| {
                scope
                    .spawn(|| align_for(data, config).map(|(t, _)| Arc::new(t)).map_err(|e| format!("{e:#}")))
                    .join()
                    .unwrap_or_else(|_| Err("aligning the market panicked".to_string()))
            })
        })
            .clone()
            .map_err(|e| crate::input_error!("{e}"))
    }

    /// The market cost series of `config` on `timeline` (its [`Markets::timeline`]), shared by
    /// every configuration with the same timeline and cost model; None for fixed bps.
    pub fn market_costs(&self, config: &Config, timeline: &MarketTimeline) -> Result<Option<Arc<crate::model::MarketCosts>>> {
        if !config.costs.market_dependent() {
            return Ok(None);
        }
        let key = format!("{}|{}", market_key(config), crate::app::pipeline::market_costs_key(config));
        let slot = {
            let mut map = self.costs.lock().map_err(|_| anyhow!("cost cache poisoned"))?;
            map.entry(key).or_default().clone()
        };
        // Built on a plain thread, as the timelines are: a rayon worker waiting on polars (an
        // order book's reader) could steal a job that re-enters this OnceLock.
        slot.get_or_init(|| {
            std::thread::scope(|scope| {
                scope
                    .spawn(|| crate::app::pipeline::market_costs_for(config, timeline, &mut Vec::new(), &mut Vec::new()).map_err(|e| format!("{e:#}")))
                    .join()
                    .unwrap_or_else(|_| Err("building the cost series panicked".to_string()))
            })
        })
        .clone()
        .map_err(|e| crate::input_error!("{e}"))
    }

    /// Number of distinct timelines built so far (a book's: pair markets prepared).
    pub fn timelines_built(&self) -> usize {
        self.timelines.lock().map(|m| m.len()).unwrap_or(0) + self.pairs.lock().map(|m| m.len()).unwrap_or(0)
    }
}

/// Run configuration `values` of `sweep` (with `overrides` last, e.g. a walk-forward window):
/// a single pair without a ledger, or a book on the cached pair markets (its book metrics).
pub fn run_values(sweep: &spec::Sweep, markets: &Markets, values: &[toml::Value], overrides: &[(&str, toml::Value)]) -> Result<Metrics> {
    if sweep.book {
        let book = sweep.book_config(values, overrides)?;
        let result = crate::app::portfolio::run_with(&book, &|config| markets.pair(config))?;
        return Ok(result.metrics.book);
    }
    run_config(markets, &sweep.config(values, overrides)?)
}

/// Run one configuration without a ledger.
pub fn run_config(markets: &Markets, config: &Config) -> Result<Metrics> {
    let timeline = markets.timeline(config)?;
    let costs = markets.market_costs(config, &timeline)?;
    let params = crate::app::pipeline::engine_params_with_costs(config, &timeline, &[], Some(costs), &mut Vec::new(), &mut Vec::new())?;
    Ok(crate::app::pipeline::simulate(&timeline, &params, &mut NoLedger).1)
}
