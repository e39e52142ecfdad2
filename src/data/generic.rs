//! Generic CSV, Parquet or Feather files with the column mapping given in the config, and the
//! staking APR series.

use std::path::PathBuf;

use anyhow::Result;

use super::read::{expand_glob, is_parquet, read_table, ParquetPieces, RawTable};
use super::{BarRows, FundingRows, FundingSeries, Origin, PriceBars, StakingSeries};
use crate::data::source::{FundingSource, PriceSource, StakingSource};
use crate::{bail_input, input_error};

fn required<'a>(value: &'a Option<String>, key: &str) -> Result<&'a str> {
    value.as_deref().ok_or_else(|| input_error!("format \"generic\" needs `{key}` (the column name) in the config"))
}

/// Which rows of `table` hold every value of `filter` (all rows without one).
fn kept_rows(table: &super::read::RawTable, filter: &std::collections::BTreeMap<String, String>, rows: usize) -> Result<Vec<bool>> {
    let mut keep = vec![true; rows];
    for (column, wanted) in filter {
        let values = table.strings(table.column(column)?)?;
        for (k, value) in keep.iter_mut().zip(&values) {
            *k &= value == wanted;
        }
    }
    if !filter.is_empty() && !keep.iter().any(|k| *k) {
        bail_input!("{}: no row matches filter {:?}; check the column values (e.g. venue and coin names are case-sensitive)", table.locate(0), filter);
    }
    Ok(keep)
}

/// The time column of generic bars and the shift to the moment their values are known: 0 for
/// a close-time column, the bar length for an open-time column (which needs `bar_seconds`).
/// `key` names the config section in errors.
pub fn bar_time<'a>(close_time_column: &'a Option<String>, open_time_column: &'a Option<String>, bar_seconds: Option<u32>, key: &str) -> Result<(&'a str, i64)> {
    match (close_time_column, open_time_column, bar_seconds) {
        (Some(name), None, _) => Ok((name.as_str(), 0)),
        (None, Some(name), Some(seconds)) if seconds > 0 => Ok((name.as_str(), i64::from(seconds) * 1000)),
        (None, Some(_), _) => bail_input!("{key}: `open_time_column` needs `bar_seconds` > 0 (values are known at open + bar length)"),
        _ => bail_input!("{key}: give exactly one of `close_time_column` or `open_time_column` (with `bar_seconds`)"),
    }
}

/// Parquet files at least this long are read a row group at a time: their whole bytes and
/// decoded columns are not held at once, which sets a long run's peak memory. Smaller ones are
/// read whole, which is faster (one read, columns moved rather than copied).
pub const PIECEWISE_PARQUET_BYTES: u64 = 32 << 20;

/// Load generic price bars. Bars stamped with their open time become known `bar_seconds` later.
pub fn load_prices(source: &PriceSource, label: &str, files: &mut Vec<PathBuf>, warnings: &mut Vec<String>) -> Result<PriceBars> {
    load_prices_piecewise_from(source, label, PIECEWISE_PARQUET_BYTES, files, warnings)
}

/// [`load_prices`], reading Parquet files of `piecewise_bytes` or more a row group at a time.
pub fn load_prices_piecewise_from(source: &PriceSource, label: &str, piecewise_bytes: u64, files: &mut Vec<PathBuf>, warnings: &mut Vec<String>) -> Result<PriceBars> {
    let close_name = required(&source.close_column, &format!("data.{label}.close_column"))?;
    let (time_name, shift_ms) = bar_time(&source.close_time_column, &source.open_time_column, source.bar_seconds, &format!("data.{label}"))?;
    let mut rows = BarRows::new(label);
    for path in expand_glob(&source.path, &format!("{label} bars"))? {
        let long = std::fs::metadata(&path).is_ok_and(|m| m.len() >= piecewise_bytes);
        if source.filter.is_empty() && is_parquet(&path) && long {
            // A row group at a time, the mapped columns only (a filter needs the whole file to
            // tell "no row matches" from "none in this row group").
            let mut wanted = vec![time_name, close_name];
            wanted.extend([&source.open_column, &source.high_column, &source.low_column, &source.volume_column].into_iter().flatten().map(String::as_str));
            let pieces = ParquetPieces::open(&path, &wanted)?;
            rows.reserve(pieces.rows());
            rows.reserve_optional(pieces.rows(), source.volume_column.is_some(), source.open_column.is_some());
            for piece in pieces.pieces() {
                let table = pieces.read(piece)?;
                let file = rows.sources.add(&table);
                let bars = TableBars::read(&table, source, time_name, close_name)?;
                rows.extend_rows(file, piece.0, known_at(bars.time, shift_ms), bars.close, bars.high, bars.low, bars.volume, bars.open)?;
            }
            pieces.finish()?;
            files.push(path);
            continue;
        }
        let table = read_table(&path)?;
        let file = rows.sources.add(&table);
        let TableBars { time, close, open, high, low, volume } = TableBars::read(&table, source, time_name, close_name)?;
        if source.filter.is_empty() {
            // Whole columns: no per-row copies.
            rows.extend_file(file, known_at(time, shift_ms), close, high, low, volume, open)?;
            files.push(path);
            continue;
        }
        let keep = kept_rows(&table, &source.filter, time.len())?;
        rows.reserve(keep.iter().filter(|k| **k).count());
        for i in (0..time.len()).filter(|&i| keep[i]) {
            let at = |column: &Option<Vec<f64>>, otherwise: f64| column.as_ref().map_or(otherwise, |v| v[i]);
            rows.push(time[i] + shift_ms, [close[i], at(&high, close[i]), at(&low, close[i]), at(&volume, f64::NAN), at(&open, f64::NAN)], Origin { file, row: i as u32 })?;
        }
        files.push(path);
    }
    rows.finish(warnings)
}

