//! Reading tabular files into Polars and pulling typed, validated columns out of them.
//!
//! CSV files (plain, `.gz` or a Binance `.zip`) are read with every column as text, so that a bad
//! cell is reported with its file, line and column instead of being coerced or dropped; Parquet and
//! Feather files keep their types. Timestamps are normalised to epoch milliseconds (UTC).

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::*;

use crate::data::source::TimeFormat;
use crate::{bail_input, input_error};

/// One file read into a frame, with what is needed to point at a line in it.
pub struct RawTable {
    /// The file the rows came from.
    pub file: PathBuf,
    /// The rows; CSV columns are all text.
    pub frame: DataFrame,
    /// Lines before the first data row (1 with a header, else 0).
    pub header_lines: usize,
    /// Whether the file is CSV (line numbers are meaningful) or columnar.
    pub is_csv: bool,
    /// The file's row that is the frame's first (a Parquet file read a row group at a time).
    pub first_row: usize,
}

impl RawTable {
    /// Where row `index` (0-based) sits in the file, for error messages.
    pub fn locate(&self, index: usize) -> String {
        locate(&self.file, self.header_lines, self.is_csv, self.first_row + index)
    }

    /// The column called `name`, or an error that lists the columns the file has.
    pub fn column(&self, name: &str) -> Result<&Column> {
        self.frame.column(name).map_err(|_| missing_column(&self.file, name, self.frame.get_column_names().iter().map(|n| n.as_str())))
    }

    /// The column the header names `what`, else the `index`-th (headerless files).
    pub fn column_at(&self, index: usize, what: &str) -> Result<&Column> {
        // A header that names the column wins over its place, so a file with its columns in
        // another order reads the same here as in `data inspect` (which reads by name).
        if let Ok(column) = self.frame.column(what) {
            return Ok(column);
        }
        self.frame.columns().get(index).ok_or_else(|| {
            input_error!(
                "{}: expected at least {} columns ({what} is column {}), found {}",
                self.file.display(),
                index + 1,
                index + 1,
                self.frame.width()
            )
        })
    }

    /// A numeric column as finite f64 values; text is parsed, and an empty, non-numeric,
    /// NaN or infinite cell is an error naming its line and column.
    pub fn f64s(&self, column: &Column) -> Result<Vec<f64>> {
        let name = column.name().to_string();
        let series = column.as_materialized_series();
        // The common case, a float column without nulls or non-finite values, copied slice by
        // slice; anything else takes the row-by-row path below, which names the bad row.
        if let Ok(floats) = series.f64() {
            if floats.null_count() == 0 && floats.downcast_iter().all(|chunk| chunk.values().iter().all(|v| v.is_finite())) {
                let mut out = Vec::with_capacity(floats.len());
                for chunk in floats.downcast_iter() {
                    out.extend_from_slice(chunk.values());
                }
                return Ok(out);
            }
        }
        let mut out = Vec::with_capacity(series.len());
        if let Ok(text) = series.str() {
            for (i, cell) in text.iter().enumerate() {
                let cell = cell.map(str::trim).unwrap_or("");
                let value: f64 = cell.parse().map_err(|_| {
                    input_error!(
                        "{}, column `{name}`: expected a number, found {:?}",
                        self.locate(i),
                        cell
                    )
                })?;
                out.push(self.finite(value, i, &name)?);
            }
        } else {
            let cast = series
                .cast(&DataType::Float64)
                .map_err(|_| input_error!("{}: column `{name}` has type {}, expected a number", self.file.display(), series.dtype()))?;
            for (i, value) in cast.f64()?.iter().enumerate() {
                let value = value.ok_or_else(|| input_error!("{}, column `{name}`: empty cell, expected a number", self.locate(i)))?;
                out.push(self.finite(value, i, &name)?);
            }
        }
        Ok(out)
    }

    fn finite(&self, value: f64, index: usize, name: &str) -> Result<f64> {
        if !value.is_finite() {
            bail_input!("{}, column `{name}`: expected a finite number, found {value}", self.locate(index));
        }
        Ok(value)
    }

    /// A timestamp column as epoch milliseconds (UTC), from epoch numbers (s, ms or µs, detected
    /// from their magnitude when `unit` is `Auto`), ISO-8601 text, or a Datetime column.
    /// One file must use one unit throughout; mixing is an error naming the first odd row.
    pub fn times_ms(&self, column: &Column, unit: TimeFormat) -> Result<Vec<i64>> {
        self.local_times_ms(column, unit, None)
    }

