//! Perp-vs-perp pairs (`sim::perp_perp`, `kind = "perp_perp"` books): a hand-computed path with
//! an hourly and an 8-hourly venue, the interval-weighted funding spread by hand, a liquidation
//! at the bankruptcy price, the attribution over random paths, and real Binance / Bybit /
//! Hyperliquid data whose funding streams are summed here from the raw files.

mod common;

use basis::config::{Direction, EntryMode};
use basis::data::align::{MarketTimeline, Settlement};
use basis::sim::margin::LiquidationStyle;
use basis::sim::perp_perp::{run, PerpPerpParams, PerpPerpRow};
use basis::sim::policy::EntryRule;
use common::{assert_close, flat_timeline, plain_params, real_data_dir, HOUR, T0};
use proptest::prelude::*;

fn pp_params(capital: f64, leverage: f64) -> PerpPerpParams {
    PerpPerpParams {
        initial_capital: capital,
        leverage,
        entry: EntryRule { mode: EntryMode::AlwaysOn, direction: Direction::Long, entry_funding_apr: 0.0, exit_funding_apr: 0.0, lookback_settlements: 3, lookback_hours: None },
        lookback_hours: 24.0,
        top_up_distance: 0.0,
        transfer_delay_ms: 0,
        transfer_fee: 0.0,
        close_at_end: true,
        reenter_after_liquidation: false,
        rotate_every_ms: None,
        spot_a: false,
    }
}

fn event(t: &MarketTimeline, step: usize, rate: f64, hours: f64) -> Settlement {
    Settlement { settle_ms: t.ts_ms[step], rate, interval_hours: hours, price: t.mark[step] }
}

fn rows_of(a: &MarketTimeline, b: &MarketTimeline, pa: &basis::sim::EngineParams, pb: &basis::sim::EngineParams, p: &PerpPerpParams) -> (Vec<PerpPerpRow>, basis::sim::perp_perp::PerpPerpSummary) {
    let mut rows = Vec::new();
    let summary = run((a, pa), (b, pb), p, |r| rows.push(*r));
    (rows, summary)
}

/// Long a (hourly funding, 5 bp fee) and short b (8-hourly funding, 10 bp fee), 20,000 at 1x:
/// 100 coins each. By hand:
/// - step 0: fees 5 + 10, margins 9,995 and 9,990;
/// - step 1: a +1,000 and funding −100 × 0.0001 × 110 = −1.1; b −1,100;
/// - step 2: a −500 and −1.05; b +700 and +100 × 0.0008 × 104 = +8.32;
/// - step 3: a −500 and −1.0; b +400; both closed, fees 5 + 10.
/// Funding a −3.15, funding b +8.32, price 0 and 0, fees −30: equity 19,975.17.
#[test]
fn hand_path_two_intervals() {
    let mut a = flat_timeline(&[100.0, 110.0, 105.0, 100.0], &[100.0, 110.0, 105.0, 100.0], &[100.0, 110.0, 105.0, 100.0], HOUR);
    let mut b = flat_timeline(&[100.0, 111.0, 104.0, 100.0], &[100.0, 111.0, 104.0, 100.0], &[100.0, 111.0, 104.0, 100.0], HOUR);
    a.funding = vec![event(&a, 1, 0.0001, 1.0), event(&a, 2, 0.0001, 1.0), event(&a, 3, 0.0001, 1.0)].into();
    b.funding = vec![event(&b, 2, 0.0008, 8.0)].into();
    let mut pa = plain_params(0.0);
    pa.costs.perp_fee = 0.0005;
    let mut pb = plain_params(0.0);
    pb.costs.perp_fee = 0.001;
    let (rows, summary) = rows_of(&a, &b, &pa, &pb, &pp_params(20_000.0, 1.0));
    assert_eq!(rows[0].qty, [100.0, -100.0]);
    assert_close(rows[0].margin[0], 9_995.0, 1e-9);
    assert_close(rows[0].margin[1], 9_990.0, 1e-9);
    assert_close(rows[1].funding[0], -1.1, 1e-12);
    assert_close(rows[1].margin[0], 10_993.9, 1e-9);
    assert_close(rows[1].margin[1], 8_890.0, 1e-9);
    assert_close(rows[2].funding[1], 8.32, 1e-12);
    assert_close(rows[2].equity, 20_091.17, 1e-9);
    assert_close(rows[3].margin[0], 9_986.85, 1e-9);
    assert_close(rows[3].margin[1], 9_988.32, 1e-9);
    assert_close(rows[3].equity, 19_975.17, 1e-9);
    assert_eq!(rows[3].qty, [0.0, 0.0]);
    assert_close(summary.funding[0], -3.15, 1e-12);
    assert_close(summary.funding[1], 8.32, 1e-12);
    assert_close(summary.price_pnl[0], 0.0, 1e-9);
    assert_close(summary.price_pnl[1], 0.0, 1e-9);
    assert_close(summary.run.pnl.fees, -30.0, 1e-12);
    assert_eq!(summary.settlements[0].len(), 3);
    assert_eq!(summary.settlements[1].len(), 1);
}

/// The spread compares the same 24 hours on both venues. Leg a (hourly) paid 0 for 16 hours,
/// then 0.0002 an hour for 8: 0.0016 over 24 h, 58.4 % APR. Leg b (8-hourly) paid 0.0004 three
/// times: 0.0012 over 24 h, 43.8 % APR. The spread apr(b) − apr(a) is −14.6 % APR: a pays more,
/// so with a 10 % threshold the pair goes long b and short a. (The last three settlements of
/// each, by count, would have said a pays 175.2 % APR.)
#[test]
fn spread_is_interval_weighted() {
    let n = 26;
    let prices = vec![100.0; n];
    let mut a = flat_timeline(&prices, &prices, &prices, HOUR);
    let mut b = flat_timeline(&prices, &prices, &prices, HOUR);
    a.funding = (1..=24).map(|h| Settlement::unpriced(T0 + h * HOUR, if h > 16 { 0.0002 } else { 0.0 }, 1.0)).collect();
    b.funding = [8, 16, 24].iter().map(|&h| Settlement::unpriced(T0 + h * HOUR, 0.0004, 8.0)).collect();
    let mut p = pp_params(20_000.0, 1.0);
    p.entry = EntryRule { mode: EntryMode::FundingThreshold, direction: Direction::Both, entry_funding_apr: 0.10, exit_funding_apr: 0.0, lookback_settlements: 3, lookback_hours: None };
    p.close_at_end = false;
    let pa = plain_params(0.0);
    let (rows, _) = rows_of(&a, &b, &pa, &pa, &p);
    assert!(rows[23].spread_apr.is_nan(), "the lookback is not covered before 24 h");
    assert_close(rows[24].spread_apr, 0.0012 / 24.0 * 8760.0 - 0.0016 / 24.0 * 8760.0, 1e-12);
    assert_close(rows[24].spread_apr, -0.146, 1e-12);
    assert_eq!(rows[23].state, 0);
    assert_eq!(rows[24].state, -1, "long b, short a");
    assert!(rows[24].qty[0] < 0.0 && rows[24].qty[1] > 0.0);
}

