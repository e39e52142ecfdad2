//! The report's charts, drawn with plotters into RGB buffers and encoded as PNG.
//!
//! Text uses DejaVu Sans compiled into the binary (registered with plotters' ab_glyph backend),
//! so charts render the same on a machine with no system fonts. Long series are decimated with
//! [`decimate_min_max`] before drawing. Every time chart marks the run's events (entry, exit,
//! rebalance, margin top-up, liquidation) along its bottom edge and lists them in its legend.

use std::sync::OnceLock;

use anyhow::{anyhow, Result};
use chrono::{DateTime, Utc};
use plotters::coord::types::{RangedCoordf64, RangedDateTime};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::series::{self, decimate_min_max, Polyline};
use super::ReportInput;
use crate::measure::ledger::events;
use crate::model::pnl::{ChartGroup, Pnl};

/// Default chart size in pixels.
pub const WIDTH: u32 = 1400;
pub const HEIGHT: u32 = 560;
/// Points per line after decimation: about one min/max pair per horizontal pixel.
const BUCKETS: usize = 1300;
const FONT: &str = "sans-serif";

/// The drawing area every chart draws on.
pub type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type TimeChart<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedDateTime<DateTime<Utc>>, RangedCoordf64>>;

const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN_DARK: RGBColor = RGBColor(44, 160, 44);
const RED_DARK: RGBColor = RGBColor(214, 39, 40);
const PURPLE: RGBColor = RGBColor(148, 103, 189);
const BROWN: RGBColor = RGBColor(140, 86, 75);
const PINK: RGBColor = RGBColor(227, 119, 194);
const GREY: RGBColor = RGBColor(127, 127, 127);

/// Register the bundled font once per process.
pub fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, include_bytes!("../../assets/fonts/DejaVuSans.ttf")).is_ok()
    });
    if ok { Ok(()) } else { Err(anyhow!("the bundled font assets/fonts/DejaVuSans.ttf could not be loaded")) }
}

fn draw_err<E: std::fmt::Debug>(err: E) -> anyhow::Error {
    anyhow!("drawing a chart: {err:?}")
}

/// Draw into a white `width × height` RGB canvas and encode it as PNG.
pub fn render_png(width: u32, height: u32, draw: impl FnOnce(&Area) -> Result<()>) -> Result<Vec<u8>> {
    ensure_font()?;
    let mut pixels = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        draw(&root)?;
        root.present().map_err(draw_err)?;
    }
    encode_png(&pixels, width, height)
}

/// Encode an RGB buffer as PNG (fast compression: the report renders in well under a second).
pub fn encode_png(pixels: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(|e| anyhow!("encoding PNG: {e}"))?;
    writer.write_image_data(pixels).map_err(|e| anyhow!("encoding PNG: {e}"))?;
    writer.finish().map_err(|e| anyhow!("encoding PNG: {e}"))?;
    Ok(bytes)
}

/// Epoch ms as a chart coordinate.
pub fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The value range of some polylines and extra values, padded by 6 %.
pub fn value_range<'a>(lines: impl IntoIterator<Item = &'a Polyline>, extra: &[f64]) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for line in lines {
        for &(_, v) in line {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    for &v in extra.iter().filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() || !hi.is_finite() {
        return (-1.0, 1.0);
    }
    let span = hi - lo;
    let pad = if span > 0.0 { span * 0.06 } else { lo.abs().max(1.0) * 0.05 };
    (lo - pad, hi + pad)
}

/// Width of the legend panel to the right of each time chart.
const LEGEND_WIDTH: u32 = 330;

/// Split a chart's canvas into the titled plot panel and the legend panel on its right, so a
/// legend never hides data.
pub fn panels<'b>(area: &Area<'b>, title: &str) -> Result<(Area<'b>, Area<'b>)> {
    let titled = area.margin(8, 0, 0, 0).titled(title, (FONT, 24)).map_err(draw_err)?;
    let (width, _) = titled.dim_in_pixel();
    Ok(titled.split_horizontally(width.saturating_sub(LEGEND_WIDTH)))
}

