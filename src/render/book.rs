//! A portfolio's report: the book's summary cards and table, a section per pair and per
//! account, PnL by venue, the correlation of the pairs' returns, the worst drawdowns, and six
//! charts (equity of the book and each pair, each account's distance to liquidation and margin
//! ratio, the book's rolling 90-day Sharpe, funding per month and daily returns' distribution),
//! the time series interactive over their
//! PNGs, in one self-contained `index.html` with the PNGs beside it.

use anyhow::Result;
use plotters::prelude::*;

use super::draw::{decimate_for_chart, time_span, draw_level, draw_lines, draw_series_lines, draw_err, panels, render_png, time_chart, value_range, Area, Legend, BLUE, RED_DARK, HEIGHT, WIDTH};
use super::html::{self, escape, money, pct};
use super::{ChartImage, ReportFile};
use crate::measure::book::{BookLedger, BookMetrics, PairPlace};
use crate::sim::portfolio::AccountSpec;

/// What a book report draws from.
pub struct BookReport<'a> {
    /// The run's folder name.
    pub run_name: &'a str,
    /// The measures written to `metrics.json`.
    pub metrics: &'a BookMetrics,
    /// Every row: pairs, accounts, book.
    pub ledger: &'a BookLedger,
    /// Where each pair's legs are held.
    pub places: &'a [PairPlace],
    /// The accounts.
    pub accounts: &'a [AccountSpec],
    /// Data findings and what the common clock cost.
    pub warnings: &'a [String],
}


fn equity_chart(input: &BookReport, area: &Area) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let ts = input.ledger.book.ts_ms();
    let book: Vec<f64> = (0..input.ledger.book.len()).map(|i| input.ledger.book.row(i).equity).collect();
    let book_lines = decimate_for_chart(ts, &book);
    let pairs: Vec<_> = input.ledger.pairs.iter().map(|l| decimate_for_chart(ts, &(0..l.len()).map(|i| l.row(i).equity).collect::<Vec<_>>())).collect();
    let y = value_range(book_lines.iter().chain(pairs.iter().flatten()), &[]);
    let (plot, side) = panels(area, "Equity: the book and each pair")?;
    let mut chart = time_chart(&plot, "equity (quote currency)", time_span(ts), y)?;
    let mut legend = Legend::default();
    draw_lines(&mut chart, &mut legend, &book_lines, BLUE.stroke_width(3), "book")?;
    // Solid lines first, dashed ones over them: pairs of equal size (an equal split) would
    // otherwise hide one under the other.
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.sort_by_key(|&k| crate::render::draw::series_style(k + 1).1);
    for k in order {
        draw_series_lines(&mut chart, &mut legend, &pairs[k], k + 1, &input.places[k].name)?;
    }
    legend.draw(&side)
}

fn account_series(input: &BookReport, value: impl Fn(&crate::sim::portfolio::AccountRow) -> f64) -> Vec<Vec<f64>> {
    input.ledger.accounts.iter().map(|rows| rows.iter().map(&value).collect()).collect()
}

fn distance_chart(input: &BookReport, area: &Area) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let ts = input.ledger.book.ts_ms();
    // Shown up to 100 %: beyond it the account is far from liquidation.
    let series = account_series(input, |r| if r.liquidation_distance.is_finite() { (r.liquidation_distance * 100.0).min(100.0) } else if r.liquidation_distance.is_nan() { f64::NAN } else { 100.0 });
    let lines: Vec<_> = series.iter().map(|s| decimate_for_chart(ts, s)).collect();
    let y = (0.0, 105.0);
    let (plot, side) = panels(area, "Distance to liquidation per account")?;
    let mut chart = time_chart(&plot, "adverse move to liquidation (%, capped at 100)", time_span(ts), y)?;
    let mut legend = Legend::default();
    for (a, account_lines) in lines.iter().enumerate() {
        let label = format!("{} ({})", input.accounts[a].name, crate::measure::book::mode_name(input.accounts[a].mode));
        draw_series_lines(&mut chart, &mut legend, account_lines, a, &label)?;
    }
    legend.draw(&side)
}

