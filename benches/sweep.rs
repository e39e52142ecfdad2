//! Sweep benchmark: prints, on 1 thread and on every core,
//! - steps per second of the engine loop over a year of generated 1-minute bars (on all cores,
//!   one independent backtest per core, summed);
//! - the wall time of a 10,000-configuration sweep over a year of hourly bars (the shipped
//!   sample: data/basis.toml), writing results.parquet and the report;
//! - peak resident memory (VmHWM) after a 1,000- and after a 10,000-configuration sweep, to show
//!   that memory does not grow with the number of configurations.
//!
//! - the engine loop with `[costs] model = "sqrt_impact"` against fixed bps, and the time to
//!   build the impact series; the same with every order capped at 10 % of a bar's volume
//!   (`max_participation`, orders worked over bars);
//! - 10,000 Monte Carlo paths of a year of hourly steps (`basis stress`).
//!
//! Run with `cargo bench --bench sweep` (`-- --threads 1,2,4,8,16` to choose thread counts;
//! `-- --engine-only` for the engine loops alone).

mod common;

use std::path::Path;
use std::time::Instant;

use basis::config::Config;
use basis::data::align::align;
use basis::data::synth::{market_data, SynthSpec};
use basis::sim;
use basis::measure::ledger::NoLedger;
use basis::app::stress::monte_carlo::{self, MonteCarloSpec};
use basis::app::sweep::run::{self, SweepOptions};
use basis::app::sweep::spec::Sweep;
use rayon::prelude::*;

use common::peak_rss_mib;

/// Counts heap allocations, to show what one configuration allocates (allocation and its lock
/// contention is what stops a sweep scaling with cores).
struct Counting;

static ALLOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: as above.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed)
}

fn sweep_file(dir: &Path, samples: u64) -> Sweep {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/basis.toml");
    let text = format!(
        r#"base = {base:?}
name = "bench-{samples}"
output_dir = {out:?}
mode = "random"
samples = {samples}
metric = "sharpe"
[params]
"portfolio.leverage" = {{ min = 1.0, max = 5.0 }}
"portfolio.top_up_distance" = {{ min = 0.05, max = 0.3 }}
"portfolio.reserve_fraction" = {{ min = 0.0, max = 0.3 }}
"portfolio.rebalance_delta_threshold" = {{ min = 0.01, max = 0.2 }}
"costs.perp_slippage_bps" = {{ min = 0.0, max = 5.0 }}
"#,
        base = base.display().to_string(),
        out = dir.display().to_string(),
    );
    let path = dir.join(format!("sweep-{samples}.toml"));
    std::fs::write(&path, text).expect("writing the bench sweep file");
    Sweep::load(&path).expect("bench sweep file")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let threads: Vec<usize> = args
        .iter()
        .position(|a| a == "--threads")
        .and_then(|i| args.get(i + 1))
        .map(|list| list.split(',').filter_map(|t| t.parse().ok()).collect())
        .unwrap_or_else(|| if cores > 1 { vec![1, cores] } else { vec![1] });
    println!("sweep benchmark on {cores} core(s); thread counts {threads:?}");

    let engine_only = args.iter().any(|a| a == "--engine-only");
    let config = Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data/basis.toml")).expect("data/basis.toml");
    let params = basis::config::engine_params(&config);
    if !engine_only {
        sweeps(cores, &threads);
    }

    // 2. The engine loop over a year of 1-minute bars.
    engine_loops(&config, &params, &threads);

    // 3. Monte Carlo: 10,000 bootstrapped paths of one year of hourly steps from the sample.
    if !engine_only {
        monte_carlo_paths(&config, &params, &threads);
    }
    println!("peak RSS at the end: {:.0} MiB", peak_rss_mib());
}

/// 1. Sweeps over a year of hourly bars, memory first (the high-water mark only rises).
fn sweeps(cores: usize, threads: &[usize]) {
    let out = tempfile::tempdir().expect("temp dir");
    let pool_all = rayon::ThreadPoolBuilder::new().num_threads(cores).build().expect("pool");
    let small = sweep_file(out.path(), 1_000);
    let allocations_before = allocations();
    let summary = pool_all.install(|| run::run(&small, &SweepOptions::default())).expect("1,000-configuration sweep");
    let per_configuration = (allocations() - allocations_before) as f64 / 1_000.0;
    let rss_small = peak_rss_mib();
    println!("sweep 1,000 x 8,760 steps, {cores} threads: {:.2} s; peak RSS {:.0} MiB; {per_configuration:.0} heap allocations per configuration (loading, report and results included)", summary.seconds, rss_small);
    let large = sweep_file(out.path(), 10_000);
    for &n in threads {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build().expect("pool");
        let options = SweepOptions { force: true, ..SweepOptions::default() };
        let started = Instant::now();
        let before = allocations();
        let summary = pool.install(|| run::run(&large, &options)).expect("10,000-configuration sweep");
        let wall = started.elapsed().as_secs_f64();
        let steps = 10_000.0 * 8_760.0;
        println!(
            "sweep 10,000 x 8,760 steps, {n:>2} thread(s): {wall:.2} s wall ({:.1} M steps/s; {} timeline(s)); peak RSS {:.0} MiB; {:.0} heap allocations per configuration",
            steps / wall / 1e6,
            summary.timelines,
            peak_rss_mib(),
            (allocations() - before) as f64 / 10_000.0
        );
    }
    println!("memory: peak RSS {rss_small:.0} MiB after 1,000 configurations, {:.0} MiB after 10,000", peak_rss_mib());
}

