//! The HTML pages of reports: one self-contained file each, with inline CSS, the charts embedded
//! as base64 PNG and no script. Every string that comes from data or config goes through
//! [`escape`].

use base64::Engine as _;

use super::{ChartImage, ReportInput};
use crate::config::OrderType;
use crate::measure::metrics::{self, Metrics, Unit};

/// The name a config enum has in TOML (`always_on`, `reserve_then_spot`).
fn serde_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// Escape text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f5f7; color: #1d2330; font: 15px/1.5 -apple-system, "Segoe UI", "DejaVu Sans", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 0 0 6px; }
p.sub { color: #5a6270; margin: 0 0 18px; }
.banner { background: #fff4d6; border: 1px solid #e5c46b; border-radius: 6px; padding: 10px 14px; margin: 0 0 18px; font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; margin: 0 0 22px; }
.card { background: #fff; border-radius: 8px; padding: 10px 14px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.card .label { color: #5a6270; font-size: 12.5px; }
.card .value { font-size: 21px; font-weight: 600; font-variant-numeric: tabular-nums; }
.pos { color: #16794a; } .neg { color: #b3261e; }
section.chart, section.table { background: #fff; border-radius: 8px; padding: 16px 18px; margin: 0 0 18px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
section.chart p { color: #5a6270; margin: 0 0 10px; font-size: 14px; }
section.chart img { display: block; width: 100%; height: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #eceef1; vertical-align: top; }
td.num, th.num { text-align: right; }
td.num, td.time { white-space: nowrap; }
th.num { white-space: normal; }
section.table table { font-size: 14px; }
section.table { overflow-x: auto; }
th { background: #f7f8fa; font-weight: 600; }
.two { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 18px; }
ul.warn { margin: 0; padding-left: 20px; color: #7a4b00; }
code { background: #f0f1f4; padding: 1px 4px; border-radius: 3px; }
footer { color: #7a818c; font-size: 13px; margin-top: 26px; }
"#;

/// Wrap a body in a complete page.
pub fn page(title: &str, body: &str) -> String {
    page_with_scripts(title, body, "")
}

/// Wrap a body in a complete page, with `scripts` (inline `<style>`/`<script>` elements) after
/// it. A Content-Security-Policy lets the page load nothing from anywhere: only its own inline
/// style and script, and images embedded as `data:` URLs.
pub fn page_with_scripts(title: &str, body: &str, scripts: &str) -> String {
    let footer = if scripts.is_empty() { String::new() } else { " Interactive charts drawn with uPlot 1.6.31 (MIT licence, © 2022 Leon Sorokin; its notice is in the page source).".to_string() };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}\n<footer>Written by basis {} · self-contained: nothing on this page is fetched from the network.{footer}</footer>\n</main>\n{scripts}</body>\n</html>\n",
        escape(title),
        env!("CARGO_PKG_VERSION"),
    )
}

/// A chart as an embedded image in its own section.
pub fn chart_section(chart: &ChartImage) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(&chart.png);
    format!(
        "<section class=\"chart\" id=\"{id}\">\n<h2>{title}</h2>\n<p>{description}</p>\n<img alt=\"{title} chart\" width=\"{w}\" height=\"{h}\" src=\"data:image/png;base64,{data}\">\n</section>\n",
        id = escape(chart.file.trim_end_matches(".png")),
        title = escape(&chart.title),
        description = escape(chart.description),
        w = chart.width,
        h = chart.height,
    )
}

/// A number as written, up to 6 decimals without trailing zeros: `0.3`, `1e5` as `100000`,
/// `n/a` when not finite.
pub fn plain_number(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let text = format!("{x:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" { "0".into() } else { text.to_string() }
}

/// A compact amount for wide tables: `58.4k`, `1.90M`, `1.00B`; plain with two decimals under
/// 10,000.
pub fn compact(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let a = x.abs();
    let text = if a >= 1e9 {
        format!("{:.2}B", x / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.2}")
    };
    text.replace('-', "\u{2212}")
}

/// A time as tables show it: `2025-03-08 16:00` (seconds and the `Z` dropped; UTC is said in
/// the heading), and the date alone at midnight.
pub fn short_time(text: &str) -> String {
    let t = text.trim_end_matches('Z');
    let t = t.strip_suffix(":00").unwrap_or(t);
    t.strip_suffix(" 00:00").unwrap_or(t).to_string()
}

/// `+1.23 %`.
pub fn pct(x: f64) -> String {
    if x.is_finite() { format!("{:+.2} %", x * 100.0) } else { "n/a".into() }
}

/// `116,571.64`.
pub fn money(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let text = format!("{:.2}", x.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, "00"));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{}{grouped}.{frac}", if x < 0.0 { "−" } else { "" })
}

fn sign_class(x: f64) -> &'static str {
    if x > 0.0 {
        "pos"
    } else if x < 0.0 {
        "neg"
    } else {
        ""
    }
}

/// The metrics table's rows: label and formatted value (plain text, escaped by the caller).
/// The run's identity first, then every numeric metric in the report's order
/// ([`metrics::report_rows`]), formatted by its unit.
pub fn metric_rows(m: &Metrics, quote: &str) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = vec![
        ("Symbol".into(), m.symbol.clone()),
        ("Data".into(), if m.synthetic { "SYNTHETIC (not market history)".into() } else { "market history".into() }),
        ("Period".into(), format!("{} to {}", m.start, m.end)),
        ("Max drawdown trough".into(), if m.max_drawdown_trough.is_empty() { "none".into() } else { m.max_drawdown_trough.clone() }),
    ];
    if !m.first_liquidation.is_empty() {
        rows.push(("First liquidation / then".into(), format!("{} / {}", m.first_liquidation, m.after_liquidation)));
    }
    for spec in metrics::report_rows() {
        let value = (spec.value)(m);
        let (label, text) = match spec.unit {
            Unit::Decimal => (spec.label.to_string(), pct(value)),
            Unit::Share => (spec.label.to_string(), if value.is_finite() { format!("{:.2} %", value * 100.0) } else { "n/a".into() }),
            Unit::Quote => (format!("{} ({quote})", spec.label), money(value)),
            Unit::Ratio => (spec.label.to_string(), if value.is_finite() { format!("{value:.2}") } else { "n/a".into() }),
            Unit::Count => (spec.label.to_string(), format!("{value:.0}")),
            Unit::Days => (spec.label.to_string(), format!("{value:.1}")),
            Unit::Years => (spec.label.to_string(), format!("{value:.3}")),
        };
        rows.push((label, text));
    }
    rows
}

/// One summary card: a label over a value (`class`: `pos`, `neg` or empty).
pub fn card(label: &str, value: &str, class: &str) -> String {
    format!("<div class=\"card\"><div class=\"label\">{}</div><div class=\"value {class}\">{}</div></div>", escape(label), escape(value))
}

/// What the derivative leg is, for a run whose leg is not the perp throughout.
fn instrument_text(c: &crate::config::Config) -> Option<String> {
    let s = &c.strategy;
    match s.instrument {
        crate::config::InstrumentChoice::Perp => None,
        crate::config::InstrumentChoice::Dated => Some(format!("dated contracts (≥ {} days to expiry, rolled {} days before)", s.min_days_to_expiry, s.roll_days_before)),
        crate::config::InstrumentChoice::Best => Some(format!("best of perp and dated (switch horizon {} days)", s.switch_horizon_days)),
    }
}

/// The report page of one run.
pub fn run_page(input: &ReportInput, charts: &[ChartImage]) -> String {
    let m = input.metrics;
    let c = input.config;
    let quote = input.quote_currency();
    let mut body = String::new();
    let venue = c.venue.name.clone().unwrap_or_else(|| "venue not named".into());
    body.push_str(&format!("<h1>Carry backtest: {} · {}</h1>\n", escape(&m.symbol), escape(input.run_name)));
    body.push_str(&format!(
        "<p class=\"sub\">{} · {} to {} · {} steps · {} · {} carry, {}</p>\n",
        escape(&venue),
        escape(&m.start),
        escape(&m.end),
        m.steps,
        escape(&serde_name(&c.strategy.mode)),
        escape(&serde_name(&c.strategy.direction)),
        escape(&format!("leverage {}x, hedge ratio {}{}", c.portfolio.leverage, c.portfolio.hedge_ratio, instrument_text(c).map(|t| format!(" · {t}")).unwrap_or_default())),
    ));
    if m.synthetic {
        body.push_str("<div class=\"banner\">SYNTHETIC DATA: generated by <code>basis data synth</code>, not market history. The figures show how basis works, not what a trade earned.</div>\n");
    }
    if m.liquidations > 0 && m.after_liquidation == "hold" {
        body.push_str(&format!(
            "<div class=\"banner\">DIRECTIONAL AFTER {}: a leg was liquidated and <code>after_liquidation = \"hold\"</code> kept the other one, so the rest of the run is an unhedged position, not a carry ({:.1} days, PnL {}).</div>\n",
            escape(&m.first_liquidation),
            m.days_unhedged,
            escape(&money(m.unhedged_pnl))
        ));
    }
    if m.years_uncovered > 0.0 {
        body.push_str(&format!(
            "<div class=\"banner\">PARTLY UNCOVERED: {:.2} years of the window lie outside the data's coverage (allow_partial_coverage); those steps carry event bit 128 and funding APRs count covered time only.</div>\n",
            m.years_uncovered
        ));
    }
    body.push_str("<div class=\"cards\">\n");
    body.push_str(&card("Total return", &pct(m.total_return), sign_class(m.total_return)));
    body.push_str(&card("APR", &pct(m.apr), sign_class(m.apr)));
    body.push_str(&card("Sharpe", &format!("{:.2}", m.sharpe), ""));
    body.push_str(&card("Max drawdown", &pct(m.max_drawdown), sign_class(m.max_drawdown)));
    body.push_str(&card(&format!("Funding PnL ({quote})"), &money(m.funding_pnl), sign_class(m.funding_pnl)));
    body.push_str(&card("Funding APR while held", &pct(m.funding_apr_while_held), sign_class(m.funding_apr_while_held)));
    body.push_str(&card("Funding APR over window", &pct(m.funding_apr_over_window), sign_class(m.funding_apr_over_window)));
    body.push_str(&card("Liquidations", &m.liquidations.to_string(), if m.liquidations > 0 { "neg" } else { "" }));
    if c.strategy.instrument != crate::config::InstrumentChoice::Perp {
        // The dated carry is earned as price convergence, not funding.
        let basis = m.pnl.get("spot").copied().unwrap_or(0.0) + m.pnl.get("perp").copied().unwrap_or(0.0);
        body.push_str(&card(&format!("Basis PnL, spot + derivative ({quote})"), &money(basis), sign_class(basis)));
        body.push_str(&card("Rolls / switches", &format!("{} / {}", m.rolls, m.instrument_switches), ""));
    }
    if c.data.cash_rate.is_some() {
        body.push_str(&card("APR over cash", &pct(m.excess_apr_over_cash), sign_class(m.excess_apr_over_cash)));
    }
    body.push_str("</div>\n");

    for chart in charts {
        body.push_str(&chart_section(chart));
    }

    // Metrics, PnL attribution and funding by year.
    body.push_str("<div class=\"two\">\n<section class=\"table\" id=\"metrics\">\n<h2>Metrics</h2>\n<table>\n");
    for (label, value) in metric_rows(m, quote) {
        body.push_str(&format!("<tr><th>{}</th><td class=\"num\">{}</td></tr>\n", escape(&label), escape(&value)));
    }
    body.push_str(&format!(
        "<tr><th>Settlements at cap or floor</th><td class=\"num\">{}</td></tr>\n",
        if input.has_limits() { format!("{} of {}", input.capped_settlements(), input.settlements.len()) } else { "no cap configured".to_string() }
    ));
    body.push_str("</table>\n</section>\n<div>\n");
    body.push_str(&format!("<section class=\"table\" id=\"attribution\">\n<h2>PnL attribution ({quote})</h2>\n<table>\n<tr><th>component</th><th class=\"num\">PnL</th></tr>\n"));
    let mut sum = 0.0;
    for (name, value) in &m.pnl {
        sum += value;
        body.push_str(&format!("<tr><td>{}</td><td class=\"num {}\">{}</td></tr>\n", escape(name), sign_class(*value), money(*value)));
    }
    body.push_str(&format!(
        "<tr><th>sum of components</th><th class=\"num\">{}</th></tr>\n<tr><td>final − initial equity</td><td class=\"num\">{}</td></tr>\n</table>\n</section>\n",
        money(sum),
        money(m.final_equity - m.initial_capital)
    ));
    body.push_str(&format!(
        "<section class=\"table\" id=\"funding-by-year\">\n<h2>Funding by year</h2>\n<table>\n<tr><th>year</th><th class=\"num\">held</th><th class=\"num\">funding PnL ({quote})</th><th class=\"num\">realised APR</th><th class=\"num\">on notional</th></tr>\n"
    ));
    for (year, y) in &m.funding_by_year {
        body.push_str(&format!(
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
            escape(year),
            y.settlements_held,
            money(y.funding_pnl),
            pct(y.funding_apr_over_window),
            pct(y.funding_return_on_notional_apr)
        ));
    }
    body.push_str("</table>\n</section>\n");
    if let Some(r) = &m.regimes {
        let plain = |x: f64| format!("{:.2} %", x * 100.0);
        let share = |x: Option<f64>| x.map(plain).unwrap_or_else(|| "n/a".into());
        body.push_str(&format!(
            "<section class=\"table\" id=\"regimes\">\n<h2>Funding regimes</h2>\n<p>Each settlement interval's PnL and holding time go to the regime of the rate that settled it; the baseline is {} per 8 h (scaled to the interval). {} of settlements at the baseline, {} at the cap, {} at the floor; {} negative streaks, the longest {} settlements ({:.1} days); in the market {} of the window, {} round trips.</p>\n<table>\n<tr><th>regime</th><th class=\"num\">PnL ({quote})</th><th class=\"num\">days held</th></tr>\n",
            plain(r.baseline_rate_per_8h),
            plain(r.at_baseline_share),
            share(r.at_cap_share),
            share(r.at_floor_share),
            r.negative_streaks.count,
            r.negative_streaks.longest_settlements,
            r.negative_streaks.longest_hours / 24.0,
            plain(r.time_in_market),
            r.round_trips
        ));
        for name in crate::sim::regime::NAMES {
            body.push_str(&format!(
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td></tr>\n",
                name.replace('_', " "),
                money(r.pnl.get(name).copied().unwrap_or(0.0)),
                r.held_days.get(name).copied().unwrap_or(0.0)
            ));
        }
        body.push_str("</table>\n</section>\n");
    }
    body.push_str("<section class=\"table\" id=\"worst-drawdowns\">\n<h2>Five worst drawdowns</h2>\n<table>\n<tr><th>peak</th><th>trough</th><th>recovered</th><th class=\"num\">depth</th><th class=\"num\">days</th></tr>\n");
    let rows = super::tearsheet::drawdown_rows(input);
    if rows.is_empty() {
        body.push_str("<tr><td colspan=\"5\">equity never fell below a previous peak</td></tr>\n");
    }
    for [peak, trough, recovered, depth, days] in rows {
        body.push_str(&format!("<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n", escape(&peak), escape(&trough), escape(&recovered), escape(&depth), escape(&days)));
    }
    body.push_str("</table>\n</section>\n");
    body.push_str("<section class=\"table\" id=\"run\">\n<h2>Run</h2>\n<table>\n");
    let p = &c.portfolio;
    let k = &c.costs;
    let (spot_fee, perp_fee) = match k.order_type {
        OrderType::Taker => (k.spot_taker_bps, k.perp_taker_bps),
        OrderType::Maker => (k.spot_maker_bps, k.perp_maker_bps),
    };
    let limit = |v: Option<f64>| v.map(pct).unwrap_or_else(|| "none".into());
    let run_rows: Vec<(&str, String)> = vec![
        ("mode / direction", format!("{} / {}", serde_name(&c.strategy.mode), serde_name(&c.strategy.direction))),
        ("initial capital", money(p.initial_capital)),
        ("leverage / hedge ratio", format!("{} / {}", p.leverage, p.hedge_ratio)),
        ("reserve", format!("{:.1} % of capital", p.reserve_fraction * 100.0)),
        ("margin top-up", format!("{} below {:.1} % distance", serde_name(&p.top_up_source), p.top_up_distance * 100.0)),
        ("fees (bp)", format!("{}: spot {spot_fee}, perp {perp_fee}", serde_name(&k.order_type))),
        ("slippage (bp)", format!("spot {}, perp {}", k.spot_slippage_bps, k.perp_slippage_bps)),
        ("staking / borrow APR", format!("{} / {}", pct(p.staking_apr), pct(p.borrow_apr))),
        ("venue preset", c.venue.preset.clone().unwrap_or_else(|| "none".into())),
        ("funding rates", format!("{:?}", c.venue.funding).to_lowercase()),
        ("funding cap / floor override", format!("{} / {}", limit(c.venue.funding_cap), limit(c.venue.funding_floor))),
        ("files", "ledger.parquet, trades.parquet, funding.parquet, metrics.json, config.toml, manifest.json".into()),
    ];
    let mut run_rows = run_rows;
    if let Some(text) = instrument_text(c) {
        run_rows.insert(1, ("derivative leg", text));
    }
    if c.data.cash_rate.is_some() {
        run_rows.insert(run_rows.len() - 1, ("cash rate (mean) / idle cash earns it", format!("{} / {}", pct(m.cash_apr), if p.cash_earns { "yes" } else { "no" })));
    }
    for (label, value) in run_rows {
        body.push_str(&format!("<tr><th>{}</th><td>{}</td></tr>\n", escape(label), escape(&value)));
    }
    body.push_str("</table>\n</section>\n");
    if !input.stale_spans.is_empty() {
        body.push_str(&format!(
            "<section class=\"table\" id=\"stale-spot\">\n<h2>Stale spot ({} spans, {})</h2>\n<table>\n<tr><th>from</th><th>to</th><th class=\"num\">steps</th><th>found</th></tr>\n",
            input.stale_spans.len(),
            if input.stale_spot_masked { "masked from decisions and liquidation checks" } else { "detected, not masked" }
        ));
        for span in input.stale_spans {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>\n",
                escape(&span.from),
                escape(&span.to),
                span.steps,
                escape(&span.reasons)
            ));
        }
        body.push_str("</table>\n</section>\n");
    }
    if !input.warnings.is_empty() {
        body.push_str("<section class=\"table\" id=\"warnings\">\n<h2>Data warnings</h2>\n<ul class=\"warn\">\n");
        for warning in input.warnings {
            body.push_str(&format!("<li>{}</li>\n", escape(warning)));
        }
        body.push_str("</ul>\n</section>\n");
    }
    body.push_str("</div>\n</div>\n");
    let scripts = super::interactive::page_scripts(&super::interactive::plots(input));
    page_with_scripts(&format!("basis · {} · {}", m.symbol, input.run_name), &body, &scripts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_number_formats() {
        assert_eq!(escape("<script>alert('x') & \"y\"</script>"), "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;");
        assert_eq!(money(1234567.891), "1,234,567.89");
        assert_eq!(money(-999.5), "−999.50");
        assert_eq!(money(12.0), "12.00");
        assert_eq!(pct(0.123456), "+12.35 %");
        assert_eq!(pct(f64::NAN), "n/a");
    }
}
