//! Funding history as each venue (or tool) exports it, and Bybit's trade dumps as bars.
//!
//! API exports are JSON: the records are the root array, or under `result.list` (Bybit),
//! `data` (OKX), `result` (Deribit) or `historicalFunding` (dYdX). Fields may be strings or
//! numbers. Each venue's record maps to (settlement time, rate for its interval, interval,
//! price): Hyperliquid, dYdX and Deribit rates are hourly; BitMEX states each interval (24 h in
//! its early days); the others are read from row spacing. One file must hold one symbol.
//! Tardis `derivative_ticker` files hold ticker updates: the rate paid at a settlement T is the
//! last `funding_rate` seen with `funding_timestamp` = T.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use serde_json::Value;

use super::read::{expand_glob, locate, offset_ms, parse_iso_ms, parse_iso_ms_zoned, read_bytes, read_table, stream_csv};
use super::{BarRows, FundingRows, FundingSeries, Origin, PriceBars};
use crate::data::source::{FundingFormat, FundingSource, PriceSource};
use crate::{bail_input, input_error};

/// How a record's time is written.
#[derive(Clone, Copy)]
enum Time {
    Ms,
    Seconds,
    Iso,
}

/// How a record's interval is known.
#[derive(Clone, Copy)]
enum Interval {
    Hours(f64),
    Spacing,
    /// BitMEX: `fundingInterval` as a time after 2000-01-01 (08:00 = 8 h, 2000-01-02 = 24 h).
    Bitmex,
}

struct Layout {
    time: &'static str,
    time_kind: Time,
    rate: &'static str,
    interval: Interval,
    price: Option<&'static str>,
    symbol: Option<&'static str>,
}

fn layout(format: FundingFormat) -> Option<Layout> {
    let l = |time, time_kind, rate, interval, price, symbol| Some(Layout { time, time_kind, rate, interval, price, symbol });
    match format {
        FundingFormat::BybitJson => l("fundingRateTimestamp", Time::Ms, "fundingRate", Interval::Spacing, None, Some("symbol")),
        FundingFormat::Okx => l("fundingTime", Time::Ms, "realizedRate", Interval::Spacing, None, Some("instId")),
        FundingFormat::HyperliquidJson => l("time", Time::Ms, "fundingRate", Interval::Hours(1.0), None, Some("coin")),
        FundingFormat::DydxJson => l("effectiveAt", Time::Iso, "rate", Interval::Hours(1.0), Some("price"), Some("ticker")),
        FundingFormat::DeribitJson => l("timestamp", Time::Ms, "interest_1h", Interval::Hours(1.0), Some("index_price"), None),
        FundingFormat::BitmexJson => l("timestamp", Time::Iso, "fundingRate", Interval::Bitmex, None, Some("symbol")),
        FundingFormat::GateJson => l("t", Time::Seconds, "r", Interval::Spacing, None, None),
        FundingFormat::CcxtJson => l("timestamp", Time::Ms, "fundingRate", Interval::Spacing, None, Some("symbol")),
        _ => None,
    }
}

/// The records of a JSON export: a top-level array, or `result.list`, `data`, `result` or
/// `historicalFunding` (the venues' API shapes).
pub fn records(value: &Value) -> Option<&Vec<Value>> {
    value
        .as_array()
        .or_else(|| value.pointer("/result/list").and_then(Value::as_array))
        .or_else(|| value.get("data").and_then(Value::as_array))
        .or_else(|| value.get("result").and_then(Value::as_array))
        .or_else(|| value.get("historicalFunding").and_then(Value::as_array))
}

