//! The whole `basis backtest` process on generated 1-minute bars of 1, 2, 4 and 8 years
//! (spot, perp with its high and low, funding; generic Parquet), always-on carry at 1x with
//! the full ledger written and no report, beside the minimal numpy/polars script in
//! `benches/python/carry_numpy.py` on the same files. Prints a table: wall time, steps per
//! second and peak memory (the child's `ru_maxrss` from `wait4`).
//!
//! Run with `cargo bench --bench whole_run` (about a minute; `BASIS_BENCH_YEARS=1,2` for fewer).
//! The script needs numpy and polars (`benches/python/requirements.txt`): it runs with
//! `$BASIS_PYTHON`, else `python3`, and is skipped with a note when neither imports them.
//!
//! Each basis run writes a new run folder, as a run does by default: the previous run's folder
//! is removed before it, untimed. (Replacing a run with `--force` also deletes the old one's
//! files, which at one year is a 41 MB ledger: about 15 ms more.)

mod common;

use std::path::Path;
use std::process::Command;

use basis::data::synth::{market_data, SynthSpec};
use polars::prelude::*;

fn write_inputs(years: u32, dir: &Path) -> usize {
    let data = market_data(&SynthSpec { bar_minutes: 1, days: 365 * years, ..SynthSpec::default() });
    let write = |name: &str, mut frame: DataFrame| {
        let file = std::fs::File::create(dir.join(name)).unwrap();
        ParquetWriter::new(file).finish(&mut frame).unwrap();
    };
    let bars = |b: &basis::data::PriceBars, range: bool| {
        let mut columns = vec![Column::new("ts".into(), &b.ts_ms), Column::new("close".into(), &b.close)];
        if range {
            columns.push(Column::new("high".into(), &b.high));
            columns.push(Column::new("low".into(), &b.low));
        }
        DataFrame::new(b.ts_ms.len(), columns).unwrap()
    };
    write("spot.parquet", bars(&data.spot, false));
    write("perp.parquet", bars(&data.perp, true));
    let f = &data.funding;
    write("funding.parquet", DataFrame::new(f.len(), vec![Column::new("ts".into(), &f.settle_ms()), Column::new("rate".into(), &f.rates()), Column::new("interval_hours".into(), &f.interval_hours())]).unwrap());
    let config = format!(
        r#"[run]
name = "whole"
output_dir = "{out}"
report = false
[data]
symbol = "SYNTHUSDT"
synthetic = true
[data.spot]
format = "generic"
path = "spot.parquet"
close_time_column = "ts"
close_column = "close"
[data.perp]
format = "generic"
path = "perp.parquet"
close_time_column = "ts"
close_column = "close"
high_column = "high"
low_column = "low"
[data.funding]
format = "generic"
path = "funding.parquet"
time_column = "ts"
rate_column = "rate"
interval_hours_column = "interval_hours"
[portfolio]
leverage = 1.0
reserve_fraction = 0.0
"#,
        out = dir.join("reports").display()
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
    data.perp.ts_ms.len()
}

/// Where a measurement's inputs live.
enum Kept {
    Temp(tempfile::TempDir),
    Folder(std::path::PathBuf),
}

impl Kept {
    fn path(&self) -> &Path {
        match self {
            Kept::Temp(dir) => dir.path(),
            Kept::Folder(path) => path,
        }
    }
}

fn python() -> Option<String> {
    let candidates = std::env::var("BASIS_PYTHON").into_iter().chain(["python3".to_string()]);
    candidates.into_iter().find(|py| Command::new(py).args(["-c", "import numpy, polars"]).output().is_ok_and(|o| o.status.success()))
}

/// Measured runs per program and size (after one warm-up); the fastest is reported.
const MEASURED_RUNS: usize = 3;

fn main() {
    let Some(mut runner) = common::Runner::for_bench() else { return };
    let years: Vec<u32> = std::env::var("BASIS_BENCH_YEARS").ok().map(|v| v.split(',').filter_map(|y| y.trim().parse().ok()).collect()).unwrap_or_else(|| vec![1, 2, 4, 8]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python/carry_numpy.py");
    let python = python();
    println!("| years | steps | basis backtest (full ledger) | steps/s | peak MiB | numpy/polars script | peak MiB | basis / script |");
    println!("|---|---|---|---|---|---|---|---|");
    for y in years {
        let dir = tempfile::tempdir().unwrap();
        // BASIS_BENCH_KEEP=<folder>: also leave the inputs there, for profiling.
        let dir = match std::env::var("BASIS_BENCH_KEEP") {
            Ok(keep) => {
                let kept = Path::new(&keep).join(format!("{y}y"));
                std::fs::create_dir_all(&kept).unwrap();
                Kept::Folder(kept)
            }
            Err(_) => Kept::Temp(dir),
        };
        let steps = write_inputs(y, dir.path());
        let config = dir.path().join("config.toml");
        // One warm-up run (page cache), then the best of the measured ones: this machine's
        // background varies a single run's time by a third.
        let config_text = config.to_string_lossy().into_owned();
        let basis_args = ["backtest", "--force", "--config", config_text.as_str()];
        let _ = runner.run(env!("CARGO_BIN_EXE_basis"), &basis_args);
        let output = dir.path().join("reports");
        let (seconds, peak, ok) = runner.best_of(MEASURED_RUNS, env!("CARGO_BIN_EXE_basis"), &basis_args, &[output.as_path()]);
        assert!(ok, "basis backtest failed (its output is above)");
        let (script_cell, script_peak, ratio) = match &python {
            Some(py) => {
                let (script_text, dir_text) = (script.to_string_lossy().into_owned(), dir.path().to_string_lossy().into_owned());
                let _ = runner.run(py, &[&script_text, &dir_text]);
                let (s, m, ok) = runner.best_of(MEASURED_RUNS, py, &[&script_text, &dir_text], &[]);
                assert!(ok, "the numpy script failed (its output is above)");
                (format!("{s:.2} s"), format!("{m:.0}"), format!("{:.2}", seconds / s))
            }
            None => ("skipped (no numpy/polars: see benches/python/requirements.txt)".into(), "".into(), "".into()),
        };
        println!("| {y} | {steps} | {seconds:.2} s | {:.2} M | {peak:.0} | {script_cell} | {script_peak} | {ratio} |", steps as f64 / seconds / 1e6);
    }
}