    /// [`RawTable::times_ms`] for a file written in local time `utc_offset_hours` east of UTC:
    /// epoch numbers and text without a zone are shifted back to UTC; text that carries its own
    /// offset (`+03:00`, `Z`) and typed Datetime columns are taken as they are.
    pub fn local_times_ms(&self, column: &Column, unit: TimeFormat, utc_offset_hours: Option<f64>) -> Result<Vec<i64>> {
        let shift = offset_ms(utc_offset_hours);
        let name = column.name().to_string();
        let series = column.as_materialized_series();
        if let DataType::Datetime(_, _) = series.dtype() {
            let ms = series.cast(&DataType::Datetime(polars::prelude::TimeUnit::Milliseconds, None))?;
            let ms = ms.cast(&DataType::Int64)?;
            return ms
                .i64()?
                .iter()
                .enumerate()
                .map(|(i, v)| v.ok_or_else(|| input_error!("{}, column `{name}`: empty timestamp", self.locate(i))))
                .collect();
        }
        if series.dtype().is_primitive_numeric() {
            return Ok(self.numeric_times_ms(series, unit)?.into_iter().map(|ms| ms - shift).collect());
        }
        let text_owned;
        let text = match series.str() {
            Ok(text) => text,
            Err(_) => {
                text_owned = series.cast(&DataType::String)?;
                text_owned.str()?
            }
        };
        let mut out = Vec::with_capacity(text.len());
        let mut file_unit: Option<TimeFormat> = None;
        for (i, cell) in text.iter().enumerate() {
            let cell = cell.map(str::trim).unwrap_or("");
            if cell.is_empty() {
                bail_input!("{}, column `{name}`: empty timestamp", self.locate(i));
            }
            let (ms, row_unit, zoned) = parse_time_cell_zoned(cell, unit).map_err(|why| {
                input_error!("{}, column `{name}`: {why}, found {:?}", self.locate(i), cell)
            })?;
            self.same_unit(&mut file_unit, row_unit, i, &name, cell)?;
            out.push(if zoned { ms } else { ms - shift });
        }
        Ok(out)
    }

    /// One file must use one time unit: remember the first row's and refuse a different one.
    fn same_unit(&self, file_unit: &mut Option<TimeFormat>, row_unit: TimeFormat, index: usize, name: &str, cell: impl std::fmt::Display) -> Result<()> {
        match *file_unit {
            None => *file_unit = Some(row_unit),
            Some(first) if first != row_unit => bail_input!(
                "{}, column `{name}`: timestamp {cell} is in {} but earlier rows of this file are in {}; one file must use one unit (set time_unit in the config if detection is wrong)",
                self.locate(index),
                unit_name(row_unit),
                unit_name(first)
            ),
            Some(_) => {}
        }
        Ok(())
    }

    /// Epoch numbers (Parquet/Feather integer or float columns) to ms, one unit per file.
    fn numeric_times_ms(&self, series: &Series, unit: TimeFormat) -> Result<Vec<i64>> {
        if let Some(ms) = whole_column_epoch_ms(series, unit) {
            return Ok(ms);
        }
        let name = series.name().to_string();
        let values = series.cast(&DataType::Float64)?;
        let values = values.f64()?;
        let mut out = Vec::with_capacity(values.len());
        let mut file_unit = if unit == TimeFormat::Auto { None } else { Some(unit) };
        for (i, value) in values.iter().enumerate() {
            let value = value.ok_or_else(|| input_error!("{}, column `{name}`: empty timestamp", self.locate(i)))?;
            let row_unit = match unit {
                TimeFormat::Auto => detect_epoch_unit(value.abs())
                    .map_err(|why| input_error!("{}, column `{name}`: {why}, found {value}", self.locate(i)))?,
                TimeFormat::Iso => bail_input!("{}: column `{name}` holds numbers, but time_unit is \"iso\"", self.file.display()),
                explicit => explicit,
            };
            self.same_unit(&mut file_unit, row_unit, i, &name, value)?;
            let ms = match row_unit {
                TimeFormat::S => value * 1e3,
                TimeFormat::Us => value / 1e3,
                _ => value,
            };
            out.push(ms.floor() as i64);
        }
        Ok(out)
    }

    /// A text column (e.g. a symbol), with empty cells as "".
    pub fn strings(&self, column: &Column) -> Result<Vec<String>> {
        let series = column.as_materialized_series().cast(&DataType::String)?;
        Ok(series.str()?.iter().map(|v| v.unwrap_or("").trim().to_string()).collect())
    }
}

/// The error for a mapped column `name` that `file` lacks, listing the columns it has.
fn missing_column<'a>(file: &Path, name: &str, has: impl Iterator<Item = &'a str>) -> anyhow::Error {
    input_error!("{}: missing column `{name}`; the file has columns [{}]. Check the column mapping in the config.", file.display(), has.collect::<Vec<_>>().join(", "))
}

/// "file: line N" for CSV (counting header lines), "file: row N" for columnar files; `index` is 0-based.
pub fn locate(file: &Path, header_lines: usize, is_csv: bool, index: usize) -> String {
    if is_csv {
        format!("{}: line {}", file.display(), index + 1 + header_lines)
    } else {
        format!("{}: row {}", file.display(), index + 1)
    }
}

/// Human name of a time unit, for messages.
pub fn unit_name(unit: TimeFormat) -> &'static str {
    match unit {
        TimeFormat::Auto => "auto",
        TimeFormat::S => "seconds",
        TimeFormat::Ms => "milliseconds",
        TimeFormat::Us => "microseconds",
        TimeFormat::Iso => "ISO-8601 text",
    }
}

/// A `utc_offset_hours` option as milliseconds to subtract (0 when unset).
pub fn offset_ms(utc_offset_hours: Option<f64>) -> i64 {
    utc_offset_hours.map(|h| (h * 3_600_000.0).round() as i64).unwrap_or(0)
}

/// Parse one timestamp cell to epoch ms, returning the unit it was read in.
pub fn parse_time_cell(cell: &str, unit: TimeFormat) -> std::result::Result<(i64, TimeFormat), String> {
    parse_time_cell_zoned(cell, unit).map(|(ms, unit, _)| (ms, unit))
}

