//! The simulation loop: one pass over the aligned timeline's slices.
//!
//! Each step, in this order (every rule sees only data known at the step):
//! 1. **Liquidation check** on the bar's worst mark (high for a short, low for a long), with the
//!    margin left after the previous step: if the liquidation price was touched, the perp is
//!    closed there and the venue's liquidation fee taken from what margin is left. The spot leg
//!    stays on the books, unhedged.
//! 2. **Price moves**: spot and perp marked from the previous close to this close.
//! 3. **Funding** for settlements in `(previous step, this step]`, on the perp quantity held
//!    then, at the price known at the settlement.
//! 4. **Staking / borrow** accrued in the spot asset over the elapsed time at the APR known at
//!    the start of it.
//! 5. **Decisions** at the close: enter or exit on the entry rule, re-hedge when delta drifts,
//!    top up margin when liquidation comes too close.
//!
//! The row's PnL components sum to its change in equity.
//!
//! With `mask_stale_spot`, a step whose spot close is stale (see `data::quality`) makes no
//! decisions, and its liquidation check moves to the next clean step, which checks the worst
//! mark of every bar since: no breach is lost, and no action is taken on a price that was not
//! live. Such rows carry the `MASKED` event flag.

pub mod book;

use crate::config::{Config, TopUpSource};
use crate::data::align::MarketTimeline;
use crate::ledger::{events, state, Pnl, Recorder, SettlementPaid, StepRow, Trade, TradeReason};
use crate::margin::{liquidation_distance, Brackets};
use crate::strategy::{trailing_funding_apr, EntryRule, Target};
use crate::time::{MS_PER_DAY, MS_PER_YEAR};
use book::{Book, Costs, Quote};

/// Everything the loop needs, as plain numbers (decimals, not bps).
#[derive(Debug, Clone)]
pub struct EngineParams {
    pub initial_capital: f64,
    pub leverage: f64,
    pub hedge_ratio: f64,
    pub reserve_fraction: f64,
    pub rebalance_delta_threshold: f64,
    pub top_up_distance: f64,
    pub top_up_source: TopUpSource,
    pub borrow_apr: f64,
    pub costs: Costs,
    pub liquidation_fee_rate: f64,
    pub brackets: Brackets,
    pub entry: EntryRule,
    pub close_at_end: bool,
    pub reenter_after_liquidation: bool,
    /// Skip decisions and defer liquidation checks on stale-spot steps.
    pub mask_stale_spot: bool,
}

impl EngineParams {
    /// Engine parameters from a validated config.
    pub fn from_config(config: &Config) -> Self {
        let c = &config.costs;
        let taker = c.order_type == crate::config::OrderType::Taker;
        let p = &config.portfolio;
        let s = &config.strategy;
        EngineParams {
            initial_capital: p.initial_capital,
            leverage: p.leverage,
            hedge_ratio: p.hedge_ratio,
            reserve_fraction: p.reserve_fraction,
            rebalance_delta_threshold: p.rebalance_delta_threshold,
            top_up_distance: p.top_up_distance,
            top_up_source: p.top_up_source,
            borrow_apr: p.borrow_apr,
            costs: Costs {
                spot_fee: if taker { c.spot_taker_bps } else { c.spot_maker_bps } * 1e-4,
                perp_fee: if taker { c.perp_taker_bps } else { c.perp_maker_bps } * 1e-4,
                spot_slippage: c.spot_slippage_bps * 1e-4,
                perp_slippage: c.perp_slippage_bps * 1e-4,
            },
            liquidation_fee_rate: config.margin.liquidation_fee_rate,
            brackets: Brackets::new(config.margin.brackets.clone()),
            entry: EntryRule {
                mode: s.mode,
                direction: s.direction,
                entry_funding_apr: s.entry_funding_apr,
                exit_funding_apr: s.exit_funding_apr,
                lookback_settlements: s.lookback_settlements,
            },
            close_at_end: s.close_at_end,
            reenter_after_liquidation: s.reenter_after_liquidation,
            mask_stale_spot: config.data.mask_stale_spot,
        }
    }
}

