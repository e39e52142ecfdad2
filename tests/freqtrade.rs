//! The carry on Binance hourly history 2019–2026, read from the freqtrade data directory in
//! ../shared/data/freqtrade-binance-1h, checked against figures computed here independently from
//! the feather files: funding PnL, per-year funding APR over window, the stale-spot spans, and the
//! hour a 3x short is liquidated.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use basis::config::{default_brackets, Config};
use basis::measure::ledger::events;
use basis::time::{year_of, year_start_ms, MS_PER_YEAR};
use common::*;
use polars::prelude::*;

fn freqtrade_dir() -> PathBuf {
    real_data_dir().join("freqtrade-binance-1h")
}

/// A feather candle file as (open-time ms, column values by name).
struct Candles {
    date_ms: Vec<i64>,
    columns: BTreeMap<String, Vec<f64>>,
}

impl Candles {
    fn read(path: &Path) -> Candles {
        let frame = IpcReader::new(std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).finish().unwrap();
        let date = frame.column("date").unwrap().cast(&DataType::Datetime(TimeUnit::Milliseconds, None)).unwrap().cast(&DataType::Int64).unwrap();
        let date_ms = date.i64().unwrap().iter().map(|v| v.unwrap()).collect();
        let mut columns = BTreeMap::new();
        for name in ["open", "high", "low", "close", "volume"] {
            let values = frame.column(name).unwrap().cast(&DataType::Float64).unwrap();
            columns.insert(name.to_string(), values.f64().unwrap().iter().map(|v| v.unwrap()).collect());
        }
        Candles { date_ms, columns }
    }

    fn col(&self, name: &str) -> &[f64] {
        &self.columns[name]
    }

    /// Value of `name` of the bar that closed last at or before `t` (close = open + 1 h).
    fn as_of(&self, t: i64, name: &str) -> Option<f64> {
        let k = self.date_ms.partition_point(|&d| d + HOUR <= t);
        (k > 0).then(|| self.col(name)[k - 1])
    }

    /// Value of `name` of the bar closing exactly at `t`.
    fn closing_at(&self, t: i64, name: &str) -> Option<f64> {
        self.date_ms.binary_search(&(t - HOUR)).ok().map(|k| self.col(name)[k])
    }
}

struct Pair {
    perp: Candles,
    mark: Candles,
    funding: Candles,
}

fn pair(base: &str) -> Option<Pair> {
    let dir = freqtrade_dir().join("binance/futures");
    if !dir.is_dir() {
        assert!(std::env::var_os("CI").is_none(), "{} is missing", dir.display());
        eprintln!("skipped: {} is missing", dir.display());
        return None;
    }
    Some(Pair {
        perp: Candles::read(&dir.join(format!("{base}_USDT_USDT-1h-futures.feather"))),
        mark: Candles::read(&dir.join(format!("{base}_USDT_USDT-1h-mark.feather"))),
        funding: Candles::read(&dir.join(format!("{base}_USDT_USDT-1h-funding_rate.feather"))),
    })
}

fn config(base: &str, start_ms: i64, extra: &str) -> Config {
    config_from(&format!(
        r#"
[data]
symbol = "{base}USDT"
[data.freqtrade]
datadir = "{dir}"
pair = "{base}/USDT"
timeframe = "1h"
[strategy]
start = "{start}"
{extra}
"#,
        dir = freqtrade_dir().display(),
        start = chrono::DateTime::from_timestamp_millis(start_ms).unwrap().to_rfc3339(),
    ))
}

