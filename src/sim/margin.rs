//! Maintenance margin from tiered brackets, and the liquidation price of an isolated position.
//!
//! Maintenance margin = notional × MMR − cum, with the tier chosen by notional (Binance's rule,
//! VENUES.md §2.1). A position is liquidated when its margin balance (wallet plus unrealised PnL
//! at the mark) falls to the maintenance margin; solving that for the mark gives Binance's
//! isolated-margin liquidation price, LP = (WB + Q·EP + cum) / (Q·(1 + MMR)) for a short.

use crate::model::Bracket;

/// Which value of an isolated position its maintenance margin is a share of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceBasis {
    /// The notional at the mark (Binance, MARGIN.md §1.2): the liquidation price solves
    /// margin + uPnL = MMR × size × price.
    #[default]
    Mark,
    /// The position value at its average entry price (Bybit's isolated USDT perpetuals:
    /// LP = EP − (IM − MM)/size for a long, MM = size × EP × MMR − deduction).
    Entry,
}

/// Tiered maintenance-margin rules.
#[derive(Debug, Clone)]
pub struct Brackets {
    tiers: Vec<Bracket>,
    basis: MaintenanceBasis,
}

impl Brackets {
    /// Tiers in ascending `notional_floor`, the first at 0 (checked by config validation),
    /// maintenance on the notional at the mark.
    pub fn new(tiers: Vec<Bracket>) -> Self {
        Self { tiers, basis: MaintenanceBasis::Mark }
    }

    /// The same tiers, with an isolated position's maintenance on `basis`.
    pub fn on(mut self, basis: MaintenanceBasis) -> Self {
        self.basis = basis;
        self
    }

    /// What an isolated position's maintenance is a share of.
    pub fn basis(&self) -> MaintenanceBasis {
        self.basis
    }

    /// The mark at which an isolated position of signed `qty` with `margin` (wallet + uPnL at
    /// `mark`) and average entry price `entry` reaches maintenance, by the brackets' basis:
    /// [`Brackets::liquidation_price`] on the mark, or with the maintenance fixed at the entry
    /// value, margin + qty·(P − mark) = MM(size·entry), so P = mark + (MM − margin)/qty.
    #[inline(always)]
    pub fn isolated_liquidation_price(&self, qty: f64, margin: f64, mark: f64, entry: f64) -> f64 {
        match self.basis {
            MaintenanceBasis::Mark => self.liquidation_price(qty, margin, mark),
            MaintenanceBasis::Entry => {
                if qty == 0.0 {
                    return f64::NAN;
                }
                (mark + (self.maintenance_margin(qty.abs() * entry) - margin) / qty).max(0.0)
            }
        }
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

    /// Whether `tier` is the tier of `notional` (`tier_index(notional) == tier` for ascending
    /// floors), in two comparisons instead of a scan.
    #[inline(always)]
    fn is_tier_of(&self, tier: usize, notional: f64) -> bool {
        (tier == 0 || self.tiers[tier].notional_floor <= notional) && self.tiers.get(tier + 1).is_none_or(|next| !(next.notional_floor <= notional))
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
    #[inline(always)]
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
            if self.is_tier_of(tier, size * price) {
                break;
            }
            tier = self.tier_index(size * price);
        }
        price
    }
}

impl Brackets {
    /// [`Brackets::liquidation_price`] for a position whose account also holds `collateral`
    /// (haircut value at `mark`) that moves in proportion to the mark, as a short perp's hedged
    /// spot does in a portfolio-margin account: for a short, margin + size·(mark − P) +
    /// collateral·P/mark = maintenance(size·P). Infinite when the collateral grows at least as
    /// fast as the loss (no rally liquidates). A long's collateral is taken as fixed.
    #[inline]
    pub fn liquidation_price_with_collateral(&self, qty: f64, margin: f64, mark: f64, collateral: f64) -> f64 {
        if qty >= 0.0 || collateral <= 0.0 {
            return self.liquidation_price(qty, margin + collateral.max(0.0), mark);
        }
        let size = -qty;
        let per_mark = collateral / mark;
        let mut tier = self.tier_index(size * mark);
        let mut price = f64::NAN;
        for _ in 0..=self.tiers.len() {
            let b = self.tiers[tier];
            let denominator = size * (1.0 + b.mmr) - per_mark;
            price = if denominator <= 0.0 { f64::INFINITY } else { ((margin + size * mark + b.cum) / denominator).max(0.0) };
            if !price.is_finite() {
                break;
            }
            let next = self.tier_index(size * price);
            if next == tier {
                break;
            }
            tier = next;
        }
        price
    }
}

