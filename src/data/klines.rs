//! Binance kline dumps (spot, USDⓈ-M, mark, index and delivery klines), read at speed.
//!
//! A dump's lines are parsed straight from their bytes where they look as Binance writes them:
//! integer epochs, plain decimals, no quotes or spaces in the first seven columns. Any other line
//! (ISO text times, exponents, quoted or padded cells, a bad cell) goes through the general cell
//! parser ([`CellParser`]), which reads it or says exactly what is wrong with it. Both read a
//! cell to the same number: a plain decimal of at most 15 significant digits is its digits
//! divided by a power of ten, two exact doubles whose quotient IEEE rounds correctly, as
//! `str::parse` does. So a file reads the same either way, and the fast path only saves time
//! (`tests/loaders.rs` compares the two on hostile files; the module's tests on random cells).
//!
//! Rows are checked as they are read ([`super::check_bar`], in file order, with the same
//! messages as a row pushed into [`super::BarRows`]) and handed on in batches, so a multi-GB
//! file is never held as text. A kline's values are known at its close: `close_time` is the
//! bar's last millisecond (…59.999), so the bar becomes known at `close_time + 1 ms`.

use std::io::Read;
use std::path::Path;

use anyhow::Result;

use super::read::{self, CellParser};
use crate::bail_input;
use crate::data::source::TimeFormat;

/// Kline column positions (the dump layout is positional; header names vary).
const OPEN_TIME: usize = 0;
const OPEN: usize = 1;
const HIGH: usize = 2;
const LOW: usize = 3;
pub(crate) const CLOSE: usize = 4;
const VOLUME: usize = 5;
pub(crate) const CLOSE_TIME: usize = 6;

/// Bytes read from the file at a time (whole lines are parsed, the partial last one kept).
const BLOCK_BYTES: usize = 1 << 20;

/// Exact powers of ten as doubles (10^22 is the largest a double holds exactly).
const POW10: [f64; 23] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];

/// Consecutive rows of one kline file, as columns.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct KlineBatch {
    /// The file's data row (0-based, header not counted) of the batch's first row.
    pub first_row: usize,
    /// When each bar is known: its close time rounded up to the bar boundary, ms.
    pub known_at_ms: Vec<i64>,
    /// Close prices.
    pub close: Vec<f64>,
    /// High prices.
    pub high: Vec<f64>,
    /// Low prices.
    pub low: Vec<f64>,
    /// Base-asset volumes.
    pub volume: Vec<f64>,
    /// Open prices.
    pub open: Vec<f64>,
}

impl KlineBatch {
    fn with_capacity(first_row: usize, rows: usize) -> Self {
        let column = || Vec::with_capacity(rows);
        KlineBatch { first_row, known_at_ms: Vec::with_capacity(rows), close: column(), high: column(), low: column(), volume: column(), open: column() }
    }

    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.known_at_ms.len()
    }

    /// Whether the batch holds no rows.
    pub fn is_empty(&self) -> bool {
        self.known_at_ms.is_empty()
    }
}

/// What a kline file held, once read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KlineFile {
    /// Lines before the first data row (1 with a header row, else 0), for messages.
    pub header_lines: usize,
    /// Data rows read.
    pub rows: usize,
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

/// Read the kline CSV `path` (plain, `.gz`, or the first `.csv` in a `.zip`; with or without
/// a header row), checking every row, and hand its rows to `sink` in file order, in batches of
/// at most `batch_rows`. `label` names the series in messages. Errors name the file and line.
/// With `hash`, a plain or gzipped file's SHA-256 is taken from the bytes as read (see
/// [`read::with_csv_bytes`]); a caller that already has it (a verified `.CHECKSUM`) passes false.
pub fn read_kline_file(path: &Path, unit: TimeFormat, utc_offset_hours: Option<f64>, label: &str, batch_rows: usize, hash: bool, sink: impl FnMut(KlineBatch) -> Result<()>) -> Result<KlineFile> {
    let batch_rows = batch_rows.max(1);
    read::with_csv_bytes(path, hash, |decoded| {
        let mut lines = Lines {
            path,
            label,
            cells: CellParser::new(path, 0, unit).with_utc_offset(utc_offset_hours),
            header_lines: None,
            rows: 0,
            physical: 0,
            batch_rows,
            batch: KlineBatch::with_capacity(0, batch_rows.min(1 << 16)),
            sink,
        };
        read_blocks(path, decoded, &mut lines)?;
        lines.flush()?;
        match lines.header_lines {
            None => Err(read::empty_csv(path)),
            Some(_) if lines.rows == 0 => Err(read::header_only_csv(path)),
            Some(header_lines) => Ok(KlineFile { header_lines, rows: lines.rows }),
        }
    })
}

