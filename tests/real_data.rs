//! The carry on real Binance history (../shared/data, or $BASIS_REAL_DATA): funding PnL and
//! per-year funding APR over window checked against figures computed here, independently, from
//! the raw files.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use basis::app::backtest;
use basis::measure::ledger::FullLedger;
use common::*;

/// (known-at ms, close) of a binance-daily kline CSV, parsed by hand.
fn daily_closes(path: &Path) -> Vec<(i64, f64)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e} (is ../shared/data there?)", path.display()));
    text.lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            let close_time = chrono::DateTime::parse_from_str(cells[6], "%Y-%m-%d %H:%M:%S%.f%:z").unwrap().timestamp_millis();
            (close_time + 1, cells[4].parse().unwrap())
        })
        .collect()
}

/// (settlement ms rounded to the second, interval h, rate, mark or NaN).
fn dump_settlements(dir: &Path, symbol: &str) -> Vec<(i64, f64, f64, f64)> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.sort();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with(&format!("{symbol}-fundingRate-")) {
            continue;
        }
        for line in std::fs::read_to_string(&file).unwrap().lines().skip(1) {
            let cells: Vec<&str> = line.split(',').collect();
            let t: i64 = cells[0].parse().unwrap();
            out.push(((t + 500) / 1000 * 1000, cells[1].parse().unwrap(), cells[2].parse().unwrap(), f64::NAN));
        }
    }
    out.sort_by_key(|s| s.0);
    out
}

fn rest_settlements(path: &Path) -> Vec<(i64, f64, f64, f64)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            let t = chrono::DateTime::parse_from_str(cells[1], "%Y-%m-%d %H:%M:%S%.f%:z").unwrap().timestamp_millis();
            let mark = if cells[3].is_empty() { f64::NAN } else { cells[3].parse().unwrap() };
            ((t + 500) / 1000 * 1000, 8.0, cells[2].parse().unwrap(), mark)
        })
        .collect()
}

