//! What trading costs: the schedule in basis points a config or venue preset states
//! ([`CostSchedule`]), the model that makes slippage depend on the market ([`CostModel`]), the
//! decimals the engine charges per fill ([`Costs`]), and the per-step series a market model
//! gives ([`MarketCosts`]).

use serde::{Deserialize, Serialize};

/// Which side of the book strategy orders take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderType {
    /// Orders cross the spread and pay the taker fees.
    Taker,
    /// Orders rest on the book and pay the maker fees.
    Maker,
}

/// What trading costs: fees (maker and taker, spot and perp) and slippage, in basis points of
/// traded notional. The one costs type: a config's `[costs]` and a venue preset's `[fees]` are
/// both this schedule, and [`Costs::of`] turns it into the decimals the engine charges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostSchedule {
    /// Which fees orders pay: `taker` (default) or `maker`.
    #[serde(default = "default_order_type")]
    pub order_type: OrderType,
    /// Spot maker fee, bps of traded notional (10 = 0.1 %).
    #[serde(default = "default_spot_fee")]
    pub spot_maker_bps: f64,
    /// Spot taker fee, bps of traded notional.
    #[serde(default = "default_spot_fee")]
    pub spot_taker_bps: f64,
    /// Perp maker fee, bps of traded notional (2 = 0.02 %).
    #[serde(default = "default_perp_maker")]
    pub perp_maker_bps: f64,
    /// Perp taker fee, bps of traded notional.
    #[serde(default = "default_perp_taker")]
    pub perp_taker_bps: f64,
    /// Adverse fill versus the bar close, per spot trade.
    #[serde(default = "default_slippage")]
    pub spot_slippage_bps: f64,
    /// Adverse fill versus the bar close, per perp trade.
    #[serde(default = "default_slippage")]
    pub perp_slippage_bps: f64,
    /// Where the figures come from (a URL or a reference of VENUES.md); venue presets must say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// How slippage is charged on both legs: `fixed_bps` (the `*_slippage_bps` above, the
    /// default), `spread_from_bars` (half the spread the bars imply) or `sqrt_impact` (the
    /// fixed slippage plus the square-root law's impact of the order's size).
    #[serde(default, skip_serializing_if = "is_default_model")]
    pub model: CostModel,
    /// The spot leg's model where it differs from `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_model: Option<CostModel>,
    /// The perp leg's model where it differs from `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perp_model: Option<CostModel>,
    /// `spread_from_bars`: the estimator of the spread from the bars' high, low and close.
    #[serde(default, skip_serializing_if = "is_default_estimator")]
    pub spread_estimator: SpreadEstimator,
    /// `spread_from_bars`: bars the estimate is averaged over (trailing, the step's own bar
    /// included: its values are known at its close).
    #[serde(default = "default_spread_window", skip_serializing_if = "is_default_spread_window")]
    pub spread_window_bars: usize,
    /// `sqrt_impact`: the square-root law's prefactor Y in impact = Y × σ_daily × √(Q / ADV).
    /// Of order one across markets (Tóth et al. 2011, Phys. Rev. X 1, 021006; Bouchaud,
    /// Bonart, Donier and Gould 2018, *Trades, Quotes and Prices*, ch. 12), confirmed on
    /// Bitcoin by Donier and Bonart 2015 (arXiv:1412.4503).
    #[serde(default = "default_impact_k", skip_serializing_if = "is_default_impact_k")]
    pub impact_k: f64,
    /// `sqrt_impact`: days the volatility and the average daily volume are measured over
    /// (trailing, point in time).
    #[serde(default = "default_impact_window", skip_serializing_if = "is_default_impact_window")]
    pub impact_window_days: f64,
    /// The largest share of a bar's volume one leg's fills may take, decimal (0.1 = 10 %); an
    /// order larger than that is worked over as many bars as it needs. None: every order
    /// fills at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_participation: Option<f64>,
    /// Time from the first leg's fill to the second's, ms: the second leg fills at the last
    /// close known at that time (the same bar's while the delay is shorter than a bar).
    #[serde(default, skip_serializing_if = "is_zero_ms")]
    pub leg_delay_ms: i64,
    /// Which leg trades first when the legs are delayed: `spot` (default) or `perp`.
    #[serde(default, skip_serializing_if = "is_default_first_leg")]
    pub first_leg: FirstLeg,
}

/// Which leg of a carry an order trades first (`leg_delay_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirstLeg {
    /// The spot leg fills first, the perp `leg_delay_ms` later.
    #[default]
    Spot,
    /// The perp leg fills first, the spot `leg_delay_ms` later.
    Perp,
}

