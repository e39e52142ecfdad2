//! The ledger kept in memory: every step's row column by column ([`FullLedger`]), and the
//! trade and funding-settlement records as Parquet frames (and read back from them).

use anyhow::Result;
use polars::prelude::*;

pub use crate::model::pnl::{events, state, NoLedger, Pnl, Recorder, StepRow};
pub use crate::model::trade::{Settlement, SettlementPaid, Trade, TradeReason};
/// Keeps every row, column by column (so writing the frame moves vectors instead of copying).
#[derive(Clone)]
pub struct FullLedger {
    ts_ms: Vec<i64>,
    state: Vec<i32>,
    events: Vec<i32>,
    /// One vector per float field, in [`FullLedger::float_columns`] order.
    floats: Vec<Vec<f64>>,
}

impl Default for FullLedger {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl FullLedger {
    /// Float columns before the PnL components.
    const STATE_COLUMNS: [&'static str; 8] = ["spot_price", "perp_price", "mark_price", "spot_qty", "perp_qty", "cash", "perp_margin", "equity"];
    /// Float columns after the components and their total.
    const TAIL_COLUMNS: [&'static str; 3] = ["liquidation_price", "liquidation_distance", "funding_signal_apr"];

    /// Names of the float columns, in storage order: the state, one `pnl_<component>` per
    /// [`Pnl::COMPONENTS`], `pnl_total`, then the liquidation price and distance and the signal.
    pub fn float_columns() -> &'static [&'static str] {
        static COLUMNS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
            let mut columns = FullLedger::STATE_COLUMNS.to_vec();
            columns.extend(Pnl::COMPONENTS.iter().map(|c| c.column));
            columns.push("pnl_total");
            columns.extend(FullLedger::TAIL_COLUMNS);
            columns
        });
        &COLUMNS
    }

    /// A ledger with room for `steps` rows.
    pub fn with_capacity(steps: usize) -> Self {
        Self {
            ts_ms: Vec::with_capacity(steps),
            state: Vec::with_capacity(steps),
            events: Vec::with_capacity(steps),
            floats: (0..Self::float_columns().len()).map(|_| Vec::with_capacity(steps)).collect(),
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ts_ms.len()
    }

    /// Whether the ledger is empty.
    pub fn is_empty(&self) -> bool {
        self.ts_ms.is_empty()
    }

    /// Drop every row, keeping the capacity.
    pub fn clear(&mut self) {
        self.ts_ms.clear();
        self.state.clear();
        self.events.clear();
        for column in &mut self.floats {
            column.clear();
        }
    }

    /// Row `i` as a [`StepRow`].
    pub fn row(&self, i: usize) -> StepRow {
        let f = |k: usize| self.floats[k][i];
        let pnl_at = Self::STATE_COLUMNS.len();
        let tail = pnl_at + Pnl::COUNT + 1;
        StepRow {
            ts_ms: self.ts_ms[i],
            spot_price: f(0),
            perp_price: f(1),
            mark_price: f(2),
            state: self.state[i] as i8,
            events: self.events[i] as u8,
            spot_qty: f(3),
            perp_qty: f(4),
            cash: f(5),
            perp_margin: f(6),
            equity: f(7),
            pnl: Pnl::from_values(std::array::from_fn(|k| f(pnl_at + k))),
            liquidation_price: f(tail),
            liquidation_distance: f(tail + 1),
            funding_signal_apr: f(tail + 2),
            ..Default::default()
        }
    }

    /// Every row, in order.
    pub fn rows(&self) -> impl Iterator<Item = StepRow> + '_ {
        (0..self.len()).map(|i| self.row(i))
    }

