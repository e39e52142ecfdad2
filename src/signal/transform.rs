//! Window transforms of a signal on the step clock: mean, standard deviation, z-score, EMA and
//! lag over a window given in time, each point in time (the value at step t uses the steps at
//! or before t only).
//!
//! A window `(t − W, t]` counts as known once it lies inside the data: `t − W` at or after the
//! start of the first bar (its close less one bar). Before that, and while any value inside it
//! is unknown (NaN), the mean, deviation and z-score are NaN: a partly seen window is not read
//! as a full one.

/// The clock's bar length, ms: the most common step between step times (one hour where there is
/// a single step).
pub fn bar_ms(ts_ms: &[i64]) -> i64 {
    let mut gaps: Vec<i64> = ts_ms.windows(2).map(|w| w[1] - w[0]).filter(|g| *g > 0).collect();
    if gaps.is_empty() {
        return 3_600_000;
    }
    gaps.sort_unstable();
    let (mut best, mut best_count, mut run) = (gaps[0], 0usize, 0usize);
    for k in 0..gaps.len() {
        run = if k > 0 && gaps[k] == gaps[k - 1] { run + 1 } else { 1 };
        if run > best_count {
            best_count = run;
            best = gaps[k];
        }
    }
    best
}

/// Sliding sums over `(t − W, t]`, re-summed from scratch once the window has moved a full
/// window's length (so rounding does not build up over a long run), around a shift that keeps
/// the sum of squares well conditioned for a series far from zero.
struct Window<'a> {
    values: &'a [f64],
    from: usize,
    shift: f64,
    sum: f64,
    sum_sq: f64,
    unknown: usize,
    resummed_at: usize,
}

impl<'a> Window<'a> {
    fn new(values: &'a [f64]) -> Self {
        Window { values, from: 0, shift: values.iter().copied().find(|v| v.is_finite()).unwrap_or(0.0), sum: 0.0, sum_sq: 0.0, unknown: 0, resummed_at: 0 }
    }
    fn add(&mut self, v: f64) {
        if v.is_finite() {
            let d = v - self.shift;
            self.sum += d;
            self.sum_sq += d * d;
        } else {
            self.unknown += 1;
        }
    }
    fn remove(&mut self, v: f64) {
        if v.is_finite() {
            let d = v - self.shift;
            self.sum -= d;
            self.sum_sq -= d * d;
        } else {
            self.unknown -= 1;
        }
    }
    /// Move the window to end at step `i` (added already) and start after `t_from`.
    fn advance(&mut self, ts_ms: &[i64], i: usize, t_from: i64) {
        while self.from <= i && ts_ms[self.from] <= t_from {
            let v = self.values[self.from];
            self.remove(v);
            self.from += 1;
        }
        if self.from >= self.resummed_at + (i + 1 - self.from).max(1) {
            self.resummed_at = self.from;
            if let Some(v) = self.values[self.from..=i].iter().copied().find(|v| v.is_finite()) {
                self.shift = v;
            }
            self.sum = 0.0;
            self.sum_sq = 0.0;
            self.unknown = 0;
            for k in self.from..=i {
                let v = self.values[k];
                self.add(v);
            }
        }
    }
    fn count(&self, i: usize) -> usize {
        i + 1 - self.from
    }
}

/// Which statistic of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistic {
    /// The mean.
    Mean,
    /// The sample standard deviation (n − 1).
    Std,
    /// (value − mean) / sample standard deviation; NaN when the deviation is zero.
    ZScore,
}

/// `statistic` of `values` over the trailing window of `window_ms` at each step.
pub fn rolling(ts_ms: &[i64], values: &[f64], window_ms: i64, statistic: Statistic) -> Vec<f64> {
    let n = ts_ms.len();
    let mut out = vec![f64::NAN; n];
    if n == 0 {
        return out;
    }
    let first_open = ts_ms[0] - bar_ms(ts_ms);
    let mut window = Window::new(values);
    for i in 0..n {
        window.add(values[i]);
        let t_from = ts_ms[i] - window_ms;
        window.advance(ts_ms, i, t_from);
        if t_from < first_open || window.unknown > 0 {
            continue;
        }
        let count = window.count(i) as f64;
        let mean_shifted = window.sum / count;
        let variance = || if count > 1.0 { ((window.sum_sq - window.sum * mean_shifted) / (count - 1.0)).max(0.0) } else { f64::NAN };
        out[i] = match statistic {
            Statistic::Mean => mean_shifted + window.shift,
            Statistic::Std => variance().sqrt(),
            Statistic::ZScore => {
                let sd = variance().sqrt();
                if sd > 0.0 {
                    (values[i] - window.shift - mean_shifted) / sd
                } else {
                    f64::NAN
                }
            }
        };
    }
    out
}

