//! A portfolio's records and measures: every pair's rows, every account's rows and the book's
//! rows ([`BookLedger`]), the per-leg split written to `legs.parquet`, the accounts written to
//! `accounts.parquet`, and the book's metrics (return on capital, margin posted, capital
//! efficiency, attribution by pair and venue, the correlation of pair returns).

use std::collections::BTreeMap;

use anyhow::Result;
use polars::prelude::*;
use serde::Serialize;

use super::ledger::FullLedger;
use super::metrics::{self, Metrics};
use crate::model::{Pnl, Recorder, StepRow};
use crate::sim::portfolio::{AccountRow, AccountSpec, BookRecorder, BookSummary, MarginMode};
use crate::time::MS_PER_YEAR;

/// Every row of a book run, kept in memory.
pub struct BookLedger {
    /// The book's rows (sums over the pairs).
    pub book: FullLedger,
    /// Each pair's rows.
    pub pairs: Vec<FullLedger>,
    /// Each pair's capital moved in at each step (allocation), quote currency.
    pub transfers_in: Vec<Vec<f64>>,
    /// Each pair's PnL booked in its spot account at each step (the perp's is the rest).
    pub spot_legs: Vec<Vec<Pnl>>,
    /// Each pair's quote moved out of its spot account and into its perp account at each step.
    pub moved: Vec<Vec<(f64, f64)>>,
    /// Each account's rows.
    pub accounts: Vec<Vec<AccountRow>>,
}

impl BookLedger {
    /// A ledger for `pairs` pairs and `accounts` accounts, with room for `steps` rows each.
    pub fn with_capacity(pairs: usize, accounts: usize, steps: usize) -> Self {
        BookLedger {
            book: FullLedger::with_capacity(steps),
            pairs: (0..pairs).map(|_| FullLedger::with_capacity(steps)).collect(),
            transfers_in: (0..pairs).map(|_| Vec::with_capacity(steps)).collect(),
            spot_legs: (0..pairs).map(|_| Vec::with_capacity(steps)).collect(),
            moved: (0..pairs).map(|_| Vec::with_capacity(steps)).collect(),
            accounts: (0..accounts).map(|_| Vec::with_capacity(steps)).collect(),
        }
    }
}

impl BookRecorder for BookLedger {
    fn pair(&mut self, pair: usize, row: &StepRow, transfer_in: f64) {
        self.pairs[pair].record(row);
        self.transfers_in[pair].push(transfer_in);
        self.spot_legs[pair].push(row.spot_leg);
        self.moved[pair].push((row.moved_out_of_spot_account, row.moved_into_perp_account));
    }
    fn account(&mut self, account: usize, row: &AccountRow) {
        self.accounts[account].push(*row);
    }
    fn book(&mut self, row: &StepRow) {
        self.book.record(row);
    }
}

/// Where a pair's legs are held, for the per-leg and per-venue outputs.
#[derive(Debug, Clone)]
pub struct PairPlace {
    /// The pair's name.
    pub name: String,
    /// The spot leg's account name.
    pub spot_account: String,
    /// The perp's account name.
    pub perp_account: String,
    /// How the spot counts as margin in its account (portfolio mode), else not at all.
    pub spot_collateral: crate::sim::margin::Collateral,
}

/// A pair's step split by leg: the spot leg's PnL is what the engine booked in the spot
/// account, the perp's is the rest, so the two add up to the pair exactly.
fn leg_pnl(pair: &Pnl, spot_leg: &Pnl) -> (Pnl, Pnl) {
    let perp = Pnl::from_values(std::array::from_fn(|k| pair.values()[k] - spot_leg.values()[k]));
    (*spot_leg, perp)
}

