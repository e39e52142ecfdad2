//! Costs that depend on the market (`[costs] model`): the spread estimators and the
//! square-root impact coefficient by hand (values from the formulas, computed in Python in the
//! comments' numbers), fills that pay the impact of their own size, entries sized with it,
//! look-ahead (a cost at a step uses only bars closed by then), and configs that ask for them.

mod common;

use basis::model::{CostModel, CostSchedule, MarketCosts};
use basis::sim::market_costs::{abdi_ranaldo, corwin_schultz, impact_coefficient, trailing_mean};
use common::{assert_close, flat_timeline, plain_params, HOUR};
use proptest::prelude::*;

/// Corwin–Schultz: two bars with the same range (101/99) and no drift give α = ln(101/99), so
/// S = 2(e^α − 1)/(1 + e^α) = 0.019999999999999914 (the spread ≈ the log range); a third bar
/// (102/99.5) after them gives 0.0048741834608645625. Python:
/// `b = ln(H1/L1)² + ln(H0/L0)²; g = ln(max H / min L)²; a = (√(2b) − √b)/k − √(g/k)`, k = 3 − 2√2.
#[test]
fn corwin_schultz_by_hand() {
    let s = corwin_schultz(&[101.0, 101.0, 102.0], &[99.0, 99.0, 99.5]);
    assert!(s[0].is_nan(), "no pair of bars at the first step");
    assert_close(s[1], 0.019999999999999914, 1e-15);
    assert_close(s[2], 0.0048741834608645625, 1e-15);
    // A trend wider than the bars' own ranges gives a negative estimate: 0.
    let trend = corwin_schultz(&[101.0, 102.0, 103.5], &[99.0, 100.0, 101.0]);
    assert_eq!(&trend[1..], &[0.0, 0.0]);
}

/// Abdi–Ranaldo: the close at the top of its bar (101 in 99..101) before a bar whose mid-range
/// is lower (98.5..100.5): S² = 4 (ln 101 − ln √(101·99)) (ln 101 − ln √(100.5·98.5)),
/// S = 0.024506227354425113.
#[test]
fn abdi_ranaldo_by_hand() {
    let s = abdi_ranaldo(&[101.0, 100.5], &[99.0, 98.5], &[101.0, 99.0]);
    assert!(s[0].is_nan());
    assert_close(s[1], 0.024506227354425113, 1e-15);
}

/// The trailing mean waits for a full window and skips unknown values.
#[test]
fn trailing_mean_waits_for_its_window() {
    let m = trailing_mean(&[f64::NAN, 1.0, 2.0, 3.0, f64::NAN, 5.0], 3);
    assert!(m[0].is_nan() && m[1].is_nan());
    assert_close(m[2], 1.5, 1e-15);
    assert_close(m[3], 2.0, 1e-15);
    assert_close(m[4], 2.5, 1e-15);
    assert_close(m[5], 4.0, 1e-15);
}

/// Square-root impact: hourly closes alternating ±1 % log returns, 10 coins a bar, a one-day
/// window: σ_daily = stdev of the 24 returns × √24, ADV = 240, coefficient = σ_daily / √240 =
/// 0.0032302914123489663 at step 24 (Python `statistics.stdev`).
#[test]
fn impact_coefficient_by_hand() {
    let n = 30;
    let mut close = vec![100.0];
    for i in 1..n {
        let r: f64 = if i % 2 == 1 { 0.01 } else { -0.01 };
        close.push(close[i - 1] * r.exp());
    }
    let ts: Vec<i64> = (0..n as i64).map(|i| i * HOUR).collect();
    let k = impact_coefficient(&ts, &close, &vec![10.0; n], 1.0, 1.0);
    assert!(k[10].is_nan(), "the window is not full");
    assert_close(k[24], 0.0032302914123489663, 1e-15);
    let doubled = impact_coefficient(&ts, &close, &vec![10.0; n], 1.0, 2.0);
    assert_close(doubled[24], 2.0 * k[24], 1e-18);
    // Four times the volume halves the impact of the same order.
    let deep = impact_coefficient(&ts, &close, &vec![40.0; n], 1.0, 1.0);
    assert_close(deep[24], k[24] / 2.0, 1e-15);
}

