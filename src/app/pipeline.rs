//! The one pipeline every command runs: load → align ([`prepare`], [`align_for`]: the window,
//! coverage, counterfactual funding, the dated leg, cash and borrow rates, and the warnings) →
//! simulate → measure ([`simulate`], with a rule strategy's decisions from
//! [`engine_params_for`]). Reporting and writing are each command's own.

use std::path::PathBuf;

use anyhow::Result;

use crate::config::{parse_time_ms, Config, FundingRatesFrom, InstrumentChoice};
use crate::data::{self, align::Window, MarketData};
use crate::venue::funding::{counterfactual_for, premium_for};
use crate::measure::metrics::{self, Metrics};
use crate::model::{MarketTimeline, Recorder};
use crate::sim::{self, EngineParams, RunSummary};

/// The engine parameters of `config` over `timeline`: [`crate::config::engine_params`], with a
/// `rules` or `target` strategy's decisions computed on the timeline's clock. Warnings the
/// signals raise (a proxy premium, a user series that ends early) go to `warnings`, the user
/// series' files to `files`.
pub fn engine_params_for(config: &Config, timeline: &MarketTimeline, warnings: &mut Vec<String>, files: &mut Vec<std::path::PathBuf>) -> Result<EngineParams> {
    engine_params_in_book(config, timeline, &[], warnings, files)
}

/// [`engine_params_for`] for a book's pair: `peers` are the same coin's other pairs (other
/// venues) on the book's clock, which `funding_spread_apr` compares with.
pub fn engine_params_in_book(config: &Config, timeline: &MarketTimeline, peers: &[(String, &MarketTimeline)], warnings: &mut Vec<String>, files: &mut Vec<std::path::PathBuf>) -> Result<EngineParams> {
    engine_params_with_costs(config, timeline, peers, None, warnings, files)
}

/// [`engine_params_in_book`] with the market cost series already built for this config's
/// timeline and cost model (`Some`: a sweep's cache, see [`market_costs_key`]); `None` builds
/// them.
pub fn engine_params_with_costs(
    config: &Config,
    timeline: &MarketTimeline,
    peers: &[(String, &MarketTimeline)],
    market_costs: Option<Option<std::sync::Arc<crate::model::MarketCosts>>>,
    warnings: &mut Vec<String>,
    files: &mut Vec<std::path::PathBuf>,
) -> Result<EngineParams> {
    let mut params = crate::config::engine_params(config);
    if let Some(source) = &config.data.borrow_available {
        let series = data::series::load(source, "data.borrow_available", &|v| (v < 0.0).then(|| "is negative (a quantity of the coin that can be borrowed)".to_string()), files)?;
        let (on_clock, warning) = series.on_clock(&timeline.ts_ms)?;
        warnings.extend(warning);
        params.borrow_available = Some(std::sync::Arc::new(on_clock));
    }
    params.market_costs = match market_costs {
        Some(built) => built,
        None => market_costs_for(config, timeline, warnings, files)?,
    };
    if let Some(share) = config.costs.max_participation {
        warnings.extend(volume_gaps(timeline, share)?);
    }
    if let Some(compiled) = crate::signal::rules::compile_with_peers(config, timeline, peers, &params.costs, params.hedge_ratio)? {
        warnings.extend(compiled.warnings);
        files.extend(compiled.files);
        params.rules = Some(std::sync::Arc::new(compiled.series));
    }
    Ok(params)
}

/// What the market cost series of a config depend on besides its timeline: the models and their
/// settings, and the order books' sources. Two configs with the same key on the same timeline
/// share one series (a sweep builds it once).
pub fn market_costs_key(config: &Config) -> String {
    let c = &config.costs;
    format!(
        "{:?}|{:?}|{:?}|{}|{}|{}|{:?}|{:?}",
        c.spot_cost_model(),
        c.perp_cost_model(),
        c.spread_estimator,
        c.spread_window_bars,
        c.impact_k.to_bits(),
        c.impact_window_days.to_bits(),
        config.data.spot_book,
        config.data.perp_book
    )
}

