//! Portfolios: identities against single-pair runs, hand-computed margin-mode cases on a
//! scripted path, attribution that closes for the book, every pair, leg and account on random
//! paths, and BTC+ETH on Binance hourly history under isolated and cross margin.

mod common;

use basis::config::book::BookConfig;
use basis::config::{Direction, EntryMode, TopUpSource};
use basis::data::align::{MarketTimeline, Settlement};
use basis::measure::book::BookLedger;
use basis::measure::ledger::FullLedger;
use basis::model::StepRow;
use basis::sim::margin::{Brackets, Collateral};
use basis::sim::portfolio::{self, AccountRow, AccountSpec, Allocation, BookParams, BookRecorder, MarginMode, PairSpec};
use basis::sim::{self, EngineParams};
use common::*;
use proptest::prelude::*;

fn account(name: &str, mode: MarginMode) -> AccountSpec {
    AccountSpec { name: name.into(), mode, liquidation_threshold: if mode == MarginMode::Portfolio { 1.05 } else { 1.0 } }
}

fn book(capital: f64, weights: Vec<f64>, rebalance_every_ms: Option<i64>) -> BookParams {
    BookParams { initial_capital: capital, allocation: Allocation::Weights(weights), rebalance_every_ms, universe: None }
}

fn pair<'a>(name: &str, timeline: &'a MarketTimeline, params: EngineParams, spot_account: usize, perp_account: usize) -> PairSpec<'a> {
    PairSpec { name: name.into(), timeline, params, spot_account, perp_account, spot_collateral: Collateral::default(), universe: None }
}

/// The hand-computed cases' market: spot = perp = mark, each bar's high the larger and low the
/// smaller of its open (the previous close) and close.
fn scripted(prices: &[f64]) -> MarketTimeline {
    let highs: Vec<f64> = prices.iter().enumerate().map(|(i, p)| if i == 0 { *p } else { p.max(prices[i - 1]) }).collect();
    let lows: Vec<f64> = prices.iter().enumerate().map(|(i, p)| if i == 0 { *p } else { p.min(prices[i - 1]) }).collect();
    flat_timeline(prices, &highs, &lows, HOUR)
}

/// 2x short perps, one tier at 1 % maintenance, no fees, no liquidation fee, no top-ups; the
/// surviving spot is sold at the close of a liquidation.
fn hand_params(capital: f64) -> EngineParams {
    let mut params = plain_params(capital);
    params.leverage = 2.0;
    params.liquidation.fee_rate = 0.0;
    params.brackets = Brackets::new(vec![basis::config::Bracket { notional_floor: 0.0, mmr: 0.01, cum: 0.0 }]);
    params.close_at_end = false;
    params
}

const A_PRICES: [f64; 6] = [100.0, 140.0, 150.0, 200.0, 220.0, 220.0];
const B_PRICES: [f64; 6] = [100.0, 80.0, 80.0, 80.0, 80.0, 80.0];

fn liquidations(ledger: &BookLedger, pair: usize) -> Vec<usize> {
    (0..ledger.pairs[pair].len()).filter(|&i| ledger.pairs[pair].row(i).events & basis::model::events::LIQUIDATION != 0).collect()
}

/// A pair building a reverse carry over three bars (`max_participation` 0.5 of 40 spot and
/// 60 perp a bar: tests/execution.rs's entry, reversed) reads LEGGING on its own rows, and the
/// book, holding only it, is in the reverse carry those steps (not the long one), as the pair's
/// own run counts its time.
#[test]
fn a_book_building_a_reverse_carry_is_in_the_reverse_carry_while_its_order_is_worked() {
    let prices = [100.0, 98.0, 99.0, 99.0, 99.0];
    let mut timeline = flat_timeline(&prices, &prices, &prices, HOUR);
    timeline.spot_volume = vec![40.0; 5];
    timeline.perp_volume = vec![60.0; 5];
    let mut params = plain_params(10_000.0);
    params.entry.direction = Direction::Reverse;
    params.execution = basis::sim::execution::Execution { max_participation: 0.5, ..basis::sim::execution::Execution::AT_ONCE };
    let mut ledger = BookLedger::with_capacity(1, 1, prices.len());
    let summary = portfolio::run(&book(10_000.0, vec![1.0], None), &[account("venue", MarginMode::Isolated)], &[pair("A", &timeline, params.clone(), 0, 0)], &mut ledger);
    let pair_states: Vec<i8> = ledger.pairs[0].rows().map(|r| r.state).collect();
    assert_eq!(&pair_states[..2], &[basis::model::state::LEGGING, basis::model::state::LEGGING], "{pair_states:?}");
    let book_states: Vec<i8> = ledger.book.rows().map(|r| r.state).collect();
    assert_eq!(&book_states[..3], &[basis::model::state::REVERSE_CARRY; 3], "{book_states:?}");
    // The book's time in state is the pair's own run's.
    let single = sim::run(&timeline, &params, &mut FullLedger::default());
    assert_eq!(summary.book.steps_in_state, single.steps_in_state);
    assert_eq!(summary.book.steps_in_state[1], 0, "no step in the long carry");
}

/// The same two-pair book (A rallies 100 → 220, B falls 100 → 80; 1,000 each at 2x) under each
/// margin mode.
///
/// By hand: each pair buys q spot and shorts q perp with q·100 + q·100/2 = 1,000, so q = 20/3
/// and each perp's margin is m = q·50 = 1,000/3.
/// - Isolated: A's liquidation price is (m + q·100)/(q·1.01) = 1,000/(20/3·1.01) = 148.5149
///   (maintenance 1 % of q·P); the bar to 150 (step 2) touches it. B, a profitable short, never.
/// - Cross: one wallet. At step 2 (A 150, B 80): 2m − q·50 + q·20 = 466.67 against maintenance
///   0.01·q·230 = 15.33: alive. At step 3 (A 200): 2m − q·100 + q·20 = 133.33 against 18.67:
///   alive. On the bar to 220 (step 4) the wallet 133.33 − q·20·θ meets 0.01·q·(280 + 20θ) at
///   θ = 114.667/134.667 = 0.851485: A closes at 200 + 20θ = 217.0297, B at 80, both at step 4.
/// - Portfolio (haircut 0.9, threshold 1.05): the perp needs cash margin only beyond 0.9 of the
///   spot, max(0, 50 − 90) = 0, so q = 1,000/100 = 10 with no margin posted; at A 220, B 80
///   the account holds 0.9·10·(220 + 80) − 10·120 + 10·20 = 1,700 against 1.05·0.01·10·300 =
///   31.5: never liquidated.
#[test]
fn the_same_book_under_isolated_cross_and_portfolio_margin() {
    let a = scripted(&A_PRICES);
    let b = scripted(&B_PRICES);
    let q = 20.0 / 3.0;

    // Isolated.
    let mut ledger = BookLedger::with_capacity(2, 1, 6);
    let pairs = [pair("A", &a, hand_params(1000.0), 0, 0), pair("B", &b, hand_params(1000.0), 0, 0)];
    let summary = portfolio::run(&book(2000.0, vec![0.5, 0.5], None), &[account("venue", MarginMode::Isolated)], &pairs, &mut ledger);
    assert_close(ledger.pairs[0].row(0).perp_qty, -q, 1e-12);
    assert_close(ledger.pairs[0].row(0).perp_margin, 1000.0 / 3.0, 1e-9);
    assert_eq!(liquidations(&ledger, 0), vec![2], "A alone is liquidated on the bar to 150");
    assert_eq!(liquidations(&ledger, 1), Vec::<usize>::new());
    let fill = summary.pairs[0].trades.iter().find(|t| t.reason == basis::model::TradeReason::Liquidation).unwrap();
    assert_close(fill.fill_price, 1000.0 / (q * 1.01), 1e-9);
    assert_eq!(summary.accounts[0].first_liquidation_ms, Some(a.ts_ms[2]));

    // Cross.
    let mut ledger = BookLedger::with_capacity(2, 1, 6);
    let summary = portfolio::run(&book(2000.0, vec![0.5, 0.5], None), &[account("venue", MarginMode::Cross)], &pairs, &mut ledger);
    assert_eq!(liquidations(&ledger, 0), vec![4], "the cross wallet carries A until the bar to 220");
    assert_eq!(liquidations(&ledger, 1), vec![4], "and closes B with it");
    let theta = 114.666_666_666_666_67 / 134.666_666_666_666_67;
    let fill_a = summary.pairs[0].trades.iter().find(|t| t.reason == basis::model::TradeReason::Liquidation).unwrap();
    let fill_b = summary.pairs[1].trades.iter().find(|t| t.reason == basis::model::TradeReason::Liquidation).unwrap();
    assert_close(fill_a.fill_price, 200.0 + 20.0 * theta, 1e-9);
    assert_close(fill_b.fill_price, 80.0, 1e-12);
    // At the breach the wallet equals maintenance: what is left is 0.01·q·(A + B) = 19.802.
    let wallet_left = ledger.pairs[0].row(4).cash + ledger.pairs[1].row(4).cash - (0.0 - 0.0);
    let spot_sold = q * 220.0 + q * 80.0; // both spot legs sold at the step's close ("close")
    assert_close(wallet_left - spot_sold, 0.01 * q * (200.0 + 20.0 * theta + 80.0), 1e-6);
    assert_eq!(summary.accounts[0].liquidations, 1);

    // Portfolio.
    let mut params_a = hand_params(1000.0);
    params_a.spot_collateral_haircut = 0.9;
    let mut params_b = hand_params(1000.0);
    params_b.spot_collateral_haircut = 0.9;
    let pairs = [PairSpec { spot_collateral: Collateral::flat(0.9), ..pair("A", &a, params_a, 0, 0) }, PairSpec { spot_collateral: Collateral::flat(0.9), ..pair("B", &b, params_b, 0, 0) }];
    let mut ledger = BookLedger::with_capacity(2, 1, 6);
    let summary = portfolio::run(&book(2000.0, vec![0.5, 0.5], None), &[account("venue", MarginMode::Portfolio)], &pairs, &mut ledger);
    assert_close(ledger.pairs[0].row(0).spot_qty, 10.0, 1e-12);
    assert_close(ledger.pairs[0].row(0).perp_margin, 0.0, 1e-12);
    assert_eq!(summary.accounts[0].liquidations, 0);
    let last: &AccountRow = ledger.accounts[0].last().unwrap();
    assert_close(last.margin_balance, 0.9 * 10.0 * 300.0 - 10.0 * 120.0 + 10.0 * 20.0, 1e-9);
    assert_close(last.maintenance, 0.01 * 10.0 * 300.0, 1e-12);
}