fn is_zero_ms(ms: &i64) -> bool {
    *ms == 0
}
fn is_default_first_leg(leg: &FirstLeg) -> bool {
    *leg == FirstLeg::Spot
}

/// How a leg's fills are charged beyond the fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostModel {
    /// A fixed slippage in basis points (`*_slippage_bps`), whatever the market and the size.
    #[default]
    FixedBps,
    /// Half the bid-ask spread the bars imply ([`SpreadEstimator`]), averaged over
    /// `spread_window_bars`, point in time; the fixed slippage until the window is full.
    SpreadFromBars,
    /// The fixed slippage plus impact = `impact_k` × σ_daily × √(|q| / ADV), σ and ADV trailing
    /// over `impact_window_days`: size dependent.
    SqrtImpact,
    /// The order walks the last L2 snapshot known at the fill (`[data.spot_book]`,
    /// `[data.perp_book]`): its average price against the snapshot's mid is the slippage; the
    /// fixed slippage where no fresh snapshot is known.
    Orderbook,
}

/// A published estimator of the spread from bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpreadEstimator {
    /// Corwin and Schultz (2012, Journal of Finance 67(2)): from two consecutive bars' highs
    /// and lows; negative estimates count as 0.
    #[default]
    CorwinSchultz,
    /// Abdi and Ranaldo (2017, Review of Financial Studies 30(12)): from a bar's close and the
    /// mid-range of it and the next; here the previous bar's close against its own and the
    /// current bar's mid-range, so only closed bars are used.
    AbdiRanaldo,
}

fn is_default_model(m: &CostModel) -> bool {
    *m == CostModel::FixedBps
}
fn is_default_estimator(e: &SpreadEstimator) -> bool {
    *e == SpreadEstimator::CorwinSchultz
}
fn default_spread_window() -> usize {
    24
}
fn is_default_spread_window(w: &usize) -> bool {
    *w == default_spread_window()
}
fn default_impact_k() -> f64 {
    1.0
}
fn is_default_impact_k(k: &f64) -> bool {
    *k == default_impact_k()
}
fn default_impact_window() -> f64 {
    30.0
}
fn is_default_impact_window(d: &f64) -> bool {
    *d == default_impact_window()
}

impl CostSchedule {
    /// The spot leg's model.
    pub fn spot_cost_model(&self) -> CostModel {
        self.spot_model.unwrap_or(self.model)
    }

    /// The perp leg's model.
    pub fn perp_cost_model(&self) -> CostModel {
        self.perp_model.unwrap_or(self.model)
    }

    /// Whether either leg's slippage depends on the market (a per-step series is built).
    pub fn market_dependent(&self) -> bool {
        self.spot_cost_model() != CostModel::FixedBps || self.perp_cost_model() != CostModel::FixedBps
    }

    /// Whether orders are worked over time (a participation cap or a delay between the legs)
    /// rather than filled at once.
    pub fn worked(&self) -> bool {
        self.max_participation.is_some() || self.leg_delay_ms != 0
    }

    /// Whether the run needs the bars' ranges and volumes on its timeline (a market cost model
    /// or a participation cap reads them).
    pub fn needs_bar_detail(&self) -> bool {
        self.market_dependent() || self.max_participation.is_some()
    }
}

impl Default for CostSchedule {
    fn default() -> Self {
        Self {
            order_type: default_order_type(),
            spot_maker_bps: default_spot_fee(),
            spot_taker_bps: default_spot_fee(),
            perp_maker_bps: default_perp_maker(),
            perp_taker_bps: default_perp_taker(),
            spot_slippage_bps: default_slippage(),
            perp_slippage_bps: default_slippage(),
            source: None,
            model: CostModel::FixedBps,
            spot_model: None,
            perp_model: None,
            spread_estimator: SpreadEstimator::CorwinSchultz,
            spread_window_bars: default_spread_window(),
            impact_k: default_impact_k(),
            impact_window_days: default_impact_window(),
            max_participation: None,
            leg_delay_ms: 0,
            first_leg: FirstLeg::Spot,
        }
    }
}

fn default_order_type() -> OrderType {
    OrderType::Taker
}
// Binance regular tier (VENUES.md §1.1): spot 0.1 %/0.1 %, USDⓈ-M 0.02 %/0.05 %.
fn default_spot_fee() -> f64 {
    10.0
}
fn default_perp_maker() -> f64 {
    2.0
}
fn default_perp_taker() -> f64 {
    5.0
}
fn default_slippage() -> f64 {
    1.0
}

