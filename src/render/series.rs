//! The numbers behind the charts, computed from a run's ledger and settlements: min/max
//! decimation for drawing long series, the underwater curve, rolling carry APR, monthly returns
//! and event markers. Pure functions over slices, so each is tested on hand-made input.

use chrono::Datelike;

use crate::measure::ledger::{events, FundingPayment};
use crate::time::{MS_PER_DAY, MS_PER_YEAR};

/// A drawable polyline: (epoch ms, value) points.
pub type Polyline = Vec<(i64, f64)>;

/// Reduce a series to at most about `4 × buckets` points for drawing while keeping its shape:
/// each bucket of consecutive points keeps its first, minimum, maximum and last point, in time
/// order, so a one-step spike (a liquidation, a funding cap hit) survives at any zoom.
///
/// Non-finite values (a margin distance while flat, say) break the line: the result is one
/// polyline per finite run. Every kept point is an original point, unchanged.
pub fn decimate_min_max(ts_ms: &[i64], values: &[f64], buckets: usize) -> Vec<Polyline> {
    let n = ts_ms.len().min(values.len());
    let bucket_len = n.div_ceil(buckets.max(1)).max(1);
    let mut lines = Vec::new();
    let mut start = 0;
    while start < n {
        while start < n && !values[start].is_finite() {
            start += 1;
        }
        let mut end = start;
        while end < n && values[end].is_finite() {
            end += 1;
        }
        if end > start {
            lines.push(decimate_run(&ts_ms[start..end], &values[start..end], bucket_len));
        }
        start = end;
    }
    lines
}

/// Decimate one run of finite values with a fixed bucket length.
fn decimate_run(ts_ms: &[i64], values: &[f64], bucket_len: usize) -> Polyline {
    if bucket_len <= 4 {
        return ts_ms.iter().copied().zip(values.iter().copied()).collect();
    }
    let mut out = Vec::with_capacity(4 * ts_ms.len().div_ceil(bucket_len));
    let mut from = 0;
    while from < ts_ms.len() {
        let to = (from + bucket_len).min(ts_ms.len());
        let (mut lo, mut hi) = (from, from);
        for i in from..to {
            if values[i] < values[lo] {
                lo = i;
            }
            if values[i] > values[hi] {
                hi = i;
            }
        }
        let mut keep = [from, lo, hi, to - 1];
        keep.sort_unstable();
        let mut last = usize::MAX;
        for i in keep {
            if i != last {
                out.push((ts_ms[i], values[i]));
                last = i;
            }
        }
        from = to;
    }
    out
}

/// The underwater curve and its extremes.
#[derive(Debug, Clone, PartialEq)]
pub struct Underwater {
    /// Equity / running peak − 1 at each step (≤ 0).
    pub drawdown: Vec<f64>,
    /// The deepest drawdown, decimal (≤ 0; 0 when equity never fell below a peak).
    pub max_drawdown: f64,
    /// Step index of the deepest drawdown's trough; None when equity never fell below a peak.
    pub trough_index: Option<usize>,
    /// The longest stretch below a previous peak, from the peak's time to the last step still
    /// below it (as `metrics.max_drawdown_duration_days` counts it): its start, epoch ms UTC.
    pub longest_from_ms: i64,
    /// End of that stretch: the last step still below the peak, epoch ms UTC.
    pub longest_to_ms: i64,
}

/// Drawdown from the running peak of equity, the peak starting at the initial capital at the
/// first step (the engine's convention, so the chart and metrics.json agree).
pub fn underwater(ts_ms: &[i64], equity: &[f64], initial_capital: f64) -> Underwater {
    let mut result = Underwater {
        drawdown: Vec::with_capacity(equity.len()),
        max_drawdown: 0.0,
        trough_index: None,
        longest_from_ms: 0,
        longest_to_ms: 0,
    };
    let Some(&first_ms) = ts_ms.first() else { return result };
    let (mut peak, mut peak_ms) = (initial_capital, first_ms);
    for (i, (&ms, &value)) in ts_ms.iter().zip(equity).enumerate() {
        if value >= peak {
            peak = value;
            peak_ms = ms;
            result.drawdown.push(0.0);
            continue;
        }
        let drawdown = value / peak - 1.0;
        result.drawdown.push(drawdown);
        if drawdown < result.max_drawdown {
            result.max_drawdown = drawdown;
            result.trough_index = Some(i);
        }
        if ms - peak_ms > result.longest_to_ms - result.longest_from_ms {
            result.longest_from_ms = peak_ms;
            result.longest_to_ms = ms;
        }
    }
    result
}

