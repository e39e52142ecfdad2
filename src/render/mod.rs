//! Reports: the charts and the self-contained `index.html` of a run, and the comparison of runs.
//!
//! A report is rendered from a [`ReportInput`]: the ledger, the settlements, the metrics and the
//! config of one run. A backtest builds it in memory; `basis report <run-dir>` rebuilds it from
//! the saved files ([`SavedRun`]), so both give the same report. Rendering returns the files as
//! bytes ([`render`]); the caller decides where they go, always through a temporary path.

pub mod book;
pub mod charts;
pub mod draw;
pub mod study;
pub mod tearsheet;
pub mod compare;
pub mod html;
pub mod interactive;
pub mod perp_perp;
pub mod series;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::*;
use rayon::prelude::*;

use crate::config::{Config, TopUpSource};
use crate::data::quality::StaleSpan;
use crate::measure::ledger::{settlements_from_frame, FullLedger, FundingPayment};
use crate::measure::metrics::Metrics;
use crate::{bail_input, input_error};

/// Everything a run's report is drawn from.
#[derive(Clone, Copy)]
pub struct ReportInput<'a> {
    /// The run's folder name.
    pub run_name: &'a str,
    /// The run's per-step ledger (`ledger.parquet`).
    pub ledger: &'a FullLedger,
    /// Every settlement in the window, held or not.
    pub settlements: &'a [FundingPayment],
    /// The run's metrics (`metrics.json`).
    pub metrics: &'a Metrics,
    /// The config the run used.
    pub config: &'a Config,
    /// Data repairs and findings from loading.
    pub warnings: &'a [String],
    /// Runs of steps whose spot close was stale.
    pub stale_spans: &'a [StaleSpan],
    /// Whether those steps were masked from decisions (liquidation checks still ran on them).
    pub stale_spot_masked: bool,
}

impl ReportInput<'_> {
    /// Starting capital, quote currency.
    pub fn initial_capital(&self) -> f64 {
        self.config.portfolio.initial_capital
    }

    /// The quote currency, read off the symbol (`BTCUSDT` -> `USDT`); "quote" when unknown.
    pub fn quote_currency(&self) -> &'static str {
        quote_currency(&self.metrics.symbol)
    }

    /// Cap and floor of each settlement (config override, else the venue preset's rule for the
    /// symbol and date), in settlement order.
    pub fn settlement_limits(&self) -> Vec<(Option<f64>, Option<f64>)> {
        self.settlements.iter().map(|s| self.config.venue.limits_at(&self.metrics.symbol, s.settlement.settle_ms, s.settlement.interval_hours)).collect()
    }

    /// Whether any cap or floor is known for the run.
    pub fn has_limits(&self) -> bool {
        self.settlement_limits().iter().any(|(c, f)| c.is_some() || f.is_some())
    }

    /// Distance to liquidation below which margin is topped up, if top-ups are on.
    pub fn top_up_distance(&self) -> Option<f64> {
        (self.config.portfolio.top_up_source != TopUpSource::None && self.config.portfolio.top_up_distance > 0.0)
            .then_some(self.config.portfolio.top_up_distance)
    }

    /// Settlements whose rate sits at their cap or floor.
    pub fn capped_settlements(&self) -> usize {
        self.settlements.iter().zip(self.settlement_limits()).filter(|(s, (cap, floor))| series::at_limit(s.settlement.rate, *cap, *floor)).count()
    }
}

/// The quote currency of a symbol such as `BTCUSDT` or `ETH-USD`.
pub fn quote_currency(symbol: &str) -> &'static str {
    let upper = symbol.to_ascii_uppercase();
    for quote in ["USDT", "USDC", "FDUSD", "BUSD", "USD"] {
        if upper.ends_with(quote) {
            return quote;
        }
    }
    "quote"
}

/// One rendered chart.
pub struct ChartImage {
    /// File name in the run folder, e.g. `equity.png`.
    pub file: &'static str,
    /// Heading in the HTML.
    pub title: String,
    /// What the chart shows and how to read it (plain text).
    pub description: &'static str,
    /// Image width, pixels.
    pub width: u32,
    /// Image height, pixels.
    pub height: u32,
    /// The PNG-encoded image.
    pub png: Vec<u8>,
}