/// Always-on 1x carry from the first settlement to the last: funding PnL, settlement count and
/// per-year realised APR against an independent computation from the feather files.
fn check_carry(base: &str, expected_settlements: usize) {
    let Some(data) = pair(base) else { return };
    let first_settlement = data.funding.date_ms[0];
    let config = config(base, first_settlement, "[portfolio]\nleverage = 1.0\nreserve_fraction = 0.0\ntop_up_source = \"sell_spot\"");
    let result = basis::app::backtest::run(&config).unwrap();
    let ts = result.ledger.ts_ms();
    let perp_qty = result.ledger.column("perp_qty").unwrap();
    let (first_ts, last_ts) = (ts[0], ts[ts.len() - 1]);
    // The run starts at the first perp close at or after the first settlement (ETH's perp bars
    // begin an hour after its first settlement).
    assert!(first_ts >= first_settlement && first_ts - first_settlement <= HOUR, "the run starts at the first settlement");
    // It ends at the last close both spot and perp have (a candle closes an hour after its date).
    let spot = Candles::read(&freqtrade_dir().join(format!("binance/{base}_USDT-1h.feather")));
    let covered_last = (spot.date_ms[spot.date_ms.len() - 1] + HOUR).min(data.perp.date_ms[data.perp.date_ms.len() - 1] + HOUR);
    assert_eq!(last_ts, covered_last, "the run ends where spot and perp both end");

    let mut expected = 0.0;
    let mut held = 0;
    let mut rate_by_year: BTreeMap<i32, f64> = BTreeMap::new();
    for (k, &settle) in data.funding.date_ms.iter().enumerate() {
        if settle <= first_ts || settle > last_ts {
            continue;
        }
        let rate = data.funding.col("open")[k];
        // Price known at the settlement: the mark bar closed at or before it; before the mark
        // series starts, the perp's.
        let price = data.mark.as_of(settle, "close").or_else(|| data.perp.as_of(settle, "close")).unwrap();
        // The position held then: the row before the step that contains the settlement.
        let step = ts.partition_point(|&t| t < settle);
        let qty = perp_qty[step - 1];
        assert!(qty < 0.0, "short perp held at {settle}");
        expected += -qty * rate * price;
        held += 1;
        *rate_by_year.entry(year_of(settle - 1)).or_default() += rate; // side +1: short perp
    }
    assert_eq!(held, expected_settlements);
    assert_eq!(result.metrics.settlements_held, held);
    let actual = result.metrics.funding_pnl;
    assert!((actual - expected).abs() <= 1e-9 * expected.abs(), "{base}: funding PnL {actual} vs independent {expected}");

    for (year, rate_sum) in &rate_by_year {
        let from = first_ts.max(year_start_ms(*year));
        let to = last_ts.min(year_start_ms(year + 1));
        let apr = rate_sum / ((to - from) as f64 / MS_PER_YEAR);
        let reported = result.metrics.funding_by_year[&year.to_string()].funding_apr_over_window;
        assert!((reported - apr).abs() < 1e-12, "{base} {year}: funding APR over window {reported} vs {apr}");
    }
    assert_eq!(rate_by_year.len(), 8, "2019 to 2026");
}

#[test]
fn btc_hourly_carry_funding_matches_the_feather_files() {
    // From the first settlement to the spot's last close (2026-05-16 19:00): the perp runs 13
    // hours longer, but the window ends where the spot does, so the 2026-05-17 00:00 settlement
    // falls outside it.
    check_carry("BTC", 7321);
}

#[test]
fn eth_hourly_carry_funding_matches_the_feather_files() {
    check_carry("ETH", 7087);
}

#[test]
fn spot_outages_are_masked_and_the_real_dislocation_is_not() {
    let Some(data) = pair("BTC") else { return };
    let config = config("BTC", data.funding.date_ms[0], "");
    let result = basis::app::backtest::run(&config).unwrap();
    let spans = &result.timeline.stale_spans;
    let t = |text: &str| basis::config::parse_time_ms("test", text).unwrap();
    let covered = |at: i64| spans.iter().any(|s| s.from_ms <= at && at <= s.to_ms);
    // Step times are bar closes: the 2023-03-24 11:00 bar (spot frozen at 28080 while the perp
    // fell 186 bp) closes at 12:00, then a zero-volume bar and a missing one.
    for at in ["2023-03-24T12:00:00Z", "2023-03-24T13:00:00Z", "2023-03-24T14:00:00Z", "2021-02-11T03:00:00Z", "2021-02-11T04:00:00Z", "2021-02-11T05:00:00Z"] {
        assert!(covered(t(at)), "{at} is not masked; spans: {spans:?}");
    }
    // 2020-03-13 02:00 (−257 bp on heavy volume) was a real dislocation.
    for at in ["2020-03-13T02:00:00Z", "2020-03-13T03:00:00Z", "2020-03-13T04:00:00Z"] {
        assert!(!covered(t(at)), "{at} is masked but was a real dislocation");
    }
    // Every masked row is flagged, and none traded (the last row closes the position regardless).
    let flags = result.ledger.event_flags();
    let masked_rows = flags.iter().filter(|f| **f & i32::from(events::MASKED) != 0).count();
    assert_eq!(masked_rows, spans.iter().map(|s| s.steps).sum::<usize>());
    let trading = i32::from(events::ENTRY | events::EXIT | events::REBALANCE | events::TOP_UP | events::LIQUIDATION);
    assert!(flags[..flags.len() - 1].iter().all(|f| *f & i32::from(events::MASKED) == 0 || *f & trading == 0));
    // The perp's listing placeholders (flat 10000, no volume) were dropped and reported.
    assert!(result.warnings.iter().any(|w| w.contains("2 listing placeholder")), "{:?}", result.warnings);
}

/// Maintenance margin of `notional` on the default (Binance BTCUSDT) brackets.
fn maintenance(notional: f64) -> f64 {
    let tiers = default_brackets();
    let tier = tiers.iter().rev().find(|b| b.notional_floor <= notional).unwrap();
    notional * tier.mmr - tier.cum
}

