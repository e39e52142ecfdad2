//! The local catalog: fetched history in one documented layout, listed by `basis data list` and
//! named by configs (`[data] catalog = "...", venue = "bybit", symbol = "BTCUSDT"`).
//!
//! ```text
//! <root>/<venue>/<kind>/<SYMBOL>/<year>.parquet     the rows of one UTC year, sorted by time
//! <root>/<venue>/<kind>/<SYMBOL>/manifest.json      source, fetch time, span, each file's SHA-256
//! ```
//!
//! Kinds and their columns (times are `Datetime(ms, UTC)`):
//! - `funding`: `ts` (the settlement), `rate` (decimal per interval), `interval_hours`,
//!   `interval_inferred` (true where the venue does not state it and the spacing to the
//!   previous settlement was used), `price` (the venue's own price with the rate: dYdX's oracle,
//!   Deribit's index; null elsewhere), `premium` (Hyperliquid; null elsewhere);
//! - `perp`, `spot`, `mark`, `index`, `premium`: `open_time`, `open`, `high`, `low`, `close`,
//!   `volume` (base asset; null where the venue gives none); the bar length is in the manifest;
//! - `open_interest`: `ts`, `open_interest` (base asset), `open_interest_usd` (null where not given).
//!
//! Files are written to a temporary name and renamed, so a file is whole or absent. A fetch into
//! a series already in the catalog asks only for the time outside what the manifest says is
//! held (the resume of an interrupted or extended fetch) and merges the rows by time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::rest::{Row, SeriesKind};
use crate::{bail_input, input_error};

/// What a series folder's `manifest.json` records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// The venue (`bybit`).
    pub venue: String,
    /// The kind (`funding`).
    pub kind: String,
    /// The symbol as the catalog names it (`BTCUSDT`).
    pub symbol: String,
    /// The venue's own name for the market (`BTC-USDT-SWAP`).
    pub instrument: String,
    /// Where the rows came from: the API's base URL, or the dump files' folder.
    pub source: String,
    /// When the last fetch finished, RFC 3339 UTC.
    pub fetched_utc: String,
    /// Bar length for bar kinds, ms (0 otherwise).
    pub bar_ms: i64,
    /// Rows held.
    pub rows: usize,
    /// First and last row time, epoch ms.
    pub first_ms: i64,
    /// Last row time, epoch ms.
    pub last_ms: i64,
    /// The window the fetches covered (asked for and answered), epoch ms: a resume asks only
    /// outside it.
    pub covered_from_ms: i64,
    /// End of the covered window (exclusive), epoch ms.
    pub covered_to_ms: i64,
    /// Each year file: name, rows, SHA-256.
    pub files: Vec<ManifestFile>,
    /// What the fetch found worth saying (history shorter than asked, inferred intervals).
    pub notes: Vec<String>,
}

/// One file of a series.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestFile {
    /// File name (`2024.parquet`).
    pub name: String,
    /// Rows in it.
    pub rows: usize,
    /// SHA-256 of its bytes.
    pub sha256: String,
}

/// The folder of one series.
pub fn series_dir(root: &Path, venue: &str, kind: SeriesKind, symbol: &str) -> PathBuf {
    root.join(venue).join(kind.name()).join(symbol)
}

/// The manifest of a series, if the catalog holds it.
pub fn manifest(root: &Path, venue: &str, kind: SeriesKind, symbol: &str) -> Result<Option<Manifest>> {
    let path = series_dir(root, venue, kind, symbol).join("manifest.json");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).map(Some).map_err(|e| input_error!("{}: not a basis catalog manifest: {e}; remove the folder and fetch again", path.display()))
}

fn column_names(kind: SeriesKind) -> (&'static str, [&'static str; 5]) {
    match kind {
        SeriesKind::Funding => ("ts", ["rate", "interval_hours", "price", "premium", "interval_inferred"]),
        SeriesKind::OpenInterest => ("ts", ["open_interest", "open_interest_usd", "", "", ""]),
        _ => ("open_time", ["open", "high", "low", "close", "volume"]),
    }
}

