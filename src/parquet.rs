//! Parquet files as basis writes them: LZ4-raw pages, statistics, and float columns
//! PLAIN-encoded from the start. polars' own writer asks for a dictionary on every float column,
//! estimates each column's cardinality to decide, and then falls back to PLAIN anyway (its cast
//! of floats to a dictionary fails), so that estimate was 7 % of a long run's time for
//! nothing. The files are byte for byte the ones polars' writer makes (the golden-output test
//! says so); integer and text columns keep polars' choice of encoding.
//!
//! Built on polars' own Parquet and Arrow layers (`polars-parquet`, `polars-arrow`).

use std::io::Write;

use anyhow::{anyhow, Result};
use polars::prelude::{CompatLevel, DataFrame, Schema, SchemaExt};
use polars_arrow::datatypes::ArrowDataType;
use polars_parquet::write::{
    array_to_columns, get_dtype_encoding, CompressionOptions, Compressor, DynIter, DynStreamingIterator, Encoding, FallibleStreamingIterator, FileWriter, StatisticsOptions, Version, WriteOptions,
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
                    let pages = array_to_columns(array, field.clone(), options, encoding).map_err(|err| anyhow!("writing {name}: {err}"))?;
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

/// Write `frame` to `sink` as one Parquet file, in row groups of at most 512 × 512 rows
/// (small chunks gathered, as polars' own writer does).
pub fn write_frame<W: Write>(sink: W, frame: &mut DataFrame, name: &str) -> Result<()> {
    let chunked = polars::frame::chunk_df_for_writing(frame, 512 * 512).map_err(|err| anyhow!("writing {name}: {err}"))?;
    let mut writer = FrameWriter::new(sink, chunked.schema(), name)?;
    writer.write(&chunked)?;
    writer.finish()
}
