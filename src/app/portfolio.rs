//! A portfolio backtest end to end: each pair loaded and aligned as a single-pair run would be,
//! all pairs put on their common clock, the book simulated with its accounts, measured, and
//! written (`ledger.parquet` for the book, `legs.parquet`, `accounts.parquet`, `trades.parquet`
//! and `funding.parquet` with a `pair` column, `metrics.json`, `config.toml`, `manifest.json`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::*;
use serde::Serialize;

use crate::{bail_input, input_error};
use crate::config::book::BookConfig;
use crate::data::align::{common_grid, restrict_to_grid, spread_to_grid, union_grid};
use crate::measure::book::{accounts_frame, compute, legs_frame, mode_name, BookLedger, BookMetrics, PairPlace};
use crate::measure::ledger::{settlements_frame, trades_frame, window_settlements};
use crate::model::MarketTimeline;
use super::backtest::InputFile;
use crate::output::RunDir;
use crate::render::book::BookReport;
use crate::sim::portfolio::{self, BookParams, BookSummary, PairSpec};
use crate::time::{format_ms, MS_PER_DAY};

/// Everything a book run produced, in memory.
pub struct BookResult {
    /// Each pair's market on the common clock.
    pub timelines: Vec<MarketTimeline>,
    /// Every row: pairs, accounts, book.
    pub ledger: BookLedger,
    /// The engine's totals.
    pub summary: BookSummary,
    /// The measures written to `metrics.json`.
    pub metrics: BookMetrics,
    /// Where each pair's legs are held.
    pub places: Vec<PairPlace>,
    /// Input files read.
    pub files: Vec<PathBuf>,
    /// Data findings and what the common clock cost, prefixed with the pair.
    pub warnings: Vec<String>,
}

/// What preparing one pair's market gives: its timeline, the files read and the warnings.
pub type Prepared = (MarketTimeline, Vec<PathBuf>, Vec<String>);

/// Load every pair, put them on one clock, and run the book.
pub fn run(book: &BookConfig) -> Result<BookResult> {
    run_with(book, &|config| super::pipeline::prepare(config))
}

