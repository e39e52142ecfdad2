//! The one pipeline every command runs: a timeline and engine parameters in, the run's summary
//! and metrics out (load → align happen before, in [`super::backtest::prepare`]; report and
//! write after, per command).

use anyhow::Result;

use crate::config::Config;
use crate::measure::metrics::{self, Metrics};
use crate::model::{MarketTimeline, Recorder};
use crate::sim::{self, EngineParams, RunSummary};

/// The engine parameters of `config` over `timeline`: [`crate::config::engine_params`], with a
/// `rules` or `target` strategy's decisions computed on the timeline's clock. Warnings the
/// signals raise (a proxy premium, a user series that ends early) go to `warnings`, the user
/// series' files to `files`.
pub fn engine_params_for(config: &Config, timeline: &MarketTimeline, warnings: &mut Vec<String>, files: &mut Vec<std::path::PathBuf>) -> Result<EngineParams> {
    engine_params_in_book(config, timeline, &[], warnings, files)
}

/// [`engine_params_for`] for a book's pair: `peers` are the same coin's other pairs (other
/// venues) on the book's clock, which `funding_spread_apr` compares with.
pub fn engine_params_in_book(config: &Config, timeline: &MarketTimeline, peers: &[(String, &MarketTimeline)], warnings: &mut Vec<String>, files: &mut Vec<std::path::PathBuf>) -> Result<EngineParams> {
    let mut params = crate::config::engine_params(config);
    if let Some(compiled) = crate::signal::rules::compile_with_peers(config, timeline, peers, &params.costs, params.hedge_ratio)? {
        warnings.extend(compiled.warnings);
        files.extend(compiled.files);
        params.rules = Some(std::sync::Arc::new(compiled.series));
    }
    Ok(params)
}

/// Count the window's settlements at the venue's cap and floor for `config`'s symbol into the
/// metrics' regimes (the engine does not know the venue's limits).
pub fn count_limits(metrics: &mut Metrics, summary: &RunSummary, config: &Config, symbol: &str) {
    if let Some(regimes) = metrics.regimes.as_mut() {
        regimes.count_limits(&summary.window_settlements, &|at, hours| config.venue.limits_at(symbol, at, hours));
    }
}

/// Refuse a `rules` or `target` strategy in a command that does not run one yet (`what`).
pub fn refuse_rules(config: &Config, what: &str) -> Result<()> {
    use crate::sim::policy::EntryMode;
    if matches!(config.strategy.mode, EntryMode::Rules | EntryMode::Target) {
        crate::bail_input!("{what} does not run strategy.mode = \"rules\" or \"target\" yet (its decisions are computed on one price path); use `basis backtest` or `basis sweep`, or mode = \"funding_threshold\"");
    }
    Ok(())
}

/// Simulate the carry over `timeline`, sending each row to `recorder`, and measure it.
pub fn simulate<R: Recorder>(timeline: &MarketTimeline, params: &EngineParams, recorder: &mut R) -> (RunSummary, Metrics) {
    let mut summary = sim::run(timeline, params, recorder);
    metrics::attach_cash_rate(&mut summary, timeline);
    let metrics = measure(&summary, timeline);
    (summary, metrics)
}

/// The metrics of a run's summary, over the timeline it ran on (a chunked run's header will do:
/// only its symbol and origin are read).
pub fn measure(summary: &RunSummary, timeline: &MarketTimeline) -> Metrics {
    metrics::compute(summary, &timeline.symbol, timeline.synthetic)
}
