//! Fills and funding payments, as the engine records them.

use super::funding::Settlement;

/// Why a trade happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeReason {
    /// Opening a new carry (both legs).
    Entry,
    /// Closing the position because the entry rule wants flat or the other carry.
    Exit,
    /// Resizing the perp back to the hedge ratio when delta drifts past the threshold.
    Rebalance,
    /// Shrinking both legs to raise margin (selling-spot top-up sources).
    TopUp,
    /// Forced close by the venue: the perp by its liquidation rule, or the borrowed spot bought back.
    Liquidation,
    /// The surviving leg closed after the other was liquidated (`after_liquidation = "close"`).
    Unwind,
    /// The liquidated leg reopened against the surviving one (`after_liquidation = "rehedge"`).
    Rehedge,
    /// Closing everything at the last step (`close_at_end`).
    Final,
    /// Taken by a venue default (stress scenario `venue_default`); the fee is the value frozen.
    VenueDefault,
    /// Closed by the venue's auto-deleveraging (stress scenario `adl`).
    Adl,
    /// A dated contract closed and the next one opened, `roll_days_before` its expiry.
    Roll,
    /// A dated contract settled at its delivery price at expiry (fee only, no slippage).
    Delivery,
    /// `instrument = "best"` moved the leg between the perp and the dated contract.
    Switch,
    /// A held carry resized, both legs in proportion, to a rule strategy's new target size.
    Resize,
    /// A universe's rotation closed a pair that left the selection.
    Rotation,
    /// A pair's data ended (the symbol was delisted, or the files stop): closed at its last
    /// price at the first step without it.
    Delisting,
    /// The lender recalled borrowed spot (the borrowable quantity fell below the loan): the
    /// excess bought back at market, and as much of the long perp closed.
    Recall,
}

impl TradeReason {
    /// The reason as written to the `reason` column of `trades.parquet` (snake_case).
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
            TradeReason::VenueDefault => "venue_default",
            TradeReason::Adl => "adl",
            TradeReason::Roll => "roll",
            TradeReason::Delivery => "delivery",
            TradeReason::Switch => "switch",
            TradeReason::Resize => "resize",
            TradeReason::Rotation => "rotation",
            TradeReason::Delisting => "delisting",
            TradeReason::Recall => "recall",
        }
    }
}

/// One fill.
#[derive(Debug, Clone, Copy)]
pub struct Trade {
    /// Time of the step the fill happened at, epoch ms UTC.
    pub ts_ms: i64,
    /// Index of that step in the timeline.
    pub step: usize,
    /// `spot`, `perp`, or `dated` (a dated futures contract).
    pub leg: &'static str,
    /// Why the trade happened.
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

/// What the book received at one funding settlement inside the simulated window, held or not:
/// what the engine records for each settlement paid on a position (`held`), what
/// `funding.parquet` stores (the window's settlements, held or not) and what the funding chart
/// draws.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FundingPayment {
    /// The settlement; its price is the one the held notional was valued at (NaN when nothing
    /// was held).
    pub settlement: Settlement,
    /// Whether a perp position was open at the settlement.
    pub held: bool,
    /// Perp quantity held (signed; 0 when not held).
    pub perp_qty: f64,
    /// Funding received (+) or paid (−), quote currency: −perp_qty × rate × price (0 when not
    /// held).
    pub amount: f64,
}

impl FundingPayment {
    /// `settlement` paid on `perp_qty` held: `amount` = −perp_qty × rate × price.
    pub fn paid(settlement: Settlement, perp_qty: f64, amount: f64) -> FundingPayment {
        FundingPayment { settlement, held: true, perp_qty, amount }
    }

    /// `settlement` with nothing held: no price, no quantity, no amount.
    pub fn not_held(settlement: Settlement) -> FundingPayment {
        FundingPayment { settlement: Settlement { price: f64::NAN, ..settlement }, held: false, perp_qty: 0.0, amount: 0.0 }
    }
}
