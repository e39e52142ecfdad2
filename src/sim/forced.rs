//! Events forced on a run from outside the strategy, as stress scenarios script them: a venue
//! default, an auto-deleveraging, a slippage spike. Each happens at the first step at or after
//! its time, after that step's marks and funding and before its decisions.

/// What happens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Forced {
    /// The venue holding `leg` stops paying out (as FTX in November 2022): what the account held
    /// at the step's close is written off at once (booked to the liquidation component), the
    /// position is gone, and `recovery_rate` of it comes back as cash after `recovery_delay_ms`.
    /// The surviving leg, if any, is left to the after-liquidation rule.
    VenueDefault {
        /// Which account defaults.
        leg: DefaultedLeg,
        /// Share of the frozen value recovered, decimal in [0, 1].
        recovery_rate: f64,
        /// Time from the default to the recovery, ms.
        recovery_delay_ms: i64,
    },
    /// Auto-deleveraging: the venue closes `share` of a perp that is in profit (mark better than
    /// its average entry) at the mark, with no fee; the hedge is left short of its ratio until
    /// the strategy re-hedges. A perp not in profit is not touched.
    Adl {
        /// Share of the position closed, decimal in (0, 1].
        share: f64,
    },
    /// Slippage on every fill multiplied by `multiplier` for `duration_ms`.
    SlippageSpike {
        /// Factor on the spot and perp slippage.
        multiplier: f64,
        /// How long the spike lasts, ms.
        duration_ms: i64,
    },
}

/// The account a venue default takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DefaultedLeg {
    /// The perp venue: the perp's margin and position.
    #[default]
    Perp,
    /// One venue holding everything: spot, cash and the perp.
    All,
}

/// An event and its time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForcedEvent {
    /// When it happens, epoch ms UTC.
    pub at_ms: i64,
    /// What happens.
    pub event: Forced,
}
