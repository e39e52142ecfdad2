//! Data-quality checks that change what the engine sees. Each is reported, never silent:
//!
//! - **Listing placeholders**: the flat bars an exchange prints before a new perp really trades
//!   (Binance BTCUSDT opened at a flat 10000 with no volume), dropped from the start of the perp.
//! - **Stale spot**: steps whose spot close is not a live price, found with what is known at the
//!   step only (no look-ahead): no spot bar closed at the step (a gap), the bar traded nothing,
//!   the close is frozen while the perp moves, or the bar traded thinly while the basis jumped
//!   away from its recent level (the bar an outage starts in, whose close is the last trade
//!   before the feed stopped). The engine masks such steps from decisions and liquidation checks.


use super::PriceBars;
pub use crate::model::market::StaleSpan;
use crate::time::format_ms;

/// Why a step's spot close is stale (bit set).
pub mod stale {
    /// No spot bar closed at this step; the last known close is older.
    pub const GAP: u8 = 1;
    /// The spot bar traded no volume.
    pub const ZERO_VOLUME: u8 = 2;
    /// The spot close equals the previous one while the perp moved more than 20 bp.
    pub const FROZEN: u8 = 4;
    /// Spot volume under 40 % of its trailing median and the basis over 30 bp away from its
    /// trailing median: the close is the last trade before an outage.
    pub const THIN_AND_DISLOCATED: u8 = 8;

    /// Names of the set bits, for reports.
    pub fn describe(flags: u8) -> String {
        let mut names = Vec::new();
        for (bit, name) in [(GAP, "spot gap"), (ZERO_VOLUME, "zero-volume spot bar"), (FROZEN, "spot close frozen"), (THIN_AND_DISLOCATED, "thin spot bar, basis jump")] {
            if flags & bit != 0 {
                names.push(name);
            }
        }
        names.join(", ")
    }
}

/// Steps of trailing history the thin-and-dislocated check compares with.
const TRAILING_STEPS: usize = 24;

/// Drop leading perp bars that are placeholders: flat (high = low) and either traded under 1 %
/// of the median volume of the first real bars, or (with no volume) sit more than 0.5 % from the
/// first real close. Returns how many were dropped.
pub fn skip_listing_placeholders(perp: &mut PriceBars, warnings: &mut Vec<String>) -> usize {
    let flat = perp.high.iter().zip(&perp.low).take_while(|(h, l)| h == l).count();
    if flat == 0 || flat >= perp.ts_ms.len() {
        return 0;
    }
    let real_close = perp.close[flat];
    let mut real_volume: Vec<f64> = (flat..(flat + 24).min(perp.ts_ms.len())).map(|i| perp.volume_at(i)).filter(|v| v.is_finite()).collect();
    real_volume.sort_by(f64::total_cmp);
    let median_volume = real_volume.get(real_volume.len() / 2).copied().unwrap_or(f64::NAN);
    let placeholder = |i: usize| {
        let volume = perp.volume_at(i);
        if volume.is_finite() && median_volume.is_finite() {
            volume <= 0.01 * median_volume
        } else {
            (perp.close[i] / real_close - 1.0).abs() > 0.005
        }
    };
    let dropped = (0..flat).take_while(|&i| placeholder(i)).count();
    if dropped == 0 {
        return 0;
    }
    warnings.push(format!(
        "perp: dropped {dropped} listing placeholder bar(s) (flat at {}, no real volume) before {}; the perp starts trading then",
        perp.close[0],
        format_ms(perp.ts_ms[dropped])
    ));
    perp.ts_ms.drain(..dropped);
    perp.close.drain(..dropped);
    perp.high.drain(..dropped);
    perp.low.drain(..dropped);
    if !perp.volume.is_empty() {
        perp.volume.drain(..dropped);
    }
    dropped
}

/// The upper median (the element at `len / 2` in total order), found without a full sort.
fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let middle = values.len() / 2;
    *values.select_nth_unstable_by(middle, f64::total_cmp).1
}

/// The stale-spot flags (see [`stale`]) of each step, from what is known at it, fed one step at
/// a time in order: it keeps the trailing volumes and bases itself, so the aligner needs no
/// per-step index into the spot bars, and a run aligned in chunks of time carries it across.
#[derive(Default)]
pub struct StaleSpotCheck {
    /// Steps seen so far.
    steps: usize,
    /// The volumes of the last [`TRAILING_STEPS`] steps, by step modulo their number.
    volumes: [f64; TRAILING_STEPS],
    /// Their bases (perp / spot − 1), likewise.
    bases: [f64; TRAILING_STEPS],
    /// The previous step's spot and perp closes.
    previous: (f64, f64),
    /// Scratch for the medians.
    window: Vec<f64>,
}

impl StaleSpotCheck {
    /// The flags of the next step: `fresh`, whether a spot bar closed at it; `volume`, that of
    /// the spot bar in use; `spot` and `perp`, the closes known at it.
    pub fn step(&mut self, fresh: bool, volume: f64, spot: f64, perp: f64) -> u8 {
        let basis = perp / spot - 1.0;
        let flags = if fresh { self.live_bar_flags(volume, spot, perp, basis) } else { stale::GAP };
        let slot = self.steps % TRAILING_STEPS;
        self.volumes[slot] = volume;
        self.bases[slot] = basis;
        self.previous = (spot, perp);
        self.steps += 1;
        flags
    }

