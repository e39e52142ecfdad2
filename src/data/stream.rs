//! A long run's market, read and aligned one chunk of time at a time, so that memory does not
//! grow with the run's length.
//!
//! It applies where every bar series is generic Parquet (read a row group at a time,
//! [`super::generic::BarPieces`]) and sorted. A first pass reads the bar times alone: each series'
//! first and last close, its clock facts (spacing, grid offset), and whether it is strictly
//! increasing. A series that is not (rows out of order or repeated, which the whole load sorts,
//! drops or refuses) sends the run down the whole path, as does anything else this module does
//! not do: the caller asks [`ChunkedMarket::open`], which answers `None` then. The clock is
//! planned from those facts exactly as for a loaded market ([`align::plan_clock`]). Each chunk
//! is at most [`Chunking::max_steps`] of one perp row group's steps, aligned by the same
//! [`align::StepAligner`] with the bars of the other series that are known by its last step, and
//! begins with the previous chunk's last step (see [`crate::sim::run_chunked`]). The whole path
//! and this one give the same steps (`tests/chunked.rs` compares every output file).

use std::path::PathBuf;

use anyhow::Result;

use super::align::{self, BarSpans, ClockPlan, PerpTimes, Sources, StepAligner, Window};
use super::clock::BarClock;
use super::dump_cache::{CacheChoice, DumpCache};
use super::generic::BarPieces;
use super::{quality, FundingSeries, PriceBars, StakingSeries};
use crate::data::source::DataConfig;
use crate::input_error;
use crate::model::market::MarketTimeline;

/// When a run goes in chunks of time, and how long they are.
#[derive(Debug, Clone, Copy)]
pub struct Chunking {
    /// Chunks when the perp's files add up to this many bytes or more (0: whenever the data
    /// allows; `u64::MAX`: never). Shorter runs are faster loaded whole.
    pub from_perp_bytes: u64,
    /// New steps in a chunk at most: a perp row group may hold millions of rows, and a chunk's
    /// aligned columns (about 41 bytes a step, two chunks at a time) should stay small.
    pub max_steps: usize,
    /// Where kline dumps are parsed to before a run reads them in chunks ([`DumpCache`]).
    pub cache: CacheChoice,
}

impl Chunking {
    /// From 32 MiB of perp files on (about 2.7 years of minute bars with a range in Parquet,
    /// about seven months of Binance's minute kline dumps in CSV), chunks of 65,536 steps.
    pub const DEFAULT: Chunking = Chunking { from_perp_bytes: 32 << 20, max_steps: 1 << 16, cache: CacheChoice::Shared };
    /// Whenever the data allows.
    pub const ALWAYS: Chunking = Chunking { from_perp_bytes: 0, max_steps: 1 << 16, cache: CacheChoice::Shared };
    /// Never: every run is loaded whole.
    pub const NEVER: Chunking = Chunking { from_perp_bytes: u64::MAX, max_steps: 1 << 16, cache: CacheChoice::Shared };
}

/// One bar series read piece by piece, the bars not yet let go in memory.
struct Buffered {
    pieces: BarPieces,
    /// The next piece to read.
    next_piece: usize,
    /// Leading bars of the series not to use (perp listing placeholders).
    skip: usize,
    /// The bars in memory: from the one known at the last aligned step on, after
    /// `released` bars already let go of.
    bars: PriceBars,
    /// The series index (after `skip`) of `bars`' first bar.
    start: usize,
    /// Leading bars of `bars` no chunk needs any more. They are dropped when the next piece is
    /// read, when few bars are left to move; dropped at every chunk, the rest of a row group
    /// was moved each time (7 % of an 8-year run's CPU with the reads' copies). An as-of
    /// lookup passes over them to the same bar.
    released: usize,
}

impl Buffered {
    fn new(pieces: BarPieces, label: &str, skip: usize) -> Self {
        Buffered { pieces, next_piece: 0, skip, bars: PriceBars { label: label.to_string(), ..PriceBars::default() }, start: 0, released: 0 }
    }

    /// The series index one past the last bar in memory.
    fn end(&self) -> usize {
        self.start + self.bars.ts_ms.len()
    }

