//! Drawing primitives shared by every chart: the canvas and PNG encoding, the bundled font,
//! axes and time axes, the palette, legends, lines and levels.
//!
//! Text uses DejaVu Sans compiled into the binary (registered with plotters' ab_glyph backend),
//! so charts render the same on a machine with no system fonts. Long series are decimated with
//! [`decimate_min_max`] before drawing.

use std::sync::OnceLock;

use anyhow::{anyhow, Result};
use chrono::{DateTime, Utc};
use plotters::coord::combinators::{BindKeyPoints, WithKeyPoints};
use plotters::coord::types::{RangedCoordf64, RangedDateTime};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::series::{decimate_min_max, Polyline};

/// Default chart width in pixels.
pub const WIDTH: u32 = 1400;

/// Default chart height in pixels.
pub const HEIGHT: u32 = 560;

/// Points per line after decimation: about one min/max pair per horizontal pixel.
pub(super) const BUCKETS: usize = 1300;

pub(super) const FONT: &str = "sans-serif";

/// The drawing area every chart draws on.
pub type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

pub(super) type TimeChart<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<WithKeyPoints<RangedDateTime<DateTime<Utc>>>, RangedCoordf64>>;

/// Date ticks that fall on calendar boundaries: year starts for long spans, quarter or month
/// starts for shorter ones, whole days for a few weeks; with the label format that fits them.
pub fn calendar_ticks(x0: i64, x1: i64) -> (Vec<DateTime<Utc>>, &'static str) {
    use chrono::{Datelike, Duration, TimeZone};
    let (from, to) = (at(x0), at(x1));
    let days = (x1 - x0) as f64 / crate::time::MS_PER_DAY as f64;
    let months_step = if days > 10.0 * 365.0 {
        24
    } else if days > 2.5 * 365.0 {
        12
    } else if days > 365.0 {
        6
    } else if days > 200.0 {
        3
    } else if days > 50.0 {
        1
    } else {
        0
    };
    let mut ticks = Vec::new();
    if months_step > 0 {
        let mut year = from.year();
        let mut month = 1u32;
        loop {
            let Some(t) = Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0).single() else { break };
            if t > to {
                break;
            }
            if t >= from {
                ticks.push(t);
            }
            month += months_step.min(12);
            if months_step >= 12 {
                year += (months_step / 12) as i32;
                month = 1;
            } else if month > 12 {
                month -= 12;
                year += 1;
            }
        }
        let format = if months_step >= 12 { "%Y" } else { "%Y-%m" };
        if ticks.len() >= 2 {
            return (ticks, format);
        }
    }
    // Short spans: whole days, about eight of them.
    let step = ((days / 8.0).ceil() as i64).max(1);
    let mut t = Utc.with_ymd_and_hms(from.year(), from.month(), from.day(), 0, 0, 0).single().unwrap_or(from);
    while t <= to {
        if t >= from {
            ticks.push(t);
        }
        t += Duration::days(step);
    }
    (ticks, "%Y-%m-%d")
}

pub(super) const BLUE: RGBColor = RGBColor(31, 119, 180);

pub(super) const ORANGE: RGBColor = RGBColor(255, 127, 14);

pub(super) const GREEN_DARK: RGBColor = RGBColor(44, 160, 44);

pub(super) const RED_DARK: RGBColor = RGBColor(214, 39, 40);

pub(super) const PURPLE: RGBColor = RGBColor(148, 103, 189);

pub(super) const BROWN: RGBColor = RGBColor(140, 86, 75);

pub(super) const PINK: RGBColor = RGBColor(227, 119, 194);

pub(super) const GREY: RGBColor = RGBColor(127, 127, 127);

/// Register the bundled font once per process.
pub fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, include_bytes!("../../assets/fonts/DejaVuSans.ttf")).is_ok()
    });
    if ok { Ok(()) } else { Err(anyhow!("the bundled font assets/fonts/DejaVuSans.ttf could not be loaded")) }
}

pub(super) fn draw_err<E: std::fmt::Debug>(err: E) -> anyhow::Error {
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
pub(super) const LEGEND_WIDTH: u32 = 330;

/// Split a chart's canvas into the titled plot panel and the legend panel on its right, so a
/// legend never hides data.
pub fn panels<'b>(area: &Area<'b>, title: &str) -> Result<(Area<'b>, Area<'b>)> {
    let titled = area.margin(8, 0, 0, 0).titled(title, (FONT, 24)).map_err(draw_err)?;
    let (width, _) = titled.dim_in_pixel();
    Ok(titled.split_horizontally(width.saturating_sub(LEGEND_WIDTH)))
}

/// The first and last time of a series (0..1 when empty), for a time chart's x range.
pub fn time_span(ts_ms: &[i64]) -> (i64, i64) {
    (ts_ms.first().copied().unwrap_or(0), ts_ms.last().copied().unwrap_or(1))
}

