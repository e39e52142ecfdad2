//! Engine truth: every leg margined, liquidations as each venue runs them, masking that never
//! defers a liquidation, the trailing signal weighted by time, and metrics that say what they
//! mean. Expected values come from `tests/expected/engine_truth.py`, which derives them from the
//! venue rules in ../shared/reference/MARGIN.md with exact fractions, independently of the
//! engine (the labels in the comments, e.g. `A.LP`, are that script's).

mod common;

use basis::config::{AfterLiquidation, Direction, EntryMode, TopUpSource};
use basis::data::align::Settlement;
use basis::sim::{self, EngineParams};
use basis::measure::ledger::{events, state, FullLedger, TradeReason};
use basis::sim::margin::{Brackets, LiquidationStyle};
use basis::sim::policy::{trailing_funding_apr, trailing_funding_apr_hours};
use common::*;

/// Long carry at 2x on 150,000: 1 BTC spot and 1 BTC short at 100,000 with 50,000 of margin
/// (scenario A of the script), MMR `mmr` in one tier, no costs.
fn short_perp_params(mmr: f64, style: LiquidationStyle, fee_rate: f64) -> EngineParams {
    let mut params = plain_params(150_000.0);
    params.leverage = 2.0;
    params.brackets = Brackets::new(vec![basis::config::Bracket { notional_floor: 0.0, mmr, cum: 0.0 }]);
    params.liquidation.style = style;
    params.liquidation.fee_rate = fee_rate;
    // The last step is not a forced final close, so the after-liquidation policy shows.
    params.close_at_end = false;
    params
}

/// Step 0 at 100,000; step 1 closes at 140,000 (no liquidation: A2); step 2's bar reaches
/// 200,000 and closes at 190,000.
fn rally() -> basis::data::align::MarketTimeline {
    flat_timeline(&[100_000.0, 140_000.0, 190_000.0], &[100_000.0, 140_000.0, 200_000.0], &[100_000.0, 100_000.0, 140_000.0], HOUR)
}

fn run(timeline: &basis::data::align::MarketTimeline, params: &EngineParams) -> (FullLedger, sim::RunSummary) {
    let mut ledger = FullLedger::default();
    let summary = sim::run(timeline, params, &mut ledger);
    (ledger, summary)
}

#[test]
fn binance_closes_at_the_liquidation_price_and_charges_the_fee_from_what_is_left() {
    for (fee_rate, kept, liquidation_component) in [
        // A[fee 0.0125]: the 1,865.67 fee is capped at the 746.27 left; the trader keeps 0.
        (0.0125, 0.0, -746.2686567),
        // A[fee 0.003]: fee 447.76, the trader keeps 298.51.
        (0.003, 298.5074627, -447.761194),
    ] {
        let (ledger, summary) = run(&rally(), &short_perp_params(0.005, LiquidationStyle::LiquidationPrice, fee_rate));
        let row = ledger.row(2);
        assert_eq!(row.events & events::LIQUIDATION, events::LIQUIDATION);
        let liquidation = summary.trades.iter().find(|t| t.reason == TradeReason::Liquidation).unwrap();
        assert_close(liquidation.fill_price, 149_253.7313, 1e-4); // A.LP
        assert_close(liquidation.fee, -liquidation_component, 1e-6);
        // A2.step2: perp price PnL 140,000 -> LP.
        assert_close(row.pnl.perp, -9_253.731343, 1e-5);
        assert_close(row.pnl.liquidation, liquidation_component, 1e-6);
        // after_liquidation = "close": the spot is sold at the step's close, 190,000.
        assert_eq!(row.state, state::FLAT);
        assert!(summary.trades.iter().any(|t| t.reason == TradeReason::Unwind && t.leg == "spot" && t.fill_price == 190_000.0));
        assert_close(summary.final_equity, 190_000.0 + kept, 1e-5);
        assert_close(summary.pnl.total(), summary.final_equity - 150_000.0, 1e-8);
    }
}