    /// One float column by name (see [`FullLedger::float_columns`]).
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        Self::float_columns().iter().position(|c| *c == name).map(|k| self.floats[k].as_slice())
    }

    /// The ledger as a frame: `ts` (UTC), `state`, `events`, then the float columns.
    pub fn to_frame(&self) -> Result<DataFrame> {
        self.clone().into_frame()
    }

    /// The rows as a frame, the column vectors moved into it (no copy).
    pub fn into_frame(self) -> Result<DataFrame> {
        let rows = self.len();
        let mut columns = Self::front_columns(self.ts_ms, self.state, self.events)?;
        for (name, values) in Self::float_columns().iter().zip(self.floats) {
            columns.push(Column::new((*name).into(), values));
        }
        Ok(DataFrame::new(rows, columns)?)
    }

    /// The columns before the float ones: time, state, events.
    fn front_columns(ts_ms: Vec<i64>, state: Vec<i32>, events: Vec<i32>) -> Result<Vec<Column>> {
        Ok(vec![
            Column::new("ts".into(), ts_ms).cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC)))?,
            Column::new("state".into(), state),
            Column::new("events".into(), events),
        ])
    }
}

/// Keeps one row per period (UTC hour or day): the period's last row, with its PnL components
/// and event flags gathered over the period, so each kept row's PnL is still its change in
/// equity since the previous kept row. A step closing at a period's end (01:00) belongs to the
/// period it closes.
pub struct PeriodLedger {
    rows: FullLedger,
    period_ms: i64,
    pending: Option<(i64, StepRow)>,
}

impl PeriodLedger {
    /// A ledger keeping one row per `period_ms`, with room for `periods` rows.
    pub fn new(period_ms: i64, periods: usize) -> Self {
        Self { rows: FullLedger::with_capacity(periods), period_ms, pending: None }
    }

    /// The kept rows.
    pub fn finish(mut self) -> FullLedger {
        if let Some((_, row)) = self.pending.take() {
            self.rows.record(&row);
        }
        self.rows
    }
}

impl Recorder for PeriodLedger {
    #[inline]
    fn record(&mut self, row: &StepRow) {
        let period = (row.ts_ms - 1).div_euclid(self.period_ms);
        match &mut self.pending {
            Some((p, pending)) if *p == period => {
                let mut pnl = pending.pnl;
                pnl.add(&row.pnl);
                let events = pending.events | row.events;
                *pending = StepRow { pnl, events, ..*row };
            }
            _ => {
                if let Some((_, done)) = self.pending.replace((period, *row)) {
                    self.rows.record(&done);
                }
            }
        }
    }
}

impl Recorder for FullLedger {
    #[inline]
    fn record(&mut self, row: &StepRow) {
        self.push_packed(&PackedRow::of(row));
    }
}

impl FullLedger {
    /// Append one packed row to the columns.
    #[inline]
    fn push_packed(&mut self, row: &PackedRow) {
        self.ts_ms.push(row.ts_ms);
        self.state.push(row.state);
        self.events.push(row.events);
        for (column, value) in self.floats.iter_mut().zip(row.values) {
            column.push(value);
        }
    }
}

/// The float columns of a ledger row, in [`FullLedger::float_columns`] order.
const FLOAT_COLUMNS: usize = FullLedger::STATE_COLUMNS.len() + Pnl::COUNT + 1 + FullLedger::TAIL_COLUMNS.len();

/// One ledger row with its values in column order, stored whole: what the streaming ledger
/// keeps until its row group is written.
#[derive(Debug, Clone, Copy)]
struct PackedRow {
    ts_ms: i64,
    state: i32,
    events: i32,
    values: [f64; FLOAT_COLUMNS],
}

impl PackedRow {
    #[inline(always)]
    fn of(row: &StepRow) -> Self {
        // A fixed-size array (not an iterator chain): this runs once per step.
        const STATE: usize = FullLedger::STATE_COLUMNS.len();
        let mut values = [0.0; FLOAT_COLUMNS];
        values[..STATE].copy_from_slice(&[row.spot_price, row.perp_price, row.mark_price, row.spot_qty, row.perp_qty, row.cash, row.perp_margin, row.equity]);
        values[STATE..STATE + Pnl::COUNT].copy_from_slice(&row.pnl.values());
        values[STATE + Pnl::COUNT..].copy_from_slice(&[row.pnl.total(), row.liquidation_price, row.liquidation_distance, row.funding_signal_apr]);
        PackedRow { ts_ms: row.ts_ms, state: i32::from(row.state), events: i32::from(row.events), values }
    }
}

