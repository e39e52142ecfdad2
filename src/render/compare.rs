//! `basis compare`: several saved runs side by side: overlaid returns and drawdowns, and their
//! metrics in one table. A book's folder (a portfolio run) compares as its book: its ledger, its
//! book metrics and its capital. Written like a run, through a temporary folder, to
//! `<output_dir>/<name>/` (or a suffixed name when that exists and `--force` is not given).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rayon::prelude::*;

use super::charts::{self, CompareLine};
use super::html::{self, escape};
use super::{series, ChartImage, SavedRun};
use crate::measure::ledger::FullLedger;
use crate::measure::metrics::Metrics;

/// What a comparison reads of a run folder: a single run's, or a book's as one run.
pub struct ComparedRun {
    /// The folder it was read from.
    pub dir: PathBuf,
    /// The run's name (`run_name` in its manifest, else the folder name).
    pub run_name: String,
    /// The per-step ledger (a book's: the book's rows).
    pub ledger: FullLedger,
    /// Its metrics (a book's: the book's own, `book` in its `metrics.json`).
    pub metrics: Metrics,
    /// Its initial capital, quote currency.
    pub initial_capital: f64,
}

impl ComparedRun {
    /// Read a run folder written by `basis backtest`, of one pair or of a book (a folder with
    /// `legs.parquet`).
    pub fn load(dir: &Path) -> Result<ComparedRun> {
        if !dir.join("legs.parquet").is_file() {
            let run = SavedRun::load(dir)?;
            let initial_capital = run.config.portfolio.initial_capital;
            return Ok(ComparedRun { dir: run.dir, run_name: run.run_name, ledger: run.ledger, metrics: run.metrics, initial_capital });
        }
        let manifest_path = dir.join("manifest.json");
        let manifest: serde_json::Value = std::fs::read_to_string(&manifest_path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .ok_or_else(|| crate::input_error!("{} has no readable manifest.json, so it is not a complete basis run; re-run the book", dir.display()))?;
        let run_name = manifest.get("run_name").and_then(|v| v.as_str()).map(str::to_string).unwrap_or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        let metrics_path = dir.join("metrics.json");
        let text = std::fs::read_to_string(&metrics_path).map_err(|err| crate::input_error!("cannot read {}: {err}", metrics_path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|err| crate::input_error!("{}: not valid JSON ({err}); re-run the book", metrics_path.display()))?;
        let metrics: Metrics = value
            .get("book")
            .cloned()
            .ok_or_else(|| crate::input_error!("{}: a book's metrics hold a `book` section, and this one has none; re-run the book", metrics_path.display()))
            .and_then(|book| serde_json::from_value(book).map_err(|err| crate::input_error!("{}: `book`: {err}; re-run the book", metrics_path.display())))?;
        let ledger = super::read_ledger_bounded(&dir.join("ledger.parquet"))?;
        let initial_capital = metrics.initial_capital;
        Ok(ComparedRun { dir: dir.to_path_buf(), run_name, ledger, metrics, initial_capital })
    }
}
use crate::bail_input;
use crate::output::RunDir;

/// Labels for the runs: their names, made unique with a position suffix where two share one.
fn labels(runs: &[ComparedRun]) -> Vec<String> {
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
pub fn render(runs: &[ComparedRun]) -> Result<(Vec<ChartImage>, String)> {
    if runs.len() < 2 {
        bail_input!("compare needs at least two run folders");
    }
    let names = labels(runs);
    let mut returns = Vec::new();
    let mut drawdowns = Vec::new();
    for (run, label) in runs.iter().zip(&names) {
        let ts = run.ledger.ts_ms();
        let equity = run.ledger.column("equity").unwrap_or(&[]);
        let initial = run.initial_capital;
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
pub fn write(run_dirs: &[PathBuf], output_dir: &Path, name: &str, force: bool) -> Result<(PathBuf, String)> {
    let runs = run_dirs.iter().map(|d| ComparedRun::load(d)).collect::<Result<Vec<_>>>()?;
    let table = text_table(&runs);
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
    Ok((dir.commit()?, table))
}

/// The runs' headline figures as a terminal table: APR, Sharpe, maximum drawdown, round trips
/// (exits), the share of the window a carry was held, and the costs paid (fees, slippage and
/// borrow) as a share of the initial capital.
pub fn text_table(runs: &[ComparedRun]) -> String {
    let labels = labels(runs);
    let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(3).max(3);
    let mut out = format!("  {:<width$}  {:>8}  {:>6}  {:>8}  {:>11}  {:>9}  {:>7}\n", "run", "APR", "Sharpe", "max DD", "round trips", "in market", "costs");
    for (run, label) in runs.iter().zip(&labels) {
        let m = &run.metrics;
        let costs: f64 = ["fees", "slippage", "borrow"].iter().map(|k| -m.pnl.get(*k).copied().unwrap_or(0.0)).sum();
        let in_market = if m.years > 0.0 { m.years_held / m.years } else { 0.0 };
        out.push_str(&format!(
            "  {:<width$}  {:>+7.2}%  {:>6.2}  {:>+7.2}%  {:>11}  {:>8.1}%  {:>6.2}%\n",
            label,
            m.apr * 100.0,
            m.sharpe,
            m.max_drawdown * 100.0,
            m.exits,
            in_market * 100.0,
            costs / run.initial_capital * 100.0
        ));
    }
    out
}
