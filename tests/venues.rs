//! Venue rules on real and hand-made data: Binance's caps found in its own history, the `basis
//! caps` comparison on hourly Binance data, counterfactual funding against the printed rates,
//! per-venue APRs on the multi-venue table against an independent computation, and the
//! best-venue carry worked out by hand.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use basis::config::FundingFormat;
use basis::data::binance::load_funding;
use basis::render::series::at_limit;
use basis::app::caps::{self, RuleSet};
use basis::app::venues::{self, Columns, RotationSettings};
use basis::venue::Preset;
use common::*;
use polars::prelude::*;

fn preset(id: &str) -> Preset {
    Preset::load(id, Path::new(".")).unwrap()
}

fn ms(text: &str) -> i64 {
    basis::config::parse_time_ms("t", text).unwrap()
}

/// (settlement ms, rate) pairs.
type Settlements = Vec<(i64, f64)>;

/// Settlements of `symbol` in `year` at the preset's cap and at its floor, and the count.
fn capped_in_dumps(symbol: &str, year: i32) -> (Settlements, Settlements, usize) {
    let pattern = real_data_dir().join(format!("binance-funding/{symbol}-fundingRate-{year}-*.csv"));
    let source = funding_source(pattern.to_str().unwrap(), FundingFormat::BinanceFunding);
    let series = load_funding(&source, symbol, &mut Vec::new(), &mut Vec::new()).unwrap();
    let binance = preset("binance_usdm");
    let (mut at_cap, mut at_floor) = (Vec::new(), Vec::new());
    for s in series.iter() {
        let (cap, floor) = binance.limits_at(symbol, s.settle_ms, s.interval_hours);
        if at_limit(s.rate, cap, None) {
            at_cap.push((s.settle_ms, s.rate));
        }
        if at_limit(s.rate, None, floor) {
            at_floor.push((s.settle_ms, s.rate));
        }
    }
    (at_cap, at_floor, series.len())
}

#[test]
fn binance_history_hits_the_btc_cap_twice_in_2020_and_eth_once_in_2021() {
    let (cap, floor, n) = capped_in_dumps("BTCUSDT", 2020);
    assert_eq!(n, 1098, "BTCUSDT settlements in 2020");
    assert_eq!(cap, vec![(ms("2020-02-12T00:00:00Z"), 0.003)]);
    assert_eq!(floor, vec![(ms("2020-03-13T08:00:00Z"), -0.003)]);
    let (cap, floor, _) = capped_in_dumps("ETHUSDT", 2021);
    assert_eq!(cap, vec![(ms("2021-01-04T08:00:00Z"), 0.00375)]);
    assert!(floor.is_empty());
    // A rate a hair inside the cap is not capped.
    assert!(!at_limit(0.00299, Some(0.003), Some(-0.003)));
}

fn freqtrade_config(base: &str, start: &str, end: &str, extra: &str) -> basis::config::Config {
    config_from(&format!(
        r#"
[run]
report = false
[data]
symbol = "{base}USDT"
[data.freqtrade]
datadir = "{dir}"
pair = "{base}/USDT"
timeframe = "1h"
[strategy]
start = "{start}"
end = "{end}"
[portfolio]
leverage = 1.0
reserve_fraction = 0.0
top_up_source = "sell_spot"
[venue]
preset = "binance_usdm"
{extra}
"#,
        dir = real_data_dir().join("freqtrade-binance-1h").display(),
    ))
}

