//! Venues as data: each venue's funding rules, fees, maintenance brackets and liquidation fee,
//! read from a TOML preset (`data/venues/<id>.toml`, compiled into the binary) with a source
//! for every value. A user's preset file can `extends = "<id>"` and override or add any field.
//!
//! [`funding`] computes the funding series a venue's rules would produce from a premium series.
//! The commands that compare rule sets and venues live in `app` (`caps`, `venues`).

pub mod funding;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::model::Bracket;
use crate::time::parse_time_ms;
use crate::{bail_input, input_error};

/// The built-in presets: (id, TOML text).
pub const BUILT_IN: [(&str, &str); 8] = [
    ("binance_usdm", include_str!("../../data/venues/binance_usdm.toml")),
    ("bybit_linear", include_str!("../../data/venues/bybit_linear.toml")),
    ("okx_swap", include_str!("../../data/venues/okx_swap.toml")),
    ("hyperliquid", include_str!("../../data/venues/hyperliquid.toml")),
    ("dydx_v4", include_str!("../../data/venues/dydx_v4.toml")),
    ("bitmex", include_str!("../../data/venues/bitmex.toml")),
    ("deribit", include_str!("../../data/venues/deribit.toml")),
    ("gate_usdt", include_str!("../../data/venues/gate_usdt.toml")),
];

/// How a venue turns the averaged premium P̄ (per 8 h) into a rate per 8 h.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Formula {
    /// F = P̄ + clamp(I − P̄, −c, +c) (Binance, Bybit, OKX new, Hyperliquid, BitMEX, Gate).
    ClampedInterest,
    /// F = P̄ + I (dYdX: premium/8 + interest per hour).
    PremiumPlusInterest,
    /// F = P̄ (OKX before 2025-04: moving average of the premium, I = 0).
    PremiumOnly,
    /// F = max(d, P̄) + min(−d, P̄): zero inside the dead band ±d (Deribit).
    DeadBand,
}

/// How premium samples inside an interval are averaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Averaging {
    /// Plain mean of the samples (Hyperliquid, dYdX, Deribit, BitMEX, OKX before 2025-04).
    Mean,
    /// Weights 1..n, the latest sample heaviest (Binance, Bybit, Gate).
    LinearWeights,
}

/// The price the funding notional is valued at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaidOn {
    /// Position size × mark price (Binance, Bybit, OKX, ...).
    Mark,
    /// Position size × oracle price, an index of spot prices (Hyperliquid, dYdX).
    Oracle,
}

/// When the rate paid at a settlement is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    /// Averaged over the interval that ends at the settlement.
    SameInterval,
    /// Fixed one interval earlier (BitMEX; OKX `next_period` history).
    KnownInAdvance,
}

/// A cap that follows from margin parameters: multiplier × (initial − maintenance margin).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarginCap {
    /// Multiplier on (initial − maintenance margin), e.g. 6.0 (dYdX: 600 %) or 0.75 (BitMEX).
    pub multiplier: f64,
    /// Initial margin fraction, decimal (0.05 = 5 %).
    pub initial_margin: f64,
    /// Maintenance margin fraction, decimal (0.03 = 3 %).
    pub maintenance_margin: f64,
}

impl MarginCap {
    /// The cap this rule gives.
    pub fn value(&self) -> f64 {
        self.multiplier * (self.initial_margin - self.maintenance_margin)
    }
}

/// Cap and floor for a symbol (or `*`) over an optional date range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapRule {
    /// `BTCUSDT`-style symbol, or `*` for every symbol without its own rule.
    pub symbol: String,
    /// Highest rate per settlement, decimal (0.003 = 0.3 %; per `cap_per_hours` where set).
    #[serde(default)]
    pub cap: Option<f64>,
    /// Lowest rate per settlement, decimal, usually −cap (per `cap_per_hours` where set).
    #[serde(default)]
    pub floor: Option<f64>,
    /// A cap (and floor = −cap) from margin parameters, instead of fixed values.
    #[serde(default)]
    pub margin_cap: Option<MarginCap>,
    /// First time the rule applies (inclusive), date or RFC 3339.
    #[serde(default)]
    pub from: Option<String>,
    /// Time the rule stops applying (exclusive).
    #[serde(default)]
    pub to: Option<String>,
    /// Where the rule comes from (a URL or a reference id of VENUES.md).
    pub source: String,
    /// `from` and `to` in epoch ms, parsed once when the preset loads (lookups run per settlement).
    #[serde(skip)]
    pub from_ms: Option<i64>,
    /// `to` in epoch ms, parsed when the preset loads.
    #[serde(skip)]
    pub to_ms: Option<i64>,
}