/// Rows gathered for one row group of the streaming ledger, each stored whole (row after row):
/// the loop writes one contiguous record a step instead of a value into each of 25 columns,
/// and the writer thread turns them into columns ([`RowGroup::to_parts`]).
#[derive(Debug, Clone, Default)]
pub struct RowGroup {
    rows: Vec<PackedRow>,
}

impl RowGroup {
    /// Room for `rows` rows.
    pub fn with_capacity(rows: usize) -> Self {
        let rows: Vec<PackedRow> = Vec::with_capacity(rows);
        crate::memory::prefer_huge_pages(rows.as_ptr().cast(), rows.capacity() * size_of::<PackedRow>());
        RowGroup { rows }
    }

    /// Rows gathered.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row was gathered.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Forget the rows, keeping the room.
    pub fn clear(&mut self) {
        self.rows.clear();
    }

    /// The rows as the ledger file's row group: the time, state and events columns as a frame,
    /// and each float column straight as its Parquet page, filled a block of rows at a time
    /// (no column of floats in between, no second copy).
    pub fn to_parts(&self) -> Result<(DataFrame, Vec<crate::parquet::FloatPage>)> {
        const BLOCK: usize = 64;
        let rows = self.rows.len();
        let (mut ts_ms, mut state, mut events) = (Vec::with_capacity(rows), Vec::with_capacity(rows), Vec::with_capacity(rows));
        // polars' columns are nullable: their pages carry definition levels.
        let mut pages: Vec<crate::parquet::FloatPage> = (0..FLOAT_COLUMNS).map(|_| crate::parquet::FloatPage::for_rows(rows, true)).collect();
        let mut values = [0.0; BLOCK];
        for block in self.rows.chunks(BLOCK) {
            ts_ms.extend(block.iter().map(|r| r.ts_ms));
            state.extend(block.iter().map(|r| r.state));
            events.extend(block.iter().map(|r| r.events));
            for (k, page) in pages.iter_mut().enumerate() {
                for (value, row) in values.iter_mut().zip(block) {
                    *value = row.values[k];
                }
                page.push(&values[..block.len()]);
            }
        }
        Ok((DataFrame::new(rows, FullLedger::front_columns(ts_ms, state, events)?)?, pages))
    }
}

impl Recorder for RowGroup {
    #[inline]
    fn record(&mut self, row: &StepRow) {
        self.rows.push(PackedRow::of(row));
    }
}

/// Trades as a frame.
pub fn trades_frame(trades: &[Trade]) -> Result<DataFrame> {
    let ts: Vec<i64> = trades.iter().map(|t| t.ts_ms).collect();
    let columns = vec![
        Column::new("ts".into(), ts).cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC)))?,
        Column::new("step".into(), trades.iter().map(|t| t.step as u64).collect::<Vec<u64>>()),
        Column::new("leg".into(), trades.iter().map(|t| t.leg).collect::<Vec<&str>>()),
        Column::new("reason".into(), trades.iter().map(|t| t.reason.as_str()).collect::<Vec<&str>>()),
        Column::new("qty".into(), trades.iter().map(|t| t.qty).collect::<Vec<f64>>()),
        Column::new("reference_price".into(), trades.iter().map(|t| t.reference_price).collect::<Vec<f64>>()),
        Column::new("fill_price".into(), trades.iter().map(|t| t.fill_price).collect::<Vec<f64>>()),
        Column::new("notional".into(), trades.iter().map(|t| (t.qty * t.fill_price).abs()).collect::<Vec<f64>>()),
        Column::new("fee".into(), trades.iter().map(|t| t.fee).collect::<Vec<f64>>()),
        Column::new("slippage".into(), trades.iter().map(|t| t.slippage).collect::<Vec<f64>>()),
    ];
    Ok(DataFrame::new(trades.len(), columns)?)
}

