//! A portfolio config: `[[account]]` tables (one margin account per venue) and `[[pair]]` tables
//! (one carry each, its spot and perp legs in accounts), sharing the `[portfolio]` capital.
//!
//! Each pair becomes a complete single-pair [`Config`]: the file's own sections (`[strategy]`,
//! `[portfolio]`, `[costs]`, `[margin]`, `[venue]`) with the pair's data, the perp account's
//! venue preset, and the pair's own overrides, loaded and validated exactly as a single-pair
//! file is. So a one-pair portfolio runs the same engine with the same parameters as the same
//! pair on its own.
//!
//! ```toml
//! [portfolio]
//! initial_capital = 1_000_000
//! transfer_hours = 1.0              # a top-up between two venues arrives this much later
//! transfer_fee = 1.0                # and pays this (quote currency)
//! allocation = "equal"              # "funding_weighted", or "weights" (each pair's `weight`)
//! rebalance_allocation_days = 7
//!
//! [[account]]
//! venue = "binance_usdm"            # a venue preset; the account's name unless `name` is given
//! margin_mode = "cross"             # isolated | cross | portfolio
//!
//! [[pair]]
//! symbol = "BTCUSDT"
//! spot = { account = "binance_usdm", data = { format = "binance_klines", path = "..." } }
//! perp = { account = "binance_usdm", data = { ... }, funding = { ... } }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::{Config, RunConfig};
pub use crate::sim::margin::{CollateralSchedule, TierUnit};
use crate::sim::margin::Collateral;
use crate::sim::portfolio::{AccountSpec, Allocation, MarginMode};


use crate::{bail_input, input_error};

/// One `[[account]]` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// The name pairs refer to it by (default: the venue).
    #[serde(default)]
    pub name: Option<String>,
    /// The venue preset whose rules the account follows, e.g. `binance_usdm`.
    pub venue: String,
    /// `isolated`, `cross` or `portfolio`.
    #[serde(default)]
    pub margin_mode: MarginMode,
    /// Collateral ratio by asset (portfolio mode), over the preset's: `{ BTC = 0.95 }`.
    #[serde(default)]
    pub collateral: BTreeMap<String, f64>,
    /// Tiered collateral ratios by asset (portfolio mode), over `collateral` and the preset's:
    /// `{ BTC = { by = "quantity", tiers = [ { floor = 0, ratio = 0.98 }, { floor = 10, ratio = 0.95 } ] } }`.
    #[serde(default)]
    pub collateral_tiers: BTreeMap<String, CollateralSchedule>,
    /// Equity / maintenance at or below which a portfolio account is liquidated, over the
    /// preset's (Binance 1.05). Cross accounts are liquidated at 1 (margin ratio 100 %).
    #[serde(default)]
    pub liquidation_threshold: Option<f64>,
    /// Interest on a negative quote balance (portfolio mode), decimal APR, over the preset's.
    #[serde(default)]
    pub quote_borrow_apr: Option<f64>,
}

/// How `[portfolio] allocation` splits the capital.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AllocationRule {
    /// The same share for every pair.
    #[default]
    Equal,
    /// In proportion to each pair's trailing funding APR (time-weighted).
    FundingWeighted,
    /// Each pair's `weight`, normalised to sum to 1.
    Weights,
}

/// Where a capacity's open interest comes from: a number (`open_interest_usd`), or the mean of
/// `venue` and `coin` in a table (`open_interest_file`: `timestamp, venue, coin, oi_usd`).
/// One set of keys for a book pair's `capacity` and a stress file's `[capacity]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpenInterestSource {
    /// Open interest, quote currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_interest_usd: Option<f64>,
    /// Or an open-interest table whose mean for `venue` and `coin` is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_interest_file: Option<String>,
    /// Venue to match in `open_interest_file` (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue: Option<String>,
    /// Coin to match in `open_interest_file` (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coin: Option<String>,
}

impl OpenInterestSource {
    /// The open interest (quote currency, > 0) and where it came from (`given`, or the table's
    /// mean); a relative file is read from `base_dir`. `what` names the table in errors.
    pub fn resolve(&self, base_dir: &Path, what: &str) -> anyhow::Result<(f64, String)> {
        let (open_interest, source) = match (&self.open_interest_usd, &self.open_interest_file, &self.venue, &self.coin) {
            (Some(oi), None, _, _) => (*oi, "given".to_string()),
            (None, Some(file), Some(venue), Some(coin)) => {
                let path = base_dir.join(file);
                (crate::data::series::mean_open_interest(&path, venue, coin)?, format!("mean of {venue} {coin} in {}", path.display()))
            }
            (Some(_), Some(_), _, _) => bail_input!("{what}: give open_interest_usd or open_interest_file, not both"),
            (None, Some(_), _, _) => bail_input!("{what}: open_interest_file needs venue = \"...\" and coin = \"...\""),
            (None, None, _, _) => bail_input!("{what}: needs open_interest_usd = N, or open_interest_file with venue and coin"),
        };
        if !(open_interest > 0.0) {
            bail_input!("{what}: open interest must be > 0, found {open_interest}");
        }
        Ok((open_interest, source))
    }
}

