//! Step 5 of the loop: the decisions at the close (the after-liquidation policy, entries, exits
//! and flips, resizes, re-hedges, recalls and top-ups), and the position's state code.

use super::*;

impl Sim<'_> {
    /// Step 5: the decisions at the close. Returns the perp's liquidation price when the
    /// decisions computed it and left the book unchanged since.
    #[inline(always)]
    pub(super) fn decide(&mut self, step: &mut Step, signal_apr: f64, masked: bool, final_close: bool, summary: &mut RunSummary) -> Option<f64> {
        let p = self.params;
        let at = step.at;
        let current = self.carry_held();
        let wanted = if final_close { Target::Flat } else { self.wanted(current, signal_apr, &at) };
        if self.blocked_after_liquidation && p.entry.mode != EntryMode::AlwaysOn && wanted == Target::Flat {
            // The signal said flat since the liquidation: a later entry is a new decision.
            self.blocked_after_liquidation = false;
        }
        let reason = if final_close { TradeReason::Final } else { TradeReason::Exit };
        if self.work.is_some() {
            if !final_close {
                return self.decide_working(step, wanted, masked, summary);
            }
            // The run ends with an order still being worked: the final close takes the rest.
            self.work = None;
            self.execution.unfinished = true;
        }
        let pnl = &mut step.pnl;
        let mut liquidation_price_now = None;
        // A stale-spot step decides nothing that needs spot (the final close still happens);
        // closing a lone perp leg needs no spot price.
        let decide = !masked || final_close;
        match self.held {
            Held::Unhedged => {
                let lone_perp = self.book.spot_qty == 0.0;
                if final_close {
                    self.exit(&at, TradeReason::Final, pnl);
                    step.flags |= events::EXIT;
                    summary.exits += 1;
                } else if decide || lone_perp {
                    match p.after_liquidation {
                        AfterLiquidation::Close => {
                            self.exit(&at, TradeReason::Unwind, pnl);
                            step.flags |= events::EXIT;
                            summary.exits += 1;
                        }
                        AfterLiquidation::Rehedge => {
                            let wanted_now = self.wanted(self.carry, signal_apr, &at);
                            if wanted_now == self.carry && decide {
                                if self.rehedge_leg(&at, pnl) {
                                    step.flags |= events::ENTRY;
                                    summary.entries += 1;
                                }
                            } else if wanted_now != self.carry {
                                self.exit(&at, reason, pnl);
                                step.flags |= events::EXIT;
                                summary.exits += 1;
                            }
                        }
                        AfterLiquidation::Hold => {
                            // The surviving leg stays until the entry rule says flat, or until a
                            // new carry may open (reenter_after_liquidation).
                            if decide && wanted == Target::Flat && p.entry.mode != EntryMode::AlwaysOn {
                                self.exit(&at, reason, pnl);
                                step.flags |= events::EXIT;
                                summary.exits += 1;
                            } else if decide && wanted != Target::Flat && p.reenter_after_liquidation {
                                self.exit(&at, TradeReason::Exit, pnl);
                                self.enter(wanted, &at, pnl);
                                step.flags |= events::EXIT | events::ENTRY;
                                summary.exits += 1;
                                summary.entries += 1;
                            }
                        }
                    }
                }
            }
            _ if !decide => {}
            Held::Flat => {
                if wanted != Target::Flat && !self.blocked_after_liquidation {
                    self.enter(wanted, &at, pnl);
                    // Nothing to deploy (no equity, or a universe pair given no capital) opens nothing.
                    if self.held != Held::Flat {
                        step.flags |= events::ENTRY;
                        summary.entries += 1;
                    }
                }
            }
            _ if wanted != current && p.execution.worked() && !final_close => {
                // Worked: the exit first; a flip's entry follows once it is done.
                self.place_exit(&at, reason, pnl);
                step.flags |= events::EXIT;
                summary.exits += 1;
            }
            _ if wanted != current => {
                self.exit(&at, reason, pnl);
                step.flags |= events::EXIT;
                summary.exits += 1;
                if wanted != Target::Flat {
                    self.enter(wanted, &at, pnl);
                    if self.held != Held::Flat {
                        step.flags |= events::ENTRY;
                        summary.entries += 1;
                    }
                }
            }
            Held::Long | Held::Reverse => {
                if self.held == Held::Reverse && self.params.borrow_available.is_some() && self.recall(&at, pnl) {
                    step.flags |= events::REBALANCE;
                    if self.held == Held::Flat {
                        step.flags |= events::EXIT;
                        summary.exits += 1;
                        return None;
                    }
                }
                if let Some(size) = self.resize_due(&at) {
                    if self.resize(size, &at, pnl) {
                        step.flags |= events::REBALANCE;
                        summary.resizes += 1;
                    }
                }
                // A resize worked over bars sets both legs' targets: no re-hedge beside it.
                if self.work.is_none() && self.rehedge(&at, pnl) {
                    step.flags |= events::REBALANCE;
                    summary.rebalances += 1;
                }
                let liq = self.perp_liquidation_price(at.mark, at.spot);
                // The checks first, inline: the top-ups themselves are rare.
                let distance = liquidation_distance(self.book.perp_qty, liq, at.mark);
                let mut topped = self.wants_top_up(distance, &at) && self.top_up(&at, distance, true, pnl);
                if self.book.spot_qty < 0.0 {
                    topped |= self.spot_margin_top_up(&at, true, pnl);
                }
                if topped {
                    step.flags |= events::TOP_UP;
                    summary.top_ups += 1;
                } else {
                    liquidation_price_now = Some(liq);
                }
            }
        }
        // A masked step still answers a margin call with cash that is already there.
        if masked && !final_close && self.cash_top_ups(step, summary) {
            liquidation_price_now = None;
        }
        liquidation_price_now
    }

    /// Margin calls answered with cash only (no spot sold), for a held carry: the perp's top-up
    /// and the borrowed spot's. Returns whether margin moved.
    fn cash_top_ups(&mut self, step: &mut Step, summary: &mut RunSummary) -> bool {
        if !matches!(self.held, Held::Long | Held::Reverse) {
            return false;
        }
        let at = step.at;
        let liq = self.perp_liquidation_price(at.mark, at.spot);
        let distance = liquidation_distance(self.book.perp_qty, liq, at.mark);
        let mut topped = self.wants_top_up(distance, &at) && self.top_up(&at, distance, false, &mut step.pnl);
        if self.book.spot_qty < 0.0 {
            topped |= self.spot_margin_top_up(&at, false, &mut step.pnl);
        }
        if topped {
            step.flags |= events::TOP_UP;
            summary.top_ups += 1;
        }
        topped
    }

    /// The carry the position held belongs to (flat for none, or a lone leg).
    fn carry_held(&self) -> Target {
        match self.held {
            Held::Long => Target::Long,
            Held::Reverse => Target::Reverse,
            Held::Flat | Held::Unhedged => Target::Flat,
        }
    }

    /// Step 5 while an order is being worked ([`super::execution`]): the order's fills at this
    /// close, unless the entry rule turned against the carry being built, which is then closed
    /// (worked in turn); margin top-ups from cash only. Returns no liquidation price (the book
    /// computes it at the record).
    #[cold]
    #[inline(never)]
    fn decide_working(&mut self, step: &mut Step, wanted: Target, masked: bool, summary: &mut RunSummary) -> Option<f64> {
        let at = step.at;
        let carry = self.carry_held();
        let exiting = self.work.is_some_and(|w| w.spot_target == 0.0 && w.perp_target == 0.0);
        if self.held == Held::Reverse && self.params.borrow_available.is_some() && !masked && self.recall(&at, &mut step.pnl) {
            // The lender recalled part of the loan: the order ends with what is held (a
            // re-hedge then matches the legs).
            self.work = None;
            step.flags |= events::REBALANCE;
            if self.held == Held::Flat {
                step.flags |= events::EXIT;
                summary.exits += 1;
            }
            return None;
        }
        if !masked && !exiting && wanted != carry {
            self.place_exit(&at, TradeReason::Exit, &mut step.pnl);
            step.flags |= events::EXIT;
            summary.exits += 1;
        } else {
            self.work_fills(&at, !masked, &mut step.pnl);
        }
        self.cash_top_ups(step, summary);
        None
    }

    /// The ledger state code of the position held.
    #[inline(always)]
    pub(super) fn state_code(&self) -> (i8, usize) {
        if self.work.is_some() && self.legging().is_some() {
            // Time legging counts toward the carry it builds or unwinds.
            return (state::LEGGING, if self.held == Held::Reverse { 2 } else { 1 });
        }
        match self.held {
            Held::Flat => (state::FLAT, 0),
            Held::Long => (state::LONG_CARRY, 1),
            Held::Reverse => (state::REVERSE_CARRY, 2),
            Held::Unhedged => (state::UNHEDGED_SPOT, 3),
        }
    }
}
