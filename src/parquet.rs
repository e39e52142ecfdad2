//! Parquet files as basis writes them: LZ4-raw pages, statistics, and float columns
//! PLAIN-encoded from the start. polars' own writer asks for a dictionary on every float column,
//! estimates each column's cardinality to decide, and then falls back to PLAIN anyway (its cast
//! of floats to a dictionary fails), so that estimate was 7 % of a long run's time for
//! nothing. Float columns without missing values are also paged here ([`float_pages`]): polars
//! folds their min/max statistics one value at a time, a chain of dependent comparisons that
//! was 11 % of a 1-year run's time, and copies the values one at a time. The files are byte
//! for byte the ones polars' writer makes (the golden-output test and this module's tests say
//! so); integer and text columns keep polars' choice of encoding.
//!
//! Built on polars' own Parquet and Arrow layers (`polars-parquet`, `polars-arrow`).

use std::io::Write;

use anyhow::{anyhow, Result};
use polars::prelude::{CompatLevel, DataFrame, Schema, SchemaExt};
use polars::prelude::PolarsResult;
use polars_arrow::array::{Array, PrimitiveArray};
use polars_arrow::datatypes::ArrowDataType;
use polars_parquet::parquet::metadata::Descriptor;
use polars_parquet::parquet::page::{DataPage, DataPageHeader, DataPageHeaderV1};
use polars_parquet::parquet::schema::types::PrimitiveType as ParquetPrimitiveType;
use polars_parquet::parquet::schema::Repetition;
use polars_parquet::parquet::statistics::PrimitiveStatistics;
use polars_parquet::parquet::CowBuffer;
use polars_parquet::write::{
    array_to_columns, get_dtype_encoding, to_parquet_leaves, write_def_levels, CompressionOptions, Compressor, DynIter, DynStreamingIterator, Encoding, FallibleStreamingIterator, FileWriter, Page,
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
        let arrow_schema = schema.to_arrow(CompatLevel::newest());
        let encodings = arrow_schema
            .iter_values()
            .map(|field| match field.dtype() {
                ArrowDataType::Float64 | ArrowDataType::Float32 => vec![Encoding::Plain],
                other => get_dtype_encoding(other),
            })
            .collect();
        let options = WriteOptions { statistics: StatisticsOptions::default(), compression: CompressionOptions::Lz4Raw, version: Version::V1, data_page_size: None };
        let writer = FileWriter::try_new(sink, arrow_schema, options).map_err(|err| anyhow!("writing {name}: {err}"))?;
        Ok(Self { writer, encodings, options, name: name.to_string() })
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
            let encode = |((array, field), encoding): ((&polars_arrow::array::ArrayRef, &polars_parquet::write::ParquetType), &Vec<Encoding>)| -> Result<Vec<_>> {
                    let pages = match float_pages(array.as_ref(), field, options, encoding) {
                        Some(pages) => vec![pages],
                        None => array_to_columns(array, field.clone(), options, encoding).map_err(|err| anyhow!("writing {name}: {err}"))?,
                    };
                    Ok(pages
                        .into_iter()
                        .map(|column| {
                            let compressed = Compressor::new_from_vec(column.map(|page| page.map_err(|err| polars_parquet::parquet::error::ParquetError::FeatureNotSupported(err.to_string()))), options.compression, Vec::new());
                            Ok(DynStreamingIterator::new(compressed.map_err(polars::prelude::PolarsError::from)))
                        })
                        .collect())
            };
            let columns: Vec<_> = match ENCODERS.as_ref() {
                Some(pool) => pool.install(|| batch.columns().par_iter().zip(&fields).zip(&self.encodings).map(encode).collect::<Result<Vec<_>>>())?,
                None => batch.columns().iter().zip(&fields).zip(&self.encodings).map(encode).collect::<Result<Vec<_>>>()?,
            };
            let group = DynIter::new(columns.into_iter().flatten());
            self.writer.write(rows as u64, group).map_err(|err| anyhow!("writing {name}: {err}"))?;
        }
        Ok(())
    }

    /// Write the footer (with the Arrow schema, as polars does).
    pub fn finish(mut self) -> Result<()> {
        self.writer.end(None).map_err(|err| anyhow!("writing {}: {err}", self.name))?;
        Ok(())
    }
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
    // polars' split: pages of about 1 MiB, by the column's estimated bytes per row.
    const PAGE_BYTES: usize = 1024 * 1024;
    let bytes_per_row = if rows == 0 { 0 } else { ((rows * size_of::<f64>()) as f64 / rows as f64) as usize };
    let rows_per_page = (PAGE_BYTES / (bytes_per_row + 1)).max(1);
    let pages = (0..rows).step_by(rows_per_page).map(move |offset| {
        let page = &values[offset..(offset + rows_per_page).min(rows)];
        float_page(page, leaf.clone(), options)
    });
    Some(DynIter::new(pages))
}