/// A short b at 5x on a bankruptcy-price venue (Bybit's rule): 500 coins on 10,000 of margin,
/// liquidation price (10,000 + 500 × 100) / (500 × 1.004) = 119.5219…; the bar's high of 125
/// reaches it. Marked there (−9,760.96), the remaining margin (239.04) is forfeited, and leg a
/// (+2,000 to the close of 104) is closed at the close: equity 12,000, the PnL split adds up.
#[test]
fn liquidation_at_bankruptcy_price_unwinds_other_leg() {
    let a = flat_timeline(&[100.0, 104.0, 104.0], &[100.0, 104.0, 104.0], &[100.0, 104.0, 104.0], HOUR);
    let b = flat_timeline(&[100.0, 104.0, 104.0], &[100.0, 125.0, 104.0], &[100.0, 100.0, 104.0], HOUR);
    let pa = plain_params(0.0);
    let mut pb = plain_params(0.0);
    pb.liquidation.style = LiquidationStyle::BankruptcyPrice;
    let (rows, summary) = rows_of(&a, &b, &pa, &pb, &pp_params(20_000.0, 5.0));
    let liq = 60_000.0 / 502.0;
    assert_close(rows[0].liquidation_price[1], liq, 1e-9);
    assert_close(rows[1].price_pnl[1], -500.0 * (liq - 100.0), 1e-9);
    assert_close(rows[1].liquidation, -(10_000.0 - 500.0 * (liq - 100.0)), 1e-9);
    assert_close(rows[1].price_pnl[0], 2_000.0, 1e-9);
    assert_close(rows[1].equity, 12_000.0, 1e-9);
    assert_eq!(rows[1].qty, [0.0, 0.0]);
    assert_eq!(rows[2].state, 0, "no re-entry after a liquidation unless asked");
    assert_eq!(summary.run.liquidations, 1);
    assert_close(rows[1].pnl_total(), 12_000.0 - 20_000.0, 1e-9);
}

/// A leg's liquidation is a market order of the whole leg: with the leg's `sqrt_impact` model
/// (an impact of 0.001 per √coin at the liquidation's step, none at the entry's, so the entry is
/// the same) the 500-coin short b fills at LP × (1 + 0.001 × √500) = 122.1945…, not at LP =
/// 60,000 / 502 = 119.5219… (the bar's high of 125 bounds it).
#[test]
fn a_leg_s_liquidation_slips_its_size_s_impact_under_its_market_model() {
    let a = flat_timeline(&[100.0, 104.0, 104.0], &[100.0, 104.0, 104.0], &[100.0, 104.0, 104.0], HOUR);
    let b = flat_timeline(&[100.0, 104.0, 104.0], &[100.0, 125.0, 104.0], &[100.0, 100.0, 104.0], HOUR);
    let pa = plain_params(0.0);
    let fill = |pb: &basis::sim::EngineParams| {
        let (_, summary) = rows_of(&a, &b, &pa, pb, &pp_params(20_000.0, 5.0));
        summary.run.trades.iter().find(|t| t.reason == basis::model::TradeReason::Liquidation && t.leg == "perp_b").map(|t| t.fill_price).expect("leg b liquidated")
    };
    let liq = 60_000.0 / 502.0;
    let mut pb = plain_params(0.0);
    assert_close(fill(&pb), liq, 1e-9);
    pb.market_costs = Some(std::sync::Arc::new(basis::model::MarketCosts { perp_impact: vec![0.0, 0.001, 0.0], ..Default::default() }));
    assert_close(fill(&pb), liq * (1.0 + 0.001 * 500f64.sqrt()), 1e-9);
}

/// A long leg's liquidation sells: with an order book it walks the bids, not the asks. Leg a,
/// long 500 coins at 5x with 10,000 of margin, has LP = (50,000 − 10,000) / (500 × 0.996) =
/// 80.3212…; the bar's low of 70 reaches it. The book's bids are 1 % under the mid for 10,000
/// coins (its asks 5 % over), so the fill is LP × 0.99 = 79.5180…, above the low.
#[test]
fn a_long_leg_s_liquidation_walks_the_bids() {
    let a = flat_timeline(&[100.0, 96.0, 96.0], &[100.0, 100.0, 96.0], &[100.0, 70.0, 96.0], HOUR);
    let b = flat_timeline(&[100.0, 96.0, 96.0], &[100.0, 100.0, 96.0], &[100.0, 96.0, 96.0], HOUR);
    let level = |gap: f64| -> [(f64, f64); basis::model::DEPTH_LEVELS] { std::array::from_fn(|k| if k == 0 { (gap, 10_000.0) } else { (0.0, 0.0) }) };
    let depth = basis::model::Depth { asks: level(0.05), bids: level(0.01), ask_levels: 1, bid_levels: 1 };
    let book = basis::model::DepthSeries { snapshots: vec![depth], at_step: vec![u32::MAX, 0, u32::MAX] };
    let mut pa = plain_params(0.0);
    pa.market_costs = Some(std::sync::Arc::new(basis::model::MarketCosts { perp_book: book, ..Default::default() }));
    let (rows, summary) = rows_of(&a, &b, &pa, &plain_params(0.0), &pp_params(20_000.0, 5.0));
    assert_close(rows[0].qty[0], 500.0, 1e-9);
    let liq = 40_000.0 / (500.0 * 0.996);
    assert_close(rows[0].liquidation_price[0], liq, 1e-9);
    let fill = summary.run.trades.iter().find(|t| t.reason == basis::model::TradeReason::Liquidation && t.leg == "perp_a").map(|t| t.fill_price).expect("leg a liquidated");
    assert_close(fill, liq * 0.99, 1e-9);
}

