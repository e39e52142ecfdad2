//! Binance formats: public-data kline dumps (spot and USDⓈ-M, with or without a header row,
//! ms or µs epochs, or ISO text as in REST exports), `fundingRate` monthly dumps, and REST
//! funding exports (`symbol,funding_time,funding_rate,mark_price`).
//!
//! A kline's values are known at its close: `close_time` is the bar's last millisecond
//! (…59.999), so the bar becomes known at `close_time + 1 ms`, the next round time.

use std::path::PathBuf;

use anyhow::Result;

use super::klines::{read_kline_file, KlineBatch, KlineFile, CLOSE, CLOSE_TIME};
use super::read::{expand_glob, read_csv_text, stream_csv, CellParser};
use super::{BarRows, FundingRows, FundingSeries, Origin, PriceBars};
use crate::bail_input;
use crate::data::source::{FundingFormat, FundingSource, PriceSource, TimeFormat};

pub use super::klines::known_at_close;

/// Load Binance kline CSVs (a file or a glob of monthly/daily dumps) as one bar series.
pub fn load_klines(source: &PriceSource, label: &str, files: &mut Vec<PathBuf>, warnings: &mut Vec<String>) -> Result<PriceBars> {
    let paths = expand_glob(&source.path, &format!("{label} klines"))?;
    load_kline_files(paths, source.time_unit, source.utc_offset_hours, label, files, warnings)
}

/// Files parsed side by side at a time: enough to keep the cores busy, few enough that the
/// parsed months waiting to be appended stay small.
const FILES_AT_ONCE: usize = 8;

/// Load the Binance kline CSVs `paths` (one instrument) as one bar series. The files are
/// parsed in parallel ([`super::klines::read_kline_file`]) and appended in order, so an error is
/// the one a file-by-file read meets first.
pub fn load_kline_files(paths: Vec<PathBuf>, time_unit: TimeFormat, utc_offset_hours: Option<f64>, label: &str, files: &mut Vec<PathBuf>, warnings: &mut Vec<String>) -> Result<PriceBars> {
    use rayon::prelude::*;
    let mut rows = BarRows::new(label);
    for group in paths.chunks(FILES_AT_ONCE) {
        let parsed: Vec<Result<(KlineFile, Vec<KlineBatch>)>> = group
            .par_iter()
            .map(|path| {
                // A dump fetched with its .CHECKSUM is verified (and so hashed) before it is read.
                let verified = super::read::verify_checksum(path)?;
                let mut batches = Vec::new();
                let file = read_kline_file(path, time_unit, utc_offset_hours, label, usize::MAX, !verified, |batch| {
                    batches.push(batch);
                    Ok(())
                })?;
                Ok((file, batches))
            })
            .collect();
        for (path, parsed) in group.iter().zip(parsed) {
            let (file, batches) = parsed?;
            let origin = rows.sources.add_csv(path, file.header_lines);
            for batch in batches {
                rows.extend_rows(origin, batch.first_row, batch.known_at_ms, batch.close, Some(batch.high), Some(batch.low), Some(batch.volume), Some(batch.open))?;
            }
            files.push(path.clone());
        }
    }
    rows.finish(warnings)
}

/// Round a settlement time to the nearest second (Binance's `calc_time` carries a few ms of jitter).
pub fn round_to_second(ms: i64) -> i64 {
    (ms + 500).div_euclid(1000) * 1000
}

/// One Binance funding dump file's rows as written, every symbol's (not yet settled or sorted).
pub struct FundingDump {
    /// The file as read (for row locations).
    pub table: super::read::RawTable,
    /// Each row's symbol, when the file has a symbol column (the long layout).
    pub symbols: Option<Vec<String>>,
    /// Settlement times (`calc_time`), ms.
    pub time_ms: Vec<i64>,
    /// Hours between settlements per row (`funding_interval_hours`; the source's
    /// `interval_hours`, else NaN, when the file has no such column).
    pub interval_hours: Vec<f64>,
    /// Rates per interval (`last_funding_rate`).
    pub rate: Vec<f64>,
}

