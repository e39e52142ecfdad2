//! Market data: loaders for each source format, the canonical tables they produce, validation,
//! point-in-time alignment, and the synthetic sample generator.
//!
//! Every loader returns one of the canonical series below, with timestamps in epoch milliseconds
//! (UTC) at the moment the values became known: a bar's close time, a settlement's time.

pub mod align;
pub mod binance;
pub mod clock;
pub mod dated;
pub mod fetch;
pub mod freqtrade;
pub mod generic;
pub mod quality;
pub mod read;
pub mod synth;
pub mod source;
pub mod venue_formats;

use std::path::PathBuf;

use anyhow::Result;

use crate::bail_input;
use crate::data::source::{DataConfig, FundingFormat, PriceFormat, PriceSource};

/// Price bars of one instrument, sorted by `ts_ms` with no duplicates.
#[derive(Debug, Clone, Default)]
pub struct PriceBars {
    /// What the series is (`spot`, `perp`, `mark`), for messages.
    pub label: String,
    /// Time the bar's values became known (its close), epoch ms UTC.
    pub ts_ms: Vec<i64>,
    /// Close price per bar, quote currency.
    pub close: Vec<f64>,
    /// High price per bar, quote currency.
    pub high: Vec<f64>,
    /// Low price per bar, quote currency.
    pub low: Vec<f64>,
    /// Traded volume per bar (base units); empty when the source has none, NaN for a row
    /// without it. Zero-volume spot bars are one sign of an exchange outage.
    pub volume: Vec<f64>,
}

impl PriceBars {
    /// Volume of bar `i`, NaN when unknown.
    pub fn volume_at(&self, i: usize) -> f64 {
        self.volume.get(i).copied().unwrap_or(f64::NAN)
    }
}

/// Funding settlements, sorted by `settle_ms` with no duplicates.
#[derive(Debug, Clone, Default)]
pub struct FundingSeries {
    /// Settlement time, epoch ms UTC (Binance's few ms of jitter rounded to the second).
    pub settle_ms: Vec<i64>,
    /// Rate per interval, decimal; positive means longs pay shorts.
    pub rate: Vec<f64>,
    /// Length of the interval this rate covers, hours (read per row).
    pub interval_hours: Vec<f64>,
    /// Mark price at settlement where the source has it, else NaN.
    pub mark_price: Vec<f64>,
}

/// Staking APR known from each time on.
#[derive(Debug, Clone, Default)]
pub struct StakingSeries {
    /// Time from which each APR is known, epoch ms UTC.
    pub ts_ms: Vec<i64>,
    /// Decimal APR.
    pub apr: Vec<f64>,
}

/// Everything a run loads, before alignment.
#[derive(Debug, Clone, Default)]
pub struct MarketData {
    /// Traded symbol as the config names it, e.g. `BTCUSDT`.
    pub symbol: String,
    /// True when the data is synthetic (`data.synthetic`), not market history.
    pub synthetic: bool,
    /// Spot price bars.
    pub spot: PriceBars,
    /// Perp price bars.
    pub perp: PriceBars,
    /// Mark price bars, when given or found; without them the perp's price stands in for the mark.
    pub mark: Option<PriceBars>,
    /// The mark was found (a freqtrade directory), not configured: where it is missing the
    /// perp's last stands in, with a warning, instead of the window being clipped.
    pub mark_optional: bool,
    /// The funding series was derived from the prices (counterfactual funding), so it covers
    /// what they cover: it does not clip the window.
    pub funding_derived: bool,
    /// Index (oracle) price bars, when configured.
    pub index: Option<PriceBars>,
    /// Funding settlements (or counterfactual ones when `funding_derived`).
    pub funding: FundingSeries,
    /// Staking APR series of the spot leg, when configured; else a constant APR applies at alignment.
    pub staking: Option<StakingSeries>,
    /// Dated futures contracts (`[data.dated]`), sorted by expiry; empty without.
    pub dated: Vec<dated::Contract>,
    /// The cash rate (`[data.cash_rate]`).
    pub cash_rate: Option<dated::RateSeries>,
    /// The reverse carry's borrow rate over time (`[data.borrow_rate]`).
    pub borrow_rate: Option<dated::RateSeries>,
    /// Every file read, for the manifest.
    pub files: Vec<PathBuf>,
    /// Repairs made and data-quality findings, for the terminal and the manifest.
    pub warnings: Vec<String>,
}

