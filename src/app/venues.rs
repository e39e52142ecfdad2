//! `basis venues`: actual funding across venues, where 8-hourly and hourly venues sit in one
//! table (`timestamp, venue, coin, funding_rate`, as in `../shared/data/multivenue-hourly/`).
//!
//! A rate is per its own interval, so every figure is annualised by each row's interval, never
//! by a venue-wide factor: APR = Σ rate / Σ interval hours × 8,760. A row's interval is the time
//! since the same venue and coin's previous settlement, rounded to the hour (venues stamp a few
//! ms late), and at most the venue's nominal interval: a longer spacing is a gap in the data,
//! whose hours are left out of the denominator and reported, not an interval.
//!
//! From the same rows: daily APR per venue and coin, their correlations across venues, the daily
//! spread between the highest and lowest venue, and a best-venue carry that holds the short perp
//! where the trailing funding APR is highest and pays taker fees and slippage on every switch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::Serialize;

use crate::venue::Preset;
use crate::data::read::read_table;
use crate::output::RunDir;
use crate::render::charts::{self, CompareLine};
use crate::render::compare::overlay_images;
use crate::render::html::{self, escape, pct};
use crate::render::ChartImage;
use crate::time::{format_ms, MS_PER_DAY, MS_PER_HOUR};
use crate::{bail_input, input_error};

/// Hours in a year, for annualising a rate per hour.
pub const HOURS_PER_YEAR: f64 = 8760.0;

/// The nominal settlement interval of venues in multi-venue tables, in hours. Venues not listed
/// take the most common spacing of their own rows.
pub fn nominal_interval_hours(venue: &str) -> Option<f64> {
    match venue.to_ascii_lowercase().as_str() {
        "binance" | "bybit" | "okx" | "bitmex" | "deribit" | "gate" => Some(8.0),
        "hyperliquid" | "kraken" | "lighter" | "dydx" | "paradex" | "vertex" => Some(1.0),
        _ => None,
    }
}

/// The built-in preset of a venue name as multi-venue tables spell it, for its fees.
pub fn preset_id(venue: &str) -> Option<&'static str> {
    match venue.to_ascii_lowercase().as_str() {
        "binance" => Some("binance_usdm"),
        "bybit" => Some("bybit_linear"),
        "okx" => Some("okx_swap"),
        "hyperliquid" => Some("hyperliquid"),
        "dydx" => Some("dydx_v4"),
        "bitmex" => Some("bitmex"),
        "deribit" => Some("deribit"),
        "gate" => Some("gate_usdt"),
        _ => None,
    }
}

/// Column names of a multi-venue funding table.
#[derive(Debug, Clone)]
pub struct Columns {
    /// Settlement time column (default `timestamp`); its unit is detected.
    pub time: String,
    /// Venue name column (default `venue`).
    pub venue: String,
    /// Coin column (default `coin`).
    pub coin: String,
    /// Funding rate column, decimal per the row's interval (default `funding_rate`).
    pub rate: String,
}

impl Default for Columns {
    fn default() -> Self {
        Self { time: "timestamp".into(), venue: "venue".into(), coin: "coin".into(), rate: "funding_rate".into() }
    }
}

/// One venue's settlements for one coin, in time order.
#[derive(Debug, Clone, Default)]
pub struct VenueSeries {
    /// Venue name as the table spells it, e.g. `binance`.
    pub venue: String,
    /// Coin as the table spells it, e.g. `BTC`.
    pub coin: String,
    /// Settlement times, epoch ms UTC, rounded to the hour.
    pub settle_ms: Vec<i64>,
    /// Decimal rate per the row's interval; positive: longs pay shorts.
    pub rate: Vec<f64>,
    /// Hours each row's rate covers.
    pub interval_hours: Vec<f64>,
    /// Hours between settlements that no row covers (gaps in the data).
    pub gap_hours: f64,
    /// The nominal interval used as the upper bound, hours.
    pub nominal_hours: f64,
}

impl VenueSeries {
    /// Funding APR over the rows: Σ rate / Σ interval hours × 8,760.
    pub fn apr(&self) -> f64 {
        apr(&self.rate, &self.interval_hours)
    }
}

/// Σ rate / Σ hours × 8,760 (NaN with no hours).
pub fn apr(rates: &[f64], hours: &[f64]) -> f64 {
    let covered: f64 = hours.iter().sum();
    if covered > 0.0 { rates.iter().sum::<f64>() / covered * HOURS_PER_YEAR } else { f64::NAN }
}

