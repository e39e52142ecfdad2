//! One backtest end to end: load -> align -> simulate -> measure -> report -> write.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::config::{parse_time_ms, Config, FundingRatesFrom, InstrumentChoice};
use crate::venue::funding::{counterfactual_for, premium_for};
use crate::data::quality::StaleSpan;
use crate::data::{self, align::{Coverage, MarketTimeline, Window}, stream::Chunking, MarketData};
use crate::sim::policy::EntryMode;
use crate::sim::RunSummary;
use crate::measure::ledger::{settlements_frame, trades_frame, window_settlements, FullLedger, LayoutThread, NoLedger, ParquetLedger, PeriodLedger, ReportLedger, Settlement, Tee};
use crate::measure::metrics::Metrics;
use crate::output::RunDir;
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
    let mut market = data::load(&config.data)?;
    // Worth it for long inputs only: trimming walks the whole heap (milliseconds), which a
    // small run would notice and a process calling this in a loop would pay every time.
    let long = market.perp.ts_ms.len() + market.spot.ts_ms.len() >= 1 << 20;
    if long {
        return_freed_memory();
    }
    // Done with the perp bars once aligned (unless a counterfactual realigns): moved, not copied.
    let timeline = if counterfactual(config) {
        data::align::align_window(&market, &window_of(config)?, config.portfolio.staking_apr)?
    } else {
        data::align::align_window_taking_bars(&mut market, &window_of(config)?, config.portfolio.staking_apr)?
    };
    let (timeline, warnings) = finish_alignment(timeline, &market, config)?;
    if long {
        // And what the aligner let go (the spot bars, its indices) before the loop starts.
        return_freed_memory();
    }
    Ok((timeline, market.files, warnings))
}

/// Hand the memory the file decoders freed back to the system. They run on polars' worker
/// threads, whose malloc arenas the loop never allocates from, so without this a long run
/// carries its inputs' decoded copies (about 120 MiB for 8 years of minute bars) to the end.
fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Whether the run replaces the files' funding rates with a venue preset's rules.
fn counterfactual(config: &Config) -> bool {
    config.venue.funding == FundingRatesFrom::Counterfactual && config.venue.effective_preset().is_some()
}

/// Align loaded market data to a config's window, with counterfactual funding when the config
/// asks for it, and the warnings a run reports (the loader's, and stale-spot findings).
pub fn align_for(market: &MarketData, config: &Config) -> Result<(MarketTimeline, Vec<String>)> {
    let timeline = data::align::align_window(market, &window_of(config)?, config.portfolio.staking_apr)?;
    finish_alignment(timeline, market, config)
}

/// The rest of [`align_for`] once the market is on the clock: counterfactual funding, the dated
/// leg, the cash and borrow rates, and the warnings.
fn finish_alignment(mut timeline: MarketTimeline, market: &MarketData, config: &Config) -> Result<(MarketTimeline, Vec<String>)> {
    let window = window_of(config)?;
    let mut warnings = market.warnings.clone();
    warnings.extend(oracle_warning(config, market.index.is_some()));
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
        let mut swapped = MarketData { funding, funding_derived: true, ..market.clone() };
        timeline = data::align::align_window_taking_bars(&mut swapped, &window, config.portfolio.staking_apr)?;
    }
    if config.strategy.instrument != InstrumentChoice::Perp {
        timeline = with_dated_leg(timeline, market, config, &mut warnings)?;
    }
    if let Some(rates) = &market.cash_rate {
        timeline.cash_apr = rates.on_clock(&timeline.ts_ms)?;
        warnings.extend(timeline.ts_ms.last().and_then(|last| rates.end_warning(*last)));
    }
    if let Some(rates) = &market.borrow_rate {
        timeline.borrow_apr = rates.on_clock(&timeline.ts_ms)?;
        warnings.extend(timeline.ts_ms.last().and_then(|last| rates.end_warning(*last)));
    }
    let steps = timeline.len();
    alignment_warnings(&timeline, steps, config, &mut warnings);
    Ok((timeline, warnings))
}

