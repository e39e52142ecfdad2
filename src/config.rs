//! The TOML run configuration: what data to load, which strategy to run, with what costs.
//!
//! Every struct denies unknown keys, so a typo is an error that names the key. After parsing,
//! [`Config::validate`] checks ranges and names the offending key with its allowed range.
//! Relative paths are resolved against the directory of the config file. `data/basis.toml` is
//! the documented example of every field.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::{bail_input, input_error};

/// A complete run configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub run: RunConfig,
    pub data: DataConfig,
    #[serde(default)]
    pub strategy: StrategyConfig,
    #[serde(default)]
    pub portfolio: PortfolioConfig,
    #[serde(default)]
    pub costs: CostsConfig,
    #[serde(default)]
    pub margin: MarginConfig,
    #[serde(default)]
    pub venue: VenueConfig,
}

/// Where the run's outputs go.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Name of the run: outputs go to `<output_dir>/<name>/`. Letters, digits, `-`, `_`, `.`.
    #[serde(default = "default_run_name")]
    pub name: String,
    /// Folder holding all runs, relative to the current directory.
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
    /// Draw the charts and index.html with the run (`basis report` can draw them later).
    #[serde(default = "default_true")]
    pub report: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self { name: default_run_name(), output_dir: default_output_dir(), report: true }
    }
}

fn default_run_name() -> String {
    "run".to_string()
}
fn default_output_dir() -> PathBuf {
    PathBuf::from("reports")
}

/// The market data of one spot/perp pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Symbol, for labels (e.g. `BTCUSDT`).
    pub symbol: String,
    /// Set when the data is synthetic; every output then says so.
    #[serde(default)]
    pub synthetic: bool,
    /// A freqtrade data directory: spot, perp, mark and funding found by pair and timeframe.
    /// Replaces `spot`, `perp`, `mark` and `funding`.
    #[serde(default)]
    pub freqtrade: Option<FreqtradeSource>,
    /// Spot bars.
    #[serde(default)]
    pub spot: Option<PriceSource>,
    /// Perpetual bars (last price).
    #[serde(default)]
    pub perp: Option<PriceSource>,
    /// Optional mark-price bars; funding and liquidation then use the mark.
    #[serde(default)]
    pub mark: Option<PriceSource>,
    /// Funding settlements.
    #[serde(default)]
    pub funding: Option<FundingSource>,
    /// Mask steps whose spot close is stale (spot gaps, zero-volume spot bars, a spot close
    /// frozen while the perp moves, and the bar an outage starts in) from decisions and from
    /// the liquidation check, which moves to the next clean step with the worst mark seen.
    #[serde(default = "default_true")]
    pub mask_stale_spot: bool,
    /// Drop the flat bars a perp prints before it really trades (listing placeholders).
    #[serde(default = "default_true")]
    pub skip_listing_placeholders: bool,
    /// Optional staking APR series for the spot leg (overrides `portfolio.staking_apr`).
    #[serde(default)]
    pub staking: Option<StakingSource>,
    /// Optional index (oracle) price bars: funding on venues that pay on the oracle or index
    /// (Hyperliquid, dYdX) is valued at this price instead of the mark.
    #[serde(default)]
    pub index: Option<PriceSource>,
    /// Let an explicit `strategy.start`/`end` run past a source's coverage: the uncovered steps
    /// are simulated and flagged (`UNCOVERED` event bit), and funding APRs count covered time
    /// only. Off by default: such a window is an input error naming the source and its span.
    #[serde(default)]
    pub allow_partial_coverage: bool,
    /// The mark may start later or end earlier than the window: where it is missing the perp's
    /// last stands in (with a warning) instead of the window being clipped. Implied for a
    /// freqtrade directory, whose mark is found rather than configured.
    #[serde(default)]
    pub mark_optional: bool,
    /// The venue's settlement schedule, from `[venue] preset` (set when the config loads), for
    /// the clock check of the funding times.
    #[serde(skip)]
    pub funding_schedule: Option<crate::data::clock::Schedule>,
}

/// File formats of a freqtrade data directory (`--data-format-ohlcv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreqtradeFormat {
    /// Whichever of feather, parquet, json, jsongz exists (in that order).
    Auto,
    Feather,
    Parquet,
    Json,
    Jsongz,
}

/// A freqtrade data directory (`user_data/data`, as `freqtrade download-data` writes it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreqtradeSource {
    /// The data directory: `user_data/data` (holding `<exchange>/`) or the exchange folder itself.
    pub datadir: String,
    /// Exchange folder name, e.g. `binance`.
    #[serde(default = "default_exchange")]
    pub exchange: String,
    /// Spot pair, e.g. `BTC/USDT`.
    pub pair: String,
    /// Perp pair; default: the spot pair settled in its quote (`BTC/USDT:USDT`).
    #[serde(default)]
    pub perp_pair: Option<String>,
    /// Candle timeframe, e.g. `1h`.
    pub timeframe: String,
    #[serde(default = "default_freqtrade_format")]
    pub format: FreqtradeFormat,
}

fn default_exchange() -> String {
    "binance".into()
}
fn default_freqtrade_format() -> FreqtradeFormat {
    FreqtradeFormat::Auto
}

