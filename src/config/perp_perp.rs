//! A book of perp-vs-perp pairs (`[[pair]] kind = "perp_perp"`): each pair a long perp in one
//! account and a short perp on the same coin in another, the legs `a` and `b` each on its own
//! venue.
//!
//! ```toml
//! [strategy]
//! mode = "funding_threshold"      # or "always_on": long a, short b throughout
//! direction = "both"              # "long": only long a / short b; "reverse": only the other way
//! entry_funding_apr = 0.05        # on the spread apr(b) − apr(a)
//! exit_funding_apr = 0.0
//! lookback_hours = 168            # each leg's funding over the same hours
//!
//! [portfolio]
//! initial_capital = 100_000
//! leverage = 3.0                  # each leg's notional over its account's half of the equity
//! top_up_distance = 0.15          # send margin across when a leg is this close to liquidation
//! transfer_hours = 1.0
//! transfer_fee = 1.0
//!
//! [[account]]
//! venue = "binance_usdm"
//! [[account]]
//! venue = "bybit_linear"
//!
//! [[pair]]
//! kind = "perp_perp"
//! symbol = "BTCUSDT"
//! a = { account = "binance_usdm", data = { ... }, funding = { ... }, mark = { ... } }
//! b = { account = "bybit_linear", data = { ... }, funding = { ... } }
//! ```
//!
//! A `kind = "dated_perp"` pair is a calendar spread: `perp = { account, data, funding, mark }`
//! and `dated = { account, data, mark }` (the contracts, in `[data.dated]`'s layout). With
//! `direction = "long"` it is long the perp and short the front dated contract, rolled
//! `roll_days_before` its expiry (a roll closes one contract and opens the next, with costs) or
//! delivered at its settlement price; the dated leg pays no funding. Both legs may sit in one
//! account (a venue's perp and its quarterlies): margin then moves between them at once and
//! free.
//!
//! Each leg becomes a complete single-pair [`Config`] as a book's pair does: the file's own
//! sections, the leg's data (its perp bars stand as the "spot" the loaders require, which the
//! perp-perp engine never reads), and its account's venue preset, so each leg is loaded,
//! checked and given its venue's brackets, liquidation rule, fees and funding schedule exactly
//! as a single-venue run would be.

use std::path::Path;

use anyhow::Result;

use super::{Config, RunConfig};
use crate::sim::perp_perp::PerpPerpParams;
use crate::sim::portfolio::MarginMode;
use crate::{bail_input, input_error};

/// Keys a perp-perp `[[pair]]` takes.
const PAIR_KEYS: [&str; 10] = ["kind", "symbol", "name", "weight", "a", "b", "strategy", "portfolio", "costs", "synthetic"];
/// Keys a dated-perp `[[pair]]` takes.
const DATED_PAIR_KEYS: [&str; 10] = ["kind", "symbol", "name", "weight", "perp", "dated", "strategy", "portfolio", "costs", "synthetic"];
/// Keys a leg takes.
const LEG_KEYS: [&str; 5] = ["account", "data", "funding", "mark", "index"];
/// Keys a dated leg takes: its account, the contracts' bars (`[data.dated]`'s layout) and
/// their marks (`[data.dated_mark]`'s).
const DATED_LEG_KEYS: [&str; 3] = ["account", "data", "mark"];

/// One perp-perp pair: both legs' configs and the pair's own parameters.
#[derive(Debug, Clone)]
pub struct PerpPerpPair {
    /// Its name (the symbol, or `name`).
    pub name: String,
    /// Leg `a` and leg `b` as single-pair configs (their venue's preset merged in).
    pub legs: [Config; 2],
    /// The account (its name and venue) each leg is held in.
    pub accounts: [(String, String); 2],
    /// The pair's parameters; `initial_capital` is its share of the book.
    pub params: PerpPerpParams,
}

/// A book of perp-perp pairs.
#[derive(Debug, Clone)]
pub struct PerpPerpBook {
    /// `[run]`.
    pub run: RunConfig,
    /// The book's capital, quote currency.
    pub initial_capital: f64,
    /// The pairs; each runs on its share of the capital (by `weight`, else equal).
    pub pairs: Vec<PerpPerpPair>,
    /// The config as given, for the run folder.
    pub raw: toml::Value,
}

