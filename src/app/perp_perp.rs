//! A perp-perp book end to end: each pair's two legs loaded and aligned as single-venue runs
//! would be, put on their common clock, simulated by `sim::perp_perp`, measured, and written
//! (`ledger.parquet` with a row per pair and step, `trades.parquet`, `funding.parquet` with each
//! leg's settlements, `metrics.json`, `config.toml`, `manifest.json`, and the report's PNG and
//! HTML).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::*;
use serde::Serialize;

use crate::config::perp_perp::PerpPerpBook;
use crate::data::align::{common_grid, restrict_to_grid};
use crate::measure::metrics::{self, Metrics};
use crate::model::MarketTimeline;
use crate::output::RunDir;
use crate::sim::perp_perp::{self, PerpPerpRow, PerpPerpSummary, LEG_NAMES};
use crate::sim::{record_equity, RunSummary};

/// One pair's run.
pub struct PairResult {
    /// The pair's name.
    pub name: String,
    /// Each leg's account name and venue (leg b's first venue).
    pub accounts: [(String, String); 2],
    /// Leg b's venues (account name, venue), the first as in `accounts`.
    pub b_accounts: Vec<(String, String)>,
    /// Each leg's market on the pair's clock.
    pub timelines: [MarketTimeline; 2],
    /// Every step's row.
    pub rows: Vec<PerpPerpRow>,
    /// The engine's totals.
    pub summary: PerpPerpSummary,
    /// The pair's measures.
    pub metrics: Metrics,
}

/// Everything a perp-perp book run produced, in memory.
pub struct PerpPerpResult {
    /// Each pair's run.
    pub pairs: Vec<PairResult>,
    /// The book's measures (all pairs' equity summed on their common clock).
    pub metrics: Metrics,
    /// Input files read.
    pub files: Vec<PathBuf>,
    /// Data findings, prefixed with the pair and leg.
    pub warnings: Vec<String>,
}

/// Load every leg, put each pair's legs on one clock, and run the pairs.
pub fn run(book: &PerpPerpBook) -> Result<PerpPerpResult> {
    let mut files = Vec::new();
    let mut warnings = Vec::new();
    let mut pairs = Vec::with_capacity(book.pairs.len());
    for pair in &book.pairs {
        let configs: Vec<(&crate::config::Config, &(String, String))> = pair.legs.iter().zip(pair.accounts.iter()).chain(pair.b_more.iter().map(|(c, a)| (c, a))).collect();
        let mut legs = Vec::with_capacity(configs.len());
        for (k, (config, account)) in configs.iter().enumerate() {
            let leg = if k == 0 { "a".to_string() } else if configs.len() > 2 { format!("b ({})", account.0) } else { "b".to_string() };
            let (timeline, leg_files, leg_warnings) = super::pipeline::prepare(config).with_context(|| format!("pair {} leg {leg} ({})", pair.name, account.0))?;
            if let Some(share) = config.costs.max_participation {
                // A cap on a leg whose bars carry no volume could never fill.
                let gaps = super::pipeline::volume_gaps(&timeline, share).with_context(|| format!("pair {} leg {leg} ({}): name the bars' volume column (volume_column)", pair.name, account.0))?;
                warnings.extend(gaps.map(|w| format!("{} leg {leg}: {w}", pair.name)));
            }
            // A perp leg's bars stand as the "spot" the loaders require: say so in its warnings.
            let as_spot = k > 0 || !pair.params.spot_a;
            warnings.extend(leg_warnings.into_iter().map(|w| format!("{} leg {leg}: {}", pair.name, if as_spot { w.replace("spot", "perp (as spot)") } else { w })));
            files.extend(leg_files);
            legs.push(timeline);
        }
        let grid = common_grid(&legs.iter().collect::<Vec<_>>());
        if grid.len() < 2 {
            crate::bail_input!(
                "pair {}: its legs share fewer than 2 bar times ({}); give every leg bars on one clock over a common window",
                pair.name,
                legs.iter().map(|t| format!("{} .. {}", span_start(t), span_end(t))).collect::<Vec<_>>().join("; ")
            );
        }
        for (k, t) in legs.iter().enumerate() {
            let dropped = t.ts_ms.len() - grid.len();
            if dropped > 0 {
                warnings.push(format!("{} leg {} ({}): {dropped} of its {} bars are not bars of the other legs; the pair runs on the {} they share", pair.name, if k == 0 { "a" } else { "b" }, configs[k].1 .0, t.ts_ms.len(), grid.len()));
            }
        }
        let on_grid: Vec<MarketTimeline> = legs.iter().map(|t| restrict_to_grid(t, &grid)).collect();
        let mut params: Vec<crate::sim::EngineParams> = configs.iter().map(|(c, _)| crate::config::engine_params(c)).collect();
        for (k, ((config, _), timeline)) in configs.iter().zip(&on_grid).enumerate() {
            // Each leg's market cost model on its own bars, on the pair's clock.
            let mut notes = Vec::new();
            params[k].market_costs = super::pipeline::market_costs_for(config, timeline, &mut notes, &mut files)?;
            warnings.extend(notes.into_iter().map(|w| format!("{} leg {}: {w}", pair.name, if k == 0 { "a" } else { "b" })));
        }
        if pair.params.spot_a {
            // The spot leg trades at the spot fee and slippage (and its spot model's series).
            let costs = &mut params[0].costs;
            costs.perp_fee = costs.spot_fee;
            costs.perp_slippage = costs.spot_slippage;
            if let Some(market) = params[0].market_costs.as_deref() {
                let mut spot = market.clone();
                spot.perp_slippage = std::mem::take(&mut spot.spot_slippage);
                spot.perp_impact = std::mem::take(&mut spot.spot_impact);
                spot.perp_book = std::mem::take(&mut spot.spot_book);
                params[0].market_costs = Some(std::sync::Arc::new(spot));
            }
        }
        let b_venues: Vec<(&MarketTimeline, &crate::sim::EngineParams)> = on_grid[1..].iter().zip(&params[1..]).collect();
        let mut rows = Vec::with_capacity(grid.len());
        let summary = perp_perp::run_rotating((&on_grid[0], &params[0]), &b_venues, &pair.params, |row| rows.push(*row));
        drop(b_venues);
        let mut on_grid = on_grid.into_iter();
        let (a, b) = (on_grid.next().unwrap_or_default(), on_grid.next().unwrap_or_default());
        let b_accounts: Vec<(String, String)> = configs[1..].iter().map(|(_, acc)| (*acc).clone()).collect();
        let mut metrics = metrics::compute(&summary.run, &pair.name, a.synthetic || b.synthetic);
        // The funding regimes are one venue's rates; a pair has two streams.
        metrics.regimes = None;
        pairs.push(PairResult { name: pair.name.clone(), accounts: pair.accounts.clone(), b_accounts, timelines: [a, b], rows, summary, metrics });
    }
    let metrics = book_metrics(book, &pairs);
    Ok(PerpPerpResult { pairs, metrics, files, warnings })
}