#[test]
fn caps_run_marks_the_capped_settlements_of_the_data_and_applies_user_caps() {
    // 2020 on Binance hourly BTC: the actual rule set holds the two capped settlements.
    let config = freqtrade_config("BTC", "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z", "");
    let base = config.venue.loaded.clone().unwrap();
    let rule_sets = vec![
        RuleSet::Actual,
        caps::user_cap("0.001", &base).unwrap(),
        caps::user_cap("0.04/1h", &base).unwrap(),
        RuleSet::Rules { label: "Hyperliquid".into(), preset: Box::new(preset("hyperliquid")) },
    ];
    let (outcomes, _) = caps::run(&config, &rule_sets, caps::CapsMode::Full).unwrap();
    let actual = &outcomes[0];
    let n = actual.settled.len();
    assert_eq!(n, 1098);
    assert_eq!(actual.settled.at_limit_count(), 2);
    assert_close(actual.share_at_cap * n as f64, 1.0, 1e-9);
    assert_close(actual.share_at_floor * n as f64, 1.0, 1e-9);
    // The actual run's funding equals the plain backtest's.
    let plain = basis::app::backtest::run(&config).unwrap();
    assert_close(actual.metrics.funding_pnl, plain.metrics.funding_pnl, 1e-6);

    // A ±0.1 % cap binds: every settlement within it, some at it, and none of the rates exceed it.
    let tight = &outcomes[1];
    assert!(tight.settled.funding.iter().all(|s| s.rate.abs() <= 0.001 + 1e-15));
    let at = tight.settled.at_limit_count();
    assert!(at > 0 && (0..tight.settled.len()).filter(|&k| tight.settled.at_limit[k]).all(|k| tight.settled.uncapped_rate[k].abs() > 0.001), "{at} capped");
    assert!(tight.settled.funding.iter().all(|s| s.interval_hours == 8.0));
    // The hourly user cap settles every hour; Hyperliquid's rules are the same formula and cap,
    // but averaged evenly and paid on the oracle (spot) price.
    let hourly = &outcomes[2];
    assert!(hourly.settled.len() > 8 * 1090 && hourly.settled.funding.iter().all(|s| s.interval_hours == 1.0));
    let hl = &outcomes[3];
    assert_eq!(hl.settled.len(), hourly.settled.len());
    assert!(outcomes.iter().all(|o| o.metrics.liquidations == 0));
}

/// `caps` on its default fixed path: every rule set holds the plain backtest's quantities, and
/// its funding is what those quantities receive under its settlements: Σ −q × rate × mark, with
/// q the perp held at the close before the settlement and the mark the one at it, re-priced
/// here from the backtest's ledger to 1e-9. Everything but funding is the backtest's.
#[test]
fn caps_on_a_fixed_path_reprice_the_held_quantities_under_each_rule_set() {
    // 2021 on Binance hourly BTC at 3x, so top-ups move the quantities held.
    let mut config = freqtrade_config("BTC", "2021-01-01T00:00:00Z", "2022-01-01T00:00:00Z", "");
    config.portfolio.leverage = 3.0;
    let base = config.venue.loaded.clone().unwrap();
    // Presets paid on the mark (OKX, Bybit) and user caps on Binance's formula.
    let rule_sets = vec![RuleSet::Actual, caps::user_cap("0.001", &base).unwrap(), caps::user_cap("0.04/1h", &base).unwrap(), RuleSet::Rules { label: "OKX".into(), preset: Box::new(preset("okx_swap")) }, RuleSet::Rules { label: "Bybit".into(), preset: Box::new(preset("bybit_linear")) }];
    let (outcomes, _) = caps::run(&config, &rule_sets, caps::CapsMode::FixedPath).unwrap();
    let plain = basis::app::backtest::run(&config).unwrap();
    assert_eq!(plain.metrics.liquidations, 0);
    assert!(plain.metrics.margin_top_ups > 0, "the path has top-ups");
    let rows: Vec<_> = (0..plain.ledger.len()).map(|i| plain.ledger.row(i)).collect();
    let reprice = |settled: &[basis::model::Settlement]| -> f64 {
        settled
            .iter()
            .map(|s| {
                let at = rows.partition_point(|r| r.ts_ms < s.settle_ms);
                if at == 0 || at >= rows.len() {
                    return 0.0;
                }
                assert_eq!(rows[at].ts_ms, s.settle_ms, "settlements fall on hourly closes");
                -rows[at - 1].perp_qty * s.rate * rows[at].mark_price
            })
            .sum()
    };
    let non_funding = plain.metrics.final_equity - plain.metrics.funding_pnl;
    for o in &outcomes {
        let expected = reprice(&o.settled.funding);
        assert_close(o.metrics.funding_pnl, expected, 1e-9 * expected.abs().max(1.0));
        // Only funding differs: the rest of the PnL is the plain backtest's.
        assert_close(o.metrics.final_equity - o.metrics.funding_pnl, non_funding, 1e-6);
        assert_eq!(o.top_ups.len(), outcomes[0].top_ups.len());
    }
    // The data's own row is the backtest.
    assert_close(outcomes[0].metrics.funding_pnl, plain.metrics.funding_pnl, 1e-9 * plain.metrics.funding_pnl.abs());
    assert_eq!(outcomes[0].metrics.max_drawdown, plain.metrics.max_drawdown);
}

