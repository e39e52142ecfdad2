//! Slippage that depends on the market, as per-step series built before the loop from bars
//! closed by each step (point in time): half the spread the bars imply (Corwin–Schultz or
//! Abdi–Ranaldo), or the square-root law's impact coefficient from trailing volatility and
//! volume. The loop reads them at each fill ([`crate::model::MarketCosts`]).

use crate::model::{CostModel, CostSchedule, MarketCosts, MarketTimeline, SpreadEstimator};

/// The Corwin–Schultz spread of each pair of consecutive bars ending at step `t` (bars `t − 1`
/// and `t`): with β = ln²(H_t/L_t) + ln²(H_{t−1}/L_{t−1}), γ = ln²(max H / min L) over both,
/// α = (√(2β) − √β)/(3 − 2√2) − √(γ/(3 − 2√2)), S = 2(e^α − 1)/(1 + e^α), negative S as 0.
/// NaN at the first step and where a price is missing.
pub fn corwin_schultz(high: &[f64], low: &[f64]) -> Vec<f64> {
    let k = 3.0 - 2.0 * std::f64::consts::SQRT_2;
    (0..high.len())
        .map(|t| {
            if t == 0 {
                return f64::NAN;
            }
            let (h0, l0, h1, l1) = (high[t - 1], low[t - 1], high[t], low[t]);
            if !(h0 > 0.0 && l0 > 0.0 && h1 > 0.0 && l1 > 0.0) {
                return f64::NAN;
            }
            let beta = (h1 / l1).ln().powi(2) + (h0 / l0).ln().powi(2);
            let gamma = (h0.max(h1) / l0.min(l1)).ln().powi(2);
            let alpha = ((2.0 * beta).sqrt() - beta.sqrt()) / k - (gamma / k).sqrt();
            let spread = 2.0 * (alpha.exp() - 1.0) / (1.0 + alpha.exp());
            spread.max(0.0)
        })
        .collect()
}

/// The Abdi–Ranaldo spread at step `t` from bars `t − 1` and `t`: with η the mid-range
/// (ln H + ln L)/2 and c the log close, S² = 4 (c_{t−1} − η_{t−1})(c_{t−1} − η_t), S = √max(S², 0).
/// NaN at the first step and where a price is missing.
pub fn abdi_ranaldo(high: &[f64], low: &[f64], close: &[f64]) -> Vec<f64> {
    (0..high.len())
        .map(|t| {
            if t == 0 || !(high[t - 1] > 0.0 && low[t - 1] > 0.0 && close[t - 1] > 0.0 && high[t] > 0.0 && low[t] > 0.0) {
                return f64::NAN;
            }
            let eta = |i: usize| 0.5 * (high[i].ln() + low[i].ln());
            let c = close[t - 1].ln();
            (4.0 * (c - eta(t - 1)) * (c - eta(t))).max(0.0).sqrt()
        })
        .collect()
}

/// The mean of the finite values of the `window` values ending at each step; NaN until the
/// window is full or while fewer than half of its values are finite.
pub fn trailing_mean(values: &[f64], window: usize) -> Vec<f64> {
    let window = window.max(1);
    let (mut sum, mut count) = (0.0, 0usize);
    let mut out = Vec::with_capacity(values.len());
    for t in 0..values.len() {
        if values[t].is_finite() {
            sum += values[t];
            count += 1;
        }
        if t >= window {
            let gone = values[t - window];
            if gone.is_finite() {
                sum -= gone;
                count -= 1;
            }
        }
        out.push(if t + 1 >= window && 2 * count >= window { sum / count as f64 } else { f64::NAN });
    }
    out
}

/// The square-root law's coefficient at each step: `k` × σ_daily / √ADV, so that an order of
/// `q` base units slips `coefficient × √q` (decimal of price), σ_daily the standard deviation
/// of the log returns of the bars in the trailing `window_days` (steps `t − n + 1 ..= t`),
/// scaled by √(bars a day), and ADV their volume per day. NaN until the window is full, or
/// where volume is missing.
pub fn impact_coefficient(ts_ms: &[i64], close: &[f64], volume: &[f64], window_days: f64, k: f64) -> Vec<f64> {
    let n = ts_ms.len();
    let mut out = vec![f64::NAN; n];
    if n < 3 || volume.len() != n {
        return out;
    }
    let bar_ms = typical_bar_ms(ts_ms);
    let bars = ((window_days * 86_400_000.0) / bar_ms as f64).round().max(2.0) as usize;
    let bars_per_day = 86_400_000.0 / bar_ms as f64;
    // Running sums over the window: returns (and squares), volume.
    let returns: Vec<f64> = (0..n).map(|t| if t == 0 { f64::NAN } else { (close[t] / close[t - 1]).ln() }).collect();
    let (mut r_sum, mut r_sq, mut r_n) = (0.0, 0.0, 0usize);
    let (mut v_sum, mut v_n) = (0.0, 0usize);
    for t in 0..n {
        let add = |x: f64, sum: &mut f64, sq: &mut f64, count: &mut usize, sign: f64| {
            if x.is_finite() {
                *sum += sign * x;
                *sq += sign * x * x;
                if sign > 0.0 {
                    *count += 1;
                } else {
                    *count -= 1;
                }
            }
        };
        add(returns[t], &mut r_sum, &mut r_sq, &mut r_n, 1.0);
        let mut unused = 0.0;
        add(volume[t], &mut v_sum, &mut unused, &mut v_n, 1.0);
        if t >= bars {
            add(returns[t - bars], &mut r_sum, &mut r_sq, &mut r_n, -1.0);
            add(volume[t - bars], &mut v_sum, &mut unused, &mut v_n, -1.0);
        }
        if t + 1 >= bars && r_n >= 2 && 2 * v_n >= bars {
            let mean = r_sum / r_n as f64;
            let variance = ((r_sq - r_n as f64 * mean * mean) / (r_n as f64 - 1.0)).max(0.0);
            let sigma_daily = variance.sqrt() * bars_per_day.sqrt();
            let adv = v_sum / v_n as f64 * bars_per_day;
            if adv > 0.0 {
                out[t] = k * sigma_daily / adv.sqrt();
            }
        }
    }
    out
}

