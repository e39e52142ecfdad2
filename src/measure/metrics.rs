//! Return, risk and carry statistics of a run, as written to `metrics.json`.
//!
//! Conventions: returns are on initial capital; annualisation uses 365-day years; volatility,
//! Sharpe and Sortino use daily returns of the equity at each UTC day's last step in excess of
//! the cash rate (`[data.cash_rate]`: the day's time-weighted APR / 365; 0 without one), scaled
//! by √365; drawdowns use every step's equity. Funding APRs annualise each
//! settlement's rate by its own interval.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sim::RunSummary;
use crate::model::Settlement;
use crate::time::{format_ms, year_of, year_start_ms, MS_PER_DAY, MS_PER_YEAR};

/// Funding statistics of one calendar year (UTC).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FundingYear {
    /// Settlements in the window that met a position.
    pub settlements_held: usize,
    /// Funding received (+) or paid (−), quote currency.
    pub funding_pnl: f64,
    /// Σ side × rate over held settlements, per year of the window inside this calendar year
    /// (side +1 short perp, −1 long perp): the funding rate the position earned, annualised.
    pub funding_apr_over_window: f64,
    /// Funding PnL over the year's mean absolute perp notional at settlements, annualised the same way.
    pub funding_return_on_notional_apr: f64,
}

/// How the borrowable quantity limited a reverse carry.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct BorrowStats {
    /// Entries and resizes cut to the borrowable quantity.
    pub capped: usize,
    /// Steps where the lender recalled part or all of the loan.
    pub recalls: usize,
}

/// What working orders over time came to (`costs.max_participation`, `costs.leg_delay_ms`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct ExecutionMetrics {
    /// Orders worked (entries, exits, resizes, re-hedges placed as worked orders).
    pub orders_worked: usize,
    /// Closes at which a worked order filled or waited (the one placing it and the one
    /// completing it included).
    pub steps_working: usize,
    /// Days the legs stood apart (one leg's fills ahead of the other's).
    pub days_partially_hedged: f64,
    /// Price PnL of the unmatched part of the legs over that time, quote currency (inside the
    /// spot and perp components).
    pub legging_pnl: f64,
    /// Bars where a leg had an order to fill but no volume was known (nothing filled there).
    pub bars_without_volume: usize,
    /// An order was still being worked at the run's end (the final close took the rest).
    pub unfinished: bool,
}

impl ExecutionMetrics {
    /// The summary's `execution` line (single runs and books).
    pub fn summary_line(&self) -> String {
        format!(
            "  execution     {} orders worked over {} closes; legs apart {:.2} days, legging PnL {:+.2}{}{}\n",
            self.orders_worked,
            self.steps_working,
            self.days_partially_hedged,
            self.legging_pnl,
            if self.bars_without_volume > 0 { format!("; {} bars without volume (no fill)", self.bars_without_volume) } else { String::new() },
            if self.unfinished { "; an order was still being worked at the end (the final close took the rest)" } else { "" }
        )
    }
}

