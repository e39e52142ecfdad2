//! Helpers shared by the integration tests: small hand-made timelines and configs.
#![allow(dead_code)]

use basis::config::{Bracket, Config, Direction, EntryMode, TopUpSource};
use basis::data::align::{MarketTimeline, Settlement};
use basis::sim::book::Costs;
use basis::sim::EngineParams;
use basis::sim::margin::Brackets;
use basis::sim::policy::EntryRule;

pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 86_400_000;
/// 2024-01-01 00:00:00 UTC.
pub const T0: i64 = 1_704_067_200_000;

/// A timeline with spot = perp = mark = `prices`, bar high/low given, one step per `step_ms`.
pub fn flat_timeline(prices: &[f64], highs: &[f64], lows: &[f64], step_ms: i64) -> MarketTimeline {
    let n = prices.len();
    MarketTimeline {
        symbol: "TEST".into(),
        synthetic: true,
        ts_ms: (0..n as i64).map(|i| T0 + i * step_ms).collect(),
        spot: prices.to_vec(),
        perp: prices.to_vec(),
        mark: prices.to_vec(),
        mark_high: highs.to_vec(),
        mark_low: lows.to_vec(),
        staking_apr: vec![0.0; n],
        funding: Default::default(),
        stale_spot_steps: 0,
        spot_stale: vec![0; n],
        stale_spans: Vec::new(),
        ..Default::default()
    }
}

/// A funding event paid at step `step` of `timeline` (settled exactly at that step's time).
pub fn event_at(timeline: &MarketTimeline, step: usize, rate: f64, price: f64) -> Settlement {
    Settlement { settle_ms: timeline.ts_ms[step], rate, interval_hours: 8.0, price }
}

/// Engine parameters with no costs, 1x leverage, no reserve, always-on long carry.
pub fn plain_params(capital: f64) -> EngineParams {
    EngineParams {
        initial_capital: capital,
        leverage: 1.0,
        hedge_ratio: 1.0,
        reserve_fraction: 0.0,
        rebalance_delta_threshold: 0.5,
        top_up_distance: 0.0,
        top_up_source: TopUpSource::None,
        borrow_apr: 0.0,
        costs: Costs::FREE,
        liquidation: basis::sim::margin::PerpLiquidation { style: basis::sim::margin::LiquidationStyle::LiquidationPrice, fee_rate: 0.0125, backstop_fraction: 2.0 / 3.0, fill_slippage: 0.0, fee_in_bankruptcy_price: 0.0 },
        spot_margin: basis::sim::BINANCE_CROSS_MARGIN,
        brackets: Brackets::new(vec![Bracket { notional_floor: 0.0, mmr: 0.004, cum: 0.0 }]),
        entry: EntryRule {
            mode: EntryMode::AlwaysOn,
            direction: Direction::Long,
            entry_funding_apr: 0.05,
            exit_funding_apr: 0.0,
            lookback_settlements: 3,
            lookback_hours: None,
        },
        close_at_end: true,
        reenter_after_liquidation: false,
        after_liquidation: basis::config::AfterLiquidation::Close,
        mask_stale_spot: true,
        spot_collateral_haircut: 0.0,
        quote_borrow_apr: 0.0,
        transfer_delay_ms: 0,
        transfer_fee: 0.0,
        forced: Vec::new(),
        max_perp_notional: f64::INFINITY,
        rules: None,
        funding_baseline_rate_per_8h: 0.0001,
        market_costs: None,
        borrow_available: None,
        execution: Default::default(),
        delivery_fee: 0.0,
        cash_earns: false,
        inverse: false,
    }
}

/// Where the real exchange history lives (override with BASIS_REAL_DATA).
pub fn real_data_dir() -> std::path::PathBuf {
    match std::env::var("BASIS_REAL_DATA") {
        Ok(dir) => dir.into(),
        Err(_) => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
    }
}

/// Parse a config from TOML text with paths relative to the repository root.
pub fn config_from(text: &str) -> Config {
    Config::from_toml_str(text, "test", std::path::Path::new(env!("CARGO_MANIFEST_DIR"))).expect("valid test config")
}

/// Assert two floats agree to `tol` (absolute).
#[track_caller]
pub fn assert_close(actual: f64, expected: f64, tol: f64) {
    assert!((actual - expected).abs() <= tol, "expected {expected}, got {actual} (diff {})", actual - expected);
}

/// A funding source of `format` at `path` with default columns.
pub fn funding_source(path: &str, format: basis::config::FundingFormat) -> basis::config::FundingSource {
    basis::config::FundingSource::new(format, path)
}

/// A headless-capable browser: $BASIS_CHROMIUM, or chromium, chromium-browser, google-chrome or
/// google-chrome-stable on PATH.
pub fn chromium() -> Option<std::path::PathBuf> {
    if let Ok(path) = std::env::var("BASIS_CHROMIUM") {
        return Some(path.into());
    }
    let paths = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
        .iter()
        .flat_map(|name| std::env::split_paths(&paths).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// README.md and every docs/*.md page (in name order), joined: the documentation's text.
pub fn docs_text() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let mut pages: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("docs")).map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "md")).collect()).unwrap_or_default();
    pages.sort();
    for page in pages {
        text.push('\n');
        text.push_str(&std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display())));
    }
    text
}

/// `58585` as the docs write it: `58,585` (digits only; a sign goes in front of the result).
pub fn grouped(digits: &str) -> String {
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