/// Load every series the config names.
pub fn load(config: &DataConfig) -> Result<MarketData> {
    let mut files = Vec::new();
    let mut warnings = Vec::new();
    let mark_optional = config.freqtrade.is_some() || config.mark_optional;
    let (spot, mut perp, mark, funding) = match (&config.freqtrade, &config.spot, &config.perp, &config.funding) {
        (Some(source), _, _, _) => freqtrade::load(source, &mut files, &mut warnings)?,
        (None, Some(spot), Some(perp), Some(funding)) => {
            let spot = load_prices(spot, "spot", &mut files, &mut warnings)?;
            let perp = load_prices(perp, "perp", &mut files, &mut warnings)?;
            let mark = match &config.mark {
                Some(source) => Some(load_prices(source, "mark", &mut files, &mut warnings)?),
                None => None,
            };
            let funding = match funding.format {
                FundingFormat::BinanceFunding | FundingFormat::BinanceRest => binance::load_funding(funding, &config.symbol, &mut files, &mut warnings)?,
                FundingFormat::Generic => generic::load_funding(funding, &mut files, &mut warnings)?,
                _ => venue_formats::load_funding(funding, &mut files, &mut warnings)?,
            };
            (spot, perp, mark, funding)
        }
        _ => bail_input!("[data] needs either [data.freqtrade] or all of [data.spot], [data.perp] and [data.funding]"),
    };
    if config.skip_listing_placeholders {
        quality::skip_listing_placeholders(&mut perp, &mut warnings);
    }
    let staking = match &config.staking {
        Some(source) => Some(generic::load_staking(source, &mut files)?),
        None => None,
    };
    let index = match &config.index {
        Some(source) => Some(load_prices(source, "index", &mut files, &mut warnings)?),
        None => None,
    };
    let dated = match &config.dated {
        Some(source) => dated::load_contracts(source, &mut files, &mut warnings)?,
        None => Vec::new(),
    };
    let cash_rate = config.cash_rate.as_ref().map(|source| dated::load_rate(source, "cash_rate", &mut files)).transpose()?;
    let borrow_rate = config.borrow_rate.as_ref().map(|source| dated::load_rate(source, "borrow_rate", &mut files)).transpose()?;
    // Clocks: settlements against the venue's schedule, bars against their own spacing.
    let schedule = config.funding_schedule.clone().or_else(|| match (&config.freqtrade, &config.funding) {
        (Some(ft), _) if ft.exchange.eq_ignore_ascii_case("binance") => clock::Schedule::for_format(crate::data::source::FundingFormat::BinanceFunding),
        (None, Some(source)) => clock::Schedule::for_format(source.format),
        _ => None,
    });
    let schedule = schedule.unwrap_or_else(|| clock::Schedule::utc_grid(typical_interval_hours(&funding.interval_hours)));
    warnings.extend(clock::funding_offset_warning(&funding.settle_ms, &funding.interval_hours, &schedule));
    for bars in [Some(&spot), Some(&perp), mark.as_ref(), index.as_ref()].into_iter().flatten() {
        warnings.extend(clock::bar_offset_warning(&bars.label, &bars.ts_ms));
    }
    Ok(MarketData {
        symbol: config.symbol.clone(),
        synthetic: config.synthetic,
        spot,
        perp,
        mark,
        mark_optional,
        funding_derived: false,
        index,
        funding,
        staking,
        dated,
        cash_rate,
        borrow_rate,
        files,
        warnings,
    })
}