fn margin_ratio_chart(input: &BookReport, area: &Area) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let ts = input.ledger.book.ts_ms();
    let series = account_series(input, |r| if r.margin_ratio.is_finite() { r.margin_ratio * 100.0 } else { f64::NAN });
    let lines: Vec<_> = series.iter().map(|s| decimate_for_chart(ts, s)).collect();
    let thresholds: Vec<f64> = input.accounts.iter().map(|a| 100.0 / a.liquidation_threshold).collect();
    // Scaled to the ratios seen, so a healthy book's 0-5 % is readable; the liquidation level is
    // drawn when it falls inside, and named in the legend either way.
    let y = value_range(lines.iter().flatten(), &[0.0]);
    let y = (y.0, y.1.max(1.0));
    let (plot, side) = panels(area, "Margin ratio per account: maintenance over margin balance")?;
    let mut chart = time_chart(&plot, "margin ratio (%)", time_span(ts), y)?;
    let mut legend = Legend::default();
    for (a, account_lines) in lines.iter().enumerate() {
        draw_series_lines(&mut chart, &mut legend, account_lines, a, &input.accounts[a].name)?;
    }
    let mut drawn = Vec::new();
    for t in thresholds {
        if !drawn.iter().any(|d: &f64| (d - t).abs() < 1e-9) {
            if t <= y.1 {
                draw_level(&mut chart, &mut legend, time_span(ts), t, RED_DARK, &format!("liquidation at {t:.1} %"))?;
            } else {
                legend.add(format!("liquidation at {t:.1} % (above the chart)"), crate::render::draw::Glyph::Note);
            }
            drawn.push(t);
        }
    }
    legend.draw(&side)
}

/// The book's rolling 90-day Sharpe on its daily closes (risk-free 0: the book's pairs may
/// each name a cash rate, the book has none of its own).
fn rolling_sharpe_chart(input: &BookReport, area: &Area) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let ts = input.ledger.book.ts_ms();
    let equity: Vec<f64> = (0..input.ledger.book.len()).map(|i| input.ledger.book.row(i).equity).collect();
    let closes = super::tearsheet::daily_closes(ts, &equity);
    let returns = super::tearsheet::daily_returns(&closes, input.metrics.book.initial_capital);
    let (days, sharpe) = super::tearsheet::rolling_sharpe(&returns, 90);
    let lines = decimate_for_chart(&days, &sharpe);
    let y = value_range(lines.iter(), &[0.0]);
    let (plot, side) = panels(area, "Rolling 90-day Sharpe of the book (daily returns, risk-free 0)")?;
    let mut chart = time_chart(&plot, "Sharpe, trailing 90 days", time_span(ts), y)?;
    let mut legend = Legend::default();
    draw_level(&mut chart, &mut legend, time_span(ts), 0.0, RGBColor(120, 120, 120), "zero")?;
    draw_lines(&mut chart, &mut legend, &lines, BLUE.stroke_width(2), if sharpe.is_empty() { "needs 90 days of returns" } else { "rolling 90-day Sharpe" })?;
    legend.draw(&side)
}

/// The book's funding per calendar month (UTC), received above zero and paid below.
fn monthly_funding_chart(input: &BookReport, area: &Area) -> Result<()> {
    area.fill(&WHITE).map_err(draw_err)?;
    let ts = input.ledger.book.ts_ms();
    let funding: Vec<f64> = (0..input.ledger.book.len()).map(|i| input.ledger.book.row(i).pnl.funding).collect();
    let months = super::tearsheet::monthly_funding(ts, &funding);
    let day = crate::time::MS_PER_DAY;
    let y = value_range(std::iter::empty(), &months.iter().map(|m| m.1).chain([0.0]).collect::<Vec<f64>>());
    let x = (months.first().map(|m| m.0).unwrap_or(0), months.last().map(|m| m.0 + 31 * day).unwrap_or(1));
    let (plot, side) = panels(area, "Funding earned per month, the whole book")?;
    let mut chart = time_chart(&plot, "funding (quote currency)", x, y)?;
    let at = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    chart
        .draw_series(months.iter().map(|&(m, f)| {
            let colour = if f >= 0.0 { RGBColor(26, 127, 55) } else { RGBColor(179, 0, 0) };
            Rectangle::new([(at(m + 2 * day), 0.0), (at(m + 27 * day), f)], colour.filled())
        }))
        .map_err(draw_err)?;
    let mut legend = Legend::default();
    legend.add("received (month)", super::draw::Glyph::Line(RGBColor(26, 127, 55).stroke_width(8)));
    legend.add("paid (month)", super::draw::Glyph::Line(RGBColor(179, 0, 0).stroke_width(8)));
    legend.draw(&side)
}