/// A chart with a date x-axis, labelled, its mesh drawn.
pub fn time_chart<'a, 'b>(area: &'a Area<'b>, y_desc: &str, x: (i64, i64), y: (f64, f64)) -> Result<TimeChart<'a, 'b>> {
    let (x0, x1) = if x.1 > x.0 { x } else { (x.0, x.0 + 1) };
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(52)
        .y_label_area_size(86)
        .build_cartesian_2d(at(x0)..at(x1), y.0..y.1)
        .map_err(draw_err)?;
    let long = x1 - x0 > 2 * 365 * crate::time::MS_PER_DAY;
    let date_label = move |d: &DateTime<Utc>| if long { d.format("%Y-%m").to_string() } else { d.format("%Y-%m-%d").to_string() };
    chart
        .configure_mesh()
        .x_desc("date (UTC)")
        .y_desc(y_desc)
        .x_labels(8)
        .y_labels(8)
        .x_label_formatter(&date_label)
        .y_label_formatter(&|v: &f64| format_axis(*v))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(draw_err)?;
    Ok(chart)
}

/// Axis numbers with no trailing zeros: `150000`, `2.5`, `-0.125`, `1.25M`.
pub fn format_axis(v: f64) -> String {
    let a = v.abs();
    if a < 1e-12 {
        return "0".into();
    }
    if a >= 1e6 {
        return format!("{}M", trim_zeros(format!("{:.2}", v / 1e6)));
    }
    let decimals = (3 - a.log10().floor() as i32).clamp(0, 5) as usize;
    trim_zeros(format!("{v:.decimals$}"))
}

fn trim_zeros(text: String) -> String {
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
}

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
pub enum Glyph {
    Line(ShapeStyle),
    Dashed(ShapeStyle),
    Band(ShapeStyle),
    Triangle(ShapeStyle),
    Dot(ShapeStyle, u32),
    Cross(ShapeStyle),
    /// Text only (a note such as "cap: not configured").
    Note,
}

/// The entries of a chart's legend, drawn in the panel beside the plot.
#[derive(Default)]
pub struct Legend {
    entries: Vec<(String, Glyph)>,
}

impl Legend {
    pub fn add(&mut self, label: impl Into<String>, glyph: Glyph) {
        self.entries.push((label.into(), glyph));
    }

    /// Draw the legend box at the top of `area`, wrapping long labels.
    pub fn draw(&self, area: &Area) -> Result<()> {
        const LINE: i32 = 19;
        const WRAP: usize = 36;
        let lines: Vec<(Vec<String>, Glyph)> = self.entries.iter().map(|(label, glyph)| (wrap(label, WRAP), *glyph)).collect();
        let height = 16 + lines.iter().map(|(l, _)| l.len() as i32 * LINE + 4).sum::<i32>();
        let (width, _) = area.dim_in_pixel();
        let (left, top, right) = (6, 14, width as i32 - 8);
        area.draw(&Rectangle::new([(left, top), (right, top + height)], RGBColor(250, 250, 251).filled())).map_err(draw_err)?;
        area.draw(&Rectangle::new([(left, top), (right, top + height)], BLACK.mix(0.3).stroke_width(1))).map_err(draw_err)?;
        let text = TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        let mut y = top + 8 + LINE / 2;
        for (label_lines, glyph) in &lines {
            let (gx, gy) = (left + 10, y);
            match *glyph {
                Glyph::Line(style) => area.draw(&PathElement::new(vec![(gx, gy), (gx + 24, gy)], style)),
                Glyph::Dashed(style) => {
                    area.draw(&PathElement::new(vec![(gx, gy), (gx + 9, gy)], style)).map_err(draw_err)?;
                    area.draw(&PathElement::new(vec![(gx + 15, gy), (gx + 24, gy)], style))
                }
                Glyph::Band(style) => area.draw(&Rectangle::new([(gx, gy - 6), (gx + 24, gy + 6)], style)),
                Glyph::Triangle(style) => area.draw(&TriangleMarker::new((gx + 12, gy), 7, style)),
                Glyph::Dot(style, size) => area.draw(&Circle::new((gx + 12, gy), size, style)),
                Glyph::Cross(style) => area.draw(&Cross::new((gx + 12, gy), 6, style)),
                Glyph::Note => Ok(()),
            }
            .map_err(draw_err)?;
            for line in label_lines {
                area.draw(&Text::new(line.clone(), (left + 42, y), text.clone())).map_err(draw_err)?;
                y += LINE;
            }
            y += 4;
        }
        Ok(())
    }
}

/// Break a label into lines of at most `width` characters, at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

