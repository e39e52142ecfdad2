//! A perp-perp book's report: the book's metrics table, a table per pair splitting its PnL into
//! the two funding streams, the mark spread and the costs, and three charts (cumulative PnL by
//! cause, each leg's distance to liquidation with the transfers between the accounts, and the
//! trailing funding spread the decisions read), in one self-contained `index.html` with the
//! PNGs beside it.

use anyhow::Result;
use plotters::prelude::*;

use super::draw::{decimate_for_chart, draw_err, draw_level, draw_series_lines, panels, render_png, time_chart, time_span, value_range, Area, Legend, HEIGHT, WIDTH};
use super::html::{self, escape, money, pct};
use super::{ChartImage, ReportFile};
use crate::measure::metrics::Metrics;
use crate::sim::perp_perp::PerpPerpRow;

/// One pair as the report draws it.
pub struct PairView<'a> {
    /// The pair's name.
    pub name: &'a str,
    /// Each leg's account and venue (leg b's venues joined with `+` when it rotates).
    pub accounts: [(String, String); 2],
    /// Its rows.
    pub rows: &'a [PerpPerpRow],
    /// The top-up threshold the transfers trigger at, decimal of the mark.
    pub top_up_distance: f64,
}

/// What a perp-perp report draws from.
pub struct PerpPerpReport<'a> {
    /// The run's folder name.
    pub run_name: &'a str,
    /// The book's measures.
    pub metrics: &'a Metrics,
    /// The pairs.
    pub pairs: Vec<PairView<'a>>,
    /// Data findings.
    pub warnings: &'a [String],
}

type Chart = (&'static str, &'static str, &'static str, fn(&PairView, &Area) -> Result<()>);

/// The charts, drawn once per pair (file names prefixed by the pair's index after the first).
const CHARTS: [Chart; 3] = [
    ("pp_pnl.png", "PnL by cause", "Cumulative PnL of the pair, split: the funding each leg received (+) or paid (−), the mark spread (both legs' price PnL together: the two venues' marks moving apart), and costs (fees, slippage, transfer fees and liquidation). The parts add up to the total, the change in equity.", pnl_chart),
    ("pp_distance.png", "Distance to liquidation per leg", "How far each leg's mark can move against it before its venue liquidates it, capped at 100 %, with the threshold at which margin is sent across from the other account.", distance_chart),
    ("pp_spread.png", "Trailing funding spread", "Leg b's trailing funding less leg a's, each summed over the same hours and annualised by the hours it covers (an hourly venue against an 8-hourly one compares like with like). Above zero, long a / short b earns the spread.", spread_chart),
];

fn cumulative(rows: &[PerpPerpRow], value: impl Fn(&PerpPerpRow) -> f64) -> Vec<f64> {
    let mut sum = 0.0;
    rows.iter().map(|r| {
        sum += value(r);
        sum
    }).collect()
}

fn pnl_chart(pair: &PairView, area: &Area) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let ts: Vec<i64> = pair.rows.iter().map(|r| r.ts_ms).collect();
    let series = [
        (format!("funding a ({})", pair.accounts[0].0), cumulative(pair.rows, |r| r.funding[0])),
        (format!("funding b ({})", pair.accounts[1].0), cumulative(pair.rows, |r| r.funding[1])),
        ("mark spread (price a + b)".to_string(), cumulative(pair.rows, |r| r.price_pnl[0] + r.price_pnl[1])),
        ("costs and liquidation".to_string(), cumulative(pair.rows, |r| r.fees + r.slippage + r.liquidation)),
        ("total (change in equity)".to_string(), cumulative(pair.rows, |r| r.pnl_total())),
    ];
    let lines: Vec<_> = series.iter().map(|(_, v)| decimate_for_chart(&ts, v)).collect();
    let y = value_range(lines.iter().flatten(), &[0.0]);
    let (plot, side) = panels(area, &format!("{}: cumulative PnL by cause", pair.name))?;
    let mut chart = time_chart(&plot, "cumulative PnL (quote currency)", time_span(&ts), y)?;
    let mut legend = Legend::default();
    for (k, ((label, _), line)) in series.iter().zip(&lines).enumerate() {
        draw_series_lines(&mut chart, &mut legend, line, k, label)?;
    }
    legend.draw(&side)
}

fn distance_chart(pair: &PairView, area: &Area) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let ts: Vec<i64> = pair.rows.iter().map(|r| r.ts_ms).collect();
    let distance = |k: usize| -> Vec<f64> {
        pair.rows
            .iter()
            .map(|r| {
                let d = crate::sim::margin::liquidation_distance(r.qty[k], r.liquidation_price[k], r.mark[k]);
                if d.is_nan() { f64::NAN } else { (d * 100.0).min(100.0) }
            })
            .collect()
    };
    let lines = [decimate_for_chart(&ts, &distance(0)), decimate_for_chart(&ts, &distance(1))];
    let (plot, side) = panels(area, &format!("{}: each leg's distance to liquidation", pair.name))?;
    let mut chart = time_chart(&plot, "adverse move to liquidation (%, capped at 100)", time_span(&ts), (0.0, 105.0))?;
    let mut legend = Legend::default();
    for k in 0..2 {
        draw_series_lines(&mut chart, &mut legend, &lines[k], k, &format!("leg {} ({}, {})", ["a", "b"][k], pair.accounts[k].0, pair.accounts[k].1))?;
    }
    draw_level(&mut chart, &mut legend, time_span(&ts), pair.top_up_distance * 100.0, RGBColor(179, 0, 0), "margin sent across below this")?;
    legend.draw(&side)
}

