//! Market data: loaders for each source format, the canonical tables they produce, validation,
//! point-in-time alignment, and the synthetic sample generator.
//!
//! Every loader returns one of the canonical series below, with timestamps in epoch milliseconds
//! (UTC) at the moment the values became known: a bar's close time, a settlement's time.

pub mod align;
pub mod binance;
pub mod book;
pub mod clock;
pub mod dated;
pub mod dump_cache;
pub mod fetch;
pub mod freqtrade;
pub mod generic;
pub mod klines;
pub mod matching;
pub mod quality;
pub mod read;
pub mod rest;
pub mod catalog;
pub mod series;
pub mod synth;
pub mod source;
pub mod stream;
pub mod venue_formats;
pub mod zone;

use std::path::PathBuf;

use anyhow::Result;

use crate::bail_input;
use crate::model::Settlement;
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
    /// High price per bar, quote currency. Empty for a spot series loaded without a range
    /// (every high and low equal to the close): read it as the close.
    pub high: Vec<f64>,
    /// Low price per bar, quote currency; empty where `high` is (see there).
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

/// Funding settlements, sorted by `settle_ms` with no duplicates (the model's one series type;
/// as loaded, each settlement's price is the source's mark at settlement, NaN where it has none).
pub use crate::model::FundingSeries;

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
    /// Their mark-price bars (`[data.dated_mark]`); empty without.
    pub dated_mark: Vec<dated::Contract>,
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
    matching::check_symbol(config)?;
    let mark_optional = config.freqtrade.is_some() || config.mark_optional;
    // The bar clocks of series read on threads of their own come with them (None: made below).
    let (spot, mut perp, mark, funding, mut clocks) = match (&config.freqtrade, &config.spot, &config.perp, &config.funding) {
        (Some(source), _, _, _) => {
            let (spot, perp, mark, funding) = freqtrade::load(source, &mut files, &mut warnings)?;
            (spot, perp, mark, funding, [None, None, None])
        }
        (None, Some(spot), Some(perp), Some(funding)) if !side_by_side(&[Some(spot), Some(perp), config.mark.as_ref()]) => {
            let spot = without_flat_range(load_prices(spot, "spot", &mut files, &mut warnings)?);
            let perp = load_prices(perp, "perp", &mut files, &mut warnings)?;
            let mark = match &config.mark {
                Some(source) => Some(load_prices(source, "mark", &mut files, &mut warnings)?),
                None => None,
            };
            let funding = load_funding(funding, &config.symbol, &mut files, &mut warnings)?;
            (spot, perp, mark, funding, [None, None, None])
        }
        (None, Some(spot), Some(perp), Some(funding)) => {
            // Read side by side: each series' read, hash, decode, checks and bar clock are
            // mostly one thread's work. Files and warnings keep the order of a one-by-one load,
            // and the first failure in that order is the one reported.
            let with_clock = |bars: PriceBars| {
                let clock = clock::BarClock::of(&bars.ts_ms);
                (bars, clock)
            };
            let (spot, perp, mark, funding) = std::thread::scope(|scope| {
                let spot = scope.spawn(|| Loaded::of(|files, warnings| load_prices(spot, "spot", files, warnings).map(without_flat_range).map(with_clock)));
                let mark = config.mark.as_ref().map(|source| scope.spawn(|| Loaded::of(|files, warnings| load_prices(source, "mark", files, warnings).map(with_clock))));
                let funding = scope.spawn(|| Loaded::of(|files, warnings| load_funding(funding, &config.symbol, files, warnings)));
                let perp = Loaded::of(|files, warnings| load_prices(perp, "perp", files, warnings).map(with_clock));
                (Loaded::joined(spot), perp, mark.map(Loaded::joined), Loaded::joined(funding))
            });
            let (spot, spot_clock) = spot.append_to(&mut files, &mut warnings)?;
            let (perp, perp_clock) = perp.append_to(&mut files, &mut warnings)?;
            let (mark, mark_clock) = mark.map(|mark| mark.append_to(&mut files, &mut warnings)).transpose()?.unzip();
            let funding = funding.append_to(&mut files, &mut warnings)?;
            (spot, perp, mark, funding, [Some(spot_clock), Some(perp_clock), mark_clock])
        }
        _ => bail_input!("[data] needs either [data.freqtrade] or all of [data.spot], [data.perp] and [data.funding]"),
    };
    // Placeholder bars dropped from the perp: its clock is made again from the bars left.
    if config.skip_listing_placeholders && quality::skip_listing_placeholders(&mut perp, &mut warnings) > 0 {
        clocks[1] = None;
    }
    matching::check_prices(config, &spot, &perp, mark.as_ref())?;
    let staking = match &config.staking {
        Some(source) => Some(generic::load_staking(source, &mut files)?),
        None => None,
    };
    let index = match &config.index {
        Some(source) => Some(load_prices(source, "index", &mut files, &mut warnings)?),
        None => None,
    };
    let dated = match &config.dated {
        Some(source) => dated::load_contracts(source, "data.dated", &mut files, &mut warnings)?,
        None => Vec::new(),
    };
    let dated_mark = match &config.dated_mark {
        Some(source) => dated::load_contracts(source, "data.dated_mark", &mut files, &mut warnings)?,
        None => Vec::new(),
    };
    let cash_rate = config.cash_rate.as_ref().map(|source| dated::load_rate(source, "cash_rate", &mut files)).transpose()?;
    let borrow_rate = config.borrow_rate.as_ref().map(|source| dated::load_rate(source, "borrow_rate", &mut files)).transpose()?;
    let [spot_clock, perp_clock, mark_clock] = clocks;
    let bar_clocks = [(Some(&spot), spot_clock), (Some(&perp), perp_clock), (mark.as_ref(), mark_clock), (index.as_ref(), None)]
        .into_iter()
        .filter_map(|(bars, clock)| bars.map(|bars| (bars.label.as_str(), clock.unwrap_or_else(|| clock::BarClock::of(&bars.ts_ms)))));
    clock_warnings(config, &funding, bar_clocks, &mut warnings);
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
        dated_mark,
        cash_rate,
        borrow_rate,
        files,
        warnings,
    })
}

