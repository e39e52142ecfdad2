//! The command line: clap definitions and the code each subcommand runs.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::config::{parse_time_ms, Config};
use crate::data::synth::{self, SynthSpec};
use crate::app::backtest;
use crate::bail_input;

/// basis: backtests of delta-neutral basis (carry) trades on crypto perpetual futures.
#[derive(Debug, Parser)]
#[command(name = "basis", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

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
    /// List the built-in venue presets, or print one (`basis presets binance_usdm`).
    Presets(PresetsArgs),
    /// Data tools.
    #[command(subcommand)]
    Data(DataCommand),
}

#[derive(Debug, Args)]
pub struct CapsArgs {
    /// Config file (TOML) of the carry to run; its [costs] and [margin] hold for every rule set.
    #[arg(long, short, default_value = "data/basis.toml")]
    pub config: PathBuf,
    /// Venue presets to apply, by id or file (default: every built-in preset).
    #[arg(long = "venue", value_name = "PRESET")]
    pub venues: Vec<String>,
    /// A user cap: `0.003` (±0.3 % per settlement, on the config's preset or binance_usdm) or
    /// `0.04/1h` (settle hourly, ±4 % each). Repeat for several.
    #[arg(long = "cap", value_name = "CAP[/Nh]")]
    pub caps: Vec<String>,
    /// Leave out the run on the data files' own funding.
    #[arg(long)]
    pub no_actual: bool,
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
    #[arg(long, default_value = "timestamp")]
    pub time_column: String,
    #[arg(long, default_value = "venue")]
    pub venue_column: String,
    #[arg(long, default_value = "coin")]
    pub coin_column: String,
    #[arg(long, default_value = "funding_rate")]
    pub rate_column: String,
    /// Name of the output folder.
    #[arg(long, default_value = "venues")]
    pub name: String,
    #[arg(long, default_value = "reports")]
    pub output_dir: PathBuf,
    /// Replace an existing folder of the same name instead of writing <name>-2.
    #[arg(long)]
    pub force: bool,
}

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
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Replace an existing folder of the same name instead of writing <name>-2.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct PresetsArgs {
    /// A preset id or file to print in full (with sources); without it, list the built-in ones.
    pub preset: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run folder written by `basis backtest`, e.g. reports/sample.
    pub run_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Two or more run folders written by `basis backtest`.
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

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Generate the seeded synthetic sample (Binance dump layouts) that data/basis.toml runs on.
    Synth(SynthArgs),
    /// Print what files hold: rows, span, spacing and gaps, settlement intervals, rate
    /// statistics and cap hits.
    Inspect(InspectArgs),
    /// Write a config's market data as canonical Parquet, with a config that reads it.
    Convert(ConvertArgs),
    /// Download public history (verified, resumable) into a local cache.
    #[command(subcommand)]
    Fetch(FetchCommand),
}

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

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Config whose [data] to convert.
    #[arg(long, short, default_value = "data/basis.toml")]
    pub config: PathBuf,
    /// Output folder (spot/perp/mark/funding/staking.parquet and config.toml).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum FetchCommand {
    /// Binance monthly dumps from data.binance.vision, e.g.
    /// `basis data fetch binance --symbol ETHUSDT --from 2023-01 --to 2024-12 --kinds spot-1h,perp-1h,funding`.
    Binance(FetchBinanceArgs),
}

#[derive(Debug, Args)]
pub struct FetchBinanceArgs {
    #[arg(long)]
    pub symbol: String,
    /// First month, YYYY-MM.
    #[arg(long)]
    pub from: String,
    /// Last month, YYYY-MM.
    #[arg(long)]
    pub to: String,
    /// Comma-separated: spot-1h, perp-1h, mark-1h, index-1h, premium-1h (any interval 1m..1w), funding.
    #[arg(long, default_value = "spot-1h,perp-1h,mark-1h,funding")]
    pub kinds: String,
    /// Cache folder; files land under <out>/data/... as on the site.
    #[arg(long, default_value = "data/binance")]
    pub out: PathBuf,
    #[arg(long, default_value = "https://data.binance.vision")]
    pub base_url: String,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output folder.
    #[arg(long, default_value = "data/sample")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// First day (UTC).
    #[arg(long, default_value = "2024-07-01")]
    pub start: String,
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Bar length in minutes (1, 5, 15, 60, ...).
    #[arg(long, default_value_t = 60)]
    pub bar_minutes: u32,
    #[arg(long, default_value = "SYNTHUSDT")]
    pub symbol: String,
}