/// The rows of a series as a frame in the catalog's columns.
fn frame_of(kind: SeriesKind, rows: &[Row]) -> Result<DataFrame> {
    let (time, names) = column_names(kind);
    let mut columns = vec![Column::new(time.into(), rows.iter().map(|r| r.ts_ms).collect::<Vec<i64>>()).cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC)))?];
    for (k, name) in names.iter().enumerate() {
        if name.is_empty() {
            continue;
        }
        if *name == "interval_inferred" {
            columns.push(Column::new((*name).into(), rows.iter().map(|r| r.values[k] == 1.0).collect::<Vec<bool>>()));
        } else {
            // NaN (not given) is written as null.
            columns.push(Column::new((*name).into(), rows.iter().map(|r| if r.values[k].is_nan() { None } else { Some(r.values[k]) }).collect::<Vec<Option<f64>>>()));
        }
    }
    Ok(DataFrame::new_infer_height(columns)?)
}

/// The rows of the series' files, sorted by time.
pub fn read_rows(root: &Path, venue: &str, kind: SeriesKind, symbol: &str) -> Result<Vec<Row>> {
    let dir = series_dir(root, venue, kind, symbol);
    let mut rows = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(rows) };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "parquet")).collect();
    files.sort();
    let (time, names) = column_names(kind);
    for file in files {
        let frame = ParquetReader::new(std::fs::File::open(&file).with_context(|| format!("opening {}", file.display()))?).finish().map_err(|e| input_error!("{}: {e}", file.display()))?;
        let ts = frame.column(time).map_err(|e| input_error!("{}: {e}", file.display()))?.cast(&DataType::Int64)?;
        let ts = ts.i64()?;
        let mut values: Vec<Vec<f64>> = Vec::new();
        for name in names {
            if name.is_empty() {
                values.push(vec![f64::NAN; frame.height()]);
                continue;
            }
            let column = frame.column(name).map_err(|e| input_error!("{}: {e}", file.display()))?.cast(&DataType::Float64)?;
            values.push(column.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect());
        }
        for (i, t) in ts.iter().enumerate() {
            let t = t.ok_or_else(|| input_error!("{}: row {} has no time", file.display(), i + 1))?;
            rows.push(Row { ts_ms: t, values: [values[0][i], values[1][i], values[2][i], values[3][i], values[4][i]] });
        }
    }
    rows.sort_by_key(|r| r.ts_ms);
    Ok(rows)
}

/// What a write is given besides the rows.
pub struct Written<'a> {
    /// The venue's name for the market.
    pub instrument: &'a str,
    /// Base URL or folder the rows came from.
    pub source: &'a str,
    /// Bar length, ms (0 for funding and open interest).
    pub bar_ms: i64,
    /// The window this fetch covered.
    pub covered: (i64, i64),
    /// Findings to keep.
    pub notes: &'a [String],
}