/// A pair whose perp sits in a cross account reports the account's liquidation: the price of
/// its own asset at which the account breaches, the other prices held (expected values:
/// `tests/expected/engine_truth.py`, section J). The isolated formula would say 148.51 for A at
/// step 0; the account reaches maintenance only at 197.03. The account's own distance is the
/// move of every price against it, and the book's smallest distance is the account's.
#[test]
fn cross_pairs_report_the_accounts_liquidation_price_and_distance() {
    let a = scripted(&A_PRICES);
    let b = scripted(&B_PRICES);
    let pairs = [pair("A", &a, hand_params(1000.0), 0, 0), pair("B", &b, hand_params(1000.0), 0, 0)];
    let mut ledger = BookLedger::with_capacity(2, 1, 6);
    let summary = portfolio::run(&book(2000.0, vec![0.5, 0.5], None), &[account("venue", MarginMode::Cross)], &pairs, &mut ledger);
    let (a0, b0) = (ledger.pairs[0].row(0), ledger.pairs[1].row(0));
    assert_close(a0.liquidation_price, 197.029703, 1e-6); // J.step0 P_A
    assert_close(a0.liquidation_distance, 0.9702970297, 1e-9);
    assert_close(b0.liquidation_price, 197.029703, 1e-6);
    assert_close(ledger.accounts[0][0].liquidation_distance, 0.4851485149, 1e-9); // J.step0 account
    assert_close(ledger.book.row(0).liquidation_distance, 0.4851485149, 1e-9);
    let (a1, b1) = (ledger.pairs[0].row(1), ledger.pairs[1].row(1));
    assert_close(a1.liquidation_price, 217.029703, 1e-6); // J.step1 P_A
    assert_close(a1.liquidation_distance, 0.5502121641, 1e-9);
    assert_close(b1.liquidation_price, 157.029703, 1e-6); // J.step1 P_B
    assert_close(b1.liquidation_distance, 0.9628712871, 1e-9);
    assert_close(ledger.accounts[0][1].liquidation_distance, 0.3501350135, 1e-9); // J.step1 account
    // Never negative while the account lives; the book's smallest is the account's.
    for i in 0..6 {
        for k in 0..2 {
            let d = ledger.pairs[k].row(i).liquidation_distance;
            assert!(d.is_nan() || d >= 0.0, "pair {k} step {i}: {d}");
        }
    }
    assert_eq!(summary.book.min_liquidation_distance, summary.accounts[0].min_liquidation_distance);
    assert!(summary.book.min_liquidation_distance >= 0.0);
}

/// Top-ups in a cross account wait for the account, and use the margin it already holds first
/// (section J): 2x, top-up below 10 %, selling spot. At step 1 A's isolated-equivalent distance
/// is 6.1 % (148.51 vs 140) but the account's is 35 %: nothing is sold. At step 3 (A 200, B 80)
/// the account's is 6.08 %: B's 200 of spare margin moves to A, and A sells 2.6667 spot for the
/// other 800 (800 = x·(200 + 200/2)).
#[test]
fn cross_top_ups_wait_for_the_account_and_pool_its_free_margin_first() {
    let a = scripted(&A_PRICES);
    let b = scripted(&B_PRICES);
    let make = || {
        let mut p = hand_params(1000.0);
        p.top_up_source = TopUpSource::SellSpot;
        p.top_up_distance = 0.10;
        p
    };
    let pairs = [pair("A", &a, make(), 0, 0), pair("B", &b, make(), 0, 0)];
    let mut ledger = BookLedger::with_capacity(2, 1, 6);
    let summary = portfolio::run(&book(2000.0, vec![0.5, 0.5], None), &[account("venue", MarginMode::Cross)], &pairs, &mut ledger);
    let top_ups: Vec<(usize, &basis::model::Trade)> = (0..2).flat_map(|k| summary.pairs[k].trades.iter().filter(|t| t.reason == basis::model::TradeReason::TopUp).map(move |t| (k, t))).collect();
    assert!(top_ups.iter().all(|(_, t)| t.step == 3), "no top-up before the account is near: {top_ups:?}");
    // (J.step3 account: 6.08 % before the decisions; the top-up leaves the account farther.)
    assert!(ledger.accounts[0][3].liquidation_distance > 0.10);
    assert_close(ledger.transfers_in[0][3], 200.0, 1e-9); // J.step3 B spare, pooled to A
    assert_close(ledger.transfers_in[1][3], -200.0, 1e-9);
    let (k, sold) = top_ups.iter().find(|(_, t)| t.leg == "spot").unwrap();
    assert_eq!(*k, 0, "only A sells spot");
    assert_close(sold.qty, -2.666666667, 1e-8); // J.step3 A spot sold
    assert_eq!(top_ups.iter().filter(|(k, _)| *k == 1).count(), 0, "B does not sell");
}

/// The same account (section K) with pair A's market cost model giving an impact of 0.001 per
/// √coin at the breach's step (none at the entry's): A's perp, a market order of its 20/3 coins,
/// fills at 149 × (1 + 0.001 × √(20/3)) = 149.3847…, no further than its bar's high of 150, as
/// an isolated perp's liquidation would; B's fill stays at 51.
#[test]
fn a_shared_account_s_liquidation_slips_each_perp_s_impact() {
    let a = scripted(&[100.0, 150.0, 150.0]);
    let b = scripted(&[100.0, 50.0, 50.0]);
    let mut with_impact = hand_params(1000.0);
    with_impact.market_costs = Some(std::sync::Arc::new(basis::model::MarketCosts { perp_impact: vec![0.0, 0.001, 0.0], ..Default::default() }));
    let mut reverse = hand_params(1000.0);
    reverse.entry.direction = Direction::Reverse;
    let pairs = [pair("A", &a, with_impact, 0, 0), pair("B", &b, reverse, 0, 0)];
    let mut ledger = BookLedger::with_capacity(2, 1, 3);
    let summary = portfolio::run(&book(2000.0, vec![0.5, 0.5], None), &[account("venue", MarginMode::Cross)], &pairs, &mut ledger);
    let fill = |k: usize| summary.pairs[k].trades.iter().find(|t| t.reason == basis::model::TradeReason::Liquidation && t.leg == "perp").unwrap().fill_price;
    assert_close(fill(0), 149.0 * (1.0 + 0.001 * (20.0f64 / 3.0).sqrt()), 1e-9);
    assert_close(fill(1), 51.0, 1e-9);
}