/// A carry held through a run pays the impact of its own size: at entry the order is sized
/// with the impact of the first size folded in, and the exit of q coins slips coef × √q. With
/// no fee and no fixed slippage, capital 10,000 at 1x, price 100 and a coefficient of 0.001 on
/// both legs: the first size is 10,000 / (100 + 100) = 50 coins, the entry slips 0.001 × √50 on
/// each leg, the size is then 10,000 / (100 (1 + s) + 100 (1 + s)) with s = 0.001 √50, and the
/// exit at the end slips 0.001 × √q on the q held.
#[test]
fn fills_pay_the_impact_of_their_size() {
    let prices = vec![100.0; 4];
    let timeline = flat_timeline(&prices, &prices, &prices, HOUR);
    let mut params = plain_params(10_000.0);
    params.market_costs = Some(std::sync::Arc::new(MarketCosts { spot_impact: vec![0.001; 4], perp_impact: vec![0.001; 4], ..Default::default() }));
    let summary = basis::sim::run(&timeline, &params, &mut basis::model::NoLedger);
    let s = 0.001 * 50f64.sqrt();
    let q = 10_000.0 / (100.0 * (1.0 + s) + 100.0 * (1.0 + s));
    let entry_spot = &summary.trades[0];
    assert_eq!(entry_spot.leg, "spot");
    assert_close(entry_spot.qty, q, 1e-9);
    assert_close(entry_spot.fill_price, 100.0 * (1.0 + s), 1e-12);
    let exit_spot = summary.trades.iter().rfind(|t| t.leg == "spot").unwrap();
    assert_close(exit_spot.fill_price, 100.0 * (1.0 - 0.001 * q.sqrt()), 1e-12);
    assert_close(exit_spot.slippage, q * 100.0 * 0.001 * q.sqrt(), 1e-9);
    let total = summary.trades.iter().map(|t| t.slippage).sum::<f64>();
    assert_close(summary.pnl.slippage, -total, 1e-9);
    assert_close(summary.final_equity - 10_000.0, summary.pnl.total(), 1e-9);
}

/// The spread model's series replaces the fixed slippage step by step: a fill at a step pays
/// that step's half-spread.
#[test]
fn a_fill_pays_its_steps_half_spread() {
    let prices = vec![100.0; 3];
    let timeline = flat_timeline(&prices, &prices, &prices, HOUR);
    let mut params = plain_params(10_000.0);
    params.costs.spot_slippage = 0.5;
    params.market_costs = Some(std::sync::Arc::new(MarketCosts { spot_slippage: vec![0.002, 0.003, 0.004], perp_slippage: vec![0.001, 0.001, 0.001], ..Default::default() }));
    let summary = basis::sim::run(&timeline, &params, &mut basis::model::NoLedger);
    assert_close(summary.trades[0].fill_price, 100.2, 1e-12);
    let exit_spot = summary.trades.iter().rfind(|t| t.leg == "spot").unwrap();
    assert_close(exit_spot.fill_price, 99.6, 1e-12);
}

fn random_bars(n: usize, seed: &[f64]) -> (Vec<i64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut close = vec![100.0];
    for i in 1..n {
        close.push(close[i - 1] * (1.0 + 0.02 * (seed[i % seed.len()] - 0.5)));
    }
    let high: Vec<f64> = close.iter().enumerate().map(|(i, c)| c * (1.0 + 0.01 * seed[(i * 7) % seed.len()])).collect();
    let low: Vec<f64> = close.iter().enumerate().map(|(i, c)| c * (1.0 - 0.01 * seed[(i * 3) % seed.len()])).collect();
    let volume: Vec<f64> = (0..n).map(|i| 5.0 + 10.0 * seed[(i * 5) % seed.len()]).collect();
    ((0..n as i64).map(|i| i * HOUR).collect(), close, high, low, volume)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    /// Look-ahead: changing every bar after step k (prices, ranges, volumes) changes no cost
    /// at or before k, for both estimators and the impact coefficient.
    #[test]
    fn costs_use_only_bars_closed_by_their_step(seed in proptest::collection::vec(0.0f64..1.0, 17), k in 30usize..90, shift in 0.5f64..2.0) {
        let (ts, close, high, low, volume) = random_bars(120, &seed);
        let later = |v: &[f64]| -> Vec<f64> { v.iter().enumerate().map(|(i, x)| if i > k { x * shift } else { *x }).collect() };
        let (close2, high2, low2, volume2) = (later(&close), later(&high), later(&low), later(&volume));
        let high2: Vec<f64> = high2.iter().zip(&close2).map(|(h, c)| h.max(*c)).collect();
        let low2: Vec<f64> = low2.iter().zip(&close2).map(|(l, c)| l.min(*c)).collect();
        let same = |a: &[f64], b: &[f64]| a[..=k].iter().zip(&b[..=k]).all(|(x, y)| x.to_bits() == y.to_bits());
        prop_assert!(same(&trailing_mean(&corwin_schultz(&high, &low), 12), &trailing_mean(&corwin_schultz(&high2, &low2), 12)));
        prop_assert!(same(&abdi_ranaldo(&high, &low, &close), &abdi_ranaldo(&high2, &low2, &close2)));
        prop_assert!(same(&impact_coefficient(&ts, &close, &volume, 1.0, 1.0), &impact_coefficient(&ts, &close2, &volume2, 1.0, 1.0)));
    }
}

