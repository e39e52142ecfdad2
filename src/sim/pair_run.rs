//! One pair's run in progress ([`PairRun`]): the simulation state and what the loop carries from
//! one step to the next, step by step in the loop's order, whole or chunk by chunk.

use super::*;

/// The trailing funding signal's running state for a run (None when the entry is always on:
/// nothing reads it). It is advanced step by step in the loop rather than laid out as a column
/// first: a minute-bar year's column is 4 MB written and read back for one value a step.
fn trailing_for(params: &EngineParams, timeline: &MarketTimeline) -> Option<policy::TrailingSignal> {
    (params.entry.mode != EntryMode::AlwaysOn).then(|| policy::TrailingSignal::new(&params.entry, &timeline.funding))
}

/// One pair's run in progress: the simulation state and what the loop carries from one step to
/// the next. [`run`] drives one of these; [`portfolio::run`] drives several in lockstep, with
/// the perp liquidation checked per account where accounts share margin.
pub(crate) struct PairRun<'p, 't> {
    pub(super) sim: Sim<'p>,
    pub(super) timeline: &'t MarketTimeline,
    /// The timeline's mark prices (its perp's last where it has no mark series), looked up once.
    pub(super) mark: &'t [f64],
    /// The trailing funding signal's running sums (None when always on), carried to the next
    /// chunk of time, and its value at the step in progress (NaN when always on).
    pub(super) trailing: Option<policy::TrailingSignal>,
    pub(super) signal_now: f64,
    /// PnL and perp holding time since the last settlement, waiting for the rate that settles
    /// them to say their regime.
    pub(super) pending_pnl: f64,
    pub(super) pending_held_ms: i64,
    /// The run's step number of the timeline's first step: 0, or where its chunk of time starts
    /// (see [`run_chunked`]).
    pub(super) step_offset: usize,
    /// Whether the timeline ends where the run does (the final close happens at its last step).
    pub(super) last_chunk: bool,
    /// The run's first step time.
    pub(super) first_ts_ms: i64,
    /// The first funding event not yet settled.
    pub(super) next_event: usize,
    /// The book does not change between one close and the next bar, so the liquidation prices
    /// computed at a close are the ones the next bar is checked against.
    pub(super) liquidation_price_carried: f64,
    pub(super) spot_liquidation_price_carried: f64,
    pub(super) drawdown: DrawdownTracker,
    pub(super) summary: RunSummary,
    pub(super) held_before: Held,
    /// The first forced event not yet applied.
    pub(super) next_forced: usize,
    /// When [`PairRun::forced_events`] next has work (`i64::MAX`: never): one comparison a step.
    pub(super) forced_due_ms: i64,
    /// The first derivative-leg switch not yet made (dated rolls, `best`).
    pub(super) next_switch: usize,
    /// The step of that switch (`usize::MAX`: none): one comparison a step.
    pub(super) switch_due_step: usize,
    /// Whether the run's parameters and timeline let a held long carry's quiet steps take
    /// [`PairRun::advance_held_long`] (linear perp, no cash interest, no spot collateral, no
    /// coverage gaps, no derivative path).
    pub(super) quiet_steps_allowed: bool,
    /// The legs' unmatched parts at the last close while an order was worked, with that
    /// close's spot, mark and time: the next close's price moves on them are legging PnL.
    pub(super) legging: Option<(f64, f64, f64, f64, i64)>,
}

impl<'p, 't> PairRun<'p, 't> {
    pub(crate) fn new(timeline: &'t MarketTimeline, params: &'p EngineParams) -> Self {
        Self::starting(timeline, params, true)
    }

