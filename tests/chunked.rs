//! A run loaded, aligned and simulated one chunk of time at a time (`data::stream`,
//! `sim::run_chunked`) writes the same files as the same run loaded whole: every ledger row,
//! trade, settlement, metric and manifest entry. The inputs are generic Parquet files written
//! in small row groups (one chunk each), with what spans chunk boundaries: spot gaps and
//! zero-volume bars (stale spans), mark gaps (stand-in runs), settlements, a trailing-funding
//! signal, liquidations, and listing placeholders at the perp's start.

use std::path::Path;

use basis::app::backtest::run_to_folder_chunked;
use basis::data::dump_cache::CacheChoice;
use basis::data::stream::Chunking;
use basis::data::synth::{market_data, SynthSpec};
use basis::data::PriceBars;
use polars::prelude::*;

mod common;

/// Rows per row group of the Parquet files written here.
const ROW_GROUP: usize = 3_000;

/// Chunks of 1,000 steps at most, whatever the size of the files.
const SMALL_CHUNKS: Chunking = Chunking { from_perp_bytes: 0, max_steps: 1_000, cache: CacheChoice::Private };

fn write(path: &Path, mut frame: DataFrame, row_group: usize) {
    let file = std::fs::File::create(path).expect("create");
    ParquetWriter::new(file).with_row_group_size(Some(row_group)).finish(&mut frame).expect("write parquet");
}

fn bars_frame(bars: &PriceBars, keep: impl Fn(usize) -> bool) -> DataFrame {
    let rows: Vec<usize> = (0..bars.ts_ms.len()).filter(|&k| keep(k)).collect();
    let pick_f = |v: &[f64]| rows.iter().map(|&k| v[k]).collect::<Vec<f64>>();
    let columns = vec![
        Column::new("ts".into(), rows.iter().map(|&k| bars.ts_ms[k]).collect::<Vec<i64>>()),
        Column::new("close".into(), pick_f(&bars.close)),
        Column::new("high".into(), pick_f(&bars.high)),
        Column::new("low".into(), pick_f(&bars.low)),
        Column::new("volume".into(), pick_f(&bars.volume)),
    ];
    DataFrame::new(rows.len(), columns).expect("frame")
}

/// Thirty days of minute bars in `dir`, with the gaps and oddities listed in the module doc.
/// `placeholders`: flat, untraded perp bars before the perp really trades.
fn write_market(dir: &Path, placeholders: usize) {
    write_market_days(dir, placeholders, 30);
}

/// [`write_market`] over `days` days.
fn write_market_days(dir: &Path, placeholders: usize, days: u32) {
    let mut data = market_data(&SynthSpec { bar_minutes: 1, days, seed: 11, ..SynthSpec::default() });
    let n = data.perp.ts_ms.len();
    // Zero-volume spot bars and a thin, dislocated one, some at a row-group boundary.
    for k in [ROW_GROUP - 1, ROW_GROUP, 7_777, 20_000] {
        data.spot.volume[k] = 0.0;
    }
    if placeholders > 0 {
        let first = data.perp.ts_ms[0];
        let price = data.perp.close[0] * 0.9;
        let mut perp = PriceBars { label: "perp".into(), ..PriceBars::default() };
        for k in (1..=placeholders).rev() {
            perp.ts_ms.push(first - 60_000 * k as i64);
            perp.close.push(price);
            perp.high.push(price);
            perp.low.push(price);
            perp.volume.push(0.0);
        }
        for column in [(&mut perp.close, &data.perp.close), (&mut perp.high, &data.perp.high), (&mut perp.low, &data.perp.low), (&mut perp.volume, &data.perp.volume)] {
            column.0.extend_from_slice(column.1);
        }
        perp.ts_ms.extend_from_slice(&data.perp.ts_ms);
        data.perp = perp;
    }
    // Spot gaps: single bars, a run across a row-group boundary, a long outage.
    let spot_gap = |k: usize| k == 100 || (2 * ROW_GROUP - 5..2 * ROW_GROUP + 7).contains(&k) || (15_000..15_090).contains(&k) || k % 997 == 0 && k > 0;
    write(&dir.join("spot.parquet"), bars_frame(&data.spot, |k| !spot_gap(k)), ROW_GROUP);
    write(&dir.join("perp.parquet"), bars_frame(&data.perp, |_| true), ROW_GROUP);
    // Mark gaps: more runs than the warning names, one across a boundary, one at the end.
    let mark = data.mark.as_ref().expect("synthetic mark");
    let mark_gap = |k: usize| (500..503).contains(&k) || (3 * ROW_GROUP - 2..3 * ROW_GROUP + 2).contains(&k) || k == 9_001 || k == 12_345 || (30_000..30_010).contains(&k) || k + 3 >= n;
    write(&dir.join("mark.parquet"), bars_frame(mark, |k| !mark_gap(k)), ROW_GROUP);
    let f = &data.funding;
    let funding = DataFrame::new(
        f.len(),
        vec![Column::new("ts".into(), &f.settle_ms()), Column::new("rate".into(), f.rates().iter().map(|r| r * 3.0).collect::<Vec<f64>>()), Column::new("interval_hours".into(), &f.interval_hours())],
    )
    .expect("funding frame");
    write(&dir.join("funding.parquet"), funding, 1_000);
}

