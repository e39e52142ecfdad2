//! `basis caps`: one carry under several funding rule sets, side by side.
//!
//! The market is loaded and aligned once. Each rule set (a venue preset, or the config's preset
//! with a user cap) turns the same premium series into its own counterfactual settlements
//! ([`crate::venue::funding::counterfactual`]); the files' own settlements are the baseline
//! ("actual"). Two ways to compare them ([`CapsMode`]):
//!
//! - **Fixed path** (the default): the carry is simulated once, on the data's funding, and that
//!   path (quantities held, top-ups, re-hedges, exits) is held fixed; each rule set's
//!   settlements are re-priced on the quantities it held, as the engine pays funding
//!   (−qty × rate × price at each settlement). Only funding differs between the rows, so the
//!   funding APR and PnL columns measure the rules and nothing else.
//! - **Full** (`--full`): each rule set is simulated in full. Funding then also moves the margin,
//!   so top-ups, liquidations and the quantities held differ too: the table shows each rule
//!   set's top-ups beside its PnL, labelled as including those path effects. Fees, slippage,
//!   brackets and the liquidation rule are the config's in every row (a `backtest` with
//!   `venue.preset` set to the rule set's venue changes those too).

use std::path::{Path, PathBuf};

use anyhow::Result;
use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;

use crate::venue::funding::{counterfactual_for, premium_for, CappedFunding};
use crate::venue::{CapRule, Preset};
use crate::config::Config;
use crate::data::align::align_window;
use crate::data::{self, MarketData};
use crate::measure::ledger::FullLedger;
use crate::measure::metrics::Metrics;
use crate::model::funding::step_of;
use crate::model::{MarketTimeline, Settlement};
use crate::output::RunDir;
use crate::render::charts::{self, CompareLine};
use crate::render::compare::overlay_images;
use crate::render::html::{self, escape, money, pct, plain_number};
use crate::render::{series, ChartImage};
use crate::time::{MS_PER_DAY, MS_PER_HOUR};
use crate::{bail_input, input_error};

/// How the rule sets are compared (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CapsMode {
    /// One simulated path, held fixed; each rule set's funding re-priced on it.
    #[default]
    FixedPath,
    /// Each rule set simulated in full, path effects included.
    Full,
}

/// One way of producing the run's funding.
#[derive(Debug, Clone)]
pub enum RuleSet {
    /// The settlements in the data files (the config's venue limits mark the capped ones).
    Actual,
    /// A venue's rules applied to the premium.
    Rules {
        /// Label in tables and legends, e.g. "Hyperliquid" or "cap ±0.30 % per 8 h".
        label: String,
        /// The venue preset whose funding formula, interval and caps produce the settlements.
        preset: Box<Preset>,
    },
}

impl RuleSet {
    /// Label in tables and legends.
    pub fn label(&self) -> &str {
        match self {
            RuleSet::Actual => "actual (data)",
            RuleSet::Rules { label, .. } => label,
        }
    }
}

/// A user cap from `--cap`: `0.003` (± per settlement on the base rules' interval) or
/// `0.04/1h` (settle every hour, ± per settlement). The base's formula is kept; every symbol
/// gets this cap and floor.
pub fn user_cap(spec: &str, base: &Preset) -> Result<RuleSet> {
    let (value, hours) = match spec.split_once('/') {
        Some((value, per)) => {
            let hours = per
                .trim()
                .strip_suffix('h')
                .and_then(|h| h.trim().parse::<f64>().ok())
                .filter(|h| *h > 0.0 && *h <= 24.0)
                .ok_or_else(|| input_error!("--cap {spec:?}: the interval after '/' must look like 1h, 4h or 8h"))?;
            (value, Some(hours))
        }
        None => (spec, None),
    };
    let cap: f64 = value.trim().parse().map_err(|_| input_error!("--cap {spec:?}: expected a decimal such as 0.003 (= ±0.3 %) or 0.04/1h"))?;
    if !(cap > 0.0 && cap < 1.0) {
        bail_input!("--cap {spec:?}: the cap must be a decimal in (0, 1), e.g. 0.003 for ±0.3 %");
    }
    let mut preset = base.clone();
    let interval = hours.unwrap_or(base.funding.interval_hours);
    if let Some(hours) = hours {
        preset.funding.interval_hours = hours;
        preset.funding.interval_changes.clear();
        preset.funding.interval_offset_hours = 0.0;
    }
    preset.funding.cap_per_hours = None;
    preset.funding.caps = vec![CapRule {
        symbol: "*".into(),
        cap: Some(cap),
        floor: Some(-cap),
        margin_cap: None,
        from: None,
        to: None,
        source: format!("basis caps --cap {spec}"),
        from_ms: None,
        to_ms: None,
    }];
    let label = format!("cap ±{} % per {} h ({} rules)", plain_number(cap * 100.0), plain_number(interval), base.id);
    preset.name = label.clone();
    Ok(RuleSet::Rules { label, preset: Box::new(preset) })
}