/// Draw decimated polylines as one legend entry.
pub fn draw_lines<'a, 'b: 'a>(chart: &mut TimeChart<'a, 'b>, legend: &mut Legend, lines: &[Polyline], style: ShapeStyle, label: &str) -> Result<()> {
    for line in lines {
        if style.stroke_width > 1 {
            // plotters joins thick polylines with miters, which shoot spikes past the data at the
            // sharp turns of a min/max-decimated line; separate segments have no joins.
            chart
                .draw_series(line.windows(2).map(|w| PathElement::new(vec![(at(w[0].0), w[0].1), (at(w[1].0), w[1].1)], style)))
                .map_err(draw_err)?;
        } else {
            chart.draw_series(LineSeries::new(line.iter().map(|&(t, v)| (at(t), v)), style)).map_err(draw_err)?;
        }
    }
    legend.add(if lines.is_empty() { format!("{label} (no data)") } else { label.to_string() }, Glyph::Line(style));
    Ok(())
}

/// A horizontal dashed reference line across the chart.
pub fn draw_level<'a, 'b: 'a>(chart: &mut TimeChart<'a, 'b>, legend: &mut Legend, x: (i64, i64), level: f64, color: RGBColor, label: &str) -> Result<()> {
    let style = color.stroke_width(2);
    chart.draw_series(DashedLineSeries::new(vec![(at(x.0), level), (at(x.1), level)], 10, 6, style)).map_err(draw_err)?;
    legend.add(label, Glyph::Dashed(style));
    Ok(())
}

/// A thin solid line at zero.
fn draw_zero<'a, 'b: 'a>(chart: &mut TimeChart<'a, 'b>, x: (i64, i64)) -> Result<()> {
    chart.draw_series(LineSeries::new(vec![(at(x.0), 0.0), (at(x.1), 0.0)], BLACK.mix(0.5).stroke_width(1))).map_err(draw_err)?;
    Ok(())
}

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
    let ts = input.ledger.ts_ms();
    (ts.first().copied().unwrap_or(0), ts.last().copied().unwrap_or(1))
}