#[test]
fn bybit_bitmex_gate_close_at_the_bankruptcy_price_and_take_all_the_margin() {
    let (ledger, summary) = run(&rally(), &short_perp_params(0.005, LiquidationStyle::BankruptcyPrice, 0.0));
    let liquidation = summary.trades.iter().find(|t| t.reason == TradeReason::Liquidation).unwrap();
    assert_close(liquidation.reference_price, 149_253.7313, 1e-4); // B.LP
    assert_close(liquidation.fill_price, 150_000.0, 1e-6); // B.BP = EP + WB/|Q|
    assert_close(liquidation.fee, 746.2686567, 1e-6); // B.forfeited
    assert_close(ledger.row(2).pnl.liquidation, -746.2686567, 1e-6);
    // With a zero "fee", the maintenance margin is still lost: 500-odd USDT a liquidation.
    assert_close(summary.final_equity, 190_000.0, 1e-6);
}

#[test]
fn hyperliquid_market_close_keeps_the_collateral_unless_the_backstop_takes_it() {
    // C1: MMR 1.25 % (40x max); LP = 148,148.15; the trader keeps the 1,851.85 maintenance margin.
    let params = short_perp_params(0.0125, LiquidationStyle::MarketWithBackstop, 0.0);
    let (ledger, summary) = run(&rally(), &params);
    let liquidation = summary.trades.iter().find(|t| t.reason == TradeReason::Liquidation).unwrap();
    assert_close(liquidation.fill_price, 148_148.1481, 1e-4);
    assert_close(liquidation.fee, 0.0, 0.0);
    assert_eq!(ledger.row(2).pnl.liquidation, 0.0);
    assert_close(summary.final_equity, 190_000.0 + 1_851.851852, 1e-5);
    // C2: a fill at or past the backstop price (148,760.33) hands everything to the backstop.
    let close = params.liquidation.close(-1.0, 149_000.0, 1_000.0, &params.brackets);
    assert_close(close.taken, 1_000.0, 0.0); // C2[fill 149000]
    let close = params.liquidation.close(-1.0, 148_700.0, 1_300.0, &params.brackets);
    assert_eq!(close.taken, 0.0); // 1,300 ≥ 2/3 × 0.0125 × 148,700 = 1,239.17
}

#[test]
fn a_gap_past_the_liquidation_price_is_the_insurance_funds_loss() {
    // A3: the fill is 160,000 (the bar opens past LP); margin −10,000 is made good by the fund.
    let params = short_perp_params(0.005, LiquidationStyle::LiquidationPrice, 0.0125);
    let close = params.liquidation.close(-1.0, 160_000.0, -10_000.0, &params.brackets);
    assert_eq!((close.taken, close.shortfall), (0.0, 10_000.0));
}

/// Reverse carry at 2x on 100,000 at 100,000: 0.6667 BTC borrowed and sold, 33,333.33 perp
/// margin, 133,333.33 in the spot-margin account (margin level 2; scenario D).
fn reverse_params() -> EngineParams {
    let mut params = plain_params(100_000.0);
    params.leverage = 2.0;
    params.entry.direction = Direction::Reverse;
    params
}

#[test]
fn the_borrowed_spot_is_liquidated_at_margin_level_1_1_with_the_venues_fee() {
    // The spot bar reaches 185,000 (past D.P_liq = 181,818.18) and closes at 180,000.
    let mut timeline = flat_timeline(&[100_000.0, 180_000.0], &[100_000.0, 180_000.0], &[100_000.0, 100_000.0], HOUR);
    timeline.spot_high = vec![100_000.0, 185_000.0];
    timeline.spot_low = vec![100_000.0, 100_000.0];
    // A venue whose liquidation buys the whole loan back (no stop level).
    let mut params = reverse_params();
    params.spot_margin.liquidation_stop_level = 1.0;
    let (ledger, summary) = run(&timeline, &params);
    assert_close(ledger.row(0).cash, 133_333.3333, 1e-4); // D.A
    let row = ledger.row(1);
    assert_eq!(row.events & events::LIQUIDATION, events::LIQUIDATION);
    let liquidation = summary.trades.iter().find(|t| t.reason == TradeReason::Liquidation).unwrap();
    assert_eq!(liquidation.leg, "spot");
    assert_close(liquidation.fill_price, 181_818.1818, 1e-4); // D.P_liq
    assert_close(liquidation.fee, 2_424.242424, 1e-6); // D[at P_liq].fee
    assert_close(row.pnl.liquidation, -2_424.242424, 1e-6);
    // Spot PnL to the buy-back: −q (P_liq − S0); the long perp gains q (180,000 − 100,000).
    assert_close(row.pnl.spot, -54_545.45455, 1e-5);
    assert_close(row.pnl.perp, 53_333.33333, 1e-5);
    // "close": the long perp is sold at 180,000; the account keeps 9,696.97 (D[at P_liq].after).
    assert_close(summary.final_equity, 9_696.969697 + 33_333.33333 + 53_333.33333, 1e-5);
    assert!(summary.final_equity >= 0.0);
}

