//! The sweep's page: the top configurations by the chosen metric, a heatmap of the metric over
//! two parameters (mean over the others), and the walk-forward's in- and out-of-sample results.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use polars::prelude::*;

use super::spec::Sweep;
use super::walk_forward::WalkForward;
use super::METRIC_NAMES;
use crate::render::charts::{self, CompareLine, Heatmap};
use crate::render::html::{self, escape, pct, plain_number};
use crate::render::series::Polyline;
use crate::render::ChartImage;
use crate::time::format_ms;

/// A parameter column of the results.
#[derive(Debug, Clone)]
pub enum ParamColumn {
    /// A numeric parameter's value per row (NaN where missing).
    Numbers(Vec<f64>),
    /// A text or boolean parameter's value per row, as text.
    Texts(Vec<String>),
}

impl ParamColumn {
    fn display(&self, i: usize) -> String {
        match self {
            ParamColumn::Numbers(v) => plain_number(v[i]),
            ParamColumn::Texts(v) => v[i].clone(),
        }
    }
}

/// The results, column by column.
pub struct ResultsTable {
    /// Configuration id of each row.
    pub ids: Vec<u64>,
    /// Each swept parameter's config path and its values per row.
    pub params: Vec<(String, ParamColumn)>,
    /// Error message per row; empty when the configuration ran.
    pub errors: Vec<String>,
    /// Each swept metric's values per row, keyed by its column name (NaN where missing).
    pub metrics: BTreeMap<&'static str, Vec<f64>>,
    /// Name of the metric that ranks configurations.
    pub metric: String,
    /// Whether a larger `metric` is better.
    pub maximize: bool,
}

