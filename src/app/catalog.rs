//! `basis data fetch VENUE` for the REST venues and `basis data list`: each symbol × kind
//! fetched page by page (`data::rest`) for the part of the window the catalog does not yet
//! cover, merged into the catalog (`data::catalog`); and Binance's monthly dumps written into
//! the catalog too.

use std::path::Path;

use anyhow::Result;

use crate::data::catalog::{self, Written};
use crate::data::rest::{self, Query, Retry, Row, SeriesKind};
use crate::bail_input;

/// One series' outcome, for the summary.
#[derive(Debug, Clone)]
pub struct SeriesOutcome {
    /// `bybit funding BTCUSDT`.
    pub label: String,
    /// Rows fetched now (0: the catalog already covered the window).
    pub fetched: usize,
    /// Rows the catalog holds for the series after the fetch.
    pub held: usize,
    /// Pages asked for and answers retried.
    pub pages: usize,
    /// Answers retried.
    pub retries: usize,
    /// What the fetch found.
    pub notes: Vec<String>,
}

/// What to fetch from a REST venue.
pub struct RestFetch<'a> {
    /// The venue (`bybit`).
    pub venue: &'a str,
    /// Symbols as given.
    pub symbols: Vec<String>,
    /// Kinds.
    pub kinds: Vec<SeriesKind>,
    /// Window, epoch ms (start inclusive, end exclusive).
    pub window: (i64, i64),
    /// Bar length, ms.
    pub bar_ms: i64,
    /// Catalog folder.
    pub root: &'a Path,
    /// Base URL override.
    pub base_url: Option<&'a str>,
    /// Retry and pacing.
    pub retry: Retry,
}

/// Fetch every symbol × kind into the catalog.
pub fn fetch_rest(job: &RestFetch) -> Result<Vec<SeriesOutcome>> {
    let api = rest::venue(job.venue)?;
    if job.window.0 >= job.window.1 {
        bail_input!("--start must be before --end");
    }
    for kind in &job.kinds {
        api.supports(*kind)?;
        if kind.is_bars() && *kind != SeriesKind::Premium {
            api.bar_name(job.bar_ms)?;
        }
    }
    let base_url = job.base_url.unwrap_or(api.default_base_url());
    let client = rest::Client::new(base_url, job.retry);
    let mut out = Vec::new();
    for symbol in &job.symbols {
        let folder = symbol.trim().to_string();
        if folder.is_empty() || folder.contains(['/', '\\']) || folder.starts_with('.') {
            bail_input!("--symbols {symbol:?}: not a symbol");
        }
        for &kind in &job.kinds {
            let instrument = api.instrument(symbol, kind)?;
            let previous = catalog::manifest(job.root, api.name(), kind, &folder)?;
            let bar_ms = if kind.is_bars() { job.bar_ms } else { 0 };
            if let Some(m) = &previous {
                if kind.is_bars() && m.bar_ms != bar_ms {
                    bail_input!("{}: the catalog holds {}-minute bars of {folder} {}; fetch {} bars into another catalog folder (--out)", api.name(), m.bar_ms / 60_000, kind.name(), job.bar_ms / 60_000);
                }
            }
            let mut rows: Vec<Row> = Vec::new();
            let (mut pages, mut retries, mut notes) = (0, 0, Vec::new());
            let mut urls = Vec::new();
            for (from, to) in catalog::missing_windows(previous.as_ref(), job.window.0, job.window.1) {
                let q = Query { kind, instrument: instrument.clone(), start_ms: from, end_ms: to, bar_ms: job.bar_ms };
                let fetched = client.fetch(api, &q)?;
                pages += fetched.pages;
                retries += fetched.retries;
                notes.extend(fetched.notes);
                urls.extend(fetched.urls);
                rows.extend(fetched.rows);
            }
            let label = format!("{} {} {folder}", api.name(), kind.name());
            if pages == 0 {
                out.push(SeriesOutcome { label, fetched: 0, held: previous.map(|m| m.rows).unwrap_or(0), pages, retries, notes });
                continue;
            }
            let source = format!("{base_url} ({})", urls.first().cloned().unwrap_or_default());
            let manifest = catalog::write(job.root, api.name(), kind, &folder, &rows, &Written { instrument: &instrument, source: &source, bar_ms, covered: job.window, notes: &notes })?;
            out.push(SeriesOutcome { label, fetched: rows.len(), held: manifest.rows, pages, retries, notes });
        }
    }
    Ok(out)
}

