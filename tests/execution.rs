//! Orders worked over time (`costs.max_participation`, `costs.leg_delay_ms`): a 3-bar entry and
//! delayed legs by hand, the ledger's LEGGING state and the legging PnL, a cap that never binds
//! changing nothing, and the attribution over random paths with random caps and delays.

mod common;

use basis::measure::ledger::FullLedger;
use basis::model::{state, FirstLeg, NoLedger};
use basis::sim::execution::Execution;
use common::{assert_close, flat_timeline, plain_params, HOUR};
use proptest::prelude::*;

/// An entry of 50 coins with at most 50 % of each bar's volume, 40 spot and 60 perp coins a
/// bar: 20 spot and 30 perp coins a bar. Capital 10,000 at 1x, no costs, closes 100, 98, 99,
/// 99, 99.
///
/// By hand (margin per perp coin fixed at the decision: 10,000 / 2 / 50 = 100):
/// - step 0 at 100: spot +20 (cash 8,000), perp −30 with 3,000 margin (cash 5,000);
/// - step 1 at 98: marks −40 spot, +60 perp (the unmatched −10 perp made +20); spot +20 at 98
///   (cash 3,040), perp −20 with 2,000 margin (cash 1,040): equity 10,020;
/// - step 2 at 99: marks +40 spot, −50 perp (the unmatched perp −10); spot +10 at 99 (cash 50):
///   the legs match, equity 10,010;
/// - legging PnL +20 − 10 = +10 over 2 hours; the ledger reads LEGGING at steps 0 and 1.
#[test]
fn a_three_bar_entry_by_hand() {
    let prices = [100.0, 98.0, 99.0, 99.0, 99.0];
    let mut timeline = flat_timeline(&prices, &prices, &prices, HOUR);
    timeline.spot_volume = vec![40.0; 5];
    timeline.perp_volume = vec![60.0; 5];
    let mut params = plain_params(10_000.0);
    params.execution = Execution { max_participation: 0.5, ..Execution::AT_ONCE };
    let mut ledger = FullLedger::default();
    let summary = basis::sim::run(&timeline, &params, &mut ledger);
    let fills: Vec<(usize, &str, f64, f64)> = summary.trades.iter().map(|t| (t.step, t.leg, t.qty, t.fill_price)).collect();
    assert_eq!(&fills[..5], &[(0, "spot", 20.0, 100.0), (0, "perp", -30.0, 100.0), (1, "spot", 20.0, 98.0), (1, "perp", -20.0, 98.0), (2, "spot", 10.0, 99.0)]);
    let rows: Vec<_> = ledger.rows().collect();
    assert_eq!(rows.iter().map(|r| r.state).collect::<Vec<_>>(), vec![state::LEGGING, state::LEGGING, state::LONG_CARRY, state::LONG_CARRY, state::FLAT]);
    let cash: Vec<f64> = rows.iter().map(|r| r.cash).take(3).collect();
    for (got, want) in cash.iter().zip([5_000.0, 1_040.0, 50.0]) {
        assert_close(*got, want, 1e-9);
    }
    for (got, want) in rows.iter().map(|r| r.equity).zip([10_000.0, 10_020.0, 10_010.0, 10_010.0, 10_010.0]) {
        assert_close(got, want, 1e-9);
    }
    let stats = summary.execution.expect("worked orders are reported");
    assert_eq!(stats.orders_worked, 1);
    assert_eq!(stats.steps_working, 3);
    assert_eq!(stats.partially_hedged_ms, 2 * HOUR);
    assert_close(stats.legging_pnl, 10.0, 1e-9);
    assert!(!stats.unfinished);
}

