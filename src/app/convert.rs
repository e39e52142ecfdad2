//! `basis data convert`: a config's market data written once as canonical Parquet, so repeated
//! backtests and sweeps skip CSV parsing, zip and gzip. The data is loaded exactly as a run
//! loads it (repairs and checks included), then written as:
//! `spot.parquet`, `perp.parquet`, `mark.parquet` (`ts` bar close, datetime ms UTC; `close`,
//! `high`, `low`, `volume`), `funding.parquet` (`ts` settlement; `rate`, `interval_hours`,
//! `mark_price`, null where the source had none) and `staking.parquet` (`time`, `apr`), with a
//! `config.toml` that reads them (the original config with its `[data]` sources replaced).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use polars::prelude::*;

use crate::data::{MarketData, PriceBars};
use crate::output::write_parquet_atomic;
use crate::input_error;

fn time_column(name: &str, ms: &[i64]) -> Result<Column> {
    Ok(Column::new(name.into(), ms).cast(&DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)))?)
}

/// Bars as a canonical frame.
pub fn bars_frame(bars: &PriceBars) -> Result<DataFrame> {
    let n = bars.ts_ms.len();
    // A series kept without its range (a close-only spot) writes its closes as high and low.
    let range = |column: &[f64]| if column.is_empty() { bars.close.clone() } else { column.to_vec() };
    let mut columns = vec![time_column("ts", &bars.ts_ms)?, Column::new("close".into(), &bars.close), Column::new("high".into(), range(&bars.high)), Column::new("low".into(), range(&bars.low))];
    if !bars.volume.is_empty() {
        columns.push(Column::new("volume".into(), &bars.volume));
    }
    Ok(DataFrame::new(n, columns)?)
}

fn price_source(file: &str, has_volume: bool) -> toml::Value {
    let mut table = toml::Table::new();
    for (k, v) in [("format", "generic"), ("path", file), ("close_time_column", "ts"), ("close_column", "close"), ("high_column", "high"), ("low_column", "low")] {
        table.insert(k.into(), toml::Value::String(v.into()));
    }
    if has_volume {
        table.insert("volume_column".into(), toml::Value::String("volume".into()));
    }
    toml::Value::Table(table)
}

/// Refuse an `out` folder that already holds files, unless `force`: a conversion never
/// replaces an earlier one unasked.
pub fn check_out(out: &Path, force: bool) -> Result<()> {
    if force {
        return Ok(());
    }
    if let Ok(mut entries) = std::fs::read_dir(out) {
        if entries.next().is_some() {
            crate::bail_input!("{} already holds files (an earlier conversion?); pass --force to replace them, or choose another --out", out.display());
        }
    }
    Ok(())
}

/// Write `data` into `out` and a config there that reads it; `raw` is the original config's
/// TOML and `base_dir` its folder. Returns the files written.
pub fn write(data: &MarketData, raw: &toml::Value, base_dir: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).map_err(|err| input_error!("cannot create {}: {err}", out.display()))?;
    let mut written = Vec::new();
    let mut sources = toml::Table::new();
    let mut put = |name: &str, frame: &mut DataFrame| -> Result<()> {
        let path = out.join(name);
        write_parquet_atomic(&path, frame)?;
        written.push(path);
        Ok(())
    };
    put("spot.parquet", &mut bars_frame(&data.spot)?)?;
    sources.insert("spot".into(), price_source("spot.parquet", !data.spot.volume.is_empty()));
    put("perp.parquet", &mut bars_frame(&data.perp)?)?;
    sources.insert("perp".into(), price_source("perp.parquet", !data.perp.volume.is_empty()));
    if let Some(mark) = &data.mark {
        put("mark.parquet", &mut bars_frame(mark)?)?;
        sources.insert("mark".into(), price_source("mark.parquet", !mark.volume.is_empty()));
    }
    let f = &data.funding;
    // As loaded, a settlement's price is the source's own mark at settlement (NaN: none).
    let marks: Vec<Option<f64>> = f.iter().map(|s| s.price.is_finite().then_some(s.price)).collect();
    let settle_ms = f.settle_ms();
    let mut funding = DataFrame::new(
        f.len(),
        vec![
            time_column("ts", &settle_ms)?,
            Column::new("rate".into(), f.rates()),
            Column::new("interval_hours".into(), f.interval_hours()),
            Column::new("mark_price".into(), marks),
        ],
    )?;
    put("funding.parquet", &mut funding)?;
    let mut funding_source = toml::Table::new();
    for (k, v) in [("format", "generic"), ("path", "funding.parquet"), ("time_column", "ts"), ("rate_column", "rate"), ("interval_hours_column", "interval_hours"), ("mark_column", "mark_price")] {
        funding_source.insert(k.into(), toml::Value::String(v.into()));
    }
    sources.insert("funding".into(), toml::Value::Table(funding_source));
    if let Some(staking) = &data.staking {
        let mut frame = DataFrame::new(staking.ts_ms.len(), vec![time_column("time", &staking.ts_ms)?, Column::new("apr".into(), &staking.apr)])?;
        put("staking.parquet", &mut frame)?;
        let mut table = toml::Table::new();
        table.insert("path".into(), toml::Value::String("staking.parquet".into()));
        sources.insert("staking".into(), toml::Value::Table(table));
    }
    // The original config, with [data]'s sources pointing at the Parquet files.
    let mut config = raw.clone();
    let data_table = config
        .as_table_mut()
        .ok_or_else(|| anyhow!("the config is not a table"))?
        .entry("data")
        .or_insert_with(|| toml::Value::Table(Default::default()))
        .as_table_mut()
        .ok_or_else(|| input_error!("[data] is not a table"))?;
    for key in ["freqtrade", "spot", "perp", "mark", "funding", "staking"] {
        data_table.remove(key);
    }
    // Placeholders were dropped on load; the stored perp starts where trading started.
    data_table.insert("skip_listing_placeholders".into(), toml::Value::Boolean(false));
    if data.mark_optional && data.mark.is_some() {
        // A freqtrade directory's mark was found, not configured: it stays optional.
        data_table.insert("mark_optional".into(), toml::Value::Boolean(true));
    }
    data_table.extend(sources);
    // The [data] sources not converted (rates, index, dated contracts) keep reading their own
    // files: a relative path is made absolute from the original config's folder.
    for key in ["cash_rate", "borrow_rate", "index", "dated", "dated_mark"] {
        if let Some(path) = data_table.get_mut(key).and_then(|t| t.get_mut("path")) {
            if let Some(text) = path.as_str() {
                if Path::new(text).is_relative() {
                    let absolute = std::path::absolute(base_dir.join(text)).unwrap_or_else(|_| base_dir.join(text));
                    *path = toml::Value::String(absolute.to_string_lossy().into_owned());
                }
            }
        }
    }
    // Paths elsewhere in the config (a venue preset file) stay relative to the original folder.
    if let Some(preset) = config.get_mut("venue").and_then(|v| v.get_mut("preset")) {
        if let Some(name) = preset.as_str() {
            if !crate::venue::BUILT_IN.iter().any(|(id, _)| *id == name) && Path::new(name).is_relative() {
                let absolute = std::path::absolute(base_dir.join(name)).unwrap_or_else(|_| base_dir.join(name));
                *preset = toml::Value::String(absolute.to_string_lossy().into_owned());
            }
        }
    }
    let text = format!(
        "# Written by `basis data convert`: the original config with [data] reading canonical Parquet.\n{}",
        toml::to_string_pretty(&config).context("writing the converted config")?
    );
    let path = out.join("config.toml");
    let tmp = out.join(".config.toml.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    Ok(written)
}