/// `legs.parquet`: per step, pair and leg, the account, quantity, price, margin, the perp's
/// liquidation price and distance (in a cross or portfolio account: the price of the pair's
/// asset at which the account breaches; NaN on the spot leg), the capital
/// moved into the leg's account (allocation, and transfers between the legs' accounts) and
/// each PnL component, booked where the engine booked it (the two legs add up to the pair's
/// row exactly, and each leg's change in value is its PnL plus what moved in).
pub fn legs_frame(ledger: &BookLedger, places: &[PairPlace]) -> Result<DataFrame> {
    let steps = ledger.book.len();
    let rows = steps * places.len() * 2;
    let mut ts = Vec::with_capacity(rows);
    let mut pair_names: Vec<&str> = Vec::with_capacity(rows);
    let mut leg_names: Vec<&str> = Vec::with_capacity(rows);
    let mut accounts: Vec<&str> = Vec::with_capacity(rows);
    let (mut qty, mut price, mut margin, mut transfer) = (Vec::with_capacity(rows), Vec::with_capacity(rows), Vec::with_capacity(rows), Vec::with_capacity(rows));
    let (mut liquidation_price, mut liquidation_distance) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
    let mut components: Vec<Vec<f64>> = (0..=Pnl::COUNT).map(|_| Vec::with_capacity(rows)).collect();
    for (k, place) in places.iter().enumerate() {
        let pair_ledger = &ledger.pairs[k];
        for i in 0..pair_ledger.len() {
            let row = pair_ledger.row(i);
            let (spot_pnl, perp_pnl) = leg_pnl(&row.pnl, &ledger.spot_legs[k][i]);
            let (moved_out, moved_in) = ledger.moved[k][i];
            for (leg, account, q, px, m, tr, pnl, liquidation) in [
                ("spot", place.spot_account.as_str(), row.spot_qty, row.spot_price, place.spot_collateral.value(row.spot_qty.max(0.0), row.spot_price), ledger.transfers_in[k][i] - moved_out, spot_pnl, (f64::NAN, f64::NAN)),
                ("perp", place.perp_account.as_str(), row.perp_qty, row.mark_price, row.perp_margin, moved_in, perp_pnl, (row.liquidation_price, row.liquidation_distance)),
            ] {
                liquidation_price.push(liquidation.0);
                liquidation_distance.push(liquidation.1);
                ts.push(row.ts_ms);
                pair_names.push(place.name.as_str());
                leg_names.push(leg);
                accounts.push(account);
                qty.push(q);
                price.push(px);
                margin.push(m);
                transfer.push(tr);
                for (column, value) in components.iter_mut().zip(pnl.values().into_iter().chain([pnl.total()])) {
                    column.push(value);
                }
            }
        }
    }
    let mut columns = vec![
        Column::new("ts".into(), ts).cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC)))?,
        Column::new("pair".into(), pair_names),
        Column::new("leg".into(), leg_names),
        Column::new("account".into(), accounts),
        Column::new("qty".into(), qty),
        Column::new("price".into(), price),
        Column::new("margin".into(), margin),
        Column::new("liquidation_price".into(), liquidation_price),
        Column::new("liquidation_distance".into(), liquidation_distance),
        Column::new("transfer_in".into(), transfer),
    ];
    let names: Vec<&str> = Pnl::COMPONENTS.iter().map(|c| c.column).chain(["pnl_total"]).collect();
    for (name, values) in names.into_iter().zip(components) {
        columns.push(Column::new(name.into(), values));
    }
    let height = columns[0].len();
    Ok(DataFrame::new(height, columns)?)
}

/// `accounts.parquet`: per step and account, its balances, maintenance, margin ratio and
/// distance to liquidation.
pub fn accounts_frame(ledger: &BookLedger, accounts: &[AccountSpec]) -> Result<DataFrame> {
    let mut ts = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let mut modes: Vec<&str> = Vec::new();
    let mut floats: Vec<Vec<f64>> = (0..8).map(|_| Vec::new()).collect();
    for (a, rows) in ledger.accounts.iter().enumerate() {
        for row in rows {
            ts.push(row.ts_ms);
            names.push(accounts[a].name.as_str());
            modes.push(mode_name(accounts[a].mode));
            for (column, value) in floats.iter_mut().zip([row.cash, row.spot_value, row.perp_margin, row.margin_balance, row.maintenance, row.margin_ratio, row.liquidation_distance, row.equity]) {
                column.push(value);
            }
        }
    }
    let mut columns = vec![
        Column::new("ts".into(), ts).cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC)))?,
        Column::new("account".into(), names),
        Column::new("margin_mode".into(), modes),
    ];
    for (name, values) in ["cash", "spot_value", "perp_margin", "margin_balance", "maintenance", "margin_ratio", "liquidation_distance", "equity"].into_iter().zip(floats) {
        columns.push(Column::new(name.into(), values));
    }
    let height = columns[0].len();
    Ok(DataFrame::new(height, columns)?)
}

/// The name a margin mode is written as.
pub fn mode_name(mode: MarginMode) -> &'static str {
    match mode {
        MarginMode::Isolated => "isolated",
        MarginMode::Cross => "cross",
        MarginMode::Portfolio => "portfolio",
    }
}