/// Everything in `metrics.json` (written from [`TABLE`]; read back by field name).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Metrics {
    /// Traded symbol, e.g. `BTCUSDT`.
    pub symbol: String,
    /// True when the run used synthetic data.
    pub synthetic: bool,
    /// Time of the first step, `YYYY-MM-DD HH:MM:SSZ` (UTC).
    pub start: String,
    /// Time of the last step, `YYYY-MM-DD HH:MM:SSZ` (UTC).
    pub end: String,
    /// Number of steps (bars) simulated.
    pub steps: usize,
    /// Length of the window from first to last step, in 365-day years (at least one hour).
    pub years: f64,
    /// Starting equity, quote currency.
    pub initial_capital: f64,
    /// Equity at the last step, quote currency.
    pub final_equity: f64,
    /// Final equity / initial capital − 1, decimal.
    pub total_return: f64,
    /// Compound annual growth rate.
    pub cagr: f64,
    /// Simple annualised return: total return / years.
    pub apr: f64,
    /// Standard deviation of daily returns × √365, decimal.
    pub annualised_volatility: f64,
    /// Mean / standard deviation of daily returns in excess of the cash rate × √365 (risk-free
    /// rate 0 without `[data.cash_rate]`); 0 when undefined.
    pub sharpe: f64,
    /// Mean daily excess return / downside deviation of the excess returns × √365; 0 when
    /// undefined.
    pub sortino: f64,
    /// The cash rate over the window, time-weighted mean decimal APR (0 without `[data.cash_rate]`).
    pub cash_apr: f64,
    /// APR (simple) less the cash rate: what the carry earned over cash.
    pub excess_apr_over_cash: f64,
    /// CAGR / |max drawdown|.
    pub calmar: f64,
    /// Largest fall from a previous equity peak, as a negative fraction.
    pub max_drawdown: f64,
    /// Time of the deepest drawdown's trough (UTC); empty when equity never fell below a peak.
    pub max_drawdown_trough: String,
    /// Longest time below a previous equity peak, days.
    pub max_drawdown_duration_days: f64,
    /// PnL by component over the run, quote currency; sums to final − initial equity.
    pub pnl: BTreeMap<String, f64>,
    /// Funding received (+) or paid (−) over the run, quote currency.
    pub funding_pnl: f64,
    /// Σ side × rate over held settlements, per year of the window (years the data covers,
    /// when `allow_partial_coverage` simulated uncovered steps): diluted by time spent flat.
    pub funding_apr_over_window: f64,
    /// Σ side × rate over held settlements, per year with a perp position open: the funding
    /// rate earned while in the position.
    pub funding_apr_while_held: f64,
    /// Years with a perp position open.
    pub years_held: f64,
    /// Years simulated outside some source's coverage (`allow_partial_coverage`).
    pub years_uncovered: f64,
    /// Funding PnL / initial capital / years.
    pub funding_return_apr: f64,
    /// Funding statistics per calendar year (UTC), keyed by the year, e.g. `2024`.
    pub funding_by_year: BTreeMap<String, FundingYear>,
    /// All settlements in the window (held or not).
    pub settlements: usize,
    /// Settlements in the window that met an open perp position.
    pub settlements_held: usize,
    /// Share of settlements in the window with a positive rate, 0–1.
    pub positive_settlement_share: f64,
    /// Share of settlements in the window with a negative rate, 0–1.
    pub negative_settlement_share: f64,
    /// Trading fees paid (positive number), quote currency.
    pub fees_paid: f64,
    /// Slippage paid (positive number), quote currency.
    pub slippage_paid: f64,
    /// Staking yield earned on a long spot leg, quote currency.
    pub staking_earned: f64,
    /// Borrow cost paid on a short spot leg (positive number), quote currency.
    pub borrow_paid: f64,
    /// Interest idle cash earned at the cash rate (`portfolio.cash_earns`), quote currency.
    pub interest_earned: f64,
    /// Dated contracts rolled into the next one before expiry.
    pub rolls: usize,
    /// Dated contracts held to delivery and settled at their settlement price.
    pub deliveries: usize,
    /// Moves of the derivative leg between the perp and the dated contract (`instrument = "best"`).
    pub instrument_switches: usize,
    /// What liquidations took, net of any insurance-fund cover (positive = loss), quote currency.
    pub liquidation_loss: f64,
    /// Traded notional / initial capital.
    pub turnover: f64,
    /// Number of fills, both legs, liquidations included.
    pub trades: usize,
    /// Carries opened, legs reopened after a liquidation (`rehedge`) included.
    pub entries: usize,
    /// Positions closed: by the entry rule, after a liquidation, or at the end of the run.
    pub exits: usize,
    /// Steps at which the perp was resized back to the hedge ratio.
    pub rebalances: usize,
    /// Steps at which a top-up moved margin or shrank the legs (perp margin or spot-margin call).
    pub margin_top_ups: usize,
    /// Steps at which a leg (perp, borrowed spot or both) was liquidated.
    pub liquidations: usize,
    /// Smallest distance to liquidation at any close while hedged (fraction of the mark);
    /// null if never hedged.
    pub min_liquidation_distance: Option<f64>,
    /// The funding regimes of the window: settlements at the baseline, cap and floor,
    /// negative streaks, and PnL and holding time by regime (absent for a book's own metrics).
    #[serde(default)]
    pub regimes: Option<Regimes>,
    /// Share of steps flat, 0–1.
    pub time_flat: f64,
    /// Share of steps in a long carry (long spot, short perp), 0–1.
    pub time_long_carry: f64,
    /// Share of steps in a reverse carry (short spot, long perp), 0–1.
    pub time_reverse_carry: f64,
    /// Share of steps with one leg left unhedged after a liquidation, 0–1.
    pub time_unhedged_spot: f64,
    /// Days spent with one leg unhedged after a liquidation.
    pub days_unhedged: f64,
    /// PnL made while one leg was unhedged (quote currency).
    pub unhedged_pnl: f64,
    /// Time of the first liquidation, empty when none.
    pub first_liquidation: String,
    /// What the run did after a liquidation (`close`, `rehedge`, `hold`), empty when none.
    pub after_liquidation: String,
    /// With `[data.borrow_available]`: how often the reverse carry was cut to the borrowable
    /// quantity, and recalled.
    #[serde(default)]
    pub borrow: Option<BorrowStats>,
    /// With orders worked over time: how many, for how long the legs stood apart, and the PnL
    /// of that exposure.
    #[serde(default)]
    pub execution: Option<ExecutionMetrics>,
}

/// How a metric's value reads: what the report formats it as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A decimal fraction (0.05 = 5 %), shown as a signed percentage.
    Decimal,
    /// A share of a whole (time in a state, settlements of a sign), shown as a percentage.
    Share,
    /// An amount of the quote currency.
    Quote,
    /// A plain ratio (Sharpe, turnover).
    Ratio,
    /// A count.
    Count,
    /// Days.
    Days,
    /// Years.
    Years,
}

/// One numeric metric of a run: its `metrics.json` key (and `results.parquet` column when
/// `swept`), the report's label and place, its unit, and how to read it from [`Metrics`].
#[derive(Clone, Copy)]
pub struct MetricSpec {
    /// Key in `metrics.json` and [`Metrics`] field name (also the `results.parquet` column).
    pub name: &'static str,
    /// Label in the report's metrics table.
    pub label: &'static str,
    /// Place in the report's metrics table (and among a sweep's result columns): 0 first.
    pub report: u8,
    /// How the value reads, and so how the report formats it (and a count is written as an
    /// integer).
    pub unit: Unit,
    /// Recorded per configuration by sweeps (a column of `results.parquet`).
    pub swept: bool,
    /// Reads the value from [`Metrics`] as `f64` (NaN where `min_liquidation_distance` is null).
    pub value: fn(&Metrics) -> f64,
}

