//! The charts of one run: equity, PnL by component, drawdown, funding, basis, margin, carry APR
//! and the monthly-returns heatmap. Every time chart marks the run's events (entry, exit,
//! rebalance, margin top-up, liquidation) along its bottom edge and lists them in its legend.

use anyhow::{anyhow, Result};
use chrono::{DateTime, Utc};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::series::{self, decimate_min_max, Polyline};
use super::draw::{BUCKETS, FONT, TimeChart, BLUE, ORANGE, GREEN_DARK, RED_DARK, PURPLE, BROWN, PINK, GREY, draw_err, at, value_range, panels, time_chart, Glyph, Legend, draw_lines, draw_level, draw_zero, diverging};
use super::ReportInput;
use crate::measure::ledger::events;
use crate::model::pnl::{ChartGroup, Pnl};

pub use super::draw::{decimate_for_chart, render_png, Area, HEIGHT, WIDTH};
pub use super::study::{compare_chart, histogram, value_heatmap, xy_chart, CompareLine, Heatmap};

/// Mark the run's events. With `on_series`, markers sit on that series (the equity line);
/// otherwise they form a strip along the bottom of the chart. Liquidations also get a red
/// vertical line across the chart.
pub fn draw_events<'a, 'b: 'a>(chart: &mut TimeChart<'a, 'b>, legend: &mut Legend, input: &ReportInput, y: (f64, f64), on_series: Option<&[f64]>) -> Result<()> {
    let ts = input.ledger.ts_ms();
    let flags = input.ledger.event_flags();
    let strip = y.0 + (y.1 - y.0) * 0.03;
    for (flag, name) in series::EVENT_KINDS {
        // Rebalances and top-ups can number thousands; keep one per pixel column.
        let buckets = if flag == events::REBALANCE || flag == events::TOP_UP { BUCKETS } else { usize::MAX };
        let steps = series::event_steps(ts, flags, flag, buckets);
        if steps.is_empty() {
            continue;
        }
        let value = |i: usize| on_series.map(|s| s[i]).filter(|v| v.is_finite()).unwrap_or(strip);
        let points: Vec<(DateTime<Utc>, f64)> = steps.iter().map(|&i| (at(ts[i]), value(i))).collect();
        let label = format!("{name} ({})", flags.iter().filter(|f| **f & i32::from(flag) != 0).count());
        let glyph = match flag {
            events::ENTRY => {
                let style = GREEN_DARK.filled();
                chart.draw_series(points.iter().map(|&p| TriangleMarker::new(p, 8, style))).map_err(draw_err)?;
                Glyph::Triangle(style)
            }
            events::EXIT => {
                let style = BLACK.filled();
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 5, style))).map_err(draw_err)?;
                Glyph::Dot(style, 5)
            }
            events::REBALANCE => {
                let style = GREY.mix(0.8).filled();
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, style))).map_err(draw_err)?;
                Glyph::Dot(style, 3)
            }
            events::TOP_UP => {
                let style = ORANGE.filled();
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 5, style))).map_err(draw_err)?;
                Glyph::Dot(style, 5)
            }
            _ => {
                let line_style = RED_DARK.mix(0.6).stroke_width(1);
                for &p in &points {
                    chart.draw_series(DashedLineSeries::new(vec![(p.0, y.0), (p.0, y.1)], 6, 4, line_style)).map_err(draw_err)?;
                }
                let style = RED_DARK.stroke_width(3);
                chart.draw_series(points.iter().map(|&p| Cross::new(p, 8, style))).map_err(draw_err)?;
                Glyph::Cross(style)
            }
        };
        legend.add(label, glyph);
    }
    Ok(())
}

fn span(input: &ReportInput) -> (i64, i64) {
    super::draw::time_span(input.ledger.ts_ms())
}

pub(super) fn column<'a>(input: &'a ReportInput, name: &str) -> Result<&'a [f64]> {
    input.ledger.column(name).ok_or_else(|| anyhow!("ledger column `{name}` is missing"))
}