    /// Read the next piece into memory; false when there is none.
    fn read_piece(&mut self, warnings: &mut Vec<String>) -> Result<bool> {
        if self.next_piece >= self.pieces.len() {
            return Ok(false);
        }
        let mut piece = self.pieces.bars(self.next_piece, warnings)?;
        self.next_piece += 1;
        if self.skip > 0 {
            let dropped = self.skip.min(piece.ts_ms.len());
            drop_first(&mut piece, dropped);
            self.skip -= dropped;
        }
        let released = std::mem::take(&mut self.released).min(self.bars.ts_ms.len());
        drop_first(&mut self.bars, released);
        self.start += released;
        append_bars(&mut self.bars, piece);
        Ok(true)
    }

    /// Read pieces until every bar closing at or before `t_ms` is in memory.
    fn fill_through(&mut self, t_ms: i64, warnings: &mut Vec<String>) -> Result<()> {
        while self.bars.ts_ms.last().is_none_or(|&last| last <= t_ms) {
            if !self.read_piece(warnings)? {
                break;
            }
        }
        Ok(())
    }

    /// Let go of the bars before the one known at `t_ms` (that one stays: it is what the next
    /// chunk's first step knows).
    fn release_before(&mut self, t_ms: i64) {
        let known = self.bars.ts_ms.partition_point(|&t| t <= t_ms);
        self.released = self.released.max(known.saturating_sub(1));
    }
}

/// Drop the first `n` bars.
fn drop_first(bars: &mut PriceBars, n: usize) {
    if n == 0 {
        return;
    }
    bars.ts_ms.drain(..n);
    for column in [&mut bars.close, &mut bars.high, &mut bars.low, &mut bars.volume] {
        if !column.is_empty() {
            column.drain(..n);
        }
    }
}

/// Append `more` to `bars`. A column one side lacks is filled in: the close for a range, NaN
/// for volume.
fn append_bars(bars: &mut PriceBars, more: PriceBars) {
    let had = bars.ts_ms.len();
    fn append(column: &mut Vec<f64>, values: &[f64], had: usize, own_fill: impl Fn(usize) -> f64, more_fill: impl Fn(usize) -> f64, adding: usize) {
        match (column.is_empty(), values.is_empty()) {
            (true, true) => {}
            (true, false) => {
                column.extend((0..had).map(own_fill));
                column.extend_from_slice(values);
            }
            (false, true) => column.extend((0..adding).map(more_fill)),
            (false, false) => column.extend_from_slice(values),
        }
    }
    let adding = more.ts_ms.len();
    let (close, more_close) = (&bars.close, &more.close);
    append(&mut bars.high, &more.high, had, |k| close[k], |k| more_close[k], adding);
    append(&mut bars.low, &more.low, had, |k| close[k], |k| more_close[k], adding);
    append(&mut bars.volume, &more.volume, had, |_| f64::NAN, |_| f64::NAN, adding);
    bars.ts_ms.extend_from_slice(&more.ts_ms);
    bars.close.extend_from_slice(&more.close);
}

/// What the first pass finds of one series.
struct SeriesFacts {
    first_ms: i64,
    last_ms: i64,
    clock: BarClock,
    /// (first close, last close, bars) of each piece, after the skipped bars.
    pieces: Vec<(i64, i64, usize)>,
}

/// Read the times of every piece of `pieces`, past the first `skip` bars. `None` when the times
/// are not strictly increasing (the whole load sorts, drops or refuses those).
fn first_pass(pieces: &BarPieces, skip: usize) -> Result<Option<SeriesFacts>> {
    let mut clock = BarClock::default();
    let mut facts: Vec<(i64, i64, usize)> = Vec::with_capacity(pieces.len());
    let mut skip = skip;
    let mut last: Option<i64> = None;
    for k in 0..pieces.len() {
        let times = pieces.times(k)?;
        let dropped = skip.min(times.len());
        skip -= dropped;
        let times = &times[dropped..];
        let increasing = times.windows(2).all(|w| w[0] < w[1]) && match (last, times.first()) {
            (Some(before), Some(&first)) => before < first,
            _ => true,
        };
        if !increasing {
            return Ok(None);
        }
        clock.extend(times);
        if let (Some(&first), Some(&end)) = (times.first(), times.last()) {
            facts.push((first, end, times.len()));
            last = Some(end);
        } else {
            facts.push((last.unwrap_or(i64::MIN), last.unwrap_or(i64::MIN), 0));
        }
    }
    let first_ms = facts.iter().find(|f| f.2 > 0).map(|f| f.0);
    match (first_ms, last) {
        (Some(first_ms), Some(last_ms)) => Ok(Some(SeriesFacts { first_ms, last_ms, clock, pieces: facts })),
        // No bars at all: the whole load says so.
        _ => Ok(None),
    }
}