/// A field as text (strings as they are, numbers printed).
fn text(record: &Value, key: &str) -> Option<String> {
    match record.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Load funding from a venue's export (any format `layout` knows, or Tardis).
pub fn load_funding(source: &FundingSource, files: &mut Vec<PathBuf>, warnings: &mut Vec<String>) -> Result<FundingSeries> {
    if source.format == FundingFormat::Tardis {
        return load_tardis(source, files, warnings);
    }
    let layout = layout(source.format).ok_or_else(|| input_error!("funding format {:?} has no venue layout", source.format))?;
    let mut rows = FundingRows { units: source.rates_in, ..FundingRows::default() };
    for path in expand_glob(&source.path, "funding")? {
        let records: Vec<Value> = if path.to_string_lossy().to_ascii_lowercase().ends_with(".json") {
            let bytes = read_bytes(&path)?;
            let value: Value = serde_json::from_slice(&bytes).map_err(|err| input_error!("{}: not valid JSON ({err})", path.display()))?;
            records(&value).cloned().ok_or_else(|| input_error!("{}: no list of records (expected a JSON array, or result.list, data, result or historicalFunding)", path.display()))?
        } else {
            // CSV or Parquet with the API's field names (e.g. an OKX export).
            let table = read_table(&path)?;
            let names: Vec<String> = table.frame.get_column_names().iter().map(|n| n.to_string()).collect();
            let columns: Vec<Vec<String>> = names.iter().map(|n| table.strings(table.column(n)?)).collect::<Result<_>>()?;
            (0..table.frame.height())
                .map(|i| Value::Object(names.iter().zip(&columns).filter(|(_, c)| !c[i].is_empty()).map(|(n, c)| (n.clone(), Value::String(c[i].clone()))).collect()))
                .collect()
        };
        let file = if path.to_string_lossy().to_ascii_lowercase().ends_with(".json") { rows.sources.add_records(&path) } else { rows.sources.add_csv(&path, 1) };
        let at = |i: usize| if path.to_string_lossy().to_ascii_lowercase().ends_with(".json") { format!("{}: record {}", path.display(), i + 1) } else { locate(&path, 1, true, i) };
        let mut symbol: Option<String> = None;
        for (i, record) in records.iter().enumerate() {
            let field = |key: &str| text(record, key).filter(|s| !s.is_empty()).ok_or_else(|| input_error!("{}: missing field `{key}`", at(i)));
            if let Some(key) = layout.symbol {
                if let Some(s) = text(record, key) {
                    match &symbol {
                        None => symbol = Some(s),
                        Some(first) if *first != s => bail_input!("{}, field `{key}`: {s:?} but earlier records are {first:?}; one file must hold one symbol", at(i)),
                        _ => {}
                    }
                }
            }
            let time_text = field(layout.time)?;
            let settle_ms = match layout.time_kind {
                Time::Iso => {
                    let (ms, zoned) = parse_iso_ms_zoned(&time_text).map_err(|why| input_error!("{}, field `{}`: {why}, found {time_text:?}", at(i), layout.time))?;
                    if zoned { ms } else { ms - offset_ms(source.utc_offset_hours) }
                }
                kind => {
                    let value: f64 = time_text.parse().map_err(|_| input_error!("{}, field `{}`: expected an epoch time, found {time_text:?}", at(i), layout.time))?;
                    let ms = match kind {
                        Time::Seconds => (value * 1000.0).round() as i64,
                        _ => value.round() as i64,
                    };
                    ms - offset_ms(source.utc_offset_hours)
                }
            };
            let rate_text = field(layout.rate)?;
            let rate: f64 = rate_text.parse().ok().filter(|r: &f64| r.is_finite()).ok_or_else(|| input_error!("{}, field `{}`: expected a number, found {rate_text:?}", at(i), layout.rate))?;
            let interval = match layout.interval {
                Interval::Hours(h) => h,
                Interval::Spacing => source.interval_hours.unwrap_or(f64::NAN),
                Interval::Bitmex => {
                    let text = field("fundingInterval")?;
                    let ms = parse_iso_ms(&text).map_err(|why| input_error!("{}, field `fundingInterval`: {why}", at(i)))?;
                    (ms - 946_684_800_000) as f64 / 3_600_000.0
                }
            };
            let price = layout.price.and_then(|key| text(record, key)).and_then(|p| p.parse::<f64>().ok()).filter(|p| p.is_finite() && *p > 0.0).unwrap_or(f64::NAN);
            rows.rows.push((super::binance::round_to_second(settle_ms), rate, interval, price, Origin { file, row: i as u32 }));
        }
        files.push(path);
    }
    rows.finish(source.interval_hours, warnings)
}

/// Tardis `derivative_ticker`: the last rate quoted for each funding timestamp is what settled.
fn load_tardis(source: &FundingSource, files: &mut Vec<PathBuf>, warnings: &mut Vec<String>) -> Result<FundingSeries> {
    let mut rows = FundingRows { units: source.rates_in, ..FundingRows::default() };
    for path in expand_glob(&source.path, "funding")? {
        let file = rows.sources.add_csv(&path, 1);
        // funding timestamp (µs) -> (quote time µs, rate, mark, row)
        let mut last: BTreeMap<i64, (i64, f64, f64, usize)> = BTreeMap::new();
        let mut columns: Option<[usize; 4]> = None;
        stream_csv(&path, |row, header, fields| {
            let idx = match columns {
                Some(c) => c,
                None => {
                    let find = |name: &str| header.iter().position(|h| h == name).ok_or_else(|| input_error!("{}: missing column `{name}` (a Tardis derivative_ticker file has timestamp, funding_timestamp, funding_rate, mark_price)", path.display()));
                    let c = [find("timestamp")?, find("funding_timestamp")?, find("funding_rate")?, find("mark_price")?];
                    columns = Some(c);
                    c
                }
            };
            let cell = |k: usize| fields.get(idx[k]).copied().unwrap_or("");
            let (ts, funding_ts, rate) = (cell(0), cell(1), cell(2));
            if funding_ts.is_empty() || rate.is_empty() {
                return Ok(());
            }
            let parse = |s: &str, name: &str| s.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| input_error!("{}, column `{name}`: expected a number, found {s:?}", locate(&path, 1, true, row)));
            let (ts, funding_ts, rate) = (parse(ts, "timestamp")? as i64, parse(funding_ts, "funding_timestamp")? as i64, parse(rate, "funding_rate")?);
            let mark = cell(3).parse::<f64>().unwrap_or(f64::NAN);
            let entry = last.entry(funding_ts).or_insert((i64::MIN, 0.0, f64::NAN, row));
            if ts >= entry.0 && ts <= funding_ts {
                *entry = (ts, rate, mark, row);
            }
            Ok(())
        })?;
        for (funding_ts, (quoted, rate, mark, row)) in last {
            if quoted == i64::MIN {
                continue; // only quotes after the settlement: it belongs to another file
            }
            rows.rows.push((super::binance::round_to_second(funding_ts / 1000 - offset_ms(source.utc_offset_hours)), rate, source.interval_hours.unwrap_or(f64::NAN), mark, Origin { file, row: row as u32 }));
        }
        files.push(path);
    }
    if rows.rows.is_empty() {
        bail_input!("{}: no funding quotes (an empty Tardis file means no data for that day)", source.path);
    }
    rows.finish(source.interval_hours, warnings)
}