/// The most levels a side of an L2 snapshot keeps (Tardis' `book_snapshot_25`).
pub const DEPTH_LEVELS: usize = 25;

/// One L2 snapshot, relative to its mid: each level's distance from the mid (a decimal of the
/// mid, ≥ 0 on both sides) and quantity (base units), best first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Depth {
    /// Ask levels: (ask / mid − 1, quantity).
    pub asks: [(f64, f64); DEPTH_LEVELS],
    /// Bid levels: (1 − bid / mid, quantity).
    pub bids: [(f64, f64); DEPTH_LEVELS],
    /// Levels used on each side.
    pub ask_levels: u8,
    /// See `ask_levels`.
    pub bid_levels: u8,
}

impl Depth {
    /// The slippage of a market order of `qty` (> 0 buys from the asks, < 0 sells to the bids):
    /// its average price's distance from the mid, decimal. What the visible levels do not hold
    /// fills at the deepest level's price.
    pub fn slippage(&self, qty: f64) -> f64 {
        let levels = if qty > 0.0 { &self.asks[..self.ask_levels as usize] } else { &self.bids[..self.bid_levels as usize] };
        let wanted = qty.abs();
        if !(wanted > 0.0) || levels.is_empty() {
            return 0.0;
        }
        let (mut left, mut cost) = (wanted, 0.0);
        for &(distance, size) in levels {
            let take = left.min(size);
            cost += take * distance;
            left -= take;
            if left <= 0.0 {
                return cost / wanted;
            }
        }
        (cost + left * levels[levels.len() - 1].0) / wanted
    }

    /// The quantity the visible levels hold on the side an order of `qty` takes.
    pub fn visible(&self, qty: f64) -> f64 {
        let levels = if qty > 0.0 { &self.asks[..self.ask_levels as usize] } else { &self.bids[..self.bid_levels as usize] };
        levels.iter().map(|l| l.1).sum()
    }
}

/// The L2 snapshots a leg's fills walk, on the run's clock: the snapshot known at each step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DepthSeries {
    /// The snapshots some step uses.
    pub snapshots: Vec<Depth>,
    /// The snapshot at each step (`u32::MAX`: none fresh enough).
    pub at_step: Vec<u32>,
}

impl DepthSeries {
    /// The snapshot known at `step`.
    #[inline]
    pub fn at(&self, step: usize) -> Option<&Depth> {
        self.at_step.get(step).and_then(|&k| self.snapshots.get(k as usize))
    }
}

/// Fee and slippage rates (decimals, not bps) that strategy orders pay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Costs {
    /// Spot fee, decimal of traded notional (0.001 = 10 bps).
    pub spot_fee: f64,
    /// Perp fee, decimal of traded notional (0.0005 = 5 bps).
    pub perp_fee: f64,
    /// Adverse spot fill versus the close, decimal of price.
    pub spot_slippage: f64,
    /// Adverse perp fill versus the last price, decimal of price.
    pub perp_slippage: f64,
    /// Spot impact per √(base units) of the order, decimal of price: a fill of `q` slips
    /// `spot_slippage + spot_impact × √|q|` (0 but for `sqrt_impact`).
    pub spot_impact: f64,
    /// Perp impact per √(base units) of the order, decimal of price (see `spot_impact`).
    pub perp_impact: f64,
    /// The spot book a fill walks (`orderbook`): its slippage replaces the rest.
    pub spot_depth: Option<Depth>,
    /// The perp book a fill walks (see `spot_depth`).
    pub perp_depth: Option<Depth>,
}

impl Costs {
    /// No fee, no slippage.
    pub const FREE: Costs = Costs { spot_fee: 0.0, perp_fee: 0.0, spot_slippage: 0.0, perp_slippage: 0.0, spot_impact: 0.0, perp_impact: 0.0, spot_depth: None, perp_depth: None };

    /// The spot fill's slippage for `qty`, decimal of price.
    #[inline(always)]
    pub fn spot_slippage_for(&self, qty: f64) -> f64 {
        match &self.spot_depth {
            Some(depth) => depth.slippage(qty),
            None => self.spot_slippage + self.spot_impact * qty.abs().sqrt(),
        }
    }

    /// The perp fill's slippage for `qty`, decimal of price.
    #[inline(always)]
    pub fn perp_slippage_for(&self, qty: f64) -> f64 {
        match &self.perp_depth {
            Some(depth) => depth.slippage(qty),
            None => self.perp_slippage + self.perp_impact * qty.abs().sqrt(),
        }
    }

