//! The command line's arguments: clap definitions of every subcommand and option.
//!
//! Doc comments here are `--help` text, written for the terminal: `<name>` is a placeholder and
//! `[costs]` a config section, not HTML or links.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// basis: backtests of delta-neutral basis (carry) trades on crypto perpetual futures.
#[derive(Debug, Parser)]
#[command(name = "basis", version, about, long_about = None)]
pub struct Cli {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
    /// Parse Binance kline dumps into a folder of this run's own, removed when it ends, instead
    /// of the shared dump cache (also BASIS_NO_CACHE=1; see `basis data cache`).
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// The dump cache folder (default: $BASIS_CACHE_DIR, else $XDG_CACHE_HOME/basis, else
    /// ~/.cache/basis).
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// The subcommands of `basis`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one carry backtest and write reports/<run>/ (metrics, ledger, trades, config, manifest).
    Backtest(BacktestArgs),
    /// Re-render the charts and index.html of a saved run from its files, without re-running it.
    Report(ReportArgs),
    /// Compare saved runs: overlaid returns and drawdowns, metrics side by side.
    Compare(CompareArgs),
    /// Run one carry under several funding rule sets (venue presets and user caps) and compare
    /// realised funding, share of capped settlements, carry PnL and drawdown.
    Caps(CapsArgs),
    /// Actual funding across venues from one table (8-hourly and hourly venues mixed): APR per
    /// venue and coin, correlations, spreads, and a best-venue carry.
    Venues(VenuesArgs),
    /// Run a config over a grid or random sample of parameters, in parallel, resumable and
    /// shardable, with an optional walk-forward; writes results.parquet and a report.
    Sweep(SweepArgs),
    /// Stress the carry: price shocks, funding flips, basis blowouts, depegs, outages, slippage
    /// droughts and historical replays; a capacity curve; a block-bootstrap Monte Carlo.
    Stress(StressArgs),
    /// The term structure of the basis: each dated contract's annualised basis over time, per
    /// tenor, against the perp's trailing funding APR; writes term.parquet and term.png.
    Term(TermArgs),
    /// List the built-in venue presets, or print one (`basis presets binance_usdm`).
    Presets(PresetsArgs),
    /// Data tools.
    #[command(subcommand)]
    Data(DataCommand),
}

/// Options of `basis caps`.
#[derive(Debug, Args)]
pub struct CapsArgs {
    /// Config file (TOML) of the carry to run; its [costs] and [margin] hold for every rule set.
    #[arg(long, short, default_value = "data/basis.toml")]
    pub config: PathBuf,
    /// Venue presets to apply, by id or file (default: every built-in preset, unless `--cap`
    /// is given: then only the caps and the ones named here).
    #[arg(long = "venue", value_name = "PRESET")]
    pub venues: Vec<String>,
    /// A user cap: `0.003` (±0.3 % per settlement, on the config's preset or binance_usdm) or
    /// `0.04/1h` (settle hourly, ±4 % each). Repeat for several.
    #[arg(long = "cap", value_name = "CAP[/Nh]")]
    pub caps: Vec<String>,
    /// Leave out the row of the data files' own funding (its path is still the one held fixed).
    #[arg(long)]
    pub no_actual: bool,
    /// Simulate each rule set in full (top-ups, liquidations and quantities then differ with the
    /// funding) instead of re-pricing funding on one fixed path.
    #[arg(long)]
    pub full: bool,
    /// Name of the output folder (default: <run.name>-caps).
    #[arg(long)]
    pub name: Option<String>,
    /// Folder the comparison is written into (default: run.output_dir).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Replace an existing folder of the same name instead of writing <name>-2.
    #[arg(long)]
    pub force: bool,
}

