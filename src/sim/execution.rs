//! Orders worked over time instead of filled at once: each leg's fills capped at a share of its
//! bar's volume (`max_participation`), and the second leg filled `leg_delay_ms` after the first.
//!
//! A decision (an entry, an exit, a resize, a re-hedge) becomes a `Work`: the quantities each
//! leg is to reach. At each close from the decision's on, each leg trades toward its target, by
//! no more than the cap allows on the volume of the bar that just closed (known at the close),
//! and not before its due time. Each slice pays the costs of its own size (a `sqrt_impact` model
//! charges the slice's impact, not the whole order's). While the legs stand apart, the part of
//! one leg not matched by the other is real exposure: its price PnL between closes is counted
//! as legging PnL, the time as time partially hedged, and the ledger's state reads
//! [`crate::model::state::LEGGING`].
//!
//! What is not worked: liquidations (the venue's), top-ups, a lender's recall, forced events,
//! the closes after a liquidation and the final close at the end of the run (a valuation, not a
//! trade the strategy could stretch). While an order is being worked the strategy takes no new
//! decision but one: an entry rule that turns against the order being built closes what was
//! built (worked in turn). Margin top-ups from cash still answer; selling spot to top up waits
//! for the order to finish.
//!
//! A leg delayed by `leg_delay_ms` fills at the last close known at its due time: on bars
//! longer than the delay, the same close; once the delay reaches the next close, that one.

use super::*;
use crate::model::FirstLeg;

/// How strategy orders reach the market.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Execution {
    /// The largest share of a bar's volume one leg's fills may take, decimal; infinite: no cap.
    pub max_participation: f64,
    /// Time from the first leg's fill to the second's, ms.
    pub leg_delay_ms: i64,
    /// The leg that trades first.
    pub first_leg: FirstLeg,
}

impl Execution {
    /// Every order filled at once, both legs at the same close.
    pub const AT_ONCE: Execution = Execution { max_participation: f64::INFINITY, leg_delay_ms: 0, first_leg: FirstLeg::Spot };

    /// Whether orders are worked (capped or delayed) rather than filled at once.
    #[inline(always)]
    pub fn worked(&self) -> bool {
        self.max_participation.is_finite() || self.leg_delay_ms != 0
    }
}

impl Default for Execution {
    fn default() -> Self {
        Self::AT_ONCE
    }
}

/// An order being worked: the quantities the legs are to reach.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Work {
    /// Spot quantity wanted, base units (negative: borrowed).
    pub(super) spot_target: f64,
    /// Perp quantity wanted, base units.
    pub(super) perp_target: f64,
    /// Cash posted as perp margin per unit of perp opened (an entry's or a resize's sizing);
    /// a perp that shrinks releases its margin in proportion instead.
    pub(super) margin_per_perp: f64,
    /// The trade reason its fills carry.
    pub(super) reason: TradeReason,
    /// When each leg may first fill, epoch ms.
    pub(super) spot_due_ms: i64,
    pub(super) perp_due_ms: i64,
}

/// What a run's worked orders came to (zero without a cap or a delay).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExecutionStats {
    /// Orders worked over more than one close or with a delayed leg.
    pub orders_worked: usize,
    /// Closes at which a worked order filled or waited (the one placing it and the one
    /// completing it included).
    pub steps_working: usize,
    /// Time the legs stood apart while an order was worked, ms.
    pub partially_hedged_ms: i64,
    /// Price PnL of the unmatched part of the legs over that time, quote currency (part of the
    /// spot and perp components, not beside them).
    pub legging_pnl: f64,
    /// Bars at which a leg had an order to fill but no volume known: nothing filled there.
    pub bars_without_volume: usize,
    /// Whether an order was still being worked when the run ended (the final close filled it).
    pub unfinished: bool,
}

/// The part of each leg not matched by the other at hedge ratio `hedge_ratio`: (spot, perp),
/// base units. A long carry's 10 spot against −6 perp (ratio 1) leaves (4, 0).
#[inline]
pub(super) fn unmatched(spot_qty: f64, perp_qty: f64, hedge_ratio: f64) -> (f64, f64) {
    if spot_qty == 0.0 || perp_qty == 0.0 || spot_qty.signum() == perp_qty.signum() {
        return (spot_qty, perp_qty);
    }
    let matched = spot_qty.abs().min(perp_qty.abs() / hedge_ratio) * spot_qty.signum();
    (spot_qty - matched, perp_qty + hedge_ratio * matched)
}

