//! `basis stress`: what breaks the carry. Named scenarios and historical replays on the config's
//! own history ([`scenario`]), a capacity curve under funding compression and market impact
//! ([`capacity`]), and a block-bootstrap Monte Carlo ([`monte_carlo`]), in one report.

pub mod capacity;
pub mod monte_carlo;
pub mod scenario;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::app::pipeline::align_for;
use crate::config::Config;
use crate::data::align::MarketTimeline;
use crate::sim::EngineParams;
use crate::measure::ledger::FullLedger;
use crate::output::RunDir;
use crate::render::charts::{self, CompareLine};
use crate::render::html::{self, escape, money, pct};
use crate::render::ChartImage;
use crate::time::{format_ms, MS_PER_DAY};
use crate::{bail_input, input_error};
use capacity::{Capacity, CapacitySpec};
use monte_carlo::{MonteCarlo, MonteCarloSpec};
use scenario::Scenario;

/// The stress file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StressFile {
    /// The `[[scenario]]` tables, run in file order against the baseline.
    #[serde(default, rename = "scenario")]
    pub scenarios: Vec<Scenario>,
    /// `[capacity]`: the capacity curve to run, if any.
    #[serde(default)]
    pub capacity: Option<CapacitySpec>,
    /// `[monte_carlo]`: the block-bootstrap Monte Carlo to run, if any.
    #[serde(default)]
    pub monte_carlo: Option<MonteCarloSpec>,
}

impl StressFile {
    /// Read a stress file.
    pub fn load(path: &Path) -> Result<StressFile> {
        let text = std::fs::read_to_string(path).map_err(|err| input_error!("cannot read stress file {}: {err}", path.display()))?;
        let file: StressFile = toml::from_str(&text).map_err(|err| {
            input_error!("stress file {}: {}\nSee data/examples/stress.toml for every scenario and key.", path.display(), err.to_string().trim_end())
        })?;
        if let Some(key) = file.capacity.as_ref().and_then(|c| c.unknown.keys().next()) {
            crate::bail_input!("stress file {}: [capacity]: unknown key `{key}`; expected aum, open_interest_usd, open_interest_file, venue, coin, elasticity, impact_coefficient\nSee data/examples/stress.toml for every scenario and key.", path.display());
        }
        Ok(file)
    }
}

/// Label of the unstressed run.
pub const BASELINE: &str = "baseline (history)";

/// One scenario's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioOutcome {
    /// Scenario label in tables and legends ([`BASELINE`] for the unstressed run).
    pub label: String,
    /// When the stress starts, `YYYY-MM-DD HH:MM:SSZ` (UTC); the first step for the baseline.
    pub start: String,
    /// Final equity minus the baseline's (replays: the window's own PnL).
    pub pnl_impact: f64,
    /// Equity at the last step, quote currency.
    pub final_equity: f64,
    /// Final equity / initial capital − 1, decimal.
    pub total_return: f64,
    /// Deepest fall of equity below a previous peak, negative decimal.
    pub max_drawdown: f64,
    /// Steps at which a leg was liquidated.
    pub liquidations: usize,
    /// Smallest distance to liquidation while hedged (fraction of the mark).
    pub min_liquidation_distance: Option<f64>,
    /// Highest margin ratio reached: maintenance margin over the perp margin balance (wallet +
    /// unrealised PnL), as Binance shows it; the position is liquidated at 100 %.
    pub max_margin_ratio: Option<f64>,
    /// Days from the scenario's start until equity is back at its peak before the start
    /// (None: not recovered by the end).
    pub days_to_recover: Option<f64>,
    /// Step times of the run, epoch ms UTC (for the charts; not serialised).
    #[serde(skip)]
    pub ts_ms: Vec<i64>,
    /// Equity at each step of `ts_ms`, quote currency (not serialised).
    #[serde(skip)]
    pub equity: Vec<f64>,
}

