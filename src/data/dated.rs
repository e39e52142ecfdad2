//! Dated (quarterly) futures contracts and rate series (the cash rate, the borrow rate):
//! loaders, and their alignment onto the run's clock.
//!
//! A contract's expiry comes from its Binance file name (`BTCUSDT_240329` delivers at
//! 2024-03-29 08:00 UTC, MARGIN.md §6) or from the generic source's column or key. Its
//! settlement price comes from the data where a column gives it; otherwise the spot close known
//! at expiry stands in, and a warning says so (Binance settles at the mean index over the last
//! 30 minutes, 60 before 2024-11-11, which the kline dumps do not hold).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::read::{expand_glob, read_table};
use super::{BarRows, Origin, PriceBars};
use crate::data::source::{DatedFormat, DatedSource, RateSource};
use crate::model::DatedContracts;
use crate::time::{format_ms, MS_PER_HOUR};
use crate::{bail_input, input_error};

/// One contract as loaded: its bars, expiry and (where the data has it) settlement price.
#[derive(Debug, Clone)]
pub struct Contract {
    /// Contract name, e.g. `BTCUSDT_240329`.
    pub name: String,
    /// Delivery time, epoch ms UTC.
    pub expiry_ms: i64,
    /// Bars, known at their close.
    pub bars: PriceBars,
    /// Settlement price from the data, if any.
    pub settlement: Option<f64>,
}

/// The expiry encoded in a Binance delivery symbol (`BTCUSDT_240329`, `BTCUSD_240329`):
/// 08:00 UTC on that date.
pub fn binance_expiry_ms(symbol: &str) -> Option<i64> {
    let (_, date) = symbol.rsplit_once('_')?;
    if date.len() != 6 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let day = chrono::NaiveDate::parse_from_str(&format!("20{date}"), "%Y%m%d").ok()?;
    Some(day.and_hms_opt(8, 0, 0)?.and_utc().timestamp_millis())
}