/// [`parse_time_cell`], also saying whether the cell carried its own zone (`Z`, `+03:00`):
/// only such cells are exempt from a source's `utc_offset_hours`.
pub fn parse_time_cell_zoned(cell: &str, unit: TimeFormat) -> std::result::Result<(i64, TimeFormat, bool), String> {
    let is_epoch = cell.parse::<f64>().is_ok();
    match unit {
        TimeFormat::Iso => parse_iso_ms_zoned(cell).map(|(ms, zoned)| (ms, TimeFormat::Iso, zoned)),
        TimeFormat::Auto if !is_epoch => parse_iso_ms_zoned(cell).map(|(ms, zoned)| (ms, TimeFormat::Iso, zoned)),
        _ => {
            let value: f64 = cell.parse().map_err(|_| "expected an epoch timestamp".to_string())?;
            let unit = match unit {
                TimeFormat::Auto => detect_epoch_unit(value.abs())?,
                explicit => explicit,
            };
            let ms = match unit {
                TimeFormat::S => value * 1e3,
                TimeFormat::Ms => value,
                _ => value / 1e3,
            };
            Ok((ms.floor() as i64, unit, false))
        }
    }
}

/// An integer epoch column without nulls in one unit, as ms, in one pass (None: some row needs
/// the row-by-row path and its message). The unit classes of [`detect_epoch_unit`] are ranges
/// of magnitude, so when the smallest and largest magnitudes fall in one class every row does.
fn whole_column_epoch_ms(series: &Series, unit: TimeFormat) -> Option<Vec<i64>> {
    let ints = series.i64().ok().filter(|ints| ints.null_count() == 0 && !ints.is_empty())?;
    let unit = match unit {
        TimeFormat::Auto => {
            let (mut smallest, mut largest) = (u64::MAX, 0u64);
            for chunk in ints.downcast_iter() {
                for v in chunk.values().iter() {
                    smallest = smallest.min(v.unsigned_abs());
                    largest = largest.max(v.unsigned_abs());
                }
            }
            let (low, high) = (detect_epoch_unit(smallest as f64).ok()?, detect_epoch_unit(largest as f64).ok()?);
            (low == high).then_some(low)?
        }
        TimeFormat::Iso => return None,
        explicit => explicit,
    };
    let mut out = Vec::with_capacity(ints.len());
    for chunk in ints.downcast_iter() {
        match unit {
            TimeFormat::S => out.extend(chunk.values().iter().map(|v| v.saturating_mul(1000))),
            TimeFormat::Us => out.extend(chunk.values().iter().map(|v| v.div_euclid(1000))),
            _ => out.extend_from_slice(chunk.values()),
        }
    }
    Some(out)
}

/// Tell seconds, milliseconds and microseconds apart by magnitude, for dates 1973..2286.
pub(crate) fn detect_epoch_unit(value: f64) -> std::result::Result<TimeFormat, String> {
    if (1e8..1e10).contains(&value) {
        Ok(TimeFormat::S)
    } else if (1e11..1e13).contains(&value) {
        Ok(TimeFormat::Ms)
    } else if (1e14..1e16).contains(&value) {
        Ok(TimeFormat::Us)
    } else {
        Err("epoch timestamp of unrecognised magnitude (expected seconds ~1e9, milliseconds ~1e12 or microseconds ~1e15)".into())
    }
}

/// Parse ISO-8601 / RFC 3339 text (`2021-01-01 00:00:00.002000+00:00`, `2021-01-01T00:00:00Z`,
/// or a date). Text without a zone is read as UTC.
pub fn parse_iso_ms(cell: &str) -> std::result::Result<i64, String> {
    parse_iso_ms_zoned(cell).map(|(ms, _)| ms)
}

/// [`parse_iso_ms`], also saying whether the text carried its own zone.
pub fn parse_iso_ms_zoned(cell: &str) -> std::result::Result<(i64, bool), String> {
    let err = || "expected an ISO-8601 time such as 2021-01-01 00:00:00+00:00".to_string();
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(cell) {
        return Ok((dt.timestamp_millis(), true));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%z"] {
        if let Ok(dt) = chrono::DateTime::parse_from_str(cell, format) {
            return Ok((dt.timestamp_millis(), true));
        }
    }
    // `2021-01-01 00:00:00Z` / `...UTC`: an explicit zone without an offset.
    let (naive, zoned) = match cell.strip_suffix('Z').or_else(|| cell.strip_suffix(" UTC")) {
        Some(rest) => (rest, true),
        None => (cell, false),
    };
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(naive, format) {
            return Ok((dt.and_utc().timestamp_millis(), zoned));
        }
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(naive, "%Y-%m-%d") {
        return date.and_hms_opt(0, 0, 0).map(|dt| (dt.and_utc().timestamp_millis(), zoned)).ok_or_else(err);
    }
    Err(err())
}

/// Expand a path or glob into the sorted list of files it names; no match is an error.
pub fn expand_glob(pattern: &str, what: &str) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = glob::glob(pattern)
        .map_err(|err| input_error!("{what}: bad path pattern {pattern:?}: {err}"))?
        .filter_map(|entry| entry.ok())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        bail_input!(
            "{what}: no file matches {pattern:?}. Check `path` in the config (relative paths are relative to the config file), or run `basis data synth` to regenerate the sample."
        );
    }
    Ok(files)
}

/// SHA-256 of every input read so far, by path, with the length hashed: the manifest's
/// fingerprints come from the bytes as the loaders read them, not from a second read.
static READ_HASHES: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<PathBuf, Fingerprint>>> = std::sync::LazyLock::new(Default::default);