/// The second leg `leg_delay_ms` after the first fills at the last close known at its due
/// time. Spot first, closes 100 then 104: a 90-minute delay on hourly bars fills the perp at
/// the next close (104): the spot held alone made 50 × 4 = +200, final equity 10,200; a
/// 30-minute delay stays within the bar (both at 100, equity 10,000); 60 minutes reaches the
/// next close exactly.
#[test]
fn a_delayed_leg_fills_at_the_last_close_known_at_its_time() {
    let prices = [100.0, 104.0, 104.0, 104.0];
    let timeline = flat_timeline(&prices, &prices, &prices, HOUR);
    let run = |delay_ms: i64, first_leg: FirstLeg| {
        let mut params = plain_params(10_000.0);
        params.execution = Execution { leg_delay_ms: delay_ms, first_leg, ..Execution::AT_ONCE };
        basis::sim::run(&timeline, &params, &mut NoLedger)
    };
    let late = run(90 * 60_000, FirstLeg::Spot);
    let perp = late.trades.iter().find(|t| t.leg == "perp").expect("a perp fill");
    assert_eq!((perp.step, perp.qty, perp.fill_price), (1, -50.0, 104.0));
    assert_close(late.final_equity, 10_200.0, 1e-9);
    let stats = late.execution.expect("stats");
    assert_close(stats.legging_pnl, 200.0, 1e-9);
    assert_eq!(stats.partially_hedged_ms, HOUR);
    let within = run(30 * 60_000, FirstLeg::Spot);
    assert_eq!(within.trades.iter().find(|t| t.leg == "perp").map(|t| t.step), Some(0));
    assert_close(within.final_equity, 10_000.0, 1e-9);
    let exact = run(60 * 60_000, FirstLeg::Spot);
    assert_eq!(exact.trades.iter().find(|t| t.leg == "perp").map(|t| t.step), Some(1));
    // Perp first: short 50 at 100, the spot a bar later at 104. The perp alone lost 200, so the
    // 5,000 of cash buys only 5,000 / 104 spot; the order shrinks to it and the perp is cut back
    // to match at the next close (at 104: no PnL), its margin share returned.
    let perp_first = run(90 * 60_000, FirstLeg::Perp);
    let spot = perp_first.trades.iter().find(|t| t.leg == "spot").expect("a spot fill");
    assert_eq!(spot.step, 1);
    assert_close(spot.qty, 5_000.0 / 104.0, 1e-12);
    let trim = perp_first.trades.iter().find(|t| t.leg == "perp" && t.step == 2).expect("the perp trimmed");
    assert_close(trim.qty, 50.0 - 5_000.0 / 104.0, 1e-9);
    assert_close(perp_first.final_equity, 9_800.0, 1e-9);
    assert_close(perp_first.execution.expect("stats").legging_pnl, -200.0, 1e-9);
}

/// A bar without volume fills nothing on that leg: the order waits, and the bar is counted.
#[test]
fn no_volume_no_fill() {
    let prices = [100.0; 4];
    let mut timeline = flat_timeline(&prices, &prices, &prices, HOUR);
    timeline.spot_volume = vec![f64::NAN, 1_000.0, 1_000.0, 1_000.0];
    timeline.perp_volume = vec![1_000.0; 4];
    let mut params = plain_params(10_000.0);
    params.execution = Execution { max_participation: 0.1, ..Execution::AT_ONCE };
    let summary = basis::sim::run(&timeline, &params, &mut NoLedger);
    let first_spot = summary.trades.iter().find(|t| t.leg == "spot").expect("a spot fill");
    assert_eq!(first_spot.step, 1);
    assert_eq!(summary.execution.expect("stats").bars_without_volume, 1);
}

