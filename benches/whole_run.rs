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

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use basis::data::synth::{market_data, SynthSpec};
use polars::prelude::*;

/// Wall seconds and peak resident memory (MiB) of a command run to completion.
fn measure(command: &mut Command) -> (f64, f64, bool, String) {
    let started = Instant::now();
    let child = command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    // Read the output on threads so a full pipe cannot block the child.
    let mut child = child;
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).ok();
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).ok();
        text
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid, and wait4 writes it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our child, not yet waited for.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = started.elapsed().as_secs_f64();
    let ok = waited == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let text = format!("{}{}", out.join().unwrap_or_default(), err.join().unwrap_or_default());
    (seconds, usage.ru_maxrss as f64 / 1024.0, ok, text)
}

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
    write("funding.parquet", DataFrame::new(f.settle_ms.len(), vec![Column::new("ts".into(), &f.settle_ms), Column::new("rate".into(), &f.rate), Column::new("interval_hours".into(), &f.interval_hours)]).unwrap());
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

/// Runner mode: read commands (tab-separated program and arguments) from stdin, run each, and
/// answer `seconds<TAB>peak MiB<TAB>ok` per command.
fn runner() {
    use std::io::{BufRead, Write};
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let parts: Vec<&str> = line.split('\t').collect();
        // Earlier runs' files (a ledger of 334 MB at eight years) are written back to disk
        // first, not while this one is timed.
        // SAFETY: sync takes no arguments and only schedules and waits for writeback.
        unsafe { libc::sync() };
        let (seconds, peak, ok, text) = measure(Command::new(parts[0]).args(&parts[1..]));
        if !ok {
            eprintln!("{text}");
        }
        let _ = writeln!(stdout, "{seconds}\t{peak}\t{ok}");
        let _ = stdout.flush();
    }
}

/// The runner process, started while this one is still small.
struct Runner {
    child: std::process::Child,
    answers: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Runner {
    fn start() -> Runner {
        use std::io::BufRead;
        let mut child = Command::new(std::env::current_exe().expect("the bench binary"))
            .arg("--runner")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("starting the runner");
        let answers = std::io::BufReader::new(child.stdout.take().expect("runner stdout")).lines();
        Runner { child, answers }
    }

    /// The fastest of `runs` runs of `program args` (its wall seconds), the highest peak MiB,
    /// and whether every run succeeded; `output`, if any, is removed before each run.
    fn best_of(&mut self, runs: usize, program: &str, args: &[&str], output: Option<&Path>) -> (f64, f64, bool) {
        let mut best = (f64::INFINITY, 0.0f64, true);
        for _ in 0..runs {
            if let Some(output) = output {
                let _ = std::fs::remove_dir_all(output);
            }
            let (seconds, peak, ok) = self.run(program, args);
            best = (best.0.min(seconds), best.1.max(peak), best.2 && ok);
        }
        best
    }

    /// Wall seconds, peak MiB and success of `program args`.
    fn run(&mut self, program: &str, args: &[&str]) -> (f64, f64, bool) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("runner stdin");
        writeln!(stdin, "{}", std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join("\t")).expect("runner");
        stdin.flush().expect("runner");
        let answer = self.answers.next().and_then(Result::ok).unwrap_or_default();
        let fields: Vec<&str> = answer.split('\t').collect();
        (fields.first().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN), fields.get(1).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN), fields.get(2) == Some(&"true"))
    }
}

/// Measured runs per program and size (after one warm-up); the fastest is reported.
const MEASURED_RUNS: usize = 3;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if std::env::args().any(|a| a == "--runner") {
        return runner();
    }
    let mut runner = Runner::start();
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
        let (seconds, peak, ok) = runner.best_of(MEASURED_RUNS, env!("CARGO_BIN_EXE_basis"), &basis_args, Some(&output));
        assert!(ok, "basis backtest failed (its output is above)");
        let (script_cell, script_peak, ratio) = match &python {
            Some(py) => {
                let (script_text, dir_text) = (script.to_string_lossy().into_owned(), dir.path().to_string_lossy().into_owned());
                let _ = runner.run(py, &[&script_text, &dir_text]);
                let (s, m, ok) = runner.best_of(MEASURED_RUNS, py, &[&script_text, &dir_text], None);
                assert!(ok, "the numpy script failed (its output is above)");
                (format!("{s:.2} s"), format!("{m:.0}"), format!("{:.2}", seconds / s))
            }
            None => ("skipped (no numpy/polars: see benches/python/requirements.txt)".into(), "".into(), "".into()),
        };
        println!("| {y} | {steps} | {seconds:.2} s | {:.2} M | {peak:.0} | {script_cell} | {script_peak} | {ratio} |", steps as f64 / seconds / 1e6);
    }
}