/// A leg near its liquidation price is sent half the margin difference; the transfer is on its
/// way for `transfer_delay_ms`, in neither account; when the accounts are even the legs shrink.
#[test]
fn transfers_travel_and_then_legs_shrink() {
    // Leg b (short) loses as the coin rises 100 → 130 → 160; at 3x and a 25 % threshold the
    // first step sends margin from a to b, which lands an hour later.
    let path = [100.0, 130.0, 130.0, 160.0, 160.0];
    let a = flat_timeline(&path, &path, &path, HOUR);
    let b = flat_timeline(&path, &path, &path, HOUR);
    let pa = plain_params(0.0);
    let mut p = pp_params(20_000.0, 3.0);
    p.top_up_distance = 0.25;
    p.transfer_delay_ms = HOUR;
    p.transfer_fee = 1.0;
    p.close_at_end = false;
    let (rows, summary) = rows_of(&a, &b, &pa, &pa, &p);
    // Step 1: a 10,000 + 300 × 30 = 19,000, b 1,000; half the difference less the fee (8,999)
    // leaves a and travels.
    assert_close(rows[1].in_transit, 8_999.0, 1e-9);
    assert_close(rows[1].margin[0], 19_000.0 - 9_000.0, 1e-9);
    assert_close(rows[1].margin[1], 1_000.0, 1e-9);
    assert_close(rows[1].fees, -1.0, 1e-12);
    // Step 2: it lands.
    assert_close(rows[2].in_transit, 0.0, 0.0);
    assert_close(rows[2].margin[1], 9_999.0, 1e-9);
    // Step 3: a 10,000 + 9,000 = 19,000, b 9,999 − 9,000 = 999: sent again; step 4 it lands.
    assert_close(rows[3].in_transit, 0.5 * (19_000.0 - 999.0) - 1.0, 1e-9);
    assert_eq!(summary.transfers, 2);
    // Step 4: both about 10,000 at 160 with 300 coins: 4.8x, the distance below 25 %; the legs
    // shrink to 3x of the smaller account: qty = min margin × 3 / 160.
    let smaller = rows[4].margin[0].min(rows[4].margin[1]);
    assert_close(rows[4].qty[0], smaller * 3.0 / 160.0, 1e-6);
    assert_eq!(summary.deleveragings, 1);
    assert!((rows[4].equity - rows[3].equity - rows[4].pnl_total()).abs() < 1e-9);
}

fn arb_path(n: usize) -> impl Strategy<Value = (Vec<f64>, Vec<f64>, Vec<f64>)> {
    (
        proptest::collection::vec(-0.08f64..0.08, n),
        proptest::collection::vec(-0.01f64..0.01, n),
        proptest::collection::vec(0.0f64..0.12, n),
    )
}

fn timeline_from(returns: &[f64], spread: &[f64], wick: &[f64], own: f64) -> MarketTimeline {
    let mut price = 100.0;
    let mut closes = Vec::new();
    let mut highs = Vec::new();
    let mut lows = Vec::new();
    for ((r, s), w) in returns.iter().zip(spread).zip(wick) {
        price *= 1.0 + r;
        let close = price * (1.0 + own * s);
        closes.push(close);
        highs.push(close * (1.0 + w));
        lows.push(close * (1.0 - w));
    }
    flat_timeline(&closes, &highs, &lows, HOUR)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
    /// On random paths with wicks, random funding on an hourly and an 8-hourly venue, costs,
    /// leverage up to 10, transfers with a delay and a fee, both liquidation rules, and leg b
    /// rotating between two venues (or not), leg a a perp or spot bought with cash, orders worked
    /// under a participation cap and a leg delay (or not): every step's components add up to
    /// its change in equity, equity never goes below zero, and worked legs match outside
    /// LEGGING.
    #[test]
    fn attribution_closes_and_equity_stays_positive(
        (returns, spread, wick) in arb_path(120),
        rates in proptest::collection::vec(-0.002f64..0.002, 120),
        leverage in 1.0f64..10.0,
        fee_bps in 0.0f64..10.0,
        slip_bps in 0.0f64..10.0,
        delay in 0i64..3,
        bankruptcy in any::<bool>(),
        threshold in any::<bool>(),
        rotate_hours in 0i64..24,
        spot in any::<bool>(),
        worked in proptest::option::of((0.01f64..1.0, 0i64..3, any::<bool>())),
        volumes in proptest::collection::vec(0.0f64..500.0, 120),
    ) {
        let mut a = timeline_from(&returns, &spread, &wick, 1.0);
        let mut b = timeline_from(&returns, &spread, &wick, -1.0);
        // Each venue's volume (leg b's the reverse of leg a's): orders worked under a cap.
        a.perp_volume = volumes.clone();
        b.perp_volume = volumes.iter().rev().copied().collect();
        a.funding = (1..120).map(|i| event(&a, i, rates[i], 1.0)).collect();
        b.funding = (1..120).filter(|i| i % 8 == 0).map(|i| event(&b, i, rates[i] * 4.0, 8.0)).collect();
        let mut pa = plain_params(0.0);
        pa.costs.perp_fee = fee_bps * 1e-4;
        pa.costs.perp_slippage = slip_bps * 1e-4;
        if let Some((share, delay_half_hours, perp_first)) = worked {
            pa.execution = basis::sim::execution::Execution { max_participation: share, leg_delay_ms: delay_half_hours * HOUR / 2, first_leg: if perp_first { basis::model::FirstLeg::Perp } else { basis::model::FirstLeg::Spot } };
        }
        let mut pb = pa.clone();
        if bankruptcy {
            pb.liquidation.style = LiquidationStyle::BankruptcyPrice;
        }
        let mut p = pp_params(50_000.0, leverage);
        p.top_up_distance = 0.1;
        p.transfer_delay_ms = delay * HOUR;
        p.transfer_fee = 2.0;
        p.reenter_after_liquidation = true;
        if threshold {
            p.entry = EntryRule { mode: EntryMode::FundingThreshold, direction: Direction::Both, entry_funding_apr: 0.5, exit_funding_apr: 0.1, lookback_settlements: 3, lookback_hours: None };
            p.lookback_hours = 8.0;
        }
        // A third venue for leg b, priced off its own spread, that leg b may rotate to.
        let mut b2 = timeline_from(&returns, &spread.iter().map(|x| -0.5 * x).collect::<Vec<_>>(), &wick, 1.0);
        b2.perp_volume = volumes.iter().map(|v| v * 2.0).collect();
        b2.funding = (1..120).filter(|i| i % 4 == 0).map(|i| event(&b2, i, rates[(i * 7) % 120] * 2.0, 4.0)).collect();
        if rotate_hours > 0 {
            p.rotate_every_ms = Some(rotate_hours * HOUR);
            p.lookback_hours = 8.0;
        }
        if spot {
            // Leg a as spot bought with cash: a long carry only.
            p.spot_a = true;
            p.entry.direction = Direction::Long;
        }
        let mut rows = Vec::new();
        let summary = basis::sim::perp_perp::run_rotating((&a, &pa), &[(&b, &pb), (&b2, &pa)], &p, |r| rows.push(*r));
        let mut before = 50_000.0;
        for r in &rows {
            prop_assert!((r.equity - before - r.pnl_total()).abs() <= 1e-7 * before.max(1.0), "step {}: {} vs {}", r.ts_ms, r.equity - before, r.pnl_total());
            prop_assert!(r.equity >= -1e-9, "equity {} below zero", r.equity);
            prop_assert!(r.margin[0] >= -1e-9 && r.margin[1] >= -1e-9, "a margin below zero: {:?}", r.margin);
            if worked.is_some() && r.state != basis::model::state::LEGGING && !r.unhedged {
                // Outside LEGGING (and a move between venues) the legs hold the same coins.
                prop_assert!((r.qty[0] + r.qty[1]).abs() <= 1e-9 * r.qty[0].abs().max(r.qty[1].abs()).max(1e-12), "step {}: legs {:?} apart outside LEGGING", r.ts_ms, r.qty);
            }
            before = r.equity;
        }
        if worked.is_some() {
            let last = rows.last().unwrap();
            prop_assert_eq!(last.qty, [0.0, 0.0]);
            prop_assert!(summary.run.execution.is_some());
        }
        let total: f64 = summary.run.pnl.total();
        prop_assert!((summary.run.final_equity - 50_000.0 - total).abs() <= 1e-6 * 50_000.0);
    }
}