/// A long carry beside a reverse carry in one cross account (section K): A's short perp is hurt
/// by its high, B's long perp by its low. On all highs or all lows the account keeps 50 per unit
/// against 2.5 or 1.5; at the corner (A 150, B 50) it has nothing, and it breaches at θ = 0.98.
#[test]
fn a_mixed_cross_account_is_checked_at_its_worst_corner() {
    let a = scripted(&[100.0, 150.0, 150.0]);
    let b = scripted(&[100.0, 50.0, 50.0]);
    let mut reverse = hand_params(1000.0);
    reverse.entry.direction = Direction::Reverse;
    let pairs = [pair("A", &a, hand_params(1000.0), 0, 0), pair("B", &b, reverse, 0, 0)];
    let mut ledger = BookLedger::with_capacity(2, 1, 3);
    let summary = portfolio::run(&book(2000.0, vec![0.5, 0.5], None), &[account("venue", MarginMode::Cross)], &pairs, &mut ledger);
    assert_close(ledger.pairs[1].row(0).perp_qty, 20.0 / 3.0, 1e-12);
    assert_eq!(liquidations(&ledger, 0), vec![1]);
    assert_eq!(liquidations(&ledger, 1), vec![1]);
    let fill = |k: usize| summary.pairs[k].trades.iter().find(|t| t.reason == basis::model::TradeReason::Liquidation && t.leg == "perp").unwrap().fill_price;
    assert_close(fill(0), 149.0, 1e-9); // K.A fill
    assert_close(fill(1), 51.0, 1e-9); // K.B fill
    // The wallet keeps the maintenance at the breach, 0.01·(20/3)·200 = 13.33 (K.wallet left);
    // the spot legs' +333.33 each and the perps' −326.67 each leave the book 2,000 + 13.33
    // once both spot legs are unwound at the close.
    assert_close(ledger.book.row(1).equity, 2000.0 + 13.333333333, 1e-6);
}

/// One Binance cross account, two short perps, the maintenance tier changing between entry and
/// the breach, and a clearance fee capped at what is left (section I of the script).
#[test]
fn a_cross_breach_at_a_new_tier_takes_a_capped_fee() {
    let a = flat_timeline(&[100_000.0, 140_000.0], &[100_000.0, 140_000.0], &[100_000.0, 100_000.0], HOUR);
    let make = || {
        let mut p = plain_params(60_000.0);
        p.leverage = 3.0;
        p.brackets = Brackets::new(basis::config::default_brackets());
        p.close_at_end = false;
        p
    };
    let pairs = [pair("A", &a, make(), 0, 0), pair("B", &a, make(), 0, 0)];
    let mut ledger = BookLedger::with_capacity(2, 1, 2);
    let summary = portfolio::run(&book(120_000.0, vec![0.5, 0.5], None), &[account("venue", MarginMode::Cross)], &pairs, &mut ledger);
    assert_close(ledger.pairs[0].row(0).perp_qty, -0.45, 1e-12);
    assert_close(ledger.pairs[0].row(0).liquidation_price, 165_550.0276, 1e-4); // I.step0 P_A
    assert_close(ledger.accounts[0][0].liquidation_distance, 0.3278054174, 1e-9); // I.step0 account
    for k in 0..2 {
        let fill = summary.pairs[k].trades.iter().find(|t| t.reason == basis::model::TradeReason::Liquidation).unwrap();
        assert_close(fill.fill_price, 132_780.5417, 1e-4); // I.breach price
        assert_close(fill.fee, 248.7562189, 1e-6); // I.each pair's share of the capped fee
    }
    assert_close(ledger.book.row(1).equity, 126_000.0, 1e-6); // I.book equity after

    // N: the same breach with fills slipping 10 bp past it (the bar's high, 140,000, does not
    // bind): the slip comes out of the wallet before the venue's capped fee.
    let slipping = || {
        let mut p = make();
        p.liquidation.fill_slippage = 0.001;
        p
    };
    let pairs = [pair("A", &a, slipping(), 0, 0), pair("B", &a, slipping(), 0, 0)];
    let mut ledger = BookLedger::with_capacity(2, 1, 2);
    let summary = portfolio::run(&book(120_000.0, vec![0.5, 0.5], None), &[account("venue", MarginMode::Cross)], &pairs, &mut ledger);
    let fills: Vec<_> = (0..2).map(|k| summary.pairs[k].trades.iter().find(|t| t.reason == basis::model::TradeReason::Liquidation).unwrap().clone()).collect();
    for fill in &fills {
        assert_close(fill.reference_price, 132_780.5417, 1e-4); // I.breach price
        assert_close(fill.fill_price, 132_913.3223, 1e-4); // N.fill
    }
    assert_close(fills[0].slippage + fills[1].slippage, 119.5024876, 1e-6); // N.slippage loss
    assert_close(fills[0].fee + fills[1].fee, 378.0099502, 1e-6); // N.fee taken (capped)
    assert_close(ledger.book.row(1).equity, 126_000.0, 1e-6); // the wallet is used up either way
}

/// A 50 M long carry in one portfolio account (section M of the script): with a flat 0.95
/// haircut the spot keeps covering the short perp's losses up to a 36.9× rally; on tiers by coin
/// quantity (Bybit's illustration: 0.98 for the first 10 BTC down to 0 above 50) only 44.8 of
/// its 250 BTC count, and the account breaches at 242,424 on the way to 300,000.
#[test]
fn tiered_collateral_liquidates_a_large_book_far_sooner_than_a_flat_haircut() {
    use basis::sim::margin::CollateralTier;
    let tiers = [(0.0, 0.98), (10.0, 0.95), (20.0, 0.90), (30.0, 0.85), (40.0, 0.80), (50.0, 0.0)];
    let tiered = Collateral::tiered(tiers.iter().map(|&(floor, ratio)| CollateralTier { floor, ratio }).collect(), true);
    assert_close(tiered.value(250.0, 1.0), 44.8, 1e-9); // M.tiered: BTC counted of 250
    let run = |prices: &[f64], collateral: Collateral| {
        let t = scripted(prices);
        let mut params = hand_params(50_000_000.0);
        params.leverage = 1.0;
        params.brackets = Brackets::new(vec![basis::config::Bracket { notional_floor: 0.0, mmr: 0.004, cum: 0.0 }]);
        let pairs = [PairSpec { spot_collateral: collateral, ..pair("BTC", &t, params, 0, 0) }];
        let mut ledger = BookLedger::with_capacity(1, 1, prices.len());
        let summary = portfolio::run(&book(50_000_000.0, vec![1.0], None), &[account("pm", MarginMode::Portfolio)], &pairs, &mut ledger);
        (ledger, summary)
    };
    let (ledger, summary) = run(&[100_000.0, 300_000.0], tiered.clone());
    assert_close(ledger.pairs[0].row(0).spot_qty, 250.0, 1e-9);
    assert_close(ledger.pairs[0].row(0).perp_margin, 25_000_000.0, 1e-6);
    let fill = summary.pairs[0].trades.iter().find(|t| t.reason == basis::model::TradeReason::Liquidation && t.leg == "perp").expect("liquidated");
    assert_close(fill.fill_price, 242_424.2424, 1e-3); // M.tiered: breach price
    // The account's own-asset liquidation price at entry says the same.
    assert_close(ledger.pairs[0].row(0).liquidation_price, 242_424.2424, 1e-3);
    // Flat 0.95: nothing on the way to 300,000; the breach is at 3,690,036.9.
    let (ledger, summary) = run(&[100_000.0, 300_000.0], Collateral::flat(0.95));
    assert_eq!(summary.accounts[0].liquidations, 0);
    assert_close(ledger.pairs[0].row(0).liquidation_price, 3_690_036.9, 1e-1); // M.flat 0.95
}