/// One tier of a collateral schedule: from `floor` (quote currency, or units of the asset for a
/// schedule by quantity) up to the next tier's floor, a share `ratio` of the value counts.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollateralTier {
    /// Where the tier starts: a value in quote currency, or a quantity of the asset.
    pub floor: f64,
    /// Share of the value inside the tier that counts as margin, decimal.
    pub ratio: f64,
}

/// How much of a positive balance of an asset a portfolio-margin account counts as margin: its
/// value split into tiers, each at its own ratio, and summed (Binance PM Pro's USD tiers since
/// 2024-09-11, Bybit's tiers by coin quantity; MARGIN.md §2.3, §3.1). A flat haircut is one
/// tier. A negative balance counts at its full value (the `min` of uniMMR, MARGIN.md §2.1).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Collateral {
    tiers: Vec<CollateralTier>,
    by_quantity: bool,
}

impl Collateral {
    /// One ratio for any balance (0: none counts).
    pub fn flat(ratio: f64) -> Self {
        Collateral { tiers: vec![CollateralTier { floor: 0.0, ratio }], by_quantity: false }
    }

    /// Tiers in ascending `floor`, the first at 0 (checked by config validation), by value in
    /// quote currency or (`by_quantity`) by units of the asset.
    pub fn tiered(tiers: Vec<CollateralTier>, by_quantity: bool) -> Self {
        Collateral { tiers, by_quantity }
    }

    /// The margin value of `qty` units at `price`: each tier's share of the balance at the
    /// tier's ratio, summed; a negative balance at its full value.
    #[inline]
    pub fn value(&self, qty: f64, price: f64) -> f64 {
        if qty <= 0.0 {
            return qty * price;
        }
        let amount = if self.by_quantity { qty } else { qty * price };
        let mut counted = 0.0;
        for (k, tier) in self.tiers.iter().enumerate() {
            if amount <= tier.floor {
                break;
            }
            let top = self.tiers.get(k + 1).map_or(f64::INFINITY, |next| next.floor);
            counted += tier.ratio * (amount.min(top) - tier.floor);
        }
        if self.by_quantity {
            counted * price
        } else {
            counted
        }
    }

    /// The share of a balance worth `value` (quote currency, at `price`) that counts: the mean
    /// ratio over its tiers; the first tier's ratio for a zero balance.
    pub fn mean_ratio(&self, value: f64, price: f64) -> f64 {
        if self.tiers.len() == 1 {
            return self.tiers[0].ratio;
        }
        if !(value > 0.0 && price > 0.0) {
            return self.tiers.first().map_or(0.0, |t| t.ratio);
        }
        self.value(value / price, price) / value
    }
}

/// What a collateral schedule's tiers are measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierUnit {
    /// The balance's value in quote currency (Binance PM Pro's USD tiers).
    #[default]
    Value,
    /// The balance's quantity of the asset (Bybit's tiers by coin amount).
    Quantity,
}

/// A tiered collateral schedule for one asset (portfolio margin): each tier's share of the
/// balance counts at its ratio (MARGIN.md §2.3, §3.1).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollateralSchedule {
    /// What the floors are measured in: `value` (quote currency) or `quantity` (units).
    #[serde(default)]
    pub by: TierUnit,
    /// Tiers in ascending `floor`, the first at 0, ratios in [0, 1] and never rising.
    pub tiers: Vec<CollateralTier>,
    /// Where the values come from.
    #[serde(default)]
    pub source: Option<String>,
}

impl CollateralSchedule {
    /// Whether the tiers are usable: the first at 0, floors rising, ratios in [0, 1] and never
    /// rising (a larger balance never counts at a higher share, which keeps the account's margin
    /// concave in the price, as the bar's worst-corner check needs).
    pub fn check(&self) -> std::result::Result<(), String> {
        let Some(first) = self.tiers.first() else { return Err("give at least one tier, e.g. tiers = [ { floor = 0, ratio = 0.95 } ]".into()) };
        if first.floor != 0.0 {
            return Err(format!("the first tier must start at floor = 0, found {}", first.floor));
        }
        for (k, tier) in self.tiers.iter().enumerate() {
            if !(0.0..=1.0).contains(&tier.ratio) {
                return Err(format!("tier {} ratio must be in [0, 1], found {}", k + 1, tier.ratio));
            }
            if k > 0 {
                let before = self.tiers[k - 1];
                if !(tier.floor > before.floor) {
                    return Err(format!("tier {} floor {} must be above tier {}'s {}", k + 1, tier.floor, k, before.floor));
                }
                if tier.ratio > before.ratio {
                    return Err(format!("tier {} ratio {} is above tier {}'s {}: ratios never rise with the balance", k + 1, tier.ratio, k, before.ratio));
                }
            }
        }
        Ok(())
    }

