//! Rule strategies: the engine's holding time, cooldown, hysteresis, side and size by hand; the
//! hurdle and a user target through the config; `funding_threshold` written as a rule giving the
//! same bytes on real data; and no look-ahead (a proptest: changing any input after t changes no
//! decision and no ledger row at or before t).

mod common;

use std::sync::Arc;

use basis::data::align::{MarketTimeline, Settlement};
use basis::measure::ledger::{FullLedger, TradeReason};
use basis::sim::policy::{Direction, RuleSeries};
use basis::sim::{self, EngineParams};
use common::*;
use proptest::prelude::*;

fn run(timeline: &MarketTimeline, params: &EngineParams) -> (FullLedger, sim::RunSummary) {
    let mut ledger = FullLedger::default();
    let summary = sim::run(timeline, params, &mut ledger);
    (ledger, summary)
}

/// Flat at 100 for `n` hourly steps.
fn flat(n: usize) -> MarketTimeline {
    let p = vec![100.0; n];
    flat_timeline(&p, &p, &p, HOUR)
}

fn rules(n: usize, enter: &[usize], exit: &[usize]) -> RuleSeries {
    RuleSeries {
        enter: (0..n).map(|i| enter.contains(&i)).collect(),
        side: vec![1; n],
        exit_long: (0..n).map(|i| exit.contains(&i)).collect(),
        exit_reverse: vec![false; n],
        size: vec![1.0; n],
        resize: false,
        min_hold_ms: 0,
        cooldown_ms: 0,
    }
}

fn with_rules(series: RuleSeries, direction: Direction) -> EngineParams {
    let mut params = plain_params(1_000.0);
    params.entry.mode = basis::config::EntryMode::Rules;
    params.entry.direction = direction;
    params.rules = Some(Arc::new(series));
    params
}

/// (step, reason) of each spot trade.
fn spot_trades(summary: &sim::RunSummary) -> Vec<(usize, TradeReason, f64)> {
    summary.trades.iter().filter(|t| t.leg == "spot").map(|t| (t.step, t.reason, t.qty)).collect()
}

#[test]
fn minimum_hold_and_cooldown_by_hand() {
    // Enter at 1 (the rule holds from 1). The exit at 3 comes 2 h after the entry, under the
    // 4 h minimum: ignored. The exit at 6 (5 h) closes. A 2 h cooldown keeps the entry at 7
    // out (1 h after the exit); 8 enters. 9 is the final close.
    let n = 10;
    let mut series = rules(n, &[1, 2, 3, 4, 5, 6, 7, 8, 9], &[3, 6]);
    series.min_hold_ms = 4 * HOUR;
    series.cooldown_ms = 2 * HOUR;
    let (_, summary) = run(&flat(n), &with_rules(series, Direction::Long));
    let steps: Vec<(usize, TradeReason)> = spot_trades(&summary).iter().map(|t| (t.0, t.1)).collect();
    assert_eq!(steps, vec![(1, TradeReason::Entry), (6, TradeReason::Exit), (8, TradeReason::Entry), (9, TradeReason::Final)]);
    // 1000 at 100: 5 units of spot and 500 of margin (1x, no costs).
    assert_close(summary.trades[0].qty.abs(), 5.0, 1e-12);
}

#[test]
fn an_exit_and_an_entry_into_the_same_carry_keep_it() {
    // Hysteresis written badly (exit and entry both true at 4): no round trip for nothing.
    let n = 6;
    let series = rules(n, &[1, 2, 3, 4], &[4]);
    let (_, summary) = run(&flat(n), &with_rules(series, Direction::Long));
    let steps: Vec<usize> = spot_trades(&summary).iter().map(|t| t.0).collect();
    assert_eq!(steps, vec![1, 5]);
    // With a cooldown the exit stands, and nothing re-enters for an hour.
    let n = 7;
    let mut series = rules(n, &[1, 2, 3, 4, 5, 6], &[4]);
    series.cooldown_ms = HOUR;
    let (_, summary) = run(&flat(n), &with_rules(series, Direction::Long));
    let steps: Vec<(usize, TradeReason)> = spot_trades(&summary).iter().map(|t| (t.0, t.1)).collect();
    assert_eq!(steps, vec![(1, TradeReason::Entry), (4, TradeReason::Exit), (5, TradeReason::Entry), (6, TradeReason::Final)]);
}