/// One key of `metrics.json`.
pub enum Entry {
    /// A numeric metric, also a row of the report's table.
    Metric(MetricSpec),
    /// Any other key: text, a flag, or a table of its own (an absent one is left out).
    Field(&'static str, fn(&Metrics) -> FieldValue<'_>),
}

/// The value of a key of `metrics.json` that is not a numeric metric.
pub enum FieldValue<'a> {
    /// Text.
    Text(&'a str),
    /// A flag.
    Flag(bool),
    /// Amounts by name.
    Amounts(&'a BTreeMap<String, f64>),
    /// Funding by calendar year.
    Years(&'a BTreeMap<String, FundingYear>),
    /// The funding regimes, when measured.
    Regimes(Option<&'a Regimes>),
    /// Borrow limits' effect, when a borrow series was given.
    Borrow(Option<&'a BorrowStats>),
    /// Worked orders, when orders were worked.
    Execution(Option<&'a ExecutionMetrics>),
}

impl FieldValue<'_> {
    /// Whether the key is left out (an absent table).
    fn absent(&self) -> bool {
        matches!(self, FieldValue::Regimes(None) | FieldValue::Borrow(None) | FieldValue::Execution(None))
    }
}

impl Serialize for FieldValue<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            FieldValue::Text(text) => serializer.serialize_str(text),
            FieldValue::Flag(flag) => serializer.serialize_bool(*flag),
            FieldValue::Amounts(amounts) => amounts.serialize(serializer),
            FieldValue::Years(years) => years.serialize(serializer),
            FieldValue::Regimes(regimes) => regimes.serialize(serializer),
            FieldValue::Borrow(borrow) => borrow.serialize(serializer),
            FieldValue::Execution(execution) => execution.serialize(serializer),
        }
    }
}

macro_rules! metric {
    ($name:ident, $report:literal, $label:literal, $unit:ident, swept) => {
        Entry::Metric(MetricSpec { name: stringify!($name), label: $label, report: $report, unit: Unit::$unit, swept: true, value: |m| m.$name as f64 })
    };
    ($name:ident, $report:literal, $label:literal, $unit:ident) => {
        Entry::Metric(MetricSpec { name: stringify!($name), label: $label, report: $report, unit: Unit::$unit, swept: false, value: |m| m.$name as f64 })
    };
}

/// `metrics.json`, key by key in the file's order: the file is written from this table (so a
/// numeric metric is in the file exactly when it is here), as are the report's metrics table
/// and a sweep's metric columns (the numeric rows, in their `report` order: see
/// [`report_rows`]).
pub const TABLE: &[Entry] = &[
    Entry::Field("symbol", |m| FieldValue::Text(&m.symbol)),
    Entry::Field("synthetic", |m| FieldValue::Flag(m.synthetic)),
    Entry::Field("start", |m| FieldValue::Text(&m.start)),
    Entry::Field("end", |m| FieldValue::Text(&m.end)),
    metric!(steps, 47, "Steps", Count),
    metric!(years, 44, "Years", Years, swept),
    metric!(initial_capital, 0, "Initial capital", Quote),
    metric!(final_equity, 12, "Final equity", Quote, swept),
    metric!(total_return, 1, "Total return", Decimal, swept),
    metric!(cagr, 3, "CAGR", Decimal, swept),
    metric!(apr, 2, "APR (simple)", Decimal, swept),
    metric!(annualised_volatility, 4, "Annualised volatility (daily)", Decimal, swept),
    metric!(sharpe, 5, "Sharpe (daily, rf = cash rate)", Ratio, swept),
    metric!(sortino, 6, "Sortino (rf = cash rate)", Ratio, swept),
    metric!(cash_apr, 7, "Cash rate (mean APR)", Decimal),
    metric!(excess_apr_over_cash, 8, "APR over the cash rate", Decimal, swept),
    metric!(calmar, 9, "Calmar", Ratio, swept),
    metric!(max_drawdown, 10, "Max drawdown", Decimal, swept),
    Entry::Field("max_drawdown_trough", |m| FieldValue::Text(&m.max_drawdown_trough)),
    metric!(max_drawdown_duration_days, 11, "Longest underwater (days)", Days, swept),
    Entry::Field("pnl", |m| FieldValue::Amounts(&m.pnl)),
    metric!(funding_pnl, 13, "Funding PnL", Quote, swept),
    metric!(funding_apr_over_window, 14, "Funding APR over window (Σ side × rate / years of window)", Decimal, swept),
    metric!(funding_apr_while_held, 15, "Funding APR while held (Σ side × rate / years in position)", Decimal, swept),
    metric!(years_held, 45, "Years with a perp position", Years),
    metric!(years_uncovered, 46, "Years outside the data's coverage", Years),
    metric!(funding_return_apr, 16, "Funding return on capital (APR)", Decimal, swept),
    Entry::Field("funding_by_year", |m| FieldValue::Years(&m.funding_by_year)),
    metric!(settlements, 17, "Settlements in window", Count),
    metric!(settlements_held, 18, "Settlements held", Count, swept),
    metric!(positive_settlement_share, 19, "Positive settlements (share)", Share, swept),
    metric!(negative_settlement_share, 20, "Negative settlements (share)", Share),
    metric!(fees_paid, 21, "Fees paid", Quote, swept),
    metric!(slippage_paid, 22, "Slippage paid", Quote, swept),
    metric!(staking_earned, 23, "Staking earned", Quote, swept),
    metric!(borrow_paid, 24, "Borrow paid", Quote, swept),
    metric!(interest_earned, 25, "Interest earned on cash", Quote),
    metric!(rolls, 26, "Dated contract rolls", Count),
    metric!(deliveries, 27, "Dated contract deliveries", Count),
    metric!(instrument_switches, 28, "Switches between perp and dated", Count),
    metric!(liquidation_loss, 29, "Liquidation loss", Quote, swept),
    metric!(turnover, 30, "Turnover (× capital)", Ratio, swept),
    metric!(trades, 31, "Trades", Count, swept),
    metric!(entries, 32, "Entries", Count),
    metric!(exits, 33, "Exits", Count),
    metric!(rebalances, 34, "Rebalances", Count, swept),
    metric!(margin_top_ups, 35, "Margin top-ups", Count, swept),
    metric!(liquidations, 36, "Liquidations", Count, swept),
    Entry::Metric(MetricSpec {
        name: "min_liquidation_distance",
        label: "Min distance to liquidation",
        report: 37,
        unit: Unit::Share,
        swept: true,
        value: |m| m.min_liquidation_distance.unwrap_or(f64::NAN),
    }),
    Entry::Field("regimes", |m| FieldValue::Regimes(m.regimes.as_ref())),
    metric!(time_flat, 40, "Time flat", Share, swept),
    metric!(time_long_carry, 38, "Time in long carry", Share, swept),
    metric!(time_reverse_carry, 39, "Time in reverse carry", Share, swept),
    metric!(time_unhedged_spot, 41, "Time unhedged", Share),
    metric!(days_unhedged, 42, "Days unhedged after a liquidation", Days),
    metric!(unhedged_pnl, 43, "PnL while unhedged", Quote),
    Entry::Field("first_liquidation", |m| FieldValue::Text(&m.first_liquidation)),
    Entry::Field("after_liquidation", |m| FieldValue::Text(&m.after_liquidation)),
    Entry::Field("borrow", |m| FieldValue::Borrow(m.borrow.as_ref())),
    Entry::Field("execution", |m| FieldValue::Execution(m.execution.as_ref())),
];

/// The numeric metrics in the report's order (their `report` places).
pub fn report_rows() -> Vec<&'static MetricSpec> {
    let mut rows: Vec<&'static MetricSpec> = TABLE
        .iter()
        .filter_map(|entry| match entry {
            Entry::Metric(spec) => Some(spec),
            Entry::Field(..) => None,
        })
        .collect();
    rows.sort_by_key(|spec| spec.report);
    rows
}

