//! freqtrade data directories, as `freqtrade download-data` writes them.
//!
//! Layout (`<datadir>/<exchange>/`): spot `BTC_USDT-1h.feather`; in `futures/`, the perp
//! `BTC_USDT_USDT-1h-futures.feather`, its mark `…-1h-mark.feather` and funding
//! `…-<tf>-funding_rate.feather`. Formats: feather (Arrow IPC), parquet, json (`[[ms, o, h, l, c,
//! v], …]`) and jsongz. Columns `date` (the candle's **open** time), `open, high, low, close,
//! volume`. A candle becomes known at its close, `date + timeframe`; a funding row is a
//! settlement at `date`, with the rate in `open`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use polars::prelude::*;

use super::read::{read_bytes, read_table, RawTable};
use super::{BarRows, FundingRows, FundingSeries, Origin, PriceBars};
use crate::data::source::{FreqtradeFormat, FreqtradeSource, TimeFormat};
use crate::{bail_input, input_error};

/// A freqtrade timeframe (`1m`, `15m`, `1h`, `8h`, `1d`, `1w`) in milliseconds.
pub fn timeframe_ms(timeframe: &str) -> Result<i64> {
    let text = timeframe.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (count, unit) = text.split_at(split);
    let count: i64 = count.parse().unwrap_or(0);
    let unit_ms = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => 0,
    };
    if count <= 0 || unit_ms == 0 {
        bail_input!("`data.freqtrade.timeframe` = {timeframe:?} is not a timeframe: use e.g. 1m, 5m, 1h, 4h, 1d");
    }
    Ok(count * unit_ms)
}

/// freqtrade's file name for a pair: `BTC/USDT:USDT` -> `BTC_USDT_USDT`.
pub fn pair_to_filename(pair: &str) -> String {
    pair.chars().map(|c| if matches!(c, '/' | ' ' | '.' | '@' | '$' | '+' | ':') { '_' } else { c }).collect()
}

/// The perp pair of a spot pair: `BTC/USDT` -> `BTC/USDT:USDT`.
fn default_perp_pair(pair: &str) -> String {
    match pair.split_once('/') {
        Some((_, quote)) if !pair.contains(':') => format!("{pair}:{quote}"),
        _ => pair.to_string(),
    }
}

fn extensions(format: FreqtradeFormat) -> &'static [&'static str] {
    match format {
        FreqtradeFormat::Auto => &["feather", "parquet", "json", "json.gz"],
        FreqtradeFormat::Feather => &["feather"],
        FreqtradeFormat::Parquet => &["parquet"],
        FreqtradeFormat::Json => &["json"],
        FreqtradeFormat::Jsongz => &["json.gz"],
    }
}

/// The files of one pair and timeframe.
#[derive(Debug, Clone)]
pub struct FreqtradeFiles {
    /// Spot candles, `<base>/<PAIR>-<tf>.<ext>`.
    pub spot: PathBuf,
    /// Perp candles, `<base>/futures/<PAIR>-<tf>-futures.<ext>`.
    pub perp: PathBuf,
    /// Mark-price candles, `…-<tf>-mark.<ext>`; None when the directory has none.
    pub mark: Option<PathBuf>,
    /// Funding settlements, `…-<tf>-funding_rate.<ext>` (or the 1h/8h/4h/2h file when that is what exists).
    pub funding: PathBuf,
}

