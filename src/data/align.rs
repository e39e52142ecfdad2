//! Point-in-time alignment: spot, perp, mark, staking and funding onto one clock.
//!
//! The clock is the perp's bar-close times inside the run's window. Every other series joins to
//! it with a backward as-of join that **allows equality**: a value stamped at `t` (a bar that
//! closed at `t`) is usable at `t`, and nothing stamped after `t` is. Funding settlements are
//! assigned to the first step at or after their settlement time, and are paid on the position
//! held before that step's decisions, at the mark price known at the settlement time (the
//! settlement row's own mark where the source gives one; the perp's last before the mark series
//! starts). Each step's spot close is also checked for staleness ([`quality`]).

use anyhow::Result;
use polars::prelude::*;

use super::quality::{self, StaleSpan};
use super::{MarketData, PriceBars};
use crate::bail_input;
use crate::time::format_ms;

/// One funding settlement inside the simulated window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FundingEvent {
    /// Index of the step whose interval `(ts[step-1], ts[step]]` contains the settlement.
    pub step: usize,
    pub settle_ms: i64,
    /// Decimal rate per interval; positive means longs pay shorts.
    pub rate: f64,
    pub interval_hours: f64,
    /// Price the notional is valued at: mark known at settlement (perp last where no mark).
    pub price: f64,
}

/// The aligned, read-only market the engine runs over: plain slices, one entry per step.
#[derive(Debug, Clone, Default)]
pub struct MarketTimeline {
    pub symbol: String,
    pub synthetic: bool,
    /// Step times: perp bar closes, epoch ms UTC.
    pub ts_ms: Vec<i64>,
    /// Spot close known at the step.
    pub spot: Vec<f64>,
    /// Perp last (close) at the step: the price perp orders fill at.
    pub perp: Vec<f64>,
    /// Mark price at the step (perp last where no mark series exists): values the perp.
    pub mark: Vec<f64>,
    /// Highest mark (or perp) price inside the bar ending at the step: a short's worst case.
    pub mark_high: Vec<f64>,
    /// Lowest mark (or perp) price inside the bar: a long's worst case.
    pub mark_low: Vec<f64>,
    /// Staking APR known at the step, accrued over the following interval.
    pub staking_apr: Vec<f64>,
    /// Settlements paid inside the window, in time order.
    pub funding: Vec<FundingEvent>,
    /// Every settlement loaded (also before the window), as (settle_ms, rate annualised by its
    /// own interval): the history a trailing-funding signal may look at.
    pub funding_history: Vec<(i64, f64)>,
    /// Steps where the spot close was older than the perp bar (spot gap).
    pub stale_spot_steps: usize,
    /// Why each step's spot close is stale (bits of [`quality::stale`]); 0 for a live close.
    pub spot_stale: Vec<u8>,
    /// Runs of stale-spot steps, for the manifest and the report.
    pub stale_spans: Vec<StaleSpan>,
}

impl MarketTimeline {
    /// Number of steps.
    pub fn len(&self) -> usize {
        self.ts_ms.len()
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.ts_ms.is_empty()
    }
}

/// Annualise a per-interval rate by its own interval: rate × (24 / hours) × 365.
pub fn annualise(rate: f64, interval_hours: f64) -> f64 {
    rate * (24.0 / interval_hours) * 365.0
}

fn bars_frame(bars: &PriceBars, prefix: &str) -> Result<DataFrame> {
    let frame = DataFrame::new(
        bars.ts_ms.len(),
        vec![
            Column::new("ts_ms".into(), &bars.ts_ms),
            Column::new(format!("{prefix}_ts").into(), &bars.ts_ms),
            Column::new(format!("{prefix}_close").into(), &bars.close),
            Column::new(format!("{prefix}_high").into(), &bars.high),
            Column::new(format!("{prefix}_low").into(), &bars.low),
            Column::new(
                format!("{prefix}_volume").into(),
                if bars.volume.is_empty() { vec![f64::NAN; bars.ts_ms.len()] } else { bars.volume.clone() },
            ),
        ],
    )?;
    Ok(frame)
}

