//! User series of values over time (`[[signal]]`, `[strategy.target]`): loaded with the price
//! loaders' readers and time handling, and put on the step clock point in time.

use std::path::PathBuf;

use anyhow::Result;

use super::read::{expand_glob, read_table};
use crate::data::source::SeriesSource;
use crate::time::format_ms;
use crate::{bail_input, input_error};

/// A loaded series: each value is known from its time on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValueSeries {
    /// What the series is, for messages (`signal my_alpha`, `strategy.target`).
    pub label: String,
    /// Times, epoch ms UTC, ascending and distinct.
    pub ts_ms: Vec<i64>,
    /// The value at each time.
    pub value: Vec<f64>,
}

/// Load `source`, checking each value with `check` (which says what is wrong, or None), and
/// add the files read to `files`. Empty cells add no row; a time given twice with two values is
/// refused.
pub fn load(source: &SeriesSource, label: &str, check: &dyn Fn(f64) -> Option<String>, files: &mut Vec<PathBuf>) -> Result<ValueSeries> {
    let mut rows: Vec<(i64, f64, String)> = Vec::new();
    for path in expand_glob(&source.path, label)? {
        let table = read_table(&path)?;
        let mut time = table.local_times_ms(table.column(&source.time_column)?, source.time_unit, source.utc_offset_hours)?;
        if let Some(name) = &source.time_zone {
            super::zone::to_utc(&mut time, super::zone::parse(name, &format!("{label}.time_zone"))?, label)?;
        }
        let values = super::binance::optional_f64s(&table, table.column(&source.value_column)?)?;
        for i in 0..time.len() {
            let value = values[i];
            if value.is_nan() {
                continue;
            }
            if let Some(problem) = check(value).or_else(|| (!value.is_finite()).then(|| "is not a finite number".to_string())) {
                bail_input!("{}, column `{}`: {label} value {value} {problem}", table.locate(i), source.value_column);
            }
            rows.push((time[i], value, table.locate(i)));
        }
        files.push(path);
    }
    rows.sort_by_key(|r| r.0);
    for w in rows.windows(2) {
        if w[0].0 == w[1].0 && w[0].1 != w[1].1 {
            bail_input!("{label}: {} and {} both give a value for {} ({} and {}); keep one row per time", w[0].2, w[1].2, format_ms(w[0].0), w[0].1, w[1].1);
        }
    }
    rows.dedup_by_key(|r| r.0);
    if rows.is_empty() {
        return Err(input_error!("{label}: {:?} has no rows with a value in column `{}`", source.path, source.value_column));
    }
    Ok(ValueSeries { label: label.into(), ts_ms: rows.iter().map(|r| r.0).collect(), value: rows.iter().map(|r| r.1).collect() })
}

impl ValueSeries {
    /// The value known at each of `ts_ms` (the last row at or before it). A series that starts
    /// after the first step is refused (a value before the data is unknown, not zero). After its
    /// last row the value stands for one more of its usual gaps, then is unknown (NaN), with a
    /// warning.
    pub fn on_clock(&self, ts_ms: &[i64]) -> Result<(Vec<f64>, Option<String>)> {
        let (Some(&first_step), Some(&last_step)) = (ts_ms.first(), ts_ms.last()) else { return Ok((Vec::new(), None)) };
        if self.ts_ms[0] > first_step {
            bail_input!(
                "{}: the series starts at {}, after the run's first step {}; give rows from before the window, or set strategy.start on or after {}",
                self.label,
                format_ms(self.ts_ms[0]),
                format_ms(first_step),
                format_ms(self.ts_ms[0])
            );
        }
        let mut gaps: Vec<i64> = self.ts_ms.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.sort_unstable();
        let usual_gap = gaps.get(gaps.len() / 2).copied().unwrap_or(0);
        let last = self.ts_ms[self.ts_ms.len() - 1];
        let stale_from = last + usual_gap;
        let mut j = 0usize;
        let mut unknown = 0usize;
        let values = ts_ms
            .iter()
            .map(|&t| {
                while j < self.ts_ms.len() && self.ts_ms[j] <= t {
                    j += 1;
                }
                if t > stale_from {
                    unknown += 1;
                    f64::NAN
                } else {
                    self.value[j - 1]
                }
            })
            .collect();
        let warning = (unknown > 0).then(|| {
            format!(
                "{}: the series ends at {}, before the run's last step {}; its value is unknown (no decision uses it) for the last {unknown} steps",
                self.label,
                format_ms(last),
                format_ms(last_step)
            )
        });
        Ok((values, warning))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_in_time_and_coverage() {
        let s = ValueSeries { label: "signal x".into(), ts_ms: vec![0, 10, 20], value: vec![1.0, 2.0, 3.0] };
        let (v, w) = s.on_clock(&[5, 10, 15, 20, 30, 31]).unwrap();
        // A value stamped at 10 is used from 10 on; after 20 it stands one gap (to 30).
        assert_eq!(&v[..5], &[1.0, 2.0, 2.0, 3.0, 3.0]);
        assert!(v[5].is_nan());
        assert!(w.unwrap().contains("last 1 steps"));
        assert!(s.on_clock(&[-1, 5]).unwrap_err().to_string().contains("starts at"));
    }
}

/// Mean open interest of `venue`/`coin` in a table (`timestamp, venue, coin, oi_usd`; venue and
/// coin matched case-insensitively), quote currency.
pub fn mean_open_interest(path: &std::path::Path, venue: &str, coin: &str) -> Result<f64> {
    let table = read_table(path)?;
    let venues = table.strings(table.column("venue")?)?;
    let coins = table.strings(table.column("coin")?)?;
    let oi = table.f64s(table.column("oi_usd")?)?;
    let values: Vec<f64> = (0..oi.len()).filter(|&i| venues[i].eq_ignore_ascii_case(venue) && coins[i].eq_ignore_ascii_case(coin)).map(|i| oi[i]).collect();
    if values.is_empty() {
        bail_input!("{}: no open interest for venue {venue:?} and coin {coin:?}", path.display());
    }
    Ok(values.iter().sum::<f64>() / values.len() as f64)
}