/// The last Friday of `month` at 08:00 UTC: Binance's quarterly delivery time (MARGIN.md §6).
pub fn quarterly_expiry_ms(year: i32, month: u32) -> i64 {
    use chrono::Datelike;
    let (next_year, next_month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    let mut day = chrono::NaiveDate::from_ymd_opt(next_year, next_month, 1).and_then(|d| d.pred_opt()).unwrap_or_default();
    while day.weekday() != chrono::Weekday::Fri {
        day = day.pred_opt().unwrap_or_default();
    }
    day.and_hms_opt(8, 0, 0).map(|t| t.and_utc().timestamp_millis()).unwrap_or_default()
}

/// Binance's quarterly contracts on `symbol` live at some time in months `from..=to`
/// (`(year, month)`): each is listed at the delivery two quarters before its own (the
/// bi-quarterly becomes the quarterly). Returns (contract symbol, listing month, delivery month).
pub fn quarterly_contracts(symbol: &str, from: (i32, u32), to: (i32, u32)) -> Vec<(String, (i32, u32), (i32, u32))> {
    let mut out = Vec::new();
    for year in from.0..=to.0 + 1 {
        for month in [3u32, 6, 9, 12] {
            let listed = if month > 6 { (year, month - 6) } else { (year - 1, month + 6) };
            // Live from its listing month to its delivery month.
            if (year, month) < from || listed > to {
                continue;
            }
            let day = chrono::DateTime::from_timestamp_millis(quarterly_expiry_ms(year, month)).map_or(0, |t| chrono::Datelike::day(&t));
            out.push((format!("{symbol}_{:02}{month:02}{day:02}", year % 100), listed, (year, month)));
        }
    }
    out
}

/// The contract named by a Binance delivery file: the file name up to its first `-`
/// (`BTCUSDT_240329-1h-2024-01.csv` → `BTCUSDT_240329`).
fn binance_contract_of(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let symbol = name.split('-').next()?;
    binance_expiry_ms(symbol).map(|_| symbol.to_string())
}

/// Load every contract the source names, sorted by expiry; `label` names the source in messages
/// (`data.dated`, `data.dated_mark`).
pub fn load_contracts(source: &DatedSource, label: &str, files: &mut Vec<PathBuf>, warnings: &mut Vec<String>) -> Result<Vec<Contract>> {
    let mut contracts = match source.format {
        DatedFormat::BinanceKlines => {
            let mut by_contract: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
            for path in expand_glob(&source.path, "dated klines")? {
                let Some(contract) = binance_contract_of(&path) else {
                    bail_input!(
                        "{}: cannot read a delivery contract from the file name; Binance delivery klines are named <SYMBOL>_<YYMMDD>-<interval>-<date>.csv (e.g. BTCUSDT_240329-1h-2024-01.csv). Use format = \"generic\" with `contract`/`expiry` for other files.",
                        path.display()
                    );
                };
                by_contract.entry(contract).or_default().push(path);
            }
            let mut out = Vec::new();
            for (name, paths) in by_contract {
                let expiry_ms = binance_expiry_ms(&name).unwrap_or_default();
                let bars = super::binance::load_kline_files(paths, source.time_unit, source.utc_offset_hours, &name, files, warnings)?;
                out.push(Contract { name, expiry_ms, bars, settlement: None });
            }
            out
        }
        DatedFormat::Generic => load_generic(source, label, files, warnings)?,
    };
    if let Some(name) = &source.time_zone {
        let zone = super::zone::parse(name, &format!("{label}.time_zone"))?;
        for contract in &mut contracts {
            super::zone::to_utc(&mut contract.bars.ts_ms, zone, &format!("{label} {}", contract.name))?;
        }
    }
    for contract in &mut contracts {
        // A bar closing after delivery is not the contract's: the contract no longer trades.
        let keep = contract.bars.ts_ms.partition_point(|&t| t <= contract.expiry_ms);
        if keep < contract.bars.ts_ms.len() {
            warnings.push(format!(
                "dated: {} has {} bar(s) after its expiry {}; dropped",
                contract.name,
                contract.bars.ts_ms.len() - keep,
                format_ms(contract.expiry_ms)
            ));
            let bars = &mut contract.bars;
            bars.ts_ms.truncate(keep);
            bars.close.truncate(keep);
            bars.high.truncate(keep);
            bars.low.truncate(keep);
            bars.volume.truncate(keep.min(bars.volume.len()));
        }
    }
    contracts.retain(|c| !c.bars.ts_ms.is_empty());
    if contracts.is_empty() {
        bail_input!("{label}: no contract has a bar before its expiry in {:?}", source.path);
    }
    contracts.sort_by_key(|c| c.expiry_ms);
    Ok(contracts)
}

fn load_generic(source: &DatedSource, label: &str, files: &mut Vec<PathBuf>, warnings: &mut Vec<String>) -> Result<Vec<Contract>> {
    let (time_name, shift_ms) = super::generic::bar_time(&source.close_time_column, &source.open_time_column, source.bar_seconds, label)?;
    let fixed_expiry = source.expiry.as_deref().map(|text| crate::time::parse_time_ms(&format!("{label}.expiry"), text)).transpose()?;
    if source.contract_column.is_none() && source.contract.is_none() {
        bail_input!("{label}: give `contract_column` (a column naming each row's contract) or `contract` (the one contract of the file)");
    }
    if source.expiry_column.is_none() && fixed_expiry.is_none() {
        bail_input!("{label}: give `expiry_column` (each row's contract expiry) or `expiry` (e.g. \"2024-03-29T08:00:00Z\")");
    }
    // (expiry, rows, settlement) per contract.
    let mut by_contract: BTreeMap<String, (i64, BarRows, Option<f64>)> = BTreeMap::new();
    for path in expand_glob(&source.path, "dated contracts")? {
        let table = read_table(&path)?;
        let time = table.local_times_ms(table.column(time_name)?, source.time_unit, source.utc_offset_hours)?;
        let close = table.f64s(table.column(source.close_column.as_deref().unwrap_or("close"))?)?;
        let high = match &source.high_column {
            Some(name) => table.f64s(table.column(name)?)?,
            None => close.clone(),
        };
        let low = match &source.low_column {
            Some(name) => table.f64s(table.column(name)?)?,
            None => close.clone(),
        };
        let names = match &source.contract_column {
            Some(name) => table.strings(table.column(name)?)?,
            None => vec![source.contract.clone().unwrap_or_default(); time.len()],
        };
        let expiries = match &source.expiry_column {
            Some(name) => table.local_times_ms(table.column(name)?, source.time_unit, source.utc_offset_hours)?,
            None => vec![fixed_expiry.unwrap_or_default(); time.len()],
        };
        let settlements = match &source.settlement_column {
            Some(name) => super::binance::optional_f64s(&table, table.column(name)?)?,
            None => vec![f64::NAN; time.len()],
        };
        // Each contract's rows from this file share one file entry.
        let mut file_ids: BTreeMap<String, u32> = BTreeMap::new();
        for i in 0..time.len() {
            if names[i].is_empty() {
                bail_input!("{}: empty contract name", table.locate(i));
            }
            let entry = by_contract.entry(names[i].clone()).or_insert_with(|| (expiries[i], BarRows::new(&names[i]), None));
            if entry.0 != expiries[i] {
                bail_input!(
                    "{}: contract {} has expiry {} here but {} on an earlier row; one contract has one expiry",
                    table.locate(i),
                    names[i],
                    format_ms(expiries[i]),
                    format_ms(entry.0)
                );
            }
            if settlements[i].is_finite() {
                if settlements[i] <= 0.0 {
                    bail_input!("{}: settlement price {} is not positive", table.locate(i), settlements[i]);
                }
                entry.2 = Some(settlements[i]);
            }
            let file = *file_ids.entry(names[i].clone()).or_insert_with(|| entry.1.sources.add(&table));
            entry.1.push(time[i] + shift_ms, [close[i], high[i], low[i], f64::NAN, f64::NAN], Origin { file, row: i as u32 })?;
        }
        files.push(path);
    }
    let mut out = Vec::new();
    for (name, (expiry_ms, rows, settlement)) in by_contract {
        let bars = rows.finish(warnings)?;
        out.push(Contract { name, expiry_ms, bars, settlement });
    }
    Ok(out)
}

/// Put the contracts on the run's clock (`ts_ms`, with the spot closes `spot` for settlements
/// the data lacks). A contract has a close at step `i` when one of its bars closed in
/// `(ts[i−1], ts[i]]` (for the first step: within one step before it) and it has not expired.
/// A contract without a settlement price in the data settles at the mean of the index closes
/// known in the 30 minutes up to expiry (Binance's rule since 2024-11-11, MARGIN.md §6) when
/// `index` is given and has one, else at the spot close known at expiry; a warning says which.
///
/// `marks` are the contracts' mark-price bars (`[data.dated_mark]`, matched by name): where a
/// contract has them, its mark (and the mark's range) is what the engine marks and liquidates
/// on (MARGIN.md §1.1); without them, its last price stands in.
pub fn on_clock(contracts: &[Contract], marks: &[Contract], ts_ms: &[i64], spot: &[f64], index: Option<&PriceBars>, warnings: &mut Vec<String>) -> DatedContracts {
    let n = ts_ms.len();
    let mut out = DatedContracts::default();
    let first_gap = if n > 1 { ts_ms[1] - ts_ms[0] } else { MS_PER_HOUR };
    let (mut stand_ins, mut from_index) = (Vec::new(), Vec::new());
    for contract in contracts {
        let (close, high, low) = bars_on_clock(&contract.bars, contract.expiry_ms, ts_ms, first_gap);
        let (mark, mark_high, mark_low) = match marks.iter().find(|m| m.name == contract.name) {
            Some(m) => bars_on_clock(&m.bars, contract.expiry_ms, ts_ms, first_gap),
            None => (Vec::new(), Vec::new(), Vec::new()),
        };
        let settlement = match contract.settlement {
            Some(price) => price,
            None => {
                let at = ts_ms.partition_point(|&t| t < contract.expiry_ms);
                let inside = at < n && contract.expiry_ms >= ts_ms[0];
                match index.map(|bars| index_mean_before(bars, contract.expiry_ms)).filter(|p| p.is_finite() && inside) {
                    Some(price) => {
                        from_index.push(contract.name.clone());
                        price
                    }
                    // The spot close known at expiry: the first step at or after it.
                    None if inside => {
                        stand_ins.push(contract.name.clone());
                        spot[at]
                    }
                    None => f64::NAN,
                }
            }
        };
        out.names.push(contract.name.clone());
        out.expiry_ms.push(contract.expiry_ms);
        out.settlement.push(settlement);
        out.close.push(close);
        out.high.push(high);
        out.low.push(low);
        out.mark.push(mark);
        out.mark_high.push(mark_high);
        out.mark_low.push(mark_low);
    }
    if !from_index.is_empty() {
        warnings.push(format!(
            "dated: the data has no settlement price for {}; the mean index close over the venue's window before delivery stands in ([data.index]; 60 minutes before 2024-11-11 08:00 UTC, 30 after)",
            from_index.join(", ")
        ));
    }
    if !stand_ins.is_empty() {
        warnings.push(format!(
            "dated: the data has no settlement price for {}; the spot close at expiry stands in (Binance settles at the mean index over the last 30 minutes before delivery)",
            stand_ins.join(", ")
        ));
    }
    out
}

/// A contract's bars on the run's clock: at step `i` the last close of the bars closing in
/// `(ts[i−1], ts[i]]` (for the first step: within `first_gap` before it) and their range; NaN
/// where none closed, and after the step that holds the expiry.
fn bars_on_clock(bars: &PriceBars, expiry_ms: i64, ts_ms: &[i64], first_gap: i64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let n = ts_ms.len();
    let mut close = vec![f64::NAN; n];
    let mut high = vec![f64::NAN; n];
    let mut low = vec![f64::NAN; n];
    let mut j = 0usize;
    for i in 0..n {
        let t = ts_ms[i];
        // The step whose interval holds the delivery still sees the contract's last bars.
        if i > 0 && ts_ms[i - 1] >= expiry_ms {
            break;
        }
        let from = if i == 0 { t - first_gap } else { ts_ms[i - 1] };
        while j < bars.ts_ms.len() && bars.ts_ms[j] <= from {
            j += 1;
        }
        // Bars closing inside (from, t]: the last one's close, the range of them all.
        let mut k = j;
        while k < bars.ts_ms.len() && bars.ts_ms[k] <= t {
            close[i] = bars.close[k];
            high[i] = if high[i].is_nan() { bars.high[k] } else { high[i].max(bars.high[k]) };
            low[i] = if low[i].is_nan() { bars.low[k] } else { low[i].min(bars.low[k]) };
            k += 1;
        }
        j = k;
    }
    (close, high, low)
}

/// When Binance's delivery price changed from the mean index of the last 60 minutes to that of
/// the last 30 (2024-11-11 08:00 UTC, MARGIN.md §6).
pub const SETTLEMENT_WINDOW_CHANGE_MS: i64 = 1_731_312_000_000;

/// The minutes of index the delivery price averages for a delivery at `expiry_ms`: 60 before
/// 2024-11-11 08:00 UTC, 30 from then on (MARGIN.md §6).
pub fn settlement_window_minutes(expiry_ms: i64) -> i64 {
    if expiry_ms < SETTLEMENT_WINDOW_CHANGE_MS {
        60
    } else {
        30
    }
}

/// The mean of the index closes known in (expiry − window, expiry], the window by the date of
/// delivery ([`settlement_window_minutes`]); the last close at or before expiry when the index
/// is coarser; NaN when none is known by then.
fn index_mean_before(index: &PriceBars, expiry_ms: i64) -> f64 {
    let end = index.ts_ms.partition_point(|&t| t <= expiry_ms);
    let start = index.ts_ms.partition_point(|&t| t <= expiry_ms - settlement_window_minutes(expiry_ms) * 60_000);
    match (start < end, end > 0) {
        (true, _) => index.close[start..end].iter().sum::<f64>() / (end - start) as f64,
        (false, true) => index.close[end - 1],
        (false, false) => f64::NAN,
    }
}

/// A rate series (decimal APR known from each time on), or a constant.
#[derive(Debug, Clone, Default)]
pub struct RateSeries {
    /// What the series is, for messages (`cash_rate`, `borrow_rate`).
    pub label: String,
    /// Time from which each APR is known, epoch ms UTC; empty for a constant.
    pub ts_ms: Vec<i64>,
    /// Decimal APR per row (one value for a constant).
    pub apr: Vec<f64>,
}

/// Load a rate source: `apr = 0.05`, or a file of (time, APR) rows.
pub fn load_rate(source: &RateSource, label: &str, files: &mut Vec<PathBuf>) -> Result<RateSeries> {
    let scale = if source.percent { 0.01 } else { 1.0 };
    let check = |apr: f64, at: &dyn Fn() -> String| -> Result<f64> {
        let apr = apr * scale;
        if !apr.is_finite() || !(-0.5..=2.0).contains(&apr) {
            bail_input!(
                "{}: {label} {apr} is not a plausible decimal APR (−0.5 to 2); give 0.05 for 5 %, or set `percent = true` when the column is in percent",
                at()
            );
        }
        Ok(apr)
    };
    match (source.apr, &source.path) {
        (Some(apr), None) => Ok(RateSeries { label: label.into(), ts_ms: Vec::new(), apr: vec![check(apr, &|| format!("data.{label}.apr"))?] }),
        (None, Some(pattern)) => {
            let mut pairs: Vec<(i64, f64)> = Vec::new();
            for path in expand_glob(pattern, label)? {
                let table = read_table(&path)?;
                let mut time = table.local_times_ms(table.column(&source.time_column)?, source.time_unit, source.utc_offset_hours)?;
                if let Some(name) = &source.time_zone {
                    super::zone::to_utc(&mut time, super::zone::parse(name, &format!("data.{label}.time_zone"))?, label)?;
                }
                // An empty cell (a holiday in FRED's series) adds no row: the rate before it holds.
                let apr = super::binance::optional_f64s(&table, table.column(&source.apr_column)?)?;
                for i in 0..time.len() {
                    if apr[i].is_nan() {
                        continue;
                    }
                    let value = check(apr[i], &|| format!("{}, column `{}`", table.locate(i), source.apr_column))?;
                    pairs.push((time[i], value));
                }
                files.push(path);
            }
            pairs.sort_by_key(|p| p.0);
            pairs.dedup_by_key(|p| p.0);
            if pairs.is_empty() {
                bail_input!("data.{label}: {pattern:?} has no rows");
            }
            Ok(RateSeries { label: label.into(), ts_ms: pairs.iter().map(|p| p.0).collect(), apr: pairs.iter().map(|p| p.1).collect() })
        }
        _ => Err(input_error!("data.{label}: give exactly one of `apr` (a constant decimal APR) or `path` (a file of time, APR rows)")),
    }
}

impl RateSeries {
    /// A warning when the series ends more than a week before `last_ms`: its last rate then
    /// stands for the rest of the run.
    pub fn end_warning(&self, last_ms: i64) -> Option<String> {
        let end = *self.ts_ms.last()?;
        (last_ms - end > 7 * crate::time::MS_PER_DAY).then(|| {
            format!("data.{}: the series ends at {}, before the run's last step {}; its last rate ({:.2} %) stands for the rest", self.label, format_ms(end), format_ms(last_ms), self.apr.last().copied().unwrap_or(0.0) * 100.0)
        })
    }

    /// The APR known at each of `ts_ms` (the last row at or before it). A series that starts
    /// after the first step is refused: a rate before the data is unknown, not zero.
    pub fn on_clock(&self, ts_ms: &[i64]) -> Result<Vec<f64>> {
        if self.ts_ms.is_empty() {
            return Ok(vec![self.apr.first().copied().unwrap_or(0.0); ts_ms.len()]);
        }
        if let Some(&first) = ts_ms.first() {
            if self.ts_ms[0] > first {
                bail_input!(
                    "data.{}: the series starts at {}, after the run's first step {}; give rows from before the window, or set strategy.start on or after {}",
                    self.label,
                    format_ms(self.ts_ms[0]),
                    format_ms(first),
                    format_ms(self.ts_ms[0])
                );
            }
        }
        let mut j = 0usize;
        Ok(ts_ms
            .iter()
            .map(|&t| {
                while j + 1 < self.ts_ms.len() && self.ts_ms[j + 1] <= t {
                    j += 1;
                }
                self.apr[j]
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binance_symbols_give_their_delivery_time() {
        // 2024-03-29 08:00 UTC (MARGIN.md §6: BTCUSD_220325 delivers at 1648195200000).
        assert_eq!(binance_expiry_ms("BTCUSD_220325"), Some(1_648_195_200_000));
        assert_eq!(binance_expiry_ms("BTCUSDT_240329"), Some(1_711_699_200_000));
        assert_eq!(binance_expiry_ms("BTCUSDT"), None);
        assert_eq!(binance_expiry_ms("BTCUSDT_24032"), None);
        assert_eq!(binance_contract_of(Path::new("/x/BTCUSDT_240329-1h-2024-01.csv")).as_deref(), Some("BTCUSDT_240329"));
        // The last Friday of each quarter's last month (MARGIN.md §6: 2024-03-29, 06-28, 09-27, 12-27, 2025-03-28).
        for (year, month, expected) in [(2024, 3, "2024-03-29"), (2024, 6, "2024-06-28"), (2024, 9, "2024-09-27"), (2024, 12, "2024-12-27"), (2025, 3, "2025-03-28"), (2025, 6, "2025-06-27")] {
            assert_eq!(format_ms(quarterly_expiry_ms(year, month)), format!("{expected} 08:00:00Z"));
        }
        let live: Vec<String> = quarterly_contracts("BTCUSDT", (2024, 1), (2024, 6)).into_iter().map(|c| c.0).collect();
        assert_eq!(live, ["BTCUSDT_240329", "BTCUSDT_240628", "BTCUSDT_240927", "BTCUSDT_241227"]);
    }

    /// The delivery price averages the index over the venue's window by the date of delivery:
    /// the last 60 minutes before 2024-11-11 08:00 UTC, the last 30 from then on (MARGIN.md §6).
    #[test]
    fn the_index_stand_in_averages_the_venues_window_by_date() {
        let minute = 60_000;
        for (expiry, expected) in [
            // 2024-09-27 08:00 UTC (before the change): (expiry − 60 min, expiry] holds 1, 2, 3, 4.
            (1_727_424_000_000_i64, 2.5),
            // 2024-12-27 08:00 UTC (after): (expiry − 30 min, expiry] holds 2, 3, 4.
            (1_735_286_400_000, 3.0),
            // At the change itself the new window applies.
            (SETTLEMENT_WINDOW_CHANGE_MS, 3.0),
        ] {
            let index = PriceBars { ts_ms: vec![expiry - 61 * minute, expiry - 40 * minute, expiry - 20 * minute, expiry - 10 * minute, expiry, expiry + minute], close: vec![100.0, 1.0, 2.0, 3.0, 4.0, 9.0], ..Default::default() };
            assert_eq!(index_mean_before(&index, expiry), expected, "delivery at {}", format_ms(expiry));
        }
        assert_eq!(settlement_window_minutes(SETTLEMENT_WINDOW_CHANGE_MS - 1), 60);
        assert_eq!(format_ms(SETTLEMENT_WINDOW_CHANGE_MS), "2024-11-11 08:00:00Z");
        // An hourly index: its last close at or before delivery.
        let expiry = 1_735_286_400_000;
        let hourly = PriceBars { ts_ms: vec![expiry - 60 * minute], close: vec![7.0], ..Default::default() };
        assert_eq!(index_mean_before(&hourly, expiry), 7.0);
        assert!(index_mean_before(&hourly, expiry - 61 * minute).is_nan());
    }

    #[test]
    fn a_rate_series_is_a_step_function_and_refuses_to_start_late() {
        let rates = RateSeries { label: "cash_rate".into(), ts_ms: vec![0, 100, 200], apr: vec![0.01, 0.02, 0.03] };
        assert_eq!(rates.on_clock(&[0, 50, 100, 150, 250]).unwrap(), vec![0.01, 0.01, 0.02, 0.02, 0.03]);
        let err = rates.on_clock(&[-1, 0]).unwrap_err().to_string();
        assert!(err.contains("starts at"), "{err}");
    }
}
