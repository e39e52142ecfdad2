//! `basis sweep`: configurations rebuilt from their ids, results equal to plain backtests,
//! shards whose union is the unsharded sweep, a killed sweep that resumes without redoing or
//! losing work, the walk-forward's choices, and clear errors for bad sweep files.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use basis::app::sweep::run::{self, SweepOptions};
use basis::app::sweep::spec::Sweep;
use basis::app::sweep::METRIC_NAMES;
use polars::prelude::*;

fn base_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/basis.toml")
}

/// Write a sweep file (base = the shipped sample config) and load it.
fn sweep_in(dir: &Path, body: &str) -> (PathBuf, Sweep) {
    let path = dir.join("sweep.toml");
    std::fs::write(&path, format!("base = {:?}\nname = \"t\"\noutput_dir = {:?}\n{body}", base_config().display().to_string(), dir.join("out").display().to_string())).unwrap();
    let sweep = Sweep::load(&path).unwrap();
    (path, sweep)
}

fn read(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap()).finish().unwrap()
}

fn f64s(frame: &DataFrame, name: &str) -> Vec<f64> {
    frame.column(name).unwrap().f64().unwrap().iter().map(|v| v.unwrap()).collect()
}

fn ids(frame: &DataFrame) -> Vec<u64> {
    frame.column("config_id").unwrap().u64().unwrap().iter().map(|v| v.unwrap()).collect()
}

const GRID: &str = r#"
metric = "apr"
[params]
"portfolio.leverage" = [1.0, 2.0, 3.0]
"portfolio.top_up_distance" = { from = 0.1, to = 0.3, step = 0.1 }
"venue.preset" = ["binance_usdm", "hyperliquid"]
"strategy.lookback_settlements" = { from = 3, to = 6, count = 2 }
"#;

#[test]
fn grid_ids_decode_and_results_equal_plain_backtests() {
    let dir = tempfile::tempdir().unwrap();
    let (_, sweep) = sweep_in(dir.path(), GRID);
    assert_eq!(sweep.total, 3 * 3 * 2 * 2);
    // Params are ordered by path; the last one varies fastest.
    let paths: Vec<&str> = sweep.params.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["portfolio.leverage", "portfolio.top_up_distance", "strategy.lookback_settlements", "venue.preset"]);
    let values = sweep.values(23); // 23 = ((1*3 + 2)*2 + 1)*2 + 1
    assert_eq!(values[0].as_float(), Some(2.0));
    assert_eq!(values[1].as_float(), Some(0.3), "0.1 + 2 x 0.1 printed as written");
    assert_eq!(values[2].as_float(), Some(6.0));
    assert_eq!(values[3].as_str(), Some("hyperliquid"));
    // The integer field gets an integer; the preset is loaded, and the fees the base config
    // sets itself stay (keys written in [costs] win over a preset's).
    let config = sweep.config(&values, &[]).unwrap();
    assert_eq!(config.strategy.lookback_settlements, 6);
    assert_eq!(config.venue.loaded.as_ref().unwrap().id, "hyperliquid");
    assert_eq!(config.costs.perp_taker_bps, 5.0);

    let summary = run::run(&sweep, &SweepOptions::default()).unwrap();
    assert_eq!((summary.configurations, summary.failed, summary.resumed), (36, 0, 0));
    let results = read(&summary.folder.join("results.parquet"));
    assert_eq!(ids(&results), (0..36).collect::<Vec<u64>>());
    // Shared timelines give exactly what a plain backtest of the same config gives.
    for id in [0u64, 23, 35] {
        let config = sweep.config(&sweep.values(id), &[]).unwrap();
        let plain = basis::app::backtest::run(&config).unwrap().metrics;
        let row = id as usize;
        assert_eq!(f64s(&results, "final_equity")[row], plain.final_equity, "config {id}");
        assert_eq!(f64s(&results, "sharpe")[row], plain.sharpe);
        assert_eq!(f64s(&results, "liquidations")[row], plain.liquidations as f64);
    }
    // Leverage changes the result; the partial folder is gone; the report names the best.
    let equity = f64s(&results, "final_equity");
    assert_ne!(equity[0], equity[12]);
    assert!(!dir.path().join("out/.t.partial").exists());
    let html = std::fs::read_to_string(summary.folder.join("index.html")).unwrap();
    assert!(html.contains("Top 20 configurations by apr") && html.contains("sweep_heatmap"));
    assert!(summary.folder.join("sweep_heatmap.png").is_file());
    // A second run keeps the first: t-2.
    let again = run::run(&sweep, &SweepOptions::default()).unwrap();
    assert_eq!(again.folder.file_name().unwrap(), "t-2");
}

