//! The command line: clap definitions and the code each subcommand runs.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::config::{parse_time_ms, Config};
use crate::data::synth::{self, SynthSpec};
use crate::{backtest, bail_input};

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
    /// Data tools.
    #[command(subcommand)]
    Data(DataCommand),
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
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Generate the seeded synthetic sample (Binance dump layouts) that data/basis.toml runs on.
    Synth(SynthArgs),
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
        Command::Data(DataCommand::Synth(args)) => run_synth(args),
    }
}

fn run_report(args: ReportArgs) -> Result<()> {
    let written = crate::report::rerender(&args.run_dir)?;
    println!("re-rendered {} files in {}", written.len(), args.run_dir.display());
    println!("  open {}", args.run_dir.join("index.html").display());
    Ok(())
}

fn run_compare(args: CompareArgs) -> Result<()> {
    let folder = crate::report::compare::write(&args.run_dirs, &args.output_dir, &args.name, args.force)?;
    println!("compared {} runs", args.run_dirs.len());
    println!("  open {}", folder.join("index.html").display());
    Ok(())
}

fn run_backtest(args: BacktestArgs) -> Result<()> {
    let mut config = Config::load(&args.config)?;
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