/// The perp's times as the clock plan asks about them: counted from the pieces' facts, a
/// piece's own times read only where an answer falls inside it.
struct PerpPieceTimes<'a> {
    pieces: &'a BarPieces,
    facts: &'a [(i64, i64, usize)],
    skip: usize,
    /// The last pieces whose times were read, and those times (the plan asks about the first
    /// and the last piece, one after the other).
    cached: Vec<(usize, Vec<i64>)>,
}

impl PerpPieceTimes<'_> {
    /// The times of piece `k` past the skipped bars.
    fn times(&mut self, k: usize) -> Result<&[i64]> {
        let at = match self.cached.iter().position(|(cached, _)| *cached == k) {
            Some(at) => at,
            None => {
                let times = self.pieces.times(k)?;
                // The skipped bars all lie in the first pieces.
                let before: usize = (0..k).map(|j| self.pieces.rows(j)).sum();
                let dropped = self.skip.saturating_sub(before).min(times.len());
                if self.cached.len() == 2 {
                    self.cached.remove(0);
                }
                self.cached.push((k, times[dropped..].to_vec()));
                self.cached.len() - 1
            }
        };
        Ok(&self.cached[at].1)
    }

    /// Bars for which `before(t)` holds (a prefix, the times being increasing).
    fn count_where(&mut self, before: impl Fn(i64) -> bool) -> Result<usize> {
        let mut count = 0;
        for k in 0..self.facts.len() {
            let (first, last, rows) = self.facts[k];
            if rows == 0 {
                continue;
            }
            if before(last) {
                count += rows;
            } else {
                if before(first) {
                    count += self.times(k)?.partition_point(|&t| before(t));
                }
                break;
            }
        }
        Ok(count)
    }
}

impl PerpTimes for PerpPieceTimes<'_> {
    fn len(&self) -> usize {
        self.facts.iter().map(|f| f.2).sum()
    }
    fn count_before(&mut self, t: i64) -> Result<usize> {
        self.count_where(|x| x < t)
    }
    fn count_through(&mut self, t: i64) -> Result<usize> {
        self.count_where(|x| x <= t)
    }
    fn at(&mut self, k: usize) -> Result<i64> {
        let mut left = k;
        for piece in 0..self.facts.len() {
            let rows = self.facts[piece].2;
            if left < rows {
                return Ok(self.times(piece)?[left]);
            }
            left -= rows;
        }
        Err(input_error!("perp: bar {k} is past the end of the series"))
    }
}

/// A run's market, aligned one chunk of time after another ([`ChunkedMarket::next_chunk`]).
pub struct ChunkedMarket {
    symbol: String,
    synthetic: bool,
    perp: Buffered,
    spot: Buffered,
    mark: Option<Buffered>,
    index: Option<Buffered>,
    funding: FundingSeries,
    staking: Option<StakingSeries>,
    plan: ClockPlan,
    aligner: StepAligner,
    /// The perp bar of the next step not yet aligned (the plan's range holds the steps).
    next_step: usize,
    /// Steps aligned so far.
    steps: usize,
    /// New steps in a chunk at most.
    max_steps: usize,
    /// First and last step time.
    span: (i64, i64),
    /// Every settlement loaded, priced as the chunks that hold them price them (the run's
    /// timeline's settlements).
    priced_funding: FundingSeries,
    /// Files read whole (funding, staking), in the order the whole load lists them.
    files_before: Vec<PathBuf>,
    files_after: Vec<PathBuf>,
    warnings: Vec<String>,
    /// The sources' config, until the first chunk's prices are checked against each other
    /// ([`super::matching::check_prices`]).
    unchecked: Option<Box<DataConfig>>,
    /// The dump cache the kline dumps were read through, and the entries this run reads (kept
    /// when the cache is trimmed at the end). Last, so a run's own folder goes after the rest.
    cache: Option<(DumpCache, Vec<PathBuf>)>,
}

