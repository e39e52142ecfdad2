//! Parquet files as basis writes them: LZ4-raw pages, statistics, and float columns
//! PLAIN-encoded from the start. polars' own writer asks for a dictionary on every float column,
//! estimates each column's cardinality to decide, and then falls back to PLAIN anyway (its cast
//! of floats to a dictionary fails), so that estimate was 7 % of a long run's time for
//! nothing. Float columns without missing values are also paged here ([`FloatPage`]): polars
//! folds their min/max statistics one value at a time, a chain of dependent comparisons that
//! was 11 % of a 1-year run's time, and copies the values one at a time. The files are byte
//! for byte the ones polars' writer makes (the golden-output test and this module's tests say
//! so); integer and text columns keep polars' choice of encoding.
//!
//! Built on polars' own Parquet and Arrow layers (`polars-parquet`, `polars-arrow`).

use std::io::Write;

use anyhow::{anyhow, Result};
use polars::prelude::{CompatLevel, DataFrame, Schema, SchemaExt};
use polars::prelude::{PolarsError, PolarsResult};
use polars_arrow::array::{Array, PrimitiveArray};
use polars_arrow::datatypes::ArrowDataType;
use polars_parquet::parquet::metadata::Descriptor;
use polars_parquet::parquet::page::{DataPage, DataPageHeader, DataPageHeaderV1};
use polars_parquet::parquet::schema::types::PrimitiveType as ParquetPrimitiveType;
use polars_parquet::parquet::schema::Repetition;
use polars_parquet::parquet::statistics::PrimitiveStatistics;
use polars_parquet::parquet::CowBuffer;
use polars_parquet::write::{
    array_to_columns, get_dtype_encoding, to_parquet_leaves, write_def_levels, CompressedPage, CompressionOptions, Compressor, DynIter, DynStreamingIterator, Encoding, FallibleStreamingIterator, FileWriter, Page,
    ParquetType, StatisticsOptions, Version, WriteOptions,
};
use rayon::prelude::*;

/// The threads that encode a row group's columns: a pool of its own, so a writer called from
/// inside rayon's global pool (a parallel loop of backtests) can never wait on workers that
/// are themselves waiting on it. None if the pool cannot be built: columns are then encoded
/// one after another.
static ENCODERS: std::sync::LazyLock<Option<rayon::ThreadPool>> =
    std::sync::LazyLock::new(|| rayon::ThreadPoolBuilder::new().thread_name(|k| format!("parquet-encode-{k}")).build().ok());

/// Writes data frames of one schema to a Parquet file, one row group per chunk of each frame.
pub struct FrameWriter<W: Write> {
    writer: FileWriter<W>,
    encodings: Vec<Vec<Encoding>>,
    options: WriteOptions,
    /// For messages.
    name: String,
}

impl<W: Write> FrameWriter<W> {
    /// A writer of frames with `schema` to `sink`; `name` (the file) is used in messages.
    pub fn new(sink: W, schema: &Schema, name: &str) -> Result<Self> {
        Self::with_compression(sink, schema, name, CompressionOptions::Lz4Raw)
    }

    /// [`FrameWriter::new`] with pages compressed by `compression` (a cache whose files are
    /// read back at once is faster written and read uncompressed).
    pub fn with_compression(sink: W, schema: &Schema, name: &str, compression: CompressionOptions) -> Result<Self> {
        let arrow_schema = schema.to_arrow(CompatLevel::newest());
        let encodings = arrow_schema
            .iter_values()
            .map(|field| match field.dtype() {
                ArrowDataType::Float64 | ArrowDataType::Float32 => vec![Encoding::Plain],
                other => get_dtype_encoding(other),
            })
            .collect();
        let options = WriteOptions { statistics: StatisticsOptions::default(), compression, version: Version::V1, data_page_size: None };
        let writer = FileWriter::try_new(sink, arrow_schema, options).map_err(|err| anyhow!("writing {name}: {err}"))?;
        Ok(Self { writer, encodings, options, name: name.to_string() })
    }

