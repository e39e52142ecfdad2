//! The tearsheet part of a run's report: rolling 90-day Sharpe, the distribution of daily
//! returns against a normal curve of the same mean and deviation, funding earned per month,
//! and the five worst drawdowns (start, trough, recovery, depth, days).

use anyhow::Result;
use chrono::{Datelike, TimeZone, Utc};
use plotters::prelude::*;

use super::draw::{at, draw_err, draw_lines, draw_zero, panels, time_chart, value_range, Area, Legend, BLUE, GREEN_DARK, RED_DARK, FONT};
use super::charts::column;
use super::series::decimate_min_max;
use super::ReportInput;
use crate::time::{format_ms, MS_PER_DAY};

/// Equity at each UTC day's last step: (day start, equity).
pub fn daily_closes(ts_ms: &[i64], equity: &[f64]) -> Vec<(i64, f64)> {
    let mut out: Vec<(i64, f64)> = Vec::new();
    for (t, e) in ts_ms.iter().zip(equity) {
        let day = t.div_euclid(MS_PER_DAY) * MS_PER_DAY;
        match out.last_mut() {
            Some(last) if last.0 == day => last.1 = *e,
            _ => out.push((day, *e)),
        }
    }
    out
}

/// Daily returns, each day's close over the previous day's (the first over `initial`).
pub fn daily_returns(closes: &[(i64, f64)], initial: f64) -> Vec<(i64, f64)> {
    let mut previous = initial;
    closes
        .iter()
        .map(|&(day, e)| {
            let r = if previous > 0.0 { e / previous - 1.0 } else { 0.0 };
            previous = e;
            (day, r)
        })
        .collect()
}

/// Sharpe of the trailing `window` daily returns (mean / deviation × √365, risk-free 0), from the
/// `window`-th day on.
pub fn rolling_sharpe(returns: &[(i64, f64)], window: usize) -> (Vec<i64>, Vec<f64>) {
    let mut ts = Vec::new();
    let mut values = Vec::new();
    for end in window..=returns.len() {
        let slice = &returns[end - window..end];
        let n = slice.len() as f64;
        let mean = slice.iter().map(|r| r.1).sum::<f64>() / n;
        let var = slice.iter().map(|r| (r.1 - mean).powi(2)).sum::<f64>() / (n - 1.0);
        ts.push(slice[slice.len() - 1].0 + MS_PER_DAY);
        values.push(if var > 0.0 { mean / var.sqrt() * 365f64.sqrt() } else { f64::NAN });
    }
    (ts, values)
}

/// One drawdown episode.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    /// The peak it fell from, epoch ms.
    pub start_ms: i64,
    /// Its lowest point, epoch ms.
    pub trough_ms: i64,
    /// When equity was back at the peak, epoch ms; `None` if it never was.
    pub recovery_ms: Option<i64>,
    /// Trough over peak minus one (negative decimal).
    pub depth: f64,
}

/// The `k` deepest drawdown episodes (peak to recovery), deepest first.
pub fn worst_drawdowns(ts_ms: &[i64], equity: &[f64], k: usize) -> Vec<Episode> {
    let mut episodes = Vec::new();
    let mut peak = (f64::MIN, 0i64);
    let mut current: Option<Episode> = None;
    for (&t, &e) in ts_ms.iter().zip(equity) {
        if !e.is_finite() {
            continue;
        }
        if e >= peak.0 {
            if let Some(mut ep) = current.take() {
                ep.recovery_ms = Some(t);
                episodes.push(ep);
            }
            peak = (e, t);
            continue;
        }
        let depth = e / peak.0 - 1.0;
        let ep = current.get_or_insert(Episode { start_ms: peak.1, trough_ms: t, recovery_ms: None, depth });
        if depth < ep.depth {
            ep.depth = depth;
            ep.trough_ms = t;
        }
    }
    episodes.extend(current);
    episodes.sort_by(|a, b| a.depth.total_cmp(&b.depth));
    episodes.truncate(k);
    episodes
}

/// Funding received per calendar month (UTC): (month start, sum).
pub fn monthly_funding(ts_ms: &[i64], funding: &[f64]) -> Vec<(i64, f64)> {
    let mut out: Vec<(i64, f64)> = Vec::new();
    for (&t, &f) in ts_ms.iter().zip(funding) {
        let d = at(t);
        let month = Utc.with_ymd_and_hms(d.year(), d.month(), 1, 0, 0, 0).single().map(|m| m.timestamp_millis()).unwrap_or(t);
        match out.last_mut() {
            Some(last) if last.0 == month => last.1 += f,
            _ => out.push((month, f)),
        }
    }
    out
}

