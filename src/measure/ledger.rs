//! The ledger kept in memory: every step's row column by column ([`FullLedger`]), and the
//! trade and funding-settlement records as Parquet frames (and read back from them).

use anyhow::Result;
use polars::prelude::*;

pub use crate::model::pnl::{events, state, NoLedger, Pnl, Recorder, StepRow};
pub use crate::model::trade::{FundingPayment, Trade, TradeReason};
use crate::model::Settlement;
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

    /// The schema of [`FullLedger::to_frame`], without making a frame (polars' cast of an empty
    /// column fills a shared buffer of zeros first: 4 ms of page faults).
    pub fn schema() -> Schema {
        let front = [("ts", DataType::Datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC))), ("state", DataType::Int32), ("events", DataType::Int32)];
        let floats = Self::float_columns().iter().map(|name| (*name, DataType::Float64));
        Schema::from_iter(front.into_iter().chain(floats).map(|(name, dtype)| Field::new(name.into(), dtype)))
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

/// One row group of the streaming ledger as it fills: the latest rows stored whole (row after
/// row: the loop writes one contiguous record a step instead of a value into each of 25
/// columns), laid out into the row group's columns and float pages every [`RowGroup::STAGED`]
/// rows, while those rows are still in the cache.
pub struct RowGroup {
    /// Rows not laid out yet: at most [`RowGroup::STAGED`].
    staged: Vec<PackedRow>,
    /// Rows the columns and pages are made for.
    capacity: usize,
    rows: usize,
    ts_ms: Vec<i64>,
    state: Vec<i32>,
    events: Vec<i32>,
    pages: Vec<crate::parquet::FloatPage>,
}

impl RowGroup {
    /// Rows gathered whole before they are laid out: 1,024 rows are 208 KiB, which stay in a
    /// core's L2 cache between the loop writing them and the layout reading them back.
    pub const STAGED: usize = 1024;

    /// An empty row group for up to `rows` rows.
    pub fn with_capacity(rows: usize) -> Self {
        let staged = Vec::with_capacity(Self::STAGED.min(rows));
        let (ts_ms, state, events, pages) = Self::columns_for(rows);
        RowGroup { staged, capacity: rows, rows: 0, ts_ms, state, events, pages }
    }

    #[allow(clippy::type_complexity)]
    fn columns_for(rows: usize) -> (Vec<i64>, Vec<i32>, Vec<i32>, Vec<crate::parquet::FloatPage>) {
        // polars' columns are nullable: their pages carry definition levels.
        let pages = (0..FLOAT_COLUMNS).map(|_| crate::parquet::FloatPage::for_rows(rows, true)).collect();
        (Vec::with_capacity(rows), Vec::with_capacity(rows), Vec::with_capacity(rows), pages)
    }

    /// Rows gathered.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was gathered.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Lay the staged rows out into the columns and pages.
    fn lay_out_staged(&mut self) {
        let staged = std::mem::take(&mut self.staged);
        self.lay_out(&staged);
        self.staged = staged;
        self.staged.clear();
    }

    /// Append `rows` (gathered elsewhere) laid out at once.
    fn push_rows(&mut self, rows: &[PackedRow]) {
        self.rows += rows.len();
        self.lay_out(rows);
    }

    /// Lay `rows` out into the columns and pages, a block of 64 rows (13 KiB, in the L1 cache)
    /// at a time, each page taking its column of the block straight from the rows.
    #[inline(never)]
    fn lay_out(&mut self, rows: &[PackedRow]) {
        const BLOCK: usize = 64;
        for block in rows.chunks(BLOCK) {
            self.ts_ms.extend(block.iter().map(|r| r.ts_ms));
            self.state.extend(block.iter().map(|r| r.state));
            self.events.extend(block.iter().map(|r| r.events));
            for (column, page) in self.pages.iter_mut().enumerate() {
                page.push_from(block.len(), |row| block[row].values[column]);
            }
        }
    }

