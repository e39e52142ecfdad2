//! Named signals on the step clock, and the rule expressions over them.
//!
//! A signal is a column with one value per step, built before the loop from what is known at
//! that step (a bar's close at its close time, a settlement from its settlement time, a user's
//! value from its stamp on). Unknown is NaN, and a rule never reads NaN as a number: a
//! comparison with it is unknown, and an unknown decision does nothing.
//!
//! | name | what |
//! |---|---|
//! | `funding_trailing_apr` | settled funding over the strategy's lookback, time-weighted, APR |
//! | `funding_trailing_apr(72h)` | the same over the last 72 hours |
//! | `funding_rate` | the last settled rate, decimal per interval |
//! | `funding_last_apr` | the last settled rate, annualised |
//! | `funding_predicted_apr` | the rate the venue is computing for the interval in progress, APR |
//! | `basis_bp` | perp last over spot close − 1, bp |
//! | `mark_basis_bp` | mark over spot close − 1, bp |
//! | `dated_basis_apr` | with `[data.dated]`: the front contract's basis, (F / S − 1) × 365 / days to expiry |
//! | `funding_spread_apr` | in a book: this pair's trailing funding APR less the mean of the same coin's other pairs' (other venues), each time-weighted over its own intervals; `funding_spread_apr(72h)` for another window |
//! | `held` | in `exit`: +1 in a long carry, −1 in a reverse carry |
//! | `[[signal]]` names | the user's series |
//! | `target` | `mode = "target"`: the target series |
//!
//! Functions: `mean`, `std`, `zscore`, `ema`, `lag` and `change` of a signal over a window
//! (`ema(x, 72h)`, see [`transform`]); `sign`, `abs`, `clip(x, lo, hi)`, `min(a, b)`, `max(a, b)`.

pub mod expr;
pub mod funding;
pub mod rules;
pub mod transform;

use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;

use anyhow::Result;

use crate::config::Config;
use crate::model::MarketTimeline;
use crate::{bail_input, input_error};
use expr::{Expr, Op};
use transform::Statistic;

/// The built-in signal names.
pub const BUILTIN: [&str; 8] = ["funding_trailing_apr", "funding_rate", "funding_last_apr", "funding_predicted_apr", "basis_bp", "mark_basis_bp", "dated_basis_apr", "funding_spread_apr"];

/// The functions a rule may call.
pub const FUNCTIONS: [&str; 13] = ["mean", "std", "zscore", "ema", "lag", "change", "sign", "abs", "clip", "min", "max", "funding_trailing_apr", "funding_spread_apr"];

/// A value while evaluating: a number, a window length, or a column (shared with the caches
/// until an operation that owns it alone can reuse its memory).
#[derive(Debug, Clone)]
enum Value {
    Scalar(f64),
    Duration(i64),
    Column(Rc<Vec<f64>>),
}

/// The signals of one run: its clock, its market and the user's series, computed on demand and
/// kept once computed.
pub struct Signals<'a> {
    config: &'a Config,
    timeline: &'a MarketTimeline,
    columns: HashMap<String, Rc<Vec<f64>>>,
    /// Function results already computed in this run (keyed by the call as written; a call
    /// that names `held` is not kept, its value depends on the carry).
    memo: HashMap<String, Rc<Vec<f64>>>,
    /// Names with a column, besides the built-ins (user signals, `target`).
    user_names: Vec<String>,
    /// In a book: the same coin's other pairs (other venues), by name, on the book's clock.
    peers: Vec<(String, &'a MarketTimeline)>,
    /// What computing the signals found worth saying (a proxy premium, a series ending early).
    pub warnings: Vec<String>,
    /// The user files read.
    pub files: Vec<PathBuf>,
}

/// True for a known, non-zero value.
#[inline]
fn truthy(v: f64) -> bool {
    v.is_finite() && v != 0.0
}