/// Feed `decoded`'s lines to `lines`, a block of whole lines at a time. A read error is
/// reported after the whole lines before it, at the line it struck (as a line-by-line read
/// meets it).
fn read_blocks<S: FnMut(KlineBatch) -> Result<()>>(path: &Path, decoded: &mut dyn Read, lines: &mut Lines<'_, S>) -> Result<()> {
    let mut buffer: Vec<u8> = Vec::with_capacity(BLOCK_BYTES * 2);
    let (mut at_end, mut failed) = (false, None);
    while !at_end && failed.is_none() {
        // Fill the buffer to a block past what the last one left (a partial line), looking for
        // the last newline only in what was added (the part before holds none).
        let (kept, wanted) = (buffer.len(), buffer.len() + BLOCK_BYTES);
        while buffer.len() < wanted {
            let filled = buffer.len();
            buffer.resize(wanted, 0);
            match decoded.read(&mut buffer[filled..]) {
                Ok(0) => {
                    buffer.truncate(filled);
                    at_end = true;
                    break;
                }
                Ok(n) => buffer.truncate(filled + n),
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => buffer.truncate(filled),
                Err(err) => {
                    buffer.truncate(filled);
                    failed = Some(err);
                    break;
                }
            }
        }
        // Whole lines now; at the end the last line may lack its newline.
        let whole = if at_end { buffer.len() } else { memchr::memrchr(b'\n', &buffer[kept..]).map_or(0, |last| kept + last + 1) };
        let region = &buffer[..whole];
        // A block that is not UTF-8 goes line by line through the general parser, which names
        // the line (as it would have).
        let utf8 = std::str::from_utf8(region).is_ok();
        let mut start = 0;
        while start < region.len() {
            let end = memchr::memchr(b'\n', &region[start..]).map_or(region.len(), |k| start + k + 1);
            lines.line(&region[start..end], utf8)?;
            start = end;
        }
        buffer.drain(..whole);
    }
    match failed {
        Some(err) => bail_input!("{}: cannot read line {} ({err}); re-download the file", path.display(), lines.physical + 1),
        None => Ok(()),
    }
}

/// The state of one file's reading: where it is, what it has found, and the batch being filled.
struct Lines<'a, S> {
    path: &'a Path,
    label: &'a str,
    cells: CellParser<'a>,
    /// `None` until the first non-blank line says whether there is a header.
    header_lines: Option<usize>,
    rows: usize,
    physical: usize,
    batch_rows: usize,
    batch: KlineBatch,
    sink: S,
}

