//! Benchmarks: the engine loop over a year of generated 1-minute bars (steps per second), and
//! the whole `backtest` path on that year (load from Parquet, align, simulate, write outputs and
//! the report), and rendering the report alone.
//!
//! Run with `cargo bench --bench engine`; criterion prints time per iteration and throughput
//! in steps (elements) per second.

use std::path::Path;

use basis::app::backtest;
use basis::render;
use basis::config::Config;
use basis::data::align::align;
use basis::data::synth::{market_data, SynthSpec};
use basis::data::MarketData;
use basis::sim;
use basis::measure::ledger::{FullLedger, NoLedger};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use polars::prelude::*;

fn year_of_minutes() -> MarketData {
    market_data(&SynthSpec { bar_minutes: 1, days: 365, ..SynthSpec::default() })
}

fn bench_config(dir: &Path) -> Config {
    let text = format!(
        r#"
[run]
name = "bench"
output_dir = "{out}"
[data]
symbol = "SYNTHUSDT"
synthetic = true
[data.spot]
format = "generic"
path = "spot.parquet"
close_time_column = "ts"
close_column = "close"
high_column = "high"
low_column = "low"
[data.perp]
format = "generic"
path = "perp.parquet"
close_time_column = "ts"
close_column = "close"
high_column = "high"
low_column = "low"
[data.mark]
format = "generic"
path = "mark.parquet"
close_time_column = "ts"
close_column = "close"
high_column = "high"
low_column = "low"
[data.funding]
format = "generic"
path = "funding.parquet"
time_column = "ts"
rate_column = "rate"
interval_hours_column = "interval_hours"
[venue]
funding_cap = 0.003
funding_floor = -0.003
"#,
        out = dir.join("reports").display()
    );
    Config::from_toml_str(&text, "bench", dir).expect("bench config")
}

fn write_parquet_inputs(data: &MarketData, dir: &Path) {
    let write = |name: &str, mut frame: DataFrame| {
        let file = std::fs::File::create(dir.join(name)).unwrap();
        ParquetWriter::new(file).finish(&mut frame).unwrap();
    };
    for (name, bars) in [("spot.parquet", &data.spot), ("perp.parquet", &data.perp), ("mark.parquet", data.mark.as_ref().unwrap())] {
        let frame = DataFrame::new(
            bars.ts_ms.len(),
            vec![
                Column::new("ts".into(), &bars.ts_ms),
                Column::new("close".into(), &bars.close),
                Column::new("high".into(), &bars.high),
                Column::new("low".into(), &bars.low),
            ],
        )
        .unwrap();
        write(name, frame);
    }
    let f = &data.funding;
    let frame = DataFrame::new(
        f.len(),
        vec![Column::new("ts".into(), &f.settle_ms()), Column::new("rate".into(), &f.rates()), Column::new("interval_hours".into(), &f.interval_hours())],
    )
    .unwrap();
    write("funding.parquet", frame);
}