/// The bar series of a config, as pieces, when every one can be read so.
struct AllPieces {
    spot: BarPieces,
    perp: BarPieces,
    mark: Option<BarPieces>,
    index: Option<BarPieces>,
    /// The index's error, held back until the series the whole load reads first were checked.
    index_error: Option<anyhow::Error>,
}

fn all_pieces(config: &DataConfig, cache: Option<&DumpCache>) -> Result<Option<AllPieces>> {
    let (Some(spot), Some(perp), None) = (&config.spot, &config.perp, &config.freqtrade) else { return Ok(None) };
    let (Some(spot), Some(perp)) = (BarPieces::open_with(spot, "spot", cache)?, BarPieces::open_with(perp, "perp", cache)?) else { return Ok(None) };
    let optional = |source: &Option<super::source::PriceSource>, label: &str| -> Result<Option<Option<BarPieces>>> {
        match source {
            None => Ok(Some(None)),
            Some(source) => Ok(BarPieces::open_with(source, label, cache)?.map(Some)),
        }
    };
    let Some(mark) = optional(&config.mark, "mark")? else { return Ok(None) };
    let (index, index_error) = match optional(&config.index, "index") {
        Ok(Some(index)) => (index, None),
        Ok(None) => return Ok(None),
        Err(err) => (None, Some(err)),
    };
    Ok(Some(AllPieces { spot, perp, mark, index, index_error }))
}

/// An index series' error as the whole load reports it: the whole load reads the index after the
/// funding and staking series, so an error of theirs comes first.
fn after_funding_and_staking(config: &DataConfig, index_error: anyhow::Error) -> anyhow::Error {
    if let Some(source) = &config.funding {
        if let Err(funding_error) = super::load_funding(source, &config.symbol, &mut Vec::new(), &mut Vec::new()) {
            return funding_error;
        }
    }
    if let Some(source) = &config.staking {
        if let Err(staking_error) = super::generic::load_staking(source, &mut Vec::new()) {
            return staking_error;
        }
    }
    index_error
}

/// Listing placeholders at the perp's start, when its first piece settles the question: `None`
/// when the flat bars (or the real bars the check compares them with) run past it.
fn placeholders(perp: &BarPieces, source: &super::source::PriceSource, warnings: &mut Vec<String>) -> Result<Option<usize>> {
    if source.high_column.is_none() && source.low_column.is_none() && source.open_column.is_none() {
        // No range: every bar is flat, and a series flat throughout has no placeholders.
        return Ok(Some(0));
    }
    // The count is of bars as loaded (sorted, duplicates dropped); the pieces are read raw, so
    // the first must already be in strict order for the two to agree.
    if !perp.times(0)?.windows(2).all(|w| w[0] < w[1]) {
        return Ok(None);
    }
    let mut first = perp.bars(0, warnings)?;
    let flat = first.high.iter().zip(&first.low).take_while(|(h, l)| h == l).count();
    let whole = perp.len() == 1;
    if !whole && (flat >= first.ts_ms.len() || (flat > 0 && flat + 24 > first.ts_ms.len())) {
        return Ok(None);
    }
    Ok(Some(quality::skip_listing_placeholders(&mut first, warnings)))
}

