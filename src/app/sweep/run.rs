//! Running a sweep: chunks of configurations in parallel, each chunk written as a Parquet part
//! (temp file, then rename) into `<output_dir>/.<name>.partial/parts/`; a resumed sweep skips
//! the chunks whose part exists. At the end the parts become `results.parquet`, the report and
//! the walk-forward in `<output_dir>/<name>/` (written through a temporary folder like a run),
//! and the partial folder is removed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::spec::{value_number, value_text, Sweep};
use super::{metric_values, Markets, METRIC_COUNT, METRIC_NAMES};
use crate::config::Config;
use crate::output::{write_parquet_atomic, RunDir};
use crate::{bail_input, input_error};

/// Configurations per chunk (and per Parquet part): a killed sweep redoes at most this many.
pub const CHUNK: u64 = 1024;

/// How to run a sweep.
#[derive(Debug, Clone, Default)]
pub struct SweepOptions {
    /// Run only configurations with `id % n == i`.
    pub shard: Option<(u64, u64)>,
    /// Replace a finished sweep of the same name, or discard an unfinished one of another plan.
    pub force: bool,
    /// Override the sweep file's name.
    pub name: Option<String>,
    /// Override the sweep file's output folder.
    pub output_dir: Option<PathBuf>,
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
    /// Configurations finished so far (those of resumed chunks included), for a caller that
    /// reports progress itself (the Python package polls it).
    pub done: Option<Arc<AtomicU64>>,
    /// Set to stop at the next chunk: the chunks finished stay, and running the sweep again
    /// resumes after them.
    pub stop: Option<Arc<AtomicBool>>,
}

/// What a sweep did.
#[derive(Debug, Clone, Serialize)]
pub struct SweepSummary {
    /// The sweep's finished output folder.
    pub folder: PathBuf,
    /// Configurations in this shard (or the whole sweep).
    pub configurations: u64,
    /// Of those, how many were already done by an earlier, interrupted run.
    pub resumed: u64,
    /// Configurations whose config was invalid (recorded with their error, metrics NaN).
    pub failed: u64,
    /// Distinct aligned market timelines built (one per distinct window, staking APR and funding settings).
    pub timelines: usize,
    /// Wall-clock time of the sweep, seconds.
    pub seconds: f64,
    /// Id of the best configuration by the sweep's metric; None when none ran.
    pub best_id: Option<u64>,
    /// The best configuration's value of the sweep's metric; None when none ran.
    pub best_metric: Option<f64>,
}

/// Parse `i/n`.
pub fn parse_shard(text: &str) -> Result<(u64, u64)> {
    let parsed = text.split_once('/').and_then(|(i, n)| Some((i.trim().parse::<u64>().ok()?, n.trim().parse::<u64>().ok()?)));
    match parsed {
        Some((i, n)) if n > 0 && i < n => Ok((i, n)),
        _ => bail_input!("--shard {text:?}: expected i/n with 0 <= i < n, e.g. 3/16 (Slurm: $SLURM_ARRAY_TASK_ID/16)"),
    }
}

/// One finished configuration.
struct Row {
    id: u64,
    values: Vec<toml::Value>,
    error: String,
    metrics: [f64; METRIC_COUNT],
}

fn evaluate(sweep: &Sweep, markets: &Markets, id: u64) -> Row {
    let values = sweep.values(id);
    let outcome = super::run_values(sweep, markets, &values, &[]);
    match outcome {
        Ok(metrics) => Row { id, values, error: String::new(), metrics: metric_values(&metrics) },
        Err(err) => Row { id, values, error: format!("{err:#}"), metrics: [f64::NAN; METRIC_COUNT] },
    }
}

/// Rows as a frame: config_id, one column per parameter (named by its path), error, metrics.
fn rows_frame(sweep: &Sweep, rows: &[Row]) -> Result<DataFrame> {
    let mut columns = vec![Column::new("config_id".into(), rows.iter().map(|r| r.id).collect::<Vec<u64>>())];
    for (k, param) in sweep.params.iter().enumerate() {
        let name = param.path.as_str();
        if param.numeric {
            columns.push(Column::new(name.into(), rows.iter().map(|r| value_number(&r.values[k])).collect::<Vec<f64>>()));
        } else {
            columns.push(Column::new(name.into(), rows.iter().map(|r| value_text(&r.values[k])).collect::<Vec<String>>()));
        }
    }
    columns.push(Column::new("error".into(), rows.iter().map(|r| r.error.as_str()).collect::<Vec<&str>>()));
    for (m, name) in METRIC_NAMES.iter().enumerate() {
        columns.push(Column::new((*name).into(), rows.iter().map(|r| r.metrics[m]).collect::<Vec<f64>>()));
    }
    Ok(DataFrame::new(rows.len(), columns)?)
}

