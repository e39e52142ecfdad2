//! Hand-computed engine cases: every figure below is worked out in the test from the rules,
//! not read back from the engine.

mod common;

use basis::config::TopUpSource;
use basis::sim;
use basis::measure::ledger::{events, state, FullLedger, TradeReason};
use common::*;

#[test]
fn funding_and_fees_at_constant_prices() {
    // 4 hourly steps at 100; one settlement of +0.01 % at step 2; spot fee 10 bp, perp 5 bp.
    let mut timeline = flat_timeline(&[100.0; 4], &[100.0; 4], &[100.0; 4], HOUR);
    timeline.funding = vec![event_at(&timeline, 2, 0.0001, 100.0)].into();
    let mut params = plain_params(10_000.0);
    params.costs.spot_fee = 0.001;
    params.costs.perp_fee = 0.0005;
    let mut ledger = FullLedger::default();
    let summary = sim::run(&timeline, &params, &mut ledger);

    // Entry: q units cost 100 × 1.001 (spot + fee) plus 100 / 1x margin + 100 × 0.0005 perp fee.
    let q = 10_000.0 / (100.0 * 1.001 + 100.0 + 100.0 * 0.0005);
    assert_close(ledger.row(0).spot_qty, q, 1e-12);
    assert_close(ledger.row(0).perp_qty, -q, 1e-12);
    assert_close(ledger.row(0).pnl.fees, -q * 100.0 * 0.0015, 1e-9);
    // The short receives rate × qty × price.
    assert_close(ledger.row(2).pnl.funding, q * 0.0001 * 100.0, 1e-12);
    assert_eq!(ledger.row(2).events & events::FUNDING, events::FUNDING);
    assert_eq!(ledger.row(1).pnl.funding, 0.0);
    // Exit at the last step pays the same fees again.
    assert_close(ledger.row(3).pnl.fees, -q * 100.0 * 0.0015, 1e-9);
    let expected_final = 10_000.0 - 2.0 * q * 0.15 + q * 0.01;
    assert_close(summary.final_equity, expected_final, 1e-9);
    assert_close(ledger.row(3).spot_qty, 0.0, 1e-12);
    assert_eq!(ledger.row(3).state, state::FLAT);
    assert_eq!(summary.trades.len(), 4);
}

/// A timeline holds every settlement loaded: the engine pays only those inside the window
/// (after the first step, up to the last) that are priced. Steps at 0, 1 h, 2 h, 3 h; settlements
/// at −1 h (before the window, priced as a loader might leave it), 0 (the first step: its
/// interval lies before the run), 1 h unpriced (no price known: not paid), 2 h at 0.01 % on 100,
/// and 4 h (after the last step). Only 2 h is paid: q × 0.0001 × 100, with q = 10,000 / 200 at
/// 1x and no costs.
#[test]
fn only_priced_settlements_inside_the_window_are_paid() {
    use basis::model::Settlement;
    let mut timeline = flat_timeline(&[100.0; 4], &[100.0; 4], &[100.0; 4], HOUR);
    timeline.funding = vec![
        Settlement { settle_ms: T0 - HOUR, rate: 0.01, interval_hours: 1.0, price: 100.0 },
        Settlement { settle_ms: T0, rate: 0.01, interval_hours: 1.0, price: 100.0 },
        Settlement::unpriced(T0 + HOUR, 0.01, 1.0),
        Settlement { settle_ms: T0 + 2 * HOUR, rate: 0.0001, interval_hours: 1.0, price: 100.0 },
        Settlement { settle_ms: T0 + 4 * HOUR, rate: 0.01, interval_hours: 1.0, price: 100.0 },
    ]
    .into();
    let mut ledger = FullLedger::default();
    let summary = sim::run(&timeline, &plain_params(10_000.0), &mut ledger);
    let q = 10_000.0 / 200.0;
    let funding: Vec<f64> = (0..4).map(|i| ledger.row(i).pnl.funding).collect();
    assert_eq!(funding[0], 0.0);
    assert_eq!(funding[1], 0.0, "the unpriced settlement is not paid");
    assert_close(funding[2], q * 0.0001 * 100.0, 1e-12);
    assert_eq!(funding[3], 0.0);
    assert_eq!(summary.settlements.len(), 1);
    assert_eq!(summary.settlements[0].settlement.settle_ms, T0 + 2 * HOUR);
    // The window's settlements (held or not) are the paid one only.
    assert_eq!(summary.window_settlements.iter().map(|s| s.settle_ms).collect::<Vec<_>>(), vec![T0 + 2 * HOUR]);
    assert_eq!(timeline.paid_settlements().count(), 1);
}

