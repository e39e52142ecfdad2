//! Steps 2 to 4 of the loop: marking both legs to the close, paying each settlement in the bar
//! on the quantity held then, and accruing staking, borrow and the cash rate over the time that
//! passed.

use super::*;

impl Sim<'_> {
    /// Step 2: spot and perp marked from the previous close to this close.
    #[inline(always)]
    pub(super) fn mark_to_close(&mut self, timeline: &MarketTimeline, i: usize, step: &mut Step) {
        let spot_moved = self.book.spot_qty * (step.at.spot - timeline.spot[i - 1]);
        step.pnl.spot += spot_moved;
        if self.params.inverse {
            inverse::mark_to(&mut self.book, timeline.mark_prices()[i - 1], step.at.mark, timeline.spot[i - 1], step.at.spot, &mut step.pnl);
        } else if self.book.perp_qty != 0.0 {
            self.mark_linear_perp(step.at.mark, &mut step.pnl);
        }
        self.book.perp_mark = step.at.mark;
    }

    /// A linear perp's move from its last mark to `mark`, into its margin and the perp
    /// component (the caller then sets the mark).
    #[inline(always)]
    pub(super) fn mark_linear_perp(&mut self, mark: f64, pnl: &mut Pnl) {
        let moved = self.book.perp_qty * (mark - self.book.perp_mark);
        pnl.perp += moved;
        self.book.perp_margin += moved;
    }

    /// `elapsed_ms` in years: on a regular clock the division is done once, with the same bits
    /// every step.
    #[inline(always)]
    pub(super) fn years_of(&mut self, elapsed_ms: i64) -> f64 {
        if elapsed_ms != self.elapsed_years.0 {
            self.elapsed_years = (elapsed_ms, elapsed_ms as f64 / MS_PER_YEAR);
        }
        self.elapsed_years.1
    }

    /// Staking on a long spot leg over `years` at `apr`, accrued in the asset and valued at
    /// `spot`.
    #[inline(always)]
    pub(super) fn stake(&mut self, apr: f64, years: f64, spot: f64, pnl: &mut Pnl) {
        let earned = self.book.spot_qty * apr * years;
        self.book.spot_qty += earned;
        pnl.staking += earned * spot;
    }

    /// Step 3: funding settled in (ts[i-1], ts[i]] on the perp quantity held then.
    /// `next_event` is the first settlement not yet passed (the run starts it at
    /// [`MarketTimeline::first_settlement_in_window`]).
    #[inline(always)]
    pub(super) fn settle_funding(&mut self, timeline: &MarketTimeline, i: usize, next_event: &mut usize, step: &mut Step, summary: &mut RunSummary) {
        let ts_ms = timeline.ts_ms[i];
        while *next_event < timeline.funding.len() && timeline.funding[*next_event].settle_ms <= ts_ms {
            let event = timeline.funding[*next_event];
            *next_event += 1;
            if !event.is_paid() {
                continue; // not valued, so not paid (before the listing, or no price known yet)
            }
            summary.window_settlements.push(event);
            self.settled_regime = Some(regime::of(event.rate, event.interval_hours, self.params.funding_baseline_rate_per_8h));
            // A dated contract pays no funding; the settlement still counts for the market's APR.
            if self.book.perp_qty != 0.0 && !self.book.dated {
                let (amount, base_qty) = if self.params.inverse {
                    // Paid in coin, booked at the close's spot; the position in coin terms.
                    (inverse::fund(&mut self.book, event.rate, event.price, step.at.spot, &mut step.pnl), self.book.perp_qty / event.price)
                } else {
                    let amount = -self.book.perp_qty * event.rate * event.price;
                    self.book.perp_margin += amount;
                    step.pnl.funding += amount;
                    (amount, self.book.perp_qty)
                };
                step.flags |= events::FUNDING;
                summary.settlements.push(FundingPayment::paid(event, base_qty, amount));
            }
        }
    }

    /// Step 4: staking on a long spot leg, or borrow interest on a short one, accrued in the
    /// asset over the elapsed time at the APR known at its start.
    #[inline(always)]
    pub(super) fn accrue_carry(&mut self, timeline: &MarketTimeline, i: usize, step: &mut Step) {
        let years = self.years_of(step.at.ts_ms - timeline.ts_ms[i - 1]);
        if self.params.cash_earns {
            if let Some(&cash_apr) = timeline.cash_apr.get(i - 1) {
                // Free cash (short-sale proceeds are collateral, not idle) earns the rate known at
                // the start of the interval.
                let idle = self.book.free_cash(timeline.spot[i - 1]).max(0.0);
                let interest = idle * cash_apr * years;
                self.book.cash += interest;
                step.pnl.interest += interest;
                self.book.spot_account_costs.interest += interest;
            }
        }
        let spot_qty = self.book.spot_qty;
        if self.params.spot_collateral_haircut > 0.0 {
            // Spot as collateral: a negative quote balance (the short perp's losses beyond
            // the cash) is a loan that pays interest.
            let loan = -(self.book.cash + self.book.perp_margin);
            if loan > 0.0 {
                let interest = loan * self.params.quote_borrow_apr * years;
                self.book.cash -= interest;
                step.pnl.borrow -= interest;
            }
        }
        if spot_qty > 0.0 {
            self.stake(timeline.staking_apr_at(i - 1), years, step.at.spot, &mut step.pnl);
        } else if spot_qty < 0.0 {
            let borrow_apr = timeline.borrow_apr.get(i - 1).copied().unwrap_or(self.params.borrow_apr);
            let owed = -spot_qty * borrow_apr * years;
            self.book.spot_qty -= owed;
            step.pnl.borrow -= owed * step.at.spot;
        }
    }
}