/// Margin freed by the haircut: a pair whose spot covers the perp's margin at 0.95 posts no cash
/// margin, so the same capital carries q = C/S instead of C/(S + S/leverage); at 1x the notional
/// doubles less the haircut's shortfall: margin per unit = max(0, 100 − 95) = 5, q = 1,000/105.
#[test]
fn collateral_haircuts_free_margin() {
    let a = scripted(&[100.0, 100.0, 100.0]);
    let mut isolated = hand_params(1000.0);
    isolated.leverage = 1.0;
    let mut collateral = isolated.clone();
    collateral.spot_collateral_haircut = 0.95;
    let mut ledger = FullLedger::default();
    sim::run(&a, &isolated, &mut ledger);
    assert_close(ledger.row(0).spot_qty, 1000.0 / 200.0, 1e-12);
    let mut ledger = FullLedger::default();
    sim::run(&a, &collateral, &mut ledger);
    assert_close(ledger.row(0).spot_qty, 1000.0 / 105.0, 1e-12);
    assert_close(ledger.row(0).perp_margin, 5.0 * 1000.0 / 105.0, 1e-9);
}

/// A book of one isolated pair is the single-pair run, row for row.
#[test]
fn a_book_of_one_pair_is_the_single_run() {
    let prices: Vec<f64> = (0..200).map(|i| 100.0 * (1.0 + 0.3 * ((i as f64) / 9.0).sin())).collect();
    let highs: Vec<f64> = prices.iter().map(|p| p * 1.02).collect();
    let lows: Vec<f64> = prices.iter().map(|p| p * 0.98).collect();
    let mut t = flat_timeline(&prices, &highs, &lows, HOUR);
    t.funding = (1..200).step_by(8).map(|i| event_at(&t, i, 0.0001 * ((i % 5) as f64 - 1.0), prices[i - 1])).collect();
    let mut params = plain_params(50_000.0);
    params.leverage = 3.0;
    params.top_up_source = TopUpSource::SellSpot;
    params.top_up_distance = 0.1;
    params.costs.spot_fee = 0.001;
    params.costs.perp_fee = 0.0005;
    let mut single = FullLedger::default();
    let single_summary = sim::run(&t, &params, &mut single);
    let mut ledger = BookLedger::with_capacity(1, 1, t.len());
    let summary = portfolio::run(&book(50_000.0, vec![1.0], None), &[account("v", MarginMode::Isolated)], &[pair("X", &t, params.clone(), 0, 0)], &mut ledger);
    for i in 0..t.len() {
        let (a, b) = (single.row(i), ledger.book.row(i));
        assert_close(b.equity, a.equity, 1e-9);
        assert_close(b.pnl.total(), a.pnl.total(), 1e-9);
        assert_close(ledger.pairs[0].row(i).perp_qty, a.perp_qty, 1e-12);
    }
    assert_eq!(summary.pairs[0].trades.len(), single_summary.trades.len());
    assert_close(summary.book.final_equity, single_summary.final_equity, 1e-9);
}

/// Two isolated pairs with fixed capital splits are the two single runs added together.
#[test]
fn two_isolated_pairs_are_the_sum_of_their_single_runs() {
    let a = scripted(&A_PRICES);
    let b = scripted(&B_PRICES);
    let (pa, pb) = (hand_params(300.0), hand_params(700.0));
    let (mut la, mut lb) = (FullLedger::default(), FullLedger::default());
    sim::run(&a, &pa, &mut la);
    sim::run(&b, &pb, &mut lb);
    let mut ledger = BookLedger::with_capacity(2, 1, 6);
    portfolio::run(&book(1000.0, vec![0.3, 0.7], None), &[account("v", MarginMode::Isolated)], &[pair("A", &a, pa, 0, 0), pair("B", &b, pb, 0, 0)], &mut ledger);
    for i in 0..6 {
        assert_close(ledger.book.row(i).equity, la.row(i).equity + lb.row(i).equity, 1e-9);
        assert_close(ledger.book.row(i).pnl.funding + ledger.book.row(i).pnl.perp, la.row(i).pnl.funding + la.row(i).pnl.perp + lb.row(i).pnl.funding + lb.row(i).pnl.perp, 1e-9);
    }
}

/// Rows as the book saw them, for the invariants.
#[derive(Default)]
struct Rows {
    pairs: Vec<Vec<(StepRow, f64)>>,
    accounts: Vec<Vec<AccountRow>>,
    book: Vec<StepRow>,
}

impl BookRecorder for Rows {
    fn pair(&mut self, pair: usize, row: &StepRow, transfer_in: f64) {
        if self.pairs.len() <= pair {
            self.pairs.resize(pair + 1, Vec::new());
        }
        self.pairs[pair].push((*row, transfer_in));
    }
    fn account(&mut self, account: usize, row: &AccountRow) {
        if self.accounts.len() <= account {
            self.accounts.resize(account + 1, Vec::new());
        }
        self.accounts[account].push(*row);
    }
    fn book(&mut self, row: &StepRow) {
        self.book.push(*row);
    }
}

fn random_timeline(returns: &[f64], basis: &[f64], range: &[f64], rates: &[f64]) -> MarketTimeline {
    let mut price = 1000.0;
    let spot: Vec<f64> = returns.iter().map(|r| { price *= r.exp(); price }).collect();
    let mark: Vec<f64> = spot.iter().zip(basis).map(|(s, b)| s * (1.0 + b)).collect();
    let high: Vec<f64> = mark.iter().zip(range).map(|(m, r)| m * (1.0 + r)).collect();
    let low: Vec<f64> = mark.iter().zip(range).map(|(m, r)| m * (1.0 - r)).collect();
    let mut t = flat_timeline(&spot, &high, &low, HOUR);
    t.mark = mark.clone();
    t.perp = mark.clone();
    t.spot_high = spot.iter().zip(range).map(|(s, r)| s * (1.0 + r)).collect();
    t.spot_low = spot.iter().zip(range).map(|(s, r)| s * (1.0 - r)).collect();
    t.staking_apr = vec![0.03; spot.len()];
    t.funding = (1..spot.len()).step_by(4).map(|i| Settlement { settle_ms: t.ts_ms[i], rate: rates[i], interval_hours: 8.0, price: mark[i - 1] }).collect();
    t
}