fn span_start(t: &MarketTimeline) -> String {
    t.ts_ms.first().map(|m| crate::time::format_ms(*m)).unwrap_or_else(|| "no bars".into())
}

fn span_end(t: &MarketTimeline) -> String {
    t.ts_ms.last().map(|m| crate::time::format_ms(*m)).unwrap_or_else(|| "no bars".into())
}

/// The book's measures: every pair's equity summed on the times all pairs share.
fn book_metrics(book: &PerpPerpBook, pairs: &[PairResult]) -> Metrics {
    if pairs.len() == 1 {
        return pairs[0].metrics.clone();
    }
    let clocks: Vec<&MarketTimeline> = pairs.iter().map(|p| &p.timelines[0]).collect();
    let grid = common_grid(&clocks);
    let mut equity = vec![0.0; grid.len()];
    let mut summary = RunSummary { initial_capital: book.initial_capital, steps: grid.len(), first_ts_ms: grid.first().copied().unwrap_or(0), last_ts_ms: grid.last().copied().unwrap_or(0), min_liquidation_distance: f64::NAN, ..RunSummary::default() };
    for pair in pairs {
        let run = &pair.summary.run;
        for (e, t) in equity.iter_mut().zip(&grid) {
            if let Ok(i) = pair.timelines[0].ts_ms.binary_search(t) {
                *e += pair.rows[i].equity;
            }
        }
        summary.pnl.add(&run.pnl);
        summary.trades.extend(run.trades.iter().copied());
        summary.settlements.extend(run.settlements.iter().copied());
        summary.entries += run.entries;
        summary.exits += run.exits;
        summary.liquidations += run.liquidations;
        summary.top_ups += run.top_ups;
        summary.traded_notional += run.traded_notional;
        summary.perp_held_ms = summary.perp_held_ms.max(run.perp_held_ms);
        if run.min_liquidation_distance < summary.min_liquidation_distance || summary.min_liquidation_distance.is_nan() {
            summary.min_liquidation_distance = run.min_liquidation_distance;
        }
        for s in 0..4 {
            summary.steps_in_state[s] += run.steps_in_state[s];
        }
    }
    // Time in each state is the pairs' average share.
    let total: usize = summary.steps_in_state.iter().sum();
    if total > 0 {
        for s in summary.steps_in_state.iter_mut() {
            *s = (*s as f64 / total as f64 * grid.len() as f64).round() as usize;
        }
    }
    record_equity(&mut summary, &grid, &equity);
    summary.window_settlements = pairs.iter().flat_map(|p| p.summary.run.window_settlements.iter().copied()).collect();
    let name = pairs.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join("+");
    let mut metrics = metrics::compute(&summary, &name, pairs.iter().any(|p| p.timelines[0].synthetic));
    metrics.regimes = None;
    metrics
}

