//! The `basis` binary end to end: the default config on the shipped sample, run folders,
//! config errors and exit codes.

use std::process::Command;

fn basis() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_basis"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

#[test]
fn default_backtest_writes_a_complete_run_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let run = |extra: &[&str]| {
        let output = basis().args(["backtest", "--output-dir", out]).args(extra).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let stdout = run(&[]);
    assert!(stdout.contains("SYNTHETIC"), "{stdout}");
    assert!(stdout.contains("Sharpe") && stdout.contains("funding") && stdout.contains("liquidations"), "{stdout}");
    let folder = dir.path().join("sample");
    for file in ["metrics.json", "ledger.parquet", "trades.parquet", "config.toml", "manifest.json"] {
        assert!(folder.join(file).is_file(), "{file} missing");
    }
    let metrics: serde_json::Value = serde_json::from_slice(&std::fs::read(folder.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["synthetic"], true);
    // PnL components add up to the change in equity.
    let total: f64 = metrics["pnl"].as_object().unwrap().values().map(|v| v.as_f64().unwrap()).sum();
    let change = metrics["final_equity"].as_f64().unwrap() - metrics["initial_capital"].as_f64().unwrap();
    assert!((total - change).abs() < 1e-6, "{total} vs {change}");
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap();
    // 12 monthly files each of spot, perp and mark, 13 of funding (the last settles 2025-07-01), staking.
    assert_eq!(manifest["inputs"].as_array().unwrap().len(), 12 * 3 + 13 + 1);
    assert_eq!(manifest["inputs"][0]["sha256"].as_str().unwrap().len(), 64);
    // A second run keeps the first and takes a new name; --force replaces it.
    run(&[]);
    assert!(dir.path().join("sample-2/manifest.json").is_file());
    run(&["--force"]);
    assert!(!dir.path().join("sample-3").exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().starts_with('.')).collect();
    assert!(leftovers.is_empty(), "temporary folders left behind");
}

fn run_with_config(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    let output = basis().args(["backtest", "--config"]).arg(&path).arg("--output-dir").arg(dir.path()).output().unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn sample_config() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/data/basis.toml"))
        .unwrap()
        .replace("path = \"sample/", &format!("path = \"{}/data/sample/", env!("CARGO_MANIFEST_DIR")))
}

#[test]
fn config_errors_name_the_key_and_exit_2() {
    let (code, stderr) = run_with_config(&sample_config().replace("leverage = 2.0", "leverge = 2.0"));
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown field `leverge`"), "{stderr}");
    let (code, stderr) = run_with_config(&sample_config().replace("leverage = 2.0", "leverage = 0.0"));
    assert_eq!(code, 2);
    assert!(stderr.contains("`portfolio.leverage` = 0 is out of range: allowed (0, 125]"), "{stderr}");
    let (code, stderr) = run_with_config(&sample_config().replace("spot_taker_bps = 10.0", "spot_taker_bps = -1.0"));
    assert_eq!(code, 2);
    assert!(stderr.contains("costs.spot_taker_bps"), "{stderr}");
    let (code, stderr) = run_with_config(&sample_config().replace("leverage = 2.0", "leverage = \"high\""));
    assert_eq!(code, 2);
    assert!(stderr.contains("leverage"), "{stderr}");
    let (code, stderr) = run_with_config(&sample_config().replace("name = \"sample\"", "name = \"../escape\""));
    assert_eq!(code, 2);
    assert!(stderr.contains("run.name"), "{stderr}");
}

#[test]
fn missing_data_is_an_input_error() {
    let (code, stderr) = run_with_config(&sample_config().replace("SYNTHUSDT-fundingRate-*", "NOPE-*"));
    assert_eq!(code, 2);
    assert!(stderr.contains("no file matches") && stderr.contains("NOPE-*"), "{stderr}");
}
