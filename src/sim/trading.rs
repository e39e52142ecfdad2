//! The orders a step's close may place: entering, resizing and exiting the carry (sized with
//! its costs), re-hedging the perp, topping up the perp's and the spot-margin account's margin,
//! a lender's recall, forced events, and the costs each fill pays at the step.

use super::*;

impl Sim<'_> {
    /// The position wanted at the close of `at`, holding `current`: the rule strategy's
    /// decisions where there is one, else the entry rule on the trailing signal.
    #[inline(always)]
    pub(super) fn wanted(&self, current: Target, signal_apr: f64, at: &Quote) -> Target {
        if self.benched {
            return Target::Flat;
        }
        match self.params.rules.as_deref() {
            Some(rules) => rules.target(self.params.entry.direction, current, at.step, at.ts_ms, self.entered_ms, self.exited_ms),
            None => self.params.entry.target(current, signal_apr),
        }
    }

    /// The rule strategy's target size at `at` when it differs from the size held by more
    /// than the rebalance band (a held carry is then resized to it).
    #[inline(always)]
    pub(super) fn resize_due(&self, at: &Quote) -> Option<f64> {
        let rules = self.params.rules.as_deref().filter(|r| r.resize)?;
        let size = *rules.size.get(at.step)?;
        (size > 0.0 && !((size / self.size_held - 1.0).abs() <= self.params.rebalance_delta_threshold)).then_some(size)
    }

    /// Cost per unit of spot quantity of opening `target` at `at`: the spot bought (or sold)
    /// with its costs, and the perp margin with the perp's costs.
    pub(super) fn unit_costs(&self, target: Target, at: &Quote, c: &Costs) -> (f64, f64) {
        let p = self.params;
        let spot_per_unit = at.spot * (1.0 + c.spot_slippage) * (1.0 + c.spot_fee);
        let margin_per_unit = if p.spot_collateral_haircut > 0.0 && target == Target::Long {
            // The spot bought counts as margin at its haircut: cash covers only the rest.
            (p.hedge_ratio * at.mark / p.leverage - p.spot_collateral_haircut * at.spot).max(0.0) + p.hedge_ratio * at.perp * (c.perp_fee + c.perp_slippage)
        } else {
            p.hedge_ratio * (at.mark / p.leverage + at.perp * (c.perp_fee + c.perp_slippage))
        };
        (spot_per_unit, margin_per_unit)
    }

    pub(super) fn enter(&mut self, target: Target, at: &Quote, pnl: &mut Pnl) {
        let p = self.params;
        let c = &self.costs();
        let sign = if target == Target::Long { 1.0 } else { -1.0 };
        let mut deploy = self.book.equity(at.spot) * (1.0 - p.reserve_fraction);
        if let Some(rules) = p.rules.as_deref() {
            let size = rules.size.get(at.step).copied().unwrap_or(1.0);
            deploy *= size;
            self.size_held = size;
        }
        self.entered_ms = at.ts_ms;
        if !(deploy > 0.0) {
            return;
        }
        // Size so that, for a long carry, the spot purchase plus the perp margin (and the perp's
        // own costs) use `deploy`; a reverse carry takes the same size, mirrored.
        let (spot_per_unit, margin_per_unit) = self.unit_costs(target, at, c);
        if p.inverse {
            // Buy the coin, post hedge_ratio / leverage of it as the coin margin, and short
            // hedge_ratio × its value in USD contracts (the fee is paid in coin).
            let fee_per_unit = p.hedge_ratio * at.spot * (c.perp_fee + c.perp_slippage);
            let qty = (deploy / (spot_per_unit + fee_per_unit)).min(p.max_perp_notional / (p.hedge_ratio * at.mark));
            self.book.trade_spot(qty, at, c, TradeReason::Entry, pnl, &mut self.trades);
            inverse::move_coin_to_margin(&mut self.book, (qty * p.hedge_ratio / p.leverage).min(qty), at.spot);
            inverse::trade(&mut self.book, -p.hedge_ratio * qty * at.mark, at, c, TradeReason::Entry, pnl, &mut self.trades);
            self.held = Held::Long;
            self.carry = target;
            return;
        }
        let mut qty = (deploy / (spot_per_unit + margin_per_unit)).min(p.max_perp_notional / (p.hedge_ratio * at.mark));
        let mut sized = *c;
        let mut margin_per_unit = margin_per_unit;
        if c.spot_impact > 0.0 || c.perp_impact > 0.0 {
            // Size-dependent slippage: sized again with the impact of the first size folded in
            // (the order only shrinks, so its own impact is no more than assumed).
            sized = c.at_size(qty, p.hedge_ratio * qty);
            let (spot_per_unit, per_unit_margin) = self.unit_costs(target, at, &sized);
            margin_per_unit = per_unit_margin;
            qty = (deploy / (spot_per_unit + margin_per_unit)).min(p.max_perp_notional / (p.hedge_ratio * at.mark));
        }
        if target == Target::Reverse {
            // A reverse carry borrows no more spot than the lender has.
            let limit = self.borrowable();
            if qty > limit {
                qty = limit;
                self.borrow_capped += 1;
            }
            if !(qty > 0.0) {
                return;
            }
            self.borrowed_principal = qty;
        }
        self.held = if sign > 0.0 { Held::Long } else { Held::Reverse };
        self.carry = target;
        self.place(sign * qty, -sign * p.hedge_ratio * qty, qty * margin_per_unit, TradeReason::Entry, at, &sized, pnl);
    }

    /// Resize the held carry to `size` of the allocated capital (a rule strategy's target):
    /// both legs in proportion, the perp margin with them. Growing uses free cash only.
    pub(super) fn resize(&mut self, size: f64, at: &Quote, pnl: &mut Pnl) -> bool {
        let p = self.params;
        let c = &self.costs();
        let (sign, target) = if self.book.spot_qty > 0.0 { (1.0, Target::Long) } else { (-1.0, Target::Reverse) };
        let (spot_per_unit, margin_per_unit) = self.unit_costs(target, at, c);
        let deploy = self.book.equity(at.spot) * (1.0 - p.reserve_fraction) * size;
        let wanted_qty = (deploy / (spot_per_unit + margin_per_unit)).min(p.max_perp_notional / (p.hedge_ratio * at.mark)).max(0.0);
        let qty = self.book.spot_qty.abs();
        let change = wanted_qty - qty;
        if change > 0.0 {
            // A long carry buys spot and posts margin from cash; a reverse carry's sale brings
            // its cash, and the margin comes from what may leave the spot-margin account.
            let free = if sign > 0.0 { (self.book.cash - p.reserve_fraction * self.book.equity(at.spot)).max(0.0) } else { self.transferable_cash(at.spot) };
            let per_unit = if sign > 0.0 { spot_per_unit + margin_per_unit } else { margin_per_unit };
            let mut add = change.min(free / per_unit);
            if !(add > 0.0) {
                return false;
            }
            let mut sized = *c;
            let mut margin_per_unit = margin_per_unit;
            if c.spot_impact > 0.0 || c.perp_impact > 0.0 {
                // As at entry: sized again with the first size's impact folded in.
                sized = c.at_size(add, p.hedge_ratio * add);
                let (spot_per_unit, per_unit_margin) = self.unit_costs(target, at, &sized);
                margin_per_unit = per_unit_margin;
                let per_unit = if sign > 0.0 { spot_per_unit + margin_per_unit } else { margin_per_unit };
                add = change.min(free / per_unit);
            }
            if sign < 0.0 {
                let room = (self.borrowable() - self.borrowed_principal).max(0.0);
                if add > room {
                    add = room;
                    self.borrow_capped += 1;
                }
                if !(add > 0.0) {
                    return false;
                }
                self.borrowed_principal += add;
            }
            self.place(sign * add, -sign * p.hedge_ratio * add, add * margin_per_unit, TradeReason::Resize, at, &sized, pnl);
        } else {
            let share = (-change / qty).min(1.0);
            if !(share > 0.0) {
                return false;
            }
            if p.execution.worked() {
                self.borrowed_principal *= 1.0 - share;
                self.place(-self.book.spot_qty * share, -self.book.perp_qty * share, 0.0, TradeReason::Resize, at, c, pnl);
                self.size_held = size;
                return true;
            }
            let perp_cut = -self.book.perp_qty * share;
            self.book.trade_perp(perp_cut, at, c, TradeReason::Resize, pnl, &mut self.trades);
            let margin = self.book.perp_margin * share;
            self.book.transfer_to_margin(-margin);
            let spot_cut = -self.book.spot_qty * share;
            self.borrowed_principal *= 1.0 - share;
            self.book.trade_spot(spot_cut, at, c, TradeReason::Resize, pnl, &mut self.trades);
        }
        self.size_held = size;
        true
    }

    pub(super) fn exit(&mut self, at: &Quote, reason: TradeReason, pnl: &mut Pnl) {
        self.exited_ms = at.ts_ms;
        // Closed at once (the final close, a universe's exit, after a liquidation): an order
        // being worked ends here.
        self.work = None;
        let c = self.costs();
        if self.params.inverse {
            let usd = -self.book.perp_qty;
            inverse::trade(&mut self.book, usd, at, &c, reason, pnl, &mut self.trades);
            let coins = self.book.margin_coin;
            inverse::move_coin_to_margin(&mut self.book, -coins, at.spot);
            self.book.trade_spot(-self.book.spot_qty, at, &c, reason, pnl, &mut self.trades);
            self.held = Held::Flat;
            return;
        }
        self.book.trade_perp(-self.book.perp_qty, at, &c, reason, pnl, &mut self.trades);
        let margin = self.book.perp_margin;
        self.book.transfer_to_margin(-margin);
        self.book.trade_spot(-self.book.spot_qty, at, &c, reason, pnl, &mut self.trades);
        self.held = Held::Flat;
    }

    /// Cash that may leave the spot account: all of it for a long carry; for a reverse carry,
    /// what keeps the margin level at or above the transfer-out level.
    pub(super) fn transferable_cash(&self, spot: f64) -> f64 {
        let liabilities = (-self.book.spot_qty).max(0.0) * spot;
        (self.book.cash - self.params.spot_margin.transfer_out_level * liabilities).max(0.0)
    }

    /// The mark at which the perp reaches maintenance margin. With spot collateral (portfolio
    /// margin) the collateral is taken to move with the mark (the hedge), so rallies that cost
    /// the short perp raise the collateral too.
    #[inline(always)]
    pub(super) fn perp_liquidation_price(&self, mark: f64, spot: f64) -> f64 {
        let p = self.params;
        if p.inverse {
            return inverse::liquidation_price(&p.brackets, self.book.perp_qty, self.book.margin_coin, mark);
        }
        if p.spot_collateral_haircut == 0.0 || self.book.spot_qty <= 0.0 {
            p.brackets.isolated_liquidation_price(self.book.perp_qty, self.book.perp_margin, mark, self.book.perp_entry_price)
        } else {
            let collateral = p.spot_collateral_haircut * self.book.spot_qty * spot;
            p.brackets.liquidation_price_with_collateral(self.book.perp_qty, self.book.perp_margin, mark, collateral)
        }
    }

    /// The spot a reverse carry may have borrowed at this step, base units (infinite: no limit;
    /// 0 where the series does not know).
    #[inline]
    pub(super) fn borrowable(&self) -> f64 {
        match self.params.borrow_available.as_deref() {
            None => f64::INFINITY,
            Some(series) => series.get(self.cost_step).copied().filter(|v| v.is_finite()).unwrap_or(0.0).max(0.0),
        }
    }

    /// Step 5a for a reverse carry: the lender recalls what exceeds the borrowable quantity.
    /// The excess spot is bought back at market and as much of the long perp closed (its
    /// margin share back to cash). Returns whether anything was recalled.
    pub(super) fn recall(&mut self, at: &Quote, pnl: &mut Pnl) -> bool {
        let borrowed = -self.book.spot_qty;
        // Top-ups and resizes that bought spot back shrank the loan too.
        let principal = self.borrowed_principal.min(borrowed);
        let limit = self.borrowable();
        if !(borrowed > 0.0 && principal > 0.0) || !(principal > limit * (1.0 + 1e-12)) {
            return false;
        }
        let c = self.costs();
        // The share of the loan recalled; the interest accrued on it is bought back with it.
        let share = ((principal - limit) / principal).min(1.0);
        let perp_cut = -self.book.perp_qty * share;
        self.book.trade_perp(perp_cut, at, &c, TradeReason::Recall, pnl, &mut self.trades);
        let margin = self.book.perp_margin * share;
        self.book.transfer_to_margin(-margin);
        self.book.trade_spot(borrowed * share, at, &c, TradeReason::Recall, pnl, &mut self.trades);
        self.borrowed_principal = limit.min(principal);
        if share >= 1.0 {
            self.book.spot_qty = 0.0;
            let rest = self.book.perp_qty;
            if rest != 0.0 {
                self.book.trade_perp(-rest, at, &c, TradeReason::Recall, pnl, &mut self.trades);
            }
            let margin = self.book.perp_margin;
            self.book.transfer_to_margin(-margin);
            self.held = Held::Flat;
            self.borrowed_principal = 0.0;
        }
        self.recalls += 1;
        true
    }

    /// The costs fills pay now: the configured ones, with slippage scaled during a forced spike.
    #[inline(always)]
    pub(super) fn costs(&self) -> Costs {
        let mut c = self.params.costs_at(self.cost_step);
        if self.slippage_scale != 1.0 {
            c.spot_slippage *= self.slippage_scale;
            c.perp_slippage *= self.slippage_scale;
            c.spot_impact *= self.slippage_scale;
            c.perp_impact *= self.slippage_scale;
        }
        c
    }

    /// Apply a forced event at this step's close (see [`forced::Forced`]). Returns whether a
    /// leg was taken (a venue default), for the after-liquidation rule.
    #[cold]
    #[inline(never)]
    pub(super) fn apply_forced(&mut self, event: &forced::ForcedEvent, at: &Quote, pnl: &mut Pnl) -> bool {
        use forced::{DefaultedLeg, Forced};
        match event.event {
            Forced::VenueDefault { leg, recovery_rate, recovery_delay_ms } => {
                let book = &mut self.book;
                let (frozen, spot_taken) = match leg {
                    DefaultedLeg::Perp => (book.perp_margin + book.in_flight, 0.0),
                    DefaultedLeg::All => (book.equity(at.spot), book.spot_qty),
                };
                if book.perp_qty != 0.0 {
                    self.trades.push(Trade { ts_ms: at.ts_ms, step: at.step, leg: "perp", reason: TradeReason::VenueDefault, qty: -book.perp_qty, reference_price: at.mark, fill_price: at.mark, fee: 0.0, slippage: 0.0 });
                }
                if spot_taken != 0.0 {
                    self.trades.push(Trade { ts_ms: at.ts_ms, step: at.step, leg: "spot", reason: TradeReason::VenueDefault, qty: -spot_taken, reference_price: at.spot, fill_price: at.spot, fee: 0.0, slippage: 0.0 });
                }
                if let Some(last) = self.trades.last_mut().filter(|t| t.ts_ms == at.ts_ms && t.reason == TradeReason::VenueDefault) {
                    last.fee = frozen;
                }
                pnl.liquidation -= frozen;
                book.perp_qty = 0.0;
                book.perp_margin = 0.0;
                book.margin_coin = 0.0;
                book.in_flight = 0.0;
                book.perp_entry_price = 0.0;
                if leg == DefaultedLeg::All {
                    book.spot_account_costs.liquidation -= book.cash + book.spot_qty * at.spot;
                    book.cash = 0.0;
                    book.spot_qty = 0.0;
                }
                if frozen > 0.0 && recovery_rate > 0.0 {
                    self.recoveries.push((at.ts_ms + recovery_delay_ms, frozen * recovery_rate));
                }
                true
            }
            Forced::Adl { share } => {
                let qty = self.book.perp_qty;
                let entry = self.book.perp_entry_price;
                let in_profit = (qty < 0.0 && at.mark < entry) || (qty > 0.0 && at.mark > entry);
                if in_profit {
                    let closed = -share.clamp(0.0, 1.0) * qty;
                    let at_mark = Quote { perp: at.mark, ..*at };
                    let free = Costs::FREE;
                    if self.params.inverse {
                        inverse::trade(&mut self.book, closed, &at_mark, &free, TradeReason::Adl, pnl, &mut self.trades);
                    } else {
                        self.book.trade_perp(closed, &at_mark, &free, TradeReason::Adl, pnl, &mut self.trades);
                    }
                }
                false
            }
            Forced::SlippageSpike { multiplier, duration_ms } => {
                self.slippage_scale = multiplier;
                self.slippage_until_ms = at.ts_ms + duration_ms;
                false
            }
        }
    }

    /// Move `amount` of cash into the perp margin: at once on one venue, or sent with the
    /// transfer fee and delay when the legs sit on two.
    pub(super) fn fund_margin(&mut self, amount: f64, at: &Quote, pnl: &mut Pnl) {
        let p = self.params;
        if p.transfer_delay_ms > 0 || p.transfer_fee > 0.0 {
            self.book.send_to_margin(amount, p.transfer_fee, at.ts_ms + p.transfer_delay_ms, pnl);
        } else {
            self.book.transfer_to_margin(amount);
        }
    }

    /// Whether the perp's margin wants topping up: liquidation closer than `top_up_distance`,
    /// or (spot as collateral) the margin and haircut spot no longer covering the initial
    /// margin, since co-moving collateral keeps the liquidation price far while the account
    /// borrows ever more quote currency.
    ///
    /// In a shared (cross or portfolio) account the account's own distance decides instead:
    /// a pair's isolated-equivalent distance says nothing about whether the account is at risk.
    #[inline(always)]
    pub(super) fn wants_top_up(&self, distance: f64, at: &Quote) -> bool {
        let p = self.params;
        if let Some(near) = self.account_near {
            return near;
        }
        distance < p.top_up_distance
            || (p.spot_collateral_haircut > 0.0
                && self.book.perp_qty.abs() * at.mark / p.leverage > self.book.perp_margin + p.spot_collateral_haircut * self.book.spot_qty.max(0.0) * at.spot)
    }

    /// Perp margin above the initial margin of the position at the mark.
    pub(super) fn excess_perp_margin(&self, mark: f64) -> f64 {
        (self.book.perp_margin - self.book.perp_qty.abs() * mark / self.params.leverage).max(0.0)
    }

    /// Reopen the liquidated leg against the surviving one (`after_liquidation = "rehedge"`).
    /// Returns whether anything traded.
    pub(super) fn rehedge_leg(&mut self, at: &Quote, pnl: &mut Pnl) -> bool {
        let p = self.params;
        let c = self.costs();
        let h = p.hedge_ratio;
        let trades_before = self.trades.len();
        if self.book.spot_qty > 0.0 && self.book.perp_qty == 0.0 {
            // Long spot left: short the perp again, its margin from cash, selling spot for what
            // cash cannot cover.
            let per_unit_margin = h * (at.mark / p.leverage + at.perp * (c.perp_fee + c.perp_slippage));
            let need = self.book.spot_qty * per_unit_margin - self.book.cash;
            if need > 0.0 {
                let sold = (need / (at.spot * (1.0 - c.spot_fee - c.spot_slippage) + per_unit_margin)).min(self.book.spot_qty);
                self.book.trade_spot(-sold, at, &c, TradeReason::Rehedge, pnl, &mut self.trades);
            }
            let margin = (self.book.spot_qty * per_unit_margin).min(self.book.cash.max(0.0));
            self.book.transfer_to_margin(margin);
            self.book.trade_perp(-h * self.book.spot_qty, at, &c, TradeReason::Rehedge, pnl, &mut self.trades);
        } else if self.book.spot_qty < 0.0 && self.book.perp_qty == 0.0 {
            // Short spot left: buy the perp again; its margin leaves the spot account only down
            // to the transfer-out level, and spot is bought back for the rest.
            let borrowed = -self.book.spot_qty;
            let per_unit_margin = h * (at.mark / p.leverage + at.perp * (c.perp_fee + c.perp_slippage));
            let level = p.spot_margin.transfer_out_level;
            // cash − x·S·(1+c) − (q − x)·m ≥ level·(q − x)·S  →  x ≥ (q·(m + level·S) − cash) / (m + level·S − S·(1 + c))
            let buy_cost = at.spot * (1.0 + c.spot_fee + c.spot_slippage);
            let denominator = per_unit_margin + level * at.spot - buy_cost;
            let bought = if denominator > 0.0 { ((borrowed * (per_unit_margin + level * at.spot) - self.book.cash) / denominator).clamp(0.0, borrowed) } else { borrowed };
            self.book.trade_spot(bought, at, &c, TradeReason::Rehedge, pnl, &mut self.trades);
            let margin = (-self.book.spot_qty * per_unit_margin).min(self.transferable_cash(at.spot));
            self.book.transfer_to_margin(margin);
            self.book.trade_perp(-h * self.book.spot_qty, at, &c, TradeReason::Rehedge, pnl, &mut self.trades);
        } else if self.book.perp_qty > 0.0 && self.book.spot_qty == 0.0 {
            // Long perp left (the borrowed spot was liquidated): move its excess margin to the
            // spot account, borrow and sell spot so the account sits at the transfer-out level,
            // and trim the perp to the new hedge.
            let moved = self.excess_perp_margin(at.mark);
            self.book.transfer_to_margin(-moved);
            let level = p.spot_margin.transfer_out_level;
            let proceeds_per_unit = at.spot * (1.0 - c.spot_fee - c.spot_slippage);
            // cash + x·proceeds = level·x·S  →  x = cash / (level·S − proceeds)
            let denominator = level * at.spot - proceeds_per_unit;
            let borrow = if denominator > 0.0 { (self.book.cash / denominator).min(self.book.perp_qty / h).max(0.0) } else { 0.0 };
            self.book.trade_spot(-borrow, at, &c, TradeReason::Rehedge, pnl, &mut self.trades);
            let target = h * borrow;
            self.book.trade_perp(target - self.book.perp_qty, at, &c, TradeReason::Rehedge, pnl, &mut self.trades);
        }
        if self.book.spot_qty != 0.0 && self.book.perp_qty != 0.0 {
            self.held = if self.book.spot_qty > 0.0 { Held::Long } else { Held::Reverse };
        }
        self.trades.len() > trades_before
    }

    /// Restore perp quantity to −hedge_ratio × spot quantity when it has drifted too far.
    #[inline(always)]
    pub(super) fn rehedge(&mut self, at: &Quote, pnl: &mut Pnl) -> bool {
        let Some(target) = self.rebalance_target(at) else { return false };
        let c = self.costs();
        let change = target - self.book.perp_qty;
        if self.params.execution.worked() {
            self.place(0.0, change, 0.0, TradeReason::Rebalance, at, &c, pnl);
        } else if self.params.inverse {
            inverse::trade(&mut self.book, change, at, &c, TradeReason::Rebalance, pnl, &mut self.trades);
        } else {
            self.book.trade_perp(change, at, &c, TradeReason::Rebalance, pnl, &mut self.trades);
        }
        true
    }

    /// The perp quantity a rebalance trades to when the perp has drifted from the hedge by
    /// more than the threshold (None: no rebalance due).
    #[inline(always)]
    pub(super) fn rebalance_target(&self, at: &Quote) -> Option<f64> {
        let (target, resizable) = if self.params.inverse {
            // The coin held (spot and margin) against the contracts' coin delta, n / mark.
            (-self.params.hedge_ratio * (self.book.spot_qty + self.book.margin_coin) * at.mark, true)
        } else {
            // No derivative leg (the last dated contract delivered with no successor): nothing to resize.
            (-self.params.hedge_ratio * self.book.spot_qty, self.book.perp_qty != 0.0)
        };
        // Written as "not within" so that a NaN drift counts as drifted, as it always has.
        let drifted = target != 0.0 && resizable && !(((self.book.perp_qty - target) / target).abs() <= self.params.rebalance_delta_threshold);
        drifted.then_some(target)
    }

    /// Bring the perp margin back to notional / leverage when liquidation is too close.
    /// Returns whether margin moved or the legs were shrunk. `spot_live`: false on a masked
    /// step, which may move cash but not sell spot.
    pub(super) fn top_up(&mut self, at: &Quote, distance: f64, spot_live: bool, pnl: &mut Pnl) -> bool {
        let p = self.params;
        // A NaN distance (no position) never triggers a top-up.
        if p.top_up_source == TopUpSource::None || distance.is_nan() || !self.wants_top_up(distance, at) {
            return false;
        }
        if p.inverse {
            // Coin from the spot holding into the coin margin, up to notional / leverage.
            let need = self.book.perp_qty.abs() / at.mark / p.leverage - self.book.margin_coin;
            let moved = need.min(self.book.spot_qty.max(0.0));
            if moved > 0.0 {
                inverse::move_coin_to_margin(&mut self.book, moved, at.spot);
                return true;
            }
            return false;
        }
        let wanted = |book: &Book| book.perp_qty.abs() * at.mark / p.leverage - book.perp_margin - p.spot_collateral_haircut * book.spot_qty.max(0.0) * at.spot;
        // Money already on its way counts.
        let mut need = wanted(&self.book) - self.book.in_flight;
        if need <= 0.0 {
            return false;
        }
        let mut acted = false;
        if matches!(p.top_up_source, TopUpSource::Reserve | TopUpSource::ReserveThenSpot) {
            let moved = need.min(self.transferable_cash(at.spot) - p.transfer_fee);
            if moved > 0.0 {
                self.fund_margin(moved, at, pnl);
                need -= moved;
                acted = true;
            }
        }
        if spot_live && need > 0.0 && matches!(p.top_up_source, TopUpSource::SellSpot | TopUpSource::ReserveThenSpot) {
            let c = self.costs();
            let h = p.hedge_ratio;
            // Shrink both legs by x spot units: a long carry's spot sale raises cash for the margin;
            // a reverse carry's smaller long perp needs less margin.
            let x = if self.book.spot_qty > 0.0 {
                need / (at.spot * (1.0 - c.spot_fee - c.spot_slippage) + h * at.mark / p.leverage)
            } else {
                (self.book.perp_qty.abs() - self.book.perp_margin * p.leverage / at.mark) / h
            };
            let x = x.clamp(0.0, self.book.spot_qty.abs());
            if x > 0.0 {
                let sign = self.book.spot_qty.signum();
                self.book.trade_spot(-sign * x, at, &c, TradeReason::TopUp, pnl, &mut self.trades);
                self.book.trade_perp(sign * h * x, at, &c, TradeReason::TopUp, pnl, &mut self.trades);
                let rest = (wanted(&self.book) - self.book.in_flight).min(self.transferable_cash(at.spot) - p.transfer_fee).max(0.0);
                if rest > 0.0 {
                    self.fund_margin(rest, at, pnl);
                }
                acted = true;
            }
        }
        acted
    }

    /// Answer a margin call on the borrowed spot (margin level at or below the call level):
    /// move the perp's excess margin into the spot account, then (selling-spot sources) buy
    /// back spot and sell perp alike until the level is back at the transfer-out level.
    pub(super) fn spot_margin_top_up(&mut self, at: &Quote, spot_live: bool, pnl: &mut Pnl) -> bool {
        let p = self.params;
        let borrowed = -self.book.spot_qty;
        if p.top_up_source == TopUpSource::None || borrowed <= 0.0 {
            return false;
        }
        let level = |book: &Book| book.cash / ((-book.spot_qty) * at.spot);
        if level(&self.book) > p.spot_margin.margin_call_level {
            return false;
        }
        let target = p.spot_margin.transfer_out_level;
        let mut acted = false;
        let moved = self.excess_perp_margin(at.mark).min(target * borrowed * at.spot - self.book.cash).max(0.0);
        if moved > 0.0 {
            self.book.transfer_to_margin(-moved);
            acted = true;
        }
        if spot_live && level(&self.book) <= p.spot_margin.margin_call_level && matches!(p.top_up_source, TopUpSource::SellSpot | TopUpSource::ReserveThenSpot) {
            let c = self.costs();
            let buy_cost = at.spot * (1.0 + c.spot_fee + c.spot_slippage);
            // cash − x·S·(1+c) = target·(q − x)·S  →  x = (target·q·S − cash) / (target·S − S·(1+c))
            let denominator = target * at.spot - buy_cost;
            let x = if denominator > 0.0 { ((target * borrowed * at.spot - self.book.cash) / denominator).clamp(0.0, borrowed) } else { borrowed };
            if x > 0.0 {
                self.book.trade_spot(x, at, &c, TradeReason::TopUp, pnl, &mut self.trades);
                self.book.trade_perp(-p.hedge_ratio * x, at, &c, TradeReason::TopUp, pnl, &mut self.trades);
                let freed = self.excess_perp_margin(at.mark);
                self.book.transfer_to_margin(-freed);
                acted = true;
            }
        }
        acted
    }
}
