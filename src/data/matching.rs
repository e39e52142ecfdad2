//! Inputs that do not belong together: a perp file beside another coin's spot, a mark of a third
//! market, or a `symbol` that names a different market than the files do. Each loads without
//! error and simulates to a confident, wrong number, so the load refuses them with both files
//! and the figure named, and a `[data]` key to override when the pairing is meant.
//!
//! - **Prices**: the median of the perp's close over the spot's (and the mark's over the perp's)
//!   at the times both have a bar must lie within [`MAX_MEDIAN_RATIO`] of 1. A carry's basis is a
//!   fraction of a percent; 25 % apart is two different markets (ETH against BTC is about 1/20),
//!   or a perp quoted per 1,000 units (`1000SHIBUSDT`) beside a spot per unit.
//! - **Symbols**: where a layout carries the market's name (Binance kline and funding dumps: the
//!   file name up to its first `-`; a freqtrade pair), it must be `symbol`.

use std::path::Path;

use anyhow::Result;

use super::source::{DataConfig, FundingFormat, PriceFormat, PriceSource};
use super::PriceBars;
use crate::bail_input;

/// How far from 1 the median price ratio of two series may be (either way) before they are
/// taken for two markets.
pub const MAX_MEDIAN_RATIO: f64 = 1.25;

/// Bars compared at most (evenly spread over the times both series share).
const MAX_SAMPLES: usize = 20_001;

/// The median of `a`'s close over `b`'s at the times both have a bar (NaN when none), and how
/// many times were compared.
pub fn median_ratio(a: &PriceBars, b: &PriceBars) -> (f64, usize) {
    let (mut i, mut j) = (0, 0);
    let mut shared = Vec::new();
    while i < a.ts_ms.len() && j < b.ts_ms.len() {
        match a.ts_ms[i].cmp(&b.ts_ms[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared.push((i, j));
                i += 1;
                j += 1;
            }
        }
    }
    let stride = shared.len().div_ceil(MAX_SAMPLES).max(1);
    let mut ratios: Vec<f64> = shared.iter().step_by(stride).map(|&(i, j)| a.close[i] / b.close[j]).filter(|r| r.is_finite() && *r > 0.0).collect();
    if ratios.is_empty() {
        return (f64::NAN, 0);
    }
    let mid = ratios.len() / 2;
    let (_, median, _) = ratios.select_nth_unstable_by(mid, f64::total_cmp);
    (*median, shared.len())
}

/// What `label`'s source is, for messages: its path, or the freqtrade directory and pair.
fn source_name(config: &DataConfig, label: &str) -> String {
    if let Some(ft) = &config.freqtrade {
        let pair = if label == "spot" { ft.pair.clone() } else { ft.perp_pair.clone().unwrap_or_else(|| format!("{}:{}", ft.pair, ft.pair.rsplit('/').next().unwrap_or("USDT"))) };
        return format!("{label} ({} in {})", pair, ft.datadir);
    }
    let source = match label {
        "spot" => config.spot.as_ref(),
        "perp" => config.perp.as_ref(),
        "mark" => config.mark.as_ref(),
        _ => None,
    };
    source.map_or_else(|| label.to_string(), |s| format!("{label} ({})", s.path))
}

/// Refuse a perp whose prices are not the spot's market (and a mark not the perp's), unless
/// `[data] allow_price_mismatch` says the pairing is meant.
pub fn check_prices(config: &DataConfig, spot: &PriceBars, perp: &PriceBars, mark: Option<&PriceBars>) -> Result<()> {
    if config.allow_price_mismatch {
        return Ok(());
    }
    let checks: [(&str, &PriceBars, &str, Option<&PriceBars>); 2] = [("perp", perp, "spot", Some(spot)), ("mark", mark.unwrap_or(perp), "perp", mark.map(|_| perp))];
    for (label, series, against_label, against) in checks {
        let Some(against) = against else { continue };
        let (ratio, shared) = median_ratio(series, against);
        if shared == 0 || !ratio.is_finite() {
            continue;
        }
        if ratio > MAX_MEDIAN_RATIO || ratio < 1.0 / MAX_MEDIAN_RATIO {
            bail_input!(
                "{} and {} do not look like one market: the median {label}/{against_label} price ratio over {shared} shared bar times is {}, where a carry's basis keeps it within a few percent of 1. Check that both files are the same coin (symbol {}); if the pairing is meant (a perp quoted per 1,000 units, say), set `allow_price_mismatch = true` in [data]",
                source_name(config, label),
                source_name(config, against_label),
                format_ratio(ratio),
                config.symbol
            );
        }
    }
    Ok(())
}

fn format_ratio(ratio: f64) -> String {
    if ratio >= 0.01 && ratio < 100.0 {
        format!("{ratio:.4}")
    } else {
        format!("{ratio:.3e}")
    }
}

