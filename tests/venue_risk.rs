//! Venue risk as stress scenarios: a venue default written off and partly recovered, an
//! auto-deleveraging of a profitable perp, a slippage spike, and several scenarios combined on
//! one path. Expected values by hand in each test's comment.

mod common;

use basis::app::stress::scenario::{apply, Scenario};
use basis::measure::ledger::FullLedger;
use basis::model::TradeReason;
use basis::sim::forced::{DefaultedLeg, Forced, ForcedEvent};
use basis::sim::{self, EngineParams};
use common::*;

fn flat(prices: &[f64]) -> basis::data::align::MarketTimeline {
    flat_timeline(prices, prices, prices, HOUR)
}

fn params_with(forced: Vec<ForcedEvent>) -> EngineParams {
    let mut p = plain_params(1000.0);
    p.close_at_end = false;
    p.forced = forced;
    p
}

/// 1x at 100: q = 1,000/200 = 5 spot and 5 short perp with 500 margin. The perp venue fails at
/// step 3: the 500 is written off (liquidation −500), the spot is sold at the close
/// (`after_liquidation = "close"`), equity 500. Two days later 40 % of the 500 comes back: 700.
#[test]
fn a_venue_default_is_written_off_and_partly_recovered() {
    let t = flat(&[100.0; 60]);
    let event = ForcedEvent { at_ms: t.ts_ms[3], event: Forced::VenueDefault { leg: DefaultedLeg::Perp, recovery_rate: 0.4, recovery_delay_ms: 2 * DAY } };
    let mut ledger = FullLedger::default();
    let summary = sim::run(&t, &params_with(vec![event]), &mut ledger);
    assert_close(ledger.row(2).equity, 1000.0, 1e-9);
    assert_close(ledger.row(3).equity, 500.0, 1e-9);
    assert_close(ledger.row(3).pnl.liquidation, -500.0, 1e-9);
    assert_eq!(ledger.row(3).spot_qty, 0.0, "the unhedged spot is closed");
    assert_close(ledger.row(50).equity, 500.0, 1e-9);
    assert_close(ledger.row(51).equity, 700.0, 1e-9); // step 51 = step 3 + 48 h
    assert_close(ledger.row(51).pnl.liquidation, 200.0, 1e-9);
    assert_close(summary.pnl.liquidation, -300.0, 1e-9);
    let taken = summary.trades.iter().find(|t| t.reason == TradeReason::VenueDefault).unwrap();
    assert_eq!((taken.leg, taken.qty), ("perp", 5.0));
    assert_close(taken.fee, 500.0, 1e-9);
    // Attribution still closes every step.
    let mut previous = 1000.0;
    for row in ledger.rows() {
        assert_close(row.equity - previous, row.pnl.total(), 1e-9);
        previous = row.equity;
    }
}

/// A venue holding everything (`leg = "all"`) takes the whole 1,000; nothing is recovered.
#[test]
fn a_whole_venue_default_takes_everything() {
    let t = flat(&[100.0; 8]);
    let event = ForcedEvent { at_ms: t.ts_ms[2], event: Forced::VenueDefault { leg: DefaultedLeg::All, recovery_rate: 0.0, recovery_delay_ms: 0 } };
    let mut ledger = FullLedger::default();
    sim::run(&t, &params_with(vec![event]), &mut ledger);
    assert_close(ledger.row(2).equity, 0.0, 1e-9);
    assert_close(ledger.row(2).pnl.liquidation, -1000.0, 1e-9);
    assert_close(ledger.row(7).equity, 0.0, 1e-9);
}

/// The price falls 100 → 90, so the short perp (entry 100) is in profit: ADL of half closes 2.5
/// at the mark 90 with no fee, and the re-hedge (threshold 10 %) sells 2.5 again at the same
/// close. When the price rises instead, the perp is losing and ADL leaves it alone.
#[test]
fn adl_closes_part_of_a_profitable_perp_only() {
    let falling = flat(&[100.0, 95.0, 90.0, 90.0]);
    let event = ForcedEvent { at_ms: falling.ts_ms[2], event: Forced::Adl { share: 0.5 } };
    let mut p = params_with(vec![event]);
    p.rebalance_delta_threshold = 0.1;
    let mut ledger = FullLedger::default();
    let summary = sim::run(&falling, &p, &mut ledger);
    let adl: Vec<_> = summary.trades.iter().filter(|t| t.reason == TradeReason::Adl).collect();
    assert_eq!(adl.len(), 1);
    assert_close(adl[0].qty, 2.5, 1e-12);
    assert_close(adl[0].fill_price, 90.0, 1e-12);
    assert_eq!(adl[0].fee, 0.0);
    let rehedge = summary.trades.iter().find(|t| t.reason == TradeReason::Rebalance).expect("re-hedged");
    assert_eq!(rehedge.step, 2);
    assert_close(rehedge.qty, -2.5, 1e-12);
    assert_close(ledger.row(2).perp_qty, -5.0, 1e-12);

    let rising = flat(&[100.0, 105.0, 110.0, 110.0]);
    let event = ForcedEvent { at_ms: rising.ts_ms[2], event: Forced::Adl { share: 0.5 } };
    let summary = sim::run(&rising, &params_with(vec![event]), &mut FullLedger::default());
    assert!(summary.trades.iter().all(|t| t.reason != TradeReason::Adl), "a losing perp is not deleveraged");
}

