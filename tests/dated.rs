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
/// The taker fee charged at delivery (the strategy's own perp fee may be a maker one).
const DELIVERY_FEE: f64 = 0.0004;

fn costly_params(capital: f64) -> basis::sim::EngineParams {
    let mut params = plain_params(capital);
    params.costs = Costs { spot_fee: SPOT_FEE, perp_fee: PERP_FEE, spot_slippage: SPOT_SLIP, perp_slippage: PERP_SLIP, ..Costs::FREE };
    params.delivery_fee = DELIVERY_FEE;
    params
}

/// One contract per `(name, expiry day, settlement, closes)`, on a daily clock from T0.
fn contracts(list: &[(&str, i64, f64, Vec<f64>)]) -> DatedContracts {
    let mut out = DatedContracts::default();
    for (name, expiry_day, settlement, closes) in list {
        out.names.push(name.to_string());
        out.expiry_ms.push(T0 + expiry_day * DAY);
        out.settlement.push(*settlement);
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
    let delivery_fee = q * settle * DELIVERY_FEE; // no slippage at delivery
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

/// A dated contract is liquidated on its mark, not its last price (MARGIN.md §1.1): a 2x short
/// of 100 contracts at 100 with 5,000 of margin (15,000 of capital: q = 15,000 / (100 + 100/2))
/// has LP = (5,000 + 100·100) / (100·1.004) = 149.4024. The last price never leaves 100; the
/// mark's bar reaches 160. With the mark given the contract is liquidated at LP on step 1;
/// with only last prices it is not.
#[test]
fn a_dated_contract_is_liquidated_on_its_mark() {
    let spot = [100.0, 100.0, 100.0];
    let run = |with_mark: bool| {
        let mut timeline = flat_timeline(&spot, &spot, &spot, DAY);
        let mut dated = contracts(&[("SYNTH_A", 30, f64::NAN, vec![100.0, 100.0, 100.0])]);
        if with_mark {
            dated.mark = vec![vec![100.0, 150.0, 150.0]];
            dated.mark_high = vec![vec![100.0, 160.0, 150.0]];
            dated.mark_low = vec![vec![100.0, 100.0, 150.0]];
        }
        let front = front_schedule(&dated, &timeline.ts_ms, RollRules { min_days_to_expiry: 1.0, roll_days_before: 0.0 });
        let choice: Vec<Instrument> = front.iter().map(|f| f.map_or(Instrument::None, Instrument::Dated)).collect();
        apply(&mut timeline, &dated, &choice);
        let mut params = plain_params(15_000.0);
        params.leverage = 2.0;
        params.close_at_end = false;
        let mut ledger = FullLedger::default();
        let summary = basis::sim::run(&timeline, &params, &mut ledger);
        assert_rows_add_up(&ledger, 15_000.0);
        (ledger, summary)
    };
    let (ledger, summary) = run(true);
    assert_close(ledger.row(0).perp_qty, -100.0, 1e-9);
    assert_close(ledger.row(0).liquidation_price, 15_000.0 / 100.4, 1e-9);
    let liquidation = summary.trades.iter().find(|t| t.reason == TradeReason::Liquidation).expect("liquidated on the mark");
    assert_eq!(liquidation.step, 1);
    assert_close(liquidation.fill_price, 149.402390438, 1e-6);
    let (_, summary) = run(false);
    assert!(summary.trades.iter().all(|t| t.reason != TradeReason::Liquidation), "the last price alone never reaches LP");
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

#[test]
fn the_reverse_carrys_borrow_rate_follows_its_series() {
    // Reverse carry at flat prices: borrow 10 % APR for the first day, 20 % after; daily steps.
    let prices = [100.0; 4];
    let mut timeline = flat_timeline(&prices, &prices, &prices, DAY);
    timeline.borrow_apr = vec![0.10, 0.20, 0.20, 0.20];
    let mut params = plain_params(10_000.0);
    params.entry.direction = basis::config::Direction::Reverse;
    params.close_at_end = false;
    let summary = basis::sim::run(&timeline, &params, &mut basis::model::NoLedger);
    // Borrowed q = 10,000 / (100 + 100) = 50 units, owed in the asset and compounding daily.
    let mut owed = 50.0;
    let mut cost = 0.0;
    for apr in [0.10, 0.20, 0.20] {
        let accrued = owed * apr / 365.0;
        cost += accrued * 100.0;
        owed += accrued;
    }
    assert_close(-summary.pnl.borrow, cost, 1e-9);
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn generic_dated_files_load_long_tables_single_contracts_and_continuous_series() {
    let dir = tempfile::tempdir().unwrap();
    // A long table of two contracts, with a settlement price for the first.
    let long = write(
        dir.path(),
        "long.csv",
        "time,symbol,expiry,close,settle\n\
         2024-03-28T00:00:00Z,Q1,2024-03-29T08:00:00Z,101,\n\
         2024-03-28T00:00:00Z,Q2,2024-06-28T08:00:00Z,103,\n\
         2024-03-29T08:00:00Z,Q1,2024-03-29T08:00:00Z,100.2,100.1\n\
         2024-03-29T08:00:00Z,Q2,2024-06-28T08:00:00Z,102.5,\n",
    );
    let mut source = basis::config::DatedSource::binance_klines(long);
    source.format = basis::config::DatedFormat::Generic;
    source.close_time_column = Some("time".into());
    source.contract_column = Some("symbol".into());
    source.expiry_column = Some("expiry".into());
    source.settlement_column = Some("settle".into());
    let contracts = basis::data::dated::load_contracts(&source, "data.dated", &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!(contracts.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["Q1", "Q2"]);
    assert_eq!(contracts[0].settlement, Some(100.1));
    assert_eq!(contracts[1].settlement, None);
    assert_eq!(contracts[1].bars.close, vec![103.0, 102.5]);

    // One contract per file: the name and expiry from the config.
    let single = write(dir.path(), "q3.csv", "time,close\n2024-06-01T00:00:00Z,104\n2024-06-02T00:00:00Z,104.5\n");
    let mut one = basis::config::DatedSource::binance_klines(single);
    one.format = basis::config::DatedFormat::Generic;
    one.close_time_column = Some("time".into());
    one.contract = Some("BTCUSDT_240927".into());
    one.expiry = Some("2024-09-27T08:00:00Z".into());
    let contracts = basis::data::dated::load_contracts(&one, "data.dated", &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!(basis::time::format_ms(contracts[0].expiry_ms), "2024-09-27 08:00:00Z");

    // A continuous series: the contract column changes at the roll dates.
    let continuous = write(
        dir.path(),
        "continuous.csv",
        "time,contract,expiry,close\n2024-03-26T00:00:00Z,Q1,2024-03-29T08:00:00Z,101\n2024-03-27T00:00:00Z,Q2,2024-06-28T08:00:00Z,103\n2024-03-28T00:00:00Z,Q2,2024-06-28T08:00:00Z,103.1\n",
    );
    let mut series = source.clone();
    series.path = continuous;
    series.contract_column = Some("contract".into());
    series.settlement_column = None;
    let contracts = basis::data::dated::load_contracts(&series, "data.dated", &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!((contracts[0].bars.ts_ms.len(), contracts[1].bars.ts_ms.len()), (1, 2));

    // Bad input names the file, the row and what to do.
    let clash = write(dir.path(), "clash.csv", "time,symbol,expiry,close,settle\n2024-03-28T00:00:00Z,Q1,2024-03-29T08:00:00Z,101,\n2024-03-29T00:00:00Z,Q1,2024-06-28T08:00:00Z,101,\n");
    let mut bad = source.clone();
    bad.path = clash;
    let err = format!("{:#}", basis::data::dated::load_contracts(&bad, "data.dated", &mut Vec::new(), &mut Vec::new()).unwrap_err());
    assert!(err.contains("clash.csv: line 3") && err.contains("one contract has one expiry"), "{err}");
    let mut no_expiry = source.clone();
    no_expiry.expiry_column = None;
    let err = format!("{:#}", basis::data::dated::load_contracts(&no_expiry, "data.dated", &mut Vec::new(), &mut Vec::new()).unwrap_err());
    assert!(err.contains("expiry_column") && err.contains("expiry"), "{err}");
    let misnamed = write(dir.path(), "BTCUSDT-1h-2024-01.csv", "x\n");
    let err = format!("{:#}", basis::data::dated::load_contracts(&basis::config::DatedSource::binance_klines(misnamed), "data.dated", &mut Vec::new(), &mut Vec::new()).unwrap_err());
    assert!(err.contains("BTCUSDT_240329-1h-2024-01.csv"), "{err}");
}

#[test]
fn the_sample_dated_carry_rolls_three_days_before_each_delivery_and_adds_up() {
    let config = basis::config::Config::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/examples/dated-quarterly.toml"))).unwrap();
    let result = basis::app::backtest::run(&config).unwrap();
    // Deliveries inside the sample (last Friday of the quarter, 08:00 UTC): 2024-09-27,
    // 2024-12-27, 2025-03-28 and 2025-06-27; each roll is at the first step 3 days before.
    let rolls: Vec<String> = result.summary.trades.iter().filter(|t| t.reason == TradeReason::Roll && t.qty > 0.0).map(|t| basis::time::format_ms(t.ts_ms)).collect();
    assert_eq!(rolls, ["2024-09-24 08:00:00Z", "2024-12-24 08:00:00Z", "2025-03-25 08:00:00Z", "2025-06-24 08:00:00Z"]);
    assert_eq!(result.metrics.rolls, 4);
    assert_eq!(result.summary.pnl.funding, 0.0, "a dated contract pays no funding");
    assert_close(result.metrics.cash_apr, 0.045, 1e-12);
    assert_close(result.metrics.excess_apr_over_cash, result.metrics.apr - 0.045, 1e-12);
    assert_rows_add_up(&result.ledger, config.portfolio.initial_capital);
    assert!(result.summary.trades.iter().filter(|t| t.leg != "spot").all(|t| t.leg == "dated"));
}

#[test]
fn the_term_structure_ranks_contracts_by_expiry_and_annualises_their_basis() {
    let spot = [100.0, 100.0];
    let timeline = flat_timeline(&spot, &spot, &spot, DAY);
    let nan = f64::NAN;
    // At T0: A (73 days left) at 101, B (146 days) at 103; at T0 + 1 day only B trades.
    let dated = contracts(&[("A", 73, nan, vec![101.0, nan]), ("B", 146, nan, vec![103.0, 103.2])]);
    let rows = basis::app::term::rows_of(&timeline, &dated, &[0.12, 0.13]);
    assert_eq!(rows.len(), 3);
    assert_eq!((rows[0].contract.as_str(), rows[0].tenor), ("A", "front"));
    assert_eq!((rows[1].contract.as_str(), rows[1].tenor), ("B", "next"));
    assert_eq!((rows[2].contract.as_str(), rows[2].tenor), ("B", "front"));
    // (101 / 100 − 1) × 365 / 73 = 5 %; (103 / 100 − 1) × 365 / 146 = 7.5 %.
    assert_close(rows[0].annualised_basis, 0.05, 1e-12);
    assert_close(rows[1].annualised_basis, 0.075, 1e-12);
    assert_close(rows[2].annualised_basis, 0.032 * 365.0 / 145.0, 1e-12);
    assert_close(rows[2].perp_funding_apr, 0.13, 0.0);
}

/// Real data: BTCUSDT hourly 2019–2026 with a 5 % cash rate. Sharpe is recomputed here from the
/// ledger's daily closing equity with the day's risk-free return 0.05 / 365.
#[test]
fn real_btc_sharpe_over_a_cash_rate_follows_the_formula() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/examples/freqtrade-btc-1h.toml");
    if !common::real_data_dir().join("freqtrade-binance-1h").is_dir() {
        eprintln!("skipped: ../shared/data/freqtrade-binance-1h is not here");
        return;
    }
    let mut config = basis::config::Config::load(&path).unwrap();
    config.data.cash_rate = Some(basis::config::RateSource { apr: Some(0.05), path: None, time_column: "time".into(), time_unit: basis::config::TimeFormat::Auto, apr_column: "apr".into(), percent: false, utc_offset_hours: None, time_zone: None });
    let result = basis::app::backtest::run(&config).unwrap();
    let ts = result.ledger.ts_ms();
    let equity = result.ledger.column("equity").unwrap();
    let mut closes: Vec<(i64, f64)> = Vec::new();
    for (t, e) in ts.iter().zip(equity) {
        let day = t.div_euclid(DAY);
        match closes.last_mut() {
            Some(last) if last.0 == day => last.1 = *e,
            _ => closes.push((day, *e)),
        }
    }
    let mut previous = config.portfolio.initial_capital;
    let excess: Vec<f64> = closes
        .iter()
        .map(|&(_, e)| {
            let r = e / previous - 1.0 - 0.05 / 365.0;
            previous = e;
            r
        })
        .collect();
    let n = excess.len() as f64;
    let mean = excess.iter().sum::<f64>() / n;
    let std = (excess.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    assert_close(result.metrics.sharpe, mean / std * 365f64.sqrt(), 1e-9);
    assert_close(result.metrics.excess_apr_over_cash, result.metrics.apr - 0.05, 1e-12);
    // Over 2019–2026 the BTC carry earned more than 5 % cash, but by less than its APR.
    assert!(result.metrics.excess_apr_over_cash > 0.0 && result.metrics.excess_apr_over_cash < result.metrics.apr);
}

#[test]
fn no_roll_at_the_last_step_when_everything_closes_there() {
    // The roll falls on the last step: with close_at_end the old contract is simply closed.
    let spot = [100.0; 4];
    let mut timeline = flat_timeline(&spot, &spot, &spot, DAY);
    let dated = contracts(&[("A", 5, f64::NAN, vec![101.0, 101.0, 101.0, 101.0]), ("B", 40, f64::NAN, vec![103.0; 4])]);
    let front = front_schedule(&dated, &timeline.ts_ms, RollRules { min_days_to_expiry: 1.0, roll_days_before: 2.0 });
    assert_eq!(front[3], Some(1), "day 3 has 2 days left: the schedule rolls");
    let choice: Vec<Instrument> = front.iter().map(|f| f.map_or(Instrument::None, Instrument::Dated)).collect();
    apply(&mut timeline, &dated, &choice);
    let summary = basis::sim::run(&timeline, &costly_params(10_000.0), &mut basis::model::NoLedger);
    assert!(summary.trades.iter().all(|t| t.reason != TradeReason::Roll));
    let last_future = summary.trades.iter().rev().find(|t| t.leg == "dated").unwrap();
    assert_eq!((last_future.reason, last_future.reference_price), (TradeReason::Final, 101.0));
}

#[test]
fn after_the_last_delivery_nothing_is_re_hedged_and_a_delivery_counts_once() {
    // The only contract delivers at the last step; with close_at_end = false the spot stays,
    // and no perp is opened against it at the settled price.
    let spot = [100.0, 100.0, 100.0];
    let mut timeline = flat_timeline(&spot, &spot, &spot, DAY);
    let dated = contracts(&[("A", 2, 100.0, vec![101.0, 100.5, f64::NAN])]);
    let front = front_schedule(&dated, &timeline.ts_ms, RollRules { min_days_to_expiry: 1.0, roll_days_before: 0.0 });
    let choice: Vec<Instrument> = front.iter().map(|f| f.map_or(Instrument::None, Instrument::Dated)).collect();
    apply(&mut timeline, &dated, &choice);
    let mut params = costly_params(10_000.0);
    params.close_at_end = false;
    let mut summary = basis::sim::run(&timeline, &params, &mut basis::model::NoLedger);
    let after: Vec<_> = summary.trades.iter().filter(|t| t.step == 2).collect();
    assert_eq!(after.len(), 1, "only the delivery at the last step: {after:?}");
    assert_eq!(after[0].reason, TradeReason::Delivery);
    summary.last_ts_ms = timeline.ts_ms[2];
    let metrics = basis::measure::metrics::compute(&summary, "T", true);
    assert_eq!((metrics.deliveries, metrics.rolls), (1, 0));
}

#[test]
fn dated_and_cash_rate_configs_are_checked_with_the_key_named() {
    let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/data/examples/dated-quarterly.toml")).unwrap();
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/examples"));
    let error = |text: &str| -> String {
        match basis::config::Config::from_toml_str(text, "test", dir) {
            Ok(config) => format!("{:#}", basis::app::backtest::run(&config).err().expect("an error")),
            Err(err) => format!("{err:#}"),
        }
    };
    // instrument = "dated" without contracts.
    let no_contracts = base.replace("[data.dated]\nformat = \"binance_klines\"\npath = \"../sample/dated/SYNTHUSDT_*-1h-*.csv\"\n", "");
    assert!(error(&no_contracts).contains("needs [data.dated]"), "{}", error(&no_contracts));
    // cash_earns without a cash rate.
    let no_rate = base.replace("[data.cash_rate]\napr = 0.045\n", "");
    assert!(error(&no_rate).contains("cash_earns") && error(&no_rate).contains("[data.cash_rate]"), "{}", error(&no_rate));
    // A percent given as a decimal APR.
    let percent = base.replace("apr = 0.045", "apr = 4.5");
    assert!(error(&percent).contains("percent = true"), "{}", error(&percent));
    // The dated leg holds the long carry from the first step.
    let threshold = base.replace("mode = \"always_on\"", "mode = \"funding_threshold\"");
    assert!(error(&threshold).contains("always_on"), "{}", error(&threshold));
    // No contract has enough days left in the window.
    let too_long = base.replace("min_days_to_expiry = 14.0", "min_days_to_expiry = 300.0");
    assert!(error(&too_long).contains("strategy.min_days_to_expiry"), "{}", error(&too_long));
}