/// Days from `start_ms` until equity, after its lowest point from then on, is back at its peak
/// before `start_ms` (0 when it never fell below it; None when it has not recovered by the end).
pub fn days_to_recover(ts_ms: &[i64], equity: &[f64], start_ms: i64) -> Option<f64> {
    if equity.is_empty() {
        return None;
    }
    let i0 = ts_ms.partition_point(|&t| t < start_ms).min(equity.len() - 1);
    let peak = equity[..=i0].iter().copied().fold(f64::MIN, f64::max);
    let trough = (i0..equity.len()).min_by(|&a, &b| equity[a].total_cmp(&equity[b])).unwrap_or(i0);
    if equity[trough] >= peak {
        return Some(0.0);
    }
    (trough..equity.len()).find(|&i| equity[i] >= peak).map(|i| (ts_ms[i] - ts_ms[i0]) as f64 / MS_PER_DAY as f64)
}

fn outcome(label: String, timeline: &MarketTimeline, params: &EngineParams, start_ms: i64, baseline_equity: Option<f64>, is_baseline: bool) -> ScenarioOutcome {
    let mut ledger = FullLedger::with_capacity(timeline.len());
    let (_, m) = crate::app::pipeline::simulate(timeline, params, &mut ledger);
    let ts_ms = ledger.ts_ms().to_vec();
    let equity = ledger.column("equity").unwrap_or(&[]).to_vec();
    let max_margin_ratio = ledger
        .rows()
        .filter(|r| r.perp_qty != 0.0 && r.perp_margin > 0.0)
        .map(|r| params.brackets.maintenance_margin(r.perp_qty.abs() * r.mark_price) / r.perp_margin)
        .fold(None, |acc: Option<f64>, x| Some(acc.map_or(x, |a| a.max(x))));
    ScenarioOutcome {
        label,
        start: format_ms(start_ms),
        pnl_impact: m.final_equity - baseline_equity.unwrap_or(m.initial_capital),
        final_equity: m.final_equity,
        total_return: m.total_return,
        max_drawdown: m.max_drawdown,
        liquidations: m.liquidations,
        min_liquidation_distance: m.min_liquidation_distance,
        max_margin_ratio,
        // The baseline has no stress to recover from.
        days_to_recover: if is_baseline { None } else { days_to_recover(&ts_ms, &equity, start_ms) },
        ts_ms,
        equity,
    }
}

/// Everything `basis stress` computes.
pub struct StressRun {
    /// The unstressed run over the config's own history.
    pub baseline: ScenarioOutcome,
    /// One outcome per `[[scenario]]`, in file order.
    pub scenarios: Vec<ScenarioOutcome>,
    /// The capacity curve, when the file has `[capacity]`.
    pub capacity: Option<Capacity>,
    /// The Monte Carlo paths, when the file has `[monte_carlo]`.
    pub monte_carlo: Option<MonteCarlo>,
    /// Starting equity of every run, quote currency.
    pub initial_capital: f64,
    /// Traded symbol, e.g. `BTCUSDT`.
    pub symbol: String,
}