/// `[costs] model` in a config: the default is fixed_bps; a leg may differ; bad values are
/// input errors naming the key.
#[test]
fn configs_ask_for_a_model() {
    let base = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/basis.toml")).unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let with = |extra: &str| basis::config::Config::from_toml_str(&format!("{base}\n{extra}"), "test", &dir);
    let plain = with("").unwrap();
    assert_eq!(plain.costs.model, CostModel::FixedBps);
    assert!(!plain.costs.market_dependent());
    let c = basis::config::Config::from_toml_str(&base.replacen("\n[costs]\n", "\n[costs]\nmodel = \"sqrt_impact\"\nspot_model = \"spread_from_bars\"\nimpact_k = 0.7\n", 1), "test", &dir).unwrap();
    assert_eq!((c.costs.spot_cost_model(), c.costs.perp_cost_model()), (CostModel::SpreadFromBars, CostModel::SqrtImpact));
    assert_eq!(c.costs.impact_k, 0.7);
    let bad = basis::config::Config::from_toml_str(&base.replacen("\n[costs]\n", "\n[costs]\nmodel = \"sqrt_impact\"\nimpact_k = -1\n", 1), "test", &dir).unwrap_err().to_string();
    assert!(bad.contains("costs.impact_k"), "{bad}");
    let unknown = basis::config::Config::from_toml_str(&base.replacen("\n[costs]\n", "\n[costs]\nmodel = \"magic\"\n", 1), "test", &dir).unwrap_err().to_string();
    assert!(unknown.contains("magic") || unknown.contains("model"), "{unknown}");
    let _ = CostSchedule::default();
}

/// On the sample: the spread model charges the half-spread the sample's bars imply (not the
/// 1 bp fixed slippage), and the run's attribution still closes.
#[test]
fn sample_runs_with_each_model() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let base = std::fs::read_to_string(dir.join("basis.toml")).unwrap();
    let mut slippage = Vec::new();
    for model in ["fixed_bps", "spread_from_bars", "sqrt_impact"] {
        let config = basis::config::Config::from_toml_str(&base.replacen("\n[costs]\n", &format!("\n[costs]\nmodel = \"{model}\"\n"), 1), "test", &dir).unwrap();
        let result = basis::app::backtest::run(&config).unwrap();
        let s = &result.summary;
        assert!((s.final_equity - s.initial_capital - s.pnl.total()).abs() < 1e-6 * s.initial_capital, "{model}: the attribution closes");
        slippage.push(-s.pnl.slippage);
    }
    assert!(slippage[1] != slippage[0], "the spread model charges its own slippage: {slippage:?}");
    assert!(slippage[2] > slippage[0], "impact adds to the fixed slippage: {slippage:?}");
}