/// Bar files up to this size in all are read side by side (a year of minute bars is about
/// 17 MiB of Parquet): 11 % faster for a 1-year run. Longer inputs are read one by one, as
/// two large decodes at once raise the peak memory (2 years: 152 -> 184 MiB).
const SIDE_BY_SIDE_MAX_BYTES: u64 = 24 << 20;

/// Whether the bar series' files are small enough to read side by side. Any path that cannot
/// be listed says no: the one-by-one load then reports it.
fn side_by_side(sources: &[Option<&PriceSource>]) -> bool {
    let mut total = 0u64;
    for source in sources.iter().flatten() {
        let Ok(paths) = read::expand_glob(&source.path, "bars") else { return false };
        total += paths.iter().map(|p| std::fs::metadata(p).map_or(u64::MAX / 4, |m| m.len())).sum::<u64>();
    }
    total <= SIDE_BY_SIDE_MAX_BYTES
}

/// One series loaded on a thread of its own, with the files it read and the warnings it gave.
struct Loaded<T> {
    result: Result<T>,
    files: Vec<PathBuf>,
    warnings: Vec<String>,
}

impl<T> Loaded<T> {
    fn of(load: impl FnOnce(&mut Vec<PathBuf>, &mut Vec<String>) -> Result<T>) -> Self {
        let (mut files, mut warnings) = (Vec::new(), Vec::new());
        let result = load(&mut files, &mut warnings);
        Loaded { result, files, warnings }
    }

    fn joined(handle: std::thread::ScopedJoinHandle<'_, Self>) -> Self {
        handle.join().unwrap_or_else(|_| Loaded { result: Err(anyhow::anyhow!("a loader thread panicked")), files: Vec::new(), warnings: Vec::new() })
    }

    /// The series, its files and warnings appended to the load's.
    fn append_to(self, files: &mut Vec<PathBuf>, warnings: &mut Vec<String>) -> Result<T> {
        let value = self.result?;
        files.extend(self.files);
        warnings.extend(self.warnings);
        Ok(value)
    }
}