#[derive(Serialize)]
struct Plan<'a> {
    tool_version: &'static str,
    sweep: &'a str,
    base_config: &'a str,
    total: u64,
    shard: Option<(u64, u64)>,
    chunk: u64,
}

/// The number of a shard's configurations (all of them without a shard).
pub fn shard_len(total: u64, shard: Option<(u64, u64)>) -> u64 {
    match shard {
        None => total,
        Some((i, n)) => (total + n - 1 - i) / n,
    }
}

fn id_at(position: u64, shard: Option<(u64, u64)>) -> u64 {
    match shard {
        None => position,
        Some((i, n)) => i + position * n,
    }
}

/// Merge the `results.parquet` of a sweep's shards (`--shard i/n` folders, each its own
/// machine's, in any order) into `<output_dir>/<name>/results.parquet`: every row once, sorted
/// by `config_id`, written as the unsharded sweep writes it, so the two files are the same bytes.
pub fn merge_shards(folders: &[PathBuf], output_dir: &Path, name: &str, force: bool) -> Result<PathBuf> {
    crate::config::validate_run_name(name)?;
    let mut all: Option<DataFrame> = None;
    for folder in folders {
        let path = folder.join("results.parquet");
        let file = std::fs::File::open(&path).map_err(|e| input_error!("{}: {e}; give the folders `basis sweep --shard i/n` wrote", path.display()))?;
        let frame = ParquetReader::new(file).finish().map_err(|e| input_error!("{}: {e}", path.display()))?;
        match all.as_mut() {
            None => all = Some(frame),
            Some(acc) => {
                acc.vstack_mut(&frame).map_err(|e| input_error!("{}: its columns differ from the first shard's ({e}); were the shards of one sweep?", path.display()))?;
            }
        }
    }
    let merged = all.ok_or_else(|| input_error!("no shard folders to merge"))?;
    let mut merged = merged.sort(["config_id"], SortMultipleOptions::default())?;
    let ids: Vec<u64> = merged.column("config_id")?.u64()?.into_no_null_iter().collect();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        bail_input!("configuration {} is in two shards; give each shard of the sweep once", w[0]);
    }
    merged.rechunk_mut();
    let dir = RunDir::create(output_dir, name, force)?;
    dir.write_parquet("results.parquet", &mut merged)?;
    dir.commit()
}

/// Read every part of a partial folder, in chunk order, as one frame sorted by config_id.
fn read_parts(parts: &Path, chunks: u64) -> Result<DataFrame> {
    let mut all: Option<DataFrame> = None;
    for k in 0..chunks {
        let path = parts.join(format!("chunk-{k:06}.parquet"));
        let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let frame = ParquetReader::new(file).finish().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        match all.as_mut() {
            None => all = Some(frame),
            Some(acc) => {
                acc.vstack_mut(&frame)?;
            }
        }
    }
    let mut frame = all.ok_or_else(|| input_error!("the sweep has no configurations"))?;
    frame.rechunk_mut();
    Ok(frame)
}

