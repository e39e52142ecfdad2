//! The sweep file: which config fields vary and how (a list, a stepped range, evenly spaced
//! points, or a continuous range for random sampling), how configurations are drawn (every
//! combination, or seeded random samples), and how results are ranked.
//!
//! Configurations are numbered 0..total and each one is rebuilt from its number alone (mixed
//! radix for grids, a per-number seed for random draws), so shards, resumed sweeps and the
//! unsharded sweep agree on every configuration without storing the list.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::rng::Rng;
use crate::{bail_input, input_error};

/// How configurations are drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepMode {
    /// Every combination of the parameters' values.
    #[default]
    Grid,
    /// `samples` seeded random draws.
    Random,
}

/// Walk-forward settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalkForwardSpec {
    /// Length of each in-sample window, days.
    pub in_sample_days: f64,
    /// Length of the out-of-sample window that follows it, days.
    pub out_of_sample_days: f64,
    /// Days between window starts (default: out_of_sample_days, so out-of-sample windows tile).
    #[serde(default)]
    pub step_days: Option<f64>,
}

/// The sweep file as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// The config every configuration starts from, relative to the sweep file.
    pub base: String,
    /// Output folder name under `output_dir`.
    #[serde(default = "default_name")]
    pub name: String,
    /// Folder holding sweeps (relative to the current directory).
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
    /// How configurations are drawn: every combination (`grid`, default) or `random` samples.
    #[serde(default)]
    pub mode: SweepMode,
    /// Number of random draws (mode = "random").
    #[serde(default)]
    pub samples: Option<u64>,
    /// Seed of the random draws (mode = "random"); configuration n draws from (seed, n). Default 7.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Metric that ranks configurations (a column of results.parquet, e.g. "sharpe", "apr").
    #[serde(default = "default_metric")]
    pub metric: String,
    /// Whether a larger metric is better.
    #[serde(default = "default_true")]
    pub maximize: bool,
    /// Rows in the report's top table.
    #[serde(default = "default_top")]
    pub top: usize,
    /// Two parameters for the report's heatmap (default: the first two).
    #[serde(default)]
    pub heatmap: Option<Vec<String>>,
    /// Config field (dotted path, e.g. "portfolio.leverage") -> values.
    pub params: BTreeMap<String, toml::Value>,
    /// `[walk_forward]`: rolling in-sample / out-of-sample windows, if any.
    #[serde(default)]
    pub walk_forward: Option<WalkForwardSpec>,
}

fn default_name() -> String {
    "sweep".into()
}
fn default_output_dir() -> PathBuf {
    "reports".into()
}
fn default_seed() -> u64 {
    7
}
fn default_metric() -> String {
    "sharpe".into()
}
fn default_true() -> bool {
    true
}
fn default_top() -> usize {
    20
}

/// The values one parameter takes.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Exactly these (numbers, strings or booleans).
    List(Vec<toml::Value>),
    /// from, from + step, ... up to `to` (inclusive, within rounding).
    Stepped {
        /// First value.
        from: f64,
        /// Last value allowed (inclusive, within rounding); at least `from`.
        to: f64,
        /// Distance between values, > 0.
        step: f64,
    },
    /// `count` evenly spaced points from `from` to `to` inclusive.
    Spaced {
        /// First value.
        from: f64,
        /// Last value (inclusive); at least `from`.
        to: f64,
        /// Number of points, >= 1 (1: just `from`).
        count: u64,
    },
    /// Any value in [min, max] (random mode), uniformly or log-uniformly.
    Continuous {
        /// Lowest value (> 0 when `log`).
        min: f64,
        /// Highest value; at least `min`.
        max: f64,
        /// Draw uniformly in log space (log-uniform) instead of linearly.
        log: bool,
    },
}

/// One swept parameter.
#[derive(Debug, Clone)]
pub struct Param {
    /// Dotted config path, e.g. `portfolio.leverage`.
    pub path: String,
    /// The values the parameter takes.
    pub values: Values,
    /// Whether every value is a number (the results column is then numeric).
    pub numeric: bool,
}

/// Round away binary noise (0.1 + 0.2) so grid values print and compare as written.
fn tidy(x: f64) -> f64 {
    let rounded = (x * 1e12).round() / 1e12;
    if rounded == 0.0 { 0.0 } else { rounded }
}