/// Read a Binance funding dump: the monthly layout (`calc_time, funding_interval_hours,
/// last_funding_rate`) or the long one with a symbol first (`symbol, calc_time, ...`, e.g.
/// `funding_all.csv.gz`). With a header, columns are found by name (any case); a header of other
/// names is read by position (the monthly layout). Without one, a first cell that is not a
/// number means the long layout. `has_header: None` detects the header: a first line whose
/// first cell is text and whose second is not a number (`BTCUSDT,1704067200000,...` is a row).
pub fn read_funding_dump(path: &std::path::Path, has_header: Option<bool>, source: &FundingSource) -> Result<FundingDump> {
    let table = super::read::read_csv_text_with_header(path, |bytes| {
        has_header.unwrap_or_else(|| {
            let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
            let second_is_number = String::from_utf8_lossy(first).split(',').nth(1).is_some_and(|cell| cell.trim().trim_matches('"').parse::<f64>().is_ok());
            super::read::csv_has_header(bytes) && !second_is_number
        })
    })?;
    let header = table.header_lines > 0;
    let named = |name: &str| if header { table.frame.columns().iter().find(|c| c.name().as_str().eq_ignore_ascii_case(name)) } else { None };
    let missing = |name: &str| {
        let names: Vec<String> = table.frame.get_column_names().iter().map(|n| n.to_string()).collect();
        crate::input_error!("{}: a Binance funding dump needs a `{name}` column; the file has [{}]", path.display(), names.join(", "))
    };
    let long_headerless = !header && table.frame.columns().first().is_some_and(|c| c.as_materialized_series().str().is_ok_and(|s| s.get(0).is_some_and(|v| !v.trim().is_empty() && v.trim().parse::<f64>().is_err())));
    let (symbol, time, interval, rate) = if named("calc_time").is_some() || named("symbol").is_some() {
        (named("symbol"), named("calc_time").ok_or_else(|| missing("calc_time"))?, named("funding_interval_hours"), named("last_funding_rate").ok_or_else(|| missing("last_funding_rate"))?)
    } else if long_headerless {
        (Some(table.column_at(0, "symbol")?), table.column_at(1, "calc_time")?, Some(table.column_at(2, "funding_interval_hours")?), table.column_at(3, "last_funding_rate")?)
    } else {
        (None, table.column_at(0, "calc_time")?, Some(table.column_at(1, "funding_interval_hours")?), table.column_at(2, "last_funding_rate")?)
    };
    let time_ms = table.local_times_ms(time, source.time_unit, source.utc_offset_hours)?;
    let rate = table.f64s(rate)?;
    let interval_hours = match interval {
        Some(column) => table.f64s(column)?,
        None => vec![source.interval_hours.unwrap_or(f64::NAN); time_ms.len()],
    };
    let symbols = symbol.map(|column| table.strings(column)).transpose()?;
    Ok(FundingDump { table, symbols, time_ms, interval_hours, rate })
}

