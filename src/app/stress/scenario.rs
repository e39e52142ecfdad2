//! Named stress scenarios: each turns the baseline market (and engine settings) into a
//! stressed copy. Prices, funding and costs change only from the scenario's start on, so the
//! path before it is the history itself.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::config::{parse_time_ms, FundingFormat, FundingSource};
use crate::data::align::MarketTimeline;
use crate::model::funding::step_of;
use crate::model::Settlement;
use crate::data::quality::stale;
use crate::sim::forced::{DefaultedLeg, Forced, ForcedEvent};
use crate::sim::EngineParams;
use crate::time::{MS_PER_DAY, MS_PER_HOUR};
use crate::{bail_input, input_error};

/// One scenario, as written in the stress file (`kind = "..."`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Scenario {
    /// Spot, perp and mark move by `pct` (decimal, signed) linearly over `hours` and stay there;
    /// the perp (and mark) may overshoot by `perp_overshoot_pct` at the end of the move, decaying
    /// back over the same number of hours.
    PriceShock {
        /// Label in tables and legends; default: one built from the parameters.
        name: Option<String>,
        /// When the stress starts: a date or RFC 3339 time (UTC); default: the middle of the run.
        at: Option<String>,
        /// Size of the move, signed decimal (-0.3 = -30 %); must be > -1.
        pct: f64,
        /// Length of the linear move, hours (0: all at once).
        hours: f64,
        /// Extra perp and mark move at the end of the shock, signed decimal; 0: none.
        #[serde(default)]
        perp_overshoot_pct: f64,
    },
    /// Settlements in [at, at + days) replaced by `rate_per_8h` (scaled to each interval), or
    /// multiplied by `scale`, or set to the venue's floor (`to_floor = true`).
    FundingFlip {
        /// Label in tables and legends; default: one built from the parameters.
        name: Option<String>,
        /// When the stress starts: a date or RFC 3339 time (UTC); default: the middle of the run.
        at: Option<String>,
        /// How long the flip lasts, days.
        days: f64,
        /// Rate that replaces each settlement, decimal per 8 h (scaled to each settlement's interval).
        rate_per_8h: Option<f64>,
        /// Factor each settlement's rate is multiplied by.
        scale: Option<f64>,
        /// Set each settlement to the venue's funding floor.
        #[serde(default)]
        to_floor: bool,
    },
    /// Perp and mark over spot widened by `bp` (+: premium, which hurts a short perp) over
    /// [at, at + hours].
    BasisBlowout {
        /// Label in tables and legends; default: one built from the parameters.
        name: Option<String>,
        /// When the stress starts: a date or RFC 3339 time (UTC); default: the middle of the run.
        at: Option<String>,
        /// Widening of perp and mark over spot, bps (+: perp premium).
        bp: f64,
        /// How long the widening lasts, hours.
        hours: f64,
    },
    /// The spot leg (a liquid-staking token) falls `pct` against its underlying over `hours`,
    /// then recovers linearly over `recover_days` (0: never). The perp hedges the underlying,
    /// so it does not move.
    Depeg {
        /// Label in tables and legends; default: one built from the parameters.
        name: Option<String>,
        /// When the stress starts: a date or RFC 3339 time (UTC); default: the middle of the run.
        at: Option<String>,
        /// Depth of the depeg, decimal in (0, 1) (0.05 = spot leg 5 % below its underlying).
        pct: f64,
        /// Time for the spot leg to fall to the full depeg, hours (0: at once).
        hours: f64,
        /// Time to recover linearly to the peg after the fall, days (0: never recovers).
        #[serde(default)]
        recover_days: f64,
    },
    /// No rebalancing or margin top-up for `hours`: the strategy's decisions stop, but the
    /// venue keeps liquidating, so a breach inside the outage is liquidated in its bar, by
    /// the venue's rule.
    Outage {
        /// Label in tables and legends; default: one built from the parameters.
        name: Option<String>,
        /// When the stress starts: a date or RFC 3339 time (UTC); default: the middle of the run.
        at: Option<String>,
        /// Length of the outage, hours.
        hours: f64,
    },
    /// Slippage on every fill multiplied by `k` for the whole run.
    LiquidityDrought {
        /// Label in tables and legends; default: one built from the parameters.
        name: Option<String>,
        /// Factor on spot and perp slippage (>= 0).
        k: f64,
    },
    /// The config's own history between `from` and `to` (a historical episode).
    Replay {
        /// Label in tables and legends; default: one built from the parameters.
        name: Option<String>,
        /// Start of the episode: a date or RFC 3339 time (UTC).
        from: String,
        /// End of the episode: a date or RFC 3339 time (UTC).
        to: String,
    },
    /// Another symbol's funding from Binance funding dumps (`path` glob), between `from` and `to`,
    /// transplanted onto this market from `at`: e.g. SOLUSDT's FTX week (−2 % on 2 h settlements).
    FundingReplay {
        /// Label in tables and legends; default: one built from the parameters.
        name: Option<String>,
        /// Binance funding CSV file or glob; relative paths are from the stress file's folder.
        path: String,
        /// Symbol whose funding is replayed, e.g. `SOLUSDT`.
        symbol: String,
        /// First settlement time to take from the files: a date or RFC 3339 time (UTC).
        from: String,
        /// Last settlement time to take from the files: a date or RFC 3339 time (UTC).
        to: String,
        /// When the transplanted funding starts on this market: a date or RFC 3339 time (UTC);
        /// default: the middle of the run.
        at: Option<String>,
    },
    /// The venue holding the perp (or, `leg = "all"`, everything) stops paying out at `at`, as
    /// FTX did: its assets are written off, and `recovery_rate` of them comes back after
    /// `recovery_days`. The surviving leg follows `after_liquidation`.
    VenueDefault {
        /// Label in tables and legends; default: one built from the parameters.
        name: Option<String>,
        /// When the venue fails: a date or RFC 3339 time (UTC); default: the middle of the run.
        at: Option<String>,
        /// `perp` (the perp venue's margin and position) or `all` (one venue holding everything).
        #[serde(default)]
        leg: DefaultedLeg,
        /// Share of the frozen value recovered, decimal in [0, 1] (0: all lost).
        #[serde(default)]
        recovery_rate: f64,
        /// Days from the default to the recovery.
        #[serde(default)]
        recovery_days: f64,
    },
    /// Auto-deleveraging at `at`: the venue closes `share` of the perp at the mark when it is in
    /// profit, leaving the hedge short until the strategy re-hedges.
    Adl {
        /// Label in tables and legends; default: one built from the parameters.
        name: Option<String>,
        /// When: a date or RFC 3339 time (UTC); default: the middle of the run.
        at: Option<String>,
        /// Share of the perp closed, decimal in (0, 1].
        share: f64,
    },
    /// Slippage on every fill multiplied by `k` over [at, at + hours).
    SlippageSpike {
        /// Label in tables and legends; default: one built from the parameters.
        name: Option<String>,
        /// When the spike starts: a date or RFC 3339 time (UTC); default: the middle of the run.
        at: Option<String>,
        /// Factor on slippage, >= 0.
        k: f64,
        /// How long it lasts, hours.
        hours: f64,
    },
    /// Several scenarios on one path, applied in order: e.g. a crash, a funding flip, a perp
    /// discount and a slippage spike. With `at`, part k starts at `at` + `offsets_hours[k]`
    /// (its own `at` is ignored); without it, each part keeps its own `at`.
    Combined {
        /// Label in tables and legends; default: the parts' labels joined with " + ".
        name: Option<String>,
        /// The start the offsets count from: a date or RFC 3339 time (UTC).
        at: Option<String>,
        /// Hours after `at` at which each part starts (default 0 for every part).
        #[serde(default)]
        offsets_hours: Vec<f64>,
        /// The scenarios, as `[[scenario.parts]]` tables with their own `kind`.
        parts: Vec<Scenario>,
    },
}