/// A dated change of the funding formula (OKX's 2025 switch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormulaChange {
    /// First time the new formula applies (inclusive), date or RFC 3339.
    pub from: String,
    /// `from` in epoch ms, parsed when the preset loads.
    #[serde(skip)]
    pub from_ms: i64,
    /// The formula from then on.
    pub formula: Formula,
    /// Interest component from then on, decimal per 8 h (0.0001 = 0.01 %).
    pub interest_per_8h: f64,
    /// Inner clamp c from then on, decimal per 8 h (0.0005 = 0.05 %).
    pub inner_clamp: f64,
    /// How premium samples are averaged from then on.
    pub averaging: Averaging,
    /// When the rate is known from then on.
    pub timing: Timing,
    /// Where the change comes from (a URL or a reference id of VENUES.md).
    pub source: String,
}

/// A dated change of the settlement interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntervalChange {
    /// First time the new interval applies (inclusive), date or RFC 3339.
    pub from: String,
    /// `from` in epoch ms, parsed when the preset loads.
    #[serde(skip)]
    pub from_ms: i64,
    /// Settlement interval from then on, in hours (e.g. 4.0).
    pub interval_hours: f64,
    /// Where the change comes from (a URL or a reference id of VENUES.md).
    pub source: String,
}

/// A venue's funding rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FundingRules {
    /// Settlement interval in hours (8.0 for Binance, 1.0 for Hyperliquid and dYdX).
    pub interval_hours: f64,
    /// Settlements fall at offset + k × interval hours after 00:00 UTC (BitMEX: 4).
    #[serde(default)]
    pub interval_offset_hours: f64,
    /// Dated changes of the settlement interval, in time order.
    #[serde(default)]
    pub interval_changes: Vec<IntervalChange>,
    /// How the averaged premium becomes the rate (before any `formula_changes`).
    pub formula: Formula,
    /// Interest component per 8 h (decimal).
    pub interest_per_8h: f64,
    /// Inner clamp c of clamp(I − P̄, −c, +c).
    pub inner_clamp: f64,
    /// Dead band d (Deribit).
    #[serde(default)]
    pub dead_band: f64,
    /// How premium samples inside an interval are averaged.
    pub averaging: Averaging,
    /// The price the funding notional is valued at: `mark` or `oracle`.
    pub paid_on: PaidOn,
    /// When the rate paid at a settlement is known: `same_interval` or `known_in_advance`.
    pub timing: Timing,
    /// Dated changes of the formula, interest, clamp, averaging and timing, in time order.
    #[serde(default)]
    pub formula_changes: Vec<FormulaChange>,
    /// Caps are stated per this many hours and scale with the interval (Hyperliquid 1, dYdX and
    /// Deribit 8). Absent: a cap applies to each settlement whatever its interval (Binance).
    #[serde(default)]
    pub cap_per_hours: Option<f64>,
    /// Cap and floor rules by symbol and date: a symbol's own rule in force, else the `*` rule.
    pub caps: Vec<CapRule>,
    /// Source of each rule, by field name.
    pub sources: BTreeMap<String, String>,
}