    /// A run whose first chunk of time is `timeline` (`last_chunk`: all of it).
    pub(super) fn starting(timeline: &'t MarketTimeline, params: &'p EngineParams, last_chunk: bool) -> Self {
        let n = timeline.len();
        let summary = RunSummary { steps: n, initial_capital: params.initial_capital, min_liquidation_distance: f64::NAN, funding_baseline_rate_per_8h: params.funding_baseline_rate_per_8h, ..Default::default() };
        PairRun {
            trailing: trailing_for(params, timeline),
            signal_now: f64::NAN,
            pending_pnl: 0.0,
            pending_held_ms: 0,
            step_offset: 0,
            last_chunk,
            first_ts_ms: timeline.ts_ms.first().copied().unwrap_or(0),
            sim: Sim {
                params,
                book: Book { cash: params.initial_capital, dated: timeline.derivative.as_ref().is_some_and(|d| matches!(d.first, Some(crate::model::Instrument::Dated(_)))), ..Default::default() },
                held: Held::Flat,
                carry: Target::Flat,
                blocked_after_liquidation: false,
                trades: Vec::new(),
                slippage_scale: 1.0,
                slippage_until_ms: i64::MIN,
                recoveries: Vec::new(),
                elapsed_years: (0, 0.0),
                account_near: None,
                entered_ms: i64::MIN,
                exited_ms: i64::MIN,
                size_held: 1.0,
                settled_regime: None,
                benched: false,
                cost_step: 0,
                borrow_capped: 0,
                recalls: 0,
                borrowed_principal: 0.0,
                work: None,
                execution: execution::ExecutionStats::default(),
                fill_caps: (f64::INFINITY, f64::INFINITY),
                next_close_ms: i64::MAX,
            },
            next_forced: 0,
            forced_due_ms: params.forced.first().map_or(i64::MAX, |e| e.at_ms),
            timeline,
            mark: timeline.mark_prices(),
            next_event: timeline.first_settlement_in_window(),
            liquidation_price_carried: f64::NAN,
            spot_liquidation_price_carried: f64::NAN,
            drawdown: DrawdownTracker::new(params.initial_capital, timeline.ts_ms.first().copied().unwrap_or(0)),
            summary,
            held_before: Held::Flat,
            next_switch: 0,
            switch_due_step: timeline.derivative.as_ref().and_then(|d| d.switches.first()).map_or(usize::MAX, |s| s.step),
            quiet_steps_allowed: quiet_steps_allowed(params, timeline),
            legging: None,
        }
    }

