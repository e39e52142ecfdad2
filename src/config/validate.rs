//! Range checks of a parsed config: every value against its allowed range, the error naming
//! the key (exit code 2).

use anyhow::Result;

use super::{Config, Direction, EntryMode, FundingRatesFrom};
use crate::bail_input;
use crate::output::validate_run_name;

impl Config {
    /// Check every value against its allowed range; the error names the key.
    pub fn validate(&self) -> Result<()> {
        if self.run.ledger == super::LedgerResolution::None && self.run.report {
            bail_input!("[run] ledger = \"none\" keeps no rows to draw: set report = false, or ledger = \"hourly\" or \"daily\" for a report of a long run");
        }
        if self.venue.contract == super::Contract::Inverse {
            if self.strategy.direction != crate::sim::policy::Direction::Long {
                bail_input!("[venue] contract = \"inverse\" runs the long carry (the coin as margin, short contracts): set [strategy] direction = \"long\"");
            }
            if self.strategy.after_liquidation == crate::sim::policy::AfterLiquidation::Rehedge {
                bail_input!("[venue] contract = \"inverse\": after_liquidation = \"rehedge\" is not supported yet; use \"close\" or \"hold\"");
            }
        }
        fn check(key: &str, value: f64, ok: bool, range: &str) -> Result<()> {
            if !value.is_finite() || !ok {
                bail_input!("`{key}` = {value} is out of range: allowed {range}");
            }
            Ok(())
        }
        let p = &self.portfolio;
        check("portfolio.initial_capital", p.initial_capital, p.initial_capital > 0.0, "> 0")?;
        check("portfolio.leverage", p.leverage, p.leverage > 0.0 && p.leverage <= 125.0, "(0, 125]")?;
        check("portfolio.hedge_ratio", p.hedge_ratio, p.hedge_ratio > 0.0 && p.hedge_ratio <= 2.0, "(0, 2]")?;
        check("portfolio.reserve_fraction", p.reserve_fraction, (0.0..1.0).contains(&p.reserve_fraction), "[0, 1)")?;
        check(
            "portfolio.rebalance_delta_threshold",
            p.rebalance_delta_threshold,
            p.rebalance_delta_threshold > 0.0,
            "> 0 (e.g. 0.05 = re-hedge at 5 % delta drift)",
        )?;
        check("portfolio.top_up_distance", p.top_up_distance, (0.0..1.0).contains(&p.top_up_distance), "[0, 1)")?;
        check("portfolio.staking_apr", p.staking_apr, (0.0..=1.0).contains(&p.staking_apr), "[0, 1] (decimal APR)")?;
        check("portfolio.borrow_apr", p.borrow_apr, (0.0..=5.0).contains(&p.borrow_apr), "[0, 5] (decimal APR)")?;
        let c = &self.costs;
        for (key, value) in [
            ("costs.spot_maker_bps", c.spot_maker_bps),
            ("costs.spot_taker_bps", c.spot_taker_bps),
            ("costs.perp_maker_bps", c.perp_maker_bps),
            ("costs.perp_taker_bps", c.perp_taker_bps),
            ("costs.spot_slippage_bps", c.spot_slippage_bps),
            ("costs.perp_slippage_bps", c.perp_slippage_bps),
        ] {
            check(key, value, (0.0..=1000.0).contains(&value), "[0, 1000] bps")?;
        }
        if c.market_dependent() {
            check("costs.impact_k", c.impact_k, c.impact_k > 0.0 && c.impact_k <= 100.0, "(0, 100] (the square-root law's prefactor, of order 1)")?;
            check("costs.impact_window_days", c.impact_window_days, c.impact_window_days >= 1.0 && c.impact_window_days <= 365.0, "[1, 365] days")?;
            if !(2..=100_000).contains(&c.spread_window_bars) {
                bail_input!("`costs.spread_window_bars` = {} is out of range: expected [2, 100000] bars", c.spread_window_bars);
            }
            if self.venue.contract == super::Contract::Inverse {
                bail_input!("`costs.model` other than \"fixed_bps\" is not supported for coin-margined (inverse) perps yet (their orders are in USD contracts); use fixed_bps");
            }
        }
        for (leg, model, book) in [("spot", c.spot_cost_model(), self.data.spot_book.is_some()), ("perp", c.perp_cost_model(), self.data.perp_book.is_some())] {
            if model == crate::model::CostModel::Orderbook && !book {
                bail_input!("costs: the {leg} leg's model is \"orderbook\", which walks L2 snapshots, but [data.{leg}_book] is not set: add [data.{leg}_book] path = \"...\" (Tardis book_snapshot CSV), or choose another model for that leg ({leg}_model)");
            }
        }
        if let Some(share) = c.max_participation {
            check("costs.max_participation", share, share > 0.0 && share <= 1.0, "(0, 1] (a decimal share of each bar's volume: 0.1 = 10 %)")?;
        }
        if c.worked() {
            if !(0..=7 * crate::time::MS_PER_DAY).contains(&c.leg_delay_ms) {
                bail_input!("`costs.leg_delay_ms` = {} is out of range: expected [0, 604800000] ms (up to a week)", c.leg_delay_ms);
            }
            if self.venue.contract == super::Contract::Inverse {
                bail_input!("`costs.max_participation` and `costs.leg_delay_ms` are not supported for coin-margined (inverse) perps yet (their orders are in USD contracts); remove them");
            }
            if self.strategy.instrument != super::InstrumentChoice::Perp {
                bail_input!("`costs.max_participation` and `costs.leg_delay_ms` work orders on a perp carry for now (a dated leg's rolls fill at once); set strategy.instrument = \"perp\" or remove them");
            }
        }
        let m = &self.margin;
        check(
            "margin.liquidation_fee_rate",
            m.liquidation_fee_rate,
            (0.0..0.5).contains(&m.liquidation_fee_rate),
            "[0, 0.5) (decimal)",
        )?;
        if m.brackets.is_empty() || m.brackets[0].notional_floor != 0.0 {
            bail_input!("`margin.brackets` must start with a tier at notional_floor = 0");
        }
        for (i, pair) in m.brackets.windows(2).enumerate() {
            if pair[1].notional_floor <= pair[0].notional_floor || pair[1].mmr < pair[0].mmr {
                bail_input!(
                    "`margin.brackets[{}]`: notional_floor and mmr must increase from tier to tier",
                    i + 1
                );
            }
        }
        for (i, b) in m.brackets.iter().enumerate() {
            check(&format!("margin.brackets[{i}].mmr"), b.mmr, b.mmr > 0.0 && b.mmr < 1.0, "(0, 1)")?;
            check(&format!("margin.brackets[{i}].cum"), b.cum, b.cum >= 0.0, ">= 0")?;
        }
        let d = &self.data;
        let offsets = [
            ("data.spot.utc_offset_hours", d.spot.as_ref().and_then(|s| s.utc_offset_hours)),
            ("data.perp.utc_offset_hours", d.perp.as_ref().and_then(|s| s.utc_offset_hours)),
            ("data.mark.utc_offset_hours", d.mark.as_ref().and_then(|s| s.utc_offset_hours)),
            ("data.index.utc_offset_hours", d.index.as_ref().and_then(|s| s.utc_offset_hours)),
            ("data.funding.utc_offset_hours", d.funding.as_ref().and_then(|s| s.utc_offset_hours)),
            ("data.staking.utc_offset_hours", d.staking.as_ref().and_then(|s| s.utc_offset_hours)),
            ("data.dated.utc_offset_hours", d.dated.as_ref().and_then(|s| s.utc_offset_hours)),
            ("data.cash_rate.utc_offset_hours", d.cash_rate.as_ref().and_then(|s| s.utc_offset_hours)),
            ("data.borrow_rate.utc_offset_hours", d.borrow_rate.as_ref().and_then(|s| s.utc_offset_hours)),
        ];
        for (key, offset) in offsets {
            if let Some(hours) = offset {
                check(key, hours, (-14.0..=14.0).contains(&hours), "[-14, 14] hours east of UTC (3 = a file written in UTC+3)")?;
            }
        }
        // A zone's daylight-saving rules, or a fixed offset: one or the other.
        let zones = [
            ("spot", d.spot.as_ref().map(|s| (&s.time_zone, s.utc_offset_hours))),
            ("perp", d.perp.as_ref().map(|s| (&s.time_zone, s.utc_offset_hours))),
            ("mark", d.mark.as_ref().map(|s| (&s.time_zone, s.utc_offset_hours))),
            ("index", d.index.as_ref().map(|s| (&s.time_zone, s.utc_offset_hours))),
            ("funding", d.funding.as_ref().map(|s| (&s.time_zone, s.utc_offset_hours))),
            ("staking", d.staking.as_ref().map(|s| (&s.time_zone, s.utc_offset_hours))),
            ("dated", d.dated.as_ref().map(|s| (&s.time_zone, s.utc_offset_hours))),
            ("dated_mark", d.dated_mark.as_ref().map(|s| (&s.time_zone, s.utc_offset_hours))),
            ("cash_rate", d.cash_rate.as_ref().map(|s| (&s.time_zone, s.utc_offset_hours))),
            ("borrow_rate", d.borrow_rate.as_ref().map(|s| (&s.time_zone, s.utc_offset_hours))),
        ];
        for (label, source) in zones {
            if let Some((Some(zone), offset)) = source {
                crate::data::zone::parse(zone, &format!("data.{label}.time_zone"))?;
                if offset.is_some() {
                    bail_input!("data.{label}: give time_zone (a zone with daylight saving) or utc_offset_hours (a fixed offset), not both");
                }
            }
        }
        if d.index.is_some() && d.freqtrade.is_some() {
            bail_input!("[data.index] needs [data.spot]/[data.perp]/[data.funding]; a [data.freqtrade] directory has no index series");
        }
        match (&d.freqtrade, &d.spot, &d.perp, &d.funding, &d.mark) {
            (Some(_), None, None, None, None) | (None, Some(_), Some(_), Some(_), _) => {}
            (Some(_), ..) => bail_input!("[data.freqtrade] finds spot, perp, mark and funding itself: remove [data.spot], [data.perp], [data.mark] and [data.funding]"),
            (None, ..) => bail_input!("[data] needs [data.spot], [data.perp] and [data.funding] (or a [data.freqtrade] directory instead)"),
        }
        if self.venue.funding == FundingRatesFrom::Counterfactual && self.venue.preset.is_none() {
            bail_input!("`venue.funding` = \"counterfactual\" needs `venue.preset` (whose rules produce the rates)");
        }
        if let Some(cap) = self.venue.funding_cap {
            check("venue.funding_cap", cap, cap > 0.0 && cap < 1.0, "(0, 1) (decimal per settlement, e.g. 0.003 = 0.3 %)")?;
        }
        if let Some(floor) = self.venue.funding_floor {
            check("venue.funding_floor", floor, floor < 0.0 && floor > -1.0, "(-1, 0) (decimal per settlement, e.g. -0.003)")?;
        }
        let s = &self.strategy;
        check("strategy.exit_funding_apr", s.exit_funding_apr, s.exit_funding_apr <= s.entry_funding_apr, "<= strategy.entry_funding_apr")?;
        if s.lookback_settlements == 0 {
            bail_input!("`strategy.lookback_settlements` = 0 is out of range: allowed >= 1");
        }
        if let Some(hours) = s.lookback_hours {
            check("strategy.lookback_hours", hours, hours > 0.0 && hours <= 24.0 * 3650.0, "(0, 87600] hours")?;
        }
        check("margin.backstop_fraction", m.backstop_fraction, (0.0..=1.0).contains(&m.backstop_fraction), "[0, 1]")?;
        check("margin.spot_liquidation_level", m.spot_liquidation_level, m.spot_liquidation_level > 1.0 && m.spot_liquidation_level < 10.0, "(1, 10) (assets / liabilities)")?;
        check(
            "margin.spot_margin_call_level",
            m.spot_margin_call_level,
            m.spot_margin_call_level >= m.spot_liquidation_level && m.spot_margin_call_level < 10.0,
            "[margin.spot_liquidation_level, 10)",
        )?;
        check(
            "margin.spot_transfer_out_level",
            m.spot_transfer_out_level,
            m.spot_transfer_out_level >= m.spot_margin_call_level && m.spot_transfer_out_level < 10.0,
            "[margin.spot_margin_call_level, 10)",
        )?;
        check(
            "margin.spot_liquidation_stop_level",
            m.spot_liquidation_stop_level,
            m.spot_liquidation_stop_level >= 1.0 && m.spot_liquidation_stop_level < 10.0,
            "[1, 10) (1: the whole loan is bought back)",
        )?;
        if let Some(bps) = m.liquidation_slippage_bps {
            check("margin.liquidation_slippage_bps", bps, (0.0..=5000.0).contains(&bps), "[0, 5000] bps")?;
        }
        check("margin.spot_liquidation_fee_rate", m.spot_liquidation_fee_rate, (0.0..0.5).contains(&m.spot_liquidation_fee_rate), "[0, 0.5) (decimal)")?;
        if s.mode == EntryMode::AlwaysOn && s.direction == Direction::Both {
            bail_input!("`strategy.direction` = \"both\" needs `strategy.mode` = \"funding_threshold\" (always_on holds one direction)");
        }
        self.validate_rules()?;
        if s.instrument != super::InstrumentChoice::Perp {
            let which = if s.instrument == super::InstrumentChoice::Dated { "dated" } else { "best" };
            if d.dated.is_none() {
                bail_input!("`strategy.instrument` = \"{which}\" needs [data.dated]: the dated contracts' files (see README, Dated futures)");
            }
            if self.venue.contract == super::Contract::Inverse {
                bail_input!("`strategy.instrument` = \"{which}\" with [venue] contract = \"inverse\" is not supported yet: use a linear (USDⓈ-M) contract");
            }
            if s.direction != Direction::Long || s.mode != EntryMode::AlwaysOn {
                bail_input!("`strategy.instrument` = \"{which}\" holds the long carry from the first step: set [strategy] mode = \"always_on\" and direction = \"long\" (\"best\" chooses between the perp and the dated contract itself)");
            }
            if self.venue.funding == FundingRatesFrom::Counterfactual {
                bail_input!("`strategy.instrument` = \"{which}\" with counterfactual funding is not supported: use venue.funding = \"data\"");
            }
        }
        check("strategy.min_days_to_expiry", s.min_days_to_expiry, (0.0..=400.0).contains(&s.min_days_to_expiry), "[0, 400] days")?;
        check("strategy.switch_horizon_days", s.switch_horizon_days, s.switch_horizon_days >= 1.0 && s.switch_horizon_days <= 365.0, "[1, 365] days")?;
        check("strategy.roll_days_before", s.roll_days_before, (0.0..=90.0).contains(&s.roll_days_before), "[0, 90] days")?;
        if p.cash_earns && d.cash_rate.is_none() {
            bail_input!("`portfolio.cash_earns` = true needs [data.cash_rate] (e.g. cash_rate = {{ apr = 0.045 }})");
        }
        validate_run_name(&self.run.name)?;
        Ok(())
    }
}

