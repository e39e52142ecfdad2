//! Entry and exit: which carry to hold at each step, decided from settled funding only.

use serde::{Deserialize, Serialize};

use crate::model::Settlement;

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
    pub fn signal(&self, history: &[Settlement], ts_ms: &[i64]) -> Vec<f64> {
        TrailingSignal::new(self, history).along(history, ts_ms)
    }
}

const HOURS_PER_YEAR: f64 = 8760.0;

/// The trailing funding signal, one step time after another (in order; a time may repeat): the
/// running sums are carried, so a run fed its steps in chunks of time gets the same bits as one
/// fed them all at once.
#[derive(Debug, Clone)]
pub struct TrailingSignal {
    /// `Some(ms)`: the settlements in `(t − ms, t]`; `None`: the last `settlements`.
    lookback_ms: Option<i64>,
    settlements: usize,
    /// Where the history's first interval starts (the hours lookback needs that much history).
    history_start: i64,
    /// The first settlement not yet added, and the first not yet taken off.
    head: usize,
    tail: usize,
    rate_sum: f64,
    hours_sum: f64,
    /// The value last computed, and whether the sums moved since: between settlements the
    /// signal is the same number, so it is not divided out again.
    last: f64,
    stale: bool,
}

impl TrailingSignal {
    /// The signal of `rule` over `history` (settled rates in time order), before any step.
    pub fn new(rule: &EntryRule, history: &[Settlement]) -> Self {
        Self::over(history, rule.lookback_hours, rule.lookback_settlements)
    }

    /// Over `lookback_hours` when given, else the last `lookback_settlements`.
    fn over(history: &[Settlement], lookback_hours: Option<f64>, lookback_settlements: usize) -> Self {
        TrailingSignal {
            lookback_ms: lookback_hours.map(|hours| (hours * 3_600_000.0).round() as i64),
            settlements: lookback_settlements,
            history_start: history.first().map(|h| h.settle_ms - (h.interval_hours * 3_600_000.0).round() as i64).unwrap_or(i64::MAX),
            head: 0,
            tail: 0,
            rate_sum: 0.0,
            hours_sum: 0.0,
            last: f64::NAN,
            stale: true,
        }
    }

    /// The signal at each of the step times `ts_ms` (ascending, none earlier than the last
    /// asked for).
    pub fn along(&mut self, history: &[Settlement], ts_ms: &[i64]) -> Vec<f64> {
        ts_ms.iter().map(|&t| self.at(history, t)).collect()
    }

    /// The signal at step time `t` (no earlier than the last asked for).
    pub fn at(&mut self, history: &[Settlement], t: i64) -> f64 {
        match self.lookback_ms {
            None => {
                let lookback = self.settlements;
                if !(self.head < history.len() && history[self.head].settle_ms <= t) && !self.stale {
                    return self.last;
                }
                while self.head < history.len() && history[self.head].settle_ms <= t {
                    self.rate_sum += history[self.head].rate;
                    self.hours_sum += history[self.head].interval_hours;
                    if self.head >= lookback {
                        self.rate_sum -= history[self.head - lookback].rate;
                        self.hours_sum -= history[self.head - lookback].interval_hours;
                    }
                    self.head += 1;
                }
                self.stale = false;
                self.last = if self.head >= lookback && self.hours_sum > 0.0 { self.rate_sum / self.hours_sum * HOURS_PER_YEAR } else { f64::NAN };
                self.last
            }
            Some(lookback_ms) => {
                let adds = self.head < history.len() && history[self.head].settle_ms <= t;
                let drops = self.tail < self.head && history[self.tail].settle_ms <= t - lookback_ms;
                // `known` only turns true once; until it does the value is recomputed.
                if !adds && !drops && !self.stale {
                    return self.last;
                }
                while self.head < history.len() && history[self.head].settle_ms <= t {
                    self.rate_sum += history[self.head].rate;
                    self.hours_sum += history[self.head].interval_hours;
                    self.head += 1;
                }
                while self.tail < self.head && history[self.tail].settle_ms <= t - lookback_ms {
                    self.rate_sum -= history[self.tail].rate;
                    self.hours_sum -= history[self.tail].interval_hours;
                    self.tail += 1;
                }
                let known = self.history_start <= t - lookback_ms;
                self.stale = !known;
                self.last = if known && self.head > self.tail && self.hours_sum > 0.0 { self.rate_sum / self.hours_sum * HOURS_PER_YEAR } else { f64::NAN };
                self.last
            }
        }
    }
}