impl Scenario {
    /// Label in tables and legends.
    pub fn label(&self) -> String {
        let pct = |x: f64| format!("{:+.0} %", x * 100.0);
        match self {
            Scenario::PriceShock { name: Some(n), .. }
            | Scenario::FundingFlip { name: Some(n), .. }
            | Scenario::BasisBlowout { name: Some(n), .. }
            | Scenario::Depeg { name: Some(n), .. }
            | Scenario::Outage { name: Some(n), .. }
            | Scenario::LiquidityDrought { name: Some(n), .. }
            | Scenario::Replay { name: Some(n), .. }
            | Scenario::FundingReplay { name: Some(n), .. }
            | Scenario::VenueDefault { name: Some(n), .. }
            | Scenario::Adl { name: Some(n), .. }
            | Scenario::SlippageSpike { name: Some(n), .. }
            | Scenario::Combined { name: Some(n), .. } => n.clone(),
            Scenario::PriceShock { pct: p, hours, .. } => format!("price {} over {hours} h", pct(*p)),
            Scenario::FundingFlip { days, rate_per_8h, scale, to_floor, .. } => match (rate_per_8h, scale, to_floor) {
                (Some(r), _, _) => format!("funding {:+.3} %/8 h for {days} d", r * 100.0),
                (_, Some(s), _) => format!("funding x{s} for {days} d"),
                _ => format!("funding at the floor for {days} d"),
            },
            Scenario::BasisBlowout { bp, hours, .. } => format!("basis {bp:+} bp for {hours} h"),
            Scenario::Depeg { pct: p, .. } => format!("spot-leg depeg -{:.0} %", p * 100.0),
            Scenario::Outage { hours, .. } => format!("outage {hours} h"),
            Scenario::LiquidityDrought { k, .. } => format!("slippage x{k}"),
            Scenario::Replay { from, to, .. } => format!("replay {from} to {to}"),
            Scenario::FundingReplay { symbol, from, .. } => format!("{symbol} funding from {from}"),
            Scenario::VenueDefault { leg, recovery_rate, .. } => {
                format!("{} venue default, {:.0} % recovered", if *leg == DefaultedLeg::All { "whole" } else { "perp" }, recovery_rate * 100.0)
            }
            Scenario::Adl { share, .. } => format!("ADL {:.0} % of the perp", share * 100.0),
            Scenario::SlippageSpike { k, hours, .. } => format!("slippage x{k} for {hours} h"),
            Scenario::Combined { parts, .. } => parts.iter().map(Scenario::label).collect::<Vec<_>>().join(" + "),
        }
    }
}

