//! Coin-margined (inverse) perps: PnL and margin in the coin and in the quote currency, funding
//! in coin, and the liquidation of a levered short, each against a hand computation.

mod common;

use basis::measure::ledger::FullLedger;
use basis::model::TradeReason;
use basis::sim::{self, EngineParams};
use common::*;

fn inverse_params(leverage: f64) -> EngineParams {
    let mut p = plain_params(1000.0);
    p.inverse = true;
    p.leverage = leverage;
    p.close_at_end = false;
    p
}

/// 1x at 100: buy q = 1,000/100 = 10 coins, post all 10 as margin, short n = −1,000 USD.
/// - To 200: the contracts make n·(1/100 − 1/200) = −5 coins, margin 5 coins = 1,000; in quote
///   the coin margin gained 10·100 = +1,000 (`coin_margin`) and the perp lost 5·200 = −1,000.
/// - To 50: +15 coins (−1,000·(1/200 − 1/50)), margin 20 coins = 1,000; coin_margin
///   5·(50 − 200) = −750, perp 15·50 = +750.
/// The book is a synthetic dollar: equity 1,000 throughout, and it cannot be liquidated.
#[test]
fn a_one_x_inverse_carry_is_a_synthetic_dollar() {
    let t = flat_timeline(&[100.0, 200.0, 50.0], &[100.0, 200.0, 200.0], &[100.0, 100.0, 50.0], HOUR);
    let mut ledger = FullLedger::default();
    let summary = sim::run(&t, &inverse_params(1.0), &mut ledger);
    let r0 = ledger.row(0);
    assert_close(r0.perp_qty, -1000.0, 1e-9);
    assert_close(r0.spot_qty, 0.0, 1e-12);
    assert_close(r0.perp_margin, 1000.0, 1e-9);
    assert!(r0.liquidation_price.is_infinite(), "a 1x short inverse is never liquidated: {}", r0.liquidation_price);
    let r1 = ledger.row(1);
    assert_close(r1.perp_margin, 5.0 * 200.0, 1e-9);
    assert_close(r1.pnl.coin_margin, 1000.0, 1e-9);
    assert_close(r1.pnl.perp, -1000.0, 1e-9);
    assert_close(r1.equity, 1000.0, 1e-9);
    let r2 = ledger.row(2);
    assert_close(r2.perp_margin, 20.0 * 50.0, 1e-9);
    assert_close(r2.pnl.coin_margin, -750.0, 1e-9);
    assert_close(r2.pnl.perp, 750.0, 1e-9);
    assert_close(r2.equity, 1000.0, 1e-9);
    assert_eq!(summary.liquidations, 0);
}

/// Funding in coin: at rate +0.01 % on −1,000 USD valued at 100, the short receives
/// 1,000 × 0.0001 / 100 = 0.001 coin, booked at the close's spot 100: 0.1.
#[test]
fn inverse_funding_is_paid_in_coin() {
    let mut t = flat_timeline(&[100.0, 100.0, 100.0], &[100.0; 3], &[100.0; 3], HOUR);
    t.funding = vec![event_at(&t, 1, 0.0001, 100.0)].into();
    let mut ledger = FullLedger::default();
    let summary = sim::run(&t, &inverse_params(1.0), &mut ledger);
    assert_close(ledger.row(1).pnl.funding, 0.1, 1e-12);
    assert_close(ledger.row(1).perp_margin, (10.0 + 0.001) * 100.0, 1e-9);
    // The settlement record gives the position in coin: −1,000 / 100 = −10.
    assert_close(summary.settlements[0].perp_qty, -10.0, 1e-12);
}