/// The mark at which a short of `qty` with margin balance `balance` at mark `mark` is liquidated:
/// solve balance + qty·(mark − P) = maintenance(qty·P) by bisection (no closed form needed).
fn short_liquidation_price(qty: f64, balance: f64, mark: f64) -> f64 {
    let (mut lo, mut hi) = (mark * 0.5, mark * 10.0);
    for _ in 0..200 {
        let p = 0.5 * (lo + hi);
        if balance + qty * (mark - p) > maintenance(qty * p) {
            lo = p;
        } else {
            hi = p;
        }
    }
    0.5 * (lo + hi)
}

#[test]
fn a_3x_short_is_liquidated_in_the_hour_the_bars_say() {
    let Some(data) = pair("BTC") else { return };
    let start = data.funding.date_ms[0];
    let config = config(
        "BTC",
        start,
        "[portfolio]\nleverage = 3.0\nreserve_fraction = 0.0\ntop_up_source = \"none\"\n[costs]\nspot_taker_bps = 0.0\nperp_taker_bps = 0.0\nspot_slippage_bps = 0.0\nperp_slippage_bps = 0.0",
    );
    let result = basis::app::backtest::run(&config).unwrap();
    let ts = result.ledger.ts_ms();
    let first = result.ledger.row(0);
    let qty = -first.perp_qty;
    assert!(qty > 0.0);

    // Walk the hours from the bars: margin balance moves with the mark and with funding.
    let mark_at = |t: i64| data.mark.closing_at(t, "close").or_else(|| data.perp.closing_at(t, "close")).unwrap();
    let high_at = |t: i64| data.mark.closing_at(t, "high").or_else(|| data.perp.closing_at(t, "high")).unwrap();
    let mut balance = first.perp_margin;
    let mut mark = mark_at(ts[0]);
    assert_eq!(mark, first.mark_price);
    let mut k = data.funding.date_ms.partition_point(|&d| d <= ts[0]);
    let mut liquidated_at = None;
    for t in ts.windows(2) {
        let (previous, now) = (t[0], t[1]);
        if high_at(now) >= short_liquidation_price(qty, balance, mark) {
            liquidated_at = Some(now);
            break;
        }
        let next = mark_at(now);
        balance += qty * (mark - next);
        mark = next;
        while k < data.funding.date_ms.len() && data.funding.date_ms[k] <= now {
            let settle = data.funding.date_ms[k];
            assert!(settle > previous);
            let price = data.mark.as_of(settle, "close").or_else(|| data.perp.as_of(settle, "close")).unwrap();
            balance += qty * data.funding.col("open")[k] * price;
            k += 1;
        }
    }
    let expected = liquidated_at.expect("the 3x short is liquidated");
    let flags = result.ledger.event_flags();
    let engine_step = flags.iter().position(|f| *f & i32::from(events::LIQUIDATION) != 0).expect("the engine liquidates");
    assert_eq!(
        basis::time::format_ms(ts[engine_step]),
        basis::time::format_ms(expected),
        "engine and independent liquidation hours differ"
    );
    // On this data that is the late-2020 rally.
    assert_eq!(year_of(expected), 2020);
    assert!(expected >= basis::config::parse_time_ms("t", "2020-10-01").unwrap());
    assert_eq!(result.metrics.liquidations, 1);
}

