//! `basis caps`: one carry run under several funding rule sets, side by side.
//!
//! The market is loaded and aligned once. Each rule set (a venue preset, or the config's preset
//! with a user cap) turns the same premium series into its own counterfactual settlements
//! ([`crate::venue::funding::counterfactual`]); the run's funding is replaced by them and the carry is
//! simulated again. The files' own settlements run first as the baseline ("actual"). Everything
//! but funding is held constant: fees, slippage, brackets and liquidation fee are the config's in
//! every rule set, so the differences in the table come from the funding rules alone.

use std::path::{Path, PathBuf};

use anyhow::Result;
use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;

use crate::venue::funding::{counterfactual_for, premium_for, Settled};
use crate::venue::{CapRule, Preset};
use crate::config::Config;
use crate::data::align::align_window;
use crate::data::{self, MarketData};
use crate::measure::ledger::FullLedger;
use crate::measure::metrics::Metrics;
use crate::output::RunDir;
use crate::render::charts::{self, CompareLine};
use crate::render::compare::overlay_images;
use crate::render::html::{self, escape, money, pct, plain_number};
use crate::render::{series, ChartImage};
use crate::time::{MS_PER_DAY, MS_PER_HOUR};
use crate::{bail_input, input_error};

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
    /// Settlements in the window: time, rate, interval, uncapped rate, at cap or floor.
    pub settled: Vec<Settled>,
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
    metrics: &'a Metrics,
}

/// Run the carry once per rule set, in parallel.
pub fn run(config: &Config, rule_sets: &[RuleSet]) -> Result<(Vec<CapsOutcome>, Vec<String>)> {
    if config.strategy.instrument != crate::config::InstrumentChoice::Perp {
        crate::bail_input!("`basis caps` runs perp carries for now: set strategy.instrument = \"perp\" (its shocks and rule sets act on the perp and its funding, not on a dated leg's contracts)");
    }
    let market = data::load(&config.data)?;
    let window = crate::app::backtest::window_of(config)?;
    let base = align_window(&market, &window, config.portfolio.staking_apr)?;
    let (premium, premium_source) = premium_for(config.venue.premium_index.as_deref(), config.venue.premium, &base, config.venue.premium_debias, config.venue.premium_debias_days)?;
    let (from_ms, to_ms) = (base.ts_ms[0], base.ts_ms[base.len() - 1]);
    let params = crate::config::engine_params(config);
    let mut warnings = market.warnings.clone();
    warnings.extend(base.coverage_warnings.iter().cloned());
    warnings.push(format!("caps: {premium_source}; fees, slippage and brackets are the config's for every rule set"));
    let outcomes = rule_sets
        .par_iter()
        .map(|rule_set| -> Result<CapsOutcome> {
            let (settled, timeline) = match rule_set {
                RuleSet::Actual => {
                    let symbol = &market.symbol;
                    let f = &market.funding;
                    let settled = (0..f.settle_ms.len())
                        .filter(|&i| f.settle_ms[i] > from_ms && f.settle_ms[i] <= to_ms)
                        .map(|i| {
                            let (cap, floor) = config.venue.limits_at(symbol, f.settle_ms[i], f.interval_hours[i]);
                            Settled {
                                settle_ms: f.settle_ms[i],
                                rate: f.rate[i],
                                interval_hours: f.interval_hours[i],
                                uncapped: f.rate[i],
                                capped: series::at_limit(f.rate[i], cap, floor),
                            }
                        })
                        .collect();
                    (settled, None)
                }
                RuleSet::Rules { preset, .. } => {
                    let (settled, funding) = counterfactual_for(preset, &base, &premium);
                    let swapped = MarketData { funding, funding_derived: true, ..market.clone() };
                    (settled, Some(align_window(&swapped, &window, config.portfolio.staking_apr)?))
                }
            };
            let timeline = timeline.as_ref().unwrap_or(&base);
            let mut ledger = FullLedger::with_capacity(timeline.len());
            let (_, metrics) = super::pipeline::simulate(timeline, &params, &mut ledger);
            let n = settled.len().max(1) as f64;
            let share_at_cap = settled.iter().filter(|s| s.capped && s.rate > 0.0).count() as f64 / n;
            let share_at_floor = settled.iter().filter(|s| s.capped && s.rate < 0.0).count() as f64 / n;
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
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((outcomes, warnings))
}

/// Trailing 7-day funding APR at each settlement: Σ rate over (T − 7 d, T] × 365 / 7, in %.
pub fn trailing_week_apr(settled: &[Settled]) -> (Vec<i64>, Vec<f64>) {
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
pub fn render(config: &Config, outcomes: &[CapsOutcome], warnings: &[String]) -> Result<(Vec<ChartImage>, String)> {
    let apr_lines: Vec<CompareLine> = outcomes
        .iter()
        .map(|o| {
            let (ts, apr) = trailing_week_apr(&o.settled);
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
            "<p class=\"sub\">{} → {} · {} rule sets · the same carry (initial capital {} {quote}) under each; only funding differs</p>\n",
            escape(&first.metrics.start),
            escape(&first.metrics.end),
            outcomes.len(),
            money(config.portfolio.initial_capital)
        ));
        if first.metrics.synthetic {
            body.push_str("<div class=\"banner\">SYNTHETIC data (not market history).</div>\n");
        }
    }
    body.push_str("<section class=\"table\" id=\"rule-sets\">\n<h2>Rule sets side by side</h2>\n<table>\n<tr><th>rule set</th><th class=\"num\">settlements</th><th class=\"num\">funding APR over window</th><th class=\"num\">at cap</th><th class=\"num\">at floor</th>");
    body.push_str(&format!(
        "<th class=\"num\">funding PnL ({quote})</th><th class=\"num\">total PnL ({quote})</th><th class=\"num\">max drawdown</th><th class=\"num\">liquidations</th></tr>\n"
    ));
    for o in outcomes {
        let m = &o.metrics;
        body.push_str(&format!(
            "<tr><th>{}</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
            escape(&o.label),
            o.settled.len(),
            pct(m.funding_apr_over_window),
            share(o.share_at_cap, o.settled.len()),
            share(o.share_at_floor, o.settled.len()),
            html::compact(m.funding_pnl),
            html::compact(m.final_equity - m.initial_capital),
            pct(m.max_drawdown),
            m.liquidations
        ));
    }
    body.push_str("</table>\n<p>Funding APR over window: the sum of settled rates on the side held, per year of the window. Counterfactual rule sets apply each venue's formula, interval, timing and caps to the premium proxy (perp or mark over spot); their levels compare rule sets with each other rather than replicate the venues' printed rates.</p>\n</section>\n");
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

/// `12 (0.16 %)`: settlements at a limit and their share.
fn share(fraction: f64, settlements: usize) -> String {
    format!("{} ({:.2} %)", (fraction * settlements as f64).round() as usize, fraction * 100.0)
}

/// Every rule set's settlements as one long frame: rule_set, ts (UTC), interval_hours, rate,
/// uncapped_rate, at_limit.
fn settlements_frame(outcomes: &[CapsOutcome]) -> Result<DataFrame> {
    let rows: Vec<(&str, &Settled)> = outcomes.iter().flat_map(|o| o.settled.iter().map(move |s| (o.label.as_str(), s))).collect();
    let column = |name: &str, f: &dyn Fn(&Settled) -> f64| Column::new(name.into(), rows.iter().map(|(_, s)| f(s)).collect::<Vec<_>>());
    let frame = DataFrame::new(
        rows.len(),
        vec![
            Column::new("rule_set".into(), rows.iter().map(|(l, _)| *l).collect::<Vec<_>>()),
            Column::new("ts".into(), rows.iter().map(|(_, s)| s.settle_ms).collect::<Vec<_>>())
                .cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)))?,
            column("interval_hours", &|s| s.interval_hours),
            column("rate", &|s| s.rate),
            column("uncapped_rate", &|s| s.uncapped),
            Column::new("at_limit".into(), rows.iter().map(|(_, s)| s.capped).collect::<Vec<_>>()),
        ],
    )?;
    Ok(frame)
}