/// A `[data.<label>]` section for the generic Parquet bars `write_market` writes.
fn bars_section(dir: &Path, label: &str, volume: bool) -> String {
    let volume = if volume { "volume_column = \"volume\"\n" } else { "" };
    format!("[data.{label}]\nformat = \"generic\"\npath = \"{}/{label}.parquet\"\nclose_time_column = \"ts\"\nclose_column = \"close\"\nhigh_column = \"high\"\nlow_column = \"low\"\n{volume}", dir.display())
}

fn config(dir: &Path, name: &str, strategy: &str, portfolio: &str, report: bool) -> basis::config::Config {
    config_with(dir, name, strategy, portfolio, report, "")
}

/// [`config`] with more sections (`[data.index]`, `[venue]`, ...) at the end.
fn config_with(dir: &Path, name: &str, strategy: &str, portfolio: &str, report: bool, more: &str) -> basis::config::Config {
    let text = format!(
        "[run]\nname = \"{name}\"\noutput_dir = \"{out}\"\nreport = {report}\n[data]\nsymbol = \"SYNTHUSDT\"\nsynthetic = true\n{spot}{perp}{mark}\
         [data.funding]\nformat = \"generic\"\npath = \"{dir}/funding.parquet\"\ntime_column = \"ts\"\nrate_column = \"rate\"\ninterval_hours_column = \"interval_hours\"\n\
         [strategy]\n{strategy}\n[portfolio]\n{portfolio}\n{more}\n",
        out = dir.join("reports").display(),
        dir = dir.display(),
        spot = bars_section(dir, "spot", true),
        perp = bars_section(dir, "perp", true),
        mark = bars_section(dir, "mark", false),
    );
    common::config_from(&text)
}

fn read_parquet(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).expect("open")).finish().expect("read")
}

/// The manifest without the moment it was written.
fn manifest(dir: &Path) -> serde_json::Value {
    let mut manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).expect("manifest")).expect("json");
    manifest["created_utc"] = serde_json::Value::Null;
    manifest["run_name"] = serde_json::Value::Null;
    manifest
}

