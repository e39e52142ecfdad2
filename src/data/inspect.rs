//! `basis data inspect <files...>`: what a file holds before a backtest reads it: rows, time
//! span, bar spacing and gaps, settlement intervals, rate statistics and cap hits (against the
//! Binance preset's cap for the symbol in the file name), and any repairs the loader reports.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use super::binance::{load_funding, load_klines};
use super::read::read_table;
use crate::config::{FundingFormat, FundingSource, PriceSource};
use crate::time::format_ms;

/// Text for one file.
pub fn inspect(path: &Path) -> Result<String> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let lower = name.to_ascii_lowercase();
    let text = path.to_string_lossy().into_owned();
    let mut out = format!("{}\n", path.display());
    let mut warnings = Vec::new();
    if lower.ends_with(".parquet") || lower.ends_with(".feather") || lower.ends_with(".arrow") {
        let table = read_table(path)?;
        out.push_str(&format!("  {} rows; columns: {}\n", table.frame.height(), table.frame.columns().iter().map(|c| format!("{} ({})", c.name(), c.dtype())).collect::<Vec<_>>().join(", ")));
        return Ok(out);
    }
    let head = super::read::read_bytes(path).ok().map(|b| String::from_utf8_lossy(&b[..b.len().min(200)]).to_ascii_lowercase()).unwrap_or_default();
    let is_funding = lower.contains("fundingrate") || head.starts_with("calc_time") || head.contains("funding_rate");
    if is_funding {
        let format = if head.contains("funding_time") { FundingFormat::BinanceRest } else { FundingFormat::BinanceFunding };
        let symbol = name.split(['-', '_']).next().unwrap_or("").to_ascii_uppercase();
        let symbol = if format == FundingFormat::BinanceRest { head.lines().nth(1).and_then(|l| l.split(',').next()).unwrap_or("").to_ascii_uppercase() } else { symbol };
        let source = FundingSource::new(format, text);
        let f = load_funding(&source, &symbol, &mut Vec::new(), &mut warnings)?;
        let n = f.rate.len();
        let mut intervals: BTreeMap<String, usize> = BTreeMap::new();
        for h in &f.interval_hours {
            *intervals.entry(format!("{h} h")).or_default() += 1;
        }
        let hours: f64 = f.interval_hours.iter().sum();
        let mean = f.rate.iter().sum::<f64>() / n.max(1) as f64;
        let (min, max) = f.rate.iter().fold((f64::MAX, f64::MIN), |a, r| (a.0.min(*r), a.1.max(*r)));
        out.push_str(&format!("  funding ({format:?}), symbol {symbol}: {n} settlements, {} -> {}\n", format_ms(f.settle_ms[0]), format_ms(f.settle_ms[n - 1])));
        out.push_str(&format!("  intervals: {}\n", intervals.iter().map(|(k, v)| format!("{k} x{v}")).collect::<Vec<_>>().join(", ")));
        out.push_str(&format!(
            "  rate per settlement: min {:+.4} %, mean {:+.4} %, max {:+.4} %; positive {:.1} %; APR {:+.2} % (sum of rates / hours covered x 8760)\n",
            min * 100.0,
            mean * 100.0,
            max * 100.0,
            f.rate.iter().filter(|r| **r > 0.0).count() as f64 / n.max(1) as f64 * 100.0,
            f.rate.iter().sum::<f64>() / hours.max(1e-9) * 8760.0 * 100.0
        ));
        let preset = crate::venue::Preset::load("binance_usdm", Path::new("."))?;
        let (mut at_cap, mut at_floor) = (0, 0);
        for i in 0..n {
            let (cap, floor) = preset.limits_at(&symbol, f.settle_ms[i], f.interval_hours[i]);
            at_cap += usize::from(crate::report::series::at_limit(f.rate[i], cap, None));
            at_floor += usize::from(crate::report::series::at_limit(f.rate[i], None, floor));
        }
        out.push_str(&format!("  at Binance's cap / floor for {symbol}: {at_cap} / {at_floor}\n"));
    } else {
        let source = PriceSource::binance_klines(text);
        let bars = load_klines(&source, "bars", &mut Vec::new(), &mut warnings)?;
        let n = bars.ts_ms.len();
        let mut spacing: BTreeMap<i64, usize> = BTreeMap::new();
        for w in bars.ts_ms.windows(2) {
            *spacing.entry(w[1] - w[0]).or_default() += 1;
        }
        let bar_ms = spacing.iter().max_by_key(|(_, c)| **c).map(|(s, _)| *s).unwrap_or(0);
        let gaps: Vec<(i64, i64)> = bars.ts_ms.windows(2).filter(|w| w[1] - w[0] > bar_ms).map(|w| (w[0], w[1])).collect();
        let (lo, hi) = bars.close.iter().fold((f64::MAX, f64::MIN), |a, c| (a.0.min(*c), a.1.max(*c)));
        out.push_str(&format!("  klines: {n} bars of {} s, closing {} -> {}\n", bar_ms / 1000, format_ms(bars.ts_ms[0]), format_ms(bars.ts_ms[n - 1])));
        out.push_str(&format!("  close {lo} .. {hi}; volume {}\n", if bars.volume.is_empty() { "none" } else { "present" }));
        out.push_str(&format!("  gaps: {}{}\n", gaps.len(), gaps.first().map(|g| format!(" (first {} -> {})", format_ms(g.0), format_ms(g.1))).unwrap_or_default()));
    }
    for w in warnings {
        out.push_str(&format!("  note: {w}\n"));
    }
    Ok(out)
}