/// Run the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Backtest(args) => run_backtest(args),
        Command::Report(args) => run_report(args),
        Command::Compare(args) => run_compare(args),
        Command::Caps(args) => run_caps(args),
        Command::Venues(args) => run_venues(args),
        Command::Presets(args) => run_presets(args),
        Command::Sweep(args) => run_sweep(args),
        Command::Stress(args) => run_stress(args),
        Command::Data(DataCommand::Synth(args)) => run_synth(args),
        Command::Data(DataCommand::Fetch(FetchCommand::Binance(args))) => run_fetch_binance(args),
        Command::Data(DataCommand::Inspect(args)) => {
            let options = crate::app::inspect::Options {
                format: args.format,
                kind: args.kind,
                time_column: args.time_column,
                rate_column: args.rate_column,
                interval_hours: args.interval_hours,
                interval_hours_column: args.interval_hours_column,
                mark_column: args.mark_column,
                close_column: args.close_column,
                high_column: args.high_column,
                low_column: args.low_column,
                open_column: args.open_column,
                volume_column: args.volume_column,
                close_time_column: args.close_time_column,
                open_time_column: args.open_time_column,
                bar_seconds: args.bar_seconds,
                time_unit: args.time_unit,
                utc_offset_hours: args.utc_offset_hours,
                symbol: args.symbol,
            };
            // Every file is reported; a file that cannot be read makes the command fail (exit 2
            // for bad input) after all of them, with earlier failures printed first.
            let mut failures = Vec::new();
            for file in &args.files {
                let inspection = crate::app::inspect::inspect(file, &options);
                print!("{}", inspection.text);
                failures.extend(inspection.error);
            }
            match failures.pop() {
                Some(last) => {
                    for err in &failures {
                        eprintln!("error: {err:#}");
                    }
                    Err(last)
                }
                None => Ok(()),
            }
        }
        Command::Data(DataCommand::Convert(args)) => run_convert(args),
    }
}

fn run_caps(args: CapsArgs) -> Result<()> {
    use crate::app::caps;
    use crate::venue::Preset;
    let config = Config::load(&args.config)?;
    let base_dir = args.config.parent().unwrap_or(std::path::Path::new("."));
    let mut rule_sets = Vec::new();
    if !args.no_actual {
        rule_sets.push(caps::RuleSet::Actual);
    }
    let venues: Vec<String> = if args.venues.is_empty() && args.caps.is_empty() {
        crate::venue::BUILT_IN.iter().map(|(id, _)| id.to_string()).collect()
    } else {
        args.venues.clone()
    };
    for venue in &venues {
        let preset = Preset::load(venue, base_dir)?;
        rule_sets.push(caps::RuleSet::Rules { label: preset.name.clone(), preset: Box::new(preset) });
    }
    let base = match &config.venue.loaded {
        Some(preset) => preset.clone(),
        None => Preset::load("binance_usdm", base_dir)?,
    };
    for cap in &args.caps {
        rule_sets.push(caps::user_cap(cap, &base)?);
    }
    if rule_sets.len() < 2 {
        bail_input!("caps needs at least two rule sets: add --venue or --cap (or drop --no-actual)");
    }
    let name = args.name.unwrap_or_else(|| format!("{}-caps", config.run.name));
    crate::config::validate_run_name(&name)?;
    let output_dir = args.output_dir.unwrap_or_else(|| config.run.output_dir.clone());
    let (folder, outcomes, warnings) = caps::write(&config, &rule_sets, &output_dir, &name, args.force)?;
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    println!("{:<44} {:>11} {:>9} {:>9} {:>14} {:>14} {:>9} {:>5}", "rule set", "funding APR", "at cap", "at floor", "funding PnL", "total PnL", "max DD", "liq");
    for o in &outcomes {
        let m = &o.metrics;
        println!(
            "{:<44} {:>10.2}% {:>8.2}% {:>8.2}% {:>14.2} {:>14.2} {:>8.2}% {:>5}",
            o.label,
            m.funding_apr_over_window * 100.0,
            o.share_at_cap * 100.0,
            o.share_at_floor * 100.0,
            m.funding_pnl,
            m.final_equity - m.initial_capital,
            m.max_drawdown * 100.0,
            m.liquidations
        );
    }
    println!("  open {}", folder.join("index.html").display());
    Ok(())
}