/// Options of `basis term`.
#[derive(Debug, Args)]
pub struct TermArgs {
    /// Config file (TOML) with [data.dated] (and spot, perp and funding).
    #[arg(long, short)]
    pub config: PathBuf,
    /// Name of the output folder (default: <run.name>-term).
    #[arg(long)]
    pub name: Option<String>,
    /// Folder the output is written into (default: run.output_dir).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Replace an existing folder of the same name instead of writing <name>-2.
    #[arg(long)]
    pub force: bool,
}

/// Options of `basis venues`.
#[derive(Debug, Args)]
pub struct VenuesArgs {
    /// Funding table (Parquet, Feather or CSV) with timestamp, venue, coin and rate columns,
    /// e.g. ../shared/data/multivenue-hourly/funding_rates.parquet.
    #[arg(long)]
    pub funding: PathBuf,
    /// Coin drawn in the per-venue and rotation charts.
    #[arg(long, default_value = "BTC")]
    pub coin: String,
    /// Trailing window the best-venue carry ranks venues on, in days.
    #[arg(long, default_value_t = 7.0)]
    pub lookback_days: f64,
    /// Trailing APR lead (decimal) another venue needs before the carry switches to it. A switch
    /// costs about 0.14 % of notional (two taker fees and slippage); earning that back within a
    /// 7-day lookback takes a lead of about 7 APR points, hence 0.10.
    #[arg(long, default_value_t = 0.10)]
    pub switch_margin_apr: f64,
    /// Slippage per perp fill on a switch, bps of notional.
    #[arg(long, default_value_t = 2.0)]
    pub slippage_bps: f64,
    /// Trim each coin's venues to the span all of them cover, so their APRs are over the same
    /// time (the table says when they are not).
    #[arg(long)]
    pub common_window: bool,
    /// Column of the funding table holding settlement times.
    #[arg(long, default_value = "timestamp")]
    pub time_column: String,
    /// Column of the funding table holding the venue name (e.g. binance, hyperliquid).
    #[arg(long, default_value = "venue")]
    pub venue_column: String,
    /// Column of the funding table holding the coin (e.g. BTC).
    #[arg(long, default_value = "coin")]
    pub coin_column: String,
    /// Column of the funding table holding the rate, a decimal per interval (0.0001 = 0.01 %).
    #[arg(long, default_value = "funding_rate")]
    pub rate_column: String,
    /// Name of the output folder.
    #[arg(long, default_value = "venues")]
    pub name: String,
    /// Folder the study is written into (outputs go to <output-dir>/<name>/).
    #[arg(long, default_value = "reports")]
    pub output_dir: PathBuf,
    /// Replace an existing folder of the same name instead of writing <name>-2.
    #[arg(long)]
    pub force: bool,
}

/// Options of `basis sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Sweep file (TOML); data/examples/sweep.toml documents every key.
    #[arg(long, short, default_value = "data/examples/sweep.toml")]
    pub config: PathBuf,
    /// Run only the configurations with id % n == i, e.g. 3/16; outputs go to <name>.shard-i-of-n.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Output folder name (overrides the sweep file's `name`).
    #[arg(long)]
    pub name: Option<String>,
    /// Folder holding sweeps (overrides the sweep file's `output_dir`).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Replace a finished sweep of the same name (instead of writing <name>-2), or discard an
    /// unfinished one whose plan differs.
    #[arg(long)]
    pub force: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Options of `basis stress`.
#[derive(Debug, Args)]
pub struct StressArgs {
    /// Config file (TOML) of the carry to stress.
    #[arg(long, short, default_value = "data/basis.toml")]
    pub config: PathBuf,
    /// Stress file (TOML): [[scenario]] entries, [capacity], [monte_carlo].
    #[arg(long, default_value = "data/examples/stress.toml")]
    pub stress: PathBuf,
    /// Override the Monte Carlo path count.
    #[arg(long)]
    pub paths: Option<u64>,
    /// Override the Monte Carlo seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output folder name (default: <run.name>-stress).
    #[arg(long)]
    pub name: Option<String>,
    /// Folder the stress report is written into (default: run.output_dir).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Replace an existing folder of the same name instead of writing <name>-2.
    #[arg(long)]
    pub force: bool,
}