#[test]
fn slippage_is_booked_against_the_close() {
    let timeline = flat_timeline(&[200.0; 2], &[200.0; 2], &[200.0; 2], HOUR);
    let mut params = plain_params(1_000.0);
    params.costs.spot_slippage = 0.0010; // 10 bp
    params.costs.perp_slippage = 0.0005; // 5 bp
    let mut ledger = FullLedger::default();
    let summary = sim::run(&timeline, &params, &mut ledger);
    // q × 200 × 1.001 (spot) + q × (200 + 200 × 0.0005) (margin and perp slippage) = 1000.
    let q = 1_000.0 / (200.0 * 1.001 + 200.0 + 200.0 * 0.0005);
    assert_close(ledger.row(0).pnl.slippage, -q * 200.0 * 0.0015, 1e-9);
    let spot_buy = summary.trades.iter().find(|t| t.leg == "spot" && t.reason == TradeReason::Entry).unwrap();
    assert_close(spot_buy.fill_price, 200.2, 1e-12);
    let perp_sell = summary.trades.iter().find(|t| t.leg == "perp" && t.reason == TradeReason::Entry).unwrap();
    assert_close(perp_sell.fill_price, 199.9, 1e-12);
    assert_close(summary.final_equity, 1_000.0 - 2.0 * q * 200.0 * 0.0015, 1e-9);
}

#[test]
fn staking_accrues_in_the_asset_and_triggers_a_rehedge() {
    // Two daily steps; 3.65 % APR staking earns 0.01 % of the spot quantity in one day.
    let mut timeline = flat_timeline(&[100.0; 3], &[100.0; 3], &[100.0; 3], DAY);
    timeline.staking_apr = vec![0.0365; 3];
    let mut params = plain_params(20_000.0);
    params.rebalance_delta_threshold = 0.00005; // 0.005 %: the 0.01 % drift exceeds it
    params.close_at_end = false;
    let mut ledger = FullLedger::default();
    let summary = sim::run(&timeline, &params, &mut ledger);
    let q = 20_000.0 / 200.0;
    let earned = q * 0.0365 / 365.0;
    assert_close(ledger.row(1).pnl.staking, earned * 100.0, 1e-9);
    assert_close(ledger.row(1).spot_qty, q + earned, 1e-12);
    // The hedge is restored to −spot quantity by selling `earned` more perp.
    assert_eq!(ledger.row(1).events & events::REBALANCE, events::REBALANCE);
    assert_close(ledger.row(1).perp_qty, -(q + earned), 1e-12);
    let rebalance = summary.trades.iter().find(|t| t.reason == TradeReason::Rebalance).unwrap();
    assert_close(rebalance.qty, -earned, 1e-12);
    assert_eq!(summary.rebalances, 2);
}

#[test]
fn short_is_liquidated_at_the_bracket_price_and_spot_stays_unhedged_when_held() {
    // 2x leverage: q = 10 000 / (100 + 50); margin q × 50. One bracket: MMR 0.4 %, cum 0.
    let timeline = flat_timeline(&[100.0, 150.0, 100.0], &[100.0, 160.0, 110.0], &[100.0, 140.0, 95.0], HOUR);
    let mut params = plain_params(10_000.0);
    params.leverage = 2.0;
    params.close_at_end = false;
    params.after_liquidation = basis::config::AfterLiquidation::Hold;
    let mut ledger = FullLedger::default();
    let summary = sim::run(&timeline, &params, &mut ledger);
    let q = 10_000.0 / 150.0;
    let margin = q * 50.0;
    // Short liquidation price: margin + q (100 − P) = q P × 0.004.
    let liq = (margin + q * 100.0) / (q * 1.004);
    assert_close(ledger.row(0).liquidation_price, liq, 1e-9);
    assert!(liq > 149.0 && liq < 150.0, "liq {liq}");
    let row = &ledger.row(1);
    assert_eq!(row.events & events::LIQUIDATION, events::LIQUIDATION);
    assert_eq!(row.state, state::UNHEDGED_SPOT);
    assert_eq!(summary.liquidations, 1);
    // Perp loses q × (liq − 100); what is left equals maintenance margin, q × liq × 0.4 %,
    // and the 1.25 % liquidation fee (larger) takes all of it.
    assert_close(row.pnl.perp, -q * (liq - 100.0), 1e-9);
    assert_close(row.pnl.liquidation, -q * liq * 0.004, 1e-9);
    assert_close(row.pnl.spot, q * 50.0, 1e-9);
    assert_eq!(row.perp_qty, 0.0);
    assert_close(row.equity, q * 150.0, 1e-9);
    // Afterwards the spot is unhedged: the fall to 100 is all loss.
    assert_close(ledger.row(2).pnl.spot, -q * 50.0, 1e-9);
    assert_close(ledger.row(2).equity, q * 100.0, 1e-9);
    assert_eq!(ledger.row(2).state, state::UNHEDGED_SPOT);

    // The default ("close") sells the spot at the liquidation step's close, 150: flat after.
    params.after_liquidation = basis::config::AfterLiquidation::Close;
    let mut ledger = FullLedger::default();
    let summary = sim::run(&timeline, &params, &mut ledger);
    assert_eq!(ledger.row(1).state, state::FLAT);
    assert_eq!(ledger.row(1).spot_qty, 0.0);
    assert_close(ledger.row(1).cash, q * 150.0, 1e-9);
    assert_eq!(ledger.row(2).pnl.spot, 0.0);
    assert!(summary.trades.iter().any(|t| t.reason == TradeReason::Unwind && t.step == 1));
}