#[test]
fn counterfactual_binance_funding_tracks_the_printed_rates() {
    // 2023-2025: Binance's formula on the raw perp/spot premium lands within 1.5 APR points of
    // the rates Binance printed (the proxy's bias sits mostly inside the ±0.05 % clamp, so this
    // rule set needs no de-biasing; tests/debias.rs has the de-biased figures).
    let data = freqtrade_config("BTC", "2023-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "");
    let cf = freqtrade_config("BTC", "2023-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "funding = \"counterfactual\"\npremium_debias = \"none\"");
    let actual = basis::app::backtest::run(&data).unwrap();
    let counterfactual = basis::app::backtest::run(&cf).unwrap();
    let (a, c) = (actual.metrics.funding_apr_over_window, counterfactual.metrics.funding_apr_over_window);
    assert!((a - c).abs() < 0.015, "actual {a}, counterfactual {c}");
    assert_eq!(counterfactual.metrics.settlements, actual.metrics.settlements);
    // Counterfactual rates sit on the 8 h grid, inside the BTC cap.
    assert!(counterfactual.settlements.iter().all(|s| s.settlement.settle_ms % (8 * HOUR) == 0 && s.settlement.rate.abs() <= 0.003));
}

/// (venue, coin) -> (settlement hour ms, rate), sorted, straight from the Parquet file.
fn multivenue_rows() -> BTreeMap<(String, String), Vec<(i64, f64)>> {
    let path = real_data_dir().join("multivenue-hourly/funding_rates.parquet");
    let frame = ParquetReader::new(std::fs::File::open(&path).unwrap()).finish().unwrap();
    let ts = frame.column("timestamp").unwrap().cast(&DataType::Datetime(TimeUnit::Microseconds, None)).unwrap().cast(&DataType::Int64).unwrap();
    let ts = ts.i64().unwrap();
    let venue = frame.column("venue").unwrap().str().unwrap().clone();
    let coin = frame.column("coin").unwrap().str().unwrap().clone();
    let rate = frame.column("funding_rate").unwrap().f64().unwrap().clone();
    let mut out: BTreeMap<(String, String), Vec<(i64, f64)>> = BTreeMap::new();
    for i in 0..frame.height() {
        let us = ts.get(i).unwrap();
        let hour = ((us as f64 / 3.6e9).round() as i64) * HOUR;
        out.entry((venue.get(i).unwrap().to_string(), coin.get(i).unwrap().to_string())).or_default().push((hour, rate.get(i).unwrap()));
    }
    for rows in out.values_mut() {
        rows.sort_by_key(|r| r.0);
    }
    out
}

#[test]
fn multivenue_aprs_match_an_independent_computation() {
    let path = real_data_dir().join("multivenue-hourly/funding_rates.parquet");
    let series = venues::load(&path, &Columns::default()).unwrap();
    let table = venues::apr_table(&series);
    let rows = multivenue_rows();
    assert_eq!(table.len(), 35, "7 venues x 5 coins");
    assert_eq!(rows.values().map(Vec::len).sum::<usize>(), 115_218);
    for row in &table {
        let raw = &rows[&(row.venue.clone(), row.coin.clone())];
        assert_eq!(row.settlements, raw.len(), "{} {}", row.venue, row.coin);
        // Each row covers the hours since the previous one, at most the venue's interval (8 h
        // for binance, bybit and okx; 1 h for the rest); the first row covers as much as the next.
        let max_hours = if ["binance", "bybit", "okx"].contains(&row.venue.as_str()) { 8 } else { 1 };
        let mut hours: Vec<i64> = raw.windows(2).map(|w| ((w[1].0 - w[0].0) / HOUR).min(max_hours)).collect();
        hours.insert(0, hours[0]);
        let expected = raw.iter().map(|r| r.1).sum::<f64>() / hours.iter().sum::<i64>() as f64 * 8760.0;
        assert!((row.funding_apr - expected).abs() <= 1e-12 * expected.abs().max(1e-3), "{} {}: {} vs {expected}", row.venue, row.coin, row.funding_apr);
    }
    // Plain cases by hand: Hyperliquid is gapless hourly (APR = mean rate x 8760); Binance BTC is
    // gapless 8-hourly (mean x 1095); Binance HYPE settles every 4 h (mean x 2190).
    let find = |v: &str, c: &str| table.iter().find(|r| r.venue == v && r.coin == c).unwrap();
    let mean = |v: &str, c: &str| {
        let raw = &rows[&(v.to_string(), c.to_string())];
        raw.iter().map(|r| r.1).sum::<f64>() / raw.len() as f64
    };
    assert_close(find("hyperliquid", "BTC").funding_apr, mean("hyperliquid", "BTC") * 8760.0, 1e-12);
    assert_close(find("binance", "BTC").funding_apr, mean("binance", "BTC") * 1095.0, 1e-12);
    assert_close(find("binance", "HYPE").funding_apr, mean("binance", "HYPE") * 2190.0, 1e-12);
    assert_eq!(find("binance", "HYPE").covered_hours, 4.0 * 1686.0);
    assert_eq!((find("binance", "HYPE").typical_interval_hours, find("okx", "HYPE").typical_interval_hours), (4.0, 4.0));
    assert_eq!((find("bybit", "HYPE").typical_interval_hours, find("dydx", "HYPE").typical_interval_hours), (8.0, 1.0));
    assert_eq!(find("kraken", "BTC").gap_hours, 9.0, "eight missing hours of 2 h and one of 3 h");
    // Figures of the table, to the basis point.
    assert_close(find("binance", "BTC").funding_apr, 0.0442, 5e-5);
    assert_close(find("hyperliquid", "BTC").funding_apr, 0.0908, 5e-5);
    assert_close(find("dydx", "SOL").funding_apr, -0.1505, 5e-5);
}

#[test]
fn best_venue_carry_by_hand() {
    // binance pays 0.03 % every 8 h for 20 days (32.85 % APR); hyperliquid 0.001 %/h for 10 days
    // (8.76 %), then 0.01 %/h (87.6 %).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("funding.csv");
    let t0 = ms("2025-01-01T00:00:00Z");
    let mut text = String::from("timestamp,venue,coin,funding_rate\n");
    let iso = |t: i64| chrono::DateTime::from_timestamp_millis(t).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    for h in 0..480 {
        if h % 8 == 0 {
            text.push_str(&format!("{},binance,BTC,0.0003\n", iso(t0 + h * HOUR)));
        }
        text.push_str(&format!("{},hyperliquid,BTC,{}\n", iso(t0 + h * HOUR + 7), if h < 240 { 0.00001 } else { 0.0001 }));
    }
    std::fs::write(&path, text).unwrap();
    let series = venues::load(&path, &Columns::default()).unwrap();
    let settings = RotationSettings::new(&["binance".into(), "hyperliquid".into()], 24, 0.02, 2.0).unwrap();
    let carries = venues::rotate("BTC", &series, &settings);
    let best = &carries[0];
    // Enters binance at 08:00 (the first hour a venue covers half the lookback). Hyperliquid's
    // trailing day passes binance's 32.85 % + 2 % once k of its 24 hours pay 0.01 %:
    // (k x 0.01 % + (24 - k) x 0.001 %) / 24 x 8760 > 34.85 % needs k >= 8, so it moves at hour
    // 247 (hours 240..=247). Binance pays at 16, 24, ..., 240 (29 settlements); hyperliquid at
    // 248..=479 (232 hours).
    assert_eq!(best.switches, 1);
    assert_close(best.funding, 29.0 * 0.0003 + 232.0 * 0.0001, 1e-15);
    let costs = (5.0 + 2.0) / 1e4 + (5.0 + 2.0) / 1e4 + (4.5 + 2.0) / 1e4;
    assert_close(best.costs, costs, 1e-15);
    assert_eq!(best.hours_by_venue["binance"], 247 - 8);
    assert_eq!(best.hours_by_venue["hyperliquid"], 479 - 247 + 1);
    assert_close(best.net_apr, (best.funding - costs) / (479.0 / 8760.0), 1e-12);
    // Holding binance alone: 60 settlements, one entry fee.
    let binance_only = carries.iter().find(|c| c.label == "binance only").unwrap();
    assert_close(binance_only.funding, 60.0 * 0.0003, 1e-15);
    assert_close(*binance_only.cumulative.last().unwrap(), 60.0 * 0.0003 - 7e-4, 1e-15);
    assert_eq!(binance_only.hours_by_venue["binance"], 473, "hours 0..=472");
}

#[test]
fn bad_multivenue_input_is_refused_with_its_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("funding.csv");
    std::fs::write(&path, "timestamp,venue,coin,funding_rate\n2025-01-01T00:00:00Z,okx,BTC,0.0001\n2025-01-01T08:00:00Z,okx,BTC,1.5\n").unwrap();
    let err = format!("{:#}", venues::load(&path, &Columns::default()).unwrap_err());
    assert!(err.contains("line 3") && err.contains("Divide percent values by 100"), "{err}");
    std::fs::write(&path, "timestamp,venue,coin,funding_rate\n2025-01-01T00:00:00Z,okx,BTC,0.0001\n2025-01-01T00:00:00Z,okx,BTC,0.0002\n").unwrap();
    let err = format!("{:#}", venues::load(&path, &Columns::default()).unwrap_err());
    assert!(err.contains("two different rates"), "{err}");
    let err = format!("{:#}", venues::load(&path, &Columns { rate: "rate".into(), ..Columns::default() }).unwrap_err());
    assert!(err.contains("missing column `rate`") && err.contains("funding_rate"), "{err}");
}

