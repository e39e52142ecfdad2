//! `basis._basis`: the Python extension, a thin layer over the `basis` library crate.
//!
//! Every function here loads a config the way the CLI does, calls the same library function
//! the CLI calls, and hands the results back: tables through the Arrow C stream interface
//! (`__arrow_c_stream__`, read by `polars.DataFrame(...)` without copying the buffers), metrics
//! as JSON text. No backtesting logic lives here. Long work runs with the GIL released.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use basis::app::backtest::{self, BacktestResult};
use basis::app::portfolio::{self, BookResult};
use basis::config::book::{file_is_book, is_book, BookConfig};
use basis::config::Config;
use basis::polars::prelude::*;
use basis::polars_arrow::array::{Array, StructArray};
use basis::polars_arrow::datatypes::{ArrowDataType, Field as ArrowField};
use basis::polars_arrow::ffi;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

create_exception!(_basis, BasisError, PyException, "Any error basis raises; the message is the CLI's.");
create_exception!(_basis, ConfigError, BasisError, "The config (or a `set` override) is invalid: the CLI would exit 2 before loading data.");
create_exception!(_basis, DataError, BasisError, "The data is unusable: a file, row or column the CLI would refuse (exit 2).");

/// Which step failed, to choose the exception: loading the config, or what came after.
#[derive(Clone, Copy)]
enum Phase {
    Config,
    Run,
}

fn to_py(err: anyhow::Error, phase: Phase) -> PyErr {
    let message = format!("{err:#}");
    match (basis::error::is_input_error(&err), phase) {
        (true, Phase::Config) => ConfigError::new_err(message),
        (true, Phase::Run) => DataError::new_err(message),
        (false, _) => BasisError::new_err(message),
    }
}

/// A config as Python gives it: a file, TOML text, or JSON text (from a dict).
enum Source {
    Path(PathBuf),
    Toml(String),
    Json(String),
}

impl Source {
    fn parse(kind: &str, text: String) -> PyResult<Source> {
        match kind {
            "path" => Ok(Source::Path(PathBuf::from(text))),
            "toml" => Ok(Source::Toml(text)),
            "json" => Ok(Source::Json(text)),
            other => Err(BasisError::new_err(format!("unknown config kind {other:?}"))),
        }
    }
}

/// A loaded config: one pair, or a book.
enum Loaded {
    Pair(Config),
    Book(BookConfig),
}

/// Load a config with `KEY=VALUE` overrides, exactly as `basis backtest --set` does. Text and
/// dicts resolve relative paths against the working directory.
fn load(source: &Source, overrides: &[String]) -> anyhow::Result<(Loaded, Option<PathBuf>)> {
    let (raw, origin, base_dir, path) = match source {
        Source::Path(path) => {
            if file_is_book(path) {
                let book = if overrides.is_empty() { BookConfig::load(path)? } else { basis::config::load_book_with_overrides(path, overrides)? };
                return Ok((Loaded::Book(book), Some(path.clone())));
            }
            let config = if overrides.is_empty() { Config::load(path)? } else { basis::config::load_with_overrides(path, overrides)? };
            return Ok((Loaded::Pair(config), Some(path.clone())));
        }
        Source::Toml(text) => {
            let raw: toml::Value = toml::from_str(text).map_err(|e| basis::input_error!("config (TOML text): {}", e.to_string().trim_end()))?;
            (raw, "config (TOML text)", std::env::current_dir()?, None)
        }
        Source::Json(text) => {
            let raw: toml::Value = serde_json::from_str(text).map_err(|e| basis::input_error!("config (dict): {e}"))?;
            (raw, "config (dict)", std::env::current_dir()?, None)
        }
    };
    if is_book(&raw) {
        Ok((Loaded::Book(basis::config::book_from_value_with_overrides(raw, origin, &base_dir, overrides)?), path))
    } else {
        Ok((Loaded::Pair(basis::config::from_value_with_overrides(raw, origin, &base_dir, overrides)?), path))
    }
}

/// A table handed to Python through the Arrow C stream interface (once: the stream moves out).
#[pyclass(frozen, module = "basis._basis")]
struct ArrowFrame(Mutex<Option<DataFrame>>);

impl ArrowFrame {
    fn new(frame: DataFrame) -> ArrowFrame {
        ArrowFrame(Mutex::new(Some(frame)))
    }
}

