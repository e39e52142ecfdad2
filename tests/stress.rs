//! Stress scenarios by hand on a flat market, the smallest liquidating shock against the bracket
//! formula, the FTX-week funding transplant, recovery times, and a deterministic bootstrap.

mod common;

use basis::data::align::MarketTimeline;
use basis::sim::{self, EngineParams};
use basis::measure::ledger::{events, FullLedger, NoLedger, TradeReason};
use basis::app::stress::monte_carlo::{self, MonteCarloSpec};
use basis::app::stress::scenario::{apply, Scenario};
use basis::app::stress::days_to_recover;
use common::*;
use polars::prelude::SerReader;

/// 400 hourly steps at 100, a settlement every 8 h at +0.01 %.
fn flat() -> MarketTimeline {
    let n = 400;
    let mut t = flat_timeline(&vec![100.0; n], &vec![100.0; n], &vec![100.0; n], HOUR);
    t.funding = (1..n).filter(|i| i % 8 == 0).map(|i| event_at(&t, i, 0.0001, 100.0)).collect();
    t
}

fn at(step: i64) -> Option<String> {
    Some(chrono::DateTime::from_timestamp_millis(T0 + step * HOUR).unwrap().to_rfc3339())
}

fn final_equity(t: &MarketTimeline, p: &EngineParams) -> f64 {
    sim::run(t, p, &mut NoLedger).final_equity
}

fn stressed(s: &Scenario, t: &MarketTimeline, p: &EngineParams) -> (MarketTimeline, EngineParams) {
    let no_replay = |_: i64, _: i64| -> anyhow::Result<MarketTimeline> { unreachable!() };
    let out = apply(s, t, p, &|_, _| Some(-0.003), &no_replay).unwrap();
    (out.timeline, out.params)
}

#[test]
fn simple_shocks_by_hand() {
    // 10,000 at 1x: 50 spot long, 50 perp short at 100, margin 5,000; no costs.
    let (t, p) = (flat(), plain_params(10_000.0));
    let base = final_equity(&t, &p);
    // 21 settlements of 0.01 % on 5,000 notional outside any stress: 49 settlements in all.
    assert_close(base - 10_000.0, 49.0 * 0.0001 * 5_000.0, 1e-9);

    // A +10 % move is hedged: spot +500, perp -500.
    let shock = Scenario::PriceShock { name: None, at: at(100), pct: 0.10, hours: 1.0, perp_overshoot_pct: 0.0 };
    let (st, sp) = stressed(&shock, &t, &p);
    assert_eq!(st.spot[99], 100.0);
    assert_close(st.spot[100], 110.0, 1e-12);
    // Funding after the shock is paid on the higher price: 37 settlements from step 104 at 110.
    assert_close(final_equity(&st, &sp) - base, 37.0 * 0.0001 * 50.0 * 10.0, 1e-9);

    // The spot leg depegs 5 % and stays there: -5 % of 5,000; the perp does not move.
    let depeg = Scenario::Depeg { name: None, at: at(100), pct: 0.05, hours: 1.0, recover_days: 0.0 };
    let (st, sp) = stressed(&depeg, &t, &p);
    assert_eq!(st.perp, t.perp);
    assert_close(final_equity(&st, &sp) - base, -250.0, 1e-9);

    // Funding flipped to -0.05 % per 8 h for 7 days from step 100: the settlements at steps
    // 104, 112, ..., 264 (21 of them) lose 0.06 % each on 5,000.
    let flip = Scenario::FundingFlip { name: None, at: at(100), days: 7.0, rate_per_8h: Some(-0.0005), scale: None, to_floor: false };
    let (st, sp) = stressed(&flip, &t, &p);
    assert_eq!(st.funding.iter().filter(|e| e.rate < 0.0).count(), 21);
    assert_close(final_equity(&st, &sp) - base, -21.0 * 0.0006 * 5_000.0, 1e-9);
    // Pinned at the floor the venue gives (-0.3 % here).
    let floor = Scenario::FundingFlip { name: None, at: at(100), days: 7.0, rate_per_8h: None, scale: None, to_floor: true };
    let (st, _) = stressed(&floor, &t, &p);
    assert_eq!(st.funding.iter().filter(|e| e.rate == -0.003).count(), 21);

    // A premium of +200 bp for 10 hours, then gone: the short perp loses 2 % of 5,000 while it
    // lasts, and the one settlement inside it (step 104) is valued 2 % higher.
    let blowout = Scenario::BasisBlowout { name: None, at: at(100), bp: 200.0, hours: 10.0 };
    let (st, sp) = stressed(&blowout, &t, &p);
    assert_close(st.perp[105], 102.0, 1e-12);
    assert_eq!(st.perp[111], 100.0);
    let mut ledger = FullLedger::with_capacity(st.len());
    sim::run(&st, &sp, &mut ledger);
    let equity = ledger.column("equity").unwrap();
    assert_close(equity[105] - equity[99], -100.0 + 0.0001 * 5_000.0 * 1.02, 1e-9);
    assert_close(final_equity(&st, &sp) - base, 0.0001 * 5_000.0 * 0.02, 1e-9);

    // Slippage x k multiplies the engine's slippage.
    let mut with_slip = p.clone();
    with_slip.costs.spot_slippage = 1e-4;
    with_slip.costs.perp_slippage = 2e-4;
    let (_, sp) = stressed(&Scenario::LiquidityDrought { name: None, k: 10.0 }, &t, &with_slip);
    assert_eq!((sp.costs.spot_slippage, sp.costs.perp_slippage), (1e-3, 2e-3));
}