impl Param {
    fn parse(path: &str, value: &toml::Value) -> Result<Param> {
        let number = |table: &toml::Table, key: &str| -> Result<f64> {
            match table.get(key) {
                Some(toml::Value::Float(x)) => Ok(*x),
                Some(toml::Value::Integer(x)) => Ok(*x as f64),
                Some(other) => bail_input!("params.\"{path}\".{key} must be a number, found {other}"),
                None => bail_input!("params.\"{path}\" needs `{key}`"),
            }
        };
        let values = match value {
            toml::Value::Array(items) if !items.is_empty() => {
                if items.iter().any(|v| matches!(v, toml::Value::Array(_) | toml::Value::Table(_) | toml::Value::Datetime(_))) {
                    bail_input!("params.\"{path}\": list items must be numbers, strings or booleans (write dates as strings)");
                }
                Values::List(items.clone())
            }
            toml::Value::Table(table) => {
                let keys: Vec<&str> = table.keys().map(String::as_str).collect();
                let has = |k: &str| keys.contains(&k);
                let allowed: &[&str] = if has("step") {
                    &["from", "to", "step"]
                } else if has("count") {
                    &["from", "to", "count"]
                } else {
                    &["min", "max", "log"]
                };
                const KNOWN: [&str; 7] = ["from", "to", "step", "count", "min", "max", "log"];
                if let Some(odd) = keys.iter().find(|k| !KNOWN.contains(k)).or_else(|| keys.iter().find(|k| !allowed.contains(k))) {
                    bail_input!("params.\"{path}\": unknown or misplaced key `{odd}`; write a list [..], {{ from, to, step }}, {{ from, to, count }} or {{ min, max }} (random mode)");
                }
                if has("step") {
                    let (from, to, step) = (number(table, "from")?, number(table, "to")?, number(table, "step")?);
                    if !(step > 0.0 && to >= from && ((to - from) / step) < 1e7) {
                        bail_input!("params.\"{path}\": need step > 0, to >= from and fewer than 10 million values");
                    }
                    Values::Stepped { from, to, step }
                } else if has("count") {
                    let (from, to) = (number(table, "from")?, number(table, "to")?);
                    let count = number(table, "count")?;
                    if !(count >= 1.0 && count.fract() == 0.0 && count < 1e7 && to >= from) {
                        bail_input!("params.\"{path}\": count must be a whole number >= 1 and to >= from");
                    }
                    Values::Spaced { from, to, count: count as u64 }
                } else {
                    let (min, max) = (number(table, "min")?, number(table, "max")?);
                    let log = match table.get("log") {
                        None => false,
                        Some(toml::Value::Boolean(b)) => *b,
                        Some(other) => bail_input!("params.\"{path}\".log must be true or false, found {other}"),
                    };
                    if !(max >= min && (!log || min > 0.0)) {
                        bail_input!("params.\"{path}\": need max >= min (and min > 0 with log = true)");
                    }
                    Values::Continuous { min, max, log }
                }
            }
            other => bail_input!("params.\"{path}\" = {other}: write a non-empty list [..], {{ from, to, step }}, {{ from, to, count }} or {{ min, max }}"),
        };
        let numeric = match &values {
            Values::List(items) => items.iter().all(|v| matches!(v, toml::Value::Float(_) | toml::Value::Integer(_))),
            _ => true,
        };
        Ok(Param { path: path.to_string(), values, numeric })
    }

    /// Number of grid values (None for a continuous range).
    pub fn grid_len(&self) -> Option<u64> {
        match &self.values {
            Values::List(items) => Some(items.len() as u64),
            Values::Stepped { from, to, step } => Some(((to - from) / step + 1e-9).floor() as u64 + 1),
            Values::Spaced { count, .. } => Some(*count),
            Values::Continuous { .. } => None,
        }
    }

    /// The `k`-th grid value.
    pub fn grid_value(&self, k: u64) -> toml::Value {
        match &self.values {
            Values::List(items) => items[k as usize].clone(),
            Values::Stepped { from, step, .. } => toml::Value::Float(tidy(from + k as f64 * step)),
            Values::Spaced { from, to, count } => {
                let x = if *count == 1 { *from } else { from + (to - from) * k as f64 / (*count - 1) as f64 };
                toml::Value::Float(tidy(x))
            }
            Values::Continuous { min, .. } => toml::Value::Float(*min),
        }
    }

