//! The accounts of one carry position: spot quantity, cash, perp quantity and perp margin, and
//! the fills and transfers that move them. Every change to equity made here is booked to a PnL
//! component at the same time, so the ledger adds up by construction.

pub use crate::model::costs::Costs;
use crate::model::{Pnl, Trade, TradeReason};

/// Prices at the current step.
#[derive(Debug, Clone, Copy)]
pub struct Quote {
    /// Time of the step, epoch ms (UTC).
    pub ts_ms: i64,
    /// Index of the step in the timeline, recorded on trades.
    pub step: usize,
    /// Spot close: where spot orders fill.
    pub spot: f64,
    /// Perp last: where perp orders fill.
    pub perp: f64,
    /// Mark: what the perp position is valued at.
    pub mark: f64,
}

/// Balances in quote currency and quantities in the base asset.
#[derive(Debug, Clone, Copy, Default)]
pub struct Book {
    /// Signed spot quantity (negative: borrowed and sold, the reverse carry).
    pub spot_qty: f64,
    /// Cash outside the perp account (reserve, short-sale proceeds).
    pub cash: f64,
    /// Signed perp quantity (negative: short).
    pub perp_qty: f64,
    /// Perp margin balance: wallet plus unrealised PnL at the last mark.
    pub perp_margin: f64,
    /// Quote sent from the spot account to the perp account on another venue and not yet
    /// arrived (counted in equity, in neither account).
    pub in_flight: f64,
    /// When `in_flight` arrives, epoch ms UTC.
    pub in_flight_arrives_ms: i64,
    /// The current step's fees, slippage and liquidation paid from (or into) the spot account's
    /// cash; with the step's spot, staking and borrow components this is the spot leg's PnL
    /// (the perp leg's is the rest). Written only by fills, transfers and liquidations.
    pub spot_account_costs: Pnl,
    /// The current step's quote moved out of the spot account towards the perp (negative: back).
    pub moved_out_of_spot: f64,
    /// The current step's quote arrived in the perp account (negative: taken out of it).
    pub moved_into_perp: f64,
    /// Average fill price of the perp position open (0 when flat).
    pub perp_entry_price: f64,
    /// A coin-margined perp's margin, in the coin (`perp_margin` is its quote value); 0 for
    /// linear perps.
    pub margin_coin: f64,
    /// The mark the derivative position was last valued at (`perp_margin` includes the PnL up
    /// to it): the next mark-to-close moves from here, also across a roll into another contract.
    pub perp_mark: f64,
    /// The derivative leg is a dated contract (no funding; trades say `dated`), not the perp.
    pub dated: bool,
}

impl Book {
    /// Forget the last step's flows (the spot account's costs, the transfers): a step's row
    /// reports its own.
    #[inline(always)]
    pub fn start_step(&mut self) {
        self.spot_account_costs = Pnl::default();
        self.moved_out_of_spot = 0.0;
        self.moved_into_perp = 0.0;
    }

    /// Equity at `spot` with the perp valued at the mark already in `perp_margin`.
    #[inline]
    pub fn equity(&self, spot: f64) -> f64 {
        self.cash + self.spot_qty * spot + self.perp_margin + self.in_flight
    }

    /// Cash that is free to move: cash less the value owed on borrowed spot.
    #[inline]
    pub fn free_cash(&self, spot: f64) -> f64 {
        self.cash + self.spot_qty.min(0.0) * spot
    }

    /// Buy (`qty` > 0) or sell spot at the close plus adverse slippage, paying the fee in cash.
    pub fn trade_spot(&mut self, qty: f64, at: &Quote, costs: &Costs, reason: TradeReason, pnl: &mut Pnl, trades: &mut Vec<Trade>) {
        if qty == 0.0 {
            return;
        }
        let fill = at.spot * (1.0 + qty.signum() * costs.spot_slippage_for(qty));
        let fee = qty.abs() * fill * costs.spot_fee;
        let slippage = qty * (at.spot - fill);
        self.cash -= qty * fill + fee;
        self.spot_qty += qty;
        pnl.fees -= fee;
        pnl.slippage += slippage;
        self.spot_account_costs.fees -= fee;
        self.spot_account_costs.slippage += slippage;
        trades.push(Trade { ts_ms: at.ts_ms, step: at.step, leg: "spot", reason, qty, reference_price: at.spot, fill_price: fill, fee, slippage: -slippage });
    }

    /// Buy (`qty` > 0) or sell perp at the last price plus adverse slippage; the fill's gap to
    /// the mark is perp PnL, the fee comes out of margin.
    pub fn trade_perp(&mut self, qty: f64, at: &Quote, costs: &Costs, reason: TradeReason, pnl: &mut Pnl, trades: &mut Vec<Trade>) {
        if qty == 0.0 {
            return;
        }
        let fill = at.perp * (1.0 + qty.signum() * costs.perp_slippage_for(qty));
        let fee = qty.abs() * fill * costs.perp_fee;
        let mark_gap = qty * (at.mark - at.perp);
        let slippage = qty * (at.perp - fill);
        self.perp_margin += mark_gap + slippage - fee;
        let before = self.perp_qty;
        self.perp_qty += qty;
        // Average entry: a fill that adds to the position averages in, one that reduces it
        // keeps the entry, one that opens or flips it starts a new one.
        if before == 0.0 || before.signum() != self.perp_qty.signum() {
            self.perp_entry_price = if self.perp_qty == 0.0 { 0.0 } else { fill };
        } else if qty.signum() == before.signum() {
            self.perp_entry_price = (before.abs() * self.perp_entry_price + qty.abs() * fill) / self.perp_qty.abs();
        }
        self.perp_mark = at.mark;
        pnl.perp += mark_gap;
        pnl.slippage += slippage;
        pnl.fees -= fee;
        trades.push(Trade { ts_ms: at.ts_ms, step: at.step, leg: if self.dated { "dated" } else { "perp" }, reason, qty, reference_price: at.perp, fill_price: fill, fee, slippage: -slippage });
    }

    /// Move cash into the perp margin (negative: out of it). Equity does not change.
    #[inline]
    pub fn transfer_to_margin(&mut self, amount: f64) {
        self.cash -= amount;
        self.perp_margin += amount;
        self.moved_out_of_spot += amount;
        self.moved_into_perp += amount;
    }

    /// Send `amount` of cash to the perp account on another venue: it leaves now, pays `fee`
    /// (quote, booked to fees), and arrives at `arrives_ms`.
    pub fn send_to_margin(&mut self, amount: f64, fee: f64, arrives_ms: i64, pnl: &mut Pnl) {
        self.cash -= amount + fee;
        self.in_flight += amount;
        self.in_flight_arrives_ms = arrives_ms;
        self.moved_out_of_spot += amount;
        pnl.fees -= fee;
        self.spot_account_costs.fees -= fee;
    }

    /// Land the transfer in flight: into the perp margin, or back into cash when the perp was
    /// closed meanwhile.
    pub fn receive_in_flight(&mut self) {
        let amount = self.in_flight;
        self.in_flight = 0.0;
        if self.perp_qty != 0.0 {
            self.perp_margin += amount;
            self.moved_into_perp += amount;
        } else {
            self.cash += amount;
            self.moved_out_of_spot -= amount;
        }
    }
}
