//! Dated futures as the carry's derivative leg: which contract to hold at each step, when to
//! roll, the `best` choice between it and the perp, and the [`DerivativePath`] the engine
//! follows.
//!
//! Everything here depends on market data and the rules only, never on the account, so it is
//! computed once before the loop; the engine then only closes and reopens the leg at each
//! [`LegSwitch`]. Every choice at step `i` uses values known at its close.
//!
//! - **Front contract** (`instrument = "dated"`): hold the nearest contract with at least
//!   `min_days_to_expiry` left; when the one held has `roll_days_before` days or fewer left,
//!   roll into the nearest later one that qualifies. A contract held to expiry (no successor
//!   yet, or `roll_days_before = 0`) settles at its settlement price at the first step at or
//!   after delivery.
//! - **Best** (`instrument = "best"`): at each step compare the perp's trailing funding APR
//!   (the same signal as `funding_threshold`) with the front contract's annualised basis,
//!   (F/S − 1) × 365 / days to expiry. Move to the other instrument when its APR beats the one
//!   held by more than the switch's cost in APR: 2 × (fee + slippage) of the perp leg (close
//!   one, open the other), spread over `switch_horizon_days` or the front contract's days to
//!   expiry, whichever is fewer (the advantage must pay for the switch within that time).

use crate::model::dated::annualised_basis;
use crate::model::{DatedContracts, DerivativePath, Instrument, LegSwitch, MarketTimeline, SwitchReason};

/// Which instrument the carry's derivative leg uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstrumentChoice {
    /// The perpetual swap, earning funding (the default).
    #[default]
    Perp,
    /// Dated contracts, rolled before expiry: the basis locked in at entry.
    Dated,
    /// Whichever of the two pays more after the cost of switching.
    Best,
}

/// When to hold and roll dated contracts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollRules {
    /// A contract is entered only with at least this many days to expiry.
    pub min_days_to_expiry: f64,
    /// Roll into the next contract this many days before expiry (0: hold to delivery).
    pub roll_days_before: f64,
}

/// The contract to hold after the close of each step: the nearest qualifying one, rolled by
/// `rules`; `None` where no contract qualifies (before the first, or after the last expired
/// with no successor).
pub fn front_schedule(contracts: &DatedContracts, ts_ms: &[i64], rules: RollRules) -> Vec<Option<usize>> {
    let min_days = rules.min_days_to_expiry.max(rules.roll_days_before);
    // Contracts are sorted by expiry: the first that qualifies is the nearest.
    let pick = |i: usize, after_expiry: i64| {
        (0..contracts.len()).find(|&k| contracts.expiry_ms[k] > after_expiry && contracts.live(k, i) && contracts.days_to_expiry(k, ts_ms[i]) >= min_days && contracts.days_to_expiry(k, ts_ms[i]) > rules.roll_days_before)
    };
    let mut held: Option<usize> = None;
    let mut ended = false;
    let mut out = Vec::with_capacity(ts_ms.len());
    for (i, &t) in ts_ms.iter().enumerate() {
        if let Some(c) = held {
            let days = contracts.days_to_expiry(c, t);
            if days <= rules.roll_days_before {
                held = match pick(i, contracts.expiry_ms[c]) {
                    Some(next) => Some(next),
                    // Nothing to roll into yet: hold on, to delivery if need be.
                    None if days > 0.0 => Some(c),
                    None => None,
                };
                ended = held.is_none();
            }
        }
        if held.is_none() && !ended {
            held = pick(i, i64::MIN);
        }
        out.push(held);
    }
    out
}