/// APRs over different windows are flagged, and `--common-window` puts each coin's venues on
/// the span all of them cover: on the multi-venue table dYdX's 1,000 hours (from 2026-01-24)
/// sit beside Binance's year until the window is common.
#[test]
fn venues_flag_differing_windows_and_offer_a_common_one() {
    let table = real_data_dir().join("multivenue-hourly/funding_rates.parquet");
    let apart = venues::study(&table, &Columns::default(), "BTC", 7.0, 0.10, 2.0, false).unwrap();
    let notes = venues::window_notes(&apart.aprs);
    assert!(notes.iter().any(|n| n.starts_with("BTC:") && n.contains("dydx 2026-01-24") && n.contains("--common-window")), "{notes:?}");
    assert!(venues::table_text(&apart).contains("note: BTC:"));
    let common = venues::study(&table, &Columns::default(), "BTC", 7.0, 0.10, 2.0, true).unwrap();
    assert!(venues::window_notes(&common.aprs).is_empty(), "{:?}", venues::window_notes(&common.aprs));
    let btc: Vec<_> = common.aprs.iter().filter(|a| a.coin == "BTC").collect();
    let starts: Vec<i64> = btc.iter().map(|a| basis::time::parse_time_ms("first", &a.first).unwrap()).collect();
    // Every venue starts within one 8 h interval of the others.
    assert!(starts.iter().max().unwrap() - starts.iter().min().unwrap() <= 8 * 3_600_000, "{btc:?}");
}