#[test]
fn side_picks_the_carry_and_a_flip_happens_in_one_step() {
    // Side −1 then +1; the reverse carry's exit holds at 3, where the rule asks for the long
    // carry: exit and entry at 3. Direction "long" would never open the reverse carry.
    let n = 5;
    let mut series = rules(n, &[1, 2, 3, 4], &[]);
    series.side = vec![-1, -1, -1, 1, 1];
    series.exit_reverse = vec![false, false, false, true, true];
    let (ledger, summary) = run(&flat(n), &with_rules(series.clone(), Direction::Both));
    let trades = spot_trades(&summary);
    assert_eq!(trades.iter().map(|t| (t.0, t.1)).collect::<Vec<_>>(), vec![(1, TradeReason::Entry), (3, TradeReason::Exit), (3, TradeReason::Entry), (4, TradeReason::Final)]);
    assert!(trades[0].2 < 0.0 && trades[2].2 > 0.0, "short spot first, then long: {trades:?}");
    assert_eq!(ledger.row(2).state, basis::measure::ledger::state::REVERSE_CARRY);
    let (_, summary) = run(&flat(n), &with_rules(series, Direction::Long));
    assert_eq!(spot_trades(&summary).iter().map(|t| t.0).collect::<Vec<_>>(), vec![3, 4]);
}

#[test]
fn size_sets_the_share_and_resizes_outside_the_band() {
    // 1000 of capital, 1x, no costs: a unit costs 100 of spot and 100 of margin.
    // size 0.6 at entry (step 1): 600 deployed, 3 units. At 3 the target is 0.3 (a 50 % move,
    // outside the 5 % band): 1.5 units sold and bought back, 150 of margin out. At 5 the target
    // 0.31 is inside the band (3.3 %): nothing. At 7 it is 1.0: 5 units wanted, and the 700 of
    // cash buys exactly the 3.5 missing (350 of spot, 350 of margin).
    let n = 9;
    let mut series = rules(n, &[1, 2, 3, 4, 5, 6, 7, 8], &[]);
    series.size = vec![0.6, 0.6, 0.6, 0.3, 0.3, 0.31, 0.31, 1.0, 1.0];
    series.resize = true;
    let mut params = with_rules(series, Direction::Long);
    params.rebalance_delta_threshold = 0.05;
    let (ledger, summary) = run(&flat(n), &params);
    let trades = spot_trades(&summary);
    assert_eq!(trades.iter().map(|t| (t.0, t.1)).collect::<Vec<_>>(), vec![(1, TradeReason::Entry), (3, TradeReason::Resize), (7, TradeReason::Resize), (8, TradeReason::Final)]);
    assert_close(trades[0].2, 6.0 * 100.0 / 200.0, 1e-12);
    assert_close(trades[1].2, -1.5, 1e-12);
    assert_close(trades[2].2, 3.5, 1e-12);
    assert_close(ledger.row(3).spot_qty, 1.5, 1e-12);
    assert_close(ledger.row(3).perp_qty, -1.5, 1e-12);
    assert_close(ledger.row(3).perp_margin, 150.0, 1e-9);
    assert_close(ledger.row(3).cash, 700.0, 1e-9);
    assert_close(ledger.row(7).spot_qty, 5.0, 1e-12);
    assert_close(ledger.row(7).perp_margin, 500.0, 1e-9);
    assert_close(ledger.row(7).cash, 0.0, 1e-9);
    assert_eq!(summary.resizes, 2);
}

/// A fresh temporary folder, removed when dropped.
fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("basis-rules-{name}-")).tempdir().unwrap()
}

/// A CSV of (time, value) rows, one per hour of `timeline` from step `from`.
fn series_csv(path: &std::path::Path, timeline: &MarketTimeline, values: &[f64]) {
    let mut text = String::from("time,value\n");
    for (t, v) in timeline.ts_ms.iter().zip(values) {
        if v.is_nan() {
            text.push_str(&format!("{t},\n"));
        } else {
            text.push_str(&format!("{t},{v}\n"));
        }
    }
    std::fs::write(path, text).unwrap();
}