/// A file's length and SHA-256 (hex), known or still being computed on a thread of its own.
enum Fingerprint {
    Known(u64, String),
    Pending(std::thread::JoinHandle<(u64, String)>),
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The length and SHA-256 (hex) of `bytes`.
fn fingerprint(bytes: &[u8]) -> (u64, String) {
    use sha2::Digest;
    (bytes.len() as u64, hex(&sha2::Sha256::digest(bytes)))
}

/// Hash `bytes`, `path`'s as just read, and remember it.
fn remember_hash_of(path: &Path, bytes: &[u8]) {
    let (len, sha256_hex) = fingerprint(bytes);
    remember_hash(path, len, sha256_hex);
}

/// Remember the SHA-256 of `path`'s bytes as just read.
pub fn remember_hash(path: &Path, len: u64, sha256_hex: String) {
    remember(path, Fingerprint::Known(len, sha256_hex));
}

fn remember(path: &Path, fingerprint: Fingerprint) {
    if let Ok(mut hashes) = READ_HASHES.lock() {
        hashes.insert(path.to_path_buf(), fingerprint);
    }
}

/// Hash `path`'s mapped bytes on a thread of their own (at once if no thread can start): the
/// loader goes on decoding, and the hash fills a core the loaders and the aligner leave idle.
fn hash_in_background(path: &Path, map: std::sync::Arc<memmap2::Mmap>) {
    let on_thread = std::sync::Arc::clone(&map);
    match std::thread::Builder::new().name("input-hash".into()).spawn(move || fingerprint(&on_thread)) {
        Ok(thread) => remember(path, Fingerprint::Pending(thread)),
        Err(_) => remember_hash_of(path, &map),
    }
}

/// The length and SHA-256 (hex) of `path`'s bytes as a reader hashed them to their end, if one
/// did: the hash of exactly the bytes that were read, whatever the file holds now.
pub fn take_read_hash(path: &Path) -> Option<(u64, String)> {
    let known = READ_HASHES.lock().ok().and_then(|mut hashes| hashes.remove(path))?;
    let (len, hash) = match known {
        Fingerprint::Known(len, hash) => (len, hash),
        Fingerprint::Pending(thread) => thread.join().ok()?,
    };
    remember_hash(path, len, hash.clone());
    Some((len, hash))
}

/// SHA-256 of a file, hex: from the loaders' read when it hashed the file (and the file still
/// has that length), else streamed from disk in 1 MiB blocks.
pub fn sha256_of(path: &Path) -> Result<String> {
    let len = std::fs::metadata(path).map(|m| m.len()).map_err(|err| input_error!("cannot read {}: {err}", path.display()))?;
    let known = READ_HASHES.lock().ok().and_then(|mut hashes| hashes.remove(path));
    let known = match known {
        Some(Fingerprint::Known(len, hash)) => Some((len, hash)),
        // A hash thread that panicked leaves no fingerprint: the file is hashed again below.
        Some(Fingerprint::Pending(thread)) => thread.join().ok(),
        None => None,
    };
    if let Some((hashed_len, hash)) = known {
        remember_hash(path, hashed_len, hash.clone());
        if hashed_len == len {
            return Ok(hash);
        }
    }
    let hash = sha256_streamed(path)?;
    remember_hash(path, len, hash.clone());
    Ok(hash)
}

/// SHA-256 of a file as it is on disk now, hex, streamed in 1 MiB blocks (no cache: checksum
/// verification wants the bytes there, whatever was read before).
pub fn sha256_streamed(path: &Path) -> Result<String> {
    use sha2::Digest;
    let mut file = std::fs::File::open(path).map_err(|err| input_error!("cannot read {}: {err}", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(|err| input_error!("cannot read {}: {err}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// A reader that hashes what passes through it and remembers the hash at the end of the file
/// (when `on`; else it only passes the bytes on).
struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
    len: u64,
    path: PathBuf,
    on: bool,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.read(buf)?;
        if !self.on {
            return Ok(n);
        }
        if n == 0 && !buf.is_empty() {
            let hasher = std::mem::take(&mut self.hasher);
            remember_hash(&self.path, self.len, hex(&hasher.finalize()));
        } else {
            self.hasher.update(&buf[..n]);
            self.len += n as u64;
        }
        Ok(n)
    }
}

/// Read a file's bytes, unpacking `.gz` and the first CSV in a `.zip`, and dropping a UTF-8 BOM.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let raw = read_hashed(path)?;
    let name = path.to_string_lossy().to_ascii_lowercase();
    let mut bytes = if name.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|err| input_error!("{}: not a valid gzip file ({err}); re-download it", path.display()))?;
        out
    } else if name.ends_with(".zip") {
        let mut archive = ::zip::ZipArchive::new(Cursor::new(raw))
            .map_err(|err| input_error!("{}: not a valid zip file ({err}); re-download it", path.display()))?;
        let index = (0..archive.len())
            .find(|&i| archive.by_index(i).map(|f| f.name().to_ascii_lowercase().ends_with(".csv")).unwrap_or(false))
            .ok_or_else(|| input_error!("{}: the zip holds no .csv file", path.display()))?;
        let mut entry = archive.by_index(index)?;
        let mut out = Vec::new();
        entry
            .read_to_end(&mut out)
            .map_err(|err| input_error!("{}: corrupt zip entry ({err}); re-download it", path.display()))?;
        out
    } else {
        raw
    };
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        bytes.drain(..3);
    }
    Ok(bytes)
}