    fn live_bar_flags(&mut self, volume: f64, spot: f64, perp: f64, basis: f64) -> u8 {
        let mut flags = 0u8;
        if volume == 0.0 {
            flags |= stale::ZERO_VOLUME;
        }
        let (spot_before, perp_before) = self.previous;
        if self.steps > 0 && spot == spot_before && (perp / perp_before - 1.0).abs() > 0.002 {
            flags |= stale::FROZEN;
        }
        if self.steps >= TRAILING_STEPS && volume.is_finite() {
            // The rings hold exactly the last TRAILING_STEPS steps (a median ignores order).
            self.window.clear();
            self.window.extend(self.volumes.iter().copied().filter(|v| v.is_finite()));
            let volume_median = median(&mut self.window);
            // The basis median only matters on a thin bar.
            if volume < 0.4 * volume_median {
                self.window.clear();
                self.window.extend_from_slice(&self.bases);
                let basis_median = median(&mut self.window);
                if (basis - basis_median).abs() > 0.003 {
                    flags |= stale::THIN_AND_DISLOCATED;
                }
            }
        }
        flags
    }
}

/// Runs of consecutive flagged steps, built one step at a time (a run may go on from one chunk
/// of time into the next).
#[derive(Default)]
pub struct StaleSpans {
    spans: Vec<StaleSpan>,
    /// The run in progress: first and last step time, steps, reasons.
    open: Option<(i64, i64, usize, u8)>,
}

impl StaleSpans {
    /// The next step: its time and flags.
    pub fn push(&mut self, ts_ms: i64, flags: u8) {
        match (&mut self.open, flags) {
            (None, 0) => {}
            (Some(_), 0) => self.close(),
            (Some((_, to, steps, reasons)), _) => {
                *to = ts_ms;
                *steps += 1;
                *reasons |= flags;
            }
            (None, _) => self.open = Some((ts_ms, ts_ms, 1, flags)),
        }
    }

    fn close(&mut self) {
        if let Some((from_ms, to_ms, steps, reasons)) = self.open.take() {
            self.spans.push(StaleSpan { from: format_ms(from_ms), to: format_ms(to_ms), from_ms, to_ms, steps, reasons: stale::describe(reasons) });
        }
    }

    /// The runs, the last one closed at the last step pushed.
    pub fn finish(mut self) -> Vec<StaleSpan> {
        self.close();
        self.spans
    }
}

/// Runs of consecutive flagged steps.
pub fn stale_spans(ts_ms: &[i64], flags: &[u8]) -> Vec<StaleSpan> {
    let mut spans = StaleSpans::default();
    for (&t, &f) in ts_ms.iter().zip(flags) {
        spans.push(t, f);
    }
    spans.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_spot_rules_use_only_the_past() {
        let n = 40;
        let ts: Vec<i64> = (0..n as i64).collect();
        let mut spot_ts = ts.clone();
        let mut spot: Vec<f64> = (0..n).map(|i| 100.0 + (i % 3) as f64 * 0.1).collect();
        let mut volume = vec![1000.0; n];
        let mut perp: Vec<f64> = spot.iter().map(|s| s * 1.0005).collect();
        // Step 30: thin bar, basis jumps 100 bp. Step 31: zero volume. Step 32: gap. Step 35: frozen.
        volume[30] = 200.0;
        perp[30] = spot[30] * 1.0105;
        volume[31] = 0.0;
        spot_ts[32] = 31;
        spot[32] = spot[31];
        spot[35] = spot[34];
        perp[35] = perp[34] * 1.01;
        // A real dislocation at step 26 on heavy volume is not stale.
        perp[26] = spot[26] * 0.97;
        volume[26] = 5000.0;
        let mut check = StaleSpotCheck::default();
        let flags: Vec<u8> = (0..n).map(|i| check.step(spot_ts[i] == ts[i], volume[i], spot[i], perp[i])).collect();
        assert_eq!(flags[30], stale::THIN_AND_DISLOCATED);
        assert_eq!(flags[31], stale::ZERO_VOLUME);
        assert_eq!(flags[32], stale::GAP);
        assert_eq!(flags[35], stale::FROZEN);
        assert_eq!(flags[26], 0);
        assert_eq!(flags.iter().filter(|f| **f != 0).count(), 4);
        let spans = stale_spans(&ts, &flags);
        assert_eq!(spans.len(), 2);
        assert_eq!((spans[0].from_ms, spans[0].to_ms, spans[0].steps), (30, 32, 3));
        assert_eq!(spans[0].reasons, "spot gap, zero-volume spot bar, thin spot bar, basis jump");
    }

    #[test]
    fn listing_placeholders_are_dropped_only_when_they_did_not_trade() {
        let mut perp = PriceBars {
            label: "perp".into(),
            ts_ms: vec![1, 2, 3, 4, 5],
            close: vec![10000.0, 10000.0, 10340.0, 10351.0, 10391.0],
            high: vec![10000.0, 10000.0, 10357.0, 10360.0, 10400.0],
            low: vec![10000.0, 10000.0, 10337.0, 10340.0, 10380.0],
            volume: vec![0.002, 0.0, 471.0, 583.0, 689.0],
        };
        let mut warnings = Vec::new();
        assert_eq!(skip_listing_placeholders(&mut perp, &mut warnings), 2);
        assert_eq!(perp.ts_ms, vec![3, 4, 5]);
        assert!(warnings[0].contains("2 listing placeholder"));
        // A flat first bar that traded normally stays.
        let mut quiet = PriceBars { label: "perp".into(), ts_ms: vec![1, 2], close: vec![5.0, 5.1], high: vec![5.0, 5.2], low: vec![5.0, 5.0], volume: vec![900.0, 1000.0] };
        assert_eq!(skip_listing_placeholders(&mut quiet, &mut warnings), 0);
    }
}
