//! The command line: argument definitions ([`args`]) and dispatch. Each subcommand turns its
//! arguments into library inputs here, calls `app`, and prints what `app` returns.

pub mod args;

use anyhow::{Context, Result};

pub use args::*;
use crate::app::backtest;
use crate::bail_input;
use crate::config::{parse_time_ms, Config};
use crate::data::synth::{self, SynthSpec};

/// Run the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    crate::data::dump_cache::configure(cli.no_cache, cli.cache_dir.clone());
    match cli.command {
        Command::Backtest(args) => run_backtest(args),
        Command::Report(args) => run_report(args),
        Command::Compare(args) => run_compare(args),
        Command::Caps(args) => run_caps(args),
        Command::Venues(args) => run_venues(args),
        Command::Presets(args) => run_presets(args),
        Command::Term(args) => run_term(args),
        Command::Sweep(args) => run_sweep(args),
        Command::Stress(args) => run_stress(args),
        Command::Data(DataCommand::Synth(args)) => run_synth(args),
        Command::Data(DataCommand::Fetch(FetchCommand::Binance(args))) => run_fetch_binance(args),
        Command::Data(DataCommand::Fetch(FetchCommand::Bybit(args))) => run_fetch_rest("bybit", args),
        Command::Data(DataCommand::Fetch(FetchCommand::Okx(args))) => run_fetch_rest("okx", args),
        Command::Data(DataCommand::Fetch(FetchCommand::Hyperliquid(args))) => run_fetch_rest("hyperliquid", args),
        Command::Data(DataCommand::Fetch(FetchCommand::Dydx(args))) => run_fetch_rest("dydx", args),
        Command::Data(DataCommand::Fetch(FetchCommand::Deribit(args))) => run_fetch_rest("deribit", args),
        Command::Data(DataCommand::Fetch(FetchCommand::Bitmex(args))) => run_fetch_rest("bitmex", args),
        Command::Data(DataCommand::List(args)) => {
            print!("{}", crate::data::catalog::list_text(&crate::data::catalog::list(&args.root)?));
            Ok(())
        }
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
        Command::Data(DataCommand::Cache(args)) => run_cache(args),
    }
}

fn run_term(args: TermArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    let name = args.name.unwrap_or_else(|| format!("{}-term", config.run.name));
    crate::config::validate_run_name(&name)?;
    let output_dir = args.output_dir.unwrap_or_else(|| config.run.output_dir.clone());
    let (term, folder) = crate::app::term::run(&config, &name, &output_dir, args.force)?;
    for warning in &term.warnings {
        eprintln!("warning: {warning}");
    }
    let (means, funding) = term.means();
    let pct = |x: f64| if x.is_finite() { format!("{:+.2} %", x * 100.0) } else { "n/a".into() };
    println!("{} contracts over {} steps: mean annualised basis per tenor", term.rows.iter().map(|r| r.contract.as_str()).collect::<std::collections::BTreeSet<_>>().len(), term.ts_ms.len());
    for (tenor, mean, count) in &means {
        println!("  {tenor:<8} {:>10}  ({count} steps)", pct(*mean));
    }
    println!("  perp     {:>10}  (funding APR, {}, mean)", pct(funding), term.lookback);
    println!("  outputs  {}", folder.display());
    Ok(())
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
        Some(preset) => (**preset).clone(),
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
    let mode = if args.full { caps::CapsMode::Full } else { caps::CapsMode::FixedPath };
    let (folder, outcomes, warnings) = caps::write(&config, &rule_sets, mode, &output_dir, &name, args.force)?;
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    print!("{}", caps::table_text(&outcomes, mode));
    println!("  open {}", folder.join("index.html").display());
    Ok(())
}

fn run_venues(args: VenuesArgs) -> Result<()> {
    use crate::app::venues;
    let columns = venues::Columns { time: args.time_column, venue: args.venue_column, coin: args.coin_column, rate: args.rate_column };
    crate::config::validate_run_name(&args.name)?;
    let study = venues::study(&args.funding, &columns, &args.coin, args.lookback_days, args.switch_margin_apr, args.slippage_bps, args.common_window)?;
    let folder = venues::write(&study, &args.output_dir, &args.name, args.force)?;
    print!("{}", venues::table_text(&study));
    println!("  open {}", folder.join("index.html").display());
    Ok(())
}