#[test]
fn shards_union_equals_the_unsharded_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let (_, sweep) = sweep_in(dir.path(), "mode = \"random\"\nsamples = 50\nseed = 11\n[params]\n\"portfolio.leverage\" = { min = 1.0, max = 4.0 }\n\"costs.perp_slippage_bps\" = { min = 0.1, max = 20.0, log = true }\n\"venue.preset\" = [\"binance_usdm\", \"bybit_linear\", \"okx_swap\"]\n");
    // Random draws are a function of (seed, id): the same on every call, inside the bounds.
    assert_eq!(sweep.values(17), sweep.values(17));
    for id in 0..50 {
        let v = sweep.values(id);
        let (lev, slip) = (v[1].as_float().unwrap(), v[0].as_float().unwrap());
        assert!((1.0..=4.0).contains(&lev) && (0.1..=20.0).contains(&slip), "{v:?}");
    }
    let whole = read(&run::run(&sweep, &SweepOptions::default()).unwrap().folder.join("results.parquet"));
    let mut union: Option<DataFrame> = None;
    for i in 0..3 {
        let options = SweepOptions { shard: Some((i, 3)), ..SweepOptions::default() };
        let summary = run::run(&sweep, &options).unwrap();
        assert_eq!(summary.folder.file_name().unwrap().to_string_lossy(), format!("t.shard-{i}-of-3"));
        let part = read(&summary.folder.join("results.parquet"));
        assert!(ids(&part).iter().all(|id| id % 3 == i));
        match union.as_mut() {
            None => union = Some(part),
            Some(u) => {
                u.vstack_mut(&part).unwrap();
            }
        }
    }
    let union = union.unwrap().sort(["config_id"], SortMultipleOptions::default()).unwrap();
    assert_eq!(union.height(), 50);
    assert!(union.equals_missing(&whole), "the union of the shards differs from the unsharded sweep");
    assert!(run::parse_shard("3/3").is_err() && run::parse_shard("a/2").is_err() && run::parse_shard("0/1").is_ok());
}

#[test]
fn a_killed_sweep_resumes_without_redoing_or_losing_work() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = sweep_in(dir.path(), "mode = \"random\"\nsamples = 6000\n[params]\n\"portfolio.leverage\" = { min = 1.0, max = 3.0 }\n\"portfolio.top_up_distance\" = { min = 0.05, max = 0.3 }\n");
    let basis = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_basis"));
        command.args(["sweep", "--config", path.to_str().unwrap(), "--threads", "1"]);
        command
    };
    let parts = dir.path().join("out/.t.partial/parts");
    let mut child = basis().stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    while !parts.join("chunk-000000.parquet").is_file() {
        assert!(started.elapsed() < Duration::from_secs(120), "no chunk was written");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Killed: no folder that looks like a finished sweep, and the finished chunks are intact.
    assert!(!dir.path().join("out/t").exists());
    let written: Vec<_> = std::fs::read_dir(&parts).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(written.iter().any(|f| f == "chunk-000000.parquet"));
    assert_eq!(read(&parts.join("chunk-000000.parquet")).height(), 1024);
    let done = written.iter().filter(|f| f.ends_with(".parquet")).count();
    assert!(done < 6, "the sweep finished before it was killed; make it longer");

    let output = basis().output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains(&format!("resumed: {} of 6000", done * 1024)), "{stdout}");
    let resumed = read(&dir.path().join("out/t/results.parquet"));
    assert_eq!(ids(&resumed), (0..6000).collect::<Vec<u64>>());
    // Identical to an uninterrupted sweep of the same plan.
    let fresh = basis().args(["--name", "fresh"]).output().unwrap();
    assert!(fresh.status.success());
    let fresh = read(&dir.path().join("out/fresh/results.parquet"));
    assert!(fresh.equals_missing(&resumed));
    assert!(!dir.path().join("out/.t.partial").exists());
}