/// Options of `basis presets`.
#[derive(Debug, Args)]
pub struct PresetsArgs {
    /// A preset id or file to print in full (with sources); without it, list the built-in ones.
    pub preset: Option<String>,
}

/// Options of `basis report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run folder written by `basis backtest`, e.g. reports/sample.
    pub run_dir: PathBuf,
}

/// Options of `basis compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Two or more run folders written by `basis backtest`, or config files (`.toml`), each
    /// run first into the output folder (a new folder per run, never over an earlier one).
    #[arg(required = true, num_args = 2..)]
    pub run_dirs: Vec<PathBuf>,
    /// Name of the comparison folder.
    #[arg(long, default_value = "compare")]
    pub name: String,
    /// Folder the comparison is written into.
    #[arg(long, default_value = "reports")]
    pub output_dir: PathBuf,
    /// Replace an existing comparison of the same name instead of writing <name>-2.
    #[arg(long)]
    pub force: bool,
}

/// Options of `basis backtest`.
#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// Config file (TOML); data/basis.toml documents every key.
    #[arg(long, short, default_value = "data/basis.toml")]
    pub config: PathBuf,
    /// Run name (overrides run.name): outputs go to <output-dir>/<name>/.
    #[arg(long)]
    pub name: Option<String>,
    /// Folder holding runs (overrides run.output_dir).
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Replace an existing run of the same name instead of writing <name>-2.
    #[arg(long)]
    pub force: bool,
    /// Set a config field for this run, by dotted path: `--set portfolio.leverage=2`,
    /// `--set venue.preset=hyperliquid`, `--set strategy.start=2024-10-01`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// The subcommands of `basis data`.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Generate the seeded synthetic sample (Binance dump layouts) that data/basis.toml runs on.
    Synth(SynthArgs),
    /// Print what files hold: rows, span, spacing and gaps, settlement intervals, rate
    /// statistics and cap hits.
    Inspect(InspectArgs),
    /// Write a config's market data as canonical Parquet, with a config that reads it.
    Convert(ConvertArgs),
    /// Show the dump cache (kline dumps parsed once, for long runs): its folder, entries and
    /// size; `--clear` empties it.
    Cache(CacheArgs),
    /// Download public history (verified, resumable) into a local cache or catalog.
    #[command(subcommand)]
    Fetch(FetchCommand),
    /// Show what a catalog holds: each venue, kind and symbol with its rows, span and gaps.
    List(ListArgs),
}

/// Options of `basis data list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The catalog folder.
    #[arg(long, default_value = "data/catalog")]
    pub root: PathBuf,
}