impl ChunkedMarket {
    /// The market of `config` in chunks, or `None` when it must be loaded whole: a bar series
    /// that is not generic Parquet or not strictly increasing in time, a freqtrade directory,
    /// a perp whose files are shorter than `chunking.from_perp_bytes` in all (the whole path is
    /// faster there), or listing placeholders past the perp's first row group.
    pub fn open(config: &DataConfig, window: &Window, constant_staking_apr: f64, chunking: Chunking) -> Result<Option<Self>> {
        let (Some(funding_source), Some(perp_source)) = (&config.funding, &config.perp) else { return Ok(None) };
        super::matching::check_symbol(config)?;
        // Wall-clock times in a zone are moved to UTC on the whole series: the whole load.
        let zoned = [config.spot.as_ref(), config.perp.as_ref(), config.mark.as_ref(), config.index.as_ref()].into_iter().flatten().any(|s| s.time_zone.is_some());
        if zoned || funding_source.time_zone.is_some() {
            return Ok(None);
        }
        // The size first: a short run opens nothing here.
        let perp_bytes: u64 = super::read::expand_glob(&perp_source.path, "perp bars")?.iter().map(|p| std::fs::metadata(p).map_or(0, |m| m.len())).sum();
        if perp_bytes < chunking.from_perp_bytes {
            return Ok(None);
        }
        // Kline dumps are parsed into the dump cache first (those not there yet).
        let dumps = [config.spot.as_ref(), config.perp.as_ref(), config.mark.as_ref(), config.index.as_ref()].into_iter().flatten().any(|s| s.format == super::source::PriceFormat::BinanceKlines);
        let mut cache_warnings = Vec::new();
        let cache = dumps.then(|| DumpCache::open(chunking.cache, &mut cache_warnings)).transpose()?;
        let Some(mut pieces) = all_pieces(config, cache.as_ref())? else { return Ok(None) };
        let cache_entries: Vec<PathBuf> = [Some(&pieces.spot), Some(&pieces.perp), pieces.mark.as_ref(), pieces.index.as_ref()].into_iter().flatten().flat_map(BarPieces::cache_entries).collect();
        if pieces.perp.is_empty() || pieces.spot.is_empty() {
            return Ok(None);
        }
        // The first passes run side by side (each reads its own files); errors are reported
        // in the order the whole load meets them (spot, perp, mark, funding, staking, index),
        // and warnings are gathered in the order it gives them.
        let mut placeholder_warnings = Vec::new();
        let (spot_facts, perp_facts, mark_facts, index_facts) = std::thread::scope(|scope| {
            let spot = scope.spawn(|| first_pass(&pieces.spot, 0));
            let mark = pieces.mark.as_ref().map(|mark| scope.spawn(|| first_pass(mark, 0)));
            let index = pieces.index.as_ref().map(|index| scope.spawn(|| first_pass(index, 0)));
            let perp = (|| -> Result<Option<(SeriesFacts, usize)>> {
                let skip = if config.skip_listing_placeholders {
                    match placeholders(&pieces.perp, perp_source, &mut placeholder_warnings)? {
                        Some(skip) => skip,
                        None => return Ok(None),
                    }
                } else {
                    0
                };
                Ok(first_pass(&pieces.perp, skip)?.map(|facts| (facts, skip)))
            })();
            let joined = |handle: std::thread::ScopedJoinHandle<'_, Result<Option<SeriesFacts>>>| handle.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a first pass over the bar times panicked")));
            let spot = joined(spot);
            let mark = mark.map(joined).transpose();
            let index = index.map(joined).transpose();
            (spot, perp, mark, index)
        });
        let Some(spot_facts) = spot_facts? else { return Ok(None) };
        let Some((perp_facts, skip)) = perp_facts? else { return Ok(None) };
        let mark_facts = match mark_facts? {
            Some(None) => return Ok(None),
            facts => facts.flatten(),
        };
        if let Some(err) = pieces.index_error.take() {
            return Err(after_funding_and_staking(config, err));
        }
        let index_facts = match index_facts.map_err(|err| after_funding_and_staking(config, err))? {
            Some(None) => return Ok(None),
            facts => facts.flatten(),
        };
        let mut files_before = Vec::new();
        let mut warnings = cache_warnings;
        let funding = super::load_funding(funding_source, &config.symbol, &mut files_before, &mut warnings)?;
        warnings.extend(placeholder_warnings);
        let mut files_after = Vec::new();
        let staking = config.staking.as_ref().map(|source| super::generic::load_staking(source, &mut files_after)).transpose()?;
        let span = |facts: &SeriesFacts| (facts.first_ms, facts.last_ms);
        let spans = BarSpans {
            spot: span(&spot_facts),
            perp: span(&perp_facts),
            mark: mark_facts.as_ref().filter(|_| !config.mark_optional).map(span),
            index: index_facts.as_ref().map(span),
        };
        let coverage = align::coverages_of(&spans, &funding, false, staking.as_ref());
        let spacing = perp_facts.clock.typical_spacing();
        let mut perp_times = PerpPieceTimes { pieces: &pieces.perp, facts: &perp_facts.pieces, skip, cached: Vec::new() };
        let plan = align::plan_clock(coverage, spacing, spot_facts.first_ms, &mut perp_times, window)?;
        let span = (perp_times.at(plan.range.start)?, perp_times.at(plan.range.end - 1)?);
        let mut clocks = vec![("spot", spot_facts.clock), ("perp", perp_facts.clock)];
        clocks.extend(mark_facts.map(|f| ("mark", f.clock)));
        clocks.extend(index_facts.map(|f| ("index", f.clock)));
        super::clock_warnings(config, &funding, clocks.into_iter(), &mut warnings);
        let aligner = StepAligner::new(&plan, window, constant_staking_apr);
        for series in [Some(&mut pieces.spot), Some(&mut pieces.perp), pieces.mark.as_mut(), pieces.index.as_mut()].into_iter().flatten() {
            series.hash_in_background();
        }
        let priced_funding = funding.unpriced();
        let mut market = ChunkedMarket {
            symbol: config.symbol.clone(),
            synthetic: config.synthetic,
            perp: Buffered::new(pieces.perp, "perp", skip),
            spot: Buffered::new(pieces.spot, "spot", 0),
            mark: pieces.mark.map(|p| Buffered::new(p, "mark", 0)),
            index: pieces.index.map(|p| Buffered::new(p, "index", 0)),
            funding,
            priced_funding,
            staking,
            next_step: plan.range.start,
            plan,
            aligner,
            steps: 0,
            max_steps: chunking.max_steps,
            span,
            files_before,
            files_after,
            warnings,
            unchecked: Some(Box::new(config.clone())),
            cache: cache.map(|cache| (cache, cache_entries)),
        };
        // Bars before the window are read (and checked) but not kept: the perp's from the first
        // step on, the others' from the one known at it.
        while market.perp.end() <= market.next_step && market.perp.read_piece(&mut market.warnings)? {
            let first_step = market.next_step.saturating_sub(market.perp.start).min(market.perp.bars.ts_ms.len());
            drop_first(&mut market.perp.bars, first_step);
            market.perp.start += first_step;
        }
        let first_ms = market.span.0;
        for series in [Some(&mut market.spot), market.mark.as_mut(), market.index.as_mut()].into_iter().flatten() {
            while series.bars.ts_ms.last().is_none_or(|&last| last <= first_ms) && series.read_piece(&mut market.warnings)? {
                series.release_before(first_ms);
            }
        }
        Ok(Some(market))
    }

