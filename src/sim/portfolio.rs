//! Several carries run in lockstep on one clock, their legs held in margin accounts that may
//! share margin: one capital, split among the pairs by an allocation rule and re-split on a
//! schedule.
//!
//! Each pair is the single-pair engine's state machine (`PairRun` in `sim`): its own decisions,
//! funding, staking and top-ups. What the accounts change is the perp's liquidation check
//! (step 1 of the engine's order):
//! - [`MarginMode::Isolated`]: each perp against its own margin, exactly as a single-pair run.
//! - [`MarginMode::Cross`]: one wallet per account. The account is liquidated when the sum of
//!   its perps' margin balances (wallet plus unrealised PnL) falls to the sum of their
//!   maintenance margins, and then every perp in it is closed (Binance's cross-margin rule:
//!   "liquidation is triggered when the margin ratio reaches 100 %", all cross positions of the
//!   account; MARGIN.md §2).
//! - [`MarginMode::Portfolio`]: as cross, and the spot held in the account counts towards the
//!   margin balance at the account's haircut for the asset, with the account's cash (MARGIN.md
//!   §6, unified / portfolio margin). A long-spot/short-perp pair in one such account needs
//!   cash margin only for what the haircut spot does not cover, and a rally that costs the
//!   short perp raises the collateral.
//!
//! Inside a bar only each series' high and low are known, not when they printed. A shared
//! account is checked on the way from the previous close to the bar's worst corner: each pair's
//! prices at the extreme (high or low) that hurts the account most given the sign of its
//! positions (a long carry's short perp at its high, a reverse carry's long perp at its low);
//! a pair's spot and perp, one asset, go the same way. The margin balance is linear in each
//! price within a maintenance tier and concave across tiers, so that corner is the worst case
//! in the bar's box of prices; this is the conservative assumption, as the extremes need not
//! have printed together. The first point on the way where the balance falls to maintenance
//! is where the account is liquidated; each perp closes at its price there (or past it, by the
//! liquidation-fill model) by the venue's rule, the venue's take shared among the perps by
//! notional. A remaining deficit is the insurance fund's, booked to the liquidation component,
//! so no account ends below zero. In a portfolio account, cash left negative after the perps
//! close is repaid by selling the spot collateral at once, with the spot-margin liquidation fee.
//!
//! What a shared account reports is the account's: each pair's liquidation price is the price of
//! its own asset at which the account breaches (the other prices held at the close), the
//! account's distance is the smallest move of every price against it that breaches it, and the
//! book's smallest distance is its accounts'. Top-ups trigger on the account's distance, and
//! the margin the account already holds goes to the pairs short of theirs before any sells.
//!
//! A reverse carry's borrowed spot is margined in its own spot-margin account (per pair); in a
//! portfolio account it would be a loan inside the account's uniMMR, which is not modelled, and
//! the config refuses that combination.
//!
//! Moving capital between pairs (allocation rebalances) is a transfer, not PnL: each pair's
//! change in equity is its PnL components plus its transfers, and the book's is its PnL alone.

use serde::{Deserialize, Serialize};

use super::margin::{Collateral, LiquidationStyle};
use super::policy::{Target, TopUpSource};
use super::{EngineParams, Held, PairRun, RunSummary, Step};
use crate::model::{events, state, MarketTimeline, Recorder, StepRow, Trade, TradeReason};

/// How an account margins the positions in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarginMode {
    /// Each perp has its own margin; one liquidation touches one position.
    #[default]
    Isolated,
    /// One wallet backs every perp in the account; a breach liquidates them all.
    Cross,
    /// As cross, with the account's spot and cash counted as collateral at haircuts.
    Portfolio,
}

/// One margin account.
#[derive(Debug, Clone)]
pub struct AccountSpec {
    /// Name, e.g. the venue preset.
    pub name: String,
    /// How the account margins its positions.
    pub mode: MarginMode,
    /// Margin balance / maintenance at or below which a shared account is liquidated: 1 for
    /// cross margin (margin ratio 100 %), the venue's level for portfolio margin (Binance's
    /// uniMMR 1.05).
    pub liquidation_threshold: f64,
}

/// One carry of the book: its market, its engine parameters and where its legs are held.
#[derive(Debug, Clone)]
pub struct PairSpec<'a> {
    /// Name, e.g. `BTCUSDT`.
    pub name: String,
    /// The pair's market on the book's common clock (every pair has the same step times).
    pub timeline: &'a MarketTimeline,
    /// The pair's engine parameters; `initial_capital` is its share of the book's capital.
    pub params: EngineParams,
    /// Index of the account holding the spot leg (and the pair's cash).
    pub spot_account: usize,
    /// Index of the account holding the perp.
    pub perp_account: usize,
    /// How much of the spot's value the spot account counts as margin (portfolio mode: the
    /// asset's collateral ratio, flat or tiered; none otherwise).
    pub spot_collateral: Collateral,
    /// In a universe: the steps the pair has data for (its first and last real bar on the
    /// book's clock; None: none) and its selection score at each step, known at the step.
    pub universe: Option<UniversePair>,
}

/// A pair's part in a universe.
#[derive(Debug, Clone, Default)]
pub struct UniversePair {
    /// Grid indices of its first and last real bar (None: no bar inside the window).
    pub active: Option<(usize, usize)>,
    /// The score the selection ranks by, one per step (NaN: unknown).
    pub score: Vec<f64>,
    /// What a weighted allocation splits the capital by, one per step (the score, or the
    /// trailing funding APR); empty for an equal split.
    pub weight: Vec<f64>,
    /// Earliest time it may be selected: its first bar plus the history required, epoch ms.
    pub eligible_from_ms: i64,
}

/// A universe: which pairs hold capital, chosen anew on a schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct UniverseParams {
    /// Pairs held at once.
    pub top: usize,
    /// Time between selections, ms (the first is at the first step).
    pub rotate_every_ms: i64,
    /// Only pairs whose score is at least this are selected.
    pub min_score: Option<f64>,
    /// Split the capital among the selected pairs in proportion to their (positive) `weight`
    /// instead of equally.
    pub weighted: bool,
}

/// How capital is split among the pairs.
#[derive(Debug, Clone, PartialEq)]
pub enum Allocation {
    /// Fixed weights (summing to 1), one per pair.
    Weights(Vec<f64>),
    /// In proportion to each pair's trailing funding APR (time-weighted over `lookback_hours`),
    /// pairs with a trailing APR at or below zero getting nothing; equal weights when none is
    /// positive or the lookback is not yet covered.
    FundingWeighted {
        /// Hours of settled funding the trailing APR looks back over.
        lookback_hours: f64,
    },
}

/// The book's capital and how it is split.
#[derive(Debug, Clone)]
pub struct BookParams {
    /// Capital of the whole book, quote currency.
    pub initial_capital: f64,
    /// The allocation rule.
    pub allocation: Allocation,
    /// Re-split the book's equity by the rule this often (ms); `None`: only at the start.
    pub rebalance_every_ms: Option<i64>,
    /// A universe: the allocation goes to the pairs selected at each rotation (the allocation
    /// schedule above is not used then).
    pub universe: Option<UniverseParams>,
}