/// Run every rule set and write the comparison to `<output_dir>/<name>/`.
pub fn write(config: &Config, rule_sets: &[RuleSet], output_dir: &Path, name: &str, force: bool) -> Result<(PathBuf, Vec<CapsOutcome>, Vec<String>)> {
    let (outcomes, warnings) = run(config, rule_sets)?;
    let (images, page) = render(config, &outcomes, &warnings)?;
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
            metrics: &o.metrics,
        })
        .collect();
    dir.write("caps.json", serde_json::to_string_pretty(&serde_json::json!({ "rule_sets": rows, "warnings": warnings }))?.as_bytes())?;
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
pub fn table_text(outcomes: &[CapsOutcome]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "{:<44} {:>11} {:>9} {:>9} {:>14} {:>14} {:>9} {:>5}", "rule set", "funding APR", "at cap", "at floor", "funding PnL", "total PnL", "max DD", "liq");
    for o in outcomes {
        let m = &o.metrics;
        let _ = writeln!(
            out,
            "{:<44} {:>10.2}% {:>8.2}% {:>8.2}% {:>14.2} {:>14.2} {:>8.2}% {:>5}",
            o.label,
            m.funding_apr_over_window * 100.0,
            o.share_at_cap * 100.0,
            o.share_at_floor * 100.0,
            m.funding_pnl,
            m.final_equity - m.initial_capital,
            m.max_drawdown * 100.0,
            m.liquidations
        );
    }
    out
}