/// File formats for price bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceFormat {
    /// Binance kline CSV (spot or USDⓈ-M), with or without header, ms or µs epoch or ISO times.
    BinanceKlines,
    /// Any CSV or Parquet with the columns named in the source.
    Generic,
    /// Bybit public trade dumps (`timestamp` in float seconds, `price`, `size`), aggregated into
    /// bars of `bar_seconds`.
    BybitTrades,
}

/// Units of a timestamp column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    /// Detect from the magnitude of epoch numbers (s, ms, µs), or parse ISO-8601 text.
    Auto,
    S,
    Ms,
    Us,
    /// ISO-8601 text such as `2021-01-01 00:00:00+00:00`.
    Iso,
}

/// A price-bar source.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSource {
    pub format: PriceFormat,
    /// A file or a glob of files (e.g. monthly dumps); all load as one series.
    pub path: String,
    /// Generic only: the column holding the time at which the bar's values became known
    /// (its close time). Use `open_time_column` + `bar_seconds` for open-time stamped bars.
    #[serde(default)]
    pub close_time_column: Option<String>,
    /// Generic only: the bar's open-time column; needs `bar_seconds`.
    #[serde(default)]
    pub open_time_column: Option<String>,
    /// Generic only: bar length in seconds, when bars are stamped with their open time.
    #[serde(default)]
    pub bar_seconds: Option<u32>,
    #[serde(default = "default_time_unit")]
    pub time_unit: TimeUnit,
    /// Generic only: the close-price column.
    #[serde(default)]
    pub close_column: Option<String>,
    /// Generic only: the bar-high column (for intrabar liquidation checks).
    #[serde(default)]
    pub high_column: Option<String>,
    /// Generic only: the bar-low column.
    #[serde(default)]
    pub low_column: Option<String>,
    /// Generic only: the bar's traded volume (zero-volume spot bars mark outages).
    #[serde(default)]
    pub volume_column: Option<String>,
    /// Generic only: the bar-open column (checked: low <= open <= high).
    #[serde(default)]
    pub open_column: Option<String>,
    /// The file's times are local time this many hours east of UTC (3 = UTC+3): epoch numbers
    /// and text without a zone are shifted back to UTC; text with its own offset is honoured.
    #[serde(default)]
    pub utc_offset_hours: Option<f64>,
}

fn default_time_unit() -> TimeUnit {
    TimeUnit::Auto
}

/// File formats for funding settlements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FundingFormat {
    /// Binance public-data dump `calc_time,funding_interval_hours,last_funding_rate`.
    BinanceFunding,
    /// Binance REST export `symbol,funding_time,funding_rate,mark_price` (ms or ISO times).
    BinanceRest,
    /// Any CSV or Parquet with the columns named in the source.
    Generic,
    /// Bybit `/v5/market/funding/history` JSON (`result.list[]`: fundingRate, fundingRateTimestamp).
    BybitJson,
    /// OKX funding-rate-history JSON (`data[]`) or CSV with the API's field names; uses `realizedRate`.
    Okx,
    /// Hyperliquid `fundingHistory` JSON (hourly rates; `time` ms).
    HyperliquidJson,
    /// dYdX v4 indexer `historicalFunding` JSON (hourly `rate`, ISO `effectiveAt`, `price`).
    DydxJson,
    /// Deribit `get_funding_rate_history` JSON (hourly `interest_1h`, `index_price`).
    DeribitJson,
    /// BitMEX `/api/v1/funding` JSON (`fundingRate`, `fundingInterval` incl. the early 24 h ones).
    BitmexJson,
    /// Gate `/futures/{settle}/funding_rate` JSON (`t` seconds, `r`).
    GateJson,
    /// ccxt `fetch_funding_rate_history` JSON (`timestamp` ms, `fundingRate`).
    CcxtJson,
    /// Tardis.dev `derivative_ticker` CSV (µs): settlements derived from the ticker updates.
    Tardis,
}

impl PriceSource {
    /// Binance kline files (a path or glob) with every option at its default.
    pub fn binance_klines(path: impl Into<String>) -> Self {
        PriceSource {
            format: PriceFormat::BinanceKlines,
            path: path.into(),
            close_time_column: None,
            open_time_column: None,
            bar_seconds: None,
            time_unit: TimeUnit::Auto,
            close_column: None,
            high_column: None,
            low_column: None,
            volume_column: None,
            open_column: None,
            utc_offset_hours: None,
        }
    }
}

impl FundingSource {
    /// Funding files of `format` (a path or glob) with every option at its default.
    pub fn new(format: FundingFormat, path: impl Into<String>) -> Self {
        FundingSource {
            format,
            path: path.into(),
            time_unit: TimeUnit::Auto,
            time_column: None,
            rate_column: None,
            interval_hours_column: None,
            interval_hours: None,
            mark_column: None,
            utc_offset_hours: None,
        }
    }
}

