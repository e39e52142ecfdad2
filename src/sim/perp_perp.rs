//! A perp-vs-perp carry: a long perp in one venue's account and a short perp on the same coin in
//! another's, collecting the difference between the two funding streams.
//!
//! Each leg is its own isolated position in its own account, margined by its venue's brackets
//! and liquidated by its venue's rule ([`super::margin`]), paid its own venue's funding at its
//! own interval on its own price basis (the mark where the venue's data has one, else the last).
//! Leg `a` and leg `b` run on one clock (both timelines restricted to their common bars).
//!
//! Per step, in order:
//! 1. liquidations: each leg on its bar's worst mark (a long's low, a short's high) against
//!    the liquidation price left at the previous close; the other leg is closed at the step's
//!    close (`unwind`);
//! 2. marking: each leg's quantity × its mark's change;
//! 3. funding: each leg's settlements inside the bar, `−qty × rate × price`; a leg the payment
//!    leaves under maintenance at the close is liquidated there by its venue's rule;
//! 4. transfers: a top-up in flight lands; a leg whose distance to liquidation fell below
//!    `top_up_distance` is sent half the margin difference from the other account (with the
//!    transfer fee and delay: while in flight it is in neither account, and the leg is exposed);
//!    when the accounts are already about even, both legs shrink back to the leverage instead
//!    (trade reason `top_up`);
//! 5. rotation (leg b with several venues, every `rotate_every_ms`): leg b moves to the venue
//!    whose trailing funding suits its side best: closed, its margin sent across (fee, transfer
//!    time: leg a is held alone, unhedged, until it lands), reopened there;
//! 6. decisions (none while leg b is moving): on the interval-weighted trailing funding spread, `apr(b) − apr(a)`, each
//!    leg's settled rates summed over the same hours and divided by the hours they cover (an
//!    hourly venue and an 8-hourly one are compared over the same time, never by count).
//!    [`Target::Long`] is long `a`, short `b` (earns when `b` pays more); [`Target::Reverse`]
//!    long `b`, short `a`.
//!
//! Both legs hold the same quantity of the coin, so the position is delta-neutral in the coin;
//! what moves the equity besides funding and costs is the spread between the venues' marks.
//! The components (each leg's price PnL and funding, fees, slippage, liquidation) sum to the
//! change in equity at every step.

use super::margin::liquidation_distance;
use super::policy::{EntryMode, EntryRule, Target, TrailingSignal};
use super::summary::DrawdownTracker;
use super::{EngineParams, RunSummary};
use crate::model::{events, FundingPayment, MarketTimeline, Pnl, Trade, TradeReason};

/// The pair's own parameters (each leg's venue rules are its [`EngineParams`]).
#[derive(Debug, Clone)]
pub struct PerpPerpParams {
    /// The pair's capital, quote currency: half starts in each leg's account.
    pub initial_capital: f64,
    /// Each leg's notional at entry over its account's share of the equity.
    pub leverage: f64,
    /// When to hold which side, on the spread `apr(b) − apr(a)`. `direction = "long"` holds
    /// long `a` / short `b` only, `"reverse"` the other way only, `"both"` either.
    pub entry: EntryRule,
    /// Hours each leg's trailing funding looks back over.
    pub lookback_hours: f64,
    /// Send margin to a leg whose distance to liquidation falls below this, decimal of the mark.
    pub top_up_distance: f64,
    /// Time a transfer between the two venues takes, ms.
    pub transfer_delay_ms: i64,
    /// Fee per transfer between the venues, quote currency.
    pub transfer_fee: f64,
    /// Close both legs at the last step.
    pub close_at_end: bool,
    /// Open again after a liquidation when the rule allows.
    pub reenter_after_liquidation: bool,
    /// With several venues for leg b ([`run_rotating`]): how often leg b may move to the venue
    /// whose trailing funding suits its side best, ms.
    pub rotate_every_ms: Option<i64>,
    /// Leg a is spot bought with cash (the classic carry, its perp leg b rotating among
    /// venues): no leverage, funding or liquidation on it; the capital is split so that the
    /// spot is paid in full and leg b's margin is its notional over `leverage`, and a leg b
    /// near its liquidation price is topped up by selling spot and buying back as much of leg
    /// b. Long carry only (`Target::Long`).
    pub spot_a: bool,
}

/// One step of a perp-perp pair: prices, positions, accounts and the PnL split by cause.
#[derive(Debug, Clone, Copy, Default)]
pub struct PerpPerpRow {
    /// Step time, epoch ms UTC.
    pub ts_ms: i64,
    /// [`Target`] held after the step: 0 flat, 1 long `a` / short `b`, −1 long `b` / short `a`.
    pub state: i8,
    /// What happened ([`events`] flags).
    pub events: u8,
    /// Last price of each leg's perp.
    pub last: [f64; 2],
    /// Mark (the price the leg is valued and paid funding at) of each leg.
    pub mark: [f64; 2],
    /// Signed quantity of each leg after the step, base asset.
    pub qty: [f64; 2],
    /// Margin balance of each leg's account (wallet plus unrealised PnL), quote currency.
    pub margin: [f64; 2],
    /// A transfer between the accounts on its way, quote currency.
    pub in_transit: f64,
    /// Equity: both margins plus what is in transit.
    pub equity: f64,
    /// Each leg's quantity × its mark's change, plus the mark-vs-last gap on its fills.
    pub price_pnl: [f64; 2],
    /// Each leg's funding received (+) or paid (−).
    pub funding: [f64; 2],
    /// Trading fees and transfer fees (≤ 0).
    pub fees: f64,
    /// Fill price versus last (≤ 0).
    pub slippage: f64,
    /// What liquidations took (−) or the insurance fund gave back (+).
    pub liquidation: f64,
    /// Each leg's liquidation price after the step (NaN when flat).
    pub liquidation_price: [f64; 2],
    /// The trailing funding spread `apr(b) − apr(a)`, decimal APR (NaN until both lookbacks
    /// are covered).
    pub spread_apr: f64,
    /// Which of leg b's venues holds it (or will, while a move is on its way): an index into
    /// the venues given to [`run_rotating`]; 0 for a pair with one.
    pub venue_b: u8,
    /// Leg a is held without leg b: leg b is moving between venues.
    pub unhedged: bool,
}