    /// Steps the run will have.
    pub fn steps(&self) -> usize {
        self.plan.range.len()
    }

    /// Time from the first step to the last, ms.
    pub fn span_ms(&self) -> i64 {
        self.span.1 - self.span.0
    }

    /// The next chunk of steps (after the first, starting with the previous chunk's last step),
    /// `None` after the last.
    pub fn next_chunk(&mut self) -> Result<Option<MarketTimeline>> {
        if self.next_step >= self.plan.range.end {
            return Ok(None);
        }
        while self.perp.end() <= self.next_step {
            if !self.perp.read_piece(&mut self.warnings)? {
                return Err(input_error!("perp: the files ended before the step the first pass counted; were they changed during the run?"));
            }
        }
        let repeated = usize::from(self.steps > 0);
        let new_end = self.plan.range.end.min(self.perp.end()).min(self.next_step + self.max_steps.max(1));
        let (from, to) = (self.next_step - self.perp.start - repeated, new_end - self.perp.start);
        let last_ms = self.perp.bars.ts_ms[to - 1];
        for series in [Some(&mut self.spot), self.mark.as_mut(), self.index.as_mut()].into_iter().flatten() {
            series.fill_through(last_ms, &mut self.warnings)?;
        }
        if let Some(config) = self.unchecked.take() {
            // The first chunk's bars are a large sample of the whole: pairs of markets show there.
            super::matching::check_prices(&config, &self.spot.bars, &self.perp.bars, self.mark.as_ref().map(|m| &m.bars))?;
        }
        let perp = &self.perp.bars;
        let sources = Sources { spot: &self.spot.bars, perp, mark: self.mark.as_ref().map(|m| &m.bars), index: self.index.as_ref().map(|i| &i.bars), funding: &self.funding, staking: self.staking.as_ref() };
        let (ts_ms, close, high, low) = (&perp.ts_ms[from..to], &perp.close[from..to], &perp.high[from..to], &perp.low[from..to]);
        let mut timeline = self.aligner.align(&sources, ts_ms, close, high, low, repeated)?;
        timeline.ts_ms = ts_ms.to_vec();
        timeline.perp = close.to_vec();
        if self.mark.is_none() {
            timeline.mark_high = high.to_vec();
            timeline.mark_low = low.to_vec();
        }
        let inside = timeline.funding.between(ts_ms[0], ts_ms[ts_ms.len() - 1]);
        self.priced_funding[inside.clone()].copy_from_slice(&timeline.funding[inside]);
        self.steps += to - from - repeated;
        self.next_step = new_end;
        self.perp.release_before(last_ms);
        for series in [Some(&mut self.spot), self.mark.as_mut(), self.index.as_mut()].into_iter().flatten() {
            series.release_before(last_ms);
        }
        Ok(Some(timeline))
    }