/// A funding-settlement source.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FundingSource {
    pub format: FundingFormat,
    pub path: String,
    #[serde(default = "default_time_unit")]
    pub time_unit: TimeUnit,
    /// Generic only: settlement-time column.
    #[serde(default)]
    pub time_column: Option<String>,
    /// Generic only: rate column (a decimal per interval: 0.0001 = 0.01 %).
    #[serde(default)]
    pub rate_column: Option<String>,
    /// Generic only: per-row interval column, in hours.
    #[serde(default)]
    pub interval_hours_column: Option<String>,
    /// Interval in hours where the file has none (else inferred from row spacing).
    #[serde(default)]
    pub interval_hours: Option<f64>,
    /// Generic only: the mark price at settlement, where the file has one.
    #[serde(default)]
    pub mark_column: Option<String>,
    /// The file's times are local time this many hours east of UTC (3 = UTC+3): epoch numbers
    /// and text without a zone are shifted back to UTC; text with its own offset is honoured.
    #[serde(default)]
    pub utc_offset_hours: Option<f64>,
}

/// A staking APR series (daily or any cadence), applied as known at each row's time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StakingSource {
    pub path: String,
    #[serde(default = "default_time_column")]
    pub time_column: String,
    #[serde(default = "default_time_unit")]
    pub time_unit: TimeUnit,
    /// APR as a decimal (0.035 = 3.5 %).
    #[serde(default = "default_apr_column")]
    pub apr_column: String,
    /// The file's times are local time this many hours east of UTC (see [`PriceSource`]).
    #[serde(default)]
    pub utc_offset_hours: Option<f64>,
}

fn default_time_column() -> String {
    "time".into()
}
fn default_apr_column() -> String {
    "apr".into()
}

/// When to hold the position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryMode {
    /// Enter at the first step, hold to the end.
    AlwaysOn,
    /// Enter and exit on trailing realised funding against thresholds (settled rates only).
    FundingThreshold,
}

/// Which carry to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Long spot, short perp: earns positive funding.
    Long,
    /// Short spot (borrowed), long perp: earns negative funding.
    Reverse,
    /// Either, chosen by the sign of trailing funding (`funding_threshold` mode only).
    Both,
}

/// Entry, exit and the window traded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyConfig {
    #[serde(default = "default_mode")]
    pub mode: EntryMode,
    #[serde(default = "default_direction")]
    pub direction: Direction,
    /// Enter when trailing realised funding, annualised, is above this (decimal APR).
    #[serde(default = "default_entry_apr")]
    pub entry_funding_apr: f64,
    /// Exit when trailing realised funding, annualised, falls below this (decimal APR).
    #[serde(default)]
    pub exit_funding_apr: f64,
    /// Number of settled funding rates the trailing signal looks back over (a count of
    /// settlements, whatever their interval). The signal is time-weighted: Σ rate / Σ interval
    /// hours × 8760.
    #[serde(default = "default_lookback")]
    pub lookback_settlements: usize,
    /// Look back this many hours instead (settlements in (t − hours, t]); replaces
    /// `lookback_settlements`, so the same window means the same time on every venue.
    #[serde(default)]
    pub lookback_hours: Option<f64>,
    /// What happens to the other leg after one leg is liquidated: `close` (default: it is
    /// closed at the step's close, with costs), `rehedge` (the liquidated leg is reopened when
    /// the entry rule allows), or `hold` (the rest of the run is a directional position).
    #[serde(default)]
    pub after_liquidation: AfterLiquidation,
    /// First time simulated (`2021-01-01` or RFC 3339); default: first aligned step.
    #[serde(default)]
    pub start: Option<String>,
    /// Last time simulated (inclusive); default: last aligned step.
    #[serde(default)]
    pub end: Option<String>,
    /// Close both legs at the last step, paying fees and slippage.
    #[serde(default = "default_true")]
    pub close_at_end: bool,
    /// Re-open the hedge after a liquidation when the entry rule allows.
    #[serde(default)]
    pub reenter_after_liquidation: bool,
}

impl Default for StrategyConfig {
    fn default() -> Self {
        Self {
            mode: default_mode(),
            direction: default_direction(),
            entry_funding_apr: default_entry_apr(),
            exit_funding_apr: 0.0,
            lookback_settlements: default_lookback(),
            start: None,
            end: None,
            close_at_end: true,
            reenter_after_liquidation: false,
            lookback_hours: None,
            after_liquidation: AfterLiquidation::Close,
        }
    }
}

/// What happens to the surviving leg after the other one is liquidated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterLiquidation {
    /// Close the other leg at the step's close, with fees and slippage; the run is flat until
    /// the entry rule (and `reenter_after_liquidation`) opens a new carry.
    #[default]
    Close,
    /// Reopen the liquidated leg against the surviving one when the entry rule allows
    /// (re-short the perp without selling and re-buying spot).
    Rehedge,
    /// Keep the surviving leg: the rest of the run is a directional position, and the summary
    /// and report say so.
    Hold,
}

fn default_mode() -> EntryMode {
    EntryMode::AlwaysOn
}
fn default_direction() -> Direction {
    Direction::Long
}
fn default_entry_apr() -> f64 {
    0.05
}
fn default_lookback() -> usize {
    9
}
fn default_true() -> bool {
    true
}

