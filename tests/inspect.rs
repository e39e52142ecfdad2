//! `basis data inspect` sniffs what a file holds from its header and first rows (never from its
//! name alone), says which reader it chose, and reports what that reader finds; `--format` and the
//! column options override the guess; an unrecognisable or bad file is an input error (exit 2).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

/// 2024-01-01 00:00:00 UTC.
const T0: i64 = 1_704_067_200_000;
const HOUR: i64 = 3_600_000;

fn inspect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_basis")).current_dir(env!("CARGO_MANIFEST_DIR")).arg("data").arg("inspect").args(args).output().expect("run basis")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A Binance funding dump (with header) of `n` 8-hourly settlements starting `offset_h` hours
/// after 2024-01-01 00:00 UTC, with Binance's few ms of jitter.
fn dump(n: i64, offset_h: i64) -> String {
    let mut text = String::from("calc_time,funding_interval_hours,last_funding_rate\n");
    for i in 0..n {
        text.push_str(&format!("{},8,0.000{}\n", T0 + offset_h * HOUR + i * 8 * HOUR + i % 3, 10 + i));
    }
    text
}

/// Headerless Binance klines, hourly from 2024-01-01 00:00 UTC; `open` overrides each bar's open.
fn klines(opens: &[f64]) -> String {
    let mut text = String::new();
    for (i, open) in opens.iter().enumerate() {
        let t = T0 + i as i64 * HOUR;
        text.push_str(&format!("{t},{open},42100.0,41900.0,42050.0,12.5,{},525000.0,100,6.0,252000.0,0\n", t + HOUR - 1));
    }
    text
}

fn assert_ok(output: &Output) -> String {
    assert!(output.status.success(), "exit {:?}\nstdout:\n{}\nstderr:\n{}", output.status.code(), stdout(output), stderr(output));
    stdout(output)
}

#[test]
fn funding_dump_is_recognised_by_its_header_not_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "btc.csv", &dump(6, 0));
    let text = assert_ok(&inspect(&[&file]));
    assert!(text.contains("reader: binance_funding (sniffed: header calc_time,funding_interval_hours,last_funding_rate)"), "{text}");
    assert!(text.contains("6 settlements, 2024-01-01 00:00:00Z -> 2024-01-02 16:00:00Z"), "{text}");
    assert!(text.contains("intervals: 8 h x6"), "{text}");
    assert!(text.contains("rows: 6 in the file, in time order"), "{text}");
    assert!(text.contains("at Binance USD-M's cap / floor for BTC: 0 / 0"), "{text}");
}

#[test]
fn gzipped_long_dump_with_symbol_column_reads_one_symbol() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("symbol,calc_time,funding_interval_hours,last_funding_rate\n");
    for i in 0..3 {
        text.push_str(&format!("ETHUSDT,{},8,0.00010000\n", T0 + i * 8 * HOUR));
    }
    for i in 0..9 {
        text.push_str(&format!("BTCUSDT,{},8,0.00020000\n", T0 + i * 8 * HOUR + 1));
    }
    let path = dir.path().join("data.csv.gz");
    let mut encoder = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap();
    let file = path.display().to_string();

    let out = assert_ok(&inspect(&[&file]));
    assert!(out.contains("reader: binance_funding (sniffed: header symbol,calc_time,funding_interval_hours,last_funding_rate"), "{out}");
    assert!(out.contains("symbols: ETHUSDT x3, BTCUSDT x9; reading BTCUSDT"), "{out}");
    assert!(out.contains("9 settlements, 2024-01-01 00:00:00Z -> 2024-01-03 16:00:00Z"), "{out}");
    assert!(out.contains("at Binance USD-M's cap / floor for BTCUSDT: 0 / 0"), "{out}");

    let out = assert_ok(&inspect(&[&file, "--symbol", "ETHUSDT"]));
    assert!(out.contains("3 settlements, 2024-01-01 00:00:00Z -> 2024-01-01 16:00:00Z"), "{out}");
    let output = inspect(&[&file, "--symbol", "SOLUSDT"]);
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    assert!(stderr(&output).contains("no rows for symbol \"SOLUSDT\""), "{}", stderr(&output));
}