/// The outcome of one rule set.
pub struct CapsOutcome {
    /// The rule set's label in tables and legends (see [`RuleSet::label`]).
    pub label: String,
    /// Settlements in the window, each with its rate before the cap and floor and whether one bound.
    pub settled: CappedFunding,
    /// Metrics of the carry run under this rule set's funding.
    pub metrics: Metrics,
    /// Share of settlements at the cap (capped with a positive rate), decimal 0–1.
    pub share_at_cap: f64,
    /// Share of settlements at the floor (capped with a negative rate), decimal 0–1.
    pub share_at_floor: f64,
    /// Step times of the run, epoch ms UTC.
    pub ts_ms: Vec<i64>,
    /// Running sum of funding PnL at each step of `ts_ms`, quote currency.
    pub cumulative_funding: Vec<f64>,
    /// Equity at each step of `ts_ms`, quote currency.
    pub equity: Vec<f64>,
    /// Times of the top-ups of the path the row ran on (the shared path's in fixed-path mode).
    pub top_ups: Vec<i64>,
}

/// Row of `caps.json`.
#[derive(Serialize)]
struct CapsRow<'a> {
    rule_set: &'a str,
    settlements: usize,
    funding_apr_over_window: f64,
    share_at_cap: f64,
    share_at_floor: f64,
    funding_pnl: f64,
    total_pnl: f64,
    max_drawdown: f64,
    liquidations: usize,
    fees_and_slippage: f64,
    funding_apr_while_held: f64,
    top_ups: usize,
    metrics: &'a Metrics,
}