/// Load a multi-venue funding table (Parquet, Feather or CSV) into one series per venue and coin.
pub fn load(path: &Path, columns: &Columns) -> Result<Vec<VenueSeries>> {
    let table = read_table(path)?;
    let ts = table.times_ms(table.column(&columns.time)?, crate::config::TimeFormat::Auto)?;
    let venues = table.strings(table.column(&columns.venue)?)?;
    let coins = table.strings(table.column(&columns.coin)?)?;
    let rates = table.f64s(table.column(&columns.rate)?)?;
    for (i, rate) in rates.iter().enumerate() {
        if rate.abs() >= 0.5 {
            bail_input!(
                "{}, column `{}`: funding rate {rate} is not a decimal per interval (|rate| < 0.5 expected; 0.0001 = 0.01 %). Divide percent values by 100.",
                table.locate(i),
                columns.rate
            );
        }
        if venues[i].is_empty() || coins[i].is_empty() {
            bail_input!("{}: empty `{}` or `{}`", table.locate(i), columns.venue, columns.coin);
        }
    }
    let mut order: Vec<usize> = (0..ts.len()).collect();
    order.sort_by(|&a, &b| (&venues[a], &coins[a], ts[a]).cmp(&(&venues[b], &coins[b], ts[b])));
    let mut out: Vec<VenueSeries> = Vec::new();
    let mut rows_of: Vec<Vec<usize>> = Vec::new();
    for &i in &order {
        let same = out.last().is_some_and(|s| s.venue == venues[i] && s.coin == coins[i]);
        if !same {
            out.push(VenueSeries { venue: venues[i].clone(), coin: coins[i].clone(), ..Default::default() });
            rows_of.push(Vec::new());
        }
        let series = out.last_mut().context("a series was just pushed")?;
        let hour = (ts[i] + MS_PER_HOUR / 2).div_euclid(MS_PER_HOUR) * MS_PER_HOUR;
        if let (Some(&last), Some(&last_rate)) = (series.settle_ms.last(), series.rate.last()) {
            if last == hour {
                if last_rate == rates[i] {
                    continue; // the same settlement twice
                }
                bail_input!(
                    "{}: {} {} has two different rates for the settlement at {} ({last_rate} and {}); remove one",
                    table.locate(i),
                    venues[i],
                    coins[i],
                    format_ms(hour),
                    rates[i]
                );
            }
        }
        series.settle_ms.push(hour);
        series.rate.push(rates[i]);
        rows_of.last_mut().context("a series was just pushed")?.push(i);
    }
    for series in &mut out {
        assign_intervals(series);
    }
    Ok(out)
}

/// Trim each coin's series to the span every venue of that coin covers (the latest first
/// settlement to the earliest last one), so their APRs are over the same time; intervals and
/// gaps are worked out again on what is left. A coin whose venues share no time keeps none.
pub fn common_window(series: &mut Vec<VenueSeries>) {
    let coins: std::collections::BTreeSet<String> = series.iter().map(|s| s.coin.clone()).collect();
    for coin in coins {
        let of_coin = series.iter().filter(|s| s.coin == coin && !s.settle_ms.is_empty());
        let from = of_coin.clone().map(|s| s.settle_ms[0]).max().unwrap_or(i64::MIN);
        let to = of_coin.map(|s| *s.settle_ms.last().unwrap_or(&i64::MAX)).min().unwrap_or(i64::MAX);
        for s in series.iter_mut().filter(|s| s.coin == coin) {
            let keep: Vec<usize> = (0..s.settle_ms.len()).filter(|&i| s.settle_ms[i] >= from && s.settle_ms[i] <= to).collect();
            s.settle_ms = keep.iter().map(|&i| s.settle_ms[i]).collect();
            s.rate = keep.iter().map(|&i| s.rate[i]).collect();
            assign_intervals(s);
        }
    }
    series.retain(|s| !s.settle_ms.is_empty());
}

/// Per coin, a note when its venues' APRs cover windows that differ by more than a week at
/// either end: the APRs are then over different times (a 1,000-hour venue beside a year).
pub fn window_notes(aprs: &[VenueApr]) -> Vec<String> {
    let coins: std::collections::BTreeSet<&String> = aprs.iter().map(|a| &a.coin).collect();
    let mut notes = Vec::new();
    for coin in coins {
        let rows: Vec<&VenueApr> = aprs.iter().filter(|a| &a.coin == coin).collect();
        if rows.len() < 2 {
            continue;
        }
        let (firsts, lasts): (Vec<&str>, Vec<&str>) = rows.iter().map(|r| (r.first.as_str(), r.last.as_str())).unzip();
        let spread = |values: &[&str]| -> i64 {
            let ms: Vec<i64> = values.iter().filter_map(|v| crate::time::parse_time_ms("", v).ok()).collect();
            ms.iter().max().copied().unwrap_or(0) - ms.iter().min().copied().unwrap_or(0)
        };
        if spread(&firsts) > 7 * crate::time::MS_PER_DAY || spread(&lasts) > 7 * crate::time::MS_PER_DAY {
            let spans: Vec<String> = rows.iter().map(|r| format!("{} {} .. {}", r.venue, &r.first[..10.min(r.first.len())], &r.last[..10.min(r.last.len())])).collect();
            notes.push(format!("{coin}: the venues' APRs cover different windows ({}); they are over different times. Pass --common-window to compare them over the span all cover", spans.join(", ")));
        }
    }
    notes
}

