//! Counterfactual funding: the settlements a venue's rules would produce from a premium series.
//!
//! For each settlement T of interval N (on the venue's grid: offset + k·N hours after 00:00 UTC,
//! with dated interval changes), the premium samples known in the averaging window are averaged
//! (mean, or weights 1..n), turned into an 8 h-basis rate by the venue's formula (clamped
//! interest, premium + interest, premium only, or dead band), scaled by N/8 (so an hourly venue
//! pays F8/8 each hour, and Binance's 4 h symbols pay F/(8/4)), and clamped to the cap and floor
//! in force for the symbol and date. The window is (T − N, T] for same-interval venues and
//! (T − 2N, T − N] for venues whose rate is fixed one interval in advance.
//!
//! Where no premium index series exists, the premium is taken from the aligned timeline: perp
//! last over spot close − 1 (or mark over spot), skipping stale-spot steps. That proxy differs
//! from an exchange's impact-price premium (Binance perps close a few bp below spot on median),
//! so counterfactual levels are comparisons between rule sets, not replicas of printed rates.

use serde::{Deserialize, Serialize};

use super::{Averaging, Formula, PaidOn, Preset, Timing};
use crate::data::FundingSeries;
use crate::model::{MarketTimeline, Settlement};
pub use crate::model::PremiumSeries;
use crate::time::{MS_PER_DAY, MS_PER_HOUR};

/// Which prices the premium proxy compares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PremiumSource {
    /// perp last / spot close − 1.
    #[default]
    PerpSpot,
    /// mark / spot close − 1 (the mark tracks the venue's index plus basis).
    MarkSpot,
}

impl std::fmt::Display for PremiumSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PremiumSource::PerpSpot => "perp/spot − 1",
            PremiumSource::MarkSpot => "mark/spot − 1",
        })
    }
}

/// A one-line description of a premium proxy for warnings.
pub fn describe_premium(premium: &PremiumSeries, source: PremiumSource) -> String {
    format!(
        "premium proxy {source}: {} samples, median {:+.2} bp (rules without an interest clamp, such as OKX before 2025-04, dYdX and Deribit, turn a persistent proxy bias into funding)",
        premium.ts_ms.len(),
        premium.median() * 1e4
    )
}

/// How a premium proxy's persistent bias is taken out before the funding rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PremiumDebias {
    /// Used as it is.
    None,
    /// Each sample less the median of the samples of the trailing `premium_debias_days` known
    /// at its time (the sample itself included, nothing later).
    TrailingMedian,
}

/// `premium` with the trailing median of the last `window_ms` (samples in (t − window, t])
/// subtracted from each sample: a point-in-time de-biasing of a proxy whose level sits off
/// zero (Binance perps close a few bp under spot even while funding is positive).
pub fn debias_trailing_median(premium: &PremiumSeries, window_ms: i64) -> PremiumSeries {
    let n = premium.ts_ms.len();
    let mut window: Vec<f64> = Vec::new();
    let mut from = 0usize;
    let mut out = PremiumSeries { ts_ms: premium.ts_ms.clone(), premium: Vec::with_capacity(n) };
    for i in 0..n {
        let value = premium.premium[i];
        let at = window.partition_point(|v| v.total_cmp(&value).is_lt());
        window.insert(at, value);
        while premium.ts_ms[from] <= premium.ts_ms[i] - window_ms {
            let old = premium.premium[from];
            if let Ok(k) = window.binary_search_by(|v| v.total_cmp(&old)) {
                window.remove(k);
            }
            from += 1;
        }
        let m = window.len();
        let median = if m % 2 == 1 { window[m / 2] } else { (window[m / 2 - 1] + window[m / 2]) / 2.0 };
        out.premium.push(value - median);
    }
    out
}