/// Run the stress file against a config.
pub fn run(config: &Config, file: &StressFile, base_dir: &Path, progress: bool) -> Result<StressRun> {
    if config.strategy.instrument != crate::config::InstrumentChoice::Perp {
        crate::bail_input!("`basis stress` runs perp carries for now: set strategy.instrument = \"perp\" (its shocks and rule sets act on the perp and its funding, not on a dated leg's contracts)");
    }
    crate::app::pipeline::refuse_rules(config, "`basis stress`")?;
    if config.costs.spot_cost_model() == crate::model::CostModel::Orderbook || config.costs.perp_cost_model() == crate::model::CostModel::Orderbook {
        // Its scenarios reshape and replay the history, for which no snapshots exist.
        crate::bail_input!("`basis stress` does not walk order books: its scenarios reshape and replay the history, for which there are no snapshots; use costs.model = \"sqrt_impact\" or \"spread_from_bars\"");
    }
    if config.costs.worked() {
        crate::bail_input!("`basis stress` fills orders at once for now: remove costs.max_participation and costs.leg_delay_ms");
    }
    let data = crate::data::load(&config.data)?;
    let (base, _) = align_for(&data, config)?;
    let params = crate::config::engine_params(config);
    // A market cost model prices each run's fills from its own timeline's bars (a replay's, or
    // the history's under a shock); a liquidity drought multiplies what it gives.
    let priced = |timeline: &MarketTimeline, params: &EngineParams, drought: Option<f64>| -> EngineParams {
        let mut params = params.clone();
        if config.costs.market_dependent() {
            let (mut market, _) = crate::sim::market_costs::estimate(timeline, &config.costs);
            if let Some(k) = drought {
                market.scale(k);
            }
            params.market_costs = Some(std::sync::Arc::new(market));
        }
        params
    };
    let baseline = outcome(BASELINE.into(), &base, &priced(&base, &params, None), base.ts_ms[0], None, true);
    let floor_at = |settle_ms: i64, interval: f64| config.venue.limits_at(&base.symbol, settle_ms, interval).1;
    let replay = |from: i64, to: i64| -> Result<MarketTimeline> {
        let mut window = config.clone();
        window.strategy.start = Some(format_ms(from).replace(' ', "T"));
        window.strategy.end = Some(format_ms(to).replace(' ', "T"));
        align_for(&data, &window).map(|(t, _)| t).map_err(|e| input_error!("replay {} to {}: {e:#}", format_ms(from), format_ms(to)))
    };
    let mut scenarios = Vec::new();
    for s in &file.scenarios {
        let mut s = s.clone();
        if let Scenario::FundingReplay { path, .. } = &mut s {
            if Path::new(path.as_str()).is_relative() {
                *path = base_dir.join(path.as_str()).to_string_lossy().into_owned();
            }
        }
        let s = &s;
        let stressed = scenario::apply(s, &base, &params, &floor_at, &replay).with_context(|| format!("scenario {:?}", s.label()))?;
        let is_replay = matches!(s, Scenario::Replay { .. });
        let stressed_params = priced(&stressed.timeline, &stressed.params, s.slippage_factor());
        scenarios.push(outcome(s.label(), &stressed.timeline, &stressed_params, stressed.start_ms, (!is_replay).then_some(baseline.final_equity), false));
    }
    let capacity = file.capacity.as_ref().map(|spec| capacity::run(spec, &data, &base, &params, base_dir)).transpose()?;
    let monte_carlo = file.monte_carlo.as_ref().map(|spec| monte_carlo::run(&base, &params, spec, progress)).transpose()?;
    Ok(StressRun { baseline, scenarios, capacity, monte_carlo, initial_capital: params.initial_capital, symbol: base.symbol.clone() })
}

/// Time to recover as shown: `4.7 d`, `not recovered`, or `n/a` when the stress starts with the run.
pub fn days(o: &ScenarioOutcome) -> String {
    match o.days_to_recover {
        Some(d) => format!("{d:.1} d"),
        None if o.label == BASELINE => "n/a".into(),
        None => "not recovered".into(),
    }
}

/// A chart to draw: file, title, description, drawing function.
type ChartSpec<'a> = (&'static str, String, &'static str, Box<dyn Fn(&charts::Area) -> Result<()> + Sync + 'a>);