/// A pair's capacity cap: its perp notional kept to a share of the perp's open interest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityCap {
    /// Largest share of open interest the perp may hold, decimal (0.01 = 1 %).
    pub open_interest_share: f64,
    /// Where the open interest comes from.
    #[serde(flatten)]
    pub open_interest: OpenInterestSource,
    /// Keys beyond these: refused when the book loads.
    #[serde(flatten, skip_serializing)]
    pub unknown: std::collections::BTreeMap<String, toml::Value>,
}

/// `[universe]`: the candidate coins of a book, and how the ones holding capital are chosen.
///
/// ```toml
/// [universe]
/// datadirs = ["../shared/data/freqtrade-binance-1h-alts", "../shared/data/freqtrade-binance-1h-marketlab"]
/// symbols = ["ADAUSDT", "BCHUSDT"]   # default: every coin with spot, perp and funding files
/// select = { top = 5, by = "funding_trailing_apr", window_hours = 168, min_history_days = 30 }
/// rotate_days = 7
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UniverseConfig {
    /// freqtrade data directories, searched in order for each coin's files.
    pub datadirs: Vec<String>,
    /// The candidates, e.g. `ADAUSDT`; empty: every coin with spot, perp and funding files in
    /// the directories (whether it lived to the end or not).
    #[serde(default)]
    pub symbols: Vec<String>,
    /// Exchange folder (default `binance`).
    #[serde(default = "default_universe_exchange")]
    pub exchange: String,
    /// Candle timeframe (default `1h`).
    #[serde(default = "default_universe_timeframe")]
    pub timeframe: String,
    /// Quote currency of the pairs (default `USDT`).
    #[serde(default = "default_universe_quote")]
    pub quote: String,
    /// The account holding both legs (default: the first `[[account]]`).
    #[serde(default)]
    pub account: Option<String>,
    /// How the selection is made.
    pub select: SelectConfig,
    /// Days between selections (the first at the window's first step).
    pub rotate_days: f64,
    /// `equal` (default), `score_weighted` or `funding_weighted`: the capital among the
    /// selected pairs.
    #[serde(default)]
    pub allocation: UniverseAllocation,
}

/// How a universe ranks its candidates.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectConfig {
    /// Pairs held at once.
    pub top: usize,
    /// The score, an expression over a pair's signals (README, "Strategies"); default
    /// `funding_trailing_apr`.
    #[serde(default)]
    pub by: Option<String>,
    /// With a signal's name in `by`: its window, hours (`funding_trailing_apr(168h)`, or the
    /// mean of another signal over it).
    #[serde(default)]
    pub window_hours: Option<f64>,
    /// A pair may be selected only after this many days of its own bars.
    #[serde(default)]
    pub min_history_days: f64,
    /// Only pairs scoring at least this are selected (e.g. 0: no negative funding).
    #[serde(default)]
    pub min: Option<f64>,
}

/// How a universe splits the capital among the selected pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UniverseAllocation {
    /// The same share each.
    #[default]
    Equal,
    /// In proportion to the (positive) scores.
    ScoreWeighted,
    /// In proportion to the (positive) trailing funding APR over `select.window_hours`
    /// (default a week), time-weighted.
    FundingWeighted,
}

fn default_universe_exchange() -> String {
    "binance".into()
}
fn default_universe_timeframe() -> String {
    "1h".into()
}
fn default_universe_quote() -> String {
    "USDT".into()
}

/// A book's universe as the run needs it.
#[derive(Debug, Clone)]
pub struct UniverseSpec {
    /// The selection's engine parameters.
    pub params: crate::sim::portfolio::UniverseParams,
    /// The score expression each pair is ranked by.
    pub score: String,
    /// Days of a pair's own bars before it may be selected.
    pub min_history_days: f64,
    /// The book's window (the pairs are loaded whole and put on the book's clock inside it).
    pub start: Option<String>,
    /// The window's last time.
    pub end: Option<String>,
    /// The universe as written.
    pub config: UniverseConfig,
}

impl UniverseConfig {
    /// The score expression: `by` as given, a windowed signal with `window_hours`.
    pub fn score(&self) -> Result<String> {
        let by = self.select.by.clone().unwrap_or_else(|| "funding_trailing_apr".into());
        let is_name = by.chars().all(|c| c.is_alphanumeric() || c == '_');
        Ok(match (self.select.window_hours, is_name) {
            (None, _) => by,
            (Some(h), true) if by == "funding_trailing_apr" => format!("funding_trailing_apr({h}h)"),
            (Some(h), true) => format!("mean({by}, {h}h)"),
            (Some(_), false) => bail_input!("[universe] select: `window_hours` applies to a signal's name in `by`; write the window into the expression instead (e.g. ema(basis_bp, 72h))"),
        })
    }

