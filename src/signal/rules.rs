//! A `rules` or `target` strategy turned into the engine's per-step decisions
//! ([`RuleSeries`]) before the loop: every expression is evaluated a column at a time, and only
//! what depends on the position (holding time, cooldown, liquidations) is left to the engine.

use std::path::PathBuf;

use anyhow::Result;

use super::expr::parse;
use super::Signals;
use crate::config::Config;
use crate::input_error;
use crate::model::MarketTimeline;
use crate::sim::book::Costs;
use crate::sim::policy::{Direction, EntryMode, RuleSeries};

/// What compiling found: the decisions, warnings to show, and the user files read.
pub struct Compiled {
    /// The decisions, one per step of the timeline.
    pub series: RuleSeries,
    /// Proxies used and series that end early.
    pub warnings: Vec<String>,
    /// User series files read (for the manifest).
    pub files: Vec<PathBuf>,
}

/// The round trip's cost as a share of the spot notional: both legs' fees and slippage, in and
/// out (the perp's scaled by the hedge ratio).
pub fn round_trip_cost(costs: &Costs, hedge_ratio: f64) -> f64 {
    2.0 * ((costs.spot_fee + costs.spot_slippage) + hedge_ratio * (costs.perp_fee + costs.perp_slippage))
}

/// The decisions of `config`'s strategy over `timeline`; `None` for `always_on` and
/// `funding_threshold` (the engine decides those itself).
pub fn compile(config: &Config, timeline: &MarketTimeline, costs: &Costs, hedge_ratio: f64) -> Result<Option<Compiled>> {
    compile_with_peers(config, timeline, &[], costs, hedge_ratio)
}

/// [`compile`] for a book's pair, with the same coin's other pairs for `funding_spread_apr`.
pub fn compile_with_peers(config: &Config, timeline: &MarketTimeline, peers: &[(String, &MarketTimeline)], costs: &Costs, hedge_ratio: f64) -> Result<Option<Compiled>> {
    let s = &config.strategy;
    if !matches!(s.mode, EntryMode::Rules | EntryMode::Target) {
        return Ok(None);
    }
    let mut signals = Signals::new(config, timeline)?.with_peers(peers.to_vec());
    let n = timeline.len();
    let hours = |h: f64| (h * 3_600_000.0).round() as i64;
    let series = if s.mode == EntryMode::Target {
        let target = signals.column("target")?;
        RuleSeries {
            enter: target.iter().map(|&v| v.is_finite() && v != 0.0).collect(),
            side: target.iter().map(|&v| sign(v)).collect(),
            exit_long: target.iter().map(|&v| v <= 0.0).collect(),
            exit_reverse: target.iter().map(|&v| v >= 0.0).collect(),
            size: target.iter().map(|&v| v.abs()).collect(),
            resize: true,
            min_hold_ms: hours(s.min_hold_hours),
            cooldown_ms: hours(s.cooldown_hours),
        }
    } else {
        let setting = |what: &str, src: &Option<String>| -> Result<Option<super::expr::Expr>> {
            src.as_deref().map(|text| parse(text).map_err(|e| input_error!("strategy.{what} = {text:?}: {e}"))).transpose()
        };
        let enter_expr = setting("enter", &s.enter)?.ok_or_else(|| input_error!("strategy.mode = \"rules\" needs strategy.enter"))?;
        let exit_expr = setting("exit", &s.exit)?.ok_or_else(|| input_error!("strategy.mode = \"rules\" needs strategy.exit"))?;
        let enter = signals.eval(&enter_expr, "strategy.enter", f64::NAN)?;
        // `held` makes the exit rule depend on the carry held: evaluated once for each.
        let (exit_long, exit_reverse) = if exit_expr.mentions("held") {
            (signals.eval(&exit_expr, "strategy.exit", 1.0)?, signals.eval(&exit_expr, "strategy.exit", -1.0)?)
        } else {
            let exit = signals.eval(&exit_expr, "strategy.exit", f64::NAN)?;
            (exit.clone(), exit)
        };
        let side: Vec<i8> = match setting("side", &s.side)? {
            Some(e) => signals.eval(&e, "strategy.side", f64::NAN)?.into_iter().map(sign).collect(),
            None => vec![if s.direction == Direction::Reverse { -1 } else { 1 }; n],
        };
        let size: Vec<f64> = match setting("size", &s.size)? {
            Some(e) => signals.eval(&e, "strategy.size", f64::NAN)?.into_iter().map(|v| if v.is_nan() { f64::NAN } else { v.clamp(0.0, 1.0) }).collect(),
            None => vec![1.0; n],
        };
        let hurdle: Option<Vec<f64>> = match s.hurdle_days {
            Some(days) => {
                let text = s.hurdle_apr.clone().unwrap_or_else(|| "funding_trailing_apr".into());
                let e = parse(&text).map_err(|e| input_error!("strategy.hurdle_apr = {text:?}: {e}"))?;
                let apr = signals.eval(&e, "strategy.hurdle_apr", f64::NAN)?;
                let cost = round_trip_cost(costs, hedge_ratio);
                // The carry the side earns over the horizon on the perp notional, against the
                // round trip; unknown expectations pass nothing.
                Some(apr.iter().zip(&side).map(|(a, &sd)| if hedge_ratio * sd as f64 * a * days / 365.0 > cost { 1.0 } else { 0.0 }).collect())
            }
            None => None,
        };
        let known_true = |v: f64| v.is_finite() && v != 0.0;
        RuleSeries {
            enter: (0..n).map(|i| known_true(enter[i]) && side[i] != 0 && size[i] > 0.0 && hurdle.as_ref().is_none_or(|h| h[i] == 1.0)).collect(),
            exit_long: (0..n).map(|i| known_true(exit_long[i]) || size[i] == 0.0).collect(),
            exit_reverse: (0..n).map(|i| known_true(exit_reverse[i]) || size[i] == 0.0).collect(),
            side,
            size,
            resize: s.size.is_some(),
            min_hold_ms: hours(s.min_hold_hours),
            cooldown_ms: hours(s.cooldown_hours),
        }
    };
    if s.mode == EntryMode::Target && s.direction != Direction::Both {
        let wrong = series.side.iter().position(|&sd| (sd < 0 && s.direction == Direction::Long) || (sd > 0 && s.direction == Direction::Reverse));
        if let Some(i) = wrong {
            return Err(input_error!(
                "strategy.target asks for the {} carry at {} but strategy.direction = \"{}\"; set direction = \"both\" (the target's sign then chooses)",
                if series.side[i] < 0 { "reverse" } else { "long" },
                crate::time::format_ms(timeline.ts_ms[i]),
                if s.direction == Direction::Long { "long" } else { "reverse" }
            ));
        }
    }
    Ok(Some(Compiled { series, warnings: signals.warnings, files: signals.files }))
}

fn sign(v: f64) -> i8 {
    if v > 0.0 {
        1
    } else if v < 0.0 {
        -1
    } else {
        0
    }
}
