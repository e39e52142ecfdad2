//! Where each series of a run comes from: the `[data]` section of a config (files, formats,
//! column mappings, time units and offsets). The loaders in this module read what these name.

use serde::{Deserialize, Serialize};

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
    /// A catalog folder written by `basis data fetch` (`<catalog>/<venue>/<kind>/<symbol>/`):
    /// with `venue`, the series the config does not name by path (spot, perp, mark, index,
    /// funding) are read from it.
    #[serde(default)]
    pub catalog: Option<String>,
    /// The catalog's venue folder (`bybit`); needs `catalog`.
    #[serde(default)]
    pub venue: Option<String>,
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
    /// Let series load together whose median prices are more than 25 % apart (the perp over
    /// the spot, the mark over the perp): a perp quoted per 1,000 units beside a spot per unit.
    /// Off by default: such files are two markets, and the load refuses them.
    #[serde(default)]
    pub allow_price_mismatch: bool,
    /// Let `symbol` differ from the market the files name (Binance dump file names, a
    /// freqtrade pair). Off by default: the symbol picks the venue's tiers and caps.
    #[serde(default)]
    pub allow_symbol_mismatch: bool,
    /// The mark may start later or end earlier than the window: where it is missing the perp's
    /// last stands in (with a warning) instead of the window being clipped. Implied for a
    /// freqtrade directory, whose mark is found rather than configured.
    #[serde(default)]
    pub mark_optional: bool,
    /// Dated (quarterly) futures contracts: the leg of `strategy.instrument = "dated"` or
    /// `"best"`, and what `basis term` charts.
    #[serde(default)]
    pub dated: Option<DatedSource>,
    /// The dated contracts' mark-price bars, in the same layout as `dated` (Binance publishes
    /// `markPriceKlines` per delivery contract, e.g. `BTCUSDT_240329-1h-2024-01.csv`), matched
    /// by contract name. A contract's liquidation and unrealised PnL use its mark (MARGIN.md
    /// §1.1); without this, its last price stands in, with a warning.
    #[serde(default)]
    pub dated_mark: Option<DatedSource>,
    /// The cash rate (T-bill or stablecoin lending yield): the risk-free rate of Sharpe and
    /// Sortino, the benchmark of `excess_apr_over_cash`, and what idle cash earns with
    /// `portfolio.cash_earns`.
    #[serde(default)]
    pub cash_rate: Option<RateSource>,
    /// The reverse carry's borrow APR over time (e.g. Binance margin interest history):
    /// replaces `portfolio.borrow_apr`.
    #[serde(default)]
    pub borrow_rate: Option<RateSource>,
    /// The largest quantity of the coin a reverse carry can borrow over time (base units, each
    /// row known from its time on): entries are cut to it, and a fall below the loan recalls
    /// the excess (bought back at market).
    #[serde(default)]
    pub borrow_available: Option<SeriesSource>,
    /// L2 snapshots of the spot book (`costs.spot_model = "orderbook"`): Tardis'
    /// `book_snapshot_N` CSV layout, or the same columns under a `ts` time column.
    #[serde(default)]
    pub spot_book: Option<BookSource>,
    /// L2 snapshots of the perp book (`costs.perp_model = "orderbook"`).
    #[serde(default)]
    pub perp_book: Option<BookSource>,
    /// The venue's settlement schedule, from `[venue] preset` or the preset the funding format
    /// (or a freqtrade folder's exchange) implies, set when the config loads, for the clock
    /// check of the funding times.
    #[serde(skip)]
    pub funding_schedule: Option<crate::data::clock::Schedule>,
}

/// File formats of a freqtrade data directory (`--data-format-ohlcv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreqtradeFormat {
    /// Whichever of feather, parquet, json, jsongz exists (in that order).
    Auto,
    /// Feather (Arrow IPC) files, `.feather`.
    Feather,
    /// Parquet files, `.parquet`.
    Parquet,
    /// JSON candle arrays, `.json`.
    Json,
    /// Gzipped JSON candle arrays, `.json.gz`.
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
    /// Further data directories searched, in order, for any file `datadir` lacks (a coin's spot
    /// in one download, its perp in another).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_datadirs: Vec<String>,
    /// File format to look for (default `auto`: the first that exists).
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
pub enum TimeFormat {
    /// Detect from the magnitude of epoch numbers (s, ms, µs), or parse ISO-8601 text.
    Auto,
    /// Epoch seconds.
    S,
    /// Epoch milliseconds.
    Ms,
    /// Epoch microseconds.
    Us,
    /// ISO-8601 text such as `2021-01-01 00:00:00+00:00`.
    Iso,
}

