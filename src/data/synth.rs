//! The seeded synthetic market behind `data/sample/`: spot, perp and mark klines and funding
//! settlements in Binance's public-dump layouts, with regimes like those in real history.
//!
//! Regimes, in order: steady positive carry; a stretch of negative funding in a sell-off; a sharp
//! rally that drives funding to its cap and stresses a short perp; then a calm, mixed market.
//! Funding follows Binance's rule F = clamp(P̄ + clamp(I − P̄, ±0.05 %), ±0.3 %) on the mean
//! premium of the interval, with I = 0.01 % per 8 h. Spot files are headerless and switch from ms
//! to µs timestamps on 2025-01-01, as Binance spot dumps do; perp and mark files have a header.
//! The generator uses its own SplitMix64 stream so that a seed gives the same files whatever
//! crate versions are in use.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{Datelike, TimeZone, Utc};

use crate::rng::Rng;
use crate::time::{MS_PER_DAY, MS_PER_HOUR};

/// Generator settings.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    /// Seed of the generator; the same seed gives the same market (default 7).
    pub seed: u64,
    /// First bar's open time, epoch ms (UTC midnight).
    pub start_ms: i64,
    /// Length of the sample, days (default 365).
    pub days: u32,
    /// Bar length in minutes (divides 60 or is a multiple of 60).
    pub bar_minutes: u32,
    /// Symbol written into file names and labels (default `SYNTHUSDT`).
    pub symbol: String,
    /// Spot price at the first bar's open, quote currency (default 3000).
    pub initial_price: f64,
}

impl Default for SynthSpec {
    fn default() -> Self {
        Self {
            seed: 7,
            start_ms: Utc.with_ymd_and_hms(2024, 7, 1, 0, 0, 0).single().map(|t| t.timestamp_millis()).unwrap_or(0),
            days: 365,
            bar_minutes: 60,
            symbol: "SYNTHUSDT".into(),
            initial_price: 3000.0,
        }
    }
}

/// One market regime: annual drift and volatility of spot, and the premium level it pulls to.
struct Regime {
    until_day: f64,
    drift_per_year: f64,
    vol_per_year: f64,
    premium_mean: f64,
}

fn regimes(days: f64) -> Vec<Regime> {
    // Day boundaries scale with the sample length so a short sample still shows every regime.
    let d = |fraction: f64| fraction * days;
    vec![
        Regime { until_day: d(0.33), drift_per_year: 0.25, vol_per_year: 0.45, premium_mean: 0.00025 },
        // The ±0.05 % clamp maps premiums in [-0.04 %, +0.06 %] to the 0.01 % interest rate, so a
        // negative-funding regime needs a premium well below -0.04 %.
        Regime { until_day: d(0.45), drift_per_year: -1.2, vol_per_year: 0.65, premium_mean: -0.0011 },
        Regime { until_day: d(0.50), drift_per_year: 9.0, vol_per_year: 0.85, premium_mean: 0.0040 },
        Regime { until_day: d(1.0), drift_per_year: 0.0, vol_per_year: 0.40, premium_mean: 0.00012 },
    ]
}

/// A generated bar.
#[derive(Debug, Clone, Copy)]
pub struct SynthBar {
    /// Bar open time, epoch ms UTC.
    pub open_ms: i64,
    /// Open price, quote currency.
    pub open: f64,
    /// High price, quote currency.
    pub high: f64,
    /// Low price, quote currency.
    pub low: f64,
    /// Close price, quote currency.
    pub close: f64,
    /// Traded volume, base units (0 for mark bars).
    pub volume: f64,
}

/// The generated market.
#[derive(Debug, Clone, Default)]
pub struct SynthMarket {
    /// Bar length, ms.
    pub bar_ms: i64,
    /// Spot bars, in time order.
    pub spot: Vec<SynthBar>,
    /// Perp bars (spot × (1 + basis)), in time order.
    pub perp: Vec<SynthBar>,
    /// Mark bars (spot × (1 + smoothed basis)), in time order.
    pub mark: Vec<SynthBar>,
    /// (calc_time ms with jitter, interval hours, rate).
    pub funding: Vec<(i64, u32, f64)>,
    /// (day start ms, staking APR).
    pub staking: Vec<(i64, f64)>,
}

