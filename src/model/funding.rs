//! Funding settlements: the one type every stage passes them as ([`Settlement`]), and the
//! series a loader reads, a counterfactual produces and the engine runs over
//! ([`FundingSeries`]). What the book received at a settlement is a ledger row,
//! [`FundingPayment`](super::trade::FundingPayment), which holds the settlement it paid.

use std::ops::{Deref, DerefMut, Range};

/// One funding settlement: the rate known from `settle_ms` on, the hours it covers, and the
/// price its notional is valued at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settlement {
    /// Settlement time, epoch ms UTC: the rate is known from then on.
    pub settle_ms: i64,
    /// Decimal rate per interval; positive means longs pay shorts.
    pub rate: f64,
    /// Hours the rate covers (the settlement interval).
    pub interval_hours: f64,
    /// Price the notional is valued at. As loaded: the source's own mark at settlement, NaN
    /// where it has none. In a [`MarketTimeline`](super::MarketTimeline): the price the run
    /// values it at (the mark known at settlement, the perp's last where there is no mark, the
    /// index on oracle-paid venues), and NaN for a settlement the run does not pay (outside the
    /// window, before the listing, or before any price is known).
    pub price: f64,
}

impl Settlement {
    /// A settlement whose price is not known (or not paid): NaN.
    pub fn unpriced(settle_ms: i64, rate: f64, interval_hours: f64) -> Settlement {
        Settlement { settle_ms, rate, interval_hours, price: f64::NAN }
    }

    /// Whether the run pays it (its price is known): see [`Settlement::price`].
    pub fn is_paid(&self) -> bool {
        self.price.is_finite()
    }
}

/// Funding settlements in time order. A loader's series (every settlement the files hold, no two
/// at the same time) and a timeline's (the same, each priced where the run pays it; a Monte
/// Carlo path's may settle two at one step's close) are this one type; read it as a slice of
/// [`Settlement`]s.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FundingSeries(Vec<Settlement>);

impl FundingSeries {
    /// No settlements, usable in a `static`.
    pub const EMPTY: FundingSeries = FundingSeries(Vec::new());

    /// The series of `settlements`, which must be in time order (a loader sorts and
    /// de-duplicates before; a stress scenario sorts after changing them).
    pub fn new(settlements: Vec<Settlement>) -> FundingSeries {
        debug_assert!(settlements.windows(2).all(|w| w[0].settle_ms <= w[1].settle_ms), "settlements out of order");
        FundingSeries(settlements)
    }

    /// Index range of the settlements with `first_ms < settle_ms ≤ last_ms`: those the steps of
    /// a window from `first_ms` to `last_ms` hold (a step holds the interval up to its time).
    pub fn between(&self, first_ms: i64, last_ms: i64) -> Range<usize> {
        let start = self.0.partition_point(|s| s.settle_ms <= first_ms);
        start..self.0.partition_point(|s| s.settle_ms <= last_ms).max(start)
    }

    /// The priced settlements, in time order. In a timeline basis aligned (whole, in chunks, or
    /// on a book's grid) these are exactly the ones the run pays; a timeline built by hand may
    /// price others too, which [`MarketTimeline::paid_settlements`](super::MarketTimeline::paid_settlements)
    /// leaves out.
    pub fn paid(&self) -> impl Iterator<Item = &Settlement> + '_ {
        self.0.iter().filter(|s| s.is_paid())
    }

    /// Settlement times as a column, epoch ms UTC.
    pub fn settle_ms(&self) -> Vec<i64> {
        self.0.iter().map(|s| s.settle_ms).collect()
    }

    /// Rates as a column, decimal per interval.
    pub fn rates(&self) -> Vec<f64> {
        self.0.iter().map(|s| s.rate).collect()
    }

    /// Interval hours as a column.
    pub fn interval_hours(&self) -> Vec<f64> {
        self.0.iter().map(|s| s.interval_hours).collect()
    }

    /// The same settlements, none priced (NaN): what a timeline holds before the run's prices
    /// are set.
    pub fn unpriced(&self) -> FundingSeries {
        FundingSeries(self.0.iter().map(|s| Settlement { price: f64::NAN, ..*s }).collect())
    }

    /// The settlements, to change in place (a stress scenario's): keep them in time order.
    pub fn settlements_mut(&mut self) -> &mut Vec<Settlement> {
        &mut self.0
    }

    /// The settlements.
    pub fn into_vec(self) -> Vec<Settlement> {
        self.0
    }
}

impl Deref for FundingSeries {
    type Target = [Settlement];
    fn deref(&self) -> &[Settlement] {
        &self.0
    }
}

impl DerefMut for FundingSeries {
    /// Rates and prices may change in place; times must keep their order.
    fn deref_mut(&mut self) -> &mut [Settlement] {
        &mut self.0
    }
}

impl<'a> IntoIterator for &'a FundingSeries {
    type Item = &'a Settlement;
    type IntoIter = std::slice::Iter<'a, Settlement>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl From<Vec<Settlement>> for FundingSeries {
    fn from(settlements: Vec<Settlement>) -> FundingSeries {
        FundingSeries::new(settlements)
    }
}

impl FromIterator<Settlement> for FundingSeries {
    fn from_iter<I: IntoIterator<Item = Settlement>>(settlements: I) -> FundingSeries {
        FundingSeries::new(settlements.into_iter().collect())
    }
}

/// The step of a timeline whose interval `(ts[step-1], ts[step]]` holds a settlement at
/// `settle_ms`: the first step at or after it (`ts_ms.len()` when it is after the last).
pub fn step_of(ts_ms: &[i64], settle_ms: i64) -> usize {
    ts_ms.partition_point(|&t| t < settle_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(times: &[i64]) -> FundingSeries {
        times.iter().map(|&t| Settlement { settle_ms: t, rate: 0.0001, interval_hours: 8.0, price: if t % 2 == 0 { 100.0 } else { f64::NAN } }).collect()
    }

    #[test]
    fn between_holds_the_settlements_after_the_first_time_up_to_the_last() {
        let s = series(&[10, 20, 30, 40]);
        assert_eq!(s.between(10, 30), 1..3);
        assert_eq!(s.between(9, 40), 0..4);
        assert_eq!(s.between(40, 50), 4..4);
        assert_eq!(s.between(25, 15), 2..2, "an empty window is an empty range, never a reversed one");
    }

    #[test]
    fn paid_settlements_are_the_priced_ones() {
        let s = series(&[10, 21, 30]);
        assert_eq!(s.paid().map(|x| x.settle_ms).collect::<Vec<_>>(), vec![10, 30]);
    }

    #[test]
    fn a_settlement_belongs_to_the_first_step_at_or_after_it() {
        let ts = [0, 10, 20];
        assert_eq!(step_of(&ts, 10), 1, "a settlement at a step's time is in that step");
        assert_eq!(step_of(&ts, 11), 2);
        assert_eq!(step_of(&ts, 25), 3, "after the last step: one past the end");
    }
}