    /// The schedule as the engine's [`Collateral`].
    pub fn collateral(&self) -> Collateral {
        Collateral::tiered(self.tiers.clone(), self.by == TierUnit::Quantity)
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

/// How a venue closes a liquidated perp position (the preset says which, with its source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiquidationStyle {
    /// Closed at the liquidation price; a clearance fee (`liquidation_fee_rate` × liquidated
    /// notional) is taken from what margin is left and the trader keeps the rest (Binance,
    /// MARGIN.md §1.3–1.4).
    #[default]
    LiquidationPrice,
    /// Closed at the bankruptcy price: the trader loses all remaining margin; a better fill goes
    /// to the insurance fund (Bybit, BitMEX, Gate, MARGIN.md §3).
    BankruptcyPrice,
    /// A market close of the whole position in which the trader keeps what margin is left, no
    /// fee; if the fill is at or past the backstop price (equity below `backstop_fraction` × the
    /// maintenance margin), the backstop liquidator takes the position and all its margin
    /// (Hyperliquid, 2/3, MARGIN.md §5).
    MarketWithBackstop,
}

/// The venue's rules for a perp liquidation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerpLiquidation {
    /// Which rule closes the liquidated position.
    pub style: LiquidationStyle,
    /// Clearance fee, decimal of the liquidated notional ([`LiquidationStyle::LiquidationPrice`]).
    pub fee_rate: f64,
    /// Equity below this share of the maintenance margin hands the position to the backstop
    /// ([`LiquidationStyle::MarketWithBackstop`]).
    pub backstop_fraction: f64,
    /// How far past the liquidation price the closing fill goes, decimal of that price (0: at
    /// the liquidation price). Never past the bar's adverse extreme; see
    /// [`PerpLiquidation::fill_price`].
    pub fill_slippage: f64,
    /// Taker fee rate the venue builds into the bankruptcy price (Gate, MARGIN.md §3.3: the
    /// price at which the margin, less the fee to close, is zero); 0 elsewhere. The same rate
    /// is added to the maintenance rates of such a venue's brackets.
    pub fee_in_bankruptcy_price: f64,
}

/// What a perp liquidation did to an isolated position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiquidationFill {
    /// Price the position closed at (for the trade record).
    pub fill_price: f64,
    /// Price the mark-to-market runs to: the liquidation price (or the bar's start if the
    /// mark was already past it). Price PnL up to here is perp PnL.
    pub mark_price: f64,
    /// What the venue took beyond the price move: the clearance fee or the forfeited margin,
    /// positive (the trade's fee).
    pub taken: f64,
    /// The insurance fund's share when margin went below zero, positive.
    pub shortfall: f64,
}

impl PerpLiquidation {
    /// The price a position of signed `qty` liquidated at `liquidation` in a bar that opened at
    /// `open` and reached `extreme` against it (a short's high, a long's low) is closed at: the
    /// liquidation price moved `fill_slippage` further against the position, no further than
    /// the extreme; a bar that opens past the liquidation price fills at its open (a gap).
    #[inline]
    pub fn fill_price(&self, qty: f64, liquidation: f64, open: f64, extreme: f64) -> f64 {
        if qty < 0.0 {
            if open >= liquidation {
                return open;
            }
            (liquidation * (1.0 + self.fill_slippage)).min(extreme).max(liquidation)
        } else {
            if open <= liquidation {
                return open;
            }
            (liquidation * (1.0 - self.fill_slippage)).max(extreme).min(liquidation)
        }
    }

