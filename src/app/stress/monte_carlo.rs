//! Monte Carlo by block bootstrap: new market paths stitched from blocks of history, each block
//! keeping its spot returns, basis (perp over spot), mark over perp, intrabar mark range and
//! funding settlements together, so funding and basis regimes stay joint and last as long as a
//! block. Each path is a fresh carry backtest; the distribution of outcomes is reported.
//!
//! Path k draws its blocks from a generator seeded by (seed, k): the same seed gives the same
//! paths whatever the thread count, and a different seed different ones.

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::bail_input;
use crate::data::align::MarketTimeline;
use crate::model::Settlement;
use crate::sim::EngineParams;
use crate::measure::ledger::NoLedger;
use crate::rng::Rng;
use crate::time::MS_PER_DAY;

/// Monte Carlo settings (`[monte_carlo]` in the stress file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonteCarloSpec {
    /// Number of bootstrap paths to simulate (default 1000).
    #[serde(default = "default_paths")]
    pub paths: u64,
    /// Length of each path, years.
    #[serde(default = "default_years")]
    pub years: f64,
    /// Length of each bootstrap block, days.
    #[serde(default = "default_block_days")]
    pub block_days: f64,
    /// Seed of the block draws; path k uses (seed, k), so the same seed gives the same paths.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_paths() -> u64 {
    1000
}
fn default_years() -> f64 {
    1.0
}
fn default_block_days() -> f64 {
    7.0
}
fn default_seed() -> u64 {
    7
}

impl Default for MonteCarloSpec {
    fn default() -> Self {
        Self { paths: default_paths(), years: default_years(), block_days: default_block_days(), seed: default_seed() }
    }
}

/// One path's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PathOutcome {
    /// Simple annualised return of the path: total return / years, decimal.
    pub apr: f64,
    /// Final equity / initial capital − 1, decimal.
    pub total_return: f64,
    /// Deepest fall of equity below a previous peak, negative decimal.
    pub max_drawdown: f64,
    /// Funding received (+) or paid (−) over the path, quote currency.
    pub funding_pnl: f64,
    /// Steps at which a leg was liquidated.
    pub liquidations: usize,
    /// Smallest distance to liquidation while hedged, fraction of the mark; NaN if never hedged.
    pub min_liquidation_distance: f64,
}

/// The distribution.
#[derive(Debug, Clone, Serialize)]
pub struct MonteCarlo {
    /// The settings the paths were drawn with.
    pub spec: MonteCarloSpec,
    /// Steps in each path (`years` at the history's median step length).
    pub steps_per_path: usize,
    /// Steps in each bootstrap block (`block_days` at the history's median step length).
    pub block_steps: usize,
    /// One outcome per path, in path order.
    pub paths: Vec<PathOutcome>,
}

impl MonteCarlo {
    /// Share of paths with at least one liquidation.
    pub fn liquidation_probability(&self) -> f64 {
        self.paths.iter().filter(|p| p.liquidations > 0).count() as f64 / self.paths.len().max(1) as f64
    }

    /// The q-quantile (0..1) of a field, nearest rank.
    pub fn quantile(&self, q: f64, field: impl Fn(&PathOutcome) -> f64) -> f64 {
        let mut values: Vec<f64> = self.paths.iter().map(field).filter(|v| v.is_finite()).collect();
        if values.is_empty() {
            return f64::NAN;
        }
        values.sort_by(f64::total_cmp);
        let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
        values[rank - 1]
    }
}

/// Per-step pieces of history a block copies.
struct Source<'a> {
    history: &'a MarketTimeline,
    log_return: Vec<f64>,
    /// Settlements by source step: the index range into `history.funding` of those settled in
    /// the step's interval (the unpaid among them are passed over when copied).
    events_at: Vec<(usize, usize)>,
}

impl<'a> Source<'a> {
    fn new(history: &'a MarketTimeline) -> Self {
        let n = history.len();
        let log_return = (0..n).map(|i| if i == 0 { 0.0 } else { (history.spot[i] / history.spot[i - 1]).ln() }).collect();
        let mut events_at = vec![(0, 0); n];
        let mut k = history.first_settlement_in_window();
        for (i, slot) in events_at.iter_mut().enumerate() {
            let start = k;
            while k < history.funding.len() && history.funding[k].settle_ms <= history.ts_ms[i] {
                k += 1;
            }
            *slot = (start, k);
        }
        Source { history, log_return, events_at }
    }
}

