//! Entry and exit: which carry to hold at each step, decided from settled funding only.

use crate::config::{Direction, EntryMode};

/// The position the strategy wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Flat,
    /// Long spot, short perp.
    Long,
    /// Short spot, long perp.
    Reverse,
}

/// Entry/exit rule parameters.
#[derive(Debug, Clone, Copy)]
pub struct EntryRule {
    pub mode: EntryMode,
    pub direction: Direction,
    /// Decimal APR.
    pub entry_funding_apr: f64,
    /// Decimal APR.
    pub exit_funding_apr: f64,
    pub lookback_settlements: usize,
}

impl EntryRule {
    /// The wanted position given the current one and the trailing funding signal (annualised,
    /// NaN while fewer than `lookback_settlements` rates are settled).
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
}

/// Trailing mean of the last `lookback` settled annualised rates at each step time: only
/// settlements at or before the step count. NaN until `lookback` rates are known.
pub fn trailing_funding_apr(history: &[(i64, f64)], ts_ms: &[i64], lookback: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(ts_ms.len());
    let mut next = 0usize;
    let mut sum = 0.0;
    for &t in ts_ms {
        while next < history.len() && history[next].0 <= t {
            sum += history[next].1;
            if next >= lookback {
                sum -= history[next - lookback].1;
            }
            next += 1;
        }
        out.push(if next >= lookback { sum / lookback as f64 } else { f64::NAN });
    }
    out
}