/// Maintenance brackets and liquidation fee.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Margin {
    /// Liquidation fee, decimal of liquidated notional (0.0125 = 1.25 %), paid from margin.
    pub liquidation_fee_rate: f64,
    /// How a liquidated perp closes (liquidation price plus fee, bankruptcy price, or market
    /// close with a backstop); `None` keeps the config default (liquidation price).
    #[serde(default)]
    pub liquidation: Option<crate::sim::margin::LiquidationStyle>,
    /// Backstop threshold as a share of maintenance margin (`market_with_backstop`).
    #[serde(default)]
    pub backstop_fraction: Option<f64>,
    /// How far a liquidation's fill slips past the liquidation price, bps (`None`: 0).
    #[serde(default)]
    pub liquidation_slippage_bps: Option<f64>,
    /// Whether the taker fee is built into the liquidation and bankruptcy prices (Gate).
    #[serde(default)]
    pub taker_fee_in_liquidation_price: Option<bool>,
    /// What an isolated position's maintenance is a share of (`None`: the mark).
    #[serde(default)]
    pub maintenance_on: Option<crate::sim::margin::MaintenanceBasis>,
    /// Maintenance margin brackets for symbols without their own, by notional floor (quote currency).
    pub brackets: Vec<Bracket>,
    /// Maintenance margin brackets of particular symbols (e.g. `ETHUSDT`), in place of `brackets`.
    #[serde(default)]
    pub brackets_by_symbol: BTreeMap<String, Vec<Bracket>>,
    /// Where the margin values come from (a URL or a reference id of VENUES.md).
    pub source: String,
    /// The spot-margin account the reverse carry borrows spot in, where the venue offers one.
    #[serde(default)]
    pub spot: Option<SpotMargin>,
    /// The venue's portfolio-margin (unified) account, where it offers one.
    #[serde(default)]
    pub portfolio: Option<PortfolioMargin>,
}

/// A venue's portfolio-margin account: the level its equity / maintenance ratio is liquidated
/// at, and the collateral ratio (haircut) of each asset, each value sourced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortfolioMargin {
    /// Adjusted equity / maintenance margin at or below which the account is liquidated
    /// (Binance's uniMMR 1.05).
    pub liquidation_threshold: f64,
    /// Collateral ratio by asset (`BTC = 0.95`): the share of a positive balance's value that
    /// counts as margin.
    pub collateral: BTreeMap<String, f64>,
    /// Tiered collateral ratios by asset, in place of `collateral` for those assets.
    #[serde(default)]
    pub collateral_tiers: BTreeMap<String, crate::sim::margin::CollateralSchedule>,
    /// Interest on a negative quote (USDT) balance, decimal APR.
    pub quote_borrow_apr: f64,
    /// Where each value comes from, with UNCONFIRMED where no source was found.
    pub source: String,
}

/// A venue's spot-margin rules (the reverse carry's borrowed spot), each value sourced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpotMargin {
    /// Margin level (assets / liabilities) of the margin call.
    pub margin_call_level: f64,
    /// Margin level at which the loan is liquidated.
    pub liquidation_level: f64,
    /// Fee on the liquidated assets, decimal.
    pub liquidation_fee_rate: f64,
    /// Lowest margin level a transfer out may leave.
    pub transfer_out_level: f64,
    /// Margin level at which a liquidation stops buying back the loan (`None`: the whole loan).
    #[serde(default)]
    pub liquidation_stop_level: Option<f64>,
    /// Where each value comes from.
    pub source: String,
}

/// One venue's rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// Preset id, e.g. `binance_usdm` (the file name of a built-in preset).
    pub id: String,
    /// Display name in reports, e.g. "Binance USD-M".
    pub name: String,
    /// Caveats shown with the preset: what basis does not model, or what is unconfirmed.
    #[serde(default)]
    pub notes: Vec<String>,
    /// `[funding]`: interval, formula, caps and their sources.
    pub funding: FundingRules,
    /// `[fees]`: spot and perp trading fees, in bps.
    pub fees: crate::model::CostSchedule,
    /// `[margin]`: maintenance brackets, liquidation fee and spot-margin rules.
    pub margin: Margin,
}

/// The formula in force at a time (after dated changes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FormulaAt {
    /// The formula in force.
    pub formula: Formula,
    /// Interest component, decimal per 8 h (0.0001 = 0.01 %).
    pub interest_per_8h: f64,
    /// Inner clamp c of clamp(I − P̄, −c, +c), decimal per 8 h.
    pub inner_clamp: f64,
    /// Dead band d, decimal per 8 h (Deribit; 0 elsewhere).
    pub dead_band: f64,
    /// How premium samples are averaged.
    pub averaging: Averaging,
    /// When the rate is known.
    pub timing: Timing,
}