impl Config {
    /// The `rules` and `target` settings: present where their mode needs them, absent elsewhere
    /// (a rule left in an `always_on` config would otherwise be silently ignored).
    fn validate_rules(&self) -> Result<()> {
        let s = &self.strategy;
        let rule_keys = [("enter", s.enter.is_some()), ("exit", s.exit.is_some()), ("side", s.side.is_some()), ("size", s.size.is_some()), ("hurdle_days", s.hurdle_days.is_some()), ("hurdle_apr", s.hurdle_apr.is_some())];
        let set: Vec<&str> = rule_keys.iter().filter(|k| k.1).map(|k| k.0).collect();
        let position_keys = s.min_hold_hours != 0.0 || s.cooldown_hours != 0.0;
        match s.mode {
            EntryMode::Rules => {
                for (key, given) in [("enter", s.enter.is_some()), ("exit", s.exit.is_some())] {
                    if !given {
                        bail_input!("strategy.mode = \"rules\" needs strategy.{key}, e.g. enter = \"funding_predicted_apr > 0.10\", exit = \"held * funding_trailing_apr < 0.02\"");
                    }
                }
                if s.direction == Direction::Both && s.side.is_none() {
                    bail_input!("strategy.direction = \"both\" with mode = \"rules\" needs strategy.side, an expression whose sign picks the carry (e.g. side = \"sign(funding_predicted_apr)\")");
                }
                if s.target.is_some() {
                    bail_input!("[strategy.target] is read with mode = \"target\", not \"rules\"");
                }
                if s.hurdle_apr.is_some() && s.hurdle_days.is_none() {
                    bail_input!("strategy.hurdle_apr needs strategy.hurdle_days (the horizon the carry must pay the round trip over)");
                }
                if let Some(days) = s.hurdle_days {
                    if !(days > 0.0 && days <= 3650.0) {
                        bail_input!("strategy.hurdle_days = {days}: give a horizon in (0, 3650] days");
                    }
                }
            }
            EntryMode::Target => {
                if s.target.is_none() {
                    bail_input!("strategy.mode = \"target\" needs [strategy.target]: path, time_column and value_column of a series of target exposure in [-1, 1]");
                }
                if !set.is_empty() {
                    bail_input!("strategy.{} belong(s) to mode = \"rules\"; mode = \"target\" takes its decisions from [strategy.target]", set.join(", strategy."));
                }
            }
            EntryMode::AlwaysOn | EntryMode::FundingThreshold => {
                if !set.is_empty() || s.target.is_some() || position_keys {
                    let mut keys = set;
                    if s.target.is_some() {
                        keys.push("target");
                    }
                    if s.min_hold_hours != 0.0 {
                        keys.push("min_hold_hours");
                    }
                    if s.cooldown_hours != 0.0 {
                        keys.push("cooldown_hours");
                    }
                    bail_input!("strategy.{} take(s) effect with mode = \"rules\" (or \"target\"); set the mode, or remove them", keys.join(", strategy."));
                }
            }
        }
        for (key, hours) in [("min_hold_hours", s.min_hold_hours), ("cooldown_hours", s.cooldown_hours)] {
            if !(hours.is_finite() && (0.0..=24.0 * 3650.0).contains(&hours)) {
                bail_input!("strategy.{key} = {hours}: give hours in [0, 87600]");
            }
        }
        if matches!(s.mode, EntryMode::Rules | EntryMode::Target) {
            if s.instrument != super::InstrumentChoice::Perp {
                bail_input!("strategy.mode = \"rules\"/\"target\" trades the perp carry: set strategy.instrument = \"perp\"");
            }
            if self.venue.contract == super::Contract::Inverse {
                bail_input!("strategy.mode = \"rules\"/\"target\" with [venue] contract = \"inverse\" is not supported yet: use a linear (USDⓈ-M) contract");
            }
        }
        let builtin = ["funding_trailing_apr", "funding_rate", "funding_last_apr", "funding_predicted_apr", "basis_bp", "mark_basis_bp", "dated_basis_apr", "funding_spread_apr", "held", "target"];
        let mut seen: Vec<&str> = Vec::new();
        for (k, signal) in self.signals.iter().enumerate() {
            let name = signal.name.as_str();
            let valid = name.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_') && name.chars().all(|c| c.is_alphanumeric() || c == '_');
            if !valid {
                bail_input!("[[signal]] {}: name {name:?} must be a word of letters, digits and _ (it is how rules name the series)", k + 1);
            }
            if builtin.contains(&name) {
                bail_input!("[[signal]] {}: name {name:?} is a built-in signal; choose another", k + 1);
            }
            if seen.contains(&name) {
                bail_input!("[[signal]] {}: name {name:?} is given twice", k + 1);
            }
            seen.push(name);
        }
        Ok(())
    }
}
