//! Hyperliquid (`POST https://api.hyperliquid.xyz/info`, VENUE_APIS.md §4).
//!
//! - Funding: `{"type":"fundingHistory","coin":"BTC","startTime":…,"endTime":…}`, oldest-first,
//!   at most 500 rows a response: the next page starts at the last row's `time` + 1 (the start
//!   is inclusive). Rows `{coin, fundingRate, premium, time}` (strings, `time` an integer ms
//!   with a few ms of jitter: `1683849600048` is the 00:00 settlement). Funding is hourly now
//!   and was 8-hourly before about 2023-06-08; the rows do not say, so the interval is inferred.
//! - Premium: the same rows' `premium`, as one-point bars.
//! - Bars: `{"type":"candleSnapshot","req":{"coin","interval":"1h","startTime","endTime"}}`,
//!   objects `{t (open ms), T, o, h, l, c, v, n}`, oldest-first. Only the newest 5,000 bars of
//!   each interval exist (1 m covers about 3.5 days).
//! - No REST history of mark, oracle (index) or open interest: those are in the S3 archive's
//!   `asset_ctxs` files, which this command does not read.
//! - Coins: `BTC`, `kPEPE`; a concatenated symbol (`BTCUSDT`) is cut at its quote.
//! - 429 answers the rate limit (1,200 weight a minute); no `Retry-After` is documented.

use anyhow::Result;

use super::{json, ms, num, Api, Cursor, Page, Query, Request, Row, SeriesKind};
use crate::bail_input;

/// Hyperliquid's info endpoint.
pub struct Hyperliquid;

impl Api for Hyperliquid {
    fn name(&self) -> &'static str {
        "hyperliquid"
    }

    fn default_base_url(&self) -> &'static str {
        "https://api.hyperliquid.xyz"
    }

    fn instrument(&self, symbol: &str, _kind: SeriesKind) -> Result<String> {
        let s = symbol.trim();
        if s.is_empty() {
            bail_input!("hyperliquid: --symbols is empty; use a coin such as BTC");
        }
        // `kPEPE` keeps its case; `BTCUSDT` and `btc` become `BTC`.
        let upper = s.to_ascii_uppercase();
        Ok(if s.chars().any(|c| c.is_ascii_lowercase()) && s.chars().any(|c| c.is_ascii_uppercase()) { s.to_string() } else { super::base_of(&upper) })
    }

    fn bar_name(&self, bar_ms: i64) -> Result<String> {
        let minutes = bar_ms / 60_000;
        Ok(match minutes {
            1 | 3 | 5 | 15 | 30 => format!("{minutes}m"),
            60 | 120 | 240 | 480 | 720 => format!("{}h", minutes / 60),
            1440 => "1d".into(),
            4320 => "3d".into(),
            10080 => "1w".into(),
            _ => bail_input!("hyperliquid has no {minutes}-minute candles; use 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 8h, 12h, 1d, 3d or 1w"),
        })
    }

    fn supports(&self, kind: SeriesKind) -> Result<()> {
        match kind {
            SeriesKind::Funding | SeriesKind::Premium | SeriesKind::Perp | SeriesKind::Spot => Ok(()),
            other => bail_input!(
                "hyperliquid has no REST history of {}: its mark, oracle (index) and open-interest history is only in the S3 archive's asset_ctxs files (s3://hyperliquid-archive/asset_ctxs/, requester pays); load those with format = \"generic\"",
                other.name()
            ),
        }
    }

    fn first(&self, q: &Query) -> Cursor {
        Cursor::From(q.start_ms)
    }

    fn request(&self, q: &Query, cursor: Cursor) -> Request {
        let Cursor::From(start) = cursor else { unreachable!("hyperliquid pages forward") };
        let end = q.end_ms - 1;
        let coin = serde_json::Value::String(q.instrument.clone());
        let body = match q.kind {
            SeriesKind::Funding | SeriesKind::Premium => serde_json::json!({"type": "fundingHistory", "coin": coin, "startTime": start, "endTime": end}),
            _ => serde_json::json!({"type": "candleSnapshot", "req": {"coin": coin, "interval": self.bar_name(q.bar_ms).unwrap_or_else(|_| "1h".into()), "startTime": start, "endTime": end}}),
        };
        Request::Post("/info".into(), body.to_string())
    }

    fn parse(&self, q: &Query, _cursor: Cursor, status: u16, body: &str) -> Result<Page> {
        if !(200..300).contains(&status) {
            bail_input!("HTTP {status}: {}", body.chars().take(200).collect::<String>());
        }
        let v = json(body)?;
        let list = v.as_array().ok_or_else(|| anyhow::anyhow!("{}: expected a JSON array", super::PARSE))?;
        let mut rows = Vec::with_capacity(list.len());
        for item in list {
            rows.push(match q.kind {
                SeriesKind::Funding => Row { ts_ms: ms(&item["time"])?, values: [num(&item["fundingRate"])?, f64::NAN, f64::NAN, num(&item["premium"]).unwrap_or(f64::NAN), 0.0] },
                SeriesKind::Premium => {
                    let p = num(&item["premium"])?;
                    // Stamped at the settlement's hour, the jitter dropped.
                    let t = (ms(&item["time"])? + 500).div_euclid(1000) * 1000;
                    Row { ts_ms: t, values: [p, p, p, p, f64::NAN] }
                }
                _ => Row { ts_ms: ms(&item["t"])?, values: [num(&item["o"])?, num(&item["h"])?, num(&item["l"])?, num(&item["c"])?, num(&item["v"]).unwrap_or(f64::NAN)] },
            });
        }
        let step = if q.kind.is_bars() && q.kind != SeriesKind::Premium { q.bar_ms } else { 1 };
        let next = list.last().map(|last| -> Result<Cursor> {
            let t = if q.kind.is_bars() && q.kind != SeriesKind::Premium { ms(&last["t"])? } else { ms(&last["time"])? };
            Ok(Cursor::From(t + step))
        });
        Ok(Page::Rows { rows, next: next.transpose()? })
    }

    fn usual_interval_hours(&self) -> f64 {
        1.0
    }
}