fn benches(c: &mut Criterion) {
    let data = year_of_minutes();
    let timeline = align(&data, None, None, 0.03).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_parquet_inputs(&data, dir.path());
    let config = bench_config(dir.path());
    let params = basis::config::engine_params(&config);
    let steps = timeline.len() as u64;

    let mut group = c.benchmark_group("engine_1y_1m");
    group.throughput(Throughput::Elements(steps));
    group.sample_size(20);
    group.bench_function("loop_no_ledger", |b| b.iter(|| sim::run(&timeline, &params, &mut NoLedger)));
    // The same carry held through a rule strategy's decisions (the rule holds from its first
    // known value), and a realistic rule set compiled into decisions on the year's clock.
    let mut ruled = config.clone();
    ruled.strategy.mode = basis::config::EntryMode::Rules;
    ruled.strategy.lookback_hours = Some(24.0);
    ruled.strategy.enter = Some("funding_trailing_apr > -10".into());
    ruled.strategy.exit = Some("funding_trailing_apr < -10".into());
    let rule_params = basis::app::pipeline::engine_params_for(&ruled, &timeline, &mut Vec::new(), &mut Vec::new()).unwrap();
    // The trailing threshold held the same way: the engine's own decisions on the same signal.
    let mut threshold = config.clone();
    threshold.strategy.mode = basis::config::EntryMode::FundingThreshold;
    threshold.strategy.lookback_hours = Some(24.0);
    threshold.strategy.entry_funding_apr = -10.0;
    threshold.strategy.exit_funding_apr = -10.0;
    let threshold_params = basis::config::engine_params(&threshold);
    group.bench_function("loop_no_ledger_threshold", |b| b.iter(|| sim::run(&timeline, &threshold_params, &mut NoLedger)));
    group.bench_function("loop_no_ledger_rules", |b| b.iter(|| sim::run(&timeline, &rule_params, &mut NoLedger)));
    let mut realistic = ruled.clone();
    realistic.strategy.enter = Some("ema(funding_trailing_apr, 72h) > 0.05 and zscore(basis_bp, 24h) < 2 and basis_bp > -5".into());
    realistic.strategy.exit = Some("held * mean(funding_last_apr, 24h) < 0.0 or change(basis_bp, 8h) > 40".into());
    realistic.strategy.size = Some("clip(funding_trailing_apr / 0.2, 0, 1)".into());
    realistic.strategy.min_hold_hours = 24.0;
    realistic.strategy.hurdle_days = Some(7.0);
    group.bench_function("rules_compile", |b| b.iter(|| basis::app::pipeline::engine_params_for(&realistic, &timeline, &mut Vec::new(), &mut Vec::new()).unwrap()));
    group.bench_function("loop_full_ledger", |b| {
        b.iter(|| {
            let mut ledger = FullLedger::with_capacity(timeline.len());
            sim::run(&timeline, &params, &mut ledger)
        })
    });
    // Every row recorded and laid out into a row group's columns and pages on the loop's
    // thread, as the streaming Parquet ledger does (without the writer thread's compression).
    group.bench_function("loop_row_group_ledger", |b| {
        struct Reused(basis::measure::ledger::RowGroup);
        impl basis::model::Recorder for Reused {
            #[inline]
            fn record(&mut self, row: &basis::model::StepRow) {
                self.0.record(row);
                if self.0.len() == basis::measure::ledger::ROW_GROUP_ROWS {
                    drop(self.0.take_parts());
                }
            }
        }
        let mut chunk = Reused(basis::measure::ledger::RowGroup::with_capacity(basis::measure::ledger::ROW_GROUP_ROWS));
        b.iter(|| sim::run(&timeline, &params, &mut chunk))
    });
    // Every row recorded whole into one reused batch of a row group's rows, as the streaming
    // ledger does where the writer thread lays them out (runs loaded chunk by chunk).
    group.bench_function("loop_packed_rows", |b| {
        use basis::measure::ledger::{PackedRows, ROW_GROUP_ROWS};
        struct Reused(PackedRows);
        impl basis::model::Recorder for Reused {
            #[inline]
            fn record(&mut self, row: &basis::model::StepRow) {
                self.0.record(row);
                if self.0.len() == ROW_GROUP_ROWS {
                    self.0.clear();
                }
            }
        }
        let mut rows = Reused(PackedRows::with_capacity(ROW_GROUP_ROWS));
        b.iter(|| sim::run(&timeline, &params, &mut rows))
    });
    group.finish();

    let mut group = c.benchmark_group("backtest_1y_1m");
    group.throughput(Throughput::Elements(steps));
    group.sample_size(10);
    group.bench_function("parquet_load_align_simulate_write", |b| {
        b.iter(|| {
            // As `basis backtest` runs: the ledger streamed to ledger.parquet as the loop goes.
            backtest::run_to_folder(&config, None, true).unwrap()
        })
    });
    // The same with the realistic rule set above: signals and rules compiled, then the loop.
    group.bench_function("parquet_load_align_simulate_write_rules", |b| b.iter(|| backtest::run_to_folder(&realistic, None, true).unwrap()));
    group.finish();

    // The report alone: eight charts (decimated from 525,600 steps) and index.html.
    let result = backtest::run(&config).unwrap();
    let input = result.report_input(&config, "bench");
    let mut group = c.benchmark_group("report_1y_1m");
    group.throughput(Throughput::Elements(steps));
    group.sample_size(10);
    group.bench_function("render_charts_and_html", |b| b.iter(|| render::render(&input).unwrap()));
    group.finish();
}