/// `metrics.json` is written from [`TABLE`], key by key: a count as an integer, a missing
/// distance to liquidation (NaN) as null, an absent table left out.
impl Serialize for Metrics {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        for entry in TABLE {
            match entry {
                Entry::Metric(spec) => {
                    let value = (spec.value)(self);
                    if spec.unit == Unit::Count {
                        map.serialize_entry(spec.name, &(value as u64))?;
                    } else if value.is_nan() {
                        map.serialize_entry(spec.name, &Option::<f64>::None)?;
                    } else {
                        map.serialize_entry(spec.name, &value)?;
                    }
                }
                Entry::Field(name, read) => {
                    let value = read(self);
                    if !value.absent() {
                        map.serialize_entry(name, &value)?;
                    }
                }
            }
        }
        map.end()
    }
}

fn finite_or_zero(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// Put the timeline's cash rate on the summary: each day's and the window's time-weighted APR
/// (the interval `(ts[i−1], ts[i]]` at the rate known at its start, counted in the day of
/// `ts[i]`, as the day's equity is its last step's).
pub fn attach_cash_rate(summary: &mut RunSummary, timeline: &crate::model::MarketTimeline) {
    let (ts, apr) = (&timeline.ts_ms, &timeline.cash_apr);
    if apr.len() != ts.len() || ts.len() < 2 {
        return;
    }
    let mut by_day = Vec::with_capacity(summary.daily_equity.len());
    let (mut day, mut weighted, mut span) = (ts[0].div_euclid(MS_PER_DAY), 0.0, 0i64);
    let (mut total_weighted, mut total_span) = (0.0, 0i64);
    for i in 1..ts.len() {
        let today = ts[i].div_euclid(MS_PER_DAY);
        if today != day {
            by_day.push(if span > 0 { weighted / span as f64 } else { apr[i - 1] });
            (day, weighted, span) = (today, 0.0, 0);
        }
        let dt = ts[i] - ts[i - 1];
        weighted += apr[i - 1] * dt as f64;
        span += dt;
        total_weighted += apr[i - 1] * dt as f64;
        total_span += dt;
    }
    by_day.push(if span > 0 { weighted / span as f64 } else { apr[ts.len() - 1] });
    summary.cash_apr_by_day = by_day;
    summary.cash_apr_mean = if total_span > 0 { total_weighted / total_span as f64 } else { apr[0] };
}

/// Steps with a fill for `reason` (a roll or a switch is two fills, a delivery one or two).
fn steps_with(trades: &[crate::model::Trade], reason: crate::model::TradeReason) -> usize {
    let mut steps: Vec<usize> = trades.iter().filter(|t| t.reason == reason).map(|t| t.step).collect();
    steps.dedup();
    steps.len()
}

/// Compute metrics from a run's summary.
pub fn compute(summary: &RunSummary, symbol: &str, synthetic: bool) -> Metrics {
    let years = ((summary.last_ts_ms - summary.first_ts_ms) as f64 / MS_PER_YEAR).max(1.0 / 365.0 / 24.0);
    let total_return = summary.final_equity / summary.initial_capital - 1.0;
    let cagr = if summary.final_equity > 0.0 { (summary.final_equity / summary.initial_capital).powf(1.0 / years) - 1.0 } else { -1.0 };

    // Daily returns, the first against the initial capital, less the day's cash rate.
    let mut returns = Vec::with_capacity(summary.daily_equity.len());
    let mut previous = summary.initial_capital;
    for (day, &(_, equity)) in summary.daily_equity.iter().enumerate() {
        let risk_free = summary.cash_apr_by_day.get(day).copied().unwrap_or(0.0) / 365.0;
        returns.push(if previous > 0.0 { equity / previous - 1.0 - risk_free } else { 0.0 });
        previous = equity;
    }
    let count = returns.len().max(1) as f64;
    let mean = returns.iter().sum::<f64>() / count;
    let variance = if returns.len() > 1 { returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (count - 1.0) } else { 0.0 };
    let downside = (returns.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / count).sqrt();
    let std = variance.sqrt();
    let scale = 365f64.sqrt();

    let pnl: BTreeMap<String, f64> = crate::measure::ledger::Pnl::NAMES.iter().zip(summary.pnl.values()).map(|(k, v)| (k.to_string(), v)).collect();

    // Funding by year.
    // Keyed by the year as a number while summing (no string per settlement).
    let mut by_year: BTreeMap<i32, FundingYear> = BTreeMap::new();
    let mut notional_by_year: BTreeMap<i32, (f64, usize)> = BTreeMap::new();
    let mut rate_sum_all = 0.0;
    for s in &summary.settlements {
        // A settlement pays for the interval ending at it: 2025-01-01 00:00 belongs to 2024.
        let year = year_of(s.settlement.settle_ms - 1);
        let side = -s.perp_qty.signum();
        let entry = by_year.entry(year).or_insert(FundingYear {
            settlements_held: 0,
            funding_pnl: 0.0,
            funding_apr_over_window: 0.0,
            funding_return_on_notional_apr: 0.0,
        });
        entry.settlements_held += 1;
        entry.funding_pnl += s.amount;
        entry.funding_apr_over_window += side * s.settlement.rate; // divided by the year's window share below
        rate_sum_all += side * s.settlement.rate;
        let n = notional_by_year.entry(year).or_insert((0.0, 0));
        n.0 += (s.perp_qty * s.settlement.price).abs();
        n.1 += 1;
    }
    for (&y, stats) in by_year.iter_mut() {
        let from = summary.first_ts_ms.max(year_start_ms(y));
        let to = summary.last_ts_ms.min(year_start_ms(y + 1));
        let window_years = ((to - from) as f64 / MS_PER_YEAR).max(1e-9);
        stats.funding_apr_over_window /= window_years;
        if let Some(&(sum, n)) = notional_by_year.get(&y) {
            let mean_notional = sum / n as f64;
            stats.funding_return_on_notional_apr = stats.funding_pnl / mean_notional / window_years;
        }
    }
    let window = &summary.window_settlements;
    let share = |pred: fn(f64) -> bool| if window.is_empty() { 0.0 } else { window.iter().filter(|s| pred(s.rate)).count() as f64 / window.len() as f64 };
    let steps = summary.steps.max(1) as f64;
    // Funding APRs count only time the data covers.
    let covered_years = (years - summary.uncovered_ms as f64 / MS_PER_YEAR).max(1.0 / 365.0 / 24.0);

    Metrics {
        symbol: symbol.to_string(),
        synthetic,
        start: format_ms(summary.first_ts_ms),
        end: format_ms(summary.last_ts_ms),
        steps: summary.steps,
        years,
        initial_capital: summary.initial_capital,
        final_equity: summary.final_equity,
        total_return,
        cagr,
        apr: total_return / years,
        annualised_volatility: std * scale,
        sharpe: finite_or_zero(mean / std * scale),
        sortino: finite_or_zero(mean / downside * scale),
        cash_apr: summary.cash_apr_mean,
        excess_apr_over_cash: total_return / years - summary.cash_apr_mean,
        calmar: finite_or_zero(cagr / summary.max_drawdown.abs()),
        max_drawdown: summary.max_drawdown,
        max_drawdown_trough: if summary.max_drawdown < 0.0 { format_ms(summary.max_drawdown_trough_ms) } else { String::new() },
        max_drawdown_duration_days: summary.max_drawdown_duration_ms as f64 / MS_PER_DAY as f64,
        pnl,
        funding_pnl: summary.pnl.funding,
        funding_apr_over_window: rate_sum_all / covered_years,
        funding_apr_while_held: if summary.perp_held_ms > 0 { rate_sum_all / (summary.perp_held_ms as f64 / MS_PER_YEAR) } else { 0.0 },
        years_held: summary.perp_held_ms as f64 / MS_PER_YEAR,
        years_uncovered: summary.uncovered_ms as f64 / MS_PER_YEAR,
        funding_return_apr: summary.pnl.funding / summary.initial_capital / years,
        funding_by_year: by_year.into_iter().map(|(year, stats)| (year.to_string(), stats)).collect(),
        settlements: window.len(),
        settlements_held: summary.settlements.len(),
        positive_settlement_share: share(|r| r > 0.0),
        negative_settlement_share: share(|r| r < 0.0),
        fees_paid: 0.0 - summary.pnl.fees,
        slippage_paid: 0.0 - summary.pnl.slippage,
        staking_earned: summary.pnl.staking,
        borrow_paid: 0.0 - summary.pnl.borrow,
        interest_earned: summary.pnl.interest,
        rolls: steps_with(&summary.trades, crate::model::TradeReason::Roll),
        deliveries: steps_with(&summary.trades, crate::model::TradeReason::Delivery),
        instrument_switches: steps_with(&summary.trades, crate::model::TradeReason::Switch),
        liquidation_loss: 0.0 - summary.pnl.liquidation,
        turnover: summary.traded_notional / summary.initial_capital,
        trades: summary.trades.len(),
        entries: summary.entries,
        exits: summary.exits,
        rebalances: summary.rebalances,
        margin_top_ups: summary.top_ups,
        liquidations: summary.liquidations,
        min_liquidation_distance: if summary.min_liquidation_distance.is_finite() { Some(summary.min_liquidation_distance) } else { None },
        regimes: regimes(summary, years),
        borrow: summary.borrow_limited.then_some(BorrowStats { capped: summary.borrow_capped, recalls: summary.recalls }),
        execution: summary.execution.map(|e| ExecutionMetrics {
            orders_worked: e.orders_worked,
            steps_working: e.steps_working,
            days_partially_hedged: e.partially_hedged_ms as f64 / MS_PER_DAY as f64,
            legging_pnl: e.legging_pnl,
            bars_without_volume: e.bars_without_volume,
            unfinished: e.unfinished,
        }),
        time_flat: summary.steps_in_state[0] as f64 / steps,
        time_long_carry: summary.steps_in_state[1] as f64 / steps,
        time_reverse_carry: summary.steps_in_state[2] as f64 / steps,
        time_unhedged_spot: summary.steps_in_state[3] as f64 / steps,
        days_unhedged: summary.unhedged_ms as f64 / MS_PER_DAY as f64,
        unhedged_pnl: summary.unhedged_pnl,
        first_liquidation: summary.first_liquidation_ms.map(format_ms).unwrap_or_default(),
        after_liquidation: match summary.after_liquidation {
            Some(crate::sim::policy::AfterLiquidation::Close) => "close".into(),
            Some(crate::sim::policy::AfterLiquidation::Rehedge) => "rehedge".into(),
            Some(crate::sim::policy::AfterLiquidation::Hold) => "hold".into(),
            None => String::new(),
        },
    }
}

impl Metrics {
    /// The short terminal summary.
    pub fn summary_text(&self) -> String {
        let pct = |x: f64| format!("{:+.2} %", x * 100.0);
        let mut out = String::new();
        if self.synthetic {
            out.push_str("SYNTHETIC DATA (generated by `basis data synth`, not market history)\n");
        }
        out.push_str(&format!("{} {} -> {} ({} steps, {:.2} years)\n", self.symbol, self.start, self.end, self.steps, self.years));
        out.push_str(&format!("  equity        {:.2} -> {:.2}  (total {}, APR {}, CAGR {})\n", self.initial_capital, self.final_equity, pct(self.total_return), pct(self.apr), pct(self.cagr)));
        // Which risk-free rate Sharpe and Sortino are over: the cash rate given, or none.
        let over = if self.cash_apr != 0.0 { format!("over the cash rate, mean {}", pct(self.cash_apr)) } else { "over a 0 % risk-free rate: no [data.cash_rate]".to_string() };
        out.push_str(&format!(
            "  risk          Sharpe {:.2}, Sortino {:.2} ({over}), vol {}, max drawdown {} ({:.1} days underwater)\n",
            self.sharpe,
            self.sortino,
            pct(self.annualised_volatility),
            pct(self.max_drawdown),
            self.max_drawdown_duration_days
        ));
        out.push_str(&format!(
            "  funding       {:+.2} earned ({} settlements held; funding APR {} while held, {} over window)\n",
            self.funding_pnl,
            self.settlements_held,
            pct(self.funding_apr_while_held),
            pct(self.funding_apr_over_window)
        ));
        out.push_str(&format!("  costs         fees {:.2}, slippage {:.2}, borrow {:.2}; staking {:+.2}\n", self.fees_paid, self.slippage_paid, self.borrow_paid, self.staking_earned));
        if self.rolls + self.deliveries + self.instrument_switches > 0 {
            let basis = self.pnl.get("spot").copied().unwrap_or(0.0) + self.pnl.get("perp").copied().unwrap_or(0.0);
            out.push_str(&format!(
                "  dated         {} rolls, {} deliveries, {} switches with the perp; basis (spot + futures/perp price) {:+.2}\n",
                self.rolls, self.deliveries, self.instrument_switches, basis
            ));
        }
        if self.cash_apr != 0.0 || self.interest_earned != 0.0 {
            out.push_str(&format!("  cash          rate {} mean APR; interest earned {:+.2}; APR over cash {}\n", pct(self.cash_apr), self.interest_earned, pct(self.excess_apr_over_cash)));
        }
        out.push_str(&format!(
            "  activity      {}, {}, {}; min distance to liquidation {}\n",
            counted(self.rebalances, "rebalance", "rebalances"),
            counted(self.margin_top_ups, "margin top-up", "margin top-ups"),
            counted(self.liquidations, "liquidation", "liquidations"),
            self.min_liquidation_distance.map(|d| format!("{:.1} %", d * 100.0)).unwrap_or_else(|| "n/a".into())
        ));
        if let Some(r) = &self.regimes {
            let share = |x: Option<f64>| x.map(|v| format!("{:.1} %", v * 100.0)).unwrap_or_else(|| "n/a".into());
            let streaks = &r.negative_streaks;
            out.push_str(&format!(
                "  regimes       {:.1} % of settlements negative ({} streaks, longest {} settlements = {:.1} days), {:.1} % at the {:.4} % baseline, {} at the cap, {} at the floor\n",
                self.negative_settlement_share * 100.0,
                streaks.count,
                streaks.longest_settlements,
                streaks.longest_hours / 24.0,
                r.at_baseline_share * 100.0,
                r.baseline_rate_per_8h * 100.0,
                share(r.at_cap_share),
                share(r.at_floor_share)
            ));
            let pnl = |k: &str| r.pnl.get(k).copied().unwrap_or(0.0);
            let days = |k: &str| r.held_days.get(k).copied().unwrap_or(0.0);
            out.push_str(&format!(
                "  by regime     PnL {:+.2} positive, {:+.2} baseline, {:+.2} negative ({:.0} / {:.0} / {:.0} days held); in market {:.1} %, {} round trips\n",
                pnl("positive"),
                pnl("baseline"),
                pnl("negative"),
                days("positive"),
                days("baseline"),
                days("negative"),
                r.time_in_market * 100.0,
                r.round_trips
            ));
        }
        if let Some(b) = &self.borrow {
            out.push_str(&format!("  borrow        {} reverse-carry entries or resizes cut to the borrowable quantity, {} recalls bought back\n", b.capped, b.recalls));
        }
        if let Some(e) = &self.execution {
            out.push_str(&e.summary_line());
        }
        if self.liquidations > 0 {
            let what = match self.after_liquidation.as_str() {
                "hold" => "after_liquidation = \"hold\": the surviving leg was kept, so the rest of the run is a DIRECTIONAL position, not a carry",
                "rehedge" => "after_liquidation = \"rehedge\": the liquidated leg was reopened",
                _ => "after_liquidation = \"close\": the surviving leg was closed",
            };
            out.push_str(&format!(
                "  liquidation   first at {}; {what}; {:.1} days unhedged, PnL while unhedged {:+.2}\n",
                self.first_liquidation, self.days_unhedged, self.unhedged_pnl
            ));
        }
        if self.years_uncovered > 0.0 {
            out.push_str(&format!("  coverage      {:.2} years simulated outside the data's coverage (allow_partial_coverage); funding APRs count covered time only\n", self.years_uncovered));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The report's places are 0, 1, 2, ... once each.
    #[test]
    fn the_report_places_are_a_permutation() {
        let places: Vec<u8> = report_rows().iter().map(|spec| spec.report).collect();
        assert_eq!(places, (0..places.len() as u8).collect::<Vec<_>>());
    }

    /// Every field of [`Metrics`] is written (reading the file back gives the same metrics, and
    /// a field the table leaves out would be missing), each key once, and a missing distance
    /// to liquidation is null.
    #[test]
    fn metrics_json_holds_every_field_once_and_reads_back_the_same() {
        let summary = RunSummary { steps: 2, first_ts_ms: 0, last_ts_ms: 86_400_000, initial_capital: 1.0, final_equity: 1.0, ..Default::default() };
        let metrics = compute(&summary, "T", true);
        let text = serde_json::to_string_pretty(&metrics).unwrap();
        let back: Metrics = serde_json::from_str(&text).unwrap();
        assert_eq!(format!("{back:?}"), format!("{metrics:?}"));
        let keys: Vec<&str> = TABLE.iter().map(|e| match e { Entry::Metric(spec) => spec.name, Entry::Field(name, _) => name }).collect();
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "a key twice in metrics::TABLE");
        assert!(text.contains("\"steps\": 2,"), "counts are integers: {text}");
        let never_hedged = Metrics { min_liquidation_distance: None, ..metrics };
        let text = serde_json::to_string_pretty(&never_hedged).unwrap();
        assert!(text.contains("\"min_liquidation_distance\": null,"), "{text}");
    }
}

/// `1 rebalance`, `3 rebalances`.
fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Runs of negative settlements in a row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Streaks {
    /// Number of runs of one or more negative settlements in a row.
    pub count: usize,
    /// Settlements in the longest run.
    pub longest_settlements: usize,
    /// Hours the longest run covered (its settlements' intervals).
    pub longest_hours: f64,
    /// Runs by length in settlements: `1`, `2-3`, `4-9`, `10-29`, `30+`.
    pub lengths: BTreeMap<String, usize>,
}

/// The window's funding regimes, and what the run made and held in each.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Regimes {
    /// The interest baseline the settlements are told apart by, decimal per 8 h (scaled to each
    /// settlement's interval).
    pub baseline_rate_per_8h: f64,
    /// Share of the window's settlements at the baseline, 0–1.
    pub at_baseline_share: f64,
    /// Share at the venue's cap for the symbol and date; null where no cap is known.
    pub at_cap_share: Option<f64>,
    /// Share at the floor; null where no floor is known.
    pub at_floor_share: Option<f64>,
    /// Runs of negative settlements.
    pub negative_streaks: Streaks,
    /// PnL by the regime of the rate that settled each interval (`positive`, `baseline`,
    /// `negative`; `after_last_settlement` for the steps after the window's last one), quote
    /// currency; sums to the run's PnL.
    pub pnl: BTreeMap<String, f64>,
    /// Days a perp was held, by the same regimes.
    pub held_days: BTreeMap<String, f64>,
    /// Share of the window with a perp held, 0–1.
    pub time_in_market: f64,
    /// Round trips: positions closed (by the rules, after a liquidation, or at the end).
    pub round_trips: usize,
}

/// Bucket of a streak length for [`Streaks::lengths`].
fn streak_bucket(length: usize) -> &'static str {
    match length {
        1 => "1",
        2..=3 => "2-3",
        4..=9 => "4-9",
        10..=29 => "10-29",
        _ => "30+",
    }
}