/// The warnings alignment adds to the loader's: what the window lost to coverage, stand-in
/// prices, stale-spot spans, and a window without settlements. `timeline` may be the run's
/// header alone (a chunked run), so the steps are given.
fn alignment_warnings(timeline: &MarketTimeline, steps: usize, config: &Config, warnings: &mut Vec<String>) {
    warnings.extend(timeline.coverage_warnings.iter().cloned());
    if !timeline.stale_spans.is_empty() {
        let stale_steps: usize = timeline.stale_spans.iter().map(|s| s.steps).sum();
        let shown: Vec<String> = timeline.stale_spans.iter().take(4).map(|s| format!("{} ({})", s.from, s.reasons)).collect();
        warnings.push(format!(
            "spot: {} stale-spot span(s), {stale_steps} of {} steps ({} spot bars missing), {}: {}{}; the spans are listed in manifest.json and the report",
            timeline.stale_spans.len(),
            steps,
            timeline.stale_spot_steps,
            if config.data.mask_stale_spot { "masked from decisions that need spot (liquidations are still checked)" } else { "NOT masked (data.mask_stale_spot = false)" },
            shown.join(", "),
            if timeline.stale_spans.len() > 4 { ", ..." } else { "" }
        ));
    }
    if timeline.funding.is_empty() {
        warnings.push("funding: no settlement falls inside the simulated window".into());
    }
}

/// The oracle warning: funding paid on an index price that is not given.
fn oracle_warning(config: &Config, index_given: bool) -> Option<String> {
    if index_given || !config.venue.loaded.as_ref().is_some_and(|p| p.funding.paid_on == crate::venue::PaidOn::Oracle) {
        return None;
    }
    Some(format!(
        "funding: {} pays funding on the oracle (index) price, but [data.index] is not given; the mark stands in for it",
        config.venue.loaded.as_ref().map(|p| p.name.as_str()).unwrap_or("the venue")
    ))
}