/// The most common settlement interval, hours (8 when there is none).
pub fn typical_interval_hours(interval_hours: &[f64]) -> f64 {
    let mut counts: Vec<(f64, usize)> = Vec::new();
    for h in interval_hours.iter().filter(|h| h.is_finite()) {
        match counts.iter_mut().find(|(v, _)| v == h) {
            Some(entry) => entry.1 += 1,
            None => counts.push((*h, 1)),
        }
    }
    counts.into_iter().max_by_key(|(_, c)| *c).map(|(h, _)| h).unwrap_or(8.0)
}

fn load_prices(source: &PriceSource, label: &str, files: &mut Vec<PathBuf>, warnings: &mut Vec<String>) -> Result<PriceBars> {
    match source.format {
        PriceFormat::BinanceKlines => binance::load_klines(source, label, files, warnings),
        PriceFormat::Generic => generic::load_prices(source, label, files, warnings),
        PriceFormat::BybitTrades => venue_formats::load_bybit_trades(source, label, files, warnings),
    }
}

/// Where a row came from (file index, 0-based row), for messages after files are merged.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    /// Index of the file in its [`Sources`].
    pub file: u32,
    /// 0-based data row in that file (header lines not counted).
    pub row: u32,
}

/// The files rows were read from, to turn an [`Origin`] into "file: line N" only when an
/// error needs it (formatting every row's location is slower than loading it).
#[derive(Default)]
pub struct Sources {
    files: Vec<(PathBuf, usize, bool)>,
}

impl Sources {
    /// Register a table's file; returns its index for [`Origin`]s.
    pub fn add(&mut self, table: &read::RawTable) -> u32 {
        self.files.push((table.file.clone(), table.header_lines, table.is_csv));
        (self.files.len() - 1) as u32
    }

    /// Register a streamed CSV file; returns its index for [`Origin`]s.
    pub fn add_csv(&mut self, file: &std::path::Path, header_lines: usize) -> u32 {
        self.files.push((file.to_path_buf(), header_lines, true));
        (self.files.len() - 1) as u32
    }

    /// Register a file of records (JSON): locations read "row N".
    pub fn add_records(&mut self, file: &std::path::Path) -> u32 {
        self.files.push((file.to_path_buf(), 0, false));
        (self.files.len() - 1) as u32
    }

    /// Set the header line count of a file registered before it was read.
    pub fn set_header_lines(&mut self, file: u32, header_lines: usize) {
        if let Some(entry) = self.files.get_mut(file as usize) {
            entry.1 = header_lines;
        }
    }

    /// "file: line N" (CSV) or "file: row N" (columnar) of an origin.
    pub fn locate(&self, origin: Origin) -> String {
        match self.files.get(origin.file as usize) {
            Some((file, header, is_csv)) => read::locate(file, *header, *is_csv, origin.row as usize),
            None => "?".into(),
        }
    }
}

/// Rows of a bar series gathered from one or more files.
#[derive(Default)]
pub struct BarRows {
    /// The files the rows came from, to locate a row in messages.
    pub sources: Sources,
    /// (known at, [close, high, low, volume or NaN, open or NaN], origin).
    pub rows: Vec<(i64, [f64; 5], Origin)>,
}