impl<'a> Signals<'a> {
    /// The signals of `config` over `timeline`, with the user's `[[signal]]` series loaded and
    /// put on the clock (and the `[strategy.target]` series as `target` in target mode).
    pub fn new(config: &'a Config, timeline: &'a MarketTimeline) -> Result<Self> {
        let mut signals = Signals { config, timeline, columns: HashMap::new(), memo: HashMap::new(), user_names: Vec::new(), peers: Vec::new(), warnings: Vec::new(), files: Vec::new() };
        let target = config.strategy.target.iter().map(|s| (s, "target".to_string(), "strategy.target".to_string()));
        let user = config.signals.iter().map(|s| (s, s.name.clone(), format!("signal {}", s.name)));
        for (source, name, label) in user.chain(target) {
            let check = |v: f64| -> Option<String> { (name == "target" && !(-1.0..=1.0).contains(&v)).then(|| "is outside [−1, 1]: a target is a share of the allocated capital, negative for the reverse carry".to_string()) };
            let series = crate::data::series::load(source, &label, &check, &mut signals.files)?;
            let (column, warning) = series.on_clock(&timeline.ts_ms)?;
            signals.warnings.extend(warning);
            signals.columns.insert(name.clone(), Rc::new(column));
            signals.user_names.push(name);
        }
        Ok(signals)
    }