/// Write a freqtrade directory of `format` holding 48 hourly candles of spot, perp and mark and
/// six funding rows, all made up here. Returns the data directory.
fn write_fixture(root: &Path, format: &str) -> PathBuf {
    let base = root.join("binance");
    std::fs::create_dir_all(base.join("futures")).unwrap();
    let t0 = T0; // 2024-01-01 00:00 UTC
    let candles = |offset: f64, n: usize, step: i64| -> DataFrame {
        let date: Vec<i64> = (0..n as i64).map(|i| t0 + i * step).collect();
        let close: Vec<f64> = (0..n).map(|i| 100.0 + offset + i as f64).collect();
        df!(
            "date" => date,
            "open" => close.iter().map(|c| c - 0.5).collect::<Vec<f64>>(),
            "high" => close.iter().map(|c| c + 1.0).collect::<Vec<f64>>(),
            "low" => close.iter().map(|c| c - 1.0).collect::<Vec<f64>>(),
            "close" => close.clone(),
            "volume" => vec![10.0; n],
        )
        .unwrap()
    };
    let mut funding = candles(0.0, 6, 8 * HOUR);
    funding.with_column(Column::new("open".into(), vec![0.0001, 0.0002, -0.0001, 0.0003, 0.0, 0.0001])).unwrap();
    let files = [
        ("BTC_USDT-1h", candles(0.0, 48, HOUR), false),
        ("futures/BTC_USDT_USDT-1h-futures", candles(0.2, 48, HOUR), false),
        ("futures/BTC_USDT_USDT-1h-mark", candles(0.1, 48, HOUR), false),
        ("futures/BTC_USDT_USDT-1h-funding_rate", funding, true),
    ];
    for (stem, mut frame, _) in files {
        let date = frame.column("date").unwrap().cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC))).unwrap();
        let path = |ext: &str| base.join(format!("{stem}.{ext}"));
        match format {
            "feather" => {
                frame.with_column(date).unwrap();
                let file = std::fs::File::create(path("feather")).unwrap();
                IpcWriter::new(file).with_compression(Some(IpcCompression::LZ4)).finish(&mut frame).unwrap();
            }
            "parquet" => {
                frame.with_column(date).unwrap();
                ParquetWriter::new(std::fs::File::create(path("parquet")).unwrap()).finish(&mut frame).unwrap();
            }
            _ => {
                let n = frame.height();
                let col = |name: &str| frame.column(name).unwrap().cast(&DataType::Float64).unwrap().f64().unwrap().iter().map(|v| v.unwrap()).collect::<Vec<f64>>();
                let (d, o, h, l, c, v) = (col("date"), col("open"), col("high"), col("low"), col("close"), col("volume"));
                let rows: Vec<serde_json::Value> = (0..n).map(|i| serde_json::json!([d[i] as i64, o[i], h[i], l[i], c[i], v[i]])).collect();
                let text = serde_json::to_vec(&rows).unwrap();
                if format == "json" {
                    std::fs::write(path("json"), text).unwrap();
                } else {
                    use std::io::Write;
                    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(path("json.gz")).unwrap(), flate2::Compression::default());
                    gz.write_all(&text).unwrap();
                    gz.finish().unwrap();
                }
            }
        }
    }
    root.to_path_buf()
}

#[test]
fn every_freqtrade_format_loads_the_same_candles_known_at_their_close() {
    let mut loaded = Vec::new();
    for format in ["feather", "parquet", "json", "jsongz"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = write_fixture(tmp.path(), format);
        let config = config_from(&format!(
            "[data]\nsymbol = \"BTCUSDT\"\n[data.freqtrade]\ndatadir = \"{}\"\npair = \"BTC/USDT\"\ntimeframe = \"1h\"\nformat = \"{format}\"\n",
            dir.display()
        ));
        let market = basis::data::load(&config.data).unwrap_or_else(|e| panic!("{format}: {e:#}"));
        // A candle opening at T0 is known at T0 + 1 h; a funding row is a settlement at its date.
        assert_eq!(market.spot.ts_ms[0], T0 + HOUR, "{format}");
        assert_eq!(market.perp.ts_ms.len(), 48);
        assert_eq!(market.mark.as_ref().unwrap().close[0], 100.1);
        assert_eq!(market.funding[1].settle_ms, T0 + 8 * HOUR);
        assert_eq!(market.funding.rates(), vec![0.0001, 0.0002, -0.0001, 0.0003, 0.0, 0.0001]);
        assert_eq!(market.funding[0].interval_hours, 8.0);
        assert_eq!(market.spot.volume[0], 10.0);
        assert_eq!(market.files.len(), 4);
        loaded.push((market.spot.close.clone(), market.perp.high.clone(), market.funding.settle_ms().clone()));
    }
    assert!(loaded.windows(2).all(|w| w[0] == w[1]), "formats disagree");
}

#[test]
fn a_missing_freqtrade_file_is_named_with_what_the_folder_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_fixture(tmp.path(), "feather");
    std::fs::remove_file(dir.join("binance/futures/BTC_USDT_USDT-1h-futures.feather")).unwrap();
    let config = config_from(&format!("[data]\nsymbol = \"BTCUSDT\"\n[data.freqtrade]\ndatadir = \"{}\"\npair = \"BTC/USDT\"\ntimeframe = \"1h\"\n", dir.display()));
    let err = format!("{:#}", basis::data::load(&config.data).unwrap_err());
    assert!(err.contains("no perp file") && err.contains("BTC_USDT_USDT-1h-futures") && err.contains("BTC_USDT_USDT-1h-mark.feather"), "{err}");
    // A timeframe that is not one is refused when the config is read.
    let config = config_from(&format!("[data]\nsymbol = \"BTCUSDT\"\n[data.freqtrade]\ndatadir = \"{}\"\npair = \"BTC/USDT\"\ntimeframe = \"hourly\"\n", dir.display()));
    let err = format!("{:#}", basis::data::load(&config.data).unwrap_err());
    assert!(err.contains("timeframe") && err.contains("1h"), "{err}");
}