/// The timeline with its derivative leg on dated contracts (`instrument = "dated"`) or on
/// whichever of the perp and the dated contract pays more (`"best"`): the window clipped to the
/// steps a dated contract covers (dated), the schedule of contracts, and the switches.
fn with_dated_leg(mut timeline: MarketTimeline, market: &MarketData, config: &Config, warnings: &mut Vec<String>) -> Result<MarketTimeline> {
    use crate::sim::dated::{self as dated_leg, RollRules};
    let s = &config.strategy;
    let rules = RollRules { min_days_to_expiry: s.min_days_to_expiry, roll_days_before: s.roll_days_before };
    // The settlement stand-in warning of the contracts on the final clock (recomputed if clipped).
    let mut settlement_warnings = Vec::new();
    let mut contracts = data::dated::on_clock(&market.dated, &market.dated_mark, &timeline.ts_ms, &timeline.spot, market.index.as_ref(), &mut settlement_warnings);
    let mut front = dated_leg::front_schedule(&contracts, &timeline.ts_ms, rules);
    if s.instrument == InstrumentChoice::Dated {
        let Some(first) = front.iter().position(Option::is_some) else {
            crate::bail_input!(
                "data.dated: no contract with at least {} days to expiry (strategy.min_days_to_expiry) trades between {} and {}; the contracts are {}",
                rules.min_days_to_expiry.max(rules.roll_days_before),
                crate::time::format_ms(timeline.ts_ms.first().copied().unwrap_or(0)),
                crate::time::format_ms(timeline.ts_ms.last().copied().unwrap_or(0)),
                market.dated.iter().map(|c| format!("{} (expiry {})", c.name, crate::time::format_ms(c.expiry_ms))).collect::<Vec<_>>().join(", ")
            );
        };
        // The run ends at the delivery of the last contract with no successor.
        let last = front[first..].iter().position(Option::is_none).map_or(front.len() - 1, |k| first + k);
        if first > 0 || last + 1 < front.len() {
            warnings.push(format!(
                "dated: the window is clipped to {} .. {}, the span a dated contract with at least {} days to expiry covers",
                crate::time::format_ms(timeline.ts_ms[first]),
                crate::time::format_ms(timeline.ts_ms[last]),
                rules.min_days_to_expiry.max(rules.roll_days_before)
            ));
            let grid = timeline.ts_ms[first..=last].to_vec();
            timeline = data::align::restrict_to_grid(&timeline, &grid);
            settlement_warnings.clear();
            contracts = data::dated::on_clock(&market.dated, &market.dated_mark, &timeline.ts_ms, &timeline.spot, market.index.as_ref(), &mut settlement_warnings);
            front = dated_leg::front_schedule(&contracts, &timeline.ts_ms, rules);
        }
    }
    warnings.extend(settlement_warnings);
    let unmarked: Vec<&str> = (0..contracts.len()).filter(|&c| !contracts.has_marks(c) && front.contains(&Some(c))).map(|c| contracts.names[c].as_str()).collect();
    if !unmarked.is_empty() {
        warnings.push(format!(
            "dated: no mark prices for {} ([data.dated_mark]); their liquidation and unrealised PnL use the last price (Binance publishes markPriceKlines per delivery contract)",
            unmarked.join(", ")
        ));
    }
    let choice = match s.instrument {
        InstrumentChoice::Best => {
            let params = crate::config::engine_params(config);
            let signal = params.entry.signal(&timeline.funding_history, &timeline.ts_ms);
            let switch_cost = 2.0 * (params.costs.perp_fee + params.costs.perp_slippage);
            let masked: Vec<bool> = if config.data.mask_stale_spot { timeline.spot_stale.iter().map(|f| *f != 0).collect() } else { Vec::new() };
            dated_leg::best_schedule(&front, &contracts, &timeline, &signal, switch_cost, s.switch_horizon_days, &masked)
        }
        _ => dated_leg::dated_schedule(&front),
    };
    let stale = dated_leg::apply(&mut timeline, &contracts, &choice);
    if stale > 0 {
        warnings.push(format!("dated: {stale} step(s) had no bar of the contract held; its last close stood in"));
    }
    if let Some(path) = &timeline.derivative {
        use crate::model::{Instrument, SwitchReason};
        let count = |reason| path.switches.iter().filter(|w| w.reason == reason).count();
        let used: std::collections::BTreeSet<usize> = choice.iter().filter_map(|c| if let Instrument::Dated(k) = c { Some(*k) } else { None }).collect();
        warnings.push(format!(
            "dated: {} contract(s) used, {} roll(s), {} delivery(ies), {} switch(es) between the perp and the dated contract",
            used.len(),
            count(SwitchReason::Roll),
            count(SwitchReason::Delivery),
            count(SwitchReason::Switch)
        ));
    }
    Ok(timeline)
}

/// The window a config asks for: its explicit start and end, whether a partly covered window is
/// allowed, and whether funding is valued at the index (oracle-paid venue with an index series).
pub fn window_of(config: &Config) -> Result<Window> {
    let start_ms = config.strategy.start.as_deref().map(|s| parse_time_ms("strategy.start", s)).transpose()?;
    let end_ms = config.strategy.end.as_deref().map(|s| parse_time_ms("strategy.end", s)).transpose()?;
    if let (Some(start), Some(end)) = (start_ms, end_ms) {
        if end <= start {
            crate::bail_input!("strategy.end ({}) is not after strategy.start ({}): the window is empty; swap them or move one", crate::time::format_ms(end), crate::time::format_ms(start));
        }
    }
    let oracle = config.venue.loaded.as_ref().is_some_and(|p| p.funding.paid_on == crate::venue::PaidOn::Oracle);
    Ok(Window { start_ms, end_ms, allow_partial_coverage: config.data.allow_partial_coverage, funding_at_index: oracle && config.data.index.is_some() })
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