/// Generic bars from Parquet files read one row group (piece) at a time, in file order, so a
/// long run need not hold a series: a first pass may read the pieces' times alone
/// ([`BarPieces::times`]), the run then the bars ([`BarPieces::bars`]). Every file is hashed
/// for the manifest on a thread of its own meanwhile ([`BarPieces::hash_in_background`]).
pub struct BarPieces {
    label: String,
    source: PriceSource,
    time_name: String,
    close_name: String,
    shift_ms: i64,
    files: Vec<(PathBuf, ParquetPieces)>,
    /// Per file, when it is a kline dump read from the dump cache: the dump's header lines. Its
    /// rows are then located at the dump's lines, and the dump (hashed when its entry was
    /// found) is what the manifest lists, not the entry.
    dumps: Vec<Option<usize>>,
    /// (file, (first row, rows)) of every piece, in order.
    pieces: Vec<(usize, (usize, usize))>,
}

impl BarPieces {
    /// The source's files as pieces, or `None` when it cannot be read so: a file that is not
    /// Parquet, or a row filter (whether any row matches is a whole-file fact).
    pub fn open(source: &PriceSource, label: &str) -> Result<Option<Self>> {
        if source.format != crate::data::source::PriceFormat::Generic || !source.filter.is_empty() {
            return Ok(None);
        }
        let paths = expand_glob(&source.path, &format!("{label} bars"))?;
        if !paths.iter().all(|p| is_parquet(p)) {
            return Ok(None);
        }
        let close_name = required(&source.close_column, &format!("data.{label}.close_column"))?.to_string();
        let (time_name, shift_ms) = bar_time(&source.close_time_column, &source.open_time_column, source.bar_seconds, &format!("data.{label}"))?;
        let time_name = time_name.to_string();
        let mut wanted = vec![time_name.as_str(), close_name.as_str()];
        wanted.extend([&source.open_column, &source.high_column, &source.low_column, &source.volume_column].into_iter().flatten().map(String::as_str));
        let mut files = Vec::with_capacity(paths.len());
        let mut pieces = Vec::new();
        for path in paths {
            let file = ParquetPieces::open_unhashed(&path, &wanted)?;
            pieces.extend(file.pieces().into_iter().map(|piece| (files.len(), piece)));
            files.push((path, file));
        }
        let dumps = vec![None; files.len()];
        Ok(Some(BarPieces { label: label.to_string(), source: source.clone(), time_name, close_name, shift_ms, files, dumps, pieces }))
    }

    /// The source's files as pieces, as [`BarPieces::open`], with Binance kline dumps read
    /// through `cache` ([`super::dump_cache`]): each dump is parsed once into an entry, and the
    /// entries are read as Parquet. `None` for what cannot be read so (a zoned source: its
    /// times move as a whole series).
    pub fn open_with(source: &PriceSource, label: &str, cache: Option<&super::dump_cache::DumpCache>) -> Result<Option<Self>> {
        match (source.format, cache) {
            (crate::data::source::PriceFormat::BinanceKlines, Some(cache)) if source.time_zone.is_none() => {
                let paths = expand_glob(&source.path, &format!("{label} klines"))?;
                let entries = cache.klines(&paths, source.time_unit, source.utc_offset_hours, label)?;
                Ok(Some(Self::from_cached_klines(entries, label)?))
            }
            _ => Self::open(source, label),
        }
    }