/// Slippage 10 bp on both legs, ×10 for two hours from step 3. At 2x the entry rule sizes
/// q = 1,000/(100·1.001 + 100/2 + 100·0.001); the entry at step 0 pays q·100·0.1 % per leg, the
/// final close at step 4 (inside the spike) q·100·1 %.
#[test]
fn a_slippage_spike_multiplies_slippage_while_it_lasts() {
    let t = flat(&[100.0; 5]);
    let event = ForcedEvent { at_ms: t.ts_ms[3], event: Forced::SlippageSpike { multiplier: 10.0, duration_ms: 2 * HOUR } };
    let mut p = params_with(vec![event]);
    p.close_at_end = true;
    p.leverage = 2.0;
    p.costs.spot_slippage = 0.001;
    p.costs.perp_slippage = 0.001;
    let summary = sim::run(&t, &p, &mut FullLedger::default());
    let q = 1000.0 / (100.0 * 1.001 + 100.0 / 2.0 + 100.0 * 0.001);
    let entry: Vec<_> = summary.trades.iter().filter(|t| t.reason == TradeReason::Entry).collect();
    let last: Vec<_> = summary.trades.iter().filter(|t| t.reason == TradeReason::Final).collect();
    for trade in &entry {
        assert_close(trade.slippage, q * 100.0 * 0.001, 1e-9);
    }
    for trade in &last {
        assert_close(trade.slippage, q * 100.0 * 0.01, 1e-9);
    }
}

/// A combined scenario: a −20 % crash at `at`, ADL 3 h later and the perp venue's default 5 h
/// later, on one path. The crash moves every price from `at` on; the two forced events land at
/// their offsets, in time order.
#[test]
fn combined_scenarios_apply_each_part_at_its_offset() {
    let t = flat(&[100.0; 24]);
    let text = r#"
kind = "combined"
at = "2024-01-01T06:00:00Z"
offsets_hours = [0, 3, 5]
parts = [
    { kind = "price_shock", pct = -0.2, hours = 0 },
    { kind = "adl", share = 0.5 },
    { kind = "venue_default", leg = "perp", recovery_rate = 0.1, recovery_days = 30 },
]
"#;
    let scenario: Scenario = toml::from_str(text).expect("a combined scenario parses");
    assert_eq!(scenario.label(), "price -20 % over 0 h + ADL 50 % of the perp + perp venue default, 10 % recovered");
    let base = plain_params(1000.0);
    let stressed = apply(&scenario, &t, &base, &|_, _| None, &|_, _| unreachable!()).expect("applies");
    // 2024-01-01 06:00 is step 6 (T0 is midnight, hourly steps).
    assert_eq!(stressed.start_ms, T0 + 6 * HOUR);
    assert_close(stressed.timeline.spot[5], 100.0, 1e-12);
    assert_close(stressed.timeline.spot[6], 80.0, 1e-12);
    assert_close(stressed.timeline.mark_prices()[23], 80.0, 1e-12);
    let at: Vec<i64> = stressed.params.forced.iter().map(|e| e.at_ms).collect();
    assert_eq!(at, vec![T0 + 9 * HOUR, T0 + 11 * HOUR]);
    assert!(matches!(stressed.params.forced[0].event, Forced::Adl { share } if share == 0.5));
    assert!(matches!(stressed.params.forced[1].event, Forced::VenueDefault { recovery_rate, .. } if recovery_rate == 0.1));
    // Mismatched offsets are an input error.
    let bad: Scenario = toml::from_str("kind = \"combined\"\nat = \"2024-01-01\"\noffsets_hours = [1]\nparts = [{ kind = \"adl\", share = 0.5 }, { kind = \"adl\", share = 0.5 }]").unwrap();
    let err = apply(&bad, &t, &base, &|_, _| None, &|_, _| unreachable!()).err().expect("refused");
    assert!(format!("{err:#}").contains("offsets_hours has 1 values for 2 parts"), "{err:#}");
}