/// A chart of a run: file, heading, description, height and drawing function.
type ChartSpec = (&'static str, &'static str, &'static str, u32, fn(&ReportInput, &charts::Area) -> Result<()>);

/// The charts of a run report, in page order.
pub fn chart_specs(input: &ReportInput) -> Vec<ChartSpec> {
    let years = series::yearly_from_monthly(&series::monthly_returns(
        input.ledger.ts_ms(),
        input.ledger.column("equity").unwrap_or(&[]),
        input.initial_capital(),
    ))
    .len();
    let mut specs: Vec<ChartSpec> = vec![
        ("equity.png", "Equity", "Equity of the carry, with markers at entries, exits, margin top-ups and liquidations (the image also marks rebalances, and draws the same capital held in spot with no hedge), and below it the carry alone (funding, staking and borrow, cumulative) on its own scale.", charts::HEIGHT + 260, charts::equity),
        ("pnl_components.png", "PnL by component", "Cumulative PnL split by cause. Basis is the spot and perp price PnL together; for a hedged carry it stays near zero. The components add up to the total, which is the change in equity.", charts::HEIGHT, charts::pnl_components),
        ("drawdown.png", "Drawdown", "Equity below its running peak. In the image, the dot marks the deepest drawdown and the shaded band the longest time spent below a previous peak.", charts::HEIGHT, charts::drawdown),
        ("funding.png", "Funding rate", "The rate of every settlement in the window, per settlement interval, with the venue's cap and floor. Circles mark settlements at the cap or floor.", charts::HEIGHT, charts::funding),
        ("basis.png", "Basis", "Perp last price over spot close, minus one, in basis points, at each step. Grey bands are stale-spot spans (spot outages), where the basis is not real.", charts::HEIGHT, charts::basis),
        ("margin.png", "Distance to liquidation", "How far the mark can move against the perp before it is liquidated, with the margin top-up threshold. Gaps are times with no perp position.", charts::HEIGHT, charts::margin),
        ("carry_apr.png", "Rolling 30-day carry", "Over the trailing 30 days: the funding rate the perp position earned (sum of side × rate), and carry income (funding, staking, borrow) over equity, both annualised.", charts::HEIGHT, charts::carry_apr),
        ("rolling_sharpe.png", "Rolling 90-day Sharpe", "The Sharpe ratio of the trailing 90 daily returns (mean over deviation, × √365; the risk-free rate is the cash rate where [data.cash_rate] gives one, else 0), from the 90th day on.", charts::HEIGHT, tearsheet::rolling_sharpe_chart),
        ("return_distribution.png", "Distribution of daily returns", "A histogram of the daily returns (each UTC day's closing equity over the previous day's) against the normal curve with the same mean and deviation: mass beyond the curve is fat tails.", charts::HEIGHT, tearsheet::return_distribution_chart),
        ("monthly_funding.png", "Funding per month", "Funding received (green) or paid (red) in each calendar month (UTC), in the quote currency.", charts::HEIGHT, tearsheet::monthly_funding_chart),
        ("monthly_returns.png", "Monthly returns", "Return of each calendar month (UTC) on the equity at the previous month end, and each year's compounded return.", charts::heatmap_height(years), charts::monthly_heatmap),
    ];
    if input.config.data.cash_rate.is_some() {
        // After the rolling Sharpe: the carry measured over cash.
        specs.insert(8, ("carry_vs_cash.png", "Carry vs the cash rate", "The carry's return over the trailing 30 days, annualised, against the cash rate ([data.cash_rate]): above the line the carry earned more than cash. Sharpe and Sortino in the metrics use the cash rate as the risk-free rate.", charts::HEIGHT, tearsheet::rolling_apr_vs_cash_chart));
    }
    specs
}

/// Render every chart (in parallel) as PNG.
pub fn render_charts(input: &ReportInput) -> Result<Vec<ChartImage>> {
    if input.ledger.is_empty() {
        bail_input!("the run has no ledger rows: nothing to draw");
    }
    chart_specs(input)
        .into_par_iter()
        .map(|(file, title, description, height, draw)| {
            let png = charts::render_png(charts::WIDTH, height, |area| draw(input, area)).with_context(|| format!("drawing {file}"))?;
            Ok(ChartImage { file, title: title.to_string(), description, width: charts::WIDTH, height, png })
        })
        .collect()
}

/// A file of a rendered report.
pub struct ReportFile {
    /// File name in the run folder, e.g. `index.html`.
    pub name: String,
    /// The file's contents.
    pub bytes: Vec<u8>,
}

/// Render a run's report: one PNG per chart and `index.html` (self-contained: the charts are
/// embedded as base64 PNG, CSS inline, no script, nothing fetched).
pub fn render(input: &ReportInput) -> Result<Vec<ReportFile>> {
    let charts = render_charts(input)?;
    let page = html::run_page(input, &charts);
    let mut files: Vec<ReportFile> = charts.into_iter().map(|c| ReportFile { name: c.file.to_string(), bytes: c.png }).collect();
    files.push(ReportFile { name: "index.html".into(), bytes: page.into_bytes() });
    Ok(files)
}

/// The names of the files [`render`] writes.
pub fn report_file_names(input: &ReportInput) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = chart_specs(input).iter().map(|spec| spec.0).collect();
    names.push("index.html");
    names
}