/// Charts and page.
pub fn render(run: &StressRun) -> Result<(Vec<ChartImage>, String)> {
    let capital = run.initial_capital;
    let mut specs: Vec<ChartSpec> = Vec::new();
    let line = |o: &ScenarioOutcome| CompareLine {
        label: o.label.clone(),
        lines: charts::decimate_for_chart(&o.ts_ms, &o.equity.iter().map(|e| (e / capital - 1.0) * 100.0).collect::<Vec<f64>>()),
    };
    let shocked: Vec<CompareLine> = std::iter::once(&run.baseline).chain(run.scenarios.iter().filter(|o| o.ts_ms.first() == run.baseline.ts_ms.first())).map(line).collect();
    specs.push((
        "stress_scenarios.png",
        "Return under each scenario".into(),
        "Equity over initial capital minus one: the history (baseline) and each scenario applied to it. Replays of other windows are in the table.",
        Box::new(move |area| charts::compare_chart(area, "Return under each scenario", "return on initial capital (%)", &shocked)),
    ));
    if let Some(cap) = &run.capacity {
        let lines = vec![
            ("net APR".to_string(), cap.points.iter().map(|p| (p.aum, p.net_apr * 100.0)).collect::<Vec<_>>()),
            ("funding APR over window".to_string(), cap.points.iter().map(|p| (p.aum, p.funding_apr_over_window * 100.0)).collect()),
        ];
        specs.push((
            "stress_capacity.png",
            "Capacity: APR against book size".into(),
            "Net APR and funding APR over window as the book grows: positive funding compressed by the book's share of open interest, and square-root market impact on every fill.",
            Box::new(move |area| charts::xy_chart(area, "Capacity: APR against book size", "initial capital (quote currency, log scale)", "APR (%)", &lines, true)),
        ));
    }
    if let Some(mc) = &run.monte_carlo {
        let aprs: Vec<f64> = mc.paths.iter().map(|p| p.apr * 100.0).collect();
        let markers = vec![
            ("5th percentile".to_string(), mc.quantile(0.05, |p| p.apr) * 100.0),
            ("median".to_string(), mc.quantile(0.5, |p| p.apr) * 100.0),
            ("95th percentile".to_string(), mc.quantile(0.95, |p| p.apr) * 100.0),
        ];
        specs.push((
            "stress_monte_carlo.png",
            "Monte Carlo: APR across bootstrapped paths".into(),
            "Each path stitches blocks of history (spot returns, basis, mark range and funding together) into a new year and runs the carry on it.",
            Box::new(move |area| charts::histogram(area, "Monte Carlo: APR across bootstrapped paths", "APR (%)", &aprs, 40, &markers)),
        ));
    }
    let images = specs
        .par_iter()
        .map(|(file, title, description, draw)| {
            let png = charts::render_png(charts::WIDTH, charts::HEIGHT, |area| draw(area)).with_context(|| format!("drawing {file}"))?;
            Ok(ChartImage { file, title: title.clone(), description, width: charts::WIDTH, height: charts::HEIGHT, png })
        })
        .collect::<Result<Vec<_>>>()?;

    let mut body = format!("<h1>Stress: {}</h1>\n", escape(&run.symbol));
    body.push_str(&format!(
        "<p class=\"sub\">Baseline: {} → {}, final equity {}, {} liquidation(s)</p>\n",
        escape(&format_ms(run.baseline.ts_ms[0])),
        escape(&format_ms(*run.baseline.ts_ms.last().unwrap_or(&0))),
        money(run.baseline.final_equity),
        run.baseline.liquidations
    ));
    body.push_str("<section class=\"table\" id=\"scenarios\">\n<h2>Scenarios</h2>\n<table>\n<tr><th>scenario</th><th>from (UTC)</th><th class=\"num\">PnL impact</th><th class=\"num\">return</th><th class=\"num\">max drawdown</th><th class=\"num\">liquidated</th><th class=\"num\">min distance to liquidation</th><th class=\"num\">max margin ratio</th><th class=\"num\">time to recover</th></tr>\n");
    for o in std::iter::once(&run.baseline).chain(&run.scenarios) {
        body.push_str(&format!(
            "<tr><th>{}</th><td class=\"time\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
            escape(&o.label),
            escape(&html::short_time(&o.start)),
            money(o.pnl_impact),
            pct(o.total_return),
            pct(o.max_drawdown),
            if o.liquidations > 0 { format!("yes ({})", o.liquidations) } else { "no".into() },
            o.min_liquidation_distance.map(|d| format!("{:.1} %", d * 100.0)).unwrap_or_else(|| "n/a".into()),
            o.max_margin_ratio.map(|r| format!("{:.1} %", r * 100.0)).unwrap_or_else(|| "n/a".into()),
            escape(&days(o))
        ));
    }
    body.push_str("</table>\n<p>PnL impact: final equity minus the baseline's (for replays of another window, the window's own PnL). Time to recover: from the scenario's start until equity is back at its peak before it.</p>\n</section>\n");
    for image in &images {
        body.push_str(&html::chart_section(image));
    }
    if let Some(cap) = &run.capacity {
        body.push_str(&format!(
            "<section class=\"table\" id=\"capacity\">\n<h2>Capacity</h2>\n<p>Open interest {} ({}); spot daily volatility {:.2} %; perp value traded {} per day; elasticity {}; impact coefficient {}.</p>\n<table>\n<tr><th class=\"num\">initial capital</th><th class=\"num\">perp notional</th><th class=\"num\">share of OI</th><th class=\"num\">funding factor</th><th class=\"num\">entry impact (bp)</th><th class=\"num\">slippage paid</th><th class=\"num\">top-ups</th><th class=\"num\">net APR</th><th class=\"num\">funding APR</th><th class=\"num\">liquidations</th></tr>\n",
            money(cap.open_interest_usd),
            escape(&cap.open_interest_source),
            cap.daily_volatility * 100.0,
            money(cap.average_daily_value_traded),
            cap.elasticity,
            cap.impact_coefficient
        ));
        for p in &cap.points {
            body.push_str(&format!(
                "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.3} %</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.2}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
                html::compact(p.aum),
                html::compact(p.perp_notional),
                p.share_of_open_interest * 100.0,
                p.funding_factor,
                p.impact_bps,
                html::compact(p.slippage_paid),
                p.margin_top_ups,
                pct(p.net_apr),
                pct(p.funding_apr_over_window),
                p.liquidations
            ));
        }
        body.push_str("</table>\n<p>Every fill pays the square-root impact of its own size on top of the configured slippage. A bigger book's perp sits in higher maintenance tiers, so rallies bring it to its top-up distance sooner: its top-ups come earlier and shrink the carry (the top-ups column), which can move net APR up or down between sizes apart from the costs.</p>\n</section>\n");
    }
    if let Some(mc) = &run.monte_carlo {
        body.push_str(&format!(
            "<section class=\"table\" id=\"monte-carlo\">\n<h2>Monte Carlo</h2>\n<p>{} paths of {} steps, blocks of {} steps, seed {}.</p>\n<table>\n<tr><th>probability of liquidation</th><td class=\"num\">{}</td></tr>\n<tr><th>APR 5th / 50th / 95th percentile</th><td class=\"num\">{} / {} / {}</td></tr>\n<tr><th>max drawdown 5th / 50th percentile</th><td class=\"num\">{} / {}</td></tr>\n</table>\n</section>\n",
            mc.paths.len(),
            mc.steps_per_path,
            mc.block_steps,
            mc.spec.seed,
            pct(mc.liquidation_probability()),
            pct(mc.quantile(0.05, |p| p.apr)),
            pct(mc.quantile(0.5, |p| p.apr)),
            pct(mc.quantile(0.95, |p| p.apr)),
            pct(mc.quantile(0.05, |p| p.max_drawdown)),
            pct(mc.quantile(0.5, |p| p.max_drawdown)),
        ));
    }
    Ok((images, html::page(&format!("basis · stress · {}", run.symbol), &body)))
}

