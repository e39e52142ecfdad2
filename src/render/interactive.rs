//! Interactive charts in the report page, still one offline file: the time series of a run
//! embedded as JSON (min/max-decimated to at most 2,500 buckets), each view re-decimated from
//! those rows to the plot's width on every zoom, drawn by uPlot (1.6.31, MIT, inlined from
//! `assets/uplot/`) for every time chart but the monthly ones, with zoom (drag to select, shift + wheel), pan (the ◀ ▶ buttons, or shift +
//! drag), double-click to reset, a crosshair shared across charts and the values under it in
//! each chart's legend. Each chart's PNG stays in its section: it is what prints, and what shows
//! without JavaScript. A Content-Security-Policy forbids every network request.
//!
//! `index.html#selftest` runs a check in the page (zoom the first chart, move the cursor, look
//! for errors and for any resource loaded) and writes its findings into `#selftest-result`, for
//! the headless-browser test.

use serde::Serialize;

use super::ReportInput;

/// uPlot's script, inlined.
const UPLOT_JS: &str = include_str!("../../assets/uplot/uPlot.iife.min.js");
/// uPlot's style sheet, inlined.
const UPLOT_CSS: &str = include_str!("../../assets/uplot/uPlot.min.css");
/// uPlot's licence, kept in the page.
const UPLOT_LICENSE: &str = include_str!("../../assets/uplot/LICENSE");

/// Buckets embedded per chart, two rows (a bucket's low and high) each: the finest detail a
/// zoom can show. The page draws each view re-decimated from these rows to its pixel width.
const BUCKETS: usize = 2500;

/// One line of a chart.
#[derive(Serialize)]
pub struct Line {
    /// Legend label.
    pub label: String,
    /// Values at the chart's x, `null` where unknown.
    pub values: Vec<Option<f64>>,
    /// CSS colour.
    pub stroke: &'static str,
    /// Dash pattern in pixels, empty for solid.
    pub dash: Vec<u32>,
    /// Drawn as markers at its values (no line between them): events, settlements at a limit.
    pub points: bool,
}

/// One interactive chart: the id of the section it belongs to, its y label and its lines on a
/// shared x (seconds since the epoch, UTC).
#[derive(Serialize)]
pub struct Plot {
    /// Id of the chart's `<section>` (its PNG's file stem).
    pub section: String,
    /// y-axis label with its unit.
    pub y_label: String,
    /// Shared x, epoch seconds.
    pub x: Vec<f64>,
    /// The lines.
    pub lines: Vec<Line>,
    /// Shaded spans of x (epoch seconds, from and to), e.g. stale-spot steps.
    pub bands: Vec<[f64; 2]>,
    /// What the bands are, for the chart's note; empty without bands.
    pub band_label: String,
}

/// Colours and dashes for the lines of one interactive chart: the first twelve colours of
/// `draw::PALETTE`, every other line dashed.
pub const STYLES: [(&str, &[u32]); 12] = [
    ("#1f77b4", &[]),
    ("#ff7f0e", &[8, 4]),
    ("#2ca02c", &[]),
    ("#d62728", &[8, 4]),
    ("#9467bd", &[]),
    ("#8c564b", &[8, 4]),
    ("#e377c2", &[]),
    ("#969696", &[8, 4]),
    ("#bcbd22", &[]),
    ("#17becf", &[8, 4]),
    ("#393b79", &[]),
    ("#008080", &[8, 4]),
];