    /// How far a liquidation slips beyond the venue's own liquidation slippage under a market
    /// cost model, decimal of price: the liquidation is a market order of the whole position
    /// `held` (signed; the close trades −held), so it walks the book (`orderbook`) or slips its
    /// size's impact (`sqrt_impact`); 0 under fixed costs.
    pub fn liquidation_slip(&self, held: f64) -> f64 {
        match &self.perp_depth {
            // The close (a buy for a short) walks the book, beyond its mid.
            Some(depth) => depth.slippage(-held),
            None => self.perp_impact * held.abs().sqrt(),
        }
    }

    /// What closing a dated contract at `reason` costs: a delivery pays the settlement fee
    /// `delivery_fee` and slips nothing (MARGIN.md §6); a roll or a switch pays these costs.
    pub fn closing_dated(&self, delivery: bool, delivery_fee: f64) -> Costs {
        if delivery { Costs { perp_slippage: 0.0, perp_impact: 0.0, perp_depth: None, perp_fee: delivery_fee, ..*self } } else { *self }
    }

    /// These costs with the impact of an order of `spot_qty` (and `perp_qty`) folded into the
    /// slippage: what sizing an order before it is placed assumes.
    pub fn at_size(&self, spot_qty: f64, perp_qty: f64) -> Costs {
        Costs { spot_slippage: self.spot_slippage_for(spot_qty), perp_slippage: self.perp_slippage_for(perp_qty), spot_impact: 0.0, perp_impact: 0.0, spot_depth: None, perp_depth: None, ..*self }
    }

    /// The decimals a schedule charges: the maker or taker fee per the order type, and the
    /// slippage, each bps × 1e-4.
    pub fn of(schedule: &CostSchedule) -> Costs {
        let taker = schedule.order_type == OrderType::Taker;
        Costs {
            spot_fee: if taker { schedule.spot_taker_bps } else { schedule.spot_maker_bps } * 1e-4,
            perp_fee: if taker { schedule.perp_taker_bps } else { schedule.perp_maker_bps } * 1e-4,
            spot_slippage: schedule.spot_slippage_bps * 1e-4,
            perp_slippage: schedule.perp_slippage_bps * 1e-4,
            spot_impact: 0.0,
            perp_impact: 0.0,
            spot_depth: None,
            perp_depth: None,
        }
    }
}

/// Per-step slippage from a market model, point in time (built from bars closed by each step).
/// An empty series leaves that part of the costs as configured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MarketCosts {
    /// Spot slippage at each step, decimal of price (NaN: the configured one).
    pub spot_slippage: Vec<f64>,
    /// Perp slippage at each step, decimal of price (NaN: the configured one).
    pub perp_slippage: Vec<f64>,
    /// Spot impact per √(base units) at each step (NaN: none known yet, the impact is 0).
    pub spot_impact: Vec<f64>,
    /// Perp impact per √(base units) at each step.
    pub perp_impact: Vec<f64>,
    /// The spot book at each step (`orderbook`; empty: none).
    pub spot_book: DepthSeries,
    /// The perp book at each step.
    pub perp_book: DepthSeries,
}

impl MarketCosts {
    /// Every slippage and impact the series give multiplied by `k` (a stress scenario's
    /// thinner market); books are left as they are.
    pub fn scale(&mut self, k: f64) {
        for series in [&mut self.spot_slippage, &mut self.perp_slippage, &mut self.spot_impact, &mut self.perp_impact] {
            for v in series.iter_mut() {
                *v *= k;
            }
        }
    }

    /// `costs` at `step`: the slippage and impact the series give there.
    #[inline]
    pub fn apply(&self, step: usize, costs: &mut Costs) {
        let at = |series: &[f64]| series.get(step).copied().filter(|v| v.is_finite());
        if let Some(s) = at(&self.spot_slippage) {
            costs.spot_slippage = s;
        }
        if let Some(s) = at(&self.perp_slippage) {
            costs.perp_slippage = s;
        }
        if let Some(k) = at(&self.spot_impact) {
            costs.spot_impact = k;
        }
        if let Some(k) = at(&self.perp_impact) {
            costs.perp_impact = k;
        }
        if let Some(depth) = self.spot_book.at(step) {
            costs.spot_depth = Some(*depth);
        }
        if let Some(depth) = self.perp_book.at(step) {
            costs.perp_depth = Some(*depth);
        }
    }
}