    /// Close `qty` (signed) whose margin is `margin_at_mark` once marked to `mark_price` (the
    /// liquidation price or worse). Returns the fill, what the venue took, and any shortfall;
    /// the trader keeps `margin_at_mark − taken + shortfall` (never below zero).
    pub fn close(&self, qty: f64, mark_price: f64, margin_at_mark: f64, brackets: &Brackets) -> LiquidationFill {
        let size = qty.abs();
        let left = margin_at_mark.max(0.0);
        let shortfall = (-margin_at_mark).max(0.0);
        // The bankruptcy price: where the position's margin, less the fee to close where the
        // venue counts it, is exactly zero: margin + qty·(P − mark) − size·P·fee = 0.
        let fee = self.fee_in_bankruptcy_price;
        let bankruptcy = (qty * mark_price - margin_at_mark) / (qty - size * fee);
        match self.style {
            LiquidationStyle::LiquidationPrice => {
                let fee = (size * mark_price * self.fee_rate).min(left);
                LiquidationFill { fill_price: mark_price, mark_price, taken: fee, shortfall }
            }
            LiquidationStyle::BankruptcyPrice => LiquidationFill { fill_price: if left > 0.0 { bankruptcy } else { mark_price }, mark_price, taken: left, shortfall },
            LiquidationStyle::MarketWithBackstop => {
                let maintenance = brackets.maintenance_margin(size * mark_price);
                if margin_at_mark < self.backstop_fraction * maintenance {
                    LiquidationFill { fill_price: mark_price, mark_price, taken: left, shortfall }
                } else {
                    LiquidationFill { fill_price: mark_price, mark_price, taken: 0.0, shortfall }
                }
            }
        }
    }
}

/// A spot-margin account's rules: the short spot of a reverse carry is a loan, margined by the
/// account's assets (MARGIN.md §4, Binance Cross Margin).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpotMarginRules {
    /// Margin level (assets / liabilities) at or below which the venue calls for margin: a
    /// top-up moves money in when the strategy allows it.
    pub margin_call_level: f64,
    /// Margin level at or below which the loan is liquidated.
    pub liquidation_level: f64,
    /// Fee on the liquidated assets (decimal of the bought-back notional).
    pub liquidation_fee_rate: f64,
    /// Margin level a transfer out of the account may not go below.
    pub transfer_out_level: f64,
    /// Margin level at which a liquidation stops: only the part of the loan that brings the
    /// level back here is bought back (Binance Cross Margin 3x: 1.5, MARGIN.md §4).
    pub liquidation_stop_level: f64,
}

impl SpotMarginRules {
    /// Spot price at which a loan of `borrowed` units against `assets` hits the liquidation
    /// level: assets / (level × borrowed). NaN without a loan.
    #[inline]
    pub fn liquidation_price(&self, assets: f64, borrowed: f64) -> f64 {
        if borrowed <= 0.0 {
            return f64::NAN;
        }
        (assets / (self.liquidation_level * borrowed)).max(0.0)
    }

    /// Units of a loan of `borrowed` units against `assets` a liquidation at `price` buys back:
    /// those that leave the margin level at the stop level once the fee on them is paid,
    /// (assets − x·P·(1 + fee)) / ((borrowed − x)·P) = stop, so
    /// x = (stop·borrowed·P − assets) / (P·(stop − 1 − fee)); all of it when the stop level
    /// cannot be reached that way.
    #[inline]
    pub fn liquidated_units(&self, assets: f64, borrowed: f64, price: f64) -> f64 {
        let stop = self.liquidation_stop_level;
        let room = stop - 1.0 - self.liquidation_fee_rate;
        if !(room > 0.0) || !(price > 0.0) {
            return borrowed;
        }
        ((stop * borrowed * price - assets) / (price * room)).clamp(0.0, borrowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two-comparison tier check agrees with the scan for every tier, at every floor, just
    /// either side of it, between floors, and at the odd values (NaN, ±∞, negative).
    #[test]
    fn is_tier_of_agrees_with_the_scan() {
        let tiered = [(0.0, 0.004, 0.0), (50e3, 0.005, 50.0), (250e3, 0.01, 1_300.0), (3e6, 0.025, 46_300.0), (300e6, 0.5, 103_046_300.0)];
        let single = [(0.0, 0.004, 0.0)];
        for tiers in [&tiered[..], &single[..]] {
            let brackets = Brackets::new(tiers.iter().map(|&(notional_floor, mmr, cum)| Bracket { notional_floor, mmr, cum }).collect());
            let mut notionals = vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, 0.0, -0.0, 1e-300, 1e12];
            for tier in brackets.tiers() {
                let floor = tier.notional_floor;
                notionals.extend([floor, floor.next_up(), floor.next_down(), floor * 1.5 + 1.0]);
            }
            for &notional in &notionals {
                for tier in 0..brackets.tiers().len() {
                    assert_eq!(brackets.is_tier_of(tier, notional), brackets.tier_index(notional) == tier, "tier {tier}, notional {notional}");
                }
            }
        }
    }
}