    /// The rows gathered as the ledger file's row group: the time, state and events columns as
    /// a frame, and each float column as its Parquet page. The row group is left empty, with
    /// fresh columns for as many rows as before.
    pub fn take_parts(&mut self) -> Result<(DataFrame, Vec<crate::parquet::FloatPage>)> {
        self.lay_out_staged();
        let (ts_ms, state, events, pages) = Self::columns_for(self.capacity);
        let ts_ms = std::mem::replace(&mut self.ts_ms, ts_ms);
        let state = std::mem::replace(&mut self.state, state);
        let events = std::mem::replace(&mut self.events, events);
        let pages = std::mem::replace(&mut self.pages, pages).into_iter().map(crate::parquet::FloatPage::cut_to_filled).collect();
        let rows = std::mem::take(&mut self.rows);
        Ok((DataFrame::new(rows, FullLedger::front_columns(ts_ms, state, events)?)?, pages))
    }
}

impl Recorder for RowGroup {
    #[inline]
    fn record(&mut self, row: &StepRow) {
        self.staged.push(PackedRow::of(row));
        self.rows += 1;
        if self.staged.len() == Self::STAGED {
            self.lay_out_staged();
        }
    }
}

/// Rows stored whole, one contiguous record a step, for a thread other than the loop's to lay
/// out ([`LayoutThread::Writer`]): the recording alone.
#[derive(Default)]
pub struct PackedRows {
    rows: Vec<PackedRow>,
}

impl PackedRows {
    /// Room for `rows` rows.
    pub fn with_capacity(rows: usize) -> Self {
        PackedRows { rows: Vec::with_capacity(rows) }
    }

    /// Rows recorded.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row was recorded.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Forget the rows, keeping the room.
    pub fn clear(&mut self) {
        self.rows.clear();
    }
}

impl Recorder for PackedRows {
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
pub fn window_settlements(window: &[Settlement], paid: &[FundingPayment]) -> Vec<FundingPayment> {
    let mut paid_iter = paid.iter().peekable();
    window
        .iter()
        .map(|s| {
            while paid_iter.peek().is_some_and(|p| p.settlement.settle_ms < s.settle_ms) {
                paid_iter.next();
            }
            match paid_iter.peek() {
                Some(p) if p.settlement.settle_ms == s.settle_ms => FundingPayment { settlement: Settlement { price: p.settlement.price, ..*s }, ..**p },
                _ => FundingPayment::not_held(*s),
            }
        })
        .collect()
}

/// Settlements as a frame: `ts` (UTC), `rate`, `interval_hours`, `held`, `perp_qty`, `price`, `amount`.
pub fn settlements_frame(settlements: &[FundingPayment]) -> Result<DataFrame> {
    let ts: Vec<i64> = settlements.iter().map(|s| s.settlement.settle_ms).collect();
    let f = |get: fn(&FundingPayment) -> f64| settlements.iter().map(get).collect::<Vec<f64>>();
    let columns = vec![
        Column::new("ts".into(), ts).cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC)))?,
        Column::new("rate".into(), f(|s| s.settlement.rate)),
        Column::new("interval_hours".into(), f(|s| s.settlement.interval_hours)),
        Column::new("held".into(), settlements.iter().map(|s| s.held).collect::<Vec<bool>>()),
        Column::new("perp_qty".into(), f(|s| s.perp_qty)),
        Column::new("price".into(), f(|s| s.settlement.price)),
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
pub fn settlements_from_frame(frame: &DataFrame, file: &str) -> Result<Vec<FundingPayment>> {
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
        .map(|i| FundingPayment {
            settlement: Settlement { settle_ms: ts[i], rate: rate[i], interval_hours: interval[i], price: price[i] },
            held: held.get(i).unwrap_or(false),
            perp_qty: perp_qty[i],
            amount: amount[i],
        })
        .collect())
}

