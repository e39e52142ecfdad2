//! Dated futures and the cash benchmark, against hand-computed figures: a carry held to
//! delivery earns (F0 − S0) × q less its costs; a roll closes one contract and opens the next
//! at their own prices; `best` moves at the step where the ranking flips net of the switch's
//! cost, and earns funding only while it holds the perp; the cash rate enters Sharpe as
//! the formula says and idle cash earns it.

mod common;

use basis::measure::ledger::FullLedger;
use basis::model::{DatedContracts, Instrument, TradeReason};
use basis::sim::book::Costs;
use basis::sim::dated::{apply, best_schedule, front_schedule, RollRules};
use common::{assert_close, event_at, flat_timeline, plain_params, DAY, T0};

const SPOT_FEE: f64 = 0.001;
const PERP_FEE: f64 = 0.0005;
const SPOT_SLIP: f64 = 0.0002;
const PERP_SLIP: f64 = 0.0001;

fn costly_params(capital: f64) -> basis::sim::EngineParams {
    let mut params = plain_params(capital);
    params.costs = Costs { spot_fee: SPOT_FEE, perp_fee: PERP_FEE, spot_slippage: SPOT_SLIP, perp_slippage: PERP_SLIP };
    params
}

/// One contract per `(name, expiry day, settlement, closes)`, on a daily clock from T0.
fn contracts(list: &[(&str, i64, f64, Vec<f64>)]) -> DatedContracts {
    let mut out = DatedContracts::default();
    for (name, expiry_day, settlement, closes) in list {
        out.names.push(name.to_string());
        out.expiry_ms.push(T0 + expiry_day * DAY);
        out.settlement.push(*settlement);
        out.settlement_from_data.push(true);
        out.high.push(closes.clone());
        out.low.push(closes.clone());
        out.close.push(closes.clone());
    }
    out
}

/// Every row's components add up to its change in equity.
fn assert_rows_add_up(ledger: &FullLedger, capital: f64) {
    let mut previous = capital;
    for row in ledger.rows() {
        assert_close(row.pnl.total(), row.equity - previous, 1e-8);
        previous = row.equity;
    }
}

#[test]
fn a_dated_carry_held_to_delivery_earns_the_basis_locked_in_at_entry_less_costs() {
    let spot = [100.0, 110.0, 90.0, 105.0, 102.0];
    let mut timeline = flat_timeline(&spot, &spot, &spot, DAY);
    // The contract delivers at the last step; its settlement price is 102 (the spot then).
    let nan = f64::NAN;
    let dated = contracts(&[("SYNTH_A", 4, 102.0, vec![103.0, 112.0, 91.5, 105.6, nan])]);
    let front = front_schedule(&dated, &timeline.ts_ms, RollRules { min_days_to_expiry: 1.0, roll_days_before: 0.0 });
    assert_eq!(front, vec![Some(0), Some(0), Some(0), Some(0), None]);
    let choice: Vec<Instrument> = front.iter().map(|f| f.map_or(Instrument::None, Instrument::Dated)).collect();
    apply(&mut timeline, &dated, &choice);
    let capital = 10_000.0;
    let mut ledger = FullLedger::default();
    let summary = basis::sim::run(&timeline, &costly_params(capital), &mut ledger);

    // By hand: size so spot (with its costs) and the 1x margin (with the perp's costs) use the capital.
    let (s0, f0, settle) = (100.0, 103.0, 102.0);
    let q = capital / (s0 * (1.0 + SPOT_SLIP) * (1.0 + SPOT_FEE) + f0 + f0 * (PERP_FEE + PERP_SLIP));
    let spot_buy_costs = q * s0 * (1.0 + SPOT_SLIP) * SPOT_FEE + q * s0 * SPOT_SLIP;
    let future_sell_costs = q * f0 * (1.0 - PERP_SLIP) * PERP_FEE + q * f0 * PERP_SLIP;
    let delivery_fee = q * settle * PERP_FEE; // no slippage at delivery
    let spot_sell_costs = q * settle * (1.0 - SPOT_SLIP) * SPOT_FEE + q * settle * SPOT_SLIP;
    let costs = spot_buy_costs + future_sell_costs + delivery_fee + spot_sell_costs;
    let expected = q * (f0 - s0) - costs;
    assert_close(summary.final_equity - capital, expected, 1e-7);
    // The basis is the spot's and the future's price PnL together: (F0 − S0) × q.
    assert_close(summary.pnl.spot + summary.pnl.perp, q * (f0 - s0), 1e-7);
    assert_close(summary.pnl.funding, 0.0, 0.0);
    let delivery: Vec<_> = summary.trades.iter().filter(|t| t.reason == TradeReason::Delivery).collect();
    assert_eq!(delivery.len(), 1);
    assert_eq!(delivery[0].leg, "dated");
    assert_close(delivery[0].fill_price, settle, 0.0);
    assert_close(delivery[0].slippage, 0.0, 0.0);
    assert_rows_add_up(&ledger, capital);
}

