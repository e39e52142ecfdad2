//! `basis term`: the term structure of the basis over time. For every step of the config's
//! window and every dated contract trading then: days to expiry, basis F/S − 1 and the
//! annualised basis (F/S − 1) × 365 / days, beside the perp's trailing funding APR (the
//! config's lookback) and the cash rate when one is given. Writes `term.parquet` and `term.png`
//! (the annualised basis per tenor, front and next contract, against the funding APR).

use std::path::PathBuf;

use anyhow::{Context, Result};
use polars::prelude::*;

use crate::config::{Config, InstrumentChoice};
use crate::model::dated::annualised_basis;
use crate::model::MarketTimeline;
use crate::output::RunDir;
use crate::render::charts;

/// Tenor names by rank among the contracts trading at a time (nearest expiry first).
const TENORS: [&str; 4] = ["front", "next", "third", "fourth"];

/// One contract at one step.
#[derive(Debug, Clone, PartialEq)]
pub struct TermRow {
    /// Step time, epoch ms UTC.
    pub ts_ms: i64,
    /// Contract name.
    pub contract: String,
    /// Rank among the contracts trading at the step: `front`, `next`, ...
    pub tenor: &'static str,
    /// Days from the step to the contract's expiry.
    pub days_to_expiry: f64,
    /// The contract's close, quote currency.
    pub future: f64,
    /// The spot close, quote currency.
    pub spot: f64,
    /// F / S − 1, decimal.
    pub basis: f64,
    /// (F / S − 1) × 365 / days to expiry, decimal APR.
    pub annualised_basis: f64,
    /// The perp's trailing funding APR at the step (the config's lookback), decimal; NaN until covered.
    pub perp_funding_apr: f64,
}

/// The term structure of a config's window.
pub struct Term {
    /// One row per step and contract trading then.
    pub rows: Vec<TermRow>,
    /// Step times.
    pub ts_ms: Vec<i64>,
    /// The perp's trailing funding APR at each step.
    pub perp_funding_apr: Vec<f64>,
    /// The cash rate at each step (empty without one).
    pub cash_apr: Vec<f64>,
    /// What the funding signal looks back over, for labels.
    pub lookback: String,
    /// Loader and alignment warnings.
    pub warnings: Vec<String>,
}

/// Build the term structure of `config`'s window (its `[data.dated]` contracts against its spot).
pub fn build(config: &Config) -> Result<Term> {
    if config.data.dated.is_none() {
        crate::bail_input!("`basis term` needs [data.dated]: the dated contracts' files (see README, Dated futures)");
    }
    // The market as the perp carry sees it: no dated leg, no clipping to the contracts.
    crate::app::pipeline::refuse_rules(config, "`basis term`")?;
    let mut plain = config.clone();
    plain.strategy.instrument = InstrumentChoice::Perp;
    let market = crate::data::load(&plain.data)?;
    let (timeline, mut warnings) = super::pipeline::align_for(&market, &plain)?;
    let contracts = crate::data::dated::on_clock(&market.dated, &market.dated_mark, &timeline.ts_ms, &timeline.spot, market.index.as_ref(), &mut warnings);
    let params = crate::config::engine_params(&plain);
    let perp_funding_apr = params.entry.signal(&timeline.funding, &timeline.ts_ms);
    let lookback = match config.strategy.lookback_hours {
        Some(hours) => format!("trailing {hours} h"),
        None => format!("trailing {} settlements", config.strategy.lookback_settlements),
    };
    let rows = rows_of(&timeline, &contracts, &perp_funding_apr);
    if rows.is_empty() {
        crate::bail_input!("data.dated: no contract trades inside the window {} .. {}", crate::time::format_ms(timeline.ts_ms.first().copied().unwrap_or(0)), crate::time::format_ms(timeline.ts_ms.last().copied().unwrap_or(0)));
    }
    Ok(Term { rows, ts_ms: timeline.ts_ms.clone(), perp_funding_apr, cash_apr: timeline.cash_apr.clone(), lookback, warnings })
}

/// The rows: at each step, every contract with a close and time left, ranked by expiry.
pub fn rows_of(timeline: &MarketTimeline, contracts: &crate::model::DatedContracts, perp_funding_apr: &[f64]) -> Vec<TermRow> {
    let mut rows = Vec::new();
    for (i, &ts) in timeline.ts_ms.iter().enumerate() {
        let mut rank = 0;
        for c in 0..contracts.len() {
            let days = contracts.days_to_expiry(c, ts);
            if !contracts.live(c, i) || days <= 0.0 {
                continue;
            }
            let (future, spot) = (contracts.close[c][i], timeline.spot[i]);
            rows.push(TermRow {
                ts_ms: ts,
                contract: contracts.names[c].clone(),
                tenor: TENORS.get(rank).copied().unwrap_or("later"),
                days_to_expiry: days,
                future,
                spot,
                basis: future / spot - 1.0,
                annualised_basis: annualised_basis(future, spot, days),
                perp_funding_apr: perp_funding_apr.get(i).copied().unwrap_or(f64::NAN),
            });
            rank += 1;
        }
    }
    rows
}

