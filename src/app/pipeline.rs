//! The one pipeline every command runs: a timeline and engine parameters in, the run's summary
//! and metrics out (load → align happen before, in [`super::backtest::prepare`]; report and
//! write after, per command).

use crate::measure::metrics::{self, Metrics};
use crate::model::{MarketTimeline, Recorder};
use crate::sim::{self, EngineParams, RunSummary};

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