fn column<'a>(input: &'a ReportInput, name: &str) -> Result<&'a [f64]> {
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
    let (plot, side) = panels(area, "Equity: the carry against holding spot unhedged")?;
    let mut chart = time_chart(&plot, &format!("equity ({quote})"), x, y)?;
    let mut legend = Legend::default();
    draw_lines(&mut chart, &mut legend, &held_lines, GREY.stroke_width(2), "spot held unhedged (same capital)")?;
    draw_lines(&mut chart, &mut legend, &equity_lines, BLUE.stroke_width(2), "carry equity")?;
    draw_events(&mut chart, &mut legend, input, y, Some(equity))?;
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
    for group in [ChartGroup::Funding, ChartGroup::Staking, ChartGroup::Borrow, ChartGroup::Basis, ChartGroup::Costs, ChartGroup::Liquidation] {
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
    let settle: Vec<i64> = input.settlements.iter().map(|s| s.settle_ms).collect();
    let rate_pct: Vec<f64> = input.settlements.iter().map(|s| s.rate * 100.0).collect();
    let lines = decimate_min_max(&settle, &rate_pct, BUCKETS);
    let limits = input.settlement_limits();
    let cap_pct: Vec<f64> = limits.iter().map(|l| l.0.map(|v| v * 100.0).unwrap_or(f64::NAN)).collect();
    let floor_pct: Vec<f64> = limits.iter().map(|l| l.1.map(|v| v * 100.0).unwrap_or(f64::NAN)).collect();
    let cap_lines = decimate_min_max(&settle, &cap_pct, BUCKETS);
    let floor_lines = decimate_min_max(&settle, &floor_pct, BUCKETS);
    let y = value_range(lines.iter().chain(&cap_lines).chain(&floor_lines), &[0.0]);
    let x = span(input);
    let capped: Vec<usize> = (0..input.settlements.len()).filter(|&i| series::at_limit(input.settlements[i].rate, limits[i].0, limits[i].1)).collect();
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
    let (plot, side) = panels(area, "Basis: perp last price over spot close")?;
    let mut chart = time_chart(&plot, "perp / spot − 1 (bp)", x, y)?;
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
    draw_lines(&mut chart, &mut legend, &lines, ORANGE.mix(0.6).stroke_width(1), "basis in bp (+ = perp above spot)")?;
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

/// Colour of a return on a red–white–green scale saturating at `scale`.
fn diverging(value: f64, scale: f64) -> RGBColor {
    let t = (value.abs() / scale).clamp(0.0, 1.0);
    let mix = |from: u8, to: u8| (from as f64 + (to as f64 - from as f64) * t).round() as u8;
    if value >= 0.0 {
        RGBColor(mix(255, 26), mix(255, 150), mix(255, 65))
    } else {
        RGBColor(mix(255, 215), mix(255, 48), mix(255, 39))
    }
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

/// A two-parameter heatmap (for sweeps): one cell per (x, y) value pair, coloured on a
/// red–white–green scale centred on `centre`, the value printed in each cell, and a colour key.
pub struct Heatmap<'a> {
    pub title: &'a str,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub x_labels: &'a [String],
    pub y_labels: &'a [String],
    /// `cells[row][column]`, row = y index (drawn top to bottom), None for an empty cell.
    pub cells: &'a [Vec<Option<f64>>],
    /// What a cell's value is, for the key, e.g. "mean Sharpe".
    pub value_desc: &'a str,
    pub centre: f64,
    /// Green for values above the centre (else below).
    pub higher_is_better: bool,
    pub format: fn(f64) -> String,
}

/// Draw a [`Heatmap`].
pub fn value_heatmap(map: &Heatmap, area: &Area) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let (width, height) = area.dim_in_pixel();
    let (width, height) = (width as i32, height as i32);
    let title_style = TextStyle::from((FONT, 24).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    area.draw(&Text::new(map.title, (width / 2, 12), title_style)).map_err(draw_err)?;
    let (left, top, right_key, bottom) = (190, 70, 230, 90);
    let columns = map.x_labels.len().max(1) as i32;
    let rows = map.y_labels.len().max(1) as i32;
    let cell_w = (width - left - right_key) / columns;
    let cell_h = (height - top - bottom) / rows;
    let values: Vec<f64> = map.cells.iter().flatten().flatten().copied().filter(|v| v.is_finite()).collect();
    let scale = values.iter().map(|v| (v - map.centre).abs()).fold(1e-12, f64::max);
    let font_size = if columns > 12 { 12 } else { 15 };
    let label = TextStyle::from((FONT, font_size).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
    let axis = TextStyle::from((FONT, 17).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
    for (c, name) in map.x_labels.iter().enumerate() {
        let cx = left + c as i32 * cell_w + cell_w / 2;
        area.draw(&Text::new(name.as_str(), (cx, top + rows * cell_h + 16), label.clone())).map_err(draw_err)?;
    }
    area.draw(&Text::new(map.x_desc, (left + columns * cell_w / 2, top + rows * cell_h + 50), axis.clone())).map_err(draw_err)?;
    area.draw(&Text::new(map.y_desc, (24, top + rows * cell_h / 2), axis.transform(FontTransform::Rotate270))).map_err(draw_err)?;
    let row_label = TextStyle::from((FONT, font_size).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
    for (r, name) in map.y_labels.iter().enumerate() {
        let y0 = top + r as i32 * cell_h;
        area.draw(&Text::new(name.as_str(), (left - 10, y0 + cell_h / 2), row_label.clone())).map_err(draw_err)?;
        for c in 0..columns {
            let x0 = left + c * cell_w;
            let value = map.cells.get(r).and_then(|row| row.get(c as usize)).copied().flatten();
            let colour = match value {
                Some(v) if v.is_finite() => diverging(if map.higher_is_better { v - map.centre } else { map.centre - v }, scale),
                _ => RGBColor(235, 235, 235),
            };
            area.draw(&Rectangle::new([(x0, y0), (x0 + cell_w, y0 + cell_h)], colour.filled())).map_err(draw_err)?;
            area.draw(&Rectangle::new([(x0, y0), (x0 + cell_w, y0 + cell_h)], WHITE.stroke_width(2))).map_err(draw_err)?;
            if cell_w >= 40 && cell_h >= 18 {
                let text = match value {
                    Some(v) if v.is_finite() => (map.format)(v),
                    _ => "–".into(),
                };
                let style = if value.is_some_and(|v| ((v - map.centre) / scale).abs() > 0.55) { label.color(&WHITE) } else { label.clone() };
                area.draw(&Text::new(text, (x0 + cell_w / 2, y0 + cell_h / 2), style)).map_err(draw_err)?;
            }
        }
    }
    let key_x = width - right_key + 50;
    let key_h = (rows * cell_h).min(280);
    let steps = 40;
    for k in 0..steps {
        let value = scale * (1.0 - 2.0 * k as f64 / (steps - 1) as f64);
        let (y0, y1) = (top + key_h * k / steps, top + key_h * (k + 1) / steps);
        let shade = if map.higher_is_better { value } else { -value };
        area.draw(&Rectangle::new([(key_x, y0), (key_x + 24, y1)], diverging(shade, scale).filled())).map_err(draw_err)?;
    }
    area.draw(&Rectangle::new([(key_x, top), (key_x + 24, top + key_h)], BLACK.mix(0.4).stroke_width(1))).map_err(draw_err)?;
    let key_label = TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (value, y) in [(map.centre + scale, top), (map.centre, top + key_h / 2), (map.centre - scale, top + key_h)] {
        area.draw(&Text::new((map.format)(value), (key_x + 30, y), key_label.clone())).map_err(draw_err)?;
    }
    area.draw(&Text::new(format!("legend: {}", map.value_desc), (key_x - 20, top - 16), key_label.clone())).map_err(draw_err)?;
    Ok(())
}

/// Lines over a numeric x axis (log scale when `log_x`), for curves such as capacity.
pub fn xy_chart(area: &Area, title: &str, x_desc: &str, y_desc: &str, lines: &[(String, Vec<(f64, f64)>)], log_x: bool) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    const PALETTE: [RGBColor; 8] = [BLUE, ORANGE, GREEN_DARK, RED_DARK, PURPLE, BROWN, PINK, GREY];
    let points: Vec<(f64, f64)> = lines.iter().flat_map(|l| l.1.iter().copied()).filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
    let (mut x0, mut x1) = points.iter().fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.0), a.1.max(p.0)));
    if x0 >= x1 {
        (x0, x1) = (x0.min(1.0), x0.max(1.0) + 1.0);
    }
    let y = value_range(std::iter::empty(), &points.iter().map(|p| p.1).chain([0.0]).collect::<Vec<f64>>());
    let (plot, side) = panels(area, title)?;
    let mut legend = Legend::default();
    let label_style = (FONT, 16).into_font();
    if log_x {
        let mut chart = ChartBuilder::on(&plot)
            .margin(10)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d((x0..x1).log_scale(), y.0..y.1)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .axis_desc_style(label_style.clone())
            .label_style((FONT, 14))
            .x_label_formatter(&|v| format_axis(*v))
            .y_label_formatter(&|v| format_axis(*v))
            .draw()
            .map_err(draw_err)?;
        chart.draw_series(LineSeries::new([(x0, 0.0), (x1, 0.0)], BLACK.mix(0.5).stroke_width(1))).map_err(draw_err)?;
        for (k, (label, pts)) in lines.iter().enumerate() {
            let colour = PALETTE[k % PALETTE.len()];
            chart.draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2))).map_err(draw_err)?;
            chart.draw_series(pts.iter().map(|p| Circle::new(*p, 4, colour.filled()))).map_err(draw_err)?;
            legend.add(label.clone(), Glyph::Line(colour.stroke_width(2)));
        }
    } else {
        let mut chart = ChartBuilder::on(&plot)
            .margin(10)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(x0..x1, y.0..y.1)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .axis_desc_style(label_style)
            .label_style((FONT, 14))
            .x_label_formatter(&|v| format_axis(*v))
            .y_label_formatter(&|v| format_axis(*v))
            .draw()
            .map_err(draw_err)?;
        for (k, (label, pts)) in lines.iter().enumerate() {
            let colour = PALETTE[k % PALETTE.len()];
            chart.draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2))).map_err(draw_err)?;
            legend.add(label.clone(), Glyph::Line(colour.stroke_width(2)));
        }
    }
    legend.draw(&side)
}