/// Each row's interval: the spacing to the previous settlement, capped at the nominal interval
/// (the rest of a longer spacing is a gap); the first row takes the next row's.
pub fn assign_intervals(series: &mut VenueSeries) {
    let spacing: Vec<f64> = series.settle_ms.windows(2).map(|w| ((w[1] - w[0]) / MS_PER_HOUR) as f64).collect();
    let nominal = nominal_interval_hours(&series.venue).unwrap_or_else(|| {
        let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
        for s in &spacing {
            *counts.entry(*s as i64).or_default() += 1;
        }
        counts.into_iter().max_by_key(|(h, n)| (*n, -*h)).map(|(h, _)| h as f64).unwrap_or(8.0)
    });
    series.nominal_hours = nominal;
    series.interval_hours.clear();
    series.gap_hours = 0.0;
    let first = spacing.first().map(|s| s.min(nominal)).unwrap_or(nominal);
    series.interval_hours.push(first);
    for s in spacing {
        let interval = s.min(nominal);
        series.interval_hours.push(interval);
        series.gap_hours += s - interval;
    }
}

/// The most common value of whole-hour intervals (the shorter one on a tie).
fn mode(hours: &[f64]) -> f64 {
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for h in hours {
        *counts.entry(h.round() as i64).or_default() += 1;
    }
    counts.into_iter().max_by_key(|(h, n)| (*n, -*h)).map(|(h, _)| h as f64).unwrap_or(f64::NAN)
}

/// Per venue and coin: the table row.
#[derive(Debug, Clone, Serialize)]
pub struct VenueApr {
    /// Venue name as the table spells it.
    pub venue: String,
    /// Coin as the table spells it.
    pub coin: String,
    /// Number of settlements (rows after duplicates are dropped).
    pub settlements: usize,
    /// Time of the first settlement, `YYYY-MM-DD HH:MM:SSZ` (UTC).
    pub first: String,
    /// Time of the last settlement, `YYYY-MM-DD HH:MM:SSZ` (UTC).
    pub last: String,
    /// The venue's nominal settlement interval (the cap on a row's interval), hours.
    pub nominal_interval_hours: f64,
    /// The most common interval of the rows (Binance HYPE: 4 h).
    pub typical_interval_hours: f64,
    /// Σ of the rows' intervals: hours the settlements pay for, hours.
    pub covered_hours: f64,
    /// Hours between settlements that no row covers (gaps in the data), hours.
    pub gap_hours: f64,
    /// Σ rate / Σ interval hours × 8,760, decimal.
    pub funding_apr: f64,
    /// Share of settlements with a positive rate (longs pay shorts), decimal 0–1.
    pub positive_share: f64,
}

/// The APR table.
pub fn apr_table(all: &[VenueSeries]) -> Vec<VenueApr> {
    all.iter()
        .map(|s| VenueApr {
            venue: s.venue.clone(),
            coin: s.coin.clone(),
            settlements: s.rate.len(),
            first: s.settle_ms.first().map(|&t| format_ms(t)).unwrap_or_default(),
            last: s.settle_ms.last().map(|&t| format_ms(t)).unwrap_or_default(),
            nominal_interval_hours: s.nominal_hours,
            typical_interval_hours: mode(&s.interval_hours),
            covered_hours: s.interval_hours.iter().sum(),
            gap_hours: s.gap_hours,
            funding_apr: s.apr(),
            positive_share: s.rate.iter().filter(|r| **r > 0.0).count() as f64 / s.rate.len().max(1) as f64,
        })
        .collect()
}

/// Daily APR of a series: day (UTC start, ms) → Σ rate / Σ hours × 8,760 over settlements in the
/// day. A settlement at 00:00 pays for the interval before it, so it counts in the previous day.
pub fn daily_apr(series: &VenueSeries) -> BTreeMap<i64, f64> {
    let mut sums: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for i in 0..series.rate.len() {
        let day = (series.settle_ms[i] - 1).div_euclid(MS_PER_DAY) * MS_PER_DAY;
        let entry = sums.entry(day).or_default();
        entry.0 += series.rate[i];
        entry.1 += series.interval_hours[i];
    }
    sums.into_iter().filter(|(_, (_, h))| *h > 0.0).map(|(d, (r, h))| (d, r / h * HOURS_PER_YEAR)).collect()
}