/// The per-step costs `config`'s market cost models give on `timeline` (None for fixed bps):
/// the bars' estimates, and the order books read from their files (added to `files`).
pub fn market_costs_for(config: &Config, timeline: &MarketTimeline, warnings: &mut Vec<String>, files: &mut Vec<PathBuf>) -> Result<Option<std::sync::Arc<crate::model::MarketCosts>>> {
    if !config.costs.market_dependent() {
        return Ok(None);
    }
    let (mut costs, notes) = sim::market_costs::estimate(timeline, &config.costs);
    warnings.extend(notes);
    for (leg, model, source) in [("spot", config.costs.spot_cost_model(), &config.data.spot_book), ("perp", config.costs.perp_cost_model(), &config.data.perp_book)] {
        if model != crate::model::CostModel::Orderbook {
            continue;
        }
        let Some(source) = source else { crate::bail_input!("costs: the {leg} leg's model is \"orderbook\" but [data.{leg}_book] is not set: name a file of L2 snapshots (Tardis book_snapshot layout)") };
        let label = format!("data.{leg}_book");
        let book = data::book::load(source, &label, files)?;
        let (series, notes) = book.on_clock(&timeline.ts_ms, source.max_age_ms);
        warnings.extend(notes);
        if leg == "spot" {
            costs.spot_book = series;
        } else {
            costs.perp_book = series;
        }
    }
    Ok(Some(std::sync::Arc::new(costs)))
}

/// Warnings from a run's fills: orders larger than the book's visible levels (priced at the
/// deepest level beyond them, which understates their cost).
pub fn fill_warnings(params: &EngineParams, summary: &RunSummary) -> Vec<String> {
    let Some(market) = params.market_costs.as_deref() else { return Vec::new() };
    let mut out = Vec::new();
    for (leg, book) in [("spot", &market.spot_book), ("perp", &market.perp_book)] {
        if book.at_step.is_empty() {
            continue;
        }
        let deeper = summary.trades.iter().filter(|t| t.leg == leg && book.at(t.step).is_some_and(|d| t.qty.abs() > d.visible(t.qty))).count();
        if deeper > 0 {
            out.push(format!("costs: data.{leg}_book: {deeper} {leg} fill(s) took more than the snapshot's visible levels held: the part beyond them is priced at the deepest level, which understates its cost (cap orders with costs.max_participation, or use a deeper book)"));
        }
    }
    out
}

/// Refuse a participation cap on a leg whose bars carry no volume at all (nothing could ever
/// fill), and warn of the steps where a leg's volume is unknown (no fill there).
pub(crate) fn volume_gaps(timeline: &MarketTimeline, share: f64) -> Result<Option<String>> {
    let mut gaps = Vec::new();
    for (leg, volume) in [("spot", &timeline.spot_volume), ("perp", &timeline.perp_volume)] {
        let unknown = volume.iter().filter(|v| !v.is_finite()).count();
        if !volume.is_empty() && unknown == volume.len() {
            crate::bail_input!("costs.max_participation = {share} caps fills at a share of each bar's volume, but the {leg} bars carry no volume: give [data.{leg}] a file with a volume column, or remove max_participation");
        }
        if unknown > 0 {
            gaps.push(format!("{unknown} {leg} steps"));
        }
    }
    Ok((!gaps.is_empty()).then(|| format!("costs.max_participation: the bar's volume is unknown at {} (a stale or missing bar): no fill of that leg there, the order waits for the next bar with volume", gaps.join(" and "))))
}

/// Count the window's settlements at the venue's cap and floor for `config`'s symbol into the
/// metrics' regimes (the engine does not know the venue's limits).
pub fn count_limits(metrics: &mut Metrics, summary: &RunSummary, config: &Config, symbol: &str) {
    if let Some(regimes) = metrics.regimes.as_mut() {
        regimes.count_limits(&summary.window_settlements, &|at, hours| config.venue.limits_at(symbol, at, hours));
    }
}

/// Refuse a `rules` or `target` strategy in a command that does not run one yet (`what`).
pub fn refuse_rules(config: &Config, what: &str) -> Result<()> {
    use crate::sim::policy::EntryMode;
    if matches!(config.strategy.mode, EntryMode::Rules | EntryMode::Target) {
        crate::bail_input!("{what} does not run strategy.mode = \"rules\" or \"target\" yet (its decisions are computed on one price path); use `basis backtest` or `basis sweep`, or mode = \"funding_threshold\"");
    }
    Ok(())
}