/// Run `config` whole and in chunks; assert both wrote the same and return the chunked
/// manifest.
fn same_both_ways(mut config: basis::config::Config) -> (serde_json::Value, basis::sim::RunSummary) {
    let name = config.run.name.clone();
    config.run.name = format!("{name}-whole");
    let (whole, whole_dir) = run_to_folder_chunked(&config, None, false, Chunking::NEVER).expect("whole run");
    config.run.name = format!("{name}-chunked");
    // Chunks shorter than a row group too: several per group, cut anywhere inside one.
    let (chunked, chunked_dir) = run_to_folder_chunked(&config, None, false, SMALL_CHUNKS).expect("chunked run");
    assert!(!whole.timeline.ts_ms.is_empty(), "the whole run holds its timeline");
    assert!(chunked.timeline.ts_ms.is_empty(), "the chunked run went in chunks (it holds no timeline)");
    for file in ["ledger.parquet", "trades.parquet", "funding.parquet"] {
        if !whole_dir.join(file).exists() {
            assert!(!chunked_dir.join(file).exists(), "{file} written only in chunks");
            continue;
        }
        let (a, b) = (read_parquet(&whole_dir.join(file)), read_parquet(&chunked_dir.join(file)));
        assert!(a.height() > 0 || file == "trades.parquet", "{file} has rows");
        assert_eq!(a.shape(), b.shape(), "{file}: shape");
        for (x, y) in a.columns().iter().zip(b.columns()) {
            let differs = x.as_materialized_series().not_equal_missing(y.as_materialized_series()).expect("compare");
            let first = differs.iter().position(|d| d == Some(true));
            if let Some(row) = first {
                panic!("{file}: column {} differs first at row {row}: {:?} whole, {:?} chunked\n{}", x.name(), x.get(row), y.get(row), b.slice(row as i64 - 2, 5));
            }
        }
    }
    let metrics = |dir: &Path| std::fs::read_to_string(dir.join("metrics.json")).expect("metrics");
    assert_eq!(metrics(&whole_dir), metrics(&chunked_dir), "metrics.json");
    let (a, b) = (manifest(&whole_dir), manifest(&chunked_dir));
    assert_eq!(a, b, "manifest.json");
    assert_eq!(whole.summary.steps, chunked.summary.steps);
    assert_eq!(whole.ledger.len(), chunked.ledger.len(), "report rows");
    (b, chunked.summary)
}

#[test]
fn a_chunked_run_writes_what_the_whole_run_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_market(dir.path(), 0);
    let (manifest, summary) = same_both_ways(config(dir.path(), "always", "mode = \"always_on\"", "leverage = 3.0", true));
    assert!(summary.settlements.len() > 80, "settlements held: {}", summary.settlements.len());
    // The oddities were there to carry across chunks.
    let warnings = manifest["warnings"].as_array().expect("warnings");
    let stale = manifest["stale_spot_spans"].as_array().expect("spans");
    assert!(stale.len() > 10, "stale spans: {}", stale.len());
    assert!(warnings.iter().any(|w| w.as_str().is_some_and(|w| w.starts_with("mark: ") && w.contains("run(s)") && w.contains(", ..."))), "{warnings:?}");
    // The mark ends three bars early (its last gap): the window ends with it.
    assert_eq!(manifest["steps"], 43_200 - 3);
}

#[test]
fn a_chunked_run_with_a_signal_a_window_and_liquidations_writes_what_the_whole_run_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_market(dir.path(), 0);
    let strategy = "mode = \"funding_threshold\"\ndirection = \"both\"\nentry_funding_apr = 0.05\nexit_funding_apr = 0.0\nlookback_hours = 24\nstart = \"2024-07-03\"\nend = \"2024-07-25T12:00:00Z\"\nreenter_after_liquidation = true";
    let (_, signal) = same_both_ways(config(dir.path(), "signal", strategy, "leverage = 25.0\nreserve_fraction = 0.0\ntop_up_source = \"none\"\nstaking_apr = 0.04", false));
    assert!(signal.entries >= 2 && signal.exits >= 1, "entries {} exits {}", signal.entries, signal.exits);
    let strategy = "mode = \"always_on\"\nreenter_after_liquidation = true\nafter_liquidation = \"close\"";
    let (_, liquidated) = same_both_ways(config(dir.path(), "liquidated", strategy, "leverage = 50.0\nreserve_fraction = 0.0\ntop_up_source = \"none\"", false));
    assert!(liquidated.liquidations >= 2, "liquidations: {}", liquidated.liquidations);
}

