//! Point-in-time alignment: spot, perp, mark, staking and funding onto one clock.
//!
//! The clock is the perp's bar-close times inside the run's window. Every other series joins to
//! it with a backward as-of join that **allows equality**: a value stamped at `t` (a bar that
//! closed at `t`) is usable at `t`, and nothing stamped after `t` is. Funding settlements are
//! assigned to the first step at or after their settlement time, and are paid on the position
//! held before that step's decisions, at the mark price known at the settlement time (the
//! settlement row's own mark where the source gives one; the perp's last before the mark series
//! starts). Each step's spot close is also checked for staleness ([`quality`]).

use anyhow::Result;

use super::quality;
pub use crate::model::market::{annualise, Coverage, MarketTimeline};
pub use crate::model::Settlement;
use super::{FundingSeries, MarketData, PriceBars, StakingSeries};
use crate::model::market::StaleSpan;
use crate::bail_input;
use crate::time::format_ms;

/// The window a run asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    /// Explicit `strategy.start` (epoch ms), if any.
    pub start_ms: Option<i64>,
    /// Explicit `strategy.end` (inclusive), if any.
    pub end_ms: Option<i64>,
    /// Simulate (and flag) the part of an explicit window that a source does not cover,
    /// instead of refusing it.
    pub allow_partial_coverage: bool,
    /// Value funding at the index (oracle) price where an index series is loaded (venues that
    /// pay on the oracle), instead of the mark.
    pub funding_at_index: bool,
    /// Keep the perp's own high and low and both legs' volumes on the timeline (a market cost
    /// model estimates spreads and impact from them).
    pub bar_detail: bool,
}


/// For each time of `left` (ascending), the index of the last time of `right` (ascending) at
/// or before it, [`NONE`] when none: the backward as-of join, **equality allowed** (a value
/// stamped at `t` is known at `t`). One pass over both. Indices are 32-bit (half the memory of
/// a run-long index column); a series of 4 billion bars or more is refused before this.
fn asof_backward(left: &[i64], right: &[i64]) -> Vec<u32> {
    let mut j = 0usize;
    left.iter()
        .map(|&t| {
            while j < right.len() && right[j] <= t {
                j += 1;
            }
            if j == 0 { NONE } else { (j - 1) as u32 }
        })
        .collect()
}

/// No row of the right-hand series is at or before the time.
const NONE: u32 = u32::MAX;

/// `values` at the as-of indices, NaN where none (or where `values` is empty).
fn gather(values: &[f64], index: &[u32]) -> Vec<f64> {
    index.iter().map(|&k| values.get(k as usize).copied().unwrap_or(f64::NAN)).collect()
}

/// Align loaded data onto the perp clock, inside `[start_ms, end_ms]`.
pub fn align(data: &MarketData, start_ms: Option<i64>, end_ms: Option<i64>, constant_staking_apr: f64) -> Result<MarketTimeline> {
    align_window(data, &Window { start_ms, end_ms, ..Default::default() }, constant_staking_apr)
}


fn coverage_of(source: &str, first_ms: i64, last_ms: i64) -> Coverage {
    Coverage { source: source.into(), first: format_ms(first_ms), last: if last_ms == i64::MAX { "open-ended".into() } else { format_ms(last_ms) }, first_ms, last_ms }
}

/// The span each required source covers. A mark found by a freqtrade directory (not
/// configured) is optional: the perp stands in where it is missing.
pub fn coverages(data: &MarketData) -> Vec<Coverage> {
    let span = |bars: &PriceBars| (bars.ts_ms[0], *bars.ts_ms.last().unwrap_or(&bars.ts_ms[0]));
    let spans = BarSpans { spot: span(&data.spot), perp: span(&data.perp), mark: data.mark.as_ref().filter(|_| !data.mark_optional).map(span), index: data.index.as_ref().map(span) };
    coverages_of(&spans, &data.funding, data.funding_derived, data.staking.as_ref())
}

/// First and last close time of each bar series.
pub struct BarSpans {
    /// The spot's.
    pub spot: (i64, i64),
    /// The perp's.
    pub perp: (i64, i64),
    /// The mark's, when it is required.
    pub mark: Option<(i64, i64)>,
    /// The index's, when given.
    pub index: Option<(i64, i64)>,
}

/// [`coverages`] from the bar series' spans and the settlements (`derived`: counterfactual, which
/// covers what the prices cover).
pub fn coverages_of(spans: &BarSpans, funding: &FundingSeries, derived: bool, staking: Option<&StakingSeries>) -> Vec<Coverage> {
    let bars = |label: &str, (first, last): (i64, i64)| coverage_of(label, first, last);
    let mut out = vec![bars("spot", spans.spot), bars("perp", spans.perp)];
    if let Some(mark) = spans.mark {
        out.push(bars("mark", mark));
    }
    if let Some(index) = spans.index {
        out.push(bars("index", index));
    }
    let f = funding;
    if let (Some(first), Some(last), false) = (f.first(), f.last(), derived) {
        let hours_ms = |h: f64| (h * 3_600_000.0).round() as i64;
        out.push(coverage_of("funding", first.settle_ms - hours_ms(first.interval_hours), last.settle_ms + hours_ms(last.interval_hours)));
    }
    if let Some(staking) = staking.filter(|s| !s.ts_ms.is_empty()) {
        // A staking APR stays known after its last row.
        out.push(coverage_of("staking", staking.ts_ms[0], i64::MAX));
    }
    out
}