/// Options of `basis data inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Files to inspect: CSV (plain, .gz, .zip), venue JSON exports, Parquet or Feather. Each
    /// file's reader is sniffed from its header and first rows (never from its name alone).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Read with this format instead of the sniffed one: a price format (binance_klines, generic,
    /// bybit_trades), a funding format (binance_funding, binance_rest, generic, bybit_json, okx,
    /// hyperliquid_json, dydx_json, deribit_json, bitmex_json, gate_json, ccxt_json, tardis), or
    /// freqtrade.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// For the generic reader and freqtrade files: read the file as `funding` or `prices`
    /// (default: from the column options given, else from the columns found).
    #[arg(long, value_name = "funding|prices")]
    pub kind: Option<String>,
    /// Generic funding: the settlement-time column. Any column option selects the generic reader.
    #[arg(long, value_name = "COLUMN")]
    pub time_column: Option<String>,
    /// Generic funding: the rate column (a decimal per interval).
    #[arg(long, value_name = "COLUMN")]
    pub rate_column: Option<String>,
    /// Settlement interval in hours, where the file has none (else read from the row spacing).
    #[arg(long, value_name = "HOURS")]
    pub interval_hours: Option<f64>,
    /// Generic funding: the per-row interval column, in hours.
    #[arg(long, value_name = "COLUMN")]
    pub interval_hours_column: Option<String>,
    /// Generic funding: the mark price at settlement.
    #[arg(long, value_name = "COLUMN")]
    pub mark_column: Option<String>,
    /// Generic prices: the close column.
    #[arg(long, value_name = "COLUMN")]
    pub close_column: Option<String>,
    /// Generic prices: the bar-high column.
    #[arg(long, value_name = "COLUMN")]
    pub high_column: Option<String>,
    /// Generic prices: the bar-low column.
    #[arg(long, value_name = "COLUMN")]
    pub low_column: Option<String>,
    /// Generic prices: the bar-open column.
    #[arg(long, value_name = "COLUMN")]
    pub open_column: Option<String>,
    /// Generic prices: the volume column.
    #[arg(long, value_name = "COLUMN")]
    pub volume_column: Option<String>,
    /// Generic prices: the bar's close-time column.
    #[arg(long, value_name = "COLUMN")]
    pub close_time_column: Option<String>,
    /// Generic prices: the bar's open-time column (bars become known --bar-seconds later).
    #[arg(long, value_name = "COLUMN")]
    pub open_time_column: Option<String>,
    /// Bar length in seconds: for open-time stamped bars and Bybit trade dumps (default 3600).
    #[arg(long, value_name = "SECONDS")]
    pub bar_seconds: Option<u32>,
    /// Units of the time column: auto, s, ms, us or iso.
    #[arg(long, value_name = "UNIT")]
    pub time_unit: Option<String>,
    /// Hours the file's times are ahead of UTC (3 for a file written in UTC+3); they are moved
    /// back by that much.
    #[arg(long, value_name = "HOURS", allow_negative_numbers = true)]
    pub utc_offset_hours: Option<f64>,
    /// Symbol: the series to read from a dump holding several, and whose cap rules are checked.
    #[arg(long)]
    pub symbol: Option<String>,
}

/// Options of `basis data cache`.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// Remove every entry (they are rebuilt from the dumps when next needed).
    #[arg(long)]
    pub clear: bool,
}

/// Options of `basis data convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Config whose [data] to convert.
    #[arg(long, short, default_value = "data/basis.toml")]
    pub config: PathBuf,
    /// Output folder (spot/perp/mark/funding/staking.parquet and config.toml).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the files of an earlier conversion in `--out` (refused otherwise).
    #[arg(long)]
    pub force: bool,
}

/// The sources `basis data fetch` can download from.
#[derive(Debug, Subcommand)]
pub enum FetchCommand {
    /// Binance monthly dumps from data.binance.vision, e.g.
    /// `basis data fetch binance --symbol ETHUSDT --from 2023-01 --to 2024-12 --kinds spot-1h,perp-1h,funding`.
    Binance(FetchBinanceArgs),
    /// Bybit v5 REST history into the catalog, e.g.
    /// `basis data fetch bybit --symbols BTCUSDT --kinds funding,perp --start 2024-01-01 --end 2024-07-01`.
    Bybit(FetchRestArgs),
    /// OKX v5 REST history into the catalog (funding reaches back about 3 months).
    Okx(FetchRestArgs),
    /// Hyperliquid info-endpoint history into the catalog (candles: the newest 5000 per interval).
    Hyperliquid(FetchRestArgs),
    /// dYdX v4 indexer history into the catalog (perps only; rates per hour).
    Dydx(FetchRestArgs),
    /// Deribit v2 public history into the catalog (hourly funding records).
    Deribit(FetchRestArgs),
    /// BitMEX v1 history into the catalog (buckets stamped at their end are stored by their open).
    Bitmex(FetchRestArgs),
}