/// Merge `rows` into the series (rows already held at the same time are kept as they were:
/// history does not change) and rewrite its year files and manifest.
pub fn write(root: &Path, venue: &str, kind: SeriesKind, symbol: &str, rows: &[Row], info: &Written) -> Result<Manifest> {
    let dir = series_dir(root, venue, kind, symbol);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let previous = manifest(root, venue, kind, symbol)?;
    let mut merged: BTreeMap<i64, Row> = read_rows(root, venue, kind, symbol)?.into_iter().map(|r| (r.ts_ms, r)).collect();
    for row in rows {
        merged.entry(row.ts_ms).or_insert(*row);
    }
    let all: Vec<Row> = merged.into_values().collect();
    let mut by_year: BTreeMap<i32, Vec<Row>> = BTreeMap::new();
    for row in &all {
        by_year.entry(crate::time::year_of(row.ts_ms)).or_default().push(*row);
    }
    let mut files = Vec::new();
    for (year, year_rows) in &by_year {
        let name = format!("{year}.parquet");
        let path = dir.join(&name);
        // Whole or absent: a temporary name, then renamed.
        let temp = dir.join(format!(".{name}.tmp"));
        let handle = std::fs::File::create(&temp).with_context(|| format!("creating {}", temp.display()))?;
        crate::parquet::write_frame(std::io::BufWriter::new(handle), &mut frame_of(kind, year_rows)?, &temp.display().to_string())?;
        std::fs::rename(&temp, &path).with_context(|| format!("moving {} into place", path.display()))?;
        files.push(ManifestFile { name, rows: year_rows.len(), sha256: super::read::sha256_streamed(&path)? });
    }
    let (covered_from, covered_to) = match &previous {
        Some(m) => (m.covered_from_ms.min(info.covered.0), m.covered_to_ms.max(info.covered.1)),
        None => info.covered,
    };
    let mut notes: Vec<String> = previous.as_ref().map(|m| m.notes.clone()).unwrap_or_default();
    for note in info.notes {
        if !notes.contains(note) {
            notes.push(note.clone());
        }
    }
    let manifest = Manifest {
        venue: venue.to_string(),
        kind: kind.name().to_string(),
        symbol: symbol.to_string(),
        instrument: info.instrument.to_string(),
        source: info.source.to_string(),
        fetched_utc: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        bar_ms: info.bar_ms,
        rows: all.len(),
        first_ms: all.first().map(|r| r.ts_ms).unwrap_or(0),
        last_ms: all.last().map(|r| r.ts_ms).unwrap_or(0),
        covered_from_ms: covered_from,
        covered_to_ms: covered_to,
        files,
        notes,
    };
    let path = dir.join("manifest.json");
    let temp = dir.join(".manifest.json.tmp");
    std::fs::write(&temp, serde_json::to_string_pretty(&manifest)?).with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, &path).with_context(|| format!("moving {} into place", path.display()))?;
    Ok(manifest)
}

/// The windows of `[from, to)` not yet covered by the series: all of it for a new series,
/// else the parts before and after what the manifest says was covered.
pub fn missing_windows(previous: Option<&Manifest>, from: i64, to: i64) -> Vec<(i64, i64)> {
    match previous {
        None => vec![(from, to)],
        Some(m) => {
            let mut out = Vec::new();
            if from < m.covered_from_ms {
                out.push((from, m.covered_from_ms.min(to)));
            }
            if to > m.covered_to_ms {
                out.push((m.covered_to_ms.max(from), to));
            }
            out
        }
    }
}

/// One series in the catalog, as `basis data list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    /// Venue folder.
    pub venue: String,
    /// Kind folder.
    pub kind: String,
    /// Symbol folder.
    pub symbol: String,
    /// Rows.
    pub rows: usize,
    /// First row time.
    pub first: String,
    /// Last row time.
    pub last: String,
    /// The usual spacing of rows, hours.
    pub spacing_hours: f64,
    /// Spacings longer than 1.5 × the row's expected spacing (the interval for funding, the bar
    /// for bars): (from, to) row times.
    pub gaps: Vec<(String, String)>,
}

/// Every series under `root`, with its coverage and gaps.
pub fn list(root: &Path) -> Result<Vec<Listing>> {
    if !root.is_dir() {
        bail_input!("{} is not a folder; fetch into it first (basis data fetch VENUE --out {})", root.display(), root.display());
    }
    let mut out = Vec::new();
    let dirs = |p: &Path| -> Vec<PathBuf> {
        let mut d: Vec<PathBuf> = std::fs::read_dir(p).map(|e| e.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect()).unwrap_or_default();
        d.sort();
        d
    };
    for venue_dir in dirs(root) {
        for kind_dir in dirs(&venue_dir) {
            let Some(kind) = kind_dir.file_name().and_then(|n| n.to_str()).and_then(|n| SeriesKind::parse(n).ok()) else { continue };
            for symbol_dir in dirs(&kind_dir) {
                let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let (venue, symbol) = (name(&venue_dir), name(&symbol_dir));
                let rows = read_rows(root, &venue, kind, &symbol)?;
                if rows.is_empty() {
                    continue;
                }
                let bar_ms = manifest(root, &venue, kind, &symbol)?.map(|m| m.bar_ms).unwrap_or(0);
                let mut spacings: Vec<i64> = rows.windows(2).map(|w| w[1].ts_ms - w[0].ts_ms).collect();
                spacings.sort_unstable();
                let median = spacings.get(spacings.len() / 2).copied().unwrap_or(0);
                let mut gaps = Vec::new();
                for w in rows.windows(2) {
                    let expected = if kind == SeriesKind::Funding && w[1].values[1].is_finite() {
                        (w[1].values[1] * 3.6e6) as i64
                    } else if bar_ms > 0 {
                        bar_ms
                    } else {
                        median
                    };
                    if expected > 0 && (w[1].ts_ms - w[0].ts_ms) as f64 > 1.5 * expected as f64 {
                        gaps.push((crate::time::format_ms(w[0].ts_ms), crate::time::format_ms(w[1].ts_ms)));
                    }
                }
                out.push(Listing {
                    venue,
                    kind: kind.name().to_string(),
                    symbol,
                    rows: rows.len(),
                    first: crate::time::format_ms(rows[0].ts_ms),
                    last: crate::time::format_ms(rows[rows.len() - 1].ts_ms),
                    spacing_hours: median as f64 / 3.6e6,
                    gaps,
                });
            }
        }
    }
    Ok(out)
}