/// The full 2019–2026 hourly BTCUSDT backtest from the freqtrade feather files in
/// ../shared/data (skipped when they are absent): load, align, simulate and write the outputs,
/// without and with the report.
fn freqtrade_hourly(c: &mut Criterion) {
    let datadir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/freqtrade-binance-1h");
    if !datadir.is_dir() {
        eprintln!("skipped freqtrade_btc_1h: {} is missing", datadir.display());
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let config_for = |report: bool| {
        let text = format!(
            "[run]\nname = \"bench\"\noutput_dir = \"{}\"\nreport = {report}\n[data]\nsymbol = \"BTCUSDT\"\n[data.freqtrade]\ndatadir = \"{}\"\npair = \"BTC/USDT\"\ntimeframe = \"1h\"\n[strategy]\nstart = \"2019-09-10T08:00:00Z\"\n[portfolio]\nleverage = 1.0\nreserve_fraction = 0.0\ntop_up_source = \"sell_spot\"\n",
            out.path().display(),
            datadir.display()
        );
        Config::from_toml_str(&text, "bench", Path::new(".")).expect("bench config")
    };
    let steps = backtest::run(&config_for(false)).unwrap().timeline.len() as u64;
    let mut group = c.benchmark_group("freqtrade_btc_1h_2019_2026");
    group.throughput(Throughput::Elements(steps));
    group.sample_size(10);
    for (name, report) in [("feather_load_align_simulate_write", false), ("with_report", true)] {
        let config = config_for(report);
        group.bench_function(name, |b| {
            b.iter(|| {
                let result = backtest::run(&config).unwrap();
                backtest::write_outputs(&config, None, &result, true).unwrap()
            })
        });
    }
    group.finish();
}

/// `basis caps` on the same hourly BTCUSDT history: the data's funding plus the 8 built-in
/// presets and 4 user caps (13 full carry runs, counterfactual funding for 12), and `basis
/// venues` on the multi-venue table (APR, correlations, rotations for 5 coins). Neither writes.
fn venue_studies(c: &mut Criterion) {
    use basis::app::{caps, venues};
    use basis::venue::Preset;
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if !shared.join("freqtrade-binance-1h").is_dir() || !shared.join("multivenue-hourly").is_dir() {
        eprintln!("skipped venue_studies: {} lacks freqtrade-binance-1h or multivenue-hourly", shared.display());
        return;
    }
    let text = format!(
        "[run]\nreport = false\n[data]\nsymbol = \"BTCUSDT\"\n[data.freqtrade]\ndatadir = \"{}\"\npair = \"BTC/USDT\"\ntimeframe = \"1h\"\n[strategy]\nstart = \"2019-09-10T08:00:00Z\"\n[portfolio]\nleverage = 1.0\nreserve_fraction = 0.0\ntop_up_source = \"sell_spot\"\n[venue]\npreset = \"binance_usdm\"\n",
        shared.join("freqtrade-binance-1h").display()
    );
    let config = Config::from_toml_str(&text, "bench", Path::new(".")).expect("bench config");
    let base = config.venue.loaded.clone().unwrap();
    let mut rule_sets = vec![caps::RuleSet::Actual];
    for preset in Preset::built_in().unwrap() {
        rule_sets.push(caps::RuleSet::Rules { label: preset.name.clone(), preset: Box::new(preset) });
    }
    for cap in ["0.003", "0.0075", "0.02", "0.04/1h"] {
        rule_sets.push(caps::user_cap(cap, &base).unwrap());
    }
    let mut group = c.benchmark_group("venues");
    group.sample_size(10);
    // Each rule set simulated in full, and the default: one path, funding re-priced per rule set.
    group.bench_function("caps_btc_1h_2019_2026_13_rule_sets", |b| b.iter(|| caps::run(&config, &rule_sets, caps::CapsMode::Full).unwrap()));
    group.bench_function("caps_fixed_path_btc_1h_2019_2026_13_rule_sets", |b| b.iter(|| caps::run(&config, &rule_sets, caps::CapsMode::FixedPath).unwrap()));
    let table = shared.join("multivenue-hourly/funding_rates.parquet");
    group.bench_function("venues_study_115k_rows", |b| {
        b.iter(|| venues::study(&table, &venues::Columns::default(), "BTC", 7.0, 0.10, 2.0, false).unwrap())
    });
    group.finish();
}

criterion_group!(engine_benches, benches, freqtrade_hourly, venue_studies);
criterion_main!(engine_benches);