/// Run (or resume) a sweep and write its folder.
pub fn run(sweep: &Sweep, options: &SweepOptions) -> Result<SweepSummary> {
    let started = Instant::now();
    let name = options.name.clone().unwrap_or_else(|| sweep.file.name.clone());
    crate::config::validate_run_name(&name)?;
    let folder_name = match options.shard {
        None => name.clone(),
        Some((i, n)) => format!("{name}.shard-{i}-of-{n}"),
    };
    let output_dir = options.output_dir.clone().unwrap_or_else(|| sweep.file.output_dir.clone());
    std::fs::create_dir_all(&output_dir).map_err(|err| input_error!("cannot create the output folder {}: {err}", output_dir.display()))?;
    let partial = output_dir.join(format!(".{folder_name}.partial"));
    let parts = partial.join("parts");
    let plan = serde_json::to_string_pretty(&Plan {
        tool_version: env!("CARGO_PKG_VERSION"),
        sweep: &sweep.text,
        base_config: &sweep.base_text,
        total: sweep.total,
        shard: options.shard,
        chunk: CHUNK,
    })?;
    let plan_hash = format!("{:x}", Sha256::digest(plan.as_bytes()));
    let plan_path = partial.join("plan.json");
    if partial.exists() {
        let earlier = std::fs::read_to_string(&plan_path).unwrap_or_default();
        let earlier_hash = format!("{:x}", Sha256::digest(earlier.as_bytes()));
        if earlier_hash != plan_hash {
            if !options.force {
                bail_input!(
                    "{} holds an unfinished sweep of a different plan (the sweep file or its base config changed); pass --force to discard it, or --name to run this sweep beside it",
                    partial.display()
                );
            }
            std::fs::remove_dir_all(&partial).with_context(|| format!("removing {}", partial.display()))?;
        }
    }
    std::fs::create_dir_all(&parts).with_context(|| format!("creating {}", parts.display()))?;
    if !plan_path.exists() {
        let tmp = partial.join(".plan.json.tmp");
        std::fs::write(&tmp, &plan).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &plan_path).with_context(|| format!("writing {}", plan_path.display()))?;
    }

    let markets = if sweep.book { Markets::for_book() } else { Markets::load(&Config::from_toml_value(&sweep.base_raw, "sweep base config", &sweep.base_dir)?)? };
    let configurations = shard_len(sweep.total, options.shard);
    let chunks = configurations.div_ceil(CHUNK);
    let done: Vec<bool> = (0..chunks).map(|k| parts.join(format!("chunk-{k:06}.parquet")).is_file()).collect();
    let resumed: u64 = (0..chunks).filter(|&k| done[k as usize]).map(|k| CHUNK.min(configurations - k * CHUNK)).sum();

    let bar = if options.progress { ProgressBar::with_draw_target(Some(configurations), ProgressDrawTarget::stderr()) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} configurations ({per_sec}, ETA {eta})")
            .map_err(|e| anyhow::anyhow!("progress style: {e}"))?,
    );
    bar.set_position(resumed);
    bar.reset_eta();
    if let Some(counter) = &options.done {
        counter.store(resumed, Ordering::Relaxed);
    }
    for k in 0..chunks {
        if done[k as usize] {
            continue;
        }
        if options.stop.as_ref().is_some_and(|stop| stop.load(Ordering::Relaxed)) {
            bail_input!("the sweep was interrupted after {} of {configurations} configurations; run it again to resume", options.done.as_ref().map_or(0, |d| d.load(Ordering::Relaxed)));
        }
        let first = k * CHUNK;
        let last = (first + CHUNK).min(configurations);
        let rows: Vec<Row> = (first..last)
            .into_par_iter()
            .map(|pos| {
                let row = evaluate(sweep, &markets, id_at(pos, options.shard));
                if let Some(counter) = &options.done {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                row
            })
            .collect();
        let mut frame = rows_frame(sweep, &rows)?;
        write_parquet_atomic(&parts.join(format!("chunk-{k:06}.parquet")), &mut frame)?;
        bar.inc(last - first);
    }
    bar.finish_and_clear();

    let mut results = read_parts(&parts, chunks)?;
    let errors: Vec<String> = results.column("error")?.str()?.iter().map(|e| e.unwrap_or("").to_string()).collect();
    let failed = errors.iter().filter(|e| !e.is_empty()).count() as u64;
    if failed == configurations {
        bail_input!("every configuration failed; the first: {}", errors.first().map(String::as_str).unwrap_or(""));
    }

    let table = super::report::ResultsTable::from_frame(sweep, &results)?;
    let walk = match (&sweep.file.walk_forward, options.shard) {
        (Some(spec), None) => Some(super::walk_forward::run(sweep, spec, &markets)?),
        _ => None,
    };
    let (images, page) = super::report::render(sweep, &table, walk.as_ref(), configurations, failed, markets.timelines_built())?;

    let dir = RunDir::create(&output_dir, &folder_name, options.force)?;
    dir.write_parquet("results.parquet", &mut results)?;
    if let Some(walk) = &walk {
        dir.write_parquet("walk_forward.parquet", &mut walk.frame(sweep)?)?;
    }
    dir.write("sweep.toml", sweep.text.as_bytes())?;
    dir.write("base_config.toml", sweep.base_text.as_bytes())?;
    for image in &images {
        dir.write(image.file, &image.png)?;
    }
    let (best_id, best_metric) = table.best().map(|(id, v)| (Some(id), Some(v))).unwrap_or((None, None));
    let mut summary = SweepSummary {
        folder: dir.destination().to_path_buf(),
        configurations,
        resumed,
        failed,
        timelines: markets.timelines_built(),
        seconds: started.elapsed().as_secs_f64(),
        best_id,
        best_metric,
    };
    dir.write("summary.json", serde_json::to_string_pretty(&summary)?.as_bytes())?;
    // index.html last: a folder with it is complete.
    dir.write("index.html", page.as_bytes())?;
    summary.folder = dir.commit()?;
    std::fs::remove_dir_all(&partial).with_context(|| format!("removing {}", partial.display()))?;
    Ok(summary)
}