/// A generated market as loaded data (bars known at their close; funding settled on the
/// second), for benchmarks and tests that skip the files.
pub fn market_data(spec: &SynthSpec) -> crate::data::MarketData {
    use crate::data::{MarketData, PriceBars};
    use crate::model::Settlement;
    let market = generate(spec);
    let bars = |label: &str, bars: &[SynthBar]| PriceBars {
        label: label.into(),
        ts_ms: bars.iter().map(|b| b.open_ms + market.bar_ms).collect(),
        close: bars.iter().map(|b| b.close).collect(),
        high: bars.iter().map(|b| b.high).collect(),
        low: bars.iter().map(|b| b.low).collect(),
        volume: bars.iter().map(|b| b.volume).collect(),
    };
    MarketData {
        symbol: spec.symbol.clone(),
        synthetic: true,
        spot: bars("spot", &market.spot),
        perp: bars("perp", &market.perp),
        mark: Some(bars("mark", &market.mark)),
        funding: market.funding.iter().map(|f| Settlement::unpriced(super::binance::round_to_second(f.0), f.2, f64::from(f.1))).collect(),
        ..Default::default()
    }
}

/// Generate a market from `spec`.
pub fn generate(spec: &SynthSpec) -> SynthMarket {
    let mut rng = Rng::new(spec.seed);
    let bar_ms = i64::from(spec.bar_minutes) * 60_000;
    let steps = (i64::from(spec.days) * MS_PER_DAY / bar_ms) as usize;
    let sub_steps = 6usize;
    let dt_years = bar_ms as f64 / (365.0 * MS_PER_DAY as f64) / sub_steps as f64;
    let regimes = regimes(f64::from(spec.days));
    let mut spot_price = spec.initial_price;
    let mut basis = 0.0002f64;
    let mut mark_basis = basis;
    let mut market = SynthMarket { bar_ms, ..Default::default() };
    let mut premium_sum = 0.0;
    let mut premium_count = 0usize;
    let interval_ms = 8 * MS_PER_HOUR;
    for step in 0..steps {
        let open_ms = spec.start_ms + step as i64 * bar_ms;
        let day = (open_ms - spec.start_ms) as f64 / MS_PER_DAY as f64;
        let regime = regimes.iter().find(|r| day < r.until_day).unwrap_or(&regimes[regimes.len() - 1]);
        let mut bars = [[0.0f64; 4]; 3]; // spot, perp, mark: open, high, low, close
        for (k, bar) in bars.iter_mut().enumerate() {
            let price = spot_price * if k == 0 { 1.0 } else if k == 1 { 1.0 + basis } else { 1.0 + mark_basis };
            *bar = [price, price, price, price];
        }
        for _ in 0..sub_steps {
            let vol = regime.vol_per_year;
            spot_price *= ((regime.drift_per_year - 0.5 * vol * vol) * dt_years + vol * dt_years.sqrt() * rng.normal()).exp();
            // Basis: mean-reverting to the regime's premium, with noise of a few bp.
            basis += 0.15 * (regime.premium_mean - basis) + 0.00035 * rng.normal();
            mark_basis += 0.5 * (basis - mark_basis);
            let prices = [spot_price, spot_price * (1.0 + basis), spot_price * (1.0 + mark_basis)];
            for (bar, price) in bars.iter_mut().zip(prices) {
                bar[1] = bar[1].max(price);
                bar[2] = bar[2].min(price);
                bar[3] = price;
            }
            premium_sum += mark_basis;
            premium_count += 1;
        }
        let volume = (1000.0 * (1.0 + 0.3 * rng.normal().abs())).round();
        let to_bar = |b: [f64; 4], volume: f64| SynthBar { open_ms, open: b[0], high: b[1], low: b[2], close: b[3], volume };
        market.spot.push(to_bar(bars[0], volume));
        market.perp.push(to_bar(bars[1], volume * 3.0));
        market.mark.push(to_bar(bars[2], 0.0));
        let close_ms = open_ms + bar_ms;
        if close_ms % interval_ms == 0 {
            let premium = premium_sum / premium_count.max(1) as f64;
            let interest = 0.0001;
            let rate = (premium + (interest - premium).clamp(-0.0005, 0.0005)).clamp(-0.003, 0.003);
            let rate = (rate * 1e8).round() / 1e8;
            let jitter = (rng.uniform() * 10.0) as i64;
            market.funding.push((close_ms + jitter, 8, rate));
            premium_sum = 0.0;
            premium_count = 0;
        }
    }
    for day in 0..spec.days {
        let t = spec.start_ms + i64::from(day) * MS_PER_DAY;
        let apr = 0.031 + 0.004 * (f64::from(day) / 58.0).sin() + 0.001 * rng.normal();
        market.staking.push((t, (apr * 1e5).round() / 1e5));
    }
    market
}