fn run_sweep(args: SweepArgs) -> Result<()> {
    use crate::app::sweep::{run, spec::Sweep};
    let sweep = Sweep::load(&args.config)?;
    let options = run::SweepOptions {
        done: None,
        stop: None,
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
        let values = sweep.values(id);
        let params: Vec<String> = sweep.params.iter().zip(&values).map(|(p, v)| format!("{} = {}", p.path, crate::app::sweep::spec::value_text(v))).collect();
        println!("best by {}: configuration {id} ({value:.4}): {}", sweep.file.metric, params.join(", "));
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
    print!("{}", stress::summary_text(&run));
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
                // The config's own spelling (`clamped_interest`, `mark`), as a preset file writes it.
                let spelled = |value: serde_json::Value| value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string());
                println!(
                    "{:<14} {:<18} every {} h, formula = {}, paid_on = {}, timing = {}; perp taker {} bp",
                    preset.id,
                    preset.name,
                    f.interval_hours,
                    spelled(serde_json::to_value(f.formula)?),
                    spelled(serde_json::to_value(f.paid_on)?),
                    spelled(serde_json::to_value(f.timing)?),
                    preset.fees.perp_taker_bps
                );
            }
        }
    }
    Ok(())
}

fn run_report(args: ReportArgs) -> Result<()> {
    // A book's folder holds legs.parquet; its report is re-rendered by running it again.
    let saved_config = std::fs::read_to_string(args.run_dir.join("config.toml")).ok().and_then(|text| toml::from_str::<toml::Value>(&text).ok());
    let written = if saved_config.as_ref().is_some_and(crate::config::perp_perp::is_perp_perp) {
        // A perp-perp book's report is re-rendered by running it again, as a book's is.
        crate::app::perp_perp::rerender(&args.run_dir)?
    } else if args.run_dir.join("legs.parquet").is_file() {
        crate::app::portfolio::rerender(&args.run_dir)?
    } else {
        crate::render::rerender(&args.run_dir)?
    };
    println!("re-rendered {} files in {}", written.len(), args.run_dir.display());
    println!("  open {}", args.run_dir.join("index.html").display());
    Ok(())
}

fn run_compare(args: CompareArgs) -> Result<()> {
    // Config files are run first, each into its own new folder; folders are compared as saved.
    let mut run_dirs = Vec::with_capacity(args.run_dirs.len());
    for path in &args.run_dirs {
        if !(path.is_file() && path.extension().is_some_and(|e| e == "toml")) {
            run_dirs.push(path.clone());
            continue;
        }
        let mut config = Config::load(path)?;
        config.run.output_dir = args.output_dir.clone();
        config.run.report = false;
        let (result, folder) = backtest::run_to_folder(&config, Some(path), false).with_context(|| format!("running {}", path.display()))?;
        for warning in &result.warnings {
            eprintln!("warning: {}: {warning}", config.run.name);
        }
        run_dirs.push(folder);
    }
    let (folder, table) = crate::render::compare::write(&run_dirs, &args.output_dir, &args.name, args.force)?;
    println!("compared {} runs", run_dirs.len());
    print!("{table}");
    println!("  open {}", folder.join("index.html").display());
    Ok(())
}

fn run_backtest(args: BacktestArgs) -> Result<()> {
    if crate::config::perp_perp::file_is_perp_perp(&args.config) {
        return run_perp_perp(args);
    }
    if crate::config::book::file_is_book(&args.config) {
        return run_book(args);
    }
    let mut config = if args.set.is_empty() { Config::load(&args.config)? } else { crate::config::load_with_overrides(&args.config, &args.set)? };
    if let Some(name) = args.name {
        config.run.name = name;
    }
    if let Some(dir) = args.output_dir {
        config.run.output_dir = dir;
    }
    crate::config::validate_run_name(&config.run.name)?;
    let (result, folder) = backtest::run_to_folder(&config, Some(&args.config), args.force)?;
    for warning in &result.warnings {
        eprintln!("warning: {warning}");
    }
    print!("{}", result.metrics.summary_text());
    println!("  outputs       {}", folder.display());
    if config.run.report {
        println!("  report        {}", folder.join("index.html").display());
    }
    Ok(())
}

/// `basis backtest` on a book of perp-perp pairs (`[[pair]] kind = "perp_perp"`).
fn run_perp_perp(args: BacktestArgs) -> Result<()> {
    let mut book = if args.set.is_empty() { crate::config::perp_perp::PerpPerpBook::load(&args.config)? } else { crate::config::load_perp_perp_with_overrides(&args.config, &args.set)? };
    if let Some(name) = args.name {
        book.run.name = name;
    }
    if let Some(dir) = args.output_dir {
        book.run.output_dir = dir;
    }
    crate::config::validate_run_name(&book.run.name)?;
    let result = crate::app::perp_perp::run(&book)?;
    for warning in &result.warnings {
        eprintln!("warning: {warning}");
    }
    let folder = crate::app::perp_perp::write_outputs(&book, Some(&args.config), &result, args.force)?;
    print!("{}", crate::app::perp_perp::summary_text(&result));
    println!("  outputs       {}", folder.display());
    if book.run.report {
        println!("  report        {}", folder.join("index.html").display());
    }
    Ok(())
}

