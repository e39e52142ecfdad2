//! OKX v5 market history (`https://www.okx.com`, VENUE_APIS.md §3).
//!
//! - Instruments: `BTC-USDT-SWAP` (perp), `BTC-USDT` (spot, and the index family); a
//!   concatenated symbol (`BTCUSDT`) is split at its quote.
//! - Funding: `GET /api/v5/public/funding-rate-history?instId=…&after=…&limit=100`, newest-first,
//!   `after` = "records earlier than" the oldest row's `fundingTime`. The actual rate is
//!   `realizedRate` (`fundingRate` is the predicted one). OKX keeps only about three months.
//!   The interval varies per instrument (8 h → 6/4/2/1 h) and is not in the rows: inferred.
//! - Bars: `/api/v5/market/history-candles` (last), `/history-mark-price-candles`,
//!   `/history-index-candles` with `bar` (`1H`, and the UTC names `6Hutc`, `12Hutc`, `1Dutc`,
//!   `1Wutc`: the plain names of 6 h and longer bars are aligned to Hong Kong time), `after`,
//!   `limit=100` (the 2025-11 docs allow 300, the 2025-04 ones 100). Arrays of strings
//!   `[ts, o, h, l, c, vol, …, confirm]`; a bar with `confirm` = "0" is still open and dropped.
//! - Premium: `/api/v5/public/premium-history` objects `{premium, ts}` (6 months), as bars
//!   whose four prices are the sample.
//! - Open interest: `/api/v5/rubik/stat/contracts/open-interest-history?period=1H&end=…`
//!   arrays `[ts, oi (contracts), oiCcy (coin), oiUsd]`.
//! - Errors: `code` "50011" (with HTTP 200 or 429) is a slow-down; "51001" an unknown
//!   instrument. No `Retry-After` is documented (UNCONFIRMED): the back-off applies.

use anyhow::Result;

use super::{json, ms, num, Api, Cursor, Page, Query, Request, Row, SeriesKind};
use crate::bail_input;

/// OKX v5.
pub struct Okx;