/// Load the funding settlements of `source`.
pub fn load_funding(source: &source::FundingSource, symbol: &str, files: &mut Vec<PathBuf>, warnings: &mut Vec<String>) -> Result<FundingSeries> {
    let mut series = match source.format {
        FundingFormat::BinanceFunding | FundingFormat::BinanceRest => binance::load_funding(source, symbol, files, warnings),
        FundingFormat::Generic => generic::load_funding(source, files, warnings),
        _ => venue_formats::load_funding(source, files, warnings),
    }?;
    if let Some(name) = &source.time_zone {
        let mut settle_ms = series.settle_ms();
        zone::to_utc(&mut settle_ms, zone::parse(name, "data.funding.time_zone")?, "funding")?;
        // Wall-clock times convert to UTC in order (a repeated hour takes its later instant).
        for (s, t) in series.iter_mut().zip(settle_ms) {
            s.settle_ms = t;
        }
    }
    Ok(series)
}

/// The clock checks' warnings: settlements against the venue's schedule, bars against their
/// own spacing (each series' [`clock::BarClock`], labelled).
pub fn clock_warnings<'a>(config: &DataConfig, funding: &FundingSeries, bar_clocks: impl Iterator<Item = (&'a str, clock::BarClock)>, warnings: &mut Vec<String>) {
    // The config layer sets the venue's schedule from its preset; without one, the UTC grid of
    // the data's own interval.
    let settle_ms = funding.settle_ms();
    let interval_hours = funding.interval_hours();
    let schedule = config.funding_schedule.clone().unwrap_or_else(|| clock::Schedule::utc_grid(typical_interval_hours(&interval_hours)));
    warnings.extend(clock::funding_offset_warning(&settle_ms, &interval_hours, &schedule));
    for (label, bar_clock) in bar_clocks {
        warnings.extend(bar_clock.offset_warning_on(label, Some(&schedule)));
    }
}