/// The instrument to hold after each step's close under `best`: the perp or the front
/// contract, whichever APR is higher by more than the cost of switching (see the module doc).
/// `perp_apr` is the trailing funding signal (NaN until its lookback is covered), `masked`
/// marks steps that decide nothing (stale spot).
pub fn best_schedule(front: &[Option<usize>], contracts: &DatedContracts, timeline: &MarketTimeline, perp_apr: &[f64], switch_cost: f64, horizon_days: f64, masked: &[bool]) -> Vec<Instrument> {
    let mut out = Vec::with_capacity(front.len());
    let mut held = Instrument::Perp;
    for i in 0..front.len() {
        let dated_apr = |c: usize| annualised_basis(contracts.close[c][i], timeline.spot[i], contracts.days_to_expiry(c, timeline.ts_ms[i]));
        let perp = perp_apr.get(i).copied().unwrap_or(f64::NAN);
        let choice = match front[i] {
            None => Instrument::Perp,
            Some(c) => {
                let dated = dated_apr(c);
                let cost_apr = switch_cost * 365.0 / contracts.days_to_expiry(c, timeline.ts_ms[i]).min(horizon_days).max(1.0);
                let current = match held {
                    // A rolled front contract replaces the one held (the roll costs the same either way).
                    Instrument::Dated(_) => Instrument::Dated(c),
                    other => other,
                };
                if i == 0 {
                    // The first position: no switch to pay for.
                    if dated.is_finite() && (perp.is_nan() || dated > perp) { Instrument::Dated(c) } else { Instrument::Perp }
                } else if masked.get(i).copied().unwrap_or(false) {
                    current
                } else {
                    match current {
                        Instrument::Perp if dated.is_finite() && (perp.is_nan() || dated - perp > cost_apr) => Instrument::Dated(c),
                        // A missing contract bar (NaN basis) is no reason to move: the leg stays.
                        Instrument::Dated(_) if perp.is_finite() && dated.is_finite() && perp - dated > cost_apr => Instrument::Perp,
                        other => other,
                    }
                }
            }
        };
        held = choice;
        out.push(choice);
    }
    out
}

/// The dated contract held to expiry or rolled: the front schedule as instruments.
pub fn dated_schedule(front: &[Option<usize>]) -> Vec<Instrument> {
    front.iter().map(|f| f.map_or(Instrument::None, Instrument::Dated)).collect()
}

