//! `basis data fetch binance`: download Binance's public monthly dumps (data.binance.vision)
//! into a local cache that mirrors the site's layout, so the loaders read them as they are.
//!
//! Every file comes with a `.CHECKSUM` (SHA-256). A file already present with a matching
//! checksum is skipped; a download goes to `<file>.part` and resumes from its length with an
//! HTTP Range request; the finished file is verified before it is renamed into place. A month
//! the site does not have (404) is reported, not an error.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{bail_input, input_error};

/// What to fetch: a dump kind and, for klines, the bar interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Spot klines at the given bar interval (e.g. `1h`).
    Spot(String),
    /// USDⓈ-M perpetual klines at the given bar interval.
    Perp(String),
    /// USDⓈ-M mark-price klines at the given bar interval.
    Mark(String),
    /// USDⓈ-M index-price klines at the given bar interval.
    Index(String),
    /// USDⓈ-M premium-index klines at the given bar interval.
    Premium(String),
    /// USDⓈ-M funding-rate settlements (no interval).
    Funding,
    /// Quarterly delivery-contract klines at the given bar interval: every contract live over
    /// the months asked for (`BTCUSDT_240329`; COIN-M `BTCUSD_240329` for a `...USD` symbol).
    Delivery(String),
}

impl Kind {
    /// `spot-1h`, `perp-1m`, `mark-1h`, `index-1h`, `premium-1h` or `funding`.
    pub fn parse(text: &str) -> Result<Kind> {
        let text = text.trim();
        if text == "funding" {
            return Ok(Kind::Funding);
        }
        const INTERVALS: [&str; 14] = ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "1w"];
        let kind = text.split_once('-').filter(|(_, i)| INTERVALS.contains(i)).and_then(|(k, i)| {
            let i = i.to_string();
            Some(match k {
                "spot" => Kind::Spot(i),
                "perp" => Kind::Perp(i),
                "mark" => Kind::Mark(i),
                "index" => Kind::Index(i),
                "premium" => Kind::Premium(i),
                "delivery" => Kind::Delivery(i),
                _ => return None,
            })
        });
        kind.ok_or_else(|| input_error!("--kinds: {text:?} is not a kind; use spot-1h, perp-1h, mark-1h, index-1h, premium-1h, delivery-1h (any of 1m..1w) or funding"))
    }

    /// The file's path on the site (and in the cache) for `symbol` and month `YYYY-MM`.
    pub fn remote_path(&self, symbol: &str, month: &str) -> String {
        let klines = |market: &str, kind: &str, interval: &str| format!("data/{market}/monthly/{kind}/{symbol}/{interval}/{symbol}-{interval}-{month}.zip");
        match self {
            Kind::Spot(i) => klines("spot", "klines", i),
            Kind::Perp(i) => klines("futures/um", "klines", i),
            Kind::Mark(i) => klines("futures/um", "markPriceKlines", i),
            Kind::Index(i) => klines("futures/um", "indexPriceKlines", i),
            Kind::Premium(i) => klines("futures/um", "premiumIndexKlines", i),
            Kind::Funding => format!("data/futures/um/monthly/fundingRate/{symbol}/{symbol}-fundingRate-{month}.zip"),
            // `symbol` is the contract here; COIN-M contracts (`BTCUSD_...`) live under `cm`.
            Kind::Delivery(i) => klines(if symbol.split('_').next().is_some_and(|base| base.ends_with("USD")) { "futures/cm" } else { "futures/um" }, "klines", i),
        }
    }
}

/// `YYYY-MM` as (year, month) (months from [`months`] are well formed).
fn month_key(month: &str) -> (i32, u32) {
    let (y, m) = month.split_once('-').unwrap_or(("0", "0"));
    (y.parse().unwrap_or(0), m.parse().unwrap_or(0))
}