/// Equity of the carry, with the same capital held in spot unhedged for context.
pub fn equity(input: &ReportInput, area: &Area) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let ts = input.ledger.ts_ms();
    let equity = column(input, "equity")?;
    let spot = column(input, "spot_price")?;
    let first_spot = spot.first().copied().unwrap_or(f64::NAN);
    let held: Vec<f64> = spot.iter().map(|p| input.initial_capital() * p / first_spot).collect();
    let equity_lines = decimate_min_max(ts, equity, BUCKETS);
    let held_lines = decimate_min_max(ts, &held, BUCKETS);
    let y = value_range(equity_lines.iter().chain(&held_lines), &[]);
    let x = span(input);
    let quote = input.quote_currency();
    // Two panels: equity against spot held, and the carry alone on its own scale (on the
    // equity panel the unhedged spot sets the scale and the carry draws nearly flat).
    let (_, height) = area.dim_in_pixel();
    let (top, bottom) = area.split_vertically(height * 62 / 100);
    let (plot, side) = panels(&top, "Equity: the carry against holding spot unhedged")?;
    let mut chart = time_chart(&plot, &format!("equity ({quote})"), x, y)?;
    let mut legend = Legend::default();
    draw_lines(&mut chart, &mut legend, &held_lines, GREY.stroke_width(2), "spot held unhedged (same capital)")?;
    draw_lines(&mut chart, &mut legend, &equity_lines, BLUE.stroke_width(2), "carry equity")?;
    draw_events(&mut chart, &mut legend, input, y, Some(equity))?;
    legend.draw(&side)?;
    let (carry_label, carry) = carry_earned(input)?;
    let carry_lines = decimate_min_max(ts, &carry, BUCKETS);
    let carry_y = value_range(carry_lines.iter(), &[0.0]);
    let (plot, side) = panels(&bottom, &format!("The carry alone: {carry_label}, cumulative"))?;
    let mut chart = time_chart(&plot, &format!("carry ({quote})"), x, carry_y)?;
    let mut legend = Legend::default();
    draw_lines(&mut chart, &mut legend, &carry_lines, GREEN_DARK.stroke_width(2), "carry earned")?;
    legend.draw(&side)
}

/// Cumulative PnL by component.
pub fn pnl_components(input: &ReportInput, area: &Area) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let ts = input.ledger.ts_ms();
    let get = |name: &str| column(input, name);
    let cumulative = |parts: &[&[f64]]| -> Vec<f64> {
        let mut total = 0.0;
        (0..ts.len())
            .map(|i| {
                total += parts.iter().map(|p| p[i]).sum::<f64>();
                total
            })
            .collect()
    };
    // One line per chart group of the components (Pnl::COMPONENTS), in the groups' order.
    let mut parts: Vec<(&str, Vec<f64>, RGBColor, u32)> = Vec::new();
    for group in [ChartGroup::Funding, ChartGroup::Staking, ChartGroup::Interest, ChartGroup::Borrow, ChartGroup::Basis, ChartGroup::Costs, ChartGroup::Liquidation] {
        let members: Vec<&[f64]> = Pnl::COMPONENTS.iter().filter(|c| c.chart_group == group).map(|c| get(c.column)).collect::<Result<_>>()?;
        let values = cumulative(&members);
        let (label, color, shown) = match group {
            ChartGroup::Funding => ("funding", GREEN_DARK, true),
            ChartGroup::Staking => ("staking", PURPLE, true),
            // Drawn only for a run that borrowed.
            ChartGroup::Borrow => ("borrow (short spot)", PINK, values.last().is_some_and(|b| *b != 0.0)),
            ChartGroup::Basis => ("basis (spot + perp price)", ORANGE, true),
            ChartGroup::Costs => ("fees and slippage", RED_DARK, true),
            ChartGroup::Liquidation => ("liquidation", BROWN, true),
            // Drawn only for a run whose idle cash earned the cash rate.
            ChartGroup::Interest => ("interest on cash", BLUE, values.last().is_some_and(|b| *b != 0.0)),
        };
        if shown {
            parts.push((label, values, color, 2));
        }
    }
    parts.push(("total (= change in equity)", cumulative(&[get("pnl_total")?]), BLACK, 3));
    let lines: Vec<(&str, Vec<Polyline>, RGBColor, u32)> =
        parts.iter().map(|(name, values, color, width)| (*name, decimate_min_max(ts, values, BUCKETS), *color, *width)).collect();
    let y = value_range(lines.iter().flat_map(|l| l.1.iter()), &[0.0]);
    let x = span(input);
    let quote = input.quote_currency();
    let (plot, side) = panels(area, "Cumulative PnL by component")?;
    let mut chart = time_chart(&plot, &format!("cumulative PnL ({quote})"), x, y)?;
    let mut legend = Legend::default();
    draw_zero(&mut chart, x)?;
    for (name, line, color, width) in &lines {
        draw_lines(&mut chart, &mut legend, line, color.stroke_width(*width), name)?;
    }
    draw_events(&mut chart, &mut legend, input, y, None)?;
    legend.draw(&side)
}