impl BarRows {
    /// Check prices, sort by time, drop exact duplicates (overlapping dumps) and reject
    /// conflicting ones.
    pub fn finish(mut self, label: &str, warnings: &mut Vec<String>) -> Result<PriceBars> {
        for (_, [close, high, low, volume, open], origin) in &self.rows {
            check_bar(label, *open, *high, *low, *close, *volume).map_err(|why| crate::input_error!("{}: {why}", self.sources.locate(*origin)))?;
        }
        if !self.rows.is_sorted_by_key(|row| row.0) {
            // Files may come in any order; rows going back in time inside one file are a repair
            // worth saying out loud.
            let backwards: Vec<Origin> = self.rows.windows(2).filter(|w| w[0].2.file == w[1].2.file && w[1].0 < w[0].0).map(|w| w[1].2).collect();
            if let Some(first) = backwards.first() {
                warnings.push(format!(
                    "{label}: {} row(s) out of time order inside their file (first: {}); sorted by time",
                    backwards.len(),
                    self.sources.locate(*first)
                ));
            }
            self.rows.sort_by_key(|row| row.0);
        }
        // Sized once: pushing into empty vectors would leave up to half of each unused.
        let n = self.rows.len();
        let mut bars = PriceBars { label: label.to_string(), ts_ms: Vec::with_capacity(n), close: Vec::with_capacity(n), high: Vec::with_capacity(n), low: Vec::with_capacity(n), volume: Vec::with_capacity(n) };
        let mut dropped = 0usize;
        for i in 0..self.rows.len() {
            let (ts, values, origin) = &self.rows[i];
            if i > 0 && self.rows[i - 1].0 == *ts {
                // Bitwise, so two rows without volume (NaN) still count as identical.
                if self.rows[i - 1].1.map(f64::to_bits) == values.map(f64::to_bits) {
                    dropped += 1;
                    continue;
                }
                bail_input!(
                    "{label} bars: two different rows for time {}: {} and {}. Remove one of the files or rows.",
                    crate::time::format_ms(*ts),
                    self.sources.locate(self.rows[i - 1].2),
                    self.sources.locate(*origin)
                );
            }
            bars.ts_ms.push(*ts);
            bars.close.push(values[0]);
            bars.high.push(values[1]);
            bars.low.push(values[2]);
            bars.volume.push(values[3]);
        }
        if bars.volume.iter().all(|v| v.is_nan()) {
            // Freed, not just emptied: a source without volume keeps no column of NaN.
            bars.volume = Vec::new();
        }
        if dropped > 0 {
            warnings.push(format!("{label}: dropped {dropped} duplicate bars (identical rows in overlapping files)"));
        }
        if bars.ts_ms.is_empty() {
            bail_input!("{label}: no bars loaded");
        }
        Ok(bars)
    }
}

/// Check one bar: every price finite and > 0, `low <= open, close <= high`, volume >= 0 (an
/// open or volume of NaN means the source has none). The message names the column and values.
pub fn check_bar(label: &str, open: f64, high: f64, low: f64, close: f64, volume: f64) -> std::result::Result<(), String> {
    for (name, value) in [("open", open), ("high", high), ("low", low), ("close", close)] {
        if name == "open" && value.is_nan() {
            continue;
        }
        if !value.is_finite() || value <= 0.0 {
            return Err(format!("column `{name}`: {label} {name} price {value} is not positive (prices must be finite and > 0)"));
        }
    }
    if high < low {
        return Err(format!("column `high`: {label} bar high {high} is below its low {low}; expected low <= open, close <= high"));
    }
    for (name, value) in [("close", close), ("open", open)] {
        if !value.is_nan() && (value < low || value > high) {
            return Err(format!(
                "column `{name}`: {label} bar {name} {value} is outside its low {low} .. high {high}; expected low <= open, close <= high"
            ));
        }
    }
    if volume < 0.0 {
        return Err(format!("column `volume`: {label} volume {volume} is negative; volume must be >= 0"));
    }
    Ok(())
}

/// Rows of a funding series gathered from one or more files: (settle_ms, rate, interval_hours
/// or NaN, mark or NaN).
#[derive(Default)]
pub struct FundingRows {
    /// The files the rows came from, to locate a row in messages.
    pub sources: Sources,
    /// (settle_ms epoch ms UTC, decimal rate per interval, interval hours or NaN, mark price or NaN, origin).
    pub rows: Vec<(i64, f64, f64, f64, Origin)>,
}