/// A stressed market and engine settings, and when the stress starts.
pub struct Stressed {
    /// The stressed copy of the market (or, for a replay, the realigned episode).
    pub timeline: MarketTimeline,
    /// Engine settings for the stressed run (changed by outage and liquidity drought).
    pub params: EngineParams,
    /// Time of the first stressed step, epoch ms UTC (a replay's or drought's first step).
    pub start_ms: i64,
}

/// First step at or after `at` (default: the middle of the run).
fn start_step(timeline: &MarketTimeline, at: &Option<String>) -> Result<usize> {
    let Some(at) = at else { return Ok(timeline.len() / 2) };
    let t = parse_time_ms("scenario.at", at)?;
    let i = timeline.ts_ms.partition_point(|&s| s < t);
    if i >= timeline.len() {
        bail_input!("scenario at = {at:?} is after the run's last step; choose a time inside the window");
    }
    Ok(i)
}

/// Multiply the perp-side prices (perp, mark, its high/low, funding prices) at step i by f(i).
fn scale_perp(t: &mut MarketTimeline, from: usize, f: impl Fn(usize) -> f64) {
    for i in from..t.len() {
        let k = f(i);
        t.perp[i] *= k;
        // Without a mark series the perp's last is the mark: scaled with it.
        if !t.mark.is_empty() {
            t.mark[i] *= k;
        }
        t.mark_high[i] *= k;
        t.mark_low[i] *= k;
    }
    let (after_ms, last_ms) = (if from == 0 { i64::MIN } else { t.ts_ms[from - 1] }, t.ts_ms.last().copied().unwrap_or(i64::MIN));
    let range = t.funding.between(after_ms, last_ms);
    for e in t.funding[range].iter_mut().filter(|e| e.is_paid()) {
        e.price *= f(step_of(&t.ts_ms, e.settle_ms));
    }
}

