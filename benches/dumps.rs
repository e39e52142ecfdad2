//! Kline dumps at speed: `basis backtest` on years of 1-minute bars in Binance's monthly dump
//! layout (spot, perp and mark klines, CSV and zip, funding dumps), beside polars' own read of
//! the same files and beside the same run on the Parquet `basis data convert` writes.
//!
//! Measured side by side (best of three after a warm-up, each a child process: wall time and
//! its own peak memory):
//! - polars' read: every kline file read by polars' CSV reader (its threads, the seven columns
//!   basis reads, typed), in this process; a zip is inflated first, as basis inflates it;
//! - the first run: `basis backtest` with an empty dump cache (each dump parsed and cached);
//!   also with a one-day window, which still reads and checks every dump (the load alone);
//! - the next run: the same with the cache filled;
//! - the Parquet run: `basis backtest` on the converted files.
//!
//! Targets (#37): first run <= 2x polars' read, next run <= 1.2x the Parquet run, <= 300 MiB.
//! `cargo bench --bench dumps` (about two minutes: the dumps are generated first, 1.25 GB of
//! CSV at eight years). `BASIS_BENCH_DUMP_YEARS=2` for fewer years; `BASIS_BENCH_KEEP=<folder>`
//! keeps (and on the next run reuses) the generated files there.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use basis::data::synth::{generate, write, SynthSpec};
use polars::prelude::*;

/// Measured runs per row, after one warm-up; the fastest is reported.
const MEASURED_RUNS: usize = 3;

const KINDS: [&str; 3] = ["spot", "perp", "mark"];

fn main() {
    let Some(mut runner) = common::Runner::for_bench() else { return };
    let years: u32 = std::env::var("BASIS_BENCH_DUMP_YEARS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let temp = tempfile::tempdir().expect("temp dir");
    let root = match std::env::var("BASIS_BENCH_KEEP") {
        Ok(keep) => PathBuf::from(keep).join(format!("dumps-{years}y")),
        Err(_) => temp.path().to_path_buf(),
    };
    let csv = root.join("csv");
    if !csv.join("README.md").exists() {
        // Whole years from 2017-01-01 on (a leap day in every fourth).
        let days = 365 * years + years.div_ceil(4);
        let spec = SynthSpec { bar_minutes: 1, days, start_ms: 1_483_228_800_000, ..SynthSpec::default() };
        write(&generate(&spec), &spec, &csv).expect("writing the dumps");
        zip_dumps(&csv, &root.join("zip"));
    }
    let bin = env!("CARGO_BIN_EXE_basis");
    let reports = root.join("reports");
    let config = |name: &str, kline_dir: &Path, extension: &str, one_day: bool| -> String {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/basis.toml")).expect("data/basis.toml");
        let mut text = text.replace("report = true ", "report = false").replace("output_dir = \"reports\"", &format!("output_dir = {:?}", reports.display().to_string()));
        for kind in KINDS {
            text = text.replace(&format!("\"sample/{kind}/SYNTHUSDT-1h-*.csv\""), &format!("{:?}", kline_dir.join(kind).join(format!("SYNTHUSDT-1m-*.{extension}")).display().to_string()));
        }
        let mut text = text.replace("\"sample/", &format!("\"{}/", csv.display()));
        if one_day {
            text = text.replacen("# start = \"2024-08-01\"", "start = \"2017-01-02\"", 1).replacen("# end = \"2025-06-30\"", "end = \"2017-01-03\"", 1);
        }
        let path = root.join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("config");
        path.display().to_string()
    };
    let csv_config = config("csv", &csv, "csv", false);
    let zip_config = config("zip", &root.join("zip"), "zip", false);
    let csv_day = config("csv-day", &csv, "csv", true);
    let zip_day = config("zip-day", &root.join("zip"), "zip", true);
    let parquet = root.join("parquet");
    if !parquet.join("config.toml").exists() {
        let (_, _, ok) = runner.run(bin, &["data", "convert", "--config", &csv_config, "--out", &parquet.display().to_string()]);
        assert!(ok, "basis data convert failed (its output is above)");
    }
    let parquet_config = parquet.join("config.toml").display().to_string();

    let files = |dir: &Path, extension: &str| -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = KINDS.iter().flat_map(|kind| std::fs::read_dir(dir.join(kind)).expect("dump folder").flatten().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == extension)).collect();
        files.sort();
        files
    };
    let csv_files = files(&csv, "csv");
    let zip_files = files(&root.join("zip"), "zip");
    let csv_bytes: u64 = csv_files.iter().map(|p| std::fs::metadata(p).map_or(0, |m| m.len())).sum();
    let zip_bytes: u64 = zip_files.iter().map(|p| std::fs::metadata(p).map_or(0, |m| m.len())).sum();

    let (parquet_s, parquet_mib, ok) = best(&mut runner, bin, &parquet_config, &[&reports], None);
    assert!(ok, "the Parquet run failed");
    println!("{years} years of 1-minute bars: spot, perp and mark klines in {} monthly files each, funding dumps", csv_files.len() / 3);
    println!("Parquet run (basis data convert's files): {parquet_s:.2} s, peak {parquet_mib:.0} MiB");
    println!();
    println!("| dumps | bytes | polars' read | basis, first load (one day) | / polars | basis, first run | / polars | peak MiB | basis, cached | / Parquet run | peak MiB |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (name, dump_files, bytes, config, day) in [("CSV", &csv_files, csv_bytes, &csv_config, &csv_day), ("zip", &zip_files, zip_bytes, &zip_config, &zip_day)] {
        let polars_s = (0..=MEASURED_RUNS).map(|_| polars_read(dump_files)).fold(f64::INFINITY, f64::min);
        let cache = root.join(format!("cache-{name}"));
        let (load_s, _, ok) = best(&mut runner, bin, day, &[&reports, &cache], Some(&cache));
        assert!(ok, "the one-day {name} run failed");
        let (first_s, first_mib, ok) = best(&mut runner, bin, config, &[&reports, &cache], Some(&cache));
        assert!(ok, "the first {name} run failed");
        let (next_s, next_mib, ok) = best(&mut runner, bin, config, &[&reports], Some(&cache));
        assert!(ok, "the cached {name} run failed");
        println!(
            "| {name} | {:.0} MiB | {polars_s:.2} s | {load_s:.2} s | {:.2} | {first_s:.2} s | {:.2} | {first_mib:.0} | {next_s:.2} s | {:.2} | {next_mib:.0} |",
            bytes as f64 / 1048576.0,
            load_s / polars_s,
            first_s / polars_s,
            next_s / parquet_s
        );
    }
}