/// The daily returns Sharpe is taken over: less the day's cash rate / 365 when the run has one
/// (as the metric does), else as they are.
pub fn daily_excess_returns(input: &ReportInput, equity: &[f64]) -> Vec<(i64, f64)> {
    let returns = daily_returns(&daily_closes(input.ledger.ts_ms(), equity), input.initial_capital());
    if input.config.data.cash_rate.is_none() {
        return returns;
    }
    let days: Vec<i64> = returns.iter().map(|r| r.0).collect();
    let rates = cash_rate_on(input, &days).unwrap_or_else(|| vec![input.metrics.cash_apr; days.len()]);
    returns.iter().zip(rates).map(|(&(day, r), apr)| (day, r - apr / 365.0)).collect()
}

/// Rolling 90-day Sharpe of the daily returns.
pub fn rolling_sharpe_chart(input: &ReportInput, area: &Area) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let ts = input.ledger.ts_ms();
    let returns = daily_excess_returns(input, column(input, "equity")?);
    let (days, sharpe) = rolling_sharpe(&returns, 90);
    let lines = decimate_min_max(&days, &sharpe, super::draw::BUCKETS);
    let y = value_range(lines.iter(), &[0.0]);
    let x = super::draw::time_span(ts);
    let title = if input.config.data.cash_rate.is_some() { "Rolling 90-day Sharpe (daily returns, risk-free = the cash rate)" } else { "Rolling 90-day Sharpe (daily returns, risk-free 0)" };
    let (plot, side) = panels(area, title)?;
    let mut chart = time_chart(&plot, "Sharpe, trailing 90 days", x, y)?;
    let mut legend = Legend::default();
    draw_zero(&mut chart, x)?;
    draw_lines(&mut chart, &mut legend, &lines, BLUE.stroke_width(2), if sharpe.is_empty() { "needs 90 days of returns" } else { "rolling 90-day Sharpe" })?;
    legend.draw(&side)
}

/// Histogram of daily returns with the normal density of the same mean and deviation.
pub fn return_distribution_chart(input: &ReportInput, area: &Area) -> Result<()> {
    return_distribution(input.ledger.ts_ms(), column(input, "equity")?, input.initial_capital(), area)
}

/// [`return_distribution_chart`] of any equity series (a book's too) on its steps `ts`.
pub fn return_distribution(ts: &[i64], equity: &[f64], initial_capital: f64, area: &Area) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let returns: Vec<f64> = daily_returns(&daily_closes(ts, equity), initial_capital).iter().map(|r| r.1 * 100.0).filter(|r| r.is_finite()).collect();
    let n = returns.len().max(1) as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let sd = (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    let (lo, hi) = returns.iter().fold((f64::MAX, f64::MIN), |a, r| (a.0.min(*r), a.1.max(*r)));
    let (lo, hi) = if lo < hi { (lo, hi) } else { (lo - 1.0, lo + 1.0) };
    let bins = 60usize;
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for r in &returns {
        counts[(((r - lo) / width) as usize).min(bins - 1)] += 1;
    }
    // Densities per percentage point, so the normal curve overlays on the same scale.
    let density: Vec<f64> = counts.iter().map(|c| *c as f64 / n / width).collect();
    let normal = |x: f64| if sd > 0.0 { (-(x - mean).powi(2) / (2.0 * sd * sd)).exp() / (sd * (2.0 * std::f64::consts::PI).sqrt()) } else { 0.0 };
    let top = density.iter().copied().fold(0.0, f64::max).max(normal(mean)) * 1.1;
    let (plot, side) = panels(area, &format!("Daily returns: {} days, mean {mean:+.3} %, deviation {sd:.3} %", returns.len()))?;
    let mut chart = ChartBuilder::on(&plot)
        .margin(12)
        .x_label_area_size(52)
        .y_label_area_size(86)
        .build_cartesian_2d(lo..hi, 0.0..top.max(1e-9))
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc("daily return (%)")
        .y_desc("density (per percentage point)")
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(draw_err)?;
    chart
        .draw_series(density.iter().enumerate().map(|(k, d)| Rectangle::new([(lo + k as f64 * width, 0.0), (lo + (k + 1) as f64 * width, *d)], BLUE.mix(0.6).filled())))
        .map_err(draw_err)?;
    let curve: Vec<(f64, f64)> = (0..=200).map(|k| lo + (hi - lo) * k as f64 / 200.0).map(|x| (x, normal(x))).collect();
    chart.draw_series(LineSeries::new(curve, RED_DARK.stroke_width(2))).map_err(draw_err)?;
    let mut legend = Legend::default();
    legend.add("daily returns (histogram)", super::draw::Glyph::Line(BLUE.mix(0.6).stroke_width(8)));
    legend.add("normal, same mean and deviation", super::draw::Glyph::Line(RED_DARK.stroke_width(2)));
    legend.draw(&side)
}