/// Simulate the carry over `timeline`, sending each row to `recorder`, and measure it.
pub fn simulate<R: Recorder>(timeline: &MarketTimeline, params: &EngineParams, recorder: &mut R) -> (RunSummary, Metrics) {
    let mut summary = sim::run(timeline, params, recorder);
    metrics::attach_cash_rate(&mut summary, timeline);
    let metrics = measure(&summary, timeline);
    (summary, metrics)
}

/// The metrics of a run's summary, over the timeline it ran on (a chunked run's header will do:
/// only its symbol and origin are read).
pub fn measure(summary: &RunSummary, timeline: &MarketTimeline) -> Metrics {
    metrics::compute(summary, &timeline.symbol, timeline.synthetic)
}

/// Load, align and prepare the market a config names.
pub fn prepare(config: &Config) -> Result<(MarketTimeline, Vec<PathBuf>, Vec<String>)> {
    let mut market = data::load(&config.data)?;
    // Worth it for long inputs only: trimming walks the whole heap (milliseconds), which a
    // small run would notice and a process calling this in a loop would pay every time.
    let long = market.perp.ts_ms.len() + market.spot.ts_ms.len() >= 1 << 20;
    if long {
        crate::data::return_freed_memory();
    }
    // Done with the perp bars once aligned (unless a counterfactual realigns): moved, not copied.
    let timeline = if counterfactual(config) {
        data::align::align_window(&market, &window_of(config)?, config.portfolio.staking_apr)?
    } else {
        data::align::align_window_taking_bars(&mut market, &window_of(config)?, config.portfolio.staking_apr)?
    };
    let (timeline, warnings) = finish_alignment(timeline, &market, config)?;
    if long {
        // And what the aligner let go (the spot bars, its indices) before the loop starts.
        crate::data::return_freed_memory();
    }
    Ok((timeline, market.files, warnings))
}

/// Whether the run replaces the files' funding rates with a venue preset's rules.
pub(crate) fn counterfactual(config: &Config) -> bool {
    config.venue.funding == FundingRatesFrom::Counterfactual && config.venue.effective_preset().is_some()
}

/// Align loaded market data to a config's window, with counterfactual funding when the config
/// asks for it, and the warnings a run reports (the loader's, and stale-spot findings).
pub fn align_for(market: &MarketData, config: &Config) -> Result<(MarketTimeline, Vec<String>)> {
    let timeline = data::align::align_window(market, &window_of(config)?, config.portfolio.staking_apr)?;
    finish_alignment(timeline, market, config)
}

/// The rest of [`align_for`] once the market is on the clock: counterfactual funding, the dated
/// leg, the cash and borrow rates, and the warnings.
fn finish_alignment(mut timeline: MarketTimeline, market: &MarketData, config: &Config) -> Result<(MarketTimeline, Vec<String>)> {
    let window = window_of(config)?;
    let mut warnings = market.warnings.clone();
    warnings.extend(oracle_warning(config, market.index.is_some()));
    if let (FundingRatesFrom::Counterfactual, Some(preset)) = (config.venue.funding, config.venue.effective_preset()) {
        // The preset's rules applied to the premium known at each step, in place of the files' rates.
        let (premium, premium_source) = premium_for(config.venue.premium_index.as_deref(), config.venue.premium, &timeline, config.venue.premium_debias, config.venue.premium_debias_days)?;
        let settled = counterfactual_for(&preset, &timeline, &premium);
        warnings.push(format!(
            "funding: {} counterfactual settlements under {} ({} at the cap or floor), replacing the {} settlements in the data; {}",
            settled.len(),
            preset.name,
            settled.at_limit_count(),
            market.funding.len(),
            premium_source
        ));
        let mut swapped = MarketData { funding: settled.funding, funding_derived: true, ..market.clone() };
        timeline = data::align::align_window_taking_bars(&mut swapped, &window, config.portfolio.staking_apr)?;
    }
    if config.strategy.instrument != InstrumentChoice::Perp {
        timeline = with_dated_leg(timeline, market, config, &mut warnings)?;
    }
    if let Some(rates) = &market.cash_rate {
        timeline.cash_apr = rates.on_clock(&timeline.ts_ms)?;
        warnings.extend(timeline.ts_ms.last().and_then(|last| rates.end_warning(*last)));
    }
    if let Some(rates) = &market.borrow_rate {
        timeline.borrow_apr = rates.on_clock(&timeline.ts_ms)?;
        warnings.extend(timeline.ts_ms.last().and_then(|last| rates.end_warning(*last)));
    }
    let steps = timeline.len();
    alignment_warnings(&timeline, steps, config, &mut warnings);
    Ok((timeline, warnings))
}