fn spread_chart(pair: &PairView, area: &Area) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let ts: Vec<i64> = pair.rows.iter().map(|r| r.ts_ms).collect();
    let spread: Vec<f64> = pair.rows.iter().map(|r| r.spread_apr * 100.0).collect();
    let lines = decimate_for_chart(&ts, &spread);
    let y = value_range(lines.iter(), &[0.0]);
    let (plot, side) = panels(area, &format!("{}: trailing funding spread, b − a", pair.name))?;
    let mut chart = time_chart(&plot, "funding spread (% APR)", time_span(&ts), y)?;
    let mut legend = Legend::default();
    draw_level(&mut chart, &mut legend, time_span(&ts), 0.0, RGBColor(120, 120, 120), "zero")?;
    draw_series_lines(&mut chart, &mut legend, &lines, 0, if lines.is_empty() { "needs a lookback of settlements" } else { "apr(b) − apr(a)" })?;
    legend.draw(&side)
}

fn file_name(k: usize, base: &str) -> String {
    if k == 0 { base.to_string() } else { format!("{}_{}", base.trim_end_matches(".png"), k + 1) + ".png" }
}

/// Render the report: one PNG per chart and pair, and `index.html`.
pub fn render(input: &PerpPerpReport) -> Result<Vec<ReportFile>> {
    super::draw::ensure_font()?;
    let mut files = Vec::new();
    let mut body = format!("<h1>{}</h1>\n<p>A perp-vs-perp book: each pair long one venue's perp and short another's on the same coin, each leg margined, paid funding and liquidated by its own venue's rules.</p>\n", escape(input.run_name));
    if !input.warnings.is_empty() {
        body.push_str("<section><h2>Warnings</h2><ul class=\"warn\">");
        for w in input.warnings {
            body.push_str(&format!("<li>{}</li>", escape(w)));
        }
        body.push_str("</ul></section>\n");
    }
    body.push_str("<section class=\"table\"><h2>Metrics</h2><table>");
    for (label, value) in html::metric_rows(input.metrics, super::quote_currency(&input.metrics.symbol)) {
        body.push_str(&format!("<tr><th>{}</th><td>{}</td></tr>", escape(&label), escape(&value)));
    }
    body.push_str("</table></section>\n");
    for (k, pair) in input.pairs.iter().enumerate() {
        let total = |f: &dyn Fn(&PerpPerpRow) -> f64| pair.rows.iter().map(f).sum::<f64>();
        let rows = [
            (format!("Funding, leg a ({}, {})", pair.accounts[0].0, pair.accounts[0].1), total(&|r| r.funding[0])),
            (format!("Funding, leg b ({}, {})", pair.accounts[1].0, pair.accounts[1].1), total(&|r| r.funding[1])),
            ("Price, leg a".to_string(), total(&|r| r.price_pnl[0])),
            ("Price, leg b".to_string(), total(&|r| r.price_pnl[1])),
            ("Mark spread (price a + b)".to_string(), total(&|r| r.price_pnl[0] + r.price_pnl[1])),
            ("Fees (trading and transfers)".to_string(), total(&|r| r.fees)),
            ("Slippage".to_string(), total(&|r| r.slippage)),
            ("Liquidation".to_string(), total(&|r| r.liquidation)),
            ("Change in equity".to_string(), total(&|r| r.pnl_total())),
        ];
        let first = pair.rows.first().map(|r| r.equity - r.pnl_total()).unwrap_or(f64::NAN);
        body.push_str(&format!("<section class=\"table\"><h2>{}: PnL by cause</h2><table>", escape(pair.name)));
        for (label, value) in rows {
            body.push_str(&format!("<tr><th>{}</th><td>{}</td><td>{}</td></tr>", escape(&label), money(value), pct(value / first)));
        }
        body.push_str("</table></section>\n");
        for (file, title, description, draw) in CHARTS {
            let png = render_png(WIDTH, HEIGHT, |area| draw(pair, area))?;
            let name = file_name(k, file);
            let chart = ChartImage { file, title: format!("{}: {title}", pair.name), description, width: WIDTH, height: HEIGHT, png };
            body.push_str(&html::chart_section(&chart));
            files.push(ReportFile { name, bytes: chart.png });
        }
    }
    files.push(ReportFile { name: "index.html".into(), bytes: html::page(&format!("{} (perp-perp)", input.run_name), &body).into_bytes() });
    Ok(files)
}

/// The files [`render`] writes for a book of `pairs` pairs.
pub fn file_names(pairs: usize) -> Vec<String> {
    let mut names: Vec<String> = (0..pairs).flat_map(|k| CHARTS.iter().map(move |c| file_name(k, c.0))).collect();
    names.push("index.html".into());
    names
}