/// `basis backtest` on a portfolio config (`[[account]]` and `[[pair]]` tables).
fn run_book(args: BacktestArgs) -> Result<()> {
    let mut book = if args.set.is_empty() { crate::config::book::BookConfig::load(&args.config)? } else { crate::config::load_book_with_overrides(&args.config, &args.set)? };
    if let Some(name) = args.name {
        book.run.name = name;
    }
    if let Some(dir) = args.output_dir {
        book.run.output_dir = dir;
    }
    crate::config::validate_run_name(&book.run.name)?;
    let result = crate::app::portfolio::run(&book)?;
    for warning in &result.warnings {
        eprintln!("warning: {warning}");
    }
    let folder = crate::app::portfolio::write_outputs(&book, Some(&args.config), &result, args.force)?;
    print!("{}", crate::app::portfolio::summary_text(&result));
    println!("  outputs       {}", folder.display());
    if book.run.report {
        println!("  report        {}", folder.join("index.html").display());
    }
    Ok(())
}


fn run_fetch_binance(args: FetchBinanceArgs) -> Result<()> {
    use crate::data::fetch::{self, Kind, Outcome};
    let kinds = args.kinds.split(',').filter(|k| !k.trim().is_empty()).map(Kind::parse).collect::<Result<Vec<_>>>()?;
    if args.contracts != "quarterly" {
        crate::bail_input!("--contracts {:?}: only \"quarterly\" is supported (Binance lists quarterly and bi-quarterly delivery contracts)", args.contracts);
    }
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
    if let Some(root) = &args.catalog {
        let outcomes = crate::app::catalog::binance_into_catalog(&args.out, root, &args.symbol, &kinds, &months)?;
        print!("{}", crate::app::catalog::outcome_text(&outcomes, root));
    }
    Ok(())
}

fn run_fetch_rest(venue: &str, args: FetchRestArgs) -> Result<()> {
    let split = |text: &str| -> Vec<String> { text.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect() };
    let kinds = split(&args.kinds).iter().map(|k| crate::data::rest::SeriesKind::parse(k)).collect::<Result<Vec<_>>>()?;
    let symbols = split(&args.symbols);
    if symbols.is_empty() || kinds.is_empty() {
        crate::bail_input!("--symbols and --kinds need at least one entry each");
    }
    let job = crate::app::catalog::RestFetch {
        venue,
        symbols,
        kinds,
        window: (parse_time_ms("--start", &args.start)?, parse_time_ms("--end", &args.end)?),
        bar_ms: crate::data::rest::parse_bar(&args.bar)?,
        root: &args.out,
        base_url: args.base_url.as_deref(),
        retry: crate::data::rest::Retry { attempts: args.attempts.max(1), base_ms: args.backoff_ms, max_ms: 60_000, pace_ms: args.pace_ms },
    };
    let outcomes = crate::app::catalog::fetch_rest(&job)?;
    print!("{}", crate::app::catalog::outcome_text(&outcomes, &args.out));
    Ok(())
}

fn run_convert(args: ConvertArgs) -> Result<()> {
    // Checked before the load: an earlier conversion is not overwritten unasked.
    crate::app::convert::check_out(&args.out, args.force)?;
    let config = Config::load(&args.config)?;
    let text = std::fs::read_to_string(&args.config).map_err(|err| crate::input_error!("cannot read {}: {err}", args.config.display()))?;
    let raw: toml::Value = toml::from_str(&text).map_err(|err| crate::input_error!("config {}: {err}", args.config.display()))?;
    let data = crate::data::load(&config.data)?;
    // The same coverage rules as a backtest: an explicit window past the data is refused, and
    // what a default window would lose is said (the files are still written whole).
    let timeline = crate::data::align::align_window(&data, &crate::app::pipeline::window_of(&config)?, config.portfolio.staking_apr)?;
    for warning in data.warnings.iter().chain(&timeline.coverage_warnings) {
        eprintln!("warning: {warning}");
    }
    let base_dir = args.config.parent().unwrap_or(std::path::Path::new("."));
    let written = crate::app::convert::write(&data, &raw, base_dir, &args.out)?;
    println!("wrote {} files to {}", written.len(), args.out.display());
    println!("  run it: basis backtest --config {}", args.out.join("config.toml").display());
    Ok(())
}

fn run_cache(args: CacheArgs) -> Result<()> {
    use crate::data::dump_cache;
    let Some(root) = dump_cache::shared_dir() else {
        println!("dump cache: off (--no-cache or BASIS_NO_CACHE); long runs over kline dumps parse them into a folder of their own");
        return Ok(());
    };
    if args.clear {
        let (entries, bytes) = dump_cache::usage(&root);
        dump_cache::clear(&root)?;
        println!("dump cache {}: removed {entries} entries ({:.1} MiB)", root.display(), bytes as f64 / 1048576.0);
        return Ok(());
    }
    let (entries, bytes) = dump_cache::usage(&root);
    println!("dump cache {}: {entries} entries, {:.1} MiB (limit {:.0} MiB, BASIS_CACHE_MAX_MIB)", root.display(), bytes as f64 / 1048576.0, dump_cache::max_bytes()? as f64 / 1048576.0);
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