/// Run and write `<output_dir>/<name>/`.
pub fn write(config: &Config, file: &StressFile, base_dir: &Path, output_dir: &Path, name: &str, force: bool, progress: bool) -> Result<(PathBuf, StressRun)> {
    if file.scenarios.is_empty() && file.capacity.is_none() && file.monte_carlo.is_none() {
        bail_input!("the stress file has no [[scenario]], [capacity] or [monte_carlo]");
    }
    let run = run(config, file, base_dir, progress)?;
    let (images, page) = render(&run)?;
    let dir = RunDir::create(output_dir, name, force)?;
    for image in &images {
        dir.write(image.file, &image.png)?;
    }
    let mc_summary = run.monte_carlo.as_ref().map(|mc| {
        serde_json::json!({
            "paths": mc.paths.len(), "steps_per_path": mc.steps_per_path, "block_steps": mc.block_steps, "seed": mc.spec.seed,
            "liquidation_probability": mc.liquidation_probability(),
            "apr_p05": mc.quantile(0.05, |p| p.apr), "apr_p50": mc.quantile(0.5, |p| p.apr), "apr_p95": mc.quantile(0.95, |p| p.apr),
        })
    });
    let json = serde_json::json!({ "baseline": run.baseline, "scenarios": run.scenarios, "capacity": run.capacity, "monte_carlo": mc_summary });
    dir.write("stress.json", serde_json::to_string_pretty(&json)?.as_bytes())?;
    if let Some(mc) = &run.monte_carlo {
        let p = &mc.paths;
        let f = |g: &dyn Fn(&monte_carlo::PathOutcome) -> f64| p.iter().map(g).collect::<Vec<f64>>();
        let mut frame = DataFrame::new(
            p.len(),
            vec![
                Column::new("path".into(), (0..p.len() as u64).collect::<Vec<u64>>()),
                Column::new("apr".into(), f(&|x| x.apr)),
                Column::new("total_return".into(), f(&|x| x.total_return)),
                Column::new("max_drawdown".into(), f(&|x| x.max_drawdown)),
                Column::new("funding_pnl".into(), f(&|x| x.funding_pnl)),
                Column::new("liquidations".into(), p.iter().map(|x| x.liquidations as u64).collect::<Vec<u64>>()),
                Column::new("min_liquidation_distance".into(), f(&|x| x.min_liquidation_distance)),
            ],
        )?;
        dir.write_parquet("monte_carlo.parquet", &mut frame)?;
    }
    dir.write("index.html", page.as_bytes())?;
    let folder = dir.commit()?;
    Ok((folder, run))
}