/// One pair's measures within the book.
#[derive(Debug, Clone, Serialize)]
pub struct PairMetrics {
    /// Account of the spot leg.
    pub spot_account: String,
    /// Account of the perp.
    pub perp_account: String,
    /// Capital moved in by allocation rebalances, net, quote currency.
    pub transfers_in: f64,
    /// The pair's own metrics (its initial capital is its first allocation).
    pub metrics: Metrics,
}

/// One account's measures.
#[derive(Debug, Clone, Serialize)]
pub struct AccountMetrics {
    /// `isolated`, `cross` or `portfolio`.
    pub margin_mode: &'static str,
    /// Balance / maintenance at which the account is liquidated (1 for isolated and cross).
    pub liquidation_threshold: f64,
    /// Steps at which a perp of the account was liquidated.
    pub liquidations: usize,
    /// Time of the first liquidation (UTC), empty when none.
    pub first_liquidation: String,
    /// Smallest distance to liquidation at any close, decimal move (NaN written as null).
    pub min_liquidation_distance: Option<f64>,
    /// Highest maintenance / margin balance at any close.
    pub max_margin_ratio: f64,
}

/// The book's measures, written to `metrics.json`.
#[derive(Debug, Clone, Serialize)]
pub struct BookMetrics {
    /// The whole book as one run. Rate-based funding figures (`funding_apr_*`, settlement
    /// counts and shares) are the pairs' own, weighted by their first allocation.
    pub book: Metrics,
    /// Book PnL / initial capital, decimal.
    pub return_on_capital: f64,
    /// Mean cash posted as perp margin across the book, quote currency.
    pub mean_margin_posted: f64,
    /// Funding PnL per year over the initial capital, decimal APR.
    pub funding_apr_on_capital: f64,
    /// Funding PnL per year over the mean margin posted, decimal APR.
    pub funding_apr_on_margin: f64,
    /// Capital / mean margin posted: how many times the margin the capital is.
    pub capital_efficiency: f64,
    /// Allocation rebalances carried out.
    pub allocation_rebalances: usize,
    /// A universe's rotations, and the pairs closed because their data ended (absent without
    /// a universe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub universe: Option<UniverseMetrics>,
    /// Each pair's measures, by name.
    pub pairs: BTreeMap<String, PairMetrics>,
    /// Each account's measures, by name.
    pub accounts: BTreeMap<String, AccountMetrics>,
    /// PnL by component per venue (the account a leg is held in), quote currency.
    pub pnl_by_account: BTreeMap<String, BTreeMap<String, f64>>,
    /// Pearson correlation of the pairs' daily returns, in `pairs` order.
    pub correlation: Correlation,
}

/// A correlation matrix with its labels.
#[derive(Debug, Clone, Serialize)]
pub struct Correlation {
    /// Row and column labels.
    pub names: Vec<String>,
    /// `matrix[a][b]`: correlation of a's and b's daily returns (null where undefined).
    pub matrix: Vec<Vec<Option<f64>>>,
}