#[pymethods]
impl ArrowFrame {
    /// The Arrow PyCapsule stream protocol: `polars.DataFrame(frame)` or `pyarrow.table(frame)`.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(&self, py: Python<'py>, requested_schema: Option<Py<PyAny>>) -> PyResult<Bound<'py, PyCapsule>> {
        // The schema request is best effort in the protocol; the frame goes as it is.
        let _ = requested_schema;
        let mut frame = self.0.lock().map_err(|_| BasisError::new_err("frame lock poisoned"))?.take().ok_or_else(|| BasisError::new_err("this table was already read"))?;
        frame.rechunk_mut_par();
        let fields: Vec<ArrowField> = frame.schema().to_arrow(CompatLevel::newest()).into_iter_values().collect();
        let dtype = ArrowDataType::Struct(fields);
        let columns: Vec<Series> = frame.columns().iter().map(|c| c.as_materialized_series().clone()).collect();
        let (chunks, height, struct_type) = (frame.first_col_n_chunks().max(1), frame.height(), dtype.clone());
        let batches = (0..chunks).map(move |i| {
            let arrays: Vec<Box<dyn Array>> = columns.iter().map(|s| s.to_arrow(i, CompatLevel::newest())).collect();
            let len = arrays.first().map_or(height, |a| a.len());
            Ok(Box::new(StructArray::new(struct_type.clone(), len, arrays, None)) as Box<dyn Array>)
        });
        let stream = ffi::export_iterator(Box::new(batches), ArrowField::new(PlSmallStr::EMPTY, dtype, false));
        PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
    }
}

/// What a backtest produced.
enum Outcome {
    Pair(Box<BacktestResult>),
    Book(Box<BookResult>),
}

/// One backtest's results, in memory (`basis.Run` wraps it). A single run's ledger is moved
/// into a polars frame once (no copy), and handed to Python from there without copies; it goes
/// back into the result only to write the run's folder.
#[pyclass(module = "basis._basis")]
struct RunResult {
    loaded: Loaded,
    path: Option<PathBuf>,
    outcome: Mutex<Outcome>,
    ledger: Option<DataFrame>,
}

impl RunResult {
    fn outcome(&self) -> PyResult<std::sync::MutexGuard<'_, Outcome>> {
        self.outcome.lock().map_err(|_| BasisError::new_err("run lock poisoned"))
    }
}

#[pymethods]
impl RunResult {
    /// `metrics.json`'s content, as JSON text.
    fn metrics_json(&self) -> PyResult<String> {
        let json = match &*self.outcome()? {
            Outcome::Pair(r) => serde_json::to_string(&r.metrics),
            Outcome::Book(r) => serde_json::to_string(&r.metrics),
        };
        json.map_err(|e| BasisError::new_err(format!("metrics: {e}")))
    }

    /// The text the CLI prints after a run.
    fn summary(&self) -> PyResult<String> {
        Ok(match &*self.outcome()? {
            Outcome::Pair(r) => r.metrics.summary_text(),
            Outcome::Book(r) => portfolio::summary_text(r),
        })
    }

    /// The warnings the CLI prints to stderr.
    fn warnings(&self) -> PyResult<Vec<String>> {
        Ok(match &*self.outcome()? {
            Outcome::Pair(r) => r.warnings.clone(),
            Outcome::Book(r) => r.warnings.clone(),
        })
    }

    /// A table of the run by its file's name: `ledger`, `trades`, `funding` (and for a book
    /// `legs`, `accounts`), the columns and values of the `.parquet` the CLI writes.
    fn table(&self, name: &str) -> PyResult<ArrowFrame> {
        if let (Some(ledger), "ledger") = (&self.ledger, name) {
            return Ok(ArrowFrame::new(ledger.clone()));
        }
        let outcome = self.outcome()?;
        let frame = match (&*outcome, name) {
            (Outcome::Pair(r), "trades") => basis::measure::ledger::trades_frame(&r.summary.trades),
            (Outcome::Pair(r), "funding") => basis::measure::ledger::settlements_frame(&r.settlements),
            (Outcome::Book(r), "ledger") => r.ledger.book.to_frame(),
            (Outcome::Book(r), "legs") => basis::measure::book::legs_frame(&r.ledger, &r.places),
            (Outcome::Book(r), "accounts") => match &self.loaded {
                Loaded::Book(book) => basis::measure::book::accounts_frame(&r.ledger, &book.accounts),
                Loaded::Pair(_) => return Err(BasisError::new_err("accounts: not a book")),
            },
            (Outcome::Book(r), "trades") => portfolio::trades_frame_of(r),
            (Outcome::Book(r), "funding") => portfolio::funding_frame(r),
            (_, other) => return Err(BasisError::new_err(format!("no table {other:?}: a run has ledger, trades and funding; a book also legs and accounts"))),
        };
        frame.map(ArrowFrame::new).map_err(|e| to_py(e, Phase::Run))
    }

