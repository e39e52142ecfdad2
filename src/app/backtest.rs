//! One backtest end to end: load -> align -> simulate -> measure -> report -> write.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::config::{Config, InstrumentChoice};
use crate::data::quality::StaleSpan;
use crate::data::{self, align::{Coverage, MarketTimeline}, stream::Chunking};
use crate::sim::policy::EntryMode;
use crate::sim::RunSummary;
use crate::measure::ledger::{settlements_frame, trades_frame, window_settlements, FullLedger, LayoutThread, NoLedger, ParquetLedger, PeriodLedger, ReportLedger, FundingPayment, Tee};
use crate::measure::metrics::Metrics;
use crate::output::RunDir;
use crate::render::{self, ReportInput};
use super::pipeline::{alignment_warnings, counterfactual, oracle_warning, prepare, window_of};

/// Everything a backtest produced, in memory.
pub struct BacktestResult {
    /// The aligned market the run simulated over, one entry per step.
    pub timeline: MarketTimeline,
    /// Every per-step ledger row, trades and events the simulation recorded.
    pub ledger: FullLedger,
    /// Run totals from the engine: steps, final equity, PnL components, drawdown.
    pub summary: RunSummary,
    /// The measured results written to `metrics.json`.
    pub metrics: Metrics,
    /// Every settlement in the window, with what the position received or paid.
    pub settlements: Vec<FundingPayment>,
    /// Input files read.
    pub files: Vec<PathBuf>,
    /// Repairs and data-quality findings.
    pub warnings: Vec<String>,
}

/// Run a backtest in memory, keeping every ledger row.
pub fn run(config: &Config) -> Result<BacktestResult> {
    let (timeline, mut files, mut warnings) = prepare(config)?;
    let params = super::pipeline::engine_params_for(config, &timeline, &mut warnings, &mut files)?;
    let resolution = config.run.ledger;
    let (ledger, (summary, mut metrics)) = match resolution.period_ms() {
        Some(period_ms) => {
            let mut kept = PeriodLedger::new(period_ms, (timeline.span_ms() / period_ms) as usize + 2);
            let out = super::pipeline::simulate(&timeline, &params, &mut kept);
            (kept.finish(), out)
        }
        None if resolution == crate::config::LedgerResolution::None => (FullLedger::default(), super::pipeline::simulate(&timeline, &params, &mut NoLedger)),
        None => {
            let mut ledger = FullLedger::with_capacity(timeline.len());
            let out = super::pipeline::simulate(&timeline, &params, &mut ledger);
            (ledger, out)
        }
    };
    super::pipeline::count_limits(&mut metrics, &summary, config, &timeline.symbol);
    warnings.extend(super::pipeline::fill_warnings(&params, &summary));
    let settlements = window_settlements(&summary.window_settlements, &summary.settlements);
    Ok(BacktestResult { timeline, ledger, summary, metrics, settlements, files, warnings })
}

/// One input file as the manifest records it: path, size and SHA-256.
#[derive(Serialize)]
pub struct InputFile {
    /// The path as the run read it.
    pub path: String,
    /// Its size, bytes.
    pub bytes: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
}

/// The manifest's record of every input file read.
pub fn input_files(files: &[PathBuf]) -> Result<Vec<InputFile>> {
    files
        .iter()
        .map(|path| {
            let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            Ok(InputFile { path: path.display().to_string(), bytes, sha256: crate::data::read::sha256_of(path)? })
        })
        .collect()
}

#[derive(Serialize)]
struct Manifest<'a> {
    tool: &'static str,
    version: &'static str,
    created_utc: String,
    run_name: String,
    config_file: Option<String>,
    synthetic: bool,
    symbol: &'a str,
    steps: usize,
    settlements_in_window: usize,
    inputs: Vec<InputFile>,
    warnings: &'a [String],
    /// Whether stale-spot steps were masked from decisions that need spot (liquidations are still checked).
    stale_spot_masked: bool,
    /// Runs of steps whose spot close was stale (gaps, zero volume, frozen, thin and dislocated).
    stale_spot_spans: &'a [StaleSpan],
    /// The span each required source covers; the window lies inside all of them (or its
    /// uncovered steps are flagged, with `allow_partial_coverage`).
    coverage: &'a [Coverage],
    /// Steps simulated outside some source's coverage.
    uncovered_steps: usize,
    files: Vec<&'static str>,
}

impl BacktestResult {
    /// The run as report input.
    pub fn report_input<'a>(&'a self, config: &'a Config, run_name: &'a str) -> ReportInput<'a> {
        ReportInput {
            run_name,
            ledger: &self.ledger,
            settlements: &self.settlements,
            metrics: &self.metrics,
            config,
            warnings: &self.warnings,
            stale_spans: &self.timeline.stale_spans,
            stale_spot_masked: config.data.mask_stale_spot,
        }
    }
}