/// One account's state at a step's close.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccountRow {
    /// Step time, epoch ms UTC.
    pub ts_ms: i64,
    /// Cash of the pairs whose spot leg the account holds, quote currency.
    pub cash: f64,
    /// Value of the spot held in the account at the close, quote currency.
    pub spot_value: f64,
    /// Sum of the perps' margin balances (wallet plus unrealised PnL), quote currency.
    pub perp_margin: f64,
    /// What the account's liquidation rule counts: the perps' margin balances, plus (portfolio
    /// mode) the cash and the haircut spot, quote currency.
    pub margin_balance: f64,
    /// Sum of the perps' maintenance margins at the mark, quote currency.
    pub maintenance: f64,
    /// Maintenance / margin balance, decimal (1 = liquidation); 0 without a perp.
    pub margin_ratio: f64,
    /// The smallest uniform move of the account's prices (up or down, decimal) at which it
    /// would be liquidated; NaN without a perp, infinite when no move liquidates it.
    pub liquidation_distance: f64,
    /// Cash + spot value + perp margin, quote currency.
    pub equity: f64,
}

/// Receives the book's rows: one per pair, one per account and one for the book, each step.
pub trait BookRecorder {
    /// Pair `pair`'s row, with the capital moved into it at this step (allocation).
    fn pair(&mut self, pair: usize, row: &StepRow, transfer_in: f64);
    /// Account `account`'s row.
    fn account(&mut self, account: usize, row: &AccountRow);
    /// The book's row: sums over the pairs (prices and quantities NaN).
    fn book(&mut self, row: &StepRow);
}

/// What one account went through.
#[derive(Debug, Clone, Default)]
pub struct AccountSummary {
    /// Name.
    pub name: String,
    /// Margin mode.
    pub mode: MarginMode,
    /// Steps at which a perp of the account was liquidated.
    pub liquidations: usize,
    /// Time of the first liquidation.
    pub first_liquidation_ms: Option<i64>,
    /// Smallest account liquidation distance seen at a close (NaN: never a perp).
    pub min_liquidation_distance: f64,
    /// Highest margin ratio seen at a close.
    pub max_margin_ratio: f64,
}

/// What a book run produced.
#[derive(Debug, Clone, Default)]
pub struct BookSummary {
    /// The whole book, as one run (trades and settlements of every pair, in time order).
    pub book: RunSummary,
    /// Each pair's own run; its `initial_capital` is its first allocation.
    pub pairs: Vec<RunSummary>,
    /// Each pair's net capital moved in by allocation rebalances, quote currency.
    pub transfers_in: Vec<f64>,
    /// Each account's record.
    pub accounts: Vec<AccountSummary>,
    /// Allocation rebalances carried out.
    pub allocation_rebalances: usize,
    /// Mean over steps of the cash posted as perp margin across the book, quote currency.
    pub mean_margin_posted: f64,
    /// Universe rotations carried out.
    pub rotations: usize,
    /// Pairs closed because their data ended (delisted).
    pub delistings: usize,
    /// The selection at each rotation: (time, the selected pairs' indices).
    pub selections: Vec<(i64, Vec<usize>)>,
}

/// Weights for the pairs under `allocation` at step `i` (sum 1).
fn weights(allocation: &Allocation, pairs: &[PairSpec], i: usize) -> Vec<f64> {
    let n = pairs.len();
    match allocation {
        Allocation::Weights(w) => w.clone(),
        Allocation::FundingWeighted { lookback_hours } => {
            let aprs: Vec<f64> = pairs.iter().map(|p| trailing_apr(p.timeline, p.timeline.ts_ms[i], *lookback_hours)).collect();
            let positive: f64 = aprs.iter().filter(|a| a.is_finite() && **a > 0.0).sum();
            if positive > 0.0 {
                aprs.iter().map(|a| if a.is_finite() && *a > 0.0 { a / positive } else { 0.0 }).collect()
            } else {
                vec![1.0 / n as f64; n]
            }
        }
    }
}

/// Time-weighted funding APR of the settlements known at `now_ms` over the last
/// `lookback_hours` (Σ rate / Σ interval hours × 8,760); NaN until the lookback is covered.
fn trailing_apr(timeline: &MarketTimeline, now_ms: i64, lookback_hours: f64) -> f64 {
    let history = &timeline.funding;
    let end = history.partition_point(|s| s.settle_ms <= now_ms);
    let (mut rate, mut hours) = (0.0, 0.0);
    for s in history[..end].iter().rev() {
        if hours >= lookback_hours {
            break;
        }
        rate += s.rate;
        hours += s.interval_hours;
    }
    if hours < lookback_hours {
        f64::NAN
    } else {
        rate / hours * 8760.0
    }
}

/// Where each pair's prices go inside the current bar, one choice per pair: towards its bar
/// high (`true`) or low. A pair's perp mark and its spot go the same way (one asset).
type Corner = Vec<bool>;

#[inline]
fn mark_end(t: &MarketTimeline, i: usize, up: bool) -> f64 {
    if up {
        t.mark_high[i]
    } else {
        t.mark_low[i]
    }
}

#[inline]
fn spot_end(t: &MarketTimeline, i: usize, up: bool) -> f64 {
    let range = if up { &t.spot_high } else { &t.spot_low };
    range.get(i).copied().unwrap_or(t.spot[i])
}

/// A pair's part of `account`: the margin balance it brings and the maintenance it needs, with
/// its perp moved from the mark it is booked at (`booked`) to `mark` and its spot at `spot`.
/// The perp counts where the account holds it; the spot and the pair's cash count in a
/// portfolio account that holds them (a long spot at its haircut, a short one at full value).
#[inline]
fn pair_part(run: &PairRun, spec: &PairSpec, account: usize, mode: MarginMode, booked: f64, mark: f64, spot: f64) -> (f64, f64) {
    let book = &run.sim.book;
    let (mut balance, mut maintenance) = (0.0, 0.0);
    if spec.perp_account == account && book.perp_qty != 0.0 {
        balance += book.perp_margin + book.perp_qty * (mark - booked);
        maintenance += spec.params.brackets.maintenance_margin(book.perp_qty.abs() * mark);
    }
    if mode == MarginMode::Portfolio && spec.spot_account == account {
        balance += book.cash + spec.spot_collateral.value(book.spot_qty, spot);
    }
    (balance, maintenance)
}

/// [`pair_part`] as headroom: balance less `threshold` × maintenance (below zero: the pair's
/// part pulls the account under its liquidation level by that much).
#[inline]
#[allow(clippy::too_many_arguments)]
fn pair_headroom(run: &PairRun, spec: &PairSpec, account: usize, mode: MarginMode, threshold: f64, booked: f64, mark: f64, spot: f64) -> f64 {
    let (balance, maintenance) = pair_part(run, spec, account, mode, booked, mark, spot);
    balance - threshold * maintenance
}