    /// Write 64-bit integer columns delta-encoded (a column of times a bar apart packs to about
    /// a byte a row, where PLAIN takes eight).
    pub fn delta_encoded_integers(mut self) -> Self {
        for (encoding, field) in self.encodings.iter_mut().zip(self.writer.schema().iter_values()) {
            if matches!(field.dtype(), ArrowDataType::Int64) {
                *encoding = vec![Encoding::DeltaBinaryPacked];
            }
        }
        self
    }

    /// Append `frame` (its schema must be the writer's) as one row group per chunk.
    pub fn write(&mut self, frame: &DataFrame) -> Result<()> {
        let (options, name) = (self.options, &self.name);
        let fields = self.writer.parquet_schema().fields().to_vec();
        for batch in frame.iter_chunks(CompatLevel::newest(), false) {
            let rows = batch.len();
            if rows == 0 {
                continue;
            }
            // Columns are encoded and compressed in parallel, then written in order.
            let encode = |((array, field), encoding): ((&polars_arrow::array::ArrayRef, &ParquetType), &Vec<Encoding>)| column_pages(array, field, options, encoding, name);
            let columns: Vec<_> = match ENCODERS.as_ref() {
                Some(pool) => pool.install(|| batch.columns().par_iter().zip(&fields).zip(&self.encodings).map(encode).collect::<Result<Vec<_>>>())?,
                None => batch.columns().iter().zip(&fields).zip(&self.encodings).map(encode).collect::<Result<Vec<_>>>()?,
            };
            let group = DynIter::new(columns.into_iter().flatten());
            self.writer.write(rows as u64, group).map_err(|err| anyhow!("writing {name}: {err}"))?;
        }
        Ok(())
    }

    /// Append one row group whose first columns are `front`'s (one chunk) and whose other
    /// columns, in schema order, are float `pages` of the same number of rows.
    pub fn write_parts(&mut self, front: &DataFrame, pages: Vec<FloatPage>) -> Result<()> {
        let (options, name) = (self.options, &self.name);
        let fields = self.writer.parquet_schema().fields().to_vec();
        let rows = front.height();
        let mut batches = front.iter_chunks(CompatLevel::newest(), false);
        let batch = batches.next().ok_or_else(|| anyhow!("writing {name}: a row group without columns"))?;
        if batches.next().is_some() || batch.columns().len() + pages.len() != fields.len() {
            return Err(anyhow!("writing {name}: {} columns in {} chunks and {} float pages for a schema of {} columns", front.width(), front.first_col_n_chunks(), pages.len(), fields.len()));
        }
        let split = batch.columns().len();
        let mut columns = Vec::with_capacity(fields.len());
        for ((array, field), encoding) in batch.columns().iter().zip(&fields).zip(&self.encodings) {
            columns.extend(column_pages(array, field, options, encoding, name)?);
        }
        for (page, field) in pages.into_iter().zip(&fields[split..]) {
            let [leaf] = <[ParquetPrimitiveType; 1]>::try_from(to_parquet_leaves(field.clone())).map_err(|_| anyhow!("writing {name}: a float page for a nested column"))?;
            if page.rows != rows {
                return Err(anyhow!("writing {name}: a float page of {} rows in a row group of {rows}", page.rows));
            }
            let page = page.into_page(leaf, options).map_err(|err| anyhow!("writing {name}: {err}"))?;
            columns.push(compressed(DynIter::new(std::iter::once(Ok(page))), options));
        }
        self.writer.write(rows as u64, DynIter::new(columns.into_iter())).map_err(|err| anyhow!("writing {name}: {err}"))
    }

    /// Write the footer (with the Arrow schema, as polars does).
    pub fn finish(self) -> Result<()> {
        self.finish_with_metadata(Vec::new())
    }

    /// [`FrameWriter::finish`], with `key_value` pairs in the footer's key-value metadata.
    pub fn finish_with_metadata(mut self, key_value: Vec<(String, String)>) -> Result<()> {
        let pairs = (!key_value.is_empty()).then(|| key_value.into_iter().map(|(key, value)| polars_parquet::write::KeyValue { key, value: Some(value) }).collect());
        self.writer.end(pairs).map_err(|err| anyhow!("writing {}: {err}", self.name))?;
        Ok(())
    }
}