/// Decimate `columns` on a shared x: the steps are cut into at most 2,500 buckets, and
/// each bucket becomes two rows (at its first and last time) holding each line's low and high
/// inside it, in the order they occurred, so no line loses an extreme.
pub fn decimate(ts_ms: &[i64], columns: &[&[f64]]) -> (Vec<f64>, Vec<Vec<Option<f64>>>) {
    let n = ts_ms.len();
    let bucket = n.div_ceil(BUCKETS).max(1);
    // Six significant digits: far below a pixel, and a third of the bytes of a full f64.
    let finite = |v: f64| if v.is_finite() { Some(round_significant(v)) } else { None };
    if bucket <= 2 {
        return (ts_ms.iter().map(|t| *t as f64 / 1000.0).collect(), columns.iter().map(|c| c.iter().map(|v| finite(*v)).collect()).collect());
    }
    let mut x = Vec::with_capacity(2 * n.div_ceil(bucket));
    let mut out: Vec<Vec<Option<f64>>> = columns.iter().map(|_| Vec::with_capacity(2 * n.div_ceil(bucket))).collect();
    let mut from = 0;
    while from < n {
        let to = (from + bucket).min(n);
        x.push(ts_ms[from] as f64 / 1000.0);
        x.push(ts_ms[to - 1] as f64 / 1000.0);
        for (column, rows) in columns.iter().zip(out.iter_mut()) {
            let (mut lo, mut hi): (Option<usize>, Option<usize>) = (None, None);
            for k in from..to {
                if !column[k].is_finite() {
                    continue;
                }
                if lo.is_none_or(|l| column[k] < column[l]) {
                    lo = Some(k);
                }
                if hi.is_none_or(|h| column[k] > column[h]) {
                    hi = Some(k);
                }
            }
            match (lo, hi) {
                (Some(l), Some(h)) if l <= h => {
                    rows.push(finite(column[l]));
                    rows.push(finite(column[h]));
                }
                (Some(l), Some(h)) => {
                    rows.push(finite(column[h]));
                    rows.push(finite(column[l]));
                }
                _ => {
                    rows.push(None);
                    rows.push(None);
                }
            }
        }
        from = to;
    }
    (x, out)
}

/// `v` to six significant digits.
fn round_significant(v: f64) -> f64 {
    if v == 0.0 {
        return 0.0;
    }
    format!("{v:.5e}").parse().unwrap_or(v)
}

/// One interactive chart for `section`: `lines` on the steps `ts_ms`, decimated, in the
/// palette's styles.
pub fn plot(section: &str, y_label: &str, ts_ms: &[i64], lines: Vec<(String, Vec<f64>)>) -> Plot {
    let columns: Vec<&[f64]> = lines.iter().map(|(_, v)| v.as_slice()).collect();
    let (x, values) = decimate(ts_ms, &columns);
    let lines = lines
        .iter()
        .zip(values)
        .enumerate()
        .map(|(k, ((label, _), values))| Line { label: label.clone(), values, stroke: STYLES[k % STYLES.len()].0, dash: STYLES[k % STYLES.len()].1.to_vec(), points: false })
        .collect();
    Plot { section: section.into(), y_label: y_label.into(), x, lines, bands: Vec::new(), band_label: String::new() }
}

/// Colours of the event markers, as the PNGs draw them.
const EVENT_STYLES: [(u8, &str); 4] = [(crate::model::events::ENTRY, "#1a7f37"), (crate::model::events::EXIT, "#111111"), (crate::model::events::TOP_UP, "#e6550d"), (crate::model::events::LIQUIDATION, "#b30000")];

/// Markers of `plot`'s events (entry, exit, margin top-up, liquidation) at `on` (a value per
/// step), as the PNGs mark them: one points-only line each kind that occurred, on the plot's own
/// (decimated) x, each marker at the row nearest its step.
fn add_event_markers(plot: &mut Plot, input: &ReportInput, on: &[f64]) {
    let ts = input.ledger.ts_ms();
    let flags = input.ledger.event_flags();
    for (flag, stroke) in EVENT_STYLES {
        let name = super::series::EVENT_KINDS.iter().find(|(f, _)| *f == flag).map_or("event", |(_, n)| *n);
        let buckets = if flag == crate::model::events::TOP_UP { BUCKETS } else { usize::MAX };
        let steps = super::series::event_steps(ts, flags, flag, buckets);
        if steps.is_empty() {
            continue;
        }
        let mut values = vec![None; plot.x.len()];
        for &i in &steps {
            let t = ts[i] as f64 / 1000.0;
            let at = plot.x.partition_point(|x| *x < t).min(plot.x.len().saturating_sub(1));
            if on[i].is_finite() {
                values[at] = Some(round_significant(on[i]));
            }
        }
        let count = flags.iter().filter(|f| **f & i32::from(flag) != 0).count();
        plot.lines.push(Line { label: format!("{name} ({count})"), values, stroke, dash: Vec::new(), points: true });
    }
}