/// Where margin top-ups come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopUpSource {
    /// Never top up.
    None,
    /// Move reserve cash into the perp margin.
    Reserve,
    /// Sell spot and buy back the same perp quantity (stays hedged), moving proceeds to margin.
    SellSpot,
    /// Reserve cash first, then sell spot for the rest.
    ReserveThenSpot,
}

/// Sizing, hedge and margin management.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortfolioConfig {
    /// Starting equity in quote currency (e.g. USDT).
    #[serde(default = "default_capital")]
    pub initial_capital: f64,
    /// Perp leverage: margin posted = perp notional / leverage. Range (0, 125].
    #[serde(default = "default_leverage")]
    pub leverage: f64,
    /// Perp quantity per unit of spot quantity. Range (0, 2].
    #[serde(default = "default_one")]
    pub hedge_ratio: f64,
    /// Share of capital kept as cash for margin top-ups. Range [0, 1).
    #[serde(default)]
    pub reserve_fraction: f64,
    /// Re-hedge when |spot qty × hedge ratio + perp qty| / (spot qty × hedge ratio) exceeds this.
    #[serde(default = "default_rebalance")]
    pub rebalance_delta_threshold: f64,
    /// Top up margin when the liquidation price is within this fraction of the mark price
    /// (0.1 = the perp would be liquidated by a 10 % adverse move).
    #[serde(default = "default_top_up_distance")]
    pub top_up_distance: f64,
    #[serde(default = "default_top_up_source")]
    pub top_up_source: TopUpSource,
    /// Staking yield on a long spot leg, decimal APR, accrued in the spot asset (as an LST rebases).
    #[serde(default)]
    pub staking_apr: f64,
    /// Borrow cost of a short spot leg (reverse carry), decimal APR, accrued in the spot asset.
    #[serde(default = "default_borrow")]
    pub borrow_apr: f64,
}

impl Default for PortfolioConfig {
    fn default() -> Self {
        Self {
            initial_capital: default_capital(),
            leverage: default_leverage(),
            hedge_ratio: 1.0,
            reserve_fraction: 0.0,
            rebalance_delta_threshold: default_rebalance(),
            top_up_distance: default_top_up_distance(),
            top_up_source: default_top_up_source(),
            staking_apr: 0.0,
            borrow_apr: default_borrow(),
        }
    }
}

fn default_capital() -> f64 {
    100_000.0
}
fn default_leverage() -> f64 {
    2.0
}
fn default_one() -> f64 {
    1.0
}
fn default_rebalance() -> f64 {
    0.05
}
fn default_top_up_distance() -> f64 {
    0.15
}
fn default_top_up_source() -> TopUpSource {
    TopUpSource::ReserveThenSpot
}
fn default_borrow() -> f64 {
    0.05
}

/// Which side of the book strategy orders take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    Taker,
    Maker,
}

/// Trading fees and slippage, in basis points of traded notional.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostsConfig {
    #[serde(default = "default_order_type")]
    pub order_type: OrderType,
    #[serde(default = "default_spot_fee")]
    pub spot_maker_bps: f64,
    #[serde(default = "default_spot_fee")]
    pub spot_taker_bps: f64,
    #[serde(default = "default_perp_maker")]
    pub perp_maker_bps: f64,
    #[serde(default = "default_perp_taker")]
    pub perp_taker_bps: f64,
    /// Adverse fill versus the bar close, per spot trade.
    #[serde(default = "default_slippage")]
    pub spot_slippage_bps: f64,
    /// Adverse fill versus the bar close, per perp trade.
    #[serde(default = "default_slippage")]
    pub perp_slippage_bps: f64,
}

impl Default for CostsConfig {
    fn default() -> Self {
        Self {
            order_type: default_order_type(),
            spot_maker_bps: default_spot_fee(),
            spot_taker_bps: default_spot_fee(),
            perp_maker_bps: default_perp_maker(),
            perp_taker_bps: default_perp_taker(),
            spot_slippage_bps: default_slippage(),
            perp_slippage_bps: default_slippage(),
        }
    }
}

fn default_order_type() -> OrderType {
    OrderType::Taker
}
// Binance regular tier (VENUES.md §1.1): spot 0.1 %/0.1 %, USDⓈ-M 0.02 %/0.05 %.
fn default_spot_fee() -> f64 {
    10.0
}
fn default_perp_maker() -> f64 {
    2.0
}
fn default_perp_taker() -> f64 {
    5.0
}
fn default_slippage() -> f64 {
    1.0
}

/// One maintenance-margin tier: applies to perp notional from `notional_floor` upward.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bracket {
    /// Lower bound of the tier, in quote currency.
    pub notional_floor: f64,
    /// Maintenance margin rate (decimal).
    pub mmr: f64,
    /// Maintenance amount: maintenance margin = notional × mmr − cum.
    pub cum: f64,
}

/// Where the run's funding rates come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FundingRatesFrom {
    /// The settlements in the data files.
    #[default]
    Data,
    /// The settlements the preset's rules would produce from the premium (perp or mark over spot).
    Counterfactual,
}