/// A file's bytes as the decoders read them: mapped from the page cache where the system
/// allows (no copy, and a page fault per 64 KiB instead of one per 4 KiB page of a fresh
/// buffer), else read into memory.
pub enum FileBytes {
    /// The file mapped read-only (shared with the thread hashing it).
    Mapped(std::sync::Arc<memmap2::Mmap>),
    /// The file read into a buffer (an empty file, or one the system would not map).
    Read(Vec<u8>),
}

impl AsRef<[u8]> for FileBytes {
    fn as_ref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(map) => map,
            FileBytes::Read(bytes) => bytes,
        }
    }
}

/// [`read_hashed`] without the copy: the file mapped where it can be, and hashed (a mapped
/// file on a thread of its own, while the caller decodes it; [`sha256_of`] waits for it).
pub fn map_hashed(path: &Path) -> Result<FileBytes> {
    let file = std::fs::File::open(path).map_err(|err| input_error!("cannot read {}: {err}", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    // SAFETY: the map is read-only and lives as long as the bytes are used. Changing the file
    // while basis reads it would show the change (as polars' own scans of a path would); a
    // backtest's inputs are not written while it runs.
    let bytes = match (len > 0).then(|| unsafe { memmap2::Mmap::map(&file) }) {
        Some(Ok(map)) => FileBytes::Mapped(std::sync::Arc::new(map)),
        _ => FileBytes::Read(read_file(path)?),
    };
    match &bytes {
        FileBytes::Mapped(map) => hash_in_background(path, std::sync::Arc::clone(map)),
        FileBytes::Read(raw) => remember_hash_of(path, raw),
    }
    Ok(bytes)
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|err| input_error!("cannot read {}: {err}", path.display()))
}

/// A file's raw bytes, hashed as they are read (see [`sha256_of`]).
pub fn read_hashed(path: &Path) -> Result<Vec<u8>> {
    let raw = read_file(path)?;
    remember_hash_of(path, &raw);
    Ok(raw)
}

/// Whether a CSV's first line is a header: its first field does not start with a digit.
pub fn csv_has_header(bytes: &[u8]) -> bool {
    let first = bytes.iter().position(|&b| b != b' ' && b != b'"').map(|i| bytes[i]);
    !matches!(first, Some(b'0'..=b'9') | Some(b'-'))
}

/// Stream a CSV file (plain, `.gz`, or the first `.csv` in a `.zip`) record by record, without
/// holding its text: `on_record(row, header, fields)` gets each data row's 0-based index, the
/// header's names (empty without a header) and its trimmed, unquoted cells. Blank lines are
/// skipped. Returns the number of header lines (for [`locate`]) and of data rows. A header is
/// detected as for [`read_csv_text`]; empty and header-only files are errors.
pub fn stream_csv(path: &Path, mut on_record: impl FnMut(usize, &[String], &[&str]) -> Result<()>) -> Result<(usize, usize)> {
    use std::io::{BufRead, BufReader};
    with_csv_bytes(path, true, |decoded| {
        let mut reader = BufReader::with_capacity(1 << 20, decoded);
        let mut line = Vec::with_capacity(256);
        let mut header: Option<Vec<String>> = None;
        let (mut header_lines, mut rows, mut physical) = (0usize, 0usize, 0usize);
        loop {
            line.clear();
            let read = reader.read_until(b'\n', &mut line).map_err(|err| input_error!("{}: cannot read line {} ({err}); re-download the file", path.display(), physical + 1))?;
            if read == 0 {
                break;
            }
            physical += 1;
            let bytes = trim_line(&line, physical);
            if bytes.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let fields = split_fields(path, bytes, physical)?;
            if header.is_none() {
                if csv_has_header(bytes) {
                    header = Some(fields.iter().map(|f| f.to_string()).collect());
                    header_lines = 1;
                    continue;
                }
                header = Some(Vec::new());
            }
            on_record(rows, header.as_deref().unwrap_or(&[]), &fields)?;
            rows += 1;
        }
        match (header, rows) {
            (None, _) => Err(empty_csv(path)),
            (Some(_), 0) => Err(header_only_csv(path)),
            _ => Ok((header_lines, rows)),
        }
    })
}

/// The error for a CSV with no rows at all.
pub fn empty_csv(path: &Path) -> anyhow::Error {
    input_error!("{}: the file is empty; expected CSV rows", path.display())
}

/// The error for a CSV with a header and no data rows.
pub fn header_only_csv(path: &Path) -> anyhow::Error {
    input_error!("{}: the file has a header but no data rows", path.display())
}

/// A CSV line as [`stream_csv`] reads it: without its line ending (`\n`, `\r\n`) and, on the
/// file's first line (`physical` 1), without a UTF-8 byte-order mark.
pub fn trim_line(line: &[u8], physical: usize) -> &[u8] {
    let mut bytes = line;
    if physical == 1 && bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        bytes = &bytes[3..];
    }
    while let Some((last, rest)) = bytes.split_last() {
        if *last == b'\n' || *last == b'\r' { bytes = rest } else { break }
    }
    bytes
}