/// The exponential moving average with the span of `window_ms`: on a regular clock of bar `b`,
/// α = 2 / (N + 1) with N = W / b; a step of Δt applies 1 − (1 − α)^(Δt / b), so a longer step
/// weighs as the bars it covers. Seeded with the first known value, and NaN until a whole window
/// has passed since (the seed's weight has decayed). Unknown values leave it where it was.
pub fn ema(ts_ms: &[i64], values: &[f64], window_ms: i64) -> Vec<f64> {
    let n = ts_ms.len();
    let mut out = vec![f64::NAN; n];
    if n == 0 {
        return out;
    }
    let bar = bar_ms(ts_ms) as f64;
    let bars = (window_ms as f64 / bar).max(1.0);
    let keep_per_bar = 1.0 - 2.0 / (bars + 1.0);
    let mut state: Option<(f64, i64, i64)> = None; // (value, time of the last update, seed time)
    for i in 0..n {
        let (t, v) = (ts_ms[i], values[i]);
        state = match state {
            None if v.is_finite() => Some((v, t, t)),
            None => None,
            Some((e, last, seed)) if v.is_finite() => {
                let keep = if t - last == bar as i64 { keep_per_bar } else { keep_per_bar.powf((t - last) as f64 / bar) };
                Some((keep * e + (1.0 - keep) * v, t, seed))
            }
            Some(s) => Some(s),
        };
        if let Some((e, _, seed)) = state {
            if t - seed >= window_ms {
                out[i] = e;
            }
        }
    }
    out
}

/// The value at the last step at or before t − `window_ms` (NaN before the first).
pub fn lag(ts_ms: &[i64], values: &[f64], window_ms: i64) -> Vec<f64> {
    let mut out = Vec::with_capacity(ts_ms.len());
    let mut j = 0usize;
    for &t in ts_ms {
        while j < ts_ms.len() && ts_ms[j] <= t - window_ms {
            j += 1;
        }
        out.push(if j == 0 { f64::NAN } else { values[j - 1] });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn hours(n: i64) -> Vec<i64> {
        (1..=n).map(|h| h * H).collect()
    }

    #[test]
    fn mean_std_zscore_by_hand() {
        let ts = hours(5);
        let x = [1.0, 2.0, 4.0, 8.0, 16.0];
        // A 3 h window (t − 3h, t] holds 3 bars; known from the third bar (t − 3h = 0 = the
        // first bar's open).
        let mean = rolling(&ts, &x, 3 * H, Statistic::Mean);
        assert!(mean[0].is_nan() && mean[1].is_nan());
        assert!((mean[2] - 7.0 / 3.0).abs() < 1e-12);
        assert!((mean[3] - 14.0 / 3.0).abs() < 1e-12);
        assert!((mean[4] - 28.0 / 3.0).abs() < 1e-12);
        // Sample std of (2, 4, 8): mean 14/3, squares (64 + 4 + 100)/9 = 168/9, /2 = 28/3.
        let sd = rolling(&ts, &x, 3 * H, Statistic::Std);
        assert!((sd[3] - (28.0f64 / 3.0).sqrt()).abs() < 1e-12);
        let z = rolling(&ts, &x, 3 * H, Statistic::ZScore);
        assert!((z[3] - (8.0 - 14.0 / 3.0) / (28.0f64 / 3.0).sqrt()).abs() < 1e-12);
        // An unknown value inside the window makes it unknown until it leaves.
        let y = [1.0, f64::NAN, 4.0, 8.0, 16.0];
        let m = rolling(&ts, &y, 2 * H, Statistic::Mean);
        assert!(m[1].is_nan() && m[2].is_nan());
        assert_eq!(m[3], 6.0);
        // Far from zero the shift keeps the deviation exact.
        let big: Vec<f64> = x.iter().map(|v| 1e9 + v).collect();
        let sd_big = rolling(&ts, &big, 3 * H, Statistic::Std);
        assert!((sd_big[3] - sd[3]).abs() < 1e-6);
    }

    #[test]
    fn ema_by_hand() {
        let ts = hours(4);
        // W = 3 bars: α = 2/4 = 0.5. Seed 10 at 1h; 0.5·10 + 0.5·20 = 15; 0.5·15 + 0.5·0 = 7.5;
        // known once 3 h have passed since the seed (at 4h).
        let e = ema(&ts, &[10.0, 20.0, 0.0, 10.0], 3 * H);
        assert!(e[0].is_nan() && e[1].is_nan() && e[2].is_nan());
        assert_eq!(e[3], 0.5 * 7.5 + 0.5 * 10.0);
        // A two-bar step keeps (1 − α)² of the old value.
        let ts2 = vec![H, 3 * H, 4 * H, 5 * H];
        let e2 = ema(&ts2, &[8.0, 0.0, 0.0, 0.0], 2 * H);
        // bar = 1h (the common gap), α = 2/3; 2-bar step keeps (1/3)² → 8/9; then 8/27, 8/81.
        assert!((e2[1] - 8.0 / 9.0).abs() < 1e-12);
        assert!((e2[3] - 8.0 / 81.0).abs() < 1e-12);
    }

    #[test]
    fn lag_by_hand() {
        let ts = hours(4);
        let l = lag(&ts, &[1.0, 2.0, 3.0, 4.0], 2 * H);
        assert!(l[0].is_nan() && l[1].is_nan());
        assert_eq!(&l[2..], &[1.0, 2.0]);
    }
}