/// Premium samples from an aligned timeline, leaving out stale-spot steps.
pub fn premium_from_timeline(timeline: &MarketTimeline, source: PremiumSource) -> PremiumSeries {
    let mut out = PremiumSeries::default();
    for i in 0..timeline.len() {
        if timeline.spot_stale.get(i).is_some_and(|f| *f != 0) {
            continue;
        }
        let price = match source {
            PremiumSource::PerpSpot => timeline.perp[i],
            PremiumSource::MarkSpot => timeline.mark_prices()[i],
        };
        out.ts_ms.push(timeline.ts_ms[i]);
        out.premium.push(price / timeline.spot[i] - 1.0);
    }
    out
}

/// The premium counterfactual funding is computed from: the config's premium index files
/// (`venue.premium_index`) when given, else the proxy from the timeline; and a line saying which.
pub fn premium_for(premium_index: Option<&str>, source: PremiumSource, timeline: &MarketTimeline, debias: Option<PremiumDebias>, debias_days: f64) -> anyhow::Result<(PremiumSeries, String)> {
    let (premium, line) = match premium_index {
        Some(pattern) => {
            let premium = crate::data::binance::load_premium_index(pattern)?;
            let line = format!("premium from the premium index files ({} samples)", premium.ts_ms.len());
            (premium, line)
        }
        None => {
            let premium = premium_from_timeline(timeline, source);
            let line = describe_premium(&premium, source);
            (premium, line)
        }
    };
    // A proxy is de-biased unless told otherwise; a venue's own premium index is not.
    let debias = debias.unwrap_or(if premium_index.is_some() { PremiumDebias::None } else { PremiumDebias::TrailingMedian });
    Ok(match debias {
        PremiumDebias::None => (premium, line),
        PremiumDebias::TrailingMedian => {
            let debiased = debias_trailing_median(&premium, (debias_days * crate::time::MS_PER_DAY as f64).round() as i64);
            let line = format!("{line}; de-biased by its trailing {debias_days}-day median (premium_debias = \"trailing_median\"), median after {:+.2} bp", debiased.median() * 1e4);
            (debiased, line)
        }
    })
}

/// Settlements under a rule set with what its cap and floor did: the series, and for each
/// settlement its rate before the cap and floor and whether one of them bound.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CappedFunding {
    /// The settlements (rates after the cap and floor).
    pub funding: FundingSeries,
    /// Each settlement's rate before the cap and floor, decimal per interval.
    pub uncapped_rate: Vec<f64>,
    /// Whether the cap or floor bound at each settlement.
    pub at_limit: Vec<bool>,
}

impl CappedFunding {
    /// Number of settlements.
    pub fn len(&self) -> usize {
        self.funding.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.funding.is_empty()
    }

    /// Settlements at the cap or floor.
    pub fn at_limit_count(&self) -> usize {
        self.at_limit.iter().filter(|b| **b).count()
    }

    /// Settlements at the cap (bound with a positive rate) and at the floor (a negative one).
    pub fn at_cap_and_floor(&self) -> (usize, usize) {
        let bound = || self.funding.iter().zip(&self.at_limit).filter(|(_, b)| **b);
        (bound().filter(|(s, _)| s.rate > 0.0).count(), bound().filter(|(s, _)| s.rate < 0.0).count())
    }
}

/// The 8 h-basis rate of the formula for an averaged premium.
pub fn rate_per_8h(formula: Formula, premium: f64, interest_per_8h: f64, inner_clamp: f64, dead_band: f64) -> f64 {
    match formula {
        Formula::ClampedInterest => premium + (interest_per_8h - premium).clamp(-inner_clamp, inner_clamp),
        Formula::PremiumPlusInterest => premium + interest_per_8h,
        Formula::PremiumOnly => premium,
        Formula::DeadBand => premium.max(dead_band) + premium.min(-dead_band),
    }
}

/// The first settlement strictly after `after_ms` on the venue's grid.
pub fn next_settlement(preset: &Preset, after_ms: i64) -> (i64, f64) {
    let hours = preset.interval_hours_at(after_ms);
    let step = (hours * MS_PER_HOUR as f64).round() as i64;
    let anchor = (preset.funding.interval_offset_hours * MS_PER_HOUR as f64).round() as i64;
    let day = after_ms.div_euclid(MS_PER_DAY) * MS_PER_DAY + anchor;
    let k = (after_ms - day).div_euclid(step) + 1;
    (day + k * step, hours)
}