/// A line's cells as [`stream_csv`] gives them: split at commas, trimmed and unquoted; a line
/// that is not UTF-8 is an error naming it.
pub fn split_fields<'a>(path: &Path, bytes: &'a [u8], physical: usize) -> Result<Vec<&'a str>> {
    let text = std::str::from_utf8(bytes).map_err(|_| input_error!("{}: line {physical} is not UTF-8 text", path.display()))?;
    Ok(text.split(',').map(|f| f.trim().trim_matches('"')).collect())
}

/// Open a CSV file (plain, `.gz`, or the first `.csv` in a `.zip`) and hand `read` its decoded
/// bytes, without holding them. With `hash`, plain and gzipped files are hashed on the way as
/// they are read to their end (for the manifest, [`sha256_of`], and [`take_read_hash`]); a read
/// error inside a gzip stream is reported as a corrupt file.
pub fn with_csv_bytes<T>(path: &Path, hash: bool, read: impl FnOnce(&mut dyn Read) -> Result<T>) -> Result<T> {
    let file = std::fs::File::open(path).map_err(|err| input_error!("cannot read {}: {err}", path.display()))?;
    let name = path.to_string_lossy().to_ascii_lowercase();
    let hashing = |file| HashingReader { inner: file, hasher: Default::default(), len: 0, path: path.to_path_buf(), on: hash };
    if name.ends_with(".gz") {
        read(&mut flate2::read::MultiGzDecoder::new(hashing(file))).map_err(|err| gzip_context(err, path))
    } else if name.ends_with(".zip") {
        let mut archive = ::zip::ZipArchive::new(file).map_err(|err| input_error!("{}: not a valid zip file ({err}); re-download it", path.display()))?;
        let index = (0..archive.len())
            .find(|&i| archive.by_index(i).map(|f| f.name().to_ascii_lowercase().ends_with(".csv")).unwrap_or(false))
            .ok_or_else(|| input_error!("{}: the zip holds no .csv file", path.display()))?;
        let mut entry = archive.by_index(index).map_err(|err| input_error!("{}: corrupt zip entry ({err}); re-download it", path.display()))?;
        read(&mut entry)
    } else {
        read(&mut hashing(file))
    }
}

/// A read error inside a gzip stream is a corrupt file.
fn gzip_context(err: anyhow::Error, path: &Path) -> anyhow::Error {
    let text = format!("{err:#}");
    if text.contains("cannot read line") && !text.contains("not a valid gzip") {
        input_error!("{}: not a valid gzip file ({text}); re-download it", path.display())
    } else {
        err
    }
}

/// Streaming cell parsers for [`stream_csv`] records, with the same messages as [`RawTable`]'s.
pub struct CellParser<'a> {
    /// The CSV file being read, for messages.
    pub file: &'a Path,
    /// Lines before the first record, so messages give the file's line numbers.
    pub header_lines: usize,
    /// Unit of time cells (`Auto`: epoch unit by magnitude or ISO text; one unit per column).
    pub unit: TimeFormat,
    /// The unit seen first in each time column, by column index.
    units: Vec<Option<TimeFormat>>,
    /// Subtracted from epoch numbers and zone-less text (a file written in local time).
    utc_offset_ms: i64,
}

impl<'a> CellParser<'a> {
    /// A parser for `file`'s records with times read as UTC.
    pub fn new(file: &'a Path, header_lines: usize, unit: TimeFormat) -> Self {
        Self { file, header_lines, unit, units: Vec::new(), utc_offset_ms: 0 }
    }

    /// Read times as local time `utc_offset_hours` east of UTC (see [`RawTable::local_times_ms`]).
    pub fn with_utc_offset(mut self, utc_offset_hours: Option<f64>) -> Self {
        self.utc_offset_ms = offset_ms(utc_offset_hours);
        self
    }

    fn at(&self, row: usize) -> String {
        locate(self.file, self.header_lines, true, row)
    }

    /// Cell `index` of a record, or an error naming the columns expected.
    pub fn cell<'r>(&self, row: usize, fields: &[&'r str], index: usize, name: &str) -> Result<&'r str> {
        fields.get(index).copied().ok_or_else(|| {
            input_error!("{}: expected at least {} columns ({name} is column {}), found {}", self.at(row), index + 1, index + 1, fields.len())
        })
    }

    /// A finite number.
    pub fn number(&self, row: usize, fields: &[&str], index: usize, name: &str) -> Result<f64> {
        let cell = self.cell(row, fields, index, name)?;
        let value: f64 = cell.parse().map_err(|_| input_error!("{}, column `{name}`: expected a number, found {cell:?}", self.at(row)))?;
        if !value.is_finite() {
            bail_input!("{}, column `{name}`: expected a finite number, found {value}", self.at(row));
        }
        Ok(value)
    }

    /// The unit time column `index` was first read in, if it was.
    pub fn unit_of(&self, index: usize) -> Option<TimeFormat> {
        self.units.get(index).copied().flatten()
    }

    /// Record that time column `index` is in `unit` (its first row's), as [`CellParser::time`] does.
    pub fn set_unit(&mut self, index: usize, unit: TimeFormat) {
        if self.units.len() <= index {
            self.units.resize(index + 1, None);
        }
        self.units[index] = Some(unit);
    }

    /// Milliseconds subtracted from epoch times (the source's `utc_offset_hours`).
    pub fn utc_offset_ms(&self) -> i64 {
        self.utc_offset_ms
    }

    /// A timestamp in ms; one unit per column per file.
    pub fn time(&mut self, row: usize, fields: &[&str], index: usize, name: &str) -> Result<i64> {
        let cell = self.cell(row, fields, index, name)?;
        let (ms, row_unit, zoned) = parse_time_cell_zoned(cell, self.unit).map_err(|why| input_error!("{}, column `{name}`: {why}, found {cell:?}", self.at(row)))?;
        let ms = if zoned { ms } else { ms - self.utc_offset_ms };
        if self.units.len() <= index {
            self.units.resize(index + 1, None);
        }
        match self.units[index] {
            None => self.units[index] = Some(row_unit),
            Some(first) if first != row_unit => bail_input!(
                "{}, column `{name}`: timestamp {cell} is in {} but earlier rows of this file are in {}; one file must use one unit (set time_unit in the config if detection is wrong)",
                self.at(row),
                unit_name(row_unit),
                unit_name(first)
            ),
            Some(_) => {}
        }
        Ok(ms)
    }
}