/// The warnings alignment adds to the loader's: what the window lost to coverage, stand-in
/// prices, stale-spot spans, and a window without settlements. `timeline` may be the run's
/// header alone (a chunked run), so the steps are given.
pub(crate) fn alignment_warnings(timeline: &MarketTimeline, steps: usize, config: &Config, warnings: &mut Vec<String>) {
    warnings.extend(timeline.coverage_warnings.iter().cloned());
    if !timeline.stale_spans.is_empty() {
        let stale_steps: usize = timeline.stale_spans.iter().map(|s| s.steps).sum();
        let shown: Vec<String> = timeline.stale_spans.iter().take(4).map(|s| format!("{} ({})", s.from, s.reasons)).collect();
        warnings.push(format!(
            "spot: {} stale-spot span(s), {stale_steps} of {} steps ({} spot bars missing), {}: {}{}; the spans are listed in manifest.json and the report",
            timeline.stale_spans.len(),
            steps,
            timeline.stale_spot_steps,
            if config.data.mask_stale_spot { "masked from decisions that need spot (liquidations are still checked)" } else { "NOT masked (data.mask_stale_spot = false)" },
            shown.join(", "),
            if timeline.stale_spans.len() > 4 { ", ..." } else { "" }
        ));
    }
    if timeline.funding.paid().next().is_none() {
        warnings.push("funding: no settlement falls inside the simulated window".into());
    }
}

/// The oracle warning: funding paid on an index price that is not given.
pub(crate) fn oracle_warning(config: &Config, index_given: bool) -> Option<String> {
    if index_given || !config.venue.loaded.as_ref().is_some_and(|p| p.funding.paid_on == crate::venue::PaidOn::Oracle) {
        return None;
    }
    Some(format!(
        "funding: {} pays funding on the oracle (index) price, but [data.index] is not given; the mark stands in for it",
        config.venue.loaded.as_ref().map(|p| p.name.as_str()).unwrap_or("the venue")
    ))
}