/// Underwater chart with the deepest drawdown and the longest stretch below a peak marked.
pub fn drawdown(input: &ReportInput, area: &Area) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let ts = input.ledger.ts_ms();
    let equity = column(input, "equity")?;
    let under = series::underwater(ts, equity, input.initial_capital());
    let percent: Vec<f64> = under.drawdown.iter().map(|d| d * 100.0).collect();
    let lines = decimate_min_max(ts, &percent, BUCKETS);
    let y = value_range(&lines, &[0.0, under.max_drawdown * 100.0 * 1.1]);
    let x = span(input);
    let (plot, side) = panels(area, "Drawdown from the running equity peak")?;
    let mut chart = time_chart(&plot, "drawdown (%)", x, y)?;
    let mut legend = Legend::default();
    if under.longest_to_ms > under.longest_from_ms {
        let days = (under.longest_to_ms - under.longest_from_ms) as f64 / crate::time::MS_PER_DAY as f64;
        let band = RGBColor(70, 130, 180).mix(0.12).filled();
        chart
            .draw_series(std::iter::once(Rectangle::new([(at(under.longest_from_ms), y.0), (at(under.longest_to_ms), y.1)], band)))
            .map_err(draw_err)?;
        legend.add(
            format!(
                "longest underwater: {days:.1} days, {} to {}",
                at(under.longest_from_ms).format("%Y-%m-%d"),
                at(under.longest_to_ms).format("%Y-%m-%d")
            ),
            Glyph::Band(band),
        );
    }
    let fill = RED_DARK.mix(0.25);
    for line in &lines {
        chart
            .draw_series(AreaSeries::new(line.iter().map(|&(t, v)| (at(t), v)), 0.0, fill).border_style(RED_DARK.stroke_width(1)))
            .map_err(draw_err)?;
    }
    legend.add("drawdown (equity / running peak − 1)", Glyph::Band(fill.filled()));
    if let Some(i) = under.trough_index {
        let point = (at(ts[i]), under.drawdown[i] * 100.0);
        let style = BLACK.filled();
        chart.draw_series(std::iter::once(Circle::new(point, 6, style))).map_err(draw_err)?;
        legend.add(format!("max drawdown {:.2} % on {}", under.max_drawdown * 100.0, at(ts[i]).format("%Y-%m-%d")), Glyph::Dot(style, 5));
    }
    draw_events(&mut chart, &mut legend, input, y, None)?;
    legend.draw(&side)
}

/// Funding rate per settlement with the venue's cap and floor, and capped settlements marked.
pub fn funding(input: &ReportInput, area: &Area) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let settle: Vec<i64> = input.settlements.iter().map(|s| s.settlement.settle_ms).collect();
    let rate_pct: Vec<f64> = input.settlements.iter().map(|s| s.settlement.rate * 100.0).collect();
    let lines = decimate_min_max(&settle, &rate_pct, BUCKETS);
    let limits = input.settlement_limits();
    let cap_pct: Vec<f64> = limits.iter().map(|l| l.0.map(|v| v * 100.0).unwrap_or(f64::NAN)).collect();
    let floor_pct: Vec<f64> = limits.iter().map(|l| l.1.map(|v| v * 100.0).unwrap_or(f64::NAN)).collect();
    let cap_lines = decimate_min_max(&settle, &cap_pct, BUCKETS);
    let floor_lines = decimate_min_max(&settle, &floor_pct, BUCKETS);
    let y = value_range(lines.iter().chain(&cap_lines).chain(&floor_lines), &[0.0]);
    let x = span(input);
    let capped: Vec<usize> = (0..input.settlements.len()).filter(|&i| series::at_limit(input.settlements[i].settlement.rate, limits[i].0, limits[i].1)).collect();
    let title = format!("Funding rate per settlement ({} of {} at the cap or floor)", capped.len(), input.settlements.len());
    let (plot, side) = panels(area, &title)?;
    let mut chart = time_chart(&plot, "funding rate (% per settlement)", x, y)?;
    let mut legend = Legend::default();
    draw_zero(&mut chart, x)?;
    draw_lines(&mut chart, &mut legend, &lines, BLUE.stroke_width(1), "rate per settlement (+ = longs pay shorts)")?;
    let describe = |values: &[f64], what: &str| -> String {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        match (finite.iter().copied().reduce(f64::min), finite.iter().copied().reduce(f64::max)) {
            (Some(lo), Some(hi)) if (hi - lo).abs() < 1e-12 => format!("{what} {lo:+.3} %"),
            (Some(lo), Some(hi)) => format!("{what} {lo:+.3} % to {hi:+.3} % (by date and interval)"),
            _ => String::new(),
        }
    };
    if cap_lines.is_empty() {
        legend.add("cap: none configured ([venue] preset or funding_cap)", Glyph::Note);
    } else {
        let style = RED_DARK.stroke_width(2);
        for line in &cap_lines {
            chart.draw_series(DashedLineSeries::new(line.iter().map(|&(t, v)| (at(t), v)), 10, 6, style)).map_err(draw_err)?;
        }
        legend.add(describe(&cap_pct, "cap"), Glyph::Dashed(style));
    }
    if !floor_lines.is_empty() {
        let style = PURPLE.stroke_width(2);
        for line in &floor_lines {
            chart.draw_series(DashedLineSeries::new(line.iter().map(|&(t, v)| (at(t), v)), 10, 6, style)).map_err(draw_err)?;
        }
        legend.add(describe(&floor_pct, "floor"), Glyph::Dashed(style));
    }
    if !capped.is_empty() {
        let style = RED_DARK.stroke_width(2);
        let thinned = thin_by_time(&settle, &capped);
        chart.draw_series(thinned.iter().map(|&i| Circle::new((at(settle[i]), rate_pct[i]), 5, style))).map_err(draw_err)?;
        legend.add(format!("at cap or floor ({})", capped.len()), Glyph::Dot(style, 5));
    }
    draw_events(&mut chart, &mut legend, input, y, None)?;
    legend.draw(&side)
}