/// Funding of leg `leg` summed here from the raw files: every settlement of the venue's feather
/// file inside the pair's window (after its first step, up to its last), paid on the position
/// held before the step whose bar holds it (from `trades.parquet`'s quantities, summed here)
/// at the venue's last known price then (its stamp rounded to the second first) (the close of the bar that closed at or before it: the
/// mark file's where the leg has one, else the perp's).
fn independent_funding(funding_file: &std::path::Path, price_file: &std::path::Path, trades: &[(i64, f64)], clock: &[i64]) -> (f64, usize) {
    use polars::prelude::*;
    let read = |path: &std::path::Path| {
        let frame = IpcReader::new(std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).finish().unwrap();
        let date: Vec<i64> = frame.column("date").unwrap().cast(&DataType::Datetime(TimeUnit::Milliseconds, None)).unwrap().cast(&DataType::Int64).unwrap().i64().unwrap().iter().map(|v| v.unwrap()).collect();
        let values = |name: &str| -> Vec<f64> { frame.column(name).unwrap().cast(&DataType::Float64).unwrap().f64().unwrap().iter().map(|v| v.unwrap()).collect() };
        (date, values("open"), values("close"))
    };
    let (settle, rate, _) = read(funding_file);
    let (open_time, _, close) = read(price_file);
    let (first, last) = (clock[0], *clock.last().unwrap());
    let mut sum = 0.0;
    let mut count = 0;
    for (&stamp, &r) in settle.iter().zip(&rate) {
        // A settlement stamped a few ms late (03:00:00.027) is the 03:00 one: rounded to the second.
        let t = (stamp + 500).div_euclid(1000) * 1000;
        if t <= first || t > last {
            continue;
        }
        let step_ts = clock[clock.partition_point(|&c| c < t)];
        let qty: f64 = trades.iter().filter(|(ts, _)| *ts < step_ts).map(|(_, q)| q).sum();
        if qty.abs() < 1e-12 {
            continue;
        }
        // The bar closing at or before the settlement: open + 1 h <= t.
        let k = open_time.partition_point(|&o| o + HOUR <= t) - 1;
        sum += -qty * r * close[k];
        count += 1;
    }
    (sum, count)
}

fn load_example(name: &str, edit: impl FnOnce(&mut toml::Value)) -> basis::config::perp_perp::PerpPerpBook {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/examples");
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    let mut raw: toml::Value = toml::from_str(&text).unwrap();
    edit(&mut raw);
    basis::config::perp_perp::PerpPerpBook::from_toml_value(&raw, name, &dir).unwrap()
}

fn trades_of(result: &basis::app::perp_perp::PerpPerpResult, pair: usize, leg: &str) -> Vec<(i64, f64)> {
    result.pairs[pair].summary.run.trades.iter().filter(|t| t.leg == leg).map(|t| (t.ts_ms, t.qty)).collect()
}

/// Binance against Bybit, BTC 2023-12 → 2026-02, always long Binance / short Bybit: each
/// funding stream equals the sum over that venue's own file to 1e-9 (relative), every row's
/// components add up to its change in equity, and the totals add up to the final equity.
#[test]
fn binance_bybit_on_real_data() {
    let root = real_data_dir();
    if !root.join("freqtrade-bybit-1h").is_dir() {
        assert!(std::env::var_os("CI").is_none(), "{} is missing: under CI the perp-perp pair must run on it", root.display());
        return;
    }
    let book = load_example("perp-perp-binance-bybit-btc.toml", |raw| {
        let s = raw.get_mut("strategy").unwrap().as_table_mut().unwrap();
        s.insert("mode".into(), "always_on".into());
        s.insert("direction".into(), "long".into());
    });
    let result = basis::app::perp_perp::run(&book).unwrap();
    let pair = &result.pairs[0];
    let clock = &pair.timelines[0].ts_ms;
    let files = [
        (root.join("freqtrade-binance-1h/binance/futures/BTC_USDT_USDT-1h-funding_rate.feather"), root.join("freqtrade-binance-1h/binance/futures/BTC_USDT_USDT-1h-mark.feather")),
        (root.join("freqtrade-bybit-1h/bybit/futures/BTC_USDT_USDT-1h-funding_rate.feather"), root.join("freqtrade-bybit-1h/bybit/futures/BTC_USDT_USDT-1h-futures.feather")),
    ];
    for (k, leg) in ["perp_a", "perp_b"].iter().enumerate() {
        let (expected, count) = independent_funding(&files[k].0, &files[k].1, &trades_of(&result, 0, leg), clock);
        assert_eq!(pair.summary.settlements[k].len(), count, "leg {leg}: settlements met");
        assert!((pair.summary.funding[k] - expected).abs() <= 1e-9 * expected.abs().max(1.0), "leg {leg}: engine {} vs files {expected}", pair.summary.funding[k]);
        assert!(count > 2_000, "leg {leg}: {count} settlements");
    }
    let mut before = book.pairs[0].params.initial_capital;
    for r in &pair.rows {
        assert!((r.equity - before - r.pnl_total()).abs() <= 1e-7 * before, "the attribution closes at {}", r.ts_ms);
        before = r.equity;
    }
    let s = &pair.summary;
    let total = s.funding[0] + s.funding[1] + s.price_pnl[0] + s.price_pnl[1] + s.run.pnl.fees + s.run.pnl.slippage + s.run.pnl.liquidation;
    assert_close(s.run.final_equity - 100_000.0, total, 1e-6);
    // The two venues' funding is close but not equal: long Binance / short Bybit collects
    // Bybit's and pays Binance's, tens of thousands each way over two years.
    assert!(s.funding[0] < -20_000.0 && s.funding[1] > 20_000.0, "{:?}", s.funding);
    assert_eq!(s.run.liquidations, 0);
}