/// "funding (2021-01-01 00:00:00Z .. 2024-01-01 08:00:00Z)".
fn describe(c: &Coverage) -> String {
    format!("{} ({} .. {})", c.source, c.first, c.last)
}

/// Align loaded data onto the perp clock inside `window`, clipped to the span every required
/// source covers (see the module doc for what is refused, clipped or flagged).
pub fn align_window(data: &MarketData, window: &Window, constant_staking_apr: f64) -> Result<MarketTimeline> {
    let (mut timeline, range, mark_from_perp) = align_all_but_perp(data, window, constant_staking_apr)?;
    let perp = &data.perp;
    let copy = |values: &[f64]| values[range.clone()].to_vec();
    if window.bar_detail {
        keep_bar_detail(&mut timeline, data, &range);
    }
    with_perp_columns(&mut timeline, mark_from_perp, perp.ts_ms[range.clone()].to_vec(), copy(&perp.close), copy(&perp.high), copy(&perp.low));
    Ok(timeline)
}

/// [`Window::bar_detail`] for a timeline aligned without it: the perp's range, both legs'
/// volumes and the bars before the window, from the loaded `data`. Nothing is attached unless
/// the timeline's steps are exactly the perp's bars over its span (a timeline put on another
/// clock keeps none).
pub fn attach_bar_detail(timeline: &mut MarketTimeline, data: &MarketData) {
    let (Some(&first), Some(&last)) = (timeline.ts_ms.first(), timeline.ts_ms.last()) else { return };
    let start = data.perp.ts_ms.partition_point(|&t| t < first);
    let end = data.perp.ts_ms.partition_point(|&t| t <= last);
    if data.perp.ts_ms.get(start..end) == Some(timeline.ts_ms.as_slice()) {
        keep_bar_detail(timeline, data, &(start..end));
    }
}

/// The perp's own range and both legs' volumes on the clock (`Window::bar_detail`).
fn keep_bar_detail(timeline: &mut MarketTimeline, data: &MarketData, range: &std::ops::Range<usize>) {
    let perp = &data.perp;
    let column = |values: &[f64], fallback: &[f64]| -> Vec<f64> { if values.len() == perp.ts_ms.len() { values[range.clone()].to_vec() } else { fallback[range.clone()].to_vec() } };
    timeline.perp_high = column(&perp.high, &perp.close);
    timeline.perp_low = column(&perp.low, &perp.close);
    timeline.perp_volume = if perp.volume.len() == perp.ts_ms.len() { perp.volume[range.clone()].to_vec() } else { vec![f64::NAN; range.len()] };
    // The spot bar ending at the step (none on a stale step: its volume is unknown).
    let ts = &perp.ts_ms[range.clone()];
    let spot = &data.spot;
    let at = asof_backward(ts, &spot.ts_ms);
    timeline.spot_volume = ts.iter().zip(&at).map(|(&t, &k)| if k != NONE && spot.ts_ms[k as usize] == t { spot.volume.get(k as usize).copied().unwrap_or(f64::NAN) } else { f64::NAN }).collect();
    // The bars before the window, for trailing estimates known from its first step.
    let first = perp.ts_ms.get(range.start).copied().unwrap_or(i64::MAX);
    let from = perp.ts_ms[..range.start].partition_point(|&t| t < first.saturating_sub(crate::model::WarmUp::DAYS * crate::time::MS_PER_DAY));
    if from < range.start {
        let before = from..range.start;
        let ts = &perp.ts_ms[before.clone()];
        let at = asof_backward(ts, &spot.ts_ms);
        let fresh = |t: i64, k: u32| k != NONE && spot.ts_ms[k as usize] == t;
        let spot_close: Vec<f64> = at.iter().map(|&k| if k == NONE { f64::NAN } else { spot.close[k as usize] }).collect();
        let spot_range = |column: &[f64]| -> Vec<f64> { ts.iter().zip(&at).zip(&spot_close).map(|((&t, &k), &c)| if fresh(t, k) { column.get(k as usize).copied().unwrap_or(c) } else { c }).collect() };
        let own = |values: &[f64], fallback: &[f64]| -> Vec<f64> { if values.len() == perp.ts_ms.len() { values[before.clone()].to_vec() } else { fallback[before.clone()].to_vec() } };
        timeline.warm_up = Some(std::sync::Arc::new(crate::model::WarmUp {
            ts_ms: ts.to_vec(),
            spot_high: spot_range(&spot.high),
            spot_low: spot_range(&spot.low),
            spot_volume: ts.iter().zip(&at).map(|(&t, &k)| if fresh(t, k) { spot.volume.get(k as usize).copied().unwrap_or(f64::NAN) } else { f64::NAN }).collect(),
            spot: spot_close,
            perp: perp.close[before.clone()].to_vec(),
            perp_high: own(&perp.high, &perp.close),
            perp_low: own(&perp.low, &perp.close),
            perp_volume: if perp.volume.len() == perp.ts_ms.len() { perp.volume[before.clone()].to_vec() } else { vec![f64::NAN; before.len()] },
        }));
    }
}