    /// The coins of the universe: `symbols`, or every coin whose spot, perp and funding files
    /// are found in the directories (relative to `base_dir`), sorted.
    pub fn coins(&self, base_dir: &Path) -> Result<Vec<String>> {
        let quote = self.quote.to_ascii_uppercase();
        if !self.symbols.is_empty() {
            return self
                .symbols
                .iter()
                .map(|s| {
                    let upper = s.to_ascii_uppercase();
                    upper.strip_suffix(&quote).filter(|c| !c.is_empty()).map(str::to_string).ok_or_else(|| input_error!("[universe] symbols: {s:?} does not end in the quote {quote:?} (set `quote`)"))
                })
                .collect();
        }
        let bases: Vec<std::path::PathBuf> = self
            .datadirs
            .iter()
            .map(|d| {
                let dir = base_dir.join(d);
                if dir.join(&self.exchange).is_dir() { dir.join(&self.exchange) } else { dir }
            })
            .collect();
        let listed = |dir: &Path| -> Vec<String> { std::fs::read_dir(dir).map(|e| e.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default() };
        let tf = &self.timeframe;
        let perp_suffix = format!("_{quote}_{quote}-{tf}-futures.");
        let mut coins: Vec<String> = bases.iter().flat_map(|b| listed(&b.join("futures"))).filter_map(|name| name.find(&perp_suffix).map(|at| name[..at].to_string())).collect();
        coins.sort();
        coins.dedup();
        let has = |sub: &str, prefix: &str| bases.iter().any(|b| listed(&b.join(sub)).iter().any(|n| n.starts_with(prefix)));
        coins.retain(|coin| has("", &format!("{coin}_{quote}-{tf}.")) && has("futures", &format!("{coin}_{quote}_{quote}-")) && bases.iter().any(|b| listed(&b.join("futures")).iter().any(|n| n.starts_with(&format!("{coin}_{quote}_{quote}-")) && n.contains("-funding_rate."))));
        if coins.is_empty() {
            bail_input!("[universe]: no coin with spot, perp and funding files ({quote}, {tf}) in {}", self.datadirs.join(", "));
        }
        Ok(coins)
    }
}

/// A pair of the book: its complete single-pair config and where its legs are held.
#[derive(Debug, Clone)]
pub struct PairConfig {
    /// The pair's name (its symbol, or `name`).
    pub name: String,
    /// The pair as a single-pair config (the perp account's venue preset merged in).
    pub config: Config,
    /// Index of the spot leg's account.
    pub spot_account: usize,
    /// Index of the perp's account.
    pub perp_account: usize,
    /// How the pair's spot counts as margin in its account (portfolio mode: flat or tiered),
    /// else not at all.
    pub spot_collateral: Collateral,
    /// Weight under `allocation = "weights"` (normalised), else NaN.
    pub weight: f64,
    /// Interest on the spot account's negative quote balance (portfolio mode), decimal APR.
    pub quote_borrow_apr: f64,
    /// Time a margin top-up takes from the spot venue to the perp venue, ms (0 on one venue).
    pub transfer_delay_ms: i64,
    /// Fee per top-up transfer between the two venues, quote currency (0 on one venue).
    pub transfer_fee: f64,
    /// The pair's capacity cap, if any.
    pub capacity: Option<CapacityCap>,
}

/// A whole portfolio config.
#[derive(Debug, Clone)]
pub struct BookConfig {
    /// `[run]`: the name and output folder of the book.
    pub run: RunConfig,
    /// The book's capital, quote currency.
    pub initial_capital: f64,
    /// The allocation rule as configured.
    pub allocation_rule: AllocationRule,
    /// The allocation the engine runs.
    pub allocation: Allocation,
    /// Re-split the capital every this many days; `None`: at the start only.
    pub rebalance_allocation_days: Option<f64>,
    /// The accounts, in file order.
    pub accounts: Vec<AccountSpec>,
    /// The account tables as written (venue, collateral) for the outputs.
    pub account_configs: Vec<AccountConfig>,
    /// The pairs, in file order.
    pub pairs: Vec<PairConfig>,
    /// The file as parsed, written back as `config.toml`.
    pub raw: toml::Value,
    /// The universe, when the pairs come from `[universe]`.
    pub universe: Option<UniverseSpec>,
}

/// Whether a parsed config is a portfolio (has `[[pair]]` tables).
pub fn is_book(raw: &toml::Value) -> bool {
    raw.get("pair").is_some() || raw.get("account").is_some() || raw.get("universe").is_some()
}

/// Whether the file at `path` is a portfolio config (false when it cannot be read or parsed:
/// the single-pair loader then reports why).
pub fn file_is_book(path: &Path) -> bool {
    std::fs::read_to_string(path).ok().and_then(|text| toml::from_str::<toml::Value>(&text).ok()).is_some_and(|raw| is_book(&raw))
}

/// Keys a `[[pair]]` table may hold besides its legs.
const PAIR_KEYS: [&str; 11] = ["symbol", "name", "base", "weight", "spot", "perp", "data", "strategy", "portfolio", "costs", "capacity"];
/// Keys a leg table may hold.
const SPOT_KEYS: [&str; 3] = ["account", "data", "staking"];
const PERP_KEYS: [&str; 5] = ["account", "data", "funding", "mark", "index"];

/// The asset a symbol's spot leg holds: the symbol less its quote (`BTCUSDT` → `BTC`).
pub fn base_asset(symbol: &str) -> String {
    let upper = symbol.to_ascii_uppercase().replace(['/', '-', '_', ':'], "");
    for quote in ["USDT", "USDC", "FDUSD", "BUSD", "USD"] {
        if let Some(base) = upper.strip_suffix(quote).filter(|b| !b.is_empty()) {
            return base.to_string();
        }
    }
    upper
}

impl BookConfig {
    /// Read and validate a portfolio config file.
    pub fn load(path: &Path) -> Result<BookConfig> {
        let text = std::fs::read_to_string(path).map_err(|err| input_error!("cannot read config {}: {err}", path.display()))?;
        let raw: toml::Value = toml::from_str(&text).map_err(|err| input_error!("config {}: {}", path.display(), err.to_string().trim_end()))?;
        BookConfig::from_toml_value(&raw, &path.display().to_string(), path.parent().unwrap_or_else(|| Path::new(".")))
    }