/// Write a finished backtest to `<output_dir>/<run name>/` and return the folder.
pub fn write_outputs(config: &Config, config_path: Option<&Path>, result: &BacktestResult, force: bool) -> Result<PathBuf> {
    let run_dir = RunDir::create(&config.run.output_dir, &config.run.name, force)?;
    if config.run.ledger != crate::config::LedgerResolution::None {
        let mut ledger = result.ledger.to_frame()?;
        run_dir.write_parquet("ledger.parquet", &mut ledger)?;
    }
    write_rest(run_dir, config, config_path, result)
}

/// Run a backtest straight into `<output_dir>/<run name>/`: with `[run] ledger = "full"` every
/// row goes to `ledger.parquet` as the loop runs, one row group at a time, and only the rows the
/// report draws stay in memory ([`ReportLedger`]: every row up to 131,072 steps, one row per
/// period beyond; none without a report). Returns the result (its `ledger` being the report's
/// rows) and the folder.
pub fn run_to_folder(config: &Config, config_path: Option<&Path>, force: bool) -> Result<(BacktestResult, PathBuf)> {
    run_to_folder_chunked(config, config_path, force, Chunking::DEFAULT)
}

/// Whether a config's run may go in chunks of time, its data permitting: a perp carry with none
/// of what needs the whole timeline (counterfactual funding, dated contracts, cash or borrow
/// rate series, steps outside the coverage).
fn chunkable(config: &Config) -> bool {
    let data = &config.data;
    config.strategy.instrument == InstrumentChoice::Perp
        && !counterfactual(config)
        && data.dated.is_none()
        && data.cash_rate.is_none()
        && data.borrow_rate.is_none()
        && !data.allow_partial_coverage
        // Market cost models read the whole run's bars (trailing windows over them).
        && !config.costs.needs_bar_detail()
        // A delayed leg looks at the next close's time, which a chunk's last step lacks.
        && !config.costs.worked()
        && data.borrow_available.is_none()
        && matches!(config.strategy.mode, EntryMode::AlwaysOn | EntryMode::FundingThreshold)
}

/// [`run_to_folder`], loaded, aligned and simulated one chunk of time at a time where
/// `chunking` and the run allow it ([`data::stream`]): its memory then does not grow with its
/// length. Both ways write the same files.
pub fn run_to_folder_chunked(config: &Config, config_path: Option<&Path>, force: bool, chunking: Chunking) -> Result<(BacktestResult, PathBuf)> {
    if chunkable(config) {
        if let Some(market) = data::stream::ChunkedMarket::open(&config.data, &window_of(config)?, config.portfolio.staking_apr, chunking)? {
            return run_chunked_to_folder(config, config_path, force, market);
        }
    }
    if config.run.ledger != crate::config::LedgerResolution::Full {
        let result = run(config)?;
        let folder = write_outputs(config, config_path, &result, force)?;
        return Ok((result, folder));
    }
    let (timeline, mut files, mut warnings) = prepare(config)?;
    let params = super::pipeline::engine_params_for(config, &timeline, &mut warnings, &mut files)?;
    let run_dir = RunDir::create(&config.run.output_dir, &config.run.name, force)?;
    // The market is in memory before the loop starts: its thread has room for the layout.
    let mut streamed = ParquetLedger::create(&run_dir.path().join("ledger.parquet"), LayoutThread::Loop)?;
    // Without a report nothing draws the rows: none are kept.
    let (summary, mut metrics, ledger) = if config.run.report {
        let mut drawn = ReportLedger::for_run(timeline.len(), timeline.span_ms());
        let (summary, metrics) = super::pipeline::simulate(&timeline, &params, &mut Tee(&mut streamed, &mut drawn));
        (summary, metrics, drawn.finish())
    } else {
        let (summary, metrics) = super::pipeline::simulate(&timeline, &params, &mut streamed);
        (summary, metrics, FullLedger::default())
    };
    streamed.finish()?;
    super::pipeline::count_limits(&mut metrics, &summary, config, &timeline.symbol);
    warnings.extend(super::pipeline::fill_warnings(&params, &summary));
    let settlements = window_settlements(&summary.window_settlements, &summary.settlements);
    let result = BacktestResult { timeline, ledger, summary, metrics, settlements, files, warnings };
    let folder = write_rest(run_dir, config, config_path, &result)?;
    Ok((result, folder))
}