/// Build path `k`.
fn path(source: &Source, spec: &MonteCarloSpec, steps: usize, block: usize, step_ms: i64, k: u64) -> MarketTimeline {
    let h = source.history;
    let n = h.len();
    let mut rng = Rng::new(spec.seed.wrapping_mul(0xA24B_AED4_963E_E407) ^ k.wrapping_add(1).wrapping_mul(0x9FB2_1C65_1E98_DF25));
    let mut t = MarketTimeline {
        symbol: h.symbol.clone(),
        synthetic: true,
        ts_ms: Vec::with_capacity(steps),
        spot: Vec::with_capacity(steps),
        perp: Vec::with_capacity(steps),
        mark: Vec::with_capacity(steps),
        mark_high: Vec::with_capacity(steps),
        mark_low: Vec::with_capacity(steps),
        staking_apr: Vec::with_capacity(steps),
        spot_stale: vec![0; steps],
        ..Default::default()
    };
    let mut spot = h.spot[0];
    let mut j = 0;
    while j < steps {
        // Blocks start at 1 so each copied step has a return from its predecessor.
        let start = 1 + (rng.next_u64() % (n - block) as u64) as usize;
        for i in start..(start + block).min(n) {
            if j >= steps {
                break;
            }
            if j > 0 {
                spot *= source.log_return[i].exp();
            }
            let basis = h.perp[i] / h.spot[i];
            let perp = spot * basis;
            let mark = perp * h.mark_prices()[i] / h.perp[i];
            t.ts_ms.push(h.ts_ms[0] + j as i64 * step_ms);
            t.spot.push(spot);
            t.perp.push(perp);
            t.mark.push(mark);
            t.mark_high.push(mark * h.mark_high[i] / h.mark_prices()[i]);
            t.mark_low.push(mark * h.mark_low[i] / h.mark_prices()[i]);
            t.staking_apr.push(h.staking_apr_at(i));
            if j > 0 {
                let (a, b) = source.events_at[i];
                for e in h.funding[a..b].iter().filter(|e| e.is_paid()) {
                    // Settled at the copied step's close, valued at its mark.
                    t.funding.settlements_mut().push(Settlement { settle_ms: t.ts_ms[j], rate: e.rate, interval_hours: e.interval_hours, price: mark });
                }
            }
            j += 1;
        }
    }
    t
}

/// Run every path in parallel.
pub fn run(history: &MarketTimeline, params: &EngineParams, spec: &MonteCarloSpec, progress: bool) -> Result<MonteCarlo> {
    if history.len() < 3 {
        bail_input!("monte_carlo: the history has {} steps; it needs more than a block", history.len());
    }
    let step_ms = {
        let mut gaps: Vec<i64> = history.ts_ms.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.sort_unstable();
        gaps[gaps.len() / 2].max(1)
    };
    let steps = ((spec.years * 365.0 * MS_PER_DAY as f64) / step_ms as f64).round() as usize;
    let block = ((spec.block_days * MS_PER_DAY as f64) / step_ms as f64).round().max(1.0) as usize;
    if !(spec.paths >= 1 && steps >= 2 && block < history.len() - 1) {
        bail_input!(
            "monte_carlo: need paths >= 1, years long enough for 2 steps, and blocks ({} steps) shorter than the history ({} steps)",
            block,
            history.len()
        );
    }
    let source = Source::new(history);
    let bar = if progress { ProgressBar::with_draw_target(Some(spec.paths), ProgressDrawTarget::stderr()) } else { ProgressBar::hidden() };
    bar.set_style(ProgressStyle::with_template("{spinner} Monte Carlo {wide_bar} {pos}/{len} paths ({per_sec}, ETA {eta})").map_err(|e| anyhow::anyhow!("{e}"))?);
    let paths: Vec<PathOutcome> = (0..spec.paths)
        .into_par_iter()
        .map(|k| {
            let timeline = path(&source, spec, steps, block, step_ms, k);
            let (_, m) = crate::app::pipeline::simulate(&timeline, params, &mut NoLedger);
            bar.inc(1);
            PathOutcome {
                apr: m.apr,
                total_return: m.total_return,
                max_drawdown: m.max_drawdown,
                funding_pnl: m.funding_pnl,
                liquidations: m.liquidations,
                min_liquidation_distance: m.min_liquidation_distance.unwrap_or(f64::NAN),
            }
        })
        .collect();
    bar.finish_and_clear();
    Ok(MonteCarlo { spec: spec.clone(), steps_per_path: steps, block_steps: block, paths })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_keep_history_pieces_together() {
        let n = 200;
        let history = MarketTimeline {
            symbol: "T".into(),
            ts_ms: (0..n as i64).map(|i| i * 3_600_000).collect(),
            spot: (0..n).map(|i| 100.0 + i as f64).collect(),
            perp: (0..n).map(|i| (100.0 + i as f64) * 1.001).collect(),
            mark: (0..n).map(|i| (100.0 + i as f64) * 1.001).collect(),
            mark_high: (0..n).map(|i| (100.0 + i as f64) * 1.002).collect(),
            mark_low: (0..n).map(|i| (100.0 + i as f64) * 1.0).collect(),
            staking_apr: vec![0.0; n],
            spot_stale: vec![0; n],
            funding: (1..n).step_by(8).map(|i| Settlement { settle_ms: i as i64 * 3_600_000, rate: 0.0001, interval_hours: 8.0, price: 1.0 }).collect(),
            ..Default::default()
        };
        let source = Source::new(&history);
        let spec = MonteCarloSpec { seed: 3, ..Default::default() };
        let t = path(&source, &spec, 100, 24, 3_600_000, 5);
        assert_eq!(t.len(), 100);
        // Basis and mark range are copied; spot compounds the copied returns.
        assert!(t.perp.iter().zip(&t.spot).all(|(p, s)| (p / s - 1.001).abs() < 1e-12));
        assert!(t.mark_high.iter().zip(&t.mark).all(|(h, m)| h >= m));
        // 24-step blocks of a settlement every 8 steps: about 3 per block.
        assert!((9..=15).contains(&t.funding.len()), "{}", t.funding.len());
        assert_eq!(path(&source, &spec, 100, 24, 3_600_000, 5).spot, t.spot, "deterministic");
        assert_ne!(path(&source, &spec, 100, 24, 3_600_000, 6).spot, t.spot);
    }
}