#[test]
fn listing_placeholders_are_dropped_the_same_in_chunks() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_market(dir.path(), 40);
    let (manifest, _) = same_both_ways(config(dir.path(), "listing", "mode = \"always_on\"", "leverage = 2.0", false));
    let warnings = manifest["warnings"].as_array().expect("warnings");
    assert!(warnings.iter().any(|w| w.as_str().is_some_and(|w| w.contains("dropped 40 listing placeholder"))), "{warnings:?}");
}

#[test]
fn inputs_out_of_order_are_loaded_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_market(dir.path(), 0);
    // Two row groups swapped: the whole load sorts them (with a warning); no chunks then.
    let spot = read_parquet(&dir.path().join("spot.parquet"));
    let swapped = spot.slice(ROW_GROUP as i64, ROW_GROUP).vstack(&spot.slice(0, ROW_GROUP)).and_then(|f| f.vstack(&spot.slice(2 * ROW_GROUP as i64, spot.height()))).expect("swap");
    write(&dir.path().join("spot.parquet"), swapped, ROW_GROUP);
    let config = config(dir.path(), "unsorted", "mode = \"always_on\"", "leverage = 2.0", false);
    let (result, _) = run_to_folder_chunked(&config, None, false, Chunking::ALWAYS).expect("run");
    assert!(!result.timeline.ts_ms.is_empty(), "loaded whole");
    assert!(result.warnings.iter().any(|w| w.contains("out of time order")), "{:?}", result.warnings);
}

#[test]
fn hourly_daily_and_no_ledgers_are_the_same_in_chunks() {
    use basis::config::LedgerResolution;
    let dir = tempfile::tempdir().expect("tempdir");
    write_market(dir.path(), 0);
    for (name, resolution) in [("hourly", LedgerResolution::Hourly), ("daily", LedgerResolution::Daily)] {
        let mut config = config(dir.path(), name, "mode = \"always_on\"", "leverage = 3.0", true);
        config.run.ledger = resolution;
        let (manifest, _) = same_both_ways(config);
        assert!(manifest["files"].as_array().is_some_and(|f| f.iter().any(|f| f == "ledger.parquet")));
    }
    let mut config = config(dir.path(), "none", "mode = \"funding_threshold\"\nlookback_settlements = 6", "leverage = 3.0", false);
    config.run.ledger = LedgerResolution::None;
    let name = config.run.name.clone();
    config.run.name = format!("{name}-whole");
    let (whole, _) = run_to_folder_chunked(&config, None, false, Chunking::NEVER).expect("whole run");
    config.run.name = format!("{name}-chunked");
    let (chunked, dir) = run_to_folder_chunked(&config, None, false, Chunking::ALWAYS).expect("chunked run");
    assert!(chunked.timeline.ts_ms.is_empty() && !dir.join("ledger.parquet").exists());
    assert_eq!(serde_json::to_string(&whole.metrics).ok(), serde_json::to_string(&chunked.metrics).ok());
}

/// Change row `row` of column `column` of `file` in `dir` with `spoil`, rewriting the file.
fn spoil(dir: &Path, file: &str, column: &str, row: usize, spoil: impl Fn(f64) -> f64) {
    let frame = read_parquet(&dir.join(file));
    let mut values: Vec<f64> = frame.column(column).expect("column").f64().expect("f64").into_no_null_iter().collect();
    values[row] = spoil(values[row]);
    let mut spoiled = frame.clone();
    spoiled.with_column(Column::new(column.into(), values)).expect("replace the column");
    write(&dir.join(file), spoiled, ROW_GROUP);
}

/// The error `config` is refused with, the same whole and in chunks.
fn refused_both_ways(mut config: basis::config::Config) -> String {
    let whole = run_to_folder_chunked(&config, None, false, Chunking::NEVER).err().expect("refused whole");
    config.run.name = format!("{}-chunked", config.run.name);
    let chunked = run_to_folder_chunked(&config, None, false, Chunking::ALWAYS).err().expect("refused in chunks");
    assert_eq!(format!("{chunked:#}"), format!("{whole:#}"));
    format!("{chunked:#}")
}

