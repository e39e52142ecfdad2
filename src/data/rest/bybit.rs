//! Bybit v5 market history (`https://api.bybit.com`, VENUE_APIS.md §2).
//!
//! - Funding: `GET /v5/market/funding/history?category=linear&symbol=…&endTime=…&limit=200`.
//!   Passing `startTime` alone is an error, so pages walk backward from the window's end with
//!   `endTime` = the oldest row's time − 1. Rows newest-first: `fundingRate`,
//!   `fundingRateTimestamp` (strings, ms). No interval in the rows: inferred from the spacing.
//! - Bars: `/v5/market/kline` (perp: `category=linear`, spot: `category=spot`),
//!   `/mark-price-kline`, `/index-price-kline`, `/premium-index-price-kline`, with `interval`
//!   in minutes (`60`) or `D`/`W`, `end` and `limit=1000`: arrays of strings `[start, o, h, l, c,
//!   (volume, turnover)]`, newest-first. Only `end` is sent: which end of a wider `start..end`
//!   window Bybit keeps is UNCONFIRMED, and walking back from `end` needs neither.
//! - Open interest: `/v5/market/open-interest?intervalTime=1h&endTime=…&limit=200` (base coin
//!   for linear), newest-first.
//! - Errors: `retCode` 10006 "Too many visits" is a slow-down; HTTP 403 "access too frequent"
//!   is an IP ban of at least 10 minutes; 10001 a bad parameter (an unknown or delisted symbol).

use anyhow::Result;

use super::{json, ms, num, Api, Cursor, Page, Query, Request, Row, SeriesKind};
use crate::{bail_input, input_error};

/// Bybit v5.
pub struct Bybit;

impl Api for Bybit {
    fn name(&self) -> &'static str {
        "bybit"
    }

    fn default_base_url(&self) -> &'static str {
        "https://api.bybit.com"
    }

    fn instrument(&self, symbol: &str, _kind: SeriesKind) -> Result<String> {
        let s = symbol.trim().to_ascii_uppercase();
        if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
            bail_input!("bybit: --symbols {symbol:?}: use Bybit's symbol, e.g. BTCUSDT");
        }
        Ok(s)
    }

    fn bar_name(&self, bar_ms: i64) -> Result<String> {
        let minutes = bar_ms / 60_000;
        Ok(match minutes {
            1 | 3 | 5 | 15 | 30 | 60 | 120 | 240 | 360 | 720 => minutes.to_string(),
            1440 => "D".into(),
            10080 => "W".into(),
            _ => bail_input!("bybit has no {minutes}-minute bars; use 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 12h, 1d or 1w"),
        })
    }

    fn supports(&self, _kind: SeriesKind) -> Result<()> {
        Ok(())
    }

    fn first(&self, q: &Query) -> Cursor {
        Cursor::Before(q.end_ms - 1)
    }

    fn request(&self, q: &Query, cursor: Cursor) -> Request {
        let Cursor::Before(end) = cursor else { unreachable!("bybit pages backward") };
        let bar = self.bar_name(q.bar_ms).unwrap_or_else(|_| "60".into());
        let s = &q.instrument;
        Request::Get(match q.kind {
            SeriesKind::Funding => format!("/v5/market/funding/history?category=linear&symbol={s}&endTime={end}&limit=200"),
            SeriesKind::Perp => format!("/v5/market/kline?category=linear&symbol={s}&interval={bar}&end={end}&limit=1000"),
            SeriesKind::Spot => format!("/v5/market/kline?category=spot&symbol={s}&interval={bar}&end={end}&limit=1000"),
            SeriesKind::Mark => format!("/v5/market/mark-price-kline?category=linear&symbol={s}&interval={bar}&end={end}&limit=1000"),
            SeriesKind::Index => format!("/v5/market/index-price-kline?category=linear&symbol={s}&interval={bar}&end={end}&limit=1000"),
            SeriesKind::Premium => format!("/v5/market/premium-index-price-kline?category=linear&symbol={s}&interval={bar}&end={end}&limit=1000"),
            SeriesKind::OpenInterest => format!("/v5/market/open-interest?category=linear&symbol={s}&intervalTime=1h&endTime={end}&limit=200"),
        })
    }

    fn parse(&self, q: &Query, _cursor: Cursor, status: u16, body: &str) -> Result<Page> {
        if status == 403 {
            bail_input!("HTTP 403: Bybit answers \"access too frequent\" with an IP ban of at least 10 minutes; wait, then run the command again (it resumes)");
        }
        let v = json(body)?;
        let code = v.get("retCode").and_then(|c| c.as_i64()).ok_or_else(|| anyhow::anyhow!("{}: no retCode in {:?}", super::PARSE, body.chars().take(120).collect::<String>()))?;
        match code {
            0 => {}
            10006 => return Ok(Page::Throttled),
            10001 => bail_input!("Bybit refused the parameters ({}): check the symbol (a delisted symbol has no history here)", v.get("retMsg").and_then(|m| m.as_str()).unwrap_or("")),
            other => bail_input!("Bybit answered retCode {other}: {}", v.get("retMsg").and_then(|m| m.as_str()).unwrap_or("")),
        }
        let list = v.pointer("/result/list").and_then(|l| l.as_array()).ok_or_else(|| anyhow::anyhow!("{}: no result.list", super::PARSE))?;
        let mut rows = Vec::with_capacity(list.len());
        for item in list {
            rows.push(match q.kind {
                SeriesKind::Funding => Row { ts_ms: ms(&item["fundingRateTimestamp"])?, values: [num(&item["fundingRate"])?, f64::NAN, f64::NAN, f64::NAN, 0.0] },
                SeriesKind::OpenInterest => Row { ts_ms: ms(&item["timestamp"])?, values: [num(&item["openInterest"])?, f64::NAN, f64::NAN, f64::NAN, f64::NAN] },
                _ => {
                    let a = item.as_array().ok_or_else(|| input_error!("{}: a kline row is not an array", super::PARSE))?;
                    if a.len() < 5 {
                        anyhow::bail!("{}: a kline row has {} fields, expected at least 5", super::PARSE, a.len());
                    }
                    let volume = a.get(5).map(num).transpose()?.unwrap_or(f64::NAN);
                    Row { ts_ms: ms(&a[0])?, values: [num(&a[1])?, num(&a[2])?, num(&a[3])?, num(&a[4])?, volume] }
                }
            });
        }
        let next = rows.iter().map(|r| r.ts_ms).min().map(|oldest| Cursor::Before(oldest - 1));
        Ok(Page::Rows { rows, next })
    }
}