/// One column's leaves, each as its pages compressed as the file writer pulls them: a float
/// column without missing values paged by [`float_pages`], any other by polars.
fn column_pages(array: &polars_arrow::array::ArrayRef, field: &ParquetType, options: WriteOptions, encoding: &[Encoding], name: &str) -> Result<Vec<PolarsResult<DynStreamingIterator<'static, CompressedPage, PolarsError>>>> {
    let leaves = match float_pages(array.as_ref(), field, options, encoding) {
        Some(pages) => vec![pages],
        None => array_to_columns(array, field.clone(), options, encoding).map_err(|err| anyhow!("writing {name}: {err}"))?,
    };
    Ok(leaves.into_iter().map(|pages| compressed(pages, options)).collect())
}

/// A column's pages, compressed as the file writer pulls them.
fn compressed(pages: DynIter<'static, PolarsResult<Page>>, options: WriteOptions) -> PolarsResult<DynStreamingIterator<'static, CompressedPage, PolarsError>> {
    let compressor = Compressor::new_from_vec(pages.map(|page| page.map_err(|err| polars_parquet::parquet::error::ParquetError::FeatureNotSupported(err.to_string()))), options.compression, Vec::new());
    Ok(DynStreamingIterator::new(compressor.map_err(PolarsError::from)))
}

/// The pages of a Float64 column with no validity bitmap, PLAIN-encoded with statistics, as
/// polars' `array_to_columns` makes them (same page split, definition levels, header and
/// statistics), or None for any other column or options, which then go polars' way.
fn float_pages(array: &dyn Array, field: &ParquetType, options: WriteOptions, encoding: &[Encoding]) -> Option<DynIter<'static, PolarsResult<Page>>> {
    let values = array.as_any().downcast_ref::<PrimitiveArray<f64>>()?;
    if encoding != [Encoding::Plain] || values.validity().is_some() || options.version != Version::V1 || options.statistics != StatisticsOptions::default() || !matches!(field, ParquetType::PrimitiveType(_)) {
        return None;
    }
    let [leaf] = <[ParquetPrimitiveType; 1]>::try_from(to_parquet_leaves(field.clone())).ok()?;
    let values = values.values().clone();
    let rows = values.len();
    let pages = (0..rows).step_by(FLOAT_PAGE_ROWS).map(move |offset| {
        let page = &values[offset..(offset + FLOAT_PAGE_ROWS).min(rows)];
        float_page(page, leaf.clone(), options)
    });
    Some(DynIter::new(pages))
}

/// One PLAIN page of `values` (none missing), as polars pages a float column.
fn float_page(values: &[f64], leaf: ParquetPrimitiveType, options: WriteOptions) -> PolarsResult<Page> {
    let mut page = FloatPage::for_rows(values.len(), leaf.field_info.repetition != Repetition::Required);
    page.push(values);
    page.into_page(leaf, options)
}

/// Rows a PLAIN float page holds at most: polars splits a column without a validity bitmap
/// into pages of 1 MiB / (bytes per row + 1) rows, 8 bytes a row for a float.
pub const FLOAT_PAGE_ROWS: usize = 1024 * 1024 / (size_of::<f64>() + 1);

/// One float column's page (no missing values) filled a slice of values at a time, with its
/// min/max statistics gathered as it fills: the streamed ledger lays its rows out into these a
/// block at a time, without a whole column of floats in between ([`FrameWriter::write_parts`]).
pub struct FloatPage {
    /// Definition levels, then the values' little-endian bytes.
    buffer: Vec<u8>,
    /// Where the values start in `buffer` (after the definition levels).
    values_from: usize,
    optional: bool,
    rows: usize,
    filled: usize,
    extremes: Extremes,
}

impl FloatPage {
    /// An empty page for `rows` values of a column that is `optional` (nullable, as polars'
    /// columns are) or not.
    pub fn for_rows(rows: usize, optional: bool) -> Self {
        let mut buffer = Vec::with_capacity(rows * size_of::<f64>() + 16);
        // Writing run-length definition levels into a vector cannot fail.
        let _ = write_def_levels(&mut buffer, optional, None, rows, Version::V1);
        FloatPage { values_from: buffer.len(), buffer, optional, rows, filled: 0, extremes: Extremes::default() }
    }