#[test]
fn binance_spot_margin_liquidation_stops_at_margin_level_1_5() {
    // D3: the same bar under Binance's rule: only x = 0.5556 of the 0.6667 borrowed is bought
    // back at P_liq, the 2 % fee is on that part, and the margin level is back at 1.5. The
    // carry goes on with the smaller loan; the close's rebalance trims the perp to it.
    let mut timeline = flat_timeline(&[100_000.0, 180_000.0], &[100_000.0, 180_000.0], &[100_000.0, 100_000.0], HOUR);
    timeline.spot_high = vec![100_000.0, 185_000.0];
    timeline.spot_low = vec![100_000.0, 100_000.0];
    let (ledger, summary) = run(&timeline, &reverse_params());
    let liquidation = summary.trades.iter().find(|t| t.reason == TradeReason::Liquidation).unwrap();
    assert_eq!(liquidation.leg, "spot");
    assert_close(liquidation.fill_price, 181_818.1818, 1e-4); // D3.P_liq
    assert_close(liquidation.qty, 0.5555555556, 1e-9); // D3.x bought back
    assert_close(liquidation.fee, 2_020.20202, 1e-5); // D3.fee
    let row = ledger.row(1);
    assert_eq!(row.events & events::LIQUIDATION, events::LIQUIDATION);
    assert_close(row.pnl.liquidation, -2_020.20202, 1e-5);
    assert_close(row.pnl.spot, -54_343.43434, 1e-5); // D3.spot pnl to the close
    assert_close(row.pnl.perp, 53_333.33333, 1e-5); // D3.perp pnl
    // The run ends at this close (final close at 180,000, no costs): D3.equity at the close.
    assert_close(summary.final_equity, 96_969.69697, 1e-5);
}

#[test]
fn a_liquidation_fill_that_slips_can_reach_hyperliquids_backstop() {
    // G: the fill slips past LP = 148,148.15; at 50 bp the margin left at the fill (1,111.11) is
    // under 2/3 of the maintenance there (1,240.74) and the backstop takes it; at 20 bp it is
    // not (1,555.56 against 1,237.04) and the trader keeps it.
    for (bps, fill, liquidation_component, final_equity) in [(50.0, 148_888.8889, -1_851.851852, 190_000.0), (20.0, 148_444.4444, -296.2962963, 191_555.5556)] {
        let mut params = short_perp_params(0.0125, LiquidationStyle::MarketWithBackstop, 0.0);
        params.liquidation.fill_slippage = bps * 1e-4;
        let (ledger, summary) = run(&rally(), &params);
        let liquidation = summary.trades.iter().find(|t| t.reason == TradeReason::Liquidation).unwrap();
        assert_close(liquidation.fill_price, fill, 1e-4); // G.fill
        assert_close(ledger.row(2).pnl.liquidation, liquidation_component, 1e-6);
        assert_close(summary.final_equity, final_equity, 1e-4);
        assert_close(summary.pnl.total(), summary.final_equity - 150_000.0, 1e-8);
    }
    // The fill never goes past the bar's adverse extreme, and a gap fills at the open.
    let params = short_perp_params(0.0125, LiquidationStyle::MarketWithBackstop, 0.0);
    let mut slipping = params.liquidation;
    slipping.fill_slippage = 0.5;
    assert_eq!(slipping.fill_price(-1.0, 148_000.0, 140_000.0, 160_000.0), 160_000.0);
    assert_eq!(slipping.fill_price(-1.0, 148_000.0, 150_000.0, 160_000.0), 150_000.0);
    assert_eq!(slipping.fill_price(1.0, 50_000.0, 60_000.0, 40_000.0), 40_000.0);
}

