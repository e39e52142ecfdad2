//! Crowding and capacity: how net APR falls as the book grows.
//!
//! Two effects, both explicit and configurable:
//! - **Funding compression.** Capital crowding into the short-perp side pushes the premium
//!   down. Positive settlements are scaled by max(0, 1 − elasticity × notional / open
//!   interest); negative ones are left as they are (the crowd does not make them worse).
//! - **Market impact.** Every fill pays the square-root law's impact of its own size, the
//!   engine's `sqrt_impact` cost model (`sim::market_costs`): `impact_coefficient` × σ_daily ×
//!   √(q / ADV), σ and ADV trailing over 30 days, point in time (the bars before the window
//!   included), on top of the configured slippage.
//!
//! A bigger book's perp also sits in higher maintenance tiers, so the same rallies bring it to
//! its top-up distance sooner: its top-ups come earlier and shrink the carry (each point reports
//! them). That path difference, not the costs, can move net APR up or down between sizes.
//!
//! Open interest is a number you give (`open_interest_usd`) or the mean of a venue and coin in
//! an open-interest table (`timestamp, venue, coin, oi_usd`, as in
//! `../shared/data/multivenue-hourly/open_interest.parquet`).

use std::path::Path;

use anyhow::Result;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::align::MarketTimeline;
use crate::data::MarketData;
use crate::sim::EngineParams;
use crate::measure::ledger::NoLedger;
use crate::time::MS_PER_DAY;
use crate::bail_input;

/// `[capacity]` in the stress file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CapacitySpec {
    /// Book sizes (initial capital, quote currency) to run; default 10^5 .. 10^9 in half decades.
    #[serde(default)]
    pub aum: Vec<f64>,
    /// Where the perp's open interest comes from (the keys `open_interest_usd`, or
    /// `open_interest_file` with `venue` and `coin`), as a book pair's `capacity` takes it.
    #[serde(flatten)]
    pub open_interest: crate::config::book::OpenInterestSource,
    /// Funding compression per unit of notional / open interest.
    #[serde(default = "default_one")]
    pub elasticity: f64,
    /// Y in Y × σ × sqrt(Q / ADV).
    #[serde(default = "default_one")]
    pub impact_coefficient: f64,
    /// Keys the table has beyond these: refused when the file is read.
    #[serde(flatten, skip_serializing)]
    pub unknown: std::collections::BTreeMap<String, toml::Value>,
}

fn default_one() -> f64 {
    1.0
}

/// One book size's outcome.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CapacityPoint {
    /// Book size (initial capital) of this run, quote currency.
    pub aum: f64,
    /// Perp notional the engine holds at this book size, quote currency.
    pub perp_notional: f64,
    /// Notional / open interest.
    pub share_of_open_interest: f64,
    /// Factor on positive funding.
    pub funding_factor: f64,
    /// The entry's impact on the perp leg (its coefficient at the first step × √ quantity),
    /// bps; 0 where the bars before the window were too few to estimate it.
    pub impact_bps: f64,
    /// Slippage paid over the run (fixed and impact), quote currency.
    pub slippage_paid: f64,
    /// Margin top-ups over the run: a bigger book's perp reaches higher maintenance tiers and
    /// is topped up (and the carry shrunk) sooner.
    pub margin_top_ups: usize,
    /// Simple annualised return of the run after compression and impact, decimal.
    pub net_apr: f64,
    /// Funding APR over the window after compression, decimal (see `Metrics::funding_apr_over_window`).
    pub funding_apr_over_window: f64,
    /// Deepest fall of equity below a previous peak, negative decimal.
    pub max_drawdown: f64,
    /// Steps at which a leg was liquidated.
    pub liquidations: usize,
}

/// The curve and the inputs it used.
#[derive(Debug, Clone, Serialize)]
pub struct Capacity {
    /// Open interest the compression used, quote currency.
    pub open_interest_usd: f64,
    /// Where the open interest came from: "given", or the table, venue and coin averaged.
    pub open_interest_source: String,
    /// σ of daily spot log returns over the window, decimal (not annualised).
    pub daily_volatility: f64,
    /// Mean perp value traded per day in the window (volume × close), quote currency.
    pub average_daily_value_traded: f64,
    /// Funding compression per unit of notional / open interest, as configured.
    pub elasticity: f64,
    /// Y in the impact law Y × σ × sqrt(Q / ADV), as configured.
    pub impact_coefficient: f64,
    /// One outcome per book size, in the order of `aum`.
    pub points: Vec<CapacityPoint>,
}