/// Recursively merge `over` into `base` (tables merge key by key; anything else replaces).
fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(base), toml::Value::Table(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

impl Preset {
    /// A built-in preset by id, or a preset file (which may `extends = "<id or path>"`).
    pub fn load(name: &str, base_dir: &Path) -> Result<Preset> {
        Ok((*Self::load_shared(name, base_dir)?).clone())
    }

    /// The venue's settlement schedule (interval and anchor), which the clock check of funding
    /// times compares with.
    pub fn schedule(&self) -> crate::data::clock::Schedule {
        crate::data::clock::Schedule { venue: self.name.clone(), interval_hours: self.funding.interval_hours, offset_hours: self.funding.interval_offset_hours }
    }

    /// [`Preset::load`], shared: a built-in is parsed once per process and handed out by
    /// reference count (a sweep builds thousands of configs; cloning the preset for each cost
    /// about 54 heap allocations of a configuration's 2,700).
    pub fn load_shared(name: &str, base_dir: &Path) -> Result<std::sync::Arc<Preset>> {
        static BUILT_IN_CACHE: std::sync::OnceLock<Vec<(String, std::sync::Arc<Preset>)>> = std::sync::OnceLock::new();
        if BUILT_IN.iter().any(|(id, _)| *id == name) {
            let cache = BUILT_IN_CACHE.get_or_init(|| {
                BUILT_IN.iter().filter_map(|(id, _)| Self::parse(id, base_dir).ok().map(|p| (id.to_string(), std::sync::Arc::new(p)))).collect()
            });
            if let Some((_, preset)) = cache.iter().find(|(id, _)| id == name) {
                return Ok(preset.clone());
            }
        }
        Self::parse(name, base_dir).map(std::sync::Arc::new)
    }

    fn parse(name: &str, base_dir: &Path) -> Result<Preset> {
        let value = Self::load_value(name, base_dir, 0)?;
        // A preset states every fee and its source (the schedule's defaults are for configs).
        for key in ["spot_maker_bps", "spot_taker_bps", "perp_maker_bps", "perp_taker_bps", "source"] {
            if value.get("fees").and_then(|f| f.get(key)).is_none() {
                bail_input!("venue preset {name:?}: [fees] has no `{key}`; a preset states every fee with its source");
            }
        }
        let preset: Preset = value
            .try_into()
            .map_err(|err| input_error!("venue preset {name:?}: {err}. See data/venues/binance_usdm.toml for every field."))?;
        let mut preset = preset;
        preset.validate()?;
        preset.resolve_times()?;
        Ok(preset)
    }

    fn load_value(name: &str, base_dir: &Path, depth: usize) -> Result<toml::Value> {
        if depth > 4 {
            bail_input!("venue preset {name:?}: `extends` chains more than 4 deep (a cycle?)");
        }
        let (text, origin, dir) = match BUILT_IN.iter().find(|(id, _)| *id == name) {
            Some((_, text)) => (text.to_string(), format!("built-in preset {name}"), base_dir.to_path_buf()),
            None => {
                let path = base_dir.join(name);
                let text = std::fs::read_to_string(&path).map_err(|err| {
                    input_error!(
                        "venue preset {name:?} is neither a built-in preset ({}) nor a readable file ({}: {err})",
                        BUILT_IN.iter().map(|(id, _)| *id).collect::<Vec<_>>().join(", "),
                        path.display()
                    )
                })?;
                (text, path.display().to_string(), path.parent().unwrap_or(base_dir).to_path_buf())
            }
        };
        let mut value: toml::Value = toml::from_str(&text).map_err(|err| input_error!("{origin}: {}", err.to_string().trim_end()))?;
        let extends = value.as_table_mut().and_then(|t| t.remove("extends"));
        match extends {
            Some(toml::Value::String(parent)) => {
                let mut base = Self::load_value(&parent, &dir, depth + 1)?;
                merge(&mut base, value);
                Ok(base)
            }
            Some(other) => bail_input!("{origin}: `extends` must be a preset id or file name, found {other}"),
            None => Ok(value),
        }
    }

    /// Every built-in preset.
    pub fn built_in() -> Result<Vec<Preset>> {
        BUILT_IN.iter().map(|(id, _)| Preset::load(id, Path::new("."))).collect()
    }

    /// Check ranges and sources; errors name the preset and field (dates are checked as they
    /// are parsed, in `Preset::resolve_times`).
    pub fn validate(&self) -> Result<()> {
        let f = &self.funding;
        let id = &self.id;
        if !(f.interval_hours > 0.0 && f.interval_hours <= 24.0) {
            bail_input!("venue preset {id}: funding.interval_hours = {} is out of range (0, 24]", f.interval_hours);
        }
        for c in &f.caps {
            match (c.cap, c.floor, c.margin_cap) {
                (Some(cap), Some(floor), None) if cap > 0.0 && floor < 0.0 => {}
                (None, None, Some(m)) if m.value() > 0.0 => {}
                _ => bail_input!("venue preset {id}: caps for {:?} need cap > 0 and floor < 0, or a margin_cap with initial > maintenance", c.symbol),
            }
        }
        if let Some(pm) = &self.margin.portfolio {
            for (asset, schedule) in &pm.collateral_tiers {
                if let Err(err) = schedule.check() {
                    bail_input!("venue preset {id}: margin.portfolio.collateral_tiers.{asset}: {err}");
                }
            }
        }
        if let Some(bps) = self.margin.liquidation_slippage_bps {
            if !(0.0..=5000.0).contains(&bps) {
                bail_input!("venue preset {id}: margin.liquidation_slippage_bps = {bps} is out of range [0, 5000]");
            }
        }
        if self.margin.liquidation.is_none() {
            bail_input!("venue preset {id}: margin.liquidation is missing; state how the venue closes a liquidated position (liquidation_price, bankruptcy_price or market_with_backstop) with its source");
        }
        for key in ["interval_hours", "formula", "interest_per_8h", "inner_clamp", "paid_on", "timing", "caps"] {
            if !f.sources.contains_key(key) {
                bail_input!("venue preset {id}: funding.sources has no source for `{key}`");
            }
        }
        Ok(())
    }

    /// Parse every dated rule's times into ms once (after [`Preset::validate`]).
    fn resolve_times(&mut self) -> Result<()> {
        let id = self.id.clone();
        let time = |what: &str, text: &str| parse_time_ms(&format!("venue preset {id}: {what}"), text);
        for c in &mut self.funding.caps {
            c.from_ms = c.from.as_deref().map(|t| time(&format!("caps[{}].from", c.symbol), t)).transpose()?;
            c.to_ms = c.to.as_deref().map(|t| time(&format!("caps[{}].to", c.symbol), t)).transpose()?;
        }
        for change in &mut self.funding.formula_changes {
            change.from_ms = time("formula_changes.from", &change.from)?;
        }
        for change in &mut self.funding.interval_changes {
            change.from_ms = time("interval_changes.from", &change.from)?;
        }
        Ok(())
    }

    /// The settlement interval in force at `at_ms`.
    pub fn interval_hours_at(&self, at_ms: i64) -> f64 {
        let mut hours = self.funding.interval_hours;
        for change in &self.funding.interval_changes {
            if at_ms >= change.from_ms {
                hours = change.interval_hours;
            }
        }
        hours
    }

    /// The formula in force at `at_ms`.
    pub fn formula_at(&self, at_ms: i64) -> FormulaAt {
        let f = &self.funding;
        let mut now = FormulaAt {
            formula: f.formula,
            interest_per_8h: f.interest_per_8h,
            inner_clamp: f.inner_clamp,
            dead_band: f.dead_band,
            averaging: f.averaging,
            timing: f.timing,
        };
        for change in &f.formula_changes {
            if at_ms >= change.from_ms {
                now = FormulaAt {
                    formula: change.formula,
                    interest_per_8h: change.interest_per_8h,
                    inner_clamp: change.inner_clamp,
                    dead_band: f.dead_band,
                    averaging: change.averaging,
                    timing: change.timing,
                };
            }
        }
        now
    }

    /// Cap and floor of one settlement of `symbol` at `at_ms` covering `interval_hours`: the
    /// symbol's own rule in force then, else the `*` rule; scaled to the interval when the
    /// venue states caps per a fixed number of hours.
    pub fn limits_at(&self, symbol: &str, at_ms: i64, interval_hours: f64) -> (Option<f64>, Option<f64>) {
        let in_force = |rule: &&CapRule| rule.from_ms.is_none_or(|from| at_ms >= from) && rule.to_ms.is_none_or(|to| at_ms < to);
        let rule = self
            .funding
            .caps
            .iter()
            .filter(in_force)
            .find(|r| r.symbol.eq_ignore_ascii_case(symbol))
            .or_else(|| self.funding.caps.iter().filter(in_force).find(|r| r.symbol == "*"));
        let Some(rule) = rule else { return (None, None) };
        let (cap, floor) = match rule.margin_cap {
            Some(m) => (m.value(), -m.value()),
            None => (rule.cap.unwrap_or(f64::INFINITY), rule.floor.unwrap_or(f64::NEG_INFINITY)),
        };
        let scale = self.funding.cap_per_hours.map(|h| interval_hours / h).unwrap_or(1.0);
        (Some(cap * scale), Some(floor * scale))
    }

    /// Maintenance brackets for `symbol`.
    pub fn brackets_for(&self, symbol: &str) -> Vec<Bracket> {
        self.margin.brackets_by_symbol.get(symbol).cloned().unwrap_or_else(|| self.margin.brackets.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_preset_loads_with_sources() {
        let presets = Preset::built_in().unwrap();
        assert_eq!(presets.len(), 8);
        for p in &presets {
            assert!(p.fees.source.as_deref().is_some_and(|s| !s.is_empty()) && !p.margin.source.is_empty(), "{}", p.id);
            assert!(p.funding.caps.iter().all(|c| !c.source.is_empty()), "{}", p.id);
        }
    }

    #[test]
    fn caps_resolve_by_symbol_date_and_interval() {
        let binance = Preset::load("binance_usdm", Path::new(".")).unwrap();
        let t = |s: &str| parse_time_ms("t", s).unwrap();
        assert_eq!(binance.limits_at("BTCUSDT", t("2020-03-13"), 8.0), (Some(0.003), Some(-0.003)));
        assert_eq!(binance.limits_at("ETHUSDT", t("2021-01-04"), 8.0), (Some(0.00375), Some(-0.00375)));
        assert_eq!(binance.limits_at("ETHUSDT", t("2025-01-04"), 8.0), (Some(0.003), Some(-0.003)));
        assert_eq!(binance.limits_at("PEPEUSDT", t("2025-01-04"), 4.0), (Some(0.02), Some(-0.02)));
        // dYdX: 600 % x (5 % - 3 %) = 12 % per 8 h, so 1.5 % per hourly settlement.
        let dydx = Preset::load("dydx_v4", Path::new(".")).unwrap();
        let (cap, floor) = dydx.limits_at("BTCUSDT", t("2025-01-01"), 1.0);
        assert!((cap.unwrap() - 0.015).abs() < 1e-15 && (floor.unwrap() + 0.015).abs() < 1e-15);
        // BitMEX: 75 % x (1 % - 0.5 %) = 0.375 % per 8 h settlement.
        let bitmex = Preset::load("bitmex", Path::new(".")).unwrap();
        assert!((bitmex.limits_at("XBTUSD", 0, 8.0).0.unwrap() - 0.00375).abs() < 1e-15);
        // Hyperliquid: 4 % per hour.
        let hl = Preset::load("hyperliquid", Path::new(".")).unwrap();
        assert_eq!(hl.limits_at("ETHUSDT", 0, 1.0), (Some(0.04), Some(-0.04)));
        // OKX switches formula on 2025-04-10 00:01.
        let okx = Preset::load("okx_swap", Path::new(".")).unwrap();
        assert_eq!(okx.formula_at(t("2025-04-10T00:00:00Z")).formula, Formula::PremiumOnly);
        assert_eq!(okx.formula_at(t("2025-04-10T08:00:00Z")).formula, Formula::ClampedInterest);
        assert_eq!(okx.formula_at(t("2024-01-01")).timing, Timing::KnownInAdvance);
    }

    #[test]
    fn a_user_preset_extends_and_overrides() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mine.toml"),
            "extends = \"binance_usdm\"\nname = \"My Binance\"\n[fees]\nperp_taker_bps = 4.0\n[funding]\ninterval_changes = [ { from = \"2024-01-01\", interval_hours = 4.0, source = \"my desk\" } ]\n",
        )
        .unwrap();
        let mine = Preset::load("mine.toml", dir.path()).unwrap();
        assert_eq!(mine.name, "My Binance");
        assert_eq!(mine.fees.perp_taker_bps, 4.0);
        assert_eq!(mine.fees.perp_maker_bps, 2.0, "untouched fields come from the base");
        assert_eq!(mine.interval_hours_at(parse_time_ms("t", "2023-06-01").unwrap()), 8.0);
        assert_eq!(mine.interval_hours_at(parse_time_ms("t", "2024-06-01").unwrap()), 4.0);
        let err = Preset::load("nope", dir.path()).unwrap_err().to_string();
        assert!(err.contains("binance_usdm") && err.contains("nope"), "{err}");
    }
}