/// Find the spot, perp, mark and funding files a config names, or say what is missing.
pub fn locate(source: &FreqtradeSource) -> Result<FreqtradeFiles> {
    let mut bases = Vec::with_capacity(1 + source.more_datadirs.len());
    for dir in std::iter::once(&source.datadir).chain(&source.more_datadirs) {
        let datadir = Path::new(dir);
        let base = if datadir.join(&source.exchange).is_dir() { datadir.join(&source.exchange) } else { datadir.to_path_buf() };
        if !base.is_dir() {
            bail_input!(
                "freqtrade data directory {} does not exist; set `data.freqtrade.datadir` (and `more_datadirs`) to freqtrade's user_data/data (holding {}/) or to the exchange folder",
                datadir.display(),
                source.exchange
            );
        }
        bases.push(base);
    }
    let base = bases[0].clone();
    let spot_stem = pair_to_filename(&source.pair);
    let perp_pair = source.perp_pair.clone().unwrap_or_else(|| default_perp_pair(&source.pair));
    let perp_stem = pair_to_filename(&perp_pair);
    let tf = &source.timeframe;
    timeframe_ms(tf)?;
    let exts = extensions(source.format);
    // A file is looked for in each directory in turn (`sub`: "" or "futures").
    let find_in = |sub: &str, name: &str| bases.iter().flat_map(|b| exts.iter().map(move |ext| b.join(sub).join(format!("{name}.{ext}")))).find(|p| p.is_file());
    let futures = base.join("futures");
    let missing = |what: &str, dir: &Path, name: &str| {
        let mut present: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        present.sort();
        present.truncate(12);
        input_error!(
            "freqtrade: no {what} file {}/{name}.{{{}}}; the folder holds [{}]. Check pair, timeframe and format in [data.freqtrade], or run `freqtrade download-data --trading-mode {} --timeframes {tf}`",
            dir.display(),
            exts.join(","),
            present.join(", "),
            if what == "spot" { "spot" } else { "futures" }
        )
    };
    let spot = find_in("", &format!("{spot_stem}-{tf}")).ok_or_else(|| missing("spot", &base, &format!("{spot_stem}-{tf}")))?;
    let perp = find_in("futures", &format!("{perp_stem}-{tf}-futures")).ok_or_else(|| missing("perp", &futures, &format!("{perp_stem}-{tf}-futures")))?;
    let mark = find_in("futures", &format!("{perp_stem}-{tf}-mark"));
    // freqtrade stores funding under the exchange's funding timeframe (1h or 8h), whatever the candles'.
    let funding = find_in("futures", &format!("{perp_stem}-{tf}-funding_rate"))
        .or_else(|| ["1h", "8h", "4h", "2h"].iter().find_map(|t| find_in("futures", &format!("{perp_stem}-{t}-funding_rate"))))
        .ok_or_else(|| missing("funding", &futures, &format!("{perp_stem}-{tf}-funding_rate")))?;
    Ok(FreqtradeFiles { spot, perp, mark, funding })
}

/// Read a candle file of any freqtrade format into a table with `date, open, high, low, close, volume`.
pub fn read_candles(path: &Path) -> Result<RawTable> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    if !(name.ends_with(".json") || name.ends_with(".json.gz")) {
        return read_table(path);
    }
    let bytes = read_bytes(path)?;
    let rows: Vec<Vec<serde_json::Value>> = serde_json::from_slice(&bytes).map_err(|err| {
        input_error!("{}: not a freqtrade JSON candle file ([[date_ms, open, high, low, close, volume], ...]): {err}", path.display())
    })?;
    let mut columns: [Vec<f64>; 6] = Default::default();
    for (i, row) in rows.iter().enumerate() {
        if row.len() < 6 {
            bail_input!("{}: row {}: expected 6 values [date_ms, open, high, low, close, volume], found {}", path.display(), i + 1, row.len());
        }
        for (k, column) in columns.iter_mut().enumerate() {
            let value = row[k].as_f64().ok_or_else(|| {
                input_error!("{}: row {}, column {}: expected a number, found {}", path.display(), i + 1, ["date", "open", "high", "low", "close", "volume"][k], row[k])
            })?;
            column.push(value);
        }
    }
    if rows.is_empty() {
        bail_input!("{}: the file holds no candles", path.display());
    }
    let date: Vec<i64> = columns[0].iter().map(|&v| v as i64).collect();
    let frame = DataFrame::new(
        rows.len(),
        vec![
            Column::new("date".into(), date),
            Column::new("open".into(), &columns[1]),
            Column::new("high".into(), &columns[2]),
            Column::new("low".into(), &columns[3]),
            Column::new("close".into(), &columns[4]),
            Column::new("volume".into(), &columns[5]),
        ],
    )?;
    Ok(RawTable { file: path.to_path_buf(), frame, header_lines: 0, is_csv: false, first_row: 0 })
}

