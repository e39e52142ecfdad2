//! Binance formats: public-data kline dumps (spot and USDⓈ-M, with or without a header row,
//! ms or µs epochs, or ISO text as in REST exports), `fundingRate` monthly dumps, and REST
//! funding exports (`symbol,funding_time,funding_rate,mark_price`).
//!
//! A kline's values are known at its close: `close_time` is the bar's last millisecond
//! (…59.999), so the bar becomes known at `close_time + 1 ms`, the next round time.

use std::path::PathBuf;

use anyhow::Result;

use super::read::{expand_glob, read_csv_text, stream_csv, CellParser};
use super::{BarRows, FundingRows, FundingSeries, Origin, PriceBars};
use crate::bail_input;
use crate::data::source::{FundingFormat, FundingSource, PriceSource, TimeFormat};

/// Kline column positions (the dump layout is positional; header names vary).
const OPEN_TIME: usize = 0;
const OPEN: usize = 1;
const HIGH: usize = 2;
const LOW: usize = 3;
const CLOSE: usize = 4;
const VOLUME: usize = 5;
const CLOSE_TIME: usize = 6;

/// Load Binance kline CSVs (a file or a glob of monthly/daily dumps) as one bar series.
pub fn load_klines(source: &PriceSource, label: &str, files: &mut Vec<PathBuf>, warnings: &mut Vec<String>) -> Result<PriceBars> {
    let paths = expand_glob(&source.path, &format!("{label} klines"))?;
    load_kline_files(paths, source.time_unit, source.utc_offset_hours, label, files, warnings)
}

/// Load the Binance kline CSVs `paths` (one instrument) as one bar series.
pub fn load_kline_files(paths: Vec<PathBuf>, time_unit: TimeFormat, utc_offset_hours: Option<f64>, label: &str, files: &mut Vec<PathBuf>, warnings: &mut Vec<String>) -> Result<PriceBars> {
    let mut rows = BarRows::new(label);
    for path in paths {
        // A dump fetched with its .CHECKSUM is verified before it is read.
        super::read::verify_checksum(&path)?;
        // Streamed: a multi-GB dump is never held as text, only as the parsed rows.
        let file = rows.sources.add_csv(&path, 0);
        let mut cells = CellParser::new(&path, 0, time_unit).with_utc_offset(utc_offset_hours);
        let mut header_seen = None;
        let (header_lines, _) = stream_csv(&path, |row, header, fields| {
            if header_seen.is_none() {
                header_seen = Some(usize::from(!header.is_empty()));
                cells.header_lines = usize::from(!header.is_empty());
                // Known now, so a bad bar pushed below is located by its true line.
                rows.sources.set_header_lines(file, cells.header_lines);
            }
            let open = cells.time(row, fields, OPEN_TIME, "open_time")?;
            let open_price = cells.number(row, fields, OPEN, "open")?;
            let high = cells.number(row, fields, HIGH, "high")?;
            let low = cells.number(row, fields, LOW, "low")?;
            let close = cells.number(row, fields, CLOSE, "close")?;
            let volume = cells.number(row, fields, VOLUME, "volume")?;
            let close_time = cells.time(row, fields, CLOSE_TIME, "close_time")?;
            if close_time < open {
                bail_input!(
                    "{}: close_time {} is before open_time {}; is this a Binance kline file (open_time, open, high, low, close, volume, close_time, ...)?",
                    super::read::locate(&path, cells.header_lines, true, row),
                    crate::time::format_ms(close_time),
                    crate::time::format_ms(open)
                );
            }
            rows.push(known_at_close(close_time), [close, high, low, volume, open_price], Origin { file, row: row as u32 })?;
            Ok(())
        })?;
        rows.sources.set_header_lines(file, header_lines);
        files.push(path);
    }
    rows.finish(warnings)
}

/// The instant a bar closing at `close_time_ms` is known: Binance stamps the bar's last
/// millisecond (…999), so round that up to the bar boundary.
pub fn known_at_close(close_time_ms: i64) -> i64 {
    if (close_time_ms + 1) % 1000 == 0 {
        close_time_ms + 1
    } else {
        close_time_ms
    }
}

/// Round a settlement time to the nearest second (Binance's `calc_time` carries a few ms of jitter).
pub fn round_to_second(ms: i64) -> i64 {
    (ms + 500).div_euclid(1000) * 1000
}

/// Load Binance funding: `fundingRate` dumps or REST exports, a file or a glob.
pub fn load_funding(source: &FundingSource, symbol: &str, files: &mut Vec<PathBuf>, warnings: &mut Vec<String>) -> Result<FundingSeries> {
    let mut rows = FundingRows { units: source.rates_in, ..FundingRows::default() };
    for path in expand_glob(&source.path, "funding")? {
        let table = read_csv_text(&path, None)?;
        let file = rows.sources.add(&table);
        match source.format {
            FundingFormat::BinanceFunding if table.frame.column("symbol").is_ok() => {
                // The long format of many symbols (`symbol,calc_time,funding_interval_hours,
                // last_funding_rate`, e.g. funding_all.csv.gz): the config's symbol's rows only.
                let symbols = table.strings(table.column("symbol")?)?;
                let keep: Vec<usize> = (0..symbols.len()).filter(|&i| symbols[i].eq_ignore_ascii_case(symbol)).collect();
                if keep.is_empty() {
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
                let time = table.local_times_ms(table.column("calc_time")?, source.time_unit, source.utc_offset_hours)?;
                let interval = table.f64s(table.column("funding_interval_hours")?)?;
                let rate = table.f64s(table.column("last_funding_rate")?)?;
                for i in keep {
                    rows.rows.push((round_to_second(time[i]), rate[i], interval[i], f64::NAN, Origin { file, row: i as u32 }));
                }
            }
            FundingFormat::BinanceFunding => {
                // calc_time, funding_interval_hours, last_funding_rate
                let time = table.local_times_ms(table.column_at(0, "calc_time")?, source.time_unit, source.utc_offset_hours)?;
                let interval = table.f64s(table.column_at(1, "funding_interval_hours")?)?;
                let rate = table.f64s(table.column_at(2, "last_funding_rate")?)?;
                for i in 0..time.len() {
                    rows.rows.push((round_to_second(time[i]), rate[i], interval[i], f64::NAN, Origin { file, row: i as u32 }));
                }
            }
            _ => {
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
            }
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