fn run_venues(args: VenuesArgs) -> Result<()> {
    use crate::app::venues;
    let columns = venues::Columns { time: args.time_column, venue: args.venue_column, coin: args.coin_column, rate: args.rate_column };
    crate::config::validate_run_name(&args.name)?;
    let study = venues::study(&args.funding, &columns, &args.coin, args.lookback_days, args.switch_margin_apr, args.slippage_bps)?;
    let folder = venues::write(&study, &args.output_dir, &args.name, args.force)?;
    println!("{:<12} {:<6} {:>11} {:>9} {:>12} {:>10}", "venue", "coin", "settlements", "interval", "funding APR", "gap hours");
    for row in &study.aprs {
        println!("{:<12} {:<6} {:>11} {:>8}h {:>11.2}% {:>10}", row.venue, row.coin, row.settlements, row.typical_interval_hours, row.funding_apr * 100.0, row.gap_hours);
    }
    for r in study.rotations.iter().filter(|r| r.switches > 0 || r.label.starts_with("best")) {
        println!("{:<6} best venue: net APR {:+.2}% ({} switches, costs {:.3}% of notional)", r.coin, r.net_apr * 100.0, r.switches, r.costs * 100.0);
    }
    println!("  open {}", folder.join("index.html").display());
    Ok(())
}

fn run_sweep(args: SweepArgs) -> Result<()> {
    use crate::app::sweep::{run, spec::Sweep};
    let sweep = Sweep::load(&args.config)?;
    let options = run::SweepOptions {
        shard: args.shard.as_deref().map(run::parse_shard).transpose()?,
        force: args.force,
        name: args.name,
        output_dir: args.output_dir,
        progress: true,
    };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(args.threads.unwrap_or(0)).build().map_err(|e| anyhow::anyhow!("thread pool: {e}"))?;
    eprintln!("sweep {}: {} configurations, {} parameters", sweep.file.name, sweep.total, sweep.params.len());
    let summary = pool.install(|| run::run(&sweep, &options))?;
    if summary.resumed > 0 {
        println!("resumed: {} of {} configurations were already done", summary.resumed, summary.configurations);
    }
    println!(
        "{} configurations in {:.2} s ({} invalid, {} market timeline(s))",
        summary.configurations, summary.seconds, summary.failed, summary.timelines
    );
    if let (Some(id), Some(value)) = (summary.best_id, summary.best_metric) {
        println!("best by {}: configuration {id} ({value:.4})", sweep.file.metric);
    }
    println!("  results {}", summary.folder.join("results.parquet").display());
    println!("  open    {}", summary.folder.join("index.html").display());
    Ok(())
}