/// Keep at most one marker per pixel column.
fn thin_by_time(ts: &[i64], indices: &[usize]) -> Vec<usize> {
    let (Some(&first), Some(&last)) = (ts.first(), ts.last()) else { return Vec::new() };
    let span = (last - first).max(1) as f64;
    let mut out = Vec::new();
    let mut last_bucket = usize::MAX;
    for &i in indices {
        let bucket = ((ts[i] - first) as f64 / span * BUCKETS as f64) as usize;
        if bucket != last_bucket {
            out.push(i);
            last_bucket = bucket;
        }
    }
    out
}

/// The carry earned, cumulative, and what it sums: funding + staking + borrow; a dated (or
/// `best`) run earns its carry as convergence, so the spot and derivative price PnL count too.
pub(super) fn carry_earned(input: &ReportInput) -> Result<(&'static str, Vec<f64>)> {
    let dated = input.config.strategy.instrument != crate::config::InstrumentChoice::Perp;
    let mut names = vec!["pnl_funding", "pnl_staking", "pnl_borrow"];
    if dated {
        names.extend(["pnl_spot", "pnl_perp"]);
    }
    let parts: Vec<&[f64]> = names.iter().map(|n| column(input, n)).collect::<Result<_>>()?;
    let mut sum = 0.0;
    let values = (0..input.ledger.ts_ms().len()).map(|i| { sum += parts.iter().map(|p| p[i]).sum::<f64>(); sum }).collect();
    Ok((if dated { "basis convergence + funding + staking + borrow" } else { "funding + staking + borrow" }, values))
}

/// Basis: perp last price over spot close, in basis points.
pub fn basis(input: &ReportInput, area: &Area) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let ts = input.ledger.ts_ms();
    let spot = column(input, "spot_price")?;
    let perp = column(input, "perp_price")?;
    let bps: Vec<f64> = spot.iter().zip(perp).map(|(s, p)| (p / s - 1.0) * 1e4).collect();
    let lines = decimate_min_max(ts, &bps, BUCKETS);
    let y = value_range(&lines, &[0.0]);
    let x = span(input);
    // A dated (or `best`) run's derivative leg is the instrument held at each step.
    let dated = input.config.strategy.instrument != crate::config::InstrumentChoice::Perp;
    let (title, y_desc, label) = if dated {
        ("Basis: the derivative held (dated contract or perp) over spot close", "derivative / spot − 1 (bp)", "basis in bp (+ = derivative above spot; steps at rolls)")
    } else {
        ("Basis: perp last price over spot close", "perp / spot − 1 (bp)", "basis in bp (+ = perp above spot)")
    };
    let (plot, side) = panels(area, title)?;
    let mut chart = time_chart(&plot, y_desc, x, y)?;
    let mut legend = Legend::default();
    if !input.stale_spans.is_empty() {
        // At least 1/600 of the width, so a one-hour outage in a seven-year run is visible.
        let min_half = (x.1 - x.0) / 1200;
        let band = GREY.mix(0.35).filled();
        chart
            .draw_series(input.stale_spans.iter().map(|s| {
                let mid = (s.from_ms + s.to_ms) / 2;
                let half = ((s.to_ms - s.from_ms) / 2).max(min_half);
                Rectangle::new([(at(mid - half), y.0), (at(mid + half), y.1)], band)
            }))
            .map_err(draw_err)?;
        let steps: usize = input.stale_spans.iter().map(|s| s.steps).sum();
        let what = if input.stale_spot_masked { "masked" } else { "not masked" };
        legend.add(format!("stale spot: {} spans, {steps} steps ({what})", input.stale_spans.len()), Glyph::Band(band));
    }
    draw_zero(&mut chart, x)?;
    draw_lines(&mut chart, &mut legend, &lines, ORANGE.mix(0.6).stroke_width(1), label)?;
    let mean = series::trailing_mean(ts, &bps, 7 * crate::time::MS_PER_DAY);
    draw_lines(&mut chart, &mut legend, &decimate_min_max(ts, &mean, BUCKETS), BROWN.stroke_width(2), "trailing 7-day mean")?;
    draw_events(&mut chart, &mut legend, input, y, None)?;
    legend.draw(&side)
}