/// The cost table (docs/costs.md) of the cost models at 1 M, 10 M and 100 M on BTC hourly
/// 2019–2026, each order capped at 10 % of a bar's volume: each row is what the sweep
/// `data/examples/sweep-costs.toml` measures (APR to 0.01 %, fees and slippage to the USDT,
/// slippage in bp of capital to 0.1), with the days the legs stood apart and their PnL from
/// the same configuration's backtest.
#[test]
fn readme_cost_table_matches_the_sweep() {
    let root = common::real_data_dir();
    if !root.join("freqtrade-binance-1h").is_dir() {
        assert!(std::env::var_os("CI").is_none(), "{} is missing: under CI the README's cost table is checked", root.display());
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_basis"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["sweep", "--config", "data/examples/sweep-costs.toml", "--output-dir", out.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    use polars::prelude::*;
    let frame = ParquetReader::new(std::fs::File::open(out.path().join("sweep-costs/results.parquet")).unwrap()).finish().unwrap();
    let text = |name: &str| -> Vec<String> { frame.column(name).unwrap().str().unwrap().iter().map(|v| v.unwrap().to_string()).collect() };
    let num = |name: &str| -> Vec<f64> { frame.column(name).unwrap().f64().unwrap().iter().map(|v| v.unwrap()).collect() };
    let (model, capital, apr, fees, slippage) = (text("costs.model"), num("portfolio.initial_capital"), num("apr"), num("fees_paid"), num("slippage_paid"));
    let readme = common::docs_text();
    let group = |x: f64| -> String { common::grouped(&format!("{:.0}", x)) };
    let mut found = 0;
    let mut bars_per_entry = Vec::new();
    for k in 0..model.len() {
        let size = match capital[k] as i64 {
            1_000_000 => "1 M",
            10_000_000 => "10 M",
            100_000_000 => "100 M",
            other => panic!("capital {other}"),
        };
        // The time the legs stood apart and its PnL, from the same configuration's backtest.
        let run = out.path().join(format!("run-{k}"));
        let backtest = std::process::Command::new(env!("CARGO_BIN_EXE_basis"))
            .current_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/examples"))
            .args(["backtest", "--config", "freqtrade-btc-1h.toml", "--output-dir", out.path().to_str().unwrap(), "--name", &format!("run-{k}")])
            .args(["--set", &format!("costs.model={}", model[k]), "--set", &format!("portfolio.initial_capital={}", capital[k]), "--set", "costs.max_participation=0.1"])
            .output()
            .unwrap();
        assert!(backtest.status.success(), "{}", String::from_utf8_lossy(&backtest.stderr));
        let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
        let days = metrics["execution"]["days_partially_hedged"].as_f64().expect("execution metrics");
        let legging = metrics["execution"]["legging_pnl"].as_f64().expect("execution metrics");
        if model[k] == "sqrt_impact" {
            bars_per_entry.push((capital[k] as i64, metrics["execution"]["steps_working"].as_u64().expect("steps working")));
        }
        let legging = if legging < 0.0 { format!("-{}", group(-legging)) } else { group(legging) };
        let row = format!("| {size} | `{}` | {:+.2} % | {} | {} | {:.1} | {days:.2} | {legging} |", model[k], apr[k] * 100.0, group(fees[k]), group(slippage[k]), slippage[k] / capital[k] * 1e4);
        assert!(readme.lines().any(|l| l == row), "docs/costs.md's cost table should have the row\n{row}");
        found += 1;
    }
    assert_eq!(found, 9);
    // The prose: how many closes the entry was worked over at each size.
    bars_per_entry.sort_unstable();
    let sentence = format!("the entry is filled over {} closes at 1 M, {} at 10 M and {} at 100 M", bars_per_entry[0].1, bars_per_entry[1].1, bars_per_entry[2].1);
    assert!(readme.replace('\n', " ").contains(&sentence), "docs/costs.md should say: {sentence}");
}

/// The bars before the window feed the trailing estimates: a window starting two months into
/// the sample has an impact estimate at its first step, so its entry pays more than the fixed
/// slippage; the same window starting at the data's first bar has none there.
#[test]
fn the_window_s_first_step_sees_the_bars_before_it() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let base = std::fs::read_to_string(dir.join("basis.toml")).unwrap();
    let run = |start: Option<&str>| {
        let mut text = base.replacen("\n[costs]\n", "\n[costs]\nmodel = \"sqrt_impact\"\nimpact_window_days = 14\n", 1);
        if let Some(start) = start {
            text = text.replacen("\n[strategy]\n", &format!("\n[strategy]\nstart = \"{start}\"\n"), 1);
        }
        let config = basis::config::Config::from_toml_str(&text, "test", &dir).unwrap();
        let result = basis::app::backtest::run(&config).unwrap();
        let entry = result.summary.trades.iter().find(|t| t.reason == basis::model::TradeReason::Entry && t.leg == "spot").copied().unwrap();
        (entry.slippage / (entry.qty.abs() * entry.reference_price), result.warnings)
    };
    let fixed = config_fixed_spot_slippage(&base, &dir);
    let (late, late_warnings) = run(Some("2024-09-01T00:00:00Z"));
    assert!(late > fixed * 1.01, "the entry two months in pays impact: {late} vs fixed {fixed}");
    assert!(!late_warnings.iter().any(|w| w.contains("sqrt_impact has no estimate")), "{late_warnings:?}");
    let (first, first_warnings) = run(None);
    assert!((first - fixed).abs() < 1e-12, "no bars before the data's first: the fixed slippage only ({first})");
    assert!(first_warnings.iter().any(|w| w.contains("sqrt_impact has no estimate for the window's first")), "{first_warnings:?}");
}