/// Write fetched Binance dumps (the cache `cache`, its site layout) into the catalog: each
/// kind loaded by the Binance loaders, bars stored by their open time.
pub fn binance_into_catalog(cache: &Path, root: &Path, symbol: &str, kinds: &[crate::data::fetch::Kind], months: &[String]) -> Result<Vec<SeriesOutcome>> {
    use crate::data::fetch::Kind;
    let symbol = symbol.trim().to_ascii_uppercase();
    let mut out = Vec::new();
    let (Some(first_month), Some(last_month)) = (months.first(), months.last()) else { return Ok(out) };
    let window = (crate::time::parse_time_ms("--from", &format!("{first_month}-01"))?, month_end_ms(last_month)?);
    for kind in kinds {
        let (series_kind, interval) = match kind {
            Kind::Spot(i) => (SeriesKind::Spot, i.as_str()),
            Kind::Perp(i) => (SeriesKind::Perp, i.as_str()),
            Kind::Mark(i) => (SeriesKind::Mark, i.as_str()),
            Kind::Index(i) => (SeriesKind::Index, i.as_str()),
            Kind::Premium(i) => (SeriesKind::Premium, i.as_str()),
            Kind::Funding => (SeriesKind::Funding, ""),
            Kind::Delivery(_) => continue, // dated contracts are not catalog series (yet)
        };
        let present: Vec<String> = months.iter().map(|m| cache.join(kind.remote_path(&symbol, m))).filter(|p| p.is_file()).map(|p| p.to_string_lossy().into_owned()).collect();
        if present.is_empty() {
            continue;
        }
        let pattern = cache.join(kind.remote_path(&symbol, "*")).to_string_lossy().into_owned();
        let (mut files, mut warnings) = (Vec::new(), Vec::new());
        let (rows, bar_ms) = if series_kind == SeriesKind::Funding {
            let funding = crate::data::load_funding(&crate::data::source::FundingSource::new(crate::data::source::FundingFormat::BinanceFunding, pattern.clone()), &symbol, &mut files, &mut warnings)?;
            let rows = funding.iter().map(|s| Row { ts_ms: s.settle_ms, values: [s.rate, s.interval_hours, f64::NAN, f64::NAN, 0.0] }).collect();
            (rows, 0)
        } else {
            let bar_ms = rest::parse_bar(interval)?;
            let bars = crate::data::load_prices(&crate::data::source::PriceSource::binance_klines(pattern.clone()), series_kind.name(), &mut files, &mut warnings)?;
            let rows = (0..bars.ts_ms.len())
                .map(|i| {
                    let (high, low) = (bars.high.get(i).copied().unwrap_or(bars.close[i]), bars.low.get(i).copied().unwrap_or(bars.close[i]));
                    Row { ts_ms: bars.ts_ms[i] - bar_ms, values: [f64::NAN, high, low, bars.close[i], bars.volume_at(i)] }
                })
                .collect();
            (rows, bar_ms)
        };
        let rows: Vec<Row> = rows;
        let label = format!("binance {} {symbol}", series_kind.name());
        let source = format!("Binance monthly dumps in {}", cache.display());
        let manifest = catalog::write(root, "binance", series_kind, &symbol, &rows, &Written { instrument: &symbol, source: &source, bar_ms, covered: window, notes: &warnings })?;
        out.push(SeriesOutcome { label, fetched: rows.len(), held: manifest.rows, pages: 0, retries: 0, notes: warnings });
    }
    Ok(out)
}

fn month_end_ms(month: &str) -> Result<i64> {
    let (y, m) = month.split_once('-').ok_or_else(|| crate::input_error!("month {month:?}: use YYYY-MM"))?;
    let (y, m): (i32, u32) = (y.parse().map_err(|_| crate::input_error!("month {month:?}"))?, m.parse().map_err(|_| crate::input_error!("month {month:?}"))?);
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    crate::time::parse_time_ms("--to", &format!("{ny:04}-{nm:02}-01"))
}

/// The summary a fetch prints.
pub fn outcome_text(outcomes: &[SeriesOutcome], root: &Path) -> String {
    let mut out = String::new();
    for o in outcomes {
        if o.pages == 0 && o.fetched == 0 && o.held > 0 && o.retries == 0 && o.notes.is_empty() && !o.label.starts_with("binance") {
            out.push_str(&format!("{:<36} already covered ({} rows held)\n", o.label, o.held));
        } else {
            out.push_str(&format!("{:<36} {} rows fetched, {} held, {} pages, {} retried\n", o.label, o.fetched, o.held, o.pages, o.retries));
        }
        for note in &o.notes {
            out.push_str(&format!("  note: {note}\n"));
        }
    }
    out.push_str(&format!("  catalog {}\n", root.display()));
    out
}
