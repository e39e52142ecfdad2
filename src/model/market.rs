//! The aligned market the engine runs over ([`MarketTimeline`]), its funding settlements, the
//! span each source covers, stale-spot spans, and premium samples: plain data, produced by
//! `data` and read by `sim`, `venue`, `measure` and `render`.

use serde::{Deserialize, Serialize};

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

/// One settled funding rate, as the trailing signal sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SettledRate {
    /// Settlement time, epoch ms UTC: the rate is known from then on.
    pub settle_ms: i64,
    /// Decimal rate per interval.
    pub rate: f64,
    /// Hours the rate covers.
    pub interval_hours: f64,
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
    /// Every settlement loaded (also before the window): the history a trailing-funding signal
    /// may look at.
    pub funding_history: Vec<SettledRate>,
    /// Steps where the spot close was older than the perp bar (spot gap).
    pub stale_spot_steps: usize,
    /// Why each step's spot close is stale (bits of [`quality::stale`]); 0 for a live close.
    pub spot_stale: Vec<u8>,
    /// Runs of stale-spot steps, for the manifest and the report.
    pub stale_spans: Vec<StaleSpan>,
    /// Highest and lowest spot price inside the bar ending at the step (the close on a stale
    /// step, or where the source has no range): the short spot's margin is checked on them.
    /// Empty means "use the close".
    pub spot_high: Vec<f64>,
    pub spot_low: Vec<f64>,
    /// Steps outside some required source's coverage (simulated only with
    /// `allow_partial_coverage`); empty when every step is covered.
    pub uncovered: Vec<bool>,
    /// The span each required source covers, for the manifest and the report.
    pub coverage: Vec<Coverage>,
    /// What the window lost to coverage, and where a stand-in price was used, for the terminal,
    /// the manifest and the report.
    pub coverage_warnings: Vec<String>,
}

/// The span of time one source covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// `spot`, `perp`, `mark`, `index`, `funding` or `staking`.
    pub source: String,
    /// First and last covered time (UTC): a bar series from its first to its last close; a
    /// funding series from one interval before its first settlement to one interval after its
    /// last (no settlement is missing in between).
    pub first: String,
    pub last: String,
    pub first_ms: i64,
    pub last_ms: i64,
}

/// A run of consecutive stale-spot steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaleSpan {
    /// First and last step of the run (UTC, step = bar close).
    pub from: String,
    pub to: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub steps: usize,
    /// What was found, e.g. "spot gap, zero-volume spot bar".
    pub reasons: String,
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

    /// Whether step `i` lies outside some source's coverage.
    #[inline]
    pub fn is_uncovered(&self, i: usize) -> bool {
        self.uncovered.get(i).copied().unwrap_or(false)
    }

    /// The spot bar's high at step `i` (its close where no range is known).
    #[inline]
    pub fn spot_high_at(&self, i: usize) -> f64 {
        self.spot_high.get(i).copied().unwrap_or(self.spot[i])
    }
}

/// Annualise a per-interval rate by its own interval: rate × (24 / hours) × 365.
pub fn annualise(rate: f64, interval_hours: f64) -> f64 {
    rate * (24.0 / interval_hours) * 365.0
}

/// Premium samples, each known at `ts_ms`.
#[derive(Debug, Clone, Default)]
pub struct PremiumSeries {
    pub ts_ms: Vec<i64>,
    pub premium: Vec<f64>,
}

impl PremiumSeries {
    /// The median sample (NaN when empty): a proxy's persistent bias shows here.
    pub fn median(&self) -> f64 {
        let mut sorted = self.premium.clone();
        sorted.sort_by(f64::total_cmp);
        match sorted.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        }
    }
}