    /// The page cut to the values pushed so far, for a row group that ended before the rows
    /// the page was made for: the definition levels (which count the rows) are written again
    /// and the values copied once.
    pub fn cut_to_filled(self) -> FloatPage {
        if self.filled == self.rows {
            return self;
        }
        let mut cut = FloatPage::for_rows(self.filled, self.optional);
        cut.buffer.extend_from_slice(&self.buffer[self.values_from..]);
        FloatPage { filled: self.filled, extremes: self.extremes, ..cut }
    }

    /// Append `n` values, the `k`th being `value(k)`: for values that are not in a slice (a
    /// column of rows stored whole), taken eight at a time into registers, with no copy in
    /// between and no value read back after it is stored.
    #[inline(always)]
    pub fn push_from(&mut self, n: usize, mut value: impl FnMut(usize) -> f64) {
        const LANES: usize = Extremes::LANES;
        let whole = n - n % LANES;
        // Kept in registers through the loop: written through `self`, the buffer's stores could
        // alias them for all the compiler knows.
        let mut extremes = self.extremes;
        self.buffer.reserve(whole * size_of::<f64>());
        for from in (0..whole).step_by(LANES) {
            let lanes: [f64; LANES] = std::array::from_fn(|lane| value(from + lane));
            extremes.push_lanes(&lanes);
            #[cfg(target_endian = "little")]
            self.buffer.extend_from_slice(bytemuck::cast_slice(&lanes));
            #[cfg(not(target_endian = "little"))]
            self.buffer.extend(lanes.iter().flat_map(|v| v.to_le_bytes()));
        }
        self.extremes = extremes;
        for k in whole..n {
            self.push(&[value(k)]);
        }
        self.filled += whole;
    }

    /// Append `values`.
    #[inline]
    pub fn push(&mut self, values: &[f64]) {
        self.extremes.push(values);
        #[cfg(target_endian = "little")]
        self.buffer.extend_from_slice(bytemuck::cast_slice(values));
        #[cfg(not(target_endian = "little"))]
        self.buffer.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        self.filled += values.len();
    }

    /// The page of column `leaf`, with its header and statistics.
    fn into_page(self, leaf: ParquetPrimitiveType, options: WriteOptions) -> PolarsResult<Page> {
        if options.version != Version::V1 || options.statistics != StatisticsOptions::default() {
            polars::prelude::polars_bail!(ComputeError: "float pages are written as Parquet V1 pages with the default statistics");
        }
        if leaf.physical_type != polars_parquet::parquet::schema::types::PhysicalType::Double || self.filled != self.rows || self.optional != (leaf.field_info.repetition != Repetition::Required) || self.rows > FLOAT_PAGE_ROWS {
            polars::prelude::polars_bail!(ComputeError: "float page of column {}: {} of {} rows, optional {}, at most {FLOAT_PAGE_ROWS} rows", leaf.field_info.name, self.filled, self.rows, self.optional);
        }
        let (min_value, max_value) = match self.extremes.finish() {
            // Parquet's normalised zeros: -0.0 as a minimum, +0.0 as a maximum.
            Some((min, max)) => (Some(if min == 0.0 { -0.0 } else { min }), Some(if max == 0.0 { 0.0 } else { max })),
            None => (None, None),
        };
        let statistics = PrimitiveStatistics::<f64> { primitive_type: leaf.clone(), null_count: Some(0), distinct_count: None, max_value, min_value };
        let header = DataPageHeader::V1(DataPageHeaderV1 {
            num_values: self.rows as i32,
            encoding: Encoding::Plain.into(),
            definition_level_encoding: Encoding::Rle.into(),
            repetition_level_encoding: Encoding::Rle.into(),
            statistics: Some(statistics.serialize()),
        });
        let descriptor = Descriptor { primitive_type: leaf, max_def_level: 0, max_rep_level: 0 };
        Ok(Page::Data(DataPage::new(header, CowBuffer::Owned(self.buffer), descriptor, self.rows)))
    }
}

