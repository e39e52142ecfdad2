//! Coin-margined (inverse) perps, as on BitMEX (XBTUSD), Deribit (BTC-PERPETUAL) and Binance
//! COIN-M: the contract is a USD notional, and its margin, PnL, funding and fees are in the coin
//! (MARGIN.md §8). Attribution stays in the quote currency: each coin amount is booked at the
//! spot price, and the margin's own coin holding moving with the coin's price is the
//! `coin_margin` component.
//!
//! In a book with `inverse = true`, `perp_qty` is the signed USD notional (negative: short),
//! `margin_coin` the margin in coin, and `perp_margin` its quote value at the last spot close.
//! A position of notional n marked from mark m0 to m1 makes n·(1/m0 − 1/m1) coin; funding is
//! −n·rate/price coin; a fill of dn at F pays |dn|/F × fee coin.
//!
//! The carry is the classic cash-and-carry: buy the coin, post `hedge_ratio / leverage` of it
//! as margin, short `hedge_ratio` × its value in contracts. At 1x the whole coin is the margin
//! and the book is a synthetic dollar. Maintenance: the bracket's rate × |n| / mark in coin
//! (tiered by the USD notional; the brackets' `cum` is not used).

use super::book::{Book, Costs, Quote};
use super::margin::Brackets;
use crate::model::{Pnl, Trade, TradeReason};

/// Re-value the margin coin at `spot` (the quote figure the ledger shows).
#[inline]
pub fn sync(book: &mut Book, spot: f64) {
    book.perp_margin = book.margin_coin * spot;
}

/// Buy (`usd` > 0) or sell inverse contracts of `usd` notional at the last price plus adverse
/// slippage; the coin fee and the fill's gap to the mark come out of the coin margin.
pub fn trade(book: &mut Book, usd: f64, at: &Quote, costs: &Costs, reason: TradeReason, pnl: &mut Pnl, trades: &mut Vec<Trade>) {
    if usd == 0.0 {
        return;
    }
    let fill = at.perp * (1.0 + usd.signum() * costs.perp_slippage);
    let fee_coin = usd.abs() / fill * costs.perp_fee;
    // A fill at F valued at mark M makes usd·(1/F − 1/M) coin: slippage to the last price,
    // then the last price's gap to the mark.
    let slippage_coin = usd * (1.0 / fill - 1.0 / at.perp);
    let gap_coin = usd * (1.0 / at.perp - 1.0 / at.mark);
    book.margin_coin += slippage_coin + gap_coin - fee_coin;
    // The position is valued at this mark from now on (the next bar's liquidation fill starts here).
    book.perp_mark = at.mark;
    let before = book.perp_qty;
    book.perp_qty += usd;
    if before == 0.0 || before.signum() != book.perp_qty.signum() {
        book.perp_entry_price = if book.perp_qty == 0.0 { 0.0 } else { fill };
    }
    pnl.perp += gap_coin * at.spot;
    pnl.slippage += slippage_coin * at.spot;
    pnl.fees -= fee_coin * at.spot;
    sync(book, at.spot);
    trades.push(Trade { ts_ms: at.ts_ms, step: at.step, leg: "perp", reason, qty: usd, reference_price: at.perp, fill_price: fill, fee: fee_coin * at.spot, slippage: -slippage_coin * at.spot });
}

/// Move `coins` from the spot holding into the perp's coin margin (negative: back), at `spot`.
pub fn move_coin_to_margin(book: &mut Book, coins: f64, spot: f64) {
    book.spot_qty -= coins;
    book.margin_coin += coins;
    sync(book, spot);
    book.moved_out_of_spot += coins * spot;
    book.moved_into_perp += coins * spot;
}

/// Mark the position from `mark_prev` to `mark` and the coin margin from `spot_prev` to `spot`.
#[inline]
pub fn mark_to(book: &mut Book, mark_prev: f64, mark: f64, spot_prev: f64, spot: f64, pnl: &mut Pnl) {
    pnl.coin_margin += book.margin_coin * (spot - spot_prev);
    let coin = book.perp_qty * (1.0 / mark_prev - 1.0 / mark);
    book.margin_coin += coin;
    pnl.perp += coin * spot;
    sync(book, spot);
}

/// Funding on `usd` notional at `rate` valued at `price`: −usd·rate/price coin, booked at `spot`.
#[inline]
pub fn fund(book: &mut Book, rate: f64, price: f64, spot: f64, pnl: &mut Pnl) -> f64 {
    let coin = -book.perp_qty * rate / price;
    book.margin_coin += coin;
    sync(book, spot);
    let amount = coin * spot;
    pnl.funding += amount;
    amount
}

/// The mark at which the position's coin margin falls to maintenance, mmr × |n| / P: for a
/// short, P = N(1 − mmr)/(N/mark − margin); for a long, P = N(1 + mmr)/(margin + N/mark).
/// Infinite for a short whose coin margin covers its notional (1x and better: no rally
/// liquidates it); NaN without a position.
pub fn liquidation_price(brackets: &Brackets, usd: f64, margin_coin: f64, mark: f64) -> f64 {
    if usd == 0.0 {
        return f64::NAN;
    }
    let size = usd.abs();
    let mmr = brackets.maintenance_margin(size) / size;
    if usd < 0.0 {
        let denominator = size / mark - margin_coin;
        if denominator <= 0.0 { f64::INFINITY } else { size * (1.0 - mmr) / denominator }
    } else {
        (size * (1.0 + mmr) / (margin_coin + size / mark)).max(0.0)
    }
}
