//! Walk-forward: choose the configuration with the best metric on an in-sample window, run it
//! on the out-of-sample window that follows, move on by `step_days`, and compare the two.
//!
//! Windows start at the base config's first step: in-sample [s, s + IS], out-of-sample
//! [s + IS, s + IS + OOS], both ends inclusive as `strategy.start`/`end` are; only windows whose
//! out-of-sample end falls inside the data are used. Each window is its own backtest (entered at
//! its first step), so out-of-sample results carry no position or PnL from the in-sample run.

use anyhow::Result;
use polars::prelude::*;
use rayon::prelude::*;

use super::spec::{value_number, value_text, Sweep, WalkForwardSpec};
use super::{metric_values, Markets, METRIC_COUNT, METRIC_NAMES};
use crate::bail_input;
use crate::config::Config;
use crate::time::{format_ms, MS_PER_DAY};

/// One walk-forward step.
#[derive(Debug, Clone)]
pub struct Window {
    /// In-sample window (start, end), epoch ms UTC, both inclusive.
    pub in_sample: (i64, i64),
    /// Out-of-sample window (start, end) that follows, epoch ms UTC, both inclusive.
    pub out_of_sample: (i64, i64),
    /// The configuration chosen in sample.
    pub best_id: u64,
    /// The chosen configuration's parameter values, in [`Sweep::params`] order.
    pub best_values: Vec<toml::Value>,
    /// Metrics of the chosen configuration in sample ([`METRIC_NAMES`] order).
    pub in_sample_metrics: [f64; METRIC_COUNT],
    /// Metrics of the chosen configuration out of sample ([`METRIC_NAMES`] order).
    pub out_of_sample_metrics: [f64; METRIC_COUNT],
    /// Configurations that ran in sample (the rest were invalid).
    pub evaluated: u64,
}

/// Every window, and the metric they were chosen on.
#[derive(Debug, Clone)]
pub struct WalkForward {
    /// Name of the metric the configurations were chosen on (the sweep's `metric`).
    pub metric: String,
    /// Every window that fits in the data, in time order.
    pub windows: Vec<Window>,
}

fn as_time(ms: i64) -> toml::Value {
    toml::Value::String(format_ms(ms).replace(' ', "T"))
}

/// Run the walk-forward over every configuration of the sweep.
pub fn run(sweep: &Sweep, spec: &WalkForwardSpec, markets: &Markets) -> Result<WalkForward> {
    let (first, last) = if sweep.book {
        // The book's own clock: run it once whole.
        let book = sweep.book_config(&sweep.values(0), &[])?;
        let result = crate::app::portfolio::run_with(&book, &|config| markets.pair(config))?;
        let ts = &result.timelines[0].ts_ms;
        (ts[0], ts[ts.len() - 1])
    } else {
        let base = Config::from_toml_value(&sweep.base_raw, "sweep base config", &sweep.base_dir)?;
        let timeline = markets.timeline(&base)?;
        (timeline.ts_ms[0], timeline.ts_ms[timeline.len() - 1])
    };
    let days = |d: f64| (d * MS_PER_DAY as f64).round() as i64;
    let (is_len, oos_len) = (days(spec.in_sample_days), days(spec.out_of_sample_days));
    let step = days(spec.step_days.unwrap_or(spec.out_of_sample_days));
    let metric_index = METRIC_NAMES.iter().position(|m| *m == sweep.file.metric).unwrap_or(0);
    let better = |a: f64, b: f64| if sweep.file.maximize { a > b } else { a < b };
    let mut windows = Vec::new();
    let mut start = first;
    while start + is_len + oos_len <= last {
        let in_sample = (start, start + is_len);
        let out_of_sample = (start + is_len, start + is_len + oos_len);
        let window_of = |(from, to): (i64, i64)| [("strategy.start", as_time(from)), ("strategy.end", as_time(to))];
        let scored: Vec<(u64, f64, [f64; METRIC_COUNT])> = (0..sweep.total)
            .into_par_iter()
            .filter_map(|id| {
                let metrics = metric_values(&super::run_values(sweep, markets, &sweep.values(id), &window_of(in_sample)).ok()?);
                metrics[metric_index].is_finite().then_some((id, metrics[metric_index], metrics))
            })
            .collect();
        // Best by the metric; the lowest id wins a tie, so the choice is deterministic.
        let replaces = |row: &(u64, f64, [f64; METRIC_COUNT]), held: &(u64, f64, [f64; METRIC_COUNT])| better(row.1, held.1) || (row.1 == held.1 && row.0 < held.0);
        let best = scored.iter().fold(None::<&(u64, f64, [f64; METRIC_COUNT])>, |best, row| match best {
            Some(held) if !replaces(row, held) => Some(held),
            _ => Some(row),
        });
        if let Some(&(best_id, _, in_sample_metrics)) = best {
            let best_values = sweep.values(best_id);
            let out_of_sample_metrics = metric_values(&super::run_values(sweep, markets, &best_values, &window_of(out_of_sample))?);
            windows.push(Window { in_sample, out_of_sample, best_id, best_values, in_sample_metrics, out_of_sample_metrics, evaluated: scored.len() as u64 });
        }
        start += step;
    }
    if windows.is_empty() {
        bail_input!(
            "[walk_forward]: no window fits: the data spans {} to {} ({:.0} days), and one step needs in_sample_days + out_of_sample_days = {:.0} days",
            format_ms(first),
            format_ms(last),
            (last - first) as f64 / MS_PER_DAY as f64,
            spec.in_sample_days + spec.out_of_sample_days
        );
    }
    Ok(WalkForward { metric: sweep.file.metric.clone(), windows })
}