/// [`run`] with each pair's market from `prepare` (a sweep hands in its cache).
pub fn run_with(book: &BookConfig, prepare: &(dyn Fn(&crate::config::Config) -> Result<Prepared> + Sync)) -> Result<BookResult> {
    let mut timelines = Vec::with_capacity(book.pairs.len());
    let mut files = Vec::new();
    let mut warnings = Vec::new();
    // A universe's candidate found in its folders whose own files cannot make a market (its spot
    // and funding never overlap, say) is left out with a warning, and the capital is split over
    // the others; a symbol listed in `symbols` that cannot load is an error.
    let mut kept = book.clone();
    kept.pairs.clear();
    for pair in &book.pairs {
        // Context keeps the pair's own error kind (an input error exits 2).
        match prepare(&pair.config).with_context(|| format!("pair {}", pair.name)) {
            Ok((timeline, pair_files, pair_warnings)) => {
                warnings.extend(pair_warnings.into_iter().map(|w| format!("{}: {w}", pair.name)));
                files.extend(pair_files);
                timelines.push(timeline);
                kept.pairs.push(pair.clone());
            }
            // Candidates found in the folders may lack a market; a symbol the user listed must load.
            Err(err) if book.universe.as_ref().is_some_and(|u| u.config.symbols.is_empty()) => warnings.push(format!("{}: left out of the universe: {err:#}", pair.name)),
            Err(err) => return Err(err),
        }
    }
    if kept.pairs.is_empty() {
        bail_input!("no pair of the universe could be loaded; the warnings above say why for each");
    }
    if book.universe.is_some() {
        let share = book.initial_capital / kept.pairs.len() as f64;
        for pair in kept.pairs.iter_mut() {
            pair.config.portfolio.initial_capital = share;
        }
    }
    let book = &kept;
    let mut universe_pairs: Vec<Option<portfolio::UniversePair>> = vec![None; book.pairs.len()];
    let grid = match &book.universe {
        Some(universe) => {
            // The universe's clock: every bar of any candidate inside the window. Each pair
            // holds its own bars there, and is flat and unselectable outside them.
            let parse = |what: &str, text: &Option<String>| text.as_deref().map(|t| crate::time::parse_time_ms(what, t)).transpose();
            let from = parse("strategy.start", &universe.start)?.unwrap_or(i64::MIN);
            let to = parse("strategy.end", &universe.end)?.unwrap_or(i64::MAX);
            let grid = union_grid(&timelines.iter().collect::<Vec<_>>(), from, to);
            let score_expr = crate::signal::expr::parse(&universe.score).map_err(|e| input_error!("[universe] select.by = {:?}: {e}", universe.score))?;
            for (k, (pair, timeline)) in book.pairs.iter().zip(timelines.iter_mut()).enumerate() {
                crate::app::pipeline::refuse_rules(&pair.config, "a [universe] book")?;
                // The score on the pair's own bars (its history before the window included),
                // then put on the book's clock: unknown where the pair has no bar.
                let own_score = crate::signal::Signals::new(&pair.config, timeline)
                    .and_then(|mut signals| {
                        let column = signals.eval(&score_expr, "[universe] select.by", f64::NAN)?;
                        warnings.extend(signals.warnings.iter().map(|w| format!("{}: {w}", pair.name)));
                        Ok(column)
                    })
                    .with_context(|| format!("pair {}", pair.name))?;
                let (spread, active) = spread_to_grid(timeline, &grid);
                let on_grid = |own: &[f64]| -> Vec<f64> { grid.iter().map(|t| timeline.ts_ms.binary_search(t).map(|o| own[o]).unwrap_or(f64::NAN)).collect() };
                let score = on_grid(&own_score);
                let weight = match universe.config.allocation {
                    crate::config::book::UniverseAllocation::Equal => Vec::new(),
                    crate::config::book::UniverseAllocation::ScoreWeighted => score.clone(),
                    crate::config::book::UniverseAllocation::FundingWeighted => {
                        let hours = universe.config.select.window_hours.unwrap_or(168.0);
                        on_grid(&crate::sim::policy::trailing_funding_apr_hours(&timeline.funding, &timeline.ts_ms, hours))
                    }
                };
                match active {
                    None => warnings.push(format!("{}: no bar inside the window: never selected", pair.name)),
                    Some((first, last)) => {
                        if first > 0 {
                            warnings.push(format!("{}: its data begins at {}: a candidate from then on (listing)", pair.name, format_ms(grid[first])));
                        }
                        if last + 1 < grid.len() {
                            warnings.push(format!("{}: its data ends at {}: closed at its last price at the next step (delisting)", pair.name, format_ms(grid[last])));
                        }
                    }
                }
                // History counts from the pair's own first bar, before the window too.
                let eligible_from_ms = match (active, timeline.ts_ms.first()) {
                    (Some(_), Some(&own_first)) => own_first + (universe.min_history_days * MS_PER_DAY as f64).round() as i64,
                    _ => i64::MAX,
                };
                universe_pairs[k] = Some(portfolio::UniversePair { active, score, weight, eligible_from_ms });
                *timeline = spread;
            }
            grid
        }
        None => common_grid(&timelines.iter().collect::<Vec<_>>()),
    };
    if grid.len() < 2 {
        bail_input!(
            "the pairs share {} step time(s): {}. A book needs its pairs on one clock over a common window; check that their bars have the same interval and overlap",
            grid.len(),
            book.pairs.iter().zip(&timelines).map(|(p, t)| format!("{} {} .. {}", p.name, t.ts_ms.first().map(|m| format_ms(*m)).unwrap_or_default(), t.ts_ms.last().map(|m| format_ms(*m)).unwrap_or_default())).collect::<Vec<_>>().join("; ")
        );
    }
    for (pair, timeline) in book.pairs.iter().zip(timelines.iter_mut()) {
        if book.universe.is_none() && timeline.ts_ms != grid {
            let before = timeline.len();
            let clipped = timeline.ts_ms.iter().filter(|t| **t < grid[0] || **t > grid[grid.len() - 1]).count();
            let merged = before - clipped - grid.len();
            warnings.push(format!(
                "{}: on the book's common clock ({} .. {}): {clipped} step(s) outside it dropped, {merged} step(s) merged into the next common step (their bar highs and lows kept)",
                pair.name,
                format_ms(grid[0]),
                format_ms(grid[grid.len() - 1])
            ));
            *timeline = restrict_to_grid(timeline, &grid);
        }
    }
    let mut params = Vec::with_capacity(book.pairs.len());
    for (k, p) in book.pairs.iter().enumerate() {
        // The same coin on other accounts: what `funding_spread_apr` compares with.
        let base = crate::config::book::base_asset(&p.config.data.symbol);
        let peers: Vec<(String, &MarketTimeline)> = book
            .pairs
            .iter()
            .zip(&timelines)
            .filter(|(q, _)| q.name != p.name && crate::config::book::base_asset(&q.config.data.symbol) == base)
            .map(|(q, t)| (q.name.clone(), t))
            .collect();
        let mut pair_params = super::pipeline::engine_params_in_book(&p.config, &timelines[k], &peers, &mut warnings, &mut files).with_context(|| format!("pair {}", p.name))?;
        if let Some(cap) = &p.capacity {
            let (open_interest, _) = cap.open_interest.resolve(Path::new(""), &format!("pair {}: capacity", p.name))?;
            pair_params.max_perp_notional = cap.open_interest_share * open_interest;
            warnings.push(format!("{}: capacity cap: perp notional at most {:.0} ({} of open interest {:.0})", p.name, pair_params.max_perp_notional, cap.open_interest_share, open_interest));
        }
        pair_params.transfer_delay_ms = p.transfer_delay_ms;
        pair_params.transfer_fee = p.transfer_fee;
        // The spot backs the perp only when both sit in the one (portfolio) account.
        if p.spot_account == p.perp_account {
            // Entry sizing and the pair's own top-ups take one ratio: the mean over the tiers
            // a balance of the pair's capital fills at the first price (the account itself is
            // checked on the tiers).
            let first_spot = timelines[k].spot.first().copied().unwrap_or(f64::NAN);
            pair_params.spot_collateral_haircut = p.spot_collateral.mean_ratio(pair_params.initial_capital, first_spot);
            pair_params.quote_borrow_apr = p.quote_borrow_apr;
        }
        params.push(pair_params);
    }
    let specs: Vec<PairSpec> = book
        .pairs
        .iter()
        .zip(&timelines)
        .zip(params)
        .zip(universe_pairs)
        .map(|(((p, t), params), universe)| PairSpec { name: p.name.clone(), timeline: t, params, spot_account: p.spot_account, perp_account: p.perp_account, spot_collateral: p.spot_collateral.clone(), universe })
        .collect();
    let book_params = BookParams {
        initial_capital: book.initial_capital,
        allocation: book.allocation.clone(),
        rebalance_every_ms: book.rebalance_allocation_days.map(|d| (d * MS_PER_DAY as f64).round() as i64),
        universe: book.universe.as_ref().map(|u| u.params.clone()),
    };
    let mut ledger = BookLedger::with_capacity(specs.len(), book.accounts.len(), grid.len());
    let mut summary = portfolio::run(&book_params, &book.accounts, &specs, &mut ledger);
    for (pair_summary, t) in summary.pairs.iter_mut().zip(&timelines) {
        pair_summary.window_settlements = t.paid_settlements().copied().collect();
    }
    summary.book.window_settlements = summary.pairs.iter().flat_map(|p| p.window_settlements.iter().copied()).collect();
    let places: Vec<PairPlace> = book
        .pairs
        .iter()
        .map(|p| PairPlace { name: p.name.clone(), spot_account: book.accounts[p.spot_account].name.clone(), perp_account: book.accounts[p.perp_account].name.clone(), spot_collateral: p.spot_collateral.clone() })
        .collect();
    let symbol = book.pairs.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join("+");
    let synthetic = timelines.iter().any(|t| t.synthetic);
    let metrics = compute(&summary, &ledger, &places, &book.accounts, &symbol, synthetic);
    Ok(BookResult { timelines, ledger, summary, metrics, places, files, warnings })
}