/// The venue: a preset (fees, brackets, liquidation fee, funding rules and caps), and overrides.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueConfig {
    /// A built-in preset id (`binance_usdm`, `bybit_linear`, `okx_swap`, `hyperliquid`,
    /// `dydx_v4`, `bitmex`, `deribit`, `gate_usdt`) or a preset file relative to the config.
    /// Its fees, brackets and liquidation fee apply unless [costs]/[margin] set them.
    #[serde(default)]
    pub preset: Option<String>,
    /// `data` (the files' rates) or `counterfactual` (the preset's rules applied to the premium).
    #[serde(default)]
    pub funding: FundingRatesFrom,
    /// Premium proxy for counterfactual funding: `perp_spot` or `mark_spot`.
    #[serde(default = "default_premium")]
    pub premium: crate::venue::funding::PremiumSource,
    /// Binance `premiumIndexKlines` files (glob) to use as the premium for counterfactual
    /// funding, instead of the perp/spot proxy (relative to the config).
    #[serde(default)]
    pub premium_index: Option<String>,
    /// The loaded preset.
    #[serde(skip)]
    pub loaded: Option<crate::venue::Preset>,
    /// Label shown in reports, e.g. "Binance USDⓈ-M" (default: the preset's name).
    #[serde(default)]
    pub name: Option<String>,
    /// Funding cap per settlement (decimal, > 0): drawn on the funding chart, and settlements at
    /// it are counted as capped.
    #[serde(default)]
    pub funding_cap: Option<f64>,
    /// Funding floor per settlement (decimal, < 0).
    #[serde(default)]
    pub funding_floor: Option<f64>,
}

fn default_premium() -> crate::venue::funding::PremiumSource {
    crate::venue::funding::PremiumSource::PerpSpot
}

impl VenueConfig {
    /// The config's own cap and floor, if it sets either (one alone is mirrored: a cap of 0.003
    /// gives a floor of -0.003).
    fn own_limits(&self) -> Option<(f64, f64)> {
        match (self.funding_cap, self.funding_floor) {
            (None, None) => None,
            (cap, floor) => Some((cap.unwrap_or_else(|| -floor.unwrap_or(0.0)), floor.unwrap_or_else(|| -cap.unwrap_or(0.0)))),
        }
    }

    /// Cap and floor of a settlement: the config's override, else the preset's rule for the
    /// symbol and date, else none.
    pub fn limits_at(&self, symbol: &str, settle_ms: i64, interval_hours: f64) -> (Option<f64>, Option<f64>) {
        if let Some((cap, floor)) = self.own_limits() {
            return (Some(cap), Some(floor));
        }
        self.loaded.as_ref().map(|p| p.limits_at(symbol, settle_ms, interval_hours)).unwrap_or((None, None))
    }

    /// The preset with the config's cap and floor (when set) in place of its own, for
    /// counterfactual funding.
    pub fn effective_preset(&self) -> Option<crate::venue::Preset> {
        let mut preset = self.loaded.clone()?;
        if let Some((cap, floor)) = self.own_limits() {
            preset.funding.cap_per_hours = None;
            preset.funding.caps = vec![crate::venue::CapRule {
                symbol: "*".into(),
                cap: Some(cap),
                floor: Some(floor),
                margin_cap: None,
                from: None,
                to: None,
                source: "config [venue] funding_cap / funding_floor".into(),
                from_ms: None,
                to_ms: None,
            }];
        }
        Some(preset)
    }
}

/// Maintenance brackets, how a liquidation closes, and the spot-margin account of the reverse
/// carry's borrowed spot.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarginConfig {
    /// Fee charged on the liquidated notional, taken from what margin is left (decimal);
    /// used by `liquidation = "liquidation_price"`.
    #[serde(default = "default_liq_fee")]
    pub liquidation_fee_rate: f64,
    /// How a liquidated perp closes: `liquidation_price` (plus the fee; Binance),
    /// `bankruptcy_price` (all margin lost; Bybit, BitMEX, Gate) or `market_with_backstop`
    /// (Hyperliquid). Default: the preset's, else `liquidation_price`.
    #[serde(default)]
    pub liquidation: crate::margin::LiquidationStyle,
    /// `market_with_backstop`: equity below this share of maintenance margin goes to the
    /// backstop, margin and all (Hyperliquid: 2/3).
    #[serde(default = "default_backstop")]
    pub backstop_fraction: f64,
    /// Spot margin (reverse carry): margin level (assets / liabilities) of the margin call
    /// (Binance Cross Margin 3x: 1.3, MARGIN.md §4).
    #[serde(default = "default_spot_call")]
    pub spot_margin_call_level: f64,
    /// Spot margin: margin level at which the loan is liquidated (Binance: 1.1).
    #[serde(default = "default_spot_liquidation")]
    pub spot_liquidation_level: f64,
    /// Spot margin: liquidation fee on the bought-back notional (Binance Cross Margin: 2 %).
    #[serde(default = "default_spot_liq_fee")]
    pub spot_liquidation_fee_rate: f64,
    /// Spot margin: a transfer out of the account may not leave its margin level below this
    /// (Binance: transfers need a collateral margin level above 2).
    #[serde(default = "default_spot_transfer")]
    pub spot_transfer_out_level: f64,
    /// Tiers in ascending `notional_floor`, the first at 0. Default: Binance BTCUSDT (VENUES.md §2.1).
    #[serde(default = "default_brackets")]
    pub brackets: Vec<Bracket>,
}