    /// A random value.
    fn draw(&self, rng: &mut Rng) -> toml::Value {
        match (&self.values, self.grid_len()) {
            (Values::Continuous { min, max, log }, _) => {
                let u = rng.uniform();
                toml::Value::Float(if *log { (min.ln() + u * (max.ln() - min.ln())).exp() } else { min + u * (max - min) })
            }
            (_, Some(n)) => self.grid_value(rng.next_u64() % n),
            (_, None) => unreachable!("only continuous ranges have no grid"),
        }
    }
}

/// A parsed, checked sweep.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The sweep file as parsed.
    pub file: SweepFile,
    /// The sweep file's text (part of the plan a resumed sweep must match).
    pub text: String,
    /// The base config's TOML as written (no defaults filled in); each configuration edits a copy.
    pub base_raw: toml::Value,
    /// The base config's text as written (saved as `base_config.toml`).
    pub base_text: String,
    /// The base config's folder; relative paths in the base config are relative to it.
    pub base_dir: PathBuf,
    /// The base config, fully defaulted (for value types).
    pub base_full: toml::Value,
    /// The swept parameters, sorted by config path (the order of values and result columns).
    pub params: Vec<Param>,
    /// The base is a book (`[[pair]]`/`[universe]`): each configuration runs the book.
    pub book: bool,
    /// Number of configurations.
    pub total: u64,
}