impl ResultsTable {
    /// Pull the columns out of `results.parquet`'s frame.
    pub fn from_frame(sweep: &Sweep, frame: &DataFrame) -> Result<ResultsTable> {
        let ids = frame.column("config_id")?.u64()?.iter().map(|v| v.unwrap_or(0)).collect();
        let mut params = Vec::new();
        for p in &sweep.params {
            let column = frame.column(&p.path)?;
            let values = if p.numeric {
                ParamColumn::Numbers(column.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
            } else {
                ParamColumn::Texts(column.str()?.iter().map(|v| v.unwrap_or("").to_string()).collect())
            };
            params.push((p.path.clone(), values));
        }
        let errors = frame.column("error")?.str()?.iter().map(|v| v.unwrap_or("").to_string()).collect();
        let mut metrics = BTreeMap::new();
        for &name in METRIC_NAMES.iter() {
            metrics.insert(name, frame.column(name)?.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect());
        }
        Ok(ResultsTable { ids, params, errors, metrics, metric: sweep.file.metric.clone(), maximize: sweep.file.maximize })
    }

    fn metric(&self, name: &str) -> &[f64] {
        self.metrics.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Row indices of valid configurations, best first by the sweep's metric (ties: lower id).
    pub fn ranked(&self) -> Vec<usize> {
        let values = self.metric(&self.metric);
        let mut rows: Vec<usize> = (0..self.ids.len()).filter(|&i| self.errors[i].is_empty() && values[i].is_finite()).collect();
        rows.sort_by(|&a, &b| {
            let order = values[a].total_cmp(&values[b]);
            let order = if self.maximize { order.reverse() } else { order };
            order.then(self.ids[a].cmp(&self.ids[b]))
        });
        rows
    }

    /// The best configuration's id and metric.
    pub fn best(&self) -> Option<(u64, f64)> {
        self.ranked().first().map(|&i| (self.ids[i], self.metric(&self.metric)[i]))
    }

    /// Cells of the metric's mean over two parameters (the other parameters averaged out).
    pub fn heatmap(&self, x: usize, y: usize) -> (Vec<String>, Vec<String>, Vec<Vec<Option<f64>>>) {
        let values = self.metric(&self.metric);
        let (x_bins, x_of) = bins(&self.params[x].1);
        let (y_bins, y_of) = bins(&self.params[y].1);
        let mut sums = vec![vec![(0.0, 0usize); x_bins.len()]; y_bins.len()];
        for i in 0..self.ids.len() {
            if self.errors[i].is_empty() && values[i].is_finite() {
                let cell = &mut sums[y_of[i]][x_of[i]];
                cell.0 += values[i];
                cell.1 += 1;
            }
        }
        let cells = sums.into_iter().map(|row| row.into_iter().map(|(s, n)| (n > 0).then(|| s / n as f64)).collect()).collect();
        (x_bins, y_bins, cells)
    }
}

/// Labels of a parameter's bins and each row's bin: its distinct values (up to 12), else 10
/// equal-width bins labelled by their centre.
fn bins(column: &ParamColumn) -> (Vec<String>, Vec<usize>) {
    match column {
        ParamColumn::Texts(v) => {
            let mut distinct: Vec<String> = v.clone();
            distinct.sort();
            distinct.dedup();
            let of = v.iter().map(|x| distinct.binary_search(x).unwrap_or(0)).collect();
            (distinct, of)
        }
        ParamColumn::Numbers(v) => {
            let mut distinct: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
            distinct.sort_by(f64::total_cmp);
            distinct.dedup();
            if distinct.len() <= 12 {
                let of = v.iter().map(|x| distinct.iter().position(|d| d == x).unwrap_or(0)).collect();
                (distinct.iter().map(|d| plain_number(*d)).collect(), of)
            } else {
                let (lo, hi) = (distinct[0], distinct[distinct.len() - 1]);
                let width = (hi - lo) / 10.0;
                let of = v.iter().map(|x| (((x - lo) / width).floor() as usize).min(9)).collect();
                ((0..10).map(|k| plain_number(lo + width * (k as f64 + 0.5))).collect(), of)
            }
        }
    }
}

fn metric_format(name: &str) -> fn(f64) -> String {
    match name {
        "sharpe" | "sortino" | "calmar" => |v| format!("{v:.2}"),
        "trades" | "rebalances" | "margin_top_ups" | "liquidations" | "settlements_held" => |v| format!("{v:.0}"),
        "final_equity" | "funding_pnl" | "fees_paid" | "slippage_paid" | "staking_earned" | "borrow_paid" | "liquidation_loss" | "turnover" => {
            |v| format!("{v:.0}")
        }
        "max_drawdown_duration_days" | "years" => |v| format!("{v:.1}"),
        _ => |v| format!("{:+.2} %", v * 100.0),
    }
}

/// Render the sweep's charts and page.
pub fn render(
    sweep: &Sweep,
    table: &ResultsTable,
    walk: Option<&WalkForward>,
    configurations: u64,
    failed: u64,
    timelines: usize,
) -> Result<(Vec<ChartImage>, String)> {
    let metric = sweep.file.metric.as_str();
    let fmt = metric_format(metric);
    let mut images = Vec::new();
    let pair = match &sweep.file.heatmap {
        Some(pair) => Some((
            table.params.iter().position(|p| p.0 == pair[0]).unwrap_or(0),
            table.params.iter().position(|p| p.0 == pair[1]).unwrap_or(1),
        )),
        None if table.params.len() >= 2 => Some((0, 1)),
        None => None,
    };
    if let Some((x, y)) = pair {
        let (x_labels, y_labels, cells) = table.heatmap(x, y);
        let title = format!("Mean {metric} by {} and {}", table.params[x].0, table.params[y].0);
        let value_desc = format!("mean {metric}");
        // Centred on 0 when values have both signs (gain/loss), else on their mean so that
        // better and worse cells differ in colour.
        let flat: Vec<f64> = cells.iter().flatten().flatten().copied().filter(|v| v.is_finite()).collect();
        let straddles = flat.iter().any(|v| *v < 0.0) && flat.iter().any(|v| *v > 0.0);
        let centre = if straddles { 0.0 } else { flat.iter().sum::<f64>() / flat.len().max(1) as f64 };
        // Around a mean, full colour only 25 % of it away: a spread of a few percent is noise
        // across configurations and is drawn pale, not as signal.
        let min_half_range = if straddles { 0.0 } else { 0.25 * centre.abs() };
        let height = (170 + 44 * y_labels.len() as u32).clamp(360, 900);
        let map = Heatmap {
            title: &title,
            x_desc: &table.params[x].0,
            y_desc: &table.params[y].0,
            x_labels: &x_labels,
            y_labels: &y_labels,
            cells: &cells,
            value_desc: &value_desc,
            centre,
            higher_is_better: sweep.file.maximize,
            min_half_range,
            format: fmt,
        };
        let png = charts::render_png(charts::WIDTH, height, |area| charts::value_heatmap(&map, area)).context("drawing the heatmap")?;
        images.push(ChartImage {
            file: "sweep_heatmap.png",
            title: title.clone(),
            description: "Each cell is the mean of the metric over every configuration with those two values (the other parameters averaged out). Colours run from red (worse) to green (better) around 0, or around the mean when every cell has the same sign, full colour at 25 % of the mean away from it (or the largest difference, if larger), so a few percent between cells stays pale. Grey: no valid configuration.",
            width: charts::WIDTH,
            height,
            png,
        });
    }
    if let Some(walk) = walk {
        let k = METRIC_NAMES.iter().position(|m| *m == metric).unwrap_or(0);
        let line = |f: &dyn Fn(&super::walk_forward::Window) -> f64| -> Vec<Polyline> {
            vec![walk.windows.iter().map(|w| (w.out_of_sample.0, f(w))).collect()]
        };
        let scale = if fmt(1.0).contains('%') { 100.0 } else { 1.0 };
        let lines = vec![
            CompareLine { label: format!("in sample ({metric} of the chosen configuration)"), lines: line(&|w| w.in_sample_metrics[k] * scale) },
            CompareLine { label: format!("out of sample ({metric}, same configuration)"), lines: line(&|w| w.out_of_sample_metrics[k] * scale) },
        ];
        let title = format!("Walk-forward: {metric} in sample vs out of sample");
        let y_desc = if scale == 100.0 { format!("{metric} (%)") } else { metric.to_string() };
        let png = charts::render_png(charts::WIDTH, charts::HEIGHT, |area| charts::compare_chart(area, &title, &y_desc, &lines)).context("drawing the walk-forward chart")?;
        images.push(ChartImage {
            file: "walk_forward.png",
            title,
            description: "Per window, placed at the out-of-sample start: the best in-sample value of the metric, and what the same configuration did on the next, unseen window.",
            width: charts::WIDTH,
            height: charts::HEIGHT,
            png,
        });
    }

    let mut body = format!("<h1>Sweep: {}</h1>\n", escape(&sweep.file.name));
    body.push_str(&format!(
        "<p class=\"sub\">{} configurations ({} mode, {} parameters), {} invalid · {} aligned market timeline(s) shared · ranked by {} ({})</p>\n",
        configurations,
        match sweep.file.mode {
            super::spec::SweepMode::Grid => "grid",
            super::spec::SweepMode::Random => "random",
        },
        sweep.params.len(),
        failed,
        timelines,
        escape(metric),
        if sweep.file.maximize { "higher is better" } else { "lower is better" }
    ));
    let ranked = table.ranked();
    let shown = ["total_return", "apr", "sharpe", "max_drawdown", "funding_apr_over_window", "liquidations"];
    body.push_str(&format!("<section class=\"table\" id=\"top\">\n<h2>Top {} configurations by {}</h2>\n<table>\n<tr><th class=\"num\">rank</th><th class=\"num\">id</th>", sweep.file.top.min(ranked.len()), escape(metric)));
    for (name, _) in &table.params {
        // The field's last part, the full path on hover: the table fits the page.
        let short = name.rsplit('.').next().unwrap_or(name);
        body.push_str(&format!("<th title=\"{}\">{}</th>", escape(name), escape(&short.replace('_', " "))));
    }
    let mut metric_columns: Vec<&str> = vec![metric];
    metric_columns.extend(shown.iter().filter(|m| **m != metric));
    for m in &metric_columns {
        body.push_str(&format!("<th class=\"num\">{}</th>", escape(m)));
    }
    body.push_str("</tr>\n");
    for (rank, &i) in ranked.iter().take(sweep.file.top).enumerate() {
        body.push_str(&format!("<tr><td class=\"num\">{}</td><td class=\"num\">{}</td>", rank + 1, table.ids[i]));
        for (_, column) in &table.params {
            body.push_str(&format!("<td>{}</td>", escape(&column.display(i))));
        }
        for m in &metric_columns {
            body.push_str(&format!("<td class=\"num\">{}</td>", escape(&metric_format(m)(table.metric(m)[i]))));
        }
        body.push_str("</tr>\n");
    }
    body.push_str("</table>\n<p>Every configuration, with all metrics, is in results.parquet (one row per configuration; `error` is empty for valid ones).</p>\n</section>\n");
    if failed > 0 {
        let first = table.errors.iter().find(|e| !e.is_empty()).cloned().unwrap_or_default();
        body.push_str(&format!("<div class=\"banner\">{failed} configuration(s) were invalid and have no metrics; the first says: {}</div>\n", escape(&first)));
    }
    for image in &images {
        body.push_str(&html::chart_section(image));
    }
    if let Some(walk) = walk {
        let k = METRIC_NAMES.iter().position(|m| *m == metric).unwrap_or(0);
        let r = METRIC_NAMES.iter().position(|m| *m == "total_return").unwrap_or(0);
        let (is_mean, oos_mean) = walk.means();
        body.push_str(&format!(
            "<section class=\"table\" id=\"walk-forward\">\n<h2>Walk-forward</h2>\n<p>{} windows. Mean {metric}: in sample {}, out of sample {}. Out-of-sample returns compounded: {}.</p>\n<table>\n<tr><th>in sample</th><th>out of sample</th><th class=\"num\">chosen id</th><th>parameters</th><th class=\"num\">{metric} in</th><th class=\"num\">{metric} out</th><th class=\"num\">return in</th><th class=\"num\">return out</th></tr>\n",
            walk.windows.len(),
            escape(&fmt(is_mean)),
            escape(&fmt(oos_mean)),
            pct(walk.stitched_out_of_sample_return()),
        ));
        for w in &walk.windows {
            let params: Vec<String> = sweep.params.iter().zip(&w.best_values).map(|(p, v)| format!("{} = {}", p.path, super::spec::value_text(v))).collect();
            body.push_str(&format!(
                "<tr><td class=\"time\">{}<br>→ {}</td><td class=\"time\">{}<br>→ {}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
                escape(&html::short_time(&format_ms(w.in_sample.0))),
                escape(&html::short_time(&format_ms(w.in_sample.1))),
                escape(&html::short_time(&format_ms(w.out_of_sample.0))),
                escape(&html::short_time(&format_ms(w.out_of_sample.1))),
                w.best_id,
                escape(&params.join(", ")),
                escape(&fmt(w.in_sample_metrics[k])),
                escape(&fmt(w.out_of_sample_metrics[k])),
                pct(w.in_sample_metrics[r]),
                pct(w.out_of_sample_metrics[r]),
            ));
        }
        body.push_str("</table>\n</section>\n");
    }
    Ok((images, html::page(&format!("basis · sweep · {}", sweep.file.name), &body)))
}