/// Load Binance funding: `fundingRate` dumps or REST exports, a file or a glob.
pub fn load_funding(source: &FundingSource, symbol: &str, files: &mut Vec<PathBuf>, warnings: &mut Vec<String>) -> Result<FundingSeries> {
    let mut rows = FundingRows { units: source.rates_in, ..FundingRows::default() };
    for path in expand_glob(&source.path, "funding")? {
        if source.format == FundingFormat::BinanceFunding {
            let dump = read_funding_dump(&path, None, source)?;
            let file = rows.sources.add(&dump.table);
            // The long format of many symbols: the config's symbol's rows only.
            let keep: Vec<usize> = match &dump.symbols {
                Some(symbols) => (0..symbols.len()).filter(|&i| symbols[i].eq_ignore_ascii_case(symbol)).collect(),
                None => (0..dump.time_ms.len()).collect(),
            };
            if let (Some(symbols), true) = (&dump.symbols, keep.is_empty()) {
                let mut found: Vec<&str> = symbols.iter().map(String::as_str).collect();
                found.sort_unstable();
                found.dedup();
                bail_input!(
                    "{}: no rows for data.symbol {symbol:?} in the `symbol` column (it holds {} symbols: {}{})",
                    path.display(),
                    found.len(),
                    found.iter().take(8).copied().collect::<Vec<_>>().join(", "),
                    if found.len() > 8 { ", ..." } else { "" }
                );
            }
            for i in keep {
                rows.rows.push((round_to_second(dump.time_ms[i]), dump.rate[i], dump.interval_hours[i], f64::NAN, Origin { file, row: i as u32 }));
            }
            files.push(path);
            continue;
        }
        let table = read_csv_text(&path, None)?;
        let file = rows.sources.add(&table);
        let symbols = table.strings(table.column("symbol")?)?;
        let time = table.local_times_ms(table.column("funding_time")?, source.time_unit, source.utc_offset_hours)?;
        let rate = table.f64s(table.column("funding_rate")?)?;
        let marks = match table.frame.column("mark_price") {
            Ok(column) => optional_f64s(&table, column)?,
            Err(_) => vec![f64::NAN; time.len()],
        };
        for i in 0..time.len() {
            if !symbols[i].eq_ignore_ascii_case(symbol) {
                bail_input!(
                    "{}, column `symbol`: found {:?} but the config's data.symbol is {symbol:?}; one file must hold one symbol",
                    table.locate(i),
                    symbols[i]
                );
            }
            rows.rows.push((round_to_second(time[i]), rate[i], source.interval_hours.unwrap_or(f64::NAN), marks[i], Origin { file, row: i as u32 }));
        }
        files.push(path);
    }
    if source.time_unit == TimeFormat::Iso && source.format == FundingFormat::BinanceFunding {
        warnings.push("funding: binance_funding dumps use ms epochs; time_unit = \"iso\" was honoured".into());
    }
    rows.finish(source.interval_hours, warnings)
}

/// A numeric column where empty cells mean "not given" (NaN); anything else must be a number.
pub fn optional_f64s(table: &super::read::RawTable, column: &polars::prelude::Column) -> Result<Vec<f64>> {
    let text = table.strings(column)?;
    text.iter()
        .enumerate()
        .map(|(i, cell)| {
            if cell.is_empty() {
                return Ok(f64::NAN);
            }
            match cell.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => Err(crate::input_error!("{}, column `{}`: expected a number or an empty cell, found {cell:?}", table.locate(i), column.name())),
            }
        })
        .collect()
}

/// Binance `premiumIndexKlines` (same 12-column layout; values are decimals and may be
/// negative) as premium samples known at each bar's close, for counterfactual funding.
pub fn load_premium_index(pattern: &str) -> Result<crate::model::PremiumSeries> {
    let mut samples: Vec<(i64, f64)> = Vec::new();
    for path in expand_glob(pattern, "premium index klines")? {
        super::read::verify_checksum(&path)?;
        let mut cells = CellParser::new(&path, 0, TimeFormat::Auto);
        stream_csv(&path, |row, header, fields| {
            cells.header_lines = usize::from(!header.is_empty());
            let close = cells.number(row, fields, CLOSE, "close")?;
            if close.abs() > 0.5 {
                bail_input!("{}, column `close`: premium {close} is not a decimal premium index; is this a premiumIndexKlines file?", super::read::locate(&path, cells.header_lines, true, row));
            }
            let close_time = cells.time(row, fields, CLOSE_TIME, "close_time")?;
            samples.push((known_at_close(close_time), close));
            Ok(())
        })?;
    }
    samples.sort_by_key(|s| s.0);
    samples.dedup_by_key(|s| s.0);
    Ok(crate::model::PremiumSeries { ts_ms: samples.iter().map(|s| s.0).collect(), premium: samples.iter().map(|s| s.1).collect() })
}