impl Sweep {
    /// Read a sweep file and its base config, and check every parameter against the config.
    pub fn load(path: &Path) -> Result<Sweep> {
        let text = std::fs::read_to_string(path).map_err(|err| input_error!("cannot read sweep file {}: {err}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Sweep::from_str(&text, &path.display().to_string(), dir)
    }

    /// Parse a sweep from text; `dir` is where `base` is relative to.
    pub fn from_str(text: &str, origin: &str, dir: &Path) -> Result<Sweep> {
        let file: SweepFile = toml::from_str(text).map_err(|err| {
            input_error!("sweep file {origin}: {}\nSee data/examples/sweep.toml for every key.", err.to_string().trim_end())
        })?;
        crate::config::validate_run_name(&file.name).map_err(|e| input_error!("sweep file {origin}: `name`: {e:#}"))?;
        let base_path = dir.join(&file.base);
        let base_text = std::fs::read_to_string(&base_path)
            .map_err(|err| input_error!("sweep file {origin}: cannot read base config {}: {err}", base_path.display()))?;
        let base_raw: toml::Value = toml::from_str(&base_text).map_err(|err| input_error!("base config {}: {}", base_path.display(), err.to_string().trim_end()))?;
        let base_dir = base_path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let book = crate::config::book::is_book(&base_raw);
        // A book has no fully defaulted form: its file says where integers stand.
        let base_full = if book {
            crate::config::book::BookConfig::from_toml_value(&base_raw, &base_path.display().to_string(), &base_dir)?;
            base_raw.clone()
        } else {
            let base_config = Config::from_toml_value(&base_raw, &base_path.display().to_string(), &base_dir)?;
            toml::Value::try_from(&base_config).map_err(|e| input_error!("base config: {e}"))?
        };
        if file.params.is_empty() {
            bail_input!("sweep file {origin}: [params] is empty: name at least one config field to vary, e.g. \"portfolio.leverage\" = [1, 2, 3]");
        }
        let mut params = Vec::new();
        for (path, value) in &file.params {
            if path.starts_with("run.") || (path.starts_with("data.") && path != "data.mask_stale_spot") {
                bail_input!("sweep file {origin}: params.\"{path}\": [run] and [data] are fixed for a sweep (one market, loaded once); vary strategy, portfolio, costs, margin or venue fields");
            }
            let param = Param::parse(path, value).map_err(|e| input_error!("sweep file {origin}: {e:#}"))?;
            if file.mode == SweepMode::Grid && param.grid_len().is_none() {
                bail_input!("sweep file {origin}: params.\"{path}\": {{ min, max }} is for mode = \"random\"; a grid needs a list, {{ from, to, step }} or {{ from, to, count }}");
            }
            // The field must exist and accept the value: build the base with the first value.
            let mut probe = base_raw.clone();
            crate::config::set_path(&mut probe, &base_full, path, param.grid_value(0))?;
            let probed = if book {
                crate::config::book::BookConfig::from_toml_value(&probe, &format!("sweep {origin}, params.\"{path}\""), &base_dir).map(|_| ())
            } else {
                Config::from_toml_value(&probe, &format!("sweep {origin}, params.\"{path}\""), &base_dir).map(|_| ())
            };
            if let Err(err) = probed {
                let message = format!("{err:#}");
                if message.contains("unknown field") || message.contains("invalid type") || message.contains("unknown variant") {
                    return Err(err);
                }
            }
            params.push(param);
        }
        let total = match file.mode {
            SweepMode::Grid => params.iter().try_fold(1u64, |acc, p| acc.checked_mul(p.grid_len().unwrap_or(1))).filter(|&n| n <= 100_000_000),
            SweepMode::Random => match file.samples {
                Some(n) if n > 0 && n <= 100_000_000 => Some(n),
                _ => bail_input!("sweep file {origin}: mode = \"random\" needs samples = N (1 to 100 million)"),
            },
        }
        .ok_or_else(|| input_error!("sweep file {origin}: the grid has more than 100 million configurations; use fewer values or mode = \"random\""))?;
        if let Some(pair) = &file.heatmap {
            if pair.len() != 2 || pair.iter().any(|p| !file.params.contains_key(p)) || pair[0] == pair[1] {
                bail_input!("sweep file {origin}: heatmap must name two different params, e.g. heatmap = [\"portfolio.leverage\", \"portfolio.top_up_distance\"]");
            }
        }
        if !super::metric_names().iter().any(|m| *m == file.metric) {
            bail_input!("sweep file {origin}: metric = {:?} is not a result column; use one of: {}", file.metric, super::metric_names().join(", "));
        }
        if let Some(wf) = &file.walk_forward {
            if !(wf.in_sample_days > 0.0 && wf.out_of_sample_days > 0.0 && wf.step_days.is_none_or(|s| s > 0.0)) {
                bail_input!("sweep file {origin}: [walk_forward] needs in_sample_days > 0, out_of_sample_days > 0 and step_days > 0");
            }
            if file.params.contains_key("strategy.start") || file.params.contains_key("strategy.end") {
                bail_input!("sweep file {origin}: [walk_forward] sets strategy.start and strategy.end itself; do not sweep them too");
            }
        }
        Ok(Sweep { file, text: text.to_string(), base_raw, base_text, base_dir, base_full, params, book, total })
    }

    /// The values of configuration `id`, one per parameter.
    pub fn values(&self, id: u64) -> Vec<toml::Value> {
        match self.file.mode {
            SweepMode::Grid => {
                // Mixed radix, the last parameter fastest.
                let mut rest = id;
                let mut out = vec![toml::Value::Boolean(false); self.params.len()];
                for (k, p) in self.params.iter().enumerate().rev() {
                    let n = p.grid_len().unwrap_or(1);
                    out[k] = p.grid_value(rest % n);
                    rest /= n;
                }
                out
            }
            SweepMode::Random => {
                let mut rng = Rng::new(self.file.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ id.wrapping_add(1).wrapping_mul(0xD1B5_4A32_D192_ED03));
                self.params.iter().map(|p| p.draw(&mut rng)).collect()
            }
        }
    }

    /// The book of configuration `id` (a book sweep), with `overrides` applied last.
    pub fn book_config(&self, values: &[toml::Value], overrides: &[(&str, toml::Value)]) -> Result<crate::config::book::BookConfig> {
        let mut raw = self.base_raw.clone();
        for (param, value) in self.params.iter().zip(values) {
            crate::config::set_path(&mut raw, &self.base_full, &param.path, value.clone())?;
        }
        for (path, value) in overrides {
            crate::config::set_path(&mut raw, &self.base_full, path, value.clone())?;
        }
        crate::config::book::BookConfig::from_toml_value(&raw, "sweep configuration", &self.base_dir)
    }

    /// The config of configuration `id` (with `overrides` applied last, e.g. a walk-forward window).
    pub fn config(&self, values: &[toml::Value], overrides: &[(&str, toml::Value)]) -> Result<Config> {
        let mut raw = self.base_raw.clone();
        for (param, value) in self.params.iter().zip(values) {
            crate::config::set_path(&mut raw, &self.base_full, &param.path, value.clone())?;
        }
        for (path, value) in overrides {
            crate::config::set_path(&mut raw, &self.base_full, path, value.clone())?;
        }
        Config::from_toml_value(&raw, "sweep configuration", &self.base_dir)
    }
}

/// A parameter value as a number (numeric columns) or as text.
pub fn value_number(value: &toml::Value) -> f64 {
    match value {
        toml::Value::Float(x) => *x,
        toml::Value::Integer(x) => *x as f64,
        _ => f64::NAN,
    }
}

/// A parameter value as text (strings unquoted).
pub fn value_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