impl Term {
    /// The rows as `term.parquet`'s frame.
    pub fn frame(&self) -> Result<DataFrame> {
        let n = self.rows.len();
        let ts: Vec<i64> = self.rows.iter().map(|r| r.ts_ms).collect();
        let text = |f: fn(&TermRow) -> &str| -> Vec<String> { self.rows.iter().map(|r| f(r).to_string()).collect() };
        let num = |f: fn(&TermRow) -> f64| -> Vec<f64> { self.rows.iter().map(f).collect() };
        let time = Column::new("ts".into(), &ts).cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC)))?;
        Ok(DataFrame::new(
            n,
            vec![
                time,
                Column::new("contract".into(), text(|r| r.contract.as_str())),
                Column::new("tenor".into(), text(|r| r.tenor)),
                Column::new("days_to_expiry".into(), num(|r| r.days_to_expiry)),
                Column::new("future".into(), num(|r| r.future)),
                Column::new("spot".into(), num(|r| r.spot)),
                Column::new("basis".into(), num(|r| r.basis)),
                Column::new("annualised_basis".into(), num(|r| r.annualised_basis)),
                Column::new("perp_funding_apr".into(), num(|r| r.perp_funding_apr)),
            ],
        )?)
    }

    /// Mean annualised basis per tenor over the window, in tenor order, with the mean funding APR.
    pub fn means(&self) -> (Vec<(&'static str, f64, usize)>, f64) {
        let mut out: Vec<(&'static str, f64, usize)> = Vec::new();
        for tenor in TENORS.iter().chain(std::iter::once(&"later")) {
            let values: Vec<f64> = self.rows.iter().filter(|r| r.tenor == *tenor && r.annualised_basis.is_finite()).map(|r| r.annualised_basis).collect();
            if !values.is_empty() {
                out.push((tenor, values.iter().sum::<f64>() / values.len() as f64, values.len()));
            }
        }
        let funding: Vec<f64> = self.perp_funding_apr.iter().copied().filter(|v| v.is_finite()).collect();
        (out, if funding.is_empty() { f64::NAN } else { funding.iter().sum::<f64>() / funding.len() as f64 })
    }

    /// The chart: annualised basis per tenor against the perp's funding APR (and the cash rate), in %.
    pub fn chart_png(&self) -> Result<Vec<u8>> {
        let mut lines = Vec::new();
        let (means, _) = self.means();
        for (tenor, _, _) in &means {
            // One value per step for the tenor (NaN where no contract held that rank).
            let mut values = vec![f64::NAN; self.ts_ms.len()];
            let mut i = 0;
            for row in self.rows.iter().filter(|r| r.tenor == *tenor) {
                while self.ts_ms[i] < row.ts_ms {
                    i += 1;
                }
                values[i] = row.annualised_basis * 100.0;
            }
            lines.push(charts::CompareLine { label: format!("{tenor} contract: annualised basis"), lines: charts::decimate_for_chart(&self.ts_ms, &values) });
        }
        let funding: Vec<f64> = self.perp_funding_apr.iter().map(|v| v * 100.0).collect();
        lines.push(charts::CompareLine { label: format!("perp funding APR ({})", self.lookback), lines: charts::decimate_for_chart(&self.ts_ms, &funding) });
        if !self.cash_apr.is_empty() {
            let cash: Vec<f64> = self.cash_apr.iter().map(|v| v * 100.0).collect();
            lines.push(charts::CompareLine { label: "cash rate".into(), lines: charts::decimate_for_chart(&self.ts_ms, &cash) });
        }
        charts::render_png(charts::WIDTH, charts::HEIGHT, |area| charts::compare_chart(area, "Term structure: dated basis per tenor vs perp funding", "annualised (% APR)", &lines))
    }
}

/// Build and write `term.parquet` and `term.png` into `<output_dir>/<name>/`.
pub fn run(config: &Config, name: &str, output_dir: &std::path::Path, force: bool) -> Result<(Term, PathBuf)> {
    let term = build(config)?;
    let dir = RunDir::create(output_dir, name, force)?;
    dir.write_parquet("term.parquet", &mut term.frame()?)?;
    dir.write("term.png", &term.chart_png().context("drawing term.png")?)?;
    let folder = dir.commit()?;
    Ok((term, folder))
}
