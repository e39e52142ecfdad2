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
mod carry;
pub mod dated;
mod decide;
pub mod execution;
pub mod forced;
pub mod inverse;
mod liquidation;
pub mod margin;
mod pair_run;
pub mod market_costs;
pub mod perp_perp;
pub mod policy;
pub mod portfolio;
pub mod summary;
mod trading;

pub(crate) use pair_run::PairRun;

use crate::model::{events, state, FundingPayment, MarketTimeline, Pnl, Recorder, StepRow, Trade, TradeReason};
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
    /// How orders reach the market: at once, or worked under a participation cap and a delay
    /// between the legs ([`execution`]).
    pub execution: execution::Execution,
}

impl EngineParams {
    /// The costs a fill at step `step` pays: the configured ones, with the market cost model's
    /// estimates (or book) at that step where there is one.
    #[inline(always)]
    pub fn costs_at(&self, step: usize) -> Costs {
        let mut costs = self.costs;
        if let Some(market) = self.market_costs.as_deref() {
            market.apply(step, &mut costs);
        }
        costs
    }
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
    /// The order being worked ([`execution`]), if any.
    work: Option<execution::Work>,
    /// What the run's worked orders came to.
    execution: execution::ExecutionStats,
    /// The largest spot and perp fills the participation cap allows at this close, base units
    /// (infinite: no cap; NaN: the bar's volume is unknown).
    fill_caps: (f64, f64),
    /// The next close's time (`i64::MAX`: none): a delayed leg fills at the last close known at
    /// its due time.
    next_close_ms: i64,
}


/// One step's scratch: the prices at its close, and the PnL and event flags it accumulates.
pub(crate) struct Step {
    pub(crate) at: Quote,
    pub(crate) pnl: Pnl,
    pub(crate) flags: u8,
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
/// accruals look back at); the settlements it pays are those after its first step, up to its last
/// (found by time, so a chunk may hold every settlement or only its own). Rows,
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