/// What a run produced besides the per-step rows.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub steps: usize,
    pub first_ts_ms: i64,
    pub last_ts_ms: i64,
    pub initial_capital: f64,
    pub final_equity: f64,
    /// Sum of every step's components.
    pub pnl: Pnl,
    /// Equity at each UTC day's last step: (day start ms, equity).
    pub daily_equity: Vec<(i64, f64)>,
    pub max_drawdown: f64,
    /// Longest time spent below a previous equity peak, ms.
    pub max_drawdown_duration_ms: i64,
    /// Time of the trough of the maximum drawdown.
    pub max_drawdown_trough_ms: i64,
    pub rebalances: usize,
    pub top_ups: usize,
    pub liquidations: usize,
    pub entries: usize,
    pub exits: usize,
    /// Smallest distance to liquidation seen at any close while hedged (NaN if never hedged).
    pub min_liquidation_distance: f64,
    /// Sum of |fill notional| of every trade.
    pub traded_notional: f64,
    /// Steps spent in each state: flat, long carry, reverse carry, unhedged spot.
    pub steps_in_state: [usize; 4],
    pub trades: Vec<Trade>,
    /// Settlements inside the window that met a position.
    pub settlements: Vec<SettlementPaid>,
    /// Every settlement inside the window, (settle_ms, rate, interval_hours), held or not.
    pub window_settlements: Vec<(i64, f64, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Flat,
    Long,
    Reverse,
    /// Spot left after the perp was liquidated.
    Unhedged,
}

struct Sim<'a> {
    params: &'a EngineParams,
    book: Book,
    held: Held,
    trades: Vec<Trade>,
}

impl Sim<'_> {
    fn enter(&mut self, target: Target, at: &Quote, pnl: &mut Pnl) {
        let p = self.params;
        let c = &p.costs;
        let sign = if target == Target::Long { 1.0 } else { -1.0 };
        let deploy = self.book.equity(at.spot) * (1.0 - p.reserve_fraction);
        if deploy <= 0.0 {
            return;
        }
        // Size so that, for a long carry, the spot purchase plus the perp margin (and the perp's
        // own costs) use `deploy`; a reverse carry takes the same size, mirrored.
        let spot_per_unit = at.spot * (1.0 + c.spot_slippage) * (1.0 + c.spot_fee);
        let margin_per_unit = p.hedge_ratio * (at.mark / p.leverage + at.perp * (c.perp_fee + c.perp_slippage));
        let qty = deploy / (spot_per_unit + margin_per_unit);
        self.book.trade_spot(sign * qty, at, c, TradeReason::Entry, pnl, &mut self.trades);
        self.book.transfer_to_margin(qty * margin_per_unit);
        self.book.trade_perp(-sign * p.hedge_ratio * qty, at, c, TradeReason::Entry, pnl, &mut self.trades);
        self.held = if sign > 0.0 { Held::Long } else { Held::Reverse };
    }

    fn exit(&mut self, at: &Quote, reason: TradeReason, pnl: &mut Pnl) {
        let c = self.params.costs;
        self.book.trade_perp(-self.book.perp_qty, at, &c, reason, pnl, &mut self.trades);
        let margin = self.book.perp_margin;
        self.book.transfer_to_margin(-margin);
        self.book.trade_spot(-self.book.spot_qty, at, &c, reason, pnl, &mut self.trades);
        self.held = Held::Flat;
    }

    /// Restore perp quantity to −hedge_ratio × spot quantity when it has drifted too far.
    fn rehedge(&mut self, at: &Quote, pnl: &mut Pnl) -> bool {
        let target = -self.params.hedge_ratio * self.book.spot_qty;
        if target == 0.0 || ((self.book.perp_qty - target) / target).abs() <= self.params.rebalance_delta_threshold {
            return false;
        }
        let c = self.params.costs;
        self.book.trade_perp(target - self.book.perp_qty, at, &c, TradeReason::Rebalance, pnl, &mut self.trades);
        true
    }

    /// Bring the perp margin back to notional / leverage when liquidation is too close.
    fn top_up(&mut self, at: &Quote, distance: f64, pnl: &mut Pnl) -> bool {
        let p = self.params;
        // A NaN distance (no position) never triggers a top-up.
        if p.top_up_source == TopUpSource::None || distance.is_nan() || distance >= p.top_up_distance {
            return false;
        }
        let wanted = |book: &Book| book.perp_qty.abs() * at.mark / p.leverage - book.perp_margin;
        let mut need = wanted(&self.book);
        if need <= 0.0 {
            return false;
        }
        if matches!(p.top_up_source, TopUpSource::Reserve | TopUpSource::ReserveThenSpot) {
            let moved = need.min(self.book.free_cash(at.spot).max(0.0));
            if moved > 0.0 {
                self.book.transfer_to_margin(moved);
                need -= moved;
            }
        }
        if need > 0.0 && matches!(p.top_up_source, TopUpSource::SellSpot | TopUpSource::ReserveThenSpot) {
            let c = p.costs;
            let h = p.hedge_ratio;
            // Shrink both legs by x spot units: a long carry's spot sale raises cash for the margin;
            // a reverse carry's smaller long perp needs less margin.
            let x = if self.book.spot_qty > 0.0 {
                need / (at.spot * (1.0 - c.spot_fee - c.spot_slippage) + h * at.mark / p.leverage)
            } else {
                (self.book.perp_qty.abs() - self.book.perp_margin * p.leverage / at.mark) / h
            };
            let x = x.clamp(0.0, self.book.spot_qty.abs());
            let sign = self.book.spot_qty.signum();
            self.book.trade_spot(-sign * x, at, &c, TradeReason::TopUp, pnl, &mut self.trades);
            self.book.trade_perp(sign * h * x, at, &c, TradeReason::TopUp, pnl, &mut self.trades);
            let rest = wanted(&self.book).min(self.book.free_cash(at.spot)).max(0.0);
            self.book.transfer_to_margin(rest);
        }
        true
    }
}