/// A price-bar source.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSource {
    /// How the files are laid out.
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
    /// Unit of the time column (default `auto`: detected from the values).
    #[serde(default = "default_time_unit")]
    pub time_unit: TimeFormat,
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
    /// Generic only: keep the rows whose columns hold these values (`filter = { venue =
    /// "binance", coin = "BTC" }`), for a file of many venues or coins.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub filter: std::collections::BTreeMap<String, String>,
    /// The file's times are local time this many hours east of UTC (3 = UTC+3): epoch numbers
    /// and text without a zone are shifted back to UTC; text with its own offset is honoured.
    #[serde(default)]
    pub utc_offset_hours: Option<f64>,
    /// The file's times are wall-clock times in this IANA zone (`Europe/London`), daylight
    /// saving included: moved to UTC by the zone's rules on each date (see `data::zone`). In
    /// place of `utc_offset_hours`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

fn default_time_unit() -> TimeFormat {
    TimeFormat::Auto
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

impl FundingFormat {
    /// The built-in venue preset (`data/venues/<id>.toml`) a venue's funding format implies,
    /// whose schedule the settlements are checked against; `None` for formats that name no
    /// venue. The presets are the one source of the venues' schedules.
    pub fn venue_preset(self) -> Option<&'static str> {
        Some(match self {
            FundingFormat::BinanceFunding | FundingFormat::BinanceRest => "binance_usdm",
            FundingFormat::BybitJson => "bybit_linear",
            FundingFormat::Okx => "okx_swap",
            FundingFormat::GateJson => "gate_usdt",
            FundingFormat::BitmexJson => "bitmex",
            FundingFormat::HyperliquidJson => "hyperliquid",
            FundingFormat::DydxJson => "dydx_v4",
            FundingFormat::DeribitJson => "deribit",
            FundingFormat::Generic | FundingFormat::CcxtJson | FundingFormat::Tardis => return None,
        })
    }
}

impl PriceSource {
    /// Generic (CSV, Parquet, Feather) files at a path or glob, every option at its default.
    pub fn generic(path: impl Into<String>) -> Self {
        PriceSource { format: PriceFormat::Generic, ..PriceSource::binance_klines(path) }
    }

    /// Binance kline files (a path or glob) with every option at its default.
    pub fn binance_klines(path: impl Into<String>) -> Self {
        PriceSource {
            format: PriceFormat::BinanceKlines,
            path: path.into(),
            close_time_column: None,
            open_time_column: None,
            bar_seconds: None,
            time_unit: TimeFormat::Auto,
            close_column: None,
            high_column: None,
            low_column: None,
            volume_column: None,
            open_column: None,
            filter: Default::default(),
            utc_offset_hours: None,
            time_zone: None,
        }
    }
}

impl FundingSource {
    /// Funding files of `format` (a path or glob) with every option at its default.
    pub fn new(format: FundingFormat, path: impl Into<String>) -> Self {
        FundingSource {
            format,
            path: path.into(),
            time_unit: TimeFormat::Auto,
            time_column: None,
            rate_column: None,
            interval_hours_column: None,
            interval_hours: None,
            mark_column: None,
            filter: Default::default(),
            utc_offset_hours: None,
            time_zone: None,
            rates_in: None,
        }
    }
}