/// Every settlement in the window, merged with what the position paid or received at each.
pub fn window_settlements(window: &[(i64, f64, f64)], paid: &[SettlementPaid]) -> Vec<Settlement> {
    let mut paid_iter = paid.iter().peekable();
    window
        .iter()
        .map(|&(settle_ms, rate, interval_hours)| {
            while paid_iter.peek().is_some_and(|p| p.settle_ms < settle_ms) {
                paid_iter.next();
            }
            match paid_iter.peek() {
                Some(p) if p.settle_ms == settle_ms => {
                    Settlement { settle_ms, rate, interval_hours, held: true, perp_qty: p.perp_qty, price: p.price, amount: p.amount }
                }
                _ => Settlement { settle_ms, rate, interval_hours, held: false, perp_qty: 0.0, price: f64::NAN, amount: 0.0 },
            }
        })
        .collect()
}

/// Settlements as a frame: `ts` (UTC), `rate`, `interval_hours`, `held`, `perp_qty`, `price`, `amount`.
pub fn settlements_frame(settlements: &[Settlement]) -> Result<DataFrame> {
    let ts: Vec<i64> = settlements.iter().map(|s| s.settle_ms).collect();
    let f = |get: fn(&Settlement) -> f64| settlements.iter().map(get).collect::<Vec<f64>>();
    let columns = vec![
        Column::new("ts".into(), ts).cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC)))?,
        Column::new("rate".into(), f(|s| s.rate)),
        Column::new("interval_hours".into(), f(|s| s.interval_hours)),
        Column::new("held".into(), settlements.iter().map(|s| s.held).collect::<Vec<bool>>()),
        Column::new("perp_qty".into(), f(|s| s.perp_qty)),
        Column::new("price".into(), f(|s| s.price)),
        Column::new("amount".into(), f(|s| s.amount)),
    ];
    Ok(DataFrame::new(settlements.len(), columns)?)
}