/// The interactive charts of a run, each tied to its PNG's section.
pub fn plots(input: &ReportInput) -> Vec<Plot> {
    let ledger = input.ledger;
    let ts = ledger.ts_ms();
    let col = |name: &str| ledger.column(name).unwrap_or(&[]).to_vec();
    let quote = input.quote_currency();
    let equity = col("equity");
    let spot = col("spot_price");
    // The carry's equity on its own scale (the spot held unhedged, often many times larger,
    // stays in the PNG), with the entries, exits, top-ups and liquidations marked on it.
    let mut equity_plot = plot("equity", &format!("equity ({quote})"), ts, vec![("carry equity".into(), equity.clone())]);
    add_event_markers(&mut equity_plot, input, &equity);
    let mut out = vec![equity_plot];
    let cumulate = |values: &[f64]| -> Vec<f64> {
        let mut sum = 0.0;
        values.iter().map(|v| { sum += v; sum }).collect()
    };
    // The carry alone, on its own scale: cumulative funding, staking and borrow.
    // A ledger missing a column (an older run) draws an empty carry line, as `col` does.
    let (carry_label, carry) = super::charts::carry_earned(input).unwrap_or(("funding + staking + borrow", Vec::new()));
    out.push(plot("equity", &format!("carry earned ({quote})"), ts, vec![(format!("carry: {carry_label}"), carry)]));
    // As the PNG: spot and perp together as the basis (their price moves mostly cancel, and
    // apart they would dwarf the carry), then each other component.
    let mut components = Vec::new();
    let (spot_pnl, perp_pnl) = (col("pnl_spot"), col("pnl_perp"));
    if spot_pnl.iter().chain(&perp_pnl).any(|v| *v != 0.0) {
        let basis: Vec<f64> = spot_pnl.iter().zip(&perp_pnl).map(|(s, p)| s + p).collect();
        components.push(("basis (spot + perp)".to_string(), cumulate(&basis)));
    }
    for component in crate::model::Pnl::COMPONENTS {
        if component.column == "pnl_spot" || component.column == "pnl_perp" {
            continue;
        }
        let values = col(component.column);
        if values.iter().any(|v| *v != 0.0) {
            components.push((component.name.to_string(), cumulate(&values)));
        }
    }
    components.push(("total".into(), cumulate(&col("pnl_total"))));
    out.push(plot("pnl_components", &format!("cumulative PnL ({quote})"), ts, components));

    let mut peak = f64::MIN;
    let drawdown: Vec<f64> = equity.iter().map(|e| { peak = peak.max(*e); if peak > 0.0 { (e / peak - 1.0) * 100.0 } else { f64::NAN } }).collect();
    out.push(plot("drawdown", "drawdown (%)", ts, vec![("below the running peak".into(), drawdown)]));

    let perp = col("perp_price");
    let basis_bp: Vec<f64> = perp.iter().zip(&spot).map(|(p, s)| (p / s - 1.0) * 1e4).collect();
    let mean = super::series::trailing_mean(ts, &basis_bp, 7 * crate::time::MS_PER_DAY);
    let mut basis_plot = plot("basis", "perp over spot (bp)", ts, vec![("basis".into(), basis_bp), ("trailing 7-day mean".into(), mean)]);
    if !input.stale_spans.is_empty() {
        basis_plot.bands = input.stale_spans.iter().map(|s| [s.from_ms as f64 / 1000.0, s.to_ms as f64 / 1000.0]).collect();
        let steps: usize = input.stale_spans.iter().map(|s| s.steps).sum();
        basis_plot.band_label = format!("grey bands: stale spot, {} spans, {steps} steps ({})", input.stale_spans.len(), if input.stale_spot_masked { "masked" } else { "not masked" });
    }
    out.push(basis_plot);

    let distance: Vec<f64> = col("liquidation_distance").iter().map(|d| d * 100.0).collect();
    let mut margin_lines = vec![("distance to liquidation".to_string(), distance.clone())];
    if let Some(level) = input.top_up_distance() {
        margin_lines.push((format!("margin top-up threshold ({:.1} %)", level * 100.0), vec![level * 100.0; ts.len()]));
    }
    let mut margin_plot = plot("margin", "adverse move to liquidation (%)", ts, margin_lines);
    add_event_markers(&mut margin_plot, input, &distance);
    out.push(margin_plot);

    // The settlements on their own clock, with the cap and floor in force at each and a
    // marker on every settlement at one of them.
    let settle_ms: Vec<i64> = input.settlements.iter().map(|s| s.settlement.settle_ms).collect();
    let rates: Vec<f64> = input.settlements.iter().map(|s| s.settlement.rate * 100.0).collect();
    if !settle_ms.is_empty() {
        let limits = input.settlement_limits();
        let mut lines = vec![("rate per settlement".to_string(), rates.clone())];
        if limits.iter().any(|(c, f)| c.is_some() || f.is_some()) {
            lines.push(("cap".into(), limits.iter().map(|l| l.0.map_or(f64::NAN, |v| v * 100.0)).collect()));
            lines.push(("floor".into(), limits.iter().map(|l| l.1.map_or(f64::NAN, |v| v * 100.0)).collect()));
        }
        let mut funding_plot = plot("funding", "funding rate (% per settlement)", &settle_ms, lines);
        let at_limit: Vec<usize> = (0..settle_ms.len()).filter(|&i| super::series::at_limit(input.settlements[i].settlement.rate, limits[i].0, limits[i].1)).collect();
        if !at_limit.is_empty() {
            let mut values = vec![None; funding_plot.x.len()];
            for &i in &at_limit {
                let t = settle_ms[i] as f64 / 1000.0;
                let at = funding_plot.x.partition_point(|x| *x < t).min(funding_plot.x.len().saturating_sub(1));
                values[at] = Some(round_significant(rates[i]));
            }
            funding_plot.lines.push(Line { label: format!("at cap or floor ({})", at_limit.len()), values, stroke: "#b30000", dash: Vec::new(), points: true });
        }
        out.push(funding_plot);
    }
    // Rolling Sharpe on the daily clock.
    let returns = super::tearsheet::daily_excess_returns(input, &equity);
    let (days, sharpe) = super::tearsheet::rolling_sharpe(&returns, 90);
    if !days.is_empty() {
        out.push(plot("rolling_sharpe", "Sharpe, trailing 90 days", &days, vec![("rolling 90-day Sharpe".into(), sharpe)]));
    }
    out
}