impl Default for MarginConfig {
    fn default() -> Self {
        Self {
            liquidation_fee_rate: default_liq_fee(),
            liquidation: Default::default(),
            backstop_fraction: default_backstop(),
            spot_margin_call_level: default_spot_call(),
            spot_liquidation_level: default_spot_liquidation(),
            spot_liquidation_fee_rate: default_spot_liq_fee(),
            spot_transfer_out_level: default_spot_transfer(),
            brackets: default_brackets(),
        }
    }
}

fn default_liq_fee() -> f64 {
    0.0125
}
fn default_backstop() -> f64 {
    2.0 / 3.0
}
// Binance Cross Margin (classic 3x), FAQ 360030493931 and the 2024-08 fee update (MARGIN.md §4).
fn default_spot_call() -> f64 {
    1.3
}
fn default_spot_liquidation() -> f64 {
    1.1
}
fn default_spot_liq_fee() -> f64 {
    0.02
}
fn default_spot_transfer() -> f64 {
    2.0
}

/// Binance BTCUSDT USDⓈ-M brackets (public fixture ~2022–23, VENUES.md §2.1 [B18a]).
pub fn default_brackets() -> Vec<Bracket> {
    [
        (0.0, 0.004, 0.0),
        (50e3, 0.005, 50.0),
        (250e3, 0.01, 1_300.0),
        (3e6, 0.025, 46_300.0),
        (20e6, 0.05, 546_300.0),
        (40e6, 0.10, 2_546_300.0),
        (100e6, 0.125, 5_046_300.0),
        (120e6, 0.15, 8_046_300.0),
        (200e6, 0.25, 28_046_300.0),
        (300e6, 0.50, 103_046_300.0),
    ]
    .into_iter()
    .map(|(notional_floor, mmr, cum)| Bracket { notional_floor, mmr, cum })
    .collect()
}

impl Config {
    /// Parse TOML text. `origin` names the file in errors; relative data paths are resolved
    /// against `base_dir`.
    pub fn from_toml_str(text: &str, origin: &str, base_dir: &Path) -> Result<Config> {
        let raw: toml::Value = toml::from_str(text).map_err(|err| {
            input_error!(
                "config {origin}: {}\nSee data/basis.toml for every key, its type and its allowed range.",
                err.to_string().trim_end()
            )
        })?;
        Config::from_toml_value(&raw, origin, base_dir)
    }