/// Hyperliquid (hourly funding, stamped a few ms late) against Binance (8-hourly), BTC and ETH
/// 2024-09 → 2025-07, on the spread: each leg's funding equals the sum over its own file; the
/// Hyperliquid legs met about eight settlements for each of Binance's.
#[test]
fn hyperliquid_binance_on_real_data() {
    let root = real_data_dir();
    if !root.join("freqtrade-hyperliquid-1h").is_dir() {
        assert!(std::env::var_os("CI").is_none(), "{} is missing: under CI the perp-perp pair must run on it", root.display());
        return;
    }
    let book = load_example("perp-perp-hyperliquid-binance.toml", |_| {});
    let result = basis::app::perp_perp::run(&book).unwrap();
    for (p, coin) in ["BTC", "ETH"].iter().enumerate() {
        let pair = &result.pairs[p];
        let clock = &pair.timelines[0].ts_ms;
        let hl = root.join(format!("freqtrade-hyperliquid-1h/hyperliquid/futures/{coin}_USDC_USDC-1h"));
        let bn = root.join(format!("freqtrade-binance-1h/binance/futures/{coin}_USDT_USDT-1h"));
        let files = [
            (hl.with_file_name(format!("{coin}_USDC_USDC-1h-funding_rate.feather")), hl.with_file_name(format!("{coin}_USDC_USDC-1h-futures.feather"))),
            (bn.with_file_name(format!("{coin}_USDT_USDT-1h-funding_rate.feather")), bn.with_file_name(format!("{coin}_USDT_USDT-1h-mark.feather"))),
        ];
        for (k, leg) in ["perp_a", "perp_b"].iter().enumerate() {
            let (expected, count) = independent_funding(&files[k].0, &files[k].1, &trades_of(&result, p, leg), clock);
            assert_eq!(pair.summary.settlements[k].len(), count, "{coin} leg {leg}: settlements met");
            assert!((pair.summary.funding[k] - expected).abs() <= 1e-9 * expected.abs().max(1.0), "{coin} leg {leg}: engine {} vs files {expected}", pair.summary.funding[k]);
        }
        let (hourly, eight_hourly) = (pair.summary.settlements[0].len(), pair.summary.settlements[1].len());
        assert!(hourly > 7 * eight_hourly && hourly < 9 * eight_hourly, "{coin}: {hourly} hourly vs {eight_hourly} 8-hourly settlements");
        assert!(pair.summary.settlements[0].iter().all(|s| s.settlement.interval_hours == 1.0), "{coin}: Hyperliquid's intervals read as 1 h");
        assert!(pair.summary.settlements[1].iter().all(|s| s.settlement.interval_hours == 8.0));
        let mut before = book.pairs[p].params.initial_capital;
        for r in &pair.rows {
            assert!((r.equity - before - r.pnl_total()).abs() <= 1e-7 * before);
            before = r.equity;
        }
    }
}

/// A dated leg rolls at step 2: the contract held (103 at that close) is closed and the same
/// quantity reopened in the next one at 105, both with the leg's costs (5 bp fee here); from
/// then on the leg is marked on the new contract (106 at step 3: −100 × (106 − 105)). The
/// dated leg pays no funding although the market has settlements.
#[test]
fn dated_leg_rolls_and_pays_no_funding() {
    use basis::model::{DerivativePath, Instrument, LegSwitch, SwitchReason};
    let perp = [100.0, 102.0, 103.0, 104.0];
    let dated = [101.0, 102.5, 103.0, 106.0];
    let mut a = flat_timeline(&perp, &perp, &perp, HOUR);
    let mut b = flat_timeline(&dated, &dated, &dated, HOUR);
    a.funding = vec![event(&a, 2, 0.0005, 8.0)].into();
    b.funding = vec![event(&b, 2, 0.0005, 8.0)].into();
    b.derivative = Some(DerivativePath { first: Some(Instrument::Dated(0)), switches: vec![LegSwitch { step: 2, reason: SwitchReason::Roll, to: Instrument::Dated(1), open_price: 105.0, open_mark: 105.0 }] });
    let pa = plain_params(0.0);
    let mut pb = plain_params(0.0);
    pb.costs.perp_fee = 0.0005;
    let mut p = pp_params(20_100.0, 1.0);
    p.close_at_end = false;
    let (rows, summary) = rows_of(&a, &b, &pa, &pb, &p);
    // Entry: 20,100 / 2 × 1 / mid(100, 101) = 99.50… coins on each leg.
    let q = 10_050.0 / 100.5;
    assert_close(rows[0].qty[0], q, 1e-9);
    assert_close(rows[0].qty[1], -q, 1e-9);
    let rolls: Vec<_> = summary.run.trades.iter().filter(|t| t.reason == basis::model::TradeReason::Roll).collect();
    assert_eq!(rolls.len(), 2);
    assert_eq!((rolls[0].fill_price, rolls[0].qty), (103.0, q));
    assert_eq!((rolls[1].fill_price, rolls[1].qty), (105.0, -q));
    assert_close(rolls[0].fee + rolls[1].fee, q * (103.0 + 105.0) * 0.0005, 1e-9);
    assert_eq!(rows[2].last[1], 105.0, "the row shows the contract held from this close");
    assert_close(rows[2].funding[0], -q * 0.0005 * 103.0, 1e-9);
    assert_eq!(rows[2].funding[1], 0.0, "no funding on a dated contract");
    assert_close(rows[2].price_pnl[1], -q * (103.0 - 102.5), 1e-9);
    assert_close(rows[3].price_pnl[1], -q * (106.0 - 105.0), 1e-9);
    assert_eq!(rows[3].qty[1], -q);
    let mut before = 20_100.0;
    for r in &rows {
        assert!((r.equity - before - r.pnl_total()).abs() < 1e-9);
        before = r.equity;
    }
}

