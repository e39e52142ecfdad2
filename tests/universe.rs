//! Universes: a book whose capital goes to the pairs selected on a schedule, pairs entering
//! when their data begins and leaving when it ends. By hand on a scripted market, then on
//! Binance's alts (../shared/data), where each pair's funding is summed again independently of
//! the engine from the raw freqtrade files.

mod common;

use basis::data::align::MarketTimeline;
use basis::measure::book::BookLedger;
use basis::measure::ledger::TradeReason;
use basis::sim::margin::Collateral;
use basis::sim::portfolio::{self, AccountSpec, Allocation, BookParams, MarginMode, PairSpec, UniversePair, UniverseParams};
use basis::sim::EngineParams;
use common::*;

fn flat(n: usize) -> MarketTimeline {
    let p = vec![100.0; n];
    flat_timeline(&p, &p, &p, HOUR)
}

/// 1x, always on, the fees given (no slippage).
fn params(capital: f64, spot_fee: f64, perp_fee: f64) -> EngineParams {
    let mut p = plain_params(capital);
    p.costs.spot_fee = spot_fee;
    p.costs.perp_fee = perp_fee;
    p
}

fn spec<'a>(name: &str, timeline: &'a MarketTimeline, capital: f64, active: (usize, usize), score: Vec<f64>) -> PairSpec<'a> {
    PairSpec {
        name: name.into(),
        timeline,
        params: params(capital, 0.001, 0.0005),
        spot_account: 0,
        perp_account: 0,
        spot_collateral: Collateral::default(),
        universe: Some(UniversePair { active: Some(active), score, weight: Vec::new(), eligible_from_ms: i64::MIN }),
    }
}

/// Three candidates on six hourly steps at 100, top 1, a rotation every 2 h; 1,000 of capital,
/// spot fee 10 bp, perp fee 5 bp. C (data on steps 0–3) scores highest at 0 and 2; B lists at
/// step 2; C's data ends at 3.
/// - Step 0: C is selected; A and B hand their thirds to it. C buys q = 1000 / (100·1.001 +
///   100·(1 + 0.0005)) = 1000 / 200.15 (spot at 100.1 a unit with its fee, 100 of margin and
///   0.05 of perp fee).
/// - Step 2: C still scores highest: kept, nothing traded.
/// - Step 4: C has no bar since step 3: closed as a delisting, paying 0.15 % of 100·q on its two
///   legs; the rotation then picks B (C no longer has a bar), which buys with C's 1000 −
///   0.3 %·100·q.
#[test]
fn listing_rotation_and_delisting_by_hand() {
    let t = flat(6);
    let nan = f64::NAN;
    let pairs = [
        spec("A", &t, 1000.0 / 3.0, (0, 5), vec![1.0; 6]),
        spec("B", &t, 1000.0 / 3.0, (2, 5), vec![nan, nan, 5.0, 5.0, 5.0, 5.0]),
        spec("C", &t, 1000.0 / 3.0, (0, 3), vec![3.0, 3.0, 9.0, 9.0, nan, nan]),
    ];
    let book = BookParams {
        initial_capital: 1000.0,
        allocation: Allocation::Weights(vec![1.0 / 3.0; 3]),
        rebalance_every_ms: None,
        universe: Some(UniverseParams { top: 1, rotate_every_ms: 2 * HOUR, min_score: None, weighted: false }),
    };
    let mut ledger = BookLedger::with_capacity(3, 1, 6);
    let summary = portfolio::run(&book, &[AccountSpec { name: "v".into(), mode: MarginMode::Isolated, liquidation_threshold: 1.0 }], &pairs, &mut ledger);
    let spot = |k: usize| summary.pairs[k].trades.iter().filter(|x| x.leg == "spot").map(|x| (x.step, x.reason, x.qty)).collect::<Vec<_>>();
    let q = 1000.0 / 200.15;
    let c = spot(2);
    assert_eq!(c.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(), vec![(0, TradeReason::Entry), (4, TradeReason::Delisting)]);
    assert_close(c[0].2, q, 1e-12);
    assert_close(c[1].2, -q, 1e-12);
    let left = 1000.0 - 0.003 * 100.0 * q;
    let b = spot(1);
    assert_eq!(b.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(), vec![(4, TradeReason::Entry), (5, TradeReason::Final)]);
    assert_close(b[0].2, left / 200.15, 1e-9);
    assert!(spot(0).is_empty(), "A is never selected");
    assert_eq!((summary.rotations, summary.delistings), (3, 1));
    assert_eq!(summary.selections.iter().map(|s| s.1.clone()).collect::<Vec<_>>(), vec![vec![2], vec![2], vec![1]]);
    // The capital moved, not made: the book's equity is what the fees left.
    let final_equity: f64 = (0..3).map(|k| ledger.pairs[k].row(5).equity).sum();
    assert_close(final_equity, left - 0.003 * 100.0 * (left / 200.15), 1e-9);
}