/// A run read back from its folder.
pub struct SavedRun {
    /// The run folder it was read from.
    pub dir: PathBuf,
    /// The run's name: `run_name` in `manifest.json`, else the folder name.
    pub run_name: String,
    /// The per-step ledger, from `ledger.parquet`.
    pub ledger: FullLedger,
    /// Every settlement in the window, held or not, from `funding.parquet`.
    pub settlements: Vec<FundingPayment>,
    /// The run's metrics, from `metrics.json`.
    pub metrics: Metrics,
    /// The config the run used, from its saved `config.toml`.
    pub config: Config,
    /// Data repairs and findings from loading (the manifest's `warnings`).
    pub warnings: Vec<String>,
    /// Runs of steps whose spot close was stale (the manifest's `stale_spot_spans`).
    pub stale_spans: Vec<StaleSpan>,
    /// Whether stale-spot steps were masked from decisions (the manifest's `stale_spot_masked`).
    pub stale_spot_masked: bool,
}

impl SavedRun {
    /// Read a run folder written by `basis backtest`.
    pub fn load(dir: &Path) -> Result<SavedRun> {
        let manifest_path = dir.join("manifest.json");
        if !dir.is_dir() {
            bail_input!("{} is not a folder: pass a run folder such as reports/sample", dir.display());
        }
        let manifest_text = std::fs::read_to_string(&manifest_path).map_err(|_| {
            input_error!(
                "{} has no manifest.json, so it is not a complete basis run (a run writes its manifest last); pass a folder written by `basis backtest`",
                dir.display()
            )
        })?;
        let manifest: serde_json::Value = serde_json::from_str(&manifest_text)
            .map_err(|err| input_error!("{}: not valid JSON ({err}); re-run the backtest", manifest_path.display()))?;
        let run_name = manifest
            .get("run_name")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        let warnings = manifest
            .get("warnings")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|w| w.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let stale_spans: Vec<StaleSpan> = manifest
            .get("stale_spot_spans")
            .map(|v| serde_json::from_value(v.clone()))
            .transpose()
            .map_err(|err| input_error!("{}: `stale_spot_spans`: {err}; re-run the backtest", manifest_path.display()))?
            .unwrap_or_default();
        let stale_spot_masked = manifest.get("stale_spot_masked").and_then(|v| v.as_bool()).unwrap_or(false);

        let metrics_path = dir.join("metrics.json");
        let metrics_text = std::fs::read_to_string(&metrics_path).map_err(|err| input_error!("cannot read {}: {err}", metrics_path.display()))?;
        let metrics: Metrics = serde_json::from_str(&metrics_text).map_err(|err| {
            input_error!("{}: {err}; it was written by another version of basis: re-run the backtest", metrics_path.display())
        })?;
        let config_path = dir.join("config.toml");
        let config_text = std::fs::read_to_string(&config_path).map_err(|err| input_error!("cannot read {}: {err}", config_path.display()))?;
        let config = Config::from_toml_str(&config_text, &config_path.display().to_string(), dir)?;

        let ledger = read_ledger_bounded(&dir.join("ledger.parquet"))?;
        let funding_path = dir.join("funding.parquet");
        let settlements = settlements_from_frame(&read_parquet(&funding_path)?, &funding_path.display().to_string()).map_err(|e| input_error!("{e:#}"))?;
        Ok(SavedRun { dir: dir.to_path_buf(), run_name, ledger, settlements, metrics, config, warnings, stale_spans, stale_spot_masked })
    }

