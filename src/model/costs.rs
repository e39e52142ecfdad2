//! What trading costs: the schedule in basis points a config or venue preset states
//! ([`CostSchedule`]), and the decimals the engine charges per fill ([`Costs`]).

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
}

impl Costs {
    /// The decimals a schedule charges: the maker or taker fee per the order type, and the
    /// slippage, each bps × 1e-4.
    pub fn of(schedule: &CostSchedule) -> Costs {
        let taker = schedule.order_type == OrderType::Taker;
        Costs {
            spot_fee: if taker { schedule.spot_taker_bps } else { schedule.spot_maker_bps } * 1e-4,
            perp_fee: if taker { schedule.perp_taker_bps } else { schedule.perp_maker_bps } * 1e-4,
            spot_slippage: schedule.spot_slippage_bps * 1e-4,
            perp_slippage: schedule.perp_slippage_bps * 1e-4,
        }
    }
}