/// Rewrite `timeline` so its derivative slices hold, at each step, the instrument held during
/// the bar ending there (the choice made at the previous close), and list the switches.
/// Returns the steps where a dated price was missing and the last known one stood in.
pub fn apply(timeline: &mut MarketTimeline, contracts: &DatedContracts, choice: &[Instrument]) -> usize {
    let n = timeline.len().min(choice.len());
    let mut stale = 0usize;
    let mut last_close = vec![f64::NAN; contracts.len()];
    let mut last_mark = vec![f64::NAN; contracts.len()];
    let mut switches = Vec::new();
    let (perp, mark, high, low) = (timeline.perp.clone(), timeline.mark_prices().to_vec(), timeline.mark_high.clone(), timeline.mark_low.clone());
    // The mark now differs from the perp's last (a dated contract's own price): its own column.
    timeline.own_mark();
    // (last, mark, high, low) of `instrument` at step `i`.
    let mut price_of = |instrument: Instrument, i: usize, stale: &mut usize| -> (f64, f64, f64, f64) {
        match instrument {
            Instrument::Perp => (perp[i], mark[i], high[i], low[i]),
            Instrument::Dated(c) => {
                let close = contracts.close[c][i];
                if timeline.ts_ms[i] >= contracts.expiry_ms[c] && contracts.settlement[c].is_finite() {
                    // Delivered: the contract ends at its settlement price.
                    let s = contracts.settlement[c];
                    let (h, l) = if close.is_finite() { (contracts.high[c][i].max(s), contracts.low[c][i].min(s)) } else { (s, s) };
                    (s, s, h, l)
                } else if close.is_finite() {
                    last_close[c] = close;
                    // The mark where the contract has one (what the venue marks and liquidates
                    // on, MARGIN.md §1.1), else its last price.
                    let (mark, mark_high, mark_low) = contracts.mark_at(c, i);
                    if mark.is_finite() {
                        last_mark[c] = mark;
                        let range = |x: f64| if x.is_finite() { x } else { mark };
                        (close, mark, range(mark_high), range(mark_low))
                    } else if last_mark[c].is_finite() {
                        (close, last_mark[c], last_mark[c], last_mark[c])
                    } else {
                        (close, close, contracts.high[c][i], contracts.low[c][i])
                    }
                } else {
                    *stale += 1;
                    let p = last_close[c];
                    let m = if last_mark[c].is_finite() { last_mark[c] } else { p };
                    (p, m, m, m)
                }
            }
            Instrument::None => (f64::NAN, f64::NAN, f64::NAN, f64::NAN),
        }
    };
    for i in 0..n {
        let during = if i == 0 { choice[0] } else { choice[i - 1] };
        let (p, m, h, l) = price_of(during, i, &mut stale);
        timeline.perp[i] = p;
        timeline.mark[i] = m;
        timeline.mark_high[i] = h.max(m);
        timeline.mark_low[i] = l.min(m);
        if i > 0 && choice[i] != during {
            let reason = match (during, choice[i]) {
                (Instrument::Dated(c), _) if timeline.ts_ms[i] >= contracts.expiry_ms[c] => SwitchReason::Delivery,
                (Instrument::Dated(_), Instrument::Dated(_)) => SwitchReason::Roll,
                _ => SwitchReason::Switch,
            };
            let (open_price, open_mark, _, _) = price_of(choice[i], i, &mut stale);
            switches.push(LegSwitch { step: i, reason, to: choice[i], open_price, open_mark });
        }
    }
    timeline.derivative = Some(DerivativePath { first: choice.first().copied(), switches });
    stale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::MS_PER_DAY;

    fn two_contracts(n: usize) -> DatedContracts {
        // Daily steps; contract 0 expires on day 10, contract 1 on day 40 and lists on day 5.
        DatedContracts {
            names: vec!["A".into(), "B".into()],
            expiry_ms: vec![10 * MS_PER_DAY, 40 * MS_PER_DAY],
            settlement: vec![100.0, f64::NAN],
            close: vec![(0..n).map(|i| if i <= 10 { 101.0 } else { f64::NAN }).collect(), (0..n).map(|i| if i >= 5 { 103.0 } else { f64::NAN }).collect()],
            high: vec![vec![102.0; n], vec![104.0; n]],
            low: vec![vec![100.0; n], vec![102.0; n]],
            ..Default::default()
        }
    }

    #[test]
    fn the_front_contract_rolls_before_expiry_into_the_next() {
        let contracts = two_contracts(20);
        let ts: Vec<i64> = (0..20).map(|i| i * MS_PER_DAY).collect();
        let front = front_schedule(&contracts, &ts, RollRules { min_days_to_expiry: 1.0, roll_days_before: 2.0 });
        // Day 8 has 2 days left: roll into B (live from day 5).
        assert_eq!(&front[..10], &[Some(0), Some(0), Some(0), Some(0), Some(0), Some(0), Some(0), Some(0), Some(1), Some(1)]);
        // Held to delivery when nothing qualifies earlier: B lists only on day 5, A is due on day 10.
        let held = front_schedule(&contracts, &ts, RollRules { min_days_to_expiry: 1.0, roll_days_before: 0.0 });
        assert_eq!(held[9], Some(0));
        assert_eq!(held[10], Some(1));
    }

    #[test]
    fn best_does_not_leave_a_contract_over_a_missing_bar() {
        // Contract B's basis is 10 % a year; the perp's 9 % until step 3, then 30 %. B has no bar
        // at step 2: the leg stays in B there, and moves to the perp at step 3.
        let mut contracts = two_contracts(5);
        contracts.close[1] = (0..5).map(|i| 100.0 * (1.0 + 0.10 * (40 - i) as f64 / 365.0)).collect();
        contracts.close[1][2] = f64::NAN;
        let timeline = MarketTimeline { ts_ms: (0..5).map(|i| i * MS_PER_DAY).collect(), spot: vec![100.0; 5], ..Default::default() };
        let front = vec![Some(1); 5];
        let perp_apr = [0.09, 0.09, 0.30, 0.30, 0.30];
        let choice = best_schedule(&front, &contracts, &timeline, &perp_apr, 0.0012, 14.0, &[]);
        assert_eq!(choice, vec![Instrument::Dated(1), Instrument::Dated(1), Instrument::Dated(1), Instrument::Perp, Instrument::Perp]);
    }
}