/// Read a CSV file with every column as text. `has_header: None` detects it.
pub fn read_csv_text(path: &Path, has_header: Option<bool>) -> Result<RawTable> {
    read_csv_text_with_header(path, |bytes| has_header.unwrap_or_else(|| csv_has_header(bytes)))
}

/// [`read_csv_text`], whether the first line is a header decided by `has_header` from the
/// file's bytes (a layout whose data rows start with text needs more than the first cell).
pub fn read_csv_text_with_header(path: &Path, has_header: impl FnOnce(&[u8]) -> bool) -> Result<RawTable> {
    let bytes = read_bytes(path)?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        bail_input!("{}: the file is empty; expected CSV rows", path.display());
    }
    let header = has_header(&bytes);
    let frame = CsvReadOptions::default()
        .with_has_header(header)
        .with_infer_schema_length(Some(0))
        .into_reader_with_file_handle(Cursor::new(bytes))
        .finish()
        .map_err(|err| input_error!("{}: cannot parse as CSV: {err}", path.display()))?;
    if frame.height() == 0 {
        bail_input!("{}: the file has a header but no data rows", path.display());
    }
    Ok(RawTable { file: path.to_path_buf(), frame, header_lines: usize::from(header), is_csv: true, first_row: 0 })
}

/// Whether `path` is read as Parquet (by its extension).
pub fn is_parquet(path: &Path) -> bool {
    let name = path.to_string_lossy().to_ascii_lowercase();
    name.ends_with(".parquet") || name.ends_with(".pq")
}

/// A Parquet file to be read one row group at a time, only the columns asked for: a long
/// input then never has its whole file, nor all of its decoded columns, in memory at once.
/// polars maps the file for each piece, so a piece's pages leave memory with it. The file's
/// SHA-256 (for the manifest) is computed on another thread meanwhile ([`ParquetPieces::finish`]).
pub struct ParquetPieces {
    path: PathBuf,
    metadata: polars::io::parquet::metadata::FileMetadataRef,
    columns: Vec<String>,
    hash: Option<std::thread::JoinHandle<Result<(u64, String)>>>,
}

impl ParquetPieces {
    /// Open `path` and check that it has every one of `columns` (the error lists the ones it has).
    pub fn open(path: &Path, columns: &[&str]) -> Result<Self> {
        let mut pieces = Self::open_unhashed(path, columns)?;
        pieces.hash_in_background();
        Ok(pieces)
    }

    /// [`ParquetPieces::open`] without starting the hash: a caller that may not read the file
    /// after all starts it with [`ParquetPieces::hash_in_background`] once it knows it will.
    pub fn open_unhashed(path: &Path, columns: &[&str]) -> Result<Self> {
        let unreadable = |err: PolarsError| input_error!("{}: not a readable Parquet file: {err}", path.display());
        let file = std::fs::File::open(path).map_err(|err| input_error!("cannot read {}: {err}", path.display()))?;
        let mut reader = ParquetReader::new(file);
        let schema = reader.schema().map_err(unreadable)?;
        if let Some(missing) = columns.iter().find(|name| schema.get(**name).is_none()) {
            return Err(missing_column(path, missing, schema.iter_names().map(|n| n.as_str())));
        }
        let metadata = reader.get_metadata().map_err(unreadable)?.clone();
        Ok(ParquetPieces { path: path.to_path_buf(), metadata, columns: columns.iter().map(|c| c.to_string()).collect(), hash: None })
    }

    /// Hash the file for the manifest on another thread (once).
    pub fn hash_in_background(&mut self) {
        if self.hash.is_some() {
            return;
        }
        let hashed = self.path.clone();
        self.hash = std::thread::Builder::new()
            .name("input-hash".into())
            .spawn(move || -> Result<(u64, String)> {
                let len = std::fs::metadata(&hashed).map(|m| m.len()).map_err(|err| input_error!("cannot read {}: {err}", hashed.display()))?;
                Ok((len, sha256_streamed(&hashed)?))
            })
            .ok();
    }

    /// The same file for reading `columns` instead (checked like [`ParquetPieces::open`]), not
    /// hashed again: a first pass over its times, say.
    pub fn with_columns(&self, columns: &[&str]) -> Result<Self> {
        let has = |name: &str| self.metadata.schema().fields().iter().any(|f| f.name() == name);
        if let Some(missing) = columns.iter().find(|name| !has(name)) {
            return Err(missing_column(&self.path, missing, self.metadata.schema().fields().iter().map(|f| f.name())));
        }
        Ok(ParquetPieces { path: self.path.clone(), metadata: self.metadata.clone(), columns: columns.iter().map(|c| c.to_string()).collect(), hash: None })
    }