#[test]
fn reserve_top_up_keeps_the_short_alive() {
    // Same rally, but 40 % of capital held in reserve and topped up when within 15 % of liquidation.
    let timeline = flat_timeline(&[100.0, 130.0, 150.0], &[100.0, 130.0, 150.0], &[100.0, 130.0, 150.0], HOUR);
    let mut params = plain_params(10_000.0);
    params.leverage = 2.0;
    params.reserve_fraction = 0.4;
    params.top_up_distance = 0.15;
    params.top_up_source = TopUpSource::Reserve;
    params.close_at_end = false;
    let mut ledger = FullLedger::default();
    let summary = sim::run(&timeline, &params, &mut ledger);
    let q = 6_000.0 / 150.0;
    // At 130: margin = q × 50 − q × 30 = q × 20; liquidation at (q × 20 + q × 130) / (q × 1.004).
    let liq = (20.0 + 130.0) / 1.004;
    assert!(liq / 130.0 - 1.0 < 0.15);
    // Top-up restores margin to notional / leverage = q × 65, moving q × 45 from the reserve.
    assert_eq!(ledger.row(1).events & events::TOP_UP, events::TOP_UP);
    assert_close(ledger.row(1).perp_margin, q * 65.0, 1e-9);
    assert_close(ledger.row(1).cash, 4_000.0 - q * 45.0, 1e-9);
    assert_eq!(summary.liquidations, 0);
    assert_eq!(summary.top_ups, 1);
    assert_close(ledger.row(2).perp_margin, q * 45.0, 1e-9);
}

#[test]
fn settlement_is_paid_on_the_position_held_before_the_step() {
    // A settlement stamped exactly at step 0 is before the window; one at step 1 is paid on
    // the position opened at step 0's close.
    let mut timeline = flat_timeline(&[50.0; 3], &[50.0; 3], &[50.0; 3], 8 * HOUR);
    timeline.funding = vec![event_at(&timeline, 1, -0.0002, 49.0)].into();
    let params = plain_params(1_000.0);
    let mut ledger = FullLedger::default();
    let summary = sim::run(&timeline, &params, &mut ledger);
    let q = 1_000.0 / 100.0;
    // Negative funding: the short pays rate × qty × the price given with the settlement.
    assert_close(ledger.row(1).pnl.funding, -q * 0.0002 * 49.0, 1e-12);
    assert_eq!(summary.settlements.len(), 1);
    assert_close(summary.settlements[0].perp_qty, -q, 1e-12);
}

#[test]
fn reverse_carry_earns_negative_funding_and_pays_borrow() {
    let mut timeline = flat_timeline(&[100.0; 3], &[100.0; 3], &[100.0; 3], DAY);
    timeline.funding = vec![event_at(&timeline, 1, -0.001, 100.0)].into();
    let mut params = plain_params(10_000.0);
    params.entry.direction = basis::config::Direction::Reverse;
    params.borrow_apr = 0.073;
    params.close_at_end = false;
    let mut ledger = FullLedger::default();
    sim::run(&timeline, &params, &mut ledger);
    let q = 10_000.0 / 200.0;
    assert_close(ledger.row(0).spot_qty, -q, 1e-12);
    assert_close(ledger.row(0).perp_qty, q, 1e-12);
    // Long perp receives when the rate is negative.
    assert_close(ledger.row(1).pnl.funding, q * 0.001 * 100.0, 1e-12);
    // Borrow accrues 7.3 % / 365 = 0.02 % of the borrowed quantity per day.
    assert_close(ledger.row(1).pnl.borrow, -q * 0.0002 * 100.0, 1e-9);
    assert_eq!(ledger.row(1).state, state::REVERSE_CARRY);
}