fn mode_strategy() -> impl Strategy<Value = MarginMode> {
    prop_oneof![Just(MarginMode::Isolated), Just(MarginMode::Cross), Just(MarginMode::Portfolio)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// On random paths, under every margin mode, with allocation rebalances: each step's book
    /// PnL is its change in equity; each pair's is its change less the capital moved in; the
    /// legs split each pair exactly; a single-account book's account equity is the book's; and
    /// no account ends a step below zero.
    #[test]
    fn attribution_closes_for_book_pairs_legs_and_accounts(
        n in 20usize..90,
        seed in prop::collection::vec((-0.15f64..0.2, -0.01f64..0.01, 0.0f64..0.15, -0.002f64..0.003), 90),
        seed_b in prop::collection::vec((-0.2f64..0.15, -0.01f64..0.01, 0.0f64..0.15, -0.002f64..0.003), 90),
        mode in mode_strategy(),
        leverage in 1.0f64..8.0,
        weight in 0.1f64..0.9,
        rebalance_steps in prop::option::of(3i64..20),
        reverse in prop::bool::ANY,
        reverse_b in prop::bool::ANY,
        top_up in prop_oneof![Just(TopUpSource::None), Just(TopUpSource::SellSpot), Just(TopUpSource::ReserveThenSpot)],
    ) {
        let unzip = |s: &[(f64, f64, f64, f64)]| -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
            (s[..n].iter().map(|x| x.0).collect(), s[..n].iter().map(|x| x.1).collect(), s[..n].iter().map(|x| x.2).collect(), s[..n].iter().map(|x| x.3).collect())
        };
        let (r, b, g, f) = unzip(&seed);
        let ta = random_timeline(&r, &b, &g, &f);
        let (r, b, g, f) = unzip(&seed_b);
        let tb = random_timeline(&r, &b, &g, &f);
        let capital = 100_000.0;
        // Each pair its own direction, so one cross account mixes long and reverse carries; a
        // borrowed spot leg in a portfolio account is refused by the config (not modelled).
        let make = |share: f64, reverse: bool| {
            let mut p = plain_params(capital * share);
            p.leverage = leverage;
            p.top_up_source = top_up;
            p.top_up_distance = 0.05;
            p.reserve_fraction = 0.1;
            p.costs.spot_fee = 0.001;
            p.costs.perp_fee = 0.0005;
            p.costs.spot_slippage = 0.0002;
            p.borrow_apr = 0.1;
            p.reenter_after_liquidation = true;
            p.brackets = Brackets::new(basis::config::default_brackets());
            if reverse && mode != MarginMode::Portfolio {
                p.entry.direction = Direction::Reverse;
            }
            p.entry.mode = EntryMode::AlwaysOn;
            if mode == MarginMode::Portfolio {
                p.spot_collateral_haircut = 0.9;
                p.quote_borrow_apr = 0.08;
            }
            p
        };
        let haircut = if mode == MarginMode::Portfolio { 0.9 } else { 0.0 };
        let pairs = [
            PairSpec { spot_collateral: Collateral::flat(haircut), ..pair("A", &ta, make(weight, reverse), 0, 0) },
            PairSpec { spot_collateral: Collateral::flat(haircut), ..pair("B", &tb, make(1.0 - weight, reverse_b), 0, 0) },
        ];
        let mut rows = Rows::default();
        let summary = portfolio::run(&book(capital, vec![weight, 1.0 - weight], rebalance_steps.map(|s| s * HOUR)), &[account("v", mode)], &pairs, &mut rows);
        let mut previous = capital;
        for (i, row) in rows.book.iter().enumerate() {
            let scale = previous.abs().max(1.0);
            prop_assert!((row.equity - previous - row.pnl.total()).abs() <= 1e-9 * scale, "book step {i}: change {} vs components {}", row.equity - previous, row.pnl.total());
            prop_assert!(row.equity >= -1e-9 * scale, "book step {i}: equity {}", row.equity);
            prop_assert!((rows.accounts[0][i].equity - row.equity).abs() <= 1e-9 * scale, "account equity {} vs book {}", rows.accounts[0][i].equity, row.equity);
            prop_assert!(rows.accounts[0][i].equity >= -1e-9 * scale);
            previous = row.equity;
        }
        // Every pair row's liquidation price is the one its perp, margin and mark give at the
        // close, allocation rebalances included (a price decided before capital moved would be
        // stale): in an isolated account its own formula; in a cross account the price of its
        // own asset at which the whole account is at maintenance, the other pair at its mark.
        let brackets = Brackets::new(basis::config::default_brackets());
        for (k, pair_rows) in rows.pairs.iter().enumerate() {
            for (i, (row, _)) in pair_rows.iter().enumerate() {
                prop_assert!(row.liquidation_distance.is_nan() || row.liquidation_distance >= 0.0, "pair {k} step {i}: distance {}", row.liquidation_distance);
                if mode == MarginMode::Isolated {
                    let expected = brackets.liquidation_price(row.perp_qty, row.perp_margin, row.mark_price);
                    prop_assert!(row.liquidation_price.to_bits() == expected.to_bits(), "pair {k} step {i}: liquidation price {} vs {} from the row's perp {} and margin {}", row.liquidation_price, expected, row.perp_qty, row.perp_margin);
                } else if mode == MarginMode::Cross && row.perp_qty != 0.0 && row.liquidation_distance.is_finite() && row.liquidation_distance > 0.0 {
                    let other = &rows.pairs[1 - k][i].0;
                    let at = row.liquidation_price;
                    let balance = row.perp_margin + row.perp_qty * (at - row.mark_price) + other.perp_margin;
                    let maintenance = brackets.maintenance_margin(row.perp_qty.abs() * at) + if other.perp_qty != 0.0 { brackets.maintenance_margin(other.perp_qty.abs() * other.mark_price) } else { 0.0 };
                    prop_assert!((balance - maintenance).abs() <= 1e-6 * capital, "pair {k} step {i}: at its reported price {at} the account holds {balance} against maintenance {maintenance}");
                }
            }
        }
        for (i, account_row) in rows.accounts[0].iter().enumerate() {
            prop_assert!(account_row.liquidation_distance.is_nan() || account_row.liquidation_distance >= 0.0, "account step {i}: distance {}", account_row.liquidation_distance);
        }
        for (k, pair_rows) in rows.pairs.iter().enumerate() {
            let mut previous = summary.pairs[k].initial_capital;
            for (i, (row, transfer)) in pair_rows.iter().enumerate() {
                let scale = previous.abs().max(capital * 1e-3);
                prop_assert!((row.equity - previous - row.pnl.total() - transfer).abs() <= 1e-9 * scale.max(1.0) * 10.0, "pair {k} step {i}: change {} vs components {} + transfer {}", row.equity - previous, row.pnl.total(), transfer);
                previous = row.equity;
            }
        }
        let transfers: f64 = summary.transfers_in.iter().sum();
        prop_assert!(transfers.abs() <= 1e-6 * capital, "transfers between pairs net to zero: {transfers}");
    }
}