/// [`align_window`] for a caller done with the loaded spot and perp bars: the perp's columns
/// are moved into the timeline (cut to the window in place) rather than copied, and the spot
/// bars are let go before the timeline's last columns are made, which saves five columns of the
/// run's length at the moment memory peaks. `data.perp` and `data.spot` are left empty.
pub fn align_window_taking_bars(data: &mut MarketData, window: &Window, constant_staking_apr: f64) -> Result<MarketTimeline> {
    let (mut timeline, range, mark_from_perp) = align_all_but_perp(data, window, constant_staking_apr)?;
    if window.bar_detail {
        keep_bar_detail(&mut timeline, data, &range);
    }
    data.spot = PriceBars::default();
    let perp = std::mem::take(&mut data.perp);
    fn cut<T>(mut values: Vec<T>, range: &std::ops::Range<usize>) -> Vec<T> {
        values.truncate(range.end);
        values.drain(..range.start);
        values
    }
    with_perp_columns(&mut timeline, mark_from_perp, cut(perp.ts_ms, &range), cut(perp.close, &range), cut(perp.high, &range), cut(perp.low, &range));
    Ok(timeline)
}

/// The perp's columns on the clock: the steps, the fill price, and (without a mark series) the
/// mark and its bar range.
fn with_perp_columns(timeline: &mut MarketTimeline, mark_from_perp: bool, ts_ms: Vec<i64>, close: Vec<f64>, high: Vec<f64>, low: Vec<f64>) {
    if mark_from_perp {
        // The mark stays empty: the perp's last is read in its place (`mark_prices`).
        timeline.mark_high = high;
        timeline.mark_low = low;
    }
    timeline.ts_ms = ts_ms;
    timeline.perp = close;
}

/// Everything of the timeline but the perp's own columns (left empty), the window's range of
/// perp bars, and whether the mark is the perp's (no mark series).
fn align_all_but_perp(data: &MarketData, window: &Window, constant_staking_apr: f64) -> Result<(MarketTimeline, std::ops::Range<usize>, bool)> {
    let perp = &data.perp;
    let spacing = super::clock::typical_spacing(&perp.ts_ms);
    let plan = plan_clock(coverages(data), spacing, data.spot.ts_ms[0], &mut PerpTimesInMemory(&perp.ts_ms), window)?;
    let range = plan.range.clone();
    let mut aligner = StepAligner::new(&plan, window, constant_staking_apr);
    let sources = Sources { spot: &data.spot, perp, mark: data.mark.as_ref(), index: data.index.as_ref(), funding: &data.funding, staking: data.staking.as_ref() };
    let (ts_ms, perp_close) = (&perp.ts_ms[range.clone()], &perp.close[range.clone()]);
    let mut timeline = aligner.align(&sources, ts_ms, perp_close, &perp.high[range.clone()], &perp.low[range.clone()], 0)?;
    let totals = aligner.finish(plan);
    timeline.coverage = totals.coverage;
    timeline.coverage_warnings = totals.coverage_warnings;
    timeline.stale_spans = totals.stale_spans;
    timeline.stale_spot_steps = totals.stale_spot_steps;
    timeline.symbol = data.symbol.clone();
    timeline.synthetic = data.synthetic;
    Ok((timeline, range, data.mark.is_none()))
}

/// The perp's bar times, as [`plan_clock`] asks about them (a long input may not hold them).
pub trait PerpTimes {
    /// Number of bars.
    fn len(&self) -> usize;
    /// Bars closing before `t`.
    fn count_before(&mut self, t: i64) -> Result<usize>;
    /// Bars closing at or before `t`.
    fn count_through(&mut self, t: i64) -> Result<usize>;
    /// The close time of bar `k`.
    fn at(&mut self, k: usize) -> Result<i64>;
}

/// Bar times held in memory.
pub struct PerpTimesInMemory<'a>(pub &'a [i64]);

impl PerpTimes for PerpTimesInMemory<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn count_before(&mut self, t: i64) -> Result<usize> {
        Ok(self.0.partition_point(|&x| x < t))
    }
    fn count_through(&mut self, t: i64) -> Result<usize> {
        Ok(self.0.partition_point(|&x| x <= t))
    }
    fn at(&mut self, k: usize) -> Result<i64> {
        Ok(self.0[k])
    }
}

/// Where the clock runs: the span every required source covers, the window's range of perp
/// bars, and what the window lost to coverage.
pub struct ClockPlan {
    /// The span each required source covers.
    pub coverage: Vec<Coverage>,
    /// The latest first covered time, and the earliest last one.
    covered: (i64, i64),
    /// The perp bars that are the clock's steps (indices into the whole perp series).
    pub range: std::ops::Range<usize>,
    /// What a default window lost to a source other than the perp.
    pub coverage_warnings: Vec<String>,
}

