//! `basis data inspect <files...>`: which reader basis would use for a file, and what the file
//! holds when read that way: rows, time span (first -> last), rows out of time order and
//! duplicates, settlement intervals, rate statistics and cap hits (funding), bar spacing and gaps
//! (prices), the loader's price checks (OHLC), and whether the times sit on the venue's schedule
//! or a constant number of hours off it (a file written in local time).
//!
//! # How the reader is chosen
//!
//! The content decides, never the file name alone. The sniffer reads the first 64 KiB of a CSV
//! (after `.gz`/`.zip` decompression), a whole JSON export, or the column names and first rows of
//! a Parquet/Feather file, then applies these rules in order (names compared case-insensitively):
//!
//! 1. CSV without a header (the first line holds numbers or times):
//!    - 7 or more values with times in the 1st and 7th and numbers in between: `binance_klines`;
//!    - 3 values: time, interval in (0, 24] h, rate: `binance_funding` (the dump without header);
//!    - 4 values: symbol, time, interval, rate: `binance_funding` with a symbol column.
//! 2. `calc_time` and `last_funding_rate`: `binance_funding`. Exactly
//!    `calc_time,funding_interval_hours,last_funding_rate` is read by the Binance loader; any other
//!    layout (a leading `symbol` column, as in long-format dumps) is read by column name, one
//!    symbol at a time (`--symbol`, default the symbol with the most rows).
//! 3. `timestamp, funding_timestamp, funding_rate, mark_price`: `tardis`.
//! 4. `funding_time` and `funding_rate`: `binance_rest` when a `symbol` column is present (CSV),
//!    else the generic reader on those columns.
//! 5. A kline header (`open_time, open, high, low, close, volume, close_time, ...`): `binance_klines`.
//! 6. `timestamp, side, size, price`: `bybit_trades` (bars of `--bar-seconds`, default 3600).
//! 7. A venue export's field names (JSON keys, or CSV/Parquet columns with the API's names):
//!    `fundingRateTimestamp` -> `bybit_json`; `fundingTime` + `realizedRate` -> `okx`;
//!    `timestamp` + `interest_1h` -> `deribit_json`; `timestamp` + `fundingRate` +
//!    `fundingInterval` -> `bitmex_json`; `effectiveAt` + `rate` -> `dydx_json`; `coin` + `time` +
//!    `fundingRate` -> `hyperliquid_json`; `timestamp` + `fundingRate` -> `ccxt_json`; `t` + `r`
//!    -> `gate_json`. In a CSV or columnar file the venue reader is used only when the names match
//!    exactly and the first time is written as that reader expects (epoch ms, epoch seconds or
//!    ISO text); otherwise the generic reader reads the same columns (hourly venues with a 1 h
//!    interval).
//! 8. freqtrade candles (`date, open, high, low, close[, volume]`, or JSON `[[ms, o, h, l, c, v]]`):
//!    funding rows (rate in `open`) when `--kind funding`, or the file name says `mark`/`futures`
//!    (prices) or `funding` (funding), else when every sampled `open` is below 0.01 in magnitude
//!    and every volume is 0; otherwise candles stamped with their open time (`date` + the
//!    timeframe: `--bar-seconds`, else the spacing of the first rows, else the name's `-1h`).
//! 9. Otherwise the generic reader, with columns found by name: a time column (`funding_time`,
//!    `timestamp`, `time`, `date`, ..., any name with "time"/"date", else the first column whose
//!    first value is a time) and a rate column (`funding_rate`, `fundingRate`, `rate`,
//!    `interest_1h`, ..., any name with "rate"/"funding") make it funding; a close column
//!    (`close`, `c`, `last`, ...) with a close-time or open-time column make it prices (open-time
//!    stamped bars need their length: `--bar-seconds`, else the spacing of the first rows).
//!
//! Nothing matching is an input error that shows the header (or first line) and the `--format`
//! values that could fit. The file name only breaks ties: the symbol for cap rules, freqtrade
//! funding vs candles, and a freqtrade timeframe when the rows do not show the spacing.
//!
//! # Overrides
//!
//! `--format F` (any `PriceFormat` or `FundingFormat` snake_case name, or `freqtrade`) replaces the
//! guess. Any generic column option (`--time-column`, `--rate-column`, `--close-column`, ...)
//! selects the generic reader, funding or prices by `--kind`, else by the options given
//! (`--rate-column` => funding, `--close-column` => prices), else by the columns found; columns not
//! given are filled from the guess (optional ones only when no column was named). `--time-unit`,
//! `--interval-hours`, `--bar-seconds`, `--utc-offset-hours` and `--symbol` apply to whichever
//! reader is used.
//!
//! # Problems and the exit code
//!
//! Every file is reported. When a file cannot be sniffed, or the chosen reader rejects it (an OHLC
//! violation, a rate in percent, two different rows for one time), inspect prints what it found
//! (reader, rows, notes) and a `problem:` line, and the command then fails with the reader's
//! message as an input error: exit code 2. Warnings the loaders raise (rows out of order, dropped
//! duplicates, funding gaps) are printed as `note:` lines.
//!
//! Cap hits use a private copy of the report's `at_limit` predicate, so that data does not depend
//! on report.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use crate::data::clock::{bar_offset_warning, funding_offset_warning, Schedule};
use crate::data::read::{parse_iso_ms, parse_time_cell, read_bytes, read_table, stream_csv, RawTable};
use crate::data::{binance, freqtrade, generic, venue_formats as venues, FundingRows, FundingSeries, Origin, PriceBars};
use crate::config::{FundingFormat, FundingSource, PriceFormat, PriceSource, TimeFormat};
use crate::time::format_ms;
use crate::{bail_input, input_error};

/// Bytes of (decompressed) CSV text the sniffer looks at.
const HEAD_BYTES: u64 = 64 * 1024;
/// Data rows the sniffer keeps.
const SAMPLE_ROWS: usize = 50;