/// Whether a parsed config is a perp-perp book (some `[[pair]]` has `kind = "perp_perp"` or
/// `"dated_perp"`).
pub fn is_perp_perp(raw: &toml::Value) -> bool {
    raw.get("pair").and_then(|p| p.as_array()).is_some_and(|pairs| pairs.iter().any(|p| matches!(p.get("kind").and_then(|k| k.as_str()), Some("perp_perp" | "dated_perp"))))
}

/// Whether the file at `path` is a perp-perp book (unreadable files are not: the single-pair
/// loader then reports why).
pub fn file_is_perp_perp(path: &Path) -> bool {
    std::fs::read_to_string(path).ok().and_then(|text| toml::from_str::<toml::Value>(&text).ok()).is_some_and(|raw| is_perp_perp(&raw))
}

impl PerpPerpBook {
    /// Read and validate a perp-perp book from a file.
    pub fn load(path: &Path) -> Result<PerpPerpBook> {
        let text = std::fs::read_to_string(path).map_err(|err| input_error!("cannot read config {}: {err}", path.display()))?;
        let raw: toml::Value = toml::from_str(&text).map_err(|err| input_error!("config {}: {}", path.display(), err.to_string().trim_end()))?;
        PerpPerpBook::from_toml_value(&raw, &path.display().to_string(), path.parent().unwrap_or_else(|| Path::new(".")))
    }