/// The calendar spread on the synthetic sample (`data/examples/dated-perp-sample.toml`): long the
/// perp, short the front quarterly. Every step's components add up to its change in equity; the
/// quarterly leg rolls four times (two fills each) and pays no funding; the perp leg's funding
/// equals the sum over the sample's funding files of −quantity × rate × the mark close known at
/// each settlement, read here from the CSV files.
#[test]
fn dated_perp_calendar_spread_on_the_sample() {
    let book = load_example("dated-perp-sample.toml", |_| {});
    let result = basis::app::perp_perp::run(&book).unwrap();
    let pair = &result.pairs[0];
    let mut before = book.pairs[0].params.initial_capital;
    for r in &pair.rows {
        assert!((r.equity - before - r.pnl_total()).abs() <= 1e-7 * before, "the attribution closes at {}", r.ts_ms);
        assert!(r.equity > 0.0);
        before = r.equity;
    }
    let s = &pair.summary;
    assert_eq!(s.settlements[1].len(), 0);
    assert_eq!(s.funding[1], 0.0);
    let rolls = s.run.trades.iter().filter(|t| t.reason == basis::model::TradeReason::Roll && t.leg == "perp_b").count();
    assert_eq!(rolls, 8, "4 rolls, each a close and an open");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample");
    let read = |dir: &str| -> Vec<Vec<String>> {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir)).unwrap().flatten().map(|e| e.path()).collect();
        files.sort();
        files.iter().flat_map(|f| std::fs::read_to_string(f).unwrap().lines().skip(1).map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>()).collect::<Vec<_>>()).collect()
    };
    let marks: Vec<(i64, f64)> = read("mark").iter().map(|r| (r[0].parse::<i64>().unwrap() + HOUR, r[4].parse().unwrap())).collect();
    let clock = &pair.timelines[0].ts_ms;
    let trades: Vec<(i64, f64)> = s.run.trades.iter().filter(|t| t.leg == "perp_a").map(|t| (t.ts_ms, t.qty)).collect();
    let (mut expected, mut count) = (0.0, 0);
    for row in read("funding") {
        let t = (row[0].parse::<i64>().unwrap() + 500).div_euclid(1000) * 1000;
        if t <= clock[0] || t > *clock.last().unwrap() {
            continue;
        }
        let step_ts = clock[clock.partition_point(|&c| c < t)];
        let qty: f64 = trades.iter().filter(|(ts, _)| *ts < step_ts).map(|(_, q)| q).sum();
        if qty.abs() < 1e-12 {
            continue;
        }
        let k = marks.partition_point(|(known, _)| *known <= t) - 1;
        expected += -qty * row[2].parse::<f64>().unwrap() * marks[k].1;
        count += 1;
    }
    assert_eq!(s.settlements[0].len(), count);
    assert!((s.funding[0] - expected).abs() <= 1e-9 * expected.abs(), "engine {} vs files {expected}", s.funding[0]);
}

/// Leg b on two venues, rotating every 3 hours to the one paying more (the pair is short leg b):
/// venue 1 pays 0.0003 an hour against venue 0's 0.0001, so at 3 h leg b (100 coins) is closed
/// at venue 0, its margin (10,003 after three settlements of +1) sent to venue 1 less the 1 USDT
/// fee, an hour on the way. Leg a is held alone meanwhile: its rally to 110 in that hour
/// (+1,000) is unhedged. When the margin lands, leg b reopens at venue 1 at 110; venue 1's
/// settlement in that hour is not paid (leg b was not held there), the next ones are
/// (100 × 0.0003 × 110 = 3.3).
#[test]
fn leg_b_rotates_between_venues_with_the_transfer_time_exposed() {
    let a_prices = [100.0, 100.0, 100.0, 100.0, 110.0, 110.0, 110.0, 110.0];
    let v0_prices = [100.0; 8];
    let a = flat_timeline(&a_prices, &a_prices, &a_prices, HOUR);
    let mut v0 = flat_timeline(&v0_prices, &v0_prices, &v0_prices, HOUR);
    let mut v1 = flat_timeline(&a_prices, &a_prices, &a_prices, HOUR);
    for (t, rate) in [(&mut v0, 0.0001), (&mut v1, 0.0003)] {
        t.funding = (1..8).map(|i| event(t, i, rate, 1.0)).collect();
    }
    let params = plain_params(0.0);
    let mut p = pp_params(20_000.0, 1.0);
    p.lookback_hours = 2.0;
    p.rotate_every_ms = Some(3 * HOUR);
    p.transfer_delay_ms = HOUR;
    p.transfer_fee = 1.0;
    p.close_at_end = false;
    let mut rows = Vec::new();
    let summary = basis::sim::perp_perp::run_rotating((&a, &params), &[(&v0, &params), (&v1, &params)], &p, |r| rows.push(*r));
    assert_eq!(rows[2].venue_b, 0);
    assert_close(rows[3].funding[1], 1.0, 1e-12);
    assert_eq!((rows[3].venue_b, rows[3].qty[1], rows[3].unhedged), (1, 0.0, true));
    assert_close(rows[3].in_transit, 10_002.0, 1e-9);
    assert_close(rows[3].equity, 20_002.0, 1e-9);
    assert_close(rows[4].price_pnl[0], 1_000.0, 1e-9);
    assert_eq!(rows[4].price_pnl[1], 0.0);
    assert_eq!(rows[4].funding[1], 0.0, "not held at venue 1 during that hour");
    assert_eq!((rows[4].qty[1], rows[4].unhedged), (-100.0, false));
    assert_close(rows[4].margin[1], 10_002.0, 1e-9);
    assert_close(rows[5].funding[1], 3.3, 1e-9);
    assert_eq!(summary.rotations, 1, "venue 1 stays the best at 6 h");
    let rotation: Vec<(f64, f64, u8)> = summary.run.trades.iter().zip(&summary.trade_venues).filter(|(t, _)| t.reason == basis::model::TradeReason::Rotation).map(|(t, v)| (t.qty, t.fill_price, *v)).collect();
    assert_eq!(rotation, vec![(100.0, 100.0, 1), (-100.0, 110.0, 2)]);
    assert_eq!(summary.run.unhedged_ms, HOUR);
    assert_close(summary.run.unhedged_pnl, 1_000.0, 1e-9);
    assert_eq!(summary.settlement_venues_b, vec![0, 0, 0, 1, 1, 1]);
    let mut before = 20_000.0;
    for r in &rows {
        assert!((r.equity - before - r.pnl_total()).abs() < 1e-9);
        before = r.equity;
    }
}

/// The classic carry with its perp rotating (`spot_a`): spot bought with cash in one account,
/// the perp short on whichever of two venues pays more. 30,000 at 2x: 20,000 of spot (200
/// coins at 100) and 10,000 of perp margin. Venue 1 pays more, so at 3 h the perp (with its
/// three settlements of 200 × 0.0001 × 100 = +2) moves there, an hour on the way; the spot's
/// rally to 110 in that hour (+2,000) is unhedged; the short reopens at venue 1 at 110 and is
/// paid 200 × 0.0003 × 110 = 6.6 an hour. The spot is paid no funding and never liquidated.
#[test]
fn spot_carry_rotates_its_perp_between_venues() {
    let a_prices = [100.0, 100.0, 100.0, 100.0, 110.0, 110.0, 110.0, 110.0];
    let v0_prices = [100.0; 8];
    let mut spot = flat_timeline(&a_prices, &a_prices, &a_prices, HOUR);
    let mut v0 = flat_timeline(&v0_prices, &v0_prices, &v0_prices, HOUR);
    let mut v1 = flat_timeline(&a_prices, &a_prices, &a_prices, HOUR);
    spot.funding = (1..8).map(|i| event(&spot, i, 0.01, 1.0)).collect();
    for (t, rate) in [(&mut v0, 0.0001), (&mut v1, 0.0003)] {
        t.funding = (1..8).map(|i| event(t, i, rate, 1.0)).collect();
    }
    let params = plain_params(0.0);
    let mut p = pp_params(30_000.0, 2.0);
    p.spot_a = true;
    p.lookback_hours = 2.0;
    p.rotate_every_ms = Some(3 * HOUR);
    p.transfer_delay_ms = HOUR;
    p.close_at_end = false;
    let mut rows = Vec::new();
    let summary = basis::sim::perp_perp::run_rotating((&spot, &params), &[(&v0, &params), (&v1, &params)], &p, |r| rows.push(*r));
    assert_eq!(rows[0].qty, [200.0, -200.0]);
    assert_close(rows[0].margin[0], 20_000.0, 1e-9);
    assert_close(rows[0].margin[1], 10_000.0, 1e-9);
    assert!(rows[0].liquidation_price[0].is_nan(), "spot has no liquidation price");
    assert!(rows.iter().all(|r| r.funding[0] == 0.0), "spot is paid no funding");
    assert_close(rows[3].funding[1], 2.0, 1e-12);
    assert_eq!((rows[3].venue_b, rows[3].qty[1], rows[3].unhedged), (1, 0.0, true));
    assert_close(rows[3].in_transit, 10_006.0, 1e-9);
    assert_close(rows[4].price_pnl[0], 2_000.0, 1e-9);
    assert_eq!(rows[4].qty[1], -200.0);
    assert_close(rows[5].funding[1], 6.6, 1e-9);
    assert_close(summary.run.unhedged_pnl, 2_000.0, 1e-9);
    assert_eq!(summary.rotations, 1);
}