    /// Rows in the file.
    pub fn rows(&self) -> usize {
        self.metadata.num_rows
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Each row group as (first row, rows).
    pub fn pieces(&self) -> Vec<(usize, usize)> {
        let mut first = 0usize;
        self.metadata
            .row_groups
            .iter()
            .map(|group| {
                let piece = (first, group.num_rows());
                first += group.num_rows();
                piece
            })
            .filter(|(_, rows)| *rows > 0)
            .collect()
    }

    /// The rows `first .. first + rows` (one row group) of the asked-for columns; errors locate
    /// rows by their place in the file.
    pub fn read(&self, (first, rows): (usize, usize)) -> Result<RawTable> {
        let file = std::fs::File::open(&self.path).map_err(|err| input_error!("cannot read {}: {err}", self.path.display()))?;
        let mut reader = ParquetReader::new(file).with_columns(Some(self.columns.clone())).with_slice(Some((first, rows)));
        reader.set_metadata(self.metadata.clone());
        let frame = reader.finish().map_err(|err| input_error!("{}: not a readable Parquet file: {err}", self.path.display()))?;
        Ok(RawTable { file: self.path.clone(), frame, header_lines: 0, is_csv: false, first_row: first })
    }

    /// Wait for the file's hash and remember it for the manifest.
    pub fn finish(mut self) -> Result<()> {
        let (len, hash) = match self.hash.take() {
            Some(thread) => thread.join().map_err(|_| anyhow::anyhow!("hashing {} failed", self.path.display()))??,
            None => (std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0), sha256_streamed(&self.path)?),
        };
        remember_hash(&self.path, len, hash);
        Ok(())
    }
}

/// Read CSV (as text), Parquet or Feather/IPC, chosen by the file extension.
pub fn read_table(path: &Path) -> Result<RawTable> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    if is_parquet(path) {
        fn decode<R: polars::io::mmap::MmapBytesReader>(reader: R, path: &Path) -> Result<DataFrame> {
            ParquetReader::new(reader).finish().map_err(|err| input_error!("{}: not a readable Parquet file: {err}", path.display()))
        }
        let frame = match map_hashed(path)? {
            // Given the file, polars maps it and decodes from the map; given bytes it would
            // copy them first.
            FileBytes::Mapped(_) => decode(std::fs::File::open(path).map_err(|err| input_error!("cannot read {}: {err}", path.display()))?, path)?,
            read => decode(Cursor::new(read), path)?,
        };
        return Ok(RawTable { file: path.to_path_buf(), frame, header_lines: 0, is_csv: false, first_row: 0 });
    }
    if name.ends_with(".feather") || name.ends_with(".arrow") || name.ends_with(".ipc") {
        let frame = IpcReader::new(Cursor::new(map_hashed(path)?))
            .finish()
            .map_err(|err| input_error!("{}: not a readable Feather/Arrow IPC file: {err}", path.display()))?;
        return Ok(RawTable { file: path.to_path_buf(), frame, header_lines: 0, is_csv: false, first_row: 0 });
    }
    read_csv_text(path, Some(true)).with_context(|| format!("reading {}", path.display()))
}

/// The SHA-256 in a `.CHECKSUM` text (`<hex>  <file name>`).
pub fn checksum_of(text: &str) -> Option<String> {
    text.split_whitespace().next().filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit())).map(|h| h.to_ascii_lowercase())
}

/// Verify a downloaded dump against the `.CHECKSUM` beside it, when there is one. Returns
/// whether a checksum was found.
pub fn verify_checksum(path: &Path) -> Result<bool> {
    let Some((sidecar, expected)) = checksum_beside(path)? else { return Ok(false) };
    let actual = sha256_streamed(path)?;
    // The manifest's fingerprint of this file needs no second read.
    if let Ok(meta) = std::fs::metadata(path) {
        remember_hash(path, meta.len(), actual.clone());
    }
    compare_checksum(path, &sidecar, &expected, &actual)?;
    Ok(true)
}

/// [`verify_checksum`] for a dump whose SHA-256 (hex) is already known.
pub fn verify_checksum_against(path: &Path, sha256_hex: &str) -> Result<bool> {
    let Some((sidecar, expected)) = checksum_beside(path)? else { return Ok(false) };
    compare_checksum(path, &sidecar, &expected, sha256_hex)?;
    Ok(true)
}

/// The `.CHECKSUM` beside `path` and the hash it holds, if there is one.
fn checksum_beside(path: &Path) -> Result<Option<(PathBuf, String)>> {
    let sidecar = PathBuf::from(format!("{}.CHECKSUM", path.display()));
    let Ok(text) = std::fs::read_to_string(&sidecar) else { return Ok(None) };
    let expected = checksum_of(&text).ok_or_else(|| input_error!("{}: not a SHA-256 checksum file", sidecar.display()))?;
    Ok(Some((sidecar, expected)))
}

fn compare_checksum(path: &Path, sidecar: &Path, expected: &str, actual: &str) -> Result<()> {
    if actual != expected {
        bail_input!("{}: SHA-256 {actual} does not match {} ({expected}); the file is damaged: delete it and fetch it again", path.display(), sidecar.display());
    }
    Ok(())
}
