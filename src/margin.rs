//! Maintenance margin from tiered brackets, and the liquidation price of an isolated position.
//!
//! Maintenance margin = notional × MMR − cum, with the tier chosen by notional (Binance's rule,
//! VENUES.md §2.1). A position is liquidated when its margin balance (wallet plus unrealised PnL
//! at the mark) falls to the maintenance margin; solving that for the mark gives Binance's
//! isolated-margin liquidation price, LP = (WB + Q·EP + cum) / (Q·(1 + MMR)) for a short.

use crate::config::Bracket;

/// Tiered maintenance-margin rules.
#[derive(Debug, Clone)]
pub struct Brackets {
    tiers: Vec<Bracket>,
}

impl Brackets {
    /// Tiers in ascending `notional_floor`, the first at 0 (checked by config validation).
    pub fn new(tiers: Vec<Bracket>) -> Self {
        Self { tiers }
    }

    /// The tiers.
    pub fn tiers(&self) -> &[Bracket] {
        &self.tiers
    }

    #[inline]
    fn tier_index(&self, notional: f64) -> usize {
        let mut k = 0;
        while k + 1 < self.tiers.len() && self.tiers[k + 1].notional_floor <= notional {
            k += 1;
        }
        k
    }

    /// Maintenance margin for a position of `notional` (quote currency, ≥ 0).
    #[inline]
    pub fn maintenance_margin(&self, notional: f64) -> f64 {
        let tier = self.tiers[self.tier_index(notional)];
        notional * tier.mmr - tier.cum
    }

    /// The mark price at which a position of signed `qty` with `margin` (wallet + uPnL at
    /// `mark`) reaches maintenance margin. NaN without a position; 0 for a long that cannot
    /// be liquidated at any positive price.
    #[inline]
    pub fn liquidation_price(&self, qty: f64, margin: f64, mark: f64) -> f64 {
        if qty == 0.0 {
            return f64::NAN;
        }
        let size = qty.abs();
        let mut tier = self.tier_index(size * mark);
        let mut price = f64::NAN;
        // The maintenance curve is continuous across tiers, so this settles in a few rounds.
        for _ in 0..=self.tiers.len() {
            let b = self.tiers[tier];
            price = if qty < 0.0 {
                (margin + size * mark + b.cum) / (size * (1.0 + b.mmr))
            } else {
                (size * mark - margin - b.cum) / (size * (1.0 - b.mmr))
            };
            price = price.max(0.0);
            let next = self.tier_index(size * price);
            if next == tier {
                break;
            }
            tier = next;
        }
        price
    }
}

/// How far the mark can move against the position before liquidation, as a fraction of the
/// mark (0.1 = a 10 % adverse move liquidates). NaN without a position.
#[inline]
pub fn liquidation_distance(qty: f64, liquidation_price: f64, mark: f64) -> f64 {
    if qty < 0.0 {
        liquidation_price / mark - 1.0
    } else if qty > 0.0 {
        1.0 - liquidation_price / mark
    } else {
        f64::NAN
    }
}