#[derive(Serialize)]
struct Manifest<'a> {
    tool: &'static str,
    version: &'static str,
    created_utc: String,
    run_name: String,
    config_file: Option<String>,
    synthetic: bool,
    pairs: Vec<&'a str>,
    accounts: Vec<(String, &'static str)>,
    steps: usize,
    inputs: Vec<InputFile>,
    warnings: &'a [String],
    files: Vec<&'static str>,
}

/// Frames of one record kind, one per pair, stacked with a `pair` column in front.
fn with_pair_column(frames: Vec<(String, DataFrame)>) -> Result<DataFrame> {
    let mut stacked: Option<DataFrame> = None;
    for (name, mut frame) in frames {
        let height = frame.height();
        frame.insert_column(0, Column::new("pair".into(), vec![name.as_str(); height]))?;
        stacked = Some(match stacked {
            None => frame,
            Some(mut s) => {
                s.vstack_mut(&frame)?;
                s
            }
        });
    }
    Ok(stacked.unwrap_or_default())
}

/// Write a finished book to `<output_dir>/<run name>/` and return the folder.
pub fn write_outputs(book: &BookConfig, config_path: Option<&Path>, result: &BookResult, force: bool) -> Result<PathBuf> {
    let run_dir = RunDir::create(&book.run.output_dir, &book.run.name, force)?;
    run_dir.write_parquet("ledger.parquet", &mut result.ledger.book.to_frame()?)?;
    run_dir.write_parquet("legs.parquet", &mut legs_frame(&result.ledger, &result.places)?)?;
    run_dir.write_parquet("accounts.parquet", &mut accounts_frame(&result.ledger, &book.accounts)?)?;
    run_dir.write_parquet("trades.parquet", &mut trades_frame_of(result)?)?;
    run_dir.write_parquet("funding.parquet", &mut funding_frame(result)?)?;
    run_dir.write("metrics.json", serde_json::to_string_pretty(&result.metrics)?.as_bytes())?;
    let run_name = run_dir.destination().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut files = vec!["metrics.json", "ledger.parquet", "legs.parquet", "accounts.parquet", "trades.parquet", "funding.parquet", "config.toml", "manifest.json"];
    if book.run.report {
        let report = BookReport { run_name: &run_name, metrics: &result.metrics, ledger: &result.ledger, places: &result.places, accounts: &book.accounts, warnings: &result.warnings };
        for file in crate::render::book::render(&report)? {
            run_dir.write(&file.name, &file.bytes)?;
        }
        files.extend(crate::render::book::file_names());
    }
    let config_text = toml::to_string_pretty(&book.raw).unwrap_or_default();
    run_dir.write("config.toml", format!("# The portfolio config as run.\n{config_text}").as_bytes())?;
    let inputs = super::backtest::input_files(&result.files)?;
    let manifest = Manifest {
        tool: "basis",
        version: env!("CARGO_PKG_VERSION"),
        created_utc: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        run_name,
        config_file: config_path.map(|p| p.display().to_string()),
        synthetic: result.timelines.iter().any(|t| t.synthetic),
        pairs: result.places.iter().map(|p| p.name.as_str()).collect(),
        accounts: book.accounts.iter().map(|a| (a.name.clone(), mode_name(a.mode))).collect(),
        steps: result.ledger.book.len(),
        inputs,
        warnings: &result.warnings,
        files,
    };
    run_dir.write("manifest.json", serde_json::to_string_pretty(&manifest)?.as_bytes())?;
    run_dir.commit()
}

