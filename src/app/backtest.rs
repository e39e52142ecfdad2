//! One backtest end to end: load -> align -> simulate -> measure -> report -> write.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::config::{parse_time_ms, Config, FundingRatesFrom};
use crate::venue::funding::{counterfactual_for, premium_for};
use crate::data::quality::StaleSpan;
use crate::data::{self, align::{Coverage, MarketTimeline, Window}, MarketData};
use crate::sim::RunSummary;
use crate::measure::ledger::{settlements_frame, trades_frame, window_settlements, FullLedger, NoLedger, PeriodLedger, Settlement};
use crate::measure::metrics::Metrics;
use crate::output::{sha256_file, RunDir};
use crate::render::{self, ReportInput};

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
    pub settlements: Vec<Settlement>,
    /// Input files read.
    pub files: Vec<PathBuf>,
    /// Repairs and data-quality findings.
    pub warnings: Vec<String>,
}

/// Load, align and prepare the market a config names.
pub fn prepare(config: &Config) -> Result<(MarketTimeline, Vec<PathBuf>, Vec<String>)> {
    let market = data::load(&config.data)?;
    let (timeline, warnings) = align_for(&market, config)?;
    Ok((timeline, market.files, warnings))
}

/// Align loaded market data to a config's window, with counterfactual funding when the config
/// asks for it, and the warnings a run reports (the loader's, and stale-spot findings).
pub fn align_for(market: &MarketData, config: &Config) -> Result<(MarketTimeline, Vec<String>)> {
    let window = window_of(config)?;
    let mut timeline = data::align::align_window(market, &window, config.portfolio.staking_apr)?;
    let mut warnings = market.warnings.clone();
    if market.index.is_none() && config.venue.loaded.as_ref().is_some_and(|p| p.funding.paid_on == crate::venue::PaidOn::Oracle) {
        warnings.push(format!(
            "funding: {} pays funding on the oracle (index) price, but [data.index] is not given; the mark stands in for it",
            config.venue.loaded.as_ref().map(|p| p.name.as_str()).unwrap_or("the venue")
        ));
    }
    if let (FundingRatesFrom::Counterfactual, Some(preset)) = (config.venue.funding, config.venue.effective_preset()) {
        // The preset's rules applied to the premium known at each step, in place of the files' rates.
        let (premium, premium_source) = premium_for(config.venue.premium_index.as_deref(), config.venue.premium, &timeline, config.venue.premium_debias, config.venue.premium_debias_days)?;
        let (settled, funding) = counterfactual_for(&preset, &timeline, &premium);
        warnings.push(format!(
            "funding: {} counterfactual settlements under {} ({} at the cap or floor), replacing the {} settlements in the data; {}",
            settled.len(),
            preset.name,
            settled.iter().filter(|s| s.capped).count(),
            market.funding.settle_ms.len(),
            premium_source
        ));
        let swapped = MarketData { funding, funding_derived: true, ..market.clone() };
        timeline = data::align::align_window(&swapped, &window, config.portfolio.staking_apr)?;
    }
    warnings.extend(timeline.coverage_warnings.iter().cloned());
    if !timeline.stale_spans.is_empty() {
        let steps: usize = timeline.stale_spans.iter().map(|s| s.steps).sum();
        let shown: Vec<String> = timeline.stale_spans.iter().take(4).map(|s| format!("{} ({})", s.from, s.reasons)).collect();
        warnings.push(format!(
            "spot: {} stale-spot span(s), {steps} of {} steps ({} spot bars missing), {}: {}{}; the spans are listed in manifest.json and the report",
            timeline.stale_spans.len(),
            timeline.len(),
            timeline.stale_spot_steps,
            if config.data.mask_stale_spot { "masked from decisions that need spot (liquidations are still checked)" } else { "NOT masked (data.mask_stale_spot = false)" },
            shown.join(", "),
            if timeline.stale_spans.len() > 4 { ", ..." } else { "" }
        ));
    }
    if timeline.funding.is_empty() {
        warnings.push("funding: no settlement falls inside the simulated window".into());
    }
    Ok((timeline, warnings))
}

/// The window a config asks for: its explicit start and end, whether a partly covered window is
/// allowed, and whether funding is valued at the index (oracle-paid venue with an index series).
pub fn window_of(config: &Config) -> Result<Window> {
    let start_ms = config.strategy.start.as_deref().map(|s| parse_time_ms("strategy.start", s)).transpose()?;
    let end_ms = config.strategy.end.as_deref().map(|s| parse_time_ms("strategy.end", s)).transpose()?;
    let oracle = config.venue.loaded.as_ref().is_some_and(|p| p.funding.paid_on == crate::venue::PaidOn::Oracle);
    Ok(Window { start_ms, end_ms, allow_partial_coverage: config.data.allow_partial_coverage, funding_at_index: oracle && config.data.index.is_some() })
}

/// Run a backtest in memory, keeping every ledger row.
pub fn run(config: &Config) -> Result<BacktestResult> {
    let (timeline, files, warnings) = prepare(config)?;
    let params = crate::config::engine_params(config);
    let resolution = config.run.ledger;
    let (ledger, (summary, metrics)) = match resolution.period_ms() {
        Some(period_ms) => {
            let span = timeline.ts_ms.last().copied().unwrap_or(0) - timeline.ts_ms.first().copied().unwrap_or(0);
            let mut kept = PeriodLedger::new(period_ms, (span / period_ms) as usize + 2);
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
    let settlements = window_settlements(&summary.window_settlements, &summary.settlements);
    Ok(BacktestResult { timeline, ledger, summary, metrics, settlements, files, warnings })
}

/// One input file as the manifest records it: path, size and SHA-256.
#[derive(Serialize)]
pub struct InputFile {
    path: String,
    bytes: u64,
    sha256: String,
}

/// The manifest's record of every input file read.
pub fn input_files(files: &[PathBuf]) -> Result<Vec<InputFile>> {
    files
        .iter()
        .map(|path| {
            let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            Ok(InputFile { path: path.display().to_string(), bytes, sha256: sha256_file(path)? })
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
    let keep_ledger = config.run.ledger != crate::config::LedgerResolution::None;
    if keep_ledger {
        let mut ledger = result.ledger.to_frame()?;
        run_dir.write_parquet("ledger.parquet", &mut ledger)?;
    }
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
        steps: result.timeline.len(),
        settlements_in_window: result.timeline.funding.len(),
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