impl Scenario {
    /// The factor a scenario puts on every fill's slippage for the whole run (a liquidity
    /// drought's `k`; within a combination, the product of its droughts'), applied to a market
    /// cost model's series too.
    pub fn slippage_factor(&self) -> Option<f64> {
        match self {
            Scenario::LiquidityDrought { k, .. } => Some(*k),
            Scenario::Combined { parts, .. } => parts.iter().filter_map(Scenario::slippage_factor).reduce(|a, b| a * b),
            _ => None,
        }
    }
}

/// Apply a scenario to the baseline. `replay` realigns the config's own data for a window.
pub fn apply(
    scenario: &Scenario,
    base: &MarketTimeline,
    params: &EngineParams,
    floor_at: &dyn Fn(i64, f64) -> Option<f64>,
    replay: &dyn Fn(i64, i64) -> Result<MarketTimeline>,
) -> Result<Stressed> {
    let mut t = base.clone();
    let mut p = params.clone();
    let hours_between = |t: &MarketTimeline, a: usize, b: usize| (t.ts_ms[b] - t.ts_ms[a]) as f64 / MS_PER_HOUR as f64;
    let start_ms;
    match scenario {
        Scenario::PriceShock { at, pct, hours, perp_overshoot_pct, .. } => {
            if !(*pct > -1.0 && *hours >= 0.0) {
                bail_input!("price_shock: pct must be > -1 (a decimal, e.g. 0.3 = +30 %) and hours >= 0");
            }
            let i0 = start_step(&t, at)?;
            start_ms = t.ts_ms[i0];
            let ramp = |x: f64| if *hours <= 0.0 { 1.0 } else { (x / hours).clamp(0.0, 1.0) };
            let level: Vec<f64> = (0..t.len()).map(|i| if i < i0 { 1.0 } else { 1.0 + pct * ramp(hours_between(&t, i0, i) + 1.0) }).collect();
            let overshoot: Vec<f64> = (0..t.len())
                .map(|i| {
                    if i < i0 || *perp_overshoot_pct == 0.0 {
                        return 1.0;
                    }
                    let h = hours_between(&t, i0, i) + 1.0;
                    let span = hours.max(1.0);
                    let shape = if h <= span { h / span } else { (1.0 - (h - span) / span).max(0.0) };
                    1.0 + perp_overshoot_pct * shape
                })
                .collect();
            for (spot, k) in t.spot.iter_mut().zip(&level).skip(i0) {
                *spot *= k;
            }
            scale_perp(&mut t, i0, |i| level[i] * overshoot[i]);
        }
        Scenario::FundingFlip { at, days, rate_per_8h, scale, to_floor, .. } => {
            let i0 = start_step(&t, at)?;
            start_ms = t.ts_ms[i0];
            let end = start_ms + (days * MS_PER_DAY as f64) as i64;
            if rate_per_8h.is_some() as u8 + scale.is_some() as u8 + *to_floor as u8 != 1 {
                bail_input!("funding_flip: give exactly one of rate_per_8h, scale or to_floor = true");
            }
            // The settlements inside the window from the start on (those the run pays, and the
            // trailing signals read); the ones before the window stay as printed.
            let inside = t.funding.between(t.ts_ms[0], t.ts_ms[t.len() - 1]);
            for e in t.funding[inside].iter_mut().filter(|e| e.settle_ms >= start_ms && e.settle_ms < end) {
                e.rate = match (rate_per_8h, scale) {
                    (Some(r), _) => r * e.interval_hours / 8.0,
                    (_, Some(s)) => e.rate * s,
                    _ => floor_at(e.settle_ms, e.interval_hours)
                        .ok_or_else(|| input_error!("funding_flip to_floor: the venue has no floor; set [venue] preset or funding_floor"))?,
                };
            }
        }
        Scenario::BasisBlowout { at, bp, hours, .. } => {
            let i0 = start_step(&t, at)?;
            start_ms = t.ts_ms[i0];
            let end = start_ms + (hours * MS_PER_HOUR as f64) as i64;
            let ts = t.ts_ms.clone();
            scale_perp(&mut t, i0, |i| if ts[i] <= end { 1.0 + bp / 1e4 } else { 1.0 });
        }
        Scenario::Depeg { at, pct, hours, recover_days, .. } => {
            if !(*pct > 0.0 && *pct < 1.0) {
                bail_input!("depeg: pct must be in (0, 1), e.g. 0.05 for a 5 % depeg");
            }
            let i0 = start_step(&t, at)?;
            start_ms = t.ts_ms[i0];
            let recover_hours = recover_days * 24.0;
            for i in i0..t.len() {
                let h = hours_between(&t, i0, i) + 1.0;
                let down = if *hours <= 0.0 { 1.0 } else { (h / hours).min(1.0) };
                let up = if recover_hours <= 0.0 { 0.0 } else { ((h - hours) / recover_hours).clamp(0.0, 1.0) };
                t.spot[i] *= 1.0 - pct * down * (1.0 - up);
            }
        }
        Scenario::Outage { at, hours, .. } => {
            let i0 = start_step(&t, at)?;
            start_ms = t.ts_ms[i0];
            let end = start_ms + (hours * MS_PER_HOUR as f64) as i64;
            for i in i0..t.len() {
                if t.ts_ms[i] < end {
                    t.spot_stale[i] |= stale::GAP;
                }
            }
            p.mask_stale_spot = true;
        }
        Scenario::LiquidityDrought { k, .. } => {
            if k.is_nan() || *k < 0.0 {
                bail_input!("liquidity_drought: k must be >= 0");
            }
            start_ms = t.ts_ms[0];
            p.costs.spot_slippage *= k;
            p.costs.perp_slippage *= k;
        }
        Scenario::Replay { from, to, .. } => {
            let (from, to) = (parse_time_ms("replay.from", from)?, parse_time_ms("replay.to", to)?);
            t = replay(from, to)?;
            start_ms = t.ts_ms[0];
        }
        Scenario::FundingReplay { path, symbol, from, to, at, .. } => {
            let (from, to) = (parse_time_ms("funding_replay.from", from)?, parse_time_ms("funding_replay.to", to)?);
            let source = FundingSource::new(FundingFormat::BinanceFunding, path.as_str());
            let series = crate::data::binance::load_funding(&source, symbol, &mut Vec::new(), &mut Vec::new())?;
            let i0 = start_step(&t, at)?;
            start_ms = t.ts_ms[i0];
            let span = to - from;
            let mut settlements = std::mem::take(&mut t.funding).into_vec();
            // The span's own settlements inside the window give way to the replayed ones; those at
            // or before the first step stay (the signals' history before the window).
            let first_ms = t.ts_ms[0];
            settlements.retain(|e| e.settle_ms <= first_ms || e.settle_ms < start_ms || e.settle_ms > start_ms + span);
            for replayed in series.iter().filter(|s| s.settle_ms >= from && s.settle_ms <= to) {
                let settle_ms = start_ms + (replayed.settle_ms - from);
                let step = step_of(&t.ts_ms, settle_ms);
                if step == 0 || step >= t.len() {
                    continue;
                }
                settlements.push(Settlement { settle_ms, rate: replayed.rate, interval_hours: replayed.interval_hours, price: t.mark_prices()[step] });
            }
            settlements.sort_by_key(|e| e.settle_ms);
            t.funding = settlements.into();
        }
        Scenario::VenueDefault { at, leg, recovery_rate, recovery_days, .. } => {
            if !(0.0..=1.0).contains(recovery_rate) || !(*recovery_days >= 0.0) {
                bail_input!("venue_default: recovery_rate must be in [0, 1] and recovery_days >= 0");
            }
            let i0 = start_step(&t, at)?;
            start_ms = t.ts_ms[i0];
            let event = Forced::VenueDefault { leg: *leg, recovery_rate: *recovery_rate, recovery_delay_ms: (recovery_days * MS_PER_DAY as f64).round() as i64 };
            add_forced(&mut p, start_ms, event);
        }
        Scenario::Adl { at, share, .. } => {
            if !(*share > 0.0 && *share <= 1.0) {
                bail_input!("adl: share must be in (0, 1], e.g. 0.5 for half the perp");
            }
            let i0 = start_step(&t, at)?;
            start_ms = t.ts_ms[i0];
            add_forced(&mut p, start_ms, Forced::Adl { share: *share });
        }
        Scenario::SlippageSpike { at, k, hours, .. } => {
            if !(*k >= 0.0 && *hours > 0.0) {
                bail_input!("slippage_spike: k must be >= 0 and hours > 0");
            }
            let i0 = start_step(&t, at)?;
            start_ms = t.ts_ms[i0];
            add_forced(&mut p, start_ms, Forced::SlippageSpike { multiplier: *k, duration_ms: (hours * MS_PER_HOUR as f64).round() as i64 });
        }
        Scenario::Combined { at, offsets_hours, parts, .. } => {
            if parts.is_empty() {
                bail_input!("combined: give at least one scenario in `parts`");
            }
            if !offsets_hours.is_empty() && offsets_hours.len() != parts.len() {
                bail_input!("combined: offsets_hours has {} values for {} parts; give one per part (or none)", offsets_hours.len(), parts.len());
            }
            let origin = at.as_deref().map(|a| parse_time_ms("combined.at", a)).transpose()?;
            let mut first = i64::MAX;
            for (k, part) in parts.iter().enumerate() {
                if matches!(part, Scenario::Combined { .. } | Scenario::Replay { .. }) {
                    bail_input!("combined: part {} cannot be a `{}` scenario; combine the others", k + 1, if matches!(part, Scenario::Replay { .. }) { "replay" } else { "combined" });
                }
                let mut part = part.clone();
                if let (Some(origin), Some(slot)) = (origin, part.at_mut()) {
                    let offset_ms = (offsets_hours.get(k).copied().unwrap_or(0.0) * MS_PER_HOUR as f64).round() as i64;
                    *slot = Some(crate::time::format_ms(origin + offset_ms).replace(' ', "T"));
                }
                let stressed = apply(&part, &t, &p, floor_at, replay)?;
                t = stressed.timeline;
                p = stressed.params;
                first = first.min(stressed.start_ms);
            }
            start_ms = first;
        }
    }
    Ok(Stressed { timeline: t, params: p, start_ms })
}

/// Add a forced event to the engine's list, keeping it in time order.
fn add_forced(p: &mut EngineParams, at_ms: i64, event: Forced) {
    p.forced.push(ForcedEvent { at_ms, event });
    p.forced.sort_by_key(|e| e.at_ms);
}

impl Scenario {
    /// The scenario's start time, where it has one (for `combined` offsets).
    fn at_mut(&mut self) -> Option<&mut Option<String>> {
        match self {
            Scenario::PriceShock { at, .. }
            | Scenario::FundingFlip { at, .. }
            | Scenario::BasisBlowout { at, .. }
            | Scenario::Depeg { at, .. }
            | Scenario::Outage { at, .. }
            | Scenario::FundingReplay { at, .. }
            | Scenario::VenueDefault { at, .. }
            | Scenario::Adl { at, .. }
            | Scenario::SlippageSpike { at, .. } => Some(at),
            Scenario::LiquidityDrought { .. } | Scenario::Replay { .. } | Scenario::Combined { .. } => None,
        }
    }
}