/// Pearson correlation over the days both maps have (NaN with fewer than 10 shared days).
pub fn correlation(a: &BTreeMap<i64, f64>, b: &BTreeMap<i64, f64>) -> (f64, usize) {
    let pairs: Vec<(f64, f64)> = a.iter().filter_map(|(d, x)| b.get(d).map(|y| (*x, *y))).collect();
    let n = pairs.len();
    if n < 10 {
        return (f64::NAN, n);
    }
    let (mx, my) = (pairs.iter().map(|p| p.0).sum::<f64>() / n as f64, pairs.iter().map(|p| p.1).sum::<f64>() / n as f64);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in &pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    (sxy / (sxx * syy).sqrt(), n)
}

/// Settings of the best-venue carry.
#[derive(Debug, Clone, Serialize)]
pub struct RotationSettings {
    /// Trailing window the venues are ranked on, in hours.
    pub lookback_hours: i64,
    /// A venue must beat the one held by this much trailing APR (decimal) to switch.
    pub switch_margin_apr: f64,
    /// Slippage per perp fill, bps of notional.
    pub slippage_bps: f64,
    /// Perp taker fee per venue, bps (from the presets; venues without one use `fallback_taker_bps`).
    pub taker_bps: BTreeMap<String, f64>,
    /// Taker fee for venues without a preset: the highest perp taker fee of the built-in presets, bps.
    pub fallback_taker_bps: f64,
}

impl RotationSettings {
    /// Settings with each venue's perp taker fee from its preset.
    pub fn new(venues: &[String], lookback_hours: i64, switch_margin_apr: f64, slippage_bps: f64) -> Result<Self> {
        let presets = Preset::built_in()?;
        let fallback = presets.iter().map(|p| p.fees.perp_taker_bps).fold(0.0, f64::max);
        let taker_bps = venues
            .iter()
            .map(|v| {
                let fee = preset_id(v).and_then(|id| presets.iter().find(|p| p.id == id)).map(|p| p.fees.perp_taker_bps).unwrap_or(fallback);
                (v.clone(), fee)
            })
            .collect();
        Ok(Self { lookback_hours, switch_margin_apr, slippage_bps, taker_bps, fallback_taker_bps: fallback })
    }

    fn fill_cost(&self, venue: &str) -> f64 {
        (self.taker_bps.get(venue).copied().unwrap_or(self.fallback_taker_bps) + self.slippage_bps) / 1e4
    }
}

/// A carry on one coin: where the short perp was held, and what it earned, per hour.
#[derive(Debug, Clone, Serialize)]
pub struct Rotation {
    /// Coin the carry is on.
    pub coin: String,
    /// "best venue", or the venue held throughout.
    pub label: String,
    /// The hours the carry is marked at, epoch ms UTC (not serialised).
    #[serde(skip)]
    pub hours_ms: Vec<i64>,
    /// Cumulative carry, fraction of notional, after each hour (funding − costs).
    #[serde(skip)]
    pub cumulative: Vec<f64>,
    /// Funding received by the short perp over the window, fraction of notional.
    pub funding: f64,
    /// Taker fees and slippage paid on entry and switches, fraction of notional.
    pub costs: f64,
    /// Number of moves from one venue to another (the entry not counted).
    pub switches: usize,
    /// Net carry per year of the window (decimal of notional).
    pub net_apr: f64,
    /// Hours held per venue.
    pub hours_by_venue: BTreeMap<String, usize>,
}