/// `ledger.parquet`: one row per pair and step.
pub fn ledger_frame(result: &PerpPerpResult) -> Result<DataFrame> {
    let rows: Vec<(&str, &PerpPerpRow)> = result.pairs.iter().flat_map(|p| p.rows.iter().map(move |r| (p.name.as_str(), r))).collect();
    let f = |get: &dyn Fn(&PerpPerpRow) -> f64| rows.iter().map(|(_, r)| get(r)).collect::<Vec<f64>>();
    let ts: Vec<i64> = rows.iter().map(|(_, r)| r.ts_ms).collect();
    let columns = vec![
        Column::new("pair".into(), rows.iter().map(|(n, _)| *n).collect::<Vec<&str>>()),
        Column::new("ts".into(), ts).cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC)))?,
        Column::new("state".into(), rows.iter().map(|(_, r)| r.state as i32).collect::<Vec<i32>>()),
        Column::new("events".into(), rows.iter().map(|(_, r)| r.events as u32).collect::<Vec<u32>>()),
        Column::new("last_a".into(), f(&|r| r.last[0])),
        Column::new("last_b".into(), f(&|r| r.last[1])),
        Column::new("mark_a".into(), f(&|r| r.mark[0])),
        Column::new("mark_b".into(), f(&|r| r.mark[1])),
        Column::new("qty_a".into(), f(&|r| r.qty[0])),
        Column::new("qty_b".into(), f(&|r| r.qty[1])),
        Column::new("margin_a".into(), f(&|r| r.margin[0])),
        Column::new("margin_b".into(), f(&|r| r.margin[1])),
        Column::new("in_transit".into(), f(&|r| r.in_transit)),
        Column::new("equity".into(), f(&|r| r.equity)),
        Column::new("pnl_price_a".into(), f(&|r| r.price_pnl[0])),
        Column::new("pnl_price_b".into(), f(&|r| r.price_pnl[1])),
        Column::new("pnl_funding_a".into(), f(&|r| r.funding[0])),
        Column::new("pnl_funding_b".into(), f(&|r| r.funding[1])),
        Column::new("pnl_fees".into(), f(&|r| r.fees)),
        Column::new("pnl_slippage".into(), f(&|r| r.slippage)),
        Column::new("pnl_liquidation".into(), f(&|r| r.liquidation)),
        Column::new("liquidation_price_a".into(), f(&|r| r.liquidation_price[0])),
        Column::new("liquidation_price_b".into(), f(&|r| r.liquidation_price[1])),
        Column::new("spread_apr".into(), f(&|r| r.spread_apr)),
        Column::new("account_b".into(), rows.iter().map(|(n, r)| result.pairs.iter().find(|p| p.name == *n).and_then(|p| p.b_accounts.get(r.venue_b as usize)).map(|a| a.0.clone()).unwrap_or_default()).collect::<Vec<String>>()),
        Column::new("unhedged".into(), rows.iter().map(|(_, r)| r.unhedged).collect::<Vec<bool>>()),
    ];
    Ok(DataFrame::new_infer_height(columns)?)
}

/// `trades.parquet`: every fill, with its pair, leg and account.
pub fn trades_frame(result: &PerpPerpResult) -> Result<DataFrame> {
    let mut pair = Vec::new();
    let mut account = Vec::new();
    let mut frames = Vec::new();
    for p in &result.pairs {
        for (t, venue) in p.summary.run.trades.iter().zip(&p.summary.trade_venues) {
            pair.push(p.name.clone());
            account.push(if t.leg == LEG_NAMES[0] { p.accounts[0].0.clone() } else { p.b_accounts[(*venue as usize).saturating_sub(1)].0.clone() });
        }
        frames.push(crate::measure::ledger::trades_frame(&p.summary.run.trades)?);
    }
    let mut stacked = match frames.split_first() {
        None => crate::measure::ledger::trades_frame(&[])?,
        Some((first, rest)) => {
            let mut out = first.clone();
            for f in rest {
                out.vstack_mut(f)?;
            }
            out
        }
    };
    stacked.insert_column(0, Column::new("pair".into(), pair))?;
    stacked.insert_column(1, Column::new("account".into(), account))?;
    Ok(stacked)
}