/// A spot carry whose perp nears its liquidation price after a rally (100 → 140 at 2x: the
/// perp's margin is down to 2,000 on 28,000 of notional) shrinks both legs to what the
/// equity (30,000) carries at the leverage, 30,000 / (140 + 140 / 2) = 142.857… coins, and sends
/// the spot account's freed cash (57.14… × 140 = 8,000) to the perp, whose margin is then
/// 10,000 = 142.857… × 140 / 2.
#[test]
fn spot_carry_tops_up_its_perp_by_selling_spot() {
    let path = [100.0, 140.0, 140.0];
    let spot = flat_timeline(&path, &path, &path, HOUR);
    let perp = flat_timeline(&path, &path, &path, HOUR);
    let params = plain_params(0.0);
    let mut p = pp_params(30_000.0, 2.0);
    p.spot_a = true;
    p.top_up_distance = 0.3;
    p.close_at_end = false;
    let (rows, summary) = rows_of(&spot, &perp, &params, &params, &p);
    let q = 30_000.0 / 210.0;
    assert_close(rows[1].qty[0], q, 1e-9);
    assert_close(rows[1].qty[1], -q, 1e-9);
    assert_close(rows[1].margin[1], 10_000.0, 1e-9);
    assert_close(rows[1].margin[0], q * 140.0, 1e-9);
    assert_close(rows[1].equity, 30_000.0, 1e-9);
    assert_eq!(summary.run.top_ups, 1);
    assert!(summary.run.trades.iter().filter(|t| t.reason == basis::model::TradeReason::TopUp).count() == 2);
}

/// The spot carry rotating its perp among Binance, Bybit and Hyperliquid on real data
/// (`data/examples/spot-perp-rotation-btc.toml`): every settlement paid to the perp leg is
/// one of the venue it was held at, with the rate that venue's own file has for that time
/// (read here), and −quantity × rate × price; the pair's funding is their sum; every step's
/// components add up to its change in equity; the perp was held at each of the three venues.
#[test]
fn spot_carry_rotation_on_real_data() {
    let root = real_data_dir();
    if !root.join("freqtrade-hyperliquid-1h").is_dir() || !root.join("freqtrade-bybit-1h").is_dir() {
        assert!(std::env::var_os("CI").is_none(), "{} is missing: under CI the rotation must run on it", root.display());
        return;
    }
    use polars::prelude::*;
    let book = load_example("spot-perp-rotation-btc.toml", |_| {});
    let result = basis::app::perp_perp::run(&book).unwrap();
    let pair = &result.pairs[0];
    let files = [
        root.join("freqtrade-binance-1h/binance/futures/BTC_USDT_USDT-1h-funding_rate.feather"),
        root.join("freqtrade-bybit-1h/bybit/futures/BTC_USDT_USDT-1h-funding_rate.feather"),
        root.join("freqtrade-hyperliquid-1h/hyperliquid/futures/BTC_USDC_USDC-1h-funding_rate.feather"),
    ];
    let rates: Vec<std::collections::HashMap<i64, f64>> = files
        .iter()
        .map(|f| {
            let frame = IpcReader::new(std::fs::File::open(f).unwrap()).finish().unwrap();
            let t: Vec<i64> = frame.column("date").unwrap().cast(&DataType::Datetime(TimeUnit::Milliseconds, None)).unwrap().cast(&DataType::Int64).unwrap().i64().unwrap().iter().map(|v| (v.unwrap() + 500).div_euclid(1000) * 1000).collect();
            let r: Vec<f64> = frame.column("open").unwrap().f64().unwrap().iter().map(|v| v.unwrap()).collect();
            t.into_iter().zip(r).collect()
        })
        .collect();
    let s = &pair.summary;
    assert_eq!(s.settlement_venues_b.len(), s.settlements[1].len());
    let mut total = 0.0;
    let mut per_venue = [0usize; 3];
    for (paid, &venue) in s.settlements[1].iter().zip(&s.settlement_venues_b) {
        let rate = rates[venue as usize].get(&paid.settlement.settle_ms).copied().unwrap_or_else(|| panic!("venue {venue} has no settlement at {}", paid.settlement.settle_ms));
        assert_eq!(paid.settlement.rate, rate);
        assert!((paid.amount - (-paid.perp_qty * rate * paid.settlement.price)).abs() < 1e-9);
        // Held there at that time: the ledger names the venue of the step the settlement is paid in.
        let step = pair.rows.iter().position(|r| r.ts_ms >= paid.settlement.settle_ms).unwrap();
        assert_eq!(pair.rows[step - 1].venue_b, venue, "at {}", paid.settlement.settle_ms);
        total += paid.amount;
        per_venue[venue as usize] += 1;
    }
    assert!((s.funding[1] - total).abs() <= 1e-9 * total.abs());
    assert!(per_venue.iter().all(|&n| n > 0), "held at every venue: {per_venue:?}");
    assert_eq!(s.funding[0], 0.0);
    let mut before = book.pairs[0].params.initial_capital;
    for r in &pair.rows {
        assert!((r.equity - before - r.pnl_total()).abs() <= 1e-7 * before);
        before = r.equity;
    }
    assert!(s.rotations >= 3 && s.run.unhedged_ms > 0);
}

