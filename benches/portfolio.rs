//! Benchmark: a book of 10 pairs in 3 accounts (one isolated, one cross, one portfolio margin)
//! over a year of generated hourly bars, every pair's and account's row kept. Prints the time
//! per run and the throughput in steps × legs per second (criterion's elements: 2 legs per pair
//! per step).
//!
//! And a universe: 20 pairs listing a week apart over the year, the top 5 by their trailing
//! week of funding chosen weekly, put on the union clock and scored inside each iteration.
//!
//! Run with `cargo bench --bench portfolio`.

use basis::data::align::{align, MarketTimeline};
use basis::data::synth::{market_data, SynthSpec};
use basis::measure::book::BookLedger;
use basis::sim::portfolio::{self, AccountSpec, Allocation, BookParams, MarginMode, PairSpec, UniversePair, UniverseParams};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const PAIRS: usize = 10;

fn timelines() -> Vec<MarketTimeline> {
    (0..PAIRS)
        .map(|k| {
            let data = market_data(&SynthSpec { seed: 11 + k as u64, bar_minutes: 60, days: 365, initial_price: 100.0 * (k as f64 + 1.0), ..SynthSpec::default() });
            align(&data, None, None, 0.03).expect("synthetic data aligns")
        })
        .collect()
}

fn book(c: &mut Criterion) {
    let timelines = timelines();
    let steps = timelines[0].len();
    assert!(timelines.iter().all(|t| t.ts_ms == timelines[0].ts_ms), "the synthetic pairs share one clock");
    let accounts = [
        AccountSpec { name: "isolated".into(), mode: MarginMode::Isolated, liquidation_threshold: 1.0 },
        AccountSpec { name: "cross".into(), mode: MarginMode::Cross, liquidation_threshold: 1.0 },
        AccountSpec { name: "portfolio".into(), mode: MarginMode::Portfolio, liquidation_threshold: 1.05 },
    ];
    // Binance's fees, brackets and liquidation rule; the data sources are named, not read.
    let config = basis::config::Config::from_toml_str(
        "[data]\nsymbol = \"SYNTHUSDT\"\n[data.freqtrade]\ndatadir = \"unread\"\npair = \"SYNTH/USDT\"\ntimeframe = \"1h\"\n[portfolio]\nleverage = 3.0\nreserve_fraction = 0.1\ntop_up_source = \"reserve_then_spot\"\n[venue]\npreset = \"binance_usdm\"\n",
        "bench",
        std::path::Path::new("."),
    )
    .expect("bench config");
    let pairs: Vec<PairSpec> = timelines
        .iter()
        .enumerate()
        .map(|(k, t)| {
            let account = k % 3;
            let mut params = basis::config::engine_params(&config);
            params.initial_capital = 100_000.0;
            let haircut = if account == 2 { 0.95 } else { 0.0 };
            params.spot_collateral_haircut = haircut;
            params.quote_borrow_apr = if account == 2 { 0.08 } else { 0.0 };
            PairSpec { name: format!("P{k}"), timeline: t, params, spot_account: account, perp_account: account, spot_collateral: basis::sim::margin::Collateral::flat(haircut), universe: None }
        })
        .collect();
    let params = BookParams { initial_capital: 1_000_000.0, allocation: Allocation::Weights(vec![0.1; PAIRS]), rebalance_every_ms: Some(7 * 86_400_000), universe: None };
    let mut group = c.benchmark_group("portfolio");
    group.throughput(Throughput::Elements((steps * PAIRS * 2) as u64));
    group.sample_size(20);
    group.bench_function("book_10_pairs_3_accounts_1y_1h", |b| {
        b.iter(|| {
            let mut ledger = BookLedger::with_capacity(PAIRS, accounts.len(), steps);
            portfolio::run(&params, &accounts, &pairs, &mut ledger)
        })
    });
    group.finish();
}

fn universe(c: &mut Criterion) {
    const CANDIDATES: usize = 20;
    let own: Vec<MarketTimeline> = (0..CANDIDATES)
        .map(|k| {
            let data = market_data(&SynthSpec { seed: 101 + k as u64, bar_minutes: 60, days: 365, initial_price: 50.0 * (k as f64 + 1.0), ..SynthSpec::default() });
            let t = align(&data, None, None, 0.03).expect("synthetic data aligns");
            // Pair k lists k weeks into the year.
            let from = t.ts_ms[0] + k as i64 * 7 * 86_400_000;
            basis::data::align::restrict_to_grid(&t, &t.ts_ms.iter().copied().filter(|&x| x >= from).collect::<Vec<_>>())
        })
        .collect();
    let config = basis::config::Config::from_toml_str(
        "[data]\nsymbol = \"SYNTHUSDT\"\n[data.freqtrade]\ndatadir = \"unread\"\npair = \"SYNTH/USDT\"\ntimeframe = \"1h\"\n[portfolio]\nleverage = 2.0\nreserve_fraction = 0.1\ntop_up_source = \"reserve_then_spot\"\n[venue]\npreset = \"binance_usdm\"\n",
        "bench",
        std::path::Path::new("."),
    )
    .expect("bench config");
    let accounts = [AccountSpec { name: "binance".into(), mode: MarginMode::Isolated, liquidation_threshold: 1.0 }];
    let universe = UniverseParams { top: 5, rotate_every_ms: 7 * 86_400_000, min_score: None, weighted: false };
    let mut group = c.benchmark_group("universe");
    group.sample_size(10);
    group.bench_function("universe_20_pairs_top5_weekly_1y_1h", |b| {
        b.iter(|| {
            let grid = basis::data::align::union_grid(&own.iter().collect::<Vec<_>>(), i64::MIN, i64::MAX);
            let spread: Vec<(MarketTimeline, Option<(usize, usize)>)> = own.iter().map(|t| basis::data::align::spread_to_grid(t, &grid)).collect();
            let pairs: Vec<PairSpec> = spread
                .iter()
                .zip(&own)
                .enumerate()
                .map(|(k, ((t, active), o))| {
                    let score_own = basis::sim::policy::trailing_funding_apr_hours(&o.funding, &o.ts_ms, 168.0);
                    let score = grid.iter().map(|g| o.ts_ms.binary_search(g).map(|i| score_own[i]).unwrap_or(f64::NAN)).collect();
                    let mut params = basis::config::engine_params(&config);
                    params.initial_capital = 1_000_000.0 / CANDIDATES as f64;
                    let universe = Some(UniversePair { active: *active, score, weight: Vec::new(), eligible_from_ms: o.ts_ms[0] });
                    PairSpec { name: format!("P{k}"), timeline: t, params, spot_account: 0, perp_account: 0, spot_collateral: basis::sim::margin::Collateral::default(), universe }
                })
                .collect();
            let params = BookParams { initial_capital: 1_000_000.0, allocation: Allocation::Weights(vec![1.0 / CANDIDATES as f64; CANDIDATES]), rebalance_every_ms: None, universe: Some(universe.clone()) };
            let mut ledger = BookLedger::with_capacity(CANDIDATES, accounts.len(), grid.len());
            portfolio::run(&params, &accounts, &pairs, &mut ledger)
        })
    });
    group.finish();
}

criterion_group!(portfolio_benches, book, universe);
criterion_main!(portfolio_benches);