/// Run the carry under every rule set, in parallel: on one fixed path, or in full (`mode`).
pub fn run(config: &Config, rule_sets: &[RuleSet], mode: CapsMode) -> Result<(Vec<CapsOutcome>, Vec<String>)> {
    if mode == CapsMode::FixedPath && config.venue.contract == crate::config::Contract::Inverse {
        crate::bail_input!("`basis caps` on a fixed path re-prices a linear perp's funding; for a coin-margined (inverse) perp run `basis caps --full`");
    }
    if config.strategy.instrument != crate::config::InstrumentChoice::Perp {
        crate::bail_input!("`basis caps` runs perp carries for now: set strategy.instrument = \"perp\" (its shocks and rule sets act on the perp and its funding, not on a dated leg's contracts)");
    }
    crate::app::pipeline::refuse_rules(config, "`basis caps`")?;
    let market = data::load(&config.data)?;
    let window = crate::app::pipeline::window_of(config)?;
    let base = align_window(&market, &window, config.portfolio.staking_apr)?;
    let (premium, premium_source) = premium_for(config.venue.premium_index.as_deref(), config.venue.premium, &base, config.venue.premium_debias, config.venue.premium_debias_days)?;
    let (from_ms, to_ms) = (base.ts_ms[0], base.ts_ms[base.len() - 1]);
    let params = crate::config::engine_params(config);
    let mut warnings = market.warnings.clone();
    warnings.extend(base.coverage_warnings.iter().cloned());
    warnings.push(format!("caps: {premium_source}; fees, slippage and brackets are the config's for every rule set"));
    // The fixed path: the carry on the data's own funding, once.
    let path = match mode {
        CapsMode::FixedPath => {
            let mut ledger = FullLedger::with_capacity(base.len());
            let (summary, _) = super::pipeline::simulate(&base, &params, &mut ledger);
            Some((summary, ledger))
        }
        CapsMode::Full => None,
    };
    let outcomes = rule_sets
        .par_iter()
        .map(|rule_set| -> Result<CapsOutcome> {
            let (settled, timeline) = match rule_set {
                RuleSet::Actual => {
                    let symbol = &market.symbol;
                    let inside = &market.funding[market.funding.between(from_ms, to_ms)];
                    let at_limit = inside
                        .iter()
                        .map(|s| {
                            let (cap, floor) = config.venue.limits_at(symbol, s.settle_ms, s.interval_hours);
                            series::at_limit(s.rate, cap, floor)
                        })
                        .collect();
                    // The files' rates are what was paid: nothing is known of them before a cap.
                    let settled = CappedFunding { funding: inside.iter().copied().collect(), uncapped_rate: inside.iter().map(|s| s.rate).collect(), at_limit };
                    (settled, None)
                }
                RuleSet::Rules { preset, .. } => {
                    let settled = counterfactual_for(preset, &base, &premium);
                    let swapped = MarketData { funding: settled.funding.clone(), funding_derived: true, ..market.clone() };
                    (settled, Some(align_window(&swapped, &window, config.portfolio.staking_apr)?))
                }
            };
            let timeline = timeline.as_ref().unwrap_or(&base);
            let n = settled.len().max(1) as f64;
            let (at_cap, at_floor) = settled.at_cap_and_floor();
            let (share_at_cap, share_at_floor) = (at_cap as f64 / n, at_floor as f64 / n);
            if let Some((summary, ledger)) = &path {
                let (repriced, cumulative_funding, equity) = reprice_on_path(summary, ledger, timeline);
                let metrics = super::pipeline::measure(&repriced, &base);
                return Ok(CapsOutcome {
                    label: rule_set.label().to_string(),
                    settled,
                    metrics,
                    share_at_cap,
                    share_at_floor,
                    ts_ms: base.ts_ms.clone(),
                    cumulative_funding,
                    equity,
                    top_ups: top_up_times(summary),
                });
            }
            let mut ledger = FullLedger::with_capacity(timeline.len());
            let (summary, metrics) = super::pipeline::simulate(timeline, &params, &mut ledger);
            let mut running = 0.0;
            let cumulative_funding = ledger
                .column("pnl_funding")
                .unwrap_or(&[])
                .iter()
                .map(|x| {
                    running += x;
                    running
                })
                .collect();
            Ok(CapsOutcome {
                label: rule_set.label().to_string(),
                settled,
                metrics,
                share_at_cap,
                share_at_floor,
                ts_ms: timeline.ts_ms.clone(),
                cumulative_funding,
                equity: ledger.column("equity").unwrap_or(&[]).to_vec(),
                top_ups: top_up_times(&summary),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((outcomes, warnings))
}

/// When the run topped its margin up (one time per step with a top-up fill).
fn top_up_times(summary: &crate::sim::RunSummary) -> Vec<i64> {
    let mut times: Vec<i64> = summary.trades.iter().filter(|t| t.reason == crate::model::TradeReason::TopUp).map(|t| t.ts_ms).collect();
    times.dedup();
    times
}

/// The fixed path (`summary`, `ledger`) with its funding replaced by the settlements `timeline`
/// pays ([`MarketTimeline::paid_settlements`]; its steps are the path's): each settlement
/// paid as the engine pays it, −qty × rate × price, on the perp quantity held when the engine
/// settles it (at step max(step, 1), after that step's liquidation check: the previous close's
/// quantity, or none once the perp was liquidated in the step). Returns the path's summary
/// with those settlements and what follows from them (funding PnL, final and daily equity,
/// drawdown), the running funding at each step, and the equity at each step.
pub fn reprice_on_path(summary: &crate::sim::RunSummary, ledger: &FullLedger, timeline: &MarketTimeline) -> (crate::sim::RunSummary, Vec<f64>, Vec<f64>) {
    use crate::model::{FundingPayment, TradeReason};
    let n = ledger.len();
    let liquidated_at: std::collections::BTreeSet<usize> = summary.trades.iter().filter(|t| t.reason == TradeReason::Liquidation && t.leg == "perp").map(|t| t.step).collect();
    let held = |step: usize| -> f64 {
        let j = step.max(1);
        if j >= n || liquidated_at.contains(&j) {
            0.0
        } else {
            ledger.row(j - 1).perp_qty
        }
    };
    let mut out = summary.clone();
    out.settlements.clear();
    out.window_settlements = timeline.paid_settlements().copied().collect();
    let mut funding_at = vec![0.0; n];
    for e in timeline.paid_settlements() {
        let step = step_of(&timeline.ts_ms, e.settle_ms);
        let qty = held(step);
        if qty == 0.0 || step.max(1) >= n {
            continue;
        }
        let amount = -qty * e.rate * e.price;
        funding_at[step.max(1)] += amount;
        out.settlements.push(FundingPayment::paid(*e, qty, amount));
    }
    // The path's equity with its own funding swapped for these settlements.
    let (mut running, mut base_running) = (0.0, 0.0);
    let mut cumulative = Vec::with_capacity(n);
    let mut equity = Vec::with_capacity(n);
    for (i, paid) in funding_at.iter().enumerate() {
        let row = ledger.row(i);
        running += paid;
        base_running += row.pnl.funding;
        cumulative.push(running);
        // Added as one difference, so a row whose funding is unchanged keeps its equity's bits.
        equity.push(row.equity + (running - base_running));
    }
    out.pnl.funding += running - base_running;
    // The daily closes, final equity and drawdown of the re-priced equity, as a run records them.
    let ts: Vec<i64> = (0..n).map(|i| ledger.row(i).ts_ms).collect();
    crate::sim::record_equity(&mut out, &ts, &equity);
    (out, cumulative, equity)
}

/// Trailing 7-day funding APR at each settlement: Σ rate over (T − 7 d, T] × 365 / 7, in %.
pub fn trailing_week_apr(settled: &[Settlement]) -> (Vec<i64>, Vec<f64>) {
    let mut ts = Vec::with_capacity(settled.len());
    let mut apr = Vec::with_capacity(settled.len());
    let mut lo = 0;
    let mut sum = 0.0;
    for s in settled {
        sum += s.rate;
        while settled[lo].settle_ms <= s.settle_ms - 7 * MS_PER_DAY {
            sum -= settled[lo].rate;
            lo += 1;
        }
        // Only once a full week is covered, so the first points are not a partial week's rate.
        if s.settle_ms - settled[0].settle_ms >= 7 * MS_PER_DAY - 8 * MS_PER_HOUR {
            ts.push(s.settle_ms);
            apr.push(sum * 365.0 / 7.0 * 100.0);
        }
    }
    (ts, apr)
}

/// The comparison charts and page.
pub fn render(config: &Config, outcomes: &[CapsOutcome], warnings: &[String], mode: CapsMode) -> Result<(Vec<ChartImage>, String)> {
    let apr_lines: Vec<CompareLine> = outcomes
        .iter()
        .map(|o| {
            let (ts, apr) = trailing_week_apr(&o.settled.funding);
            CompareLine { label: o.label.clone(), lines: charts::decimate_for_chart(&ts, &apr) }
        })
        .collect();
    let carry_lines: Vec<CompareLine> = outcomes
        .iter()
        .map(|o| {
            let pct_of_capital: Vec<f64> = o.cumulative_funding.iter().map(|f| f / config.portfolio.initial_capital * 100.0).collect();
            CompareLine { label: o.label.clone(), lines: charts::decimate_for_chart(&o.ts_ms, &pct_of_capital) }
        })
        .collect();
    let return_lines: Vec<CompareLine> = outcomes
        .iter()
        .map(|o| {
            let total: Vec<f64> = o.equity.iter().map(|e| (e / config.portfolio.initial_capital - 1.0) * 100.0).collect();
            CompareLine { label: o.label.clone(), lines: charts::decimate_for_chart(&o.ts_ms, &total) }
        })
        .collect();
    // Each rule set's cumulative funding less the data's: how the rules differ, not their level.
    let actual = outcomes.iter().find(|o| o.label.starts_with("actual")).or(outcomes.first());
    let difference_lines: Vec<CompareLine> = outcomes
        .iter()
        .map(|o| {
            let diff: Vec<f64> = match actual {
                Some(a) if a.ts_ms == o.ts_ms => o.cumulative_funding.iter().zip(&a.cumulative_funding).map(|(f, r)| (f - r) / config.portfolio.initial_capital * 100.0).collect(),
                _ => vec![f64::NAN; o.ts_ms.len()],
            };
            CompareLine { label: o.label.clone(), lines: charts::decimate_for_chart(&o.ts_ms, &diff) }
        })
        .collect();
    let mut images = overlay_images(&[
        (
            "caps_difference.png",
            "Cumulative funding minus actual".into(),
            "Each rule set's cumulative funding less the funding the data actually paid, as a share of initial capital: above zero the rule set would have paid the carry more. The actual line is the zero it is measured from.",
            "funding difference (% of initial capital)",
            &difference_lines,
        ),
        (
            "caps_funding_apr.png",
            "Funding per rule set (trailing 7-day APR)".into(),
            "The sum of each rule set's settlement rates over the trailing 7 days, annualised (× 365/7), so hourly and 8-hourly rules compare directly.",
            "funding APR, trailing 7 days (%)",
            &apr_lines,
        ),
        (
            "caps_cumulative_carry.png",
            "Cumulative carry per rule set".into(),
            "Funding received by the same carry under each rule set, as a share of initial capital.",
            "cumulative funding (% of initial capital)",
            &carry_lines,
        ),
        (
            "caps_return.png",
            "Return per rule set".into(),
            "Equity over initial capital minus one: funding, price moves, costs and any liquidation.",
            "return on initial capital (%)",
            &return_lines,
        ),
    ])?;

    let bars: Vec<(String, f64)> = outcomes.iter().map(|o| (o.label.clone(), o.metrics.funding_apr_over_window * 100.0)).collect();
    let bar_height = 110 + 40 * bars.len() as u32;
    let png = charts::render_png(charts::WIDTH, bar_height, |area| crate::render::study::bar_chart(area, "Funding APR over the window per rule set", "funding APR over window (%)", &bars))?;
    images.insert(0, ChartImage { file: "caps_apr_bars.png", title: "Funding APR per rule set".into(), description: "The funding APR over the window under each rule set, in the same colours as the lines below.", width: charts::WIDTH, height: bar_height, png });

    let symbol = outcomes.first().map(|o| o.metrics.symbol.as_str()).unwrap_or("");
    let quote = crate::render::quote_currency(symbol);
    let mut body = format!("<h1>Funding rules compared: {}</h1>\n", escape(symbol));
    if let Some(first) = outcomes.first() {
        body.push_str(&format!(
            "<p class=\"sub\">{} → {} · {} rule sets · the same carry (initial capital {} {quote}) under each · {}</p>\n",
            escape(&first.metrics.start),
            escape(&first.metrics.end),
            outcomes.len(),
            money(config.portfolio.initial_capital),
            match mode {
                CapsMode::FixedPath => "one path (the carry on the data's funding: its quantities, top-ups and exits) held fixed, each rule set's funding re-priced on it: only funding differs",
                CapsMode::Full => "each rule set simulated in full: the rows include path effects (top-ups, liquidations and the quantities held differ with the funding)",
            }
        ));
        if first.metrics.synthetic {
            body.push_str("<div class=\"banner\">SYNTHETIC data (not market history).</div>\n");
        }
    }
    let heading = match mode {
        CapsMode::FixedPath => "Rule sets side by side, on one fixed path",
        CapsMode::Full => "Rule sets side by side, each simulated in full (path effects included)",
    };
    body.push_str(&format!("<section class=\"table\" id=\"rule-sets\">\n<h2>{heading}</h2>\n<table>\n<tr><th>rule set</th><th class=\"num\">settlements</th><th class=\"num\">funding APR while held</th><th class=\"num\">funding APR over window</th><th class=\"num\">at cap</th><th class=\"num\">at floor</th>"));
    body.push_str(&format!(
        "<th class=\"num\">funding PnL ({quote})</th><th class=\"num\">total PnL ({quote})</th><th class=\"num\">max drawdown</th><th class=\"num\">liquidations</th><th>top-ups</th></tr>\n"
    ));
    for o in outcomes {
        let m = &o.metrics;
        body.push_str(&format!(
            "<tr><th>{}</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td style=\"white-space: nowrap\">{}</td></tr>\n",
            escape(&o.label),
            o.settled.len(),
            pct(m.funding_apr_while_held),
            pct(m.funding_apr_over_window),
            share(o.share_at_cap, o.settled.len()),
            share(o.share_at_floor, o.settled.len()),
            html::compact(m.funding_pnl),
            html::compact(m.final_equity - m.initial_capital),
            pct(m.max_drawdown),
            m.liquidations,
            // The shared path's count on the fixed path; each rule set's dates in full mode.
            match mode {
                CapsMode::FixedPath => o.top_ups.len().to_string(),
                CapsMode::Full => escape(&top_up_schedule(&o.top_ups)),
            }
        ));
    }
    body.push_str("</table>\n<p>Funding APR while held: the sum of settled rates on the side held, per year with the perp open (funding per unit held); over window: the same per year of the window. On the fixed path every row holds the same quantities, so funding PnL differs by the rules alone; in full mode (<code>--full</code>) the top-ups column shows when each rule set's margin ran short, which moves the quantities held after it. Counterfactual rule sets apply each venue's formula, interval, timing and caps to the premium proxy (perp or mark over spot); their levels compare rule sets with each other rather than replicate the venues' printed rates.</p>\n</section>\n");
    for image in &images {
        body.push_str(&html::chart_section(image));
    }
    if !warnings.is_empty() {
        body.push_str("<section class=\"table\" id=\"warnings\">\n<h2>Data notes</h2>\n<ul>\n");
        for w in warnings {
            body.push_str(&format!("<li>{}</li>\n", escape(w)));
        }
        body.push_str("</ul>\n</section>\n");
    }
    Ok((images, html::page(&format!("basis · caps · {symbol}"), &body)))
}

/// `3: 2021-03-01, 2021-11-09, 2024-11-11` (the first three dates), or `none`.
fn top_up_schedule(times: &[i64]) -> String {
    if times.is_empty() {
        return "none".into();
    }
    let dates: Vec<String> = times.iter().take(3).map(|t| crate::time::format_ms(*t).chars().take(10).collect()).collect();
    format!("{}: {}{}", times.len(), dates.join(", "), if times.len() > 3 { ", ..." } else { "" })
}

/// `12 (0.16 %)`: settlements at a limit and their share.
fn share(fraction: f64, settlements: usize) -> String {
    format!("{} ({:.2} %)", (fraction * settlements as f64).round() as usize, fraction * 100.0)
}

/// Every rule set's settlements as one long frame: rule_set, ts (UTC), interval_hours, rate,
/// uncapped_rate, at_limit.
fn settlements_frame(outcomes: &[CapsOutcome]) -> Result<DataFrame> {
    // (rule set, settlement, uncapped rate, at the cap or floor)
    let rows: Vec<(&str, &Settlement, f64, bool)> = outcomes
        .iter()
        .flat_map(|o| (0..o.settled.len()).map(move |k| (o.label.as_str(), &o.settled.funding[k], o.settled.uncapped_rate[k], o.settled.at_limit[k])))
        .collect();
    let column = |name: &str, f: &dyn Fn(&Settlement) -> f64| Column::new(name.into(), rows.iter().map(|(_, s, ..)| f(s)).collect::<Vec<_>>());
    let frame = DataFrame::new(
        rows.len(),
        vec![
            Column::new("rule_set".into(), rows.iter().map(|(l, ..)| *l).collect::<Vec<_>>()),
            Column::new("ts".into(), rows.iter().map(|(_, s, ..)| s.settle_ms).collect::<Vec<_>>())
                .cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)))?,
            column("interval_hours", &|s| s.interval_hours),
            column("rate", &|s| s.rate),
            Column::new("uncapped_rate".into(), rows.iter().map(|(_, _, uncapped, _)| *uncapped).collect::<Vec<_>>()),
            Column::new("at_limit".into(), rows.iter().map(|(.., at_limit)| *at_limit).collect::<Vec<_>>()),
        ],
    )?;
    Ok(frame)
}

/// Run every rule set and write the comparison to `<output_dir>/<name>/`.
pub fn write(config: &Config, rule_sets: &[RuleSet], mode: CapsMode, output_dir: &Path, name: &str, force: bool) -> Result<(PathBuf, Vec<CapsOutcome>, Vec<String>)> {
    let (outcomes, warnings) = run(config, rule_sets, mode)?;
    let (images, page) = render(config, &outcomes, &warnings, mode)?;
    let dir = RunDir::create(output_dir, name, force)?;
    for image in &images {
        dir.write(image.file, &image.png)?;
    }
    let rows: Vec<CapsRow> = outcomes
        .iter()
        .map(|o| CapsRow {
            rule_set: &o.label,
            settlements: o.settled.len(),
            funding_apr_over_window: o.metrics.funding_apr_over_window,
            share_at_cap: o.share_at_cap,
            share_at_floor: o.share_at_floor,
            funding_pnl: o.metrics.funding_pnl,
            total_pnl: o.metrics.final_equity - o.metrics.initial_capital,
            max_drawdown: o.metrics.max_drawdown,
            liquidations: o.metrics.liquidations,
            fees_and_slippage: o.metrics.fees_paid + o.metrics.slippage_paid,
            funding_apr_while_held: o.metrics.funding_apr_while_held,
            top_ups: o.top_ups.len(),
            metrics: &o.metrics,
        })
        .collect();
    let mode_name = match mode {
        CapsMode::FixedPath => "fixed_path",
        CapsMode::Full => "full",
    };
    dir.write("caps.json", serde_json::to_string_pretty(&serde_json::json!({ "mode": mode_name, "rule_sets": rows, "warnings": warnings }))?.as_bytes())?;
    dir.write_parquet("caps_settlements.parquet", &mut settlements_frame(&outcomes)?)?;
    // index.html last, so a folder with it is complete.
    dir.write("index.html", page.as_bytes())?;
    let folder = dir.commit()?;
    Ok((folder, outcomes, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_caps_parse() {
        let base = Preset::load("binance_usdm", Path::new(".")).unwrap();
        let RuleSet::Rules { label, preset } = user_cap("0.04/1h", &base).unwrap() else { panic!("a rule set") };
        assert_eq!(label, "cap ±4 % per 1 h (binance_usdm rules)");
        assert_eq!(preset.funding.interval_hours, 1.0);
        assert_eq!(preset.limits_at("BTCUSDT", 0, 1.0), (Some(0.04), Some(-0.04)));
        let RuleSet::Rules { preset, .. } = user_cap("0.0075", &base).unwrap() else { panic!("a rule set") };
        assert_eq!(preset.funding.interval_hours, 8.0);
        assert_eq!(preset.limits_at("ETHUSDT", 0, 8.0), (Some(0.0075), Some(-0.0075)), "replaces every symbol's cap");
        for bad in ["3%", "0", "1.5", "0.01/0h", "0.01/x", "-0.01"] {
            assert!(user_cap(bad, &base).is_err(), "{bad}");
        }
    }
}

/// The rule sets side by side, as the `caps` command prints them.
pub fn table_text(outcomes: &[CapsOutcome], mode: CapsMode) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        match mode {
            CapsMode::FixedPath => "one path held fixed (the carry on the data's funding), each rule set's funding re-priced on it: only funding differs",
            CapsMode::Full => "each rule set simulated in full: PnL includes path effects (top-ups, liquidations, quantities held)",
        }
    );
    let _ = writeln!(out, "{:<44} {:>11} {:>11} {:>9} {:>9} {:>14} {:>14} {:>9} {:>5} {:>7}", "rule set", "APR held", "APR window", "at cap", "at floor", "funding PnL", "total PnL", "max DD", "liq", "top-ups");
    for o in outcomes {
        let m = &o.metrics;
        let _ = writeln!(
            out,
            "{:<44} {:>10.2}% {:>10.2}% {:>8.2}% {:>8.2}% {:>14.2} {:>14.2} {:>8.2}% {:>5} {:>7}",
            o.label,
            m.funding_apr_while_held * 100.0,
            m.funding_apr_over_window * 100.0,
            o.share_at_cap * 100.0,
            o.share_at_floor * 100.0,
            m.funding_pnl,
            m.final_equity - m.initial_capital,
            m.max_drawdown * 100.0,
            m.liquidations,
            o.top_ups.len()
        );
    }
    if mode == CapsMode::Full {
        let _ = writeln!(out, "fees, slippage, brackets and the liquidation rule are the config's in every row; `backtest --set venue.preset=<id> --set venue.funding=counterfactual` uses the venue's own, so its figures differ by those");
        for o in outcomes {
            let _ = writeln!(out, "  top-ups under {}: {}", o.label, top_up_schedule(&o.top_ups));
        }
    }
    out
}