/// Rows a [`ParquetLedger`] gathers before writing them as one row group.
pub const ROW_GROUP_ROWS: usize = 65_536;
// A row group's float column is one Parquet page (RowGroup::take_parts).
const _: () = assert!(ROW_GROUP_ROWS <= crate::parquet::FLOAT_PAGE_ROWS);

/// Which thread lays a [`ParquetLedger`]'s rows out into their columns and pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutThread {
    /// The loop's own, as it goes: best when the loop's thread has nothing else to do (the
    /// market loaded and aligned before the loop starts), as the writer's compression then
    /// keeps its thread busy.
    Loop,
    /// The writer's, before it compresses: best when the loop's thread also loads and aligns
    /// the market chunk by chunk, which leaves the writer room.
    Writer,
}

/// What the loop hands the writer thread.
enum Handover {
    /// A row group laid out: its front columns and float pages.
    Group(DataFrame, Vec<crate::parquet::FloatPage>),
    /// Rows stored whole, for the writer to lay out.
    Rows(PackedRows),
}

/// Where the loop's rows go until they are handed over.
enum Filling {
    /// Laid out into a row group on the loop's thread.
    Group(RowGroup),
    /// Gathered whole into a batch that becomes one row group (of [`ROW_GROUP_ROWS`] rows, the
    /// last one fewer); batches the writer is done with come back through `recycled` (at most
    /// [`ParquetLedger::BATCHES`] exist).
    Rows { batch: PackedRows, recycled: std::sync::mpsc::Receiver<PackedRows>, batches: usize },
}

/// Writes every row to a Parquet file as the run goes, one row group of [`ROW_GROUP_ROWS`] rows
/// at a time, so memory does not grow with the number of steps. The file holds the same
/// columns as [`FullLedger::to_frame`] (and the same bytes for a run of up to one row group).
///
/// The work is split between the two threads it keeps busy: a writer thread compresses and
/// writes each row group while the loop fills the next, and the rows are laid out into the
/// row group's columns and pages ([`RowGroup`]) on the thread [`LayoutThread`] says. At most
/// two row groups' pages exist: one being written and one filling.
pub struct ParquetLedger {
    filling: Filling,
    sender: Option<std::sync::mpsc::SyncSender<Handover>>,
    writer: Option<std::thread::JoinHandle<Result<()>>>,
    rows: usize,
    /// A row group that could not be laid out, reported by [`ParquetLedger::finish`].
    failed: Option<anyhow::Error>,
}

impl ParquetLedger {
    /// Batches of rows that exist at most with [`LayoutThread::Writer`], a row group each (13.6
    /// MB): one filling, one queued, one the writer lays out. Batches of 1,024 rows measured
    /// slower at eight years (eight of them: 2.01 s against 1.64 s for whole row groups of rows
    /// in the build before; two row groups' worth of them: 1.83 against 1.74 s).
    const BATCHES: usize = 3;

