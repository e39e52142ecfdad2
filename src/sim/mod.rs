//! The simulation loop: one pass over the aligned timeline's slices.
//!
//! The carry lives in two accounts. The perp is an isolated position whose margin balance is
//! `perp_margin`. The spot leg is either owned outright (long carry) or, for the reverse carry,
//! borrowed in a spot-margin account whose assets are the run's cash and whose liability is the
//! borrowed quantity at the spot price; its margin level is assets / liabilities (MARGIN.md §4).
//!
//! Each step, in this order (every rule sees only data known at the step):
//! 1. **Liquidation checks**, every step, masked or not:
//!    - the perp on the bar's worst mark (high for a short, low for a long) against the
//!      liquidation price left by the previous step; it closes by the venue's rule
//!      ([`crate::sim::margin::LiquidationStyle`]): at the liquidation price with a clearance fee,
//!      at the bankruptcy price losing all margin, or a market close with a backstop;
//!    - the borrowed spot on the bar's spot high against the price at which the margin level
//!      falls to the liquidation level; it is bought back there with the venue's fee.
//!
//!    A shortfall (the account below zero) is the venue's insurance fund's, booked to the
//!    liquidation component, so equity never goes below zero and the ledger still adds up.
//! 2. **Price moves**: spot and perp marked from the previous close to this close.
//! 3. **Funding** for settlements in `(previous step, this step]`, on the perp quantity held
//!    then, at the price known at the settlement.
//! 4. **Staking / borrow** accrued in the spot asset over the elapsed time at the APR known at
//!    the start of it.
//! 5. **Decisions** at the close: after a liquidation, the `after_liquidation` policy (close
//!    the surviving leg, re-hedge, or hold it); enter or exit on the entry rule; re-hedge when
//!    delta drifts; top up the perp margin when liquidation comes too close, and the spot
//!    margin account when its margin level reaches the margin call.
//!
//! The row's PnL components sum to its change in equity.
//!
//! With `mask_stale_spot`, a step whose spot close is stale (see `data::quality`) makes no
//! decision that needs the spot price: no entry, exit, re-hedge or top-up by selling spot. Its
//! liquidation checks still run. Such rows carry the `MASKED` event flag.
//!
//! A long run may arrive in chunks of time ([`run_chunked`], fed by `data::stream`): the pair's
//! state, the trailing signal's sums and the step count carry from one chunk to the next, and
//! the rows are those of [`run`] over the whole timeline.

pub mod book;
pub mod dated;
pub mod forced;
pub mod inverse;
pub mod margin;
pub mod market_costs;
pub mod perp_perp;
pub mod policy;
pub mod portfolio;
pub mod summary;

use crate::model::{events, state, MarketTimeline, Pnl, Recorder, SettlementPaid, StepRow, Trade, TradeReason};
use margin::{liquidation_distance, Brackets, PerpLiquidation, SpotMarginRules};
use policy::{AfterLiquidation, EntryMode, EntryRule, Target, TopUpSource};
use crate::time::MS_PER_YEAR;
use book::{Book, Costs, Quote};
pub use summary::{record_equity, RunSummary};
use summary::DrawdownTracker;