/// BTC+ETH on Binance hourly history (freqtrade directory), 3x, under isolated and cross margin
/// in one Binance account: the first liquidation under cross comes no earlier than under
/// isolated (a cross wallet breaches only when the sum of the perps' margins falls to the sum of
/// their maintenance, which needs at least one isolated position to breach first), and each
/// pair's first isolated liquidation is where its own perp hit its liquidation price.
#[test]
fn btc_eth_hourly_cross_survives_at_least_as_long_as_isolated() {
    let data = real_data_dir().join("freqtrade-binance-1h");
    let text = |mode: &str| {
        format!(
            r#"
[run]
name = "book"
report = false
[strategy]
mode = "always_on"
start = "2020-01-01T00:00:00Z"
[portfolio]
initial_capital = 1_000_000
leverage = 3.0
top_up_source = "none"
[[account]]
venue = "binance_usdm"
margin_mode = "{mode}"
{pairs}"#,
            pairs = btc_eth_pairs(&data)
        )
    };
    let load = |mode: &str| {
        let raw: toml::Value = toml::from_str(&text(mode)).unwrap();
        BookConfig::from_toml_value(&raw, "test", std::path::Path::new(".")).expect("valid portfolio config")
    };
    let isolated = basis::app::portfolio::run(&load("isolated")).expect("isolated book runs");
    let cross = basis::app::portfolio::run(&load("cross")).expect("cross book runs");
    let first = |r: &basis::app::portfolio::BookResult| r.summary.accounts[0].first_liquidation_ms.expect("3x with no top-ups is liquidated on this path");
    let (iso_ms, cross_ms) = (first(&isolated), first(&cross));
    eprintln!("first liquidation: isolated {}, cross {}", basis::time::format_ms(iso_ms), basis::time::format_ms(cross_ms));
    assert!(cross_ms >= iso_ms, "cross liquidated at {cross_ms}, before isolated at {iso_ms}");
    // The times README states.
    assert_eq!(basis::time::format_ms(iso_ms), "2020-01-15 01:00:00Z");
    assert_eq!(basis::time::format_ms(cross_ms), "2020-01-29 01:00:00Z");
    // Checked independently from the ledgers: under isolated margin the first liquidated pair's
    // perp had its bar's mark high at or above the liquidation price its previous close left.
    let ledger = &isolated.ledger;
    let step = (0..ledger.book.len()).find(|&i| ledger.book.row(i).ts_ms == iso_ms).unwrap();
    let hit = (0..2).any(|k| {
        let before = ledger.pairs[k].row(step - 1);
        before.perp_qty < 0.0 && isolated.timelines[k].mark_high[step] >= before.liquidation_price
    });
    assert!(hit, "isolated liquidation at step {step} without a touched liquidation price");
    // The cross account survived every step before its breach: at each close before it, its
    // margin balance stood above its maintenance.
    let account_rows = &cross.ledger.accounts[0];
    for row in account_rows.iter().take_while(|r| r.ts_ms < cross_ms) {
        if row.maintenance > 0.0 {
            assert!(row.margin_balance > row.maintenance, "at {} balance {} <= maintenance {}", row.ts_ms, row.margin_balance, row.maintenance);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// Spot on one venue, perps on another (margin top-ups sent with a delay and a fee): each
    /// account's change in equity is the PnL booked in it plus what moved in (allocation, and
    /// transfers between the legs' accounts), each leg's change is its PnL plus what moved in,
    /// and the book still closes with money in flight.
    #[test]
    fn accounts_and_legs_close_with_transfers_between_venues(
        n in 20usize..90,
        seed in prop::collection::vec((-0.15f64..0.2, -0.01f64..0.01, 0.0f64..0.15, -0.002f64..0.003), 90),
        seed_b in prop::collection::vec((-0.2f64..0.15, -0.01f64..0.01, 0.0f64..0.15, -0.002f64..0.003), 90),
        perp_mode in prop_oneof![Just(MarginMode::Isolated), Just(MarginMode::Cross)],
        leverage in 1.0f64..8.0,
        delay_hours in 0i64..6,
        fee in 0.0f64..20.0,
        rebalance_steps in prop::option::of(3i64..20),
    ) {
        let unzip = |s: &[(f64, f64, f64, f64)]| -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
            (s[..n].iter().map(|x| x.0).collect(), s[..n].iter().map(|x| x.1).collect(), s[..n].iter().map(|x| x.2).collect(), s[..n].iter().map(|x| x.3).collect())
        };
        let (r, b, g, f) = unzip(&seed);
        let ta = random_timeline(&r, &b, &g, &f);
        let (r, b, g, f) = unzip(&seed_b);
        let tb = random_timeline(&r, &b, &g, &f);
        let capital = 100_000.0;
        let make = |share: f64| {
            let mut p = plain_params(capital * share);
            p.leverage = leverage;
            p.top_up_source = TopUpSource::ReserveThenSpot;
            p.top_up_distance = 0.1;
            p.reserve_fraction = 0.2;
            p.costs.spot_fee = 0.001;
            p.costs.perp_fee = 0.0005;
            p.reenter_after_liquidation = true;
            p.brackets = Brackets::new(basis::config::default_brackets());
            p.transfer_delay_ms = delay_hours * HOUR;
            p.transfer_fee = fee;
            p
        };
        let pairs = [pair("A", &ta, make(0.5), 0, 1), pair("B", &tb, make(0.5), 0, 1)];
        let accounts = [account("spot venue", MarginMode::Isolated), account("perp venue", perp_mode)];
        let mut ledger = BookLedger::with_capacity(2, 2, n);
        portfolio::run(&book(capital, vec![0.5, 0.5], rebalance_steps.map(|s| s * HOUR)), &accounts, &pairs, &mut ledger);
        let mut spot_prev = capital;
        let mut perp_prev = 0.0;
        let mut book_prev = capital;
        for i in 0..n {
            let (mut spot_pnl, mut perp_pnl, mut spot_in, mut perp_in) = (0.0, 0.0, 0.0, 0.0);
            for k in 0..2 {
                let row = ledger.pairs[k].row(i);
                let spot_leg = ledger.spot_legs[k][i].total();
                spot_pnl += spot_leg;
                perp_pnl += row.pnl.total() - spot_leg;
                let (out, arrived) = ledger.moved[k][i];
                spot_in += ledger.transfers_in[k][i] - out;
                perp_in += arrived;
            }
            let (spot_account, perp_account) = (&ledger.accounts[0][i], &ledger.accounts[1][i]);
            let scale = capital;
            prop_assert!((spot_account.equity - spot_prev - spot_pnl - spot_in).abs() <= 1e-9 * scale, "spot account step {i}: change {} vs pnl {spot_pnl} + in {spot_in}", spot_account.equity - spot_prev);
            prop_assert!((perp_account.equity - perp_prev - perp_pnl - perp_in).abs() <= 1e-9 * scale, "perp account step {i}: change {} vs pnl {perp_pnl} + in {perp_in}", perp_account.equity - perp_prev);
            let book_row = ledger.book.row(i);
            prop_assert!((book_row.equity - book_prev - book_row.pnl.total()).abs() <= 1e-9 * scale, "book step {i}");
            prop_assert!(book_row.equity >= -1e-9 * scale);
            spot_prev = spot_account.equity;
            perp_prev = perp_account.equity;
            book_prev = book_row.equity;
        }
    }
}

/// A top-up between venues arrives `transfer_hours` later and pays the fee: by hand, a 2x short
/// perp (q = 1,000·0.8/150 with a 20 % reserve) whose distance to liquidation falls under 10 %
/// sends the reserve at once, and the perp margin rises only when it lands.
#[test]
fn a_cross_venue_top_up_arrives_late_and_pays_its_fee() {
    let t = scripted(&[100.0, 100.0, 130.0, 131.0, 132.0, 133.0, 134.0]);
    let mut p = hand_params(1000.0);
    p.reserve_fraction = 0.2;
    p.top_up_source = TopUpSource::Reserve;
    p.top_up_distance = 0.1;
    p.transfer_delay_ms = 2 * HOUR;
    p.transfer_fee = 5.0;
    let mut ledger = BookLedger::with_capacity(1, 2, t.len());
    portfolio::run(&book(1000.0, vec![1.0], None), &[account("spot", MarginMode::Isolated), account("perp", MarginMode::Isolated)], &[pair("X", &t, p, 0, 1)], &mut ledger);
    let q = 800.0 / 150.0;
    // Step 0: margin q·50 = 266.67 posted, 200 cash kept.
    assert_close(ledger.pairs[0].row(0).perp_margin, q * 50.0, 1e-9);
    assert_close(ledger.pairs[0].row(0).cash, 200.0, 1e-9);
    // Step 2 (130): margin 266.67 − q·30 = 106.67; liquidation price (106.67 + q·130)/(q·1.01) =
    // 148.51, 14.2 % away, and the later steps stay further than 10 %: no top-up.
    let sent: Vec<usize> = (0..t.len()).filter(|&i| ledger.moved[0][i].0 > 0.0 && i > 0).collect();
    let arrived: Vec<usize> = (0..t.len()).filter(|&i| ledger.moved[0][i].1 > 0.0 && i > 0).collect();
    assert!(sent.is_empty() && arrived.is_empty(), "no top-up at a 14 % distance: sent {sent:?}");

    // With a 20 % threshold the step-2 distance (14.2 %) triggers: 200 − 5 fee leaves at once
    // (the need, q·130/2 − 106.67 = 240, is more than the 195 that can go), lands at step 4.
    let mut p = hand_params(1000.0);
    p.reserve_fraction = 0.2;
    p.top_up_source = TopUpSource::Reserve;
    p.top_up_distance = 0.2;
    p.transfer_delay_ms = 2 * HOUR;
    p.transfer_fee = 5.0;
    let mut ledger = BookLedger::with_capacity(1, 2, t.len());
    portfolio::run(&book(1000.0, vec![1.0], None), &[account("spot", MarginMode::Isolated), account("perp", MarginMode::Isolated)], &[pair("X", &t, p, 0, 1)], &mut ledger);
    let row2 = ledger.pairs[0].row(2);
    assert_close(ledger.moved[0][2].0, 195.0, 1e-9);
    assert_close(row2.cash, 0.0, 1e-9);
    assert_close(row2.pnl.fees, -5.0, 1e-12);
    assert_close(ledger.pairs[0].row(3).perp_margin, q * 50.0 - q * 31.0, 1e-9); // not yet landed
    assert_close(ledger.moved[0][4].1, 195.0, 1e-9);
    assert_close(ledger.pairs[0].row(4).perp_margin, q * 50.0 - q * 32.0 + 195.0, 1e-9);
    // The book counted the money in flight: equity at step 3 = 1,000 − fee + spot and perp PnL (0).
    assert_close(ledger.book.row(3).equity, 995.0, 1e-9);
}

/// A capacity cap of 200 notional at price 100 holds the carry to 2 units (uncapped at 1x:
/// 1,000/200 = 5); the rest, 1,000 − 2·100 − 2·100 = 600, stays in cash.
#[test]
fn a_capacity_cap_holds_the_notional_and_keeps_the_rest_in_cash() {
    let t = scripted(&[100.0, 100.0, 100.0]);
    let mut p = hand_params(1000.0);
    p.leverage = 1.0;
    p.max_perp_notional = 200.0;
    let mut ledger = FullLedger::default();
    sim::run(&t, &p, &mut ledger);
    assert_close(ledger.row(0).perp_qty, -2.0, 1e-12);
    assert_close(ledger.row(0).cash, 600.0, 1e-9);
}

/// `capacity = { open_interest_share, open_interest_usd }` on a pair becomes the cap:
/// 1 % of 20,000,000 = 200,000 of BTC perp notional.
#[test]
fn a_pair_capacity_is_a_share_of_open_interest() {
    let data = real_data_dir().join("freqtrade-binance-1h");
    let text = format!(
        r#"
[strategy]
mode = "always_on"
start = "2024-01-01T00:00:00Z"
end = "2024-02-01T00:00:00Z"
[portfolio]
initial_capital = 1_000_000
[[account]]
venue = "binance_usdm"
margin_mode = "cross"
[[pair]]
symbol = "BTCUSDT"
data = {{ freqtrade = {{ datadir = "{dir}", pair = "BTC/USDT", timeframe = "1h" }} }}
spot = {{ account = "binance_usdm" }}
perp = {{ account = "binance_usdm" }}
capacity = {{ open_interest_share = 0.01, open_interest_usd = 20_000_000 }}
"#,
        dir = data.display()
    );
    let raw: toml::Value = toml::from_str(&text).unwrap();
    let book = BookConfig::from_toml_value(&raw, "test", std::path::Path::new(".")).expect("valid");
    let result = basis::app::portfolio::run(&book).expect("runs");
    let first = result.ledger.pairs[0].row(0);
    assert_close(-first.perp_qty * first.mark_price, 200_000.0, 1e-6);
    assert!(result.warnings.iter().any(|w| w.contains("capacity cap")), "{:?}", result.warnings);
    // A share outside (0, 1] is refused.
    let bad: toml::Value = toml::from_str(&text.replace("open_interest_share = 0.01", "open_interest_share = 2")).unwrap();
    let err = BookConfig::from_toml_value(&bad, "test", std::path::Path::new(".")).err().expect("refused");
    assert!(format!("{err:#}").contains("open_interest_share must be in (0, 1]"), "{err:#}");
}

/// A book's report: one self-contained page with the summary, pairs, accounts, PnL by account,
/// the correlation matrix and three charts, written with the other outputs and listed in the
/// manifest.
#[test]
fn a_book_writes_its_report() {
    let data = real_data_dir().join("freqtrade-binance-1h");
    let out = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[run]
name = "book-report"
output_dir = "{out}"
[strategy]
mode = "always_on"
start = "2024-01-01T00:00:00Z"
end = "2024-03-01T00:00:00Z"
[portfolio]
initial_capital = 100_000
[[account]]
venue = "binance_usdm"
margin_mode = "portfolio"
{pairs}"#,
        pairs = btc_eth_pairs(&data),
        out = out.path().display()
    );
    let raw: toml::Value = toml::from_str(&text).unwrap();
    let book = BookConfig::from_toml_value(&raw, "test", std::path::Path::new(".")).expect("valid");
    let result = basis::app::portfolio::run(&book).expect("runs");
    let folder = basis::app::portfolio::write_outputs(&book, None, &result, false).expect("writes");
    let html = std::fs::read_to_string(folder.join("index.html")).unwrap();
    for heading in ["Summary", "Pairs", "Accounts", "PnL by account (venue)", "Correlation of daily returns", "Equity", "Distance to liquidation", "Margin ratio", "Rolling 90-day Sharpe", "Funding per month", "Worst drawdowns of the book"] {
        assert!(html.contains(&format!("<h2>{heading}</h2>")), "no {heading} section");
    }
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 6);
    // Each PNG has its interactive chart over it, as on a single run's page.
    let plots = &html[html.find("<script type=\"application/json\" id=\"plots\">").expect("the page embeds its charts' data")..];
    for section in ["book_equity", "account_distance", "account_margin_ratio"] {
        assert!(plots.contains(&format!("\"section\":\"{section}\"")), "no interactive {section}");
    }
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "the page fetches nothing");
    let manifest = std::fs::read_to_string(folder.join("manifest.json")).unwrap();
    for file in ["legs.parquet", "accounts.parquet", "index.html", "book_equity.png", "account_distance.png", "account_margin_ratio.png", "book_rolling_sharpe.png", "book_monthly_funding.png"] {
        assert!(folder.join(file).exists(), "{file} missing");
        assert!(manifest.contains(file), "{file} not in the manifest");
    }
    // legs.parquet: the two legs of each pair add up to the pair's row of the book.
    let legs = polars::prelude::ParquetReader::new(std::fs::File::open(folder.join("legs.parquet")).unwrap());
    use polars::prelude::SerReader;
    let legs = legs.finish().unwrap();
    let total: f64 = legs.column("pnl_total").unwrap().f64().unwrap().into_no_null_iter().sum();
    assert_close(total, result.summary.book.pnl.total(), 1e-6);
    // The perp legs carry the account's liquidation price and distance, as the ledger does.
    let distance = legs.column("liquidation_distance").unwrap().f64().unwrap();
    let leg = legs.column("leg").unwrap().str().unwrap();
    let perp_distances: Vec<f64> = leg.iter().zip(distance.iter()).filter(|(l, _)| *l == Some("perp")).map(|(_, d)| d.unwrap_or(f64::NAN)).collect();
    let pair0: Vec<f64> = (0..result.ledger.pairs[0].len()).map(|i| result.ledger.pairs[0].row(i).liquidation_distance).collect();
    assert_eq!(perp_distances[..pair0.len()].iter().map(|d| d.to_bits()).collect::<Vec<_>>(), pair0.iter().map(|d| d.to_bits()).collect::<Vec<_>>());
    assert!(perp_distances.iter().all(|d| d.is_nan() || *d >= 0.0));

    // `basis report` and `basis compare` take a book's folder like any run's: the report is
    // the book run again from its saved config (the inputs' hashes checked), the same page.
    let written = basis::app::portfolio::rerender(&folder).expect("report re-renders a book");
    assert!(written.iter().any(|p| p.ends_with("index.html")));
    assert_eq!(std::fs::read_to_string(folder.join("index.html")).unwrap(), html, "the re-rendered page is the page the run wrote");
    let (compared, table) = basis::render::compare::write(&[folder.clone(), folder.clone()], out.path(), "books-compared", false).expect("compare takes books");
    assert!(table.contains("round trips") && table.lines().count() == 3, "a header and a row per run:\n{table}");
    let page = std::fs::read_to_string(compared.join("index.html")).unwrap();
    assert!(page.contains("Metrics side by side") && page.contains("book-report"), "the comparison names the book");
}