    /// Start writing `path` (created or truncated), laying rows out on `layout`'s thread.
    pub fn create(path: &std::path::Path, layout: LayoutThread) -> Result<Self> {
        let file = std::fs::File::create(path).map_err(|err| anyhow::anyhow!("creating {}: {err}", path.display()))?;
        let mut writer = crate::parquet::FrameWriter::new(std::io::BufWriter::with_capacity(1 << 20, file), &FullLedger::schema(), &path.display().to_string())?;
        // Laid-out row groups go over a rendezvous, so no third one's pages are ever held;
        // batches of rows through a channel of one (with the one filling and the one being laid
        // out, the three batches).
        let (sender, handovers) = std::sync::mpsc::sync_channel::<Handover>(if layout == LayoutThread::Loop { 0 } else { 1 });
        let (give_back, recycled) = std::sync::mpsc::channel::<PackedRows>();
        let thread = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || -> Result<()> {
                let mut group: Option<RowGroup> = None;
                for handover in handovers {
                    match handover {
                        Handover::Group(front, pages) => writer.write_parts(&front, pages)?,
                        // A batch is one row group (the loop hands it over full, or at the end).
                        Handover::Rows(mut batch) => {
                            let group = group.get_or_insert_with(|| RowGroup::with_capacity(ROW_GROUP_ROWS));
                            group.push_rows(&batch.rows);
                            let (front, pages) = group.take_parts()?;
                            writer.write_parts(&front, pages)?;
                            batch.clear();
                            let _ = give_back.send(batch);
                        }
                    }
                }
                writer.finish()
            })
            .map_err(|err| anyhow::anyhow!("starting the ledger writer for {}: {err}", path.display()))?;
        let filling = match layout {
            LayoutThread::Loop => Filling::Group(RowGroup::with_capacity(ROW_GROUP_ROWS)),
            LayoutThread::Writer => Filling::Rows { batch: PackedRows::with_capacity(ROW_GROUP_ROWS), recycled, batches: 1 },
        };
        Ok(Self { filling, sender: Some(sender), writer: Some(thread), rows: 0, failed: None })
    }

    /// Hand what is filled over to the writer.
    fn flush(&mut self) {
        let handover = match &mut self.filling {
            Filling::Group(group) if group.is_empty() => return,
            Filling::Group(group) => {
                self.rows += group.len();
                match group.take_parts() {
                    Ok((front, pages)) => Handover::Group(front, pages),
                    Err(err) => {
                        self.failed.get_or_insert(err);
                        self.sender = None;
                        return;
                    }
                }
            }
            Filling::Rows { batch, .. } if batch.is_empty() => return,
            Filling::Rows { batch, recycled, batches } => {
                let next = match recycled.try_recv() {
                    Ok(next) => next,
                    Err(_) if *batches < Self::BATCHES => {
                        *batches += 1;
                        PackedRows::with_capacity(ROW_GROUP_ROWS)
                    }
                    // Wait for the writer to hand one back (a stopped writer: a fresh one, and
                    // `finish` reports its error).
                    Err(_) => recycled.recv().unwrap_or_else(|_| PackedRows::with_capacity(ROW_GROUP_ROWS)),
                };
                let full = std::mem::replace(batch, next);
                self.rows += full.len();
                Handover::Rows(full)
            }
        };
        // A failed send means the writer stopped on an error, which `finish` reports.
        if let Some(sender) = &self.sender {
            let _ = sender.send(handover);
        }
    }

    /// Write the last rows and the footer; returns the number of rows written.
    pub fn finish(mut self) -> Result<usize> {
        self.flush();
        self.sender = None;
        if let Some(thread) = self.writer.take() {
            thread.join().map_err(|_| anyhow::anyhow!("the ledger writer thread panicked"))??;
        }
        match self.failed.take() {
            Some(err) => Err(err.context("laying out a row group of the ledger")),
            None => Ok(self.rows),
        }
    }
}

impl Recorder for ParquetLedger {
    #[inline]
    fn record(&mut self, row: &StepRow) {
        match &mut self.filling {
            Filling::Group(group) => {
                group.record(row);
                if group.len() == ROW_GROUP_ROWS {
                    self.flush();
                }
            }
            Filling::Rows { batch, .. } => {
                batch.record(row);
                if batch.len() == ROW_GROUP_ROWS {
                    self.flush();
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema written out by hand is the one the frames have.
    #[test]
    fn schema_is_the_frames_schema() {
        let frame = FullLedger::default().to_frame().expect("an empty ledger's frame");
        assert_eq!(&FullLedger::schema(), frame.schema().as_ref());
        let mut rows = RowGroup::with_capacity(4);
        rows.record(&StepRow::default());
        let (front, pages) = rows.take_parts().expect("one row's parts");
        assert_eq!(front.width() + pages.len(), FullLedger::schema().len());
        assert_eq!(front.schema().iter_names().collect::<Vec<_>>(), FullLedger::schema().iter_names().take(front.width()).collect::<Vec<_>>());
    }
}
