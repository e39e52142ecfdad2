//! One maintenance-margin tier of a venue's brackets.

use serde::{Deserialize, Serialize};

/// One maintenance-margin tier: applies to perp notional from `notional_floor` upward.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bracket {
    /// Lower bound of the tier, in quote currency.
    pub notional_floor: f64,
    /// Maintenance margin rate (decimal).
    pub mmr: f64,
    /// Maintenance amount: maintenance margin = notional × mmr − cum.
    pub cum: f64,
}
