//! Entry and exit: which carry to hold at each step, decided from settled funding only.

use serde::{Deserialize, Serialize};

use crate::model::SettledRate;

/// The position the strategy wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// No position.
    Flat,
    /// Long spot, short perp.
    Long,
    /// Short spot, long perp.
    Reverse,
}

/// Entry/exit rule parameters.
#[derive(Debug, Clone, Copy)]
pub struct EntryRule {
    /// Hold always, or on the trailing funding signal.
    pub mode: EntryMode,
    /// Which carry (or either) may be held.
    pub direction: Direction,
    /// Decimal APR.
    pub entry_funding_apr: f64,
    /// Decimal APR.
    pub exit_funding_apr: f64,
    /// Settlements the trailing signal looks back over (a count, whatever their interval).
    pub lookback_settlements: usize,
    /// Hours the trailing signal looks back over, instead of a count.
    pub lookback_hours: Option<f64>,
}

impl EntryRule {
    /// The wanted position given the current one and the trailing funding signal (annualised,
    /// NaN while the lookback is not yet covered by settled rates).
    #[inline]
    pub fn target(&self, current: Target, signal_apr: f64) -> Target {
        let (long_ok, reverse_ok) = match self.direction {
            Direction::Long => (true, false),
            Direction::Reverse => (false, true),
            Direction::Both => (true, true),
        };
        if self.mode == EntryMode::AlwaysOn {
            return if long_ok { Target::Long } else { Target::Reverse };
        }
        if signal_apr.is_nan() {
            return current;
        }
        let enter_long = long_ok && signal_apr > self.entry_funding_apr;
        let enter_reverse = reverse_ok && signal_apr < -self.entry_funding_apr;
        match current {
            Target::Long if signal_apr >= self.exit_funding_apr => Target::Long,
            Target::Reverse if signal_apr <= -self.exit_funding_apr => Target::Reverse,
            _ if enter_long => Target::Long,
            _ if enter_reverse => Target::Reverse,
            _ => Target::Flat,
        }
    }

    /// The trailing signal at each step time under this rule's lookback.
    pub fn signal(&self, history: &[SettledRate], ts_ms: &[i64]) -> Vec<f64> {
        match self.lookback_hours {
            Some(hours) => trailing_funding_apr_hours(history, ts_ms, hours),
            None => trailing_funding_apr(history, ts_ms, self.lookback_settlements),
        }
    }
}

const HOURS_PER_YEAR: f64 = 8760.0;

/// Time-weighted trailing APR over the last `lookback` settled rates at each step time: Σ rate
/// / Σ interval hours × 8760, counting only settlements at or before the step. A 1 h rate of
/// 0.3 % after eight 8 h rates of 0.01 % gives 51 % APR (the count-weighted mean of the
/// annualised rates would say 302 %). NaN until `lookback` rates are known.
pub fn trailing_funding_apr(history: &[SettledRate], ts_ms: &[i64], lookback: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(ts_ms.len());
    let mut next = 0usize;
    let (mut rate_sum, mut hours_sum) = (0.0, 0.0);
    for &t in ts_ms {
        while next < history.len() && history[next].settle_ms <= t {
            rate_sum += history[next].rate;
            hours_sum += history[next].interval_hours;
            if next >= lookback {
                rate_sum -= history[next - lookback].rate;
                hours_sum -= history[next - lookback].interval_hours;
            }
            next += 1;
        }
        out.push(if next >= lookback && hours_sum > 0.0 { rate_sum / hours_sum * HOURS_PER_YEAR } else { f64::NAN });
    }
    out
}

/// Time-weighted trailing APR over the settlements in `(t − lookback_hours, t]`: Σ rate / Σ
/// interval hours × 8760. NaN until the history reaches back `lookback_hours` (its first
/// settlement's interval starts at or before t − lookback), or when no settlement falls inside.
pub fn trailing_funding_apr_hours(history: &[SettledRate], ts_ms: &[i64], lookback_hours: f64) -> Vec<f64> {
    let lookback_ms = (lookback_hours * 3_600_000.0).round() as i64;
    let history_start = history.first().map(|h| h.settle_ms - (h.interval_hours * 3_600_000.0).round() as i64).unwrap_or(i64::MAX);
    let mut out = Vec::with_capacity(ts_ms.len());
    let (mut head, mut tail) = (0usize, 0usize);
    let (mut rate_sum, mut hours_sum) = (0.0, 0.0);
    for &t in ts_ms {
        while head < history.len() && history[head].settle_ms <= t {
            rate_sum += history[head].rate;
            hours_sum += history[head].interval_hours;
            head += 1;
        }
        while tail < head && history[tail].settle_ms <= t - lookback_ms {
            rate_sum -= history[tail].rate;
            hours_sum -= history[tail].interval_hours;
            tail += 1;
        }
        let known = history_start <= t - lookback_ms;
        out.push(if known && head > tail && hours_sum > 0.0 { rate_sum / hours_sum * HOURS_PER_YEAR } else { f64::NAN });
    }
    out
}

/// When to hold the position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryMode {
    /// Enter at the first step, hold to the end.
    AlwaysOn,
    /// Enter and exit on trailing realised funding against thresholds (settled rates only).
    FundingThreshold,
}

/// Which carry to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Long spot, short perp: earns positive funding.
    Long,
    /// Short spot (borrowed), long perp: earns negative funding.
    Reverse,
    /// Either, chosen by the sign of trailing funding (`funding_threshold` mode only).
    Both,
}

/// What happens to the surviving leg after the other one is liquidated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterLiquidation {
    /// Close the other leg at the step's close, with fees and slippage; the run is flat until
    /// the entry rule (and `reenter_after_liquidation`) opens a new carry.
    #[default]
    Close,
    /// Reopen the liquidated leg against the surviving one when the entry rule allows
    /// (re-short the perp without selling and re-buying spot).
    Rehedge,
    /// Keep the surviving leg: the rest of the run is a directional position, and the summary
    /// and report say so.
    Hold,
}

/// Where margin top-ups come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopUpSource {
    /// Never top up.
    None,
    /// Move reserve cash into the perp margin.
    Reserve,
    /// Sell spot and buy back the same perp quantity (stays hedged), moving proceeds to margin.
    SellSpot,
    /// Reserve cash first, then sell spot for the rest.
    ReserveThenSpot,
}