/// A histogram of `values` in `bins` equal bins, with labelled vertical markers (e.g. percentiles).
pub fn histogram(area: &Area, title: &str, x_desc: &str, values: &[f64], bins: usize, markers: &[(String, f64)]) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (lo, hi) = finite.iter().fold((f64::MAX, f64::MIN), |a, v| (a.0.min(*v), a.1.max(*v)));
    let (lo, hi) = if lo < hi { (lo, hi) } else { (lo - 1.0, lo + 1.0) };
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for v in &finite {
        counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    let (plot, side) = panels(area, title)?;
    let mut chart = ChartBuilder::on(&plot)
        .margin(10)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(lo..hi, 0.0..top)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("paths (count)")
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 14))
        .x_label_formatter(&|v| format_axis(*v))
        .draw()
        .map_err(draw_err)?;
    chart
        .draw_series(counts.iter().enumerate().map(|(k, &c)| {
            let x = lo + k as f64 * width;
            Rectangle::new([(x, 0.0), (x + width, c as f64)], BLUE.mix(0.75).filled())
        }))
        .map_err(draw_err)?;
    let mut legend = Legend::default();
    legend.add(format!("paths ({})", finite.len()), Glyph::Band(BLUE.mix(0.75).filled()));
    const MARKS: [RGBColor; 4] = [RED_DARK, GREEN_DARK, ORANGE, PURPLE];
    for (k, (label, x)) in markers.iter().enumerate() {
        let colour = MARKS[k % MARKS.len()];
        chart.draw_series(LineSeries::new([(*x, 0.0), (*x, top)], colour.stroke_width(2))).map_err(draw_err)?;
        legend.add(label.clone(), Glyph::Line(colour.stroke_width(2)));
    }
    legend.draw(&side)
}