/// Averaged premium of samples with `from < ts ≤ to`, or None when there is none.
fn average(premium: &PremiumSeries, from: i64, to: i64, averaging: Averaging) -> Option<f64> {
    let lo = premium.ts_ms.partition_point(|&t| t <= from);
    let hi = premium.ts_ms.partition_point(|&t| t <= to);
    if lo >= hi {
        return None;
    }
    let values = &premium.premium[lo..hi];
    Some(match averaging {
        Averaging::Mean => values.iter().sum::<f64>() / values.len() as f64,
        Averaging::LinearWeights => {
            let (mut sum, mut weights) = (0.0, 0.0);
            for (k, v) in values.iter().enumerate() {
                let w = (k + 1) as f64;
                sum += w * v;
                weights += w;
            }
            sum / weights
        }
    })
}

/// The settlements `preset` would have paid for `symbol` in `(from_ms, to_ms]` on `premium`,
/// unpriced. Settlements whose window holds no premium sample are left out.
pub fn counterfactual(preset: &Preset, symbol: &str, premium: &PremiumSeries, from_ms: i64, to_ms: i64) -> CappedFunding {
    let mut out = CappedFunding::default();
    let mut settlements = Vec::new();
    let mut at = from_ms;
    loop {
        let (settle, hours) = next_settlement(preset, at);
        if settle > to_ms {
            break;
        }
        at = settle;
        let f = preset.formula_at(settle);
        let interval_ms = (hours * MS_PER_HOUR as f64).round() as i64;
        let (window_from, window_to) = match f.timing {
            Timing::SameInterval => (settle - interval_ms, settle),
            Timing::KnownInAdvance => (settle - 2 * interval_ms, settle - interval_ms),
        };
        let Some(p) = average(premium, window_from, window_to, f.averaging) else { continue };
        let uncapped = rate_per_8h(f.formula, p, f.interest_per_8h, f.inner_clamp, f.dead_band) * hours / 8.0;
        let (cap, floor) = preset.limits_at(symbol, settle, hours);
        let rate = uncapped.min(cap.unwrap_or(f64::INFINITY)).max(floor.unwrap_or(f64::NEG_INFINITY));
        settlements.push(Settlement::unpriced(settle, rate, hours));
        out.uncapped_rate.push(uncapped);
        out.at_limit.push(rate != uncapped);
    }
    out.funding = FundingSeries::new(settlements);
    out
}