/// What the user told `basis data inspect`; every field is optional, and unset means "sniff it".
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--format`: a `PriceFormat` or `FundingFormat` name in snake_case, or `freqtrade`.
    pub format: Option<String>,
    /// `--kind`: `funding` or `prices`, for the generic reader and freqtrade files.
    pub kind: Option<String>,
    /// `--time-column`: generic funding's settlement-time column.
    pub time_column: Option<String>,
    /// `--rate-column`: generic funding's rate column.
    pub rate_column: Option<String>,
    /// `--interval-hours`: the settlement interval where the file has none.
    pub interval_hours: Option<f64>,
    /// `--interval-hours-column`: generic funding's per-row interval column (hours).
    pub interval_hours_column: Option<String>,
    /// `--mark-column`: generic funding's mark price at settlement.
    pub mark_column: Option<String>,
    /// `--close-column`: generic prices' close column.
    pub close_column: Option<String>,
    /// `--high-column`: generic prices' high column.
    pub high_column: Option<String>,
    /// `--low-column`: generic prices' low column.
    pub low_column: Option<String>,
    /// `--open-column`: generic prices' open column.
    pub open_column: Option<String>,
    /// `--volume-column`: generic prices' volume column.
    pub volume_column: Option<String>,
    /// `--close-time-column`: generic prices' close-time column.
    pub close_time_column: Option<String>,
    /// `--open-time-column`: generic prices' open-time column (needs a bar length).
    pub open_time_column: Option<String>,
    /// `--bar-seconds`: bar length for open-time stamped bars and Bybit trade dumps.
    pub bar_seconds: Option<u32>,
    /// `--time-unit`: `auto`, `s`, `ms`, `us` or `iso`.
    pub time_unit: Option<String>,
    /// `--utc-offset-hours`: hours the file's times are ahead of UTC (3 for a file written in
    /// UTC+3); they are moved back by that much.
    pub utc_offset_hours: Option<f64>,
    /// `--symbol`: the series to read from a dump holding several, and the symbol whose cap rules
    /// are checked.
    pub symbol: Option<String>,
}

impl Options {
    /// Whether any generic column option is set (which selects the generic reader).
    pub fn any_column(&self) -> bool {
        [
            &self.time_column,
            &self.rate_column,
            &self.interval_hours_column,
            &self.mark_column,
            &self.close_column,
            &self.high_column,
            &self.low_column,
            &self.open_column,
            &self.volume_column,
            &self.close_time_column,
            &self.open_time_column,
        ]
        .iter()
        .any(|c| c.is_some())
    }

    fn funding_columns_given(&self) -> bool {
        self.rate_column.is_some() || self.interval_hours_column.is_some() || self.mark_column.is_some()
    }

    fn price_columns_given(&self) -> bool {
        [&self.close_column, &self.high_column, &self.low_column, &self.open_column, &self.volume_column, &self.close_time_column, &self.open_time_column]
            .iter()
            .any(|c| c.is_some())
    }
}

/// The report on one file.
pub struct Inspection {
    /// Lines to print: the file, the reader chosen and why, and what the file holds.
    pub text: String,
    /// Why the file could not be sniffed or read (an input error: exit code 2), if it could not.
    pub error: Option<anyhow::Error>,
}

/// The report on one file with every reader sniffed (`basis data inspect FILE`), or why it could
/// not be read.
pub fn inspect_text(path: &Path) -> anyhow::Result<String> {
    let inspection = inspect(path, &Options::default());
    match inspection.error {
        Some(err) => Err(err),
        None => Ok(inspection.text),
    }
}

/// Inspect one file: sniff its reader (or use the one `options` names), read it, describe it.
pub fn inspect(path: &Path, options: &Options) -> Inspection {
    let mut text = format!("{}\n", path.display());
    let error = run(path, options, &mut text).err();
    if let Some(err) = &error {
        let message = format!("{err:#}");
        text.push_str(&format!("  problem: {}\n", message.lines().next().unwrap_or("")));
    }
    Inspection { text, error }
}

fn run(path: &Path, options: &Options, out: &mut String) -> Result<()> {
    let time_unit = options.time_unit.as_deref().map(parse_time_unit).transpose()?;
    let sample = sniff(path)?;
    if let Some(line) = &sample.columns_line {
        out.push_str(line);
    }
    let choice = choose(path, &sample, options, time_unit)?;
    out.push_str(&format!("  reader: {} ({})\n", choice.reader, choice.why));
    if let Some(line) = config_line(&choice.plan, path) {
        out.push_str(&format!("  config: {line}\n"));
    }
    if !matches!(choice.plan, Plan::BinanceDump { .. }) {
        for note in group_notes(&sample) {
            out.push_str(&format!("  note: {note}\n"));
        }
    }
    let mut warnings = Vec::new();
    let result = load(path, &choice, &sample, options, &mut warnings, out);
    for warning in &warnings {
        out.push_str(&format!("  note: {warning}\n"));
    }
    result
}

// ---------------------------------------------------------------------------------------------
// Names of formats, kinds and units.

const PRICE_FORMATS: [PriceFormat; 3] = [PriceFormat::BinanceKlines, PriceFormat::Generic, PriceFormat::BybitTrades];
const FUNDING_FORMATS: [FundingFormat; 12] = [
    FundingFormat::BinanceFunding,
    FundingFormat::BinanceRest,
    FundingFormat::Generic,
    FundingFormat::BybitJson,
    FundingFormat::Okx,
    FundingFormat::HyperliquidJson,
    FundingFormat::DydxJson,
    FundingFormat::DeribitJson,
    FundingFormat::BitmexJson,
    FundingFormat::GateJson,
    FundingFormat::CcxtJson,
    FundingFormat::Tardis,
];

/// The snake_case name serde gives a config enum value.
fn serde_name<T: serde::Serialize + std::fmt::Debug>(value: T) -> String {
    serde_json::to_value(&value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| format!("{value:?}"))
}

/// A config enum value from its snake_case name.
fn from_name<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(Value::String(name.to_string())).ok()
}

/// Every `--format` value, in the order the help lists them.
fn all_format_names() -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in PRICE_FORMATS.iter().map(|f| serde_name(*f)).chain(FUNDING_FORMATS.iter().map(|f| serde_name(*f))).chain(["freqtrade".to_string()]) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// A reader named by `--format`.
#[derive(Debug, Clone, Copy)]
enum Forced {
    Prices(PriceFormat),
    Funding(FundingFormat),
    Generic,
    Freqtrade,
}

fn parse_format(text: &str) -> Result<Forced> {
    let name = text.trim().to_ascii_lowercase().replace('-', "_");
    if name == "generic" {
        return Ok(Forced::Generic);
    }
    if name == "freqtrade" {
        return Ok(Forced::Freqtrade);
    }
    if let Some(format) = from_name::<PriceFormat>(&name) {
        return Ok(Forced::Prices(format));
    }
    if let Some(format) = from_name::<FundingFormat>(&name) {
        return Ok(Forced::Funding(format));
    }
    Err(input_error!("--format {text:?} is not a format basis reads; use one of: {}", all_format_names().join(", ")))
}

/// Funding settlements or price bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Funding,
    Prices,
}

fn parse_kind(text: &str) -> Result<Kind> {
    match text.trim().to_ascii_lowercase().as_str() {
        "funding" | "rates" => Ok(Kind::Funding),
        "prices" | "price" | "bars" | "klines" | "candles" => Ok(Kind::Prices),
        _ => Err(input_error!("--kind {text:?}: use funding or prices")),
    }
}

fn parse_time_unit(text: &str) -> Result<TimeFormat> {
    from_name::<TimeFormat>(&text.trim().to_ascii_lowercase()).ok_or_else(|| input_error!("--time-unit {text:?}: use auto, s, ms, us or iso"))
}

// ---------------------------------------------------------------------------------------------
// The sample the sniffer looks at.

/// How a file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Comma-separated text, with or without a header line.
    Csv { header: bool },
    /// JSON records (objects).
    Json,
    /// JSON arrays of values (freqtrade candles).
    JsonArrays,
    /// Parquet or Feather.
    Columnar,
}

/// The head of a file as the sniffer sees it.
struct Sample {
    /// What was seen, for messages: the header, the first line, the fields or the columns.
    seen: String,
    /// Column or field names as written (empty for a CSV without header).
    names: Vec<String>,
    /// The first data rows as text cells, by position in `names` (or in the line).
    rows: Vec<Vec<String>>,
    shape: Shape,
    /// The first rows of a columnar file, for typed times.
    head: Option<RawTable>,
    /// A columnar file's row count and typed columns, printed before the reader.
    columns_line: Option<String>,
}

impl Sample {
    /// Position of a column, by name compared case-insensitively.
    fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n.eq_ignore_ascii_case(name))
    }

    /// A column's name as written, found case-insensitively.
    fn name(&self, name: &str) -> Option<String> {
        self.index_of(name).map(|i| self.names[i].clone())
    }

    fn has(&self, name: &str) -> bool {
        self.index_of(name).is_some()
    }

    fn has_exact(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    fn cell(&self, row: usize, index: usize) -> Option<&str> {
        self.rows.get(row)?.get(index).map(String::as_str)
    }

    fn cells(&self, index: usize) -> impl Iterator<Item = &str> + '_ {
        self.rows.iter().filter_map(move |r| r.get(index).map(String::as_str))
    }

    /// The sampled times of a column (by exact name), in ms; unreadable cells are skipped.
    fn times(&self, column: &str, unit: TimeFormat) -> Vec<i64> {
        if let Some(head) = &self.head {
            return head.column(column).ok().and_then(|c| head.times_ms(c, unit).ok()).unwrap_or_default();
        }
        let Some(index) = self.names.iter().position(|n| n == column) else { return Vec::new() };
        self.cells(index).filter_map(|cell| parse_time_cell(cell, unit).ok().map(|(ms, _)| ms)).collect()
    }
}

/// At most `max` characters of a line, for messages.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}...", text.chars().take(max).collect::<String>())
    }
}

fn is_number(cell: &str) -> bool {
    cell.parse::<f64>().is_ok_and(f64::is_finite)
}

/// A first line is a header when none of its fields is a number or a time.
fn looks_like_header(fields: &[String]) -> bool {
    !fields.iter().any(|f| is_number(f) || parse_iso_ms(f).is_ok())
}

fn is_columnar_name(lower: &str) -> bool {
    [".parquet", ".pq", ".feather", ".arrow", ".ipc"].iter().any(|ext| lower.ends_with(ext))
}

/// Read what the sniffer needs: the head of a CSV, a whole JSON export, or a columnar file's
/// columns and first rows.
fn sniff(path: &Path) -> Result<Sample> {
    let lower = path.to_string_lossy().to_ascii_lowercase();
    if is_columnar_name(&lower) {
        return sniff_columnar(path);
    }
    if lower.ends_with(".json") || lower.ends_with(".json.gz") {
        let bytes = read_bytes(path)?;
        return sniff_json(path, &bytes);
    }
    let (bytes, truncated) = read_head(path)?;
    if bytes.starts_with(b"PAR1") {
        bail_input!("{}: this is a Parquet file; name it *.parquet so that basis reads it as Parquet", path.display());
    }
    if bytes.starts_with(b"ARROW1") {
        bail_input!("{}: this is a Feather/Arrow IPC file; name it *.feather so that basis reads it as Feather", path.display());
    }
    if matches!(bytes.iter().copied().find(|b| !b.is_ascii_whitespace()), Some(b'[') | Some(b'{')) {
        bail_input!("{}: this looks like JSON; name it *.json (or *.json.gz) so that the venue readers take it", path.display());
    }
    if bytes.iter().take(4096).any(|b| *b == 0) {
        bail_input!("{}: binary content, not CSV text; basis reads CSV (plain, .gz, .zip), JSON, Parquet and Feather", path.display());
    }
    sniff_csv(path, &bytes, truncated)
}

/// The first [`HEAD_BYTES`] of a file's text, unpacking `.gz` and the first CSV of a `.zip`, and
/// whether the file goes on beyond them.
fn read_head(path: &Path) -> Result<(Vec<u8>, bool)> {
    let file = std::fs::File::open(path).map_err(|err| input_error!("cannot read {}: {err}", path.display()))?;
    let lower = path.to_string_lossy().to_ascii_lowercase();
    let mut bytes = Vec::new();
    if lower.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(file)
            .take(HEAD_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|err| input_error!("{}: not a valid gzip file ({err}); re-download it", path.display()))?;
    } else if lower.ends_with(".zip") {
        let mut archive = ::zip::ZipArchive::new(file).map_err(|err| input_error!("{}: not a valid zip file ({err}); re-download it", path.display()))?;
        let index = (0..archive.len())
            .find(|&i| archive.by_index(i).map(|f| f.name().to_ascii_lowercase().ends_with(".csv")).unwrap_or(false))
            .ok_or_else(|| input_error!("{}: the zip holds no .csv file", path.display()))?;
        let entry = archive.by_index(index).map_err(|err| input_error!("{}: corrupt zip entry ({err}); re-download it", path.display()))?;
        entry.take(HEAD_BYTES).read_to_end(&mut bytes).map_err(|err| input_error!("{}: corrupt zip entry ({err}); re-download it", path.display()))?;
    } else {
        file.take(HEAD_BYTES).read_to_end(&mut bytes).map_err(|err| input_error!("cannot read {}: {err}", path.display()))?;
    }
    let truncated = bytes.len() as u64 >= HEAD_BYTES;
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        bytes.drain(..3);
    }
    Ok((bytes, truncated))
}

fn split_line(line: &str) -> Vec<String> {
    line.split(',').map(|f| f.trim().trim_matches('"').to_string()).collect()
}

fn sniff_csv(path: &Path, bytes: &[u8], truncated: bool) -> Result<Sample> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).filter(|l| !l.trim().is_empty()).collect();
    if truncated && lines.len() > 1 {
        lines.pop(); // cut off mid-line
    }
    lines.truncate(SAMPLE_ROWS + 1);
    let Some(first_line) = lines.first().copied() else {
        bail_input!("{}: the file is empty; expected CSV rows", path.display());
    };
    let first = split_line(first_line);
    let header = looks_like_header(&first);
    let (names, rows, seen) = if header {
        (first, lines[1..].iter().map(|l| split_line(l)).collect(), format!("header {}", clip(first_line, 160)))
    } else {
        (Vec::new(), lines.iter().map(|l| split_line(l)).collect(), format!("no header; first line {}", clip(first_line, 160)))
    };
    Ok(Sample { seen, names, rows, shape: Shape::Csv { header }, head: None, columns_line: None })
}


fn cell_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn sniff_json(path: &Path, bytes: &[u8]) -> Result<Sample> {
    let value: Value = serde_json::from_slice(bytes).map_err(|err| input_error!("{}: not valid JSON ({err})", path.display()))?;
    if let Some(arrays) = value.as_array().filter(|a| a.first().is_some_and(Value::is_array)) {
        let rows: Vec<Vec<String>> = arrays.iter().take(SAMPLE_ROWS).map(|r| r.as_array().map(|cells| cells.iter().map(cell_text).collect()).unwrap_or_default()).collect();
        let first = arrays.first().map(|r| clip(&r.to_string(), 120)).unwrap_or_default();
        return Ok(Sample {
            seen: format!("JSON arrays, first {first}"),
            names: ["date", "open", "high", "low", "close", "volume"].iter().map(|s| s.to_string()).collect(),
            rows,
            shape: Shape::JsonArrays,
            head: None,
            columns_line: None,
        });
    }
    let Some(records) = venues::records(&value) else {
        return Ok(Sample {
            seen: "JSON without a list of records (expected an array, or result.list, data, result or historicalFunding)".into(),
            names: Vec::new(),
            rows: Vec::new(),
            shape: Shape::Json,
            head: None,
            columns_line: None,
        });
    };
    let names: Vec<String> = records.first().and_then(Value::as_object).map(|o| o.keys().cloned().collect()).unwrap_or_default();
    let rows: Vec<Vec<String>> = records.iter().take(SAMPLE_ROWS).map(|r| names.iter().map(|k| r.get(k.as_str()).map(cell_text).unwrap_or_default()).collect()).collect();
    Ok(Sample { seen: format!("JSON records with fields {}", names.join(", ")), names, rows, shape: Shape::Json, head: None, columns_line: None })
}

fn sniff_columnar(path: &Path) -> Result<Sample> {
    let table = read_table(path)?;
    let listing = table.frame.columns().iter().map(|c| format!("{} ({})", c.name(), c.dtype())).collect::<Vec<_>>().join(", ");
    let columns_line = format!("  {} rows; columns: {listing}\n", table.frame.height());
    let head = RawTable { file: path.to_path_buf(), frame: table.frame.head(Some(SAMPLE_ROWS)), header_lines: 0, is_csv: false, first_row: 0 };
    let names: Vec<String> = head.frame.get_column_names().iter().map(|n| n.to_string()).collect();
    let columns: Vec<Vec<String>> = head.frame.columns().iter().map(|c| head.strings(c).unwrap_or_default()).collect();
    let rows: Vec<Vec<String>> = (0..head.frame.height()).map(|i| columns.iter().map(|c| c.get(i).cloned().unwrap_or_default()).collect()).collect();
    Ok(Sample { seen: format!("columns {}", names.join(",")), names, rows, shape: Shape::Columnar, head: Some(head), columns_line: Some(columns_line) })
}

// ---------------------------------------------------------------------------------------------
// Venue layouts (the field names the venue readers look for).

/// How a venue writes its times.
#[derive(Debug, Clone, Copy)]
enum TimeKind {
    Ms,
    Seconds,
    Iso,
}

/// Whether a time cell is written as a venue reader expects.
fn time_fits(cell: &str, kind: TimeKind) -> bool {
    match (cell.trim().parse::<f64>(), kind) {
        (Ok(v), TimeKind::Ms) => (1e11..1e13).contains(&v.abs()),
        (Ok(v), TimeKind::Seconds) => (1e8..1e10).contains(&v.abs()),
        (Err(_), TimeKind::Iso) => parse_iso_ms(cell.trim()).is_ok(),
        _ => false,
    }
}

struct VenueFields {
    format: FundingFormat,
    time: &'static str,
    kind: TimeKind,
    rate: &'static str,
    price: Option<&'static str>,
    /// Rates per hour (the reader sets a 1 h interval).
    hourly: bool,
    /// Field names that identify the layout.
    needs: &'static [&'static str],
}

/// In the order they are tried (more specific first).
static VENUES: [VenueFields; 8] = [
    VenueFields { format: FundingFormat::BybitJson, time: "fundingRateTimestamp", kind: TimeKind::Ms, rate: "fundingRate", price: None, hourly: false, needs: &["fundingRateTimestamp", "fundingRate"] },
    VenueFields { format: FundingFormat::Okx, time: "fundingTime", kind: TimeKind::Ms, rate: "realizedRate", price: None, hourly: false, needs: &["fundingTime", "realizedRate"] },
    VenueFields { format: FundingFormat::DeribitJson, time: "timestamp", kind: TimeKind::Ms, rate: "interest_1h", price: Some("index_price"), hourly: true, needs: &["timestamp", "interest_1h"] },
    VenueFields { format: FundingFormat::BitmexJson, time: "timestamp", kind: TimeKind::Iso, rate: "fundingRate", price: None, hourly: false, needs: &["timestamp", "fundingRate", "fundingInterval"] },
    VenueFields { format: FundingFormat::DydxJson, time: "effectiveAt", kind: TimeKind::Iso, rate: "rate", price: Some("price"), hourly: true, needs: &["effectiveAt", "rate"] },
    VenueFields { format: FundingFormat::HyperliquidJson, time: "time", kind: TimeKind::Ms, rate: "fundingRate", price: None, hourly: true, needs: &["coin", "time", "fundingRate"] },
    VenueFields { format: FundingFormat::CcxtJson, time: "timestamp", kind: TimeKind::Ms, rate: "fundingRate", price: None, hourly: false, needs: &["timestamp", "fundingRate"] },
    VenueFields { format: FundingFormat::GateJson, time: "t", kind: TimeKind::Seconds, rate: "r", price: None, hourly: false, needs: &["t", "r"] },
];

fn venue_fields(format: FundingFormat) -> Option<&'static VenueFields> {
    VENUES.iter().find(|v| v.format == format)
}


// ---------------------------------------------------------------------------------------------
// Choosing the reader.

/// A reader and its configuration.
enum Plan {
    Prices(PriceSource),
    Funding(FundingSource),
    /// A Binance funding dump read by column name (optionally with a `symbol` column), or by
    /// position `symbol, calc_time, funding_interval_hours, last_funding_rate` without header.
    BinanceDump { header: bool, source: FundingSource },
    /// freqtrade JSON `[[ms, o, h, l, c, v], ...]`: funding (rate in `open`) or candles of `bar_ms`.
    FreqtradeJson { funding: bool, bar_ms: Option<i64> },
}

/// The reader chosen for a file, and why.
struct Choice {
    plan: Plan,
    /// The reader's name as printed.
    reader: String,
    /// "sniffed: ..." or "--format ...".
    why: String,
    /// The venue format the rates come from, for cap rules and the settlement schedule.
    implied: Option<FundingFormat>,
}

fn choice(plan: Plan, reader: impl Into<String>, why: String, implied: Option<FundingFormat>) -> Choice {
    Choice { plan, reader: reader.into(), why, implied }
}

/// Columns the generic readers could use, found by name.
#[derive(Debug, Clone, Default)]
struct Columns {
    time: Option<String>,
    rate: Option<String>,
    /// The rate column's name is one of the well-known rate names (not just "contains rate").
    rate_exact: bool,
    interval: Option<String>,
    mark: Option<String>,
    close_time: Option<String>,
    open_time: Option<String>,
    close: Option<String>,
    high: Option<String>,
    low: Option<String>,
    open: Option<String>,
    volume: Option<String>,
}

fn guess_columns(sample: &Sample) -> Columns {
    let names = &sample.names;
    let pick = |candidates: &[&str]| -> Option<String> { candidates.iter().find_map(|c| names.iter().find(|n| n.eq_ignore_ascii_case(c))).cloned() };
    let containing = |words: &[&str], not: &[&str]| -> Option<String> {
        names
            .iter()
            .find(|n| {
                let l = n.to_ascii_lowercase();
                words.iter().any(|w| l.contains(w)) && !not.iter().any(|w| l.contains(w))
            })
            .cloned()
    };
    let rate_exact = pick(&["funding_rate", "fundingrate", "last_funding_rate", "lastfundingrate", "realizedrate", "realized_rate", "rate", "interest_1h", "interest_8h", "r", "funding"]);
    let first_time_column = || (0..names.len()).find(|&i| sample.cell(0, i).is_some_and(|v| parse_time_cell(v, TimeFormat::Auto).is_ok())).map(|i| names[i].clone());
    Columns {
        rate_exact: rate_exact.is_some(),
        rate: rate_exact.or_else(|| containing(&["rate", "funding"], &["time", "interval", "predicted", "next", "estimated", "premium", "stamp"])),
        time: pick(&[
            "funding_time",
            "fundingtime",
            "calc_time",
            "calctime",
            "settle_time",
            "settlement_time",
            "fundingratetimestamp",
            "funding_timestamp",
            "timestamp",
            "time",
            "datetime",
            "date",
            "ts",
            "t",
            "effectiveat",
        ])
        .or_else(|| containing(&["time", "date"], &[]))
        .or_else(first_time_column),
        interval: names
            .iter()
            .find(|n| {
                let l = n.to_ascii_lowercase();
                l.contains("interval") && l.contains("hour")
            })
            .cloned(),
        mark: pick(&["mark_price", "markprice", "mark", "index_price", "indexprice", "price"]),
        close_time: pick(&["close_time", "closetime", "close time"]),
        open_time: pick(&["open_time", "opentime", "open time", "date", "datetime", "timestamp", "time", "ts", "t", "start_time", "starttime"]),
        close: pick(&["close", "c", "close_price", "closeprice", "last", "last_price", "lastprice"]),
        high: pick(&["high", "h", "high_price", "highprice"]),
        low: pick(&["low", "l", "low_price", "lowprice"]),
        open: pick(&["open", "o", "open_price", "openprice"]),
        volume: pick(&["volume", "v", "vol", "base_volume", "basevolume"]),
    }
}

/// Funding or prices, from the columns found.
fn guess_kind(c: &Columns) -> Option<Kind> {
    let price_time = c.close_time.is_some() || c.open_time.is_some();
    if c.time.is_some() && c.rate.is_some() && c.rate_exact {
        Some(Kind::Funding)
    } else if c.close.is_some() && price_time {
        Some(Kind::Prices)
    } else if c.time.is_some() && c.rate.is_some() {
        Some(Kind::Funding)
    } else {
        None
    }
}

/// The most common positive spacing of a column's sampled times, in seconds.
fn spacing_seconds(sample: &Sample, column: &str) -> Option<u32> {
    let times = sample.times(column, TimeFormat::Auto);
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for w in times.windows(2) {
        if w[1] > w[0] {
            *counts.entry(w[1] - w[0]).or_default() += 1;
        }
    }
    let (ms, _) = counts.into_iter().fold(None, |best: Option<(i64, usize)>, (ms, n)| match best {
        Some(b) if b.1 >= n => Some(b),
        _ => Some((ms, n)),
    })?;
    u32::try_from(ms / 1000).ok().filter(|s| *s > 0)
}

/// A freqtrade timeframe in the file name (`BTC_USDT-1h.feather`), in seconds: a tie-breaker.
fn timeframe_seconds(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    name.split(['-', '_', '.']).find_map(|part| freqtrade::timeframe_ms(part).ok()).and_then(|ms| u32::try_from(ms / 1000).ok())
}

fn file_name_lower(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default()
}

/// freqtrade funding rows and candles share their columns: `--kind`, then the file name, then the
/// values (every `open` below 0.01 in magnitude and every volume 0) decide.
fn freqtrade_is_funding(path: &Path, sample: &Sample, kind: Option<Kind>) -> bool {
    if let Some(kind) = kind {
        return kind == Kind::Funding;
    }
    let name = file_name_lower(path);
    if name.contains("mark") || name.contains("futures") {
        return false;
    }
    if name.contains("funding") {
        return true;
    }
    let values = |column: &str| -> Vec<f64> { sample.index_of(column).map(|i| sample.cells(i).filter_map(|c| c.parse::<f64>().ok()).collect()).unwrap_or_default() };
    let open = values("open");
    let volume = values("volume");
    !open.is_empty() && open.iter().all(|v| v.abs() < 0.01) && volume.iter().all(|v| *v == 0.0)
}

fn generic_funding_source(path_text: &str, time: String, rate: String, interval: Option<String>, mark: Option<String>) -> FundingSource {
    FundingSource { time_column: Some(time), rate_column: Some(rate), interval_hours_column: interval, mark_column: mark, ..FundingSource::new(FundingFormat::Generic, path_text) }
}

/// Pick the reader for a file: `--format`, the column options, or the sniffer.
fn choose(path: &Path, sample: &Sample, options: &Options, time_unit: Option<TimeFormat>) -> Result<Choice> {
    let path_text = glob::Pattern::escape(&path.to_string_lossy());
    let forced = options.format.as_deref().map(parse_format).transpose()?;
    let kind = options.kind.as_deref().map(parse_kind).transpose()?;
    let mut chosen = match forced {
        None if options.any_column() => generic_choice(path, &path_text, sample, options, kind, "column options given".into())?,
        None => sniffed(path, &path_text, sample, options, kind)?.ok_or_else(|| unknown(path, sample))?,
        Some(Forced::Generic) => generic_choice(path, &path_text, sample, options, kind, "--format generic".into())?,
        Some(Forced::Freqtrade) => freqtrade_choice(path, &path_text, sample, options, kind, "--format freqtrade".into())?,
        Some(Forced::Prices(format)) => {
            let why = format!("--format {}{}", serde_name(format), ignored_columns(options));
            match format {
                PriceFormat::BybitTrades => {
                    let seconds = options.bar_seconds.unwrap_or(3600);
                    let source = PriceSource { format, bar_seconds: Some(seconds), ..PriceSource::binance_klines(path_text.as_str()) };
                    choice(Plan::Prices(source), serde_name(format), format!("{why}; bars of {seconds} s"), None)
                }
                other => choice(Plan::Prices(PriceSource { format: other, ..PriceSource::binance_klines(path_text.as_str()) }), serde_name(other), why, None),
            }
        }
        Some(Forced::Funding(format)) => {
            let why = format!("--format {}{}", serde_name(format), ignored_columns(options));
            let source = FundingSource::new(format, path_text.as_str());
            let plan = match (format, sample.shape) {
                (FundingFormat::BinanceFunding, Shape::Csv { header: true }) if sample.has("calc_time") && !is_plain_dump(sample) => Plan::BinanceDump { header: true, source },
                (FundingFormat::BinanceFunding, Shape::Csv { header: false }) if is_symbol_dump_line(sample) => Plan::BinanceDump { header: false, source },
                _ => Plan::Funding(source),
            };
            choice(plan, serde_name(format), why, Some(format))
        }
    };
    apply_common(&mut chosen.plan, options, time_unit);
    if let Plan::Prices(source) = &chosen.plan {
        if let (PriceFormat::Generic, None, Some(open_time), None) = (source.format, &source.close_time_column, &source.open_time_column, source.bar_seconds) {
            bail_input!(
                "{}: bars stamped by `{open_time}` (their open time) need their length to know when each closes: pass --bar-seconds (e.g. 3600), or --close-time-column {open_time} if it is the close time",
                path.display()
            );
        }
    }
    Ok(chosen)
}

/// A note that generic column options do not apply to a named non-generic format.
fn ignored_columns(options: &Options) -> &'static str {
    if options.any_column() {
        "; column options ignored: they apply to --format generic"
    } else {
        ""
    }
}

/// Options that hold whatever the reader.
fn apply_common(plan: &mut Plan, options: &Options, time_unit: Option<TimeFormat>) {
    match plan {
        Plan::Prices(source) => {
            if let Some(unit) = time_unit {
                source.time_unit = unit;
            }
            if options.bar_seconds.is_some() {
                source.bar_seconds = options.bar_seconds;
            }
            source.utc_offset_hours = options.utc_offset_hours;
        }
        Plan::Funding(source) | Plan::BinanceDump { source, .. } => {
            if let Some(unit) = time_unit {
                source.time_unit = unit;
            }
            if options.interval_hours.is_some() {
                source.interval_hours = options.interval_hours;
            }
            source.utc_offset_hours = options.utc_offset_hours;
        }
        Plan::FreqtradeJson { bar_ms, .. } => {
            if let Some(seconds) = options.bar_seconds {
                *bar_ms = Some(i64::from(seconds) * 1000);
            }
        }
    }
}

/// Exactly Binance's dump header, which the Binance reader reads by position.
fn is_plain_dump(sample: &Sample) -> bool {
    let lower: Vec<String> = sample.names.iter().map(|n| n.to_ascii_lowercase()).collect();
    lower == ["calc_time", "funding_interval_hours", "last_funding_rate"]
}

/// A headerless line `symbol, calc_time, funding_interval_hours, last_funding_rate`.
fn is_symbol_dump_line(sample: &Sample) -> bool {
    let Some(row) = sample.rows.first() else { return false };
    row.len() == 4
        && !is_number(&row[0])
        && parse_time_cell(&row[1], TimeFormat::Auto).is_ok()
        && row[2].parse::<f64>().is_ok_and(|h| h > 0.0 && h <= 24.0)
        && is_number(&row[3])
}

/// The sniffer's rules (see the module documentation); `None` when nothing fits.
fn sniffed(path: &Path, path_text: &str, sample: &Sample, options: &Options, kind: Option<Kind>) -> Result<Option<Choice>> {
    let why = format!("sniffed: {}", sample.seen);
    match sample.shape {
        Shape::Csv { header: false } => Ok(sniff_headerless(path_text, sample, why)),
        Shape::JsonArrays => freqtrade_choice(path, path_text, sample, options, kind, why).map(Some),
        Shape::Json => Ok(venue_choice(path_text, sample, &why)),
        Shape::Csv { header: true } | Shape::Columnar => sniff_named(path, path_text, sample, options, kind, why),
    }
}

fn sniff_headerless(path_text: &str, sample: &Sample, why: String) -> Option<Choice> {
    let row = sample.rows.first()?;
    let n = row.len();
    let num = |i: usize| row.get(i).is_some_and(|c| is_number(c));
    let time = |i: usize| row.get(i).is_some_and(|c| parse_time_cell(c, TimeFormat::Auto).is_ok());
    let interval = |i: usize| row.get(i).and_then(|c| c.parse::<f64>().ok()).is_some_and(|h| h > 0.0 && h <= 24.0);
    if n >= 7 && time(0) && time(6) && (1..=5).all(num) {
        return Some(choice(Plan::Prices(PriceSource::binance_klines(path_text)), "binance_klines", why, None));
    }
    if n == 3 && time(0) && interval(1) && num(2) {
        return Some(choice(Plan::Funding(FundingSource::new(FundingFormat::BinanceFunding, path_text)), "binance_funding", why, Some(FundingFormat::BinanceFunding)));
    }
    if is_symbol_dump_line(sample) {
        let source = FundingSource::new(FundingFormat::BinanceFunding, path_text);
        return Some(choice(Plan::BinanceDump { header: false, source }, "binance_funding", format!("{why}; symbol, calc_time, funding_interval_hours, last_funding_rate"), Some(FundingFormat::BinanceFunding)));
    }
    None
}

/// A venue layout whose field names all appear (exact case for JSON).
fn venue_choice(path_text: &str, sample: &Sample, why: &str) -> Option<Choice> {
    let venue = VENUES.iter().find(|v| v.needs.iter().all(|n| sample.has_exact(n)))?;
    Some(choice(Plan::Funding(FundingSource::new(venue.format, path_text)), serde_name(venue.format), why.to_string(), Some(venue.format)))
}

fn sniff_named(path: &Path, path_text: &str, sample: &Sample, options: &Options, kind: Option<Kind>, why: String) -> Result<Option<Choice>> {
    let csv = matches!(sample.shape, Shape::Csv { .. });
    let lower: Vec<String> = sample.names.iter().map(|n| n.to_ascii_lowercase()).collect();
    let binance = Some(FundingFormat::BinanceFunding);
    // Binance funding dumps.
    if csv && sample.has("calc_time") && sample.has("last_funding_rate") {
        let source = FundingSource::new(FundingFormat::BinanceFunding, path_text);
        if is_plain_dump(sample) {
            return Ok(Some(choice(Plan::Funding(source), "binance_funding", why, binance)));
        }
        let detail = if sample.has("symbol") { "; columns read by name, one symbol at a time" } else { "; columns read by name" };
        return Ok(Some(choice(Plan::BinanceDump { header: true, source }, "binance_funding", format!("{why}{detail}"), binance)));
    }
    // Tardis derivative_ticker.
    if csv && ["timestamp", "funding_timestamp", "funding_rate", "mark_price"].iter().all(|n| sample.has_exact(n)) {
        return Ok(Some(choice(Plan::Funding(FundingSource::new(FundingFormat::Tardis, path_text)), "tardis", why, Some(FundingFormat::Tardis))));
    }
    // Binance REST exports.
    if sample.has("funding_time") && sample.has("funding_rate") {
        if csv && ["symbol", "funding_time", "funding_rate"].iter().all(|n| sample.has_exact(n)) {
            return Ok(Some(choice(Plan::Funding(FundingSource::new(FundingFormat::BinanceRest, path_text)), "binance_rest", why, Some(FundingFormat::BinanceRest))));
        }
        if let (Some(time), Some(rate)) = (sample.name("funding_time"), sample.name("funding_rate")) {
            let source = generic_funding_source(path_text, time, rate, None, sample.name("mark_price"));
            return Ok(Some(choice(Plan::Funding(source), "generic funding", format!("{why}; Binance REST columns without `symbol`"), Some(FundingFormat::BinanceRest))));
        }
    }
    // Binance klines with a header.
    let timeish = |s: &str| s.contains("time") || s.contains("date");
    if csv && lower.len() >= 7 && lower[1] == "open" && lower[2] == "high" && lower[3] == "low" && lower[4] == "close" && lower[5].contains("vol") && timeish(&lower[0]) && timeish(&lower[6]) {
        return Ok(Some(choice(Plan::Prices(PriceSource::binance_klines(path_text)), "binance_klines", why, None)));
    }
    // Bybit trade dumps.
    if csv && ["timestamp", "price", "size"].iter().all(|n| sample.has_exact(n)) && sample.has("side") {
        let seconds = options.bar_seconds.unwrap_or(3600);
        let source = PriceSource { format: PriceFormat::BybitTrades, bar_seconds: Some(seconds), ..PriceSource::binance_klines(path_text) };
        return Ok(Some(choice(Plan::Prices(source), "bybit_trades", format!("{why}; trades aggregated into bars of {seconds} s (--bar-seconds)"), None)));
    }
    // Venue exports with the API's field names.
    if let Some(venue) = VENUES.iter().find(|v| v.needs.iter().all(|n| sample.has(n))) {
        let exact = venue.needs.iter().all(|n| sample.has_exact(n));
        let time_index = sample.index_of(venue.time);
        let time_ok = time_index.and_then(|i| sample.cell(0, i)).is_none_or(|cell| time_fits(cell, venue.kind));
        if exact && time_ok {
            return Ok(Some(choice(Plan::Funding(FundingSource::new(venue.format, path_text)), serde_name(venue.format), why, Some(venue.format))));
        }
        if let (Some(time), Some(rate)) = (sample.name(venue.time), sample.name(venue.rate)) {
            let mut source = generic_funding_source(path_text, time, rate, None, venue.price.and_then(|p| sample.name(p)));
            if venue.hourly {
                source.interval_hours = Some(1.0);
            }
            let detail = format!("; {} columns, read by the generic reader (times or names not as {} writes them)", serde_name(venue.format), serde_name(venue.format));
            return Ok(Some(choice(Plan::Funding(source), "generic funding", format!("{why}{detail}"), Some(venue.format))));
        }
    }
    // freqtrade candles or funding rows.
    if ["date", "open", "high", "low", "close"].iter().all(|n| sample.has(n)) {
        return freqtrade_choice(path, path_text, sample, options, kind, why).map(Some);
    }
    // Anything with a time and a rate, or a time and a close.
    let kind = kind.or_else(|| guess_kind(&guess_columns(sample)));
    if kind.is_none() {
        return Ok(None);
    }
    generic_choice(path, path_text, sample, options, kind, why).map(Some)
}

/// freqtrade files: JSON arrays, or `date, open, high, low, close, volume` columns.
fn freqtrade_choice(path: &Path, path_text: &str, sample: &Sample, options: &Options, kind: Option<Kind>, why: String) -> Result<Choice> {
    let funding = freqtrade_is_funding(path, sample, kind);
    if sample.shape == Shape::JsonArrays {
        let bar_ms = options.bar_seconds.or_else(|| spacing_seconds(sample, "date")).or_else(|| timeframe_seconds(path)).map(|s| i64::from(s) * 1000);
        let detail = if funding { "; funding rows: settlement at `date`, rate in `open`" } else { "; candles stamped with their open time" };
        return Ok(choice(Plan::FreqtradeJson { funding, bar_ms }, "freqtrade", format!("{why}{detail}"), None));
    }
    let (Some(date), Some(open)) = (sample.name("date"), sample.name("open")) else {
        bail_input!(
            "{}: freqtrade files have columns date, open, high, low, close, volume (or are JSON arrays [[ms, o, h, l, c, v], ...]); this one has {}",
            path.display(),
            sample.seen
        );
    };
    if funding {
        let source = generic_funding_source(path_text, date, open, None, None);
        return Ok(choice(Plan::Funding(source), "generic funding", format!("{why}; freqtrade funding rows: settlement at `date`, rate in `open`"), None));
    }
    let close = sample.name("close").ok_or_else(|| input_error!("{}: freqtrade candles need a `close` column; the file has {}", path.display(), sample.seen))?;
    let bar_seconds = options.bar_seconds.or_else(|| spacing_seconds(sample, &date)).or_else(|| timeframe_seconds(path));
    let source = PriceSource {
        format: PriceFormat::Generic,
        open_time_column: Some(date),
        bar_seconds,
        close_column: Some(close),
        high_column: sample.name("high"),
        low_column: sample.name("low"),
        open_column: Some(open),
        volume_column: sample.name("volume"),
        ..PriceSource::binance_klines(path_text)
    };
    Ok(choice(Plan::Prices(source), "generic prices", format!("{why}; freqtrade candles stamped with their open time `date`"), None))
}

/// The generic reader, with the columns given and the rest found by name.
fn generic_choice(path: &Path, path_text: &str, sample: &Sample, options: &Options, kind: Option<Kind>, why: String) -> Result<Choice> {
    if matches!(sample.shape, Shape::Json | Shape::JsonArrays) {
        bail_input!("{}: the generic reader reads CSV, Parquet or Feather, not JSON; pass a venue --format ({}) or convert the file", path.display(), VENUES.iter().map(|v| serde_name(v.format)).collect::<Vec<_>>().join(", "));
    }
    if sample.names.is_empty() {
        bail_input!("{}: the generic reader finds columns by name, but the file has no header ({}); add a header line naming the columns", path.display(), sample.seen);
    }
    let guess = guess_columns(sample);
    let given = options.any_column();
    let from_options = match (options.funding_columns_given(), options.price_columns_given()) {
        (true, false) => Some(Kind::Funding),
        (false, true) => Some(Kind::Prices),
        _ => None,
    };
    let columns_list = sample.names.join(", ");
    let kind = kind.or(from_options).or_else(|| guess_kind(&guess)).ok_or_else(|| {
        input_error!(
            "{}: cannot tell whether the file holds funding or prices ({}); add --kind funding with --time-column and --rate-column, or --kind prices with --close-column and --close-time-column",
            path.display(),
            sample.seen
        )
    })?;
    // Optional columns come from the guess only when the user named none.
    let optional = |mine: &Option<String>, guessed: &Option<String>| mine.clone().or_else(|| if given { None } else { guessed.clone() });
    let check = |flag: &str, name: &Option<String>| -> Result<()> {
        match name {
            Some(n) if !sample.has_exact(n) => bail_input!("{}: {flag} `{n}`: the file has no such column; it has [{columns_list}]", path.display()),
            _ => Ok(()),
        }
    };
    match kind {
        Kind::Funding => {
            let time = options.time_column.clone().or(guess.time.clone());
            let rate = options.rate_column.clone().or(guess.rate.clone());
            let (Some(time), Some(rate)) = (time, rate) else {
                bail_input!("{}: generic funding needs a time and a rate column: pass --time-column and --rate-column; the file has [{columns_list}]", path.display());
            };
            let interval = optional(&options.interval_hours_column, &guess.interval);
            let mark = optional(&options.mark_column, &guess.mark);
            for (flag, name) in [("--time-column", Some(time.clone())), ("--rate-column", Some(rate.clone())), ("--interval-hours-column", interval.clone()), ("--mark-column", mark.clone())] {
                check(flag, &name)?;
            }
            let source = generic_funding_source(path_text, time, rate, interval, mark);
            Ok(choice(Plan::Funding(source), "generic funding", why, None))
        }
        Kind::Prices => {
            let close = options.close_column.clone().or(guess.close.clone());
            let Some(close) = close else {
                bail_input!("{}: generic prices need a close column: pass --close-column; the file has [{columns_list}]", path.display());
            };
            let (close_time, open_time) = match (&options.close_time_column, &options.open_time_column) {
                (Some(c), _) => (Some(c.clone()), None),
                (None, Some(o)) => (None, Some(o.clone())),
                (None, None) => match (&guess.close_time, &guess.open_time) {
                    (Some(c), _) => (Some(c.clone()), None),
                    (None, Some(o)) => (None, Some(o.clone())),
                    (None, None) => bail_input!(
                        "{}: generic prices need a time column: pass --close-time-column (or --open-time-column with --bar-seconds); the file has [{columns_list}]",
                        path.display()
                    ),
                },
            };
            let bar_seconds = match &open_time {
                Some(column) => options.bar_seconds.or_else(|| spacing_seconds(sample, column)).or_else(|| timeframe_seconds(path)),
                None => options.bar_seconds,
            };
            let high = optional(&options.high_column, &guess.high);
            let low = optional(&options.low_column, &guess.low);
            let open = optional(&options.open_column, &guess.open);
            let volume = optional(&options.volume_column, &guess.volume);
            for (flag, name) in [
                ("--close-column", Some(close.clone())),
                ("--close-time-column", close_time.clone()),
                ("--open-time-column", open_time.clone()),
                ("--high-column", high.clone()),
                ("--low-column", low.clone()),
                ("--open-column", open.clone()),
                ("--volume-column", volume.clone()),
            ] {
                check(flag, &name)?;
            }
            let detail = match (&open_time, bar_seconds) {
                (Some(column), Some(seconds)) if options.open_time_column.is_none() => format!("; `{column}` read as the bar's open time, bars of {seconds} s (pass --close-time-column {column} if it is the close)"),
                _ => String::new(),
            };
            let source = PriceSource {
                format: PriceFormat::Generic,
                close_time_column: close_time,
                open_time_column: open_time,
                bar_seconds,
                close_column: Some(close),
                high_column: high,
                low_column: low,
                open_column: open,
                volume_column: volume,
                ..PriceSource::binance_klines(path_text)
            };
            Ok(choice(Plan::Prices(source), "generic prices", format!("{why}{detail}"), None))
        }
    }
}

/// What the sniffer saw and which `--format` values could fit, as an input error.
fn unknown(path: &Path, sample: &Sample) -> anyhow::Error {
    let mut fits: Vec<String> = Vec::new();
    match sample.shape {
        Shape::Csv { header: false } => {
            let n = sample.rows.first().map_or(0, Vec::len);
            if n >= 7 {
                fits.push("binance_klines (open_time, open, high, low, close, volume, close_time, ...: the 1st and 7th values must be times)".into());
            }
            if n == 3 || n == 4 {
                fits.push("binance_funding ([symbol,] calc_time, funding_interval_hours, last_funding_rate)".into());
            }
            if n == 4 {
                fits.push("binance_rest (needs its header line symbol,funding_time,funding_rate,mark_price: add it as the first line)".into());
            }
            fits.push("generic (needs a header line naming the columns, then --time-column T --rate-column R for funding, or --close-column C --close-time-column T for prices)".into());
        }
        Shape::Json | Shape::JsonArrays => {
            fits.extend(VENUES.iter().map(|v| format!("{} (records with {})", serde_name(v.format), v.needs.join(", "))));
            fits.push("freqtrade (arrays [[ms, open, high, low, close, volume], ...])".into());
        }
        Shape::Csv { header: true } | Shape::Columnar => {
            fits.push("generic --kind funding --time-column T --rate-column R [--interval-hours H]".into());
            fits.push("generic --kind prices --close-column C --close-time-column T (or --open-time-column T --bar-seconds S)".into());
            if sample.names.len() >= 7 {
                fits.push("binance_klines (open_time, open, high, low, close, volume, close_time, ... by position)".into());
            }
            if sample.names.len() >= 3 {
                fits.push("binance_funding (calc_time, funding_interval_hours, last_funding_rate by position)".into());
            }
            fits.push("a venue format with the API's column names (bybit_json, okx, deribit_json, ccxt_json, ...)".into());
        }
    }
    let single_column = matches!(sample.shape, Shape::Csv { .. }) && sample.names.len() <= 1 && sample.rows.first().is_none_or(|r| r.len() <= 1);
    let separator = if single_column && (sample.seen.contains(';') || sample.seen.contains('\t')) {
        "\n  The first line has no commas but has ';' or tabs: basis reads comma-separated files."
    } else {
        ""
    };
    input_error!(
        "{}: cannot tell what this file holds ({}).{separator}\n  Choose a reader with --format; these could fit:\n    --format {}\n  All formats: {}",
        path.display(),
        sample.seen,
        fits.join("\n    --format "),
        all_format_names().join(", ")
    )
}

/// Notes for columns that hold several series (a generic reader expects one series per file).
fn group_notes(sample: &Sample) -> Vec<String> {
    let mut notes = Vec::new();
    for key in ["venue", "exchange", "coin", "symbol", "instid", "ticker", "pair"] {
        let Some(index) = sample.index_of(key) else { continue };
        let mut values: Vec<&str> = sample.cells(index).filter(|c| !c.is_empty()).collect();
        values.sort_unstable();
        values.dedup();
        if values.len() > 1 {
            notes.push(format!(
                "column `{}` holds several series ({}{}); a reader expects one series per file (`basis venues` reads multi-venue funding tables)",
                sample.names[index],
                values.iter().take(5).copied().collect::<Vec<_>>().join(", "),
                if values.len() > 5 { ", ..." } else { "" }
            ));
        }
    }
    notes
}

/// The config keys that read the file as inspect did.
fn config_line(plan: &Plan, path: &Path) -> Option<String> {
    fn text(parts: &mut Vec<String>, key: &str, value: &Option<String>) {
        if let Some(v) = value {
            parts.push(format!("{key} = {v:?}"));
        }
    }
    let mut parts = Vec::new();
    let section = match plan {
        Plan::Prices(s) => {
            parts.push(format!("format = {:?}", serde_name(s.format)));
            parts.push(format!("path = {:?}", path.display().to_string()));
            text(&mut parts, "close_time_column", &s.close_time_column);
            text(&mut parts, "open_time_column", &s.open_time_column);
            if let Some(seconds) = s.bar_seconds {
                parts.push(format!("bar_seconds = {seconds}"));
            }
            text(&mut parts, "close_column", &s.close_column);
            text(&mut parts, "high_column", &s.high_column);
            text(&mut parts, "low_column", &s.low_column);
            text(&mut parts, "open_column", &s.open_column);
            text(&mut parts, "volume_column", &s.volume_column);
            if s.time_unit != TimeFormat::Auto {
                parts.push(format!("time_unit = {:?}", serde_name(s.time_unit)));
            }
            if let Some(hours) = s.utc_offset_hours {
                parts.push(format!("utc_offset_hours = {hours}"));
            }
            "[data.spot] (or perp, mark)"
        }
        Plan::Funding(s) => {
            parts.push(format!("format = {:?}", serde_name(s.format)));
            parts.push(format!("path = {:?}", path.display().to_string()));
            text(&mut parts, "time_column", &s.time_column);
            text(&mut parts, "rate_column", &s.rate_column);
            text(&mut parts, "interval_hours_column", &s.interval_hours_column);
            if let Some(hours) = s.interval_hours {
                parts.push(format!("interval_hours = {hours}"));
            }
            text(&mut parts, "mark_column", &s.mark_column);
            if s.time_unit != TimeFormat::Auto {
                parts.push(format!("time_unit = {:?}", serde_name(s.time_unit)));
            }
            if let Some(hours) = s.utc_offset_hours {
                parts.push(format!("utc_offset_hours = {hours}"));
            }
            "[data.funding]"
        }
        Plan::BinanceDump { .. } | Plan::FreqtradeJson { .. } => return None,
    };
    Some(format!("{section} {}", parts.join(", ")))
}

// ---------------------------------------------------------------------------------------------
// Reading and describing.

/// Rows as they sit in the file.
#[derive(Debug, Default)]
struct RowInfo {
    rows: usize,
    backwards: usize,
    /// The first row earlier than the row before it, as "line N".
    first_backwards: Option<usize>,
}

/// `whose` says which rows were counted ("in the file", "of BTCUSDT").
fn describe_rows(out: &mut String, info: &RowInfo, whose: &str) {
    match info.first_backwards {
        Some(line) => out.push_str(&format!("  rows: {} {whose}; {} out of time order (first at line {line})\n", info.rows, info.backwards)),
        None => out.push_str(&format!("  rows: {} {whose}, in time order\n", info.rows)),
    }
}

/// Count a funding CSV's data rows and those earlier than the row before them.
fn scan_rows(path: &Path, index: usize, unit: TimeFormat) -> Option<RowInfo> {
    let mut info = RowInfo::default();
    let mut previous: Option<i64> = None;
    let mut first_row: Option<usize> = None;
    let (header_lines, rows) = stream_csv(path, |row, _header, fields| {
        if let Some(Ok((ms, _))) = fields.get(index).map(|cell| parse_time_cell(cell, unit)) {
            if previous.is_some_and(|p| ms < p) {
                info.backwards += 1;
                if first_row.is_none() {
                    first_row = Some(row);
                }
            }
            previous = Some(ms);
        }
        Ok(())
    })
    .ok()?;
    info.rows = rows;
    info.first_backwards = first_row.map(|row| row + 1 + header_lines);
    Some(info)
}

/// The column a funding reader takes its times from, for the row scan (CSV only).
fn scan_index(source: &FundingSource, sample: &Sample) -> Option<usize> {
    if !matches!(sample.shape, Shape::Csv { .. }) {
        return None;
    }
    match source.format {
        FundingFormat::BinanceFunding => Some(0),
        FundingFormat::BinanceRest => sample.index_of("funding_time"),
        FundingFormat::Generic => source.time_column.as_deref().and_then(|n| sample.names.iter().position(|x| x == n)),
        FundingFormat::Tardis => None,
        other => venue_fields(other).and_then(|v| sample.names.iter().position(|x| x == v.time)),
    }
}

/// The symbol of a file: `--symbol`, else a symbol column's first value, else the file name's
/// first part (`BTCUSDT-fundingRate-2024-01.csv` -> BTCUSDT).
fn symbol_of(path: &Path, sample: &Sample, options: &Options) -> String {
    if let Some(symbol) = &options.symbol {
        return symbol.clone();
    }
    for key in ["symbol", "coin", "instid", "ticker", "instrument_name"] {
        if let Some(value) = sample.index_of(key).and_then(|i| sample.cell(0, i)).filter(|v| !v.is_empty()) {
            return value.to_string();
        }
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.split(['-', '_', '.']).next().unwrap_or("").to_ascii_uppercase()
}

fn load(path: &Path, choice: &Choice, sample: &Sample, options: &Options, warnings: &mut Vec<String>, out: &mut String) -> Result<()> {
    let mut files = Vec::new();
    match &choice.plan {
        Plan::Prices(source) => {
            let bars = match source.format {
                PriceFormat::BinanceKlines => binance::load_klines(source, "bars", &mut files, warnings)?,
                PriceFormat::Generic => generic::load_prices(source, "bars", &mut files, warnings)?,
                PriceFormat::BybitTrades => venues::load_bybit_trades(source, "bars", &mut files, warnings)?,
            };
            describe_bars(out, &bars, if source.format == PriceFormat::BinanceKlines { "klines" } else { "bars" });
        }
        Plan::Funding(source) => {
            if let Some(info) = scan_index(source, sample).and_then(|index| scan_rows(path, index, source.time_unit)) {
                describe_rows(out, &info, "in the file");
            }
            let symbol = symbol_of(path, sample, options);
            let series = match source.format {
                FundingFormat::BinanceFunding | FundingFormat::BinanceRest => binance::load_funding(source, &symbol, &mut files, warnings)?,
                FundingFormat::Generic => generic::load_funding(source, &mut files, warnings)?,
                _ => venues::load_funding(source, &mut files, warnings)?,
            };
            describe_funding(out, &series, &symbol, choice.implied);
        }
        Plan::BinanceDump { header, source } => {
            let dump = load_binance_dump(path, *header, source, options.symbol.as_deref(), warnings, out)?;
            let symbol = dump.symbol.unwrap_or_else(|| symbol_of(path, sample, options));
            describe_funding(out, &dump.series, &symbol, choice.implied);
        }
        Plan::FreqtradeJson { funding, bar_ms } => {
            if *funding {
                let series = freqtrade::load_funding(path, options.interval_hours, options.utc_offset_hours, warnings)?;
                describe_funding(out, &series, &symbol_of(path, sample, options), None);
            } else {
                let bar_ms = bar_ms.ok_or_else(|| input_error!("{}: freqtrade candles are stamped with their open time: pass --bar-seconds (the timeframe, e.g. 3600 for 1h)", path.display()))?;
                let bars = freqtrade::load_bars(path, "bars", bar_ms, options.utc_offset_hours, warnings)?;
                describe_bars(out, &bars, "bars");
            }
        }
    }
    Ok(())
}

/// A Binance funding dump read by column name, one symbol of it.
struct Dump {
    series: FundingSeries,
    /// The symbol read, when the file has a symbol column.
    symbol: Option<String>,
}

fn load_binance_dump(path: &Path, header: bool, source: &FundingSource, wanted: Option<&str>, warnings: &mut Vec<String>, out: &mut String) -> Result<Dump> {
    let binance::FundingDump { table, symbols, time_ms: time, interval_hours: interval, rate } = binance::read_funding_dump(path, Some(header), source)?;
    // Symbols in order of first appearance, with their row counts.
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    for s in symbols.iter().flatten() {
        match position.get(s) {
            Some(&i) => counts[i].1 += 1,
            None => {
                position.insert(s.clone(), counts.len());
                counts.push((s.clone(), 1));
            }
        }
    }
    let listing = |counts: &[(String, usize)]| {
        let shown: Vec<String> = counts.iter().take(12).map(|(s, n)| format!("{s} x{n}")).collect();
        format!("{}{}", shown.join(", "), if counts.len() > 12 { format!(", ... ({} symbols)", counts.len()) } else { String::new() })
    };
    let chosen: Option<String> = match (&symbols, wanted) {
        (None, _) => None,
        (Some(_), Some(w)) => Some(
            counts
                .iter()
                .find(|(s, _)| s.eq_ignore_ascii_case(w))
                .map(|(s, _)| s.clone())
                .ok_or_else(|| input_error!("{}: no rows for symbol {w:?}; the file holds {}", path.display(), listing(&counts)))?,
        ),
        (Some(_), None) => counts.iter().fold(None, |best: Option<&(String, usize)>, c| match best {
            Some(b) if b.1 >= c.1 => Some(b),
            _ => Some(c),
        })
        .map(|(s, _)| s.clone()),
    };
    if let Some(symbol) = &chosen {
        if counts.len() > 1 {
            let how = if wanted.is_some() { "--symbol" } else { "the most rows; choose another with --symbol" };
            out.push_str(&format!("  symbols: {}; reading {symbol} ({how})\n", listing(&counts)));
        } else {
            out.push_str(&format!("  symbol column: {symbol}\n"));
        }
    }
    let mut rows = FundingRows::default();
    let file = rows.sources.add(&table);
    let mut info = RowInfo::default();
    let mut previous: Option<i64> = None;
    for i in 0..time.len() {
        if let (Some(all), Some(symbol)) = (&symbols, &chosen) {
            if all[i] != *symbol {
                continue;
            }
        }
        info.rows += 1;
        if previous.is_some_and(|p| time[i] < p) {
            info.backwards += 1;
            if info.first_backwards.is_none() {
                info.first_backwards = Some(i + 1 + table.header_lines);
            }
        }
        previous = Some(time[i]);
        rows.rows.push((binance::round_to_second(time[i]), rate[i], interval[i], f64::NAN, Origin { file, row: i as u32 }));
    }
    let whose = match &chosen {
        Some(symbol) => format!("of {symbol}"),
        None => "in the file".to_string(),
    };
    describe_rows(out, &info, &whose);
    let series = rows.finish(source.interval_hours, warnings)?;
    Ok(Dump { series, symbol: chosen })
}

fn describe_funding(out: &mut String, f: &FundingSeries, symbol: &str, implied: Option<FundingFormat>) {
    let n = f.len();
    let settle_ms = f.settle_ms();
    let interval_hours = f.interval_hours();
    let (Some(first), Some(last)) = (settle_ms.first(), settle_ms.last()) else {
        out.push_str("  funding: no settlements\n");
        return;
    };
    out.push_str(&format!("  funding, symbol {symbol}: {n} settlements, {} -> {}\n", format_ms(*first), format_ms(*last)));
    let mut intervals: BTreeMap<i64, (f64, usize)> = BTreeMap::new();
    for h in &interval_hours {
        intervals.entry((h * 1e6).round() as i64).or_insert((*h, 0)).1 += 1;
    }
    out.push_str(&format!("  intervals: {}\n", intervals.values().map(|(h, count)| format!("{h} h x{count}")).collect::<Vec<_>>().join(", ")));
    let hours: f64 = interval_hours.iter().sum();
    let mean = f.iter().map(|s| s.rate).sum::<f64>() / n.max(1) as f64;
    let (min, max) = f.iter().fold((f64::MAX, f64::MIN), |a, s| (a.0.min(s.rate), a.1.max(s.rate)));
    out.push_str(&format!(
        "  rate per settlement: min {:+.4} %, mean {:+.4} %, max {:+.4} %; positive {:.1} %; APR {:+.2} % (sum of rates / hours covered x 8760)\n",
        min * 100.0,
        mean * 100.0,
        max * 100.0,
        f.iter().filter(|s| s.rate > 0.0).count() as f64 / n.max(1) as f64 * 100.0,
        f.iter().map(|s| s.rate).sum::<f64>() / hours.max(1e-9) * 8760.0 * 100.0
    ));
    // The venue preset the format names (`FundingFormat::venue_preset`): its caps and floors.
    match implied.and_then(FundingFormat::venue_preset) {
        Some(id) => match crate::venue::Preset::load(id, Path::new(".")) {
            Ok(preset) => {
                let venue = preset.name.as_str();
                let (mut at_cap, mut at_floor) = (0, 0);
                for s in f.iter() {
                    let (cap, floor) = preset.limits_at(symbol, s.settle_ms, s.interval_hours);
                    at_cap += usize::from(crate::render::series::at_limit(s.rate, cap, None));
                    at_floor += usize::from(crate::render::series::at_limit(s.rate, None, floor));
                }
                out.push_str(&format!("  at {venue}'s cap / floor for {symbol}: {at_cap} / {at_floor}\n"));
            }
            Err(err) => out.push_str(&format!("  note: cap check skipped ({err:#})\n")),
        },
        None => out.push_str("  cap / floor: not checked (the reader implies no venue; `basis caps` checks a config's funding against presets)\n"),
    }
    let venue_schedule = implied.and_then(|format| format.venue_preset()).and_then(|id| crate::venue::Preset::load_shared(id, std::path::Path::new(".")).ok()).map(|preset| preset.schedule());
    let on_schedule = match &venue_schedule {
        Some(s) => format!("on {}'s schedule ({} h from {} h UTC)", s.venue, s.interval_hours, s.offset_hours),
        None => format!("on a {} h grid anchored at 00:00 UTC", crate::data::typical_interval_hours(&interval_hours)),
    };
    let schedule = venue_schedule.unwrap_or_else(|| Schedule::utc_grid(crate::data::typical_interval_hours(&interval_hours)));
    match funding_offset_warning(&settle_ms, &interval_hours, &schedule) {
        Some(warning) => out.push_str(&format!("  schedule: {warning}\n")),
        None => out.push_str(&format!("  schedule: {on_schedule}\n")),
    }
}

fn describe_bars(out: &mut String, bars: &PriceBars, what: &str) {
    let n = bars.ts_ms.len();
    let (Some(first), Some(last)) = (bars.ts_ms.first(), bars.ts_ms.last()) else {
        out.push_str(&format!("  {what}: no bars\n"));
        return;
    };
    let mut spacing: BTreeMap<i64, usize> = BTreeMap::new();
    for w in bars.ts_ms.windows(2) {
        *spacing.entry(w[1] - w[0]).or_default() += 1;
    }
    let bar_ms = spacing.iter().max_by_key(|(_, c)| **c).map(|(s, _)| *s).unwrap_or(0);
    let gaps: Vec<(i64, i64)> = bars.ts_ms.windows(2).filter(|w| w[1] - w[0] > bar_ms).map(|w| (w[0], w[1])).collect();
    let (lo, hi) = bars.close.iter().fold((f64::MAX, f64::MIN), |a, c| (a.0.min(*c), a.1.max(*c)));
    out.push_str(&format!("  {what}: {n} bars of {} s, closing {} -> {}\n", bar_ms / 1000, format_ms(*first), format_ms(*last)));
    out.push_str(&format!("  close {lo} .. {hi}; volume {}\n", if bars.volume.is_empty() { "none" } else { "present" }));
    out.push_str(&format!("  gaps: {}{}\n", gaps.len(), gaps.first().map(|g| format!(" (first {} -> {})", format_ms(g.0), format_ms(g.1))).unwrap_or_default()));
    match bar_offset_warning("bars", &bars.ts_ms) {
        Some(warning) => out.push_str(&format!("  schedule: {warning}\n")),
        None => out.push_str(&format!("  schedule: bars close on their {} s grid\n", bar_ms / 1000)),
    }
}