    /// The run as report input.
    pub fn input(&self) -> ReportInput<'_> {
        ReportInput {
            run_name: &self.run_name,
            ledger: &self.ledger,
            settlements: &self.settlements,
            metrics: &self.metrics,
            config: &self.config,
            warnings: &self.warnings,
            stale_spans: &self.stale_spans,
            stale_spot_masked: self.stale_spot_masked,
        }
    }
}

/// The rows a report draws from a saved `ledger.parquet`, in bounded memory: read a row group's
/// worth of rows at a time into a [`crate::measure::ledger::ReportLedger`] (every row up to
/// 131,072, whole-minute periods beyond), as the run itself drew them.
pub(crate) fn read_ledger_bounded(path: &Path) -> Result<FullLedger> {
    use crate::measure::ledger::{Recorder, ReportLedger, ROW_GROUP_ROWS};
    let name = path.display().to_string();
    let slice = |offset: usize, len: usize| -> Result<FullLedger> {
        let frame = ParquetReader::new(open_run_file(path)?).with_slice(Some((offset, len))).finish().map_err(|err| unreadable(path, err))?;
        FullLedger::from_frame(&frame, &name).map_err(|e| input_error!("{e:#}"))
    };
    let rows = ParquetReader::new(open_run_file(path)?).num_rows().map_err(|err| unreadable(path, err))?;
    if rows == 0 {
        return slice(0, 0);
    }
    let (first, last) = (slice(0, 1)?, slice(rows - 1, 1)?);
    let span = last.ts_ms()[0] - first.ts_ms()[0];
    let mut drawn = ReportLedger::for_run(rows, span);
    for offset in (0..rows).step_by(ROW_GROUP_ROWS) {
        for row in slice(offset, ROW_GROUP_ROWS)?.rows() {
            drawn.record(&row);
        }
    }
    Ok(drawn.finish())
}

/// A file of a saved run folder, opened for reading.
fn open_run_file(path: &Path) -> Result<std::fs::File> {
    std::fs::File::open(path).map_err(|err| input_error!("cannot open {}: {err}; the run folder is incomplete or from an older basis: re-run the backtest", path.display()))
}

fn unreadable(path: &Path, err: impl std::fmt::Display) -> anyhow::Error {
    input_error!("{}: not a readable Parquet file ({err}); re-run the backtest", path.display())
}

fn read_parquet(path: &Path) -> Result<DataFrame> {
    ParquetReader::new(open_run_file(path)?).finish().map_err(|err| unreadable(path, err))
}

/// Re-render the report of a saved run in place (`basis report <run-dir>`). Every file is written
/// to a temporary folder first and renamed into place only once all of them are complete.
pub fn rerender(dir: &Path) -> Result<Vec<PathBuf>> {
    let run = SavedRun::load(dir)?;
    let files = render(&run.input())?;
    replace_files(dir, &files)
}

/// Write files into `dir` through a temporary sibling folder, replacing any of the same name.
pub fn replace_files(dir: &Path, files: &[ReportFile]) -> Result<Vec<PathBuf>> {
    let tmp = dir.join(format!(".report.tmp-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let written = (|| -> Result<Vec<PathBuf>> {
        for file in files {
            let path = tmp.join(&file.name);
            std::fs::write(&path, &file.bytes).with_context(|| format!("writing {}", path.display()))?;
        }
        let mut out = Vec::new();
        for file in files {
            let to = dir.join(&file.name);
            std::fs::rename(tmp.join(&file.name), &to).with_context(|| format!("renaming into {}", to.display()))?;
            out.push(to);
        }
        Ok(out)
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    written
}