/// Trailing-window carry, annualised, at each step.
#[derive(Debug, Clone, PartialEq)]
pub struct RollingCarry {
    /// Σ side × rate over settlements held in the window, × year / window (NaN before a full window).
    pub funding_rate_apr: Vec<f64>,
    /// (funding + staking + borrow PnL in the window) / equity at the window's start, × year / window.
    pub carry_return_apr: Vec<f64>,
}

/// Rolling realised carry over `window_days`, evaluated at each step. `carry_pnl` is the per-step
/// funding + staking + borrow PnL. Values start once a full window has passed since the first step.
pub fn rolling_carry(ts_ms: &[i64], equity: &[f64], carry_pnl: &[f64], settlements: &[FundingPayment], window_days: f64) -> RollingCarry {
    let n = ts_ms.len();
    let window_ms = (window_days * MS_PER_DAY as f64) as i64;
    let per_year = MS_PER_YEAR / window_ms as f64;
    let mut out = RollingCarry { funding_rate_apr: vec![f64::NAN; n], carry_return_apr: vec![f64::NAN; n] };
    let Some(&first_ms) = ts_ms.first() else { return out };

    let held: Vec<(i64, f64)> = settlements.iter().filter(|s| s.held).map(|s| (s.settlement.settle_ms, -s.perp_qty.signum() * s.settlement.rate)).collect();
    // Prefix sums: carry PnL through step i, and side × rate through settlement k.
    let mut carry_cum = Vec::with_capacity(n);
    let mut total = 0.0;
    for &x in carry_pnl {
        total += x;
        carry_cum.push(total);
    }
    let mut rate_cum = Vec::with_capacity(held.len() + 1);
    rate_cum.push(0.0);
    for &(_, r) in &held {
        rate_cum.push(rate_cum[rate_cum.len() - 1] + r);
    }

    let (mut start, mut rate_lo, mut rate_hi) = (0usize, 0usize, 0usize);
    for i in 0..n {
        let now = ts_ms[i];
        if now - first_ms < window_ms {
            continue;
        }
        // Settlements in (now − window, now]; steps: the window opens at the last step at or before now − window.
        while rate_hi < held.len() && held[rate_hi].0 <= now {
            rate_hi += 1;
        }
        while rate_lo < rate_hi && held[rate_lo].0 <= now - window_ms {
            rate_lo += 1;
        }
        while start + 1 < n && ts_ms[start + 1] <= now - window_ms {
            start += 1;
        }
        out.funding_rate_apr[i] = (rate_cum[rate_hi] - rate_cum[rate_lo]) * per_year;
        if equity[start] > 0.0 {
            out.carry_return_apr[i] = (carry_cum[i] - carry_cum[start]) / equity[start] * per_year;
        }
    }
    out
}

/// Mean of the values in the trailing window (t − window, t] at each step; NaN values are skipped.
pub fn trailing_mean(ts_ms: &[i64], values: &[f64], window_ms: i64) -> Vec<f64> {
    let mut out = Vec::with_capacity(values.len());
    let (mut sum, mut count, mut start) = (0.0, 0usize, 0usize);
    for i in 0..values.len() {
        if values[i].is_finite() {
            sum += values[i];
            count += 1;
        }
        while ts_ms[start] <= ts_ms[i] - window_ms {
            if values[start].is_finite() {
                sum -= values[start];
                count -= 1;
            }
            start += 1;
        }
        out.push(if count > 0 { sum / count as f64 } else { f64::NAN });
    }
    out
}

/// One calendar month's return.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonthReturn {
    /// Calendar year (UTC).
    pub year: i32,
    /// 1–12.
    pub month: u32,
    /// Equity at the month's last step / equity at the previous month's last step − 1 (the first
    /// month against the initial capital).
    pub value: f64,
}