/// Funding-weighted allocation: A's trailing 24 h funding is 0.03 %/8 h (32.85 % APR), B's
/// 0.01 %/8 h (10.95 %), so after a day the book is re-split 3:1. By hand (flat prices at 100,
/// no costs, 1x, 500 each: q = 2.5): by step 24 A received 3·2.5·0.0003·100 = 0.225 and B
/// 0.075, the book holds 1,000.3, and A is resized to 0.75·1,000.3 = 750.225, B to 250.075.
#[test]
fn funding_weighted_allocation_resplits_by_trailing_apr() {
    let make = |rate: f64| {
        let mut t = scripted(&[100.0; 30]);
        t.funding = [8usize, 16, 24].iter().map(|&i| event_at(&t, i, rate, 100.0)).collect();
        t
    };
    let (a, b) = (make(0.0003), make(0.0001));
    let params = BookParams { initial_capital: 1000.0, allocation: Allocation::FundingWeighted { lookback_hours: 24.0 }, rebalance_every_ms: Some(DAY), universe: None };
    let mut p = hand_params(500.0);
    p.leverage = 1.0;
    let mut ledger = BookLedger::with_capacity(2, 1, 30);
    let summary = portfolio::run(&params, &[account("v", MarginMode::Isolated)], &[pair("A", &a, p.clone(), 0, 0), pair("B", &b, p, 0, 0)], &mut ledger);
    assert_close(ledger.pairs[0].row(23).equity, 500.15, 1e-9);
    assert_close(ledger.book.row(24).equity, 1000.3, 1e-9);
    assert_close(ledger.pairs[0].row(24).equity, 750.225, 1e-9);
    assert_close(ledger.pairs[1].row(24).equity, 250.075, 1e-9);
    assert_close(ledger.transfers_in[0][24], 750.225 - 500.225, 1e-9);
    assert_eq!(summary.allocation_rebalances, 1);
}