/// A freqtrade feather file as (open time ms, open, close), read here with polars directly.
fn candles(path: &std::path::Path) -> (Vec<i64>, Vec<f64>, Vec<f64>) {
    use polars::prelude::*;
    let frame = IpcReader::new(std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).finish().unwrap();
    let date = frame.column("date").unwrap().cast(&DataType::Datetime(TimeUnit::Milliseconds, None)).unwrap().cast(&DataType::Int64).unwrap();
    let values = |name: &str| -> Vec<f64> { frame.column(name).unwrap().cast(&DataType::Float64).unwrap().f64().unwrap().iter().map(|v| v.unwrap()).collect() };
    (date.i64().unwrap().iter().map(|v| v.unwrap()).collect(), values("open"), values("close"))
}

/// The alts universe (`data/examples/universe-alts-1h.toml`): 2025-05 → 2026-05, top 5 by the
/// trailing week's funding, weekly.
/// - No selection holds a pair before its first bar plus the 30 days of history, or after its
///   last bar.
/// - The pairs whose data ends inside the window while held (AAVE, ARB: their spot ends
///   2026-02-19/20) are closed as delistings at the first step after their last bar; INJ,
///   whose data ends 2026-02-19 while out of the selection, is never traded after it.
/// - Each pair's funding equals the sum over the raw files' settlements inside its data of
///   −(perp quantity held before the settlement) × rate × the perp close at the settlement
///   (no mark file: the engine pays on the perp's last price), the rates and prices read from
///   the feather files here.
#[test]
fn alts_universe_on_real_data() {
    let root = real_data_dir();
    if !root.join("freqtrade-binance-1h-alts").is_dir() {
        assert!(std::env::var_os("CI").is_none(), "{} is missing: under CI the universe must run on it", root.display());
        eprintln!("skipped: {} is missing", root.display());
        return;
    }
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/examples/universe-alts-1h.toml");
    let book = basis::config::book::BookConfig::load(&example).unwrap();
    let result = basis::app::portfolio::run(&book).unwrap();
    let names: Vec<String> = result.places.iter().map(|p| p.name.clone()).collect();
    let grid = &result.timelines[0].ts_ms;
    let dirs = [root.join("freqtrade-binance-1h-alts/binance"), root.join("freqtrade-binance-1h-marketlab/binance")];
    let find = |sub: &str, file: String| dirs.iter().map(|d| d.join(sub).join(&file)).find(|p| p.is_file()).unwrap_or_else(|| panic!("{file}"));
    let mut delisted_while_held = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let coin = name.strip_suffix("USDT").unwrap();
        let (spot_open, _, _) = candles(&find("", format!("{coin}_USDT-1h.feather")));
        let (perp_open, _, perp_close) = candles(&find("futures", format!("{coin}_USDT_USDT-1h-futures.feather")));
        let (settle, rate, _) = candles(&find("futures", format!("{coin}_USDT_USDT-1h-funding_rate.feather")));
        // The pair's own bars: where spot, perp and funding all exist (as the loader aligns).
        let first_bar = (spot_open[0] + HOUR).max(perp_open[0] + HOUR).max(settle[0]);
        let last_bar = (spot_open[spot_open.len() - 1] + HOUR).min(perp_open[perp_open.len() - 1] + HOUR);
        let ledger = &result.ledger.pairs[k];
        // Selections only inside the data, after 30 days of it.
        for (at, picked) in &result.summary.selections {
            if picked.contains(&k) {
                assert!(*at >= first_bar + 30 * DAY && *at <= last_bar, "{name} selected at {at} outside its data {first_bar}..{last_bar}");
            }
        }
        let trades = &result.summary.pairs[k].trades;
        if let Some(delisting) = trades.iter().find(|t| t.reason == TradeReason::Delisting) {
            let after = grid[grid.partition_point(|&t| t <= last_bar)];
            assert_eq!(delisting.ts_ms, after, "{name}: closed at the first step after its last bar");
            delisted_while_held.push(coin.to_string());
        }
        assert!(trades.iter().all(|t| t.ts_ms <= last_bar || t.reason == TradeReason::Delisting), "{name}: traded after its data ended");
        // Funding, again.
        let mut expected = 0.0;
        for (j, &t) in settle.iter().enumerate() {
            if t <= grid[0] || t > *grid.last().unwrap() || t < first_bar || t > last_bar {
                continue;
            }
            let before = grid.partition_point(|&g| g < t);
            if before == 0 {
                continue;
            }
            let qty = ledger.row(before - 1).perp_qty;
            let bar = perp_open.partition_point(|&d| d + HOUR < t);
            assert_eq!(perp_open[bar] + HOUR, t, "{name}: a perp bar closes at each settlement");
            expected += -qty * rate[j] * perp_close[bar];
        }
        let got = result.summary.pairs[k].pnl.funding;
        assert!((got - expected).abs() <= 1e-6 * (1.0 + expected.abs()), "{name}: funding {got} vs {expected} from the files");
    }
    delisted_while_held.sort();
    assert_eq!(delisted_while_held, vec!["AAVE", "ARB"]);
    assert!(result.warnings.iter().any(|w| w.starts_with("INJUSDT: its data ends at 2026-02-19")), "INJ's end is reported");
    assert!(result.summary.pairs[names.iter().position(|n| n == "INJUSDT").unwrap()].trades.iter().all(|t| t.ts_ms < 1_771_459_200_000 + DAY));
    assert_eq!(result.summary.rotations, 53);
}

