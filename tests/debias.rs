//! The premium proxy's de-biasing: a trailing median known at each sample (by hand), and its
//! effect on the counterfactual funding of Binance BTCUSDT 2019–2026 (the figures README shows).

mod common;

use basis::app::caps::{self, RuleSet};
use basis::model::PremiumSeries;
use basis::venue::funding::{debias_trailing_median, PremiumDebias};
use basis::venue::Preset;
use common::*;

/// Samples 1, 5, 2, 8, 3 an hour apart with a 3-hour window: the medians of (1), (1, 5),
/// (1, 5, 2), (5, 2, 8), (2, 8, 3) are 1, 3, 2, 5, 3, so the de-biased samples are
/// 0, 2, 0, 3, 0. A sample never sees a later one.
#[test]
fn the_trailing_median_uses_only_what_was_known() {
    let premium = PremiumSeries { ts_ms: (0..5).map(|i| T0 + i * HOUR).collect(), premium: vec![1.0, 5.0, 2.0, 8.0, 3.0] };
    let out = debias_trailing_median(&premium, 3 * HOUR);
    assert_eq!(out.premium, vec![0.0, 2.0, 0.0, 3.0, 0.0]);
}

#[test]
fn debiasing_brings_premium_only_rules_near_the_actual_prints() {
    let config_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/examples/freqtrade-btc-1h.toml");
    let apr = |debias: Option<PremiumDebias>, days: f64| -> Vec<(String, f64)> {
        let mut config = basis::config::Config::load(&config_path).expect("the example loads");
        config.venue.premium_debias = debias;
        config.venue.premium_debias_days = days;
        let base_dir = config_path.parent().unwrap();
        let mut rule_sets = vec![RuleSet::Actual];
        for id in ["binance_usdm", "okx_swap", "dydx_v4", "deribit"] {
            let preset = Preset::load(id, base_dir).unwrap();
            rule_sets.push(RuleSet::Rules { label: preset.name.clone(), preset: Box::new(preset) });
        }
        let (outcomes, _) = caps::run(&config, &rule_sets, caps::CapsMode::FixedPath).expect("caps runs");
        outcomes.iter().map(|o| (o.label.clone(), (o.metrics.funding_apr_over_window * 1e4).round() / 100.0)).collect()
    };
    let figures = |rows: &[(String, f64)]| rows.iter().map(|r| r.1).collect::<Vec<f64>>();
    // actual, Binance, OKX, dYdX, Deribit (percent, two decimals), as README's table.
    assert_eq!(figures(&apr(Some(PremiumDebias::None), 365.0)), vec![11.87, 11.51, -4.02, -12.93, -1.33]);
    assert_eq!(figures(&apr(Some(PremiumDebias::TrailingMedian), 30.0)), vec![11.87, 9.76, 3.22, 1.31, 1.48]);
    let default = apr(None, 365.0);
    assert_eq!(figures(&default), vec![11.87, 14.52, 10.43, 8.07, 9.05]);
    // The premium-only rule sets end within 4 APR points of the prints.
    for (label, value) in &default[2..] {
        assert!((value - 11.87).abs() < 4.0, "{label}: {value}");
    }
}