fn run_stress(args: StressArgs) -> Result<()> {
    use crate::app::stress;
    let config = Config::load(&args.config)?;
    let mut file = stress::StressFile::load(&args.stress)?;
    if let Some(mc) = file.monte_carlo.as_mut() {
        mc.paths = args.paths.unwrap_or(mc.paths);
        mc.seed = args.seed.unwrap_or(mc.seed);
    }
    let name = args.name.unwrap_or_else(|| format!("{}-stress", config.run.name));
    crate::config::validate_run_name(&name)?;
    let output_dir = args.output_dir.unwrap_or_else(|| config.run.output_dir.clone());
    let base_dir = args.stress.parent().unwrap_or(std::path::Path::new("."));
    let (folder, run) = stress::write(&config, &file, base_dir, &output_dir, &name, args.force, true)?;
    println!("{:<44} {:>14} {:>9} {:>9} {:>10} {:>14}", "scenario", "PnL impact", "return", "max DD", "liquidated", "recovered in");
    for o in std::iter::once(&run.baseline).chain(&run.scenarios) {
        println!(
            "{:<44} {:>14.2} {:>8.2}% {:>8.2}% {:>10} {:>14}",
            o.label,
            o.pnl_impact,
            o.total_return * 100.0,
            o.max_drawdown * 100.0,
            if o.liquidations > 0 { "yes" } else { "no" },
            stress::days(o)
        );
    }
    if let Some(cap) = &run.capacity {
        for p in &cap.points {
            println!("capacity {:>16.0}: net APR {:+.2}% (funding x{:.3}, impact {:.2} bp)", p.aum, p.net_apr * 100.0, p.funding_factor, p.impact_bps);
        }
    }
    if let Some(mc) = &run.monte_carlo {
        println!(
            "monte carlo {} paths: P(liquidation) {:.2}%, APR p5 {:+.2}% p50 {:+.2}% p95 {:+.2}%",
            mc.paths.len(),
            mc.liquidation_probability() * 100.0,
            mc.quantile(0.05, |p| p.apr) * 100.0,
            mc.quantile(0.5, |p| p.apr) * 100.0,
            mc.quantile(0.95, |p| p.apr) * 100.0
        );
    }
    println!("  open {}", folder.join("index.html").display());
    Ok(())
}

fn run_presets(args: PresetsArgs) -> Result<()> {
    use crate::venue::Preset;
    match args.preset {
        Some(name) => {
            let preset = Preset::load(&name, std::path::Path::new("."))?;
            print!("{}", toml::to_string_pretty(&preset).map_err(|e| anyhow::anyhow!("printing the preset: {e}"))?);
        }
        None => {
            for preset in Preset::built_in()? {
                let f = &preset.funding;
                println!(
                    "{:<14} {:<18} every {} h, {:?}, paid on {:?}, {:?}; perp taker {} bp",
                    preset.id, preset.name, f.interval_hours, f.formula, f.paid_on, f.timing, preset.fees.perp_taker_bps
                );
            }
        }
    }
    Ok(())
}

fn run_report(args: ReportArgs) -> Result<()> {
    let written = crate::render::rerender(&args.run_dir)?;
    println!("re-rendered {} files in {}", written.len(), args.run_dir.display());
    println!("  open {}", args.run_dir.join("index.html").display());
    Ok(())
}

fn run_compare(args: CompareArgs) -> Result<()> {
    let folder = crate::render::compare::write(&args.run_dirs, &args.output_dir, &args.name, args.force)?;
    println!("compared {} runs", args.run_dirs.len());
    println!("  open {}", folder.join("index.html").display());
    Ok(())
}

fn run_backtest(args: BacktestArgs) -> Result<()> {
    let mut config = if args.set.is_empty() { Config::load(&args.config)? } else { config_with_overrides(&args.config, &args.set)? };
    if let Some(name) = args.name {
        config.run.name = name;
    }
    if let Some(dir) = args.output_dir {
        config.run.output_dir = dir;
    }
    crate::config::validate_run_name(&config.run.name)?;
    let result = backtest::run(&config)?;
    for warning in &result.warnings {
        eprintln!("warning: {warning}");
    }
    let folder = backtest::write_outputs(&config, Some(&args.config), &result, args.force)?;
    print!("{}", result.metrics.summary_text());
    println!("  outputs       {}", folder.display());
    println!("  report        {}", folder.join("index.html").display());
    Ok(())
}