#[test]
fn a_bad_row_late_in_the_file_is_refused_as_in_the_whole_run_and_nothing_is_left_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_market(dir.path(), 0);
    // A negative close in the fourth row group of the perp.
    spoil(dir.path(), "perp.parquet", "close", 10_000, |close| -close);
    let message = refused_both_ways(config(dir.path(), "bad", "mode = \"always_on\"", "leverage = 2.0", false));
    assert!(message.contains("perp.parquet"), "{message}");
    // The run's folder was never committed: no half-written run is left.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("reports")).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_bad_row_after_the_window_is_refused_in_chunks_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_market(dir.path(), 0);
    // A spot bar whose high is below its low, days after strategy.end.
    let rows = read_parquet(&dir.path().join("spot.parquet")).height();
    spoil(dir.path(), "spot.parquet", "high", rows - 100, |_| 1.0);
    let message = refused_both_ways(config(dir.path(), "late", "mode = \"always_on\"\nend = \"2024-07-10\"", "leverage = 2.0", false));
    assert!(message.contains("spot.parquet"), "{message}");
}

/// With two bad inputs, an index file that is not Parquet (refused as the chunked run opens its
/// pieces) and a missing funding file (or an unreadable staking file), the chunked run names the
/// one the whole load meets first: the funding (or staking) file, as the whole load reads the
/// index last.
#[test]
fn with_a_bad_index_and_no_funding_file_the_funding_is_named_as_in_the_whole_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_market(dir.path(), 0);
    std::fs::write(dir.path().join("index.parquet"), b"ts,close\n1,2\n").expect("index");
    let config = config_with(dir.path(), "two-bad", "mode = \"always_on\"", "leverage = 2.0", false, &bars_section(dir.path(), "index", false));
    // The index alone is refused the same both ways, naming it.
    let message = refused_both_ways(config.clone());
    assert!(message.contains("index.parquet"), "{message}");
    std::fs::rename(dir.path().join("funding.parquet"), dir.path().join("funding.kept")).expect("move funding away");
    let message = refused_both_ways(config);
    assert!(message.contains("funding.parquet") && !message.contains("index.parquet"), "{message}");
    // A staking file that cannot be read comes before the index too.
    std::fs::rename(dir.path().join("funding.kept"), dir.path().join("funding.parquet")).expect("funding back");
    std::fs::write(dir.path().join("staking.parquet"), b"not parquet").expect("staking");
    let more = format!("{}[data.staking]\npath = \"{}/staking.parquet\"\n", bars_section(dir.path(), "index", false), dir.path().display());
    let message = refused_both_ways(config_with(dir.path(), "two-bad-staking", "mode = \"always_on\"", "leverage = 2.0", false, &more));
    assert!(message.contains("staking.parquet") && !message.contains("index.parquet"), "{message}");
}