fn config_fixed_spot_slippage(base: &str, dir: &std::path::Path) -> f64 {
    basis::config::Config::from_toml_str(base, "test", dir).unwrap().costs.spot_slippage_bps * 1e-4
}

/// A liquidation is a market order of the whole position: with `sqrt_impact` it slips past the
/// liquidation price by its size's impact too. A 5x carry of 10,000 shorts q coins with 20 of
/// margin each (q = 10,000 / 120 without impact; with it, q = 10,000 / (120 + 100 s), s =
/// 0.001 × √(10,000 / 120) the entry's impact); either way LP = (20 q + 100 q) / (1.004 q) =
/// 119.52…, and a bar to 150 liquidates it, filled at LP × (1 + 0.001 × √q) rather than at LP.
#[test]
fn a_liquidation_slips_its_size_s_impact() {
    let closes = [100.0, 100.0, 100.0];
    let timeline = flat_timeline(&closes, &[100.0, 100.0, 150.0], &[100.0, 100.0, 100.0], HOUR);
    let mut params = plain_params(10_000.0);
    params.leverage = 5.0;
    let q = 10_000.0 / 120.0;
    let liq = 10_000.0 / (q * 1.004);
    let liquidation_fill = |params: &basis::sim::EngineParams| {
        let summary = basis::sim::run(&timeline, params, &mut basis::model::NoLedger);
        summary.trades.iter().find(|t| t.reason == basis::model::TradeReason::Liquidation).map(|t| t.fill_price).expect("liquidated")
    };
    assert_close(liquidation_fill(&params), liq, 1e-9);
    params.market_costs = Some(std::sync::Arc::new(MarketCosts { perp_impact: vec![0.001; 3], ..Default::default() }));
    let entry_impact = 0.001 * q.sqrt();
    let q_with_impact = 10_000.0 / (120.0 + 100.0 * entry_impact);
    assert_close(liq, 120.0 / 1.004, 1e-9);
    assert_close(liquidation_fill(&params), liq * (1.0 + 0.001 * q_with_impact.sqrt()), 1e-9);
}

/// A sweep builds a timeline's market cost series once per cost model: configurations that
/// differ in other keys (the capital) share it; another `impact_k` builds its own. The shared
/// series prices fills as a backtest's own does (the sweep's rows equal the backtests', checked
/// in `readme_cost_table_matches_the_sweep`).
#[test]
fn a_sweep_shares_the_cost_series() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let base = std::fs::read_to_string(dir.join("basis.toml")).unwrap().replacen("\n[costs]\n", "\n[costs]\nmodel = \"sqrt_impact\"\n", 1);
    let config = |text: &str| basis::config::Config::from_toml_str(text, "test", &dir).unwrap();
    let first = config(&base);
    let markets = basis::app::sweep::Markets::load(&first).unwrap();
    let timeline = markets.timeline(&first).unwrap();
    let a = markets.market_costs(&first, &timeline).unwrap().expect("a series");
    let richer = config(&base.replace("initial_capital = 100000.0", "initial_capital = 5000000.0"));
    assert_eq!(richer.portfolio.initial_capital, 5_000_000.0);
    let b = markets.market_costs(&richer, &timeline).unwrap().expect("a series");
    assert!(std::sync::Arc::ptr_eq(&a, &b), "the same timeline and cost model share one series");
    let steeper = config(&base.replacen("model = \"sqrt_impact\"\n", "model = \"sqrt_impact\"\nimpact_k = 2.0\n", 1));
    let c = markets.market_costs(&steeper, &timeline).unwrap().expect("a series");
    assert!(!std::sync::Arc::ptr_eq(&a, &c));
    let k = a.perp_impact.iter().rposition(|v| v.is_finite()).expect("an estimate");
    assert_close(c.perp_impact[k], 2.0 * a.perp_impact[k], 1e-15);
}