/// The clock's span inside `window`, from each source's coverage and the perp's bar times:
/// an explicit window outside the coverage is refused (unless `allow_partial_coverage`), a
/// default one is clipped with a warning. `spacing` is the perp's typical bar spacing and
/// `spot_first` the spot's first close time.
pub fn plan_clock(coverage: Vec<Coverage>, spacing: i64, spot_first: i64, perp: &mut impl PerpTimes, window: &Window) -> Result<ClockPlan> {
    let covered_first = coverage.iter().map(|c| c.first_ms).max().unwrap_or(i64::MIN);
    let covered_last = coverage.iter().map(|c| c.last_ms).min().unwrap_or(i64::MAX);
    let mut coverage_warnings = Vec::new();
    // An explicit window must lie inside every source's coverage, give or take one bar (a bar
    // closing at the first covered time spans the bar before it).
    if !window.allow_partial_coverage {
        if let Some(start) = window.start_ms.filter(|s| *s < covered_first - spacing) {
            let short: Vec<String> = coverage.iter().filter(|c| c.first_ms > start + spacing).map(describe).collect();
            bail_input!(
                "strategy.start = {} is before the data covers it: {}. Move strategy.start to {} or later, or set allow_partial_coverage = true in [data] to simulate the uncovered span (flagged on every ledger row)",
                format_ms(start),
                short.join(", "),
                format_ms(covered_first)
            );
        }
        if let Some(end) = window.end_ms.filter(|e| covered_last != i64::MAX && *e >= covered_last + spacing.max(1)) {
            let short: Vec<String> = coverage.iter().filter(|c| c.last_ms < end).map(describe).collect();
            bail_input!(
                "strategy.end = {} is after the data ends: {}. Move strategy.end to {} or earlier, or set allow_partial_coverage = true in [data] to simulate the uncovered span (flagged on every ledger row)",
                format_ms(end),
                short.join(", "),
                format_ms(covered_last)
            );
        }
    }
    // The clock: perp closes inside the window; a default window is clipped to the covered span.
    let bars = perp.len();
    let (perp_first, perp_last) = (perp.at(0)?, perp.at(bars - 1)?);
    let lo = match window.start_ms {
        Some(start) if window.allow_partial_coverage => start.max(spot_first),
        Some(start) => start.max(covered_first),
        None => covered_first,
    };
    let hi = match window.end_ms {
        Some(end) if window.allow_partial_coverage => end,
        Some(end) => end.min(covered_last),
        None => covered_last,
    };
    let first = perp.count_before(lo)?;
    let last = perp.count_through(hi)?;
    if first >= last {
        bail_input!(
            "the sources have no common time inside the window{}: {}; check the files and strategy.start/end",
            match (window.start_ms, window.end_ms) {
                (None, None) => String::new(),
                (start, end) => format!(" [{} .. {}]", start.map(format_ms).unwrap_or_default(), end.map(format_ms).unwrap_or_default()),
            },
            coverage.iter().map(describe).collect::<Vec<_>>().join(", ")
        );
    }
    // Say what a default window lost to a source other than the perp (the clock itself), once,
    // naming only the sources that set the bound (the latest start, the earliest end): a source
    // that starts after the perp but before the binding one cut nothing.
    let first_step = perp.at(first)?;
    if window.start_ms.is_none() && first_step > perp_first {
        let late = coverage.iter().filter(|c| c.first_ms > perp_first && c.source != "perp");
        if let Some(bound) = late.clone().map(|c| c.first_ms).max() {
            let binding: Vec<String> = late.filter(|c| c.first_ms == bound).map(describe).collect();
            coverage_warnings.push(format!(
                "coverage: {} {} after the perp: the window starts at {} instead of {} ({first} perp steps cut)",
                binding.join(" and "),
                if binding.len() == 1 { "starts" } else { "start" },
                format_ms(first_step),
                format_ms(perp_first)
            ));
        }
    }
    let last_step = perp.at(last - 1)?;
    if window.end_ms.is_none() && last_step < perp_last {
        let cut = bars - last;
        let early = coverage.iter().filter(|c| c.last_ms < perp_last && c.source != "perp");
        if let Some(bound) = early.clone().map(|c| c.last_ms).min() {
            let binding: Vec<String> = early.filter(|c| c.last_ms == bound).map(describe).collect();
            coverage_warnings.push(format!(
                "coverage: {} {} before the perp: the window ends at {} instead of {} ({cut} perp steps cut)",
                binding.join(" and "),
                if binding.len() == 1 { "ends" } else { "end" },
                format_ms(last_step),
                format_ms(perp_last)
            ));
        }
    }
    Ok(ClockPlan { coverage, covered: (covered_first, covered_last), range: first..last, coverage_warnings })
}

/// The series a run's steps are aligned from. For a chunk of steps, each bar series needs to
/// hold only the bar known at the chunk's first step and those after it through its last.
pub struct Sources<'a> {
    /// Spot bars.
    pub spot: &'a PriceBars,
    /// Perp bars (the clock's own, and the price a settlement is valued at without a mark).
    pub perp: &'a PriceBars,
    /// Mark bars, if any.
    pub mark: Option<&'a PriceBars>,
    /// Index bars, if any.
    pub index: Option<&'a PriceBars>,
    /// Every settlement.
    pub funding: &'a FundingSeries,
    /// The staking APR series, if any.
    pub staking: Option<&'a StakingSeries>,
}

/// Puts steps on the clock, one chunk of time after another, carrying what spans chunks: the
/// stale-spot check's trailing history, the stale-spot spans, the runs of steps without a mark
/// bar, and the counts the warnings give. Aligning the whole window as one chunk and as many
/// gives the same steps.
pub struct StepAligner {
    covered: (i64, i64),
    coverage: Vec<Coverage>,
    funding_at_index: bool,
    constant_staking_apr: f64,
    check: quality::StaleSpotCheck,
    spans: quality::StaleSpans,
    stale_spot_steps: usize,
    /// The last step's stale flags (a chunk's first step repeats the previous chunk's last).
    last_flags: u8,
    /// Steps aligned so far.
    steps: usize,
    /// Steps without a mark bar, and their runs (last step, first and last step time): the
    /// first ones shown in the warning, and the one that may go on.
    stand_in_steps: usize,
    stand_in_runs: Vec<(usize, i64, i64)>,
    stand_in_run_count: usize,
    /// Steps outside some source's coverage, and which sources they lie outside.
    uncovered_steps: usize,
    short_sources: Vec<bool>,
}