/// σ of daily spot log returns (closes at each UTC day's last step).
fn daily_volatility(t: &MarketTimeline) -> f64 {
    let mut closes = Vec::new();
    for i in 0..t.len() {
        let day = t.ts_ms[i].div_euclid(MS_PER_DAY);
        if i + 1 == t.len() || t.ts_ms[i + 1].div_euclid(MS_PER_DAY) != day {
            closes.push(t.spot[i]);
        }
    }
    let r: Vec<f64> = closes.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
    if r.len() < 2 {
        return f64::NAN;
    }
    let mean = r.iter().sum::<f64>() / r.len() as f64;
    (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (r.len() - 1) as f64).sqrt()
}

/// Average daily value traded on the perp inside the run's window (volume × close).
fn average_daily_value(data: &MarketData, t: &MarketTimeline) -> f64 {
    let (from, to) = (t.ts_ms[0], t.ts_ms[t.len() - 1]);
    let bars = &data.perp;
    let value: f64 = (0..bars.ts_ms.len()).filter(|&i| bars.ts_ms[i] >= from && bars.ts_ms[i] <= to).map(|i| bars.volume_at(i) * bars.close[i]).sum();
    value / ((to - from) as f64 / MS_PER_DAY as f64).max(1.0)
}

/// Run the curve.
pub fn run(spec: &CapacitySpec, data: &MarketData, base: &MarketTimeline, params: &EngineParams, base_dir: &Path) -> Result<Capacity> {
    let (open_interest, source) = spec.open_interest.resolve(base_dir, "[capacity]")?;
    if !(open_interest > 0.0 && spec.elasticity >= 0.0 && spec.impact_coefficient >= 0.0) {
        bail_input!("[capacity]: open interest must be > 0, elasticity and impact_coefficient >= 0");
    }
    let sigma = daily_volatility(base);
    let adv = average_daily_value(data, base);
    if adv.is_nan() || adv <= 0.0 {
        bail_input!("[capacity]: the perp bars carry no traded volume, so market impact cannot be sized; use data with volume");
    }
    // The engine's sqrt_impact model on both legs, point in time.
    let mut detailed = base.clone();
    crate::data::align::attach_bar_detail(&mut detailed, data);
    let schedule = crate::model::CostSchedule { model: crate::model::CostModel::SqrtImpact, impact_k: spec.impact_coefficient, ..crate::model::CostSchedule::default() };
    let (market, _) = crate::sim::market_costs::estimate(&detailed, &schedule);
    let entry_coefficient = market.perp_impact.first().copied().filter(|c| c.is_finite()).unwrap_or(0.0);
    let market = std::sync::Arc::new(market);
    let aum: Vec<f64> = if spec.aum.is_empty() { (0..=8).map(|k| 10f64.powf(5.0 + k as f64 * 0.5)).collect() } else { spec.aum.clone() };
    // Perp notional per unit of capital, as the engine sizes it: spot + margin = capital.
    let notional_per_capital = params.hedge_ratio * (1.0 - params.reserve_fraction) / (1.0 + params.hedge_ratio / params.leverage);
    let points = aum
        .par_iter()
        .map(|&capital| {
            let notional = capital * notional_per_capital;
            let share = notional / open_interest;
            let funding_factor = (1.0 - spec.elasticity * share).max(0.0);
            let mut t = base.clone();
            // Positive rates inside the window are compressed by the book's size: those it is paid,
            // and those a trailing funding signal reads (one series holds both); the settlements
            // before the window stay as printed.
            for e in t.funding.iter_mut().filter(|e| e.is_paid() && e.rate > 0.0) {
                e.rate *= funding_factor;
            }
            let mut p = params.clone();
            p.initial_capital = capital;
            p.market_costs = Some(market.clone());
            let (summary, m) = crate::app::pipeline::simulate(&t, &p, &mut NoLedger);
            CapacityPoint {
                aum: capital,
                perp_notional: notional,
                share_of_open_interest: share,
                funding_factor,
                impact_bps: entry_coefficient * (notional / base.perp[0]).sqrt() * 1e4,
                slippage_paid: -summary.pnl.slippage,
                margin_top_ups: summary.top_ups,
                net_apr: m.apr,
                funding_apr_over_window: m.funding_apr_over_window,
                max_drawdown: m.max_drawdown,
                liquidations: m.liquidations,
            }
        })
        .collect();
    Ok(Capacity {
        open_interest_usd: open_interest,
        open_interest_source: source,
        daily_volatility: sigma,
        average_daily_value_traded: adv,
        elasticity: spec.elasticity,
        impact_coefficient: spec.impact_coefficient,
        points,
    })
}
