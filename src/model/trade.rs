//! Fills and funding payments, as the engine records them.

/// Why a trade happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeReason {
    Entry,
    Exit,
    Rebalance,
    TopUp,
    Liquidation,
    /// The surviving leg closed after the other was liquidated (`after_liquidation = "close"`).
    Unwind,
    /// The liquidated leg reopened against the surviving one (`after_liquidation = "rehedge"`).
    Rehedge,
    Final,
}

impl TradeReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            TradeReason::Entry => "entry",
            TradeReason::Exit => "exit",
            TradeReason::Rebalance => "rebalance",
            TradeReason::TopUp => "top_up",
            TradeReason::Liquidation => "liquidation",
            TradeReason::Unwind => "unwind",
            TradeReason::Rehedge => "rehedge",
            TradeReason::Final => "final",
        }
    }
}

/// One fill.
#[derive(Debug, Clone, Copy)]
pub struct Trade {
    pub ts_ms: i64,
    pub step: usize,
    /// `spot` or `perp`.
    pub leg: &'static str,
    pub reason: TradeReason,
    /// Signed quantity (+ buy, − sell), in the base asset.
    pub qty: f64,
    /// Bar close the order was priced against.
    pub reference_price: f64,
    /// Price filled at, after slippage.
    pub fill_price: f64,
    /// Fee paid (quote, ≥ 0).
    pub fee: f64,
    /// Slippage cost (quote, ≥ 0).
    pub slippage: f64,
}

/// One funding settlement applied to a position.
#[derive(Debug, Clone, Copy)]
pub struct SettlementPaid {
    pub settle_ms: i64,
    pub rate: f64,
    pub interval_hours: f64,
    /// Price the notional was valued at.
    pub price: f64,
    /// Perp quantity held at the settlement (signed).
    pub perp_qty: f64,
    /// Funding received (+) or paid (−): −perp_qty × rate × price.
    pub amount: f64,
}

/// One settlement inside the simulated window, held or not: what `funding.parquet` stores and
/// what the funding chart draws.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settlement {
    pub settle_ms: i64,
    /// Decimal per interval; positive means longs pay shorts.
    pub rate: f64,
    pub interval_hours: f64,
    /// Whether a perp position was open at the settlement.
    pub held: bool,
    /// Perp quantity held (signed; 0 when not held).
    pub perp_qty: f64,
    /// Price the notional was valued at (NaN when not held).
    pub price: f64,
    /// Funding received (+) or paid (−), quote currency (0 when not held).
    pub amount: f64,
}