#[test]
fn gate_builds_the_taker_fee_into_its_liquidation_and_bankruptcy_prices() {
    // H: the gate_usdt preset: maintenance 0.5 % + taker 0.05 % at every tier, and the
    // bankruptcy-price fill where the margin less the fee to close is zero.
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let text = std::fs::read_to_string(data.join("basis.toml")).unwrap().replace("preset = \"binance_usdm\"", "preset = \"gate_usdt\"");
    let config = basis::config::Config::from_toml_str(&text, "basis.toml (gate_usdt)", &data).unwrap();
    let params = basis::config::engine_params(&config);
    assert!(config.margin.taker_fee_in_liquidation_price);
    // No preset or config sets the liquidation's slippage: it slips as the config's own market
    // orders do (perp_slippage_bps = 1 in basis.toml).
    assert_eq!(config.margin.liquidation_slippage_bps, None);
    assert_close(params.liquidation.fill_slippage, 1e-4, 1e-15);
    assert_close(params.liquidation.fee_in_bankruptcy_price, 0.0005, 1e-15);
    // basis.toml gives its own brackets (0.4 % first tier): the fee is added to them too.
    assert_close(params.brackets.tiers()[0].mmr, 0.004 + 0.0005, 1e-15);
    let mut gate = short_perp_params(0.0055, LiquidationStyle::BankruptcyPrice, 0.0);
    gate.liquidation.fee_in_bankruptcy_price = 0.0005;
    let (ledger, summary) = run(&rally(), &gate);
    let liquidation = summary.trades.iter().find(|t| t.reason == TradeReason::Liquidation).unwrap();
    assert_close(liquidation.reference_price, 149_179.5127, 1e-4); // H.LP
    assert_close(liquidation.fill_price, 149_925.0375, 1e-4); // H.BP
    assert_close(liquidation.fee, 820.4873197, 1e-6); // H.margin at LP, all forfeited
    assert_close(ledger.row(2).pnl.liquidation, -820.4873197, 1e-6);
}

#[test]
fn bybit_puts_isolated_maintenance_on_the_entry_value() {
    // L: short 1 BTC at 100,000 at 2x, MMR 0.5 %: Bybit's LP = EP(1 + IMR − MMR) = 149,500;
    // maintenance at the mark (Binance's form) would give 149,253.73.
    let mut params = short_perp_params(0.005, LiquidationStyle::BankruptcyPrice, 0.0);
    params.brackets = params.brackets.clone().on(basis::sim::margin::MaintenanceBasis::Entry);
    let (ledger, summary) = run(&rally(), &params);
    assert_close(ledger.row(0).liquidation_price, 149_500.0, 1e-6); // L.LP (Bybit)
    // Step 1 closes at 140,000: the maintenance stays on the entry value, so the price does not move.
    assert_close(ledger.row(1).liquidation_price, 149_500.0, 1e-6);
    let liquidation = summary.trades.iter().find(|t| t.reason == TradeReason::Liquidation).unwrap();
    assert_close(liquidation.reference_price, 149_500.0, 1e-6);
    // The preset says so.
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let text = std::fs::read_to_string(data.join("basis.toml")).unwrap().replace("preset = \"binance_usdm\"", "preset = \"bybit_linear\"");
    let config = basis::config::Config::from_toml_str(&text, "basis.toml (bybit_linear)", &data).unwrap();
    assert_eq!(basis::config::engine_params(&config).brackets.basis(), basis::sim::margin::MaintenanceBasis::Entry);
}