    /// The same run carried on over `next`, the following chunk of time, whose first step is
    /// this timeline's last one (`step_offset` is its step number in the run); `last_chunk`:
    /// the run ends with `next`. Everything a step carries to the next goes along; the
    /// settlements and the signal are `next`'s own.
    pub(super) fn resume<'u>(self, next: &'u MarketTimeline, step_offset: usize, last_chunk: bool) -> PairRun<'p, 'u> {
        debug_assert!(next.derivative.is_none(), "a derivative path is not split into chunks");
        let mut summary = self.summary;
        summary.steps = step_offset + next.len();
        let trailing = self.trailing;
        let quiet_steps_allowed = quiet_steps_allowed(self.sim.params, next);
        PairRun {
            sim: self.sim,
            timeline: next,
            mark: next.mark_prices(),
            trailing,
            signal_now: self.signal_now,
            pending_pnl: self.pending_pnl,
            pending_held_ms: self.pending_held_ms,
            step_offset,
            last_chunk,
            first_ts_ms: self.first_ts_ms,
            next_event: next.first_settlement_in_window(),
            liquidation_price_carried: self.liquidation_price_carried,
            spot_liquidation_price_carried: self.spot_liquidation_price_carried,
            drawdown: self.drawdown,
            summary,
            held_before: self.held_before,
            next_forced: self.next_forced,
            forced_due_ms: self.forced_due_ms,
            next_switch: self.next_switch,
            switch_due_step: usize::MAX,
            quiet_steps_allowed,
            legging: self.legging,
        }
    }

    /// Open step `i`: its prices, its flags, and the time spent since the previous step.
    #[inline(always)]
    pub(crate) fn begin(&mut self, i: usize) -> Step {
        self.advance_signal(i);
        self.sim.cost_step = i;
        let timeline = self.timeline;
        let params = self.sim.params;
        let mut step = Step { at: Quote { ts_ms: timeline.ts_ms[i], step: self.step_offset + i, spot: timeline.spot[i], perp: timeline.perp[i], mark: self.mark[i] }, pnl: Pnl::default(), flags: 0 };
        if params.mask_stale_spot && timeline.spot_stale.get(i).is_some_and(|f| *f != 0) {
            step.flags |= events::MASKED;
        }
        let uncovered = timeline.is_uncovered(i);
        if uncovered {
            step.flags |= events::UNCOVERED;
        }
        self.held_before = self.sim.held;
        self.sim.book.start_step();
        if i > 0 {
            let elapsed_ms = step.at.ts_ms - timeline.ts_ms[i - 1];
            if self.sim.book.perp_qty != 0.0 && !self.sim.book.dated {
                self.summary.perp_held_ms += elapsed_ms;
                self.pending_held_ms += elapsed_ms;
            }
            if self.held_before == Held::Unhedged {
                self.summary.unhedged_ms += elapsed_ms;
            }
            if uncovered {
                self.summary.uncovered_ms += elapsed_ms;
            }
        }
        step
    }

    /// Step 1 for a pair whose perp is margined alone (isolated): both legs are checked against
    /// the prices the previous close left, whatever the first did.
    #[inline(always)]
    pub(crate) fn liquidate_isolated(&mut self, i: usize, step: &mut Step) {
        let perp_liquidated = self.sim.liquidate_perp(self.timeline, i, self.liquidation_price_carried, step, &mut self.summary);
        let spot_liquidated = self.sim.liquidate_spot(self.timeline, i, self.spot_liquidation_price_carried, step, &mut self.summary);
        if perp_liquidated || spot_liquidated {
            self.note_liquidation(step);
        }
    }

    /// Book a liquidation that happened at this step (counters, flags, the after-liquidation
    /// state).
    #[cold]
    #[inline(never)]
    pub(crate) fn note_liquidation(&mut self, step: &mut Step) {
        self.summary.liquidations += 1;
        step.flags |= events::LIQUIDATION;
        self.summary.first_liquidation_ms.get_or_insert(step.at.ts_ms);
        self.summary.after_liquidation.get_or_insert(self.sim.params.after_liquidation);
        // A loan liquidated only in part (the venue stopped at its stop level) leaves both legs:
        // the carry goes on, and the close's rebalance trims the perp to the smaller loan.
        let partial = matches!(self.sim.held, Held::Long | Held::Reverse) && self.sim.book.spot_qty < 0.0 && self.sim.book.perp_qty != 0.0;
        if !partial {
            self.sim.on_liquidation();
        }
    }

    /// Whether the shared account this pair's perp sits in is nearer to liquidation than the
    /// pair's top-up distance (`None`: margined alone); its top-ups trigger on it.
    #[inline(always)]
    pub(crate) fn set_account_near(&mut self, near: Option<bool>) {
        self.sim.account_near = near;
    }

    /// The borrowed spot's distance to its liquidation price at the close just recorded (NaN
    /// without a loan).
    pub(crate) fn spot_loan_distance(&self, spot: f64) -> f64 {
        if self.sim.book.spot_qty < 0.0 {
            self.spot_liquidation_price_carried / spot - 1.0
        } else {
            f64::NAN
        }
    }

    /// Steps 2–4: mark to the close, settle funding, accrue staking or borrow.
    #[inline(always)]
    pub(crate) fn advance(&mut self, i: usize, step: &mut Step) {
        if self.sim.book.in_flight != 0.0 && step.at.ts_ms >= self.sim.book.in_flight_arrives_ms {
            self.sim.book.receive_in_flight();
        }
        self.sim.mark_to_close(self.timeline, i, step);
        self.sim.settle_funding(self.timeline, i, &mut self.next_event, step, &mut self.summary);
        if step.at.ts_ms >= self.forced_due_ms {
            self.forced_events(step);
        }
        self.sim.accrue_carry(self.timeline, i, step);
        if i == self.switch_due_step {
            self.switch_leg(i, step);
        }
    }

    /// Steps 1–4 of a quiet step of a held long carry: no liquidation, settlement, forced
    /// event, transfer, switch, stale spot or coverage gap falls in it, so only the marks and
    /// the staking move. Does what [`PairRun::begin`], [`PairRun::liquidate_isolated`] and
    /// [`PairRun::advance`] would, without their branches for every other case; returns None
    /// (having changed nothing) when the step is not such a one.
    #[inline(always)]
    pub(crate) fn advance_held_long(&mut self, i: usize) -> Option<Step> {
        self.advance_signal(i);
        let timeline = self.timeline;
        let params = self.sim.params;
        let book = &self.sim.book;
        let ts_ms = timeline.ts_ms[i];
        let quiet = self.quiet_steps_allowed
            && self.sim.held == Held::Long
            && self.sim.work.is_none()
            && book.perp_qty < 0.0
            && book.spot_qty >= 0.0
            && !book.dated
            && book.in_flight == 0.0
            && ts_ms < self.forced_due_ms
            && i != self.switch_due_step
            && timeline.funding.get(self.next_event).is_none_or(|settlement| settlement.settle_ms > ts_ms)
            && !(params.mask_stale_spot && timeline.spot_stale.get(i).is_some_and(|f| *f != 0))
            // Written as the liquidation check's negation, so a NaN price reads the same.
            && !(timeline.mark_high[i] >= self.liquidation_price_carried);
        if !quiet {
            return None;
        }
        let mut step = Step { at: Quote { ts_ms, step: self.step_offset + i, spot: timeline.spot[i], perp: timeline.perp[i], mark: self.mark[i] }, pnl: Pnl::default(), flags: 0 };
        self.sim.cost_step = i;
        self.held_before = Held::Long;
        let elapsed_ms = ts_ms - timeline.ts_ms[i - 1];
        self.summary.perp_held_ms += elapsed_ms;
        self.pending_held_ms += elapsed_ms;
        let sim = &mut self.sim;
        sim.book.start_step();
        step.pnl.spot += sim.book.spot_qty * (step.at.spot - timeline.spot[i - 1]);
        sim.mark_linear_perp(step.at.mark, &mut step.pnl);
        sim.book.perp_mark = step.at.mark;
        let years = sim.years_of(elapsed_ms);
        if sim.book.spot_qty > 0.0 {
            sim.stake(timeline.staking_apr_at(i - 1), years, step.at.spot, &mut step.pnl);
        }
        Some(step)
    }

    /// The derivative leg's switches due at step `i` (rolls, deliveries, `best` moves): the leg
    /// held during the bar is closed at the step's price (at the settlement price, with the fee
    /// and no slippage, on delivery) and the same quantity reopened in the next instrument,
    /// whose prices the rest of the step then uses.
    #[cold]
    #[inline(never)]
    pub(super) fn switch_leg(&mut self, i: usize, step: &mut Step) {
        use crate::model::{Instrument, SwitchReason};
        let Some(path) = self.timeline.derivative.as_ref() else { return };
        let trades_before = self.sim.trades.len();
        // At the last step with `close_at_end` everything closes anyway: a roll or a switch then
        // would only pay its costs twice (a delivery still settles the contract).
        let closing = i + 1 == self.timeline.len() && self.last_chunk && self.sim.params.close_at_end;
        while let Some(switch) = path.switches.get(self.next_switch).filter(|s| s.step == i) {
            self.next_switch += 1;
            if closing && switch.reason != SwitchReason::Delivery {
                continue;
            }
            let reason = switch.reason.trade_reason();
            let costs = self.sim.costs();
            let qty = self.sim.book.perp_qty;
            if qty != 0.0 {
                // Delivery: the settlement fee (the taker fee, MARGIN.md §6); nothing to slip.
                let close_costs = costs.closing_dated(switch.reason == SwitchReason::Delivery, self.sim.params.delivery_fee);
                self.sim.book.trade_perp(-qty, &step.at, &close_costs, reason, &mut step.pnl, &mut self.sim.trades);
            }
            self.sim.book.dated = matches!(switch.to, Instrument::Dated(_));
            if switch.open_price.is_finite() {
                step.at.perp = switch.open_price;
                step.at.mark = switch.open_mark;
                self.sim.book.perp_mark = switch.open_mark;
                if qty != 0.0 {
                    self.sim.book.trade_perp(qty, &step.at, &costs, reason, &mut step.pnl, &mut self.sim.trades);
                }
            }
        }
        self.count_traded(trades_before);
        self.switch_due_step = path.switches.get(self.next_switch).map_or(usize::MAX, |s| s.step);
    }

    /// Forced events due at this step, recoveries due from a defaulted venue, and the end of a
    /// slippage spike (rare: kept out of the hot loop).
    #[cold]
    #[inline(never)]
    pub(super) fn forced_events(&mut self, step: &mut Step) {
        let ts = step.at.ts_ms;
        if self.sim.slippage_scale != 1.0 && ts >= self.sim.slippage_until_ms {
            self.sim.slippage_scale = 1.0;
        }
        let params = self.sim.params;
        while self.next_forced < params.forced.len() && params.forced[self.next_forced].at_ms <= ts {
            let event = params.forced[self.next_forced];
            self.next_forced += 1;
            if self.sim.apply_forced(&event, &step.at, &mut step.pnl) {
                self.note_liquidation(step);
            }
        }
        let book = &mut self.sim.book;
        self.sim.recoveries.retain(|&(due_ms, amount)| {
            if due_ms <= ts {
                book.cash += amount;
                book.spot_account_costs.liquidation += amount;
                step.pnl.liquidation += amount;
                false
            } else {
                true
            }
        });
        self.forced_due_ms = self.next_forced_ms();
    }

    /// When the next forced event, recovery or end of a slippage spike is due (`i64::MAX`: none).
    pub(super) fn next_forced_ms(&self) -> i64 {
        let event = self.sim.params.forced.get(self.next_forced).map_or(i64::MAX, |e| e.at_ms);
        let recovery = self.sim.recoveries.iter().map(|r| r.0).min().unwrap_or(i64::MAX);
        let spike_end = if self.sim.slippage_scale != 1.0 { self.sim.slippage_until_ms } else { i64::MAX };
        event.min(recovery).min(spike_end)
    }

    /// Step 5: the decisions at the close. Returns the perp's liquidation price when the
    /// decisions computed it and left the book unchanged since.
    #[inline(always)]
    pub(crate) fn decide(&mut self, i: usize, step: &mut Step) -> Option<f64> {
        let signal_apr = self.signal_now;
        let final_close = i + 1 == self.timeline.len() && self.last_chunk && self.sim.params.close_at_end;
        let trades_before = self.sim.trades.len();
        let masked = step.flags & events::MASKED != 0;
        let execution = self.sim.params.execution;
        if execution.worked() {
            let timeline = self.timeline;
            let cap = execution.max_participation;
            // The bar that just closed: its volume is known at this close.
            let volume = |series: &[f64]| if cap.is_finite() { cap * series.get(i).copied().unwrap_or(f64::NAN) } else { f64::INFINITY };
            self.sim.fill_caps = (volume(&timeline.spot_volume), volume(&timeline.perp_volume));
            self.sim.next_close_ms = timeline.ts_ms.get(i + 1).copied().unwrap_or(i64::MAX);
        }
        let liquidation_price_now = self.sim.decide(step, signal_apr, masked, final_close, &mut self.summary);
        self.count_traded(trades_before);
        liquidation_price_now
    }

    /// Step 5 for a held long carry that the close leaves as it is: the entry rule keeps it,
    /// no rebalance or top-up is due, the spot is not stale and the run does not end here.
    /// Returns the perp's liquidation price and distance at the close, or None (having done
    /// nothing) when the step is not such a one and the full decisions must run.
    #[inline(always)]
    pub(crate) fn decide_held_long(&self, i: usize, step: &Step) -> Option<(f64, f64)> {
        let p = self.sim.params;
        let book = &self.sim.book;
        // What `Sim::decide` does for such a step, without the branches for every other one.
        if self.sim.held != Held::Long || self.sim.work.is_some() || step.flags & events::MASKED != 0 || p.spot_collateral_haircut != 0.0 || book.spot_qty < 0.0 {
            return None;
        }
        if i + 1 == self.timeline.len() && self.last_chunk && p.close_at_end {
            return None;
        }
        let at = &step.at;
        if self.sim.wanted(Target::Long, self.signal_now, at) != Target::Long {
            return None;
        }
        if self.sim.rebalance_target(at).is_some() || self.sim.resize_due(at).is_some() {
            return None;
        }
        let liquidation_price = self.sim.perp_liquidation_price(at.mark, at.spot);
        let distance = liquidation_distance(book.perp_qty, liquidation_price, at.mark);
        if self.sim.wants_top_up(distance, at) {
            return None;
        }
        Some((liquidation_price, distance))
    }

    /// Move the trailing funding signal to step `i` (every step opens with this; the
    /// entry rule, the decisions and the ledger row then read `signal_now`).
    #[inline(always)]
    pub(super) fn advance_signal(&mut self, i: usize) {
        if let Some(trailing) = self.trailing.as_mut() {
            self.signal_now = trailing.at(&self.timeline.funding, self.timeline.ts_ms[i]);
        }
    }

    #[inline(always)]
    pub(super) fn count_traded(&mut self, trades_before: usize) {
        for trade in &self.sim.trades[trades_before..] {
            self.summary.traded_notional += (trade.qty * trade.fill_price).abs();
        }
    }

    /// Close step `i`: the liquidation prices the next bar is checked against, the row, and the
    /// running totals. Returns the row.
    #[inline(always)]
    pub(crate) fn record<R: Recorder>(&mut self, step: Step, liquidation_price_now: Option<f64>, recorder: &mut R) -> StepRow {
        let at = step.at;
        let liquidation_price = liquidation_price_now.unwrap_or_else(|| self.sim.perp_liquidation_price(at.mark, at.spot));
        let distance = liquidation_distance(self.sim.book.perp_qty, liquidation_price, at.mark);
        self.record_at(step, liquidation_price, distance, recorder)
    }

    /// Close step `i` with the perp's liquidation price and distance given: the pair's own
    /// (isolated) ones from [`PairRun::record`], or, for a perp in a shared (cross or portfolio)
    /// account, the account's as the book computes them (the price of the pair's asset at which
    /// the account breaches, the other prices held at the close).
    #[inline(always)]
    pub(crate) fn record_at<R: Recorder>(&mut self, step: Step, liquidation_price: f64, distance: f64, recorder: &mut R) -> StepRow {
        let params = self.sim.params;
        let at = step.at;
        self.liquidation_price_carried = liquidation_price;
        self.spot_liquidation_price_carried = params.spot_margin.liquidation_price(self.sim.book.cash, -self.sim.book.spot_qty);
        let spot_distance = self.spot_loan_distance(at.spot);
        if matches!(self.sim.held, Held::Long | Held::Reverse) {
            for d in [distance, spot_distance] {
                self.note_liquidation_distance(d);
            }
        }
        self.close_step(step, liquidation_price, distance, recorder)
    }

    /// [`PairRun::record`] for a step [`PairRun::decide_held_long`] decided: a held long carry
    /// owns its spot, so nothing is borrowed to liquidate (the spot's price and distance are
    /// NaN, which never lowers the smallest distance).
    #[inline(always)]
    pub(super) fn record_held_long<R: Recorder>(&mut self, step: Step, (liquidation_price, distance): (f64, f64), recorder: &mut R) -> StepRow {
        self.liquidation_price_carried = liquidation_price;
        self.spot_liquidation_price_carried = f64::NAN;
        self.note_liquidation_distance(distance);
        self.close_step(step, liquidation_price, distance, recorder)
    }

    /// Keep `distance` if it is the smallest to liquidation yet: a number replaces the NaN that
    /// stands for none seen, and a NaN distance (no position) never replaces a number.
    #[inline(always)]
    pub(super) fn note_liquidation_distance(&mut self, distance: f64) {
        let smallest = &mut self.summary.min_liquidation_distance;
        if distance < *smallest || (smallest.is_nan() && !distance.is_nan()) {
            *smallest = distance;
        }
    }

    /// The row of step `i` and the running totals, once the liquidation prices are carried.
    #[inline(always)]
    pub(super) fn close_step<R: Recorder>(&mut self, step: Step, liquidation_price: f64, distance: f64, recorder: &mut R) -> StepRow {
        let at = step.at;
        let funding_signal_apr = self.signal_now;
        let summary = &mut self.summary;
        let equity = self.sim.book.equity(at.spot);
        let (state_code, state_index) = self.sim.state_code();
        summary.steps_in_state[state_index] += 1;
        let row = StepRow {
            ts_ms: at.ts_ms,
            spot_price: at.spot,
            perp_price: at.perp,
            mark_price: at.mark,
            state: state_code,
            events: step.flags,
            spot_qty: self.sim.book.spot_qty,
            perp_qty: self.sim.book.perp_qty,
            cash: self.sim.book.cash,
            perp_margin: self.sim.book.perp_margin,
            equity,
            pnl: step.pnl,
            liquidation_price,
            liquidation_distance: distance,
            funding_signal_apr,
            spot_leg: {
                // The spot, staking and borrow components are the spot leg's by nature; its
                // costs are what the spot account paid.
                let costs = self.sim.book.spot_account_costs;
                Pnl { spot: step.pnl.spot, staking: step.pnl.staking, borrow: step.pnl.borrow, fees: costs.fees, slippage: costs.slippage, liquidation: costs.liquidation, interest: costs.interest, ..Pnl::default() }
            },
            moved_out_of_spot_account: self.sim.book.moved_out_of_spot,
            moved_into_perp_account: self.sim.book.moved_into_perp,
        };
        recorder.record(&row);
        if self.held_before == Held::Unhedged {
            summary.unhedged_pnl += step.pnl.total();
        }
        summary.pnl.add(&step.pnl);
        self.pending_pnl += step.pnl.total();
        if let Some(settled) = self.sim.settled_regime.take() {
            summary.regime_pnl[settled] += self.pending_pnl;
            summary.regime_held_ms[settled] += self.pending_held_ms;
            self.pending_pnl = 0.0;
            self.pending_held_ms = 0;
        }
        self.drawdown.update(at.ts_ms, equity, summary);
        if self.sim.params.execution.worked() {
            self.note_legging(&at);
        }
        row
    }

    /// Legging PnL and time since the last close, on the unmatched parts it left, and the
    /// unmatched parts this close leaves.
    #[cold]
    pub(super) fn note_legging(&mut self, at: &Quote) {
        let stats = &mut self.sim.execution;
        if let Some((spot, perp, spot_price, mark, ts_ms)) = self.legging.take() {
            stats.legging_pnl += spot * (at.spot - spot_price) + perp * (at.mark - mark);
            stats.partially_hedged_ms += at.ts_ms - ts_ms;
        }
        self.legging = self.sim.legging().map(|(spot, perp)| (spot, perp, at.spot, at.mark, at.ts_ms));
    }

    /// The run's summary, once every step is recorded.
    pub(crate) fn finish(mut self) -> RunSummary {
        self.summary.regime_pnl[regime::UNSETTLED] += self.pending_pnl;
        self.summary.regime_held_ms[regime::UNSETTLED] += self.pending_held_ms;
        if let Some(last) = self.timeline.ts_ms.last() {
            self.drawdown.finish(&mut self.summary);
            self.summary.first_ts_ms = self.first_ts_ms;
            self.summary.last_ts_ms = *last;
        }
        self.summary.trades = self.sim.trades;
        self.summary.borrow_capped = self.sim.borrow_capped;
        self.summary.recalls = self.sim.recalls;
        self.summary.borrow_limited = self.sim.params.borrow_available.is_some();
        if self.sim.params.execution.worked() {
            self.summary.execution = Some(self.sim.execution);
        }
        self.summary
    }
}