    /// Write the run's folder as `basis backtest` does (`<output_dir>/<name>/`, a new folder
    /// unless `force`); returns its path.
    #[pyo3(signature = (output_dir, name=None, report=true, force=false))]
    fn write(&self, py: Python<'_>, output_dir: PathBuf, name: Option<String>, report: bool, force: bool) -> PyResult<String> {
        let path = self.path.clone();
        py.detach(|| -> anyhow::Result<PathBuf> {
            let mut outcome = self.outcome.lock().map_err(|_| anyhow::anyhow!("run lock poisoned"))?;
            match (&self.loaded, &mut *outcome) {
                (Loaded::Pair(config), Outcome::Pair(result)) => {
                    let mut config = config.clone();
                    config.run.output_dir = output_dir;
                    config.run.report = report;
                    if let Some(name) = name {
                        config.run.name = name;
                    }
                    // The ledger back in the result for the writer (and the report), then out.
                    if let Some(ledger) = &self.ledger {
                        result.ledger = basis::measure::ledger::FullLedger::from_frame(ledger, "ledger")?;
                    }
                    let written = backtest::write_outputs(&config, path.as_deref(), result, force);
                    if self.ledger.is_some() {
                        result.ledger = Default::default();
                    }
                    written
                }
                (Loaded::Book(book), Outcome::Book(result)) => {
                    let mut book = book.clone();
                    book.run.output_dir = output_dir;
                    book.run.report = report;
                    if let Some(name) = name {
                        book.run.name = name;
                    }
                    portfolio::write_outputs(&book, path.as_deref(), result, force)
                }
                _ => Err(anyhow::anyhow!("a run and its config disagree")),
            }
        })
        .map(|p| p.display().to_string())
        .map_err(|e| to_py(e, Phase::Run))
    }
}

/// Run a backtest (a pair or a book) in memory, as `basis backtest` does.
#[pyfunction(name = "backtest")]
#[pyo3(signature = (kind, config, set=Vec::new()))]
fn run_backtest(py: Python<'_>, kind: &str, config: String, set: Vec<String>) -> PyResult<RunResult> {
    let source = Source::parse(kind, config)?;
    let (loaded, path) = py.detach(|| load(&source, &set)).map_err(|e| to_py(e, Phase::Config))?;
    let (outcome, ledger) = py
        .detach(|| -> anyhow::Result<(Outcome, Option<DataFrame>)> {
            Ok(match &loaded {
                Loaded::Pair(config) => {
                    let mut result = backtest::run(config)?;
                    let ledger = std::mem::take(&mut result.ledger).into_frame()?;
                    (Outcome::Pair(Box::new(result)), Some(ledger))
                }
                Loaded::Book(book) => (Outcome::Book(Box::new(portfolio::run(book)?)), None),
            })
        })
        .map_err(|e| to_py(e, Phase::Run))?;
    Ok(RunResult { loaded, path, outcome: Mutex::new(outcome), ledger })
}