/// One PLAIN page of `values` (none missing): definition levels where the column is nullable,
/// the values' little-endian bytes, and min/max/null-count statistics.
fn float_page(values: &[f64], leaf: ParquetPrimitiveType, options: WriteOptions) -> PolarsResult<Page> {
    let optional = leaf.field_info.repetition != Repetition::Required;
    let mut buffer = Vec::with_capacity(values.len() * size_of::<f64>() + 16);
    write_def_levels(&mut buffer, optional, None, values.len(), options.version)?;
    #[cfg(target_endian = "little")]
    buffer.extend_from_slice(bytemuck::cast_slice(values));
    #[cfg(not(target_endian = "little"))]
    buffer.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    let (min_value, max_value) = match min_max_propagate_nan(values) {
        // Parquet's normalised zeros: -0.0 as a minimum, +0.0 as a maximum.
        Some((min, max)) => (Some(if min == 0.0 { -0.0 } else { min }), Some(if max == 0.0 { 0.0 } else { max })),
        None => (None, None),
    };
    let statistics = PrimitiveStatistics::<f64> { primitive_type: leaf.clone(), null_count: Some(0), distinct_count: None, max_value, min_value };
    let header = DataPageHeader::V1(DataPageHeaderV1 {
        num_values: values.len() as i32,
        encoding: Encoding::Plain.into(),
        definition_level_encoding: Encoding::Rle.into(),
        repetition_level_encoding: Encoding::Rle.into(),
        statistics: Some(statistics.serialize()),
    });
    let descriptor = Descriptor { primitive_type: leaf, max_def_level: 0, max_rep_level: 0 };
    Ok(Page::Data(DataPage::new(header, CowBuffer::Owned(buffer), descriptor, values.len())))
}

/// The minimum and maximum as polars' statistics fold them with NaN propagated: the first NaN
/// (its bits) for both if there is one, else the extremes (the sign of a zero extreme is
/// normalised by the caller). Eight independent lanes, so the comparisons run in parallel.
fn min_max_propagate_nan(values: &[f64]) -> Option<(f64, f64)> {
    const LANES: usize = 8;
    if values.is_empty() {
        return None;
    }
    let mut mins = [f64::INFINITY; LANES];
    let mut maxs = [f64::NEG_INFINITY; LANES];
    let mut nan = [false; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for k in 0..LANES {
            let v = chunk[k];
            nan[k] |= v.is_nan();
            mins[k] = if v < mins[k] { v } else { mins[k] };
            maxs[k] = if v > maxs[k] { v } else { maxs[k] };
        }
    }
    let mut any_nan = nan.iter().any(|&n| n);
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in mins.iter().chain(rest) {
        min = if v < min { v } else { min };
    }
    for &v in maxs.iter().chain(rest) {
        max = if v > max { v } else { max };
    }
    any_nan |= rest.iter().any(|v| v.is_nan());
    if any_nan {
        let first = values.iter().copied().find(|v| v.is_nan())?;
        return Some((first, first));
    }
    Some((min, max))
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
    }
}
