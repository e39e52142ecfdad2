//! Loaders on the real files in ../shared/data and on fixtures written here in the exact
//! Binance layouts (headerless, µs, zipped, gzipped), plus the errors bad input must give.

mod common;

use std::io::Write;

use basis::config::{FundingFormat, PriceFormat, PriceSource};
use basis::data::binance::{load_funding, load_klines};
use basis::error::is_input_error;
use common::*;

fn kline_source(path: &str) -> PriceSource {
    PriceSource::binance_klines(path)
}

fn ms(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
}

#[test]
fn binance_daily_iso_klines() {
    let path = real_data_dir().join("binance-daily/spot_BTCUSDT_1d_20210101_20241231.csv");
    let bars = load_klines(&kline_source(path.to_str().unwrap()), "spot", &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!(bars.ts_ms.len(), 1461);
    // Known at the close: the 2021-01-01 bar becomes known at 2021-01-02 00:00.
    assert_eq!(bars.ts_ms[0], ms("2021-01-02T00:00:00Z"));
    assert_eq!(*bars.ts_ms.last().unwrap(), ms("2025-01-01T00:00:00Z"));
    assert_eq!(bars.close[0], 29331.69);
    assert_eq!(bars.high[1], 33300.0);
}

#[test]
fn binance_one_minute_perp_dump() {
    let path = real_data_dir().join("binance-1m/AVAXUSDT-1m-2024-02.csv");
    let bars = load_klines(&kline_source(path.to_str().unwrap()), "perp", &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!(bars.ts_ms.len(), 41_760);
    assert_eq!(bars.ts_ms[0], ms("2024-02-01T00:01:00Z"));
    assert_eq!(bars.close[0], 33.264);
    assert!(bars.ts_ms.windows(2).all(|w| w[1] - w[0] == 60_000));
}

#[test]
fn binance_funding_dumps_glob_as_one_series() {
    let pattern = real_data_dir().join("binance-funding/BTCUSDT-fundingRate-202[1-4]-*.csv");
    let mut files = Vec::new();
    let series = load_funding(&funding_source(pattern.to_str().unwrap(), FundingFormat::BinanceFunding), "BTCUSDT", &mut files, &mut Vec::new()).unwrap();
    assert_eq!(files.len(), 48);
    assert_eq!(series.len(), 4383);
    // calc_time 1609459200000 + jitter rounds to the settlement second.
    assert_eq!(series[0].settle_ms, ms("2021-01-01T00:00:00Z"));
    assert_eq!(*series.settle_ms().last().unwrap(), ms("2024-12-31T16:00:00Z"));
    assert!(series.interval_hours().iter().all(|&h| h == 8.0));
    // The largest BTC rate of 2021-2024 (the ±0.3 % cap prints are in 2020).
    let max = series.rates().iter().cloned().fold(f64::MIN, f64::max);
    assert_eq!(max, 0.00248993);
}

#[test]
fn the_long_format_dump_with_a_symbol_column_reads_one_symbol() {
    // funding_all.csv.gz (63 symbols, gzipped) holds the same BTCUSDT rows as the monthly dumps.
    let all = real_data_dir().join("binance-funding/funding_all.csv.gz");
    let source = funding_source(all.to_str().unwrap(), FundingFormat::BinanceFunding);
    let from_all = load_funding(&source, "BTCUSDT", &mut Vec::new(), &mut Vec::new()).unwrap();
    let monthly = real_data_dir().join("binance-funding/BTCUSDT-fundingRate-*.csv");
    let from_monthly = load_funding(&funding_source(monthly.to_str().unwrap(), FundingFormat::BinanceFunding), "BTCUSDT", &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!(from_all.len(), 7119);
    assert_eq!(from_all.settle_ms(), from_monthly.settle_ms());
    assert_eq!(from_all.rates(), from_monthly.rates());
    let err = format!("{:#}", load_funding(&source, "NOPEUSDT", &mut Vec::new(), &mut Vec::new()).unwrap_err());
    assert!(err.contains("no rows for data.symbol \"NOPEUSDT\"") && err.contains("63 symbols"), "{err}");
}

#[test]
fn solusdt_ftx_week_has_2h_and_4h_settlements_per_row() {
    let path = real_data_dir().join("binance-funding/SOLUSDT-fundingRate-2022-11.csv");
    let series = load_funding(&funding_source(path.to_str().unwrap(), FundingFormat::BinanceFunding), "SOLUSDT", &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!(series.len(), 165);
    let count = |h: f64| series.interval_hours().iter().filter(|&&x| x == h).count();
    assert_eq!((count(2.0), count(4.0), count(8.0)), (99, 2, 64));
    let (i, min) = series.rates().iter().enumerate().fold((0, f64::MAX), |acc, (i, &r)| if r < acc.1 { (i, r) } else { acc });
    assert_eq!(min, -0.02);
    assert_eq!(series[i].settle_ms, ms("2022-11-09T20:00:00Z"));
    assert_eq!(series[i].interval_hours, 4.0);
}

#[test]
fn binance_rest_funding_with_marks() {
    let path = real_data_dir().join("binance-daily/funding_BTCUSDT_20210101_20241231.csv");
    let series = load_funding(&funding_source(path.to_str().unwrap(), FundingFormat::BinanceRest), "BTCUSDT", &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!(series.len(), 4383);
    let first_mark = series.iter().map(|s| s.price).collect::<Vec<f64>>().iter().position(|m| m.is_finite()).unwrap();
    assert_eq!(series[first_mark].settle_ms, ms("2023-10-31T08:00:00Z"));
    assert_eq!(series[first_mark].price, 34149.46365245);
    assert!(series.interval_hours().iter().all(|&h| h == 8.0), "intervals inferred from row spacing");
    // A file of another symbol is refused.
    let err = load_funding(&funding_source(path.to_str().unwrap(), FundingFormat::BinanceRest), "ETHUSDT", &mut Vec::new(), &mut Vec::new()).unwrap_err();
    assert!(is_input_error(&err));
    assert!(format!("{err:#}").contains("line 2, column `symbol`"), "{err:#}");
}

/// Two months of 1 h spot klines as Binance dumps them: headerless, ms in 2024, µs in 2025.
fn write_spot_dumps(dir: &std::path::Path) {
    let mut dec = String::new();
    let mut jan = String::new();
    let start = ms("2024-12-31T22:00:00Z");
    for k in 0..4i64 {
        let open = start + k * HOUR;
        let close = open + HOUR - 1;
        let price = 100.0 + k as f64;
        if open < ms("2025-01-01T00:00:00Z") {
            dec.push_str(&format!("{open},{price},{},{},{price},1,{close},100,1,0.5,50,0\n", price + 1.0, price - 1.0));
        } else {
            jan.push_str(&format!("{},{price},{},{},{price},1,{},100,1,0.5,50,0\n", open * 1000, price + 1.0, price - 1.0, close * 1000 + 999));
        }
    }
    std::fs::write(dir.join("X-1h-2024-12.csv"), dec).unwrap();
    std::fs::write(dir.join("X-1h-2025-01.csv"), jan).unwrap();
}

#[test]
fn headerless_spot_dumps_switching_from_ms_to_us_load_as_one_series() {
    let dir = tempfile::tempdir().unwrap();
    write_spot_dumps(dir.path());
    let pattern = dir.path().join("X-1h-*.csv");
    let bars = load_klines(&kline_source(pattern.to_str().unwrap()), "spot", &mut Vec::new(), &mut Vec::new()).unwrap();
    let expected: Vec<i64> = (1..=4).map(|k| ms("2024-12-31T22:00:00Z") + k * HOUR).collect();
    assert_eq!(bars.ts_ms, expected);
    assert_eq!(bars.close, vec![100.0, 101.0, 102.0, 103.0]);
}

#[test]
fn zipped_and_gzipped_dumps_load() {
    let dir = tempfile::tempdir().unwrap();
    write_spot_dumps(dir.path());
    let csv = std::fs::read(dir.path().join("X-1h-2024-12.csv")).unwrap();
    // .zip, as data.binance.vision serves it
    let zip_path = dir.path().join("Z-1h-2024-12.zip");
    let mut writer = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    writer.start_file("Z-1h-2024-12.csv", zip::write::SimpleFileOptions::default()).unwrap();
    writer.write_all(&csv).unwrap();
    writer.finish().unwrap();
    let bars = load_klines(&kline_source(zip_path.to_str().unwrap()), "spot", &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!(bars.close, vec![100.0, 101.0]);
    // .gz
    let gz_path = dir.path().join("G-1h-2024-12.csv.gz");
    let mut encoder = flate2::write::GzEncoder::new(std::fs::File::create(&gz_path).unwrap(), flate2::Compression::default());
    encoder.write_all(&csv).unwrap();
    encoder.finish().unwrap();
    let bars = load_klines(&kline_source(gz_path.to_str().unwrap()), "spot", &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!(bars.close, vec![100.0, 101.0]);
    // A corrupt zip is an input error, not a panic.
    std::fs::write(dir.path().join("bad.zip"), b"PK\x03\x04 not really").unwrap();
    let err = load_klines(&kline_source(dir.path().join("bad.zip").to_str().unwrap()), "spot", &mut Vec::new(), &mut Vec::new()).unwrap_err();
    assert!(is_input_error(&err) && format!("{err:#}").contains("not a valid zip"), "{err:#}");
}

/// Load a kline fixture and return the error text.
fn kline_error(body: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    std::fs::write(&path, body).unwrap();
    let err = load_klines(&kline_source(path.to_str().unwrap()), "perp", &mut Vec::new(), &mut Vec::new()).unwrap_err();
    assert!(is_input_error(&err), "not an input error: {err:#}");
    format!("{err:#}")
}

const HEADER: &str = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore\n";

#[test]
fn bad_klines_are_refused_with_file_line_and_column() {
    let good = "1706745600000,33.1,33.2,33.0,33.1,1,1706745659999,1,1,1,1,0\n";
    let err = kline_error(&format!("{HEADER}{good}1706745660000,33.1,33.2,33.0,abc,1,1706745719999,1,1,1,1,0\n"));
    assert!(err.contains("line 3, column `close`: expected a number, found \"abc\""), "{err}");
    let err = kline_error(&format!("{HEADER}{good}1706745660000,33.1,33.2,33.0,-5,1,1706745719999,1,1,1,1,0\n"));
    assert!(err.contains("line 3") && err.contains("not positive"), "{err}");
    let err = kline_error(&format!("{HEADER}{good}1706745660000,33.1,33.2,33.0,NaN,1,1706745719999,1,1,1,1,0\n"));
    assert!(err.contains("line 3, column `close`: expected a finite number"), "{err}");
    let err = kline_error(&format!("{HEADER}{good}1706745660000000,33.1,33.2,33.0,33.1,1,1706745719999999,1,1,1,1,0\n"));
    assert!(err.contains("line 3") && err.contains("microseconds") && err.contains("milliseconds"), "{err}");
    let err = kline_error(HEADER);
    assert!(err.contains("no data rows"), "{err}");
    let err = kline_error("");
    assert!(err.contains("empty"), "{err}");
    let err = kline_error(&format!("{HEADER}{good}{}", good.replace("33.1,1,", "33.15,1,")));
    assert!(err.contains("two different rows"), "{err}");
}

#[test]
fn funding_in_percent_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.csv");
    let rows: String = (0..30).map(|k| format!("{},8,0.0{}\n", 1_700_000_000_000i64 + k * 8 * HOUR, k % 5 + 1)).collect();
    std::fs::write(&path, format!("calc_time,funding_interval_hours,last_funding_rate\n{rows}")).unwrap();
    let err = load_funding(&funding_source(path.to_str().unwrap(), FundingFormat::BinanceFunding), "X", &mut Vec::new(), &mut Vec::new()).unwrap_err();
    // A fifth of the settlements are exactly 0.01: the 0.01 % baseline written in percent.
    assert!(format!("{err:#}").contains("looks like percent") && format!("{err:#}").contains("20 % of the settlements are exactly ±0.01"), "{err:#}");
    // Told so, the rates are divided by 100.
    let mut source = funding_source(path.to_str().unwrap(), FundingFormat::BinanceFunding);
    source.rates_in = Some(basis::data::source::RateUnits::Percent);
    let series = load_funding(&source, "X", &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_close(series[0].rate, 0.0001, 1e-15);
    assert_close(series[4].rate, 0.0005, 1e-15);
}

/// A `binance_funding` dump with its columns in another order is read by its header, as
/// `data inspect` reads it (by position the rate column would be the time: 800 % a settlement).
#[test]
fn a_funding_dump_with_reordered_columns_is_read_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.csv");
    let rows: String = (0..6).map(|k| format!("0.0001,{},8\n", 1_700_000_000_000i64 + k * 8 * HOUR)).collect();
    std::fs::write(&path, format!("last_funding_rate,calc_time,funding_interval_hours\n{rows}")).unwrap();
    let series = load_funding(&funding_source(path.to_str().unwrap(), FundingFormat::BinanceFunding), "X", &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!(series.rates(), vec![0.0001; 6]);
    assert_eq!(series[1].settle_ms - series[0].settle_ms, 8 * HOUR);
    assert_eq!(series.interval_hours(), vec![8.0; 6]);
}

/// A funding dump written in London wall-clock time (00/08/16 in winter, 01/09/17 in summer)
/// loads on the UTC schedule with `time_zone = "Europe/London"`, and `data.funding` refuses a
/// zone beside a fixed offset and a name that is not a zone.
#[test]
fn a_funding_file_in_london_time_loads_on_the_utc_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.csv");
    // 2024-03-30 00:00 UTC on, every 8 h across the spring change (2024-03-31 01:00 UTC).
    let start = 1_711_756_800_000i64;
    let utc: Vec<i64> = (0..9).map(|k| start + k * 8 * HOUR).collect();
    let local: Vec<i64> = utc.iter().map(|t| if *t >= 1_711_846_800_000 { t + HOUR } else { *t }).collect();
    let rows: String = local.iter().map(|t| format!("{t},8,0.0001\n")).collect();
    std::fs::write(&path, format!("calc_time,funding_interval_hours,last_funding_rate\n{rows}")).unwrap();
    let mut source = funding_source(path.to_str().unwrap(), FundingFormat::BinanceFunding);
    source.time_zone = Some("Europe/London".into());
    let series = basis::data::load_funding(&source, "X", &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!(series.settle_ms(), utc);
    source.time_zone = Some("Europe/Londres".into());
    assert!(format!("{:#}", basis::data::load_funding(&source, "X", &mut Vec::new(), &mut Vec::new()).unwrap_err()).contains("IANA"));
}

/// A stretch of real capped altcoin funding (±0.75 % per 8 h, some at ±2 %) has a median above
/// 0.003 too; with no settlement at the percent baseline it is read as decimals, with a
/// warning, not refused. `rates_in = "decimal"` silences the check.
#[test]
fn capped_funding_in_a_squeeze_is_read_as_decimals() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.csv");
    let rates = [0.0075, -0.0075, 0.0075, 0.02, -0.02, 0.0075, 0.0042, -0.0075, 0.0075, 0.0061];
    let rows: String = rates.iter().enumerate().map(|(k, r)| format!("{},8,{r}\n", 1_700_000_000_000i64 + k as i64 * 8 * HOUR)).collect();
    std::fs::write(&path, format!("calc_time,funding_interval_hours,last_funding_rate\n{rows}")).unwrap();
    let mut warnings = Vec::new();
    let series = load_funding(&funding_source(path.to_str().unwrap(), FundingFormat::BinanceFunding), "X", &mut Vec::new(), &mut warnings).unwrap();
    assert_eq!(series[3].rate, 0.02);
    assert!(warnings.iter().any(|w| w.contains("read as decimals") && w.contains("rates_in = \"percent\"")), "{warnings:?}");
    let mut source = funding_source(path.to_str().unwrap(), FundingFormat::BinanceFunding);
    source.rates_in = Some(basis::data::source::RateUnits::Decimal);
    let mut warnings = Vec::new();
    load_funding(&source, "X", &mut Vec::new(), &mut warnings).unwrap();
    assert!(!warnings.iter().any(|w| w.contains("read as decimals")), "{warnings:?}");
}

#[test]
fn missing_settlements_are_reported_not_filled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.csv");
    let times = [0i64, 8, 16, 40, 48];
    let rows: String = times.iter().map(|h| format!("{},8,0.0001\n", 1_700_006_400_000i64 + h * HOUR)).collect();
    std::fs::write(&path, format!("calc_time,funding_interval_hours,last_funding_rate\n{rows}")).unwrap();
    let mut warnings = Vec::new();
    let series = load_funding(&funding_source(path.to_str().unwrap(), FundingFormat::BinanceFunding), "X", &mut Vec::new(), &mut warnings).unwrap();
    assert_eq!(series.len(), 5);
    assert!(warnings.iter().any(|w| w.contains("1 gap(s)") && w.contains("(24 h)")), "{warnings:?}");
}

#[test]
fn generic_csv_and_parquet_with_a_column_mapping() {
    use basis::data::generic;
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    // Bars stamped with their open time: known one bar (3600 s) later.
    std::fs::write(dir.path().join("bars.csv"), "open_ts,px,hi,lo\n2024-01-01T00:00:00Z,10,11,9\n2024-01-01T01:00:00Z,12,13,11\n").unwrap();
    let mut source = kline_source(dir.path().join("bars.csv").to_str().unwrap());
    source.format = PriceFormat::Generic;
    source.open_time_column = Some("open_ts".into());
    source.bar_seconds = Some(3600);
    source.close_column = Some("px".into());
    source.high_column = Some("hi".into());
    source.low_column = Some("lo".into());
    let bars = generic::load_prices(&source, "spot", &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!(bars.ts_ms, vec![ms("2024-01-01T01:00:00Z"), ms("2024-01-01T02:00:00Z")]);
    assert_eq!((bars.close.clone(), bars.high.clone(), bars.low.clone()), (vec![10.0, 12.0], vec![11.0, 13.0], vec![9.0, 11.0]));
    // A missing mapped column names the file's columns.
    source.close_column = Some("close".into());
    let err = generic::load_prices(&source, "spot", &mut Vec::new(), &mut Vec::new()).unwrap_err();
    assert!(format!("{err:#}").contains("missing column `close`; the file has columns [open_ts, px, hi, lo]"), "{err:#}");

    // Parquet funding with epoch-second times and a per-row interval column.
    let mut frame = df!("t" => [1_704_067_200i64, 1_704_081_600], "r" => [0.0001f64, -0.0002], "h" => [4.0f64, 4.0]).unwrap();
    ParquetWriter::new(std::fs::File::create(dir.path().join("f.parquet")).unwrap()).finish(&mut frame).unwrap();
    let mut funding = funding_source(dir.path().join("f.parquet").to_str().unwrap(), FundingFormat::Generic);
    funding.time_column = Some("t".into());
    funding.rate_column = Some("r".into());
    funding.interval_hours_column = Some("h".into());
    let series = generic::load_funding(&funding, &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!(series.settle_ms(), vec![ms("2024-01-01T00:00:00Z"), ms("2024-01-01T04:00:00Z")]);
    assert_eq!(series.rates(), vec![0.0001, -0.0002]);
    assert_eq!(series.interval_hours(), vec![4.0, 4.0]);
}

/// Generic bars in columns `t` (close time), `o`, `c` and `v` at `path` (a file or a glob).
fn time_open_close_volume(path: &std::path::Path) -> PriceSource {
    PriceSource {
        format: PriceFormat::Generic,
        close_time_column: Some("t".into()),
        close_column: Some("c".into()),
        open_column: Some("o".into()),
        volume_column: Some("v".into()),
        ..PriceSource::binance_klines(path.to_str().unwrap())
    }
}

/// Rows of two files given newest first, overlapping by one identical bar: sorted, the overlap
/// dropped with a warning (no "out of time order" one, since no file runs backwards), volume
/// NaN where a row had none; a conflicting overlap names both files' lines.
#[test]
fn bar_rows_from_files_in_any_order_sort_drop_identical_overlaps_and_locate_conflicts() {
    use basis::data::{BarRows, Origin};
    let build = |overlap_close: f64| {
        let mut rows = BarRows::new("spot");
        let newer = rows.sources.add_csv(std::path::Path::new("newer.csv"), 1);
        let older = rows.sources.add_csv(std::path::Path::new("older.csv"), 1);
        for (row, (t, c, v)) in [(3_000, 3.0, 30.0), (4_000, 4.0, 40.0), (5_000, 5.0, f64::NAN)].into_iter().enumerate() {
            rows.push(t, [c, c, c, v, f64::NAN], Origin { file: newer, row: row as u32 }).unwrap();
        }
        for (row, (t, c, v)) in [(1_000, 1.0, 10.0), (2_000, 2.0, 20.0), (3_000, overlap_close, 30.0)].into_iter().enumerate() {
            rows.push(t, [c, c, c, v, f64::NAN], Origin { file: older, row: row as u32 }).unwrap();
        }
        let mut warnings = Vec::new();
        (rows.finish(&mut warnings), warnings)
    };
    let (bars, warnings) = build(3.0);
    let bars = bars.unwrap();
    assert_eq!(bars.ts_ms, [1_000, 2_000, 3_000, 4_000, 5_000]);
    assert_eq!(bars.close, [1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(bars.volume[..4], [10.0, 20.0, 30.0, 40.0]);
    assert!(bars.volume[4].is_nan());
    assert_eq!(warnings, ["spot: dropped 1 duplicate bars (identical rows in overlapping files)"]);
    let (conflict, _) = build(3.5);
    let err = format!("{:#}", conflict.err().expect("a conflicting overlap is refused"));
    assert!(err.contains("newer.csv: line 2") && err.contains("older.csv: line 4") && err.contains("two different rows"), "{err}");
    // A bad bar is refused as it is pushed, located by its own line.
    let mut rows = BarRows::new("perp");
    let file = rows.sources.add_csv(std::path::Path::new("perp.csv"), 1);
    rows.push(1_000, [10.0, 11.0, 9.0, 1.0, 10.0], Origin { file, row: 0 }).unwrap();
    let err = format!("{:#}", rows.push(2_000, [10.0, 11.0, 9.0, -1.0, 10.0], Origin { file, row: 1 }).unwrap_err());
    assert!(err.contains("perp.csv: line 3") && err.contains("volume -1 is negative"), "{err}");
}

/// Generic files are taken whole column by column: an open column without high/low gives the
/// range open..close, two files in any order merge, volume is kept, and a bad row is named by
/// its file and line.
#[test]
fn generic_bars_whole_columns_range_from_open_and_bad_rows_located() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.csv"), "t,o,c,v\n1704074400000,101,103,7\n1704078000000,103,102,8\n").unwrap();
    std::fs::write(dir.path().join("a.csv"), "t,o,c,v\n1704067200000,100,99,5\n1704070800000,99,101,6\n").unwrap();
    let source = |pattern: &str| time_open_close_volume(&dir.path().join(pattern));
    let bars = basis::data::generic::load_prices(&source("*.csv"), "spot", &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!(bars.ts_ms, [1704067200000, 1704070800000, 1704074400000, 1704078000000]);
    assert_eq!(bars.close, [99.0, 101.0, 103.0, 102.0]);
    assert_eq!(bars.high, [100.0, 101.0, 103.0, 103.0]);
    assert_eq!(bars.low, [99.0, 99.0, 101.0, 102.0]);
    assert_eq!(bars.volume, [5.0, 6.0, 7.0, 8.0]);
    std::fs::write(dir.path().join("bad.csv"), "t,o,c,v\n1704067200000,100,99,5\n1704070800000,99,-101,6\n").unwrap();
    let err = format!("{:#}", basis::data::generic::load_prices(&source("bad.csv"), "spot", &mut Vec::new(), &mut Vec::new()).unwrap_err());
    assert!(err.contains("bad.csv: line 3") && err.contains("not positive"), "{err}");
}

/// A Parquet file of several row groups is read one row group at a time (long files are; the
/// threshold is set to 0 here): the bars equal those
/// of the same rows as CSV (times, closes, the range from open and close, volume), columns the
/// mapping does not name are never read (an unreadable-as-number text column is fine), a bad
/// row in a later row group is located by its row in the file, a missing mapped column lists
/// the file's columns, and the manifest's SHA-256 is that of the file's bytes.
#[test]
fn parquet_bars_are_read_a_row_group_at_a_time() {
    use polars::prelude::*;
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let rows = 1000usize;
    let t: Vec<i64> = (0..rows as i64).map(|k| 1_704_067_200_000 + k * 60_000).collect();
    let open: Vec<f64> = (0..rows).map(|k| 100.0 + (k % 7) as f64).collect();
    let close: Vec<f64> = (0..rows).map(|k| 100.0 + (k % 5) as f64 + 0.5).collect();
    let volume: Vec<f64> = (0..rows).map(|k| k as f64).collect();
    let note: Vec<String> = (0..rows).map(|k| format!("note {k}")).collect();
    let write = |name: &str, close: &[f64]| {
        let mut frame = df!("t" => &t, "o" => &open, "c" => close, "v" => &volume, "note" => &note).unwrap();
        ParquetWriter::new(std::fs::File::create(dir.path().join(name)).unwrap()).with_row_group_size(Some(128)).finish(&mut frame).unwrap();
    };
    write("bars.parquet", &close);
    let csv: String = std::iter::once("t,o,c,v\n".to_string()).chain((0..rows).map(|k| format!("{},{},{},{}\n", t[k], open[k], close[k], volume[k]))).collect();
    std::fs::write(dir.path().join("bars.csv"), csv).unwrap();
    let source = |name: &str| time_open_close_volume(&dir.path().join(name));
    let load = |name: &str| basis::data::generic::load_prices_piecewise_from(&source(name), "perp", 0, &mut Vec::new(), &mut Vec::new());
    let from_parquet = load("bars.parquet").unwrap();
    let from_csv = load("bars.csv").unwrap();
    assert_eq!(from_parquet.ts_ms, t);
    assert_eq!(from_parquet.close, close);
    assert_eq!(from_parquet.high[3], 103.5_f64.max(103.0));
    assert_eq!(from_parquet.low[2], 102.0_f64.min(102.5));
    assert_eq!((&from_parquet.ts_ms, &from_parquet.close, &from_parquet.high, &from_parquet.low, &from_parquet.volume), (&from_csv.ts_ms, &from_csv.close, &from_csv.high, &from_csv.low, &from_csv.volume));
    // Row 701 (1-based) sits in the sixth row group.
    let mut bad = close.clone();
    bad[700] = -1.0;
    write("bad.parquet", &bad);
    let err = format!("{:#}", load("bad.parquet").unwrap_err());
    assert!(err.contains("bad.parquet: row 701") && err.contains("not positive"), "{err}");
    let mut missing = source("bars.parquet");
    missing.close_column = Some("close".into());
    let err = format!("{:#}", basis::data::generic::load_prices_piecewise_from(&missing, "perp", 0, &mut Vec::new(), &mut Vec::new()).unwrap_err());
    assert!(err.contains("missing column `close`; the file has columns [t, o, c, v, note]"), "{err}");
    // Read whole (under the size threshold), the same bars.
    let whole = basis::data::generic::load_prices(&source("bars.parquet"), "perp", &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!((&whole.ts_ms, &whole.close, &whole.high, &whole.low, &whole.volume), (&from_parquet.ts_ms, &from_parquet.close, &from_parquet.high, &from_parquet.low, &from_parquet.volume));
    let path = dir.path().join("bars.parquet");
    let expected: String = sha2::Sha256::digest(std::fs::read(&path).unwrap()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(basis::data::read::sha256_of(&path).unwrap(), expected);
}

/// Kline rows as (open ms, open, high, low, close, volume), varied and with up to eight
/// decimals, as dumps hold them.
fn kline_rows(n: usize) -> Vec<(i64, [f64; 5])> {
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..n)
        .map(|k| {
            let mut cents = |scale: u64| (next() % scale) as f64;
            let low = 20_000.0 + cents(1_000_000) / 100.0;
            let high = low + cents(50_000) / 100.0;
            let open = low + (high - low) * 0.25;
            let close = ((low + (high - low) * 0.75) * 1e8).round() / 1e8;
            let volume = cents(10_000_000_000) / 1e8;
            (ms("2024-02-01T00:00:00Z") + k as i64 * 60_000, [open, high, low, close, volume])
        })
        .collect()
}

/// The same bars, written as Binance writes them (read from their bytes) and in every other way
/// a kline cell may come (read by the cell parser): quoted, padded, in exponent notation, with
/// CRLF endings, a byte-order mark and blank lines; and with ISO-8601 times throughout (one
/// unit per column per file). Every way reads to the same bars, bit for bit.
#[test]
fn klines_read_the_same_however_their_cells_are_written() {
    let rows = kline_rows(600);
    let dir = tempfile::tempdir().unwrap();
    let line = |open_ms: i64, cells: [String; 5], close_time: String| format!("{open_ms},{},{},{},{},{},{close_time},1,1,1,1,0\n", cells[0], cells[1], cells[2], cells[3], cells[4]);
    let plain: String = rows.iter().map(|(t, v)| line(*t, v.map(|x| format!("{x}")), (t + 59_999).to_string())).collect();
    let mut mixed = String::from("\u{feff}");
    mixed.push_str(HEADER);
    for (k, (t, v)) in rows.iter().enumerate() {
        let cells = v.map(|x| match k % 6 {
            1 => format!("\"{x}\""),
            2 => format!(" {x} "),
            3 => format!("{x:e}"),
            _ => format!("{x}"),
        });
        let text = line(*t, cells, (t + 59_999).to_string());
        match k % 6 {
            4 => mixed.push_str(&text.replace('\n', "\r\n")),
            5 => mixed.push_str(&format!("\n  \n{text}")),
            _ => mixed.push_str(&text),
        }
    }
    let iso: String = rows
        .iter()
        .map(|(t, v)| {
            let text = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            format!("{},{},{},{},{},{},{},1,1,1,1,0\n", text(*t), v[0], v[1], v[2], v[3], v[4], text(t + 59_999))
        })
        .collect();
    let load = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        load_klines(&kline_source(path.to_str().unwrap()), "perp", &mut Vec::new(), &mut Vec::new()).unwrap()
    };
    let expected = load("plain.csv", &plain);
    assert_eq!(expected.ts_ms.len(), rows.len());
    // Known at the close: the bar's last millisecond rounded up to the minute.
    assert_eq!(expected.ts_ms[0], ms("2024-02-01T00:01:00Z"));
    assert_eq!(expected.close[7].to_bits(), rows[7].1[3].to_bits());
    for (name, body) in [("mixed.csv", mixed.as_str()), ("iso.csv", iso.as_str())] {
        let bars = load(name, body);
        assert_eq!(bars.ts_ms, expected.ts_ms, "{name}");
        for (what, a, b) in [("close", &bars.close, &expected.close), ("high", &bars.high, &expected.high), ("low", &bars.low, &expected.low), ("volume", &bars.volume, &expected.volume)] {
            let differs = a.iter().zip(b.iter()).position(|(x, y)| x.to_bits() != y.to_bits());
            assert_eq!(differs, None, "{name}: {what} differs");
        }
    }
}

/// A row read from its bytes is checked as any other: a close above the high is refused at
/// its line, and a file whose rows are plain but whose units change is refused too.
#[test]
fn plain_kline_rows_are_checked_and_located_like_any_other() {
    let good = "1706745600000,33.1,33.2,33.0,33.1,1,1706745659999,1,1,1,1,0\n";
    let err = kline_error(&format!("{HEADER}{good}{good}1706745720000,33.1,33.2,33.0,33.5,1,1706745779999,1,1,1,1,0\n"));
    assert!(err.contains("bad.csv: line 4") && err.contains("close 33.5 is outside its low 33 .. high 33.2"), "{err}");
    let err = kline_error(&format!("{good}1706745660000,33.1,33.2,33.0,33.1,1,1706745659999,1,1,1,1,0\n"));
    assert!(err.contains("line 2") && err.contains("close_time") && err.contains("before open_time"), "{err}");
    let err = kline_error(&format!("{good}1706745660000,33.1,33.2,33.0\n"));
    assert!(err.contains("line 2") && err.contains("expected at least 5 columns"), "{err}");
}

/// A gzipped dump cut short (an interrupted download) is refused as a damaged file at the line
/// the reading stopped, after the whole lines before it were read: a bad row among those is
/// the error a line-by-line read meets first.
#[test]
fn a_truncated_gzip_is_refused_at_the_line_where_it_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let gzip = |name: &str, body: &str| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(body.as_bytes()).unwrap();
        let mut bytes = encoder.finish().unwrap();
        // The 8-byte trailer (CRC and length) lost.
        bytes.truncate(bytes.len() - 8);
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = load_klines(&kline_source(path.to_str().unwrap()), "perp", &mut Vec::new(), &mut Vec::new()).unwrap_err();
        assert!(is_input_error(&err), "{err:#}");
        format!("{err:#}")
    };
    let good = "1500000000000,1,1,1,1,1,1500000059999\n1500000060000,1,1,1,1,1,1500000119999\n";
    let err = gzip("cut.csv.gz", good);
    assert!(err.contains("not a valid gzip file") && err.contains("cannot read line 3"), "{err}");
    let err = gzip("cut-bad.csv.gz", &good.replace("1500000060000,1,1,1,1,1", "1500000060000,1,0.5,1,1,1"));
    assert!(err.contains("cut-bad.csv.gz: line 2") && err.contains("below its low"), "{err}");
}

/// The long funding dump (symbol first) read through the loaders' one dump reader
/// (`binance::read_funding_dump`, which `basis data inspect` uses too): with its header in
/// capitals, and without a header, it loads the config's symbol's rows as with the header.
#[test]
fn the_long_funding_dump_reads_in_any_case_and_without_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let rows = "BTCUSDT,1704067200002,8,0.00010000\nETHUSDT,1704067200001,8,0.00020000\nBTCUSDT,1704096000003,8,0.00015000\nBTCUSDT,1704124800000,8,-0.00005000\n";
    let mut loaded = Vec::new();
    for (name, header) in [("lower.csv", "symbol,calc_time,funding_interval_hours,last_funding_rate\n"), ("upper.csv", "SYMBOL,CALC_TIME,FUNDING_INTERVAL_HOURS,LAST_FUNDING_RATE\n"), ("none.csv", "")] {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{header}{rows}")).unwrap();
        let series = load_funding(&funding_source(path.to_str().unwrap(), FundingFormat::BinanceFunding), "BTCUSDT", &mut Vec::new(), &mut Vec::new()).unwrap();
        loaded.push((series.settle_ms(), series.rates()));
    }
    // BTCUSDT's three settlements, their ms of jitter rounded away.
    let expected = (vec![ms("2024-01-01T00:00:00Z"), ms("2024-01-01T08:00:00Z"), ms("2024-01-01T16:00:00Z")], vec![0.0001, 0.00015, -0.00005]);
    for got in loaded {
        assert_eq!(got, expected);
    }
}