/// Everything the loop needs, as plain numbers (decimals, not bps).
#[derive(Debug, Clone)]
pub struct EngineParams {
    /// Starting cash, quote currency.
    pub initial_capital: f64,
    /// Perp leverage: initial perp margin = perp notional / leverage.
    pub leverage: f64,
    /// Perp quantity per unit of spot quantity (1 = fully hedged).
    pub hedge_ratio: f64,
    /// Share of equity kept back as cash at entry, decimal in [0, 1).
    pub reserve_fraction: f64,
    /// Re-hedge when |perp qty − target| / |target| exceeds this, decimal (target = −hedge_ratio
    /// × spot qty).
    pub rebalance_delta_threshold: f64,
    /// Top up margin when the perp's distance to liquidation falls below this, decimal of the mark.
    pub top_up_distance: f64,
    /// Where top-up margin comes from.
    pub top_up_source: TopUpSource,
    /// Borrow cost of a short spot leg, decimal APR, accrued in the spot asset.
    pub borrow_apr: f64,
    /// Fee and slippage rates strategy orders pay, decimals.
    pub costs: Costs,
    /// How a liquidated perp closes, with the venue's fee or backstop.
    pub liquidation: PerpLiquidation,
    /// The reverse carry's spot-margin account.
    pub spot_margin: SpotMarginRules,
    /// Maintenance-margin tiers the perp's liquidation price is computed from.
    pub brackets: Brackets,
    /// When to hold which carry.
    pub entry: EntryRule,
    /// Close every position at the last step (trades with reason `final`).
    pub close_at_end: bool,
    /// Open a new carry after a liquidation when the entry rule allows (with "close"/"hold").
    pub reenter_after_liquidation: bool,
    /// What happens to the surviving leg after a liquidation.
    pub after_liquidation: AfterLiquidation,
    /// Skip decisions that need spot on stale-spot steps.
    pub mask_stale_spot: bool,
    /// Share of the long spot's value that counts as perp margin, decimal (0: the spot is in
    /// another account; a portfolio-margin account's haircut for the asset otherwise). The perp
    /// then needs cash margin only for what the collateral does not cover.
    pub spot_collateral_haircut: f64,
    /// Interest on a negative quote balance in a portfolio-margin account (spot as
    /// collateral), decimal APR.
    pub quote_borrow_apr: f64,
    /// Time a margin top-up takes to reach the perp account (legs on two venues), ms; 0: at once.
    pub transfer_delay_ms: i64,
    /// Fee per top-up transfer between venues, quote currency.
    pub transfer_fee: f64,
    /// Events forced on the run (stress scenarios), in time order.
    pub forced: Vec<forced::ForcedEvent>,
    /// The perp is coin-margined (inverse): notional in USD, margin and PnL in the coin
    /// ([`inverse`]); long carry only.
    pub inverse: bool,
    /// Idle cash (the spot account's free cash) earns the timeline's cash rate.
    pub cash_earns: bool,
    /// Fee on a dated contract settled at delivery, decimal of notional (Binance: the taker fee,
    /// MARGIN.md §6, whatever order type the strategy uses).
    pub delivery_fee: f64,
    /// Largest perp notional an entry or an allocation increase may build, quote currency
    /// (a capacity cap, e.g. a share of open interest); infinite for none. Capital above it
    /// stays in cash.
    pub max_perp_notional: f64,
    /// The decisions of a `rules` or `target` strategy, computed before the loop
    /// (`signal::rules`); `None` for `always_on` and `funding_threshold`.
    pub rules: Option<std::sync::Arc<policy::RuleSeries>>,
    /// The venue's interest baseline, decimal per 8 h (Binance 0.0001): a settlement at it
    /// (scaled to its interval) counts in the `baseline` funding regime.
    pub funding_baseline_rate_per_8h: f64,
    /// Slippage that depends on the market, per step ([`market_costs`]); `None`: `costs` as
    /// configured at every step.
    pub market_costs: Option<std::sync::Arc<crate::model::MarketCosts>>,
    /// The largest quantity of spot a reverse carry can borrow at each step, base units
    /// (`[data.borrow_available]`; NaN: unknown, so nothing new is borrowed); `None`: no limit.
    pub borrow_available: Option<std::sync::Arc<Vec<f64>>>,
}

/// The funding regimes PnL and holding time are attributed to: each interval's to the rate
/// that settled it.
pub mod regime {
    /// The rate settled above zero and off the baseline.
    pub const POSITIVE: usize = 0;
    /// The rate settled at the venue's interest baseline (scaled to its interval).
    pub const BASELINE: usize = 1;
    /// The rate settled below zero.
    pub const NEGATIVE: usize = 2;
    /// After the window's last settlement (no rate settled that time yet).
    pub const UNSETTLED: usize = 3;
    /// The names, in index order, as `metrics.json` writes them.
    pub const NAMES: [&str; 4] = ["positive", "baseline", "negative", "after_last_settlement"];

    /// The regime of a rate settled over `interval_hours`, against a baseline per 8 h.
    #[inline]
    pub fn of(rate: f64, interval_hours: f64, baseline_per_8h: f64) -> usize {
        if (rate - baseline_per_8h * interval_hours / 8.0).abs() <= 1e-10 {
            BASELINE
        } else if rate < 0.0 {
            NEGATIVE
        } else {
            POSITIVE
        }
    }
}