#[test]
fn smallest_liquidating_shock_matches_the_bracket_formula() {
    // No funding, so the margin stays what the entry posted.
    let mut t = flat();
    t.funding = Default::default();
    let mut p = plain_params(10_000.0);
    p.leverage = 3.0;
    // 10,000 buys q = 10,000 / (100 + 100/3) = 75 spot, and a 75 short with margin 75 x 100 / 3.
    let (q, margin, mmr, cum) = (75.0, 2_500.0, 0.004, 0.0);
    // Binance's isolated short: liquidated when margin + q (P0 - P) = mmr q P - cum, i.e.
    // P = (margin + q P0 + cum) / (q (1 + mmr)).
    let liquidation_price = (margin + q * 100.0 + cum) / (q * (1.0 + mmr));
    let threshold = liquidation_price / 100.0 - 1.0;
    assert_close(threshold, 0.328_021_248_339_973_4, 1e-12);
    let liquidated = |pct: f64| {
        let shock = Scenario::PriceShock { name: None, at: at(100), pct, hours: 1.0, perp_overshoot_pct: 0.0 };
        let (st, sp) = stressed(&shock, &t, &p);
        sim::run(&st, &sp, &mut NoLedger).liquidations
    };
    // The boundary is sharp: a shock of 1e-9 (a price 1e-7 away) either side decides it. The
    // position is exactly hedged, so margin + q x mark (and with it the liquidation price) stays
    // 10,000 whatever the move; only floating-point noise (~1e-14) separates engine and formula.
    assert_eq!(liquidated(threshold - 1e-9), 0);
    assert_eq!(liquidated(threshold + 1e-9), 1);
    // A +60 % move over 60 hours: the mark at step 100 + h is 100 x (1 + 0.6 x (h + 1) / 60), its
    // bar high the same. Step 131 reaches 132.0 < 132.80..., step 132 reaches 133.0: liquidated
    // in bar 132, not a step either side.
    let ramp = Scenario::PriceShock { name: None, at: at(100), pct: 0.6, hours: 60.0, perp_overshoot_pct: 0.0 };
    let (st, sp) = stressed(&ramp, &t, &p);
    assert_close(st.mark_high[131], 132.0, 1e-12);
    assert_close(st.mark_high[132], 133.0, 1e-12);
    assert!(st.mark_high[131] < liquidation_price && st.mark_high[132] >= liquidation_price);
    let mut ledger = FullLedger::with_capacity(st.len());
    let summary = sim::run(&st, &sp, &mut ledger);
    let steps: Vec<usize> = ledger.rows().enumerate().filter(|(_, r)| r.events & events::LIQUIDATION != 0).map(|(i, _)| i).collect();
    assert_eq!(steps, vec![132], "steps the engine liquidated at; the bracket formula says 132 only");
    // The bar opened at 132.0, below the liquidation price, so the perp closes at that price.
    let fill = summary.trades.iter().find(|t| t.reason == TradeReason::Liquidation).expect("a liquidation fill");
    assert_eq!(fill.step, 132);
    assert_close(fill.qty, 75.0, 1e-9);
    assert_close(fill.fill_price, liquidation_price, 1e-9);
}