/// Re-render a book's report in its folder (`basis report` on a book). A book's pages draw on
/// every pair's and account's rows, which its files keep only in part, so the book is run again
/// from the config it saved (`config.toml`, its paths read from where `manifest.json` says the
/// config was), and refused unless every input still has the hash the manifest recorded: the
/// same inputs through the same engine give the same rows. Only the report files are replaced.
pub fn rerender(dir: &Path) -> Result<Vec<PathBuf>> {
    let saved = SavedConfig::read(dir)?;
    let book = BookConfig::from_toml_value(&saved.raw, &saved.config_path.display().to_string(), &saved.base_dir).map_err(|err| saved.explain(err))?;
    let result = run(&book)?;
    saved.check_inputs(&result.files)?;
    let report = BookReport { run_name: &saved.run_name, metrics: &result.metrics, ledger: &result.ledger, places: &result.places, accounts: &book.accounts, warnings: &result.warnings };
    let files = crate::render::book::render(&report)?;
    crate::render::replace_files(dir, &files)
}

/// A run folder's saved config and manifest, for re-running it to re-render its report.
pub(crate) struct SavedConfig {
    /// The folder.
    pub dir: PathBuf,
    /// Its `manifest.json`.
    pub manifest: serde_json::Value,
    /// Its `config.toml`, parsed.
    pub raw: toml::Value,
    /// Where that file is.
    pub config_path: PathBuf,
    /// The folder the original config was in (relative paths are relative to it).
    pub base_dir: PathBuf,
    /// The run's name.
    pub run_name: String,
}