impl PerpPerpRow {
    /// The step's PnL components summed: the change in equity.
    pub fn pnl_total(&self) -> f64 {
        self.price_pnl[0] + self.price_pnl[1] + self.funding[0] + self.funding[1] + self.fees + self.slippage + self.liquidation
    }
}

/// What a perp-perp run produced besides its rows.
#[derive(Debug, Clone, Default)]
pub struct PerpPerpSummary {
    /// Totals in the single-pair summary's shape (price PnL of both legs under `perp`, both
    /// funding streams under `funding`), for the metrics.
    pub run: RunSummary,
    /// Each leg's funding, total.
    pub funding: [f64; 2],
    /// Each leg's price PnL, total.
    pub price_pnl: [f64; 2],
    /// Each leg's settlements met with a position.
    pub settlements: [Vec<FundingPayment>; 2],
    /// Transfers sent between the accounts.
    pub transfers: usize,
    /// Times both legs were shrunk back to the leverage (the accounts even, a leg still near
    /// its liquidation price).
    pub deleveragings: usize,
    /// The venue of each trade in `run.trades`: 0 for leg a, 1 + the venue index for leg b.
    pub trade_venues: Vec<u8>,
    /// The venue index of each of leg b's settlements (`settlements[1]`).
    pub settlement_venues_b: Vec<u8>,
    /// Moves of leg b between venues.
    pub rotations: usize,
}

/// The trade-record name of leg `k`.
pub const LEG_NAMES: [&str; 2] = ["perp_a", "perp_b"];

struct Leg<'a> {
    timeline: &'a MarketTimeline,
    params: &'a EngineParams,
    qty: f64,
    /// Margin balance: wallet plus unrealised PnL at `mark_prev`.
    margin: f64,
    /// Average entry price (the maintenance basis of an entry-valued venue).
    entry: f64,
    mark_prev: f64,
    next_event: usize,
    signal: TrailingSignal,
    /// Whether the leg holds the perp (pays funding) rather than a dated contract.
    on_perp: bool,
    /// The next instrument switch of a dated leg (`timeline.derivative`).
    next_switch: usize,
    /// The last and mark of the instrument reopened at this step's switch (the bar's prices
    /// are the closed contract's): fills and the row use them until the next step.
    switched_to: Option<(f64, f64)>,
}

impl Leg<'_> {
    /// The last and mark an order fills and is valued at, at step `i`.
    fn prices(&self, i: usize) -> (f64, f64) {
        self.switched_to.unwrap_or((self.timeline.perp[i], self.timeline.mark_at(i)))
    }

    fn liquidation_price(&self) -> f64 {
        self.params.brackets.isolated_liquidation_price(self.qty, self.margin, self.mark_prev, self.entry)
    }
}

/// Everything one step booked, before it becomes a row.
#[derive(Default)]
struct StepPnl {
    price: [f64; 2],
    funding: [f64; 2],
    fees: f64,
    slippage: f64,
    liquidation: f64,
    events: u8,
}

struct Run<'a> {
    legs: [Leg<'a>; 2],
    p: &'a PerpPerpParams,
    /// Leg b's venues, the one holding it, and each one's trailing funding.
    b_venues: &'a [(&'a MarketTimeline, &'a EngineParams)],
    b_current: usize,
    b_signals: Vec<TrailingSignal>,
    /// Leg b's quantity to reopen at its new venue when the margin in transit lands.
    reopen_b: Option<f64>,
    next_rotation_ms: i64,
    current: Target,
    in_transit: f64,
    /// Which leg the transfer in flight goes to, and when it lands.
    transit_to: usize,
    transit_lands_ms: i64,
    liquidated: bool,
    summary: PerpPerpSummary,
    /// Whether orders are worked (leg a's `costs.max_participation` or `leg_delay_ms`, or leg
    /// b's cap): entries, exits and rotations then fill over as many closes as they need.
    worked: bool,
    /// The order being worked, if any.
    work: Option<PairWork>,
    /// While an order is worked and the legs stand apart: the excess quantity, its leg, that
    /// leg's mark and the time at the last close (the next close's move on it is legging PnL).
    legging: Option<(f64, usize, f64, i64)>,
    execution: super::execution::ExecutionStats,
    /// The next close's time (`i64::MAX`: none), for a delayed leg's due time.
    next_close_ms: i64,
}

/// What follows a worked order once both legs reach their targets.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Then {
    Nothing,
    /// An exit: the pair is flat.
    Flat,
    /// Leg b closed for a rotation: its margin moves to venue `to` and it reopens there.
    Rotate { to: usize },
}

/// An order being worked on the pair: each leg's target quantity and when it may first fill.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PairWork {
    target: [f64; 2],
    reason: TradeReason,
    due_ms: [i64; 2],
    then: Then,
    /// The close it last filled at: one slice per close (a rotation starts it before the
    /// decisions' turn).
    filled_at: Option<usize>,
}