    /// Pieces over dump cache entries (in the dumps' order).
    fn from_cached_klines(entries: Vec<super::dump_cache::CachedKlines>, label: &str) -> Result<Self> {
        let column = |name: &str| Some(name.to_string());
        let source = PriceSource {
            format: crate::data::source::PriceFormat::Generic,
            path: String::new(),
            close_time_column: column("known_at_ms"),
            open_time_column: None,
            bar_seconds: None,
            time_unit: crate::data::source::TimeFormat::Ms,
            close_column: column("close"),
            high_column: column("high"),
            low_column: column("low"),
            volume_column: column("volume"),
            // Checked when the entry was written; not kept in it.
            open_column: None,
            filter: Default::default(),
            utc_offset_hours: None,
            time_zone: None,
        };
        let wanted = ["known_at_ms", "close", "high", "low", "volume"];
        let (mut files, mut dumps, mut pieces) = (Vec::with_capacity(entries.len()), Vec::with_capacity(entries.len()), Vec::new());
        for cached in entries {
            let file = ParquetPieces::open_unhashed(&cached.entry, &wanted)?;
            pieces.extend(file.pieces().into_iter().map(|piece| (files.len(), piece)));
            files.push((cached.dump, file));
            dumps.push(Some(cached.header_lines));
        }
        Ok(BarPieces { label: label.to_string(), source, time_name: "known_at_ms".into(), close_name: "close".into(), shift_ms: 0, files, dumps, pieces })
    }

    /// Number of pieces.
    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    /// Start hashing the files for the manifest, on threads of their own (once the caller knows
    /// it will read them: a first pass that gives up must not hash them twice).
    pub fn hash_in_background(&mut self) {
        for ((_, file), dump) in self.files.iter_mut().zip(&self.dumps) {
            if dump.is_none() {
                file.hash_in_background();
            }
        }
    }

    /// Whether the files hold no rows.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Rows in piece `k`.
    pub fn rows(&self, k: usize) -> usize {
        self.pieces[k].1 .1
    }

    /// The times piece `k`'s bars are known at (its time column alone).
    pub fn times(&self, k: usize) -> Result<Vec<i64>> {
        let (file, piece) = self.pieces[k];
        let table = self.files[file].1.with_columns(&[&self.time_name])?.read(piece)?;
        Ok(known_at(table.local_times_ms(table.column(&self.time_name)?, self.source.time_unit, self.source.utc_offset_hours)?, self.shift_ms))
    }

    /// Piece `k`'s bars, each checked (an error names the file and row).
    pub fn bars(&self, k: usize, warnings: &mut Vec<String>) -> Result<PriceBars> {
        let (file, piece) = self.pieces[k];
        let mut table = self.files[file].1.read(piece)?;
        if let Some(header_lines) = self.dumps[file] {
            (table.file, table.header_lines, table.is_csv) = (self.files[file].0.clone(), header_lines, true);
        }
        let mut rows = BarRows::new(&self.label);
        let origin = rows.sources.add(&table);
        let bars = TableBars::read(&table, &self.source, &self.time_name, &self.close_name)?;
        rows.extend_rows(origin, piece.0, known_at(bars.time, self.shift_ms), bars.close, bars.high, bars.low, bars.volume, bars.open)?;
        rows.finish(warnings)
    }

    /// The dump cache entries read (none unless the pieces are over kline dumps).
    pub fn cache_entries(&self) -> Vec<PathBuf> {
        self.files.iter().zip(&self.dumps).filter(|(_, dump)| dump.is_some()).map(|((_, file), _)| file.path().to_path_buf()).collect()
    }

    /// Wait for the files' hashes (for the manifest) and give their paths.
    pub fn finish(self) -> Result<Vec<PathBuf>> {
        let mut paths = Vec::with_capacity(self.files.len());
        for ((path, file), dump) in self.files.into_iter().zip(self.dumps) {
            if dump.is_none() {
                file.finish()?;
            }
            paths.push(path);
        }
        Ok(paths)
    }
}

/// Bar times shifted to when the bars are known (moved through when the shift is 0).
fn known_at(time: Vec<i64>, shift_ms: i64) -> Vec<i64> {
    if shift_ms == 0 { time } else { time.into_iter().map(|t| t + shift_ms).collect() }
}