/// A funding-settlement source.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FundingSource {
    /// How the files are laid out.
    pub format: FundingFormat,
    /// What the rates are in: `decimal` (0.0001 = 0.01 %) or `percent` (divided by 100 on
    /// load). Omitted: decimals, with a file that is clearly in percent refused.
    #[serde(default)]
    pub rates_in: Option<RateUnits>,
    /// A file or a glob of files (e.g. monthly dumps); all load as one series.
    pub path: String,
    /// Unit of the settlement-time column (default `auto`: detected from the values).
    #[serde(default = "default_time_unit")]
    pub time_unit: TimeFormat,
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
    /// Generic only: keep the rows whose columns hold these values, for a file of many venues
    /// or coins (`filter = { venue = "hyperliquid", coin = "BTC" }`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub filter: std::collections::BTreeMap<String, String>,
    /// The file's times are local time this many hours east of UTC (3 = UTC+3): epoch numbers
    /// and text without a zone are shifted back to UTC; text with its own offset is honoured.
    #[serde(default)]
    pub utc_offset_hours: Option<f64>,
    /// The file's times are wall-clock times in this IANA zone (`Europe/London`), daylight
    /// saving included: moved to UTC by the zone's rules on each date (see `data::zone`). In
    /// place of `utc_offset_hours`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// A staking APR series (daily or any cadence), applied as known at each row's time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StakingSource {
    /// A CSV or Parquet file, or a glob of files; all load as one series.
    pub path: String,
    /// Column holding the time from which each APR is known (default `time`).
    #[serde(default = "default_time_column")]
    pub time_column: String,
    /// Unit of the time column (default `auto`: detected from the values).
    #[serde(default = "default_time_unit")]
    pub time_unit: TimeFormat,
    /// APR as a decimal (0.035 = 3.5 %).
    #[serde(default = "default_apr_column")]
    pub apr_column: String,
    /// The file's times are local time this many hours east of UTC (see [`PriceSource`]).
    #[serde(default)]
    pub utc_offset_hours: Option<f64>,
    /// The file's times are wall-clock times in this IANA zone (see [`PriceSource`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// A rate that changes over time (decimal APR), or a constant: `{ apr = 0.045 }` or
/// `{ path = "tbill.csv", time_column = "date", apr_column = "yield" }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateSource {
    /// A constant decimal APR for the whole run (instead of `path`).
    #[serde(default)]
    pub apr: Option<f64>,
    /// A CSV or Parquet file, or a glob of files; each row's APR is known from its time on.
    #[serde(default)]
    pub path: Option<String>,
    /// Column holding the time from which each APR is known (default `time`).
    #[serde(default = "default_time_column")]
    pub time_column: String,
    /// Unit of the time column (default `auto`: detected from the values).
    #[serde(default = "default_time_unit")]
    pub time_unit: TimeFormat,
    /// The APR column (default `apr`).
    #[serde(default = "default_apr_column")]
    pub apr_column: String,
    /// The APR column is in percent (5.25 = 5.25 %), as T-bill yields are published.
    #[serde(default)]
    pub percent: bool,
    /// The file's times are local time this many hours east of UTC (see [`PriceSource`]).
    #[serde(default)]
    pub utc_offset_hours: Option<f64>,
    /// The file's times are wall-clock times in this IANA zone (see [`PriceSource`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// The unit of a funding file's rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateUnits {
    /// Decimals per interval (0.0001 = 0.01 %).
    Decimal,
    /// Percent per interval (0.01 = 0.01 %), divided by 100 on load.
    Percent,
}

/// How dated-futures files are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatedFormat {
    /// Binance delivery kline dumps, one contract per file name (`BTCUSDT_240329-1h-2024-01.csv`,
    /// COIN-M `BTCUSD_240329-...`): the contract and its expiry (08:00 UTC on the date in the
    /// name) come from the file name.
    BinanceKlines,
    /// Any CSV or Parquet with the columns named in the source: many contracts in one long
    /// table (`contract_column`, `expiry_column`), one contract per file (`contract`,
    /// `expiry`), or a continuous series whose contract column changes at the roll dates.
    Generic,
}

