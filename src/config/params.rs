//! The boundary between the config and the simulation: turns a validated [`Config`] into the
//! plain parameters the engine runs with.

use super::Config;
use crate::sim::book::Costs;
use crate::sim::margin::{Brackets, PerpLiquidation, SpotMarginRules};
use crate::sim::policy::EntryRule;
use crate::sim::EngineParams;

/// The engine parameters a validated config asks for (decimals, not bps): sim never reads the
/// config itself.
pub fn engine_params(config: &Config) -> EngineParams {
    let p = &config.portfolio;
    let s = &config.strategy;
    let m = &config.margin;
    let fee_in_price = if m.taker_fee_in_liquidation_price { config.costs.perp_taker_bps * 1e-4 } else { 0.0 };
    EngineParams {
        initial_capital: p.initial_capital,
        leverage: p.leverage,
        hedge_ratio: p.hedge_ratio,
        reserve_fraction: p.reserve_fraction,
        rebalance_delta_threshold: p.rebalance_delta_threshold,
        top_up_distance: p.top_up_distance,
        top_up_source: p.top_up_source,
        borrow_apr: p.borrow_apr,
        costs: Costs::of(&config.costs),
        liquidation: PerpLiquidation {
            style: m.liquidation,
            fee_rate: m.liquidation_fee_rate,
            backstop_fraction: m.backstop_fraction,
            fill_slippage: m.liquidation_slippage_bps.unwrap_or(config.costs.perp_slippage_bps) * 1e-4,
            fee_in_bankruptcy_price: fee_in_price,
        },
        spot_margin: SpotMarginRules {
            margin_call_level: m.spot_margin_call_level,
            liquidation_level: m.spot_liquidation_level,
            liquidation_fee_rate: m.spot_liquidation_fee_rate,
            transfer_out_level: m.spot_transfer_out_level,
            liquidation_stop_level: m.spot_liquidation_stop_level,
        },
        // A venue that counts the fee to close in its liquidation price needs that much more
        // maintenance at every tier (the tiers' `cum` differences are unchanged).
        brackets: Brackets::new(m.brackets.iter().map(|b| crate::model::Bracket { mmr: b.mmr + fee_in_price, ..*b }).collect()).on(m.maintenance_on),
        entry: EntryRule {
            mode: s.mode,
            direction: s.direction,
            entry_funding_apr: s.entry_funding_apr,
            exit_funding_apr: s.exit_funding_apr,
            lookback_settlements: s.lookback_settlements,
            lookback_hours: s.lookback_hours,
        },
        close_at_end: s.close_at_end,
        reenter_after_liquidation: s.reenter_after_liquidation,
        after_liquidation: s.after_liquidation,
        mask_stale_spot: config.data.mask_stale_spot,
        spot_collateral_haircut: 0.0,
        quote_borrow_apr: 0.0,
        transfer_delay_ms: 0,
        transfer_fee: 0.0,
        forced: Vec::new(),
        max_perp_notional: f64::INFINITY,
        rules: None,
        // The preset's interest at the window's start where a preset is set, else Binance's.
        market_costs: None,
        borrow_available: None,
        execution: crate::sim::execution::Execution {
            max_participation: config.costs.max_participation.unwrap_or(f64::INFINITY),
            leg_delay_ms: config.costs.leg_delay_ms,
            first_leg: config.costs.first_leg,
        },
        funding_baseline_rate_per_8h: config.venue.effective_preset().map(|p| p.formula_at(config.strategy.start.as_deref().and_then(|t| crate::time::parse_time_ms("strategy.start", t).ok()).unwrap_or(0)).interest_per_8h).unwrap_or(0.0001),
        delivery_fee: config.costs.perp_taker_bps * 1e-4,
        cash_earns: p.cash_earns,
        inverse: config.venue.contract == super::Contract::Inverse,
    }
}