/// 3x: of the 10 coins bought, 10/3 are margin and 20/3 stay as spot. With maintenance 0.4 %
/// the short's liquidation price is N(1 − mmr)/(N/mark − margin) = 996/(10 − 10/3) = 149.4.
/// The bar from 140 to a high of 160 touches it: at 140 the margin is 10/3 − 1,000·(1/100 −
/// 1/140) = 0.47619 coin; marked to 149.4 it is 0.026774 coin, exactly maintenance
/// (0.004·1,000/149.4); the clearance fee (1.25 % of 1,000/149.4 = 0.0837 coin) takes all of
/// it. The 20/3 spot coins survive.
#[test]
fn a_levered_inverse_short_is_liquidated_at_its_coin_price() {
    let t = flat_timeline(&[100.0, 140.0, 150.0], &[100.0, 140.0, 160.0], &[100.0, 100.0, 140.0], HOUR);
    let mut p = inverse_params(3.0);
    p.after_liquidation = basis::config::AfterLiquidation::Hold;
    let mut ledger = FullLedger::default();
    let summary = sim::run(&t, &p, &mut ledger);
    assert_close(ledger.row(0).spot_qty, 20.0 / 3.0, 1e-9);
    assert_close(ledger.row(0).liquidation_price, 996.0 / (10.0 - 10.0 / 3.0), 1e-9);
    assert_close(ledger.row(1).perp_margin, (10.0 / 3.0 - 1000.0 * (0.01 - 1.0 / 140.0)) * 140.0, 1e-9);
    let fill = summary.trades.iter().find(|t| t.reason == TradeReason::Liquidation).expect("liquidated");
    assert_eq!(fill.step, 2);
    assert_close(fill.reference_price, 149.4, 1e-9);
    let margin_at_liquidation = 10.0 / 3.0 - 1000.0 * (0.01 - 1.0 / 149.4);
    assert_close(margin_at_liquidation, 0.004 * 1000.0 / 149.4, 1e-9);
    assert_close(fill.fee, margin_at_liquidation * 140.0, 1e-9); // booked at the previous spot
    let r2 = ledger.row(2);
    assert_eq!(r2.perp_qty, 0.0);
    assert_close(r2.perp_margin, 0.0, 1e-12);
    assert_close(r2.spot_qty, 20.0 / 3.0, 1e-9);
    // Attribution closes on every step, coin margin included.
    let mut previous = 1000.0;
    for row in ledger.rows() {
        assert_close(row.equity - previous, row.pnl.total(), 1e-9);
        previous = row.equity;
    }
}

/// The same short liquidated in the first bar after entry: the bar starts from the entry's mark
/// (100), so the fill is at the liquidation price 149.4 and every row stays finite and adds up.
#[test]
fn an_inverse_short_liquidated_in_the_first_bar_starts_from_its_entry_mark() {
    let t = flat_timeline(&[100.0, 150.0], &[100.0, 160.0], &[100.0, 100.0], HOUR);
    let mut p = inverse_params(3.0);
    p.after_liquidation = basis::config::AfterLiquidation::Hold;
    let mut ledger = FullLedger::default();
    let summary = sim::run(&t, &p, &mut ledger);
    let fill = summary.trades.iter().find(|t| t.reason == TradeReason::Liquidation).expect("liquidated");
    assert_eq!(fill.step, 1);
    assert_close(fill.reference_price, 149.4, 1e-9);
    let mut previous = 1000.0;
    for row in ledger.rows() {
        assert!(row.equity.is_finite(), "{row:?}");
        assert_close(row.equity - previous, row.pnl.total(), 1e-9);
        previous = row.equity;
    }
}

/// `[venue] contract = "inverse"` runs the long carry only, and books refuse it for now.
#[test]
fn inverse_configs_are_checked() {
    let base = "[data]\nsymbol = \"BTCUSD\"\n[data.freqtrade]\ndatadir = \"x\"\npair = \"BTC/USD\"\ntimeframe = \"1h\"\n[venue]\ncontract = \"inverse\"\n";
    let config = basis::config::Config::from_toml_str(base, "test", std::path::Path::new(".")).expect("valid");
    assert!(basis::config::engine_params(&config).inverse);
    let err = basis::config::Config::from_toml_str(&format!("{base}[strategy]\ndirection = \"both\"\n"), "test", std::path::Path::new(".")).err().expect("refused");
    assert!(format!("{err:#}").contains("runs the long carry"), "{err:#}");
}