impl Run<'_> {
    fn equity(&self) -> f64 {
        self.legs[0].margin + self.legs[1].margin + self.in_transit
    }

    /// Fill `qty` (signed) of leg `k` at step `i`'s last with the leg's slippage and fee; the
    /// gap between the fill's reference (the last) and the mark is price PnL.
    fn fill(&mut self, k: usize, i: usize, qty: f64, reason: TradeReason, s: &mut StepPnl) {
        // The leg's market cost model at this step (its own venue's bars or book).
        let costs = self.legs[k].params.costs_at(i);
        self.fill_with(k, i, qty, reason, costs, s);
    }

    /// [`Run::fill`] with the given costs (a delivery pays its settlement fee, no slippage).
    fn fill_with(&mut self, k: usize, i: usize, qty: f64, reason: TradeReason, costs: crate::model::Costs, s: &mut StepPnl) {
        let leg = &mut self.legs[k];
        let (last, mark) = leg.prices(i);
        let rate = costs.perp_slippage_for(qty);
        let fill_price = last * (1.0 + qty.signum() * rate);
        let slippage = qty.abs() * last * rate;
        let fee = qty.abs() * fill_price * costs.perp_fee;
        // Bought at the last, valued at the mark from here on.
        let gap = qty * (mark - last);
        let new_qty = leg.qty + qty;
        let closed = new_qty.abs() <= 1e-12 * qty.abs();
        if closed {
            leg.qty = 0.0;
            leg.entry = f64::NAN;
        } else {
            if leg.qty == 0.0 {
                leg.entry = fill_price;
            } else if leg.qty.signum() == qty.signum() {
                leg.entry = (leg.entry * leg.qty + fill_price * qty) / new_qty;
            }
            leg.qty = new_qty;
        }
        leg.margin += gap - slippage - fee;
        leg.mark_prev = mark;
        s.price[k] += gap;
        s.slippage -= slippage;
        s.fees -= fee;
        self.summary.run.traded_notional += (qty * fill_price).abs();
        self.summary.run.trades.push(Trade { ts_ms: leg.timeline.ts_ms[i], step: i, leg: LEG_NAMES[k], reason, qty, reference_price: last, fill_price, fee, slippage });
        self.summary.trade_venues.push(if k == 0 { 0 } else { 1 + self.b_current as u8 });
    }

    fn close_all(&mut self, i: usize, reason: TradeReason, s: &mut StepPnl) {
        self.reopen_b = None;
        if self.worked && reason == TradeReason::Exit {
            s.events |= events::EXIT;
            self.place(i, [0.0, 0.0], reason, Then::Flat, s);
            return;
        }
        self.work = None;
        for k in 0..2 {
            let q = self.legs[k].qty;
            if q != 0.0 {
                self.fill(k, i, -q, reason, s);
            }
        }
        self.current = Target::Flat;
        s.events |= events::EXIT;
    }

    /// Open `target` with the equity split evenly between the accounts (a transfer with its
    /// fee when they differ), the same coin quantity on both legs.
    fn open(&mut self, i: usize, target: Target, s: &mut StepPnl) {
        let equity = self.equity();
        if equity <= 0.0 {
            return;
        }
        // Each account's share: halves for two perps; for spot and a perp, the spot paid in
        // full and the perp's margin its notional over the leverage.
        let share_a = if self.p.spot_a { self.p.leverage / (1.0 + self.p.leverage) } else { 0.5 };
        let want_a = equity * share_a;
        let gap = self.legs[0].margin - want_a;
        // Evened out only where the transfer is worth its fee (a pair whose equity is down to
        // the fee opens on what each account holds, or not at all).
        if self.in_transit == 0.0 && gap.abs() > 1e-9 * equity && gap.abs() > self.p.transfer_fee && want_a.min(equity - want_a) > self.p.transfer_fee {
            // Flat accounts are evened out at once; the fee is charged to the receiving side.
            let (from, to) = if gap > 0.0 { (0, 1) } else { (1, 0) };
            self.legs[from].margin -= gap.abs();
            self.legs[to].margin += gap.abs() - self.p.transfer_fee;
            s.fees -= self.p.transfer_fee;
            if self.p.transfer_fee > 0.0 {
                self.summary.transfers += 1;
            }
        }
        let reference = 0.5 * (self.legs[0].prices(i).0 + self.legs[1].prices(i).0);
        let qty = if self.p.spot_a {
            // The spot's cost and fee from leg a's account, the perp's margin from leg b's.
            let spot = self.legs[0].prices(i).0 * (1.0 + self.legs[0].params.costs.perp_slippage) * (1.0 + self.legs[0].params.costs.perp_fee);
            (self.legs[0].margin / spot).min(self.legs[1].margin * self.p.leverage / self.legs[1].prices(i).0)
        } else {
            (equity / 2.0).min(self.legs[0].margin).min(self.legs[1].margin) * self.p.leverage / reference
        };
        if !(qty > 0.0 && qty.is_finite()) {
            return;
        }
        let (long, short) = if target == Target::Long { (0, 1) } else { (1, 0) };
        if self.worked {
            let mut wanted = [0.0; 2];
            wanted[long] = qty;
            wanted[short] = -qty;
            self.current = target;
            self.place(i, wanted, TradeReason::Entry, Then::Nothing, s);
        } else {
            self.fill(long, i, qty, TradeReason::Entry, s);
            self.fill(short, i, -qty, TradeReason::Entry, s);
        }
        self.current = target;
        s.events |= events::ENTRY;
        self.summary.run.entries += 1;
    }

    /// Step 1: leg `k` on its bar's worst mark; closed by its venue's rule.
    fn liquidate(&mut self, k: usize, i: usize, s: &mut StepPnl) -> bool {
        let leg = &self.legs[k];
        let qty = leg.qty;
        // Spot bought with cash is not liquidated.
        if qty == 0.0 || (k == 0 && self.p.spot_a) {
            return false;
        }
        let liq = leg.liquidation_price();
        let t = leg.timeline;
        let extreme = if qty < 0.0 { t.mark_high[i] } else { t.mark_low[i] };
        let touched = if qty < 0.0 { extreme >= liq } else { extreme <= liq };
        if !touched {
            return false;
        }
        let mark_prev = leg.mark_prev;
        // Marked to the liquidation price, or to the bar's start if already past it.
        let price = if qty < 0.0 { liq.max(mark_prev) } else { liq.min(mark_prev) };
        let mut rule = leg.params.liquidation;
        if leg.params.market_costs.is_some() {
            // A market order of the whole leg: with the leg's market cost model it also slips
            // its size's impact or walks the leg's book (no further than the bar's extreme).
            rule.fill_slippage += leg.params.costs_at(i).liquidation_slip(qty);
        }
        let filled = rule.fill_price(qty, liq, mark_prev, extreme);
        self.close_by_venue(k, i, price, filled, s);
        true
    }

    /// A leg whose funding payment took its margin below maintenance at the close is
    /// liquidated there, by its venue's rule (funding is taken from the margin, and the venue's
    /// next mark check finds the position under maintenance).
    fn liquidate_after_funding(&mut self, k: usize, i: usize, s: &mut StepPnl) -> bool {
        let leg = &self.legs[k];
        if leg.qty == 0.0 || (k == 0 && self.p.spot_a) {
            return false;
        }
        let mark = leg.timeline.mark_at(i);
        if leg.margin >= leg.params.brackets.maintenance_margin(leg.qty.abs() * mark) {
            return false;
        }
        self.close_by_venue(k, i, mark, mark, s);
        true
    }

    /// Close leg `k` by its venue's liquidation rule: marked to `price`, filled at `filled`
    /// (the slip past it is a loss of the liquidation), the venue's fee or the forfeited margin
    /// taken, a deficit covered by the insurance fund.
    fn close_by_venue(&mut self, k: usize, i: usize, price: f64, filled: f64, s: &mut StepPnl) {
        let leg = &mut self.legs[k];
        let qty = leg.qty;
        let t = leg.timeline;
        let moved = qty * (price - leg.mark_prev);
        s.price[k] += moved;
        leg.margin += moved;
        let slipped = qty * (filled - price);
        s.liquidation += slipped;
        leg.margin += slipped;
        let fill = leg.params.liquidation.close(qty, filled, leg.margin, &leg.params.brackets);
        s.liquidation += fill.shortfall - fill.taken;
        leg.margin += fill.shortfall - fill.taken;
        self.summary.run.trades.push(Trade { ts_ms: t.ts_ms[i], step: i, leg: LEG_NAMES[k], reason: TradeReason::Liquidation, qty: -qty, reference_price: price, fill_price: fill.fill_price, fee: fill.taken, slippage: -slipped });
        self.summary.trade_venues.push(if k == 0 { 0 } else { 1 + self.b_current as u8 });
        self.summary.run.traded_notional += (qty * fill.fill_price).abs();
        leg.qty = 0.0;
        leg.entry = f64::NAN;
        // Nothing held from here: the rest of the bar moves nothing.
        leg.mark_prev = t.mark_at(i);
    }

    fn mark(&mut self, k: usize, i: usize, s: &mut StepPnl) {
        let leg = &mut self.legs[k];
        let mark = leg.timeline.mark_at(i);
        if leg.qty != 0.0 {
            let moved = leg.qty * (mark - leg.mark_prev);
            leg.margin += moved;
            s.price[k] += moved;
        }
        leg.mark_prev = mark;
    }

    fn settle(&mut self, k: usize, i: usize, s: &mut StepPnl) {
        let leg = &mut self.legs[k];
        let (settlements, ts_ms) = (&leg.timeline.funding, &leg.timeline.ts_ms);
        while leg.next_event < settlements.len() && settlements[leg.next_event].settle_ms <= ts_ms[i] {
            let e = settlements[leg.next_event];
            leg.next_event += 1;
            // One settled in an earlier step (a rotated-in leg's past) or not priced is not paid.
            let earlier = i > 0 && e.settle_ms <= ts_ms[i - 1];
            if earlier || !e.is_paid() || leg.qty == 0.0 || !leg.on_perp || (k == 0 && self.p.spot_a) {
                continue;
            }
            let amount = -leg.qty * e.rate * e.price;
            leg.margin += amount;
            s.funding[k] += amount;
            s.events |= events::FUNDING;
            let paid = FundingPayment::paid(e, leg.qty, amount);
            self.summary.settlements[k].push(paid);
            if k == 1 {
                self.summary.settlement_venues_b.push(self.b_current as u8);
            }
            // Both legs' in the run's list: Σ side × rate over them is the spread earned.
            self.summary.run.settlements.push(paid);
        }
    }

    /// Step 3b: a dated leg's roll or delivery at this close: the contract held is closed at
    /// the step's price (a delivery at its settlement price, with the delivery fee and no
    /// slippage) and the same quantity reopened in the next contract at its price. Returns
    /// whether the leg was left with no instrument (the last contract expired).
    fn switch(&mut self, k: usize, i: usize, closing: bool, s: &mut StepPnl) -> bool {
        use crate::model::{Instrument, SwitchReason};
        let Some(path) = self.legs[k].timeline.derivative.as_ref() else { return false };
        let mut ended = false;
        while let Some(switch) = path.switches.get(self.legs[k].next_switch).filter(|sw| sw.step == i).copied() {
            self.legs[k].next_switch += 1;
            if closing && switch.reason != SwitchReason::Delivery {
                continue;
            }
            let reason = switch.reason.trade_reason();
            let qty = self.legs[k].qty;
            if qty != 0.0 {
                let costs = self.legs[k].params.costs;
                let close_costs = costs.closing_dated(switch.reason == SwitchReason::Delivery, self.legs[k].params.delivery_fee);
                self.fill_with(k, i, -qty, reason, close_costs, s);
            }
            let leg = &mut self.legs[k];
            leg.on_perp = switch.to == Instrument::Perp;
            if switch.open_price.is_finite() {
                leg.switched_to = Some((switch.open_price, switch.open_mark));
                leg.mark_prev = switch.open_mark;
                if qty != 0.0 {
                    self.fill(k, i, qty, reason, s);
                }
            } else {
                ended = qty != 0.0 || switch.to == Instrument::None;
            }
        }
        ended
    }

    /// Step 4: land a transfer, then send margin to a leg near its liquidation price.
    fn transfers(&mut self, i: usize, ts_ms: i64, s: &mut StepPnl) {
        if self.in_transit != 0.0 && ts_ms >= self.transit_lands_ms {
            self.legs[self.transit_to].margin += self.in_transit;
            self.in_transit = 0.0;
            // Leg b, moved to another venue, reopens now against leg a (if still held).
            if let Some(_planned) = self.reopen_b.take() {
                let q = -self.legs[0].qty;
                if q != 0.0 && self.current != Target::Flat {
                    self.reopen_leg_b(i, q, s);
                    return;
                }
            }
        }
        if self.in_transit != 0.0 || self.current == Target::Flat {
            return;
        }
        for k in 0..2 {
            let leg = &self.legs[k];
            if leg.qty == 0.0 || (k == 0 && self.p.spot_a) {
                continue;
            }
            let distance = liquidation_distance(leg.qty, leg.liquidation_price(), leg.prices(i).1);
            if self.p.spot_a {
                if distance < self.p.top_up_distance {
                    self.rebalance_spot(i, s);
                }
                break;
            }
            if !(distance < self.p.top_up_distance) {
                continue;
            }
            let other = 1 - k;
            let amount = 0.5 * (self.legs[other].margin - self.legs[k].margin) - self.p.transfer_fee;
            // A transfer worth making raises the leg's margin by a twentieth at least; short of
            // that the accounts are about even and the pair as a whole has outgrown its
            // leverage (the coin rallied or fell a long way): both legs shrink back to it.
            if amount > 0.05 * self.legs[k].margin.max(0.0) {
                self.legs[other].margin -= amount + self.p.transfer_fee;
                s.fees -= self.p.transfer_fee;
                s.events |= events::TOP_UP;
                self.summary.transfers += 1;
                self.summary.run.top_ups += 1;
                if self.p.transfer_delay_ms > 0 {
                    self.in_transit = amount;
                    self.transit_to = k;
                    self.transit_lands_ms = ts_ms + self.p.transfer_delay_ms;
                } else {
                    self.legs[k].margin += amount;
                }
            } else {
                self.deleverage(i, s);
            }
            break;
        }
    }

    /// A spot-and-perp pair whose perp came near its liquidation price: both legs shrink to the
    /// quantity the equity carries at the leverage (spot sold, perp bought back: trade reason
    /// `top_up`), and the spot account's freed cash goes to the perp's account (the transfer fee
    /// and time).
    fn rebalance_spot(&mut self, i: usize, s: &mut StepPnl) {
        // Not while an order is worked: its legs stand apart, and it sets their sizes.
        if self.work.is_some() {
            return;
        }
        let (spot, perp) = (self.legs[0].prices(i).0, self.legs[1].prices(i).0);
        let equity = self.legs[0].margin + self.legs[1].margin;
        let target = equity / (spot + perp / self.p.leverage);
        let held = self.legs[0].qty;
        if !(target < held * (1.0 - 1e-9)) || !(target > 0.0) {
            return;
        }
        let cut = held - target;
        self.fill(0, i, -cut, TradeReason::TopUp, s);
        self.fill(1, i, cut, TradeReason::TopUp, s);
        // The spot account keeps its coins; its cash goes to the perp.
        let free = self.legs[0].margin - self.legs[0].qty * self.legs[0].prices(i).1 - self.p.transfer_fee;
        if free > 0.0 {
            self.legs[0].margin -= free + self.p.transfer_fee;
            s.fees -= self.p.transfer_fee;
            self.summary.transfers += 1;
            if self.p.transfer_delay_ms > 0 {
                self.in_transit = free;
                self.transit_to = 1;
                self.transit_lands_ms = self.legs[0].timeline.ts_ms[i] + self.p.transfer_delay_ms;
            } else {
                self.legs[1].margin += free;
            }
        }
        s.events |= events::TOP_UP;
        self.summary.run.top_ups += 1;
    }

    /// Shrink both legs, by the same quantity, to the pair's leverage on the smaller account.
    fn deleverage(&mut self, i: usize, s: &mut StepPnl) {
        // Not while an order is worked: its legs stand apart, and it sets their sizes.
        if self.work.is_some() {
            return;
        }
        let reference = 0.5 * (self.legs[0].prices(i).0 + self.legs[1].prices(i).0);
        let target = self.legs[0].margin.min(self.legs[1].margin).max(0.0) * self.p.leverage / reference;
        let held = self.legs[0].qty.abs();
        if !(target < held * (1.0 - 1e-9)) {
            return;
        }
        let cut = held - target;
        for k in 0..2 {
            let sign = self.legs[k].qty.signum();
            self.fill(k, i, -sign * cut, TradeReason::TopUp, s);
        }
        s.events |= events::TOP_UP;
        self.summary.run.top_ups += 1;
        self.summary.deleveragings += 1;
    }

    /// Each of leg b's venues' trailing funding APR at `ts_ms` (all advanced, held or not).
    fn b_aprs(&mut self, ts_ms: i64) -> Vec<f64> {
        self.b_venues.iter().zip(self.b_signals.iter_mut()).map(|((t, _), signal)| signal.at(&t.funding, ts_ms)).collect()
    }

    fn spread(&mut self, ts_ms: i64, b_aprs: &[f64]) -> f64 {
        if self.p.spot_a {
            // Spot earns no funding: the signal is leg b's own.
            return b_aprs[self.b_current];
        }
        let a = &mut self.legs[0];
        let apr_a = a.signal.at(&a.timeline.funding, ts_ms);
        b_aprs[self.b_current] - apr_a
    }

    /// Leg b's move to venue `to` at step `i`: closed where it is (trade reason `rotation`),
    /// its account's margin sent to the new venue's account (the transfer fee; on its way for
    /// the transfer time, in neither account, leg a held alone meanwhile), and reopened there
    /// when the margin lands, at the quantity that hedges leg a then.
    fn rotate(&mut self, i: usize, to: usize, s: &mut StepPnl) {
        let qty = self.legs[1].qty;
        if self.worked && qty != 0.0 {
            // Leg b is closed over as many closes as it needs; the move follows.
            let a = self.legs[0].qty;
            self.place(i, [a, 0.0], TradeReason::Rotation, Then::Rotate { to }, s);
            return;
        }
        if qty != 0.0 {
            self.fill(1, i, -qty, TradeReason::Rotation, s);
        }
        self.move_b(i, to, qty != 0.0, s);
    }

    /// Leg b's margin sent to venue `to` (closed there already), and the leg reopened against
    /// leg a when it lands (`reopen`: it was held).
    fn move_b(&mut self, i: usize, to: usize, reopen: bool, s: &mut StepPnl) {
        if self.in_transit != 0.0 {
            // A top-up on its way lands first (it belongs to the pair either way).
            self.legs[self.transit_to].margin += self.in_transit;
            self.in_transit = 0.0;
        }
        let (timeline, params) = self.b_venues[to];
        let leg = &mut self.legs[1];
        // An account holding no more than the fee is not worth a transfer: nothing is sent.
        let fee = if leg.margin > self.p.transfer_fee { self.p.transfer_fee } else { 0.0 };
        let moved = leg.margin - fee;
        s.fees -= fee;
        leg.margin = 0.0;
        leg.timeline = timeline;
        leg.params = params;
        leg.mark_prev = timeline.mark_at(i);
        leg.entry = f64::NAN;
        leg.next_event = timeline.funding.partition_point(|e| e.settle_ms <= timeline.ts_ms[i]);
        self.b_current = to;
        self.summary.rotations += 1;
        if fee > 0.0 {
            self.summary.transfers += 1;
        }
        s.events |= events::TOP_UP;
        let reopen = if reopen { Some(-self.legs[0].qty) } else { None };
        if self.p.transfer_delay_ms > 0 {
            self.in_transit = moved;
            self.transit_to = 1;
            self.transit_lands_ms = self.legs[1].timeline.ts_ms[i] + self.p.transfer_delay_ms;
            self.reopen_b = reopen;
        } else {
            self.legs[1].margin = moved;
            if let Some(q) = reopen.filter(|q| *q != 0.0) {
                self.reopen_leg_b(i, q, s);
            }
        }
    }

    /// Leg b reopened with `qty` against leg a after a move: at once, or worked.
    fn reopen_leg_b(&mut self, i: usize, qty: f64, s: &mut StepPnl) {
        if self.worked {
            let a = self.legs[0].qty;
            self.place(i, [a, qty], TradeReason::Rotation, Then::Nothing, s);
        } else {
            self.fill(1, i, qty, TradeReason::Rotation, s);
        }
    }

    /// Start working an order toward `target` (each leg's quantity); its first fills are at
    /// this close.
    fn place(&mut self, i: usize, target: [f64; 2], reason: TradeReason, then: Then, s: &mut StepPnl) {
        let ts_ms = self.legs[0].timeline.ts_ms[i];
        let execution = self.legs[0].params.execution;
        let delayed = ts_ms + execution.leg_delay_ms;
        let due_ms = match execution.first_leg {
            crate::model::FirstLeg::Spot => [ts_ms, delayed],
            crate::model::FirstLeg::Perp => [delayed, ts_ms],
        };
        self.work = Some(PairWork { target, reason, due_ms, then, filled_at: None });
        self.execution.orders_worked += 1;
        self.work_fills(i, s);
    }

    /// The fills of the order being worked at close `i`: each leg due now trades toward its
    /// target by no more than its venue's cap on the bar's volume; when both are there, what
    /// follows the order happens.
    fn work_fills(&mut self, i: usize, s: &mut StepPnl) {
        let Some(mut work) = self.work else { return };
        if work.filled_at == Some(i) {
            return;
        }
        work.filled_at = Some(i);
        self.work = Some(work);
        self.execution.steps_working += 1;
        let ts_ms = self.legs[0].timeline.ts_ms[i];
        let order = match self.legs[0].params.execution.first_leg {
            crate::model::FirstLeg::Spot => [0, 1],
            crate::model::FirstLeg::Perp => [1, 0],
        };
        let reached = |q: f64, t: f64| (q - t).abs() <= 1e-12 * q.abs().max(t.abs());
        for k in order {
            // Re-read: the first leg's slice may have shrunk the order.
            let Some(work) = self.work else { return };
            let remaining = work.target[k] - self.legs[k].qty;
            if reached(self.legs[k].qty, work.target[k]) || !(work.due_ms[k] <= ts_ms || self.next_close_ms > work.due_ms[k]) {
                continue;
            }
            let share = self.legs[k].params.execution.max_participation;
            let cap = if share.is_finite() { share * self.legs[k].timeline.perp_volume.get(i).copied().unwrap_or(f64::NAN) } else { f64::INFINITY };
            let cap = if cap.is_nan() {
                self.execution.bars_without_volume += 1;
                0.0
            } else {
                cap.max(0.0)
            };
            // The last slice is the exact rest, so a closed leg is exactly zero.
            let mut fill = if remaining.abs() <= cap { remaining } else { remaining.signum() * cap };
            if k == 0 && self.p.spot_a && fill > 0.0 {
                // Spot bought with leg a's cash: no more than it buys now; the order shrinks to
                // it, leg b's target with it.
                let costs = self.legs[0].params.costs;
                let unit = self.legs[0].prices(i).0 * (1.0 + costs.perp_slippage_for(fill)) * (1.0 + costs.perp_fee);
                let affordable = (self.legs[0].margin / unit).max(0.0);
                if fill > affordable {
                    fill = affordable;
                    let mut shrunk = work;
                    shrunk.target = [self.legs[0].qty + fill, -(self.legs[0].qty + fill)];
                    self.work = Some(shrunk);
                }
            }
            if fill != 0.0 {
                self.fill(k, i, fill, work.reason, s);
            }
        }
        let Some(work) = self.work else { return };
        if reached(self.legs[0].qty, work.target[0]) && reached(self.legs[1].qty, work.target[1]) {
            self.work = None;
            match work.then {
                Then::Nothing => {}
                Then::Flat => self.current = Target::Flat,
                Then::Rotate { to } => self.move_b(i, to, true, s),
            }
        }
    }

    /// Legging PnL and time since the last close, and the legs' unmatched part at this one.
    fn note_legging(&mut self, i: usize) {
        let ts_ms = self.legs[0].timeline.ts_ms[i];
        if let Some((excess, k, mark, since)) = self.legging.take() {
            self.execution.legging_pnl += excess * (self.legs[k].prices(i).1 - mark);
            self.execution.partially_hedged_ms += ts_ms - since;
        }
        if self.work.is_some() {
            let (a, b) = (self.legs[0].qty, self.legs[1].qty);
            let apart = a + b;
            if apart.abs() > 1e-9 * a.abs().max(b.abs()) {
                // The excess is the larger leg's.
                let k = if a.abs() >= b.abs() { 0 } else { 1 };
                self.legging = Some((apart, k, self.legs[k].prices(i).1, ts_ms));
            }
        }
    }
}