/// Measure a finished book.
pub fn compute(summary: &BookSummary, ledger: &BookLedger, places: &[PairPlace], accounts: &[AccountSpec], symbol: &str, synthetic: bool) -> BookMetrics {
    let mut book = metrics::compute(&summary.book, symbol, synthetic);
    let pair_metrics: Vec<Metrics> = summary.pairs.iter().zip(places).map(|(s, p)| metrics::compute(s, &p.name, synthetic)).collect();
    // Rate-based funding figures do not add across pairs: weight them by first allocation.
    let capital: f64 = summary.pairs.iter().map(|s| s.initial_capital).sum();
    let weight = |k: usize| if capital > 0.0 { summary.pairs[k].initial_capital / capital } else { 0.0 };
    book.funding_apr_over_window = pair_metrics.iter().enumerate().map(|(k, m)| weight(k) * m.funding_apr_over_window).sum();
    book.funding_apr_while_held = pair_metrics.iter().enumerate().map(|(k, m)| weight(k) * m.funding_apr_while_held).sum();
    book.positive_settlement_share = pair_metrics.iter().enumerate().map(|(k, m)| weight(k) * m.positive_settlement_share).sum();
    book.negative_settlement_share = pair_metrics.iter().enumerate().map(|(k, m)| weight(k) * m.negative_settlement_share).sum();
    let years = ((summary.book.last_ts_ms - summary.book.first_ts_ms) as f64 / MS_PER_YEAR).max(1.0 / 8760.0);
    let posted = summary.mean_margin_posted;
    let mut pnl_by_account: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for (k, place) in places.iter().enumerate() {
        let mut spot_total = Pnl::default();
        for spot_leg in &ledger.spot_legs[k] {
            spot_total.add(spot_leg);
        }
        let (spot, perp) = leg_pnl(&summary.pairs[k].pnl, &spot_total);
        for (account, leg) in [(&place.spot_account, spot), (&place.perp_account, perp)] {
            let entry = pnl_by_account.entry(account.clone()).or_default();
            for (name, value) in Pnl::NAMES.iter().zip(leg.values()) {
                *entry.entry(name.to_string()).or_default() += value;
            }
            *entry.entry("total".into()).or_default() += leg.total();
        }
    }
    let pairs = places
        .iter()
        .zip(pair_metrics)
        .enumerate()
        .map(|(k, (p, m))| (p.name.clone(), PairMetrics { spot_account: p.spot_account.clone(), perp_account: p.perp_account.clone(), transfers_in: summary.transfers_in[k], metrics: m }))
        .collect();
    let accounts_out = summary
        .accounts
        .iter()
        .zip(accounts)
        .map(|(a, spec)| {
            (
                a.name.clone(),
                AccountMetrics {
                    margin_mode: mode_name(a.mode),
                    liquidation_threshold: spec.liquidation_threshold,
                    liquidations: a.liquidations,
                    first_liquidation: a.first_liquidation_ms.map(crate::time::format_ms).unwrap_or_default(),
                    min_liquidation_distance: Some(a.min_liquidation_distance).filter(|d| d.is_finite()),
                    max_margin_ratio: a.max_margin_ratio,
                },
            )
        })
        .collect();
    BookMetrics {
        return_on_capital: summary.book.pnl.total() / summary.book.initial_capital,
        mean_margin_posted: posted,
        funding_apr_on_capital: summary.book.pnl.funding / summary.book.initial_capital / years,
        funding_apr_on_margin: if posted > 0.0 { summary.book.pnl.funding / posted / years } else { 0.0 },
        capital_efficiency: if posted > 0.0 { summary.book.initial_capital / posted } else { 0.0 },
        allocation_rebalances: summary.allocation_rebalances,
        universe: (summary.rotations > 0).then(|| UniverseMetrics {
            rotations: summary.rotations,
            delistings: summary.delistings,
            selections: summary.selections.iter().map(|(t, picked)| (crate::time::format_ms(*t), picked.iter().map(|&k| places[k].name.clone()).collect())).collect(),
        }),
        pairs,
        accounts: accounts_out,
        pnl_by_account,
        correlation: correlation(summary, places),
        book,
    }
}

/// What a universe did.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UniverseMetrics {
    /// Selections made (the first included).
    pub rotations: usize,
    /// Pairs closed because their data ended.
    pub delistings: usize,
    /// Each selection: its time and the pairs chosen.
    pub selections: Vec<(String, Vec<String>)>,
}

/// Pearson correlation of the pairs' daily returns (each day against the previous day's close).
fn correlation(summary: &BookSummary, places: &[PairPlace]) -> Correlation {
    let returns: Vec<Vec<f64>> = summary
        .pairs
        .iter()
        .map(|s| {
            let mut previous = s.initial_capital;
            s.daily_equity
                .iter()
                .map(|&(_, e)| {
                    let r = if previous > 0.0 { e / previous - 1.0 } else { f64::NAN };
                    previous = e;
                    r
                })
                .collect()
        })
        .collect();
    let pearson = |a: &[f64], b: &[f64]| -> Option<f64> {
        let pairs: Vec<(f64, f64)> = a.iter().zip(b).filter(|(x, y)| x.is_finite() && y.is_finite()).map(|(x, y)| (*x, *y)).collect();
        let n = pairs.len() as f64;
        if n < 2.0 {
            return None;
        }
        let (ma, mb) = (pairs.iter().map(|p| p.0).sum::<f64>() / n, pairs.iter().map(|p| p.1).sum::<f64>() / n);
        let cov: f64 = pairs.iter().map(|p| (p.0 - ma) * (p.1 - mb)).sum();
        let (va, vb): (f64, f64) = (pairs.iter().map(|p| (p.0 - ma).powi(2)).sum(), pairs.iter().map(|p| (p.1 - mb).powi(2)).sum());
        let r = cov / (va * vb).sqrt();
        r.is_finite().then_some(r)
    };
    let matrix = returns.iter().map(|a| returns.iter().map(|b| pearson(a, b)).collect()).collect();
    Correlation { names: places.iter().map(|p| p.name.clone()).collect(), matrix }
}