#[test]
fn a_roll_closes_the_front_contract_and_opens_the_next_at_their_own_prices() {
    let spot = [100.0; 7];
    let mut timeline = flat_timeline(&spot, &spot, &spot, DAY);
    let nan = f64::NAN;
    // A delivers on day 5, B on day 40; with roll_days_before = 2 the roll is at day 3.
    let dated = contracts(&[
        ("A", 5, 100.0, vec![101.0, 101.5, 101.2, 100.8, 100.5, 100.0, nan]),
        ("B", 40, nan, vec![103.0, 102.8, 102.6, 102.5, 102.3, 102.0, 101.9]),
    ]);
    let front = front_schedule(&dated, &timeline.ts_ms, RollRules { min_days_to_expiry: 1.0, roll_days_before: 2.0 });
    assert_eq!(front, vec![Some(0), Some(0), Some(0), Some(1), Some(1), Some(1), Some(1)]);
    let choice: Vec<Instrument> = front.iter().map(|f| f.map_or(Instrument::None, Instrument::Dated)).collect();
    apply(&mut timeline, &dated, &choice);
    let capital = 10_000.0;
    let mut ledger = FullLedger::default();
    let summary = basis::sim::run(&timeline, &costly_params(capital), &mut ledger);

    let q = capital / (100.0 * (1.0 + SPOT_SLIP) * (1.0 + SPOT_FEE) + 101.0 + 101.0 * (PERP_FEE + PERP_SLIP));
    // Short A from 101 to 100.8, short B from 102.5 to 101.9.
    let price_pnl = -q * (100.8 - 101.0) - q * (101.9 - 102.5);
    assert_close(summary.pnl.perp, price_pnl, 1e-8);
    // Each of the four futures fills pays fee and slippage on its own price.
    let sell = |f: f64| q * f * (1.0 - PERP_SLIP) * PERP_FEE + q * f * PERP_SLIP;
    let buy = |f: f64| q * f * (1.0 + PERP_SLIP) * PERP_FEE + q * f * PERP_SLIP;
    let futures_costs = sell(101.0) + buy(100.8) + sell(102.5) + buy(101.9);
    let spot_costs = q * 100.0 * (1.0 + SPOT_SLIP) * SPOT_FEE + q * 100.0 * SPOT_SLIP + q * 100.0 * (1.0 - SPOT_SLIP) * SPOT_FEE + q * 100.0 * SPOT_SLIP;
    assert_close(summary.pnl.fees + summary.pnl.slippage, -(futures_costs + spot_costs), 1e-8);
    assert_close(summary.final_equity - capital, price_pnl - futures_costs - spot_costs, 1e-7);
    let rolls: Vec<_> = summary.trades.iter().filter(|t| t.reason == TradeReason::Roll).collect();
    assert_eq!(rolls.len(), 2, "the roll is two fills");
    assert!(rolls.iter().all(|t| t.step == 3 && t.leg == "dated"));
    assert_close(rolls[0].reference_price, 100.8, 0.0);
    assert_close(rolls[1].reference_price, 102.5, 0.0);
    // The ledger's derivative price after the roll is B's.
    assert_close(ledger.row(3).perp_price, 102.5, 0.0);
    assert_rows_add_up(&ledger, capital);
}

#[test]
fn best_switches_at_the_step_where_the_ranking_flips_net_of_the_switch_cost() {
    let n = 9;
    let spot = vec![100.0; n];
    let mut timeline = flat_timeline(&spot, &spot, &spot, DAY);
    // The dated contract's annualised basis is 10 % at every step: F = S (1 + 0.10 × days / 365).
    let expiry_day = 100;
    let closes: Vec<f64> = (0..n).map(|i| 100.0 * (1.0 + 0.10 * (expiry_day - i as i64) as f64 / 365.0)).collect();
    let dated = contracts(&[("Q", expiry_day, f64::NAN, closes)]);
    let front = front_schedule(&dated, &timeline.ts_ms, RollRules { min_days_to_expiry: 14.0, roll_days_before: 3.0 });
    // The perp's trailing funding APR rises past 10 % at step 3; the switch costs
    // 2 × (5 + 1) bp = 0.12 % of notional, spread over the days left: 0.0012 × 365 / days.
    let perp_apr = [0.05, 0.08, 0.10, 0.103, 0.104, 0.1047, 0.105, 0.12, 0.12];
    // Step 4: 96 days left, cost 0.456 % APR > 0.4 % advantage; step 5: 95 days, 0.4611 % < 0.47 %.
    let switch_cost = 2.0 * (PERP_FEE + PERP_SLIP);
    // With a horizon past the expiry, the days to expiry spread the cost.
    let choice = best_schedule(&front, &dated, &timeline, &perp_apr, switch_cost, 1000.0, &[]);
    let expected: Vec<Instrument> = (0..n).map(|i| if i < 5 { Instrument::Dated(0) } else { Instrument::Perp }).collect();
    assert_eq!(choice, expected);
    // Over a 7-day horizon the switch costs 0.0012 × 365 / 7 = 6.26 % APR: a 2-point edge never pays.
    let patient = best_schedule(&front, &dated, &timeline, &perp_apr, switch_cost, 7.0, &[]);
    assert!(patient.iter().all(|c| *c == Instrument::Dated(0)));

    // In the engine: funding is paid only over bars that held the perp (bars 6.. end at a
    // settlement, the choice made at step 5's close), and the switch is two fills at step 5.
    timeline.funding = (1..n).map(|i| event_at(&timeline, i, 0.001, 100.0)).collect();
    apply(&mut timeline, &dated, &choice);
    let capital = 10_000.0;
    let mut ledger = FullLedger::default();
    let summary = basis::sim::run(&timeline, &plain_params(capital), &mut ledger);
    let switches: Vec<_> = summary.trades.iter().filter(|t| t.reason == TradeReason::Switch).collect();
    assert_eq!(switches.len(), 2);
    assert!(switches.iter().all(|t| t.step == 5));
    assert_eq!((switches[0].leg, switches[1].leg), ("dated", "perp"));
    let q = summary.trades[0].qty;
    // Bars 6, 7 and 8 held the perp: three settlements of 0.1 % on q at 100.
    assert_close(summary.pnl.funding, 3.0 * q * 0.001 * 100.0, 1e-9);
    assert_eq!(summary.settlements.len(), 3);
    assert_eq!(summary.window_settlements.len(), n - 1, "every settlement still counts for the market");
    assert_rows_add_up(&ledger, capital);
}