fn month_key(ms: i64) -> (i32, u32) {
    let dt = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    (dt.year(), dt.month())
}

/// Binance spot dumps switched to µs on 2025-01-01.
fn spot_time_unit_is_us(ms: i64) -> bool {
    month_key(ms).0 >= 2025
}

fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("csv.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

fn interval_label(bar_minutes: u32) -> String {
    if bar_minutes.is_multiple_of(60) { format!("{}h", bar_minutes / 60) } else { format!("{bar_minutes}m") }
}

/// Write the market as monthly files under `out_dir/{spot,perp,mark,funding}/` plus
/// `staking.csv`, and return the files written.
pub fn write(market: &SynthMarket, spec: &SynthSpec, out_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let label = interval_label(spec.bar_minutes);
    for (kind, bars, header) in [("spot", &market.spot, false), ("perp", &market.perp, true), ("mark", &market.mark, true)] {
        // Binance spot dumps switched to µs on 2025-01-01; the futures dumps did not.
        let micros = |open_ms: i64| kind == "spot" && spot_time_unit_is_us(open_ms);
        written.extend(write_klines(bars, market.bar_ms, &out_dir.join(kind), &format!("{}-{label}", spec.symbol), header, micros)?);
    }
    let dir = out_dir.join("funding");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut start = 0;
    while start < market.funding.len() {
        let month = month_key(market.funding[start].0);
        let end = start + market.funding[start..].iter().take_while(|f| month_key(f.0) == month).count();
        let mut text = String::from("calc_time,funding_interval_hours,last_funding_rate\n");
        for (t, hours, rate) in &market.funding[start..end] {
            let _ = writeln!(text, "{t},{hours},{rate:.8}");
        }
        let path = dir.join(format!("{}-fundingRate-{:04}-{:02}.csv", spec.symbol, month.0, month.1));
        write_atomic(&path, &text)?;
        written.push(path);
        start = end;
    }
    written.extend(write_dated(&dated_contracts(market, spec), spec, out_dir)?);
    written.extend(write_books(market, spec, out_dir)?);
    let mut text = String::from("time,apr\n");
    for (t, apr) in &market.staking {
        let _ = writeln!(text, "{},{apr}", crate::time::format_ms(*t).replace(" 00:00:00Z", ""));
    }
    let path = out_dir.join("staking.csv");
    write_atomic(&path, &text)?;
    written.push(path);
    let readme = format!(
        "# SYNTHETIC sample data (not market history)\n\nGenerated by `basis data synth --seed {} --days {} --bar-minutes {} --out {}`.\n\
         Symbol {}: spot, perp and mark klines and funding in Binance public-dump layouts, plus a daily staking APR series.\n\
         `dated/` holds quarterly futures (Binance delivery-kline layout, `<SYMBOL>_<YYMMDD>-<interval>-<month>.csv`): contango tied to the\n\
         perp's premium, converging to spot at delivery (last Friday of Mar/Jun/Sep/Dec, 08:00 UTC), each listed two quarters before it delivers.\n\
         `book/` holds L2 snapshots of the spot and perp books over the first 31 days (Tardis book_snapshot_5 layout, gzip): a second before\n\
         each bar's close, level k at (k + 1/2) bp from the close holding 2 (k + 1) coins.\n\
         Regimes: steady positive carry, negative funding in a sell-off, a sharp rally with funding at its cap, then a calm market.\n\
         Regenerate with the command above; the files are identical for the same seed.\n",
        spec.seed,
        spec.days,
        spec.bar_minutes,
        out_dir.display(),
        spec.symbol
    );
    std::fs::write(out_dir.join("README.md"), readme).with_context(|| format!("writing {}/README.md", out_dir.display()))?;
    Ok(written)
}

/// Levels per side of the generated books.
const BOOK_LEVELS: usize = 5;

/// L2 snapshots of the spot and perp books over the sample's first 31 days, in Tardis'
/// `book_snapshot_5` CSV layout (gzip): one snapshot a second before each bar's close
/// (`timestamp`; `local_timestamp` 100 ms later), centred on the bar's close, level k (from 0)
/// at (k + ½) bp from it on each side holding 2 (k + 1) coins. Deterministic: no random draws.
fn write_books(market: &SynthMarket, spec: &SynthSpec, out_dir: &Path) -> Result<Vec<PathBuf>> {
    use std::io::Write as _;
    let mut written = Vec::new();
    let mut header = String::from("exchange,symbol,timestamp,local_timestamp");
    for k in 0..BOOK_LEVELS {
        let _ = write!(header, ",asks[{k}].price,asks[{k}].amount,bids[{k}].price,bids[{k}].amount");
    }
    for (kind, bars) in [("spot", &market.spot), ("perp", &market.perp)] {
        let Some(first) = bars.first() else { continue };
        let until = first.open_ms + 31 * MS_PER_DAY;
        let mut text = header.clone();
        text.push('\n');
        for bar in bars.iter().take_while(|b| b.open_ms < until) {
            let close_ms = bar.open_ms + market.bar_ms;
            let taken_us = (close_ms - 1_000) * 1_000;
            let _ = write!(text, "binance,{},{taken_us},{}", spec.symbol, taken_us + 100_000);
            for k in 0..BOOK_LEVELS {
                let distance = (k as f64 + 0.5) * 1e-4;
                let amount = 2 * (k + 1);
                let _ = write!(text, ",{:.4},{amount},{:.4},{amount}", bar.close * (1.0 + distance), bar.close * (1.0 - distance));
            }
            text.push('\n');
        }
        let dir = out_dir.join("book").join(kind);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{}-book_snapshot_5-{}.csv.gz", spec.symbol, crate::time::format_ms(first.open_ms).get(..7).unwrap_or("start")));
        // gzip with no file name and a zero mtime: the same bytes on every run.
        let mut encoder = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::default());
        encoder.write_all(text.as_bytes()).context("compressing the book")?;
        let bytes = encoder.finish().context("compressing the book")?;
        let tmp = path.with_extension("gz.tmp");
        std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("renaming into {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// One generated dated contract: its name, delivery time and hourly bars.
#[derive(Debug, Clone)]
pub struct SynthContract {
    /// Binance-style name, `<SYMBOL>_<YYMMDD>`.
    pub name: String,
    /// Delivery time, epoch ms UTC (08:00 on the last Friday of its quarter's last month).
    pub expiry_ms: i64,
    /// Bars from listing (or the sample's start) to delivery.
    pub bars: Vec<SynthBar>,
}

/// Quarterly contracts over the sample, priced from its spot: F = S × (1 + a × days / 365) ×
/// (1 + ε), where the annualised basis `a` follows the perp's smoothed premium (contango when
/// funding is positive) for a near contract and leans to a long-run 8 % for a far one
/// (a = 8 % + (a_near − 8 %) × e^(−days/90)), and ε is noise of a few bp that fades as delivery
/// nears, so the last
/// bar closes at the spot close (convergence). Each contract lists at the delivery two quarters
/// before its own, so two trade at any time. Uses its own random stream: the other files do not
/// change with it.
pub fn dated_contracts(market: &SynthMarket, spec: &SynthSpec) -> Vec<SynthContract> {
    let Some(first) = market.spot.first() else { return Vec::new() };
    let start_ms = first.open_ms;
    let end_ms = market.spot.last().map_or(start_ms, |b| b.open_ms + market.bar_ms);
    let mut rng = Rng::new(spec.seed ^ 0x0DA7_ED00_F00D_5EED);
    // Annualised basis at each bar close, from the perp's premium (EMA over about three days).
    let mut premium = 0.0;
    let alpha = (market.bar_ms as f64 / (3.0 * MS_PER_DAY as f64)).min(1.0);
    let basis_apr: Vec<f64> = market
        .spot
        .iter()
        .zip(&market.perp)
        .map(|(s, p)| {
            premium += alpha * ((p.close / s.close - 1.0) - premium);
            (0.04 + 0.6 * premium * 1095.0).clamp(-0.15, 0.45)
        })
        .collect();
    let mut out = Vec::new();
    let (mut year, _) = month_key(start_ms);
    year -= 1;
    loop {
        for month in [3u32, 6, 9, 12] {
            let expiry_ms = super::dated::quarterly_expiry_ms(year, month);
            // Listed at the delivery two quarters earlier.
            let (list_year, list_month) = if month > 6 { (year, month - 6) } else { (year - 1, month + 6) };
            let listed_ms = super::dated::quarterly_expiry_ms(list_year, list_month);
            if expiry_ms <= start_ms || listed_ms >= end_ms {
                continue;
            }
            let name = format!("{}_{:02}{:02}{:02}", spec.symbol, year % 100, month, chrono::DateTime::from_timestamp_millis(expiry_ms).map_or(0, |t| t.day()));
            let mut bars = Vec::new();
            for (k, bar) in market.spot.iter().enumerate() {
                let close_ms = bar.open_ms + market.bar_ms;
                if bar.open_ms < listed_ms || close_ms > expiry_ms {
                    continue;
                }
                let days = (expiry_ms - close_ms) as f64 / MS_PER_DAY as f64;
                let noise = 0.0003 * (days / 90.0).sqrt() * rng.normal();
                // Far contracts lean to the long-run contango: an upward or inverted curve.
                let tenor_apr = LONG_RUN_BASIS_APR + (basis_apr[k] - LONG_RUN_BASIS_APR) * (-days / 90.0).exp();
                let factor = (1.0 + tenor_apr * days / 365.0) * (1.0 + noise);
                bars.push(SynthBar { open_ms: bar.open_ms, open: bar.open * factor, high: bar.high * factor, low: bar.low * factor, close: bar.close * factor, volume: (bar.volume * 0.4).round() });
            }
            if !bars.is_empty() {
                out.push(SynthContract { name, expiry_ms, bars });
            }
        }
        year += 1;
        if super::dated::quarterly_expiry_ms(year, 3) > end_ms + 400 * MS_PER_DAY {
            break;
        }
    }
    out.sort_by_key(|c| c.expiry_ms);
    out
}

/// The annualised basis far contracts drift to (the curve's long end), decimal APR.
const LONG_RUN_BASIS_APR: f64 = 0.08;

/// Write the contracts as monthly Binance delivery-kline files under `out_dir/dated/`.
fn write_dated(contracts: &[SynthContract], spec: &SynthSpec, out_dir: &Path) -> Result<Vec<PathBuf>> {
    let label = interval_label(spec.bar_minutes);
    let bar_ms = i64::from(spec.bar_minutes) * 60_000;
    let mut written = Vec::new();
    for contract in contracts {
        written.extend(write_klines(&contract.bars, bar_ms, &out_dir.join("dated"), &format!("{}-{label}", contract.name), true, |_| false)?);
    }
    Ok(written)
}

/// Write `bars` as monthly Binance kline files `<dir>/<prefix>-YYYY-MM.csv`, with the dumps'
/// header when `header`, and µs times for the bars `micros` picks (ms otherwise).
fn write_klines(bars: &[SynthBar], bar_ms: i64, dir: &Path, prefix: &str, header: bool, micros: impl Fn(i64) -> bool) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    let mut start = 0;
    while start < bars.len() {
        let month = month_key(bars[start].open_ms);
        let end = start + bars[start..].iter().take_while(|b| month_key(b.open_ms) == month).count();
        let mut text = String::with_capacity((end - start) * 120);
        if header {
            text.push_str("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore\n");
        }
        for bar in &bars[start..end] {
            let close_ms = bar.open_ms + bar_ms - 1;
            let (open_t, close_t) = if micros(bar.open_ms) { (bar.open_ms * 1000, close_ms * 1000 + 999) } else { (bar.open_ms, close_ms) };
            let quote = bar.volume * bar.close;
            let _ = writeln!(
                text,
                "{open_t},{:.2},{:.2},{:.2},{:.2},{:.3},{close_t},{:.2},{},{:.3},{:.2},0",
                bar.open,
                bar.high,
                bar.low,
                bar.close,
                bar.volume,
                quote,
                (bar.volume / 2.0).round() as i64,
                bar.volume / 2.0,
                quote / 2.0
            );
        }
        let path = dir.join(format!("{prefix}-{:04}-{:02}.csv", month.0, month.1));
        write_atomic(&path, &text)?;
        written.push(path);
        start = end;
    }
    Ok(written)
}