/// The best-venue carry for one coin, and each venue held alone over the same hours.
///
/// At each hour h, settlements stamped h pay whoever holds then (short perp receives +rate).
/// Then the venues are ranked on their APR over (h − lookback, h], using only settlements
/// already made; a venue is eligible when its last settlement is within its nominal interval and
/// the window covers at least half the lookback. The carry moves when another venue beats the
/// one held by `switch_margin_apr`, or the held one stops being eligible; a move pays a taker
/// fee and slippage on both venues (entry pays one side). Notional stays 1; the spot leg is held
/// once and not traded, and perp price differences between venues are not modelled (the table
/// has no prices).
pub fn rotate(coin: &str, all: &[VenueSeries], settings: &RotationSettings) -> Vec<Rotation> {
    let series: Vec<&VenueSeries> = all.iter().filter(|s| s.coin == coin && !s.settle_ms.is_empty()).collect();
    if series.is_empty() {
        return Vec::new();
    }
    let start = series.iter().map(|s| s.settle_ms[0]).min().unwrap_or(0);
    let end = series.iter().map(|s| *s.settle_ms.last().unwrap_or(&0)).max().unwrap_or(0);
    let hours: Vec<i64> = (0..=(end - start) / MS_PER_HOUR).map(|k| start + k * MS_PER_HOUR).collect();
    let lookback_ms = settings.lookback_hours * MS_PER_HOUR;
    let mut out = Vec::new();

    // The rotating carry.
    let mut held: Option<usize> = None;
    let (mut funding, mut costs, mut switches) = (0.0, 0.0, 0usize);
    let mut cursor = vec![0usize; series.len()]; // next settlement index per venue
    let mut cumulative = Vec::with_capacity(hours.len());
    let mut hours_by_venue: BTreeMap<String, usize> = BTreeMap::new();
    for &h in &hours {
        for (v, s) in series.iter().enumerate() {
            while cursor[v] < s.settle_ms.len() && s.settle_ms[cursor[v]] <= h {
                if held == Some(v) && s.settle_ms[cursor[v]] == h {
                    funding += s.rate[cursor[v]];
                }
                cursor[v] += 1;
            }
        }
        // Rank on settlements made by h.
        let trailing: Vec<Option<f64>> = series
            .iter()
            .enumerate()
            .map(|(v, s)| {
                let made = cursor[v];
                if made == 0 || s.settle_ms[made - 1] + (s.nominal_hours as i64) * MS_PER_HOUR < h {
                    return None;
                }
                let lo = s.settle_ms[..made].partition_point(|&t| t <= h - lookback_ms);
                let covered: f64 = s.interval_hours[lo..made].iter().sum();
                (covered * 2.0 >= settings.lookback_hours as f64).then(|| apr(&s.rate[lo..made], &s.interval_hours[lo..made]))
            })
            .collect();
        let best = trailing.iter().enumerate().filter_map(|(v, a)| a.map(|a| (v, a))).max_by(|a, b| a.1.total_cmp(&b.1));
        match (held, best) {
            (None, Some((v, _))) => {
                held = Some(v);
                costs += settings.fill_cost(&series[v].venue);
            }
            (Some(current), Some((v, best_apr))) if v != current => {
                let current_apr = trailing[current];
                if current_apr.is_none_or(|c| best_apr > c + settings.switch_margin_apr) {
                    costs += settings.fill_cost(&series[current].venue) + settings.fill_cost(&series[v].venue);
                    switches += 1;
                    held = Some(v);
                }
            }
            _ => {}
        }
        if let Some(v) = held {
            *hours_by_venue.entry(series[v].venue.clone()).or_default() += 1;
        }
        cumulative.push(funding - costs);
    }
    let years = (end - start) as f64 / (HOURS_PER_YEAR * MS_PER_HOUR as f64);
    out.push(Rotation {
        coin: coin.into(),
        label: "best venue (rotating)".into(),
        hours_ms: hours.clone(),
        cumulative,
        funding,
        costs,
        switches,
        net_apr: (funding - costs) / years.max(1e-9),
        hours_by_venue,
    });

    // Each venue held alone over its own rows (entry fee once), drawn from its first settlement.
    for s in &series {
        let entry = settings.fill_cost(&s.venue);
        let mut running = -entry;
        let mut k = 0;
        let own_hours: Vec<i64> = hours.iter().copied().filter(|&h| h >= s.settle_ms[0]).collect();
        let held_hours = own_hours.iter().filter(|&&h| h <= s.settle_ms[s.settle_ms.len() - 1]).count();
        let cumulative: Vec<f64> = own_hours
            .iter()
            .map(|&h| {
                while k < s.settle_ms.len() && s.settle_ms[k] <= h {
                    running += s.rate[k];
                    k += 1;
                }
                running
            })
            .collect();
        let funding: f64 = s.rate.iter().sum();
        let held_years = (s.settle_ms[s.settle_ms.len() - 1] - s.settle_ms[0]) as f64 / (HOURS_PER_YEAR * MS_PER_HOUR as f64);
        out.push(Rotation {
            coin: coin.into(),
            label: format!("{} only", s.venue),
            hours_ms: own_hours,
            cumulative,
            funding,
            costs: entry,
            switches: 0,
            net_apr: (funding - entry) / held_years.max(1e-9),
            hours_by_venue: BTreeMap::from([(s.venue.clone(), held_hours)]),
        });
    }
    out
}