/// Months `from..=to` as `YYYY-MM`.
pub fn months(from: &str, to: &str) -> Result<Vec<String>> {
    let parse = |s: &str| -> Result<(i32, u32)> {
        let (y, m) = s.split_once('-').ok_or_else(|| input_error!("month {s:?}: use YYYY-MM, e.g. 2023-01"))?;
        let (y, m) = (y.parse::<i32>().ok(), m.parse::<u32>().ok());
        match (y, m) {
            (Some(y), Some(m)) if (1..=12).contains(&m) && (2017..=2100).contains(&y) => Ok((y, m)),
            _ => bail_input!("month {s:?}: use YYYY-MM, e.g. 2023-01"),
        }
    };
    let (mut y, mut m) = parse(from)?;
    let end = parse(to)?;
    if (y, m) > end {
        bail_input!("--from {from} is after --to {to}");
    }
    let mut out = Vec::new();
    while (y, m) <= end {
        out.push(format!("{y:04}-{m:02}"));
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    Ok(out)
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Downloaded (bytes transferred; fewer than the file when a partial download resumed).
    Downloaded {
        /// Bytes transferred by this call.
        bytes: u64,
        /// Length of the `.part` file the download resumed from, bytes (0: a fresh download).
        resumed_from: u64,
    },
    /// Already present with a matching checksum.
    Present,
    /// The site has no such file (404).
    Missing,
}

/// Fetches files from a base URL with one HTTP agent.
pub struct Fetcher {
    agent: ureq::Agent,
    base_url: String,
}

impl Fetcher {
    /// A fetcher for `base_url` (e.g. <https://data.binance.vision>).
    pub fn new(base_url: &str) -> Fetcher {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .into();
        Fetcher { agent, base_url: base_url.trim_end_matches('/').to_string() }
    }

    fn get(&self, remote: &str, range_from: u64) -> Result<(u16, ureq::http::Response<ureq::Body>)> {
        let url = format!("{}/{remote}", self.base_url);
        let mut request = self.agent.get(&url);
        if range_from > 0 {
            request = request.header("Range", format!("bytes={range_from}-"));
        }
        let response = request.call().map_err(|err| input_error!("GET {url}: {err}. Check the network, or --base-url"))?;
        Ok((response.status().as_u16(), response))
    }

    /// Fetch one file into `cache/<remote>`, verified, resuming a partial download.
    pub fn fetch(&self, remote: &str, cache: &Path) -> Result<Outcome> {
        let local = cache.join(remote);
        let sidecar = PathBuf::from(format!("{}.CHECKSUM", local.display()));
        if local.is_file() && sidecar.is_file() && super::read::verify_checksum(&local).is_ok() {
            return Ok(Outcome::Present);
        }
        let (status, mut response) = self.get(&format!("{remote}.CHECKSUM"), 0)?;
        match status {
            404 => return Ok(Outcome::Missing),
            200 => {}
            other => bail_input!("GET {}/{remote}.CHECKSUM: HTTP {other}", self.base_url),
        }
        let checksum_text = response.body_mut().read_to_string().map_err(|e| input_error!("reading {remote}.CHECKSUM: {e}"))?;
        let expected = super::read::checksum_of(&checksum_text).ok_or_else(|| input_error!("{remote}.CHECKSUM: not a SHA-256 checksum"))?;
        if let Some(parent) = local.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let part = PathBuf::from(format!("{}.part", local.display()));
        let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        let (status, mut response) = self.get(remote, have)?;
        let (mut file, resumed_from) = match status {
            206 => (std::fs::OpenOptions::new().append(true).open(&part).with_context(|| format!("opening {}", part.display()))?, have),
            200 => (std::fs::File::create(&part).with_context(|| format!("creating {}", part.display()))?, 0),
            416 => (std::fs::OpenOptions::new().append(true).open(&part).with_context(|| format!("opening {}", part.display()))?, have),
            404 => return Ok(Outcome::Missing),
            other => bail_input!("GET {}/{remote}: HTTP {other}", self.base_url),
        };
        let mut bytes = 0u64;
        if status != 416 {
            let mut reader = response.body_mut().with_config().limit(u64::MAX).reader();
            let mut buffer = vec![0u8; 1 << 16];
            loop {
                let n = reader.read(&mut buffer).map_err(|e| input_error!("downloading {remote}: {e}; run the command again to resume"))?;
                if n == 0 {
                    break;
                }
                file.write_all(&buffer[..n]).with_context(|| format!("writing {}", part.display()))?;
                bytes += n as u64;
            }
        }
        file.sync_all().ok();
        drop(file);
        let actual = crate::data::read::sha256_streamed(&part)?;
        if actual != expected {
            std::fs::remove_file(&part).ok();
            bail_input!("{remote}: downloaded SHA-256 {actual} does not match the published {expected}; the partial file was removed, run the command again");
        }
        std::fs::rename(&part, &local).with_context(|| format!("moving {} into place", local.display()))?;
        std::fs::write(&sidecar, checksum_text).with_context(|| format!("writing {}", sidecar.display()))?;
        Ok(Outcome::Downloaded { bytes, resumed_from })
    }
}

/// One fetched file.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The file's path on the site and under the cache, e.g. `data/spot/monthly/klines/...zip`.
    pub remote: String,
    /// What happened to it.
    pub outcome: Outcome,
}

/// Fetch every kind × month for a symbol, with a progress bar.
pub fn fetch_binance(base_url: &str, cache: &Path, symbol: &str, kinds: &[Kind], months: &[String], progress: bool) -> Result<Vec<Fetched>> {
    let symbol = symbol.trim().to_ascii_uppercase();
    if symbol.is_empty() || !symbol.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail_input!("--symbol {symbol:?}: use a Binance symbol such as ETHUSDT");
    }
    let fetcher = Fetcher::new(base_url);
    // (kind, symbol or contract, month) for every file wanted.
    let mut wanted: Vec<(&Kind, String, &String)> = Vec::new();
    for kind in kinds {
        if let Kind::Delivery(_) = kind {
            let (Some(first), Some(last)) = (months.first(), months.last()) else { continue };
            for (contract, listed, delivered) in crate::data::dated::quarterly_contracts(&symbol, month_key(first), month_key(last)) {
                // Only the months the contract was live: from its listing to its delivery.
                for month in months.iter().filter(|m| (listed..=delivered).contains(&month_key(m))) {
                    wanted.push((kind, contract.clone(), month));
                }
            }
        } else {
            wanted.extend(months.iter().map(|month| (kind, symbol.clone(), month)));
        }
    }
    let total = wanted.len() as u64;
    let bar = if progress { ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()) } else { ProgressBar::hidden() };
    bar.set_style(ProgressStyle::with_template("{spinner} {wide_bar} {pos}/{len} files {msg}").map_err(|e| anyhow::anyhow!("{e}"))?);
    let mut out = Vec::new();
    for (kind, symbol, month) in wanted {
        let remote = kind.remote_path(&symbol, month);
        bar.set_message(remote.rsplit('/').next().unwrap_or("").to_string());
        let outcome = fetcher.fetch(&remote, cache)?;
        out.push(Fetched { remote, outcome });
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}