/// Margin balance and maintenance of `account`, each pair's (booked mark, mark, spot) given by
/// `prices`.
fn account_value(runs: &[PairRun], specs: &[PairSpec], account: usize, mode: MarginMode, prices: impl Fn(usize, &MarketTimeline) -> (f64, f64, f64)) -> (f64, f64) {
    let (mut balance, mut maintenance) = (0.0, 0.0);
    for (k, (run, spec)) in runs.iter().zip(specs).enumerate() {
        let (booked, mark, spot) = prices(k, run.timeline);
        let (b, m) = pair_part(run, spec, account, mode, booked, mark, spot);
        balance += b;
        maintenance += m;
    }
    (balance, maintenance)
}

/// Whether `account` holds a perp.
fn holds_perp(runs: &[PairRun], specs: &[PairSpec], account: usize) -> bool {
    runs.iter().zip(specs).any(|(r, s)| s.perp_account == account && r.sim.book.perp_qty != 0.0)
}

/// The corner of bar `i` that hurts `account` most: each pair's prices at the bar extreme (high
/// or low) where its part of the account has the least headroom. Within a maintenance tier the
/// headroom is linear in each price, and across tiers concave (the maintenance curve is convex),
/// so its least value over the bar's box of prices is at a corner; the pairs' parts add up, so
/// each pair chooses alone. This is the conservative assumption: a short perp's high and a long
/// perp's low are taken to print at once, which the bars do not say.
fn worst_corner(runs: &[PairRun], specs: &[PairSpec], account: usize, mode: MarginMode, threshold: f64, i: usize) -> Corner {
    runs.iter()
        .zip(specs)
        .map(|(run, spec)| {
            let t = run.timeline;
            let booked = t.mark_prices()[i - 1];
            let at = |up: bool| pair_headroom(run, spec, account, mode, threshold, booked, mark_end(t, i, up), spot_end(t, i, up));
            at(true) <= at(false)
        })
        .collect()
}

/// Margin balance and maintenance of `account` with every price a share `theta` of the way from
/// the previous close to its corner of the bar (theta = 0: the previous close).
fn account_at(runs: &[PairRun], specs: &[PairSpec], account: usize, mode: MarginMode, i: usize, corner: &Corner, theta: f64) -> (f64, f64) {
    account_value(runs, specs, account, mode, |k, t| corner_prices(t, i, corner[k], theta))
}

/// A pair's (booked mark, mark, spot) a share `theta` of the way from the previous close towards
/// its bar high (`up`) or low.
#[inline]
fn corner_prices(t: &MarketTimeline, i: usize, up: bool, theta: f64) -> (f64, f64, f64) {
    let along = |from: f64, to: f64| from + theta * (to - from);
    let booked = t.mark_prices()[i - 1];
    (booked, along(booked, mark_end(t, i, up)), along(t.spot[i - 1], spot_end(t, i, up)))
}

/// Where in bar `i` a shared account first falls to its liquidation level: the worst corner
/// ([`worst_corner`]) and the share of the way towards it, or `None` when it survives the bar.
fn account_breach(runs: &[PairRun], specs: &[PairSpec], account: usize, mode: MarginMode, threshold: f64, i: usize) -> Option<(Corner, f64)> {
    if !holds_perp(runs, specs, account) {
        return None;
    }
    let corner = worst_corner(runs, specs, account, mode, threshold, i);
    let short = |theta: f64| {
        let (balance, maintenance) = account_at(runs, specs, account, mode, i, &corner, theta);
        balance < threshold * maintenance
    };
    if short(0.0) {
        return Some((corner, 0.0));
    }
    if !short(1.0) {
        return None;
    }
    // The headroom is concave along the way, so once short it stays short.
    let theta = halve(0.0, 1.0, 60, short);
    Some((corner, theta))
}

