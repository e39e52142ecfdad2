//! The TOML run configuration: what data to load, which strategy to run, with what costs.
//!
//! This file is the schema: every struct denies unknown keys, so a typo is an error that names
//! the key. `load.rs` reads a file (paths resolved against its folder, the venue preset merged
//! in), `validate.rs` checks ranges and names the offending key with its allowed range,
//! `overrides.rs` applies `--set KEY=VALUE`, and `params.rs` turns a config into the engine's
//! parameters. The `[data]` section's types live in `data::source` and are re-exported here.
//! `data/basis.toml` is the documented example of every field.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub mod book;
pub mod perp_perp;
mod load;
mod overrides;
mod params;
mod validate;

pub use crate::data::source::{DataConfig, DatedFormat, DatedSource, RateSource, FreqtradeFormat, FreqtradeSource, FundingFormat, FundingSource, PriceFormat, PriceSource, StakingSource, TimeFormat};
pub use crate::model::bracket::Bracket;
pub use crate::model::costs::{CostSchedule, OrderType};
pub use crate::output::validate_run_name;
pub use crate::sim::dated::InstrumentChoice;
pub use crate::sim::policy::{AfterLiquidation, Direction, EntryMode, TopUpSource};
pub use crate::time::parse_time_ms;
pub use overrides::{book_from_value_with_overrides, from_value_with_overrides, load_book_with_overrides, load_with_overrides, set_path, load_perp_perp_with_overrides};
pub use params::engine_params;

/// A complete run configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[run]`: the run's name and where its outputs go.
    #[serde(default)]
    pub run: RunConfig,
    /// `[data]`: the spot, perp, mark, index, funding and staking files to load.
    pub data: DataConfig,
    /// `[strategy]`: entry and exit rules, direction and the window traded.
    #[serde(default)]
    pub strategy: StrategyConfig,
    /// `[portfolio]`: capital, leverage, hedge ratio, reserve and margin top-ups.
    #[serde(default)]
    pub portfolio: PortfolioConfig,
    /// `[costs]`: trading fees and slippage, in bps (win over the venue preset's).
    #[serde(default)]
    pub costs: CostSchedule,
    /// `[margin]`: maintenance brackets and liquidation rules (win over the venue preset's).
    #[serde(default)]
    pub margin: MarginConfig,
    /// `[venue]`: the venue preset and whether funding comes from the data or its rules.
    #[serde(default)]
    pub venue: VenueConfig,
    /// User signals (`[[signal]]`): series of values over time that rules may name.
    #[serde(default, rename = "signal", skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<crate::data::source::SeriesSource>,
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
    /// Resolution of `ledger.parquet`: `full` (every step), `hourly` or `daily` (the last row of
    /// each UTC hour or day, its PnL components summed over the period so each row still adds
    /// up), or `none` (no ledger file and no report). Metrics are exact at every resolution:
    /// they come from the engine, not from the ledger.
    #[serde(default, skip_serializing_if = "LedgerResolution::is_full")]
    pub ledger: LedgerResolution,
}

/// How many ledger rows a run keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerResolution {
    /// Every step.
    #[default]
    Full,
    /// The last step of each UTC hour, with the hour's PnL.
    Hourly,
    /// The last step of each UTC day, with the day's PnL.
    Daily,
    /// No rows.
    None,
}

impl LedgerResolution {
    fn is_full(&self) -> bool {
        *self == LedgerResolution::Full
    }

    /// The period rows are gathered over, ms (`None` for full or none).
    pub fn period_ms(&self) -> Option<i64> {
        match self {
            LedgerResolution::Hourly => Some(crate::time::MS_PER_HOUR),
            LedgerResolution::Daily => Some(crate::time::MS_PER_DAY),
            _ => Option::None,
        }
    }
}

impl Default for RunConfig {
    fn default() -> Self {
        Self { name: default_run_name(), output_dir: default_output_dir(), report: true, ledger: LedgerResolution::Full }
    }
}

fn default_run_name() -> String {
    "run".to_string()
}
fn default_output_dir() -> PathBuf {
    PathBuf::from("reports")
}