#[test]
fn threshold_entry_uses_settled_rates_only() {
    use basis::config::EntryMode;
    // Settled history: three rates of 0.0003 per 8 h (32.85 % APR) known by step 1.
    let mut timeline = flat_timeline(&[100.0; 4], &[100.0; 4], &[100.0; 4], 8 * HOUR);
    timeline.funding = [T0 - 16 * HOUR, T0 - 8 * HOUR, T0 + 8 * HOUR]
        .into_iter()
        .map(|settle_ms| basis::model::Settlement::unpriced(settle_ms, 0.0003, 8.0))
        .collect();
    let mut params = plain_params(1_000.0);
    params.entry.mode = EntryMode::FundingThreshold;
    params.entry.lookback_settlements = 3;
    params.entry.entry_funding_apr = 0.30;
    let mut ledger = FullLedger::default();
    sim::run(&timeline, &params, &mut ledger);
    // At step 0 only two rates are known: no signal, stay flat. At step 1 the third has settled.
    assert!(ledger.row(0).funding_signal_apr.is_nan());
    assert_eq!(ledger.row(0).state, state::FLAT);
    assert_close(ledger.row(1).funding_signal_apr, 0.3285, 1e-12);
    assert_eq!(ledger.row(1).state, state::LONG_CARRY);
}

#[test]
fn a_stale_spot_step_sells_no_spot_and_still_checks_the_liquidation() {
    // The reserve top-up case, but the step at 130 has a stale spot close. The next bar (masked
    // too) spikes to 160, past the liquidation price: the check runs on that masked bar.
    let timeline_with = |stale: [u8; 4]| {
        let mut t = flat_timeline(&[100.0, 130.0, 140.0, 140.0], &[100.0, 130.0, 160.0, 141.0], &[100.0, 130.0, 140.0, 139.0], HOUR);
        t.spot_stale = stale.to_vec();
        t
    };
    let mut params = plain_params(10_000.0);
    params.leverage = 2.0;
    params.reserve_fraction = 0.4;
    params.top_up_distance = 0.15;
    params.top_up_source = TopUpSource::SellSpot;
    params.close_at_end = false;
    let q = 6_000.0 / 150.0;
    let liq = (20.0 + 130.0) / 1.004; // margin q × 20 at mark 130, as in the reserve case

    // Selling spot needs a live spot price: no top-up on the stale step, and the spike
    // liquidates the short on the masked bar itself.
    let mut ledger = FullLedger::default();
    let summary = sim::run(&timeline_with([0, 1, 2, 0]), &params, &mut ledger);
    assert_eq!(ledger.row(1).events & (events::TOP_UP | events::MASKED), events::MASKED, "no spot sale on a stale step");
    assert_eq!(ledger.row(2).events & (events::LIQUIDATION | events::MASKED), events::LIQUIDATION | events::MASKED, "checked, masked or not");
    assert_eq!(summary.liquidations, 1);
    // Filled at the liquidation price (the previous close, 130, had not reached it).
    assert!(liq > 130.0 && liq < 160.0);
    assert_close(ledger.row(2).pnl.perp, -q * (liq - 130.0), 1e-9);
    assert_eq!(ledger.row(2).perp_qty, 0.0);

    // Moving reserve cash needs no spot price: the masked step tops up, and the short survives.
    params.top_up_source = TopUpSource::Reserve;
    let mut ledger = FullLedger::default();
    let summary = sim::run(&timeline_with([0, 1, 2, 0]), &params, &mut ledger);
    assert_eq!(ledger.row(1).events & (events::TOP_UP | events::MASKED), events::TOP_UP | events::MASKED);
    assert_eq!(summary.liquidations, 0);

    // Unmasked, the step at 130 sells spot to top up and the short survives the spike.
    params.top_up_source = TopUpSource::SellSpot;
    params.mask_stale_spot = false;
    let mut ledger = FullLedger::default();
    let summary = sim::run(&timeline_with([0, 1, 2, 0]), &params, &mut ledger);
    assert_eq!(ledger.row(1).events & events::TOP_UP, events::TOP_UP);
    assert_eq!(summary.liquidations, 0);
    assert_eq!(ledger.row(1).events & events::MASKED, 0);
}