/// A sweep over a book (`data/examples/sweep-universe.toml`): each configuration, run on the
/// sweep's shared pair markets, gives the metrics of the same book run on its own with `--set`.
#[test]
fn a_book_sweep_runs_the_book_each_configuration_names() {
    let root = real_data_dir();
    if !root.join("freqtrade-binance-1h-alts").is_dir() {
        assert!(std::env::var_os("CI").is_none(), "{} is missing: under CI the book sweep must run on it", root.display());
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/examples");
    let sweep = basis::app::sweep::spec::Sweep::load(&dir.join("sweep-universe.toml")).unwrap();
    assert!(sweep.book);
    let markets = basis::app::sweep::Markets::for_book();
    for id in [0u64, 7, 14] {
        let values = sweep.values(id);
        let swept = basis::app::sweep::run_values(&sweep, &markets, &values, &[]).unwrap();
        let sets: Vec<String> = sweep.params.iter().zip(&values).map(|(p, v)| format!("{}={v}", p.path)).collect();
        let book = basis::config::load_book_with_overrides(&dir.join("universe-majors-1h.toml"), &sets).unwrap();
        let alone = basis::app::portfolio::run(&book).unwrap().metrics.book;
        assert_eq!(swept.apr.to_bits(), alone.apr.to_bits(), "configuration {id} ({sets:?})");
        assert_eq!(swept.final_equity.to_bits(), alone.final_equity.to_bits());
        assert_eq!(swept.exits, alone.exits);
    }
    // Six pair markets, prepared once for all the configurations.
    assert_eq!(markets.timelines_built(), 6);
    // A listed symbol that cannot load is an error, not a warning.
    let book = basis::config::load_book_with_overrides(&dir.join("universe-majors-1h.toml"), &["universe.symbols=[\"BTCUSDT\", \"NOPEUSDT\"]".to_string()]).unwrap();
    let err = format!("{:#}", basis::app::portfolio::run(&book).err().expect("NOPEUSDT has no files"));
    assert!(err.contains("NOPEUSDT") && err.contains("no spot file"), "{err}");
}

/// A weighted split among the selected (`score_weighted` or `funding_weighted`): the top 2 of
/// three, weights 3 and 1, share 1,000 as 750 and 250; each buys at 100 with 100 of margin a
/// unit (1x, no fees): 3.75 and 1.25 units. The third pair's weight does not count.
#[test]
fn a_weighted_split_among_the_selected_by_hand() {
    let t = flat(4);
    let mut pairs = [spec("A", &t, 1000.0 / 3.0, (0, 3), vec![2.0; 4]), spec("B", &t, 1000.0 / 3.0, (0, 3), vec![1.0; 4]), spec("C", &t, 1000.0 / 3.0, (0, 3), vec![0.5; 4])];
    for (p, w) in pairs.iter_mut().zip([3.0, 1.0, 100.0]) {
        p.params.costs.spot_fee = 0.0;
        p.params.costs.perp_fee = 0.0;
        if let Some(u) = p.universe.as_mut() {
            u.weight = vec![w; 4];
        }
    }
    let book = BookParams {
        initial_capital: 1000.0,
        allocation: Allocation::Weights(vec![1.0 / 3.0; 3]),
        rebalance_every_ms: None,
        universe: Some(UniverseParams { top: 2, rotate_every_ms: 100 * HOUR, min_score: None, weighted: true }),
    };
    let mut ledger = BookLedger::with_capacity(3, 1, 4);
    let summary = portfolio::run(&book, &[AccountSpec { name: "v".into(), mode: MarginMode::Isolated, liquidation_threshold: 1.0 }], &pairs, &mut ledger);
    let first_spot = |k: usize| summary.pairs[k].trades.iter().find(|x| x.leg == "spot").map(|x| x.qty);
    assert_close(first_spot(0).unwrap(), 3.75, 1e-12);
    assert_close(first_spot(1).unwrap(), 1.25, 1e-12);
    assert_eq!(first_spot(2), None);
    assert_close(ledger.pairs[2].row(0).equity, 0.0, 1e-12);
}