fn rules_config(dir: &std::path::Path, strategy: &str) -> basis::config::Config {
    config_from(&format!(
        "[data]\nsymbol = \"TEST\"\nspot = {{ path = \"x.csv\", format = \"binance_klines\" }}\nperp = {{ path = \"x.csv\", format = \"binance_klines\" }}\nfunding = {{ path = \"x.csv\", format = \"binance_funding\" }}\n\n[[signal]]\nname = \"expected\"\npath = \"{}\"\n\n[strategy]\n{strategy}\n\n[costs]\nspot_taker_bps = 10\nperp_taker_bps = 5\nspot_slippage_bps = 2\nperp_slippage_bps = 2\n",
        dir.join("expected.csv").display()
    ))
}

#[test]
fn the_hurdle_enters_only_when_the_expected_carry_pays_the_round_trip() {
    // Round trip: 2 × ((10 + 2) + (5 + 2)) bp = 38 bp. Over 7 days an APR must beat
    // 0.0038 × 365 / 7 = 19.814 %: 19.8 % does not, 19.9 % does; a reverse side needs −19.9 %.
    let dir_guard = scratch("hurdle");
    let dir = dir_guard.path();
    let timeline = flat(4);
    series_csv(&dir.join("expected.csv"), &timeline, &[0.198, 0.199, -0.199, f64::NAN]);
    let config = rules_config(&dir, "mode = \"rules\"\ndirection = \"both\"\nenter = \"1\"\nexit = \"0\"\nside = \"sign(expected)\"\nhurdle_days = 7\nhurdle_apr = \"expected\"");
    let params = basis::config::engine_params(&config);
    assert_close(basis::signal::rules::round_trip_cost(&params.costs, 1.0), 0.0038, 1e-15);
    let compiled = basis::signal::rules::compile(&config, &timeline, &params.costs, 1.0).unwrap().unwrap();
    // The NaN row leaves the last value standing (one usual gap): it passes too.
    assert_eq!(compiled.series.enter, vec![false, true, true, true]);
    assert_eq!(compiled.series.side, vec![1, 1, -1, -1]);
}

#[test]
fn a_target_series_sizes_sides_and_exits() {
    let dir_guard = scratch("target");
    let dir = dir_guard.path();
    let timeline = flat(6);
    series_csv(&dir.join("expected.csv"), &timeline, &[0.0; 6]);
    series_csv(&dir.join("target.csv"), &timeline, &[0.0, 0.5, 0.5, -1.0, 0.0, 0.0]);
    let target = format!("mode = \"target\"\ndirection = \"both\"\n[strategy.target]\npath = \"{}\"", dir.join("target.csv").display());
    let config = rules_config(&dir, &target);
    let mut warnings = Vec::new();
    let compiled = basis::app::pipeline::engine_params_for(&config, &timeline, &mut warnings, &mut Vec::new()).unwrap();
    // The config's decisions on 1000 of capital, 1x, without costs.
    let mut params = plain_params(1_000.0);
    params.entry = compiled.entry;
    params.rules = compiled.rules;
    let (_, summary) = run(&timeline, &params);
    let trades = spot_trades(&summary);
    // Half the capital long at 1 (500: 2.5 units), reverse at full size at 3, flat at 4.
    assert_eq!(trades.iter().map(|t| (t.0, t.1)).collect::<Vec<_>>(), vec![(1, TradeReason::Entry), (3, TradeReason::Exit), (3, TradeReason::Entry), (4, TradeReason::Exit)]);
    assert_close(trades[0].2, 2.5, 1e-12);
    assert!(trades[2].2 < -4.9, "the reverse carry at full size: {trades:?}");
    // Out of [−1, 1]: refused with the file, row and column.
    series_csv(&dir.join("target.csv"), &timeline, &[0.0, 1.5, 0.5, -1.0, 0.0, 0.0]);
    let err = basis::app::pipeline::engine_params_for(&config, &timeline, &mut warnings, &mut Vec::new()).unwrap_err().to_string();
    assert!(err.contains("target.csv") && err.contains("value") && err.contains("[−1, 1]"), "{err}");
    // Direction "long" with a reverse target is refused, not silently skipped.
    series_csv(&dir.join("target.csv"), &timeline, &[0.0, 0.5, 0.5, -1.0, 0.0, 0.0]);
    let config = rules_config(&dir, &target.replace("direction = \"both\"", "direction = \"long\""));
    let err = basis::app::pipeline::engine_params_for(&config, &timeline, &mut warnings, &mut Vec::new()).unwrap_err().to_string();
    assert!(err.contains("direction = \"both\""), "{err}");
}