/// What [`StepAligner::finish`] gives: the whole run's coverage, warnings and stale spans.
pub struct AlignTotals {
    /// The span each required source covers.
    pub coverage: Vec<Coverage>,
    /// What the window lost to coverage and where a stand-in price was used.
    pub coverage_warnings: Vec<String>,
    /// Runs of stale-spot steps.
    pub stale_spans: Vec<StaleSpan>,
    /// Steps whose spot close was older than the perp bar.
    pub stale_spot_steps: usize,
}

/// Runs of steps without a mark bar named in the warning.
const STAND_IN_RUNS_SHOWN: usize = 3;

impl StepAligner {
    /// An aligner for the clock `plan` describes.
    pub fn new(plan: &ClockPlan, window: &Window, constant_staking_apr: f64) -> Self {
        StepAligner {
            covered: plan.covered,
            coverage: plan.coverage.clone(),
            funding_at_index: window.funding_at_index,
            constant_staking_apr,
            check: quality::StaleSpotCheck::default(),
            spans: quality::StaleSpans::default(),
            stale_spot_steps: 0,
            last_flags: 0,
            steps: 0,
            stand_in_steps: 0,
            stand_in_runs: Vec::new(),
            stand_in_run_count: 0,
            uncovered_steps: 0,
            short_sources: vec![false; plan.coverage.len()],
        }
    }

    /// The steps `ts_ms` (perp closes, with the perp's close, high and low), everything but
    /// the perp's own columns; the first `repeated` steps were aligned with the chunk before.
    pub fn align(&mut self, sources: &Sources, ts_ms: &[i64], perp_close: &[f64], perp_high: &[f64], perp_low: &[f64], repeated: usize) -> Result<MarketTimeline> {
        let (spot, spot_stale, spot_high, spot_low) = self.spot_on_clock(sources.spot, ts_ms, perp_close, repeated);
        let (mark, mark_high, mark_low) = match sources.mark {
            Some(mark_bars) => self.mark_on_clock(mark_bars, ts_ms, perp_close, perp_high, perp_low, repeated),
            // Filled in with the perp's own columns (moved or copied) by the caller.
            None => (Vec::new(), Vec::new(), Vec::new()),
        };
        let staking_apr = if let Some(staking) = sources.staking {
            gather(&staking.apr, &asof_backward(ts_ms, &staking.ts_ms)).into_iter().map(|v| if v.is_finite() { v } else { self.constant_staking_apr }).collect()
        } else {
            // One entry: the same APR at every step.
            vec![self.constant_staking_apr]
        };
        if let Some(i) = spot.iter().position(|v| !v.is_finite()) {
            bail_input!("spot: no spot price is known at {} (the first perp step); spot data starts later", format_ms(ts_ms[i]));
        }
        // Steps outside some source's coverage (only an explicit window with
        // allow_partial_coverage keeps them).
        let (covered_first, covered_last) = self.covered;
        let outside = |t: i64| t < covered_first || t > covered_last;
        let uncovered_here = ts_ms[repeated..].iter().filter(|&&t| outside(t)).count();
        let uncovered = if ts_ms.iter().any(|&t| outside(t)) { ts_ms.iter().map(|&t| outside(t)).collect() } else { Vec::new() };
        if uncovered_here > 0 {
            self.uncovered_steps += uncovered_here;
            for (c, short) in self.coverage.iter().zip(self.short_sources.iter_mut()) {
                *short |= ts_ms[repeated..].iter().any(|&t| t < c.first_ms || t > c.last_ms);
            }
        }
        self.steps += ts_ms.len() - repeated;
        let funding = priced_settlements(sources, ts_ms, self.funding_at_index);
        Ok(MarketTimeline { spot, mark, mark_high, mark_low, staking_apr, funding, spot_stale, spot_high, spot_low, uncovered, ..Default::default() })
    }

    /// The spot on the clock `ts_ms`, in one pass over the steps and the spot bars (a backward
    /// as-of cursor, equality allowed), with no per-step index kept: the close known at each
    /// step, its stale-spot flags, and the range of the bar ending at the step (the close on a
    /// stale step; both empty when the source has no range). A step before the first spot bar
    /// gets NaN.
    fn spot_on_clock(&mut self, bars: &PriceBars, ts_ms: &[i64], perp_close: &[f64], repeated: usize) -> (Vec<f64>, Vec<u8>, Vec<f64>, Vec<f64>) {
        let n = ts_ms.len();
        // A source without a range (high = low = close) keeps none.
        let has_range = !bars.high.is_empty() && (bars.high != bars.close || bars.low != bars.close);
        let mut spot = Vec::with_capacity(n);
        let mut flags = Vec::with_capacity(n);
        let (mut high, mut low) = if has_range { (Vec::with_capacity(n), Vec::with_capacity(n)) } else { (Vec::new(), Vec::new()) };
        let mut next = 0usize;
        for (i, &t) in ts_ms.iter().enumerate() {
            while next < bars.ts_ms.len() && bars.ts_ms[next] <= t {
                next += 1;
            }
            let bar = next.checked_sub(1);
            let close = bar.map_or(f64::NAN, |k| bars.close[k]);
            // Whether a spot bar closed at this step (else its last close is carried: stale).
            let fresh = bar.is_some_and(|k| bars.ts_ms[k] == t);
            spot.push(close);
            if has_range {
                // Nothing is known of the range on a stale step: the close stands in.
                let in_bar = |column: &[f64]| if fresh { bar.and_then(|k| column.get(k).copied()) } else { None };
                high.push(in_bar(&bars.high).map_or(close, |h| h.max(close)));
                low.push(in_bar(&bars.low).map_or(close, |l| l.min(close)));
            }
            if i < repeated {
                flags.push(self.last_flags);
                continue;
            }
            let volume = bar.and_then(|k| bars.volume.get(k).copied()).unwrap_or(f64::NAN);
            let step_flags = self.check.step(fresh, volume, close, perp_close[i]);
            self.spans.push(t, step_flags);
            if step_flags & quality::stale::GAP != 0 {
                self.stale_spot_steps += 1;
            }
            self.last_flags = step_flags;
            flags.push(step_flags);
        }
        if has_range && high.iter().zip(&low).zip(&spot).all(|((h, l), c)| h == c && l == c) {
            (high, low) = (Vec::new(), Vec::new());
        }
        (spot, flags, high, low)
    }