/// The cross-venue example: Binance spot, the short perp on Hyperliquid paid its hourly
/// funding from the multi-venue table (filtered to venue and coin), priced on Binance's bars.
/// The window is where Hyperliquid's funding covers (2025-03-08 .. 2026-03-07), every
/// settlement is hourly, the legs sit in their own accounts, and each account closes.
#[test]
fn a_cross_venue_btc_pair_runs_on_hyperliquid_funding() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/examples/portfolio-cross-venue-btc.toml");
    let book = BookConfig::load(&path).expect("the example loads");
    let result = basis::app::portfolio::run(&book).expect("runs");
    let m = &result.metrics;
    assert_eq!(m.book.start, "2025-03-08 08:00:00Z");
    assert_eq!(m.book.end, "2026-03-07 09:00:00Z");
    let pair = &result.summary.pairs[0];
    assert!(pair.settlements.len() > 8000, "hourly settlements: {}", pair.settlements.len());
    assert!(pair.settlements.iter().all(|s| s.settlement.interval_hours == 1.0));
    assert_eq!((m.pairs["BTCUSDT"].spot_account.as_str(), m.pairs["BTCUSDT"].perp_account.as_str()), ("binance_usdm", "hyperliquid"));
    // Independently, from the table itself: Hyperliquid's BTC rates settled inside the window
    // (after the first step, up to the last), summed and annualised over the window, are the
    // pair's funding APR over the window (always short: every rate counts with its sign).
    use polars::prelude::*;
    let table = ParquetReader::new(std::fs::File::open(real_data_dir().join("multivenue-hourly/funding_rates.parquet")).unwrap()).finish().unwrap();
    let venue = table.column("venue").unwrap().str().unwrap().clone();
    let coin = table.column("coin").unwrap().str().unwrap().clone();
    let rate = table.column("funding_rate").unwrap().f64().unwrap().clone();
    let ts = table.column("timestamp").unwrap().cast(&DataType::Int64).unwrap();
    let ts = ts.i64().unwrap();
    let (first, last) = (result.ledger.book.row(0).ts_ms, result.ledger.book.row(last_row(&result)).ts_ms);
    let mut sum = 0.0;
    for k in 0..table.height() {
        let t_ms = ts.get(k).unwrap() / 1000; // µs
        if venue.get(k) == Some("hyperliquid") && coin.get(k) == Some("BTC") && t_ms > first && t_ms <= last {
            sum += rate.get(k).unwrap();
        }
    }
    let years = (last - first) as f64 / (365.0 * 86_400_000.0); // basis annualises over 365-day years
    assert_close(m.pairs["BTCUSDT"].metrics.funding_apr_over_window, sum / years, 1e-9);
    let spot_account = &result.ledger.accounts[0];
    let perp_account = &result.ledger.accounts[1];
    assert!(spot_account.iter().all(|r| r.perp_margin == 0.0), "no perp in the spot account");
    assert!(perp_account.iter().all(|r| r.cash == 0.0 && r.spot_value == 0.0), "no spot in the perp account");
    let last = last_row(&result);
    assert_close(spot_account[last].equity + perp_account[last].equity + 0.0, result.ledger.book.row(last).equity, 1e-6);
}

fn last_row(result: &basis::app::portfolio::BookResult) -> usize {
    result.ledger.book.len() - 1
}

/// BTC and ETH hourly pairs from the freqtrade directory `dir`, both legs in `binance_usdm`.
fn btc_eth_pairs(dir: &std::path::Path) -> String {
    ["BTC", "ETH"]
        .iter()
        .map(|coin| {
            format!(
                "[[pair]]\nsymbol = \"{coin}USDT\"\ndata = {{ freqtrade = {{ datadir = \"{}\", pair = \"{coin}/USDT\", timeframe = \"1h\" }} }}\nspot = {{ account = \"binance_usdm\" }}\nperp = {{ account = \"binance_usdm\" }}\n",
                dir.display()
            )
        })
        .collect()
}

/// A reverse carry's borrowed spot inside a portfolio-margin account would be a loan inside
/// uniMMR, which is not modelled: the config refuses it, naming the pair, the account and what
/// to do, rather than margin the loan by two rules at once. The same pairs in a cross account,
/// or long in the portfolio account, load.
#[test]
fn a_reverse_carry_in_a_portfolio_account_is_refused() {
    let data = real_data_dir().join("freqtrade-binance-1h");
    let text = |mode: &str, direction: &str| {
        format!(
            "[strategy]\nmode = \"always_on\"\ndirection = \"{direction}\"\n[portfolio]\ninitial_capital = 100_000\n[[account]]\nvenue = \"binance_usdm\"\nmargin_mode = \"{mode}\"\n{}",
            btc_eth_pairs(&data)
        )
    };
    let load = |mode: &str, direction: &str| BookConfig::from_toml_value(&toml::from_str(&text(mode, direction)).unwrap(), "book.toml", std::path::Path::new("."));
    let err = format!("{:#}", load("portfolio", "reverse").unwrap_err());
    for needle in ["[[pair]] 1 (BTCUSDT)", "direction = \"reverse\"", "\"binance_usdm\"", "portfolio-margin", "not modelled", "margin_mode = \"cross\""] {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
    assert!(load("cross", "reverse").is_ok());
    assert!(load("portfolio", "long").is_ok());
}

/// A cross account under the bankruptcy-price rule (Bybit, BitMEX, Gate): each perp's fill is
/// the price at which its share of the wallet is used up. On the hand book (A 20/3 short at
/// 100 → breach at 217.0297 with B at 80, wallet left 19.802 = MM), the wallet is shared by
/// notional: A's share 19.802 × 217.0297/297.0297 = 14.4686, so its fill is
/// 217.0297 + 14.4686/(20/3) = 219.2; B's 5.3333 gives 80 + 5.3333/(20/3) = 80.8.
#[test]
fn a_cross_bankruptcy_price_liquidation_fills_at_each_perps_bankruptcy_price() {
    let a = scripted(&A_PRICES);
    let b = scripted(&B_PRICES);
    let mut params = hand_params(1000.0);
    params.liquidation.style = basis::sim::margin::LiquidationStyle::BankruptcyPrice;
    let pairs = [pair("A", &a, params.clone(), 0, 0), pair("B", &b, params, 0, 0)];
    let mut ledger = BookLedger::with_capacity(2, 1, 6);
    let summary = portfolio::run(&book(2000.0, vec![0.5, 0.5], None), &[account("venue", MarginMode::Cross)], &pairs, &mut ledger);
    let q = 20.0 / 3.0;
    let breach = 200.0 + 20.0 * (114.666_666_666_666_67 / 134.666_666_666_666_67);
    let wallet = 0.01 * q * (breach + 80.0);
    let fill = |k: usize| summary.pairs[k].trades.iter().find(|t| t.reason == basis::model::TradeReason::Liquidation).unwrap().clone();
    let (fa, fb) = (fill(0), fill(1));
    assert_close(fa.reference_price, breach, 1e-9);
    assert_close(fa.fee, wallet * breach / (breach + 80.0), 1e-9);
    assert_close(fa.fill_price, breach + wallet * breach / (breach + 80.0) / q, 1e-9);
    assert_close(fa.fill_price, 219.2, 1e-9);
    assert_close(fb.fill_price, 80.8, 1e-9);
    assert_close(fa.fee + fb.fee, wallet, 1e-9);
}

/// Cross margin under a market close with a backstop (Hyperliquid's rule): at the breach the
/// wallet equals maintenance, 0.01·q·(217.0297 + 80) = 19.802, which is above the backstop's
/// 2/3 of it, so the venue takes nothing and the account keeps the 19.802.
#[test]
fn a_cross_breach_above_the_backstop_keeps_its_margin() {
    let a = scripted(&A_PRICES);
    let b = scripted(&B_PRICES);
    let params = || {
        let mut p = hand_params(1000.0);
        p.liquidation = basis::sim::margin::PerpLiquidation { style: basis::sim::margin::LiquidationStyle::MarketWithBackstop, fee_rate: 0.0, backstop_fraction: 2.0 / 3.0, fill_slippage: 0.0, fee_in_bankruptcy_price: 0.0 };
        p
    };
    let mut ledger = BookLedger::with_capacity(2, 1, 6);
    let summary = portfolio::run(&book(2000.0, vec![0.5, 0.5], None), &[account("venue", MarginMode::Cross)], &[pair("A", &a, params(), 0, 0), pair("B", &b, params(), 0, 0)], &mut ledger);
    let q = 20.0 / 3.0;
    let theta = 114.666_666_666_666_67 / 134.666_666_666_666_67;
    for k in 0..2 {
        let fill = summary.pairs[k].trades.iter().find(|t| t.reason == basis::model::TradeReason::Liquidation).expect("liquidated");
        assert_eq!((fill.step, fill.fee), (4, 0.0));
    }
    let left = ledger.pairs[0].row(4).cash + ledger.pairs[1].row(4).cash - q * (220.0 + 80.0);
    assert_close(left, 0.01 * q * (200.0 + 20.0 * theta + 80.0), 1e-6);
}
