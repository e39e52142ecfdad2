//! `basis compare`: several saved runs side by side: overlaid returns and drawdowns, and their
//! metrics in one table. Written like a run, through a temporary folder, to
//! `<output_dir>/<name>/` (or a suffixed name when that exists and `--force` is not given).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rayon::prelude::*;

use super::charts::{self, CompareLine};
use super::html::{self, escape};
use super::{series, ChartImage, SavedRun};
use crate::bail_input;
use crate::output::RunDir;

/// Labels for the runs: their names, made unique with a position suffix where two share one.
fn labels(runs: &[SavedRun]) -> Vec<String> {
    runs.iter()
        .enumerate()
        .map(|(i, run)| {
            let shared = runs.iter().filter(|r| r.run_name == run.run_name).count() > 1;
            if shared { format!("{} (#{})", run.run_name, i + 1) } else { run.run_name.clone() }
        })
        .collect()
}

/// One overlay chart to draw: file, title, description, y-axis label, lines.
pub type OverlaySpec<'a> = (&'static str, String, &'static str, &'a str, &'a [CompareLine]);

/// Draw overlay charts ([`charts::compare_chart`]) in parallel, in order.
pub fn overlay_images(specs: &[OverlaySpec]) -> Result<Vec<ChartImage>> {
    specs
        .par_iter()
        .map(|(file, title, description, y_desc, lines)| {
            let png = charts::render_png(charts::WIDTH, charts::HEIGHT, |area| charts::compare_chart(area, title, y_desc, lines))
                .with_context(|| format!("drawing {file}"))?;
            Ok(ChartImage { file, title: title.clone(), description, width: charts::WIDTH, height: charts::HEIGHT, png })
        })
        .collect()
}

/// Render the comparison charts and page for loaded runs.
pub fn render(runs: &[SavedRun]) -> Result<(Vec<ChartImage>, String)> {
    if runs.len() < 2 {
        bail_input!("compare needs at least two run folders");
    }
    let names = labels(runs);
    let mut returns = Vec::new();
    let mut drawdowns = Vec::new();
    for (run, label) in runs.iter().zip(&names) {
        let ts = run.ledger.ts_ms();
        let equity = run.ledger.column("equity").unwrap_or(&[]);
        let initial = run.config.portfolio.initial_capital;
        let total: Vec<f64> = equity.iter().map(|e| (e / initial - 1.0) * 100.0).collect();
        returns.push(CompareLine { label: label.clone(), lines: charts::decimate_for_chart(ts, &total) });
        let under: Vec<f64> = series::underwater(ts, equity, initial).drawdown.iter().map(|d| d * 100.0).collect();
        drawdowns.push(CompareLine { label: label.clone(), lines: charts::decimate_for_chart(ts, &under) });
    }
    let images = overlay_images(&[
        ("compare_equity.png", "Return on initial capital".into(), "Equity of each run over its own initial capital, minus one.", "return on initial capital (%)", &returns),
        ("compare_drawdown.png", "Drawdown".into(), "Each run's equity below its running peak.", "drawdown (%)", &drawdowns),
    ])?;

    let mut body = String::from("<h1>Comparison of carry backtests</h1>\n");
    body.push_str(&format!("<p class=\"sub\">{} runs: {}</p>\n", runs.len(), escape(&names.join(", "))));
    if runs.iter().any(|r| r.metrics.synthetic) {
        body.push_str("<div class=\"banner\">At least one run used SYNTHETIC data (not market history).</div>\n");
    }
    for image in &images {
        body.push_str(&html::chart_section(image));
    }
    body.push_str("<section class=\"table\" id=\"metrics\">\n<h2>Metrics side by side</h2>\n<table>\n<tr><th>metric</th>");
    for name in &names {
        body.push_str(&format!("<th class=\"num\">{}</th>", escape(name)));
    }
    body.push_str("</tr>\n");
    let tables: Vec<Vec<(String, String)>> =
        runs.iter().map(|r| html::metric_rows(&r.metrics, super::quote_currency(&r.metrics.symbol))).collect();
    for (row, (label, _)) in tables[0].iter().enumerate() {
        body.push_str(&format!("<tr><th>{}</th>", escape(label)));
        for table in &tables {
            let value = table.get(row).map(|r| r.1.as_str()).unwrap_or("");
            body.push_str(&format!("<td class=\"num\">{}</td>", escape(value)));
        }
        body.push_str("</tr>\n");
    }
    body.push_str("<tr><th>Run folder</th>");
    for run in runs {
        body.push_str(&format!("<td class=\"num\">{}</td>", escape(&run.dir.display().to_string())));
    }
    body.push_str("</tr>\n</table>\n</section>\n");
    Ok((images, html::page("basis · comparison", &body)))
}

/// Load runs, render the comparison and write it to `<output_dir>/<name>/`.
pub fn write(run_dirs: &[PathBuf], output_dir: &Path, name: &str, force: bool) -> Result<PathBuf> {
    let runs = run_dirs.iter().map(|d| SavedRun::load(d)).collect::<Result<Vec<_>>>()?;
    let (images, page) = render(&runs)?;
    let dir = RunDir::create(output_dir, name, force)?;
    for image in &images {
        dir.write(image.file, &image.png)?;
    }
    let runs_json: Vec<serde_json::Value> = runs
        .iter()
        .zip(labels(&runs))
        .map(|(r, label)| serde_json::json!({ "label": label, "folder": r.dir.display().to_string(), "metrics": r.metrics }))
        .collect();
    dir.write("compare.json", serde_json::to_string_pretty(&runs_json)?.as_bytes())?;
    // index.html last, so a folder with it is complete.
    dir.write("index.html", page.as_bytes())?;
    dir.commit()
}