/// Distance to liquidation, with the top-up threshold and liquidation drawn.
pub fn margin(input: &ReportInput, area: &Area) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let ts = input.ledger.ts_ms();
    let distance: Vec<f64> = column(input, "liquidation_distance")?.iter().map(|d| d * 100.0).collect();
    let lines = decimate_min_max(ts, &distance, BUCKETS);
    let top_up = input.top_up_distance().map(|d| d * 100.0);
    let extra: Vec<f64> = [0.0].into_iter().chain(top_up).collect();
    let y = value_range(&lines, &extra);
    let x = span(input);
    let (plot, side) = panels(area, "Distance to liquidation: the adverse mark move that would liquidate the perp")?;
    let mut chart = time_chart(&plot, "distance to liquidation (% of mark)", x, y)?;
    let mut legend = Legend::default();
    draw_lines(&mut chart, &mut legend, &lines, BLUE.stroke_width(2), "distance to liquidation (gaps: no perp position)")?;
    match top_up {
        Some(level) => draw_level(&mut chart, &mut legend, x, level, ORANGE, &format!("margin top-up threshold ({level:.1} %)"))?,
        None => legend.add("margin top-up: off (portfolio.top_up_source = \"none\")", Glyph::Note),
    }
    draw_level(&mut chart, &mut legend, x, 0.0, RED_DARK, "liquidation (0 %)")?;
    draw_events(&mut chart, &mut legend, input, y, None)?;
    legend.draw(&side)
}

/// Rolling 30-day realised carry, annualised.
pub fn carry_apr(input: &ReportInput, area: &Area) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let ts = input.ledger.ts_ms();
    let funding = column(input, "pnl_funding")?;
    let staking = column(input, "pnl_staking")?;
    let borrow = column(input, "pnl_borrow")?;
    let carry: Vec<f64> = (0..ts.len()).map(|i| funding[i] + staking[i] + borrow[i]).collect();
    let rolling = series::rolling_carry(ts, column(input, "equity")?, &carry, input.settlements, 30.0);
    let pct = |v: &[f64]| v.iter().map(|x| x * 100.0).collect::<Vec<f64>>();
    let rate_lines = decimate_min_max(ts, &pct(&rolling.funding_rate_apr), BUCKETS);
    let return_lines = decimate_min_max(ts, &pct(&rolling.carry_return_apr), BUCKETS);
    let y = value_range(rate_lines.iter().chain(&return_lines), &[0.0]);
    let x = span(input);
    let (plot, side) = panels(area, "Rolling 30-day realised carry (annualised)")?;
    let mut chart = time_chart(&plot, "APR (%)", x, y)?;
    let mut legend = Legend::default();
    draw_zero(&mut chart, x)?;
    draw_lines(&mut chart, &mut legend, &rate_lines, GREEN_DARK.stroke_width(2), "funding rate earned by the perp position (Σ side × rate)")?;
    draw_lines(&mut chart, &mut legend, &return_lines, PURPLE.stroke_width(2), "carry income / equity (funding + staking − borrow)")?;
    legend.add("starts once 30 days have passed", Glyph::Note);
    draw_events(&mut chart, &mut legend, input, y, None)?;
    legend.draw(&side)
}