fn year_start(year: i32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(year, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis()
}

/// Check the engine's funding against an independent sum, and return per-year realised APRs.
fn check_funding(
    ledger: &FullLedger,
    closes: &[(i64, f64)],
    settlements: &[(i64, f64, f64, f64)],
    engine_funding: f64,
) -> (usize, BTreeMap<i32, f64>) {
    let ts: Vec<i64> = ledger.rows().map(|r| r.ts_ms).collect();
    let (first, last) = (ts[0], *ts.last().unwrap());
    let mut expected = 0.0;
    let mut count = 0;
    let mut rate_by_year: BTreeMap<i32, f64> = BTreeMap::new();
    for &(t, _hours, rate, mark) in settlements {
        if t <= first || t > last {
            continue;
        }
        // Price known at settlement: the settlement's own mark, else the latest close at or before it.
        let bar = closes.iter().rev().find(|(known, _)| *known <= t).unwrap();
        let price = if mark.is_finite() { mark } else { bar.1 };
        // Quantity held going into the settlement: the row before the first step at or after it.
        let step = ts.partition_point(|&x| x < t);
        let qty = ledger.row(step - 1).perp_qty;
        assert!(qty < 0.0, "the always-on carry holds a short at every settlement");
        expected += -qty * rate * price;
        count += 1;
        let year = chrono::DateTime::from_timestamp_millis(t - 1).map(|d| chrono::Datelike::year(&d)).unwrap();
        *rate_by_year.entry(year).or_default() += rate;
    }
    let relative = (engine_funding - expected).abs() / expected.abs();
    assert!(relative < 1e-9, "engine funding {engine_funding} vs independent {expected} (relative {relative})");
    let aprs = rate_by_year
        .into_iter()
        .map(|(year, sum)| {
            let from = first.max(year_start(year));
            let to = last.min(year_start(year + 1));
            (year, sum / ((to - from) as f64 / (365.0 * DAY as f64)))
        })
        .collect();
    (count, aprs)
}

fn carry_config(symbol: &str, funding: &str) -> String {
    let data = real_data_dir();
    let d = data.display();
    format!(
        r#"
[data]
symbol = "{symbol}"
[data.spot]
format = "binance_klines"
path = "{d}/binance-daily/spot_{symbol}_1d_20210101_20241231.csv"
[data.perp]
format = "binance_klines"
path = "{d}/binance-daily/perp_{symbol}_1d_20210101_20241231.csv"
{funding}
[strategy]
mode = "always_on"
[portfolio]
leverage = 1.0
reserve_fraction = 0.0
top_up_source = "sell_spot"
"#
    )
}

#[test]
fn btc_always_on_carry_2021_2024_funding_matches_the_raw_files() {
    let data = real_data_dir();
    let funding = format!("[data.funding]\nformat = \"binance_funding\"\npath = \"{}/binance-funding/BTCUSDT-fundingRate-*.csv\"", data.display());
    let config = config_from(&carry_config("BTCUSDT", &funding));
    let result = backtest::run(&config).expect("backtest on real BTC data");
    assert_eq!(result.timeline.len(), 1461);
    assert_eq!(result.summary.liquidations, 0);
    let closes = daily_closes(&data.join("binance-daily/perp_BTCUSDT_1d_20210101_20241231.csv"));
    let settlements = dump_settlements(&data.join("binance-funding"), "BTCUSDT");
    let (count, aprs) = check_funding(&result.ledger, &closes, &settlements, result.metrics.funding_pnl);
    // Settlements in (2021-01-02 00:00, 2025-01-01 00:00]: 1460 days × 3.
    assert_eq!(count, 4380);
    assert_eq!(result.metrics.settlements_held, 4380);
    for (year, apr) in &aprs {
        let reported = result.metrics.funding_by_year[&year.to_string()].funding_apr_over_window;
        assert_close(reported, *apr, 1e-9);
    }
    // BTC funding was rich in 2021 and thin in 2022 (VENUES.md §4.2 cites +15 %/yr 2020-24 mean).
    assert!(aprs[&2021] > 0.15 && aprs[&2022] < 0.05, "{aprs:?}");
    let ledger_funding: f64 = result.ledger.rows().map(|r| r.pnl.funding).sum();
    assert_close(ledger_funding, result.metrics.funding_pnl, 1e-6);
}

#[test]
fn eth_carry_through_the_cli_reports_per_year_funding_in_metrics_json() {
    let data = real_data_dir();
    let funding = format!("[data.funding]\nformat = \"binance_rest\"\npath = \"{}/binance-daily/funding_ETHUSDT_20210101_20241231.csv\"", data.display());
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("eth.toml");
    std::fs::write(&config_path, format!("[run]\nname = \"eth\"\noutput_dir = \"{}\"\n{}", dir.path().join("reports").display(), carry_config("ETHUSDT", &funding))).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_basis")).args(["backtest", "--config"]).arg(&config_path).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("reports/eth/metrics.json")).unwrap()).unwrap();

    // The same run in memory gives the ledger for the independent check.
    let config = config_from(&carry_config("ETHUSDT", &funding));
    let result = backtest::run(&config).unwrap();
    let closes = daily_closes(&data.join("binance-daily/perp_ETHUSDT_1d_20210101_20241231.csv"));
    let settlements = rest_settlements(&data.join("binance-daily/funding_ETHUSDT_20210101_20241231.csv"));
    assert!(settlements.iter().filter(|s| s.3.is_finite()).count() > 1000, "mark prices from 2023-10-31 are used");
    let (count, aprs) = check_funding(&result.ledger, &closes, &settlements, metrics["funding_pnl"].as_f64().unwrap());
    // This REST export ends at 2024-12-31 16:00, one settlement short of the window's end.
    assert_eq!(count, 4379);
    for year in 2021..=2024 {
        let reported = metrics["funding_by_year"][year.to_string()]["funding_apr_over_window"].as_f64().unwrap();
        assert_close(reported, aprs[&year], 1e-9);
    }
    assert!(aprs[&2021] > 0.2, "ETH 2021 funding APR {}", aprs[&2021]);
}