impl Sim<'_> {
    /// The legs' unmatched parts (spot, perp) while an order is worked and they stand apart
    /// (beyond rounding); None otherwise. The whole unmatched part is exposure, a drift the
    /// order inherited included.
    #[inline]
    pub(super) fn legging(&self) -> Option<(f64, f64)> {
        self.work?;
        let h = self.params.hedge_ratio;
        let (spot, perp) = unmatched(self.book.spot_qty, self.book.perp_qty, h);
        let apart = spot.abs() + perp.abs() / h;
        let size = self.book.spot_qty.abs().max(self.book.perp_qty.abs() / h);
        (apart > 1e-9 * size).then_some((spot, perp))
    }
}

/// Whether `qty` has reached `target` (to the last few bits: slices are computed as
/// differences).
#[inline]
fn reached(qty: f64, target: f64) -> bool {
    (qty - target).abs() <= 1e-12 * qty.abs().max(target.abs())
}

impl Sim<'_> {
    /// Trade each leg by the given quantities: at once with `costs` (spot, margin, perp), or as
    /// a [`Work`] started at this close, whose first slices fill now at the costs of their own
    /// size. `margin`: the cash posted as margin for the perp opened.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn place(&mut self, spot_change: f64, perp_change: f64, margin: f64, reason: TradeReason, at: &Quote, costs: &Costs, pnl: &mut Pnl) {
        if !self.params.execution.worked() {
            self.book.trade_spot(spot_change, at, costs, reason, pnl, &mut self.trades);
            self.book.transfer_to_margin(margin);
            self.book.trade_perp(perp_change, at, costs, reason, pnl, &mut self.trades);
            return;
        }
        let margin_per_perp = if perp_change != 0.0 { margin / perp_change.abs() } else { 0.0 };
        let e = self.params.execution;
        let (spot_due_ms, perp_due_ms) = match e.first_leg {
            FirstLeg::Spot => (at.ts_ms, at.ts_ms + e.leg_delay_ms),
            FirstLeg::Perp => (at.ts_ms + e.leg_delay_ms, at.ts_ms),
        };
        self.work = Some(Work { spot_target: self.book.spot_qty + spot_change, perp_target: self.book.perp_qty + perp_change, margin_per_perp, reason, spot_due_ms, perp_due_ms });
        self.execution.orders_worked += 1;
        self.work_fills(at, true, pnl);
    }

    /// Close every position through a worked order (targets zero), with `reason`.
    pub(super) fn place_exit(&mut self, at: &Quote, reason: TradeReason, pnl: &mut Pnl) {
        self.exited_ms = at.ts_ms;
        let c = self.costs();
        let (spot, perp) = (self.book.spot_qty, self.book.perp_qty);
        self.place(-spot, -perp, 0.0, reason, at, &c, pnl);
    }

    /// The fills of the order being worked at this close: each leg due now trades toward its
    /// target by what its bar's volume allows (`spot_live`: false on a stale-spot step, where
    /// the spot waits). Ends the order when both legs are there; an exit's end leaves the book
    /// flat with its margin back in cash. Returns whether anything traded.
    pub(super) fn work_fills(&mut self, at: &Quote, spot_live: bool, pnl: &mut Pnl) -> bool {
        let Some(mut work) = self.work else { return false };
        self.execution.steps_working += 1;
        let p = self.params;
        let c = self.costs();
        let next_close_ms = self.next_close_ms;
        let due = |due_ms: i64| due_ms <= at.ts_ms || next_close_ms > due_ms;
        let mut traded = false;
        let legs = match p.execution.first_leg {
            FirstLeg::Spot => [true, false],
            FirstLeg::Perp => [false, true],
        };
        for spot_leg in legs {
            if spot_leg {
                let remaining = work.spot_target - self.book.spot_qty;
                if reached(self.book.spot_qty, work.spot_target) || !spot_live || !due(work.spot_due_ms) {
                    continue;
                }
                let mut fill = remaining.signum() * remaining.abs().min(self.leg_cap(self.fill_caps.0));
                if fill > 0.0 && self.book.spot_qty >= 0.0 {
                    // Buying spot for a long carry: no more than the cash left once the margin
                    // the rest of the perp needs is kept back; the order shrinks to what it can
                    // afford, the perp's target with it.
                    let keep = (work.perp_target - self.book.perp_qty).abs() * work.margin_per_perp;
                    let unit = at.spot * (1.0 + c.spot_slippage_for(fill)) * (1.0 + c.spot_fee);
                    let affordable = ((self.book.cash - keep) / unit).max(0.0);
                    if fill > affordable {
                        fill = affordable;
                        work.spot_target = self.book.spot_qty + fill;
                        work.perp_target = -p.hedge_ratio * work.spot_target;
                    }
                }
                if fill < 0.0 && self.book.spot_qty + fill < 0.0 {
                    // Borrowing more for a reverse carry: no more than the lender has now.
                    let room = (self.borrowable() - (-self.book.spot_qty).max(0.0)).max(0.0);
                    let borrowed_by_fill = -(self.book.spot_qty + fill).min(0.0) - (-self.book.spot_qty).max(0.0);
                    if borrowed_by_fill > room {
                        fill += borrowed_by_fill - room;
                        work.spot_target = self.book.spot_qty + fill;
                        work.perp_target = -p.hedge_ratio * work.spot_target;
                        self.borrow_capped += 1;
                        self.borrowed_principal = self.borrowed_principal.min(-work.spot_target);
                    }
                }
                if fill != 0.0 {
                    self.book.trade_spot(fill, at, &c, work.reason, pnl, &mut self.trades);
                    traded = true;
                }
            } else {
                let remaining = work.perp_target - self.book.perp_qty;
                if reached(self.book.perp_qty, work.perp_target) || !due(work.perp_due_ms) {
                    continue;
                }
                let mut fill = remaining.signum() * remaining.abs().min(self.leg_cap(self.fill_caps.1));
                let held = self.book.perp_qty;
                let opening = held == 0.0 || fill.signum() == held.signum();
                if opening && fill != 0.0 && work.margin_per_perp > 0.0 && fill.abs() * work.margin_per_perp > self.book.cash {
                    // The margin this slice needs is more than the cash left (a cash top-up
                    // spent some): the order shrinks to what the cash margins, the spot's target
                    // with it.
                    fill = fill.signum() * (self.book.cash.max(0.0) / work.margin_per_perp);
                    work.perp_target = held + fill;
                    work.spot_target = -work.perp_target / p.hedge_ratio;
                }
                if fill == 0.0 {
                    continue;
                }
                if held != 0.0 && fill.signum() != held.signum() {
                    // Closing: the margin of the part closed comes back to cash (all of it on
                    // the last slice), as a resize's cut releases it.
                    let share = (fill.abs() / held.abs()).min(1.0);
                    self.book.trade_perp(fill, at, &c, work.reason, pnl, &mut self.trades);
                    let released = if self.book.perp_qty == 0.0 { self.book.perp_margin } else { self.book.perp_margin * share };
                    self.book.transfer_to_margin(-released);
                } else {
                    self.book.transfer_to_margin(fill.abs() * work.margin_per_perp);
                    self.book.trade_perp(fill, at, &c, work.reason, pnl, &mut self.trades);
                }
                traded = true;
            }
        }
        if reached(self.book.spot_qty, work.spot_target) && reached(self.book.perp_qty, work.perp_target) {
            self.work = None;
            if work.spot_target == 0.0 && work.perp_target == 0.0 {
                self.book.spot_qty = 0.0;
                self.book.perp_qty = 0.0;
                let margin = self.book.perp_margin;
                self.book.transfer_to_margin(-margin);
                self.held = Held::Flat;
            }
        } else {
            self.work = Some(work);
        }
        traded
    }

    /// The largest fill a leg may make at this close, base units, from `cap` (the participation
    /// share of its bar's volume; NaN: the volume is unknown, and nothing fills).
    #[inline]
    fn leg_cap(&mut self, cap: f64) -> f64 {
        if cap.is_nan() {
            self.execution.bars_without_volume += 1;
            return 0.0;
        }
        cap.max(0.0)
    }
}