/// Binance's classic cross margin rules, the default spot-margin account: margin call at 1.3,
/// liquidation at 1.1 (FAQ 360030493931), 2 % liquidation fee (2024-08 update), transfers out
/// down to 2 (MARGIN.md §4).
pub const BINANCE_CROSS_MARGIN: SpotMarginRules = SpotMarginRules { margin_call_level: 1.3, liquidation_level: 1.1, liquidation_fee_rate: 0.02, transfer_out_level: 2.0, liquidation_stop_level: 1.5 };


#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Flat,
    Long,
    Reverse,
    /// One leg left after the other was liquidated.
    Unhedged,
}

struct Sim<'a> {
    params: &'a EngineParams,
    book: Book,
    held: Held,
    /// The direction of the carry the unhedged leg belonged to.
    carry: Target,
    /// A liquidation happened and no new carry was allowed since: re-entry waits for
    /// `reenter_after_liquidation`, or (funding_threshold) for the signal to say flat first.
    blocked_after_liquidation: bool,
    trades: Vec<Trade>,
    /// Factor on slippage while a forced slippage spike lasts (1 otherwise).
    slippage_scale: f64,
    /// When the slippage spike ends, epoch ms.
    slippage_until_ms: i64,
    /// Recoveries due from a defaulted venue: (when, amount).
    recoveries: Vec<(i64, f64)>,
    /// The last bar length seen (ms) and its length in years: on a regular clock the division
    /// is done once, with the same bits every step.
    elapsed_years: (i64, f64),
    /// Whether the shared (cross or portfolio) account the perp sits in is nearer to
    /// liquidation than `top_up_distance`, set by the book before each step's decisions: top-ups
    /// trigger on it instead of the pair's isolated-equivalent distance. `None` for a perp
    /// margined alone.
    account_near: Option<bool>,
    /// When the carry held was entered, and when the last one was exited (`i64::MIN`: never),
    /// epoch ms: a rule strategy's minimum holding time and cooldown count from them.
    entered_ms: i64,
    exited_ms: i64,
    /// The target share of allocated capital the carry held was last sized to (1 outside a
    /// rule strategy with a size).
    size_held: f64,
    /// The regime of the last rate settled in the step in progress (None: no settlement).
    settled_regime: Option<usize>,
    /// Out of a universe's selection (or delisted): the pair wants no position whatever its
    /// rule says.
    benched: bool,
    /// The timeline step the fills are at (the market cost series' index).
    cost_step: usize,
    /// Reverse-carry entries and resizes cut to the borrowable quantity, and recalls.
    borrow_capped: usize,
    recalls: usize,
    /// The coins a reverse carry borrowed (its principal: the interest accrued in the coin on
    /// top is the borrower's debt, not a new loan the lender must have).
    borrowed_principal: f64,
}