/// Height of the monthly heatmap for a number of years.
pub fn heatmap_height(years: usize) -> u32 {
    (150 + 56 * years as u32).max(300)
}

/// Monthly returns as a year × month heatmap, with each year's compounded return and a colour key.
pub fn monthly_heatmap(input: &ReportInput, area: &Area) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let ts = input.ledger.ts_ms();
    let months = series::monthly_returns(ts, column(input, "equity")?, input.initial_capital());
    let yearly = series::yearly_from_monthly(&months);
    let (width, height) = area.dim_in_pixel();
    let (width, height) = (width as i32, height as i32);
    let title_style = TextStyle::from((FONT, 24).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    area.draw(&Text::new("Monthly returns (% of equity at the previous month end)", (width / 2, 12), title_style)).map_err(draw_err)?;
    if yearly.is_empty() {
        return Ok(());
    }
    let (left, top, right_key, bottom) = (110, 90, 170, 60);
    let grid_w = width - left - right_key;
    let grid_h = height - top - bottom;
    let columns = 13;
    let cell_w = grid_w / columns;
    let cell_h = grid_h / yearly.len() as i32;
    let month_scale = months.iter().map(|m| m.value.abs()).fold(0.005, f64::max);
    let year_scale = yearly.iter().map(|y| y.1.abs()).fold(0.005, f64::max);
    let label = TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
    let axis = TextStyle::from((FONT, 17).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
    const NAMES: [&str; 13] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Year"];
    for (c, name) in NAMES.iter().enumerate() {
        let cx = left + c as i32 * cell_w + cell_w / 2;
        area.draw(&Text::new(*name, (cx, top - 16), label.clone())).map_err(draw_err)?;
    }
    area.draw(&Text::new("month (UTC)", (left + grid_w / 2, top - 42), axis.clone())).map_err(draw_err)?;
    area.draw(&Text::new("year", (30, top + grid_h / 2), axis.transform(FontTransform::Rotate270))).map_err(draw_err)?;
    for (r, &(year, growth)) in yearly.iter().enumerate() {
        let y0 = top + r as i32 * cell_h;
        area.draw(&Text::new(year.to_string(), (left - 36, y0 + cell_h / 2), label.clone())).map_err(draw_err)?;
        let cell = |c: i32, value: f64, scale: f64| -> Result<()> {
            let x0 = left + c * cell_w;
            area.draw(&Rectangle::new([(x0, y0), (x0 + cell_w, y0 + cell_h)], diverging(value, scale).filled())).map_err(draw_err)?;
            area.draw(&Rectangle::new([(x0, y0), (x0 + cell_w, y0 + cell_h)], WHITE.stroke_width(2))).map_err(draw_err)?;
            // White text on dark cells.
            let text = if value.abs() / scale > 0.55 { label.color(&WHITE) } else { label.clone() };
            area.draw(&Text::new(format!("{:+.2} %", value * 100.0), (x0 + cell_w / 2, y0 + cell_h / 2), text)).map_err(draw_err)?;
            Ok(())
        };
        for m in months.iter().filter(|m| m.year == year) {
            cell(m.month as i32 - 1, m.value, month_scale)?;
        }
        cell(12, growth, year_scale)?;
    }
    // Colour key for the month cells.
    let key_x = width - right_key + 40;
    let key_h = grid_h.min(260);
    let steps = 40;
    for k in 0..steps {
        let value = month_scale * (1.0 - 2.0 * k as f64 / (steps - 1) as f64);
        let y0 = top + key_h * k / steps;
        let y1 = top + key_h * (k + 1) / steps;
        area.draw(&Rectangle::new([(key_x, y0), (key_x + 24, y1)], diverging(value, month_scale).filled())).map_err(draw_err)?;
    }
    area.draw(&Rectangle::new([(key_x, top), (key_x + 24, top + key_h)], BLACK.mix(0.4).stroke_width(1))).map_err(draw_err)?;
    let key_label = TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (value, y) in [(month_scale, top), (0.0, top + key_h / 2), (-month_scale, top + key_h)] {
        area.draw(&Text::new(format!("{:+.1} %", value * 100.0), (key_x + 30, y), key_label.clone())).map_err(draw_err)?;
    }
    area.draw(&Text::new("legend: month", (key_x - 4, top - 16), key_label.clone())).map_err(draw_err)?;
    area.draw(&Text::new("gain (green) / loss (red)", (left, height - bottom / 2), TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center))))
        .map_err(draw_err)?;
    Ok(())
}