/// A spot series without a range (high = low = close: a close-only source) keeps none, so a
/// long run does not hold two more copies of its closes while the perp loads; the aligner reads
/// a missing range as the close.
fn without_flat_range(mut bars: PriceBars) -> PriceBars {
    if bars.high == bars.close && bars.low == bars.close {
        bars.high = Vec::new();
        bars.low = Vec::new();
    }
    bars
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

/// Hand the memory the file decoders and parsers freed back to the system. They run on worker
/// threads (polars', rayon's), whose malloc arenas the loop never allocates from, so without
/// this a long run carries its inputs' decoded copies (about 120 MiB for 8 years of minute
/// bars) to the end.
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Load one price series (any price format) as canonical bars.
pub fn load_prices(source: &PriceSource, label: &str, files: &mut Vec<PathBuf>, warnings: &mut Vec<String>) -> Result<PriceBars> {
    let mut bars = match source.format {
        PriceFormat::BinanceKlines => binance::load_klines(source, label, files, warnings),
        PriceFormat::Generic => generic::load_prices(source, label, files, warnings),
        PriceFormat::BybitTrades => venue_formats::load_bybit_trades(source, label, files, warnings),
    }?;
    if let Some(name) = &source.time_zone {
        zone::to_utc(&mut bars.ts_ms, zone::parse(name, &format!("data.{label}.time_zone"))?, label)?;
    }
    Ok(bars)
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

/// Rows of a bar series gathered from one or more files, kept as columns: each row is checked
/// as it is pushed, and a single sorted file's columns become the [`PriceBars`] without a copy.
/// Row origins are kept as runs (a file's consecutive rows are one entry), so a million-row
/// file costs a few bytes of bookkeeping, not eight per row.
pub struct BarRows {
    /// The files the rows came from, to locate a row in messages.
    pub sources: Sources,
    /// What the series is, for messages.
    label: String,
    ts_ms: Vec<i64>,
    close: Vec<f64>,
    high: Vec<f64>,
    low: Vec<f64>,
    /// Empty until a row has a volume; then one entry per row, NaN where a row has none.
    volume: Vec<f64>,
    /// Kept only to tell a conflicting duplicate from an identical one; empty like `volume`.
    open: Vec<f64>,
    /// (first row index, its origin): the rows after it up to the next run continue its file
    /// one row at a time.
    runs: Vec<(usize, Origin)>,
}

impl BarRows {
    /// An empty series named `label` (`spot`, `perp`, a contract name) in messages.
    pub fn new(label: &str) -> BarRows {
        BarRows { sources: Sources::default(), label: label.to_string(), ts_ms: Vec::new(), close: Vec::new(), high: Vec::new(), low: Vec::new(), volume: Vec::new(), open: Vec::new(), runs: Vec::new() }
    }

    /// Room for `additional` more rows (price columns only; volume and open grow when used).
    pub fn reserve(&mut self, additional: usize) {
        self.ts_ms.reserve_exact(additional);
        self.close.reserve_exact(additional);
        self.high.reserve_exact(additional);
        self.low.reserve_exact(additional);
    }

    /// Room for `additional` more rows in the volume and open columns, for a source that has
    /// them, so a file read in pieces does not grow them by doubling.
    pub fn reserve_optional(&mut self, additional: usize, volume: bool, open: bool) {
        let rows = self.ts_ms.len() + additional;
        for (column, wanted) in [(&mut self.volume, volume), (&mut self.open, open)] {
            if wanted {
                column.reserve_exact(rows - column.len());
            }
        }
    }

    /// Rows pushed so far.
    pub fn len(&self) -> usize {
        self.ts_ms.len()
    }

    /// Whether no row was pushed.
    pub fn is_empty(&self) -> bool {
        self.ts_ms.is_empty()
    }

    /// Add one bar known at `known_at_ms`: `[close, high, low, volume or NaN, open or NaN]`,
    /// checked with [`check_bar`]; an error names the row's file and line.
    pub fn push(&mut self, known_at_ms: i64, [close, high, low, volume, open]: [f64; 5], origin: Origin) -> Result<()> {
        self.check(close, high, low, volume, open, origin)?;
        let k = self.ts_ms.len();
        let continues = self.runs.last().is_some_and(|(start, first)| first.file == origin.file && u64::from(first.row) + (k - start) as u64 == u64::from(origin.row));
        if !continues {
            self.runs.push((k, origin));
        }
        self.ts_ms.push(known_at_ms);
        self.close.push(close);
        self.high.push(high);
        self.low.push(low);
        for (column, value) in [(&mut self.volume, volume), (&mut self.open, open)] {
            if !column.is_empty() {
                column.push(value);
            } else if !value.is_nan() {
                column.resize(k, f64::NAN);
                column.push(value);
            }
        }
        Ok(())
    }

    /// Add every row of one file at once, its columns given whole (`high`/`low` absent: the
    /// close; `volume`/`open` absent: none): the same checks as [`BarRows::push`] in one pass,
    /// then the columns moved in (the first file) or appended. Row `k` is the file's data row `k`.
    pub fn extend_file(&mut self, file: u32, known_at_ms: Vec<i64>, close: Vec<f64>, high: Option<Vec<f64>>, low: Option<Vec<f64>>, volume: Option<Vec<f64>>, open: Option<Vec<f64>>) -> Result<()> {
        self.extend_rows(file, 0, known_at_ms, close, high, low, volume, open)
    }

    /// [`BarRows::extend_file`] for the file's rows from `first_row` on (one piece of a file read
    /// a row group at a time).
    #[allow(clippy::too_many_arguments)]
    pub fn extend_rows(&mut self, file: u32, first_row: usize, known_at_ms: Vec<i64>, close: Vec<f64>, high: Option<Vec<f64>>, low: Option<Vec<f64>>, volume: Option<Vec<f64>>, open: Option<Vec<f64>>) -> Result<()> {
        let n = known_at_ms.len();
        let at = |column: &Option<Vec<f64>>, k: usize, otherwise: f64| column.as_ref().map_or(otherwise, |v| v[k]);
        for k in 0..n {
            self.check(close[k], at(&high, k, close[k]), at(&low, k, close[k]), at(&volume, k, f64::NAN), at(&open, k, f64::NAN), Origin { file, row: (first_row + k) as u32 })?;
        }
        if n == 0 {
            return Ok(());
        }
        let start = self.ts_ms.len();
        self.runs.push((start, Origin { file, row: first_row as u32 }));
        let high = high.unwrap_or_else(|| close.clone());
        let low = low.unwrap_or_else(|| close.clone());
        // Moved in when nothing was reserved (one whole file), else copied into the room made.
        fn append<T: Copy>(column: &mut Vec<T>, values: Vec<T>) {
            if column.is_empty() && column.capacity() < values.len() {
                *column = values;
            } else {
                column.extend_from_slice(&values);
            }
        }
        append(&mut self.ts_ms, known_at_ms);
        append(&mut self.close, close);
        append(&mut self.high, high);
        append(&mut self.low, low);
        // Volume and open are kept only once some row has one (NaN-padded before it).
        for (column, values) in [(&mut self.volume, volume), (&mut self.open, open)] {
            match values {
                // The first rows of a column: moved in, not copied.
                Some(values) if start == 0 && column.is_empty() && column.capacity() < values.len() && values.iter().any(|v| !v.is_nan()) => *column = values,
                Some(values) if !column.is_empty() || values.iter().any(|v| !v.is_nan()) => {
                    column.resize(start, f64::NAN);
                    column.extend_from_slice(&values);
                }
                _ if !column.is_empty() => column.resize(start + n, f64::NAN),
                _ => {}
            }
        }
        Ok(())
    }

    /// [`check_bar`] on one row, its error located at `origin`. The common case is one branch:
    /// 0 < low <= close <= high < inf (so every price is finite and positive), open (if any)
    /// inside the range, volume not negative; anything else goes to check_bar for the message.
    #[inline]
    fn check(&self, close: f64, high: f64, low: f64, volume: f64, open: f64, origin: Origin) -> Result<()> {
        let plainly_good = low > 0.0 && low <= close && close <= high && high.is_finite() && (open.is_nan() || (low <= open && open <= high)) && !(volume < 0.0);
        if !plainly_good {
            if let Err(why) = check_bar(&self.label, open, high, low, close, volume) {
                bail_input!("{}: {why}", self.sources.locate(origin));
            }
        }
        Ok(())
    }

    /// Where row `k` (in push order) came from.
    fn origin(&self, k: usize) -> Origin {
        let run = self.runs.partition_point(|(start, _)| *start <= k).saturating_sub(1);
        let (start, first) = self.runs[run];
        Origin { file: first.file, row: first.row + (k - start) as u32 }
    }

    /// Sort by time, drop exact duplicates (overlapping dumps) and reject conflicting ones.
    pub fn finish(mut self, warnings: &mut Vec<String>) -> Result<PriceBars> {
        let label = std::mem::take(&mut self.label);
        let n = self.ts_ms.len();
        // Row indices are 32-bit here and in the aligner.
        if n >= u32::MAX as usize {
            bail_input!("{label}: {n} bars is more than one series can hold (4,294,967,294); split the window into shorter runs");
        }
        let pad = |column: &mut Vec<f64>| {
            if !column.is_empty() {
                column.resize(n, f64::NAN);
            }
        };
        pad(&mut self.volume);
        pad(&mut self.open);
        // The push-order index of each row once sorted (None: already in order).
        let mut order: Option<Vec<u32>> = None;
        if !self.ts_ms.is_sorted() {
            // Files may come in any order; rows going back in time inside one file are a repair
            // worth saying out loud.
            let backwards: Vec<Origin> = (1..n).filter(|&k| self.ts_ms[k] < self.ts_ms[k - 1]).map(|k| (self.origin(k - 1), self.origin(k))).filter(|(a, b)| a.file == b.file).map(|(_, b)| b).collect();
            if let Some(first) = backwards.first() {
                warnings.push(format!("{label}: {} row(s) out of time order inside their file (first: {}); sorted by time", backwards.len(), self.sources.locate(*first)));
            }
            let mut by_time: Vec<u32> = (0..n as u32).collect();
            by_time.sort_by_key(|&k| self.ts_ms[k as usize]);
            let permute_f64 = |column: &mut Vec<f64>| {
                if !column.is_empty() {
                    *column = by_time.iter().map(|&k| column[k as usize]).collect();
                }
            };
            permute_f64(&mut self.close);
            permute_f64(&mut self.high);
            permute_f64(&mut self.low);
            permute_f64(&mut self.volume);
            permute_f64(&mut self.open);
            self.ts_ms = by_time.iter().map(|&k| self.ts_ms[k as usize]).collect();
            order = Some(by_time);
        }
        let pushed = |k: usize| order.as_ref().map_or(k, |o| o[k] as usize);
        // De-duplicate in place: row `k` moves to `kept` unless it repeats the row before it.
        let mut kept = 0usize;
        let mut dropped = 0usize;
        let bits = |column: &[f64], k: usize| column.get(k).map_or(u64::MAX, |v| v.to_bits());
        for k in 0..n {
            if k > 0 && self.ts_ms[k] == self.ts_ms[k - 1] {
                // Bitwise, so two rows without volume (NaN) still count as identical.
                let same = [&self.close, &self.high, &self.low, &self.volume, &self.open].iter().all(|column| bits(column, k) == bits(column, k - 1));
                if same {
                    dropped += 1;
                    continue;
                }
                bail_input!(
                    "{label} bars: two different rows for time {}: {} and {}. Remove one of the files or rows.",
                    crate::time::format_ms(self.ts_ms[k]),
                    self.sources.locate(self.origin(pushed(k - 1))),
                    self.sources.locate(self.origin(pushed(k)))
                );
            }
            if kept != k {
                self.ts_ms[kept] = self.ts_ms[k];
                for column in [&mut self.close, &mut self.high, &mut self.low, &mut self.volume] {
                    if !column.is_empty() {
                        column[kept] = column[k];
                    }
                }
            }
            kept += 1;
        }
        for column in [&mut self.close, &mut self.high, &mut self.low, &mut self.volume] {
            column.truncate(kept);
        }
        self.ts_ms.truncate(kept);
        if dropped > 0 {
            warnings.push(format!("{label}: dropped {dropped} duplicate bars (identical rows in overlapping files)"));
        }
        if self.ts_ms.is_empty() {
            bail_input!("{label}: no bars loaded");
        }
        Ok(PriceBars { label, ts_ms: self.ts_ms, close: self.close, high: self.high, low: self.low, volume: self.volume })
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
    /// What the rates are in, as the source says (`None`: checked, see [`FundingRows::finish`]).
    pub units: Option<source::RateUnits>,
}

impl FundingRows {
    /// A file in percent is refused only on strong evidence, as a stretch of real capped
    /// funding (±0.75 % or ±2 % per 8 h in a squeeze) has a high median too:
    /// - a median |rate| above 0.03 (3 % per interval, the highest caps there are); or
    /// - a high median (above 0.003) with at least a tenth of the settlements at exactly ±0.01:
    ///   the 0.01 % per 8 h interest baseline most venues settle at, written in percent.
    ///
    /// A high median without either is read as decimals, with a warning. `rates_in` on the
    /// source (`"percent"` or `"decimal"`) says which and skips the check.
    fn check_not_percent(&self, warnings: &mut Vec<String>) -> Result<()> {
        let mut magnitudes: Vec<f64> = self.rows.iter().map(|r| r.1.abs()).collect();
        magnitudes.sort_by(f64::total_cmp);
        let median = magnitudes[magnitudes.len() / 2];
        if median <= 0.003 {
            return Ok(());
        }
        let at_baseline = magnitudes.iter().filter(|m| (**m - 0.01).abs() < 1e-12).count() as f64 / magnitudes.len() as f64;
        let first = self.sources.locate(self.rows[0].4);
        if median > 0.03 || at_baseline >= 0.1 {
            bail_input!(
                "funding ({first}...): the file looks like percent: the median |rate| is {median}{}. Set `rates_in = \"percent\"` on the funding source to divide them by 100 (basis expects 0.0001 for 0.01 %), or `rates_in = \"decimal\"` if they are decimals",
                if at_baseline >= 0.1 { format!(" and {:.0} % of the settlements are exactly ±0.01, the 0.01 % interest baseline written in percent", at_baseline * 100.0) } else { ", above every venue's cap as a decimal".to_string() }
            );
        }
        warnings.push(format!(
            "funding ({first}...): the median |rate| is {median} per interval, high for decimals (a stretch of capped funding?); read as decimals. If the file is in percent, set `rates_in = \"percent\"` on the funding source"
        ));
        Ok(())
    }

    /// Validate magnitudes, sort, de-duplicate, infer missing intervals from row spacing, and
    /// report gaps (missing settlements are reported, never filled).
    pub fn finish(mut self, default_interval_hours: Option<f64>, warnings: &mut Vec<String>) -> Result<FundingSeries> {
        if self.rows.is_empty() {
            bail_input!("funding: no settlements loaded");
        }
        if self.units == Some(source::RateUnits::Percent) {
            for row in &mut self.rows {
                row.1 /= 100.0;
            }
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
        if self.units.is_none() {
            self.check_not_percent(warnings)?;
        }
        self.rows.sort_by_key(|row| row.0);
        let mut settlements = Vec::with_capacity(self.rows.len());
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
            settlements.push(Settlement { settle_ms: *ts, rate: *rate, interval_hours: *interval, price: *mark });
        }
        if dropped > 0 {
            warnings.push(format!("funding: dropped {dropped} duplicate settlements"));
        }
        infer_intervals(&mut settlements, default_interval_hours);
        let series = FundingSeries::new(settlements);
        report_gaps(&series, warnings);
        Ok(series)
    }
}

/// Fill missing per-row intervals from the spacing to the previous settlement (rounded to whole
/// hours, when it is a standard 1/2/4/8 h), else from the configured default, else 8 h.
fn infer_intervals(settlements: &mut [Settlement], default_hours: Option<f64>) {
    let settle_ms: Vec<i64> = settlements.iter().map(|s| s.settle_ms).collect();
    let mut interval_hours: Vec<f64> = settlements.iter().map(|s| s.interval_hours).collect();
    infer_interval_hours(&settle_ms, &mut interval_hours, default_hours);
    for (s, hours) in settlements.iter_mut().zip(interval_hours) {
        s.interval_hours = hours;
    }
}

/// The funding loaders' interval rule over plain slices: each NaN in `interval_hours` becomes the
/// spacing from the previous settlement in `settle_ms` (the first row: to the next), in whole
/// hours when that is 1, 2, 4 or 8, else `default_hours` (else 8).
pub fn infer_interval_hours(settle_ms: &[i64], interval_hours: &mut [f64], default_hours: Option<f64>) {
    let n = settle_ms.len();
    for i in 0..n {
        if !interval_hours[i].is_nan() {
            continue;
        }
        let spacing = |a: usize, b: usize| ((settle_ms[b] - settle_ms[a]) as f64 / 3.6e6).round();
        let guess = if i > 0 { spacing(i - 1, i) } else if n > 1 { spacing(0, 1) } else { 0.0 };
        interval_hours[i] = if [1.0, 2.0, 4.0, 8.0].contains(&guess) { guess } else { default_hours.unwrap_or(8.0) };
    }
}

/// Warn about settlements that are missing: a spacing longer than 1.5 × the row's interval.
fn report_gaps(series: &FundingSeries, warnings: &mut Vec<String>) {
    let mut gaps = Vec::new();
    for pair in series.windows(2) {
        let spacing_h = (pair[1].settle_ms - pair[0].settle_ms) as f64 / 3.6e6;
        if spacing_h > 1.5 * pair[1].interval_hours {
            gaps.push(format!(
                "{} -> {} ({spacing_h:.0} h)",
                crate::time::format_ms(pair[0].settle_ms),
                crate::time::format_ms(pair[1].settle_ms)
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