/// Random closes: a walk from 1,000 with steps drawn in ±`move`.
fn walk(moves: &[f64]) -> Vec<f64> {
    let mut price = 1_000.0;
    moves
        .iter()
        .map(|m| {
            price *= 1.0 + m;
            price
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever the cap, the volumes, the delay, the leg first and the carry's direction: every
    /// step's components sum to its change in equity, equity never goes below zero, a
    /// worked order's legs end matched, and the final close leaves nothing open.
    #[test]
    fn worked_orders_keep_the_books(moves in prop::collection::vec(-0.04f64..0.04, 6..60), volumes in prop::collection::vec(0.0f64..400.0, 60),
                                   share in 0.01f64..1.0, delay_bars in 0i64..4, perp_first in any::<bool>(), reverse in any::<bool>(),
                                   fees_bps in 0.0f64..10.0, leverage in 1.0f64..5.0, rates in prop::collection::vec(-0.002f64..0.002, 60), threshold in any::<bool>()) {
        let prices = walk(&moves);
        let n = prices.len();
        let high: Vec<f64> = prices.iter().map(|p| p * 1.01).collect();
        let low: Vec<f64> = prices.iter().map(|p| p * 0.99).collect();
        let mut timeline = flat_timeline(&prices, &high, &low, HOUR);
        timeline.spot_high = high.clone();
        timeline.spot_low = low.clone();
        timeline.spot_volume = volumes[..n].to_vec();
        timeline.perp_volume = volumes.iter().rev().take(n).copied().collect();
        let mut params = plain_params(100_000.0);
        params.leverage = leverage;
        params.costs.spot_fee = fees_bps * 1e-4;
        params.costs.perp_fee = fees_bps * 0.5e-4;
        params.top_up_distance = 0.05;
        params.top_up_source = basis::config::TopUpSource::Reserve;
        params.rebalance_delta_threshold = 0.01;
        if reverse {
            params.entry.direction = basis::config::Direction::Reverse;
        }
        if threshold {
            // Funding every 2 steps, the carry entered, exited and flipped on its sign: worked
            // exits, and flips whose entry follows the exit.
            timeline.funding = (1..n).filter(|i| i % 2 == 0).map(|i| common::event_at(&timeline, i, rates[i], prices[i - 1])).collect();
            params.entry.mode = basis::config::EntryMode::FundingThreshold;
            params.entry.direction = basis::config::Direction::Both;
            params.entry.lookback_settlements = 1;
        }
        params.execution = Execution { max_participation: share, leg_delay_ms: delay_bars * HOUR / 2, first_leg: if perp_first { FirstLeg::Perp } else { FirstLeg::Spot } };
        let mut ledger = FullLedger::default();
        let summary = basis::sim::run(&timeline, &params, &mut ledger);
        let mut previous = params.initial_capital;
        for (i, row) in ledger.rows().enumerate() {
            let scale = previous.abs().max(row.equity.abs()).max(1.0);
            prop_assert!((row.equity - previous - row.pnl.total()).abs() <= 1e-9 * scale, "step {i}: equity change {} but components sum to {}", row.equity - previous, row.pnl.total());
            prop_assert!(row.equity >= -1e-9 * params.initial_capital, "step {i}: equity {}", row.equity);
            prop_assert!(row.cash >= -1e-9 * params.initial_capital, "step {i}: cash {} below zero", row.cash);
            if row.state == state::LONG_CARRY || row.state == state::REVERSE_CARRY {
                // Outside LEGGING the legs are matched to the re-hedge band.
                let gap = (row.spot_qty + row.perp_qty).abs();
                prop_assert!(gap <= 0.011 * row.spot_qty.abs().max(row.perp_qty.abs()) + 1e-9, "step {i}: legs {} and {} outside LEGGING", row.spot_qty, row.perp_qty);
            }
            previous = row.equity;
        }
        let last = ledger.rows().last().expect("rows");
        prop_assert_eq!(last.spot_qty, 0.0);
        prop_assert_eq!(last.perp_qty, 0.0);
        prop_assert!((summary.final_equity - params.initial_capital - summary.pnl.total()).abs() <= 1e-8 * params.initial_capital);
    }

    /// A cap that never binds and no delay fill every order at once, as without them (to
    /// rounding: the margin per perp coin is a division).
    #[test]
    fn a_cap_that_never_binds_changes_nothing(moves in prop::collection::vec(-0.03f64..0.03, 4..40), fees_bps in 0.0f64..10.0, reverse in any::<bool>()) {
        let prices = walk(&moves);
        let n = prices.len();
        let mut timeline = flat_timeline(&prices, &prices, &prices, HOUR);
        timeline.spot_volume = vec![1e12; n];
        timeline.perp_volume = vec![1e12; n];
        let mut params = plain_params(100_000.0);
        params.leverage = 2.0;
        params.costs.spot_fee = fees_bps * 1e-4;
        params.costs.perp_fee = fees_bps * 0.5e-4;
        if reverse {
            params.entry.direction = basis::config::Direction::Reverse;
        }
        let at_once = basis::sim::run(&timeline, &params, &mut NoLedger);
        params.execution = Execution { max_participation: 1.0, ..Execution::AT_ONCE };
        let worked = basis::sim::run(&timeline, &params, &mut NoLedger);
        prop_assert_eq!(at_once.trades.len(), worked.trades.len());
        for (a, b) in at_once.trades.iter().zip(&worked.trades) {
            prop_assert_eq!((a.step, a.leg), (b.step, b.leg));
            prop_assert!((a.qty - b.qty).abs() <= 1e-9 * a.qty.abs());
        }
        prop_assert!((at_once.final_equity - worked.final_equity).abs() <= 1e-8 * at_once.final_equity);
        prop_assert_eq!(worked.execution.expect("stats").partially_hedged_ms, 0);
    }
}

/// Books work their pairs' orders too (each pair's `[costs]`): BTC and ETH on Binance hourly at
/// 100 M with 1 % of each bar's volume. ETH's perp, listed in November 2019, trades little, so
/// the legs stand apart for weeks; the book's metrics say so, and its ledger still adds up.
#[test]
fn books_work_their_pairs_orders() {
    let root = common::real_data_dir();
    if !root.join("freqtrade-binance-1h").is_dir() {
        assert!(std::env::var_os("CI").is_none(), "{} is missing", root.display());
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_basis"))
        .current_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/examples"))
        .args(["backtest", "--config", "portfolio-btc-eth-1h.toml", "--output-dir", out.path().to_str().unwrap(), "--name", "book"])
        .args(["--set", "costs.max_participation=0.01", "--set", "portfolio.initial_capital=100000000", "--set", "run.report=false"])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.path().join("book/metrics.json")).unwrap()).unwrap();
    let execution = &metrics["book"]["execution"];
    assert!(execution["orders_worked"].as_u64().unwrap() >= 2, "{execution}");
    assert!(execution["days_partially_hedged"].as_f64().unwrap() > 7.0, "{execution}");
    use polars::prelude::*;
    let ledger = ParquetReader::new(std::fs::File::open(out.path().join("book/ledger.parquet")).unwrap()).finish().unwrap();
    let equity: Vec<f64> = ledger.column("equity").unwrap().f64().unwrap().into_no_null_iter().collect();
    let parts = ["pnl_spot", "pnl_perp", "pnl_funding", "pnl_fees", "pnl_slippage", "pnl_staking", "pnl_borrow", "pnl_liquidation", "pnl_coin_margin", "pnl_interest"];
    let columns: Vec<Vec<f64>> = parts.iter().map(|c| ledger.column(c).unwrap().f64().unwrap().into_no_null_iter().collect()).collect();
    for i in 1..equity.len() {
        let sum: f64 = columns.iter().map(|c| c[i]).sum();
        assert!((equity[i] - equity[i - 1] - sum).abs() <= 1e-9 * equity[i - 1], "step {i}: equity change {} but components {sum}", equity[i] - equity[i - 1]);
    }
}

/// A liquidation ends the order being worked: perp first, the spot two bars later; a rally to
/// 150 liquidates the 5x short perp before the spot fills, and nothing is bought after it (the
/// pair stays flat, as `reenter_after_liquidation = false` says).
#[test]
fn a_liquidation_ends_the_worked_order() {
    let closes = [100.0, 100.0, 150.0, 150.0, 150.0];
    let timeline = flat_timeline(&closes, &closes, &closes, HOUR);
    let mut params = plain_params(10_000.0);
    params.leverage = 5.0;
    params.execution = Execution { leg_delay_ms: 2 * HOUR, first_leg: FirstLeg::Perp, ..Execution::AT_ONCE };
    let mut ledger = FullLedger::default();
    let summary = basis::sim::run(&timeline, &params, &mut ledger);
    assert_eq!(summary.liquidations, 1);
    assert!(summary.trades.iter().all(|t| t.leg == "perp"), "no spot bought once the perp was liquidated: {:?}", summary.trades);
    let last = ledger.rows().last().unwrap();
    assert_eq!((last.spot_qty, last.perp_qty), (0.0, 0.0));
}

/// A reverse carry's worked sales borrow no more than the lender has at each close: an entry of
/// 50 coins at 10 coins a bar, the lender's limit falling from 50 to 25 at the third close.
#[test]
fn worked_sales_respect_the_lender() {
    let prices = [100.0; 8];
    let mut timeline = flat_timeline(&prices, &prices, &prices, HOUR);
    timeline.spot_volume = vec![100.0; 8];
    timeline.perp_volume = vec![100.0; 8];
    let mut params = plain_params(10_000.0);
    params.entry.direction = basis::config::Direction::Reverse;
    params.execution = Execution { max_participation: 0.1, ..Execution::AT_ONCE };
    let limit = vec![50.0, 50.0, 25.0, 25.0, 25.0, 25.0, 25.0, 25.0];
    params.borrow_available = Some(std::sync::Arc::new(limit.clone()));
    let mut ledger = FullLedger::default();
    let summary = basis::sim::run(&timeline, &params, &mut ledger);
    for (i, row) in ledger.rows().enumerate() {
        assert!(-row.spot_qty <= limit[i] + 1e-9, "step {i}: {} borrowed, the lender has {}", -row.spot_qty, limit[i]);
    }
    let rows: Vec<_> = ledger.rows().collect();
    assert_close(rows[4].spot_qty, -25.0, 1e-9);
    assert_close(rows[4].perp_qty, 25.0, 1e-9);
    assert!(summary.borrow_capped >= 1);
}