#[test]
fn the_cash_rate_is_the_risk_free_rate_of_sharpe_and_sortino() {
    // Four daily closes; the cash rate is 3.65 % then 7.3 % APR (0.01 % and 0.02 % a day).
    let summary = basis::sim::RunSummary {
        steps: 4,
        first_ts_ms: T0,
        last_ts_ms: T0 + 3 * DAY,
        initial_capital: 100.0,
        final_equity: 101.0,
        daily_equity: vec![(T0, 100.2), (T0 + DAY, 100.1), (T0 + 2 * DAY, 100.6), (T0 + 3 * DAY, 101.0)],
        cash_apr_by_day: vec![0.0365, 0.0365, 0.073, 0.073],
        cash_apr_mean: 0.05,
        ..Default::default()
    };
    let metrics = basis::measure::metrics::compute(&summary, "T", true);
    // By hand: excess returns r_d − apr_d / 365.
    let raw = [100.2 / 100.0 - 1.0, 100.1 / 100.2 - 1.0, 100.6 / 100.1 - 1.0, 101.0 / 100.6 - 1.0];
    let rf = [0.0001, 0.0001, 0.0002, 0.0002];
    let excess: Vec<f64> = raw.iter().zip(rf).map(|(r, f)| r - f).collect();
    let mean = excess.iter().sum::<f64>() / 4.0;
    let std = (excess.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
    let downside = (excess.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / 4.0).sqrt();
    assert_close(metrics.sharpe, mean / std * 365f64.sqrt(), 1e-9);
    assert_close(metrics.sortino, mean / downside * 365f64.sqrt(), 1e-9);
    // Without a cash rate Sharpe is the plain one, and higher.
    let plain = basis::measure::metrics::compute(&basis::sim::RunSummary { cash_apr_by_day: Vec::new(), cash_apr_mean: 0.0, ..summary.clone() }, "T", true);
    assert!(plain.sharpe > metrics.sharpe);
    let years = 3.0 / 365.0;
    assert_close(metrics.excess_apr_over_cash, 0.01 / years - 0.05, 1e-9);
}

#[test]
fn idle_cash_earns_the_cash_rate_known_at_the_start_of_each_interval() {
    // Flat prices, half the capital kept in reserve; 4 % then 6 % APR.
    let prices = [100.0; 4];
    let mut timeline = flat_timeline(&prices, &prices, &prices, DAY);
    timeline.cash_apr = vec![0.04, 0.06, 0.06, 0.06];
    let mut params = plain_params(10_000.0);
    params.reserve_fraction = 0.5;
    params.cash_earns = true;
    params.close_at_end = false;
    let mut ledger = FullLedger::default();
    let mut summary = basis::sim::run(&timeline, &params, &mut ledger);
    // 5,000 in reserve: a day at 4 %, then two at 6 %, compounding daily.
    let mut cash = 5_000.0;
    let mut earned = 0.0;
    for apr in [0.04, 0.06, 0.06] {
        let interest = cash * apr / 365.0;
        earned += interest;
        cash += interest;
    }
    assert_close(summary.pnl.interest, earned, 1e-9);
    assert_close(summary.final_equity, 10_000.0 + earned, 1e-9);
    assert_rows_add_up(&ledger, 10_000.0);
    basis::measure::metrics::attach_cash_rate(&mut summary, &timeline);
    assert_close(summary.cash_apr_mean, (0.04 + 0.06 + 0.06) / 3.0, 1e-12);
    // Without cash_earns the rate is only the benchmark.
    params.cash_earns = false;
    let idle = basis::sim::run(&timeline, &params, &mut basis::model::NoLedger);
    assert_close(idle.pnl.interest, 0.0, 0.0);
}