#[test]
fn walk_forward_chooses_the_in_sample_best() {
    let dir = tempfile::tempdir().unwrap();
    let (_, sweep) = sweep_in(
        dir.path(),
        "metric = \"total_return\"\n[params]\n\"portfolio.leverage\" = [1.0, 2.0, 4.0]\n\"costs.perp_slippage_bps\" = [0.0, 50.0]\n[walk_forward]\nin_sample_days = 120\nout_of_sample_days = 60\n",
    );
    let summary = run::run(&sweep, &SweepOptions::default()).unwrap();
    let walk = read(&summary.folder.join("walk_forward.parquet"));
    // 365 days of data: windows start at day 0, 60, 120 and 180 (the last ends at day 360).
    assert_eq!(walk.height(), 4);
    let chosen: Vec<u64> = walk.column("best_config_id").unwrap().u64().unwrap().iter().map(|v| v.unwrap()).collect();
    let times = |name: &str| -> Vec<String> {
        let ms = walk.column(name).unwrap().cast(&DataType::Int64).unwrap();
        ms.i64().unwrap().iter().map(|v| chrono::DateTime::from_timestamp_millis(v.unwrap()).unwrap().to_rfc3339()).collect()
    };
    let (starts, ends) = (times("in_sample_start"), times("in_sample_end"));
    let in_sample = f64s(&walk, "in_sample_total_return");
    for w in 0..4 {
        // Independently: every configuration on the in-sample window through the plain path.
        let window = [("strategy.start", toml::Value::String(starts[w].clone())), ("strategy.end", toml::Value::String(ends[w].clone()))];
        let returns: Vec<f64> = (0..sweep.total)
            .map(|id| basis::app::backtest::run(&sweep.config(&sweep.values(id), &window).unwrap()).unwrap().metrics.total_return)
            .collect();
        let best = (0..returns.len()).max_by(|&a, &b| returns[a].total_cmp(&returns[b]).then(b.cmp(&a))).unwrap();
        assert_eq!(chosen[w], best as u64, "window {w}: {returns:?}");
        assert_eq!(in_sample[w], returns[best]);
        // 50 bp of slippage never wins.
        assert_eq!(sweep.values(chosen[w])[0].as_float(), Some(0.0));
    }
    let html = std::fs::read_to_string(summary.folder.join("index.html")).unwrap();
    assert!(html.contains("Walk-forward") && summary.folder.join("walk_forward.png").is_file());
    assert!(METRIC_NAMES.iter().all(|m| walk.column(&format!("out_of_sample_{m}")).is_ok()));
}

#[test]
fn bad_sweep_files_are_refused_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sweep.toml");
    let check = |body: &str, expected: &str| {
        std::fs::write(&path, format!("base = {:?}\n{body}", base_config().display().to_string())).unwrap();
        let err = format!("{:#}", Sweep::load(&path).unwrap_err());
        assert!(err.contains(expected), "{body}\n-> {err}");
        assert!(basis::error::is_input_error(&Sweep::load(&path).unwrap_err()));
    };
    check("[params]\n\"portfolio.leverge\" = [1.0]\n", "leverge");
    check("[params]\n\"data.symbol\" = [\"X\"]\n", "[run] and [data] are fixed");
    check("[params]\n\"portfolio.leverage\" = { min = 1.0, max = 2.0 }\n", "is for mode = \"random\"");
    check("[params]\n\"portfolio.leverage\" = []\n", "non-empty list");
    check("[params]\n\"portfolio.leverage\" = { from = 1.0, to = 2.0, stp = 0.1 }\n", "key `stp`");
    check("metric = \"profit\"\n[params]\n\"portfolio.leverage\" = [1.0]\n", "sharpe");
    check("mode = \"random\"\n[params]\n\"portfolio.leverage\" = [1.0]\n", "samples");
    check("[params]\n\"portfolio.leverage\" = [\"high\"]\n", "invalid type");
    check("[params]\n", "[params] is empty");
    // An out-of-range value is recorded per configuration, not fatal.
    std::fs::write(&path, format!("base = {:?}\noutput_dir = {:?}\n[params]\n\"portfolio.leverage\" = [0.0, 1.0]\n", base_config().display().to_string(), dir.path().join("out").display().to_string())).unwrap();
    let sweep = Sweep::load(&path).unwrap();
    let summary = run::run(&sweep, &SweepOptions::default()).unwrap();
    assert_eq!(summary.failed, 1);
    let results = read(&summary.folder.join("results.parquet"));
    let errors: Vec<String> = results.column("error").unwrap().str().unwrap().iter().map(|v| v.unwrap().to_string()).collect();
    assert!(errors[0].contains("portfolio.leverage") && errors[1].is_empty(), "{errors:?}");
    assert!(f64s(&results, "sharpe")[0].is_nan());
}