/// Run the pair over legs `a` and `b` (timelines on one clock), sending each row to `record`.
pub fn run<'t>(a: (&'t MarketTimeline, &'t EngineParams), b: (&'t MarketTimeline, &'t EngineParams), p: &PerpPerpParams, record: impl FnMut(&PerpPerpRow)) -> PerpPerpSummary {
    run_rotating(a, &[b], p, record)
}

/// [`run`] with leg b able to move among `b_venues` (all on leg a's clock) every
/// `p.rotate_every_ms`: to the venue with the highest trailing funding while the pair is short
/// leg b (or flat), the lowest while it is long leg b. Leg b starts at the first venue.
pub fn run_rotating<'t>(a: (&'t MarketTimeline, &'t EngineParams), b_venues: &'t [(&'t MarketTimeline, &'t EngineParams)], p: &PerpPerpParams, mut record: impl FnMut(&PerpPerpRow)) -> PerpPerpSummary {
    let n = a.0.ts_ms.len();
    assert!(!b_venues.is_empty(), "leg b needs a venue");
    let b = b_venues[0];
    debug_assert!(b_venues.iter().all(|v| v.0.ts_ms.len() == n), "the legs run on one clock");
    let mut rule = p.entry;
    rule.lookback_hours = Some(p.lookback_hours);
    let leg = |(timeline, params): (&'t MarketTimeline, &'t EngineParams), margin: f64| Leg {
        timeline,
        params,
        qty: 0.0,
        margin,
        entry: f64::NAN,
        mark_prev: if n > 0 { timeline.mark_at(0) } else { f64::NAN },
        next_event: timeline.first_settlement_in_window(),
        signal: TrailingSignal::new(&rule, &timeline.funding),
        on_perp: timeline.derivative.as_ref().is_none_or(|d| d.first.is_none_or(|f| f == crate::model::Instrument::Perp)),
        next_switch: 0,
        switched_to: None,
    };
    let half = p.initial_capital / 2.0;
    let b_signals = b_venues.iter().map(|(t, _)| TrailingSignal::new(&rule, &t.funding)).collect();
    let mut run = Run {
        legs: [leg(a, half), leg(b, half)],
        p,
        b_venues,
        b_current: 0,
        b_signals,
        reopen_b: None,
        next_rotation_ms: p.rotate_every_ms.filter(|_| b_venues.len() > 1).map_or(i64::MAX, |every| a.0.ts_ms.first().copied().unwrap_or(0) + every),
        current: Target::Flat,
        in_transit: 0.0,
        transit_to: 0,
        transit_lands_ms: 0,
        liquidated: false,
        summary: PerpPerpSummary::default(),
        worked: a.1.execution.worked() || b_venues.iter().any(|v| v.1.execution.worked()),
        work: None,
        legging: None,
        execution: super::execution::ExecutionStats::default(),
        next_close_ms: i64::MAX,
    };
    run.summary.run.initial_capital = p.initial_capital;
    run.summary.run.steps = n;
    run.summary.run.min_liquidation_distance = f64::NAN;
    if n == 0 {
        run.summary.run.final_equity = p.initial_capital;
        return run.summary;
    }
    run.summary.run.first_ts_ms = a.0.ts_ms[0];
    run.summary.run.last_ts_ms = a.0.ts_ms[n - 1];
    let mut drawdown = DrawdownTracker::new(p.initial_capital, a.0.ts_ms[0]);
    let mut equity_prev = p.initial_capital;
    for i in 0..n {
        let ts_ms = a.0.ts_ms[i];
        let mut s = StepPnl::default();
        let held_before = run.current != Target::Flat;
        let last = i + 1 == n;
        for leg in run.legs.iter_mut() {
            leg.switched_to = None;
        }
        run.next_close_ms = a.0.ts_ms.get(i + 1).copied().unwrap_or(i64::MAX);
        if i > 0 {
            let mut hit = [run.liquidate(0, i, &mut s), run.liquidate(1, i, &mut s)];
            for k in 0..2 {
                run.mark(k, i, &mut s);
                run.settle(k, i, &mut s);
            }
            for k in 0..2 {
                hit[k] |= run.liquidate_after_funding(k, i, &mut s);
            }
            if hit[0] || hit[1] {
                s.events |= events::LIQUIDATION;
                run.summary.run.liquidations += 1;
                run.summary.run.first_liquidation_ms.get_or_insert(ts_ms);
                run.liquidated = true;
                for k in 0..2 {
                    if run.legs[k].qty != 0.0 {
                        let q = run.legs[k].qty;
                        run.fill(k, i, -q, TradeReason::Unwind, &mut s);
                    }
                }
                run.current = Target::Flat;
                run.reopen_b = None;
                run.work = None;
                run.summary.run.exits += 1;
                s.events |= events::EXIT;
            }
        } else {
            for k in 0..2 {
                run.settle(k, i, &mut s);
            }
        }
        if held_before {
            run.summary.run.perp_held_ms += ts_ms - a.0.ts_ms[i - 1];
        }
        let unhedged_before = run.reopen_b.is_some();
        // A dated leg rolls or is delivered at this close; with no contract left, the pair closes.
        let mut ended = false;
        for k in 0..2 {
            ended |= run.switch(k, i, last && p.close_at_end, &mut s);
        }
        if ended && run.current != Target::Flat {
            run.close_all(i, TradeReason::Exit, &mut s);
            run.summary.run.exits += 1;
        }
        run.transfers(i, ts_ms, &mut s);
        let b_aprs = run.b_aprs(ts_ms);
        if ts_ms >= run.next_rotation_ms {
            while run.next_rotation_ms <= ts_ms {
                run.next_rotation_ms = run.next_rotation_ms.saturating_add(p.rotate_every_ms.unwrap_or(i64::MAX));
            }
            // Short leg b (or flat): the venue paying the most; long leg b: the least. Only a
            // venue whose trailing funding is known, and better than the one held.
            let long_b = run.current == Target::Reverse;
            let better = |x: f64, y: f64| if long_b { x < y } else { x > y };
            let mut best = run.b_current;
            for (v, &apr) in b_aprs.iter().enumerate() {
                if apr.is_finite() && (!b_aprs[best].is_finite() || better(apr, b_aprs[best])) {
                    best = v;
                }
            }
            if best != run.b_current && run.reopen_b.is_none() && run.work.is_none() && !(last && p.close_at_end) {
                run.rotate(i, best, &mut s);
            }
        }
        let spread = run.spread(ts_ms, &b_aprs);
        let masked = a.0.uncovered.get(i).copied().unwrap_or(false) || run.legs[1].timeline.uncovered.get(i).copied().unwrap_or(false);
        // No new decision while leg b is on its way to another venue.
        let may_trade = !masked && !(run.liquidated && !p.reenter_after_liquidation) && run.reopen_b.is_none() && run.work.is_none();
        // An order being worked fills its next slices (the final close takes what is left).
        if run.work.is_some() {
            if last && p.close_at_end {
                run.work = None;
                run.execution.unfinished = true;
            } else if !masked {
                run.work_fills(i, &mut s);
            }
        }
        let wanted = if last && p.close_at_end {
            Target::Flat
        } else if may_trade {
            p.entry.target(run.current, spread)
        } else {
            run.current
        };
        if wanted != run.current && run.work.is_none() {
            if run.current != Target::Flat {
                let reason = if last && p.close_at_end { TradeReason::Final } else { TradeReason::Exit };
                run.close_all(i, reason, &mut s);
                run.summary.run.exits += 1;
            }
            if wanted != Target::Flat && run.work.is_none() {
                run.open(i, wanted, &mut s);
            }
        }
        if run.worked {
            run.note_legging(i);
        }
        let equity = run.equity();
        let liquidation_price = [if p.spot_a { f64::NAN } else { run.legs[0].liquidation_price() }, run.legs[1].liquidation_price()];
        for k in 0..2 {
            let d = liquidation_distance(run.legs[k].qty, liquidation_price[k], run.legs[k].prices(i).1);
            if d < run.summary.run.min_liquidation_distance || (run.summary.run.min_liquidation_distance.is_nan() && !d.is_nan()) {
                run.summary.run.min_liquidation_distance = d;
            }
        }
        let row = PerpPerpRow {
            ts_ms,
            state: match run.current {
                _ if run.legging.is_some() => crate::model::state::LEGGING,
                Target::Flat => 0,
                Target::Long => 1,
                Target::Reverse => -1,
            },
            events: s.events | if masked { events::UNCOVERED } else { 0 },
            last: [run.legs[0].prices(i).0, run.legs[1].prices(i).0],
            mark: [run.legs[0].prices(i).1, run.legs[1].prices(i).1],
            qty: [run.legs[0].qty, run.legs[1].qty],
            margin: [run.legs[0].margin, run.legs[1].margin],
            in_transit: run.in_transit,
            equity,
            price_pnl: s.price,
            funding: s.funding,
            fees: s.fees,
            slippage: s.slippage,
            liquidation: s.liquidation,
            liquidation_price,
            spread_apr: spread,
            venue_b: run.b_current as u8,
            unhedged: run.reopen_b.is_some(),
        };
        debug_assert!(((equity - equity_prev) - row.pnl_total()).abs() <= 1e-6 * equity_prev.abs().max(1.0), "the components sum to the change in equity");
        equity_prev = equity;
        let totals = &mut run.summary;
        for k in 0..2 {
            totals.price_pnl[k] += s.price[k];
            totals.funding[k] += s.funding[k];
        }
        let pnl = Pnl { perp: s.price[0] + s.price[1], funding: s.funding[0] + s.funding[1], fees: s.fees, slippage: s.slippage, liquidation: s.liquidation, ..Pnl::default() };
        totals.run.pnl.add(&pnl);
        totals.run.steps_in_state[match run.current {
            Target::Flat => 0,
            Target::Long => 1,
            Target::Reverse => 2,
        }] += 1;
        if unhedged_before {
            totals.run.unhedged_ms += ts_ms - a.0.ts_ms[i - 1];
            totals.run.unhedged_pnl += pnl.total();
        }
        drawdown.update(ts_ms, equity, &mut totals.run);
        record(&row);
    }
    drawdown.finish(&mut run.summary.run);
    if run.worked {
        run.summary.run.execution = Some(run.execution);
    }
    run.summary.run.final_equity = run.equity();
    run.summary.run.window_settlements = a.0.paid_settlements().chain(b.0.paid_settlements()).copied().collect();
    run.summary.run.window_settlements.sort_by_key(|s| s.settle_ms);
    run.summary
}

/// Whether `mode` is one a perp-perp pair runs (the spread signal decides, or always on).
pub fn runs_mode(mode: EntryMode) -> bool {
    matches!(mode, EntryMode::AlwaysOn | EntryMode::FundingThreshold)
}