/// Everything `basis venues` computes.
pub struct VenueStudy {
    /// The multi-venue funding table read.
    pub source: PathBuf,
    /// One series per venue and coin, sorted by venue then coin.
    pub series: Vec<VenueSeries>,
    /// The APR table: one row per entry of `series`, same order.
    pub aprs: Vec<VenueApr>,
    /// Per coin: (venue a, venue b, correlation of daily APR, shared days).
    pub correlations: BTreeMap<String, Vec<(String, String, f64, usize)>>,
    /// Per coin: the best-venue carry, then each venue held alone.
    pub rotations: Vec<Rotation>,
    /// Coin drawn in the per-venue funding and carry charts (as the table spells it).
    pub chart_coin: String,
    /// Settings the best-venue carry ran with.
    pub settings: RotationSettings,
}

/// Load the table and compute every figure.
pub fn study(path: &Path, columns: &Columns, chart_coin: &str, lookback_days: f64, switch_margin_apr: f64, slippage_bps: f64, common: bool) -> Result<VenueStudy> {
    let mut series = load(path, columns)?;
    if common {
        common_window(&mut series);
    }
    if series.is_empty() {
        bail_input!("{}: no funding rows", path.display());
    }
    let coins: Vec<String> = series.iter().map(|s| s.coin.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let chart_coin = coins
        .iter()
        .find(|c| c.eq_ignore_ascii_case(chart_coin))
        .cloned()
        .ok_or_else(|| input_error!("--coin {chart_coin:?} is not in {} (coins: {})", path.display(), coins.join(", ")))?;
    if lookback_days.is_nan() || lookback_days <= 0.0 || lookback_days > 365.0 {
        bail_input!("--lookback-days must be in (0, 365], found {lookback_days}");
    }
    if !switch_margin_apr.is_finite() || switch_margin_apr < 0.0 || !slippage_bps.is_finite() || slippage_bps < 0.0 {
        bail_input!("--switch-margin-apr (decimal APR, e.g. 0.10) and --slippage-bps must be finite and >= 0");
    }
    let venues: Vec<String> = series.iter().map(|s| s.venue.clone()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let settings = RotationSettings::new(&venues, (lookback_days * 24.0).round() as i64, switch_margin_apr, slippage_bps)?;
    let aprs = apr_table(&series);
    let mut correlations = BTreeMap::new();
    for coin in &coins {
        let of_coin: Vec<(&VenueSeries, BTreeMap<i64, f64>)> = series.iter().filter(|s| &s.coin == coin).map(|s| (s, daily_apr(s))).collect();
        let mut pairs = Vec::new();
        for a in 0..of_coin.len() {
            for b in a + 1..of_coin.len() {
                let (rho, n) = correlation(&of_coin[a].1, &of_coin[b].1);
                pairs.push((of_coin[a].0.venue.clone(), of_coin[b].0.venue.clone(), rho, n));
            }
        }
        correlations.insert(coin.clone(), pairs);
    }
    let rotations: Vec<Rotation> = coins.par_iter().flat_map(|coin| rotate(coin, &series, &settings)).collect();
    Ok(VenueStudy { source: path.to_path_buf(), series, aprs, correlations, rotations, chart_coin, settings })
}

/// Daily max − min APR across the venues live that day, per coin (in %).
fn spread_lines(study: &VenueStudy) -> Vec<CompareLine> {
    let coins: std::collections::BTreeSet<&String> = study.series.iter().map(|s| &s.coin).collect();
    coins
        .into_iter()
        .map(|coin| {
            let mut by_day: BTreeMap<i64, (f64, f64, usize)> = BTreeMap::new();
            for s in study.series.iter().filter(|s| &s.coin == coin) {
                for (day, a) in daily_apr(s) {
                    let e = by_day.entry(day).or_insert((f64::INFINITY, f64::NEG_INFINITY, 0));
                    *e = (e.0.min(a), e.1.max(a), e.2 + 1);
                }
            }
            let (ts, spread): (Vec<i64>, Vec<f64>) = by_day.into_iter().filter(|(_, e)| e.2 >= 2).map(|(d, e)| (d, (e.1 - e.0) * 100.0)).unzip();
            CompareLine { label: coin.clone(), lines: charts::decimate_for_chart(&ts, &spread) }
        })
        .collect()
}

/// Render the charts and page.
pub fn render(study: &VenueStudy) -> Result<(Vec<ChartImage>, String)> {
    let coin = &study.chart_coin;
    let venue_lines: Vec<CompareLine> = study
        .series
        .iter()
        .filter(|s| &s.coin == coin)
        .map(|s| {
            // Trailing 7-day APR per venue at each settlement, as the rotation ranks them.
            let week = 7 * MS_PER_DAY;
            let mut ts = Vec::new();
            let mut values = Vec::new();
            let mut lo = 0;
            for i in 0..s.settle_ms.len() {
                while s.settle_ms[lo] <= s.settle_ms[i] - week {
                    lo += 1;
                }
                // Drawn where the rows cover at least half the week (not across long gaps).
                if s.interval_hours[lo..=i].iter().sum::<f64>() >= 84.0 {
                    ts.push(s.settle_ms[i]);
                    values.push(apr(&s.rate[lo..=i], &s.interval_hours[lo..=i]) * 100.0);
                }
            }
            CompareLine { label: s.venue.clone(), lines: charts::decimate_for_chart(&ts, &values) }
        })
        .collect();
    let spreads = spread_lines(study);
    let rotation_lines: Vec<CompareLine> = study
        .rotations
        .iter()
        .filter(|r| &r.coin == coin)
        .map(|r| {
            let pct_of_notional: Vec<f64> = r.cumulative.iter().map(|c| c * 100.0).collect();
            CompareLine { label: r.label.clone(), lines: charts::decimate_for_chart(&r.hours_ms, &pct_of_notional) }
        })
        .collect();
    let funding_title = format!("{coin} funding by venue (trailing 7-day APR)");
    let rotation_title = format!("{coin} carry: best venue vs each venue alone");
    let images = overlay_images(&[
        (
            "venues_funding_apr.png",
            funding_title,
            "Each venue's settlements over the trailing 7 days, annualised by the hours they cover (hourly and 8-hourly venues compare directly).",
            "funding APR, trailing 7 days (%)",
            &venue_lines,
        ),
        (
            "venues_spread.png",
            "Daily cross-venue funding spread".into(),
            "Per coin and day: the highest venue's daily funding APR minus the lowest's, over venues with data that day.",
            "max − min daily funding APR (percentage points)",
            &spreads,
        ),
        (
            "venues_rotation.png",
            rotation_title,
            "Cumulative carry on a notional of 1, net of taker fees and slippage: rotating to the venue with the highest trailing APR, and holding each venue alone.",
            "cumulative carry (% of notional)",
            &rotation_lines,
        ),
    ])?;

    // The chart coin's APR per venue as bars, in the colours of its lines.
    let bars: Vec<(String, f64)> = venue_lines
        .iter()
        .map(|line| {
            // Each bar labelled with the window its APR is over: they may differ.
            let row = study.aprs.iter().find(|a| a.venue == line.label && &a.coin == coin);
            let label = row.map(|a| format!("{} ({} .. {})", line.label, &a.first[..10.min(a.first.len())], &a.last[..10.min(a.last.len())])).unwrap_or_else(|| line.label.clone());
            (label, row.map(|a| a.funding_apr * 100.0).unwrap_or(f64::NAN))
        })
        .collect();
    let bar_height = 110 + 40 * bars.len() as u32;
    let png = charts::render_png(charts::WIDTH, bar_height, |area| crate::render::study::bar_chart(area, &format!("{coin} funding APR per venue"), "funding APR (%)", &bars))?;
    let mut images = images;
    images.insert(0, ChartImage { file: "venues_apr_bars.png", title: format!("{coin} funding APR per venue"), description: "Each venue's funding APR over its rows (Σ rate / Σ interval hours × 8,760), in the colours of its line below.", width: charts::WIDTH, height: bar_height, png });

    let mut body = String::from("<h1>Funding across venues</h1>\n");
    body.push_str(&format!(
        "<p class=\"sub\">{} · {} venue/coin series · APR = Σ rate / Σ interval hours × 8,760, each row annualised by its own interval</p>\n",
        escape(&study.source.display().to_string()),
        study.series.len()
    ));
    body.push_str("<section class=\"table\" id=\"apr\">\n<h2>Funding APR per venue and coin</h2>\n<table>\n<tr><th>venue</th><th>coin</th><th class=\"num\">settlements</th><th class=\"num\">interval (h)</th><th>first</th><th>last</th><th class=\"num\">gap hours</th><th class=\"num\">funding APR</th><th class=\"num\">positive</th></tr>\n");
    for row in &study.aprs {
        body.push_str(&format!(
            "<tr><th>{}</th><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"time\">{}</td><td class=\"time\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
            escape(&row.venue),
            escape(&row.coin),
            row.settlements,
            row.typical_interval_hours,
            escape(&crate::render::html::short_time(&row.first)),
            escape(&crate::render::html::short_time(&row.last)),
            row.gap_hours,
            pct(row.funding_apr),
            pct(row.positive_share)
        ));
    }
    body.push_str("</table>\n");
    for note in window_notes(&study.aprs) {
        body.push_str(&format!("<p class=\"banner\">{}</p>\n", escape(&note)));
    }
    body.push_str("</section>\n");
    for image in &images {
        body.push_str(&html::chart_section(image));
    }
    body.push_str("<section class=\"table\" id=\"rotation\">\n<h2>Best-venue carry per coin</h2>\n<table>\n<tr><th>coin</th><th>carry</th><th class=\"num\">funding</th><th class=\"num\">costs</th><th class=\"num\">switches</th><th class=\"num\">net APR</th><th>hours by venue</th></tr>\n");
    for r in &study.rotations {
        let hours: Vec<String> = r.hours_by_venue.iter().map(|(v, h)| format!("{v} {h}")).collect();
        body.push_str(&format!(
            "<tr><th>{}</th><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>\n",
            escape(&r.coin),
            escape(&r.label),
            pct(r.funding),
            pct(r.costs),
            r.switches,
            pct(r.net_apr),
            escape(&hours.join(", "))
        ));
    }
    let s = &study.settings;
    body.push_str(&format!(
        "</table>\n<p>Funding and costs are fractions of notional. Ranking on the trailing {} h APR; a switch needs a lead of {} APR and pays the perp taker fee on both venues plus {} bp slippage per fill (fees from the presets; venues without a preset pay {} bp). \"Venue only\" rows hold from that venue's first row to its last and annualise over that span.</p>\n</section>\n",
        s.lookback_hours,
        pct(s.switch_margin_apr),
        s.slippage_bps,
        s.fallback_taker_bps
    ));
    body.push_str("<section class=\"table\" id=\"correlations\">\n<h2>Correlation of daily funding APR between venues</h2>\n<table>\n<tr><th>coin</th><th>venues</th><th class=\"num\">correlation</th><th class=\"num\">shared days</th></tr>\n");
    for (coin, pairs) in &study.correlations {
        for (a, b, rho, n) in pairs {
            let rho = if rho.is_finite() { format!("{rho:.2}") } else { "n/a".into() };
            body.push_str(&format!("<tr><th>{}</th><td>{} / {}</td><td class=\"num\">{rho}</td><td class=\"num\">{n}</td></tr>\n", escape(coin), escape(a), escape(b)));
        }
    }
    body.push_str("</table>\n</section>\n");
    Ok((images, html::page("basis · venues", &body)))
}

/// Compute the study and write it to `<output_dir>/<name>/`.
pub fn write(study: &VenueStudy, output_dir: &Path, name: &str, force: bool) -> Result<PathBuf> {
    let (images, page) = render(study)?;
    let dir = RunDir::create(output_dir, name, force)?;
    for image in &images {
        dir.write(image.file, &image.png)?;
    }
    let correlations: BTreeMap<&String, Vec<serde_json::Value>> = study
        .correlations
        .iter()
        .map(|(coin, pairs)| {
            (coin, pairs.iter().map(|(a, b, rho, n)| serde_json::json!({ "a": a, "b": b, "correlation": rho.is_finite().then_some(*rho), "days": n })).collect())
        })
        .collect();
    let json = serde_json::json!({
        "source": study.source.display().to_string(),
        "apr": study.aprs,
        "correlations_of_daily_apr": correlations,
        "rotation_settings": study.settings,
        "rotations": study.rotations,
    });
    dir.write("venues.json", serde_json::to_string_pretty(&json)?.as_bytes())?;
    dir.write("index.html", page.as_bytes())?;
    dir.commit()
}

/// Funding APR per venue and coin and the best-venue carry, as `venues` prints them.
pub fn table_text(study: &VenueStudy) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "{:<12} {:<6} {:>11} {:>9} {:>12} {:>10}  {}", "venue", "coin", "settlements", "interval", "funding APR", "gap hours", "window");
    for row in &study.aprs {
        let _ = writeln!(
            out,
            "{:<12} {:<6} {:>11} {:>8}h {:>11.2}% {:>10}  {} .. {}",
            row.venue,
            row.coin,
            row.settlements,
            row.typical_interval_hours,
            row.funding_apr * 100.0,
            row.gap_hours,
            &row.first[..10.min(row.first.len())],
            &row.last[..10.min(row.last.len())]
        );
    }
    for note in window_notes(&study.aprs) {
        let _ = writeln!(out, "note: {note}");
    }
    for r in study.rotations.iter().filter(|r| r.switches > 0 || r.label.starts_with("best")) {
        let _ = writeln!(out, "{:<6} best venue: net APR {:+.2}% ({} switches, costs {:.3}% of notional)", r.coin, r.net_apr * 100.0, r.switches, r.costs * 100.0);
    }
    out
}