/// Binance BTC/USDT hourly history 2019–2026 (../shared/data, freqtrade layout) written as
/// generic Parquet in row groups of 4,000 bars: real gaps, mark gaps and interval changes, in
/// chunks and whole.
#[test]
fn real_history_in_chunks_is_the_history_whole() {
    let datadir = common::real_data_dir().join("freqtrade-binance-1h");
    if !datadir.is_dir() {
        eprintln!("skipped: {} is not there", datadir.display());
        return;
    }
    let source = common::config_from(&format!("[data]\nsymbol = \"BTCUSDT\"\n[data.freqtrade]\ndatadir = \"{}\"\npair = \"BTC/USDT\"\ntimeframe = \"1h\"\n", datadir.display()));
    let market = basis::data::load(&source.data).expect("the freqtrade history loads");
    let dir = tempfile::tempdir().expect("tempdir");
    write(&dir.path().join("spot.parquet"), bars_frame(&market.spot, |_| true), 4_000);
    write(&dir.path().join("perp.parquet"), bars_frame(&market.perp, |_| true), 4_000);
    write(&dir.path().join("mark.parquet"), bars_frame(market.mark.as_ref().expect("a mark series"), |_| true), 4_000);
    let f = &market.funding;
    let funding = DataFrame::new(f.len(), vec![Column::new("ts".into(), &f.settle_ms()), Column::new("rate".into(), &f.rates()), Column::new("interval_hours".into(), &f.interval_hours())]).expect("funding frame");
    write(&dir.path().join("funding.parquet"), funding, 1_000);
    let (manifest, summary) = same_both_ways(config(dir.path(), "btc", "mode = \"always_on\"", "leverage = 3.0", true));
    assert!(manifest["steps"].as_u64().is_some_and(|s| s > 50_000), "{}", manifest["steps"]);
    assert!(summary.settlements.len() > 6_000, "{}", summary.settlements.len());
    let strategy = "mode = \"funding_threshold\"\ndirection = \"both\"\nentry_funding_apr = 0.08\nexit_funding_apr = 0.02\nlookback_hours = 72";
    let (_, signal) = same_both_ways(config(dir.path(), "btc-signal", strategy, "leverage = 5.0\nreserve_fraction = 0.05", false));
    assert!(signal.entries > 5, "entries: {}", signal.entries);
}

#[test]
fn repeated_placeholder_rows_send_the_run_down_the_whole_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_market(dir.path(), 10);
    // The first (placeholder) row twice: the whole load drops the copy and says so.
    let perp = read_parquet(&dir.path().join("perp.parquet"));
    let doubled = perp.slice(0, 1).vstack(&perp).expect("stack");
    write(&dir.path().join("perp.parquet"), doubled, ROW_GROUP);
    let config = config(dir.path(), "doubled", "mode = \"always_on\"", "leverage = 2.0", false);
    let (result, _) = run_to_folder_chunked(&config, None, false, Chunking::ALWAYS).expect("run");
    assert!(!result.timeline.ts_ms.is_empty(), "loaded whole");
    assert!(result.warnings.iter().any(|w| w.contains("dropped 1 duplicate bars")), "{:?}", result.warnings);
    assert!(result.warnings.iter().any(|w| w.contains("dropped 10 listing placeholder")), "{:?}", result.warnings);
}

/// The shipped sample (Binance kline CSVs, a mark, a staking series), written as canonical
/// Parquet by `basis data convert`, runs the same in chunks as whole.
#[test]
fn the_converted_sample_runs_the_same_in_chunks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sample = basis::config::Config::load(&root.join("data/basis.toml")).expect("the sample config");
    let market = basis::data::load(&sample.data).expect("the sample loads");
    let raw: toml::Value = toml::from_str(&std::fs::read_to_string(root.join("data/basis.toml")).expect("read")).expect("toml");
    let dir = tempfile::tempdir().expect("tempdir");
    basis::app::convert::write(&market, &raw, &root.join("data"), dir.path()).expect("convert");
    let mut config = basis::config::Config::load(&dir.path().join("config.toml")).expect("the converted config");
    config.run.output_dir = dir.path().join("reports");
    config.run.name = "sample".into();
    let (manifest, summary) = same_both_ways(config);
    assert!(summary.steps > 8_000 && summary.settlements.len() > 1_000, "{} steps, {} settlements", summary.steps, summary.settlements.len());
    assert!(manifest["inputs"].as_array().is_some_and(|inputs| inputs.iter().any(|i| i["path"].as_str().is_some_and(|p| p.ends_with("staking.parquet")))));
}