/// Entry, exit and the window traded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyConfig {
    /// Entry rule: `always_on` (enter at the first step, hold) or `funding_threshold`.
    #[serde(default = "default_mode")]
    pub mode: EntryMode,
    /// Which carry to run: `long` (long spot, short perp), `reverse`, or `both`.
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
    /// The derivative leg: `perp` (funding), `dated` (the nearest dated contract of
    /// `[data.dated]`, rolled before expiry: the basis locked in at entry), or `best` (whichever
    /// of the perp's trailing funding APR and the dated contract's annualised basis pays more
    /// after the cost of switching).
    #[serde(default, skip_serializing_if = "is_perp")]
    pub instrument: InstrumentChoice,
    /// Dated contracts are entered only with at least this many days to expiry.
    #[serde(default = "default_min_days", skip_serializing_if = "is_default_min_days")]
    pub min_days_to_expiry: f64,
    /// Roll into the next contract this many days before expiry (0: hold to delivery and
    /// settle at the settlement price).
    #[serde(default = "default_roll_days", skip_serializing_if = "is_default_roll_days")]
    pub roll_days_before: f64,
    /// `best`: the cost of a switch (closing one instrument, opening the other) is spread over
    /// this many days, or the days to expiry if fewer; the other instrument must beat the one
    /// held by more than that, in APR.
    #[serde(default = "default_switch_horizon", skip_serializing_if = "is_default_switch_horizon")]
    pub switch_horizon_days: f64,
    /// `rules`: when to enter, an expression over signals (e.g. `funding_predicted_apr > 0.10
    /// and basis_bp > -5`); see `signal` for the names and functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enter: Option<String>,
    /// `rules`: when to exit; `held` is +1 in a long carry and −1 in a reverse carry, so
    /// `held * funding_trailing_apr < 0.02` exits either carry when it stops paying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<String>,
    /// `rules`: which carry an entry takes, by the sign of the expression (> 0 long, < 0
    /// reverse); default: the `direction` (`both` needs it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side: Option<String>,
    /// `rules`: the target share of the allocated capital, clipped to [0, 1] (default 1). A held
    /// carry is resized when it moves by more than `portfolio.rebalance_delta_threshold` of the
    /// size held; 0 exits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// `rules`/`target`: a rule exit waits until the carry has been held this many hours.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub min_hold_hours: f64,
    /// `rules`/`target`: no entry for this many hours after an exit.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cooldown_hours: f64,
    /// `rules`: enter only when the carry expected over this many days (`hurdle_apr`, signed by
    /// the side) pays for the round trip's fees and slippage on both legs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hurdle_days: Option<f64>,
    /// `rules`: the APR the hurdle expects, an expression (default `funding_trailing_apr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hurdle_apr: Option<String>,
    /// `target`: the user's series of target exposure in [−1, 1] per time (negative: reverse
    /// carry; 0: flat), e.g. `{ path = "target.parquet", value_column = "target" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<crate::data::source::SeriesSource>,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

fn default_switch_horizon() -> f64 {
    14.0
}
fn is_default_switch_horizon(days: &f64) -> bool {
    *days == default_switch_horizon()
}

fn is_perp(instrument: &InstrumentChoice) -> bool {
    *instrument == InstrumentChoice::Perp
}
fn default_min_days() -> f64 {
    14.0
}
fn is_default_min_days(days: &f64) -> bool {
    *days == default_min_days()
}
fn default_roll_days() -> f64 {
    3.0
}
fn is_default_roll_days(days: &f64) -> bool {
    *days == default_roll_days()
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
            instrument: InstrumentChoice::Perp,
            min_days_to_expiry: default_min_days(),
            roll_days_before: default_roll_days(),
            switch_horizon_days: default_switch_horizon(),
            enter: None,
            exit: None,
            side: None,
            size: None,
            min_hold_hours: 0.0,
            cooldown_hours: 0.0,
            hurdle_days: None,
            hurdle_apr: None,
            target: None,
        }
    }
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
    /// Where margin top-ups come from: `none`, `reserve`, `sell_spot` or `reserve_then_spot`.
    #[serde(default = "default_top_up_source")]
    pub top_up_source: TopUpSource,
    /// Staking yield on a long spot leg, decimal APR, accrued in the spot asset (as an LST rebases).
    #[serde(default)]
    pub staking_apr: f64,
    /// Borrow cost of a short spot leg (reverse carry), decimal APR, accrued in the spot asset.
    #[serde(default = "default_borrow")]
    pub borrow_apr: f64,
    /// Idle cash (the reserve, and cash while flat) earns `[data.cash_rate]`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cash_earns: bool,
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
            cash_earns: false,
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
    /// Its fees, brackets and liquidation fee apply unless `[costs]`/`[margin]` set them.
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
    pub loaded: Option<std::sync::Arc<crate::venue::Preset>>,
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
    /// `linear` (USDT-margined, the default) or `inverse` (coin-margined: a USD notional whose
    /// margin, PnL, funding and fees are in the coin, as on BitMEX XBTUSD, Deribit and Binance
    /// COIN-M). Inverse runs the long carry with the coin as the margin.
    #[serde(default, skip_serializing_if = "is_linear")]
    pub contract: Contract,
    /// Counterfactual funding: `none` or `trailing_median` (each premium sample less the median
    /// of the trailing `premium_debias_days`, known at the sample). Default: `trailing_median`
    /// for the perp/spot or mark/spot proxy, `none` with `premium_index`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub premium_debias: Option<crate::venue::funding::PremiumDebias>,
    /// Days of the trailing median `premium_debias` subtracts (default 365: on Binance BTC
    /// 2019–2026 it brings the premium-only rule sets within 4 APR points of the actual prints,
    /// where 30 days leaves them 9–11 points under).
    #[serde(default = "default_debias_days")]
    pub premium_debias_days: f64,
}