impl Api for Okx {
    fn name(&self) -> &'static str {
        "okx"
    }

    fn default_base_url(&self) -> &'static str {
        "https://www.okx.com"
    }

    fn instrument(&self, symbol: &str, kind: SeriesKind) -> Result<String> {
        let s = symbol.trim().to_ascii_uppercase();
        if s.contains('-') {
            return Ok(s);
        }
        let (base, quote) = (super::base_of(&s), super::quote_of(&s));
        if base == s {
            bail_input!("okx: --symbols {symbol:?}: use BTCUSDT or OKX's own instrument id (BTC-USDT-SWAP)");
        }
        Ok(match kind {
            SeriesKind::Spot | SeriesKind::Index => format!("{base}-{quote}"),
            _ => format!("{base}-{quote}-SWAP"),
        })
    }

    fn bar_name(&self, bar_ms: i64) -> Result<String> {
        let minutes = bar_ms / 60_000;
        Ok(match minutes {
            1 | 3 | 5 | 15 | 30 => format!("{minutes}m"),
            60 | 120 | 240 => format!("{}H", minutes / 60),
            360 | 720 => format!("{}Hutc", minutes / 60),
            1440 => "1Dutc".into(),
            10080 => "1Wutc".into(),
            _ => bail_input!("okx has no {minutes}-minute bars; use 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 12h, 1d or 1w"),
        })
    }

    fn supports(&self, _kind: SeriesKind) -> Result<()> {
        Ok(())
    }

    fn first(&self, q: &Query) -> Cursor {
        // `after` is exclusive: the first page holds rows before the window's end.
        Cursor::Before(q.end_ms)
    }

    fn request(&self, q: &Query, cursor: Cursor) -> Request {
        let Cursor::Before(after) = cursor else { unreachable!("okx pages backward") };
        let bar = self.bar_name(q.bar_ms).unwrap_or_else(|_| "1H".into());
        let id = &q.instrument;
        Request::Get(match q.kind {
            SeriesKind::Funding => format!("/api/v5/public/funding-rate-history?instId={id}&after={after}&limit=100"),
            SeriesKind::Perp | SeriesKind::Spot => format!("/api/v5/market/history-candles?instId={id}&bar={bar}&after={after}&limit=100"),
            SeriesKind::Mark => format!("/api/v5/market/history-mark-price-candles?instId={id}&bar={bar}&after={after}&limit=100"),
            SeriesKind::Index => format!("/api/v5/market/history-index-candles?instId={id}&bar={bar}&after={after}&limit=100"),
            SeriesKind::Premium => format!("/api/v5/public/premium-history?instId={id}&after={after}&limit=100"),
            SeriesKind::OpenInterest => format!("/api/v5/rubik/stat/contracts/open-interest-history?instId={id}&period=1H&end={after}&limit=100"),
        })
    }

    fn parse(&self, q: &Query, _cursor: Cursor, status: u16, body: &str) -> Result<Page> {
        let v = json(body)?;
        let code = v.get("code").map(|c| c.as_str().map(str::to_string).unwrap_or_else(|| c.to_string())).unwrap_or_default();
        match code.as_str() {
            "0" => {}
            "50011" => return Ok(Page::Throttled),
            "51001" => bail_input!("OKX: instrument {} does not exist ({}); a delisted instrument has no history here", q.instrument, v.get("msg").and_then(|m| m.as_str()).unwrap_or("")),
            "" => anyhow::bail!("{}: HTTP {status} without a code", super::PARSE),
            other => bail_input!("OKX answered code {other}: {}", v.get("msg").and_then(|m| m.as_str()).unwrap_or("")),
        }
        let data = v.get("data").and_then(|d| d.as_array()).ok_or_else(|| anyhow::anyhow!("{}: no data", super::PARSE))?;
        let mut rows = Vec::with_capacity(data.len());
        let mut oldest = None::<i64>;
        for item in data {
            let row = match q.kind {
                SeriesKind::Funding => {
                    let realized = num(&item["realizedRate"]).unwrap_or(f64::NAN);
                    let rate = if realized.is_nan() { num(&item["fundingRate"])? } else { realized };
                    Row { ts_ms: ms(&item["fundingTime"])?, values: [rate, f64::NAN, f64::NAN, f64::NAN, 0.0] }
                }
                SeriesKind::Premium => {
                    let p = num(&item["premium"])?;
                    Row { ts_ms: ms(&item["ts"])?, values: [p, p, p, p, f64::NAN] }
                }
                SeriesKind::OpenInterest => {
                    let a = item.as_array().ok_or_else(|| anyhow::anyhow!("{}: an open-interest row is not an array", super::PARSE))?;
                    Row { ts_ms: ms(&a[0])?, values: [num(a.get(2).unwrap_or(&serde_json::Value::Null))?, num(a.get(3).unwrap_or(&serde_json::Value::Null))?, f64::NAN, f64::NAN, f64::NAN] }
                }
                _ => {
                    let a = item.as_array().ok_or_else(|| anyhow::anyhow!("{}: a candle is not an array", super::PARSE))?;
                    if a.len() < 5 {
                        anyhow::bail!("{}: a candle has {} fields, expected at least 5", super::PARSE, a.len());
                    }
                    let t = ms(&a[0])?;
                    oldest = Some(oldest.map_or(t, |o: i64| o.min(t)));
                    // The last field is `confirm`: "0" while the bar is still open.
                    if a.last().and_then(|c| c.as_str()) == Some("0") {
                        continue;
                    }
                    // Volume in the base coin: `volCcy` for a swap (its `vol` is contracts),
                    // `vol` for spot.
                    let volume = match q.kind {
                        SeriesKind::Perp => a.get(6).map(num).transpose()?.unwrap_or(f64::NAN),
                        SeriesKind::Spot => a.get(5).map(num).transpose()?.unwrap_or(f64::NAN),
                        _ => f64::NAN,
                    };
                    Row { ts_ms: t, values: [num(&a[1])?, num(&a[2])?, num(&a[3])?, num(&a[4])?, volume] }
                }
            };
            oldest = Some(oldest.map_or(row.ts_ms, |o: i64| o.min(row.ts_ms)));
            rows.push(row);
        }
        Ok(Page::Rows { rows, next: oldest.map(Cursor::Before) })
    }
}