/// The histogram of the book's daily returns against the normal curve.
fn return_distribution_chart(input: &BookReport, area: &Area) -> Result<()> {
    let equity: Vec<f64> = (0..input.ledger.book.len()).map(|i| input.ledger.book.row(i).equity).collect();
    super::tearsheet::return_distribution(input.ledger.book.ts_ms(), &equity, input.metrics.book.initial_capital, area)
}

type BookChart = (&'static str, &'static str, &'static str, fn(&BookReport, &Area) -> Result<()>);

const CHARTS: [BookChart; 6] = [
    ("book_equity.png", "Equity", "The book's equity (thick) and each pair's: a pair's line moves with its PnL and with the capital allocation moves in or out of it.", equity_chart),
    ("account_distance.png", "Distance to liquidation", "For each account, the smallest move of every price against it (each pair's prices the way that hurts the account) that would liquidate it (isolated: its nearest position), capped at 100 % for display.", distance_chart),
    ("account_margin_ratio.png", "Margin ratio", "Each account's maintenance margin over its margin balance (cash and haircut spot count in portfolio mode), on a scale fitted to the ratios seen; the account is liquidated at the level the legend names.", margin_ratio_chart),
    ("book_rolling_sharpe.png", "Rolling 90-day Sharpe", "The Sharpe ratio of the book's trailing 90 daily returns (mean over deviation, × √365, risk-free 0), from the 90th day on.", rolling_sharpe_chart),
    ("book_monthly_funding.png", "Funding per month", "Funding the whole book received (green) or paid (red) in each calendar month (UTC), in the quote currency.", monthly_funding_chart),
    ("book_return_distribution.png", "Distribution of daily returns", "A histogram of the book's daily returns (each UTC day's closing equity over the previous day's) against the normal curve with the same mean and deviation: mass beyond the curve is fat tails.", return_distribution_chart),
];

/// The book report's files: `index.html` and one PNG per chart.
pub fn render(input: &BookReport) -> Result<Vec<ReportFile>> {
    super::draw::ensure_font()?;
    let mut charts = Vec::new();
    for (file, title, description, draw) in CHARTS {
        let png = render_png(WIDTH, HEIGHT, |area| draw(input, area))?;
        charts.push(ChartImage { file, title: title.to_string(), description, width: WIDTH, height: HEIGHT, png });
    }
    let mut files: Vec<ReportFile> = charts.iter().map(|c| ReportFile { name: c.file.to_string(), bytes: c.png.clone() }).collect();
    files.push(ReportFile { name: "index.html".into(), bytes: page(input, &charts).into_bytes() });
    Ok(files)
}

/// File names a book report writes.
pub fn file_names() -> Vec<&'static str> {
    CHARTS.iter().map(|c| c.0).chain(["index.html"]).collect()
}

/// The book's interactive charts, one over each PNG (zoom, pan, values under the cursor):
/// equity of the book and each pair, and each account's distance to liquidation and margin
/// ratio.
fn plots(input: &BookReport) -> Vec<crate::render::interactive::Plot> {
    use crate::render::interactive::plot;
    let ts = input.ledger.book.ts_ms();
    let mut equity = vec![("book".to_string(), (0..input.ledger.book.len()).map(|i| input.ledger.book.row(i).equity).collect::<Vec<f64>>())];
    for (k, ledger) in input.ledger.pairs.iter().enumerate() {
        equity.push((input.places[k].name.clone(), (0..ledger.len()).map(|i| ledger.row(i).equity).collect()));
    }
    let per_account = |value: &dyn Fn(&crate::sim::portfolio::AccountRow) -> f64| -> Vec<(String, Vec<f64>)> {
        input.ledger.accounts.iter().enumerate().map(|(a, rows)| (input.accounts[a].name.clone(), rows.iter().map(value).collect())).collect()
    };
    let distance = per_account(&|r| if r.liquidation_distance.is_finite() { (r.liquidation_distance * 100.0).min(100.0) } else if r.liquidation_distance.is_nan() { f64::NAN } else { 100.0 });
    let ratio = per_account(&|r| if r.margin_ratio.is_finite() { r.margin_ratio * 100.0 } else { f64::NAN });
    let closes = super::tearsheet::daily_closes(ts, &equity[0].1);
    let (days, sharpe) = super::tearsheet::rolling_sharpe(&super::tearsheet::daily_returns(&closes, input.metrics.book.initial_capital), 90);
    vec![
        plot("book_equity", "equity (quote currency)", ts, equity.clone()),
        plot("account_distance", "adverse move to liquidation (%, capped at 100)", ts, distance),
        plot("account_margin_ratio", "margin ratio (%)", ts, ratio),
        plot("book_rolling_sharpe", "Sharpe, trailing 90 days", &days, vec![("rolling 90-day Sharpe".into(), sharpe)]),
    ]
}

fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    // Wide tables scroll inside their own box, never the page.
    let mut out = String::from("<div style=\"overflow-x:auto\">\n<table>\n<tr>");
    for h in headers {
        out.push_str(&format!("<th>{}</th>", escape(h)));
    }
    out.push_str("</tr>\n");
    for row in rows {
        out.push_str("<tr>");
        for (k, cell) in row.iter().enumerate() {
            out.push_str(&format!("<td{}>{}</td>", if k == 0 { "" } else { " class=\"num\"" }, escape(cell)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n</div>\n");
    out
}

fn page(input: &BookReport, charts: &[ChartImage]) -> String {
    let m = input.metrics;
    let b = &m.book;
    let mut body = format!(
        "<h1>{}</h1>\n<p>Book of {} pairs in {} accounts, {} to {} ({} steps).</p>\n",
        escape(input.run_name),
        input.places.len(),
        input.accounts.len(),
        escape(&b.start),
        escape(&b.end),
        b.steps
    );
    // The single run's summary cards, on the book.
    body.push_str("<div class=\"cards\">\n");
    for (label, value, class) in [
        ("Return on capital", pct(m.return_on_capital), if m.return_on_capital >= 0.0 { "pos" } else { "neg" }),
        ("APR", pct(b.apr), if b.apr >= 0.0 { "pos" } else { "neg" }),
        ("Sharpe", format!("{:.2}", b.sharpe), ""),
        ("Max drawdown", pct(b.max_drawdown), if b.max_drawdown < 0.0 { "neg" } else { "" }),
        ("Funding APR on capital", pct(m.funding_apr_on_capital), if m.funding_apr_on_capital >= 0.0 { "pos" } else { "neg" }),
        ("Capital efficiency", format!("{:.2}x", m.capital_efficiency), ""),
        ("Liquidations", b.liquidations.to_string(), if b.liquidations > 0 { "neg" } else { "" }),
    ] {
        body.push_str(&html::card(label, &value, class));
    }
    body.push_str("</div>\n");
    body.push_str("<section><h2>Summary</h2>\n");
    body.push_str(&table(
        &["measure", "value"],
        &[
            vec!["capital".into(), money(b.initial_capital)],
            vec!["final equity".into(), money(b.final_equity)],
            vec!["return on capital".into(), pct(m.return_on_capital)],
            vec!["APR".into(), pct(b.apr)],
            vec!["max drawdown".into(), pct(b.max_drawdown)],
            vec!["Sharpe".into(), format!("{:.2}", b.sharpe)],
            vec!["funding".into(), money(b.funding_pnl)],
            vec!["funding APR on capital".into(), pct(m.funding_apr_on_capital)],
            vec!["funding APR on mean margin posted".into(), pct(m.funding_apr_on_margin)],
            vec!["mean margin posted".into(), money(m.mean_margin_posted)],
            vec!["capital efficiency (capital / margin posted)".into(), format!("{:.2}x", m.capital_efficiency)],
            vec!["allocation rebalances".into(), m.allocation_rebalances.to_string()],
        ],
    ));
    body.push_str("</section>\n");
    let pair_rows: Vec<Vec<String>> = m
        .pairs
        .iter()
        .map(|(name, p)| {
            vec![
                name.clone(),
                p.spot_account.clone(),
                p.perp_account.clone(),
                money(p.metrics.initial_capital),
                money(p.transfers_in),
                money(p.metrics.final_equity),
                money(p.metrics.funding_pnl),
                pct(p.metrics.funding_apr_while_held),
                pct(p.metrics.max_drawdown),
                p.metrics.liquidations.to_string(),
            ]
        })
        .collect();
    body.push_str("<section><h2>Pairs</h2>\n<p>Each pair's own run: its first allocation, the capital moved in by allocation rebalances (net), and its results.</p>\n");
    body.push_str(&table(&["pair", "spot in", "perp in", "first allocation", "moved in", "final equity", "funding", "funding APR while held", "max drawdown", "liquidations"], &pair_rows));
    body.push_str("</section>\n");
    let account_rows: Vec<Vec<String>> = m
        .accounts
        .iter()
        .map(|(name, a)| {
            vec![
                name.clone(),
                a.margin_mode.to_string(),
                format!("{:.2}", a.liquidation_threshold),
                a.liquidations.to_string(),
                if a.first_liquidation.is_empty() { "none".into() } else { a.first_liquidation.clone() },
                a.min_liquidation_distance.map(pct).unwrap_or_else(|| "n/a".into()),
                format!("{:.1} %", a.max_margin_ratio * 100.0),
            ]
        })
        .collect();
    body.push_str("<section><h2>Accounts</h2>\n");
    body.push_str(&table(&["account", "margin mode", "liquidated at balance / maintenance", "liquidations", "first liquidation", "min distance to liquidation", "max margin ratio"], &account_rows));
    body.push_str("</section>\n");
    // Components down, accounts across: as many columns as accounts, so it fits the page.
    let components: Vec<String> = crate::model::Pnl::NAMES.iter().map(|n| n.to_string()).chain(["total".to_string()]).collect();
    let venue_rows: Vec<Vec<String>> = components
        .iter()
        .filter(|c| c.as_str() == "total" || m.pnl_by_account.values().any(|pnl| pnl.get(*c).copied().unwrap_or(0.0) != 0.0))
        .map(|c| std::iter::once(c.clone()).chain(m.pnl_by_account.values().map(|pnl| money(pnl.get(c).copied().unwrap_or(0.0)))).collect())
        .collect();
    let mut headers = vec!["component"];
    headers.extend(m.pnl_by_account.keys().map(String::as_str));
    body.push_str("<section><h2>PnL by account (venue)</h2>\n<p>Each leg's PnL where it was booked: the spot leg's in the spot account, the perp's in the perp account.</p>\n");
    body.push_str(&table(&headers, &venue_rows));
    body.push_str("</section>\n");
    let names = &m.correlation.names;
    let corr_rows: Vec<Vec<String>> = names
        .iter()
        .zip(&m.correlation.matrix)
        .map(|(n, row)| std::iter::once(n.clone()).chain(row.iter().map(|c| c.map(|v| format!("{v:.2}")).unwrap_or_else(|| "n/a".into()))).collect())
        .collect();
    let mut corr_headers = vec![""];
    corr_headers.extend(names.iter().map(String::as_str));
    body.push_str("<section><h2>Correlation of daily returns</h2>\n");
    body.push_str(&table(&corr_headers, &corr_rows));
    body.push_str("</section>\n");
    for chart in charts {
        body.push_str(&html::chart_section(chart));
    }
    // The tearsheet's worst drawdowns, on the book's equity.
    let ts = input.ledger.book.ts_ms();
    let equity: Vec<f64> = (0..input.ledger.book.len()).map(|i| input.ledger.book.row(i).equity).collect();
    let drawdown_rows: Vec<Vec<String>> = super::tearsheet::worst_drawdowns(ts, &equity, 5)
        .iter()
        .map(|e| {
            let end = e.recovery_ms.unwrap_or_else(|| ts.last().copied().unwrap_or(e.start_ms));
            vec![
                crate::time::format_ms(e.start_ms),
                crate::time::format_ms(e.trough_ms),
                e.recovery_ms.map(crate::time::format_ms).unwrap_or_else(|| "not recovered".into()),
                format!("{:.2} %", e.depth * 100.0),
                format!("{:.1}", (end - e.start_ms) as f64 / crate::time::MS_PER_DAY as f64),
            ]
        })
        .collect();
    body.push_str("<section><h2>Worst drawdowns of the book</h2>\n");
    body.push_str(&table(&["from the peak", "trough", "recovered", "depth", "days"], &drawdown_rows));
    body.push_str("</section>\n");
    if !input.warnings.is_empty() {
        body.push_str("<section><h2>Warnings</h2>\n<ul class=\"warn\">\n");
        for w in input.warnings {
            body.push_str(&format!("<li>{}</li>\n", escape(w)));
        }
        body.push_str("</ul>\n</section>\n");
    }
    html::page_with_scripts(&format!("basis book: {}", input.run_name), &body, &crate::render::interactive::page_scripts(&plots(input)))
}