    /// Build and validate a config from parsed TOML (what `from_toml_str` and sweeps use). Keys
    /// the TOML leaves out take their defaults, or the venue preset's values.
    pub fn from_toml_value(raw: &toml::Value, origin: &str, base_dir: &Path) -> Result<Config> {
        let mut config: Config = raw.clone().try_into().map_err(|err: toml::de::Error| {
            input_error!(
                "config {origin}: {}\nSee data/basis.toml for every key, its type and its allowed range.",
                err.to_string().trim_end()
            )
        })?;
        config.resolve_paths(base_dir);
        if let Some(name) = config.venue.preset.clone() {
            let preset = crate::venue::Preset::load(&name, base_dir).map_err(|err| input_error!("config {origin}: [venue] preset: {err:#}"))?;
            // Keys the user wrote win; the preset fills the rest.
            let given = |section: &str, key: &str| raw.get(section).and_then(|s| s.get(key)).is_some();
            let fees = &preset.fees;
            for (key, value, slot) in [
                ("spot_maker_bps", fees.spot_maker_bps, &mut config.costs.spot_maker_bps),
                ("spot_taker_bps", fees.spot_taker_bps, &mut config.costs.spot_taker_bps),
                ("perp_maker_bps", fees.perp_maker_bps, &mut config.costs.perp_maker_bps),
                ("perp_taker_bps", fees.perp_taker_bps, &mut config.costs.perp_taker_bps),
            ] {
                if !given("costs", key) {
                    *slot = value;
                }
            }
            if !given("margin", "liquidation_fee_rate") {
                config.margin.liquidation_fee_rate = preset.margin.liquidation_fee_rate;
            }
            if let (false, Some(style)) = (given("margin", "liquidation"), preset.margin.liquidation) {
                config.margin.liquidation = style;
            }
            if let (false, Some(fraction)) = (given("margin", "backstop_fraction"), preset.margin.backstop_fraction) {
                config.margin.backstop_fraction = fraction;
            }
            if let Some(spot) = &preset.margin.spot {
                for (key, value, slot) in [
                    ("spot_margin_call_level", spot.margin_call_level, &mut config.margin.spot_margin_call_level),
                    ("spot_liquidation_level", spot.liquidation_level, &mut config.margin.spot_liquidation_level),
                    ("spot_liquidation_fee_rate", spot.liquidation_fee_rate, &mut config.margin.spot_liquidation_fee_rate),
                    ("spot_transfer_out_level", spot.transfer_out_level, &mut config.margin.spot_transfer_out_level),
                ] {
                    if !given("margin", key) {
                        *slot = value;
                    }
                }
            }
            if !given("margin", "brackets") {
                config.margin.brackets = preset.brackets_for(&config.data.symbol);
            }
            if config.venue.name.is_none() {
                config.venue.name = Some(preset.name.clone());
            }
            config.data.funding_schedule = Some(crate::data::clock::Schedule {
                venue: preset.name.clone(),
                interval_hours: preset.funding.interval_hours,
                offset_hours: preset.funding.interval_offset_hours,
            });
            config.venue.loaded = Some(preset);
        }
        config.validate().map_err(|err| input_error!("config {origin}: {err:#}"))?;
        Ok(config)
    }

    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            input_error!(
                "cannot read config {}: {err}. Pass an existing file with --config, or run from the repository root to use data/basis.toml.",
                path.display()
            )
        })?;
        let base_dir = path.parent().unwrap_or_else(|| Path::new("."));
        Config::from_toml_str(&text, &path.display().to_string(), base_dir)
    }

    fn resolve_paths(&mut self, base_dir: &Path) {
        let resolve = |p: &mut String| {
            if !Path::new(p.as_str()).is_absolute() {
                *p = base_dir.join(p.as_str()).to_string_lossy().into_owned();
            }
        };
        if let Some(freqtrade) = self.data.freqtrade.as_mut() {
            resolve(&mut freqtrade.datadir);
        }
        for source in [self.data.spot.as_mut(), self.data.perp.as_mut(), self.data.mark.as_mut(), self.data.index.as_mut()].into_iter().flatten() {
            resolve(&mut source.path);
        }
        if let Some(funding) = self.data.funding.as_mut() {
            resolve(&mut funding.path);
        }
        if let Some(staking) = self.data.staking.as_mut() {
            resolve(&mut staking.path);
        }
        if let Some(premium) = self.venue.premium_index.as_mut() {
            resolve(premium);
        }
    }

    /// Check every value against its allowed range; the error names the key.
    pub fn validate(&self) -> Result<()> {
        fn check(key: &str, value: f64, ok: bool, range: &str) -> Result<()> {
            if !value.is_finite() || !ok {
                bail_input!("`{key}` = {value} is out of range: allowed {range}");
            }
            Ok(())
        }
        let p = &self.portfolio;
        check("portfolio.initial_capital", p.initial_capital, p.initial_capital > 0.0, "> 0")?;
        check("portfolio.leverage", p.leverage, p.leverage > 0.0 && p.leverage <= 125.0, "(0, 125]")?;
        check("portfolio.hedge_ratio", p.hedge_ratio, p.hedge_ratio > 0.0 && p.hedge_ratio <= 2.0, "(0, 2]")?;
        check("portfolio.reserve_fraction", p.reserve_fraction, (0.0..1.0).contains(&p.reserve_fraction), "[0, 1)")?;
        check(
            "portfolio.rebalance_delta_threshold",
            p.rebalance_delta_threshold,
            p.rebalance_delta_threshold > 0.0,
            "> 0 (e.g. 0.05 = re-hedge at 5 % delta drift)",
        )?;
        check("portfolio.top_up_distance", p.top_up_distance, (0.0..1.0).contains(&p.top_up_distance), "[0, 1)")?;
        check("portfolio.staking_apr", p.staking_apr, (0.0..=1.0).contains(&p.staking_apr), "[0, 1] (decimal APR)")?;
        check("portfolio.borrow_apr", p.borrow_apr, (0.0..=5.0).contains(&p.borrow_apr), "[0, 5] (decimal APR)")?;
        let c = &self.costs;
        for (key, value) in [
            ("costs.spot_maker_bps", c.spot_maker_bps),
            ("costs.spot_taker_bps", c.spot_taker_bps),
            ("costs.perp_maker_bps", c.perp_maker_bps),
            ("costs.perp_taker_bps", c.perp_taker_bps),
            ("costs.spot_slippage_bps", c.spot_slippage_bps),
            ("costs.perp_slippage_bps", c.perp_slippage_bps),
        ] {
            check(key, value, (0.0..=1000.0).contains(&value), "[0, 1000] bps")?;
        }
        let m = &self.margin;
        check(
            "margin.liquidation_fee_rate",
            m.liquidation_fee_rate,
            (0.0..0.5).contains(&m.liquidation_fee_rate),
            "[0, 0.5) (decimal)",
        )?;
        if m.brackets.is_empty() || m.brackets[0].notional_floor != 0.0 {
            bail_input!("`margin.brackets` must start with a tier at notional_floor = 0");
        }
        for (i, pair) in m.brackets.windows(2).enumerate() {
            if pair[1].notional_floor <= pair[0].notional_floor || pair[1].mmr < pair[0].mmr {
                bail_input!(
                    "`margin.brackets[{}]`: notional_floor and mmr must increase from tier to tier",
                    i + 1
                );
            }
        }
        for (i, b) in m.brackets.iter().enumerate() {
            check(&format!("margin.brackets[{i}].mmr"), b.mmr, b.mmr > 0.0 && b.mmr < 1.0, "(0, 1)")?;
            check(&format!("margin.brackets[{i}].cum"), b.cum, b.cum >= 0.0, ">= 0")?;
        }
        let d = &self.data;
        let offsets = [
            ("data.spot.utc_offset_hours", d.spot.as_ref().and_then(|s| s.utc_offset_hours)),
            ("data.perp.utc_offset_hours", d.perp.as_ref().and_then(|s| s.utc_offset_hours)),
            ("data.mark.utc_offset_hours", d.mark.as_ref().and_then(|s| s.utc_offset_hours)),
            ("data.index.utc_offset_hours", d.index.as_ref().and_then(|s| s.utc_offset_hours)),
            ("data.funding.utc_offset_hours", d.funding.as_ref().and_then(|s| s.utc_offset_hours)),
            ("data.staking.utc_offset_hours", d.staking.as_ref().and_then(|s| s.utc_offset_hours)),
        ];
        for (key, offset) in offsets {
            if let Some(hours) = offset {
                check(key, hours, (-14.0..=14.0).contains(&hours), "[-14, 14] hours east of UTC (3 = a file written in UTC+3)")?;
            }
        }
        if d.index.is_some() && d.freqtrade.is_some() {
            bail_input!("[data.index] needs [data.spot]/[data.perp]/[data.funding]; a [data.freqtrade] directory has no index series");
        }
        match (&d.freqtrade, &d.spot, &d.perp, &d.funding, &d.mark) {
            (Some(_), None, None, None, None) | (None, Some(_), Some(_), Some(_), _) => {}
            (Some(_), ..) => bail_input!("[data.freqtrade] finds spot, perp, mark and funding itself: remove [data.spot], [data.perp], [data.mark] and [data.funding]"),
            (None, ..) => bail_input!("[data] needs [data.spot], [data.perp] and [data.funding] (or a [data.freqtrade] directory instead)"),
        }
        if self.venue.funding == FundingRatesFrom::Counterfactual && self.venue.preset.is_none() {
            bail_input!("`venue.funding` = \"counterfactual\" needs `venue.preset` (whose rules produce the rates)");
        }
        if let Some(cap) = self.venue.funding_cap {
            check("venue.funding_cap", cap, cap > 0.0 && cap < 1.0, "(0, 1) (decimal per settlement, e.g. 0.003 = 0.3 %)")?;
        }
        if let Some(floor) = self.venue.funding_floor {
            check("venue.funding_floor", floor, floor < 0.0 && floor > -1.0, "(-1, 0) (decimal per settlement, e.g. -0.003)")?;
        }
        let s = &self.strategy;
        check("strategy.exit_funding_apr", s.exit_funding_apr, s.exit_funding_apr <= s.entry_funding_apr, "<= strategy.entry_funding_apr")?;
        if s.lookback_settlements == 0 {
            bail_input!("`strategy.lookback_settlements` = 0 is out of range: allowed >= 1");
        }
        if let Some(hours) = s.lookback_hours {
            check("strategy.lookback_hours", hours, hours > 0.0 && hours <= 24.0 * 3650.0, "(0, 87600] hours")?;
        }
        check("margin.backstop_fraction", m.backstop_fraction, (0.0..=1.0).contains(&m.backstop_fraction), "[0, 1]")?;
        check("margin.spot_liquidation_level", m.spot_liquidation_level, m.spot_liquidation_level > 1.0 && m.spot_liquidation_level < 10.0, "(1, 10) (assets / liabilities)")?;
        check(
            "margin.spot_margin_call_level",
            m.spot_margin_call_level,
            m.spot_margin_call_level >= m.spot_liquidation_level && m.spot_margin_call_level < 10.0,
            "[margin.spot_liquidation_level, 10)",
        )?;
        check(
            "margin.spot_transfer_out_level",
            m.spot_transfer_out_level,
            m.spot_transfer_out_level >= m.spot_margin_call_level && m.spot_transfer_out_level < 10.0,
            "[margin.spot_margin_call_level, 10)",
        )?;
        check("margin.spot_liquidation_fee_rate", m.spot_liquidation_fee_rate, (0.0..0.5).contains(&m.spot_liquidation_fee_rate), "[0, 0.5) (decimal)")?;
        if s.mode == EntryMode::AlwaysOn && s.direction == Direction::Both {
            bail_input!("`strategy.direction` = \"both\" needs `strategy.mode` = \"funding_threshold\" (always_on holds one direction)");
        }
        validate_run_name(&self.run.name)?;
        Ok(())
    }
}

/// A run name becomes a folder under the output directory: it must not escape it.
pub fn validate_run_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if !ok {
        bail_input!(
            "`run.name` = {name:?} is not allowed: use 1-100 letters, digits, '-', '_' or '.', not starting with '.' (it names a folder under the output directory)"
        );
    }
    Ok(())
}

/// Parse a date (`2021-01-01`) or RFC 3339 time into epoch milliseconds (UTC).
pub fn parse_time_ms(key: &str, text: &str) -> Result<i64> {
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(dt.timestamp_millis());
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if let Some(dt) = date.and_hms_opt(0, 0, 0) {
            return Ok(dt.and_utc().timestamp_millis());
        }
    }
    Err(input_error!("`{key}` = {text:?} is not a date: use 2021-01-01 or 2021-01-01T08:00:00Z"))
        .context("parsing the strategy window")
}