/// Run the carry over `timeline`, sending each step's row to `recorder`.
pub fn run<R: Recorder>(timeline: &MarketTimeline, params: &EngineParams, recorder: &mut R) -> RunSummary {
    let n = timeline.len();
    let mut summary = RunSummary { steps: n, initial_capital: params.initial_capital, min_liquidation_distance: f64::NAN, ..Default::default() };
    if n == 0 {
        return summary;
    }
    let ts = &timeline.ts_ms;
    let signal = if params.entry.mode == crate::config::EntryMode::AlwaysOn {
        Vec::new()
    } else {
        trailing_funding_apr(&timeline.funding_history, ts, params.entry.lookback_settlements)
    };
    let mut sim = Sim { params, book: Book { cash: params.initial_capital, ..Default::default() }, held: Held::Flat, trades: Vec::new() };
    let mut next_event = 0usize;
    let mut equity_prev = params.initial_capital;
    let mut peak = params.initial_capital;
    let mut peak_ms = ts[0];
    let mut day = ts[0].div_euclid(MS_PER_DAY);
    let brackets = &params.brackets;
    // The book does not change between one step's end and the next step's start, so the
    // liquidation price computed for a row is the one the next bar is checked against.
    let mut liquidation_price_carried = f64::NAN;
    // Worst marks of masked bars not yet checked for liquidation.
    let (mut pending_high, mut pending_low) = (f64::NEG_INFINITY, f64::INFINITY);

    for i in 0..n {
        let at = Quote { ts_ms: ts[i], step: i, spot: timeline.spot[i], perp: timeline.perp[i], mark: timeline.mark[i] };
        let mut pnl = Pnl::default();
        let mut flags = 0u8;
        let masked = params.mask_stale_spot && timeline.spot_stale.get(i).is_some_and(|f| *f != 0);
        if masked {
            flags |= events::MASKED;
        }
        if i > 0 {
            let mark_prev = timeline.mark[i - 1];
            // 1. Intrabar liquidation at the bar's worst mark, on the margin known before the bar.
            let qty = sim.book.perp_qty;
            if qty != 0.0 && masked {
                pending_high = pending_high.max(timeline.mark_high[i]);
                pending_low = pending_low.min(timeline.mark_low[i]);
            } else if qty != 0.0 {
                let liq = liquidation_price_carried;
                let (high, low) = (timeline.mark_high[i].max(pending_high), timeline.mark_low[i].min(pending_low));
                (pending_high, pending_low) = (f64::NEG_INFINITY, f64::INFINITY);
                let touched = if qty < 0.0 { high >= liq } else { low <= liq };
                if touched {
                    // Closed at the liquidation price, or at the bar's start if already past it.
                    let fill = if qty < 0.0 { liq.max(mark_prev) } else { liq.min(mark_prev) };
                    let moved = qty * (fill - mark_prev);
                    pnl.perp += moved;
                    sim.book.perp_margin += moved;
                    let fee = (qty.abs() * fill * params.liquidation_fee_rate).min(sim.book.perp_margin.max(0.0));
                    // An isolated position cannot lose more than its margin: a shortfall is the
                    // insurance fund's, and is booked here so the ledger still adds up.
                    let shortfall = (-sim.book.perp_margin).max(0.0);
                    pnl.liquidation += shortfall - fee;
                    sim.book.perp_margin += shortfall - fee;
                    sim.trades.push(Trade {
                        ts_ms: at.ts_ms,
                        step: i,
                        leg: "perp",
                        reason: TradeReason::Liquidation,
                        qty: -qty,
                        reference_price: fill,
                        fill_price: fill,
                        fee,
                        slippage: 0.0,
                    });
                    summary.traded_notional += (qty * fill).abs();
                    sim.book.perp_qty = 0.0;
                    let margin = sim.book.perp_margin;
                    sim.book.transfer_to_margin(-margin);
                    sim.held = if sim.book.spot_qty != 0.0 { Held::Unhedged } else { Held::Flat };
                    summary.liquidations += 1;
                    flags |= events::LIQUIDATION;
                }
            }
            // 2. Price moves to this close.
            pnl.spot += sim.book.spot_qty * (at.spot - timeline.spot[i - 1]);
            if sim.book.perp_qty != 0.0 {
                let moved = sim.book.perp_qty * (at.mark - mark_prev);
                pnl.perp += moved;
                sim.book.perp_margin += moved;
            }
            // 3. Funding settled in (ts[i-1], ts[i]] on the quantity held then.
            while next_event < timeline.funding.len() && timeline.funding[next_event].step <= i {
                let event = timeline.funding[next_event];
                next_event += 1;
                summary.window_settlements.push((event.settle_ms, event.rate, event.interval_hours));
                if sim.book.perp_qty != 0.0 {
                    let amount = -sim.book.perp_qty * event.rate * event.price;
                    sim.book.perp_margin += amount;
                    pnl.funding += amount;
                    flags |= events::FUNDING;
                    summary.settlements.push(SettlementPaid {
                        settle_ms: event.settle_ms,
                        rate: event.rate,
                        interval_hours: event.interval_hours,
                        price: event.price,
                        perp_qty: sim.book.perp_qty,
                        amount,
                    });
                }
            }
            // 4. Yield on the spot leg, accrued in the asset.
            let years = (at.ts_ms - ts[i - 1]) as f64 / MS_PER_YEAR;
            let spot_qty = sim.book.spot_qty;
            if spot_qty > 0.0 {
                let earned = spot_qty * timeline.staking_apr[i - 1] * years;
                sim.book.spot_qty += earned;
                pnl.staking += earned * at.spot;
            } else if spot_qty < 0.0 {
                let owed = -spot_qty * params.borrow_apr * years;
                sim.book.spot_qty -= owed;
                pnl.borrow -= owed * at.spot;
            }
        }

        // 5. Decisions at the close.
        let signal_apr = signal.get(i).copied().unwrap_or(f64::NAN);
        let last = i + 1 == n;
        let current = match sim.held {
            Held::Long => Target::Long,
            Held::Reverse => Target::Reverse,
            Held::Flat | Held::Unhedged => Target::Flat,
        };
        let wanted = if last && params.close_at_end { Target::Flat } else { params.entry.target(current, signal_apr) };
        let reason = if last && params.close_at_end { TradeReason::Final } else { TradeReason::Exit };
        let trades_before = sim.trades.len();
        let mut liquidation_price_now = None;
        // A stale-spot step decides nothing (the final close still happens).
        let decide = !masked || (last && params.close_at_end);
        match sim.held {
            _ if !decide => {}
            Held::Unhedged => {
                if wanted == Target::Flat && (last && params.close_at_end || params.entry.mode != crate::config::EntryMode::AlwaysOn) {
                    sim.exit(&at, reason, &mut pnl);
                    flags |= events::EXIT;
                    summary.exits += 1;
                } else if wanted != Target::Flat && params.reenter_after_liquidation {
                    sim.exit(&at, TradeReason::Exit, &mut pnl);
                    sim.enter(wanted, &at, &mut pnl);
                    flags |= events::EXIT | events::ENTRY;
                    summary.exits += 1;
                    summary.entries += 1;
                }
            }
            _ if wanted != current => {
                if current != Target::Flat {
                    sim.exit(&at, reason, &mut pnl);
                    flags |= events::EXIT;
                    summary.exits += 1;
                }
                if wanted != Target::Flat {
                    sim.enter(wanted, &at, &mut pnl);
                    flags |= events::ENTRY;
                    summary.entries += 1;
                }
            }
            Held::Long | Held::Reverse => {
                if sim.rehedge(&at, &mut pnl) {
                    flags |= events::REBALANCE;
                    summary.rebalances += 1;
                }
                let liq = brackets.liquidation_price(sim.book.perp_qty, sim.book.perp_margin, at.mark);
                if sim.top_up(&at, liquidation_distance(sim.book.perp_qty, liq, at.mark), &mut pnl) {
                    flags |= events::TOP_UP;
                    summary.top_ups += 1;
                } else {
                    liquidation_price_now = Some(liq);
                }
            }
            Held::Flat => {}
        }
        for trade in &sim.trades[trades_before..] {
            summary.traded_notional += (trade.qty * trade.fill_price).abs();
        }

        let liquidation_price = liquidation_price_now.unwrap_or_else(|| brackets.liquidation_price(sim.book.perp_qty, sim.book.perp_margin, at.mark));
        liquidation_price_carried = liquidation_price;
        let distance = liquidation_distance(sim.book.perp_qty, liquidation_price, at.mark);
        if distance < summary.min_liquidation_distance || (summary.min_liquidation_distance.is_nan() && !distance.is_nan()) {
            summary.min_liquidation_distance = distance;
        }
        let equity = sim.book.equity(at.spot);
        let state_code = match sim.held {
            Held::Flat => state::FLAT,
            Held::Long => state::LONG_CARRY,
            Held::Reverse => state::REVERSE_CARRY,
            Held::Unhedged => state::UNHEDGED_SPOT,
        };
        summary.steps_in_state[match sim.held {
            Held::Flat => 0,
            Held::Long => 1,
            Held::Reverse => 2,
            Held::Unhedged => 3,
        }] += 1;
        recorder.record(&StepRow {
            ts_ms: at.ts_ms,
            spot_price: at.spot,
            perp_price: at.perp,
            mark_price: at.mark,
            state: state_code,
            events: flags,
            spot_qty: sim.book.spot_qty,
            perp_qty: sim.book.perp_qty,
            cash: sim.book.cash,
            perp_margin: sim.book.perp_margin,
            equity,
            pnl,
            liquidation_price,
            liquidation_distance: distance,
            funding_signal_apr: signal_apr,
        });
        summary.pnl.add(&pnl);

        // Daily closes and drawdown, for metrics.
        let today = at.ts_ms.div_euclid(MS_PER_DAY);
        if today != day {
            summary.daily_equity.push((day * MS_PER_DAY, equity_prev));
            day = today;
        }
        if equity >= peak {
            peak = equity;
            peak_ms = at.ts_ms;
        } else {
            let drawdown = equity / peak - 1.0;
            if drawdown < summary.max_drawdown {
                summary.max_drawdown = drawdown;
                summary.max_drawdown_trough_ms = at.ts_ms;
            }
            summary.max_drawdown_duration_ms = summary.max_drawdown_duration_ms.max(at.ts_ms - peak_ms);
        }
        equity_prev = equity;
    }
    summary.daily_equity.push((day * MS_PER_DAY, equity_prev));
    summary.first_ts_ms = ts[0];
    summary.last_ts_ms = ts[n - 1];
    summary.final_equity = equity_prev;
    summary.trades = sim.trades;
    summary
}