    /// The mark on the clock: where the mark's bar is not the one ending at the step (a mark
    /// gap, or a mark starting later), the perp's own bar stands in, so the liquidation check
    /// still sees the bar; those steps are counted for the warning.
    fn mark_on_clock(&mut self, mark_bars: &PriceBars, ts_ms: &[i64], perp_close: &[f64], perp_high: &[f64], perp_low: &[f64], repeated: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let n = ts_ms.len();
        let mut m = Vec::with_capacity(n);
        let mut h = Vec::with_capacity(n);
        let mut l = Vec::with_capacity(n);
        let mut next = 0usize;
        for (i, &t) in ts_ms.iter().enumerate() {
            while next < mark_bars.ts_ms.len() && mark_bars.ts_ms[next] <= t {
                next += 1;
            }
            let bar = next.checked_sub(1).filter(|&k| mark_bars.ts_ms[k] == t && mark_bars.close[k].is_finite());
            match bar {
                Some(k) => {
                    m.push(mark_bars.close[k]);
                    h.push(mark_bars.high.get(k).copied().unwrap_or(f64::NAN));
                    l.push(mark_bars.low.get(k).copied().unwrap_or(f64::NAN));
                }
                None => {
                    m.push(perp_close[i]);
                    h.push(perp_high[i]);
                    l.push(perp_low[i]);
                    if i >= repeated {
                        // Runs of consecutive steps without a mark bar, for the message.
                        let step = self.steps + i - repeated;
                        self.stand_in_steps += 1;
                        match self.stand_in_runs.last_mut() {
                            Some(run) if run.0 + 1 == step => {
                                run.0 = step;
                                run.2 = t;
                            }
                            _ => {
                                self.stand_in_run_count += 1;
                                if self.stand_in_runs.len() <= STAND_IN_RUNS_SHOWN {
                                    self.stand_in_runs.push((step, t, t));
                                } else if let Some(last) = self.stand_in_runs.last_mut() {
                                    // Only the last run is kept beyond those shown: it may go on.
                                    *last = (step, t, t);
                                }
                            }
                        }
                    }
                }
            }
        }
        (m, h, l)
    }

    /// The run's coverage, warnings and stale spans once every step is aligned.
    pub fn finish(self, plan: ClockPlan) -> AlignTotals {
        let mut coverage_warnings = plan.coverage_warnings;
        if self.stand_in_steps > 0 {
            let shown: Vec<String> = self.stand_in_runs.iter().take(STAND_IN_RUNS_SHOWN).map(|(_, a, b)| format!("{} .. {}", format_ms(*a), format_ms(*b))).collect();
            coverage_warnings.push(format!(
                "mark: {} of {} steps have no mark bar, in {} run(s) ({}{}); the perp's last price stands in for the mark there (valuation, funding and liquidation checks)",
                self.stand_in_steps,
                self.steps,
                self.stand_in_run_count,
                shown.join(", "),
                if self.stand_in_run_count > STAND_IN_RUNS_SHOWN { ", ..." } else { "" }
            ));
        }
        if self.uncovered_steps > 0 {
            let short: Vec<String> = self.coverage.iter().zip(&self.short_sources).filter(|(_, short)| **short).map(|(c, _)| describe(c)).collect();
            coverage_warnings.push(format!(
                "coverage: {} of {} steps lie outside {} and are simulated anyway (allow_partial_coverage = true): no funding is known there; those ledger rows carry event bit 128 (UNCOVERED) and funding APRs count covered time only",
                self.uncovered_steps,
                self.steps,
                short.join(", ")
            ));
        }
        AlignTotals {
            coverage: self.coverage,
            coverage_warnings,
            stale_spans: self.spans.finish(),
            stale_spot_steps: self.stale_spot_steps,
        }
    }
}

/// Every settlement loaded, those inside `(ts[0], ts[last]]` priced at the price known at
/// settlement and the rest unpriced; one with no price known yet (before any bar) stays
/// unpriced, so it is not paid.
fn priced_settlements(sources: &Sources, ts_ms: &[i64], at_index: bool) -> FundingSeries {
    let loaded = sources.funding;
    let mut funding = loaded.unpriced();
    let inside = loaded.between(ts_ms[0], ts_ms[ts_ms.len() - 1]);
    if inside.is_empty() {
        return funding;
    }
    let settle: Vec<i64> = loaded[inside.clone()].iter().map(|s| s.settle_ms).collect();
    // Price known at settlement: the mark as of the settlement; before the mark series starts
    // (or with none), the perp's last.
    let price_as_of = |bars: &PriceBars| -> Vec<f64> { gather(&bars.close, &asof_backward(&settle, &bars.ts_ms)) };
    let mut bar_price = price_as_of(sources.perp);
    // Oracle-paid venues value the notional at the index where one is loaded; otherwise the
    // settlement row's own mark, else the mark (or perp) bar known at the settlement.
    let index_price = sources.index.filter(|_| at_index).map(price_as_of);
    if let (None, Some(mark)) = (&index_price, sources.mark) {
        for (price, mark_price) in bar_price.iter_mut().zip(price_as_of(mark)) {
            if mark_price.is_finite() {
                *price = mark_price;
            }
        }
    }
    for (k, i) in inside.enumerate() {
        let preferred = match &index_price {
            Some(index) => index[k],
            None => loaded[i].price,
        };
        // NaN where no price is known yet at this settlement: it cannot be valued (before any bar).
        funding[i].price = if preferred.is_finite() { preferred } else { bar_price[k] };
    }
    funding
}