/// Bybit trade dumps (`timestamp,symbol,side,size,price,...`, float-second timestamps) as bars
/// of `bar_seconds`, each known at its end: close = last trade, high/low, volume = Σ size.
pub fn load_bybit_trades(source: &PriceSource, label: &str, files: &mut Vec<PathBuf>, warnings: &mut Vec<String>) -> Result<PriceBars> {
    let bar_ms = i64::from(source.bar_seconds.filter(|s| *s > 0).ok_or_else(|| input_error!("data.{label}: bybit_trades needs bar_seconds (e.g. 3600)"))?) * 1000;
    let mut rows = BarRows::new(label);
    for path in expand_glob(&source.path, &format!("{label} trades"))? {
        let file = rows.sources.add_csv(&path, 1);
        // bar end -> (close, high, low, volume, last trade time, row)
        let mut bars: BTreeMap<i64, (f64, f64, f64, f64, f64, usize)> = BTreeMap::new();
        let mut columns: Option<[usize; 3]> = None;
        stream_csv(&path, |row, header, fields| {
            let idx = match columns {
                Some(c) => c,
                None => {
                    let find = |name: &str| header.iter().position(|h| h == name).ok_or_else(|| input_error!("{}: missing column `{name}` (Bybit trade dumps have timestamp, symbol, side, size, price, ...)", path.display()));
                    let c = [find("timestamp")?, find("price")?, find("size")?];
                    columns = Some(c);
                    c
                }
            };
            let at = || locate(&path, 1, true, row);
            let number = |k: usize, name: &str| -> Result<f64> {
                let cell = fields.get(idx[k]).copied().unwrap_or("");
                cell.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| input_error!("{}, column `{name}`: expected a number, found {cell:?}", at()))
            };
            let (seconds, price, size) = (number(0, "timestamp")?, number(1, "price")?, number(2, "size")?);
            if !(1e8..1e10).contains(&seconds) {
                bail_input!("{}, column `timestamp`: {seconds} is not epoch seconds (Bybit dumps use seconds with a fraction)", at());
            }
            let ms = (seconds * 1000.0).round() as i64 - offset_ms(source.utc_offset_hours);
            let end = ms.div_euclid(bar_ms) * bar_ms + bar_ms;
            let bar = bars.entry(end).or_insert((price, price, price, 0.0, seconds, row));
            if seconds >= bar.4 {
                bar.0 = price;
                bar.4 = seconds;
            }
            bar.1 = bar.1.max(price);
            bar.2 = bar.2.min(price);
            bar.3 += size;
            Ok(())
        })?;
        for (end, (close, high, low, volume, _, row)) in bars {
            rows.push(end, [close, high, low, volume, f64::NAN], Origin { file, row: row as u32 })?;
        }
        files.push(path);
    }
    rows.finish(warnings)
}