#[test]
fn deribit_style_csv_gets_a_funding_reader_and_its_rows_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("timestamp,index_price,interest_1h,interest_8h\n");
    for i in 0..24 {
        text.push_str(&format!("{},42000.5,0.0000125,0.0001\n", T0 + i * HOUR));
    }
    let file = write(dir.path(), "rates.csv", &text);
    let out = assert_ok(&inspect(&[&file]));
    assert!(out.contains("reader: deribit_json (sniffed: header timestamp,index_price,interest_1h,interest_8h)"), "{out}");
    assert!(out.contains("rows: 24 in the file, in time order"), "{out}");
    assert!(out.contains("24 settlements, 2024-01-01 00:00:00Z -> 2024-01-01 23:00:00Z"), "{out}");
    assert!(out.contains("intervals: 1 h x24"), "{out}");
}

#[test]
fn headerless_klines_are_binance_klines() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "whatever.txt", &klines(&[42000.0; 5]));
    let out = assert_ok(&inspect(&[&file]));
    assert!(out.contains("reader: binance_klines (sniffed: no header; first line 1704067200000,42000,"), "{out}");
    assert!(out.contains("klines: 5 bars of 3600 s, closing 2024-01-01 01:00:00Z -> 2024-01-01 05:00:00Z"), "{out}");
    assert!(out.contains("gaps: 0"), "{out}");
}

#[test]
fn unrecognisable_csv_lists_the_format_choices() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "fundingRate.csv", "a,b,c\n1,2,3\n4,5,6\n");
    let output = inspect(&[&file]);
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    let err = stderr(&output);
    assert!(err.contains("cannot tell what this file holds (header a,b,c)"), "{err}");
    assert!(err.contains("--format generic --kind funding --time-column T --rate-column R"), "{err}");
    assert!(err.contains("--format binance_funding"), "{err}");
    assert!(err.contains("binance_klines") && err.contains("deribit_json") && err.contains("freqtrade"), "{err}");
    assert!(!err.contains("expected an ISO-8601"), "no misleading column error: {err}");
    assert!(stdout(&output).contains("problem: "), "{}", stdout(&output));
}

#[test]
fn format_generic_with_columns_reads_a_custom_csv() {
    let dir = tempfile::tempdir().unwrap();
    let text = "t,r,note\n2024-01-01T00:00:00Z,0.0001,a\n2024-01-01T08:00:00Z,0.0002,b\n2024-01-01T16:00:00Z,-0.0001,c\n";
    let file = write(dir.path(), "custom.csv", text);
    let out = assert_ok(&inspect(&[&file, "--format", "generic", "--time-column", "t", "--rate-column", "r"]));
    assert!(out.contains("reader: generic funding (--format generic)"), "{out}");
    assert!(out.contains("time_column = \"t\", rate_column = \"r\""), "{out}");
    assert!(out.contains("3 settlements, 2024-01-01 00:00:00Z -> 2024-01-01 16:00:00Z"), "{out}");
    assert!(out.contains("intervals: 8 h x3"), "{out}");
    // A column the file lacks is named as such.
    let output = inspect(&[&file, "--format", "generic", "--time-column", "when", "--rate-column", "r"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--time-column `when`: the file has no such column; it has [t, r, note]"), "{}", stderr(&output));
}

#[test]
fn kline_with_a_negative_open_is_an_input_error_naming_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "bad.csv", &klines(&[42000.0, -5.0, 42000.0]));
    let output = inspect(&[&file]);
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    let out = stdout(&output);
    assert!(out.contains("reader: binance_klines") && out.contains("problem: "), "{out}");
    let err = stderr(&output);
    assert!(err.contains("line 2") && err.contains("open") && err.contains("-5"), "{err}");
}

#[test]
fn funding_three_hours_off_the_binance_grid_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "local.csv", &dump(9, 3));
    let out = assert_ok(&inspect(&[&file]));
    assert!(out.contains("9 settlements, 2024-01-01 03:00:00Z -> 2024-01-03 19:00:00Z"), "{out}");
    assert!(out.contains("3 h after Binance USD-M's"), "{out}");
    // Read as a file written in UTC+3, it sits on the grid.
    let out = assert_ok(&inspect(&[&file, "--utc-offset-hours", "3"]));
    assert!(out.contains("9 settlements, 2024-01-01 00:00:00Z -> 2024-01-03 16:00:00Z"), "{out}");
    assert!(!out.contains("3 h after"), "{out}");
}