/// [`run_to_folder`] over a market aligned one chunk of time at a time: with the full ledger,
/// rows go to the ledger file as each chunk is simulated ("hourly" and "daily" keep a row a
/// period, "none" none), and no chunk outlives the next.
fn run_chunked_to_folder(config: &Config, config_path: Option<&Path>, force: bool, mut market: data::stream::ChunkedMarket) -> Result<(BacktestResult, PathBuf)> {
    use crate::config::LedgerResolution;
    let params = crate::config::engine_params(config);
    let run_dir = RunDir::create(&config.run.output_dir, &config.run.name, force)?;
    let (steps, span_ms) = (market.steps(), market.span_ms());
    fn simulate<R: crate::model::Recorder>(params: &crate::sim::EngineParams, market: &mut data::stream::ChunkedMarket, recorder: &mut R) -> Result<RunSummary> {
        crate::sim::run_chunked(params, || market.next_chunk(), recorder)
    }
    let (summary, ledger) = match config.run.ledger {
        LedgerResolution::Full => {
            // The loop's thread also loads and aligns each chunk: the writer lays the rows out.
            let mut streamed = ParquetLedger::create(&run_dir.path().join("ledger.parquet"), LayoutThread::Writer)?;
            let out = if config.run.report {
                let mut drawn = ReportLedger::for_run(steps, span_ms);
                let summary = simulate(&params, &mut market, &mut Tee(&mut streamed, &mut drawn))?;
                (summary, drawn.finish())
            } else {
                (simulate(&params, &mut market, &mut streamed)?, FullLedger::default())
            };
            streamed.finish()?;
            out
        }
        LedgerResolution::None => (simulate(&params, &mut market, &mut NoLedger)?, FullLedger::default()),
        resolution => {
            let period_ms = resolution.period_ms().unwrap_or(crate::time::MS_PER_DAY);
            let mut kept = PeriodLedger::new(period_ms, (span_ms / period_ms) as usize + 2);
            let summary = simulate(&params, &mut market, &mut kept)?;
            let ledger = kept.finish();
            run_dir.write_parquet("ledger.parquet", &mut ledger.to_frame()?)?;
            (summary, ledger)
        }
    };
    let (timeline, files, mut warnings) = market.finish()?;
    warnings.extend(oracle_warning(config, config.data.index.is_some()));
    alignment_warnings(&timeline, steps, config, &mut warnings);
    let mut metrics = super::pipeline::measure(&summary, &timeline);
    super::pipeline::count_limits(&mut metrics, &summary, config, &timeline.symbol);
    warnings.extend(super::pipeline::fill_warnings(&params, &summary));
    let settlements = window_settlements(&summary.window_settlements, &summary.settlements);
    let result = BacktestResult { timeline, ledger, summary, metrics, settlements, files, warnings };
    let folder = write_rest(run_dir, config, config_path, &result)?;
    Ok((result, folder))
}

/// Everything of a run's folder but `ledger.parquet`, then commit it.
fn write_rest(run_dir: RunDir, config: &Config, config_path: Option<&Path>, result: &BacktestResult) -> Result<PathBuf> {
    let keep_ledger = config.run.ledger != crate::config::LedgerResolution::None;
    let mut trades = trades_frame(&result.summary.trades)?;
    run_dir.write_parquet("trades.parquet", &mut trades)?;
    let mut funding = settlements_frame(&result.settlements)?;
    run_dir.write_parquet("funding.parquet", &mut funding)?;
    run_dir.write("metrics.json", serde_json::to_string_pretty(&result.metrics)?.as_bytes())?;
    let config_text = toml::to_string_pretty(config).context("serialising the config")?;
    run_dir.write("config.toml", format!("# The config as run (paths resolved).\n{config_text}").as_bytes())?;
    let inputs = input_files(&result.files)?;
    let run_name = run_dir.destination().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let input = result.report_input(config, &run_name);
    let mut files = vec!["metrics.json", "trades.parquet", "funding.parquet", "config.toml", "manifest.json"];
    if keep_ledger {
        files.insert(1, "ledger.parquet");
    }
    if config.run.report {
        for file in &render::render(&input)? {
            run_dir.write(&file.name, &file.bytes)?;
        }
        files.extend(render::report_file_names(&input));
    }
    let manifest = Manifest {
        tool: "basis",
        version: env!("CARGO_PKG_VERSION"),
        created_utc: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        run_name: run_name.clone(),
        config_file: config_path.map(|p| p.display().to_string()),
        synthetic: result.timeline.synthetic,
        symbol: &result.timeline.symbol,
        steps: result.summary.steps,
        settlements_in_window: result.timeline.funding.paid().count(),
        inputs,
        warnings: &result.warnings,
        stale_spot_masked: config.data.mask_stale_spot,
        stale_spot_spans: &result.timeline.stale_spans,
        coverage: &result.timeline.coverage,
        uncovered_steps: result.timeline.uncovered.iter().filter(|u| **u).count(),
        files,
    };
    // The manifest is written last: its presence marks a complete run.
    run_dir.write("manifest.json", serde_json::to_string_pretty(&manifest)?.as_bytes())?;
    run_dir.commit()
}