/// The best of [`MEASURED_RUNS`] runs of `basis backtest --config config` after a warm-up
/// (the folders `clean` removed before each), with `--cache-dir cache` when given.
fn best(runner: &mut common::Runner, bin: &str, config: &str, clean: &[&Path], cache: Option<&Path>) -> (f64, f64, bool) {
    let cache_text = cache.map(|c| c.display().to_string());
    let mut args = vec!["backtest", "--config", config];
    if let Some(cache) = &cache_text {
        args.extend(["--cache-dir", cache.as_str()]);
    }
    for folder in clean {
        let _ = std::fs::remove_dir_all(folder);
    }
    let _ = runner.run(bin, &args);
    runner.best_of(MEASURED_RUNS, bin, &args, clean)
}

/// Seconds for polars' CSV reader to read the seven kline columns of every file (a zip's
/// entry inflated first).
fn polars_read(files: &[PathBuf]) -> f64 {
    let mut fields: Vec<Field> = (0..12).map(|k| Field::new(format!("c{k}").into(), if matches!(k, 0 | 6 | 8 | 11) { DataType::Int64 } else { DataType::Float64 })).collect();
    fields[11] = Field::new("c11".into(), DataType::Float64);
    let schema = Arc::new(Schema::from_iter(fields));
    let started = Instant::now();
    let mut rows = 0usize;
    for path in files {
        let header = |first: Option<u8>| first.is_some_and(|b| !b.is_ascii_digit());
        let options = |header: bool| CsvReadOptions::default().with_has_header(header).with_schema(Some(schema.clone())).with_projection(Some(Arc::new((0..7).collect())));
        if path.extension().is_some_and(|x| x == "csv") {
            // polars' own read of a path (it maps the file).
            let mut first = [0u8; 1];
            let has_header = header(std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut first)).ok().map(|_| first[0]));
            rows += options(has_header).try_into_reader_with_file_path(Some(path.clone())).expect("polars reader").finish().expect("polars read").height();
            continue;
        }
        // A zip: its entry inflated, then read from memory.
        let mut archive = ::zip::ZipArchive::new(std::fs::File::open(path).expect("zip")).expect("zip");
        let mut entry = archive.by_index(0).expect("zip entry");
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).expect("inflate");
        let has_header = header(bytes.first().copied());
        rows += options(has_header).into_reader_with_file_handle(std::io::Cursor::new(bytes)).finish().expect("polars read").height();
    }
    assert!(rows > 0);
    started.elapsed().as_secs_f64()
}

/// Each kline CSV under `csv` as a zip of its own under `zip` (deflated, as Binance's are).
fn zip_dumps(csv: &Path, zip_dir: &Path) {
    for kind in KINDS {
        std::fs::create_dir_all(zip_dir.join(kind)).expect("zip folder");
        for entry in std::fs::read_dir(csv.join(kind)).expect("dump folder").flatten() {
            let path = entry.path();
            let name = path.file_name().expect("name").to_string_lossy().into_owned();
            let file = std::fs::File::create(zip_dir.join(kind).join(name.replace(".csv", ".zip"))).expect("zip");
            let mut writer = ::zip::ZipWriter::new(file);
            writer.start_file(name, ::zip::write::SimpleFileOptions::default().compression_method(::zip::CompressionMethod::Deflated)).expect("zip entry");
            writer.write_all(&std::fs::read(&path).expect("csv")).expect("zip write");
            writer.finish().expect("zip finish");
        }
    }
}