/// A float column of a saved frame, nulls as NaN.
fn saved_f64(frame: &DataFrame, name: &str, file: &str) -> Result<Vec<f64>> {
    let column = frame.column(name).map_err(|_| anyhow::anyhow!("{file}: column `{name}` is missing; re-run the backtest to rewrite it"))?;
    let values = column.cast(&DataType::Float64).map_err(|e| anyhow::anyhow!("{file}: column `{name}`: {e}"))?;
    let values = values.f64().map_err(|e| anyhow::anyhow!("{file}: column `{name}`: {e}"))?;
    Ok(values.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// An integer or timestamp column of a saved frame (timestamps as epoch ms).
fn saved_i64(frame: &DataFrame, name: &str, file: &str) -> Result<Vec<i64>> {
    let column = frame.column(name).map_err(|_| anyhow::anyhow!("{file}: column `{name}` is missing; re-run the backtest to rewrite it"))?;
    let column = match column.dtype() {
        DataType::Datetime(unit, _) => {
            let scale = match unit {
                TimeUnit::Milliseconds => 1,
                TimeUnit::Microseconds => 1_000,
                TimeUnit::Nanoseconds => 1_000_000,
            };
            let raw = column.cast(&DataType::Int64).map_err(|e| anyhow::anyhow!("{file}: column `{name}`: {e}"))?;
            let raw = raw.i64().map_err(|e| anyhow::anyhow!("{file}: column `{name}`: {e}"))?;
            return raw.iter().enumerate().map(|(row, v)| v.map(|v| v / scale).ok_or_else(|| anyhow::anyhow!("{file}: row {row}: `{name}` is null"))).collect();
        }
        _ => column.cast(&DataType::Int64).map_err(|e| anyhow::anyhow!("{file}: column `{name}`: {e}"))?,
    };
    let raw = column.i64().map_err(|e| anyhow::anyhow!("{file}: column `{name}`: {e}"))?;
    raw.iter().enumerate().map(|(row, v)| v.ok_or_else(|| anyhow::anyhow!("{file}: row {row}: `{name}` is null"))).collect()
}

impl FullLedger {
    /// Read back a frame written by [`FullLedger::to_frame`] (a saved `ledger.parquet`).
    pub fn from_frame(frame: &DataFrame, file: &str) -> Result<FullLedger> {
        let ts_ms = saved_i64(frame, "ts", file)?;
        let to_i32 = |v: Vec<i64>| v.into_iter().map(|x| x as i32).collect::<Vec<i32>>();
        let state = to_i32(saved_i64(frame, "state", file)?);
        let events = to_i32(saved_i64(frame, "events", file)?);
        let floats = Self::float_columns().iter().map(|name| saved_f64(frame, name, file)).collect::<Result<Vec<_>>>()?;
        Ok(FullLedger { ts_ms, state, events, floats })
    }

    /// Step times, epoch ms.
    pub fn ts_ms(&self) -> &[i64] {
        &self.ts_ms
    }

    /// Event flags per step (see [`events`]).
    pub fn event_flags(&self) -> &[i32] {
        &self.events
    }

    /// Position state per step (see [`state`]).
    pub fn states(&self) -> &[i32] {
        &self.state
    }
}

/// Read back a frame written by [`settlements_frame`] (a saved `funding.parquet`).
pub fn settlements_from_frame(frame: &DataFrame, file: &str) -> Result<Vec<Settlement>> {
    let ts = saved_i64(frame, "ts", file)?;
    let rate = saved_f64(frame, "rate", file)?;
    let interval = saved_f64(frame, "interval_hours", file)?;
    let held = frame
        .column("held")
        .and_then(|c| c.bool().cloned())
        .map_err(|_| anyhow::anyhow!("{file}: boolean column `held` is missing; re-run the backtest to rewrite it"))?;
    let perp_qty = saved_f64(frame, "perp_qty", file)?;
    let price = saved_f64(frame, "price", file)?;
    let amount = saved_f64(frame, "amount", file)?;
    Ok((0..ts.len())
        .map(|i| Settlement {
            settle_ms: ts[i],
            rate: rate[i],
            interval_hours: interval[i],
            held: held.get(i).unwrap_or(false),
            perp_qty: perp_qty[i],
            price: price[i],
            amount: amount[i],
        })
        .collect())
}

/// Rows a [`ParquetLedger`] gathers before writing them as one row group.
pub const ROW_GROUP_ROWS: usize = 65_536;
// A row group's float column is one Parquet page (RowGroup::to_parts).
const _: () = assert!(ROW_GROUP_ROWS <= crate::parquet::FLOAT_PAGE_ROWS);

/// Writes every row to a Parquet file as the run goes, one row group of [`ROW_GROUP_ROWS`] rows
/// at a time, so memory does not grow with the number of steps. The file holds the same
/// columns as [`FullLedger::to_frame`] (and the same bytes for a run of up to one row group).
///
/// Encoding and compressing a row group is most of a long run's cost, so it happens on a
/// writer thread while the loop goes on: full chunks move to it through a channel of one, and
/// come back emptied for reuse as soon as the writer has copied them into the frame it encodes
/// (at most three exist: the one filling, one queued, one being copied).
pub struct ParquetLedger {
    chunk: RowGroup,
    sender: Option<std::sync::mpsc::SyncSender<RowGroup>>,
    /// Chunks the writer is done with, emptied, to be filled again.
    recycled: std::sync::mpsc::Receiver<RowGroup>,
    writer: Option<std::thread::JoinHandle<Result<()>>>,
    rows: usize,
    /// Chunks made so far: at most [`ParquetLedger::CHUNKS`].
    chunks: usize,
}

impl ParquetLedger {
    /// Start writing `path` (created or truncated).
    pub fn create(path: &std::path::Path) -> Result<Self> {
        let file = std::fs::File::create(path).map_err(|err| anyhow::anyhow!("creating {}: {err}", path.display()))?;
        let schema = FullLedger::default().to_frame()?.schema().as_ref().clone();
        let mut writer = crate::parquet::FrameWriter::new(std::io::BufWriter::with_capacity(1 << 20, file), &schema, &path.display().to_string())?;
        let (sender, chunks) = std::sync::mpsc::sync_channel::<RowGroup>(1);
        let (give_back, recycled) = std::sync::mpsc::channel::<RowGroup>();
        let thread = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || -> Result<()> {
                for mut chunk in chunks {
                    // Laid out as the row group's columns and pages here, so the loop gets its
                    // warm buffer back (before they are compressed) and does not fault in fresh
                    // pages for every row group.
                    let (front, pages) = chunk.to_parts()?;
                    chunk.clear();
                    let _ = give_back.send(chunk);
                    writer.write_parts(&front, pages)?;
                }
                writer.finish()
            })
            .map_err(|err| anyhow::anyhow!("starting the ledger writer for {}: {err}", path.display()))?;
        Ok(Self { chunk: RowGroup::with_capacity(ROW_GROUP_ROWS), sender: Some(sender), recycled, writer: Some(thread), rows: 0, chunks: 1 })
    }

    /// Chunks that exist at most: the one filling, one queued, one the writer is copying into
    /// its frame. A fourth would not speed the loop up, as the writer keeps pace; it would only
    /// hold memory (12.6 MB).
    const CHUNKS: usize = 3;

    fn flush(&mut self) {
        if self.chunk.is_empty() {
            return;
        }
        let next = match self.recycled.try_recv() {
            Ok(chunk) => chunk,
            Err(_) if self.chunks < Self::CHUNKS => {
                self.chunks += 1;
                RowGroup::with_capacity(ROW_GROUP_ROWS)
            }
            // Wait for the writer to hand one back (a stopped writer: a fresh one, and `finish`
            // reports its error).
            Err(_) => self.recycled.recv().unwrap_or_else(|_| RowGroup::with_capacity(ROW_GROUP_ROWS)),
        };
        let full = std::mem::replace(&mut self.chunk, next);
        self.rows += full.len();
        // A failed send means the writer stopped on an error, which `finish` reports.
        if let Some(sender) = &self.sender {
            let _ = sender.send(full);
        }
    }

    /// Write the last rows and the footer; returns the number of rows written.
    pub fn finish(mut self) -> Result<usize> {
        self.flush();
        self.sender = None;
        if let Some(thread) = self.writer.take() {
            thread.join().map_err(|_| anyhow::anyhow!("the ledger writer thread panicked"))??;
        }
        Ok(self.rows)
    }
}

impl Recorder for ParquetLedger {
    #[inline]
    fn record(&mut self, row: &StepRow) {
        self.chunk.record(row);
        if self.chunk.len() == ROW_GROUP_ROWS {
            self.flush();
        }
    }
}

/// Sends every row to two recorders.
pub struct Tee<'a, A, B>(pub &'a mut A, pub &'a mut B);

impl<A: Recorder, B: Recorder> Recorder for Tee<'_, A, B> {
    #[inline]
    fn record(&mut self, row: &StepRow) {
        self.0.record(row);
        self.1.record(row);
    }
}