/// The listing as a table, one line per series.
pub fn list_text(listings: &[Listing]) -> String {
    let mut out = format!("{:<12} {:<14} {:<16} {:>9}  {:<21} {:<21} {:>8}  {}\n", "venue", "kind", "symbol", "rows", "first", "last", "spacing", "gaps");
    for l in listings {
        let gaps = match l.gaps.len() {
            0 => "none".to_string(),
            n => format!("{n}: {}{}", l.gaps.iter().take(3).map(|(a, b)| format!("{a} -> {b}")).collect::<Vec<_>>().join(", "), if n > 3 { ", ..." } else { "" }),
        };
        let spacing = if l.spacing_hours >= 1.0 { format!("{:.0}h", l.spacing_hours) } else { format!("{:.0}m", l.spacing_hours * 60.0) };
        out.push_str(&format!("{:<12} {:<14} {:<16} {:>9}  {:<21} {:<21} {:>8}  {gaps}\n", l.venue, l.kind, l.symbol, l.rows, l.first, l.last, spacing));
    }
    out
}

/// The price source of catalog series `kind` (bars by their open time, the manifest's length).
pub fn price_source(root: &Path, venue: &str, kind: SeriesKind, symbol: &str) -> Result<Option<super::source::PriceSource>> {
    let Some(m) = manifest(root, venue, kind, symbol)? else { return Ok(None) };
    // Open and volume are read only where every row has them (a venue may give neither).
    let rows = read_rows(root, venue, kind, symbol)?;
    let whole = |k: usize| !rows.is_empty() && rows.iter().all(|r| r.values[k].is_finite());
    let bar_seconds = u32::try_from(m.bar_ms / 1000).map_err(|_| input_error!("{}: bar length {} ms", series_dir(root, venue, kind, symbol).display(), m.bar_ms))?;
    let mut source = super::source::PriceSource::generic(series_dir(root, venue, kind, symbol).join("*.parquet").to_string_lossy().into_owned());
    source.open_time_column = Some("open_time".into());
    source.bar_seconds = Some(bar_seconds);
    source.close_column = Some("close".into());
    source.high_column = Some("high".into());
    source.low_column = Some("low".into());
    source.open_column = whole(0).then(|| "open".into());
    source.volume_column = whole(4).then(|| "volume".into());
    Ok(Some(source))
}

/// The funding source of a catalog series (the interval of each row from its column).
pub fn funding_source(root: &Path, venue: &str, symbol: &str) -> Result<Option<super::source::FundingSource>> {
    if manifest(root, venue, SeriesKind::Funding, symbol)?.is_none() {
        return Ok(None);
    }
    let mut source = super::source::FundingSource::new(super::source::FundingFormat::Generic, series_dir(root, venue, SeriesKind::Funding, symbol).join("*.parquet").to_string_lossy().into_owned());
    source.time_column = Some("ts".into());
    source.rate_column = Some("rate".into());
    source.interval_hours_column = Some("interval_hours".into());
    Ok(Some(source))
}
