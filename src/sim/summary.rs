//! What a run produces besides its rows: the [`RunSummary`] the loop fills, and the equity
//! curve's daily closes and drawdown, tracked step by step (`DrawdownTracker`) or recorded
//! from a finished path ([`record_equity`]).

use super::policy::AfterLiquidation;
use crate::model::{FundingPayment, Pnl, Settlement, Trade};
use crate::time::MS_PER_DAY;

/// What a run produced besides the per-step rows.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Number of steps simulated.
    pub steps: usize,
    /// Time of the first step, epoch ms UTC.
    pub first_ts_ms: i64,
    /// Time of the last step, epoch ms UTC.
    pub last_ts_ms: i64,
    /// Starting cash, quote currency.
    pub initial_capital: f64,
    /// Equity at the last step, quote currency.
    pub final_equity: f64,
    /// Sum of every step's components.
    pub pnl: Pnl,
    /// Equity at each UTC day's last step: (day start ms, equity).
    pub daily_equity: Vec<(i64, f64)>,
    /// The cash rate of each day of `daily_equity`, time-weighted decimal APR (empty without a
    /// cash rate): the risk-free rate of Sharpe and Sortino.
    pub cash_apr_by_day: Vec<f64>,
    /// The cash rate over the window, time-weighted decimal APR (0 without one).
    pub cash_apr_mean: f64,
    /// Deepest fall of equity below a previous peak (the first peak is the initial capital),
    /// negative decimal; 0 when none.
    pub max_drawdown: f64,
    /// Longest time spent below a previous equity peak, ms.
    pub max_drawdown_duration_ms: i64,
    /// Time of the trough of the maximum drawdown.
    pub max_drawdown_trough_ms: i64,
    /// Steps at which the perp was resized back to the hedge ratio.
    pub rebalances: usize,
    /// Top-ups that moved margin (or sold spot to raise it).
    pub top_ups: usize,
    /// Steps at which a leg (perp, borrowed spot or both) was liquidated.
    pub liquidations: usize,
    /// Carries opened, legs reopened after a liquidation (`rehedge`) included.
    pub entries: usize,
    /// Positions closed: by the entry rule, after a liquidation, or at the end.
    pub exits: usize,
    /// Held carries resized to a rule strategy's new target size.
    pub resizes: usize,
    /// PnL by funding regime ([`super::regime`]): each settlement interval's to the regime of the
    /// rate that settled it (the steps up to and including the one it settled in); the rest
    /// after the window's last settlement. Sums to the run's PnL.
    pub regime_pnl: [f64; 4],
    /// Time a perp was held, ms, by the same regimes.
    pub regime_held_ms: [i64; 4],
    /// The baseline the regimes were told apart by, decimal per 8 h; NaN where no pair run
    /// tracked them (a book's own summary).
    pub funding_baseline_rate_per_8h: f64,
    /// Smallest distance to liquidation seen at any close while hedged, over the perp (on the
    /// mark) and the borrowed spot (on the spot price); NaN if never hedged.
    pub min_liquidation_distance: f64,
    /// Sum of |fill notional| of every trade.
    pub traded_notional: f64,
    /// Steps spent in each state: flat, long carry, reverse carry, one leg unhedged.
    pub steps_in_state: [usize; 4],
    /// Time with a perp position open (funding earned or paid; a dated contract does not count), ms.
    pub perp_held_ms: i64,
    /// Time with one leg left unhedged after a liquidation, ms.
    pub unhedged_ms: i64,
    /// PnL made over steps that started with one leg unhedged.
    pub unhedged_pnl: f64,
    /// Reverse-carry entries (and resizes) cut to the borrowable quantity
    /// (`[data.borrow_available]`).
    pub borrow_capped: usize,
    /// Recalls: steps where the borrowable quantity fell below the borrowed spot and the
    /// excess was bought back (trade reason `recall`).
    pub recalls: usize,
    /// The run had a borrowable-quantity series (`borrow_capped` and `recalls` apply).
    pub borrow_limited: bool,
    /// With orders worked (`max_participation`, `leg_delay_ms`): what working them came to.
    pub execution: Option<super::execution::ExecutionStats>,
    /// Total time simulated outside some source's coverage (`allow_partial_coverage`), ms.
    pub uncovered_ms: i64,
    /// What happened after the first liquidation, for the summary ("hold": the rest of the run
    /// was directional).
    pub after_liquidation: Option<AfterLiquidation>,
    /// Time of the first liquidation.
    pub first_liquidation_ms: Option<i64>,
    /// Every fill, in time order.
    pub trades: Vec<Trade>,
    /// Settlements inside the window that met a position.
    pub settlements: Vec<FundingPayment>,
    /// Every settlement the run paid (inside the window, priced), held or not.
    pub window_settlements: Vec<Settlement>,
}