/// The timeline with its derivative leg on dated contracts (`instrument = "dated"`) or on
/// whichever of the perp and the dated contract pays more (`"best"`): the window clipped to the
/// steps a dated contract covers (dated), the schedule of contracts, and the switches.
fn with_dated_leg(mut timeline: MarketTimeline, market: &MarketData, config: &Config, warnings: &mut Vec<String>) -> Result<MarketTimeline> {
    use crate::sim::dated::{self as dated_leg, RollRules};
    let s = &config.strategy;
    let rules = RollRules { min_days_to_expiry: s.min_days_to_expiry, roll_days_before: s.roll_days_before };
    // The settlement stand-in warning of the contracts on the final clock (recomputed if clipped).
    let mut settlement_warnings = Vec::new();
    let mut contracts = data::dated::on_clock(&market.dated, &market.dated_mark, &timeline.ts_ms, &timeline.spot, market.index.as_ref(), &mut settlement_warnings);
    let mut front = dated_leg::front_schedule(&contracts, &timeline.ts_ms, rules);
    if s.instrument == InstrumentChoice::Dated {
        let Some(first) = front.iter().position(Option::is_some) else {
            crate::bail_input!(
                "data.dated: no contract with at least {} days to expiry (strategy.min_days_to_expiry) trades between {} and {}; the contracts are {}",
                rules.min_days_to_expiry.max(rules.roll_days_before),
                crate::time::format_ms(timeline.ts_ms.first().copied().unwrap_or(0)),
                crate::time::format_ms(timeline.ts_ms.last().copied().unwrap_or(0)),
                market.dated.iter().map(|c| format!("{} (expiry {})", c.name, crate::time::format_ms(c.expiry_ms))).collect::<Vec<_>>().join(", ")
            );
        };
        // The run ends at the delivery of the last contract with no successor.
        let last = front[first..].iter().position(Option::is_none).map_or(front.len() - 1, |k| first + k);
        if first > 0 || last + 1 < front.len() {
            warnings.push(format!(
                "dated: the window is clipped to {} .. {}, the span a dated contract with at least {} days to expiry covers",
                crate::time::format_ms(timeline.ts_ms[first]),
                crate::time::format_ms(timeline.ts_ms[last]),
                rules.min_days_to_expiry.max(rules.roll_days_before)
            ));
            let grid = timeline.ts_ms[first..=last].to_vec();
            timeline = data::align::restrict_to_grid(&timeline, &grid);
            settlement_warnings.clear();
            contracts = data::dated::on_clock(&market.dated, &market.dated_mark, &timeline.ts_ms, &timeline.spot, market.index.as_ref(), &mut settlement_warnings);
            front = dated_leg::front_schedule(&contracts, &timeline.ts_ms, rules);
        }
    }
    warnings.extend(settlement_warnings);
    let unmarked: Vec<&str> = (0..contracts.len()).filter(|&c| !contracts.has_marks(c) && front.contains(&Some(c))).map(|c| contracts.names[c].as_str()).collect();
    if !unmarked.is_empty() {
        warnings.push(format!(
            "dated: no mark prices for {} ([data.dated_mark]); their liquidation and unrealised PnL use the last price (Binance publishes markPriceKlines per delivery contract)",
            unmarked.join(", ")
        ));
    }
    let choice = match s.instrument {
        InstrumentChoice::Best => {
            let params = crate::config::engine_params(config);
            let signal = params.entry.signal(&timeline.funding, &timeline.ts_ms);
            let switch_cost = 2.0 * (params.costs.perp_fee + params.costs.perp_slippage);
            let masked: Vec<bool> = if config.data.mask_stale_spot { timeline.spot_stale.iter().map(|f| *f != 0).collect() } else { Vec::new() };
            dated_leg::best_schedule(&front, &contracts, &timeline, &signal, switch_cost, s.switch_horizon_days, &masked)
        }
        _ => dated_leg::dated_schedule(&front),
    };
    let stale = dated_leg::apply(&mut timeline, &contracts, &choice);
    if stale > 0 {
        warnings.push(format!("dated: {stale} step(s) had no bar of the contract held; its last close stood in"));
    }
    if let Some(path) = &timeline.derivative {
        use crate::model::{Instrument, SwitchReason};
        let count = |reason| path.switches.iter().filter(|w| w.reason == reason).count();
        let used: std::collections::BTreeSet<usize> = choice.iter().filter_map(|c| if let Instrument::Dated(k) = c { Some(*k) } else { None }).collect();
        warnings.push(format!(
            "dated: {} contract(s) used, {} roll(s), {} delivery(ies), {} switch(es) between the perp and the dated contract",
            used.len(),
            count(SwitchReason::Roll),
            count(SwitchReason::Delivery),
            count(SwitchReason::Switch)
        ));
    }
    Ok(timeline)
}

/// The window a config asks for: its explicit start and end, whether a partly covered window is
/// allowed, and whether funding is valued at the index (oracle-paid venue with an index series).
pub fn window_of(config: &Config) -> Result<Window> {
    let start_ms = config.strategy.start.as_deref().map(|s| parse_time_ms("strategy.start", s)).transpose()?;
    let end_ms = config.strategy.end.as_deref().map(|s| parse_time_ms("strategy.end", s)).transpose()?;
    if let (Some(start), Some(end)) = (start_ms, end_ms) {
        if end <= start {
            crate::bail_input!("strategy.end ({}) is not after strategy.start ({}): the window is empty; swap them or move one", crate::time::format_ms(end), crate::time::format_ms(start));
        }
    }
    let oracle = config.venue.loaded.as_ref().is_some_and(|p| p.funding.paid_on == crate::venue::PaidOn::Oracle);
    Ok(Window { start_ms, end_ms, allow_partial_coverage: config.data.allow_partial_coverage, funding_at_index: oracle && config.data.index.is_some(), bar_detail: config.costs.needs_bar_detail() })
}