/// The minimum and maximum as polars' statistics fold them with NaN propagated: the first NaN
/// (its bits) for both if there is one, else the extremes (the sign of a zero extreme is
/// normalised by the caller). Kept in eight independent lanes, so the comparisons run in
/// parallel instead of as one chain.
#[derive(Clone, Copy)]
struct Extremes {
    mins: [f64; Extremes::LANES],
    maxs: [f64; Extremes::LANES],
    first_nan: Option<f64>,
    any: bool,
}

impl Default for Extremes {
    fn default() -> Self {
        Extremes { mins: [f64::INFINITY; Self::LANES], maxs: [f64::NEG_INFINITY; Self::LANES], first_nan: None, any: false }
    }
}

impl Extremes {
    const LANES: usize = 8;

    /// Fold in eight values in order, one a lane.
    #[inline(always)]
    fn push_lanes(&mut self, values: &[f64; Self::LANES]) {
        let mut nan = false;
        for (lane, &v) in values.iter().enumerate() {
            nan |= v.is_nan();
            self.fold(lane, v);
        }
        if nan && self.first_nan.is_none() {
            self.first_nan = values.iter().copied().find(|v| v.is_nan());
        }
        self.any = true;
    }

    /// Fold `v` into lane `lane`'s minimum and maximum (a NaN leaves them: `first_nan` has it).
    #[inline(always)]
    fn fold(&mut self, lane: usize, v: f64) {
        self.mins[lane] = if v < self.mins[lane] { v } else { self.mins[lane] };
        self.maxs[lane] = if v > self.maxs[lane] { v } else { self.maxs[lane] };
    }

    #[inline]
    fn push(&mut self, values: &[f64]) {
        let (chunks, rest) = values.as_chunks::<{ Self::LANES }>();
        for chunk in chunks {
            self.push_lanes(chunk);
        }
        // After every whole chunk: a NaN here is the first only if none came before.
        for &v in rest {
            self.fold(0, v);
            if v.is_nan() && self.first_nan.is_none() {
                self.first_nan = Some(v);
            }
        }
        self.any |= !values.is_empty();
    }

    fn finish(&self) -> Option<(f64, f64)> {
        if !self.any {
            return None;
        }
        if let Some(nan) = self.first_nan {
            return Some((nan, nan));
        }
        let min = self.mins.iter().copied().fold(f64::INFINITY, |m, v| if v < m { v } else { m });
        let max = self.maxs.iter().copied().fold(f64::NEG_INFINITY, |m, v| if v > m { v } else { m });
        Some((min, max))
    }
}

#[cfg(test)]
fn min_max_propagate_nan(values: &[f64]) -> Option<(f64, f64)> {
    let mut extremes = Extremes::default();
    extremes.push(values);
    extremes.finish()
}