impl SavedConfig {
    /// Read `dir`'s manifest and config.
    pub fn read(dir: &Path) -> Result<SavedConfig> {
        let manifest_path = dir.join("manifest.json");
        let manifest: serde_json::Value = std::fs::read_to_string(&manifest_path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .ok_or_else(|| input_error!("{} has no readable manifest.json, so it is not a complete basis run; re-run the book", dir.display()))?;
        let config_path = dir.join("config.toml");
        let text = std::fs::read_to_string(&config_path).map_err(|err| input_error!("cannot read {}: {err}", config_path.display()))?;
        let raw: toml::Value = toml::from_str(&text).map_err(|err| input_error!("{}: {err}", config_path.display()))?;
        // Relative paths in the saved config are relative to where the original config was.
        let base_dir = manifest.get("config_file").and_then(|v| v.as_str()).and_then(|f| Path::new(f).parent().map(Path::to_path_buf)).unwrap_or_else(|| PathBuf::from("."));
        let run_name = manifest.get("run_name").and_then(|v| v.as_str()).map(str::to_string).unwrap_or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        Ok(SavedConfig { dir: dir.to_path_buf(), manifest, raw, config_path, base_dir, run_name })
    }

    /// A config error, with where the saved config is read from.
    pub fn explain(&self, err: anyhow::Error) -> anyhow::Error {
        input_error!("{err:#}\n(re-rendering {} runs its saved config again, from {}: run `basis report` from the folder the book was run from)", self.dir.display(), self.base_dir.display())
    }

    /// Refuse unless every input still has the hash the manifest recorded.
    pub fn check_inputs(&self, files: &[PathBuf]) -> Result<()> {
        let recorded: std::collections::BTreeMap<String, String> = self
            .manifest
            .get("inputs")
            .and_then(|v| v.as_array())
            .map(|inputs| inputs.iter().filter_map(|i| Some((i.get("path")?.as_str()?.to_string(), i.get("sha256")?.as_str()?.to_string()))).collect())
            .unwrap_or_default();
        for input in super::backtest::input_files(files)? {
            match recorded.get(&input.path) {
                Some(hash) if *hash == input.sha256 => {}
                Some(_) => bail_input!("{}: the file changed since the book was run (its hash differs from {}'s); re-run the book instead", input.path, self.dir.join("manifest.json").display()),
                None => bail_input!("{}: the book's saved config now reads a file its manifest does not list; re-run the book instead", input.path),
            }
        }
        Ok(())
    }
}

/// `trades.parquet` of a book: every pair's trades with a `pair` column.
pub fn trades_frame_of(result: &BookResult) -> Result<DataFrame> {
    let trades = result.places.iter().zip(&result.summary.pairs).map(|(p, s)| Ok((p.name.clone(), trades_frame(&s.trades)?))).collect::<Result<Vec<_>>>()?;
    with_pair_column(trades)
}

/// `funding.parquet` of a book: every pair's settlements in the window with a `pair` column.
pub fn funding_frame(result: &BookResult) -> Result<DataFrame> {
    let funding = result
        .places
        .iter()
        .zip(&result.summary.pairs)
        .map(|(p, s)| Ok((p.name.clone(), settlements_frame(&window_settlements(&s.window_settlements, &s.settlements))?)))
        .collect::<Result<Vec<_>>>()?;
    with_pair_column(funding)
}

/// The terminal summary of a book.
pub fn summary_text(result: &BookResult) -> String {
    let m = &result.metrics;
    let b = &m.book;
    let mut out = format!(
        "book {} ({} pairs, {} .. {}, {} steps)\n  capital       {:.2} -> {:.2}  (return on capital {:+.2} %, APR {:+.2} %)\n  max drawdown  {:.2} %\n  funding       {:.2}  ({:.2} % APR on capital, {:.2} % on mean margin posted {:.2}; capital efficiency {:.2}x)\n",
        b.symbol,
        result.places.len(),
        b.start,
        b.end,
        b.steps,
        b.initial_capital,
        b.final_equity,
        m.return_on_capital * 100.0,
        b.apr * 100.0,
        b.max_drawdown * 100.0,
        b.funding_pnl,
        m.funding_apr_on_capital * 100.0,
        m.funding_apr_on_margin * 100.0,
        m.mean_margin_posted,
        m.capital_efficiency
    );
    out.push_str(&format!("  costs         fees {:.2}, slippage {:.2}, borrow {:.2}; {} entries, {} exits\n", b.fees_paid, b.slippage_paid, b.borrow_paid, b.entries, b.exits));
    if let Some(e) = &b.execution {
        out.push_str(&e.summary_line());
    }
    if let Some(u) = &m.universe {
        let closed = result.summary.pairs.iter().filter(|p| p.trades.iter().any(|t| t.reason == crate::model::TradeReason::Delisting)).count();
        out.push_str(&format!("  universe      {} selections, {} pairs whose data ended ({} closed as delistings while held)\n", u.rotations, u.delistings, closed));
    }
    for (name, pair) in &m.pairs {
        out.push_str(&format!(
            "  pair {name:<10} {:>14.2} -> {:>14.2}  funding {:>12.2}  liquidations {}  (spot in {}, perp in {})\n",
            pair.metrics.initial_capital, pair.metrics.final_equity, pair.metrics.funding_pnl, pair.metrics.liquidations, pair.spot_account, pair.perp_account
        ));
    }
    for (name, account) in &m.accounts {
        out.push_str(&format!(
            "  account {name:<16} {:<9} liquidations {}{}  min distance {}\n",
            account.margin_mode,
            account.liquidations,
            if account.first_liquidation.is_empty() { String::new() } else { format!(" (first {})", account.first_liquidation) },
            account.min_liquidation_distance.map(|d| format!("{:.2} %", d * 100.0)).unwrap_or_else(|| "n/a".into())
        ));
    }
    out
}