/// `basis backtest` on a perp-perp book writes the run folder (ledger, trades, funding,
/// metrics, the report), never overwrites it unasked (a second run goes to `<name>-2`), and
/// `basis report` re-renders it.
#[test]
fn cli_writes_and_rerenders_a_perp_perp_book() {
    let out = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["backtest", "--config", "data/examples/dated-perp-sample.toml", "--output-dir", out.path().to_str().unwrap()];
        args.extend_from_slice(extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_basis")).current_dir(env!("CARGO_MANIFEST_DIR")).args(&args).output().unwrap()
    };
    let first = run(&[]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let dir = out.path().join("dated-perp-sample");
    for file in ["ledger.parquet", "trades.parquet", "funding.parquet", "metrics.json", "manifest.json", "config.toml", "index.html", "pp_pnl.png", "pp_distance.png", "pp_spread.png"] {
        assert!(dir.join(file).is_file(), "{file}");
    }
    let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["pairs"][0]["funding_b"], 0.0);
    assert!(metrics["book"]["synthetic"].as_bool().unwrap());
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(html.contains("PnL by cause") && html.contains("data:image/png;base64,") && !html.contains("http://") && !html.contains("https://"));
    let before = std::fs::read(dir.join("ledger.parquet")).unwrap();
    let again = run(&[]);
    assert!(again.status.success());
    assert!(out.path().join("dated-perp-sample-2/ledger.parquet").is_file(), "a second run goes beside the first");
    assert_eq!(std::fs::read(dir.join("ledger.parquet")).unwrap(), before);
    // --set overrides the file, as for any config.
    let set = run(&["--set", "portfolio.initial_capital=50000", "--name", "dated-perp-set"]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let metrics: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.path().join("dated-perp-set/metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["book"]["initial_capital"], 50_000.0);
    let bad = run(&["--set", "portfolio.leverage=-1", "--name", "dated-perp-bad"]);
    assert_eq!(bad.status.code(), Some(2), "a bad override is an input error");
    std::fs::remove_file(dir.join("pp_pnl.png")).unwrap();
    let report = std::process::Command::new(env!("CARGO_BIN_EXE_basis")).current_dir(env!("CARGO_MANIFEST_DIR")).args(["report", dir.to_str().unwrap()]).output().unwrap();
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    assert!(dir.join("pp_pnl.png").is_file());
}

/// A rotation worked under a participation cap: leg b (100 coins short) may take 10 % of each
/// venue's bar volume, 500 coins at venue 0 and 600 at venue 1, so at 3 h it is bought back 50
/// and 50 at venue 0 (at 100), its margin moves (1 USDT fee, no transfer time) when the last
/// slice fills at 4 h, and it is sold again 60 then 40 at venue 1 (at 110). Leg a, long 100,
/// stands alone over 50 coins from 3 h to 4 h (its rally to 110: +500 of legging PnL) and over
/// 40 from 4 h to 5 h (flat: 0).
#[test]
fn a_rotation_is_worked_over_bars() {
    let a_prices = [100.0, 100.0, 100.0, 100.0, 110.0, 110.0, 110.0, 110.0];
    let v0_prices = [100.0; 8];
    let mut a = flat_timeline(&a_prices, &a_prices, &a_prices, HOUR);
    let mut v0 = flat_timeline(&v0_prices, &v0_prices, &v0_prices, HOUR);
    let mut v1 = flat_timeline(&a_prices, &a_prices, &a_prices, HOUR);
    a.perp_volume = vec![1e9; 8];
    v0.perp_volume = vec![500.0; 8];
    v1.perp_volume = vec![600.0; 8];
    for (t, rate) in [(&mut v0, 0.0001), (&mut v1, 0.0003)] {
        t.funding = (1..8).map(|i| event(t, i, rate, 1.0)).collect();
    }
    let mut params = plain_params(0.0);
    params.execution = basis::sim::execution::Execution { max_participation: 0.1, ..basis::sim::execution::Execution::AT_ONCE };
    // The entry at 0 h: 100 coins a leg is within 10 % of venue 0's 500 only in two slices;
    // give venue 0 room at the start so the entry is one close.
    v0.perp_volume[0] = 1e9;
    let mut p = pp_params(20_000.0, 1.0);
    p.lookback_hours = 2.0;
    p.rotate_every_ms = Some(3 * HOUR);
    p.transfer_fee = 1.0;
    p.close_at_end = false;
    let mut rows = Vec::new();
    let summary = basis::sim::perp_perp::run_rotating((&a, &params), &[(&v0, &params), (&v1, &params)], &p, |r| rows.push(*r));
    let rotation: Vec<(usize, f64, f64, u8)> = summary.run.trades.iter().zip(&summary.trade_venues).filter(|(t, _)| t.reason == basis::model::TradeReason::Rotation).map(|(t, v)| (t.step, t.qty, t.fill_price, *v)).collect();
    assert_eq!(rotation, vec![(3, 50.0, 100.0, 1), (4, 50.0, 100.0, 1), (4, -60.0, 110.0, 2), (5, -40.0, 110.0, 2)]);
    let states: Vec<i8> = rows.iter().map(|r| r.state).collect();
    assert_eq!(states, vec![1, 1, 1, basis::model::state::LEGGING, basis::model::state::LEGGING, 1, 1, 1]);
    let stats = summary.run.execution.expect("worked orders are reported");
    assert_close(stats.legging_pnl, 500.0, 1e-9);
    assert_eq!(stats.partially_hedged_ms, 2 * HOUR);
    assert_eq!(summary.rotations, 1);
    let mut before = 20_000.0;
    for r in &rows {
        assert!((r.equity - before - r.pnl_total()).abs() < 1e-9);
        before = r.equity;
    }
}

/// A leg's market cost model prices its fills: leg b with an impact of 0.001 × √q (as
/// `sqrt_impact` gives it) shorts 100 coins at 100 × (1 − 0.001 × 10) = 99 and buys them back
/// at 101: 100 + 100 of slippage, leg a (fixed, free) none: 20,000 → 19,800.
#[test]
fn a_leg_s_cost_model_prices_its_fills() {
    let prices = [100.0; 4];
    let a = flat_timeline(&prices, &prices, &prices, HOUR);
    let b = flat_timeline(&prices, &prices, &prices, HOUR);
    let pa = plain_params(0.0);
    let mut pb = plain_params(0.0);
    pb.market_costs = Some(std::sync::Arc::new(basis::model::MarketCosts { perp_impact: vec![0.001; 4], ..Default::default() }));
    let (rows, summary) = rows_of(&a, &b, &pa, &pb, &pp_params(20_000.0, 1.0));
    let fills: Vec<(&str, f64, f64)> = summary.run.trades.iter().map(|t| (t.leg, t.qty, t.fill_price)).collect();
    assert_eq!(fills[0], ("perp_a", 100.0, 100.0));
    assert_eq!(fills[1].0, "perp_b");
    assert_close(fills[1].2, 99.0, 1e-12);
    assert_close(fills[3].2, 101.0, 1e-12);
    assert_close(summary.run.final_equity, 19_800.0, 1e-9);
    assert_close(rows.last().unwrap().equity, 19_800.0, 1e-9);
}