/// Funding received per month as bars.
pub fn monthly_funding_chart(input: &ReportInput, area: &Area) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let ts = input.ledger.ts_ms();
    let months = monthly_funding(ts, column(input, "pnl_funding")?);
    let y = value_range(std::iter::empty(), &months.iter().map(|m| m.1).chain([0.0]).collect::<Vec<f64>>());
    let x = (months.first().map(|m| m.0).unwrap_or(0), months.last().map(|m| m.0 + 31 * MS_PER_DAY).unwrap_or(1));
    let quote = input.quote_currency();
    let (plot, side) = panels(area, "Funding earned per month")?;
    let mut chart = time_chart(&plot, &format!("funding ({quote})"), x, y)?;
    draw_zero(&mut chart, x)?;
    chart
        .draw_series(months.iter().map(|&(m, f)| {
            let colour = if f >= 0.0 { GREEN_DARK } else { RED_DARK };
            Rectangle::new([(at(m + 2 * MS_PER_DAY), 0.0), (at(m + 27 * MS_PER_DAY), f)], colour.filled())
        }))
        .map_err(draw_err)?;
    let mut legend = Legend::default();
    legend.add("received (month)", super::draw::Glyph::Line(GREEN_DARK.stroke_width(8)));
    legend.add("paid (month)", super::draw::Glyph::Line(RED_DARK.stroke_width(8)));
    legend.draw(&side)
}

/// The worst drawdowns as HTML table rows.
pub fn drawdown_rows(input: &ReportInput) -> Vec<[String; 5]> {
    let ts = input.ledger.ts_ms();
    let equity = input.ledger.column("equity").unwrap_or(&[]);
    worst_drawdowns(ts, equity, 5)
        .iter()
        .map(|e| {
            let end = e.recovery_ms.unwrap_or_else(|| ts.last().copied().unwrap_or(e.start_ms));
            [
                format_ms(e.start_ms),
                format_ms(e.trough_ms),
                e.recovery_ms.map(format_ms).unwrap_or_else(|| "not recovered".into()),
                format!("{:.2} %", e.depth * 100.0),
                format!("{:.1}", (end - e.start_ms) as f64 / MS_PER_DAY as f64),
            ]
        })
        .collect()
}

/// The carry's return over the trailing 30 days, annualised (simple), from the 30th day on:
/// (day, APR in %).
pub fn rolling_apr(closes: &[(i64, f64)], window: usize) -> (Vec<i64>, Vec<f64>) {
    closes
        .windows(window + 1)
        .filter(|w| w[0].1 > 0.0)
        .map(|w| (w[window].0, (w[window].1 / w[0].1 - 1.0) * 365.0 / window as f64 * 100.0))
        .unzip()
}

/// The run's cash rate at each of `days` (decimal APR), read again from the config's
/// `[data.cash_rate]`; `None` when it cannot be read (moved files): the window's mean stands in.
fn cash_rate_on(input: &ReportInput, days: &[i64]) -> Option<Vec<f64>> {
    let source = input.config.data.cash_rate.as_ref()?;
    let series = crate::data::dated::load_rate(source, "cash_rate", &mut Vec::new()).ok()?;
    series.on_clock(days).ok()
}

/// Rolling 30-day APR of the carry against the cash rate: above the line the carry earned more
/// than cash.
pub fn rolling_apr_vs_cash_chart(input: &ReportInput, area: &Area) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let ts = input.ledger.ts_ms();
    let closes = daily_closes(ts, column(input, "equity")?);
    let (days, apr) = rolling_apr(&closes, 30);
    let carry = decimate_min_max(&days, &apr, super::draw::BUCKETS);
    let x = super::draw::time_span(ts);
    let day_starts: Vec<i64> = closes.iter().map(|c| c.0).collect();
    let (cash, label) = match cash_rate_on(input, &day_starts) {
        Some(rates) => (decimate_min_max(&day_starts, &rates.iter().map(|r| r * 100.0).collect::<Vec<_>>(), super::draw::BUCKETS), "cash rate".to_string()),
        None => (vec![vec![(x.0, input.metrics.cash_apr * 100.0), (x.1, input.metrics.cash_apr * 100.0)]], "cash rate (mean over the window)".to_string()),
    };
    let y = value_range(carry.iter().chain(cash.iter()), &[0.0]);
    let (plot, side) = panels(area, "Rolling 30-day return (annualised) vs the cash rate")?;
    let mut chart = time_chart(&plot, "APR, trailing 30 days (%)", x, y)?;
    let mut legend = Legend::default();
    draw_zero(&mut chart, x)?;
    draw_lines(&mut chart, &mut legend, &carry, BLUE.stroke_width(2), if apr.is_empty() { "needs 30 days of returns" } else { "carry, trailing 30-day APR" })?;
    draw_lines(&mut chart, &mut legend, &cash, RED_DARK.stroke_width(3), &label)?;
    legend.draw(&side)
}