/// Funding valued at an index series (an oracle-paid venue), and a staking APR series: the
/// index's bars and the staking rows are read along with the chunks.
#[test]
fn an_index_and_a_staking_series_are_the_same_in_chunks() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_market(dir.path(), 0);
    // The index: the spot's closes 0.1 % up, with gaps of its own (one across a boundary).
    let spot = read_parquet(&dir.path().join("spot.parquet"));
    let column = |name: &str| -> Vec<f64> { spot.column(name).expect("column").f64().expect("f64").into_no_null_iter().collect() };
    let ts: Vec<i64> = spot.column("ts").expect("ts").i64().expect("i64").into_no_null_iter().collect();
    let kept: Vec<usize> = (0..ts.len()).filter(|&k| !(5_990..6_040).contains(&k)).collect();
    let pick = |values: &[f64]| kept.iter().map(|&k| values[k] * 1.001).collect::<Vec<f64>>();
    let index = DataFrame::new(
        kept.len(),
        vec![
            Column::new("ts".into(), kept.iter().map(|&k| ts[k]).collect::<Vec<i64>>()),
            Column::new("close".into(), pick(&column("close"))),
            Column::new("high".into(), pick(&column("high"))),
            Column::new("low".into(), pick(&column("low"))),
        ],
    )
    .expect("index frame");
    write(&dir.path().join("index.parquet"), index, ROW_GROUP);
    // A staking APR that changes every day.
    let first = ts[0];
    let days: Vec<i64> = (0..31).map(|d| first - 86_400_000 + d * 86_400_000).collect();
    let apr: Vec<f64> = (0..31).map(|d| 0.03 + 0.001 * f64::from(d % 7)).collect();
    write(&dir.path().join("staking.parquet"), DataFrame::new(days.len(), vec![Column::new("time".into(), days), Column::new("apr".into(), apr)]).expect("staking"), 10);
    let more = format!("{}[data.staking]\npath = \"{}/staking.parquet\"\n[venue]\npreset = \"hyperliquid\"\n", bars_section(dir.path(), "index", false), dir.path().display());
    let (manifest, summary) = same_both_ways(config_with(dir.path(), "oracle", "mode = \"always_on\"", "leverage = 3.0", false, &more));
    assert!(summary.settlements.len() > 80);
    assert!(summary.pnl.staking > 0.0, "staking earned: {}", summary.pnl.staking);
    let coverage = manifest["coverage"].as_array().expect("coverage");
    assert!(coverage.iter().any(|c| c["source"] == "index") && coverage.iter().any(|c| c["source"] == "staking"), "{coverage:?}");
}

/// A run longer than the report draws row by row (131,072 steps): the report's rows are one a
/// period, the same in chunks as whole.
#[test]
fn a_long_run_with_a_report_draws_the_same_rows_in_chunks() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_market_days(dir.path(), 0, 100);
    let (manifest, _) = same_both_ways(config(dir.path(), "long", "mode = \"always_on\"", "leverage = 2.0", true));
    assert!(manifest["steps"].as_u64().is_some_and(|s| s > 131_072), "{}", manifest["steps"]);
    assert!(manifest["files"].as_array().is_some_and(|f| f.iter().any(|f| f == "index.html")));
}

/// Bar times written as ISO-8601 text (as many exports do) are read the same in chunks.
#[test]
fn text_times_are_read_the_same_in_chunks() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_market(dir.path(), 0);
    for file in ["spot.parquet", "perp.parquet", "mark.parquet"] {
        let mut frame = read_parquet(&dir.path().join(file));
        let text: Vec<String> = frame
            .column("ts")
            .expect("ts")
            .i64()
            .expect("i64")
            .into_no_null_iter()
            .map(|ms| chrono::DateTime::from_timestamp_millis(ms).expect("a time").format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .collect();
        frame.with_column(Column::new("ts".into(), text)).expect("text times");
        write(&dir.path().join(file), frame, ROW_GROUP);
    }
    let (manifest, _) = same_both_ways(config(dir.path(), "text", "mode = \"always_on\"", "leverage = 2.0", false));
    assert_eq!(manifest["steps"], 43_200 - 3);
}

