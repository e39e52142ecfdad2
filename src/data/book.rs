//! L2 order-book snapshots (`[data.spot_book]`, `[data.perp_book]`) for the `orderbook` cost
//! model: read from Tardis' `book_snapshot_N` CSV layout (one row per snapshot, the same level
//! columns under a `ts` column also), or a generic long layout (one row per level: time,
//! `side`, `price`, `amount`), checked, and put on the run's clock point in time: each step
//! gets the last snapshot known at its time, unless that one is older than the stale limit.

use std::path::PathBuf;

use anyhow::Result;

use super::read::{expand_glob, read_table};
use crate::data::source::BookSource;
use crate::model::{Depth, DepthSeries, DEPTH_LEVELS};
use crate::time::format_ms;
use crate::{bail_input, input_error};

/// Snapshots as read: each known from its time on, levels best first as (price, quantity).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BookSnapshots {
    /// What the book is, for messages (`data.spot_book`).
    pub label: String,
    /// Times each snapshot is known from, epoch ms UTC, ascending.
    pub ts_ms: Vec<i64>,
    /// Each snapshot's asks, best (lowest) first.
    pub asks: Vec<Vec<(f64, f64)>>,
    /// Each snapshot's bids, best (highest) first.
    pub bids: Vec<Vec<(f64, f64)>>,
}

/// The time columns tried, in order, when the source names none.
const TIME_COLUMNS: [&str; 3] = ["local_timestamp", "timestamp", "ts"];

/// Load `source`'s snapshots, adding the files read to `files`. Empty level cells end a side (a
/// thin book); a level out of order, a crossed book or a non-positive quantity is an error
/// naming its row.
pub fn load(source: &BookSource, label: &str, files: &mut Vec<PathBuf>) -> Result<BookSnapshots> {
    let mut rows: Vec<(i64, Vec<(f64, f64)>, Vec<(f64, f64)>)> = Vec::new();
    for path in expand_glob(&source.path, label)? {
        let table = read_table(&path)?;
        let names: Vec<String> = table.frame.get_column_names().iter().map(|n| n.to_string()).collect();
        let time_name = match &source.time_column {
            Some(name) => name.clone(),
            None => TIME_COLUMNS.iter().find(|c| names.iter().any(|n| n == *c)).map(|c| c.to_string()).ok_or_else(|| {
                input_error!("{}: no time column: expected one of {} (or set {label}.time_column); the file has {}", path.display(), TIME_COLUMNS.join(", "), names.join(", "))
            })?,
        };
        let time = table.times_ms(table.column(&time_name)?, source.time_unit)?;
        if names.iter().any(|n| n == "side") && names.iter().any(|n| n == "price") && !names.iter().any(|n| n == "asks[0].price") {
            rows.extend(long_layout(&table, &time, &names)?);
            files.push(path);
            continue;
        }
        let levels = (0..).take_while(|k| names.iter().any(|n| *n == format!("asks[{k}].price")) || names.iter().any(|n| *n == format!("bids[{k}].price"))).count();
        if levels == 0 {
            bail_input!("{}: no book levels: expected columns asks[0].price, asks[0].amount, bids[0].price, bids[0].amount, ... (Tardis book_snapshot layout)", path.display());
        }
        let kept = levels.min(DEPTH_LEVELS);
        let side_columns = |side: &str| -> Result<Vec<(Vec<f64>, Vec<f64>)>> {
            (0..kept)
                .map(|k| {
                    let price = super::binance::optional_f64s(&table, table.column(&format!("{side}[{k}].price"))?)?;
                    let amount = super::binance::optional_f64s(&table, table.column(&format!("{side}[{k}].amount"))?)?;
                    Ok((price, amount))
                })
                .collect()
        };
        let asks = side_columns("asks")?;
        let bids = side_columns("bids")?;
        for i in 0..time.len() {
            let side = |columns: &[(Vec<f64>, Vec<f64>)], name: &str, better: fn(f64, f64) -> bool| -> Result<Vec<(f64, f64)>> {
                let mut out: Vec<(f64, f64)> = Vec::new();
                for (k, (price, amount)) in columns.iter().enumerate() {
                    let (p, q) = (price[i], amount[i]);
                    // An empty level (or one of zero size, as some feeds pad a thin book) ends
                    // the side.
                    if p.is_nan() || q.is_nan() || q == 0.0 {
                        break;
                    }
                    if !(p > 0.0 && q > 0.0) {
                        bail_input!("{}, {name}[{k}]: price {p} and amount {q} must both be positive", table.locate(i));
                    }
                    if let Some(&(last, _)) = out.last() {
                        if !better(last, p) {
                            bail_input!("{}, {name}[{k}]: price {p} is out of order after {last} (levels run best first)", table.locate(i));
                        }
                    }
                    out.push((p, q));
                }
                Ok(out)
            };
            let ask = side(&asks, "asks", |a, b| b > a)?;
            let bid = side(&bids, "bids", |a, b| b < a)?;
            if let (Some(a), Some(b)) = (ask.first(), bid.first()) {
                if a.0 <= b.0 {
                    bail_input!("{}: the book is crossed (best ask {} at or below best bid {})", table.locate(i), a.0, b.0);
                }
            }
            rows.push((time[i], ask, bid));
        }
        files.push(path);
    }
    rows.sort_by_key(|r| r.0);
    if rows.is_empty() {
        bail_input!("{label}: {:?} has no snapshots", source.path);
    }
    Ok(BookSnapshots {
        label: label.into(),
        ts_ms: rows.iter().map(|r| r.0).collect(),
        asks: rows.iter().map(|r| r.1.clone()).collect(),
        bids: rows.into_iter().map(|r| r.2).collect(),
    })
}