/// `funding.parquet`: each leg's settlements met with a position.
pub fn funding_frame(result: &PerpPerpResult) -> Result<DataFrame> {
    let (mut pair, mut leg, mut account, mut ts, mut rate, mut hours, mut price, mut qty, mut amount) = (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for p in &result.pairs {
        for k in 0..2 {
            for (n, s) in p.summary.settlements[k].iter().enumerate() {
                pair.push(p.name.clone());
                leg.push(LEG_NAMES[k]);
                account.push(if k == 0 { p.accounts[0].0.clone() } else { p.b_accounts[p.summary.settlement_venues_b.get(n).copied().unwrap_or(0) as usize].0.clone() });
                ts.push(s.settlement.settle_ms);
                rate.push(s.settlement.rate);
                hours.push(s.settlement.interval_hours);
                price.push(s.settlement.price);
                qty.push(s.perp_qty);
                amount.push(s.amount);
            }
        }
    }
    let columns = vec![
        Column::new("pair".into(), pair),
        Column::new("leg".into(), leg),
        Column::new("account".into(), account),
        Column::new("settle_ts".into(), ts).cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC)))?,
        Column::new("rate".into(), rate),
        Column::new("interval_hours".into(), hours),
        Column::new("price".into(), price),
        Column::new("perp_qty".into(), qty),
        Column::new("amount".into(), amount),
    ];
    Ok(DataFrame::new_infer_height(columns)?)
}

/// What `metrics.json` holds: the book's measures and each pair's legs.
#[derive(Serialize)]
struct MetricsFile<'a> {
    book: &'a Metrics,
    pairs: Vec<PairMetrics<'a>>,
}

#[derive(Serialize)]
struct PairMetrics<'a> {
    name: &'a str,
    account_a: &'a str,
    venue_a: &'a str,
    account_b: &'a str,
    venue_b: &'a str,
    funding_a: f64,
    funding_b: f64,
    price_pnl_a: f64,
    price_pnl_b: f64,
    transfers: usize,
    deleveragings: usize,
    rotations: usize,
    venues_b: Vec<&'a str>,
    settlements_a: usize,
    settlements_b: usize,
    metrics: &'a Metrics,
}

#[derive(Serialize)]
struct Manifest<'a> {
    tool: &'static str,
    version: &'static str,
    created_utc: String,
    run_name: String,
    config_file: Option<String>,
    pairs: Vec<&'a str>,
    inputs: Vec<super::backtest::InputFile>,
    warnings: &'a [String],
    files: Vec<String>,
}

/// Write a run folder (temp path, then renamed; an existing run is kept unless `force`).
pub fn write_outputs(book: &PerpPerpBook, config_path: Option<&Path>, result: &PerpPerpResult, force: bool) -> Result<PathBuf> {
    let run_dir = RunDir::create(&book.run.output_dir, &book.run.name, force)?;
    run_dir.write_parquet("ledger.parquet", &mut ledger_frame(result)?)?;
    run_dir.write_parquet("trades.parquet", &mut trades_frame(result)?)?;
    run_dir.write_parquet("funding.parquet", &mut funding_frame(result)?)?;
    let file = MetricsFile {
        book: &result.metrics,
        pairs: result
            .pairs
            .iter()
            .map(|p| PairMetrics {
                name: &p.name,
                account_a: &p.accounts[0].0,
                venue_a: &p.accounts[0].1,
                account_b: &p.accounts[1].0,
                venue_b: &p.accounts[1].1,
                funding_a: p.summary.funding[0],
                funding_b: p.summary.funding[1],
                price_pnl_a: p.summary.price_pnl[0],
                price_pnl_b: p.summary.price_pnl[1],
                transfers: p.summary.transfers,
                deleveragings: p.summary.deleveragings,
                rotations: p.summary.rotations,
                venues_b: p.b_accounts.iter().map(|a| a.0.as_str()).collect(),
                settlements_a: p.summary.settlements[0].len(),
                settlements_b: p.summary.settlements[1].len(),
                metrics: &p.metrics,
            })
            .collect(),
    };
    run_dir.write("metrics.json", serde_json::to_string_pretty(&file)?.as_bytes())?;
    let mut files: Vec<String> = ["metrics.json", "ledger.parquet", "trades.parquet", "funding.parquet", "config.toml", "manifest.json"].map(String::from).to_vec();
    let run_name = run_dir.destination().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if book.run.report {
        for chart in render_report(book, result, &run_name)? {
            run_dir.write(&chart.name, &chart.bytes)?;
        }
        files.extend(crate::render::perp_perp::file_names(result.pairs.len()));
    }
    let config_text = toml::to_string_pretty(&book.raw).unwrap_or_default();
    run_dir.write("config.toml", format!("# The perp-perp book's config as run.\n{config_text}").as_bytes())?;
    let manifest = Manifest {
        tool: "basis",
        version: env!("CARGO_PKG_VERSION"),
        created_utc: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        run_name,
        config_file: config_path.map(|p| p.display().to_string()),
        pairs: result.pairs.iter().map(|p| p.name.as_str()).collect(),
        inputs: super::backtest::input_files(&result.files)?,
        warnings: &result.warnings,
        files,
    };
    run_dir.write("manifest.json", serde_json::to_string_pretty(&manifest)?.as_bytes())?;
    run_dir.commit()
}