impl<S: FnMut(KlineBatch) -> Result<()>> Lines<'_, S> {
    /// One physical line, with its newline if it has one.
    fn line(&mut self, raw: &[u8], utf8: bool) -> Result<()> {
        self.physical += 1;
        let bytes = read::trim_line(raw, self.physical);
        let blank = !bytes.first().is_some_and(u8::is_ascii_digit) && bytes.iter().all(u8::is_ascii_whitespace);
        if blank {
            return Ok(());
        }
        if self.header_lines.is_none() {
            let header = read::csv_has_header(bytes);
            self.header_lines = Some(usize::from(header));
            self.cells.header_lines = usize::from(header);
            if header {
                // A header that is not text is refused, as the general reader does.
                read::split_fields(self.path, bytes, self.physical)?;
                return Ok(());
            }
        }
        let row = self.rows;
        let (known_at_ms, [close, high, low, volume, open]) = match utf8.then(|| self.plain_row(bytes)).flatten() {
            Some(parsed) => parsed,
            None => self.general_row(bytes, row)?,
        };
        // The check a row pushed into BarRows gets (one branch when the row is plainly good).
        let plainly_good = low > 0.0 && low <= close && close <= high && high.is_finite() && low <= open && open <= high && !(volume < 0.0);
        if !plainly_good {
            if let Err(why) = super::check_bar(self.label, open, high, low, close, volume) {
                bail_input!("{}: {why}", read::locate(self.path, self.cells.header_lines, true, row));
            }
        }
        let batch = &mut self.batch;
        batch.known_at_ms.push(known_at_ms);
        batch.close.push(close);
        batch.high.push(high);
        batch.low.push(low);
        batch.volume.push(volume);
        batch.open.push(open);
        self.rows += 1;
        if batch.len() >= self.batch_rows {
            self.flush()?;
        }
        Ok(())
    }

    /// Hand the batch to the sink and start the next one.
    fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let next = KlineBatch::with_capacity(self.rows, self.batch_rows.min(1 << 16));
        let mut batch = std::mem::replace(&mut self.batch, next);
        // A batch grown by doubling may hold twice its rows: a whole-file batch is kept.
        if batch.close.capacity() > batch.len() + batch.len() / 8 {
            for column in [&mut batch.close, &mut batch.high, &mut batch.low, &mut batch.volume, &mut batch.open] {
                column.shrink_to_fit();
            }
            batch.known_at_ms.shrink_to_fit();
        }
        (self.sink)(batch)
    }

    /// A line as Binance writes it, read from its bytes; `None` for anything else (the general
    /// parser then reads it, or names what is wrong).
    #[inline]
    fn plain_row(&mut self, bytes: &[u8]) -> Option<(i64, [f64; 5])> {
        let mut at = 0;
        let open_raw = epoch_cell(bytes, &mut at, false)?;
        let open = decimal_cell(bytes, &mut at)?;
        let high = decimal_cell(bytes, &mut at)?;
        let low = decimal_cell(bytes, &mut at)?;
        let close = decimal_cell(bytes, &mut at)?;
        let volume = decimal_cell(bytes, &mut at)?;
        let close_raw = epoch_cell(bytes, &mut at, true)?;
        let (open_ms, open_unit) = self.epoch_ms(open_raw, OPEN_TIME)?;
        let (close_ms, close_unit) = self.epoch_ms(close_raw, CLOSE_TIME)?;
        if close_ms < open_ms {
            return None;
        }
        for (index, unit) in [(OPEN_TIME, open_unit), (CLOSE_TIME, close_unit)] {
            if self.cells.unit_of(index).is_none() {
                self.cells.set_unit(index, unit);
            }
        }
        Some((known_at_close(close_ms), [close, high, low, volume, open]))
    }

    /// An integer epoch cell as ms, as [`CellParser::time`] reads it (`None` where it would
    /// refuse it, or the unit differs from the column's so far: it says so).
    #[inline]
    fn epoch_ms(&self, raw: u64, index: usize) -> Option<(i64, TimeFormat)> {
        if raw >= 1 << 53 {
            return None;
        }
        let value = raw as f64;
        let unit = match self.cells.unit {
            TimeFormat::Auto => read::detect_epoch_unit(value).ok()?,
            TimeFormat::Iso => return None,
            explicit => explicit,
        };
        if self.cells.unit_of(index).is_some_and(|first| first != unit) {
            return None;
        }
        let ms = match unit {
            TimeFormat::S => value * 1e3,
            TimeFormat::Ms => value,
            _ => value / 1e3,
        };
        Some((ms.floor() as i64 - self.cells.utc_offset_ms(), unit))
    }

    /// Any other line, through the general cell parser (its messages).
    fn general_row(&mut self, bytes: &[u8], row: usize) -> Result<(i64, [f64; 5])> {
        let fields = read::split_fields(self.path, bytes, self.physical)?;
        let cells = &mut self.cells;
        let open_time = cells.time(row, &fields, OPEN_TIME, "open_time")?;
        let open = cells.number(row, &fields, OPEN, "open")?;
        let high = cells.number(row, &fields, HIGH, "high")?;
        let low = cells.number(row, &fields, LOW, "low")?;
        let close = cells.number(row, &fields, CLOSE, "close")?;
        let volume = cells.number(row, &fields, VOLUME, "volume")?;
        let close_time = cells.time(row, &fields, CLOSE_TIME, "close_time")?;
        if close_time < open_time {
            bail_input!(
                "{}: close_time {} is before open_time {}; is this a Binance kline file (open_time, open, high, low, close, volume, close_time, ...)?",
                read::locate(self.path, cells.header_lines, true, row),
                crate::time::format_ms(close_time),
                crate::time::format_ms(open_time)
            );
        }
        Ok((known_at_close(close_time), [close, high, low, volume, open]))
    }
}