/// `rounds` halvings of (`lo`, `hi`], where `short` is false at `lo` and true at `hi` and stays
/// true once true: the upper end of the last interval, where `short` is first true.
fn halve(mut lo: f64, mut hi: f64, rounds: usize, short: impl Fn(f64) -> bool) -> f64 {
    for _ in 0..rounds {
        let mid = 0.5 * (lo + hi);
        if short(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// Keep `candidate` in `smallest` if it is smaller; a number replaces the NaN that stands for
/// none seen, and a NaN candidate never replaces a number.
fn keep_smaller(smallest: &mut f64, candidate: f64) {
    if candidate < *smallest || (smallest.is_nan() && !candidate.is_nan()) {
        *smallest = candidate;
    }
}

/// Farthest move searched for a breach, decimal: a rise to ×1,001 (a hedged portfolio account
/// can survive rallies of ×30 and more), or a fall to zero.
const FARTHEST_RISE: f64 = 1000.0;

/// The least `x` in [0, `far`] with `short(x)`, for a `short` that stays true once true;
/// infinite when `short(far)` is false. The decade that holds it is found first (0.001, 0.01,
/// ... up to `far`), then halved 42 times: a relative precision near 1e-12 in a few dozen looks.
fn first_short(far: f64, short: impl Fn(f64) -> bool) -> f64 {
    if short(0.0) {
        return 0.0;
    }
    let (mut lo, mut hi) = (0.0, 1e-3f64.min(far));
    loop {
        if short(hi) {
            break;
        }
        if hi >= far {
            return f64::INFINITY;
        }
        lo = hi;
        hi = (hi * 10.0).min(far);
    }
    halve(lo, hi, 42, short)
}

/// The account's distance to liquidation at close `i`: the smallest move `x` (decimal) such that
/// moving every pair's prices by `x` from the close, each pair the way that hurts the account
/// (up or down), liquidates it. NaN without a perp, infinite when no move up to ×1,001 or down to
/// zero does. Never more than any of its pairs' own distances ([`pair_liquidation`]).
fn account_distance(runs: &[PairRun], specs: &[PairSpec], account: usize, mode: MarginMode, threshold: f64, i: usize) -> f64 {
    if !holds_perp(runs, specs, account) {
        return f64::NAN;
    }
    let short = account_short_at(runs, specs, account, mode, threshold, i);
    first_short(FARTHEST_RISE, short)
}

/// Whether moving every price of `account` by `x` against it (each pair's the way that hurts)
/// from close `i` liquidates it. Each pair's worst of a rise and a fall by x never grows with x
/// (its headroom is concave in its price and at the close in between), so neither does the
/// sum: once true, true for every larger move. Only the account's own pairs are visited.
fn account_short_at<'r>(runs: &'r [PairRun], specs: &'r [PairSpec], account: usize, mode: MarginMode, threshold: f64, i: usize) -> impl Fn(f64) -> bool + 'r {
    let members: Vec<usize> = (0..runs.len()).filter(|&k| specs[k].perp_account == account || (mode == MarginMode::Portfolio && specs[k].spot_account == account)).collect();
    move |x: f64| {
        let headroom: f64 = members
            .iter()
            .map(|&k| {
                let (run, spec) = (&runs[k], &specs[k]);
                let t = run.timeline;
                let (mark, spot) = (t.mark_prices()[i], t.spot[i]);
                let at = |scale: f64| pair_headroom(run, spec, account, mode, threshold, mark, mark * scale, spot * scale);
                at(1.0 + x).min(at((1.0 - x).max(0.0)))
            })
            .sum();
        headroom < 0.0
    }
}

/// For a pair whose perp sits in shared `account`: the mark of the pair's own asset (its spot
/// moving with it) at which the account is liquidated, every other price held at close `i`,
/// and its distance from the mark (decimal, the nearer of a rise and a fall). Where neither a
/// rise to ×1,001 nor a fall to zero liquidates it: an infinite price for a short perp (0 for a
/// long) and an infinite distance.
fn pair_liquidation(runs: &[PairRun], specs: &[PairSpec], account: usize, mode: MarginMode, threshold: f64, i: usize, k: usize, account_headroom: f64) -> (f64, f64) {
    let (run, spec) = (&runs[k], &specs[k]);
    let t = run.timeline;
    let (mark, spot) = (t.mark_prices()[i], t.spot[i]);
    let own = |scale: f64| pair_headroom(run, spec, account, mode, threshold, mark, mark * scale, spot * scale);
    let others = account_headroom - own(1.0);
    let rise = first_short(FARTHEST_RISE, |x| others + own(1.0 + x) < 0.0);
    let fall = first_short(1.0, |x| others + own(1.0 - x) < 0.0);
    if rise.is_infinite() && fall.is_infinite() {
        let price = if run.sim.book.perp_qty < 0.0 { f64::INFINITY } else { 0.0 };
        return (price, f64::INFINITY);
    }
    if rise <= fall {
        (mark * (1.0 + rise), rise)
    } else {
        (mark * (1.0 - fall), fall)
    }
}

/// Each pair's liquidation price and distance at close `i` for the pairs whose perp sits in a
/// shared account ([`pair_liquidation`]); `None` for the others, whose own isolated price
/// stands.
fn shared_liquidations(runs: &[PairRun], specs: &[PairSpec], accounts: &[AccountSpec], i: usize) -> Vec<Option<(f64, f64)>> {
    let mut out = vec![None; runs.len()];
    for (a, account) in accounts.iter().enumerate() {
        if account.mode == MarginMode::Isolated || !holds_perp(runs, specs, a) {
            continue;
        }
        let (balance, maintenance) = account_value(runs, specs, a, account.mode, |_, t| (t.mark_prices()[i], t.mark_prices()[i], t.spot[i]));
        let headroom = balance - account.liquidation_threshold * maintenance;
        for k in 0..runs.len() {
            if specs[k].perp_account == a && runs[k].sim.book.perp_qty != 0.0 {
                out[k] = Some(pair_liquidation(runs, specs, a, account.mode, account.liquidation_threshold, i, k, headroom));
            }
        }
    }
    out
}

/// Liquidate every perp of a shared account at the point `theta` of the way to `corner`.
#[cold]
#[inline(never)]
fn liquidate_account(runs: &mut [PairRun], specs: &[PairSpec], steps: &mut [Step], account: usize, mode: MarginMode, i: usize, corner: &Corner, theta: f64) {
    // 1. Every perp marked to its price at the breach, and the account's take.
    let mut closing: Vec<(usize, f64, f64)> = Vec::new(); // (pair, price, notional)
    // Each perp's breach price and how far its fill slipped past it, for the trade record.
    let (mut breaches, mut slips) = (vec![f64::NAN; runs.len()], vec![0.0; runs.len()]);
    let mut perp_balance = 0.0;
    let mut maintenance = 0.0;
    for (k, (run, spec)) in runs.iter_mut().zip(specs).enumerate() {
        if spec.perp_account != account || run.sim.book.perp_qty == 0.0 {
            continue;
        }
        let t = run.timeline;
        let prev = t.mark_prices()[i - 1];
        let breach = corner_prices(t, i, corner[k], theta).1;
        let qty = run.sim.book.perp_qty;
        let moved = qty * (breach - prev);
        steps[k].pnl.perp += moved;
        run.sim.book.perp_margin += moved;
        // The closing fill may slip past the breach (the liquidation model), towards the
        // corner's extreme; a breach at the bar's open fills there.
        let mut rule = spec.params.liquidation;
        if spec.params.market_costs.is_some() {
            // Each perp's close is a market order of its whole size, as an isolated one's is.
            rule.fill_slippage += run.sim.costs().liquidation_slip(qty);
        }
        let price = if theta > 0.0 { rule.fill_price(qty, breach, prev, mark_end(t, i, corner[k])) } else { breach };
        let slipped = qty * (price - breach);
        (breaches[k], slips[k]) = (breach, -slipped);
        steps[k].pnl.liquidation += slipped;
        run.sim.book.perp_margin += slipped;
        perp_balance += run.sim.book.perp_margin;
        maintenance += spec.params.brackets.maintenance_margin(qty.abs() * price);
        closing.push((k, price, qty.abs() * price));
    }
    // Cash and haircut spot (portfolio mode; 0 in cross) at the breach: the account's balance
    // with each perp at the price it is now booked at, less the perps' balances.
    let at_breach = |k: usize, t: &MarketTimeline| {
        let (_, mark, spot) = corner_prices(t, i, corner[k], theta);
        (mark, mark, spot)
    };
    let collateral_balance = account_value(runs, specs, account, mode, at_breach).0 - perp_balance;
    let rules = specs[closing[0].0].params.liquidation;
    let total_notional: f64 = closing.iter().map(|c| c.2).sum();
    let left = (perp_balance + if mode == MarginMode::Portfolio { collateral_balance } else { 0.0 }).max(0.0);
    let taken = match rules.style {
        LiquidationStyle::LiquidationPrice => (total_notional * rules.fee_rate).min(left),
        LiquidationStyle::BankruptcyPrice => perp_balance.max(0.0),
        LiquidationStyle::MarketWithBackstop => {
            if perp_balance + collateral_balance < rules.backstop_fraction * maintenance {
                perp_balance.max(0.0)
            } else {
                0.0
            }
        }
    };
    // 2. Each perp closed, its share of the take paid from its margin, the rest to its cash.
    for &(k, price, notional) in &closing {
        let run = &mut runs[k];
        let share = if total_notional > 0.0 { taken * notional / total_notional } else { 0.0 };
        let qty = run.sim.book.perp_qty;
        run.sim.book.perp_margin -= share;
        steps[k].pnl.liquidation -= share;
        // At the bankruptcy price the position's share of the wallet is exactly used up: the
        // fill is that price (as for an isolated position), the share is what the venue took.
        let fill_price = if rules.style == LiquidationStyle::BankruptcyPrice && share > 0.0 { price - share / qty } else { price };
        run.sim.trades.push(Trade { ts_ms: steps[k].at.ts_ms, step: i, leg: "perp", reason: TradeReason::Liquidation, qty: -qty, reference_price: breaches[k], fill_price, fee: share, slippage: slips[k] });
        run.summary.traded_notional += notional;
        run.sim.book.perp_qty = 0.0;
    }
    // 3. A cross wallet left below zero is the insurance fund's.
    let wallet: f64 = closing.iter().map(|&(k, _, _)| runs[k].sim.book.perp_margin).sum();
    if wallet < 0.0 && mode == MarginMode::Cross {
        let negative: f64 = closing.iter().map(|&(k, _, _)| (-runs[k].sim.book.perp_margin).max(0.0)).sum();
        for &(k, _, _) in &closing {
            let part = (-runs[k].sim.book.perp_margin).max(0.0) / negative * -wallet;
            runs[k].sim.book.perp_margin += part;
            steps[k].pnl.liquidation += part;
        }
    }
    for &(k, _, _) in &closing {
        let margin = runs[k].sim.book.perp_margin;
        runs[k].sim.book.transfer_to_margin(-margin);
    }
    // 4. Portfolio mode: negative cash is repaid from the spot collateral at its price at the
    //    breach, with the spot-margin liquidation fee; what the account still lacks is the
    //    insurance fund's.
    if mode == MarginMode::Portfolio {
        for (k, (run, spec)) in runs.iter_mut().zip(specs).enumerate() {
            if spec.spot_account != account || run.sim.book.cash >= 0.0 {
                continue;
            }
            let t = run.timeline;
            let prev = t.spot[i - 1];
            let price = corner_prices(t, i, corner[k], theta).2;
            let fee_rate = spec.params.spot_margin.liquidation_fee_rate;
            let book = &mut run.sim.book;
            if book.spot_qty > 0.0 && price > 0.0 {
                let sold = (-book.cash / (price * (1.0 - fee_rate))).min(book.spot_qty);
                let fee = sold * price * fee_rate;
                steps[k].pnl.spot += sold * (price - prev);
                steps[k].pnl.liquidation -= fee;
                book.spot_account_costs.liquidation -= fee;
                book.cash += sold * price - fee;
                // The rest stays valued at the previous close until the close marks it.
                book.spot_qty -= sold;
                run.sim.trades.push(Trade { ts_ms: steps[k].at.ts_ms, step: i, leg: "spot", reason: TradeReason::Liquidation, qty: -sold, reference_price: price, fill_price: price, fee, slippage: 0.0 });
                run.summary.traded_notional += sold * price;
            }
        }
        let total: f64 = runs.iter().zip(specs).filter(|(_, s)| s.spot_account == account).map(|(r, _)| r.sim.book.equity(r.timeline.spot[i - 1])).sum();
        if total < 0.0 {
            let negative: f64 = runs.iter().zip(specs).filter(|(_, s)| s.spot_account == account).map(|(r, _)| (-r.sim.book.cash).max(0.0)).sum();
            for (k, (run, spec)) in runs.iter_mut().zip(specs).enumerate() {
                if spec.spot_account == account && run.sim.book.cash < 0.0 && negative > 0.0 {
                    let part = -run.sim.book.cash / negative * -total;
                    run.sim.book.cash += part;
                    run.sim.book.spot_account_costs.liquidation += part;
                    steps[k].pnl.liquidation += part;
                }
            }
        }
    }
    for &(k, _, _) in &closing {
        runs[k].note_liquidation(&mut steps[k]);
    }
}

/// In a shared account about to top up, the margin it already holds goes first to the pairs
/// short of their initial margin (notional / leverage, less haircut spot in a portfolio account
/// that holds it): a pair's margin above its own need is the account's free collateral, and
/// selling spot while it sits idle in the same wallet would be a cost no desk pays. Booked as
/// transfers between the pairs (through their cash, so each leg's record still closes); the
/// account's balance does not change.
fn pool_free_margin(runs: &mut [PairRun], specs: &[PairSpec], steps: &[Step], account: usize, mode: MarginMode, transfers: &mut [f64]) {
    let mut needs = vec![0.0; runs.len()];
    let (mut short, mut spare) = (0.0, 0.0);
    for (k, (run, spec)) in runs.iter().zip(specs).enumerate() {
        let book = &run.sim.book;
        if spec.perp_account != account || book.perp_qty == 0.0 {
            continue;
        }
        let at = &steps[k].at;
        let collateral = if mode == MarginMode::Portfolio && spec.spot_account == account { spec.spot_collateral.value(book.spot_qty.max(0.0), at.spot) } else { 0.0 };
        let need = book.perp_qty.abs() * at.mark / run.sim.params.leverage - book.perp_margin - collateral;
        needs[k] = if need > 0.0 { need } else { -(-need).min(book.perp_margin.max(0.0)) };
        if needs[k] > 0.0 {
            short += needs[k];
        } else {
            spare -= needs[k];
        }
    }
    let moved = short.min(spare);
    if !(moved > 0.0) {
        return;
    }
    for (k, run) in runs.iter_mut().enumerate() {
        let amount = if needs[k] > 0.0 { moved * needs[k] / short } else if needs[k] < 0.0 { moved * needs[k] / spare } else { 0.0 };
        if amount > 0.0 {
            run.sim.book.cash += amount;
            run.sim.book.transfer_to_margin(amount);
        } else if amount < 0.0 {
            run.sim.book.transfer_to_margin(amount);
            run.sim.book.cash += amount;
        }
        transfers[k] += amount;
    }
}

/// Move the book's equity towards `targets` (one per pair): pairs above their target shrink
/// both legs in proportion and hand over cash; pairs below grow by the cash they receive.
/// Returns each pair's net transfer in.
fn reallocate(runs: &mut [PairRun], steps: &mut [Step], targets: &[f64]) -> Vec<f64> {
    let n = runs.len();
    let mut transfers = vec![0.0; n];
    // Shrink first, so the cash to hand over exists.
    let mut pool = 0.0;
    for k in 0..n {
        let run = &mut runs[k];
        let at = steps[k].at;
        let equity = run.sim.book.equity(at.spot);
        if equity <= targets[k] || equity <= 0.0 {
            continue;
        }
        let keep = targets[k] / equity;
        if let Some(work) = run.sim.work.as_mut() {
            // An order being worked shrinks with the pair's allocation.
            work.spot_target *= keep;
            work.perp_target *= keep;
        }
        if matches!(run.sim.held, Held::Long | Held::Reverse) {
            let c = run.sim.params.costs;
            let (spot_cut, perp_cut) = ((1.0 - keep) * run.sim.book.spot_qty, (1.0 - keep) * run.sim.book.perp_qty);
            let margin_cut = (1.0 - keep) * run.sim.book.perp_margin;
            run.sim.book.trade_perp(-perp_cut, &at, &c, TradeReason::Rebalance, &mut steps[k].pnl, &mut run.sim.trades);
            run.sim.book.transfer_to_margin(-margin_cut.max(0.0));
            run.sim.book.trade_spot(-spot_cut, &at, &c, TradeReason::Rebalance, &mut steps[k].pnl, &mut run.sim.trades);
        }
        let spare = (run.sim.book.equity(at.spot) - targets[k]).min(run.sim.book.free_cash(at.spot)).max(0.0);
        run.sim.book.cash -= spare;
        transfers[k] -= spare;
        pool += spare;
    }
    let wanting: f64 = (0..n).map(|k| (targets[k] - runs[k].sim.book.equity(steps[k].at.spot)).max(0.0)).sum();
    if wanting <= 0.0 || pool <= 0.0 {
        // Nothing to hand over: the cash goes back where it came from.
        for k in 0..n {
            runs[k].sim.book.cash -= transfers[k];
            transfers[k] = 0.0;
        }
        return transfers;
    }
    for k in 0..n {
        let run = &mut runs[k];
        let at = steps[k].at;
        let equity = run.sim.book.equity(at.spot);
        let want = (targets[k] - equity).max(0.0);
        if want <= 0.0 {
            continue;
        }
        let given = pool * want / wanting;
        run.sim.book.cash += given;
        transfers[k] += given;
        if matches!(run.sim.held, Held::Long | Held::Reverse) && equity > 0.0 {
            // Grow both legs by the share the new cash adds, paying the costs out of it.
            let c = run.sim.params.costs;
            let grow = given / equity;
            let spot_add = grow * run.sim.book.spot_qty;
            let perp_add = grow * run.sim.book.perp_qty;
            let spot_cost = spot_add.abs() * at.spot * (c.spot_fee + c.spot_slippage) + spot_add * at.spot;
            let margin_add = (grow * run.sim.book.perp_margin).max(0.0);
            // Scale down when costs would overdraw the cash received.
            let affordable = if spot_cost + margin_add > given && spot_cost + margin_add > 0.0 { given / (spot_cost + margin_add) } else { 1.0 };
            // A capacity cap stops the perp growing past its notional limit.
            let room = (run.sim.params.max_perp_notional / at.mark - run.sim.book.perp_qty.abs()).max(0.0);
            let capped = if perp_add.abs() > room { room / perp_add.abs() } else { 1.0 };
            let scale = affordable.clamp(0.0, 1.0).min(capped);
            run.sim.book.trade_spot(scale * spot_add, &at, &c, TradeReason::Rebalance, &mut steps[k].pnl, &mut run.sim.trades);
            run.sim.book.transfer_to_margin(scale * margin_add);
            run.sim.book.trade_perp(scale * perp_add, &at, &c, TradeReason::Rebalance, &mut steps[k].pnl, &mut run.sim.trades);
        }
    }
    transfers
}

/// Run the book: every pair steps together on the common clock, shared accounts are checked and
/// liquidated as one, and capital is re-split on the allocation schedule. Each pair's row, each
/// account's row and the book's row go to `recorder`.
pub fn run<R: BookRecorder>(book: &BookParams, accounts: &[AccountSpec], pairs: &[PairSpec], recorder: &mut R) -> BookSummary {
    let n = pairs.first().map(|p| p.timeline.len()).unwrap_or(0);
    debug_assert!(pairs.iter().all(|p| p.timeline.ts_ms == pairs[0].timeline.ts_ms), "pairs must share one clock");
    let mut runs: Vec<PairRun> = pairs.iter().map(|p| PairRun::new(p.timeline, &p.params)).collect();
    let mut account_summaries: Vec<AccountSummary> = accounts.iter().map(|a| AccountSummary { name: a.name.clone(), mode: a.mode, min_liquidation_distance: f64::NAN, ..Default::default() }).collect();
    let mut transfers_total = vec![0.0; pairs.len()];
    let mut book_summary = RunSummary { steps: n, initial_capital: book.initial_capital, min_liquidation_distance: f64::NAN, funding_baseline_rate_per_8h: f64::NAN, ..Default::default() };
    let mut book_drawdown = super::DrawdownTracker::new(book.initial_capital, pairs.first().and_then(|p| p.timeline.ts_ms.first().copied()).unwrap_or(0));
    let mut next_rebalance_ms = book.rebalance_every_ms.and_then(|every| pairs.first().and_then(|p| p.timeline.ts_ms.first()).map(|t| t + every));
    let mut allocation_rebalances = 0usize;
    let mut margin_posted_sum = 0.0;
    let shared: Vec<bool> = accounts.iter().map(|a| a.mode != MarginMode::Isolated).collect();
    let (mut rotations, mut delistings, mut selections) = (0usize, 0usize, Vec::new());
    let mut next_rotation_ms = book.universe.as_ref().and_then(|_| pairs.first().and_then(|p| p.timeline.ts_ms.first().copied()));
    if book.universe.is_some() {
        // Nothing is held before the first selection.
        for run in runs.iter_mut() {
            run.sim.benched = true;
        }
    }

    for i in 0..n {
        let mut steps: Vec<Step> = runs.iter_mut().map(|r| r.begin(i)).collect();
        let ts_ms = steps.first().map(|s| s.at.ts_ms).unwrap_or(0);
        if i > 0 {
            // 1. Liquidations: isolated perps alone, shared accounts as one, borrowed spot per pair.
            for (k, run) in runs.iter_mut().enumerate() {
                if shared[pairs[k].perp_account] {
                    if run.sim.liquidate_spot(run.timeline, i, run.spot_liquidation_price_carried, &mut steps[k], &mut run.summary) {
                        run.note_liquidation(&mut steps[k]);
                    }
                } else {
                    run.liquidate_isolated(i, &mut steps[k]);
                }
            }
            for (a, account) in accounts.iter().enumerate() {
                if !shared[a] {
                    continue;
                }
                if let Some((corner, theta)) = account_breach(&runs, pairs, a, account.mode, account.liquidation_threshold, i) {
                    liquidate_account(&mut runs, pairs, &mut steps, a, account.mode, i, &corner, theta);
                }
            }
            // 2–4. Marks, funding, staking and borrow, per pair.
            for (k, run) in runs.iter_mut().enumerate() {
                run.advance(i, &mut steps[k]);
            }
        }
        // 5. Decisions per pair, then the allocation schedule. A perp in a shared account tops
        //    up on the account's distance, after the margin the account already holds has gone
        //    to the pairs short of theirs.
        let mut transfers = vec![0.0; pairs.len()];
        for (a, account) in accounts.iter().enumerate() {
            if !shared[a] {
                continue;
            }
            // A top-up asks only whether the account is nearer than each pair's threshold: one
            // look at that move (the account's headroom falls with the move), not the distance.
            // None: the account holds no perp, and the pair's own rule stands.
            let near: Vec<Option<bool>> = {
                let holds = holds_perp(&runs, pairs, a);
                let short = account_short_at(&runs, pairs, a, account.mode, account.liquidation_threshold, i);
                runs.iter()
                    .zip(pairs)
                    .map(|(r, s)| {
                        let p = r.sim.params;
                        (s.perp_account == a && holds).then(|| p.top_up_source != TopUpSource::None && p.top_up_distance > 0.0 && short(p.top_up_distance))
                    })
                    .collect()
            };
            if near.contains(&Some(true)) {
                pool_free_margin(&mut runs, pairs, &steps, a, account.mode, &mut transfers);
            }
            for ((run, spec), near) in runs.iter_mut().zip(pairs).zip(near) {
                if spec.perp_account == a {
                    run.set_account_near(near);
                }
            }
        }
        // A pair whose data has ended is closed at its last price, and stays out.
        if book.universe.is_some() {
            for (k, run) in runs.iter_mut().enumerate() {
                let ended = pairs[k].universe.as_ref().and_then(|u| u.active).is_some_and(|(_, last)| i == last + 1);
                if ended {
                    run.sim.benched = true;
                    if matches!(run.sim.held, Held::Long | Held::Reverse | Held::Unhedged) {
                        let at = steps[k].at;
                        run.sim.exit(&at, TradeReason::Delisting, &mut steps[k].pnl);
                        steps[k].flags |= events::EXIT;
                        run.summary.exits += 1;
                    }
                    delistings += 1;
                }
            }
        }
        let mut liquidation_prices: Vec<Option<f64>> = runs.iter_mut().zip(steps.iter_mut()).map(|(r, s)| r.decide(i, s)).collect();
        if let Some(universe) = &book.universe {
            if next_rotation_ms.is_some_and(|t| ts_ms >= t) && i + 1 < n {
                let selected = select(universe, pairs, i, ts_ms);
                rotate(universe, &mut runs, pairs, &mut steps, &selected, &mut transfers, &mut liquidation_prices);
                selections.push((ts_ms, selected));
                rotations += 1;
                if let Some(next) = next_rotation_ms.as_mut() {
                    while *next <= ts_ms {
                        *next += universe.rotate_every_ms;
                    }
                }
            }
        }
        let due = book.universe.is_none() && next_rebalance_ms.is_some_and(|t| ts_ms >= t) && i + 1 < n;
        let masked = steps.iter().any(|s| s.flags & events::MASKED != 0);
        if due && !masked {
            let equity: f64 = runs.iter().zip(&steps).map(|(r, s)| r.sim.book.equity(s.at.spot)).sum();
            let w = weights(&book.allocation, pairs, i);
            let targets: Vec<f64> = w.iter().map(|w| w * equity.max(0.0)).collect();
            let trades_before: Vec<usize> = runs.iter().map(|r| r.sim.trades.len()).collect();
            let moved = reallocate(&mut runs, &mut steps, &targets);
            for (k, run) in runs.iter_mut().enumerate() {
                transfers[k] += moved[k];
                run.count_traded(trades_before[k]);
                if run.sim.trades.len() > trades_before[k] {
                    steps[k].flags |= events::REBALANCE;
                    liquidation_prices[k] = None;
                }
            }
            allocation_rebalances += 1;
            if let (Some(next), Some(every)) = (next_rebalance_ms.as_mut(), book.rebalance_every_ms) {
                while *next <= ts_ms {
                    *next += every;
                }
            }
        }
        for (k, moved) in transfers.iter().enumerate() {
            transfers_total[k] += moved;
        }
        // Rows: pairs, accounts, book. A perp in a shared account reports the account's
        // liquidation (the price of its own asset at which the account breaches), never the
        // isolated formula's.
        let shared_prices = shared_liquidations(&runs, pairs, accounts, i);
        let mut book_row = StepRow { ts_ms, spot_price: f64::NAN, perp_price: f64::NAN, mark_price: f64::NAN, spot_qty: f64::NAN, perp_qty: f64::NAN, liquidation_price: f64::NAN, funding_signal_apr: f64::NAN, liquidation_distance: f64::NAN, ..Default::default() };
        let mut states = [0usize; 4];
        for (k, (run, step)) in runs.iter_mut().zip(steps.drain(..)).enumerate() {
            let row = match shared_prices[k] {
                Some((price, distance)) => run.record_at(step, price, distance, &mut NoRows),
                None => run.record(step, liquidation_prices[k], &mut NoRows),
            };
            recorder.pair(k, &row, transfers[k]);
            book_row.events |= row.events;
            book_row.cash += row.cash;
            book_row.perp_margin += row.perp_margin;
            book_row.equity += row.equity;
            book_row.pnl.add(&row.pnl);
            // The pair's state as its own run counts it: a pair whose order is being worked is
            // in the carry it builds or unwinds (long or reverse).
            states[run.sim.state_code().1] += 1;
            margin_posted_sum += row.perp_margin.max(0.0);
        }
        book_row.state = book_state(&states);
        for (a, account) in accounts.iter().enumerate() {
            let row = account_row(&runs, pairs, account, a, i, ts_ms);
            let summary = &mut account_summaries[a];
            keep_smaller(&mut summary.min_liquidation_distance, row.liquidation_distance);
            summary.max_margin_ratio = summary.max_margin_ratio.max(row.margin_ratio);
            keep_smaller(&mut book_row.liquidation_distance, row.liquidation_distance);
            recorder.account(a, &row);
        }
        // A borrowed spot leg is margined in its own spot-margin account.
        for (run, spec) in runs.iter().zip(pairs) {
            keep_smaller(&mut book_row.liquidation_distance, run.spot_loan_distance(spec.timeline.spot[i]));
        }
        keep_smaller(&mut book_summary.min_liquidation_distance, book_row.liquidation_distance);
        for (a, summary) in account_summaries.iter_mut().enumerate() {
            let liquidated = runs.iter().zip(pairs).any(|(r, s)| s.perp_account == a && r.sim.trades.iter().rev().take_while(|t| t.ts_ms == ts_ms).any(|t| t.reason == TradeReason::Liquidation && t.leg == "perp"));
            if liquidated {
                summary.liquidations += 1;
                summary.first_liquidation_ms.get_or_insert(ts_ms);
            }
        }
        if book_row.events & events::LIQUIDATION != 0 {
            book_summary.liquidations += 1;
            book_summary.first_liquidation_ms.get_or_insert(ts_ms);
        }
        book_summary.steps_in_state[state_index(book_row.state)] += 1;
        book_summary.pnl.add(&book_row.pnl);
        book_drawdown.update(ts_ms, book_row.equity, &mut book_summary);
        recorder.book(&book_row);
    }
    if n > 0 {
        book_drawdown.finish(&mut book_summary);
        book_summary.first_ts_ms = pairs[0].timeline.ts_ms[0];
        book_summary.last_ts_ms = pairs[0].timeline.ts_ms[n - 1];
    }
    let pair_summaries: Vec<RunSummary> = runs.into_iter().map(|r| r.finish()).collect();
    merge_into(&mut book_summary, &pair_summaries);
    let posted = if n > 0 { margin_posted_sum / n as f64 } else { 0.0 };
    BookSummary { book: book_summary, pairs: pair_summaries, transfers_in: transfers_total, accounts: account_summaries, allocation_rebalances, mean_margin_posted: posted, rotations, delistings, selections }
}

/// The pairs a universe holds from step `i` (time `ts_ms`): those with a bar at the step, past
/// their required history, with a known score (at least the minimum), the `top` best by
/// score (ties to the earlier pair). Nothing later than the step is read.
fn select(universe: &UniverseParams, pairs: &[PairSpec], i: usize, ts_ms: i64) -> Vec<usize> {
    let mut ranked: Vec<(usize, f64)> = pairs
        .iter()
        .enumerate()
        .filter_map(|(k, p)| {
            let u = p.universe.as_ref()?;
            let (first, last) = u.active?;
            let score = u.score.get(i).copied().unwrap_or(f64::NAN);
            let eligible = first <= i && i <= last && ts_ms >= u.eligible_from_ms && score.is_finite() && universe.min_score.is_none_or(|m| score >= m);
            eligible.then_some((k, score))
        })
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut selected: Vec<usize> = ranked.into_iter().take(universe.top).map(|(k, _)| k).collect();
    selected.sort_unstable();
    selected
}

/// A rotation at the step's close: pairs leaving the selection are closed (reason `rotation`)
/// and benched, the book's equity is split among the selected pairs (held ones resized, both
/// legs, with their costs; cash moved by transfers), and selected pairs not yet in a carry
/// open one when their own rule wants it.
fn rotate(universe: &UniverseParams, runs: &mut [PairRun], pairs: &[PairSpec], steps: &mut [Step], selected: &[usize], transfers: &mut [f64], liquidation_prices: &mut [Option<f64>]) {
    for (k, run) in runs.iter_mut().enumerate() {
        let keep = selected.contains(&k);
        if !keep && matches!(run.sim.held, Held::Long | Held::Reverse | Held::Unhedged) {
            let at = steps[k].at;
            let trades_before = run.sim.trades.len();
            run.sim.exit(&at, TradeReason::Rotation, &mut steps[k].pnl);
            run.count_traded(trades_before);
            steps[k].flags |= events::EXIT;
            run.summary.exits += 1;
            liquidation_prices[k] = None;
        }
        run.sim.benched = !keep || pairs[k].universe.as_ref().and_then(|u| u.active).is_none();
    }
    let equity: f64 = runs.iter().zip(steps.iter()).map(|(r, s)| r.sim.book.equity(s.at.spot)).sum();
    let weights: Vec<f64> = {
        let scores: Vec<f64> = (0..runs.len())
            .map(|k| if selected.contains(&k) { pairs[k].universe.as_ref().and_then(|u| u.weight.get(steps[k].at.step).copied()).filter(|w| w.is_finite()).unwrap_or(0.0) } else { 0.0 })
            .collect();
        let positive: f64 = scores.iter().map(|s| s.max(0.0)).sum();
        (0..runs.len())
            .map(|k| {
                if !selected.contains(&k) {
                    0.0
                } else if universe.weighted && positive > 0.0 {
                    scores[k].max(0.0) / positive
                } else {
                    1.0 / selected.len() as f64
                }
            })
            .collect()
    };
    let targets: Vec<f64> = weights.iter().map(|w| w * equity.max(0.0)).collect();
    let trades_before: Vec<usize> = runs.iter().map(|r| r.sim.trades.len()).collect();
    let moved = reallocate(runs, steps, &targets);
    for (k, run) in runs.iter_mut().enumerate() {
        transfers[k] += moved[k];
        if run.sim.trades.len() > trades_before[k] {
            steps[k].flags |= events::REBALANCE;
            liquidation_prices[k] = None;
        }
        // A selected pair out of a carry opens one now, if its rule wants it.
        if selected.contains(&k) && run.sim.held == Held::Flat {
            let at = steps[k].at;
            let wanted = run.sim.wanted(Target::Flat, run.signal_now, &at);
            if wanted != Target::Flat {
                run.sim.enter(wanted, &at, &mut steps[k].pnl);
                if run.sim.held != Held::Flat {
                    steps[k].flags |= events::ENTRY;
                    run.summary.entries += 1;
                    liquidation_prices[k] = None;
                }
            }
        }
        run.count_traded(trades_before[k]);
    }
}

/// Rows the pairs' own recorders would get: the book recorder takes them instead.
struct NoRows;

impl Recorder for NoRows {
    #[inline]
    fn record(&mut self, _row: &StepRow) {}
}

fn state_index(code: i8) -> usize {
    match code {
        state::LONG_CARRY => 1,
        state::REVERSE_CARRY => 2,
        state::UNHEDGED_SPOT => 3,
        _ => 0,
    }
}

/// The book's state: flat when every pair is, a carry when every open pair holds the same one,
/// unhedged when any pair is; otherwise the long carry (a mixed book).
fn book_state(states: &[usize; 4]) -> i8 {
    if states[3] > 0 {
        state::UNHEDGED_SPOT
    } else if states[1] == 0 && states[2] == 0 {
        state::FLAT
    } else if states[1] == 0 {
        state::REVERSE_CARRY
    } else {
        state::LONG_CARRY
    }
}

fn account_row(runs: &[PairRun], specs: &[PairSpec], spec: &AccountSpec, account: usize, i: usize, ts_ms: i64) -> AccountRow {
    let mode = spec.mode;
    let mut row = AccountRow { ts_ms, ..Default::default() };
    let mut isolated_distance = f64::NAN;
    (row.margin_balance, row.maintenance) = account_value(runs, specs, account, mode, |_, t| (t.mark_prices()[i], t.mark_prices()[i], t.spot[i]));
    for (run, pair) in runs.iter().zip(specs) {
        let book = &run.sim.book;
        let t = run.timeline;
        if pair.spot_account == account {
            row.cash += book.cash;
            row.spot_value += book.spot_qty * t.spot[i];
        }
        if pair.perp_account == account {
            row.perp_margin += book.perp_margin;
            if book.perp_qty != 0.0 {
                if mode == MarginMode::Isolated {
                    let d = super::margin::liquidation_distance(book.perp_qty, run.liquidation_price_carried, t.mark_prices()[i]);
                    if isolated_distance.is_nan() || d < isolated_distance {
                        isolated_distance = d;
                    }
                }
            }
        }
    }
    row.equity = row.cash + row.spot_value + row.perp_margin;
    row.margin_ratio = if row.maintenance > 0.0 && row.margin_balance > 0.0 { row.maintenance / row.margin_balance } else if row.maintenance > 0.0 { f64::INFINITY } else { 0.0 };
    row.liquidation_distance = if mode == MarginMode::Isolated { isolated_distance } else { account_distance(runs, specs, account, mode, spec.liquidation_threshold, i) };
    row
}

/// The book's totals from its pairs: counts and fills summed, trades and settlements merged in
/// time order. (Its smallest distance to liquidation is its accounts', kept by [`run`].)
fn merge_into(book: &mut RunSummary, pairs: &[RunSummary]) {
    for p in pairs {
        book.rebalances += p.rebalances;
        book.top_ups += p.top_ups;
        book.entries += p.entries;
        book.exits += p.exits;
        book.traded_notional += p.traded_notional;
        book.perp_held_ms = book.perp_held_ms.max(p.perp_held_ms);
        book.unhedged_ms = book.unhedged_ms.max(p.unhedged_ms);
        book.unhedged_pnl += p.unhedged_pnl;
        book.uncovered_ms = book.uncovered_ms.max(p.uncovered_ms);
        if let Some(pair) = &p.execution {
            let stats = book.execution.get_or_insert_with(Default::default);
            stats.orders_worked += pair.orders_worked;
            stats.steps_working += pair.steps_working;
            // Pairs legging at the same time count once in the book's time partially hedged.
            stats.partially_hedged_ms = stats.partially_hedged_ms.max(pair.partially_hedged_ms);
            stats.legging_pnl += pair.legging_pnl;
            stats.bars_without_volume += pair.bars_without_volume;
            stats.unfinished |= pair.unfinished;
        }
        if book.after_liquidation.is_none() {
            book.after_liquidation = p.after_liquidation;
        }
        book.trades.extend(p.trades.iter().cloned());
        book.settlements.extend(p.settlements.iter().cloned());
        book.window_settlements.extend(p.window_settlements.iter().cloned());
    }
    book.trades.sort_by_key(|t| t.ts_ms);
    book.settlements.sort_by_key(|s| s.settlement.settle_ms);
    book.window_settlements.sort_by_key(|s| s.settle_ms);
}