#[test]
fn the_reverse_carrys_long_perp_liquidates_on_a_crash_and_the_short_is_bought_back() {
    // D2: LP of the long perp (0.6667 BTC, 33,333.33 margin, MMR 0.4 %) is 50,200.80.
    let timeline = flat_timeline(&[100_000.0, 60_000.0, 45_000.0], &[100_000.0, 100_000.0, 60_000.0], &[100_000.0, 60_000.0, 40_000.0], HOUR);
    let (ledger, summary) = run(&timeline, &reverse_params());
    let liquidation = summary.trades.iter().find(|t| t.reason == TradeReason::Liquidation).unwrap();
    assert_eq!((liquidation.leg, liquidation.step), ("perp", 2));
    assert_close(liquidation.fill_price, 50_200.80321, 1e-4);
    // The 1.25 % fee (418.34) is more than the 133.87 left at LP: the trader keeps nothing.
    assert_close(liquidation.fee, 133.8688086, 1e-6);
    // The short spot is bought back at 45,000 ("close"): the account held 133,333.33 against
    // 0.6667 BTC, so it ends with 133,333.33 − 0.6667 × 45,000.
    assert_eq!(ledger.row(2).state, state::FLAT);
    assert_close(summary.final_equity, 133_333.3333 - 2.0 / 3.0 * 45_000.0, 1e-4);
}

#[test]
fn hold_keeps_the_surviving_leg_and_says_the_run_is_directional() {
    let mut params = short_perp_params(0.005, LiquidationStyle::LiquidationPrice, 0.0125);
    params.after_liquidation = AfterLiquidation::Hold;
    let mut timeline = rally();
    // Two more steps: the spot left unhedged rides from 190,000 to 210,000.
    for (close, high) in [(200_000.0, 200_000.0), (210_000.0, 210_000.0)] {
        timeline.ts_ms.push(timeline.ts_ms.last().unwrap() + HOUR);
        timeline.spot.push(close);
        timeline.perp.push(close);
        timeline.mark.push(close);
        timeline.mark_high.push(high);
        timeline.mark_low.push(close);
        timeline.staking_apr.push(0.0);
        timeline.spot_stale.push(0);
    }
    let (ledger, summary) = run(&timeline, &params);
    assert_eq!(ledger.row(2).state, state::UNHEDGED_SPOT);
    assert_eq!(ledger.row(3).state, state::UNHEDGED_SPOT);
    // Unhedged over steps 3 and 4 (2 hours): 1 BTC from 190,000 to 210,000.
    assert_eq!(summary.unhedged_ms, 2 * HOUR);
    assert_close(summary.unhedged_pnl, 20_000.0, 1e-6);
    let metrics = basis::measure::metrics::compute(&summary, "TEST", true);
    assert_eq!(metrics.after_liquidation, "hold");
    assert!(metrics.summary_text().contains("DIRECTIONAL"), "{}", metrics.summary_text());
}

#[test]
fn rehedge_reopens_the_perp_without_selling_the_spot() {
    let mut params = short_perp_params(0.005, LiquidationStyle::LiquidationPrice, 0.003);
    params.after_liquidation = AfterLiquidation::Rehedge;
    params.leverage = 2.0;
    let (ledger, summary) = run(&rally(), &params);
    // After the liquidation at step 2 the trader has 298.51 of cash: the new short needs
    // 190,000 / 2 of margin per BTC, so spot is sold to fund it: x sold with
    // 298.51 + 190,000 x = (1 − x) 95,000  →  x = (95,000 − 298.51) / 285,000.
    let sold = (95_000.0 - 298.5074627) / 285_000.0;
    let row = ledger.row(2);
    assert_close(row.spot_qty, 1.0 - sold, 1e-9);
    assert_close(row.perp_qty, -(1.0 - sold), 1e-9);
    assert_eq!(row.state, state::LONG_CARRY);
    assert!(summary.trades.iter().filter(|t| t.reason == TradeReason::Rehedge).count() == 2);
}

#[test]
fn masking_never_defers_a_perp_liquidation() {
    // A liquidating spike inside a masked span at the very end of the window.
    let mut timeline = rally();
    timeline.spot_stale = vec![0, 1, 1];
    let mut settled = timeline.clone();
    settled.funding = vec![event_at(&settled, 2, 0.0001, 190_000.0)].into();
    let (ledger, summary) = run(&settled, &short_perp_params(0.005, LiquidationStyle::LiquidationPrice, 0.0125));
    assert_eq!(ledger.row(2).events & (events::LIQUIDATION | events::MASKED), events::LIQUIDATION | events::MASKED);
    assert_close(summary.trades.iter().find(|t| t.reason == TradeReason::Liquidation).unwrap().fill_price, 149_253.7313, 1e-4);
    // The position was dead at the settlement: no funding to it.
    assert_eq!(ledger.row(2).pnl.funding, 0.0);
    assert!(summary.settlements.is_empty());
}