    /// Build and validate a portfolio config from parsed TOML; `base_dir` resolves relative paths.
    pub fn from_toml_value(raw: &toml::Value, origin: &str, base_dir: &Path) -> Result<BookConfig> {
        let table = raw.as_table().ok_or_else(|| input_error!("config {origin}: expected a TOML table at the top"))?;
        // [portfolio]'s book-level keys (allocation, rebalance_allocation_days,
        // allocation_lookback_hours, transfer_hours, transfer_fee) are taken out below, before
        // the pairs' configs are built.
        let mut root = table.clone();
        let accounts_value = root.remove("account");
        let universe_value = root.remove("universe");
        let mut pairs_value = root.remove("pair");
        let universe_config: Option<UniverseConfig> = match &universe_value {
            None => None,
            Some(v) => Some(v.clone().try_into().map_err(|err: toml::de::Error| input_error!("config {origin}: [universe]: {}", err.to_string().trim_end()))?),
        };
        let mut universe = None;
        if let Some(u) = &universe_config {
            if pairs_value.is_some() {
                bail_input!("config {origin}: a book takes its pairs from [[pair]] tables or from [universe], not both");
            }
            if u.select.top == 0 {
                bail_input!("config {origin}: [universe] select.top must be at least 1");
            }
            if !(u.rotate_days > 0.0 && u.rotate_days.is_finite()) {
                bail_input!("config {origin}: [universe] rotate_days must be a number of days > 0");
            }
            if !(u.select.min_history_days >= 0.0 && u.select.min_history_days.is_finite()) {
                bail_input!("config {origin}: [universe] select.min_history_days must be days >= 0");
            }
            let account = match &u.account {
                Some(name) => name.clone(),
                None => account_tables_first_name(accounts_value.as_ref()).ok_or_else(|| input_error!("config {origin}: [universe] needs an [[account]] to hold its pairs"))?,
            };
            let coins = u.coins(base_dir).map_err(|e| input_error!("config {origin}: {e}"))?;
            let quote = u.quote.to_ascii_uppercase();
            let mut tables = Vec::with_capacity(coins.len());
            for coin in &coins {
                let mut freqtrade = toml::map::Map::new();
                freqtrade.insert("datadir".into(), toml::Value::String(u.datadirs[0].clone()));
                freqtrade.insert("more_datadirs".into(), toml::Value::Array(u.datadirs[1..].iter().cloned().map(toml::Value::String).collect()));
                freqtrade.insert("exchange".into(), toml::Value::String(u.exchange.clone()));
                freqtrade.insert("pair".into(), toml::Value::String(format!("{coin}/{quote}")));
                freqtrade.insert("timeframe".into(), toml::Value::String(u.timeframe.clone()));
                let mut data = toml::map::Map::new();
                data.insert("freqtrade".into(), toml::Value::Table(freqtrade));
                let leg = |account: &str| {
                    let mut t = toml::map::Map::new();
                    t.insert("account".into(), toml::Value::String(account.to_string()));
                    toml::Value::Table(t)
                };
                let mut pair = toml::map::Map::new();
                pair.insert("symbol".into(), toml::Value::String(format!("{coin}{quote}")));
                pair.insert("data".into(), toml::Value::Table(data));
                pair.insert("spot".into(), leg(&account));
                pair.insert("perp".into(), leg(&account));
                tables.push(toml::Value::Table(pair));
            }
            pairs_value = Some(toml::Value::Array(tables));
            let strategy = root.get("strategy").and_then(|s| s.as_table());
            let text = |key: &str| strategy.and_then(|s| s.get(key)).and_then(|v| v.as_str()).map(str::to_string);
            universe = Some(UniverseSpec {
                params: crate::sim::portfolio::UniverseParams {
                    top: u.select.top,
                    rotate_every_ms: (u.rotate_days * 86_400_000.0).round() as i64,
                    min_score: u.select.min,
                    weighted: u.allocation != UniverseAllocation::Equal,
                },
                score: u.score().map_err(|e| input_error!("config {origin}: {e}"))?,
                min_history_days: u.select.min_history_days,
                start: text("start"),
                end: text("end"),
                config: u.clone(),
            });
        }
        let Some(toml::Value::Array(pair_tables)) = pairs_value else {
            bail_input!("config {origin}: a portfolio needs [[pair]] tables (one per carry), each with `symbol`, `spot = {{ account, data }}` and `perp = {{ account, data, funding }}`");
        };
        let Some(toml::Value::Array(account_tables)) = accounts_value else {
            bail_input!("config {origin}: a portfolio needs [[account]] tables (one margin account per venue: `venue = \"binance_usdm\"`, `margin_mode = \"cross\"`)");
        };
        if pair_tables.is_empty() {
            bail_input!("config {origin}: [[pair]] is empty; add at least one pair");
        }
        if root.contains_key("data") {
            bail_input!("config {origin}: a portfolio's data belongs to its pairs: move [data] into each [[pair]] (`data = {{ ... }}`, or the legs' `data`)");
        }

        // [portfolio]'s book keys.
        let mut portfolio = root.get("portfolio").and_then(|p| p.as_table()).cloned().unwrap_or_default();
        let allocation_rule: AllocationRule = match portfolio.remove("allocation") {
            None => AllocationRule::Equal,
            Some(v) => v.try_into().map_err(|_| input_error!("config {origin}: [portfolio] allocation: expected \"equal\", \"funding_weighted\" or \"weights\""))?,
        };
        let rebalance_allocation_days = match portfolio.remove("rebalance_allocation_days") {
            None => None,
            Some(v) => Some(number(&v).filter(|d| *d > 0.0).ok_or_else(|| input_error!("config {origin}: [portfolio] rebalance_allocation_days: expected a number of days > 0"))?),
        };
        let transfer_hours = match portfolio.remove("transfer_hours") {
            None => 0.0,
            Some(v) => number(&v).filter(|h| *h >= 0.0 && h.is_finite()).ok_or_else(|| input_error!("config {origin}: [portfolio] transfer_hours: expected hours >= 0"))?,
        };
        let transfer_fee = match portfolio.remove("transfer_fee") {
            None => 0.0,
            Some(v) => number(&v).filter(|f| *f >= 0.0 && f.is_finite()).ok_or_else(|| input_error!("config {origin}: [portfolio] transfer_fee: expected a fee >= 0 in the quote currency"))?,
        };
        let lookback_hours = match portfolio.remove("allocation_lookback_hours") {
            None => 30.0 * 24.0,
            Some(v) => number(&v).filter(|h| *h > 0.0).ok_or_else(|| input_error!("config {origin}: [portfolio] allocation_lookback_hours: expected hours > 0"))?,
        };
        let initial_capital = match portfolio.get("initial_capital") {
            None => 100_000.0,
            Some(v) => number(v).filter(|c| *c > 0.0 && c.is_finite()).ok_or_else(|| input_error!("config {origin}: [portfolio] initial_capital: expected a positive number"))?,
        };
        root.insert("portfolio".into(), toml::Value::Table(portfolio));
        let run: RunConfig = match root.get("run") {
            None => RunConfig::default(),
            Some(v) => v.clone().try_into().map_err(|err: toml::de::Error| input_error!("config {origin}: [run]: {}", err.to_string().trim_end()))?,
        };

        // Accounts.
        let mut account_configs = Vec::new();
        let mut accounts = Vec::new();
        let mut quote_borrow_aprs = Vec::new();
        for (a, value) in account_tables.iter().enumerate() {
            let account: AccountConfig = value.clone().try_into().map_err(|err: toml::de::Error| input_error!("config {origin}: [[account]] {}: {}", a + 1, err.to_string().trim_end()))?;
            let name = account.name.clone().unwrap_or_else(|| account.venue.clone());
            if accounts.iter().any(|x: &AccountSpec| x.name == name) {
                bail_input!("config {origin}: [[account]] {}: the name {name:?} is used twice; give one of them `name = \"...\"`", a + 1);
            }
            let preset = crate::venue::Preset::load(&account.venue, base_dir).map_err(|err| input_error!("config {origin}: [[account]] {} ({name}): venue: {err:#}", a + 1))?;
            let liquidation_threshold = match account.margin_mode {
                MarginMode::Isolated => 1.0,
                MarginMode::Cross => account.liquidation_threshold.unwrap_or(1.0),
                MarginMode::Portfolio => match (account.liquidation_threshold, &preset.margin.portfolio) {
                    (Some(t), _) => t,
                    (None, Some(pm)) => pm.liquidation_threshold,
                    (None, None) => bail_input!(
                        "config {origin}: [[account]] {} ({name}): the {} preset has no portfolio-margin account ([margin.portfolio]); use margin_mode = \"cross\", or give `liquidation_threshold` and `collateral` with their source",
                        a + 1,
                        preset.name
                    ),
                },
            };
            if !(liquidation_threshold >= 1.0 && liquidation_threshold < 10.0) {
                bail_input!("config {origin}: [[account]] {} ({name}): liquidation_threshold must be in [1, 10), found {liquidation_threshold}", a + 1);
            }
            for (asset, ratio) in &account.collateral {
                if !(*ratio >= 0.0 && *ratio <= 1.0) {
                    bail_input!("config {origin}: [[account]] {} ({name}): collateral.{asset} must be a ratio in [0, 1], found {ratio}", a + 1);
                }
            }
            let quote_borrow_apr = account.quote_borrow_apr.or(preset.margin.portfolio.as_ref().map(|pm| pm.quote_borrow_apr)).unwrap_or(0.0);
            if !(0.0..=5.0).contains(&quote_borrow_apr) {
                bail_input!("config {origin}: [[account]] {} ({name}): quote_borrow_apr must be a decimal APR in [0, 5], found {quote_borrow_apr}", a + 1);
            }
            quote_borrow_aprs.push(quote_borrow_apr);
            accounts.push(AccountSpec { name, mode: account.margin_mode, liquidation_threshold });
            account_configs.push(account);
        }
        let find_account = |pair: usize, leg: &str, value: Option<&toml::Value>| -> Result<usize> {
            let name = value.and_then(|v| v.as_str()).ok_or_else(|| input_error!("config {origin}: [[pair]] {}: {leg}.account is missing: name the [[account]] holding the {leg} leg", pair + 1))?;
            accounts.iter().position(|a| a.name == name).ok_or_else(|| {
                input_error!("config {origin}: [[pair]] {}: {leg}.account = {name:?} is not an [[account]]; the accounts are {}", pair + 1, accounts.iter().map(|a| format!("{:?}", a.name)).collect::<Vec<_>>().join(", "))
            })
        };

        // Pairs.
        let mut pairs = Vec::new();
        let mut portfolio_assets: Vec<std::collections::BTreeSet<String>> = vec![Default::default(); accounts.len()];
        for (k, value) in pair_tables.iter().enumerate() {
            let pair = value.as_table().ok_or_else(|| input_error!("config {origin}: [[pair]] {}: expected a table", k + 1))?;
            if let Some(key) = pair.keys().find(|key| !PAIR_KEYS.contains(&key.as_str())) {
                bail_input!("config {origin}: [[pair]] {}: unknown key `{key}`; a pair takes {}", k + 1, PAIR_KEYS.join(", "));
            }
            let symbol = pair.get("symbol").and_then(|s| s.as_str()).ok_or_else(|| input_error!("config {origin}: [[pair]] {}: `symbol` is missing (e.g. symbol = \"BTCUSDT\")", k + 1))?.to_string();
            let name = pair.get("name").and_then(|s| s.as_str()).map(str::to_string).unwrap_or_else(|| symbol.clone());
            if pairs.iter().any(|p: &PairConfig| p.name == name) {
                bail_input!("config {origin}: [[pair]] {}: the name {name:?} is used twice; give one of them `name = \"...\"`", k + 1);
            }
            let leg = |key: &str, allowed: &[&str]| -> Result<toml::map::Map<String, toml::Value>> {
                let table = pair.get(key).and_then(|v| v.as_table()).cloned().ok_or_else(|| input_error!("config {origin}: [[pair]] {} ({name}): `{key} = {{ account = ..., data = ... }}` is missing", k + 1))?;
                if let Some(bad) = table.keys().find(|x| !allowed.contains(&x.as_str())) {
                    bail_input!("config {origin}: [[pair]] {} ({name}): {key}.{bad} is not a key of a {key} leg; it takes {}", k + 1, allowed.join(", "));
                }
                Ok(table)
            };
            let spot = leg("spot", &SPOT_KEYS)?;
            let perp = leg("perp", &PERP_KEYS)?;
            let spot_account = find_account(k, "spot", spot.get("account"))?;
            let perp_account = find_account(k, "perp", perp.get("account"))?;

            // The pair's [data]: its own `data` table, then the legs' sources.
            let mut data = pair.get("data").and_then(|d| d.as_table()).cloned().unwrap_or_default();
            data.entry("symbol").or_insert_with(|| toml::Value::String(symbol.clone()));
            for (from, key, into) in [(&spot, "data", "spot"), (&spot, "staking", "staking"), (&perp, "data", "perp"), (&perp, "funding", "funding"), (&perp, "mark", "mark"), (&perp, "index", "index")] {
                if let Some(source) = from.get(key) {
                    data.insert(into.into(), source.clone());
                }
            }
            let mut pair_root = root.clone();
            pair_root.insert("data".into(), toml::Value::Table(data));
            if universe.is_some() {
                // A candidate is loaded whole (it may list or delist inside the window); the book
                // puts it on its clock inside the window.
                if let Some(toml::Value::Table(strategy)) = pair_root.get_mut("strategy") {
                    strategy.remove("start");
                    strategy.remove("end");
                }
            }
            // The pair's own [strategy]/[portfolio]/[costs] keys win over the file's.
            for section in ["strategy", "portfolio", "costs"] {
                if let Some(overrides) = pair.get(section).and_then(|s| s.as_table()) {
                    let mut merged = pair_root.get(section).and_then(|s| s.as_table()).cloned().unwrap_or_default();
                    for (key, value) in overrides {
                        merged.insert(key.clone(), value.clone());
                    }
                    pair_root.insert(section.into(), toml::Value::Table(merged));
                }
            }
            let mut venue = pair_root.get("venue").and_then(|v| v.as_table()).cloned().unwrap_or_default();
            if venue.get("preset").is_some() {
                bail_input!("config {origin}: [venue] preset: in a portfolio each account names its venue; remove `preset` from [venue]");
            }
            venue.insert("preset".into(), toml::Value::String(account_configs[perp_account].venue.clone()));
            pair_root.insert("venue".into(), toml::Value::Table(venue));
            let pair_raw = toml::Value::Table(pair_root);
            let mut config = Config::from_toml_value(&pair_raw, &format!("{origin} [[pair]] {} ({name})", k + 1), base_dir)?;
            if config.venue.contract == super::Contract::Inverse {
                bail_input!("config {origin}: [[pair]] {} ({name}): coin-margined (inverse) perps run as single-pair backtests for now; a book's accounts are in the quote currency", k + 1);
            }
            if config.strategy.instrument != super::InstrumentChoice::Perp {
                bail_input!("config {origin}: [[pair]] {} ({name}): strategy.instrument = \"dated\" or \"best\" runs as a single-pair backtest for now; a book's pairs hold perps", k + 1);
            }
            // A reverse carry's borrowed spot in a portfolio account would be a loan inside the
            // account's uniMMR (MarginMM = loan × MMR, MARGIN.md §2.1), not the classic Cross
            // Margin account the engine margins it in; until the loan is modelled there, refuse
            // rather than apply both rules at once.
            if accounts[spot_account].mode == MarginMode::Portfolio && config.strategy.direction != crate::sim::policy::Direction::Long {
                bail_input!(
                    "config {origin}: [[pair]] {} ({name}): strategy.direction = \"{}\" borrows spot, and account {:?} is a portfolio-margin account; a loan inside portfolio margin (its maintenance in uniMMR) is not modelled yet. Hold the spot leg in a `margin_mode = \"cross\"` or `\"isolated\"` account, or trade direction = \"long\" only",
                    k + 1,
                    if config.strategy.direction == crate::sim::policy::Direction::Both { "both" } else { "reverse" },
                    accounts[spot_account].name
                );
            }
            // The spot leg pays its own venue's spot fees, unless [costs] sets them.
            if spot_account != perp_account && account_configs[spot_account].venue != account_configs[perp_account].venue {
                let spot_preset = crate::venue::Preset::load(&account_configs[spot_account].venue, base_dir)?;
                let given = |key: &str| pair_raw.get("costs").and_then(|c| c.get(key)).is_some();
                if !given("spot_maker_bps") {
                    config.costs.spot_maker_bps = spot_preset.fees.spot_maker_bps;
                }
                if !given("spot_taker_bps") {
                    config.costs.spot_taker_bps = spot_preset.fees.spot_taker_bps;
                }
            }
            config.run = run.clone();
            // Legs on two venues: margin top-ups travel between them.
            let cross_venue = account_configs[spot_account].venue != account_configs[perp_account].venue;

            let base = pair.get("base").and_then(|b| b.as_str()).map(str::to_string).unwrap_or_else(|| base_asset(&symbol));
            let spot_collateral = if accounts[spot_account].mode == MarginMode::Portfolio {
                // The tiers before a flat ratio, the account's before the preset's.
                let account = &account_configs[spot_account];
                if !portfolio_assets[spot_account].insert(base.clone()) {
                    bail_input!(
                        "config {origin}: [[pair]] {} ({name}): a second pair holds {base} in portfolio account {:?}; its collateral tiers apply to the account's whole balance of the asset, which is not modelled across pairs. Hold one {base} pair per portfolio account",
                        k + 1,
                        accounts[spot_account].name
                    );
                }
                let preset = crate::venue::Preset::load(&account.venue, base_dir)?;
                let preset_pm = preset.margin.portfolio.as_ref();
                if let Some(schedule) = account.collateral_tiers.get(&base).or_else(|| preset_pm.and_then(|pm| pm.collateral_tiers.get(&base))) {
                    schedule.check().map_err(|err| input_error!("config {origin}: [[account]] {:?}: collateral_tiers.{base}: {err}", accounts[spot_account].name))?;
                    schedule.collateral()
                } else {
                    let ratio = match account.collateral.get(&base) {
                        Some(r) => *r,
                        None => preset_pm.and_then(|pm| pm.collateral.get(&base).copied()).ok_or_else(|| {
                            input_error!(
                                "config {origin}: [[pair]] {} ({name}): account {:?} is a portfolio account but has no collateral ratio for {base}; add `collateral = {{ {base} = 0.95 }}` or `collateral_tiers` (with their source) to the account, or set the pair's `base`",
                                k + 1,
                                accounts[spot_account].name
                            )
                        })?,
                    };
                    Collateral::flat(ratio)
                }
            } else {
                Collateral::default()
            };
            let weight = match pair.get("weight") {
                None if allocation_rule == AllocationRule::Weights => bail_input!("config {origin}: [[pair]] {} ({name}): allocation = \"weights\" needs a `weight` on every pair", k + 1),
                None => f64::NAN,
                Some(v) => number(v).filter(|w| *w >= 0.0 && w.is_finite()).ok_or_else(|| input_error!("config {origin}: [[pair]] {} ({name}): weight must be a number >= 0", k + 1))?,
            };
            let capacity = match pair.get("capacity") {
                None => None,
                Some(v) => {
                    let mut cap: CapacityCap = v.clone().try_into().map_err(|err: toml::de::Error| input_error!("config {origin}: [[pair]] {} ({name}): capacity: {}", k + 1, err.to_string().trim_end()))?;
                    if !(cap.open_interest_share > 0.0 && cap.open_interest_share <= 1.0) {
                        bail_input!("config {origin}: [[pair]] {} ({name}): capacity.open_interest_share must be in (0, 1], e.g. 0.01 for 1 % of open interest", k + 1);
                    }
                    if let Some(key) = cap.unknown.keys().next() {
                        bail_input!("config {origin}: [[pair]] {} ({name}): capacity: unknown key `{key}`; expected open_interest_share, open_interest_usd, open_interest_file, venue, coin", k + 1);
                    }
                    let oi = &cap.open_interest;
                    match (&oi.open_interest_usd, &oi.open_interest_file, &oi.venue, &oi.coin) {
                        (Some(oi), None, _, _) if *oi > 0.0 => {}
                        (None, Some(_), Some(_), Some(_)) => {}
                        _ => bail_input!("config {origin}: [[pair]] {} ({name}): capacity needs open_interest_usd > 0, or open_interest_file with venue and coin", k + 1),
                    }
                    if let Some(file) = cap.open_interest.open_interest_file.as_mut() {
                        if !Path::new(file.as_str()).is_absolute() {
                            *file = base_dir.join(file.as_str()).to_string_lossy().into_owned();
                        }
                    }
                    Some(cap)
                }
            };
            let (transfer_delay_ms, pair_transfer_fee) = if cross_venue { ((transfer_hours * 3_600_000.0).round() as i64, transfer_fee) } else { (0, 0.0) };
            pairs.push(PairConfig { name, config, spot_account, perp_account, spot_collateral, weight, quote_borrow_apr: quote_borrow_aprs[spot_account], transfer_delay_ms, transfer_fee: pair_transfer_fee, capacity });
        }
        let n = pairs.len() as f64;
        let allocation = match allocation_rule {
            AllocationRule::Equal => Allocation::Weights(vec![1.0 / n; pairs.len()]),
            AllocationRule::FundingWeighted => Allocation::FundingWeighted { lookback_hours },
            AllocationRule::Weights => {
                let sum: f64 = pairs.iter().map(|p| p.weight).sum();
                if sum <= 0.0 {
                    bail_input!("config {origin}: allocation = \"weights\": the pairs' weights sum to 0; give at least one a weight > 0");
                }
                for p in pairs.iter_mut() {
                    p.weight /= sum;
                }
                Allocation::Weights(pairs.iter().map(|p| p.weight).collect())
            }
        };
        // Each pair starts with its share of the capital (funding-weighted: equal until the
        // first rebalance, as no trailing APR is known before the start).
        let start_weights = match &allocation {
            Allocation::Weights(w) => w.clone(),
            Allocation::FundingWeighted { .. } => vec![1.0 / n; pairs.len()],
        };
        for (p, w) in pairs.iter_mut().zip(&start_weights) {
            p.config.portfolio.initial_capital = initial_capital * w;
        }
        Ok(BookConfig { run, initial_capital, allocation_rule, allocation, rebalance_allocation_days, accounts, account_configs, pairs, raw: raw.clone(), universe })
    }
}

/// The name of the first `[[account]]` table (its `name`, else its `venue`).
fn account_tables_first_name(accounts: Option<&toml::Value>) -> Option<String> {
    let first = accounts?.as_array()?.first()?.as_table()?;
    first.get("name").or_else(|| first.get("venue")).and_then(|v| v.as_str()).map(str::to_string)
}

fn number(value: &toml::Value) -> Option<f64> {
    value.as_float().or_else(|| value.as_integer().map(|i| i as f64))
}
