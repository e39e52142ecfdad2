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
    // The fingerprints are taken as the loaders read the files: each equals the file's SHA-256.
    for input in manifest["inputs"].as_array().unwrap() {
        use sha2::Digest;
        let bytes = std::fs::read(input["path"].as_str().unwrap()).unwrap();
        let expected: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(input["sha256"].as_str().unwrap(), expected, "{}", input["path"]);
    }
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

#[test]
fn caps_venues_and_presets_commands() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    // The sample under two presets and two user caps: one folder with the table, charts and data.
    let output = basis()
        .args(["caps", "--output-dir", out, "--venue", "binance_usdm", "--venue", "hyperliquid", "--cap", "0.003", "--cap", "0.04/1h"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    for label in ["actual (data)", "Binance USD-M", "Hyperliquid", "cap ±0.3 % per 8 h", "cap ±4 % per 1 h"] {
        assert!(stdout.contains(label), "{label} missing from\n{stdout}");
    }
    let folder = dir.path().join("sample-caps");
    for file in ["index.html", "caps.json", "caps_settlements.parquet", "caps_funding_apr.png", "caps_cumulative_carry.png", "caps_return.png"] {
        assert!(folder.join(file).is_file(), "{file} missing");
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(folder.join("caps.json")).unwrap()).unwrap();
    let rows = json["rule_sets"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    // The sample's own data: 53 settlements at its +0.3 % cap out of 1095.
    assert_eq!(rows[0]["settlements"], 1095);
    assert!((rows[0]["share_at_cap"].as_f64().unwrap() * 1095.0 - 53.0).abs() < 1e-9);
    let html = std::fs::read_to_string(folder.join("index.html")).unwrap();
    assert!(html.contains("Rule sets side by side") && !html.contains("http://") && !html.contains("https://"));

    // A cap in percent is refused with what to write instead.
    let output = basis().args(["caps", "--output-dir", out, "--cap", "3%"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("0.003"), "{}", String::from_utf8_lossy(&output.stderr));
    let output = basis().args(["caps", "--output-dir", out, "--venue", "nope"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("binance_usdm"));

    // Every built-in preset is listed, and one prints in full with its sources.
    let output = basis().args(["presets"]).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 8, "{stdout}");
    let output = basis().args(["presets", "hyperliquid"]).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("https://hyperliquid.gitbook.io") && stdout.contains("cap = 0.04"), "{stdout}");

    // Venues on the shared multi-venue table.
    let table = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/multivenue-hourly/funding_rates.parquet");
    let output = basis().args(["venues", "--output-dir", out, "--funding", table.to_str().unwrap()]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    for file in ["index.html", "venues.json", "venues_funding_apr.png", "venues_spread.png", "venues_rotation.png"] {
        assert!(dir.path().join("venues").join(file).is_file(), "{file} missing");
    }
    let output = basis().args(["venues", "--output-dir", out, "--funding", table.to_str().unwrap(), "--coin", "XRP"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("BTC, DOGE, ETH, HYPE, SOL"));
}

#[test]
fn set_overrides_a_config_field_and_is_checked_like_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let output = basis().args(["backtest", "--output-dir", out, "--set", "portfolio.leverage=3", "--set", "venue.preset=hyperliquid"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let config = std::fs::read_to_string(dir.path().join("sample/config.toml")).unwrap();
    assert!(config.contains("leverage = 3.0") && config.contains("preset = \"hyperliquid\""), "{config}");
    // Same result as the library with the same values.
    let metrics: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("sample/metrics.json")).unwrap()).unwrap();
    let mut base = basis::config::Config::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/basis.toml")).unwrap();
    assert_ne!(metrics["final_equity"].as_f64().unwrap(), basis::app::backtest::run(&base).unwrap().metrics.final_equity);
    base.portfolio.leverage = 3.0;
    let expected = basis::app::backtest::run(&base).unwrap().metrics.final_equity;
    assert!((metrics["final_equity"].as_f64().unwrap() - expected).abs() < 1e-9, "preset changes no fee the base sets itself");
    for (set, message) in [("portfolio.leverge=3", "leverge"), ("portfolio.leverage=0", "(0, 125]"), ("leverage", "KEY=VALUE")] {
        let output = basis().args(["backtest", "--output-dir", out, "--set", set]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{set}");
        assert!(String::from_utf8_lossy(&output.stderr).contains(message), "{set}: {}", String::from_utf8_lossy(&output.stderr));
    }
}

#[test]
fn stress_command_writes_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let output = basis().args(["stress", "--output-dir", out, "--paths", "40"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("rally +30 %") && stdout.contains("monte carlo 40 paths"), "{stdout}");
    let folder = dir.path().join("sample-stress");
    for file in ["index.html", "stress.json", "monte_carlo.parquet", "stress_scenarios.png", "stress_capacity.png", "stress_monte_carlo.png"] {
        assert!(folder.join(file).is_file(), "{file} missing");
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(folder.join("stress.json")).unwrap()).unwrap();
    assert_eq!(json["scenarios"].as_array().unwrap().len(), 9);
    assert_eq!(json["monte_carlo"]["paths"], 40);
    // A scenario of an unknown kind is refused with the kinds there are.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[scenario]]\nkind = \"meteor\"\n").unwrap();
    let output = basis().args(["stress", "--output-dir", out, "--stress", bad.to_str().unwrap()]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("price_shock"), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Small things a user tripped on: an end before the start says so; `presets` prints the
/// config's spelling; `data convert` does not replace an earlier conversion without `--force`;
/// one rebalance is "1 rebalance".
#[test]
fn messages_say_what_happened_in_the_configs_words() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let output = basis().args(["backtest", "--output-dir", out, "--set", "strategy.start=\"2025-03-01T00:00:00Z\"", "--set", "strategy.end=\"2025-01-01T00:00:00Z\""]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("strategy.end (2025-01-01 00:00:00Z) is not after strategy.start (2025-03-01 00:00:00Z)"), "{stderr}");

    let presets = String::from_utf8(basis().arg("presets").output().unwrap().stdout).unwrap();
    assert!(presets.contains("formula = clamped_interest") && presets.contains("paid_on = oracle") && !presets.contains("ClampedInterest"), "{presets}");

    let target = dir.path().join("converted");
    assert!(basis().args(["data", "convert", "--out"]).arg(&target).output().unwrap().status.success());
    let again = basis().args(["data", "convert", "--out"]).arg(&target).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("pass --force"));
    assert!(basis().args(["data", "convert", "--force", "--out"]).arg(&target).output().unwrap().status.success());

    let stdout = String::from_utf8(basis().args(["backtest", "--output-dir", out]).output().unwrap().stdout).unwrap();
    assert!(stdout.contains("activity      1 rebalance, 3 margin top-ups, 0 liquidations"), "{stdout}");
}

/// `basis data cache` names the dump cache's folder (`--cache-dir` first), counts its entries
/// and empties it with `--clear`; with `--no-cache` it says the cache is off.
#[test]
fn data_cache_shows_and_clears_the_dump_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let entries = cache.join("klines/v2");
    std::fs::create_dir_all(&entries).unwrap();
    std::fs::write(entries.join("a-auto-0.parquet"), vec![0u8; 1 << 20]).unwrap();
    std::fs::write(entries.join("b-auto-0.parquet"), vec![0u8; 1 << 19]).unwrap();
    let show = |args: &[&str]| {
        let out = basis().args(args).env_remove("BASIS_NO_CACHE").output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let cache_arg = cache.to_str().unwrap();
    let text = show(&["--cache-dir", cache_arg, "data", "cache"]);
    assert!(text.contains(&format!("dump cache {cache_arg}: 2 entries, 1.5 MiB (limit 4096 MiB")), "{text}");
    let text = show(&["data", "cache", "--clear", "--cache-dir", cache_arg]);
    assert!(text.contains("removed 2 entries (1.5 MiB)"), "{text}");
    assert!(!entries.exists());
    assert!(show(&["--cache-dir", cache_arg, "data", "cache"]).contains(": 0 entries, 0.0 MiB"));
    assert!(show(&["--no-cache", "data", "cache"]).contains("dump cache: off"));
}