/// `funding` with only the settlements in `(first_ms, last_ms]` left priced: those outside are
/// not paid (every one stays, for the trailing signals).
fn paid_only_between(funding: &FundingSeries, first_ms: i64, last_ms: i64) -> FundingSeries {
    let mut out = funding.clone();
    for s in out.iter_mut().filter(|s| s.settle_ms <= first_ms || s.settle_ms > last_ms) {
        s.price = f64::NAN;
    }
    out
}

/// The common step times of several timelines: the times every one of them has a step at.
pub fn common_grid(timelines: &[&MarketTimeline]) -> Vec<i64> {
    let Some((first, rest)) = timelines.split_first() else { return Vec::new() };
    first.ts_ms.iter().copied().filter(|t| rest.iter().all(|other| other.ts_ms.binary_search(t).is_ok())).collect()
}

/// `timeline` on `grid`, a subset of its step times: each kept step takes its own close, and
/// the bar ranges (mark and spot high and low) and the uncovered flag of the steps merged into
/// it, so no intrabar extreme is lost; settlements move to the kept step whose interval holds
/// them, and those outside the grid's span are dropped. With the timeline's own times as the
/// grid, the timeline comes back unchanged.
pub fn restrict_to_grid(timeline: &MarketTimeline, grid: &[i64]) -> MarketTimeline {
    if grid == timeline.ts_ms.as_slice() {
        return timeline.clone();
    }
    let index: Vec<usize> = grid.iter().filter_map(|t| timeline.ts_ms.binary_search(t).ok()).collect();
    let pick = |values: &[f64]| -> Vec<f64> { if values.is_empty() { Vec::new() } else { index.iter().map(|&o| values[o]).collect() } };
    // `fallback` stands in for an empty range (the closes): a merged step still sees the
    // extremes of the steps merged into it.
    let merged = |values: &[f64], fallback: &[f64], max: bool| -> Vec<f64> {
        let values = if values.is_empty() { fallback } else { values };
        if values.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(index.len());
        let mut from = 0usize;
        for &o in &index {
            let range = &values[from.min(o)..=o];
            out.push(if max { range.iter().copied().fold(f64::MIN, f64::max) } else { range.iter().copied().fold(f64::MAX, f64::min) });
            from = o + 1;
        }
        out
    };
    // Volumes of the steps merged into a kept step add up.
    let summed = |values: &[f64]| -> Vec<f64> {
        if values.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(index.len());
        let mut from = 0usize;
        for &o in &index {
            out.push(values[from.min(o)..=o].iter().sum());
            from = o + 1;
        }
        out
    };
    let mut uncovered = Vec::new();
    if !timeline.uncovered.is_empty() {
        let mut from = 0usize;
        for &o in &index {
            uncovered.push(timeline.uncovered[from.min(o)..=o].iter().any(|u| *u));
            from = o + 1;
        }
    }
    let ts_ms: Vec<i64> = index.iter().map(|&o| timeline.ts_ms[o]).collect();
    let (first, last) = (ts_ms.first().copied().unwrap_or(0), ts_ms.last().copied().unwrap_or(0));
    let funding = paid_only_between(&timeline.funding, first, last);
    let spot_stale: Vec<u8> = if timeline.spot_stale.is_empty() { Vec::new() } else { index.iter().map(|&o| timeline.spot_stale[o]).collect() };
    MarketTimeline {
        symbol: timeline.symbol.clone(),
        synthetic: timeline.synthetic,
        spot: pick(&timeline.spot),
        perp: pick(&timeline.perp),
        mark: pick(&timeline.mark),
        mark_high: merged(&timeline.mark_high, &[], true),
        mark_low: merged(&timeline.mark_low, &[], false),
        staking_apr: if timeline.staking_apr.len() == 1 { timeline.staking_apr.clone() } else { pick(&timeline.staking_apr) },
        funding,
        stale_spot_steps: spot_stale.iter().filter(|f| **f != 0).count(),
        spot_stale,
        stale_spans: timeline.stale_spans.iter().filter(|s| s.to_ms >= first && s.from_ms <= last).cloned().collect(),
        cash_apr: if timeline.cash_apr.is_empty() { Vec::new() } else { pick(&timeline.cash_apr) },
        borrow_apr: if timeline.borrow_apr.is_empty() { Vec::new() } else { pick(&timeline.borrow_apr) },
        spot_high: merged(&timeline.spot_high, &timeline.spot, true),
        spot_low: merged(&timeline.spot_low, &timeline.spot, false),
        uncovered,
        coverage: timeline.coverage.clone(),
        coverage_warnings: timeline.coverage_warnings.clone(),
        perp_high: if timeline.perp_high.is_empty() { Vec::new() } else { merged(&timeline.perp_high, &[], true) },
        perp_low: if timeline.perp_low.is_empty() { Vec::new() } else { merged(&timeline.perp_low, &[], false) },
        spot_volume: summed(&timeline.spot_volume),
        perp_volume: summed(&timeline.perp_volume),
        warm_up: timeline.warm_up.clone(),
        ts_ms,
        ..Default::default()
    }
}