/// The page's script part: uPlot's style, the data, uPlot, and the code that draws, links
/// and self-tests the charts.
pub fn page_scripts(plots: &[Plot]) -> String {
    let data = serde_json::to_string(plots).unwrap_or_else(|_| "[]".into()).replace("</", "<\\/");
    format!(
        "<style>{UPLOT_CSS}\n.interactive {{ margin: 8px 0 4px; }}\n.interactive .tools {{ font-size: 13px; color: #5a6270; margin-bottom: 4px; }}\n.interactive button {{ font-size: 13px; margin-right: 4px; }}\n@media print {{ .interactive {{ display: none; }} img.fallback {{ display: block !important; }} }}\n</style>\n<!-- uPlot 1.6.31 (https://github.com/leeoniya/uPlot), inlined under its licence:\n{license}-->\n<script type=\"application/json\" id=\"plots\">{data}</script>\n<script>{UPLOT_JS}</script>\n<script>{APP_JS}</script>\n",
        license = UPLOT_LICENSE.replace("--", "- -"),
    )
}

/// Draws every plot into its section, hides its PNG, links the cursors, adds the pan and reset
/// buttons, and runs the self-test on `#selftest`.
const APP_JS: &str = r##"
(function () {
  "use strict";
  var errors = [];
  window.addEventListener("error", function (e) { errors.push(String(e.message || e)); });
  var consoleError = console.error;
  console.error = function () { errors.push(Array.prototype.join.call(arguments, " ")); consoleError.apply(console, arguments); };
  var plots = JSON.parse(document.getElementById("plots").textContent);
  var charts = [];
  var fmtTime = uPlot.fmtDate("{YYYY}-{MM}-{DD} {HH}:{mm}");
  // The embedded rows inside [min, max], min/max-decimated to about `pixels` buckets (each
  // line keeps its low and high per bucket, in the order they came).
  function view(spec, min, max, pixels) {
    var x = spec.x, n = x.length;
    var lo = 0, hi = n - 1;
    while (lo < n - 1 && x[lo + 1] < min) lo++;
    while (hi > 0 && x[hi - 1] > max) hi--;
    var count = hi - lo + 1;
    var lines = spec.lines.map(function (l) { return l.values; });
    if (count <= 2 * pixels) {
      return [x.slice(lo, hi + 1)].concat(lines.map(function (v) { return v.slice(lo, hi + 1); }));
    }
    var size = Math.ceil(count / pixels);
    var out = [[]].concat(lines.map(function () { return []; }));
    for (var from = lo; from <= hi; from += size) {
      var to = Math.min(from + size, hi + 1);
      out[0].push(x[from], x[to - 1]);
      lines.forEach(function (v, k) {
        var a = -1, b = -1;
        for (var i = from; i < to; i++) {
          if (v[i] == null) continue;
          if (a < 0 || v[i] < v[a]) a = i;
          if (b < 0 || v[i] > v[b]) b = i;
        }
        var first = a <= b ? a : b, second = a <= b ? b : a;
        out[k + 1].push(first < 0 ? null : v[first], second < 0 ? null : v[second]);
      });
    }
    return out;
  }
  function build(spec) {
    var section = document.getElementById(spec.section);
    if (!section) return null;
    var img = section.querySelector("img");
    var box = document.createElement("div");
    box.className = "interactive";
    var tools = document.createElement("div");
    tools.className = "tools";
    tools.innerHTML = '<button type="button" data-pan="-1">&#9664;</button><button type="button" data-pan="1">&#9654;</button><button type="button" data-reset="1">reset</button> drag to zoom · shift + wheel to zoom · double-click to reset';
    box.appendChild(tools);
    section.insertBefore(box, img);
    var width = Math.max(320, (img && img.parentElement ? img.parentElement.clientWidth : 900) - 8);
    var series = [{ value: function (u, v) { return v == null ? "--" : fmtTime(new Date(v * 1000)); } }];
    spec.lines.forEach(function (l) {
      var s = { label: l.label, stroke: l.stroke, dash: l.dash, width: 1.5, spanGaps: false,
        value: function (u, v) { return v == null ? "--" : (Math.abs(v) >= 1000 ? v.toLocaleString("en-US", { maximumFractionDigits: 2 }) : v.toPrecision(5)); } };
      if (l.points) {
        // Markers only: events on a line, settlements at a limit.
        s.paths = function () { return null; };
        s.points = { show: true, size: 8, stroke: l.stroke, fill: l.stroke };
      }
      series.push(s);
    });
    if (spec.band_label) {
      var note = document.createElement("span");
      note.className = "bands";
      note.textContent = " · " + spec.band_label;
      tools.appendChild(note);
    }
    var pixels = Math.max(200, width - 80);
    var busy = false;
    var opts = {
      width: width, height: 300,
      cursor: { sync: { key: "basis" }, drag: { x: true, y: false } },
      scales: { x: { time: true } },
      axes: [{ label: "date (UTC)", space: 90,
        // Month names at every span, in UTC, as the PNGs label dates (never "9/29").
        values: function (u, splits) {
          var months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
          var span = splits.length > 1 ? splits[splits.length - 1] - splits[0] : 0;
          var shown = "";
          return splits.map(function (v) {
            var d = new Date(v * 1000), m = months[d.getUTCMonth()];
            if (span > 86400 * 60) {
              // A month named once: later ticks inside it give their day.
              var label = m + " " + d.getUTCFullYear();
              if (label === shown) return String(d.getUTCDate());
              shown = label;
              return label;
            }
            if (span > 86400 * 2) return m + " " + d.getUTCDate();
            return m + " " + d.getUTCDate() + " " + String(d.getUTCHours()).padStart(2, "0") + ":" + String(d.getUTCMinutes()).padStart(2, "0");
          });
        } }, { label: spec.y_label,
        // Wide enough for the longest tick (a book's 1,750,000) beside the axis label.
        size: function (u, values) { var n = values && values.length ? Math.max.apply(null, values.map(function (v) { return String(v).length; })) : 6; return 34 + 7 * n; },
        // A tick a rounding error off zero prints as 0, never "-0.0".
        values: function (u, splits) { return splits.map(function (v) { return Math.abs(v) < 1e-9 ? "0" : v.toLocaleString("en-US", { maximumFractionDigits: 6 }); }); } }],
      series: series,
      hooks: { drawClear: [function (u) {
        // Shaded spans (stale spot), at least a pixel wide, under the lines.
        if (!spec.bands.length) return;
        var ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
        ctx.save();
        ctx.fillStyle = "rgba(150, 150, 150, 0.35)";
        spec.bands.forEach(function (b) {
          var a = u.valToPos(b[0], "x", true), z = u.valToPos(b[1], "x", true);
          var left = Math.max(u.bbox.left, Math.min(a, z)), right = Math.min(u.bbox.left + u.bbox.width, Math.max(a, z));
          if (right + 1 < u.bbox.left || left - 1 > u.bbox.left + u.bbox.width) return;
          ctx.fillRect(left, top, Math.max(1, right - left), height);
        });
        ctx.restore();
      }], setScale: [function (u, key) {
        // On zoom, re-read the embedded rows of the visible range at the plot's width.
        if (key !== "x" || busy) return;
        busy = true;
        u.setData(view(spec, u.scales.x.min, u.scales.x.max, pixels), false);
        busy = false;
      }] },
    };
    var u = new uPlot(opts, view(spec, -Infinity, Infinity, pixels), box);
    var full = [spec.x[0], spec.x[spec.x.length - 1]];
    tools.addEventListener("click", function (e) {
      var t = e.target;
      var min = u.scales.x.min, max = u.scales.x.max, span = max - min;
      if (t.getAttribute("data-reset")) { u.setScale("x", { min: full[0], max: full[1] }); }
      if (t.getAttribute("data-pan")) {
        var step = span / 2 * Number(t.getAttribute("data-pan"));
        u.setScale("x", { min: min + step, max: max + step });
      }
    });
    u.over.addEventListener("dblclick", function () { u.setScale("x", { min: full[0], max: full[1] }); });
    u.over.addEventListener("wheel", function (e) {
      if (!e.shiftKey) return;
      e.preventDefault();
      var min = u.scales.x.min, max = u.scales.x.max;
      var at = u.posToVal(e.offsetX, "x");
      var f = e.deltaY < 0 ? 0.8 : 1.25;
      u.setScale("x", { min: at - (at - min) * f, max: at + (max - at) * f });
    }, { passive: false });
    if (img) img.classList.add("fallback"), img.style.display = "none";
    return u;
  }
  plots.forEach(function (spec) { var u = build(spec); if (u) charts.push(u); });
  if (location.hash === "#selftest") setTimeout(selftest, 200);
  function selftest() {
    // uPlot commits scale and cursor changes in a microtask: each check reads after a tick.
    var result = { charts: charts.length, errors: errors, resources: 0,
      // What each chart shows: its section, its series' labels, how many are drawn as markers
      // (with how many marked values), and its shaded bands.
      elements: charts.map(function (c, k) {
        var spec = plots.filter(function (p) { return document.getElementById(p.section); })[k];
        return { section: spec.section, series: c.series.slice(1).map(function (s) { return s.label; }),
          markers: spec.lines.filter(function (l) { return l.points; }).map(function (l) { return [l.label, l.values.filter(function (v) { return v != null; }).length]; }),
          bands: spec.bands.length, band_label: spec.band_label };
      }) };
    var u = charts[0];
    function legend(chart) { return Array.prototype.map.call(chart.root.querySelectorAll(".u-legend .u-value"), function (v) { return v.textContent; }); }
    function finish() {
      result.resources = performance.getEntriesByType("resource").length;
      result.errors = errors;
      var pre = document.createElement("pre");
      pre.id = "selftest-result";
      pre.textContent = JSON.stringify(result);
      document.body.appendChild(pre);
    }
    if (!u) { finish(); return; }
    var before = [u.scales.x.min, u.scales.x.max];
    var mid = (before[0] + before[1]) / 2, span = before[1] - before[0];
    u.setScale("x", { min: mid - span / 10, max: mid + span / 10 });
    setTimeout(function () {
      result.zoom_before = before;
      result.zoom_after = [u.scales.x.min, u.scales.x.max];
      // A real mouse move over the plot, so the shared crosshair reaches the other charts.
      var box = u.over.getBoundingClientRect();
      u.over.dispatchEvent(new MouseEvent("mousemove", { clientX: box.left + box.width / 2, clientY: box.top + box.height / 2, bubbles: true }));
      setTimeout(function () {
        result.cursor_values = legend(u);
        result.linked_values = charts.length > 1 ? legend(charts[1]) : [];
        finish();
      }, 50);
    }, 50);
  }
})();
"##;