/// The median spacing of the first thousand steps, ms (the bar length).
fn typical_bar_ms(ts_ms: &[i64]) -> i64 {
    let mut gaps: Vec<i64> = ts_ms.windows(2).take(1000).map(|w| w[1] - w[0]).filter(|g| *g > 0).collect();
    gaps.sort_unstable();
    gaps.get(gaps.len() / 2).copied().unwrap_or(3_600_000)
}

/// The per-step costs `schedule`'s models give on `timeline`, and notes for the user (what
/// stands in where the bars say nothing).
pub fn estimate(timeline: &MarketTimeline, schedule: &CostSchedule) -> (MarketCosts, Vec<String>) {
    let mut notes = Vec::new();
    let mut costs = MarketCosts::default();
    // The bars before the window first (where kept), so the trailing windows are full, point in
    // time, from the window's first step; their own values are dropped after.
    let empty = crate::model::WarmUp::default();
    let warm = timeline.warm_up.as_deref().unwrap_or(&empty);
    let skip = warm.ts_ms.len();
    let join = |before: &[f64], during: &[f64]| -> Vec<f64> { before.iter().chain(during).copied().collect() };
    let or_close = |range: &[f64], close: &[f64]| -> Vec<f64> { if range.len() == close.len() { range.to_vec() } else { close.to_vec() } };
    let ts: Vec<i64> = warm.ts_ms.iter().chain(&timeline.ts_ms).copied().collect();
    for (leg, model) in [("spot", schedule.spot_cost_model()), ("perp", schedule.perp_cost_model())] {
        let (close, high, low, volume) = if leg == "spot" {
            (join(&warm.spot, &timeline.spot), join(&warm.spot_high, &or_close(&timeline.spot_high, &timeline.spot)), join(&warm.spot_low, &or_close(&timeline.spot_low, &timeline.spot)), join(&warm.spot_volume, &timeline.spot_volume))
        } else {
            (join(&warm.perp, &timeline.perp), join(&warm.perp_high, &or_close(&timeline.perp_high, &timeline.perp)), join(&warm.perp_low, &or_close(&timeline.perp_low, &timeline.perp)), join(&warm.perp_volume, &timeline.perp_volume))
        };
        let volume = if volume.len() == ts.len() { volume } else { vec![f64::NAN; ts.len()] };
        match model {
            // The book is read from its own files (`data::book`), not from the bars.
            CostModel::FixedBps | CostModel::Orderbook => {}
            CostModel::SpreadFromBars => {
                let spreads = match schedule.spread_estimator {
                    SpreadEstimator::CorwinSchultz => corwin_schultz(&high, &low),
                    SpreadEstimator::AbdiRanaldo => abdi_ranaldo(&high, &low, &close),
                };
                // Half the spread: a market order crosses from the mid to one side.
                let half: Vec<f64> = trailing_mean(&spreads, schedule.spread_window_bars).into_iter().skip(skip).map(|s| 0.5 * s).collect();
                let unknown = half.iter().take_while(|h| !h.is_finite()).count();
                if unknown > 0 {
                    notes.push(format!("costs: {leg} spread_from_bars has no estimate for the window's first {unknown} step(s) (fewer than {} bars with a range before them): the fixed slippage stands in there", schedule.spread_window_bars));
                }
                if leg == "spot" {
                    costs.spot_slippage = half;
                } else {
                    costs.perp_slippage = half;
                }
            }
            CostModel::SqrtImpact => {
                if volume.iter().all(|v| !v.is_finite()) {
                    notes.push(format!("costs: {leg} sqrt_impact needs the bars' volume and the {leg} source has none: no impact is charged on the {leg} leg"));
                }
                let coefficient: Vec<f64> = impact_coefficient(&ts, &close, &volume, schedule.impact_window_days, schedule.impact_k).into_iter().skip(skip).collect();
                let unknown = coefficient.iter().take_while(|c| !c.is_finite()).count();
                if unknown > 0 && volume.iter().any(|v| v.is_finite()) {
                    notes.push(format!("costs: {leg} sqrt_impact has no estimate for the window's first {unknown} step(s) (fewer than {} days of bars before them): no impact is charged there", schedule.impact_window_days));
                }
                if leg == "spot" {
                    costs.spot_impact = coefficient;
                } else {
                    costs.perp_impact = coefficient;
                }
            }
        }
    }
    (costs, notes)
}