#[test]
fn unknown_names_and_bad_rules_say_what_is_available() {
    let dir_guard = scratch("errors");
    let dir = dir_guard.path();
    let timeline = flat(3);
    series_csv(&dir.join("expected.csv"), &timeline, &[0.0; 3]);
    let compile = |strategy: &str| -> String {
        let config = rules_config(&dir, strategy);
        let params = basis::config::engine_params(&config);
        match basis::signal::rules::compile(&config, &timeline, &params.costs, 1.0) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    let err = compile("mode = \"rules\"\nenter = \"fundng_apr > 0.1\"\nexit = \"0\"");
    assert!(err.contains("unknown signal `fundng_apr`") && err.contains("funding_predicted_apr") && err.contains("expected"), "{err}");
    let err = compile("mode = \"rules\"\nenter = \"basis_bp = 3\"\nexit = \"0\"");
    assert!(err.contains("strategy.enter") && err.contains("=="), "{err}");
    let err = compile("mode = \"rules\"\nenter = \"ema(basis_bp)\"\nexit = \"0\"");
    assert!(err.contains("ema() takes 2"), "{err}");
    let err = compile("mode = \"rules\"\nenter = \"1\"\nexit = \"held > 0\"\nsize = \"held\"");
    assert!(err.contains("strategy.size") && err.contains("held"), "{err}");
}

/// `funding_threshold` and the same rule written out give the same bytes (ledger, trades,
/// funding, metrics) on Binance BTC hourly 2019–2026.
#[test]
fn funding_threshold_written_as_a_rule_gives_the_same_bytes_on_real_data() {
    let out_guard = scratch("same-bytes");
    let out = out_guard.path();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/examples/freqtrade-btc-1h.toml");
    let run_with = |name: &str, sets: &[&str]| -> std::path::PathBuf {
        let mut all: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        all.push(format!("run.name = \"{name}\""));
        all.push(format!("run.output_dir = \"{}\"", out.display()));
        all.push("run.report = false".into());
        let config = basis::config::load_with_overrides(&example, &all).unwrap();
        basis::app::backtest::run_to_folder(&config, Some(&example), false).unwrap().1
    };
    let common = ["strategy.direction = \"both\"", "strategy.lookback_hours = 72"];
    let threshold = run_with("threshold", &[common[0], common[1], "strategy.mode = \"funding_threshold\"", "strategy.entry_funding_apr = 0.10", "strategy.exit_funding_apr = 0.02"]);
    let rules = run_with(
        "rules",
        &[
            common[0],
            common[1],
            "strategy.mode = \"rules\"",
            "strategy.enter = \"abs(funding_trailing_apr) > 0.10\"",
            "strategy.side = \"sign(funding_trailing_apr)\"",
            "strategy.exit = \"held * funding_trailing_apr < 0.02\"",
        ],
    );
    for file in ["ledger.parquet", "trades.parquet", "funding.parquet", "metrics.json"] {
        let (a, b) = (std::fs::read(threshold.join(file)).unwrap(), std::fs::read(rules.join(file)).unwrap());
        assert!(a == b, "{file} differs between funding_threshold and its rule");
    }
    // And the rule trades: several round trips, both carries.
    let trades = std::fs::read_to_string(threshold.join("metrics.json")).unwrap();
    assert!(trades.contains("\"entries\""), "metrics name the entries");
}

/// A random market with settled funding every 8 h (from before the start) and a user series.
fn market(prices: &[f64], rates: &[f64]) -> MarketTimeline {
    let highs: Vec<f64> = prices.iter().map(|p| p * 1.002).collect();
    let lows: Vec<f64> = prices.iter().map(|p| p * 0.998).collect();
    let mut t = flat_timeline(prices, &highs, &lows, HOUR);
    t.symbol = "BTCUSDT".into();
    t.perp = prices.iter().enumerate().map(|(i, p)| p * (1.0 + 0.0004 * ((i % 7) as f64 - 3.0))).collect();
    t.mark = t.perp.clone();
    // Every settlement from 48 h before the first step; those inside the window are paid at the
    // mark of the step that holds them.
    let last = *t.ts_ms.last().unwrap();
    t.funding = rates
        .iter()
        .enumerate()
        .map(|(k, &rate)| {
            let settle_ms = T0 - 48 * HOUR + k as i64 * 8 * HOUR;
            let price = if settle_ms > T0 && settle_ms <= last { t.mark[t.ts_ms.partition_point(|&x| x < settle_ms)] } else { f64::NAN };
            Settlement { settle_ms, rate, interval_hours: 8.0, price }
        })
        .collect();
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// Changing every input after step k (prices, bar ranges, settlements, the user's series)
    /// changes no decision and no ledger row at or before k, for a rule over every built-in
    /// signal and every transform.
    #[test]
    fn no_decision_looks_ahead(
        moves in prop::collection::vec(-0.03f64..0.03, 60..90),
        rates in prop::collection::vec(-0.001f64..0.002, 20),
        user in prop::collection::vec(-1.0f64..1.0, 90),
        cut in 5usize..55,
        shock in 0.5f64..1.5,
    ) {
        let dir_guard = scratch(&format!("lookahead-{cut}-{}", (shock * 1e6) as i64));
    let dir = dir_guard.path();
        let mut prices = vec![100.0];
        for m in &moves { let last = *prices.last().unwrap(); prices.push(last * (1.0 + m)); }
        let base = market(&prices, &rates);
        let k = cut.min(base.len() - 2);
        let t_cut = base.ts_ms[k];
        // After k: every price scaled, every later settlement and user value changed.
        let shocked_prices: Vec<f64> = prices.iter().enumerate().map(|(i, p)| if i > k { p * shock } else { *p }).collect();
        let shocked_rates: Vec<f64> = rates.iter().enumerate().map(|(j, r)| if T0 - 48 * HOUR + j as i64 * 8 * HOUR > t_cut { -r * 3.0 } else { *r }).collect();
        let shocked = market(&shocked_prices, &shocked_rates);
        let user_after: Vec<f64> = user.iter().enumerate().map(|(i, v)| if i > k { -v } else { *v }).collect();
        let strategy = "mode = \"rules\"\ndirection = \"both\"\nlookback_hours = 24\nenter = \"abs(funding_predicted_apr) > 0.05 and zscore(basis_bp, 6h) < 2 or ema(expected, 4h) > 0.2 or change(funding_last_apr, 8h) > 0.1\"\nside = \"sign(funding_trailing_apr + mean(expected, 3h) + lag(funding_rate, 2h) * 100)\"\nsize = \"clip(0.5 + std(basis_bp, 5h) / 10, 0, 1)\"\nexit = \"held * funding_trailing_apr(12h) < 0 or expected < -0.5\"\nmin_hold_hours = 2\ncooldown_hours = 1\nhurdle_days = 3\nhurdle_apr = \"funding_trailing_apr\"";
        let config_text = |file: &str| format!(
            "[data]\nsymbol = \"BTCUSDT\"\nspot = {{ path = \"x.csv\", format = \"binance_klines\" }}\nperp = {{ path = \"x.csv\", format = \"binance_klines\" }}\nfunding = {{ path = \"x.csv\", format = \"binance_funding\" }}\n\n[[signal]]\nname = \"expected\"\npath = \"{}\"\n\n[strategy]\n{strategy}\nclose_at_end = false\n\n[venue]\npreset = \"binance_usdm\"\n",
            dir.join(file).display()
        );
        series_csv(&dir.join("a.csv"), &base, &user);
        series_csv(&dir.join("b.csv"), &shocked, &user_after);
        let (config_a, config_b) = (config_from(&config_text("a.csv")), config_from(&config_text("b.csv")));
        let params_a = basis::app::pipeline::engine_params_for(&config_a, &base, &mut Vec::new(), &mut Vec::new()).unwrap();
        let params_b = basis::app::pipeline::engine_params_for(&config_b, &shocked, &mut Vec::new(), &mut Vec::new()).unwrap();
        let (ra, rb) = (params_a.rules.as_deref().unwrap(), params_b.rules.as_deref().unwrap());
        prop_assert_eq!(&ra.enter[..=k], &rb.enter[..=k]);
        prop_assert_eq!(&ra.side[..=k], &rb.side[..=k]);
        prop_assert_eq!(&ra.exit_long[..=k], &rb.exit_long[..=k]);
        prop_assert_eq!(&ra.exit_reverse[..=k], &rb.exit_reverse[..=k]);
        for i in 0..=k {
            prop_assert!(ra.size[i] == rb.size[i] || (ra.size[i].is_nan() && rb.size[i].is_nan()), "size at {}", i);
        }
        let (la, sa) = run(&base, &params_a);
        let (lb, sb) = run(&shocked, &params_b);
        for i in 0..=k {
            let (a, b) = (la.row(i), lb.row(i));
            prop_assert_eq!(a.equity, b.equity, "equity at {}", i);
            prop_assert_eq!(a.state, b.state);
            prop_assert_eq!(a.spot_qty, b.spot_qty);
            prop_assert_eq!(a.perp_qty, b.perp_qty);
        }
        let before = |s: &sim::RunSummary| s.trades.iter().filter(|t| t.step <= k).map(|t| (t.step, t.reason, t.qty)).collect::<Vec<_>>();
        prop_assert_eq!(before(&sa), before(&sb));
    }
}

/// Regimes by hand: 5 units long (1000 at 100, 1x), flat prices, no costs. Settlements at
/// steps 2 (0.01 %: the baseline), 4 (−0.02 %), 5 (−0.01 %) and 7 (+0.03 %) pay 500 × rate:
/// +0.05, −0.10, −0.05, +0.15. Each interval's PnL and hours go to the rate that settled it:
/// baseline 2 h / +0.05, negative 3 h / −0.15, positive 2 h / +0.15, and the 2 h after the last
/// settlement (to the final close at 9) to `after_last_settlement`. One negative streak of two
/// settlements (16 h of 8-hour rates).
#[test]
fn regimes_by_hand() {
    let mut timeline = flat(10);
    timeline.funding = vec![event_at(&timeline, 2, 0.0001, 100.0), event_at(&timeline, 4, -0.0002, 100.0), event_at(&timeline, 5, -0.0001, 100.0), event_at(&timeline, 7, 0.0003, 100.0)].into();
    let (_, summary) = run(&timeline, &plain_params(1_000.0));
    let metrics = basis::measure::metrics::compute(&summary, "TEST", true);
    let r = metrics.regimes.expect("a pair run tracks regimes");
    assert_close(r.pnl["baseline"], 0.05, 1e-12);
    assert_close(r.pnl["negative"], -0.15, 1e-12);
    assert_close(r.pnl["positive"], 0.15, 1e-12);
    assert_close(r.pnl["after_last_settlement"], 0.0, 1e-12);
    assert_close(r.pnl.values().sum::<f64>(), summary.final_equity - 1_000.0, 1e-9);
    assert_close(r.held_days["baseline"] * 24.0, 2.0, 1e-9);
    assert_close(r.held_days["negative"] * 24.0, 3.0, 1e-9);
    assert_close(r.held_days["positive"] * 24.0, 2.0, 1e-9);
    assert_close(r.held_days["after_last_settlement"] * 24.0, 2.0, 1e-9);
    assert_eq!(r.at_baseline_share, 0.25);
    assert_eq!((r.negative_streaks.count, r.negative_streaks.longest_settlements), (1, 2));
    assert_eq!(r.negative_streaks.longest_hours, 16.0);
    assert_eq!(r.negative_streaks.lengths.get("2-3"), Some(&1));
    assert_eq!(r.round_trips, 1);
    assert_close(r.time_in_market, 1.0, 1e-12);
    // Cap and floor from the venue's limits: ±0.02 % here puts one settlement at each.
    let mut r = r;
    r.count_limits(&summary.window_settlements, &|_, _| (Some(0.0002), Some(-0.0002)));
    assert_eq!((r.at_cap_share, r.at_floor_share), (Some(0.25), Some(0.25)));
}

/// The price and settlement signals by hand: perp 101 and mark 100.5 over spot 100 are 100 and
/// 50 bp; the last settled rate of 0.02 % over 4 h is 0.0002 / 4 × 8760 = 43.8 % APR, from its
/// settlement time on (NaN before).
#[test]
fn price_and_settlement_signals_by_hand() {
    let dir_guard = scratch("signals");
    let dir = dir_guard.path();
    let mut timeline = flat(4);
    timeline.perp = vec![101.0; 4];
    timeline.mark = vec![100.5; 4];
    timeline.funding = vec![Settlement::unpriced(timeline.ts_ms[2], 0.0002, 4.0)].into();
    series_csv(&dir.join("expected.csv"), &timeline, &[0.0; 4]);
    let config = rules_config(&dir, "mode = \"rules\"\nenter = \"1\"\nexit = \"0\"");
    let mut signals = basis::signal::Signals::new(&config, &timeline).unwrap();
    for v in signals.column("basis_bp").unwrap() {
        assert_close(v, 100.0, 1e-9);
    }
    for v in signals.column("mark_basis_bp").unwrap() {
        assert_close(v, 50.0, 1e-9);
    }
    let last = signals.column("funding_last_apr").unwrap();
    assert!(last[0].is_nan() && last[1].is_nan());
    assert_close(last[2], 0.438, 1e-12);
    assert_close(last[3], 0.438, 1e-12);
    let rate = signals.column("funding_rate").unwrap();
    assert_eq!(rate[3], 0.0002);
    // Without [data.dated] the dated basis says what it needs.
    let err = signals.column("dated_basis_apr").unwrap_err().to_string();
    assert!(err.contains("[data.dated]"), "{err}");
    // The 1 h change of the last APR: unknown while the hour before is.
    let e = basis::signal::expr::parse("change(funding_last_apr, 1h)").unwrap();
    let change = signals.eval(&e, "test", f64::NAN).unwrap();
    assert!(change[2].is_nan(), "the hour before the first settlement is unknown");
    assert_eq!(change[3], 0.0);
}

/// The funding spread between two venues, by hand, time-weighted: A settles 0.03 % every 8 h,
/// B 0.002 % every hour. Over 24 h, A pays 3 × 0.0003 / 24 h × 8760 = 32.85 % APR and B
/// 24 × 0.00002 / 24 h × 8760 = 17.52 %: the spread is 15.33 points at every step (the history
/// reaches back 48 h before the first).
#[test]
fn the_funding_spread_between_venues_by_hand() {
    let dir_guard = scratch("spread");
    let dir = dir_guard.path();
    let mut a = flat(30);
    let mut b = flat(30);
    a.funding = (0..12).map(|k| Settlement::unpriced(T0 - 48 * HOUR + k * 8 * HOUR, 0.0003, 8.0)).collect();
    b.funding = (0..96).map(|k| Settlement::unpriced(T0 - 48 * HOUR + k * HOUR, 0.00002, 1.0)).collect();
    series_csv(&dir.join("expected.csv"), &a, &[0.0; 30]);
    let config = rules_config(&dir, "mode = \"rules\"\nenter = \"1\"\nexit = \"0\"\nlookback_hours = 24");
    let mut signals = basis::signal::Signals::new(&config, &a).unwrap().with_peers(vec![("B".into(), &b)]);
    let spread = signals.column("funding_spread_apr").unwrap();
    for v in &spread[..] {
        assert_close(*v, 0.3285 - 0.1752, 1e-12);
    }
    // Alone, it says what it needs.
    let mut alone = basis::signal::Signals::new(&config, &a).unwrap();
    assert!(alone.column("funding_spread_apr").unwrap_err().to_string().contains("another pair of the same coin"));
}