/// Write `frame` to `sink` as one Parquet file, in row groups of at most 512 × 512 rows
/// (small chunks gathered, as polars' own writer does).
pub fn write_frame<W: Write>(sink: W, frame: &mut DataFrame, name: &str) -> Result<()> {
    let chunked = polars::frame::chunk_df_for_writing(frame, 512 * 512).map_err(|err| anyhow!("writing {name}: {err}"))?;
    let mut writer = FrameWriter::new(sink, chunked.schema(), name)?;
    writer.write(&chunked)?;
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    /// polars' own writer, with the options basis writes with.
    fn polars_bytes(frame: &mut DataFrame) -> Vec<u8> {
        let mut bytes = Vec::new();
        ParquetWriter::new(&mut bytes).with_compression(ParquetCompression::Lz4Raw).with_statistics(StatisticsOptions::default()).finish(frame).unwrap();
        bytes
    }

    fn basis_bytes(frame: &mut DataFrame) -> Vec<u8> {
        let mut bytes = Vec::new();
        write_frame(&mut bytes, frame, "test").unwrap();
        bytes
    }

    /// A float column whose values exercise the statistics: NaNs of two payloads, zeros of both
    /// signs, infinities, denormals.
    fn floats(n: usize, seed: u64, specials: bool) -> Vec<f64> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|i| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let x = ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 1e4;
                if !specials {
                    return x;
                }
                match (state >> 3) % 97 {
                    0 => f64::NAN,
                    1 => -f64::NAN,
                    2 => 0.0,
                    3 => -0.0,
                    4 => f64::INFINITY,
                    5 => f64::NEG_INFINITY,
                    6 => f64::MIN_POSITIVE / 4.0,
                    _ if i % 5 == 0 => x.round(),
                    _ => x,
                }
            })
            .collect()
    }

    #[test]
    fn frames_are_byte_identical_to_polars_writer() {
        // Lengths: empty, under one lane, one page, several pages (116,508 rows a page) and
        // several row groups (262,144 rows a group).
        for (n, seed) in [(0usize, 1u64), (1, 2), (7, 3), (8, 4), (1000, 5), (116_509, 6), (300_001, 7)] {
            let ts: Vec<i64> = (0..n as i64).map(|i| 1_600_000_000_000 + i * 60_000).collect();
            let state: Vec<i32> = (0..n).map(|i| (i % 3) as i32).collect();
            let mut frame = DataFrame::new(
                n,
                vec![
                    Column::new("ts".into(), &ts),
                    Column::new("clean".into(), floats(n, seed, false)),
                    Column::new("special".into(), floats(n, seed + 100, true)),
                    Column::new("zeros".into(), vec![0.0f64; n]),
                    Column::new("negative_zeros".into(), vec![-0.0f64; n]),
                    Column::new("all_nan".into(), vec![f64::NAN; n]),
                    Column::new("state".into(), &state),
                ],
            )
            .unwrap();
            assert_eq!(basis_bytes(&mut frame.clone()), polars_bytes(&mut frame), "{n} rows");
        }
    }

    /// polars' fold (`min_max_propagate_nan`), written out.
    fn reference(values: &[f64]) -> Option<(u64, u64)> {
        let first = *values.first()?;
        let (mut min, mut max) = (first, first);
        for &x in &values[1..] {
            min = if (min < x) | min.is_nan() { min } else { x };
            max = if (max > x) | max.is_nan() { max } else { x };
        }
        let min = if min == 0.0 { -0.0 } else { min };
        let max = if max == 0.0 { 0.0 } else { max };
        Some((min.to_bits(), max.to_bits()))
    }

    #[test]
    fn min_max_equal_polars_fold_bit_for_bit() {
        let normalised = |v: &[f64]| {
            min_max_propagate_nan(v).map(|(min, max)| ((if min == 0.0 { -0.0 } else { min }).to_bits(), (if max == 0.0 { 0.0 } else { max }).to_bits()))
        };
        for n in [0, 1, 2, 7, 8, 9, 15, 16, 17, 100, 1001] {
            for seed in 0..40 {
                let values = floats(n, seed, seed % 2 == 0);
                assert_eq!(normalised(&values), reference(&values), "{n} values, seed {seed}");
            }
        }
        // The first NaN's bits, wherever it is.
        let payload = f64::from_bits(0x7ff8_0000_0000_0abc);
        assert_eq!(normalised(&[1.0, payload, f64::NAN, -3.0]), Some((payload.to_bits(), payload.to_bits())));
        assert_eq!(normalised(&[1.0; 9].iter().copied().chain([-f64::NAN]).collect::<Vec<_>>()), Some(((-f64::NAN).to_bits(), (-f64::NAN).to_bits())));
        assert_eq!(normalised(&[-0.0, 0.0]), Some(((-0.0f64).to_bits(), 0.0f64.to_bits())));
        assert_eq!(normalised(&[f64::NEG_INFINITY]), Some((f64::NEG_INFINITY.to_bits(), f64::NEG_INFINITY.to_bits())));
        // Pushed in pieces (a block at a time, as the ledger does): the same.
        for seed in 0..20 {
            let values = floats(1000, seed, true);
            let mut extremes = Extremes::default();
            for piece in values.chunks(64) {
                extremes.push(piece);
            }
            let whole = min_max_propagate_nan(&values).map(|(a, b)| (a.to_bits(), b.to_bits()));
            assert_eq!(extremes.finish().map(|(a, b)| (a.to_bits(), b.to_bits())), whole, "seed {seed}");
        }
    }

    /// A page filled by `push_from` (eight values at a time through registers) has the bytes and
    /// the statistics of one filled from slices, blocks of every length included.
    #[test]
    fn pages_filled_value_by_value_equal_pages_filled_from_slices() {
        let bits = |page: &FloatPage| page.extremes.finish().map(|(a, b)| (a.to_bits(), b.to_bits()));
        for (n, block) in [(0usize, 64usize), (1, 64), (7, 3), (8, 8), (9, 64), (63, 64), (1000, 64), (1000, 13)] {
            for seed in 0..20 {
                let values = floats(n, seed, seed % 2 == 0);
                let (mut from_slices, mut by_value) = (FloatPage::for_rows(n, true), FloatPage::for_rows(n, true));
                for piece in values.chunks(block) {
                    from_slices.push(piece);
                    by_value.push_from(piece.len(), |k| piece[k]);
                }
                assert!(from_slices.buffer == by_value.buffer, "{n} values in blocks of {block}, seed {seed}: bytes");
                assert_eq!(bits(&from_slices), bits(&by_value), "{n} values in blocks of {block}, seed {seed}");
                assert_eq!(from_slices.filled, by_value.filled);
            }
        }
    }

    /// A row group written as a front frame plus float pages filled in blocks has the bytes of
    /// the same frame written whole.
    #[test]
    fn row_groups_written_in_parts_equal_whole_frames() {
        for (n, seed) in [(1usize, 11u64), (63, 12), (65_536, 13), (100_000, 14)] {
            let ts: Vec<i64> = (0..n as i64).map(|i| 1_600_000_000_000 + i * 60_000).collect();
            let state: Vec<i32> = (0..n).map(|i| (i % 3) as i32).collect();
            let float_columns: Vec<Vec<f64>> = (0..4).map(|k| floats(n, seed + 100 * k, k % 2 == 1)).collect();
            let front = DataFrame::new(n, vec![Column::new("ts".into(), &ts), Column::new("state".into(), &state)]).unwrap();
            let mut whole = front.clone();
            for (k, values) in float_columns.iter().enumerate() {
                whole.with_column(Column::new(format!("f{k}").into(), values)).unwrap();
            }
            let expected = basis_bytes(&mut whole.clone());
            let mut bytes = Vec::new();
            let mut writer = FrameWriter::new(&mut bytes, whole.schema(), "test").unwrap();
            let pages = float_columns
                .iter()
                .map(|values| {
                    let mut page = FloatPage::for_rows(n, true);
                    for block in values.chunks(64) {
                        page.push(block);
                    }
                    page
                })
                .collect();
            writer.write_parts(&front, pages).unwrap();
            writer.finish().unwrap();
            assert_eq!(bytes, expected, "{n} rows");
        }
        // A page of the wrong length is refused, not written.
        let front = DataFrame::new(2, vec![Column::new("ts".into(), [1i64, 2])]).unwrap();
        let mut whole = front.clone();
        whole.with_column(Column::new("f".into(), [1.0f64, 2.0])).unwrap();
        let mut writer = FrameWriter::new(Vec::new(), whole.schema(), "test").unwrap();
        let mut short = FloatPage::for_rows(2, true);
        short.push(&[1.0]);
        assert!(writer.write_parts(&front, vec![short]).is_err());
    }

    /// A page made for more rows than it got, once cut, has the bytes of a page made for the
    /// rows it got (definition levels, values and statistics).
    #[test]
    fn cut_pages_equal_pages_made_to_size() {
        for (made_for, got) in [(65_536usize, 0usize), (65_536, 1), (65_536, 63), (65_536, 8_191), (65_536, 8_192), (65_536, 65_535), (65_536, 65_536), (10, 3)] {
            let values = floats(got, got as u64 + 7, true);
            let mut made = FloatPage::for_rows(got, true);
            let mut cut = FloatPage::for_rows(made_for, true);
            for block in values.chunks(64) {
                made.push(block);
                cut.push(block);
            }
            let cut = cut.cut_to_filled();
            assert_eq!((cut.rows, cut.filled, cut.values_from), (made.rows, made.filled, made.values_from), "{got} of {made_for}");
            assert_eq!(cut.buffer, made.buffer, "{got} of {made_for}");
            assert_eq!(cut.extremes.finish().map(|(a, b)| (a.to_bits(), b.to_bits())), made.extremes.finish().map(|(a, b)| (a.to_bits(), b.to_bits())), "{got} of {made_for}");
        }
    }
}