/// A transplant from the window's first step keeps the settlements at and before it (what the
/// trailing signals read before the window): only the window's own settlements in the span give
/// way. SOLUSDT's 15 settlements of 2022-11-09/10 land from the first step on; the one at
/// 00:00 lands on the first step itself, which is not paid, so 14 are paid in the span.
#[test]
fn a_transplant_from_the_first_step_keeps_the_history_before_the_window() {
    use basis::model::Settlement;
    let mut t = flat();
    let mut all = vec![Settlement::unpriced(T0 - 16 * HOUR, 0.0003, 8.0), Settlement::unpriced(T0 - 8 * HOUR, 0.0003, 8.0), Settlement::unpriced(T0, 0.0003, 8.0)];
    all.extend(t.funding.iter().copied());
    t.funding = all.into();
    let replay = Scenario::FundingReplay {
        name: None,
        path: real_data_dir().join("binance-funding/SOLUSDT-fundingRate-2022-11.csv").display().to_string(),
        symbol: "SOLUSDT".into(),
        from: "2022-11-09T00:00:00Z".into(),
        to: "2022-11-10T23:00:00Z".into(),
        at: at(0),
    };
    let (st, _) = stressed(&replay, &t, &plain_params(10_000.0));
    let before: Vec<(i64, f64)> = st.funding.iter().filter(|e| e.settle_ms <= T0).map(|e| (e.settle_ms, e.rate)).collect();
    assert_eq!(before, vec![(T0 - 16 * HOUR, 0.0003), (T0 - 8 * HOUR, 0.0003), (T0, 0.0003)]);
    // 14, not 19: the flat market's own five in the span (8 h, 16 h, ..., 40 h) gave way.
    let paid_in_span = st.paid_settlements().filter(|e| e.settle_ms <= T0 + 47 * HOUR).count();
    assert_eq!(paid_in_span, 14);
}

#[test]
fn ftx_week_funding_transplants_onto_another_market() {
    let t = flat();
    let p = plain_params(10_000.0);
    let path = real_data_dir().join("binance-funding/SOLUSDT-fundingRate-2022-11.csv");
    let replay = Scenario::FundingReplay {
        name: None,
        path: path.display().to_string(),
        symbol: "SOLUSDT".into(),
        from: "2022-11-09T00:00:00Z".into(),
        to: "2022-11-10T23:00:00Z".into(),
        at: at(100),
    };
    let (st, sp) = stressed(&replay, &t, &p);
    let moved: Vec<_> = st.funding.iter().filter(|e| e.settle_ms >= T0 + 100 * HOUR && e.settle_ms <= T0 + 147 * HOUR).collect();
    // SOLUSDT 2022-11-09/10: 3 settlements on 8 h rows, 2 on 4 h rows (the first -2 % at 20:00),
    // then 10 every 2 h; the flat market's own settlements in the span are gone.
    assert_eq!(moved.len(), 15);
    assert_eq!(moved.iter().map(|e| e.interval_hours).filter(|h| *h == 2.0).count(), 10);
    let worst = moved.iter().min_by(|a, b| a.rate.total_cmp(&b.rate)).unwrap();
    assert_eq!((worst.rate, worst.settle_ms, worst.interval_hours), (-0.02, T0 + 120 * HOUR, 4.0));
    // Exactly: the 1x carry holds 50 short on a flat market at 100 with no costs, so equity moves
    // by funding alone, 50 x 100 x rate per settlement. The transplant adds SOLUSDT's 15 rates
    // (read here straight from the dump) and removes the flat market's six +0.01 % settlements
    // at steps 104, 112, ..., 144.
    let from_ms: i64 = 1_667_952_000_000; // 2022-11-09 00:00 UTC
    let sol: Vec<f64> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let settle_ms = fields[0].parse::<i64>().unwrap() / 1000 * 1000; // calc_time runs a few ms late
            (settle_ms >= from_ms && settle_ms <= from_ms + 47 * HOUR).then(|| fields[2].parse::<f64>().unwrap())
        })
        .collect();
    assert_eq!(sol.len(), 15);
    let expected = 5_000.0 * (sol.iter().sum::<f64>() - 6.0 * 0.0001);
    assert_close(final_equity(&st, &sp) - final_equity(&t, &p), expected, 1e-9);
}

#[test]
fn recovery_time_by_hand() {
    let ts: Vec<i64> = (0..6).map(|i| T0 + i * DAY).collect();
    // Peak 101 before day 1; trough 95 on day 2; back above 101 on day 4.
    assert_eq!(days_to_recover(&ts, &[100.0, 101.0, 95.0, 99.0, 102.0, 103.0], T0 + DAY), Some(3.0));
    assert_eq!(days_to_recover(&ts, &[100.0, 101.0, 95.0, 99.0, 100.0, 100.5], T0 + DAY), None);
    assert_eq!(days_to_recover(&ts, &[100.0, 101.0, 102.0, 103.0, 104.0, 105.0], T0 + DAY), Some(0.0));
}