    /// Once every chunk is out: the run's timeline without its per-step columns (symbol,
    /// settlements, coverage, warnings, stale spans), the files read, and the loader's warnings.
    pub fn finish(mut self) -> Result<(MarketTimeline, Vec<PathBuf>, Vec<String>)> {
        // The bars after the last step are checked too, as a whole load checks every row: a
        // bad row there is refused the same way, not passed over.
        for series in [Some(&mut self.spot), Some(&mut self.perp), self.mark.as_mut(), self.index.as_mut()].into_iter().flatten() {
            series.bars = PriceBars::default();
            while series.read_piece(&mut self.warnings)? {
                series.bars = PriceBars::default();
            }
        }
        if let Some((cache, in_use)) = &self.cache {
            cache.trim(in_use);
        }
        let totals = self.aligner.finish(self.plan);
        let mut files = Vec::new();
        files.extend(self.spot.pieces.finish()?);
        files.extend(self.perp.pieces.finish()?);
        if let Some(mark) = self.mark {
            files.extend(mark.pieces.finish()?);
        }
        files.extend(self.files_before);
        files.extend(self.files_after);
        if let Some(index) = self.index {
            files.extend(index.pieces.finish()?);
        }
        let header = MarketTimeline {
            symbol: self.symbol,
            synthetic: self.synthetic,
            funding: self.priced_funding,
            stale_spot_steps: totals.stale_spot_steps,
            stale_spans: totals.stale_spans,
            coverage: totals.coverage,
            coverage_warnings: totals.coverage_warnings,
            ..MarketTimeline::default()
        };
        Ok((header, files, self.warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars(ts: &[i64], close: &[f64], range: bool, volume: Option<&[f64]>) -> PriceBars {
        PriceBars {
            label: "spot".into(),
            ts_ms: ts.to_vec(),
            close: close.to_vec(),
            high: if range { close.iter().map(|c| c + 1.0).collect() } else { Vec::new() },
            low: if range { close.iter().map(|c| c - 1.0).collect() } else { Vec::new() },
            volume: volume.map(<[f64]>::to_vec).unwrap_or_default(),
        }
    }

    #[test]
    fn pieces_with_and_without_a_range_or_volume_append_as_one_series() {
        let mut buffer = bars(&[1, 2], &[10.0, 11.0], false, None);
        append_bars(&mut buffer, bars(&[3], &[12.0], true, Some(&[5.0])));
        append_bars(&mut buffer, bars(&[4], &[13.0], false, None));
        assert_eq!(buffer.ts_ms, vec![1, 2, 3, 4]);
        // A missing range is the close; a missing volume is unknown.
        assert_eq!(buffer.high, vec![10.0, 11.0, 13.0, 13.0]);
        assert_eq!(buffer.low, vec![10.0, 11.0, 11.0, 13.0]);
        assert_eq!(buffer.volume.len(), 4);
        assert!(buffer.volume[0].is_nan() && buffer.volume[1].is_nan() && buffer.volume[3].is_nan());
        assert_eq!(buffer.volume[2], 5.0);
        drop_first(&mut buffer, 3);
        assert_eq!((buffer.ts_ms, buffer.close, buffer.high, buffer.low), (vec![4], vec![13.0], vec![13.0], vec![13.0]));
    }
}