/// Bars split over several files (monthly exports), read through a glob, run the same in chunks.
#[test]
fn bars_split_over_several_files_run_the_same_in_chunks() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_market(dir.path(), 0);
    for (label, cuts) in [("spot", [0usize, 10_000, 25_555]), ("perp", [0, 14_400, 28_800]), ("mark", [0, 7_000, 40_000])] {
        let frame = read_parquet(&dir.path().join(format!("{label}.parquet")));
        std::fs::remove_file(dir.path().join(format!("{label}.parquet"))).expect("remove");
        let ends = [cuts[1], cuts[2], frame.height()];
        for (k, (&from, &to)) in cuts.iter().zip(&ends).enumerate() {
            write(&dir.path().join(format!("{label}-{k}.parquet")), frame.slice(from as i64, to - from), ROW_GROUP);
        }
    }
    let mut config = config(dir.path(), "split", "mode = \"always_on\"", "leverage = 2.0", false);
    for source in [config.data.spot.as_mut(), config.data.perp.as_mut(), config.data.mark.as_mut()].into_iter().flatten() {
        source.path = source.path.replace(".parquet", "-*.parquet");
    }
    let (manifest, _) = same_both_ways(config);
    assert_eq!(manifest["inputs"].as_array().map(Vec::len), Some(10), "{}", manifest["inputs"]);
}

/// The shipped sample as it ships (Binance kline CSV dumps: headerless spot, perp and mark with
/// headers) runs the same in chunks, read through a dump cache of the run's own, as whole; so do
/// the same dumps zipped (spot) and gzipped (perp). The manifest lists the dumps, not the
/// cache's entries, with the dumps' own hashes.
#[test]
fn the_sample_dumps_run_the_same_in_chunks_through_the_dump_cache() {
    use sha2::Digest;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = basis::config::Config::load(&root.join("data/basis.toml")).expect("the sample config");
    config.run.output_dir = dir.path().join("reports");
    config.run.report = false;
    config.run.name = "dumps".into();
    let (manifest, summary) = same_both_ways(config.clone());
    let inputs = manifest["inputs"].as_array().expect("inputs");
    let dumps: Vec<&serde_json::Value> = inputs.iter().filter(|i| i["path"].as_str().is_some_and(|p| p.contains("/sample/perp/"))).collect();
    assert_eq!(dumps.len(), 12, "{inputs:?}");
    for input in dumps {
        let path = input["path"].as_str().expect("path");
        let hash: String = sha2::Sha256::digest(std::fs::read(path).expect("dump")).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(input["sha256"].as_str(), Some(hash.as_str()), "{path}");
    }
    assert!(!inputs.iter().any(|i| i["path"].as_str().is_some_and(|p| p.contains("basis-cache"))), "no cache entry is an input");

    // Zipped spot dumps and gzipped perp dumps: the same bars, the same run.
    for (kind, extension) in [("spot", "zip"), ("perp", "csv.gz")] {
        let to = dir.path().join(kind);
        std::fs::create_dir_all(&to).expect("folder");
        for entry in std::fs::read_dir(root.join("data/sample").join(kind)).expect("sample").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(entry.path()).expect("dump");
            let out = std::fs::File::create(to.join(name.replace(".csv", &format!(".{extension}")))).expect("create");
            if extension == "zip" {
                let mut writer = ::zip::ZipWriter::new(out);
                writer.start_file(name, ::zip::write::SimpleFileOptions::default()).expect("entry");
                std::io::Write::write_all(&mut writer, &bytes).expect("write");
                writer.finish().expect("zip");
            } else {
                let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
                std::io::Write::write_all(&mut encoder, &bytes).expect("write");
                encoder.finish().expect("gzip");
            }
        }
    }
    config.data.spot.as_mut().expect("spot").path = dir.path().join("spot/SYNTHUSDT-1h-*.zip").display().to_string();
    config.data.perp.as_mut().expect("perp").path = dir.path().join("perp/SYNTHUSDT-1h-*.csv.gz").display().to_string();
    config.run.name = "packed".into();
    let (_, packed) = same_both_ways(config);
    assert_eq!(packed.steps, summary.steps);
    assert_eq!(packed.final_equity.to_bits(), summary.final_equity.to_bits());
}
