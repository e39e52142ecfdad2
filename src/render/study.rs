//! Charts of studies across runs: value heatmaps (sweeps), x-y lines (capacity), histograms
//! (Monte Carlo) and overlaid run comparisons (compare, caps, venues).

use anyhow::Result;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::series::Polyline;
use super::draw::{FONT, Area, BLUE, ORANGE, GREEN_DARK, RED_DARK, PURPLE, PALETTE, draw_err, value_range, panels, time_chart, format_axis, Glyph, Legend, draw_series_lines, draw_zero, diverging};

/// A two-parameter heatmap (for sweeps): one cell per (x, y) value pair, coloured on a
/// red–white–green scale centred on `centre`, the value printed in each cell, and a colour key.
pub struct Heatmap<'a> {
    /// Chart title, drawn centred at the top.
    pub title: &'a str,
    /// Name of the parameter along the x axis (columns).
    pub x_desc: &'a str,
    /// Name of the parameter along the y axis (rows).
    pub y_desc: &'a str,
    /// Column labels: the x parameter's values, left to right.
    pub x_labels: &'a [String],
    /// Row labels: the y parameter's values, top to bottom.
    pub y_labels: &'a [String],
    /// `cells[row][column]`, row = y index (drawn top to bottom), None for an empty cell.
    pub cells: &'a [Vec<Option<f64>>],
    /// What a cell's value is, for the key, e.g. "mean Sharpe".
    pub value_desc: &'a str,
    /// Value drawn white: the neutral point of the colour scale (e.g. 0.0).
    pub centre: f64,
    /// Green for values above the centre (else below).
    pub higher_is_better: bool,
    /// The smallest distance from the centre drawn at full colour: the scale spans at least
    /// this much either way, so cells that differ by a few percent stay pale (0: the largest
    /// difference seen is full colour).
    pub min_half_range: f64,
    /// Formats a cell's value for printing in the cell.
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
    let scale = values.iter().map(|v| (v - map.centre).abs()).fold(map.min_half_range.max(1e-12), f64::max);
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
    /// Legend label of the run.
    pub label: String,
    /// The run's series as (epoch ms, value) polylines, one per unbroken stretch.
    pub lines: Vec<Polyline>,
}

/// Overlaid lines for the comparison report.
pub fn compare_chart(area: &Area, title: &str, y_desc: &str, runs: &[CompareLine]) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
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
        draw_series_lines(&mut chart, &mut legend, &run.lines, k, &run.label)?;
    }
    legend.draw(&side)
}

/// Horizontal bars, one per label, each in its series colour (the same as the label's line in
/// the page's other charts), with the value printed at the bar's end.
pub fn bar_chart(area: &Area, title: &str, x_desc: &str, bars: &[(String, f64)]) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let values: Vec<f64> = bars.iter().map(|b| b.1).filter(|v| v.is_finite()).collect();
    let (lo, hi) = values.iter().fold((0.0f64, 0.0f64), |a, v| (a.0.min(*v), a.1.max(*v)));
    let pad = ((hi - lo).abs() * 0.12).max(1e-9);
    let (x0, x1) = (if lo < 0.0 { lo - pad } else { 0.0 }, if hi > 0.0 { hi + pad } else { pad });
    let n = bars.len().max(1);
    let titled = area.margin(8, 0, 0, 0).titled(title, (FONT, 24)).map_err(draw_err)?;
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    let mut chart = ChartBuilder::on(&titled)
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(330)
        .build_cartesian_2d(x0..x1, 0f64..n as f64)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .disable_y_mesh()
        .y_labels(n * 2 + 1)
        .y_label_formatter(&|v| {
            // Labels sit at the bars' centres (k + 0.5), top to bottom.
            let k = (n as f64 - v - 0.5).round();
            if (n as f64 - v - 0.5 - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < labels.len() { labels[k as usize].clone() } else { String::new() }
        })
        .x_label_formatter(&|v| format_axis(*v))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()
        .map_err(draw_err)?;
    for (k, (_, value)) in bars.iter().enumerate() {
        if !value.is_finite() {
            continue;
        }
        let top = n as f64 - k as f64 - 0.15;
        let bottom = n as f64 - k as f64 - 0.85;
        let (colour, _) = super::draw::series_style(k);
        chart.draw_series(std::iter::once(Rectangle::new([(0.0, bottom), (*value, top)], colour.filled()))).map_err(draw_err)?;
        let anchor = if *value >= 0.0 { Pos::new(HPos::Left, VPos::Center) } else { Pos::new(HPos::Right, VPos::Center) };
        chart
            .draw_series(std::iter::once(Text::new(format!(" {} ", format_axis((value * 100.0).round() / 100.0)), (*value, (top + bottom) / 2.0), TextStyle::from((FONT, 14).into_font()).pos(anchor))))
            .map_err(draw_err)?;
    }
    Ok(())
}