/// Every step time of `timelines` inside `[from_ms, to_ms]`: the clock of a universe, whose
/// pairs list and delist at different times.
pub fn union_grid(timelines: &[&MarketTimeline], from_ms: i64, to_ms: i64) -> Vec<i64> {
    let mut grid: Vec<i64> = timelines.iter().flat_map(|t| t.ts_ms.iter().copied()).filter(|t| (from_ms..=to_ms).contains(t)).collect();
    grid.sort_unstable();
    grid.dedup();
    grid
}

/// `timeline` on `grid`, a clock that may run before its first step and after its last (a
/// universe's): the steps it has keep their values; the steps it lacks between its first and
/// last hold its previous close (a flat bar, the spot flagged stale: no decision needs it);
/// the steps before its first hold its first close and those after its last its last close.
/// Those placeholder prices are never traded on: a pair out of its data is held flat and
/// never selected. Settlements move to the step whose interval holds them (those after its
/// listing only). Returns the grid indices of its first and last real steps (None: none in
/// the grid).
pub fn spread_to_grid(timeline: &MarketTimeline, grid: &[i64]) -> (MarketTimeline, Option<(usize, usize)>) {
    let n = grid.len();
    let own = &timeline.ts_ms;
    // For each grid step: the timeline's step its values come from, and whether it is its own.
    let mut source = Vec::with_capacity(n);
    let mut real = Vec::with_capacity(n);
    for &t in grid {
        let at = own.partition_point(|&x| x < t);
        if at < own.len() && own[at] == t {
            source.push(at);
            real.push(true);
        } else {
            source.push(at.saturating_sub(1).min(own.len().saturating_sub(1)));
            real.push(false);
        }
    }
    let first = real.iter().position(|r| *r);
    let last = real.iter().rposition(|r| *r);
    let active = first.zip(last);
    let pick = |values: &[f64]| -> Vec<f64> { if values.is_empty() || own.is_empty() { Vec::new() } else { source.iter().map(|&o| values[o]).collect() } };
    // A placeholder bar is flat at its close: no extreme is invented.
    let range = |values: &[f64], close: &[f64]| -> Vec<f64> {
        if values.is_empty() || own.is_empty() {
            return Vec::new();
        }
        source.iter().zip(&real).map(|(&o, &r)| if r { values[o] } else { close[o] }).collect()
    };
    let mark_close = timeline.mark_prices().to_vec();
    let spot_stale: Vec<u8> = source
        .iter()
        .zip(&real)
        .enumerate()
        .map(|(g, (&o, &r))| {
            let inside = active.is_some_and(|(a, b)| g > a && g < b);
            if r {
                timeline.spot_stale.get(o).copied().unwrap_or(0)
            } else if inside {
                crate::data::quality::stale::GAP
            } else {
                0
            }
        })
        .collect();
    let listed_ms = first.map(|f| grid[f]).unwrap_or(i64::MAX);
    let (grid_first, grid_last) = (grid.first().copied().unwrap_or(0), grid.last().copied().unwrap_or(0));
    let funding = paid_only_between(&timeline.funding, grid_first.max(listed_ms - 1), grid_last);
    let out = MarketTimeline {
        symbol: timeline.symbol.clone(),
        synthetic: timeline.synthetic,
        spot: pick(&timeline.spot),
        perp: pick(&timeline.perp),
        mark: pick(&timeline.mark),
        mark_high: range(&timeline.mark_high, &mark_close),
        mark_low: range(&timeline.mark_low, &mark_close),
        staking_apr: if timeline.staking_apr.len() == 1 { timeline.staking_apr.clone() } else { pick(&timeline.staking_apr) },
        funding,
        stale_spot_steps: spot_stale.iter().filter(|f| **f != 0).count(),
        spot_stale,
        stale_spans: timeline.stale_spans.iter().filter(|s| s.to_ms >= grid_first && s.from_ms <= grid_last).cloned().collect(),
        cash_apr: pick(&timeline.cash_apr),
        borrow_apr: pick(&timeline.borrow_apr),
        spot_high: range(&timeline.spot_high, &timeline.spot),
        spot_low: range(&timeline.spot_low, &timeline.spot),
        uncovered: if timeline.uncovered.is_empty() { Vec::new() } else { source.iter().zip(&real).map(|(&o, &r)| r && timeline.uncovered[o]).collect() },
        coverage: timeline.coverage.clone(),
        coverage_warnings: timeline.coverage_warnings.clone(),
        perp_high: range(&timeline.perp_high, &timeline.perp),
        perp_low: range(&timeline.perp_low, &timeline.perp),
        spot_volume: if timeline.spot_volume.is_empty() { Vec::new() } else { source.iter().zip(&real).map(|(&o, &r)| if r { timeline.spot_volume[o] } else { 0.0 }).collect() },
        perp_volume: if timeline.perp_volume.is_empty() { Vec::new() } else { source.iter().zip(&real).map(|(&o, &r)| if r { timeline.perp_volume[o] } else { 0.0 }).collect() },
        warm_up: timeline.warm_up.clone(),
        ts_ms: grid.to_vec(),
        ..Default::default()
    };
    (out, active)
}