/// Backward as-of join of `right` onto `left` by `ts_ms`, equality allowed (known at t => usable at t).
fn asof_backward(left: DataFrame, right: DataFrame) -> Result<DataFrame> {
    let options = AsOfOptions { strategy: AsofStrategy::Backward, allow_eq: true, ..Default::default() };
    let joined = left
        .lazy()
        .join_builder()
        .with(right.lazy())
        .left_on([col("ts_ms")])
        .right_on([col("ts_ms")])
        .how(JoinType::AsOf(Box::new(options)))
        .finish()
        .collect()
        .map_err(|err| anyhow::anyhow!("as-of join: {err}"))?;
    Ok(joined)
}

fn f64_column(frame: &DataFrame, name: &str) -> Result<Vec<f64>> {
    Ok(frame.column(name)?.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

fn i64_column(frame: &DataFrame, name: &str) -> Result<Vec<i64>> {
    Ok(frame.column(name)?.i64()?.iter().map(|v| v.unwrap_or(i64::MIN)).collect())
}

/// Align loaded data onto the perp clock, inside `[start_ms, end_ms]`.
pub fn align(data: &MarketData, start_ms: Option<i64>, end_ms: Option<i64>, constant_staking_apr: f64) -> Result<MarketTimeline> {
    let perp = &data.perp;
    // The clock starts once spot is known too: before that a hedge cannot be priced.
    let spot_first = data.spot.ts_ms[0];
    let lo = start_ms.unwrap_or(i64::MIN).max(spot_first);
    let hi = end_ms.unwrap_or(i64::MAX);
    let first = perp.ts_ms.partition_point(|&t| t < lo);
    let last = perp.ts_ms.partition_point(|&t| t <= hi);
    // Spot that ended before the perp clock starts would price every step from one stale close.
    let spot_last = *data.spot.ts_ms.last().unwrap_or(&spot_first);
    if first >= last || perp.ts_ms[first] > spot_last {
        bail_input!(
            "spot ({} .. {}) and perp ({} .. {}) have no common time inside the window{}; check the files and strategy.start/end",
            format_ms(spot_first),
            format_ms(*data.spot.ts_ms.last().unwrap_or(&spot_first)),
            format_ms(perp.ts_ms[0]),
            format_ms(*perp.ts_ms.last().unwrap_or(&0)),
            match (start_ms, end_ms) {
                (None, None) => String::new(),
                _ => format!(" [{} .. {}]", start_ms.map(format_ms).unwrap_or_default(), end_ms.map(format_ms).unwrap_or_default()),
            }
        );
    }
    let window = first..last;
    let clock = DataFrame::new(
        window.len(),
        vec![
            Column::new("ts_ms".into(), &perp.ts_ms[window.clone()]),
            Column::new("perp_close".into(), &perp.close[window.clone()]),
            Column::new("perp_high".into(), &perp.high[window.clone()]),
            Column::new("perp_low".into(), &perp.low[window.clone()]),
        ],
    )?;
    let mut frame = asof_backward(clock, bars_frame(&data.spot, "spot")?)?;
    if let Some(mark) = &data.mark {
        frame = asof_backward(frame, bars_frame(mark, "mark")?)?;
    }
    if let Some(staking) = &data.staking {
        let right = DataFrame::new(
            staking.ts_ms.len(),
            vec![Column::new("ts_ms".into(), &staking.ts_ms), Column::new("staking_apr".into(), &staking.apr)],
        )?;
        frame = asof_backward(frame, right)?;
    }

    let ts_ms = i64_column(&frame, "ts_ms")?;
    let spot = f64_column(&frame, "spot_close")?;
    let spot_ts = i64_column(&frame, "spot_ts")?;
    let perp_close = f64_column(&frame, "perp_close")?;
    let (mark, mark_high, mark_low) = if data.mark.is_some() {
        let mark_ts = i64_column(&frame, "mark_ts")?;
        let close = f64_column(&frame, "mark_close")?;
        // Where the mark's bar is not the one ending at this step (mark gap or mark starting
        // later), fall back to the perp's own bar so the liquidation check still sees the bar.
        let mut m = Vec::with_capacity(close.len());
        let mut h = Vec::with_capacity(close.len());
        let mut l = Vec::with_capacity(close.len());
        let (mh, ml) = (f64_column(&frame, "mark_high")?, f64_column(&frame, "mark_low")?);
        let (ph, pl) = (f64_column(&frame, "perp_high")?, f64_column(&frame, "perp_low")?);
        for i in 0..close.len() {
            if mark_ts[i] == ts_ms[i] && close[i].is_finite() {
                m.push(close[i]);
                h.push(mh[i]);
                l.push(ml[i]);
            } else {
                m.push(perp_close[i]);
                h.push(ph[i]);
                l.push(pl[i]);
            }
        }
        (m, h, l)
    } else {
        (perp_close.clone(), f64_column(&frame, "perp_high")?, f64_column(&frame, "perp_low")?)
    };
    let staking_apr = if data.staking.is_some() {
        f64_column(&frame, "staking_apr")?.into_iter().map(|v| if v.is_finite() { v } else { constant_staking_apr }).collect()
    } else {
        vec![constant_staking_apr; ts_ms.len()]
    };
    let mut stale_spot_steps = 0;
    for i in 0..ts_ms.len() {
        if !spot[i].is_finite() {
            bail_input!("spot: no spot price is known at {} (the first perp step); spot data starts later", format_ms(ts_ms[i]));
        }
        if spot_ts[i] != ts_ms[i] {
            stale_spot_steps += 1;
        }
    }

    let spot_volume = f64_column(&frame, "spot_volume")?;
    let spot_stale = quality::stale_spot_flags(&ts_ms, &spot_ts, &spot, &spot_volume, &perp_close);
    let stale_spans = quality::stale_spans(&ts_ms, &spot_stale);

    let funding = funding_events(data, &ts_ms)?;
    let funding_history = data
        .funding
        .settle_ms
        .iter()
        .zip(data.funding.rate.iter().zip(&data.funding.interval_hours))
        .map(|(&t, (&r, &h))| (t, annualise(r, h)))
        .collect();
    Ok(MarketTimeline {
        symbol: data.symbol.clone(),
        synthetic: data.synthetic,
        ts_ms,
        spot,
        perp: perp_close,
        mark,
        mark_high,
        mark_low,
        staking_apr,
        funding,
        funding_history,
        stale_spot_steps,
        spot_stale,
        stale_spans,
    })
}

/// Settlements inside `(ts[0], ts[last]]`, each with its step and the price known at settlement.
fn funding_events(data: &MarketData, ts_ms: &[i64]) -> Result<Vec<FundingEvent>> {
    let funding = &data.funding;
    let (first, last) = (ts_ms[0], ts_ms[ts_ms.len() - 1]);
    let inside: Vec<usize> = (0..funding.settle_ms.len()).filter(|&i| funding.settle_ms[i] > first && funding.settle_ms[i] <= last).collect();
    if inside.is_empty() {
        return Ok(Vec::new());
    }
    let settle: Vec<i64> = inside.iter().map(|&i| funding.settle_ms[i]).collect();
    // Price known at settlement: the mark as of the settlement; before the mark series starts
    // (or with none), the perp's last.
    let price_as_of = |bars: &PriceBars| -> Result<Vec<f64>> {
        let left = DataFrame::new(settle.len(), vec![Column::new("ts_ms".into(), &settle)])?;
        let right = DataFrame::new(bars.ts_ms.len(), vec![Column::new("ts_ms".into(), &bars.ts_ms), Column::new("price".into(), &bars.close)])?;
        f64_column(&asof_backward(left, right)?, "price")
    };
    let mut bar_price = price_as_of(&data.perp)?;
    if let Some(mark) = &data.mark {
        for (price, mark_price) in bar_price.iter_mut().zip(price_as_of(mark)?) {
            if mark_price.is_finite() {
                *price = mark_price;
            }
        }
    }
    let mut events = Vec::with_capacity(inside.len());
    for (k, &i) in inside.iter().enumerate() {
        let row_mark = funding.mark_price[i];
        let price = if row_mark.is_finite() { row_mark } else { bar_price[k] };
        if !price.is_finite() {
            continue; // no price known yet at this settlement: it cannot be valued (before any bar)
        }
        events.push(FundingEvent {
            step: ts_ms.partition_point(|&t| t < funding.settle_ms[i]),
            settle_ms: funding.settle_ms[i],
            rate: funding.rate[i],
            interval_hours: funding.interval_hours[i],
            price,
        });
    }
    Ok(events)
}