/// The regimes of a pair run's summary (None for a summary no pair run tracked).
fn regimes(summary: &RunSummary, years: f64) -> Option<Regimes> {
    let baseline = summary.funding_baseline_rate_per_8h;
    if !baseline.is_finite() {
        return None;
    }
    let window = &summary.window_settlements;
    let at_baseline = window.iter().filter(|s| crate::sim::regime::of(s.rate, s.interval_hours, baseline) == crate::sim::regime::BASELINE).count();
    let mut streaks = Streaks::default();
    let (mut run, mut run_hours) = (0usize, 0.0f64);
    let close_run = |run: &mut usize, run_hours: &mut f64, streaks: &mut Streaks| {
        if *run > 0 {
            streaks.count += 1;
            *streaks.lengths.entry(streak_bucket(*run).to_string()).or_default() += 1;
            if *run > streaks.longest_settlements {
                streaks.longest_settlements = *run;
                streaks.longest_hours = *run_hours;
            }
        }
        *run = 0;
        *run_hours = 0.0;
    };
    for s in window {
        if s.rate < 0.0 {
            run += 1;
            run_hours += s.interval_hours;
        } else {
            close_run(&mut run, &mut run_hours, &mut streaks);
        }
    }
    close_run(&mut run, &mut run_hours, &mut streaks);
    let names = crate::sim::regime::NAMES;
    Some(Regimes {
        baseline_rate_per_8h: baseline,
        at_baseline_share: if window.is_empty() { 0.0 } else { at_baseline as f64 / window.len() as f64 },
        at_cap_share: None,
        at_floor_share: None,
        negative_streaks: streaks,
        pnl: names.iter().zip(summary.regime_pnl).map(|(k, v)| (k.to_string(), v)).collect(),
        held_days: names.iter().zip(summary.regime_held_ms).map(|(k, v)| (k.to_string(), v as f64 / MS_PER_DAY as f64)).collect(),
        time_in_market: if years > 0.0 { (summary.perp_held_ms as f64 / MS_PER_YEAR / years).min(1.0) } else { 0.0 },
        round_trips: summary.exits,
    })
}

impl Regimes {
    /// The share of `settlements` (time, rate, interval hours) at the cap and at the floor
    /// `limits` gives for each (cap, floor; None where the venue has none).
    pub fn count_limits(&mut self, settlements: &[Settlement], limits: &dyn Fn(i64, f64) -> (Option<f64>, Option<f64>)) {
        if settlements.is_empty() {
            return;
        }
        let (mut caps, mut floors, mut cap_known, mut floor_known) = (0usize, 0usize, false, false);
        for &Settlement { settle_ms: at, rate, interval_hours: hours, .. } in settlements {
            let (cap, floor) = limits(at, hours);
            if let Some(cap) = cap {
                cap_known = true;
                caps += usize::from(rate >= cap - 1e-9);
            }
            if let Some(floor) = floor {
                floor_known = true;
                floors += usize::from(rate <= floor + 1e-9);
            }
        }
        let n = settlements.len() as f64;
        self.at_cap_share = cap_known.then_some(caps as f64 / n);
        self.at_floor_share = floor_known.then_some(floors as f64 / n);
    }
}