fn default_debias_days() -> f64 {
    365.0
}

/// How the perp is margined and settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Contract {
    /// Quoted, margined and settled in the quote currency (USDT).
    #[default]
    Linear,
    /// A USD notional margined and settled in the coin.
    Inverse,
}

fn is_linear(contract: &Contract) -> bool {
    *contract == Contract::Linear
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
        let mut preset = (**self.loaded.as_ref()?).clone();
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
    pub liquidation: crate::sim::margin::LiquidationStyle,
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
    /// Spot margin: a liquidation buys back only what brings the margin level back to this,
    /// and stops (Binance Cross Margin 3x: 1.5, MARGIN.md §4); at or below
    /// `1 + spot_liquidation_fee_rate` the whole loan is bought back.
    #[serde(default = "default_spot_stop")]
    pub spot_liquidation_stop_level: f64,
    /// How far a liquidated perp's closing fill slips past its liquidation price, bps of that
    /// price, never past the bar's adverse extreme (a bar that opens past it fills at its open).
    /// Default: the preset's, else `costs.perp_slippage_bps` (a liquidation is a market order
    /// and slips as the strategy's own do; 0 fills at the liquidation price).
    #[serde(default)]
    pub liquidation_slippage_bps: Option<f64>,
    /// Whether the venue builds the taker fee into the liquidation and bankruptcy prices (Gate,
    /// MARGIN.md §3.3): the maintenance rates gain `perp_taker_bps`, and a bankruptcy-price
    /// fill is where the margin less the fee to close is zero. Default: the preset's, else false.
    #[serde(default)]
    pub taker_fee_in_liquidation_price: bool,
    /// What an isolated position's maintenance margin is a share of: `mark` (the notional at
    /// the mark; Binance) or `entry` (the position value at its entry price; Bybit's isolated
    /// USDT perpetuals). Default: the preset's, else `mark`.
    #[serde(default)]
    pub maintenance_on: crate::sim::margin::MaintenanceBasis,
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
            spot_liquidation_stop_level: default_spot_stop(),
            liquidation_slippage_bps: None,
            taker_fee_in_liquidation_price: false,
            maintenance_on: Default::default(),
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
// Binance Cross Margin (classic 3x): the engine's one statement of those rules.
fn default_spot_call() -> f64 {
    crate::sim::BINANCE_CROSS_MARGIN.margin_call_level
}
fn default_spot_liquidation() -> f64 {
    crate::sim::BINANCE_CROSS_MARGIN.liquidation_level
}
fn default_spot_liq_fee() -> f64 {
    crate::sim::BINANCE_CROSS_MARGIN.liquidation_fee_rate
}
fn default_spot_transfer() -> f64 {
    crate::sim::BINANCE_CROSS_MARGIN.transfer_out_level
}
fn default_spot_stop() -> f64 {
    crate::sim::BINANCE_CROSS_MARGIN.liquidation_stop_level
}

/// Binance BTCUSDT USDⓈ-M brackets (public fixture ~2022–23, VENUES.md §2.1 (B18a)).
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

