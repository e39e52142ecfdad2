//! Dated futures contracts on the run's clock: each contract's close, high and low known at
//! each step (NaN where the contract has no bar), its expiry and its settlement price. Produced
//! by `data::dated`, read by `sim::dated` (the roll schedule, `best`) and `app::term`.

/// Every contract of a run, aligned to the timeline's steps. Contracts are sorted by expiry.
#[derive(Debug, Clone, Default)]
pub struct DatedContracts {
    /// Contract names, e.g. `BTCUSDT_240329`.
    pub names: Vec<String>,
    /// Expiry (delivery) time of each contract, epoch ms UTC.
    pub expiry_ms: Vec<i64>,
    /// Settlement (delivery) price of each contract, quote currency; NaN when the contract does
    /// not expire inside the data.
    pub settlement: Vec<f64>,
    /// Close known at each step, per contract (NaN: no bar of the contract closed in the step's
    /// interval, or the contract has expired).
    pub close: Vec<Vec<f64>>,
    /// Bar high at each step, per contract (NaN as `close`).
    pub high: Vec<Vec<f64>>,
    /// Bar low at each step, per contract (NaN as `close`).
    pub low: Vec<Vec<f64>>,
    /// Mark price known at each step, per contract (`[data.dated_mark]`); empty for a contract
    /// without mark bars (its last price stands in).
    pub mark: Vec<Vec<f64>>,
    /// Mark bar high at each step, per contract (empty as `mark`).
    pub mark_high: Vec<Vec<f64>>,
    /// Mark bar low at each step, per contract (empty as `mark`).
    pub mark_low: Vec<Vec<f64>>,
}

impl DatedContracts {
    /// Number of contracts.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Days from `ts_ms` to contract `c`'s expiry.
    #[inline]
    pub fn days_to_expiry(&self, c: usize, ts_ms: i64) -> f64 {
        (self.expiry_ms[c] - ts_ms) as f64 / crate::time::MS_PER_DAY as f64
    }

    /// Contract `c`'s mark at step `i`: (mark, high, low), NaN where it has no mark bar then (or
    /// no mark series at all).
    #[inline]
    pub fn mark_at(&self, c: usize, i: usize) -> (f64, f64, f64) {
        let at = |v: &Vec<Vec<f64>>| v.get(c).and_then(|m| m.get(i)).copied().unwrap_or(f64::NAN);
        (at(&self.mark), at(&self.mark_high), at(&self.mark_low))
    }

    /// Whether contract `c` has mark prices (`[data.dated_mark]`).
    pub fn has_marks(&self, c: usize) -> bool {
        self.mark.get(c).is_some_and(|m| !m.is_empty())
    }

    /// Whether contract `c` trades (has a close) at step `i`.
    #[inline]
    pub fn live(&self, c: usize, i: usize) -> bool {
        self.close[c][i].is_finite()
    }
}

/// The annualised basis of a dated contract: (F / S − 1) × 365 / days to expiry (decimal APR);
/// NaN with less than an hour to expiry.
#[inline]
pub fn annualised_basis(future: f64, spot: f64, days_to_expiry: f64) -> f64 {
    if days_to_expiry < 1.0 / 24.0 {
        return f64::NAN;
    }
    (future / spot - 1.0) * 365.0 / days_to_expiry
}