#[test]
fn bootstrap_is_seeded_and_thread_count_free() {
    let config = basis::config::Config::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/basis.toml")).unwrap();
    let (history, _, _) = basis::app::pipeline::prepare(&config).unwrap();
    let params = basis::config::engine_params(&config);
    let spec = |seed| MonteCarloSpec { paths: 64, years: 0.5, block_days: 7.0, seed };
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let a = one_thread.install(|| monte_carlo::run(&history, &params, &spec(1), false)).unwrap();
    let b = monte_carlo::run(&history, &params, &spec(1), false).unwrap();
    let c = monte_carlo::run(&history, &params, &spec(2), false).unwrap();
    assert_eq!(a.paths, b.paths, "same seed, 1 thread vs all");
    assert_ne!(a.paths, c.paths, "another seed");
    assert_eq!((a.steps_per_path, a.block_steps), (4380, 168));
    // Paths differ from each other, and the carry earns on most of them.
    assert!(a.paths.windows(2).any(|w| w[0] != w[1]));
    assert!(a.quantile(0.5, |p| p.apr) > 0.0 && a.quantile(0.05, |p| p.apr) <= a.quantile(0.95, |p| p.apr));
}

#[test]
fn historical_replays_and_open_interest_on_binance_hourly() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = basis::config::Config::load(&root.join("data/examples/freqtrade-btc-1h.toml")).unwrap();
    let mut file = basis::app::stress::StressFile::load(&root.join("data/examples/stress-history.toml")).unwrap();
    file.monte_carlo = None;
    let run = basis::app::stress::run(&config, &file, &root.join("data/examples"), false).unwrap();
    let by = |label: &str| run.scenarios.iter().find(|o| o.label.starts_with(label)).unwrap();
    // A replay is its own backtest over the episode: entered at its first step, PnL its own.
    let march = by("March 2020");
    assert_eq!(march.ts_ms[0], T0_2020_03_01);
    assert!(*march.ts_ms.last().unwrap() <= T0_2020_03_01 + 45 * DAY);
    assert_close(march.pnl_impact, march.final_equity - 100_000.0, 1e-6);
    assert_eq!(march.ts_ms.len(), 45 * 24 + 1);
    // SOL's FTX funding on BTC costs the 1x carry more than 10 % of capital.
    assert!(by("FTX week: SOLUSDT").pnl_impact < -10_000.0);
    // Open interest: the table's Binance BTC value (one snapshot).
    let frame = polars::prelude::ParquetReader::new(std::fs::File::open(real_data_dir().join("multivenue-hourly/open_interest.parquet")).unwrap()).finish().unwrap();
    let (venue, coin, oi) = (frame.column("venue").unwrap().str().unwrap(), frame.column("coin").unwrap().str().unwrap(), frame.column("oi_usd").unwrap().f64().unwrap());
    let expected: Vec<f64> = (0..frame.height()).filter(|&i| venue.get(i) == Some("binance") && coin.get(i) == Some("BTC")).map(|i| oi.get(i).unwrap()).collect();
    let capacity = run.capacity.as_ref().unwrap();
    assert_eq!(capacity.open_interest_usd, expected.iter().sum::<f64>() / expected.len() as f64);
    // Bigger books earn less: net APR at 1e9 well under that at 1e5.
    let (small, large) = (capacity.points.first().unwrap(), capacity.points.last().unwrap());
    assert!(large.net_apr < small.net_apr - 0.02 && large.funding_factor < 1.0);
    // Each fill pays the impact of its size: the slippage paid per unit of capital grows with it.
    assert!(large.slippage_paid / large.aum > 10.0 * small.slippage_paid / small.aum, "{} vs {}", large.slippage_paid / large.aum, small.slippage_paid / small.aum);
    assert!(large.margin_top_ups >= small.margin_top_ups);
    // At 1x nothing here liquidates.
    assert!(run.scenarios.iter().all(|o| o.liquidations == 0));
}

/// 2020-03-01 00:00 UTC.
const T0_2020_03_01: i64 = 1_583_020_800_000;