/// Rows the report draws from at most: a longer run is drawn from one row per period (see
/// [`ReportLedger`]); `ledger.parquet` still holds every row.
pub const REPORT_ROWS: usize = 131_072;

/// The rows a report draws, in bounded memory: every row for a run of up to [`REPORT_ROWS`]
/// steps, else one row per period (a whole number of minutes), its PnL summed over the period
/// ([`PeriodLedger`]).
pub enum ReportLedger {
    /// Every row.
    Full(FullLedger),
    /// One row per period.
    Period(PeriodLedger),
}

impl ReportLedger {
    /// The recorder for a run of `steps` steps spanning `span_ms`.
    pub fn for_run(steps: usize, span_ms: i64) -> Self {
        if steps <= REPORT_ROWS {
            return ReportLedger::Full(FullLedger::with_capacity(steps));
        }
        // The shortest whole-minute period that keeps the rows under the limit.
        let minute = 60_000i64;
        let period_ms = ((span_ms / REPORT_ROWS as i64) / minute + 1) * minute;
        ReportLedger::Period(PeriodLedger::new(period_ms, (span_ms / period_ms) as usize + 2))
    }

    /// The rows kept.
    pub fn finish(self) -> FullLedger {
        match self {
            ReportLedger::Full(rows) => rows,
            ReportLedger::Period(rows) => rows.finish(),
        }
    }
}

impl Recorder for ReportLedger {
    #[inline]
    fn record(&mut self, row: &StepRow) {
        match self {
            ReportLedger::Full(rows) => rows.record(row),
            ReportLedger::Period(rows) => rows.record(row),
        }
    }
}