#[test]
fn the_signal_is_weighted_by_time() {
    // E: eight 8 h settlements at 0.01 % and one 1 h settlement at 0.3 %.
    let t0 = T0;
    let mut history: Vec<Settlement> = (0..8).map(|k| Settlement::unpriced(t0 + k * 8 * HOUR, 0.0001, 8.0)).collect();
    history.push(Settlement::unpriced(t0 + 64 * HOUR, 0.003, 1.0));
    let at = [t0 + 64 * HOUR];
    assert_close(trailing_funding_apr(&history, &at, 9)[0], 0.5121230769, 1e-9); // not 3.0173
    // lookback 24 h at t = t0 + 65 h: settlements at t−1h, t−9h and t−17h, 17 hours in all.
    let at = [t0 + 65 * HOUR];
    assert_close(trailing_funding_apr_hours(&history, &at, 24.0)[0], 1.648941176, 1e-8);
    // Before the history reaches back 24 h, the signal is unknown.
    assert!(trailing_funding_apr_hours(&history, &[t0 + 10 * HOUR], 24.0)[0].is_nan());
}

#[test]
fn top_ups_count_only_when_margin_moved() {
    // Reserve source, no reserve, a top-up distance that always asks: nothing can move.
    let mut params = plain_params(10_000.0);
    params.leverage = 3.0;
    params.top_up_source = TopUpSource::Reserve;
    params.top_up_distance = 0.99;
    let timeline = flat_timeline(&[100.0; 5], &[100.0; 5], &[100.0; 5], HOUR);
    let (_, summary) = run(&timeline, &params);
    assert_eq!(summary.top_ups, 0);
}

#[test]
fn funding_apr_while_held_and_over_the_window() {
    // 97 hourly steps at 100; +0.01 % every 8 h; the short is liquidated by a spike at 48 h and
    // ("close") the run stays flat: held 48 h of a 96 h window, 5 settlements (8..40 h) held.
    let n = 97;
    let mut highs = vec![100.0; n];
    highs[48] = 1_000.0;
    let mut timeline = flat_timeline(&vec![100.0; n], &highs, &vec![100.0; n], HOUR);
    timeline.funding = (1..n).filter(|i| i % 8 == 0).map(|i| event_at(&timeline, i, 0.0001, 100.0)).collect();
    let mut params = plain_params(10_000.0);
    params.leverage = 2.0;
    let (_, summary) = run(&timeline, &params);
    assert_eq!(summary.liquidations, 1);
    assert_eq!(summary.settlements.len(), 5);
    let metrics = basis::measure::metrics::compute(&summary, "TEST", true);
    assert_close(metrics.funding_apr_while_held, 0.0005 * 8760.0 / 48.0, 1e-12); // 9.125 %
    assert_close(metrics.funding_apr_over_window, 0.0005 * 8760.0 / 96.0, 1e-12); // 4.5625 %
}

#[test]
fn always_on_stays_flat_after_a_closed_liquidation_unless_told_to_reenter() {
    let mut params = short_perp_params(0.005, LiquidationStyle::LiquidationPrice, 0.0125);
    let mut timeline = rally();
    timeline.ts_ms.push(timeline.ts_ms[2] + HOUR);
    for v in [&mut timeline.spot, &mut timeline.perp, &mut timeline.mark, &mut timeline.mark_high, &mut timeline.mark_low] {
        v.push(190_000.0);
    }
    timeline.staking_apr.push(0.0);
    timeline.spot_stale.push(0);
    let (ledger, _) = run(&timeline, &params);
    assert_eq!(ledger.row(3).state, state::FLAT);
    params.reenter_after_liquidation = true;
    params.entry.mode = EntryMode::AlwaysOn;
    let (ledger, summary) = run(&timeline, &params);
    assert_eq!(ledger.row(3).events & events::ENTRY, events::ENTRY);
    assert_eq!(summary.entries, 2);
}