impl FundingRows {
    /// Validate magnitudes, sort, de-duplicate, infer missing intervals from row spacing, and
    /// report gaps (missing settlements are reported, never filled).
    pub fn finish(mut self, default_interval_hours: Option<f64>, warnings: &mut Vec<String>) -> Result<FundingSeries> {
        if self.rows.is_empty() {
            bail_input!("funding: no settlements loaded");
        }
        for (_, rate, interval, mark, origin) in &self.rows {
            if rate.abs() > 0.1 {
                bail_input!(
                    "{}: funding rate {rate} is {}% per interval, beyond any venue's cap; rates must be decimals per interval (0.0001 = 0.01 %)",
                    self.sources.locate(*origin),
                    rate * 100.0
                );
            }
            if !interval.is_nan() && (*interval <= 0.0 || *interval > 24.0) {
                bail_input!("{}: funding interval {interval} h is out of range (0, 24]", self.sources.locate(*origin));
            }
            if !mark.is_nan() && *mark <= 0.0 {
                bail_input!("{}: mark price {mark} is not positive", self.sources.locate(*origin));
            }
        }
        let mut magnitudes: Vec<f64> = self.rows.iter().map(|r| r.1.abs()).collect();
        magnitudes.sort_by(f64::total_cmp);
        let median = magnitudes[magnitudes.len() / 2];
        if median > 0.003 {
            bail_input!(
                "funding ({}...): the median |rate| is {median}, about 100x a typical decimal rate; the file looks like percent. Divide the rates by 100 (basis expects 0.0001 for 0.01 %).",
                self.sources.locate(self.rows[0].4)
            );
        }
        self.rows.sort_by_key(|row| row.0);
        let mut series = FundingSeries::default();
        let mut dropped = 0usize;
        for i in 0..self.rows.len() {
            let (ts, rate, interval, mark, origin) = &self.rows[i];
            if i > 0 && self.rows[i - 1].0 == *ts {
                if self.rows[i - 1].1 == *rate {
                    dropped += 1;
                    continue;
                }
                bail_input!(
                    "funding: two different rates for settlement {}: {} and {}",
                    crate::time::format_ms(*ts),
                    self.sources.locate(self.rows[i - 1].4),
                    self.sources.locate(*origin)
                );
            }
            series.settle_ms.push(*ts);
            series.rate.push(*rate);
            series.interval_hours.push(*interval);
            series.mark_price.push(*mark);
        }
        if dropped > 0 {
            warnings.push(format!("funding: dropped {dropped} duplicate settlements"));
        }
        infer_intervals(&mut series, default_interval_hours);
        report_gaps(&series, warnings);
        Ok(series)
    }
}

/// Fill missing per-row intervals from the spacing to the previous settlement (rounded to whole
/// hours, when it is a standard 1/2/4/8 h), else from the configured default, else 8 h.
fn infer_intervals(series: &mut FundingSeries, default_hours: Option<f64>) {
    let n = series.settle_ms.len();
    for i in 0..n {
        if !series.interval_hours[i].is_nan() {
            continue;
        }
        let spacing = |a: usize, b: usize| ((series.settle_ms[b] - series.settle_ms[a]) as f64 / 3.6e6).round();
        let guess = if i > 0 { spacing(i - 1, i) } else if n > 1 { spacing(0, 1) } else { 0.0 };
        series.interval_hours[i] = if [1.0, 2.0, 4.0, 8.0].contains(&guess) { guess } else { default_hours.unwrap_or(8.0) };
    }
}

/// Warn about settlements that are missing: a spacing longer than 1.5 × the row's interval.
fn report_gaps(series: &FundingSeries, warnings: &mut Vec<String>) {
    let mut gaps = Vec::new();
    for i in 1..series.settle_ms.len() {
        let spacing_h = (series.settle_ms[i] - series.settle_ms[i - 1]) as f64 / 3.6e6;
        if spacing_h > 1.5 * series.interval_hours[i] {
            gaps.push(format!(
                "{} -> {} ({spacing_h:.0} h)",
                crate::time::format_ms(series.settle_ms[i - 1]),
                crate::time::format_ms(series.settle_ms[i])
            ));
        }
    }
    if !gaps.is_empty() {
        let shown: Vec<&String> = gaps.iter().take(5).collect();
        warnings.push(format!(
            "funding: {} gap(s) with missing settlements (no funding is paid for them; nothing is filled): {}{}",
            gaps.len(),
            shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            if gaps.len() > 5 { ", ..." } else { "" }
        ));
    }
}