/// Scenarios, capacity and Monte Carlo, as the `stress` command prints them.
pub fn summary_text(run: &StressRun) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "{:<44} {:>14} {:>9} {:>9} {:>10} {:>14}", "scenario", "PnL impact", "return", "max DD", "liquidated", "recovered in");
    for o in std::iter::once(&run.baseline).chain(&run.scenarios) {
        let _ = writeln!(
            out,
            "{:<44} {:>14.2} {:>8.2}% {:>8.2}% {:>10} {:>14}",
            o.label,
            o.pnl_impact,
            o.total_return * 100.0,
            o.max_drawdown * 100.0,
            if o.liquidations > 0 { "yes" } else { "no" },
            days(o)
        );
    }
    if let Some(cap) = &run.capacity {
        for p in &cap.points {
            let _ = writeln!(out, "capacity {:>16.0}: net APR {:+.2}% (funding x{:.3}, entry impact {:.2} bp, slippage paid {:.0}, {} top-ups)", p.aum, p.net_apr * 100.0, p.funding_factor, p.impact_bps, p.slippage_paid, p.margin_top_ups);
        }
    }
    if let Some(mc) = &run.monte_carlo {
        let _ = writeln!(
            out,
            "monte carlo {} paths: P(liquidation) {:.2}%, APR p5 {:+.2}% p50 {:+.2}% p95 {:+.2}%",
            mc.paths.len(),
            mc.liquidation_probability() * 100.0,
            mc.quantile(0.05, |p| p.apr) * 100.0,
            mc.quantile(0.5, |p| p.apr) * 100.0,
            mc.quantile(0.95, |p| p.apr) * 100.0
        );
    }
    out
}