/// One overlaid series per run, for `basis compare`.
pub struct CompareLine {
    pub label: String,
    pub lines: Vec<Polyline>,
}

/// Overlaid lines for the comparison report.
pub fn compare_chart(area: &Area, title: &str, y_desc: &str, runs: &[CompareLine]) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    const PALETTE: [RGBColor; 8] = [BLUE, ORANGE, GREEN_DARK, RED_DARK, PURPLE, BROWN, PINK, GREY];
    let mut x = (i64::MAX, i64::MIN);
    for point in runs.iter().flat_map(|r| r.lines.iter()).flatten() {
        x = (x.0.min(point.0), x.1.max(point.0));
    }
    if x.0 > x.1 {
        x = (0, 1);
    }
    let y = value_range(runs.iter().flat_map(|r| r.lines.iter()), &[0.0]);
    let (plot, side) = panels(area, title)?;
    let mut chart = time_chart(&plot, y_desc, x, y)?;
    let mut legend = Legend::default();
    draw_zero(&mut chart, x)?;
    for (k, run) in runs.iter().enumerate() {
        draw_lines(&mut chart, &mut legend, &run.lines, PALETTE[k % PALETTE.len()].stroke_width(2), &run.label)?;
    }
    legend.draw(&side)
}

/// Decimate for a comparison line.
pub fn decimate_for_chart(ts_ms: &[i64], values: &[f64]) -> Vec<Polyline> {
    decimate_min_max(ts_ms, values, BUCKETS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A min/max-decimated line turns sharply at every point: no pixel of it may land outside
    /// the data's value range (plotters' mitred joins used to add spikes of several percent).
    #[test]
    fn thick_decimated_lines_stay_inside_the_data_range() {
        let (width, height) = (900u32, 400u32);
        let ts: Vec<i64> = (0..20_000).map(|i| i * 60_000).collect();
        let values: Vec<f64> = (0..20_000).map(|i| if i % 2 == 0 { 10.0 } else { 90.0 } + (i % 7) as f64).collect();
        let lines = decimate_min_max(&ts, &values, BUCKETS);
        let mut pixels = vec![255u8; (width * height * 3) as usize];
        let (top, bottom);
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
            let mut chart = ChartBuilder::on(&root).build_cartesian_2d(at(ts[0])..at(ts[ts.len() - 1]), -50.0..150.0).unwrap();
            let mut legend = Legend::default();
            draw_lines(&mut chart, &mut legend, &lines, BLUE.stroke_width(2), "zigzag").unwrap();
            top = chart.backend_coord(&(at(ts[0]), 96.0)).1;
            bottom = chart.backend_coord(&(at(ts[0]), 10.0)).1;
            root.present().unwrap();
        }
        let blue_rows: Vec<i32> = (0..height as i32)
            .filter(|&y| (0..width as usize).any(|x| {
                let i = (y as usize * width as usize + x) * 3;
                pixels[i] < 100 && pixels[i + 2] > 150
            }))
            .collect();
        let (first, last) = (blue_rows[0], blue_rows[blue_rows.len() - 1]);
        assert!(first >= top - 2 && last <= bottom + 2, "line spans rows {first}..{last}, data spans {top}..{bottom}");
    }
}