/// Load a config with `KEY=VALUE` overrides applied to its TOML before validation (values are
/// read as TOML: numbers, booleans, or text).
fn config_with_overrides(path: &std::path::Path, overrides: &[String]) -> Result<Config> {
    let text = std::fs::read_to_string(path).map_err(|err| crate::input_error!("cannot read config {}: {err}", path.display()))?;
    let mut raw: toml::Value = toml::from_str(&text).map_err(|err| crate::input_error!("config {}: {}", path.display(), err.to_string().trim_end()))?;
    let base_dir = path.parent().unwrap_or(std::path::Path::new("."));
    let full = toml::Value::try_from(&Config::from_toml_value(&raw, &path.display().to_string(), base_dir)?)
        .map_err(|e| anyhow::anyhow!("serialising the config: {e}"))?;
    for item in overrides {
        let Some((key, value)) = item.split_once('=') else {
            bail_input!("--set {item:?}: expected KEY=VALUE, e.g. --set portfolio.leverage=2");
        };
        let (key, value) = (key.trim(), value.trim());
        let parsed: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_string()));
        crate::app::sweep::spec::set_path(&mut raw, &full, key, parsed)?;
    }
    Config::from_toml_value(&raw, &format!("{} with --set", path.display()), base_dir)
}

fn run_fetch_binance(args: FetchBinanceArgs) -> Result<()> {
    use crate::data::fetch::{self, Kind, Outcome};
    let kinds = args.kinds.split(',').filter(|k| !k.trim().is_empty()).map(Kind::parse).collect::<Result<Vec<_>>>()?;
    let months = fetch::months(&args.from, &args.to)?;
    let fetched = fetch::fetch_binance(&args.base_url, &args.out, &args.symbol, &kinds, &months, true)?;
    let (mut downloaded, mut present, mut bytes) = (0, 0, 0u64);
    let mut missing = Vec::new();
    for f in &fetched {
        match &f.outcome {
            Outcome::Downloaded { bytes: b, .. } => {
                downloaded += 1;
                bytes += b;
            }
            Outcome::Present => present += 1,
            Outcome::Missing => missing.push(f.remote.as_str()),
        }
    }
    println!("{downloaded} downloaded ({:.1} MB), {present} already present and verified, {} missing", bytes as f64 / 1e6, missing.len());
    for remote in &missing {
        println!("  not on the site: {remote}");
    }
    println!("  cache {}", args.out.join("data").display());
    Ok(())
}

fn run_convert(args: ConvertArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    let text = std::fs::read_to_string(&args.config).map_err(|err| crate::input_error!("cannot read {}: {err}", args.config.display()))?;
    let raw: toml::Value = toml::from_str(&text).map_err(|err| crate::input_error!("config {}: {err}", args.config.display()))?;
    let data = crate::data::load(&config.data)?;
    // The same coverage rules as a backtest: an explicit window past the data is refused, and
    // what a default window would lose is said (the files are still written whole).
    let timeline = crate::data::align::align_window(&data, &crate::app::backtest::window_of(&config)?, config.portfolio.staking_apr)?;
    for warning in data.warnings.iter().chain(&timeline.coverage_warnings) {
        eprintln!("warning: {warning}");
    }
    let base_dir = args.config.parent().unwrap_or(std::path::Path::new("."));
    let written = crate::app::convert::write(&data, &raw, base_dir, &args.out)?;
    println!("wrote {} files to {}", written.len(), args.out.display());
    println!("  run it: basis backtest --config {}", args.out.join("config.toml").display());
    Ok(())
}

fn run_synth(args: SynthArgs) -> Result<()> {
    if args.days == 0 || args.bar_minutes == 0 || (!60u32.is_multiple_of(args.bar_minutes) && !args.bar_minutes.is_multiple_of(60)) {
        bail_input!("--days must be > 0 and --bar-minutes must divide 60 or be a multiple of 60");
    }
    let spec = SynthSpec {
        seed: args.seed,
        start_ms: parse_time_ms("--start", &args.start)?,
        days: args.days,
        bar_minutes: args.bar_minutes,
        symbol: args.symbol,
        ..SynthSpec::default()
    };
    let market = synth::generate(&spec);
    let files = synth::write(&market, &spec, &args.out)?;
    println!("wrote {} SYNTHETIC files to {} ({} bars, {} settlements)", files.len(), args.out.display(), market.spot.len(), market.funding.len());
    Ok(())
}