/// A chart with a date x-axis, labelled, its mesh drawn.
pub fn time_chart<'a, 'b>(area: &'a Area<'b>, y_desc: &str, x: (i64, i64), y: (f64, f64)) -> Result<TimeChart<'a, 'b>> {
    let (x0, x1) = if x.1 > x.0 { x } else { (x.0, x.0 + 1) };
    let (ticks, format) = calendar_ticks(x0, x1);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(52)
        .y_label_area_size(86)
        .build_cartesian_2d((at(x0)..at(x1)).with_key_points(ticks), y.0..y.1)
        .map_err(draw_err)?;
    let date_label = move |d: &DateTime<Utc>| d.format(format).to_string();
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
    let text = trim_zeros(format!("{v:.decimals$}"));
    // A tick a rounding error below zero prints as zero, never "-0".
    if text.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        return "0".into();
    }
    text
}

pub(super) fn trim_zeros(text: String) -> String {
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
}

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
pub enum Glyph {
    /// A short solid line in this style.
    Line(ShapeStyle),
    /// A short dashed line in this style.
    Dashed(ShapeStyle),
    /// A swatch (rectangle) in this style, for shaded bands and areas.
    Band(ShapeStyle),
    /// A triangle marker in this style.
    Triangle(ShapeStyle),
    /// A circle marker in this style, with its radius in pixels.
    Dot(ShapeStyle, u32),
    /// A cross marker in this style.
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
    /// Add an entry: its label and the glyph drawn beside it.
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
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
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

/// The categorical palette for charts with many series (rule sets, venues, runs): 16 colours
/// distinct in hue and lightness, so no two series of one chart share a colour.
pub const PALETTE: [RGBColor; 16] = [
    RGBColor(31, 119, 180),  // blue
    RGBColor(255, 127, 14),  // orange
    RGBColor(44, 160, 44),   // green
    RGBColor(214, 39, 40),   // red
    RGBColor(148, 103, 189), // purple
    RGBColor(140, 86, 75),   // brown
    RGBColor(227, 119, 194), // pink
    RGBColor(150, 150, 150), // grey
    RGBColor(188, 189, 34),  // olive
    RGBColor(23, 190, 207),  // cyan
    RGBColor(57, 59, 121),   // navy
    RGBColor(0, 128, 128),   // teal
    RGBColor(99, 121, 57),   // moss
    RGBColor(0, 0, 0),       // black
    RGBColor(140, 162, 82),  // sage
    RGBColor(231, 186, 82),  // sand
];

/// Colour and line pattern of series `k` of a chart: its own colour from [`PALETTE`], and
/// every other series dashed, so neighbours differ in pattern as well as colour (for readers
/// who cannot tell the colours apart).
pub fn series_style(k: usize) -> (RGBColor, bool) {
    (PALETTE[k % PALETTE.len()], k % 2 == 1)
}

/// Draw series `k` of a chart in its [`series_style`], with its legend entry.
pub fn draw_series_lines<'a, 'b: 'a>(chart: &mut TimeChart<'a, 'b>, legend: &mut Legend, lines: &[Polyline], k: usize, label: &str) -> Result<()> {
    let (colour, dashed) = series_style(k);
    let style = colour.stroke_width(2);
    if !dashed {
        return draw_lines(chart, legend, lines, style, label);
    }
    for line in lines {
        chart.draw_series(DashedLineSeries::new(line.iter().map(|&(t, v)| (at(t), v)), 9, 5, style)).map_err(draw_err)?;
    }
    legend.add(if lines.is_empty() { format!("{label} (no data)") } else { label.to_string() }, Glyph::Dashed(style));
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
pub(super) fn draw_zero<'a, 'b: 'a>(chart: &mut TimeChart<'a, 'b>, x: (i64, i64)) -> Result<()> {
    chart.draw_series(LineSeries::new(vec![(at(x.0), 0.0), (at(x.1), 0.0)], BLACK.mix(0.5).stroke_width(1))).map_err(draw_err)?;
    Ok(())
}

/// Colour of a return on a red–white–green scale saturating at `scale`.
pub(super) fn diverging(value: f64, scale: f64) -> RGBColor {
    let t = (value.abs() / scale).clamp(0.0, 1.0);
    let mix = |from: u8, to: u8| (from as f64 + (to as f64 - from as f64) * t).round() as u8;
    if value >= 0.0 {
        RGBColor(mix(255, 26), mix(255, 150), mix(255, 65))
    } else {
        RGBColor(mix(255, 215), mix(255, 48), mix(255, 39))
    }
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
            let mut chart = ChartBuilder::on(&root).build_cartesian_2d((at(ts[0])..at(ts[ts.len() - 1])).with_key_points(Vec::new()), -50.0..150.0).unwrap();
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

#[cfg(test)]
mod axis_tests {
    use super::format_axis;

    #[test]
    fn ticks_never_print_a_negative_zero() {
        assert_eq!(format_axis(-1e-10), "0");
        assert_eq!(format_axis(-0.0), "0");
        assert_eq!(format_axis(-0.05), "-0.05");
        assert_eq!(format_axis(2_500_000.0), "2.5M");
    }
}