    /// The same coin's other pairs of a book (on the same clock), for `funding_spread_apr`.
    pub fn with_peers(mut self, peers: Vec<(String, &'a MarketTimeline)>) -> Self {
        self.peers = peers;
        self
    }

    /// This pair's trailing funding APR less the mean of its peers', each over `lookback_hours`
    /// (None: the strategy's lookback).
    fn funding_spread(&self, lookback_hours: Option<f64>) -> Result<Vec<f64>> {
        if self.peers.is_empty() {
            bail_input!("signal funding_spread_apr compares venues: it needs another pair of the same coin in the book (a [[pair]] with the same base on another account)");
        }
        let ts = &self.timeline.ts_ms;
        let trailing = |history: &[crate::model::Settlement]| match lookback_hours {
            Some(hours) => crate::sim::policy::trailing_funding_apr_hours(history, ts, hours),
            None => crate::config::engine_params(self.config).entry.signal(history, ts),
        };
        let own = trailing(&self.timeline.funding);
        let others: Vec<Vec<f64>> = self.peers.iter().map(|(_, t)| trailing(&t.funding)).collect();
        Ok((0..ts.len()).map(|i| own[i] - others.iter().map(|o| o[i]).sum::<f64>() / others.len() as f64).collect())
    }

    /// Every name a rule may use in this config.
    pub fn available(&self) -> Vec<String> {
        BUILTIN.iter().map(|s| s.to_string()).chain(self.user_names.iter().cloned()).collect()
    }

    /// The column of a named signal.
    pub fn column(&mut self, name: &str) -> Result<Vec<f64>> {
        Ok(self.shared_column(name)?.as_ref().clone())
    }

    fn shared_column(&mut self, name: &str) -> Result<Rc<Vec<f64>>> {
        if let Some(column) = self.columns.get(name) {
            return Ok(column.clone());
        }
        let timeline = self.timeline;
        let column = match name {
            "funding_trailing_apr" => crate::config::engine_params(self.config).entry.signal(&timeline.funding, &timeline.ts_ms),
            "funding_rate" => funding::last_settled(&timeline.funding, &timeline.ts_ms).0,
            "funding_last_apr" => funding::last_settled(&timeline.funding, &timeline.ts_ms).1,
            "basis_bp" => timeline.perp.iter().zip(&timeline.spot).map(|(p, s)| (p / s - 1.0) * 1e4).collect(),
            "mark_basis_bp" => timeline.mark_prices().iter().zip(&timeline.spot).map(|(m, s)| (m / s - 1.0) * 1e4).collect(),
            "funding_predicted_apr" => self.predicted()?,
            "dated_basis_apr" => self.dated_basis()?,
            "funding_spread_apr" => self.funding_spread(None)?,
            _ => {
                return Err(input_error!("unknown signal `{name}`; this config has: {}", self.available().join(", ")));
            }
        };
        let column = Rc::new(column);
        self.columns.insert(name.to_string(), column.clone());
        Ok(column)
    }

    /// The front dated contract's annualised basis at each step: the nearest contract with at
    /// least `strategy.min_days_to_expiry` days left (rolled `roll_days_before` expiry), its
    /// close against the spot close; NaN where none is live.
    fn dated_basis(&mut self) -> Result<Vec<f64>> {
        let config = self.config;
        let Some(source) = &config.data.dated else {
            bail_input!("signal dated_basis_apr needs [data.dated]: the dated contracts' files (README, Dated futures)");
        };
        let timeline = self.timeline;
        let contracts = crate::data::dated::load_contracts(source, "data.dated", &mut self.files, &mut self.warnings)?;
        let marks = match &config.data.dated_mark {
            Some(marks) => crate::data::dated::load_contracts(marks, "data.dated_mark", &mut self.files, &mut self.warnings)?,
            None => Vec::new(),
        };
        let on_clock = crate::data::dated::on_clock(&contracts, &marks, &timeline.ts_ms, &timeline.spot, None, &mut self.warnings);
        let rules = crate::sim::dated::RollRules { min_days_to_expiry: config.strategy.min_days_to_expiry, roll_days_before: config.strategy.roll_days_before };
        let front = crate::sim::dated::front_schedule(&on_clock, &timeline.ts_ms, rules);
        Ok(front
            .iter()
            .enumerate()
            .map(|(i, held)| match held {
                Some(c) => crate::model::dated::annualised_basis(on_clock.close[*c][i], timeline.spot[i], on_clock.days_to_expiry(*c, timeline.ts_ms[i])),
                None => f64::NAN,
            })
            .collect())
    }

    fn predicted(&mut self) -> Result<Vec<f64>> {
        let config = self.config;
        let Some(preset) = config.venue.effective_preset() else {
            bail_input!("signal funding_predicted_apr needs the venue's funding rules: set [venue] preset (e.g. \"binance_usdm\")");
        };
        let timeline = self.timeline;
        let v = &config.venue;
        let (premium, line) = crate::venue::funding::premium_for(v.premium_index.as_deref(), v.premium, timeline, v.premium_debias, v.premium_debias_days)?;
        let origin = if v.premium_index.is_some() { "the venue's premium index" } else { "a PROXY from the bars (not the venue's impact-price premium)" };
        self.warnings.push(format!("signal funding_predicted_apr: {} rules on {origin}: {line}", preset.name));
        let symbol = timeline.symbol.clone();
        let limits = |settle: i64, hours: f64| v.limits_at(&symbol, settle, hours);
        Ok(funding::predicted_apr(&preset, &limits, &premium, &timeline.ts_ms))
    }

    /// Evaluate `expr` (from the setting `what`, for messages) into a column; `held` is the
    /// value of the name `held` (NaN where the setting has no position to speak of).
    pub fn eval(&mut self, expr: &Expr, what: &str, held: f64) -> Result<Vec<f64>> {
        let n = self.timeline.len();
        match self.value(expr, what, held)? {
            Value::Scalar(x) => Ok(vec![x; n]),
            Value::Column(c) => Ok(Rc::try_unwrap(c).unwrap_or_else(|shared| shared.as_ref().clone())),
            Value::Duration(_) => Err(input_error!("{what}: a duration alone is not a rule; durations are window arguments, e.g. ema(basis_bp, 72h)")),
        }
    }

    fn value(&mut self, expr: &Expr, what: &str, held: f64) -> Result<Value> {
        Ok(match expr {
            Expr::Number(x) => Value::Scalar(*x),
            Expr::Duration(ms) => Value::Duration(*ms),
            Expr::Name(name) if name == "held" => {
                if held.is_nan() {
                    bail_input!("{what}: `held` is the carry held (+1 long, −1 reverse), known only in strategy.exit");
                }
                Value::Scalar(held)
            }
            Expr::Name(name) => Value::Column(self.shared_column(name).map_err(|e| input_error!("{what}: {e}"))?),
            Expr::Neg(x) => map(self.value(x, what, held)?, what, |v| -v)?,
            Expr::Not(x) => map(self.value(x, what, held)?, what, |v| if v.is_nan() { f64::NAN } else if truthy(v) { 0.0 } else { 1.0 })?,
            Expr::Binary(op, a, b) => {
                let (a, b) = (self.value(a, what, held)?, self.value(b, what, held)?);
                // One instance of `zip` per operator: the element loop inlines its arithmetic.
                match op {
                    Op::Add => zip(a, b, what, |x, y| x + y)?,
                    Op::Sub => zip(a, b, what, |x, y| x - y)?,
                    Op::Mul => zip(a, b, what, |x, y| x * y)?,
                    Op::Div => zip(a, b, what, |x, y| x / y)?,
                    Op::Lt => zip(a, b, what, |x, y| compare(x, y, x < y))?,
                    Op::Le => zip(a, b, what, |x, y| compare(x, y, x <= y))?,
                    Op::Gt => zip(a, b, what, |x, y| compare(x, y, x > y))?,
                    Op::Ge => zip(a, b, what, |x, y| compare(x, y, x >= y))?,
                    Op::Eq => zip(a, b, what, |x, y| compare(x, y, x == y))?,
                    Op::Ne => zip(a, b, what, |x, y| compare(x, y, x != y))?,
                    // Kleene's three values: a known false decides an `and`, a known true an `or`.
                    Op::And => zip(a, b, what, |x, y| if (x == 0.0) || (y == 0.0) { 0.0 } else if x.is_nan() || y.is_nan() { f64::NAN } else { 1.0 })?,
                    Op::Or => zip(a, b, what, |x, y| if truthy(x) || truthy(y) { 1.0 } else if x.is_nan() || y.is_nan() { f64::NAN } else { 0.0 })?,
                }
            }
            Expr::Call(name, args) => {
                let key = (!expr.mentions("held")).then(|| format!("{expr:?}"));
                if let Some(done) = key.as_ref().and_then(|k| self.memo.get(k)) {
                    return Ok(Value::Column(done.clone()));
                }
                let value = self.call(name, args, what, held)?;
                if let (Some(key), Value::Column(column)) = (key, &value) {
                    self.memo.insert(key, column.clone());
                }
                value
            }
        })
    }

    fn call(&mut self, name: &str, args: &[Expr], what: &str, held: f64) -> Result<Value> {
        let ts = &self.timeline.ts_ms;
        let arity = |n: usize, usage: &str| -> Result<()> {
            if args.len() != n {
                bail_input!("{what}: {name}() takes {n} argument(s): {usage}");
            }
            Ok(())
        };
        let window = |this: &mut Self, usage: &str| -> Result<(Rc<Vec<f64>>, i64)> {
            arity(2, usage)?;
            let x = match this.value(&args[0], what, held)? {
                Value::Column(c) => c,
                Value::Scalar(s) => Rc::new(vec![s; ts.len()]),
                Value::Duration(_) => bail_input!("{what}: the first argument of {name}() is a signal: {usage}"),
            };
            match this.value(&args[1], what, held)? {
                Value::Duration(ms) if ms > 0 => Ok((x, ms)),
                _ => bail_input!("{what}: the second argument of {name}() is a window with a unit: {usage}"),
            }
        };
        Ok(match name {
            "mean" | "std" | "zscore" => {
                let (x, ms) = window(self, &format!("{name}(signal, 72h)"))?;
                let statistic = match name {
                    "mean" => Statistic::Mean,
                    "std" => Statistic::Std,
                    _ => Statistic::ZScore,
                };
                Value::Column(Rc::new(transform::rolling(ts, &x, ms, statistic)))
            }
            "ema" => {
                let (x, ms) = window(self, "ema(signal, 72h)")?;
                Value::Column(Rc::new(transform::ema(ts, &x, ms)))
            }
            "lag" => {
                let (x, ms) = window(self, "lag(signal, 8h)")?;
                Value::Column(Rc::new(transform::lag(ts, &x, ms)))
            }
            "change" => {
                let (x, ms) = window(self, "change(signal, 24h)")?;
                let before = transform::lag(ts, &x, ms);
                Value::Column(Rc::new(x.iter().zip(&before).map(|(a, b)| a - b).collect()))
            }
            "funding_trailing_apr" => {
                arity(1, "funding_trailing_apr(72h)")?;
                let Value::Duration(ms) = self.value(&args[0], what, held)? else { bail_input!("{what}: funding_trailing_apr() takes a window with a unit, e.g. funding_trailing_apr(72h)") };
                Value::Column(Rc::new(crate::sim::policy::trailing_funding_apr_hours(&self.timeline.funding, ts, ms as f64 / 3_600_000.0)))
            }
            "funding_spread_apr" => {
                arity(1, "funding_spread_apr(72h)")?;
                let Value::Duration(ms) = self.value(&args[0], what, held)? else { bail_input!("{what}: funding_spread_apr() takes a window with a unit, e.g. funding_spread_apr(72h)") };
                Value::Column(Rc::new(self.funding_spread(Some(ms as f64 / 3_600_000.0))?))
            }
            "sign" | "abs" => {
                arity(1, &format!("{name}(x)"))?;
                let x = self.value(&args[0], what, held)?;
                if name == "sign" {
                    map(x, what, |v| if v.is_nan() { f64::NAN } else if v > 0.0 { 1.0 } else if v < 0.0 { -1.0 } else { 0.0 })?
                } else {
                    map(x, what, f64::abs)?
                }
            }
            "clip" => {
                arity(3, "clip(x, lo, hi)")?;
                let (x, lo, hi) = (self.value(&args[0], what, held)?, self.value(&args[1], what, held)?, self.value(&args[2], what, held)?);
                let low = zip(x, lo, what, |v, l| if v.is_nan() || l.is_nan() { f64::NAN } else { v.max(l) })?;
                zip(low, hi, what, |v, h| if v.is_nan() || h.is_nan() { f64::NAN } else { v.min(h) })?
            }
            "min" | "max" => {
                arity(2, &format!("{name}(a, b)"))?;
                let (a, b) = (self.value(&args[0], what, held)?, self.value(&args[1], what, held)?);
                if name == "min" {
                    zip(a, b, what, |x, y| if x.is_nan() || y.is_nan() { f64::NAN } else { x.min(y) })?
                } else {
                    zip(a, b, what, |x, y| if x.is_nan() || y.is_nan() { f64::NAN } else { x.max(y) })?
                }
            }
            _ => bail_input!("{what}: unknown function {name}(); the functions are {}", FUNCTIONS.join(", ")),
        })
    }
}

#[inline]
fn compare(x: f64, y: f64, holds: bool) -> f64 {
    if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if holds {
        1.0
    } else {
        0.0
    }
}

fn map(x: Value, what: &str, f: impl Fn(f64) -> f64) -> Result<Value> {
    Ok(match x {
        Value::Scalar(v) => Value::Scalar(f(v)),
        // A column no cache holds is rewritten where it lies.
        Value::Column(c) => Value::Column(Rc::new(match Rc::try_unwrap(c) {
            Ok(mut owned) => {
                owned.iter_mut().for_each(|v| *v = f(*v));
                owned
            }
            Err(shared) => shared.iter().map(|&v| f(v)).collect(),
        })),
        Value::Duration(_) => bail_input!("{what}: a duration is only a window argument, e.g. ema(x, 72h)"),
    })
}

fn zip(a: Value, b: Value, what: &str, f: impl Fn(f64, f64) -> f64 + Copy) -> Result<Value> {
    Ok(match (a, b) {
        (Value::Scalar(x), Value::Scalar(y)) => Value::Scalar(f(x, y)),
        (Value::Column(c), Value::Scalar(y)) => map(Value::Column(c), what, |x| f(x, y))?,
        (Value::Scalar(x), Value::Column(c)) => map(Value::Column(c), what, |y| f(x, y))?,
        (Value::Column(c), Value::Column(d)) => Value::Column(Rc::new(match Rc::try_unwrap(c) {
            Ok(mut owned) => {
                owned.iter_mut().zip(d.iter()).for_each(|(x, &y)| *x = f(*x, y));
                owned
            }
            Err(shared) => shared.iter().zip(d.iter()).map(|(&x, &y)| f(x, y)).collect(),
        })),
        _ => bail_input!("{what}: a duration is only a window argument, e.g. ema(x, 72h)"),
    })
}