/// Monthly returns. A step at exactly 00:00 on the 1st closes a bar of the previous month, so it
/// counts there (as funding years do).
pub fn monthly_returns(ts_ms: &[i64], equity: &[f64], initial_capital: f64) -> Vec<MonthReturn> {
    let mut out: Vec<MonthReturn> = Vec::new();
    let mut previous_close = initial_capital;
    let mut current: Option<(i32, u32, f64)> = None;
    for (&ms, &value) in ts_ms.iter().zip(equity) {
        let Some(dt) = chrono::DateTime::from_timestamp_millis(ms - 1) else { continue };
        let key = (dt.year(), dt.month());
        match current {
            Some((y, m, close)) if (y, m) != key => {
                out.push(MonthReturn { year: y, month: m, value: close / previous_close - 1.0 });
                previous_close = close;
                current = Some((key.0, key.1, value));
            }
            _ => current = Some((key.0, key.1, value)),
        }
    }
    if let Some((y, m, close)) = current {
        out.push(MonthReturn { year: y, month: m, value: close / previous_close - 1.0 });
    }
    out
}

/// Compounded return of each calendar year present in `months`.
pub fn yearly_from_monthly(months: &[MonthReturn]) -> Vec<(i32, f64)> {
    let mut out: Vec<(i32, f64)> = Vec::new();
    for m in months {
        match out.last_mut() {
            Some((y, growth)) if *y == m.year => *growth = (1.0 + *growth) * (1.0 + m.value) - 1.0,
            _ => out.push((m.year, m.value)),
        }
    }
    out
}

/// The kinds of events marked on time charts, with their ledger flag.
pub const EVENT_KINDS: [(u8, &str); 5] = [
    (events::ENTRY, "entry"),
    (events::EXIT, "exit"),
    (events::REBALANCE, "rebalance"),
    (events::TOP_UP, "margin top-up"),
    (events::LIQUIDATION, "liquidation"),
];

/// Step indices carrying `flag`, thinned to at most one per `buckets`-th of the time span (a
/// year of 1-minute rebalances would otherwise paint a solid bar). Liquidations, entries and
/// exits are rare and kept whole by passing `buckets = usize::MAX`.
pub fn event_steps(ts_ms: &[i64], event_flags: &[i32], flag: u8, buckets: usize) -> Vec<usize> {
    let (Some(&first), Some(&last)) = (ts_ms.first(), ts_ms.last()) else { return Vec::new() };
    let span = (last - first).max(1) as f64;
    let mut out = Vec::new();
    let mut last_bucket = usize::MAX;
    for (i, &flags) in event_flags.iter().enumerate() {
        if flags & i32::from(flag) == 0 {
            continue;
        }
        let bucket = if buckets == usize::MAX { i } else { ((ts_ms[i] - first) as f64 / span * buckets as f64) as usize };
        if bucket != last_bucket {
            out.push(i);
            last_bucket = bucket;
        }
    }
    out
}