    /// Build and validate from parsed TOML; `base_dir` resolves relative paths.
    pub fn from_toml_value(raw: &toml::Value, origin: &str, base_dir: &Path) -> Result<PerpPerpBook> {
        let table = raw.as_table().ok_or_else(|| input_error!("config {origin}: expected a TOML table at the top"))?;
        let mut root = table.clone();
        let accounts_value = root.remove("account");
        let pairs_value = root.remove("pair");
        if root.contains_key("universe") {
            bail_input!("config {origin}: [universe] selects spot-perp pairs; perp_perp pairs are listed as [[pair]] tables");
        }
        if root.contains_key("data") {
            bail_input!("config {origin}: a perp_perp pair's data belongs to its legs: `a = {{ account, data, funding }}` and `b = {{ ... }}`");
        }
        let Some(toml::Value::Array(account_tables)) = accounts_value else {
            bail_input!("config {origin}: a perp_perp book needs [[account]] tables, one per venue (`venue = \"bybit_linear\"`)");
        };
        let Some(toml::Value::Array(pair_tables)) = pairs_value else {
            bail_input!("config {origin}: a perp_perp book needs [[pair]] tables");
        };
        // Accounts: name → (venue, mode).
        let mut accounts: Vec<(String, String, MarginMode)> = Vec::new();
        for (k, value) in account_tables.iter().enumerate() {
            let account: super::book::AccountConfig = value.clone().try_into().map_err(|err: toml::de::Error| input_error!("config {origin}: [[account]] {}: {}", k + 1, err.to_string().trim_end()))?;
            let name = account.name.clone().unwrap_or_else(|| account.venue.clone());
            if accounts.iter().any(|a| a.0 == name) {
                bail_input!("config {origin}: [[account]] {}: the name {name:?} is used twice; give one of them `name = \"...\"`", k + 1);
            }
            if account.margin_mode == MarginMode::Portfolio {
                bail_input!("config {origin}: [[account]] {} ({name}): a perp_perp leg holds no spot to count as collateral; use margin_mode = \"isolated\" or \"cross\"", k + 1);
            }
            accounts.push((name, account.venue.clone(), account.margin_mode));
        }

        let mut portfolio = root.get("portfolio").and_then(|p| p.as_table()).cloned().unwrap_or_default();
        let hours = |value: Option<toml::Value>, key: &str| -> Result<f64> {
            match value {
                None => Ok(0.0),
                Some(v) => number(&v).filter(|h| *h >= 0.0 && h.is_finite()).ok_or_else(|| input_error!("config {origin}: [portfolio] {key}: expected a number >= 0")),
            }
        };
        let transfer_hours = hours(portfolio.remove("transfer_hours"), "transfer_hours")?;
        let transfer_fee = hours(portfolio.remove("transfer_fee"), "transfer_fee")?;
        let initial_capital = match portfolio.get("initial_capital") {
            None => 100_000.0,
            Some(v) => number(v).filter(|c| *c > 0.0 && c.is_finite()).ok_or_else(|| input_error!("config {origin}: [portfolio] initial_capital: expected a positive number"))?,
        };
        root.insert("portfolio".into(), toml::Value::Table(portfolio));
        let run: RunConfig = match root.get("run") {
            None => RunConfig::default(),
            Some(v) => v.clone().try_into().map_err(|err: toml::de::Error| input_error!("config {origin}: [run]: {}", err.to_string().trim_end()))?,
        };

        let mut pairs = Vec::new();
        let mut weights = Vec::new();
        // A cross account's wallet backs all its positions: two legs in one would interact,
        // which the engine does not model; an account holds one perp_perp leg.
        let mut used: Vec<(String, String)> = Vec::new();
        for (k, value) in pair_tables.iter().enumerate() {
            let pair = value.as_table().ok_or_else(|| input_error!("config {origin}: [[pair]] {}: expected a table", k + 1))?;
            let dated_kind = match pair.get("kind").and_then(|v| v.as_str()) {
                Some("perp_perp") => false,
                Some("dated_perp") => true,
                Some(other) => bail_input!("config {origin}: [[pair]] {}: kind = {other:?}: a book holds spot_perp pairs, or perp_perp and dated_perp pairs, not both, for now; run them as two books", k + 1),
                None => bail_input!("config {origin}: [[pair]] {}: a book with perp_perp or dated_perp pairs needs `kind` on every pair (spot_perp pairs run as another book)", k + 1),
            };
            let allowed: &[&str] = if dated_kind { &DATED_PAIR_KEYS } else { &PAIR_KEYS };
            if let Some(key) = pair.keys().find(|key| !allowed.contains(&key.as_str())) {
                bail_input!("config {origin}: [[pair]] {}: unknown key `{key}`; a {} pair takes {}", k + 1, if dated_kind { "dated_perp" } else { "perp_perp" }, allowed.join(", "));
            }
            let symbol = pair.get("symbol").and_then(|s| s.as_str()).ok_or_else(|| input_error!("config {origin}: [[pair]] {}: `symbol` is missing (e.g. symbol = \"BTCUSDT\")", k + 1))?.to_string();
            let name = pair.get("name").and_then(|s| s.as_str()).map(str::to_string).unwrap_or_else(|| symbol.clone());
            if pairs.iter().any(|p: &PerpPerpPair| p.name == name) {
                bail_input!("config {origin}: [[pair]] {}: the name {name:?} is used twice; give one of them `name = \"...\"`", k + 1);
            }
            let mut legs = Vec::with_capacity(2);
            let mut leg_accounts = Vec::with_capacity(2);
            let table_of = |key: &str, keys: &[&str]| -> Result<toml::map::Map<String, toml::Value>> {
                let leg = pair.get(key).and_then(|v| v.as_table()).cloned().ok_or_else(|| input_error!("config {origin}: [[pair]] {} ({name}): `{key} = {{ account = ..., data = ... }}` is missing", k + 1))?;
                if let Some(bad) = leg.keys().find(|x| !keys.contains(&x.as_str())) {
                    bail_input!("config {origin}: [[pair]] {} ({name}): {key}.{bad} is not a key of this leg; it takes {}", k + 1, keys.join(", "));
                }
                Ok(leg)
            };
            // (label, the leg's table, the dated contracts' table for a dated leg)
            let specs: Vec<(&str, toml::map::Map<String, toml::Value>, Option<toml::map::Map<String, toml::Value>>)> = if dated_kind {
                // The dated leg is the perp leg's market with the contracts beside it, held in
                // the dated table's account: the dated engine's path of contracts and rolls.
                let perp = table_of("perp", &LEG_KEYS)?;
                let dated = table_of("dated", &DATED_LEG_KEYS)?;
                let mut leg_b = perp.clone();
                leg_b.insert("account".into(), dated.get("account").cloned().unwrap_or(toml::Value::String(String::new())));
                vec![("perp", perp, None), ("dated", leg_b, Some(dated))]
            } else {
                vec![("a", table_of("a", &LEG_KEYS)?, None), ("b", table_of("b", &LEG_KEYS)?, None)]
            };
            for (key, leg, dated) in &specs {
                let key = *key;
                let account_name = leg.get("account").and_then(|v| v.as_str()).ok_or_else(|| input_error!("config {origin}: [[pair]] {} ({name}): {key}.account is missing: name the [[account]] holding leg {key}", k + 1))?;
                let account = accounts.iter().find(|a| a.0 == account_name).ok_or_else(|| {
                    input_error!("config {origin}: [[pair]] {} ({name}): {key}.account = {account_name:?} is not an [[account]]; the accounts are {}", k + 1, accounts.iter().map(|a| format!("{:?}", a.0)).collect::<Vec<_>>().join(", "))
                })?;
                if account.2 == MarginMode::Cross && used.iter().any(|(a, p)| a == account_name && *p != name) {
                    bail_input!("config {origin}: [[pair]] {} ({name}): cross account {account_name:?} already holds another pair's leg; give each pair its own account (cross margin across pairs is not modelled for perp_perp pairs)", k + 1);
                }
                used.push((account_name.to_string(), name.clone()));
                let mut data = toml::map::Map::new();
                data.insert("symbol".into(), toml::Value::String(symbol.clone()));
                // `synthetic = true` on the pair: data made by `basis data synth`, said on every output.
                if let Some(flag) = pair.get("synthetic") {
                    data.insert("synthetic".into(), flag.clone());
                }
                let bars = leg.get("data").cloned().ok_or_else(|| input_error!("config {origin}: [[pair]] {} ({name}): {key}.data (the leg's perp bars) is missing", k + 1))?;
                data.insert("spot".into(), bars.clone());
                data.insert("perp".into(), bars);
                let funding = leg.get("funding").cloned().ok_or_else(|| input_error!("config {origin}: [[pair]] {} ({name}): {key}.funding (the leg's funding settlements) is missing", k + 1))?;
                data.insert("funding".into(), funding);
                for extra in ["mark", "index"] {
                    if let Some(source) = leg.get(extra) {
                        data.insert(extra.into(), source.clone());
                    }
                }
                if let Some(dated) = dated {
                    let contracts = dated.get("data").cloned().ok_or_else(|| input_error!("config {origin}: [[pair]] {} ({name}): dated.data (the contracts' bars, as [data.dated]) is missing", k + 1))?;
                    data.insert("dated".into(), contracts);
                    if let Some(mark) = dated.get("mark") {
                        data.insert("dated_mark".into(), mark.clone());
                    }
                }
                let mut leg_root = root.clone();
                leg_root.insert("data".into(), toml::Value::Table(data));
                for section in ["strategy", "portfolio", "costs"] {
                    if let Some(overrides) = pair.get(section).and_then(|s| s.as_table()) {
                        let mut merged = leg_root.get(section).and_then(|s| s.as_table()).cloned().unwrap_or_default();
                        for (key, value) in overrides {
                            merged.insert(key.clone(), value.clone());
                        }
                        leg_root.insert(section.into(), toml::Value::Table(merged));
                    }
                }
                let mut venue = leg_root.get("venue").and_then(|v| v.as_table()).cloned().unwrap_or_default();
                if venue.get("preset").is_some() {
                    bail_input!("config {origin}: [venue] preset: in a book each account names its venue; remove `preset` from [venue]");
                }
                venue.insert("preset".into(), toml::Value::String(account.1.clone()));
                leg_root.insert("venue".into(), toml::Value::Table(venue));
                if dated.is_some() {
                    let mut strategy = leg_root.get("strategy").and_then(|s| s.as_table()).cloned().unwrap_or_default();
                    strategy.insert("instrument".into(), toml::Value::String("dated".into()));
                    leg_root.insert("strategy".into(), toml::Value::Table(strategy));
                }
                let mut config = Config::from_toml_value(&toml::Value::Table(leg_root), &format!("{origin} [[pair]] {} ({name}) leg {key}", k + 1), base_dir)?;
                if config.venue.contract == super::Contract::Inverse {
                    bail_input!("config {origin}: [[pair]] {} ({name}): leg {key} is a coin-margined (inverse) perp; perp_perp legs are linear (quote-margined) for now", k + 1);
                }
                if dated.is_none() && config.strategy.instrument != super::InstrumentChoice::Perp {
                    bail_input!("config {origin}: [[pair]] {} ({name}): strategy.instrument must be \"perp\" in a perp_perp pair (a dated_perp pair names its dated leg)", k + 1);
                }
                if dated_kind && config.strategy.mode != crate::sim::policy::EntryMode::AlwaysOn {
                    bail_input!("config {origin}: [[pair]] {} ({name}): a dated_perp pair runs strategy.mode = \"always_on\" for now (direction \"long\": long the perp, short the dated contract; \"reverse\": the other way)", k + 1);
                }
                if !crate::sim::perp_perp::runs_mode(config.strategy.mode) {
                    bail_input!(
                        "config {origin}: [[pair]] {} ({name}): a perp_perp pair runs strategy.mode = \"always_on\" (long a, short b) or \"funding_threshold\" (on the spread apr(b) − apr(a)); rules over its signals are not wired to perp_perp pairs yet",
                        k + 1
                    );
                }
                config.run = run.clone();
                legs.push(config);
                leg_accounts.push((account.0.clone(), account.1.clone()));
            }
            if leg_accounts[0].0 == leg_accounts[1].0 && !dated_kind {
                bail_input!("config {origin}: [[pair]] {} ({name}): legs a and b are both in account {:?}; a perp_perp pair holds its legs in two accounts (two venues, or two sub-accounts named apart)", k + 1, leg_accounts[0].0);
            }
            let weight = match pair.get("weight") {
                None => 1.0,
                Some(v) => number(v).filter(|w| *w >= 0.0 && w.is_finite()).ok_or_else(|| input_error!("config {origin}: [[pair]] {} ({name}): weight must be a number >= 0", k + 1))?,
            };
            weights.push(weight);
            let legs: [Config; 2] = legs.try_into().map_err(|_| input_error!("two legs"))?;
            let leg_a = crate::config::engine_params(&legs[0]);
            let s = &legs[0].strategy;
            let lookback_hours = match s.lookback_hours {
                Some(h) => h,
                // A count of settlements means different hours on an hourly and an 8-hourly
                // venue; the spread compares the same hours, so a count is read as 8 h each.
                None => s.lookback_settlements as f64 * 8.0,
            };
            let params = PerpPerpParams {
                initial_capital: 0.0,
                leverage: leg_a.leverage,
                entry: leg_a.entry,
                lookback_hours,
                top_up_distance: leg_a.top_up_distance,
                transfer_delay_ms: if leg_accounts[0].1 != leg_accounts[1].1 { (transfer_hours * 3_600_000.0).round() as i64 } else { 0 },
                transfer_fee: if leg_accounts[0].1 != leg_accounts[1].1 { transfer_fee } else { 0.0 },
                close_at_end: leg_a.close_at_end,
                reenter_after_liquidation: leg_a.reenter_after_liquidation,
            };
            let accounts: [(String, String); 2] = leg_accounts.try_into().map_err(|_| input_error!("two legs"))?;
            pairs.push(PerpPerpPair { name, legs, accounts, params });
        }
        let total: f64 = weights.iter().sum();
        if !(total > 0.0) {
            bail_input!("config {origin}: the pairs' weights sum to 0; give at least one a weight > 0");
        }
        for (pair, w) in pairs.iter_mut().zip(&weights) {
            pair.params.initial_capital = initial_capital * w / total;
        }
        Ok(PerpPerpBook { run, initial_capital, pairs, raw: raw.clone() })
    }
}

fn number(value: &toml::Value) -> Option<f64> {
    value.as_float().or_else(|| value.as_integer().map(|i| i as f64))
}