/// Time-weighted trailing APR over the last `lookback` settled rates at each step time: Σ rate
/// / Σ interval hours × 8760, counting only settlements at or before the step. A 1 h rate of
/// 0.3 % after eight 8 h rates of 0.01 % gives 51 % APR (the count-weighted mean of the
/// annualised rates would say 302 %). NaN until `lookback` rates are known.
pub fn trailing_funding_apr(history: &[Settlement], ts_ms: &[i64], lookback: usize) -> Vec<f64> {
    TrailingSignal::over(history, None, lookback).along(history, ts_ms)
}

/// Time-weighted trailing APR over the settlements in `(t − lookback_hours, t]`: Σ rate / Σ
/// interval hours × 8760. NaN until the history reaches back `lookback_hours` (its first
/// settlement's interval starts at or before t − lookback), or when no settlement falls inside.
pub fn trailing_funding_apr_hours(history: &[Settlement], ts_ms: &[i64], lookback_hours: f64) -> Vec<f64> {
    TrailingSignal::over(history, Some(lookback_hours), 0).along(history, ts_ms)
}

/// When to hold the position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryMode {
    /// Enter at the first step, hold to the end.
    AlwaysOn,
    /// Enter and exit on trailing realised funding against thresholds (settled rates only).
    FundingThreshold,
    /// Enter, exit, side and size written as expressions over named signals
    /// (`signal::rules`), evaluated into a [`RuleSeries`] before the loop.
    Rules,
    /// A user's series of target exposure in [−1, 1] per time (`[strategy.target]`); negative
    /// is the reverse carry.
    Target,
}

/// What a `rules` or `target` strategy decided before the loop, one value per step of the run
/// (index: the run's step number). Only what depends on the position held (holding time,
/// cooldown, liquidations) is left to the engine ([`RuleSeries::target`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleSeries {
    /// The entry rule holds (known true: an unknown value does not enter), the hurdle is
    /// passed and the size is above zero.
    pub enter: Vec<bool>,
    /// Which carry an entry takes: +1 long, −1 reverse, 0 none (unknown or zero).
    pub side: Vec<i8>,
    /// The exit rule holds for a held long carry (its `held` = +1), or the size is zero.
    pub exit_long: Vec<bool>,
    /// The exit rule holds for a held reverse carry (its `held` = −1), or the size is zero.
    pub exit_reverse: Vec<bool>,
    /// Target share of the allocated capital, in [0, 1]; NaN where unknown (no entry, no resize).
    pub size: Vec<f64>,
    /// Whether the size may change while a carry is held (a size rule or a target series):
    /// a held carry is resized when its target moves by more than `rebalance_delta_threshold`
    /// of the size it was last given.
    pub resize: bool,
    /// A rule exit waits until the carry has been held this long, ms.
    pub min_hold_ms: i64,
    /// After an exit, no entry for this long, ms.
    pub cooldown_ms: i64,
}

impl RuleSeries {
    /// The position wanted at step `i` (time `t_ms`), holding `current`, entered at
    /// `entered_ms` and last exited at `exited_ms` (`i64::MIN`: never).
    /// - Flat: enter the side the rules say, once the cooldown has passed.
    /// - Held: exit when the exit rule holds and the minimum holding time has passed; with no
    ///   cooldown, the other carry opens at once when the entry rule asks for it. An exit and an
    ///   entry into the same carry at one step keep the carry (no round trip for nothing).
    #[inline(always)]
    pub fn target(&self, direction: Direction, current: Target, i: usize, t_ms: i64, entered_ms: i64, exited_ms: i64) -> Target {
        let Some(&enter) = self.enter.get(i) else { return current };
        let entry = || {
            if !enter {
                return Target::Flat;
            }
            match (self.side[i], direction) {
                (1, Direction::Long | Direction::Both) => Target::Long,
                (-1, Direction::Reverse | Direction::Both) => Target::Reverse,
                _ => Target::Flat,
            }
        };
        match current {
            Target::Flat => {
                if t_ms.saturating_sub(exited_ms) >= self.cooldown_ms {
                    entry()
                } else {
                    Target::Flat
                }
            }
            Target::Long | Target::Reverse => {
                let exit = if current == Target::Long { self.exit_long[i] } else { self.exit_reverse[i] };
                if !exit || t_ms.saturating_sub(entered_ms) < self.min_hold_ms {
                    return current;
                }
                if self.cooldown_ms > 0 {
                    return Target::Flat;
                }
                entry()
            }
        }
    }
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