/// The market a Binance dump names: its file name up to the first `-` (`ETHUSDT-1h-2024-01.csv`
/// → `ETHUSDT`); None for other names.
pub fn binance_file_symbol(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let (symbol, rest) = name.split_once('-')?;
    (!symbol.is_empty() && rest.contains('-') && symbol.bytes().all(|b| b.is_ascii_alphanumeric())).then(|| symbol.to_ascii_uppercase())
}

/// `symbol` with the punctuation venues put between base and quote taken out
/// (`BTC/USDT:USDT` → `BTCUSDT`, `BTC-USDT-SWAP` → `BTCUSDTSWAP`).
fn bare(symbol: &str) -> String {
    let base = symbol.split(':').next().unwrap_or(symbol);
    base.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_uppercase()
}

/// Refuse a `symbol` that names another market than the files do, where their layout names one,
/// unless `[data] allow_symbol_mismatch` says so: Binance dumps by file name, freqtrade by pair.
pub fn check_symbol(config: &DataConfig) -> Result<()> {
    if config.allow_symbol_mismatch || config.symbol.is_empty() {
        return Ok(());
    }
    let want = bare(&config.symbol);
    if let Some(ft) = &config.freqtrade {
        let pair = bare(&ft.pair);
        if pair != want {
            bail_input!(
                "[data] symbol = {:?} but [data.freqtrade] pair = {:?} (market {pair}): the symbol picks the venue's margin tiers and caps, so they must agree. Set symbol = {pair:?}, or `allow_symbol_mismatch = true` in [data] if the names differ on purpose",
                config.symbol,
                ft.pair
            );
        }
        return Ok(());
    }
    for (label, source) in [("spot", config.spot.as_ref()), ("perp", config.perp.as_ref()), ("mark", config.mark.as_ref())] {
        let Some(source): Option<&PriceSource> = source.filter(|s| s.format == PriceFormat::BinanceKlines) else { continue };
        // A pattern that matches nothing is the loader's to report.
        let paths = super::read::expand_glob(&source.path, label).unwrap_or_default();
        for path in &paths {
            let Some(named) = binance_file_symbol(path) else { continue };
            if named != want {
                bail_input!(
                    "{}: the file is named for {named}, but [data] symbol = {:?}: the symbol picks the venue's margin tiers and caps, and the files must be that market. Point {label} at {:?}'s files, set symbol = {named:?}, or set `allow_symbol_mismatch = true` in [data] if the names differ on purpose",
                    path.display(),
                    config.symbol,
                    config.symbol
                );
            }
        }
    }
    // Binance's funding dumps are named for their market too (`BTCUSDT-fundingRate-2024-01.csv`).
    if let Some(funding) = config.funding.as_ref().filter(|f| f.format == FundingFormat::BinanceFunding) {
        for path in super::read::expand_glob(&funding.path, "funding").unwrap_or_default() {
            let Some(named) = binance_file_symbol(&path) else { continue };
            if named != want {
                bail_input!(
                    "{}: the funding file is named for {named}, but [data] symbol = {:?}: the funding must be the market's own. Point funding at {:?}'s files, set symbol = {named:?}, or set `allow_symbol_mismatch = true` in [data] if the names differ on purpose",
                    path.display(),
                    config.symbol,
                    config.symbol
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars(ts: &[i64], close: &[f64]) -> PriceBars {
        PriceBars { ts_ms: ts.to_vec(), close: close.to_vec(), ..Default::default() }
    }

    #[test]
    fn the_median_ratio_uses_shared_times_only() {
        let a = bars(&[1, 2, 3, 4, 5], &[10.0, 20.0, 30.0, 40.0, 50.0]);
        let b = bars(&[2, 3, 4, 6], &[10.0, 10.0, 10.0, 1.0]);
        // Shared: 2, 3, 4 → ratios 2, 3, 4: the median is 3.
        assert_eq!(median_ratio(&a, &b), (3.0, 3));
        assert!(median_ratio(&a, &bars(&[9], &[1.0])).0.is_nan());
    }

    #[test]
    fn binance_names_and_pairs_give_their_market() {
        assert_eq!(binance_file_symbol(Path::new("/d/ETHUSDT-1h-2024-01.csv")).as_deref(), Some("ETHUSDT"));
        assert_eq!(binance_file_symbol(Path::new("/d/BTCUSDT-fundingRate-2024-01.csv")).as_deref(), Some("BTCUSDT"));
        assert_eq!(binance_file_symbol(Path::new("/d/spot.csv")), None);
        assert_eq!(bare("BTC/USDT:USDT"), "BTCUSDT");
        assert_eq!(bare("btcusdt"), "BTCUSDT");
    }
}