impl WalkForward {
    fn metric_index(&self) -> usize {
        METRIC_NAMES.iter().position(|m| *m == self.metric).unwrap_or(0)
    }

    /// Mean of the chosen metric in sample and out of sample.
    pub fn means(&self) -> (f64, f64) {
        let k = self.metric_index();
        let n = self.windows.len().max(1) as f64;
        (
            self.windows.iter().map(|w| w.in_sample_metrics[k]).sum::<f64>() / n,
            self.windows.iter().map(|w| w.out_of_sample_metrics[k]).sum::<f64>() / n,
        )
    }

    /// Out-of-sample returns compounded across windows (meaningful when they tile).
    pub fn stitched_out_of_sample_return(&self) -> f64 {
        let k = METRIC_NAMES.iter().position(|m| *m == "total_return").unwrap_or(0);
        self.windows.iter().fold(1.0, |acc, w| acc * (1.0 + w.out_of_sample_metrics[k])) - 1.0
    }

    /// One row per window: dates, chosen configuration and parameters, every metric in and out of sample.
    pub fn frame(&self, sweep: &Sweep) -> Result<DataFrame> {
        let w = &self.windows;
        let time = |name: &str, f: &dyn Fn(&Window) -> i64| {
            Column::new(name.into(), w.iter().map(f).collect::<Vec<i64>>()).cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)))
        };
        let mut columns = vec![
            Column::new("window".into(), (0..w.len() as u32).collect::<Vec<u32>>()),
            time("in_sample_start", &|x| x.in_sample.0)?,
            time("in_sample_end", &|x| x.in_sample.1)?,
            time("out_of_sample_start", &|x| x.out_of_sample.0)?,
            time("out_of_sample_end", &|x| x.out_of_sample.1)?,
            Column::new("best_config_id".into(), w.iter().map(|x| x.best_id).collect::<Vec<u64>>()),
            Column::new("configurations_evaluated".into(), w.iter().map(|x| x.evaluated).collect::<Vec<u64>>()),
        ];
        for (k, param) in sweep.params.iter().enumerate() {
            if param.numeric {
                columns.push(Column::new(param.path.as_str().into(), w.iter().map(|x| value_number(&x.best_values[k])).collect::<Vec<f64>>()));
            } else {
                columns.push(Column::new(param.path.as_str().into(), w.iter().map(|x| value_text(&x.best_values[k])).collect::<Vec<String>>()));
            }
        }
        for (m, name) in METRIC_NAMES.iter().enumerate() {
            columns.push(Column::new(format!("in_sample_{name}").into(), w.iter().map(|x| x.in_sample_metrics[m]).collect::<Vec<f64>>()));
            columns.push(Column::new(format!("out_of_sample_{name}").into(), w.iter().map(|x| x.out_of_sample_metrics[m]).collect::<Vec<f64>>()));
        }
        Ok(DataFrame::new(w.len(), columns)?)
    }
}