/// An unsigned integer cell of 1 to 18 digits ending at a comma (or, for the `last` cell read,
/// at the line's end); `at` moves past it.
#[inline]
fn epoch_cell(bytes: &[u8], at: &mut usize, last: bool) -> Option<u64> {
    let start = *at;
    let mut value: u64 = 0;
    loop {
        match bytes.get(*at) {
            Some(&b) if b.is_ascii_digit() => value = value.wrapping_mul(10).wrapping_add(u64::from(b - b'0')),
            Some(b',') => break,
            None if last => break,
            _ => return None,
        }
        *at += 1;
    }
    let digits = *at - start;
    *at += 1;
    (1..=18).contains(&digits).then_some(value)
}

/// A plain decimal cell (`123`, `123.45`, `.5`, `5.`) ending at a comma, read exactly as
/// `str::parse::<f64>` reads it; `None` for anything else (signs, exponents, more than 15
/// significant digits' worth of mantissa): the general parser reads those.
#[inline]
fn decimal_cell(bytes: &[u8], at: &mut usize) -> Option<f64> {
    let mut mantissa: u64 = 0;
    let (mut digits, mut fraction_digits, mut in_fraction) = (0usize, 0usize, false);
    loop {
        match *bytes.get(*at)? {
            b @ b'0'..=b'9' => {
                mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
                digits += 1;
                fraction_digits += usize::from(in_fraction);
            }
            b'.' if !in_fraction => in_fraction = true,
            b',' => break,
            _ => return None,
        }
        *at += 1;
    }
    *at += 1;
    // Both operands exact (mantissa < 2^53, 10^k for k <= 22): one correctly rounded division.
    if digits == 0 || digits > 19 || fraction_digits >= POW10.len() || mantissa >= 1 << 53 {
        return None;
    }
    Some(mantissa as f64 / POW10[fraction_digits])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_decimals_read_as_the_standard_parser_reads_them() {
        for text in ["46216.93000000", "0.00000001", "5.", ".5", "0", "000123.4500", "99999999999.9999", "1292.000", "3873986.25"] {
            let cell = format!("{text},");
            let mut at = 0;
            let fast = decimal_cell(cell.as_bytes(), &mut at).expect(text);
            assert_eq!(fast.to_bits(), text.parse::<f64>().unwrap().to_bits(), "{text}");
            assert_eq!(at, cell.len());
        }
        // Left to the general parser: signs, exponents, spaces, quotes, empty, a lone dot, two
        // dots, and mantissas past 2^53.
        for text in ["-1.5", "+1.5", "1e5", " 1.5", "\"1.5\"", "", ".", "1.2.3", "12345678901234567.89", "nan", "inf"] {
            let cell = format!("{text},");
            assert_eq!(decimal_cell(cell.as_bytes(), &mut 0), None, "{text}");
        }
    }

    #[test]
    fn epoch_cells_take_digits_only() {
        assert_eq!(epoch_cell(b"1483228800000,", &mut 0, false), Some(1_483_228_800_000));
        assert_eq!(epoch_cell(b"1483228859999", &mut 0, true), Some(1_483_228_859_999));
        // A last cell needs no comma, another one does.
        assert_eq!(epoch_cell(b"1483228859999", &mut 0, false), None);
        for bad in [&b"-1,"[..], b"1.5,", b",", b"2021-01-01,", b"1234567890123456789,"] {
            assert_eq!(epoch_cell(bad, &mut 0, false), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn random_decimals_match_str_parse(whole in 0u64..10_000_000_000, fraction in 0u64..100_000_000, places in 0usize..9, leading in 0usize..3) {
            let text = if places == 0 { format!("{}{whole}", "0".repeat(leading)) } else { format!("{}{whole}.{:0width$}", "0".repeat(leading), fraction % 10u64.pow(places as u32), width = places) };
            let cell = format!("{text},");
            let expected = text.parse::<f64>().unwrap();
            match decimal_cell(cell.as_bytes(), &mut 0) {
                Some(value) => prop_assert_eq!(value.to_bits(), expected.to_bits(), "{}", text),
                // Only mantissas past 2^53 are left to the general parser.
                None => prop_assert!(text.bytes().filter(u8::is_ascii_digit).count() > 15, "{}", text),
            }
        }
    }
}