/// The preset's settlements over a timeline's window, as the funding series to run on: priced
/// on the mark (NaN: the engine's mark bar) or, for oracle-paid venues, on the spot close known
/// at the settlement (the oracle is an index of spot prices).
pub fn counterfactual_for(preset: &Preset, timeline: &MarketTimeline, premium: &PremiumSeries) -> CappedFunding {
    let (from_ms, to_ms) = (timeline.ts_ms[0], timeline.ts_ms[timeline.len() - 1]);
    let mut settled = counterfactual(preset, &timeline.symbol, premium, from_ms, to_ms);
    if preset.funding.paid_on == PaidOn::Oracle {
        for s in settled.funding.iter_mut() {
            s.price = match timeline.ts_ms.partition_point(|&t| t <= s.settle_ms) {
                0 => f64::NAN,
                i => timeline.spot[i - 1],
            };
        }
    }
    settled
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_time_ms;
    use std::path::Path;

    fn preset(id: &str) -> Preset {
        Preset::load(id, Path::new(".")).unwrap()
    }

    /// Hourly premium samples, constant `p`, over `hours` hours from 2024-01-01.
    fn flat_premium(p: f64, hours: i64) -> PremiumSeries {
        let t0 = parse_time_ms("t", "2024-01-01").unwrap();
        PremiumSeries { ts_ms: (1..=hours).map(|h| t0 + h * MS_PER_HOUR).collect(), premium: vec![p; hours as usize] }
    }

    #[test]
    fn formulas_by_hand() {
        // Binance: P in [-0.04 %, +0.06 %] gives exactly I = 0.01 %.
        for p in [-0.0004, 0.0, 0.0003, 0.0006] {
            assert!((rate_per_8h(Formula::ClampedInterest, p, 0.0001, 0.0005, 0.0) - 0.0001).abs() < 1e-15, "{p}");
        }
        // Outside the band: P + 0.05 % (P = -0.1 %) or P - 0.05 % (P = +0.2 %).
        assert!((rate_per_8h(Formula::ClampedInterest, -0.001, 0.0001, 0.0005, 0.0) - (-0.0005)).abs() < 1e-15);
        assert!((rate_per_8h(Formula::ClampedInterest, 0.002, 0.0001, 0.0005, 0.0) - 0.0015).abs() < 1e-15);
        // Deribit: zero inside +-0.025 %, premium minus the band outside it.
        assert_eq!(rate_per_8h(Formula::DeadBand, 0.0002, 0.0, 0.0, 0.00025), 0.0);
        assert!((rate_per_8h(Formula::DeadBand, 0.0010, 0.0, 0.0, 0.00025) - 0.00075).abs() < 1e-15);
        assert!((rate_per_8h(Formula::DeadBand, -0.0010, 0.0, 0.0, 0.00025) + 0.00075).abs() < 1e-15);
        assert_eq!(rate_per_8h(Formula::PremiumPlusInterest, 0.0008, 0.0, 0.0, 0.0), 0.0008);
    }

    #[test]
    fn binance_grid_cap_and_interval_scaling() {
        let binance = preset("binance_usdm");
        // A 0.5 % premium for two days: F = 0.5 % - 0.05 % = 0.45 %, capped at 0.3 % for BTC,
        // at 2 % (not binding) for another symbol.
        let premium = flat_premium(0.005, 48);
        let from = premium.ts_ms[0] - MS_PER_HOUR;
        let btc = counterfactual(&binance, "BTCUSDT", &premium, from, from + 48 * MS_PER_HOUR);
        assert_eq!(btc.len(), 6, "00/08/16 UTC settlements over two days");
        assert_eq!(btc.funding[0].settle_ms, from + 8 * MS_PER_HOUR);
        assert!((0..btc.len()).all(|k| btc.at_limit[k] && btc.funding[k].rate == 0.003 && (btc.uncapped_rate[k] - 0.0045).abs() < 1e-15));
        let alt = counterfactual(&binance, "XYZUSDT", &premium, from, from + 48 * MS_PER_HOUR);
        assert!((0..alt.len()).all(|k| !alt.at_limit[k] && (alt.funding[k].rate - 0.0045).abs() < 1e-15));
    }

    #[test]
    fn hourly_venues_pay_an_eighth_and_bitmex_is_fixed_in_advance() {
        // Hyperliquid: a calm premium of 0 pays I/8 = 0.00125 % each hour.
        let hl = preset("hyperliquid");
        let premium = flat_premium(0.0, 24);
        let from = premium.ts_ms[0] - MS_PER_HOUR;
        let hourly = counterfactual(&hl, "BTCUSDT", &premium, from, from + 24 * MS_PER_HOUR);
        assert_eq!(hourly.len(), 24);
        assert!(hourly.funding.iter().all(|s| (s.rate - 0.0001 / 8.0).abs() < 1e-18 && s.interval_hours == 1.0));
        // BitMEX (04/12/20 UTC): the rate paid at T comes from the premium of (T-16h, T-8h].
        let bitmex = preset("bitmex");
        let t0 = parse_time_ms("t", "2024-01-01").unwrap();
        let mut premium = PremiumSeries::default();
        for h in 1..=48 {
            premium.ts_ms.push(t0 + h * MS_PER_HOUR);
            premium.premium.push(if h <= 12 { 0.002 } else { 0.0 }); // high until 12:00
        }
        let settled = counterfactual(&bitmex, "XBTUSD", &premium, t0, t0 + 48 * MS_PER_HOUR);
        assert_eq!(settled.funding[0].settle_ms, t0 + 12 * MS_PER_HOUR, "04:00 has no premium in its window");
        // 04:00 needs (-12h, -4h]: no samples, skipped; 12:00 uses (-4h, 04:00]: 0.2 % - 0.05 %;
        // 20:00 uses (04:00, 12:00]: still 0.2 %; 04:00 next day uses (12:00, 20:00]: calm.
        let find = |h: i64| settled.funding.iter().find(|s| s.settle_ms == t0 + h * MS_PER_HOUR).map(|s| s.rate);
        assert_eq!(find(4), None);
        assert!((find(12).unwrap() - 0.0015).abs() < 1e-15);
        assert!((find(20).unwrap() - 0.0015).abs() < 1e-15);
        assert!((find(28).unwrap() - 0.0001).abs() < 1e-15);
    }

    #[test]
    fn margin_based_caps_bind() {
        // dYdX BTC: premium 20 % -> 20 %/8 = 2.5 % per hour, capped at 12 %/8 = 1.5 %.
        let dydx = preset("dydx_v4");
        let premium = flat_premium(0.2, 3);
        let from = premium.ts_ms[0] - MS_PER_HOUR;
        let settled = counterfactual(&dydx, "BTCUSDT", &premium, from, from + 3 * MS_PER_HOUR);
        assert!(!settled.is_empty());
        assert!((0..settled.len()).all(|k| settled.at_limit[k] && (settled.funding[k].rate - 0.015).abs() < 1e-15 && (settled.uncapped_rate[k] - 0.025).abs() < 1e-15));
    }

    /// The settlement at `day` + 16:00 under a flat premium `p` from `day` (every venue's grid
    /// has one there: 00/08/16, BitMEX 04/12/20 +- 4 h is not used here).
    fn at_16h(id: &str, symbol: &str, p: f64, day: &str) -> Settlement {
        at_16h_capped(id, symbol, p, day).0
    }

    /// [`at_16h`], and whether the cap or floor bound.
    fn at_16h_capped(id: &str, symbol: &str, p: f64, day: &str) -> (Settlement, bool) {
        let preset = preset(id);
        let t0 = parse_time_ms("t", day).unwrap();
        let premium = PremiumSeries { ts_ms: (1..=48).map(|h| t0 + h * MS_PER_HOUR).collect(), premium: vec![p; 48] };
        let settled = counterfactual(&preset, symbol, &premium, t0, t0 + 48 * MS_PER_HOUR);
        let k = settled.funding.iter().position(|s| s.settle_ms == t0 + 16 * MS_PER_HOUR).unwrap_or_else(|| panic!("{id}: no 16:00 settlement"));
        (settled.funding[k], settled.at_limit[k])
    }

    #[track_caller]
    fn close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-15, "expected {expected}, got {actual}");
    }

    /// Each preset's formula, clamp boundaries, caps and interval scaling, worked out by hand from
    /// VENUES.md (section 1 and the caps table).
    #[test]
    fn every_preset_by_hand() {
        let day = "2024-03-01";
        // Bybit (8 h, I = 0.01 %, clamp +-0.05 %): the clamp's edges at P = -0.04 % and +0.06 %.
        close(at_16h("bybit_linear", "BTCUSDT", -0.0004, day).rate, 0.0001);
        close(at_16h("bybit_linear", "BTCUSDT", -0.00041, day).rate, -0.00041 + 0.0005);
        close(at_16h("bybit_linear", "BTCUSDT", 0.0006, day).rate, 0.0001);
        close(at_16h("bybit_linear", "BTCUSDT", 0.00061, day).rate, 0.00061 - 0.0005);
        // Bybit BTC cap +-0.375 %: P = 0.5 % gives 0.45 %, capped.
        let (s, capped) = at_16h_capped("bybit_linear", "BTCUSDT", 0.005, day);
        assert!(capped);
        close(s.rate, 0.00375);
        close(at_16h("bybit_linear", "BTCUSDT", -0.005, day).rate, -0.00375);
        // Gate: cap 75 % x (1 % - 0.5 %) = 0.375 %.
        close(at_16h("gate_usdt", "BTCUSDT", 0.01, day).rate, 0.00375);
        close(at_16h("gate_usdt", "BTCUSDT", 0.003, day).rate, 0.0025);
        // OKX before 2025-04-10: premium only, no interest: P = 0.1 % pays 0.1 %; cap 0.375 % for BTC,
        // 0.75 % for ETH.
        close(at_16h("okx_swap", "BTCUSDT", 0.001, day).rate, 0.001);
        close(at_16h("okx_swap", "BTCUSDT", 0.01, day).rate, 0.00375);
        close(at_16h("okx_swap", "ETHUSDT", 0.01, day).rate, 0.0075);
        // OKX after the switch: clamped interest like Binance: P = 0.1 % pays 0.05 %, P = 0 pays I.
        close(at_16h("okx_swap", "BTCUSDT", 0.001, "2025-06-01").rate, 0.0005);
        close(at_16h("okx_swap", "BTCUSDT", 0.0, "2025-06-01").rate, 0.0001);
        // Hyperliquid: each hour pays F8/8; P = 0.08 % gives (0.08 % - 0.05 %)/8; the 4 %/h cap needs
        // F8 > 32 %: P = 50 % gives 49.95 %/8 = 6.24 %, capped at 4 %.
        close(at_16h("hyperliquid", "BTCUSDT", 0.0008, day).rate, 0.0003 / 8.0);
        close(at_16h("hyperliquid", "BTCUSDT", 0.5, day).rate, 0.04);
        // dYdX: premium/8 + 0 each hour; BTC cap 12 %/8 = 1.5 % per hour, others 30 %/8.
        close(at_16h("dydx_v4", "BTCUSDT", 0.0008, day).rate, 0.0001);
        close(at_16h("dydx_v4", "SOLUSDT", 0.5, day).rate, 0.30 / 8.0);
        // Deribit: zero inside the +-0.025 % dead band, outside it P - 0.025 % per 8 h, paid hourly;
        // cap 0.5 % per 8 h.
        close(at_16h("deribit", "BTCUSDT", 0.0002, day).rate, 0.0);
        close(at_16h("deribit", "BTCUSDT", -0.0002, day).rate, 0.0);
        close(at_16h("deribit", "BTCUSDT", 0.001, day).rate, 0.00075 / 8.0);
        close(at_16h("deribit", "BTCUSDT", -0.1, day).rate, -0.005 / 8.0);
        // Binance: a symbol without its own cap has +-2 %; a 4 h interval pays half of F.
        close(at_16h("binance_usdm", "PEPEUSDT", 0.05, day).rate, 0.02);
        let mut four_hourly = preset("binance_usdm");
        four_hourly.funding.interval_hours = 4.0;
        let t0 = parse_time_ms("t", day).unwrap();
        let premium = PremiumSeries { ts_ms: (1..=24).map(|h| t0 + h * MS_PER_HOUR).collect(), premium: vec![0.0; 24] };
        let settled = counterfactual(&four_hourly, "BTCUSDT", &premium, t0, t0 + 24 * MS_PER_HOUR);
        assert_eq!(settled.len(), 6);
        assert!(settled.funding.iter().all(|s| s.interval_hours == 4.0 && (s.rate - 0.00005).abs() < 1e-18));
    }

    #[test]
    fn linear_weights_favour_the_latest_samples() {
        // Samples 0, 0, 0, 0.003 over an interval: mean 0.075 %, weights 1..4 give 0.12 %.
        let premium = PremiumSeries { ts_ms: vec![1, 2, 3, 4], premium: vec![0.0, 0.0, 0.0, 0.003] };
        close(average(&premium, 0, 4, Averaging::Mean).unwrap(), 0.00075);
        close(average(&premium, 0, 4, Averaging::LinearWeights).unwrap(), 0.0012);
        assert_eq!(average(&premium, 4, 8, Averaging::Mean), None);
        close(premium.median(), 0.0);
    }
}