/// The candles of `path` as bars known at their close (`date + bar_ms`); dates read as local
/// time `utc_offset_hours` east of UTC when given.
pub fn load_bars(path: &Path, label: &str, bar_ms: i64, utc_offset_hours: Option<f64>, warnings: &mut Vec<String>) -> Result<PriceBars> {
    let table = read_candles(path)?;
    let mut rows = BarRows::new(label);
    let file = rows.sources.add(&table);
    let open = table.local_times_ms(table.column("date")?, TimeFormat::Auto, utc_offset_hours)?;
    let high = table.f64s(table.column("high")?)?;
    let low = table.f64s(table.column("low")?)?;
    let close = table.f64s(table.column("close")?)?;
    let volume = table.f64s(table.column("volume")?)?;
    let open_price = table.f64s(table.column("open")?)?;
    rows.reserve(open.len());
    for i in 0..open.len() {
        rows.push(open[i] + bar_ms, [close[i], high[i], low[i], volume[i], open_price[i]], Origin { file, row: i as u32 })?;
    }
    rows.finish(warnings)
}

/// The funding file `path` (candles with the rate in `open`) as settlements at `date`, every
/// `interval_hours` when given (else as spaced); dates read as local time `utc_offset_hours`
/// east of UTC when given.
pub fn load_funding(path: &Path, interval_hours: Option<f64>, utc_offset_hours: Option<f64>, warnings: &mut Vec<String>) -> Result<FundingSeries> {
    let table = read_candles(path)?;
    let mut rows = FundingRows::default();
    let file = rows.sources.add(&table);
    let settle = table.local_times_ms(table.column("date")?, TimeFormat::Auto, utc_offset_hours)?;
    let rate = table.f64s(table.column("open")?)?;
    for i in 0..settle.len() {
        rows.rows.push((super::binance::round_to_second(settle[i]), rate[i], f64::NAN, f64::NAN, Origin { file, row: i as u32 }));
    }
    rows.finish(interval_hours, warnings)
}

/// Load spot, perp, mark (when present) and funding of a freqtrade data directory.
pub fn load(source: &FreqtradeSource, files: &mut Vec<PathBuf>, warnings: &mut Vec<String>) -> Result<(PriceBars, PriceBars, Option<PriceBars>, FundingSeries)> {
    let found = locate(source)?;
    let bar_ms = timeframe_ms(&source.timeframe)?;
    let spot = load_bars(&found.spot, "spot", bar_ms, None, warnings)?;
    files.push(found.spot.clone());
    let perp = load_bars(&found.perp, "perp", bar_ms, None, warnings)?;
    files.push(found.perp.clone());
    let mark = match &found.mark {
        Some(path) => {
            files.push(path.clone());
            Some(load_bars(path, "mark", bar_ms, None, warnings)?)
        }
        None => {
            warnings.push(format!("freqtrade: no mark-price file for {}; funding and liquidation use the perp's last price", source.pair));
            None
        }
    };
    let funding = load_funding(&found.funding, None, None, warnings)?;
    files.push(found.funding.clone());
    Ok((spot, perp, mark, funding))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_timeframes() {
        assert_eq!(pair_to_filename("BTC/USDT:USDT"), "BTC_USDT_USDT");
        assert_eq!(pair_to_filename("BTC/USDT"), "BTC_USDT");
        assert_eq!(default_perp_pair("ETH/USDT"), "ETH/USDT:USDT");
        assert_eq!(default_perp_pair("ETH/USDT:USDT"), "ETH/USDT:USDT");
        assert_eq!(timeframe_ms("1h").unwrap(), 3_600_000);
        assert_eq!(timeframe_ms("15m").unwrap(), 900_000);
        assert_eq!(timeframe_ms("1d").unwrap(), 86_400_000);
        assert!(timeframe_ms("h1").is_err() && timeframe_ms("1y").is_err());
    }
}
