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
const PAIR_KEYS: [&str; 11] = ["kind", "symbol", "name", "weight", "a", "b", "strategy", "portfolio", "costs", "synthetic", "rotate_days"];
/// Keys a dated-perp `[[pair]]` takes.
/// Keys a spot-perp pair rotating its perp leg takes.
const SPOT_ROTATING_KEYS: [&str; 11] = ["kind", "symbol", "name", "weight", "spot", "perp", "strategy", "portfolio", "costs", "synthetic", "rotate_days"];
/// Keys a spot leg takes.
const SPOT_LEG_KEYS: [&str; 2] = ["account", "data"];
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
    /// Leg b's other venues (`b = [{...}, {...}]` with `rotate_days`): each one's config and
    /// account (name, venue). Leg b starts at the first, `legs[1]`.
    pub b_more: Vec<(Config, (String, String))>,
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
    raw.get("pair").and_then(|p| p.as_array()).is_some_and(|pairs| {
        pairs.iter().any(|p| match p.get("kind").and_then(|k| k.as_str()) {
            Some("perp_perp" | "dated_perp") => true,
            // A spot-perp pair whose perp leg rotates among venues runs in this engine too.
            None | Some("spot_perp") => p.get("perp").is_some_and(|perp| perp.is_array()),
            _ => false,
        })
    })
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
            let (dated_kind, spot_kind) = match pair.get("kind").and_then(|v| v.as_str()) {
                Some("perp_perp") => (false, false),
                Some("dated_perp") => (true, false),
                None | Some("spot_perp") if pair.get("perp").is_some_and(|p| p.is_array()) => (false, true),
                None | Some("spot_perp") => bail_input!(
                    "config {origin}: [[pair]] {}: a spot_perp pair with one perp venue runs in a book of its own (the portfolio engine); this book holds perp_perp, dated_perp and spot_perp pairs whose perp rotates among venues (perp = [{{...}}, {{...}}])",
                    k + 1
                ),
                Some(other) => bail_input!("config {origin}: [[pair]] {}: kind = {other:?} is not a pair kind; use spot_perp, perp_perp or dated_perp", k + 1),
            };
            let (allowed, kind_name): (&[&str], &str) = if dated_kind {
                (&DATED_PAIR_KEYS, "dated_perp")
            } else if spot_kind {
                (&SPOT_ROTATING_KEYS, "rotating spot_perp")
            } else {
                (&PAIR_KEYS, "perp_perp")
            };
            if let Some(key) = pair.keys().find(|key| !allowed.contains(&key.as_str())) {
                bail_input!("config {origin}: [[pair]] {}: unknown key `{key}`; a {kind_name} pair takes {}", k + 1, allowed.join(", "));
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
            let specs: Vec<(&str, toml::map::Map<String, toml::Value>, Option<toml::map::Map<String, toml::Value>>)> = if spot_kind {
                // Leg a is the spot (its bars stand as the perp the loaders require; the first
                // perp venue's funding only aligns it: spot is paid none); leg b the perps.
                let spot = table_of("spot", &SPOT_LEG_KEYS)?;
                let Some(toml::Value::Array(venues)) = pair.get("perp") else { unreachable!("checked above") };
                let mut perps = Vec::new();
                for (v, venue) in venues.iter().enumerate() {
                    let table = venue.as_table().cloned().ok_or_else(|| input_error!("config {origin}: [[pair]] {} ({name}): perp[{v}] is not a table {{ account, data, funding }}", k + 1))?;
                    if let Some(bad) = table.keys().find(|x| !LEG_KEYS.contains(&x.as_str())) {
                        bail_input!("config {origin}: [[pair]] {} ({name}): perp[{v}].{bad} is not a key of a perp leg; it takes {}", k + 1, LEG_KEYS.join(", "));
                    }
                    perps.push(table);
                }
                let first_funding = perps.first().and_then(|p| p.get("funding")).cloned().ok_or_else(|| input_error!("config {origin}: [[pair]] {} ({name}): perp = [] names no venue", k + 1))?;
                let mut leg_a = spot.clone();
                leg_a.insert("funding".into(), first_funding);
                let mut specs = vec![("spot", leg_a, None)];
                specs.extend(perps.into_iter().map(|t| ("perp", t, None)));
                specs
            } else if dated_kind {
                // The dated leg is the perp leg's market with the contracts beside it, held in
                // the dated table's account: the dated engine's path of contracts and rolls.
                let perp = table_of("perp", &LEG_KEYS)?;
                let dated = table_of("dated", &DATED_LEG_KEYS)?;
                let mut leg_b = perp.clone();
                leg_b.insert("account".into(), dated.get("account").cloned().unwrap_or(toml::Value::String(String::new())));
                vec![("perp", perp, None), ("dated", leg_b, Some(dated))]
            } else {
                let mut specs = vec![("a", table_of("a", &LEG_KEYS)?, None)];
                match pair.get("b") {
                    // Leg b on several venues: it rotates among them (`rotate_days`).
                    Some(toml::Value::Array(venues)) => {
                        if venues.is_empty() {
                            bail_input!("config {origin}: [[pair]] {} ({name}): b = [] names no venue", k + 1);
                        }
                        for (v, venue) in venues.iter().enumerate() {
                            let table = venue.as_table().cloned().ok_or_else(|| input_error!("config {origin}: [[pair]] {} ({name}): b[{v}] is not a table {{ account, data, funding }}", k + 1))?;
                            if let Some(bad) = table.keys().find(|x| !LEG_KEYS.contains(&x.as_str())) {
                                bail_input!("config {origin}: [[pair]] {} ({name}): b[{v}].{bad} is not a key of a leg; it takes {}", k + 1, LEG_KEYS.join(", "));
                            }
                            specs.push(("b", table, None));
                        }
                    }
                    _ => specs.push(("b", table_of("b", &LEG_KEYS)?, None)),
                }
                specs
            };
            let rotate_days = match pair.get("rotate_days") {
                None => None,
                Some(v) => Some(number(v).filter(|d| *d > 0.0 && d.is_finite()).ok_or_else(|| input_error!("config {origin}: [[pair]] {} ({name}): rotate_days must be a number of days > 0", k + 1))?),
            };
            match (specs.len() > 2, rotate_days) {
                (true, None) => bail_input!("config {origin}: [[pair]] {} ({name}): leg b names {} venues: give `rotate_days` (how often it may move to the best of them)", k + 1, specs.len() - 1),
                (false, Some(_)) => bail_input!("config {origin}: [[pair]] {} ({name}): rotate_days needs leg b on several venues: b = [{{ account = ... }}, {{ account = ... }}]", k + 1),
                _ => {}
            }
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
                if config.costs.market_dependent() && dated.is_some() {
                    bail_input!("config {origin}: [[pair]] {} ({name}): costs.model other than \"fixed_bps\" is not wired to dated_perp pairs yet (a dated leg's contracts have bars of their own); use fixed_bps (the `*_slippage_bps`)", k + 1);
                }
                if dated.is_some() && config.costs.worked() {
                    bail_input!("config {origin}: [[pair]] {} ({name}): costs.max_participation and costs.leg_delay_ms are not wired to dated_perp pairs yet (a dated leg's rolls fill at once); remove them", k + 1);
                }
                if dated.is_none() && config.strategy.instrument != super::InstrumentChoice::Perp {
                    bail_input!("config {origin}: [[pair]] {} ({name}): strategy.instrument must be \"perp\" in a perp_perp pair (a dated_perp pair names its dated leg)", k + 1);
                }
                if spot_kind && config.strategy.direction != crate::sim::policy::Direction::Long {
                    bail_input!("config {origin}: [[pair]] {} ({name}): a spot_perp pair rotating its perp is a long carry (spot bought with cash, the perp short): strategy.direction = \"long\"", k + 1);
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
            if !dated_kind && !spot_kind && leg_accounts[1..].iter().any(|b| b.0 == leg_accounts[0].0) {
                bail_input!("config {origin}: [[pair]] {} ({name}): legs a and b are both in account {:?}; a perp_perp pair holds its legs in two accounts (two venues, or two sub-accounts named apart)", k + 1, leg_accounts[0].0);
            }
            let weight = match pair.get("weight") {
                None => 1.0,
                Some(v) => number(v).filter(|w| *w >= 0.0 && w.is_finite()).ok_or_else(|| input_error!("config {origin}: [[pair]] {} ({name}): weight must be a number >= 0", k + 1))?,
            };
            weights.push(weight);
            let b_more: Vec<(Config, (String, String))> = legs.drain(2..).zip(leg_accounts.drain(2..)).collect();
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
                rotate_every_ms: rotate_days.map(|d| (d * 86_400_000.0).round() as i64),
                spot_a: spot_kind,
            };
            let accounts: [(String, String); 2] = leg_accounts.try_into().map_err(|_| input_error!("two legs"))?;
            // Transfers between leg a's venue and any of leg b's take the transfer time and fee.
            let mut params = params;
            if b_more.iter().any(|(_, acc)| acc.1 != accounts[0].1) && params.transfer_delay_ms == 0 && params.transfer_fee == 0.0 {
                params.transfer_delay_ms = (transfer_hours * 3_600_000.0).round() as i64;
                params.transfer_fee = transfer_fee;
            }
            pairs.push(PerpPerpPair { name, legs, accounts, params, b_more });
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