/// The mapped columns of one table of generic bars (times not yet shifted to when known).
struct TableBars {
    time: Vec<i64>,
    close: Vec<f64>,
    open: Option<Vec<f64>>,
    high: Option<Vec<f64>>,
    low: Option<Vec<f64>>,
    volume: Option<Vec<f64>>,
}

impl TableBars {
    fn read(table: &RawTable, source: &PriceSource, time_name: &str, close_name: &str) -> Result<Self> {
        let time = table.local_times_ms(table.column(time_name)?, source.time_unit, source.utc_offset_hours)?;
        let close = table.f64s(table.column(close_name)?)?;
        // Optional columns are read only when named: no column of NaN per missing one.
        let optional = |name: &Option<String>| -> Result<Option<Vec<f64>>> { name.as_ref().map(|n| table.f64s(table.column(n)?)).transpose() };
        let (open, high, low, volume) = (optional(&source.open_column)?, optional(&source.high_column)?, optional(&source.low_column)?, optional(&source.volume_column)?);
        // Without a high/low column the bar's range is what is known of it: its open and close
        // (without an open either, the close: left absent, which the bars read as the close).
        let (high, low) = match &open {
            Some(o) => (
                Some(high.unwrap_or_else(|| close.iter().zip(o).map(|(c, o)| c.max(*o)).collect())),
                Some(low.unwrap_or_else(|| close.iter().zip(o).map(|(c, o)| c.min(*o)).collect())),
            ),
            None => (high, low),
        };
        Ok(TableBars { time, close, open, high, low, volume })
    }
}

/// Load generic funding settlements.
pub fn load_funding(source: &FundingSource, files: &mut Vec<PathBuf>, warnings: &mut Vec<String>) -> Result<FundingSeries> {
    let time_name = required(&source.time_column, "data.funding.time_column")?;
    let rate_name = required(&source.rate_column, "data.funding.rate_column")?;
    let mut rows = FundingRows { units: source.rates_in, ..FundingRows::default() };
    for path in expand_glob(&source.path, "funding")? {
        let table = read_table(&path)?;
        let file = rows.sources.add(&table);
        let time = table.local_times_ms(table.column(time_name)?, source.time_unit, source.utc_offset_hours)?;
        let rate = table.f64s(table.column(rate_name)?)?;
        let interval = match &source.interval_hours_column {
            Some(name) => table.f64s(table.column(name)?)?,
            None => vec![source.interval_hours.unwrap_or(f64::NAN); time.len()],
        };
        let mark = match &source.mark_column {
            // Empty cells (or nulls) mean no mark for that settlement.
            Some(name) => super::binance::optional_f64s(&table, table.column(name)?)?,
            None => vec![f64::NAN; time.len()],
        };
        let keep = kept_rows(&table, &source.filter, time.len())?;
        for i in (0..time.len()).filter(|&i| keep[i]) {
            rows.rows.push((super::binance::round_to_second(time[i]), rate[i], interval[i], mark[i], Origin { file, row: i as u32 }));
        }
        files.push(path);
    }
    rows.finish(source.interval_hours, warnings)
}

/// Load a staking APR series (decimal APR per row, known from the row's time on).
pub fn load_staking(source: &StakingSource, files: &mut Vec<PathBuf>) -> Result<StakingSeries> {
    let mut pairs: Vec<(i64, f64)> = Vec::new();
    for path in expand_glob(&source.path, "staking")? {
        let table = read_table(&path)?;
        let mut time = table.local_times_ms(table.column(&source.time_column)?, source.time_unit, source.utc_offset_hours)?;
        if let Some(name) = &source.time_zone {
            super::zone::to_utc(&mut time, super::zone::parse(name, "data.staking.time_zone")?, "staking")?;
        }
        let apr = table.f64s(table.column(&source.apr_column)?)?;
        for i in 0..time.len() {
            if !(0.0..=1.0).contains(&apr[i]) {
                bail_input!(
                    "{}, column `{}`: staking APR {} is outside [0, 1]; give it as a decimal (0.035 = 3.5 %)",
                    table.locate(i),
                    source.apr_column,
                    apr[i]
                );
            }
            pairs.push((time[i], apr[i]));
        }
        files.push(path);
    }
    pairs.sort_by_key(|p| p.0);
    pairs.dedup_by_key(|p| p.0);
    Ok(StakingSeries { ts_ms: pairs.iter().map(|p| p.0).collect(), apr: pairs.iter().map(|p| p.1).collect() })
}
