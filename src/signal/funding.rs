//! Funding signals on the step clock: the last settled rate, and the rate the venue is
//! computing for the interval in progress (predicted funding), each from what is known at the
//! step.

use crate::model::Settlement;
use crate::venue::funding::{next_settlement, rate_per_8h, PremiumSeries};
use crate::venue::{Averaging, Preset, Timing};
use crate::time::MS_PER_HOUR;

const HOURS_PER_YEAR: f64 = 8760.0;

/// The last settled rate at or before each step (decimal per interval), and the same
/// annualised (rate / interval hours × 8760); NaN before the first settlement.
pub fn last_settled(history: &[Settlement], ts_ms: &[i64]) -> (Vec<f64>, Vec<f64>) {
    let mut j = 0usize;
    let mut rate = Vec::with_capacity(ts_ms.len());
    let mut apr = Vec::with_capacity(ts_ms.len());
    for &t in ts_ms {
        while j < history.len() && history[j].settle_ms <= t {
            j += 1;
        }
        match j.checked_sub(1).map(|k| history[k]) {
            Some(s) => {
                rate.push(s.rate);
                apr.push(s.rate / s.interval_hours * HOURS_PER_YEAR);
            }
            None => {
                rate.push(f64::NAN);
                apr.push(f64::NAN);
            }
        }
    }
    (rate, apr)
}

/// The funding rate the venue would settle at the end of the interval in progress, as known at
/// each step, annualised (rate / interval hours × 8760). At step t the interval is the one
/// ending at the first settlement S after t, of N hours:
/// - a venue that fixes the rate in the same interval averages the premium samples of
///   (S − N, t], the ones known so far (mean, or weights 1..n in the order they came);
/// - a venue that fixes it one interval ahead (BitMEX) uses (S − 2N, S − N], all known at t.
///
/// The average goes through the venue's formula (8 h basis, scaled by N / 8) and the cap and
/// floor `limits` gives for the settlement. NaN where the window holds no sample yet (at the
/// very start of an interval on a same-interval venue).
pub fn predicted_apr(preset: &Preset, limits: &dyn Fn(i64, f64) -> (Option<f64>, Option<f64>), premium: &PremiumSeries, ts_ms: &[i64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(ts_ms.len());
    // The interval being averaged, and its running sums (samples are added as they become known).
    let mut current: Option<(i64, f64)> = None;
    let (mut next_sample, mut sum, mut weights, mut count) = (0usize, 0.0f64, 0.0f64, 0usize);
    for &t in ts_ms {
        let (settle, hours) = next_settlement(preset, t);
        let f = preset.formula_at(settle);
        let interval_ms = (hours * MS_PER_HOUR as f64).round() as i64;
        let (from, to) = match f.timing {
            Timing::SameInterval => (settle - interval_ms, t),
            Timing::KnownInAdvance => (settle - 2 * interval_ms, settle - interval_ms),
        };
        if current != Some((settle, hours)) {
            current = Some((settle, hours));
            next_sample = premium.ts_ms.partition_point(|&s| s <= from);
            (sum, weights, count) = (0.0, 0.0, 0);
        }
        while next_sample < premium.ts_ms.len() && premium.ts_ms[next_sample] <= to {
            count += 1;
            let w = match f.averaging {
                Averaging::Mean => 1.0,
                Averaging::LinearWeights => count as f64,
            };
            sum += w * premium.premium[next_sample];
            weights += w;
            next_sample += 1;
        }
        if count == 0 {
            out.push(f64::NAN);
            continue;
        }
        let average = sum / weights;
        let uncapped = rate_per_8h(f.formula, average, f.interest_per_8h, f.inner_clamp, f.dead_band) * hours / 8.0;
        let (cap, floor) = limits(settle, hours);
        let rate = uncapped.min(cap.unwrap_or(f64::INFINITY)).max(floor.unwrap_or(f64::NEG_INFINITY));
        out.push(rate / hours * HOURS_PER_YEAR);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_time_ms;
    use std::path::Path;

    #[test]
    fn binance_predicted_funding_by_hand() {
        let binance = Preset::load("binance_usdm", Path::new(".")).unwrap();
        let t0 = parse_time_ms("t", "2024-01-01").unwrap();
        let h = MS_PER_HOUR;
        // Premium samples each hour from 01:00: 0.10 %, 0.20 %, 0.30 %, ... (Binance weights
        // the n-th sample by n).
        let premium = PremiumSeries { ts_ms: (1..=9).map(|k| t0 + k * h).collect(), premium: (1..=9).map(|k| k as f64 * 0.001).collect() };
        let steps: Vec<i64> = (1..=9).map(|k| t0 + k * h).collect();
        let limits = |_s: i64, _n: f64| (Some(0.003), Some(-0.003));
        let apr = predicted_apr(&binance, &limits, &premium, &steps);
        // 01:00: one sample, P = 0.1 %: F = P + clamp(0.01 % − P, ±0.05 %) = 0.1 % − 0.05 %
        // = 0.05 % per 8 h → × 3 × 365 = 54.75 %.
        assert!((apr[0] - 0.0005 * 1095.0).abs() < 1e-12, "{}", apr[0]);
        // 02:00: (1·0.1 + 2·0.2)/3 = 0.1667 %: F = 0.1167 %.
        let p2 = (0.001 + 2.0 * 0.002) / 3.0;
        assert!((apr[1] - (p2 - 0.0005) * 1095.0).abs() < 1e-12);
        // 04:00: weighted mean (1·.1+2·.2+3·.3+4·.4)/10 = 0.3 %: F = 0.25 %.
        assert!((apr[3] - 0.0025 * 1095.0).abs() < 1e-12);
        // 05:00: (1+4+9+16+25)·0.1 %/15 = 0.3667 %: F = 0.3167 %, capped at 0.3 %.
        assert!((apr[4] - 0.003 * 1095.0).abs() < 1e-12);
        // 08:00 is a settlement: the new interval has no sample yet.
        assert!(apr[7].is_nan());
        // 09:00: the one sample of the new interval, 0.9 %: F = 0.85 %, capped at 0.3 %.
        assert!((apr[8] - 0.003 * 1095.0).abs() < 1e-12);
    }

    #[test]
    fn last_settled_by_hand() {
        let history = [Settlement::unpriced(8, 0.0001, 8.0), Settlement::unpriced(12, 0.0002, 4.0)];
        let (rate, apr) = last_settled(&history, &[7, 8, 11, 12]);
        assert!(rate[0].is_nan() && apr[0].is_nan());
        assert_eq!(&rate[1..], &[0.0001, 0.0001, 0.0002]);
        assert!((apr[3] - 0.0002 / 4.0 * 8760.0).abs() < 1e-15);
    }
}