/// Record `equity` (at `ts_ms`, from the summary's initial capital) into `summary` as a run
/// records its own: the daily closes, the final equity and the drawdown, replacing what the
/// summary held (a path whose equity was changed after it ran, e.g. funding re-priced).
pub fn record_equity(summary: &mut RunSummary, ts_ms: &[i64], equity: &[f64]) {
    summary.daily_equity.clear();
    summary.max_drawdown = 0.0;
    summary.max_drawdown_trough_ms = 0;
    summary.max_drawdown_duration_ms = 0;
    let mut tracker = DrawdownTracker::new(summary.initial_capital, ts_ms.first().copied().unwrap_or(0));
    for (&t, &e) in ts_ms.iter().zip(equity) {
        tracker.update(t, e, summary);
    }
    if !ts_ms.is_empty() {
        tracker.finish(summary);
    }
}

/// Daily closes and the drawdown, tracked step by step for the metrics.
pub(crate) struct DrawdownTracker {
    equity_prev: f64,
    peak: f64,
    peak_ms: i64,
    /// The lowest equity since the peak: only a lower one can deepen the drawdown (for a fixed
    /// peak, `equity / peak − 1` rises with equity, rounding included), so the division is done
    /// only then.
    low_since_peak: f64,
    /// The UTC day of the last step, days since the epoch, and when the next one starts.
    day: i64,
    next_day_ms: i64,
}

impl DrawdownTracker {
    #[inline(always)]
    pub(crate) fn new(initial_capital: f64, first_ms: i64) -> Self {
        let day = first_ms.div_euclid(MS_PER_DAY);
        Self { equity_prev: initial_capital, peak: initial_capital, peak_ms: first_ms, low_since_peak: initial_capital, day, next_day_ms: (day + 1) * MS_PER_DAY }
    }

    #[inline(always)]
    pub(crate) fn update(&mut self, ts_ms: i64, equity: f64, summary: &mut RunSummary) {
        // Steps come in time order, so a new day is one that starts past the next midnight.
        if ts_ms >= self.next_day_ms {
            summary.daily_equity.push((self.day * MS_PER_DAY, self.equity_prev));
            self.day = ts_ms.div_euclid(MS_PER_DAY);
            self.next_day_ms = (self.day + 1) * MS_PER_DAY;
        }
        if equity >= self.peak {
            self.peak = equity;
            self.peak_ms = ts_ms;
            self.low_since_peak = equity;
        } else {
            if equity < self.low_since_peak {
                self.low_since_peak = equity;
                let drawdown = equity / self.peak - 1.0;
                if drawdown < summary.max_drawdown {
                    summary.max_drawdown = drawdown;
                    summary.max_drawdown_trough_ms = ts_ms;
                }
            }
            summary.max_drawdown_duration_ms = summary.max_drawdown_duration_ms.max(ts_ms - self.peak_ms);
        }
        self.equity_prev = equity;
    }

    pub(crate) fn finish(&self, summary: &mut RunSummary) {
        summary.daily_equity.push((self.day * MS_PER_DAY, self.equity_prev));
        summary.final_equity = self.equity_prev;
    }
}