/// Run a sweep file as `basis sweep` does; returns the finished folder (results.parquet,
/// report, walk_forward.parquet). With `progress`, it is called as `progress(done, total)` from
/// this thread about five times a second while the sweep runs off the GIL; Ctrl-C (or an
/// exception from `progress`) stops the sweep at its next chunk of 1,024 configurations, and
/// running it again resumes there.
#[pyfunction]
#[pyo3(signature = (path, threads=None, shard=None, name=None, output_dir=None, force=false, progress=None))]
#[allow(clippy::too_many_arguments)]
fn sweep(py: Python<'_>, path: PathBuf, threads: Option<usize>, shard: Option<(u64, u64)>, name: Option<String>, output_dir: Option<PathBuf>, force: bool, progress: Option<Py<PyAny>>) -> PyResult<String> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let spec = py.detach(|| basis::app::sweep::spec::Sweep::load(&path)).map_err(|e| to_py(e, Phase::Config))?;
    if let Some((i, n)) = shard {
        if n == 0 || i >= n {
            return Err(ConfigError::new_err(format!("shard=({i}, {n}): expected (i, n) with 0 <= i < n")));
        }
    }
    let total = basis::app::sweep::run::shard_len(spec.total, shard);
    let (done, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let options = basis::app::sweep::run::SweepOptions { shard, force, name, output_dir, progress: false, done: Some(done.clone()), stop: Some(stop.clone()) };
    let mut interrupted: Option<PyErr> = None;
    let outcome = py.detach(|| {
        std::thread::scope(|scope| {
            let job = scope.spawn(|| -> anyhow::Result<PathBuf> {
                let run = || basis::app::sweep::run::run(&spec, &options).map(|s| s.folder);
                match threads {
                    Some(n) => rayon::ThreadPoolBuilder::new().num_threads(n.max(1)).build().map_err(|e| anyhow::anyhow!("thread pool: {e}"))?.install(run),
                    None => run(),
                }
            });
            let mut reported = u64::MAX;
            while !job.is_finished() {
                std::thread::sleep(std::time::Duration::from_millis(200));
                let now = done.load(Ordering::Relaxed);
                let polled = Python::attach(|py| -> PyResult<()> {
                    py.check_signals()?;
                    if let (Some(callback), true) = (&progress, now != reported) {
                        callback.call1(py, (now, total))?;
                    }
                    Ok(())
                });
                reported = now;
                if let Err(err) = polled {
                    stop.store(true, Ordering::Relaxed);
                    interrupted = Some(err);
                    break;
                }
            }
            job.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the sweep panicked")))
        })
    });
    if let Some(err) = interrupted {
        return Err(err);
    }
    let folder = outcome.map_err(|e| to_py(e, Phase::Run))?;
    if let Some(callback) = &progress {
        callback.call1(py, (done.load(Ordering::Relaxed), total))?;
    }
    Ok(folder.display().to_string())
}

/// Merge sweep shards' folders into `<output_dir>/<name>/results.parquet` (the unsharded
/// sweep's bytes); returns the folder.
#[pyfunction]
#[pyo3(signature = (folders, output_dir, name, force=false))]
fn merge_shards(py: Python<'_>, folders: Vec<PathBuf>, output_dir: PathBuf, name: String, force: bool) -> PyResult<String> {
    py.detach(|| basis::app::sweep::run::merge_shards(&folders, &output_dir, &name, force)).map(|p| p.display().to_string()).map_err(|e| to_py(e, Phase::Run))
}

/// Run any CLI command in this process (`["caps", "--config", ...]`), its output written where
/// the CLI writes it; for the commands the package wraps (caps, venues, term, stress).
#[pyfunction]
fn cli(py: Python<'_>, args: Vec<String>) -> PyResult<()> {
    use clap::Parser;
    let parsed = basis::cli::Cli::try_parse_from(std::iter::once("basis".to_string()).chain(args)).map_err(|e| ConfigError::new_err(e.to_string()))?;
    py.detach(|| basis::cli::run(parsed)).map_err(|e| to_py(e, Phase::Run))
}

/// The built-in venue presets, as JSON text (a list of presets).
#[pyfunction]
fn presets_json() -> PyResult<String> {
    let presets = basis::venue::Preset::built_in().map_err(|e| to_py(e, Phase::Config))?;
    serde_json::to_string(&presets).map_err(|e| BasisError::new_err(format!("presets: {e}")))
}

/// `basis data inspect FILE`'s report of one file (every reader sniffed), as text.
#[pyfunction]
fn inspect_text(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    py.detach(|| basis::app::inspect::inspect_text(Path::new(&path))).map_err(|e| to_py(e, Phase::Run))
}

/// The extension module.
#[pymodule]
fn _basis(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("BasisError", m.py().get_type::<BasisError>())?;
    m.add("ConfigError", m.py().get_type::<ConfigError>())?;
    m.add("DataError", m.py().get_type::<DataError>())?;
    m.add_class::<ArrowFrame>()?;
    m.add_class::<RunResult>()?;
    m.add_function(wrap_pyfunction!(run_backtest, m)?)?;
    m.add_function(wrap_pyfunction!(sweep, m)?)?;
    m.add_function(wrap_pyfunction!(cli, m)?)?;
    m.add_function(wrap_pyfunction!(merge_shards, m)?)?;
    m.add_function(wrap_pyfunction!(presets_json, m)?)?;
    m.add_function(wrap_pyfunction!(inspect_text, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