/// Snapshots from the long layout: one row per level, `side` (`bid`/`ask`, or `b`/`a`,
/// `buy`/`sell`), `price` and `amount` (or `qty`, `size`), rows of one snapshot sharing their
/// time. Levels are put best first by price; a snapshot is checked as the wide layout's are.
fn long_layout(table: &super::read::RawTable, time: &[i64], names: &[String]) -> Result<Vec<(i64, Vec<(f64, f64)>, Vec<(f64, f64)>)>> {
    let amount_name = ["amount", "qty", "size", "quantity"].into_iter().find(|c| names.iter().any(|n| n == c)).ok_or_else(|| input_error!("{}: a book in the long layout needs an `amount` (or `qty`, `size`, `quantity`) column beside `side` and `price`", table.file.display()))?;
    let side = table.strings(table.column("side")?)?;
    let price = table.f64s(table.column("price")?)?;
    let amount = table.f64s(table.column(amount_name)?)?;
    let mut out: Vec<(i64, Vec<(f64, f64)>, Vec<(f64, f64)>)> = Vec::new();
    let mut rows_of: Vec<usize> = Vec::new();
    for i in 0..time.len() {
        if amount[i] == 0.0 {
            // A level of zero size holds nothing (some feeds write removed levels so).
            continue;
        }
        if !(price[i] > 0.0 && amount[i] > 0.0) {
            bail_input!("{}: price {} and {amount_name} {} must both be positive", table.locate(i), price[i], amount[i]);
        }
        if out.last().is_none_or(|last| last.0 != time[i]) {
            if out.iter().rev().take(1).any(|last| last.0 > time[i]) {
                bail_input!("{}: snapshots must come in time order (this row's time is before the previous snapshot's)", table.locate(i));
            }
            out.push((time[i], Vec::new(), Vec::new()));
            rows_of.push(i);
        }
        let Some(snapshot) = out.last_mut() else { continue };
        match side[i].trim().to_ascii_lowercase().as_str() {
            "ask" | "asks" | "a" | "sell" => snapshot.1.push((price[i], amount[i])),
            "bid" | "bids" | "b" | "buy" => snapshot.2.push((price[i], amount[i])),
            other => bail_input!("{}, column `side`: expected bid or ask, found {other:?}", table.locate(i)),
        }
    }
    for (snapshot, &first_row) in out.iter_mut().zip(&rows_of) {
        snapshot.1.sort_by(|a, b| a.0.total_cmp(&b.0));
        snapshot.2.sort_by(|a, b| b.0.total_cmp(&a.0));
        snapshot.1.truncate(DEPTH_LEVELS);
        snapshot.2.truncate(DEPTH_LEVELS);
        if let (Some(a), Some(b)) = (snapshot.1.first(), snapshot.2.first()) {
            if a.0 <= b.0 {
                bail_input!("{}: the snapshot starting here is crossed (best ask {} at or below best bid {})", table.locate(first_row), a.0, b.0);
            }
        }
    }
    Ok(out)
}

impl BookSnapshots {
    /// The snapshot at each step of `clock` (epoch ms): the last known at or before the step,
    /// unless older than `max_age_ms` (default: the clock's bar) or one-sided; with notes on the
    /// steps that have none.
    pub fn on_clock(&self, clock: &[i64], max_age_ms: Option<i64>) -> (DepthSeries, Vec<String>) {
        let bar_ms = clock.windows(2).map(|w| w[1] - w[0]).filter(|g| *g > 0).min().unwrap_or(60_000);
        let max_age = max_age_ms.unwrap_or(bar_ms);
        let mut series = DepthSeries { snapshots: Vec::new(), at_step: vec![u32::MAX; clock.len()] };
        let (mut stale, mut last_used) = (0usize, usize::MAX);
        for (step, &t) in clock.iter().enumerate() {
            let known = self.ts_ms.partition_point(|&s| s <= t);
            let Some(k) = known.checked_sub(1) else {
                stale += 1;
                continue;
            };
            if t - self.ts_ms[k] > max_age || self.asks[k].is_empty() || self.bids[k].is_empty() {
                stale += 1;
                continue;
            }
            if k != last_used {
                series.snapshots.push(self.depth(k));
                last_used = k;
            }
            series.at_step[step] = (series.snapshots.len() - 1) as u32;
        }
        let mut notes = Vec::new();
        if stale > 0 {
            let first = self.ts_ms.first().map(|t| format_ms(*t)).unwrap_or_default();
            notes.push(format!("costs: {}: {stale} of {} steps have no snapshot known within {} ms before them (the book starts {first}): the fixed slippage stands in there", self.label, clock.len(), max_age));
        }
        (series, notes)
    }

    /// Snapshot `k` relative to its mid.
    fn depth(&self, k: usize) -> Depth {
        let (ask, bid) = (&self.asks[k], &self.bids[k]);
        let mid = 0.5 * (ask[0].0 + bid[0].0);
        let mut depth = Depth { asks: [(0.0, 0.0); DEPTH_LEVELS], bids: [(0.0, 0.0); DEPTH_LEVELS], ask_levels: ask.len() as u8, bid_levels: bid.len() as u8 };
        for (slot, &(price, qty)) in depth.asks.iter_mut().zip(ask) {
            *slot = (price / mid - 1.0, qty);
        }
        for (slot, &(price, qty)) in depth.bids.iter_mut().zip(bid) {
            *slot = (1.0 - price / mid, qty);
        }
        depth
    }
}