/// Dated futures contracts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatedSource {
    /// How the files are laid out.
    pub format: DatedFormat,
    /// A file or a glob of files.
    pub path: String,
    /// Generic only: the bar's close-time column (when its values became known).
    #[serde(default)]
    pub close_time_column: Option<String>,
    /// Generic only: the bar's open-time column; needs `bar_seconds`.
    #[serde(default)]
    pub open_time_column: Option<String>,
    /// Generic only: bar length in seconds, when bars are stamped with their open time.
    #[serde(default)]
    pub bar_seconds: Option<u32>,
    /// Unit of the time columns (default `auto`).
    #[serde(default = "default_time_unit")]
    pub time_unit: TimeFormat,
    /// Generic only: the close-price column (default `close`).
    #[serde(default)]
    pub close_column: Option<String>,
    /// Generic only: the bar-high column (default: the close).
    #[serde(default)]
    pub high_column: Option<String>,
    /// Generic only: the bar-low column (default: the close).
    #[serde(default)]
    pub low_column: Option<String>,
    /// Generic only: the column naming each row's contract (e.g. `BTCUSDT_240329`).
    #[serde(default)]
    pub contract_column: Option<String>,
    /// Generic only: the contract of every row, for a one-contract file.
    #[serde(default)]
    pub contract: Option<String>,
    /// Generic only: the column holding each row's contract expiry (a time).
    #[serde(default)]
    pub expiry_column: Option<String>,
    /// Generic only: the expiry of a one-contract file (`2024-03-29T08:00:00Z`).
    #[serde(default)]
    pub expiry: Option<String>,
    /// Generic only: the column holding the contract's settlement (delivery) price; without one
    /// the spot close at expiry stands in, with a warning.
    #[serde(default)]
    pub settlement_column: Option<String>,
    /// The file's times are local time this many hours east of UTC (see [`PriceSource`]).
    #[serde(default)]
    pub utc_offset_hours: Option<f64>,
    /// The file's times are wall-clock times in this IANA zone (see [`PriceSource`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

impl DatedSource {
    /// Binance delivery klines (a path or glob) with every option at its default.
    pub fn binance_klines(path: impl Into<String>) -> Self {
        DatedSource {
            format: DatedFormat::BinanceKlines,
            path: path.into(),
            close_time_column: None,
            open_time_column: None,
            bar_seconds: None,
            time_unit: TimeFormat::Auto,
            close_column: None,
            high_column: None,
            low_column: None,
            contract_column: None,
            contract: None,
            expiry_column: None,
            expiry: None,
            settlement_column: None,
            utc_offset_hours: None,
            time_zone: None,
        }
    }
}

fn default_time_column() -> String {
    "time".into()
}

fn default_apr_column() -> String {
    "apr".into()
}

fn default_true() -> bool {
    true
}

/// A user's series of values over time: a `[[signal]]` (named) or `[strategy.target]`, e.g.
/// `{ name = "my_alpha", path = "alpha.parquet", time_column = "time", value_column = "score" }`.
/// Each value is known from its time on, never earlier.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesSource {
    /// The signal's name in rules (`[[signal]]`); `target` for `[strategy.target]`.
    #[serde(default)]
    pub name: String,
    /// A CSV or Parquet file, or a glob of files.
    pub path: String,
    /// Column holding the time from which each value is known (default `time`).
    #[serde(default = "default_time_column")]
    pub time_column: String,
    /// Unit of the time column (default `auto`: detected from the values).
    #[serde(default = "default_time_unit")]
    pub time_unit: TimeFormat,
    /// The value column (default `value`).
    #[serde(default = "default_value_column")]
    pub value_column: String,
    /// The file's times are local time this many hours east of UTC (see [`PriceSource`]).
    #[serde(default)]
    pub utc_offset_hours: Option<f64>,
    /// The file's times are wall-clock times in this IANA zone (see [`PriceSource`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// A file (or glob) of L2 order-book snapshots: one row per snapshot, the levels as columns
/// `asks[k].price`, `asks[k].amount`, `bids[k].price`, `bids[k].amount` (k from 0, best first;
/// Tardis' `book_snapshot_5` / `_25` layout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookSource {
    /// A CSV (plain or `.gz`) or Parquet file, or a glob of files.
    pub path: String,
    /// The column of the time each snapshot is known from; default: `local_timestamp` (when
    /// Tardis received it), else `timestamp`, else `ts`, whichever the file has.
    #[serde(default)]
    pub time_column: Option<String>,
    /// Unit of the time column (default `auto`: detected; Tardis writes µs).
    #[serde(default = "default_time_unit")]
    pub time_unit: TimeFormat,
    /// A snapshot older than this at a fill is stale, and the fixed slippage stands in, ms
    /// (default: one bar of the run's clock).
    #[serde(default)]
    pub max_age_ms: Option<i64>,
}

fn default_value_column() -> String {
    "value".into()
}

#[cfg(test)]
mod schedule_tests {
    use super::FundingFormat;

    #[test]
    fn venue_formats_name_their_presets() {
        assert_eq!(FundingFormat::BitmexJson.venue_preset(), Some("bitmex"));
        assert_eq!(FundingFormat::HyperliquidJson.venue_preset(), Some("hyperliquid"));
        assert!(FundingFormat::Generic.venue_preset().is_none());
    }
}