/// Whether a settlement's rate sits at the cap or the floor (within 1e-9, as venues print caps exactly).
pub fn at_limit(rate: f64, cap: Option<f64>, floor: Option<f64>) -> bool {
    cap.is_some_and(|c| rate >= c - 1e-9) || floor.is_some_and(|f| rate <= f + 1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimation_keeps_spikes_and_endpoints() {
        let ts: Vec<i64> = (0..10_000).collect();
        let mut values = vec![1.0; 10_000];
        values[4_321] = 50.0;
        values[7_777] = -20.0;
        values[9_999] = 2.0;
        let lines = decimate_min_max(&ts, &values, 100);
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert!(line.len() <= 400, "{} points", line.len());
        assert!(line.contains(&(4_321, 50.0)) && line.contains(&(7_777, -20.0)));
        assert_eq!(line.first(), Some(&(0, 1.0)));
        assert_eq!(line.last(), Some(&(9_999, 2.0)));
        assert!(line.windows(2).all(|w| w[0].0 < w[1].0), "time order");
    }

    #[test]
    fn decimation_splits_at_gaps_and_keeps_short_series_whole() {
        let ts = [0, 1, 2, 3, 4, 5];
        let values = [1.0, 2.0, f64::NAN, f64::NAN, 3.0, 4.0];
        assert_eq!(decimate_min_max(&ts, &values, 100), vec![vec![(0, 1.0), (1, 2.0)], vec![(4, 3.0), (5, 4.0)]]);
    }

    #[test]
    fn underwater_matches_hand_computation() {
        let ts = [0, 10, 20, 30, 40, 50];
        let equity = [100.0, 110.0, 99.0, 105.0, 111.0, 108.0];
        let u = underwater(&ts, &equity, 100.0);
        assert!((u.max_drawdown - (99.0 / 110.0 - 1.0)).abs() < 1e-15);
        assert_eq!(u.trough_index, Some(2));
        // Below 110 from t=10 to t=30 (20 ms); below 111 from 40 to 50 (10 ms).
        assert_eq!((u.longest_from_ms, u.longest_to_ms), (10, 30));
        assert_eq!(u.drawdown[4], 0.0);
    }

    #[test]
    fn monthly_returns_compound_to_the_total() {
        let day = MS_PER_DAY;
        let jan1 = 1_704_067_200_000; // 2024-01-01
        let ts: Vec<i64> = (1..=70).map(|d| jan1 + d * day).collect();
        let equity: Vec<f64> = (1..=70).map(|d| 100.0 + d as f64).collect();
        let months = monthly_returns(&ts, &equity, 100.0);
        // The step at 2024-02-01 00:00 closes January: equity 131.
        assert_eq!(months.len(), 3);
        assert_eq!((months[0].year, months[0].month), (2024, 1));
        assert!((months[0].value - 0.31).abs() < 1e-12);
        assert!((months[1].value - (160.0 / 131.0 - 1.0)).abs() < 1e-12);
        let growth: f64 = months.iter().map(|m| 1.0 + m.value).product();
        assert!((growth - 170.0 / 100.0).abs() < 1e-12);
        let years = yearly_from_monthly(&months);
        assert_eq!(years.len(), 1);
        assert!((years[0].1 - 0.7).abs() < 1e-12);
    }

    #[test]
    fn rolling_carry_counts_settlements_in_the_window() {
        let hour = 3_600_000;
        let ts: Vec<i64> = (0..=24 * 12).map(|h| h * hour).collect();
        let equity = vec![1000.0; ts.len()];
        let mut carry = vec![0.0; ts.len()];
        let mut settlements = Vec::new();
        for h in (8..=24 * 12).step_by(8) {
            carry[h as usize] = 0.1;
            settlements.push(FundingPayment::paid(crate::model::Settlement { settle_ms: h * hour, rate: 0.0001, interval_hours: 8.0, price: 1000.0 }, -1.0, 0.1));
        }
        let rolling = rolling_carry(&ts, &equity, &carry, &settlements, 10.0);
        assert!(rolling.funding_rate_apr[24 * 10 - 1].is_nan());
        // At day 12: settlements in (day 2, day 12] = 30, each 0.01 %.
        let expected = 30.0 * 0.0001 * 36.5;
        assert!((rolling.funding_rate_apr[24 * 12] - expected).abs() < 1e-12);
        assert!((rolling.carry_return_apr[24 * 12] - 30.0 * 0.1 / 1000.0 * 36.5).abs() < 1e-12);
    }

    #[test]
    fn trailing_mean_uses_the_window() {
        let ts = [0, 10, 20, 30];
        let values = [1.0, 3.0, f64::NAN, 8.0];
        let mean = trailing_mean(&ts, &values, 20);
        assert_eq!(mean, vec![1.0, 2.0, 3.0, 8.0]);
    }

    #[test]
    fn events_are_thinned_per_bucket() {
        let ts: Vec<i64> = (0..1000).collect();
        let flags: Vec<i32> = (0..1000).map(|i| if i % 2 == 0 { i32::from(events::REBALANCE) } else { 0 }).collect();
        assert_eq!(event_steps(&ts, &flags, events::REBALANCE, usize::MAX).len(), 500);
        let thinned = event_steps(&ts, &flags, events::REBALANCE, 10);
        assert!(thinned.len() <= 11 && thinned.len() >= 10, "{}", thinned.len());
        assert!(at_limit(0.003, Some(0.003), Some(-0.003)) && at_limit(-0.003, Some(0.003), Some(-0.003)));
        assert!(!at_limit(0.0029, Some(0.003), Some(-0.003)) && !at_limit(0.01, None, None));
    }
}