/// The scenarios price fills with the config's cost model, each on its own timeline: a
/// liquidity drought of k under `sqrt_impact` multiplies the fixed slippage and the impact by
/// k, so its run equals a backtest whose slippage bps and `impact_k` are k times the config's
/// (the impact coefficient is linear in `impact_k`). The sample has no liquidation (whose fill
/// slippage the drought leaves as it is).
#[test]
fn scenarios_reuse_the_cost_model() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = std::fs::read_to_string(root.join("data/basis.toml")).unwrap();
    let with_costs = |k: f64| {
        let text = base.replacen("\n[costs]\n", &format!("\n[costs]\nmodel = \"sqrt_impact\"\nimpact_k = {k}\n"), 1);
        let text = text.replace("spot_slippage_bps = 1.0", &format!("spot_slippage_bps = {k}")).replace("perp_slippage_bps = 1.0", &format!("perp_slippage_bps = {k}"));
        basis::config::Config::from_toml_str(&text, "test", &root.join("data")).unwrap()
    };
    let file: basis::app::stress::StressFile = toml::from_str("[[scenario]]\nkind = \"liquidity_drought\"\nk = 3\n").unwrap();
    let run = basis::app::stress::run(&with_costs(1.0), &file, &root.join("data"), false).unwrap();
    assert_eq!(run.baseline.liquidations, 0);
    let plain = basis::app::backtest::run(&with_costs(1.0)).unwrap();
    assert_close(run.baseline.final_equity, plain.summary.final_equity, 1e-9);
    let thin = basis::app::backtest::run(&with_costs(3.0)).unwrap();
    assert!(thin.metrics.slippage_paid > 2.5 * plain.metrics.slippage_paid, "{} vs {}", thin.metrics.slippage_paid, plain.metrics.slippage_paid);
    assert_close(run.scenarios[0].final_equity, thin.summary.final_equity, 1e-6);
    // The order book model has no snapshots for reshaped history: refused.
    let text = base.replacen("\n[costs]\n", "\n[costs]\nmodel = \"orderbook\"\n", 1) + "\n[data.spot_book]\npath = \"sample/book/spot/*.csv.gz\"\n[data.perp_book]\npath = \"sample/book/perp/*.csv.gz\"\n";
    let config = basis::config::Config::from_toml_str(&text, "test", &root.join("data")).unwrap();
    let Err(err) = basis::app::stress::run(&config, &file, &root.join("data"), false) else { panic!("an orderbook model in stress should be refused") };
    assert!(format!("{err:#}").contains("order books"), "{err:#}");
}

/// A book pair's `capacity` and a stress file's `[capacity]` take one set of open-interest keys
/// (`config::book::OpenInterestSource`): a number, or a table's mean for a venue and coin; both
/// refuse a key they do not know, and a file without venue and coin.
#[test]
fn capacity_tables_share_their_open_interest_keys() {
    use basis::config::book::OpenInterestSource;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("oi.csv"), "timestamp,venue,coin,oi_usd\n2024-01-01,binance,BTC,100\n2024-01-02,Binance,btc,300\n2024-01-02,bybit,BTC,50\n").unwrap();
    let from_file = OpenInterestSource { open_interest_file: Some("oi.csv".into()), venue: Some("binance".into()), coin: Some("BTC".into()), ..Default::default() };
    assert_eq!(from_file.resolve(dir.path(), "[capacity]").unwrap().0, 200.0);
    let given = OpenInterestSource { open_interest_usd: Some(5e9), ..Default::default() };
    assert_eq!(given.resolve(dir.path(), "[capacity]").unwrap(), (5e9, "given".to_string()));
    let no_coin = OpenInterestSource { open_interest_file: Some("oi.csv".into()), venue: Some("binance".into()), ..Default::default() };
    assert!(format!("{:#}", no_coin.resolve(dir.path(), "[capacity]").unwrap_err()).contains("needs venue"));
    // Unknown keys are refused in both tables.
    let stress = dir.path().join("stress.toml");
    std::fs::write(&stress, "[capacity]\nopen_interest_usd = 5e9\nopen_interest = 3\n").unwrap();
    let err = format!("{:#}", basis::app::stress::StressFile::load(&stress).unwrap_err());
    assert!(err.contains("unknown key `open_interest`"), "{err}");
    std::fs::write(&stress, "[capacity]\nopen_interest_usd = 5e9\naum = [1e5, 1e6]\n").unwrap();
    let file = basis::app::stress::StressFile::load(&stress).unwrap();
    assert_eq!(file.capacity.unwrap().open_interest.open_interest_usd, Some(5e9));
}