impl Sim<'_> {
    /// The position wanted at the close of `at`, holding `current`: the rule strategy's
    /// decisions where there is one, else the entry rule on the trailing signal.
    #[inline(always)]
    fn wanted(&self, current: Target, signal_apr: f64, at: &Quote) -> Target {
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
    fn resize_due(&self, at: &Quote) -> Option<f64> {
        let rules = self.params.rules.as_deref().filter(|r| r.resize)?;
        let size = *rules.size.get(at.step)?;
        (size > 0.0 && !((size / self.size_held - 1.0).abs() <= self.params.rebalance_delta_threshold)).then_some(size)
    }

    /// Cost per unit of spot quantity of opening `target` at `at`: the spot bought (or sold)
    /// with its costs, and the perp margin with the perp's costs.
    fn unit_costs(&self, target: Target, at: &Quote, c: &Costs) -> (f64, f64) {
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

    fn enter(&mut self, target: Target, at: &Quote, pnl: &mut Pnl) {
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
        let c = &sized;
        self.book.trade_spot(sign * qty, at, c, TradeReason::Entry, pnl, &mut self.trades);
        self.book.transfer_to_margin(qty * margin_per_unit);
        self.book.trade_perp(-sign * p.hedge_ratio * qty, at, c, TradeReason::Entry, pnl, &mut self.trades);
        self.held = if sign > 0.0 { Held::Long } else { Held::Reverse };
        self.carry = target;
    }

    /// Resize the held carry to `size` of the allocated capital (a rule strategy's target):
    /// both legs in proportion, the perp margin with them. Growing uses free cash only.
    fn resize(&mut self, size: f64, at: &Quote, pnl: &mut Pnl) -> bool {
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
            let c = &sized;
            self.book.trade_spot(sign * add, at, c, TradeReason::Resize, pnl, &mut self.trades);
            self.book.transfer_to_margin(add * margin_per_unit);
            self.book.trade_perp(-sign * p.hedge_ratio * add, at, c, TradeReason::Resize, pnl, &mut self.trades);
        } else {
            let share = (-change / qty).min(1.0);
            if !(share > 0.0) {
                return false;
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

    fn exit(&mut self, at: &Quote, reason: TradeReason, pnl: &mut Pnl) {
        self.exited_ms = at.ts_ms;
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
    fn transferable_cash(&self, spot: f64) -> f64 {
        let liabilities = (-self.book.spot_qty).max(0.0) * spot;
        (self.book.cash - self.params.spot_margin.transfer_out_level * liabilities).max(0.0)
    }

    /// The mark at which the perp reaches maintenance margin. With spot collateral (portfolio
    /// margin) the collateral is taken to move with the mark (the hedge), so rallies that cost
    /// the short perp raise the collateral too.
    #[inline(always)]
    fn perp_liquidation_price(&self, mark: f64, spot: f64) -> f64 {
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
    fn borrowable(&self) -> f64 {
        match self.params.borrow_available.as_deref() {
            None => f64::INFINITY,
            Some(series) => series.get(self.cost_step).copied().filter(|v| v.is_finite()).unwrap_or(0.0).max(0.0),
        }
    }

    /// Step 5a for a reverse carry: the lender recalls what exceeds the borrowable quantity.
    /// The excess spot is bought back at market and as much of the long perp closed (its
    /// margin share back to cash). Returns whether anything was recalled.
    fn recall(&mut self, at: &Quote, pnl: &mut Pnl) -> bool {
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
    fn costs(&self) -> Costs {
        let mut c = self.params.costs;
        if let Some(market) = self.params.market_costs.as_deref() {
            market.apply(self.cost_step, &mut c);
        }
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
    fn apply_forced(&mut self, event: &forced::ForcedEvent, at: &Quote, pnl: &mut Pnl) -> bool {
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
    fn fund_margin(&mut self, amount: f64, at: &Quote, pnl: &mut Pnl) {
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
    fn wants_top_up(&self, distance: f64, at: &Quote) -> bool {
        let p = self.params;
        if let Some(near) = self.account_near {
            return near;
        }
        distance < p.top_up_distance
            || (p.spot_collateral_haircut > 0.0
                && self.book.perp_qty.abs() * at.mark / p.leverage > self.book.perp_margin + p.spot_collateral_haircut * self.book.spot_qty.max(0.0) * at.spot)
    }

    /// Perp margin above the initial margin of the position at the mark.
    fn excess_perp_margin(&self, mark: f64) -> f64 {
        (self.book.perp_margin - self.book.perp_qty.abs() * mark / self.params.leverage).max(0.0)
    }

    /// Reopen the liquidated leg against the surviving one (`after_liquidation = "rehedge"`).
    /// Returns whether anything traded.
    fn rehedge_leg(&mut self, at: &Quote, pnl: &mut Pnl) -> bool {
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
    fn rehedge(&mut self, at: &Quote, pnl: &mut Pnl) -> bool {
        let Some(target) = self.rebalance_target(at) else { return false };
        let c = self.costs();
        let change = target - self.book.perp_qty;
        if self.params.inverse {
            inverse::trade(&mut self.book, change, at, &c, TradeReason::Rebalance, pnl, &mut self.trades);
        } else {
            self.book.trade_perp(change, at, &c, TradeReason::Rebalance, pnl, &mut self.trades);
        }
        true
    }

    /// The perp quantity a rebalance trades to when the perp has drifted from the hedge by
    /// more than the threshold (None: no rebalance due).
    #[inline(always)]
    fn rebalance_target(&self, at: &Quote) -> Option<f64> {
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
    fn top_up(&mut self, at: &Quote, distance: f64, spot_live: bool, pnl: &mut Pnl) -> bool {
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
    fn spot_margin_top_up(&mut self, at: &Quote, spot_live: bool, pnl: &mut Pnl) -> bool {
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

/// One step's scratch: the prices at its close, and the PnL and event flags it accumulates.
pub(crate) struct Step {
    pub(crate) at: Quote,
    pub(crate) pnl: Pnl,
    pub(crate) flags: u8,
}

impl Sim<'_> {
    /// Step 1a: the perp, on the bar's worst mark, against the liquidation price the book left
    /// at the previous close. Closed by the venue's rule. Returns whether it was liquidated.
    #[inline(always)]
    fn liquidate_perp(&mut self, timeline: &MarketTimeline, i: usize, liq: f64, step: &mut Step, summary: &mut RunSummary) -> bool {
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
    fn fill_perp_liquidation(&mut self, qty: f64, liq: f64, mark_prev: f64, extreme: f64, step_number: usize, ts_ms: i64, pnl: &mut Pnl) -> f64 {
        // Marked to the liquidation price, or to the bar's start if already past it.
        let price = if qty < 0.0 { liq.max(mark_prev) } else { liq.min(mark_prev) };
        let moved = qty * (price - mark_prev);
        pnl.perp += moved;
        self.book.perp_margin += moved;
        // The fill may slip past it (the liquidation model): a loss of the liquidation, so the
        // venue's rule (its fee, or a backstop) applies to the margin left at the fill.
        let filled = self.params.liquidation.fill_price(qty, liq, mark_prev, extreme);
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
    fn fill_inverse_liquidation(&mut self, usd: f64, liq: f64, mark_prev: f64, spot_prev: f64, step_number: usize, ts_ms: i64, pnl: &mut Pnl) -> f64 {
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
    fn liquidate_spot(&mut self, timeline: &MarketTimeline, i: usize, liq: f64, step: &mut Step, summary: &mut RunSummary) -> bool {
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
    fn fill_spot_liquidation(&mut self, spot_qty: f64, liq: f64, spot_prev: f64, step_number: usize, ts_ms: i64, pnl: &mut Pnl) -> f64 {
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
    fn on_liquidation(&mut self) {
        self.blocked_after_liquidation = !self.params.reenter_after_liquidation;
        if matches!(self.held, Held::Long | Held::Reverse) {
            self.carry = if self.held == Held::Long { Target::Long } else { Target::Reverse };
        }
        self.held = if self.book.spot_qty != 0.0 || self.book.perp_qty != 0.0 { Held::Unhedged } else { Held::Flat };
    }

    /// Step 2: spot and perp marked from the previous close to this close.
    #[inline(always)]
    fn mark_to_close(&mut self, timeline: &MarketTimeline, i: usize, step: &mut Step) {
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
    fn mark_linear_perp(&mut self, mark: f64, pnl: &mut Pnl) {
        let moved = self.book.perp_qty * (mark - self.book.perp_mark);
        pnl.perp += moved;
        self.book.perp_margin += moved;
    }

    /// `elapsed_ms` in years: on a regular clock the division is done once, with the same bits
    /// every step.
    #[inline(always)]
    fn years_of(&mut self, elapsed_ms: i64) -> f64 {
        if elapsed_ms != self.elapsed_years.0 {
            self.elapsed_years = (elapsed_ms, elapsed_ms as f64 / MS_PER_YEAR);
        }
        self.elapsed_years.1
    }

    /// Staking on a long spot leg over `years` at `apr`, accrued in the asset and valued at
    /// `spot`.
    #[inline(always)]
    fn stake(&mut self, apr: f64, years: f64, spot: f64, pnl: &mut Pnl) {
        let earned = self.book.spot_qty * apr * years;
        self.book.spot_qty += earned;
        pnl.staking += earned * spot;
    }

    /// Step 3: funding settled in (ts[i-1], ts[i]] on the perp quantity held then.
    #[inline(always)]
    /// `next_event` is the first event not yet settled.
    fn settle_funding(&mut self, timeline: &MarketTimeline, i: usize, next_event: &mut usize, step: &mut Step, summary: &mut RunSummary) {
        while *next_event < timeline.funding.len() && timeline.funding[*next_event].step <= i {
            let event = timeline.funding[*next_event];
            *next_event += 1;
            summary.window_settlements.push((event.settle_ms, event.rate, event.interval_hours));
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
                summary.settlements.push(SettlementPaid {
                    settle_ms: event.settle_ms,
                    rate: event.rate,
                    interval_hours: event.interval_hours,
                    price: event.price,
                    perp_qty: base_qty,
                    amount,
                });
            }
        }
    }

    /// Step 4: staking on a long spot leg, or borrow interest on a short one, accrued in the
    /// asset over the elapsed time at the APR known at its start.
    #[inline(always)]
    fn accrue_carry(&mut self, timeline: &MarketTimeline, i: usize, step: &mut Step) {
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

    /// Step 5: the decisions at the close. Returns the perp's liquidation price when the
    /// decisions computed it and left the book unchanged since.
    #[inline(always)]
    fn decide(&mut self, step: &mut Step, signal_apr: f64, masked: bool, final_close: bool, summary: &mut RunSummary) -> Option<f64> {
        let p = self.params;
        let at = step.at;
        let current = match self.held {
            Held::Long => Target::Long,
            Held::Reverse => Target::Reverse,
            Held::Flat | Held::Unhedged => Target::Flat,
        };
        let wanted = if final_close { Target::Flat } else { self.wanted(current, signal_apr, &at) };
        if self.blocked_after_liquidation && p.entry.mode != EntryMode::AlwaysOn && wanted == Target::Flat {
            // The signal said flat since the liquidation: a later entry is a new decision.
            self.blocked_after_liquidation = false;
        }
        let reason = if final_close { TradeReason::Final } else { TradeReason::Exit };
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
                if self.rehedge(&at, pnl) {
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
        if masked && !final_close && matches!(self.held, Held::Long | Held::Reverse) {
            let liq = self.perp_liquidation_price(at.mark, at.spot);
            let distance = liquidation_distance(self.book.perp_qty, liq, at.mark);
            let mut topped = self.wants_top_up(distance, &at) && self.top_up(&at, distance, false, &mut step.pnl);
            if self.book.spot_qty < 0.0 {
                topped |= self.spot_margin_top_up(&at, false, &mut step.pnl);
            }
            if topped {
                step.flags |= events::TOP_UP;
                summary.top_ups += 1;
                liquidation_price_now = None;
            }
        }
        liquidation_price_now
    }

    /// The ledger state code of the position held.
    #[inline(always)]
    fn state_code(&self) -> (i8, usize) {
        match self.held {
            Held::Flat => (state::FLAT, 0),
            Held::Long => (state::LONG_CARRY, 1),
            Held::Reverse => (state::REVERSE_CARRY, 2),
            Held::Unhedged => (state::UNHEDGED_SPOT, 3),
        }
    }
}


/// The trailing funding signal's running state for a run (None when the entry is always on:
/// nothing reads it). It is advanced step by step in the loop rather than laid out as a column
/// first: a minute-bar year's column is 4 MB written and read back for one value a step.
fn trailing_for(params: &EngineParams, timeline: &MarketTimeline) -> Option<policy::TrailingSignal> {
    (params.entry.mode != EntryMode::AlwaysOn).then(|| policy::TrailingSignal::new(&params.entry, &timeline.funding_history))
}

/// One pair's run in progress: the simulation state and what the loop carries from one step to
/// the next. [`run`] drives one of these; [`portfolio::run`] drives several in lockstep, with
/// the perp liquidation checked per account where accounts share margin.
pub(crate) struct PairRun<'p, 't> {
    sim: Sim<'p>,
    timeline: &'t MarketTimeline,
    /// The timeline's mark prices (its perp's last where it has no mark series), looked up once.
    mark: &'t [f64],
    /// The trailing funding signal's running sums (None when always on), carried to the next
    /// chunk of time, and its value at the step in progress (NaN when always on).
    trailing: Option<policy::TrailingSignal>,
    signal_now: f64,
    /// PnL and perp holding time since the last settlement, waiting for the rate that settles
    /// them to say their regime.
    pending_pnl: f64,
    pending_held_ms: i64,
    /// The run's step number of the timeline's first step: 0, or where its chunk of time starts
    /// (see [`run_chunked`]).
    step_offset: usize,
    /// Whether the timeline ends where the run does (the final close happens at its last step).
    last_chunk: bool,
    /// The run's first step time.
    first_ts_ms: i64,
    /// The first funding event not yet settled.
    next_event: usize,
    /// The book does not change between one close and the next bar, so the liquidation prices
    /// computed at a close are the ones the next bar is checked against.
    liquidation_price_carried: f64,
    spot_liquidation_price_carried: f64,
    drawdown: DrawdownTracker,
    summary: RunSummary,
    held_before: Held,
    /// The first forced event not yet applied.
    next_forced: usize,
    /// When [`PairRun::forced_events`] next has work (`i64::MAX`: never): one comparison a step.
    forced_due_ms: i64,
    /// The first derivative-leg switch not yet made (dated rolls, `best`).
    next_switch: usize,
    /// The step of that switch (`usize::MAX`: none): one comparison a step.
    switch_due_step: usize,
    /// Whether the run's parameters and timeline let a held long carry's quiet steps take
    /// [`PairRun::advance_held_long`] (linear perp, no cash interest, no spot collateral, no
    /// coverage gaps, no derivative path).
    quiet_steps_allowed: bool,
}

impl<'p, 't> PairRun<'p, 't> {
    pub(crate) fn new(timeline: &'t MarketTimeline, params: &'p EngineParams) -> Self {
        Self::starting(timeline, params, true)
    }

    /// A run whose first chunk of time is `timeline` (`last_chunk`: all of it).
    fn starting(timeline: &'t MarketTimeline, params: &'p EngineParams, last_chunk: bool) -> Self {
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
            },
            next_forced: 0,
            forced_due_ms: params.forced.first().map_or(i64::MAX, |e| e.at_ms),
            timeline,
            mark: timeline.mark_prices(),
            next_event: 0,
            liquidation_price_carried: f64::NAN,
            spot_liquidation_price_carried: f64::NAN,
            drawdown: DrawdownTracker::new(params.initial_capital, timeline.ts_ms.first().copied().unwrap_or(0)),
            summary,
            held_before: Held::Flat,
            next_switch: 0,
            switch_due_step: timeline.derivative.as_ref().and_then(|d| d.switches.first()).map_or(usize::MAX, |s| s.step),
            quiet_steps_allowed: quiet_steps_allowed(params, timeline),
        }
    }

    /// The same run carried on over `next`, the following chunk of time, whose first step is
    /// this timeline's last one (`step_offset` is its step number in the run); `last_chunk`:
    /// the run ends with `next`. Everything a step carries to the next goes along; the
    /// settlements and the signal are `next`'s own.
    fn resume<'u>(self, next: &'u MarketTimeline, step_offset: usize, last_chunk: bool) -> PairRun<'p, 'u> {
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
            next_event: 0,
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
            && book.perp_qty < 0.0
            && book.spot_qty >= 0.0
            && !book.dated
            && book.in_flight == 0.0
            && ts_ms < self.forced_due_ms
            && i != self.switch_due_step
            && timeline.funding.get(self.next_event).is_none_or(|event| event.step > i)
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
    fn switch_leg(&mut self, i: usize, step: &mut Step) {
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
            let reason = match switch.reason {
                SwitchReason::Roll => TradeReason::Roll,
                SwitchReason::Delivery => TradeReason::Delivery,
                SwitchReason::Switch => TradeReason::Switch,
            };
            let costs = self.sim.costs();
            let qty = self.sim.book.perp_qty;
            if qty != 0.0 {
                // Delivery: the settlement fee (the taker fee, MARGIN.md §6); nothing to slip.
                let close_costs = if switch.reason == SwitchReason::Delivery { Costs { perp_slippage: 0.0, perp_fee: self.sim.params.delivery_fee, ..costs } } else { costs };
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
    fn forced_events(&mut self, step: &mut Step) {
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
    fn next_forced_ms(&self) -> i64 {
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
        if self.sim.held != Held::Long || step.flags & events::MASKED != 0 || p.spot_collateral_haircut != 0.0 || book.spot_qty < 0.0 {
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
    fn advance_signal(&mut self, i: usize) {
        if let Some(trailing) = self.trailing.as_mut() {
            self.signal_now = trailing.at(&self.timeline.funding_history, self.timeline.ts_ms[i]);
        }
    }

    #[inline(always)]
    fn count_traded(&mut self, trades_before: usize) {
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
    fn record_held_long<R: Recorder>(&mut self, step: Step, (liquidation_price, distance): (f64, f64), recorder: &mut R) -> StepRow {
        self.liquidation_price_carried = liquidation_price;
        self.spot_liquidation_price_carried = f64::NAN;
        self.note_liquidation_distance(distance);
        self.close_step(step, liquidation_price, distance, recorder)
    }

    /// Keep `distance` if it is the smallest to liquidation yet: a number replaces the NaN that
    /// stands for none seen, and a NaN distance (no position) never replaces a number.
    #[inline(always)]
    fn note_liquidation_distance(&mut self, distance: f64) {
        let smallest = &mut self.summary.min_liquidation_distance;
        if distance < *smallest || (smallest.is_nan() && !distance.is_nan()) {
            *smallest = distance;
        }
    }

    /// The row of step `i` and the running totals, once the liquidation prices are carried.
    #[inline(always)]
    fn close_step<R: Recorder>(&mut self, step: Step, liquidation_price: f64, distance: f64, recorder: &mut R) -> StepRow {
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
        row
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
        self.summary
    }
}

/// Run the carry over `timeline`, sending each step's row to `recorder`: each step checks
/// liquidations, marks to the close, settles funding, accrues staking or borrow, decides, and
/// records (see the module doc for the order's reasons).
pub fn run<R: Recorder>(timeline: &MarketTimeline, params: &EngineParams, recorder: &mut R) -> RunSummary {
    let mut pair = PairRun::new(timeline, params);
    run_steps::<R, true>(&mut pair, 0, recorder);
    pair.finish()
}

/// [`run`] with every step's decisions taken the long way, for the tests that check that the
/// shortcut for a held long carry (`PairRun::decide_held_long`) changes nothing.
#[doc(hidden)]
pub fn run_without_shortcuts<R: Recorder>(timeline: &MarketTimeline, params: &EngineParams, recorder: &mut R) -> RunSummary {
    let mut pair = PairRun::new(timeline, params);
    run_steps::<R, false>(&mut pair, 0, recorder);
    pair.finish()
}

/// Steps `from..` of the pair's timeline (`SHORTCUT`: a held long carry that stays as it is
/// decides the short way).
#[inline(always)]
fn run_steps<R: Recorder, const SHORTCUT: bool>(pair: &mut PairRun<'_, '_>, from: usize, recorder: &mut R) {
    for i in from..pair.timeline.len() {
        let quiet = if SHORTCUT && i > 0 { pair.advance_held_long(i) } else { None };
        let step = match quiet {
            Some(step) => step,
            None => {
                let mut step = pair.begin(i);
                if i > 0 {
                    pair.liquidate_isolated(i, &mut step);
                    pair.advance(i, &mut step);
                }
                step
            }
        };
        match if SHORTCUT { pair.decide_held_long(i, &step) } else { None } {
            Some(decided) => {
                pair.record_held_long(step, decided, recorder);
            }
            None => {
                let mut step = step;
                let liquidation_price_now = pair.decide(i, &mut step);
                pair.record(step, liquidation_price_now, recorder);
            }
        }
    }
}

/// Whether `params` and `timeline` let a held long carry's quiet steps skip the general step
/// (see [`PairRun::advance_held_long`]).
fn quiet_steps_allowed(params: &EngineParams, timeline: &MarketTimeline) -> bool {
    !params.inverse && !params.cash_earns && params.spot_collateral_haircut == 0.0 && timeline.uncovered.iter().all(|u| !u) && timeline.derivative.is_none()
}

/// No steps: what a run holds between two chunks of time.
static BETWEEN_CHUNKS: MarketTimeline = MarketTimeline::EMPTY;

/// [`run`] over a timeline that arrives in chunks of time, so that no more than two chunks are
/// in memory however long the run: `next_chunk` gives them in order, `None` after the last.
/// Every chunk after the first starts with the previous chunk's last step (which is not run
/// again: the step before a chunk's first new one is what liquidation checks, marking and
/// accruals look back at), and numbers its settlements' steps from its own start. Rows,
/// trades and the summary equal those of [`run`] over the whole timeline.
pub fn run_chunked<R: Recorder, E>(params: &EngineParams, mut next_chunk: impl FnMut() -> Result<Option<MarketTimeline>, E>, recorder: &mut R) -> Result<RunSummary, E> {
    let Some(mut current) = next_chunk()? else { return Ok(PairRun::new(&BETWEEN_CHUNKS, params).finish()) };
    let mut carried: Option<PairRun<'_, 'static>> = None;
    let mut step_offset = 0usize;
    loop {
        // One chunk ahead: whether this one is the last decides the final close.
        let upcoming = next_chunk()?;
        let last_chunk = upcoming.is_none();
        let (mut pair, from) = match carried.take() {
            None => (PairRun::starting(&current, params, last_chunk), 0),
            Some(pair) => (pair.resume(&current, step_offset, last_chunk), 1),
        };
        run_steps::<R, true>(&mut pair, from, recorder);
        let Some(upcoming) = upcoming else { return Ok(pair.finish()) };
        step_offset += current.len() - 1;
        carried = Some(pair.resume(&BETWEEN_CHUNKS, step_offset, false));
        current = upcoming;
    }
}
