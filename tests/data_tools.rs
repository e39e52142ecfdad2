//! `basis data inspect` on real dumps and `basis data convert` round trips: the converted
//! Parquet gives the same backtest, to the cent, as the original files.

use std::path::Path;
use std::process::Command;

fn basis(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_basis")).current_dir(env!("CARGO_MANIFEST_DIR")).args(args).output().unwrap()
}

fn shared(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(path).display().to_string()
}

#[test]
fn inspect_reports_intervals_rates_and_cap_hits() {
    let output = basis(&["data", "inspect", &shared("binance-funding/BTCUSDT-fundingRate-2020-03.csv"), &shared("binance-funding/SOLUSDT-fundingRate-2022-11.csv"), "data/sample/spot/SYNTHUSDT-1h-2024-07.csv"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("93 settlements, 2020-03-01 00:00:00Z -> 2020-03-31 16:00:00Z"), "{text}");
    assert!(text.contains("min -0.3000 %") && text.contains("at Binance USD-M's cap / floor for BTCUSDT: 0 / 1"), "{text}");
    assert!(text.contains("intervals: 2 h x99, 4 h x2, 8 h x64"), "{text}");
    assert!(text.contains("1 gap(s)"), "{text}");
    assert!(text.contains("klines: 744 bars of 3600 s") && text.contains("gaps: 0"), "{text}");
    let output = basis(&["data", "inspect", "nope.csv"]);
    assert_eq!(output.status.code(), Some(2));
}

fn summary_of(config: &str, out: &str) -> String {
    let output = basis(&["backtest", "--config", config, "--output-dir", out]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    text.lines().filter(|l| !l.contains("outputs") && !l.contains("report")).collect::<Vec<_>>().join("\n")
}

#[test]
fn converted_parquet_gives_the_same_backtest() {
    for config in ["data/basis.toml", "data/examples/freqtrade-btc-1h.toml"] {
        let dir = tempfile::tempdir().unwrap();
        let converted = dir.path().join("converted");
        let output = basis(&["data", "convert", "--config", config, "--out", converted.to_str().unwrap()]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        for file in ["spot.parquet", "perp.parquet", "funding.parquet", "config.toml"] {
            assert!(converted.join(file).is_file(), "{config}: {file}");
        }
        let runs = dir.path().join("runs");
        let original = summary_of(config, runs.join("a").to_str().unwrap());
        let again = summary_of(converted.join("config.toml").to_str().unwrap(), runs.join("b").to_str().unwrap());
        assert_eq!(original, again, "{config}");
    }
}
