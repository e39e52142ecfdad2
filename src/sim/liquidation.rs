//! Step 1 of the loop: the perp on its bar's worst mark and the borrowed spot on its bar's
//! high, against the liquidation prices the previous close left; each closed by the venue's
//! rule, a shortfall booked as the insurance fund's.

use super::*;

impl Sim<'_> {
    /// Step 1a: the perp, on the bar's worst mark, against the liquidation price the book left
    /// at the previous close. Closed by the venue's rule. Returns whether it was liquidated.
    #[inline(always)]
    pub(super) fn liquidate_perp(&mut self, timeline: &MarketTimeline, i: usize, liq: f64, step: &mut Step, summary: &mut RunSummary) -> bool {
        let qty = self.book.perp_qty;
        if qty == 0.0 {
            return false;
        }
        let mark_prev = self.book.perp_mark;
        let touched = if qty < 0.0 { timeline.mark_high[i] >= liq } else { timeline.mark_low[i] <= liq };
        if !touched {
            return false;
        }
        summary.traded_notional += if self.params.inverse {
            self.fill_inverse_liquidation(qty, liq, mark_prev, timeline.spot[i - 1], step.at.step, step.at.ts_ms, &mut step.pnl)
        } else {
            let extreme = if qty < 0.0 { timeline.mark_high[i] } else { timeline.mark_low[i] };
            self.fill_perp_liquidation(qty, liq, mark_prev, extreme, step.at.step, step.at.ts_ms, &mut step.pnl)
        };
        true
    }

    /// The perp's liquidation itself (rare: kept out of the hot loop).
    #[cold]
    #[inline(never)]
    /// Returns the traded notional.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fill_perp_liquidation(&mut self, qty: f64, liq: f64, mark_prev: f64, extreme: f64, step_number: usize, ts_ms: i64, pnl: &mut Pnl) -> f64 {
        // Marked to the liquidation price, or to the bar's start if already past it.
        let price = if qty < 0.0 { liq.max(mark_prev) } else { liq.min(mark_prev) };
        let moved = qty * (price - mark_prev);
        pnl.perp += moved;
        self.book.perp_margin += moved;
        // The fill may slip past it (the liquidation model): a loss of the liquidation, so the
        // venue's rule (its fee, or a backstop) applies to the margin left at the fill.
        let mut rule = self.params.liquidation;
        if self.params.market_costs.is_some() {
            // A liquidation is a market order of the whole position: with a market cost model
            // it also slips its size's impact (still no further than the bar's extreme).
            rule.fill_slippage += self.costs().liquidation_slip(qty);
        }
        let filled = rule.fill_price(qty, liq, mark_prev, extreme);
        let slipped = qty * (filled - price);
        pnl.liquidation += slipped;
        self.book.perp_margin += slipped;
        let fill = self.params.liquidation.close(qty, filled, self.book.perp_margin, &self.params.brackets);
        pnl.liquidation += fill.shortfall - fill.taken;
        self.book.perp_margin += fill.shortfall - fill.taken;
        self.trades.push(Trade {
            ts_ms,
            step: step_number,
            leg: "perp",
            reason: TradeReason::Liquidation,
            qty: -qty,
            reference_price: price,
            fill_price: fill.fill_price,
            fee: fill.taken,
            slippage: -slipped,
        });
        self.book.perp_qty = 0.0;
        let margin = self.book.perp_margin;
        self.book.transfer_to_margin(-margin);
        (qty * fill.fill_price).abs()
    }

    /// An inverse perp's liquidation: marked in coin to the liquidation price (or the bar's
    /// start if already past it), the clearance fee taken in coin from what is left, a coin
    /// deficit covered by the insurance fund; the coin left goes back to the spot holding.
    /// Coin amounts are booked at the previous spot close (the close then marks the coin).
    /// Returns the traded notional.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fill_inverse_liquidation(&mut self, usd: f64, liq: f64, mark_prev: f64, spot_prev: f64, step_number: usize, ts_ms: i64, pnl: &mut Pnl) -> f64 {
        let price = if usd < 0.0 { liq.max(mark_prev) } else { liq.min(mark_prev) };
        let coin = usd * (1.0 / mark_prev - 1.0 / price);
        self.book.margin_coin += coin;
        pnl.perp += coin * spot_prev;
        let left = self.book.margin_coin.max(0.0);
        let shortfall = (-self.book.margin_coin).max(0.0);
        let fee = match self.params.liquidation.style {
            margin::LiquidationStyle::LiquidationPrice => (usd.abs() / price * self.params.liquidation.fee_rate).min(left),
            _ => left,
        };
        self.book.margin_coin += shortfall - fee;
        pnl.liquidation += (shortfall - fee) * spot_prev;
        self.trades.push(Trade { ts_ms, step: step_number, leg: "perp", reason: TradeReason::Liquidation, qty: -usd, reference_price: price, fill_price: price, fee: fee * spot_prev, slippage: 0.0 });
        self.book.perp_qty = 0.0;
        let coins = self.book.margin_coin;
        inverse::move_coin_to_margin(&mut self.book, -coins, spot_prev);
        usd.abs()
    }

    /// Step 1b: the borrowed spot, on the bar's spot high, against the price at which the
    /// account's margin level falls to the liquidation level. Bought back there with the venue's
    /// fee. Returns whether it was liquidated.
    #[inline(always)]
    pub(super) fn liquidate_spot(&mut self, timeline: &MarketTimeline, i: usize, liq: f64, step: &mut Step, summary: &mut RunSummary) -> bool {
        let spot_qty = self.book.spot_qty;
        if !(spot_qty < 0.0 && timeline.spot_high_at(i) >= liq) {
            return false;
        }
        summary.traded_notional += self.fill_spot_liquidation(spot_qty, liq, timeline.spot[i - 1], step.at.step, step.at.ts_ms, &mut step.pnl);
        true
    }

    /// The borrowed spot's liquidation itself (rare: kept out of the hot loop).
    #[cold]
    #[inline(never)]
    /// Returns the traded notional.
    pub(super) fn fill_spot_liquidation(&mut self, spot_qty: f64, liq: f64, spot_prev: f64, step_number: usize, ts_ms: i64, pnl: &mut Pnl) -> f64 {
        let price = liq.max(spot_prev);
        // Only what brings the margin level back to the stop level is bought back (Binance);
        // the rest of the loan stays valued at the previous close until the close marks it.
        let units = self.params.spot_margin.liquidated_units(self.book.cash, -spot_qty, price);
        let moved = -units * (price - spot_prev);
        pnl.spot += moved;
        // Bought back at `price` (equity-neutral at that price), then the venue's fee.
        self.book.cash -= units * price;
        self.book.spot_qty = if units >= -spot_qty { 0.0 } else { spot_qty + units };
        let notional = units * price;
        let fee = (notional * self.params.spot_margin.liquidation_fee_rate).min(self.book.cash.max(0.0));
        self.book.cash -= fee;
        let shortfall = (-self.book.cash).max(0.0);
        self.book.cash += shortfall;
        pnl.liquidation += shortfall - fee;
        self.book.spot_account_costs.liquidation += shortfall - fee;
        self.trades.push(Trade {
            ts_ms,
            step: step_number,
            leg: "spot",
            reason: TradeReason::Liquidation,
            qty: units,
            reference_price: price,
            fill_price: price,
            fee,
            slippage: 0.0,
        });
        notional
    }

    /// After either leg was liquidated: remember the carry it belonged to, and leave the
    /// surviving leg (if any) to the after-liquidation policy.
    #[cold]
    #[inline(never)]
    pub(super) fn on_liquidation(&mut self) {
        // An order being worked ends with the position it was building or unwinding.
        self.work = None;
        self.blocked_after_liquidation = !self.params.reenter_after_liquidation;
        if matches!(self.held, Held::Long | Held::Reverse) {
            self.carry = if self.held == Held::Long { Target::Long } else { Target::Reverse };
        }
        self.held = if self.book.spot_qty != 0.0 || self.book.perp_qty != 0.0 { Held::Unhedged } else { Held::Flat };
    }
}