fn render_report(book: &PerpPerpBook, result: &PerpPerpResult, run_name: &str) -> Result<Vec<crate::render::ReportFile>> {
    let report = crate::render::perp_perp::PerpPerpReport {
        run_name,
        metrics: &result.metrics,
        pairs: result
            .pairs
            .iter()
            .zip(&book.pairs)
            .map(|(p, c)| crate::render::perp_perp::PairView {
                name: &p.name,
                accounts: [p.accounts[0].clone(), (p.b_accounts.iter().map(|a| a.0.as_str()).collect::<Vec<_>>().join("+"), p.b_accounts.iter().map(|a| a.1.as_str()).collect::<Vec<_>>().join("+"))],
                rows: &p.rows,
                top_up_distance: c.params.top_up_distance,
            })
            .collect(),
        warnings: &result.warnings,
    };
    crate::render::perp_perp::render(&report)
}

/// Re-render a perp-perp book's report in its folder (`basis report`): the book is run again
/// from its saved config, refused unless every input still has the hash the manifest recorded.
pub fn rerender(dir: &Path) -> Result<Vec<PathBuf>> {
    let saved = super::portfolio::SavedConfig::read(dir)?;
    let book = PerpPerpBook::from_toml_value(&saved.raw, &saved.config_path.display().to_string(), &saved.base_dir).map_err(|err| saved.explain(err))?;
    let result = run(&book)?;
    saved.check_inputs(&result.files)?;
    crate::render::replace_files(dir, &render_report(&book, &result, &saved.run_name)?)
}

/// The terminal summary: the book's lines, then each pair's two funding streams and the
/// price PnL of each leg (their sum is the mark spread between the venues).
pub fn summary_text(result: &PerpPerpResult) -> String {
    let mut out = result.metrics.summary_text();
    for p in &result.pairs {
        let s = &p.summary;
        out.push_str(&format!(
            "  {} legs      a {} ({}): funding {:+.2} over {} settlements, price {:+.2}; b {} ({}): funding {:+.2} over {} settlements, price {:+.2}\n",
            p.name,
            p.accounts[0].0,
            p.accounts[0].1,
            s.funding[0],
            s.settlements[0].len(),
            s.price_pnl[0],
            p.b_accounts.iter().map(|a| a.0.as_str()).collect::<Vec<_>>().join("+"),
            p.b_accounts.iter().map(|a| a.1.as_str()).collect::<Vec<_>>().join("+"),
            s.funding[1],
            s.settlements[1].len(),
            s.price_pnl[1]
        ));
        if p.b_accounts.len() > 1 {
            let held: Vec<String> = p.b_accounts.iter().enumerate().map(|(v, acc)| format!("{} {:.1} days", acc.0, p.rows.windows(2).filter(|w| w[1].venue_b as usize == v && w[1].qty[1] != 0.0).map(|w| (w[1].ts_ms - w[0].ts_ms) as f64 / 86_400_000.0).sum::<f64>())).collect();
            out.push_str(&format!(
                "  {} rotation  leg b moved {} times; held at {}; {:.1} days with leg a alone (moving), PnL then {:+.2}\n",
                p.name,
                s.rotations,
                held.join(", "),
                s.run.unhedged_ms as f64 / 86_400_000.0,
                s.run.unhedged_pnl
            ));
        }
        out.push_str(&format!(
            "  {} spread    funding a + b {:+.2}, mark spread (price a + b) {:+.2}, {} transfers between the accounts, {} times both legs shrunk to the leverage, {} liquidations\n",
            p.name,
            s.funding[0] + s.funding[1],
            s.price_pnl[0] + s.price_pnl[1],
            s.transfers,
            s.deleveragings,
            s.run.liquidations
        ));
    }
    out
}