/// 2. The engine loop over a year of 1-minute bars: fixed costs on 1 thread and on every core,
/// then `sqrt_impact`, and `sqrt_impact` with orders worked under a participation cap.
fn engine_loops(config: &Config, params: &sim::EngineParams, threads: &[usize]) {
    let params = params.clone();
    let data = market_data(&SynthSpec { bar_minutes: 1, days: 365, ..SynthSpec::default() });
    let timeline = align(&data, None, None, 0.03).expect("aligning the 1-minute year");
    let steps = timeline.len() as f64;
    let before = allocations();
    std::hint::black_box(sim::run(&timeline, &params, &mut NoLedger));
    println!("engine loop, 1 year of 1-minute bars: {} heap allocations per run (no ledger)", allocations() - before);
    for &n in threads {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build().expect("pool");
        let mut best = f64::MAX;
        for _ in 0..7 {
            let started = Instant::now();
            pool.install(|| {
                (0..n).into_par_iter().for_each(|_| {
                    std::hint::black_box(sim::run(&timeline, &params, &mut NoLedger));
                })
            });
            best = best.min(started.elapsed().as_secs_f64());
        }
        let total = steps * n as f64 / best;
        println!(
            "engine loop, 1 year of 1-minute bars ({} steps), {n:>2} thread(s): {:.1} M steps/s in all, {:.1} M steps/s per core (best of 7)",
            steps,
            total / 1e6,
            total / n as f64 / 1e6
        );
    }

    // 2b. The same loop with slippage from the market: `sqrt_impact` on both legs (the series
    // built once from the bars, then read at each fill), against the fixed bps above.
    let detailed = basis::data::align::align_window(&data, &basis::data::align::Window { bar_detail: true, ..Default::default() }, 0.03).expect("aligning with bar detail");
    let mut schedule = config.costs.clone();
    schedule.model = basis::model::CostModel::SqrtImpact;
    let started = Instant::now();
    let (market, _) = sim::market_costs::estimate(&detailed, &schedule);
    let estimate_s = started.elapsed().as_secs_f64();
    let mut impact_params = params.clone();
    impact_params.market_costs = Some(std::sync::Arc::new(market));
    // Every order at most 10 % of a bar's volume: on minute bars the entry and the re-hedges
    // are worked over several bars.
    let mut worked_params = impact_params.clone();
    worked_params.execution = sim::execution::Execution { max_participation: 0.1, ..sim::execution::Execution::AT_ONCE };
    let (mut fixed_best, mut impact_best, mut worked_best) = (f64::MAX, f64::MAX, f64::MAX);
    let mut worked_summary = None;
    for _ in 0..7 {
        let started = Instant::now();
        std::hint::black_box(sim::run(&detailed, &params, &mut NoLedger));
        fixed_best = fixed_best.min(started.elapsed().as_secs_f64());
        let started = Instant::now();
        std::hint::black_box(sim::run(&detailed, &impact_params, &mut NoLedger));
        impact_best = impact_best.min(started.elapsed().as_secs_f64());
        let started = Instant::now();
        worked_summary = Some(std::hint::black_box(sim::run(&detailed, &worked_params, &mut NoLedger)));
        worked_best = worked_best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "engine loop, 1 year of 1-minute bars, 1 thread: fixed_bps {:.1} M steps/s, sqrt_impact {:.1} M steps/s ({:+.1} %), the impact series built in {:.0} ms (best of 7)",
        steps / fixed_best / 1e6,
        steps / impact_best / 1e6,
        (impact_best / fixed_best - 1.0) * 100.0,
        estimate_s * 1e3
    );
    let stats = worked_summary.and_then(|s| s.execution).unwrap_or_default();
    println!(
        "engine loop, 1 year of 1-minute bars, 1 thread: sqrt_impact with max_participation 0.1 {:.1} M steps/s ({:+.1} % time over fixed_bps; {} orders worked over {} closes); with the impact series' build: {:+.1} % (best of 7)",
        steps / worked_best / 1e6,
        (worked_best / fixed_best - 1.0) * 100.0,
        stats.orders_worked,
        stats.steps_working,
        ((worked_best + estimate_s) / fixed_best - 1.0) * 100.0
    );
}

/// 3. Monte Carlo: 10,000 bootstrapped paths of one year of hourly steps from the sample.
fn monte_carlo_paths(config: &Config, params: &sim::EngineParams, threads: &[usize]) {
    let (history, _, _) = basis::app::pipeline::prepare(config).expect("the sample");
    for &n in threads {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build().expect("pool");
        let spec = MonteCarloSpec { paths: 10_000, years: 1.0, block_days: 7.0, seed: 7 };
        let started = Instant::now();
        let mc = pool.install(|| monte_carlo::run(&history, params, &spec, false)).expect("monte carlo");
        let wall = started.elapsed().as_secs_f64();
        println!(
            "monte carlo 10,000 paths x {} steps, {n:>2} thread(s): {wall:.2} s wall ({:.1} M steps/s); P(liquidation) {:.2} %, APR p5/p50/p95 {:+.2} / {:+.2} / {:+.2} %",
            mc.steps_per_path,
            10_000.0 * mc.steps_per_path as f64 / wall / 1e6,
            mc.liquidation_probability() * 100.0,
            mc.quantile(0.05, |p| p.apr) * 100.0,
            mc.quantile(0.5, |p| p.apr) * 100.0,
            mc.quantile(0.95, |p| p.apr) * 100.0
        );
    }
}