/// Options of `basis data fetch VENUE` for the REST venues.
#[derive(Debug, Args)]
pub struct FetchRestArgs {
    /// Comma-separated symbols: BTCUSDT (cut at its quote where the venue names coins: BTC on
    /// Hyperliquid, BTC-USD on dYdX, BTC-USDT-SWAP on OKX), or the venue's own name.
    #[arg(long)]
    pub symbols: String,
    /// Comma-separated kinds: funding, perp, spot, mark, index, premium, open_interest.
    #[arg(long, default_value = "funding,perp")]
    pub kinds: String,
    /// First time (UTC): 2024-01-01 or 2024-01-01T08:00:00Z.
    #[arg(long)]
    pub start: String,
    /// End (UTC, exclusive).
    #[arg(long)]
    pub end: String,
    /// Bar length of bar kinds: 1m, 5m, 15m, 1h, 4h, 1d.
    #[arg(long, default_value = "1h")]
    pub bar: String,
    /// The catalog folder; rows land under <out>/<venue>/<kind>/<SYMBOL>/<year>.parquet.
    #[arg(long, default_value = "data/catalog")]
    pub out: PathBuf,
    /// API base URL (default: the venue's public API); tests, mirrors and proxies point it elsewhere.
    #[arg(long)]
    pub base_url: Option<String>,
    /// Milliseconds between pages (stay under the venue's rate limit).
    #[arg(long, default_value_t = 100)]
    pub pace_ms: u64,
    /// First back-off after a 429 or 5xx without Retry-After, ms (doubled on each retry).
    #[arg(long, default_value_t = 1000)]
    pub backoff_ms: u64,
    /// Tries per page before giving up.
    #[arg(long, default_value_t = 6)]
    pub attempts: u32,
}

/// Options of `basis data fetch binance`.
#[derive(Debug, Args)]
pub struct FetchBinanceArgs {
    /// Binance symbol to download, e.g. ETHUSDT (the same symbol for spot and perp).
    #[arg(long)]
    pub symbol: String,
    /// First month, YYYY-MM.
    #[arg(long)]
    pub from: String,
    /// Last month, YYYY-MM.
    #[arg(long)]
    pub to: String,
    /// Comma-separated: spot-1h, perp-1h, mark-1h, index-1h, premium-1h, delivery-1h (any
    /// interval 1m..1w), funding. `delivery-1h` fetches every quarterly contract live over the
    /// months (`BTCUSDT_240329`, ...; COIN-M for a `...USD` symbol), each from its listing to
    /// its delivery.
    #[arg(long, default_value = "spot-1h,perp-1h,mark-1h,funding")]
    pub kinds: String,
    /// Which dated contracts `delivery-*` fetches: `quarterly` (the quarterly and bi-quarterly
    /// contracts, delivered the last Friday of Mar/Jun/Sep/Dec).
    #[arg(long, default_value = "quarterly")]
    pub contracts: String,
    /// Cache folder; files land under <out>/data/... as on the site.
    #[arg(long, default_value = "data/binance")]
    pub out: PathBuf,
    /// Site to download from (a mirror of data.binance.vision's layout).
    #[arg(long, default_value = "https://data.binance.vision")]
    pub base_url: String,
    /// Also write the fetched dumps into this catalog folder (<catalog>/binance/<kind>/<SYMBOL>/<year>.parquet).
    #[arg(long)]
    pub catalog: Option<PathBuf>,
}

/// Options of `basis data synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output folder.
    #[arg(long, default_value = "data/sample")]
    pub out: PathBuf,
    /// Random seed; the same seed and options give the same files.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// First day (UTC).
    #[arg(long, default_value = "2024-07-01")]
    pub start: String,
    /// Length of the sample, in days.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Bar length in minutes (1, 5, 15, 60, ...).
    #[arg(long, default_value_t = 60)]
    pub bar_minutes: u32,
    /// Symbol written into the files, e.g. SYNTHUSDT.
    #[arg(long, default_value = "SYNTHUSDT")]
    pub symbol: String,
}
