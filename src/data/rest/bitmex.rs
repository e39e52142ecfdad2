//! BitMEX v1 (`https://www.bitmex.com/api/v1`, VENUE_APIS.md §7).
//!
//! - Funding: `GET /funding?symbol=XBTUSD&count=500&startTime=…&reverse=false`, oldest-first:
//!   `{timestamp (ISO), symbol, fundingInterval, fundingRate, fundingRateDaily}`. Each row
//!   states its interval as a time after 2000-01-01 (`2000-01-01T08:00:00.000Z` = 8 h).
//! - Bars: `GET /trade/bucketed?symbol=…&binSize=1h&partial=false&count=500&startTime=…`. A
//!   bucket is stamped at the **end** of its period; the catalog stores bars by their open, so
//!   one bin is taken off. Bins: 1m, 5m, 1h, 1d.
//! - Forward paging: `startTime` = the last row's stamp + 1 ms. `count` is capped at 500 (the
//!   maximum is 1000 on `/trade`; for `/funding` and `/trade/bucketed` it is UNCONFIRMED).
//! - 429 with `Retry-After` (seconds); 30 requests a minute unauthenticated.
//! - Symbols: BitMEX calls bitcoin XBT (`BTCUSDT` → `XBTUSDT`, `BTCUSD` → `XBTUSD`).
//! - No mark, index or open-interest history (UNCONFIRMED for index symbols' buckets).

use anyhow::Result;

use super::{iso, iso_ms, json, num, Api, Cursor, Page, Query, Request, Row, SeriesKind};
use crate::bail_input;

/// BitMEX v1.
pub struct Bitmex;

/// 2000-01-01T00:00:00Z, the origin of `fundingInterval`.
const INTERVAL_ORIGIN_MS: i64 = 946_684_800_000;

impl Api for Bitmex {
    fn name(&self) -> &'static str {
        "bitmex"
    }

    fn default_base_url(&self) -> &'static str {
        "https://www.bitmex.com/api/v1"
    }

    fn instrument(&self, symbol: &str, _kind: SeriesKind) -> Result<String> {
        let s = symbol.trim().to_ascii_uppercase();
        if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_') {
            bail_input!("bitmex: --symbols {symbol:?}: use XBTUSD, XBTUSDT or ETHUSDT");
        }
        Ok(match s.strip_prefix("BTC") {
            Some(rest) => format!("XBT{rest}"),
            None => s,
        })
    }

    fn bar_name(&self, bar_ms: i64) -> Result<String> {
        Ok(match bar_ms / 60_000 {
            1 => "1m".into(),
            5 => "5m".into(),
            60 => "1h".into(),
            1440 => "1d".into(),
            m => bail_input!("bitmex buckets are 1m, 5m, 1h or 1d, not {m} minutes"),
        })
    }

    fn supports(&self, kind: SeriesKind) -> Result<()> {
        match kind {
            SeriesKind::Funding | SeriesKind::Perp | SeriesKind::Spot => Ok(()),
            other => bail_input!("bitmex has no REST history of {} (only the current value on /instrument)", other.name()),
        }
    }

    fn first(&self, q: &Query) -> Cursor {
        // Buckets are stamped at their end: the first wanted bar ends one bin after the start.
        Cursor::From(if q.kind == SeriesKind::Funding { q.start_ms } else { q.start_ms + q.bar_ms })
    }

    fn request(&self, q: &Query, cursor: Cursor) -> Request {
        let Cursor::From(from) = cursor else { unreachable!("bitmex pages forward") };
        let s = &q.instrument;
        Request::Get(match q.kind {
            SeriesKind::Funding => format!("/funding?symbol={s}&count=500&reverse=false&startTime={}", iso(from)),
            _ => format!("/trade/bucketed?symbol={s}&binSize={}&partial=false&count=500&reverse=false&startTime={}", self.bar_name(q.bar_ms).unwrap_or_else(|_| "1h".into()), iso(from)),
        })
    }

    fn parse(&self, q: &Query, _cursor: Cursor, status: u16, body: &str) -> Result<Page> {
        let v = json(body)?;
        if let Some(error) = v.get("error") {
            bail_input!("BitMEX answered HTTP {status}: {} (check the symbol, e.g. XBTUSD)", error.get("message").and_then(|m| m.as_str()).unwrap_or(""));
        }
        let list = v.as_array().ok_or_else(|| anyhow::anyhow!("{}: expected a JSON array", super::PARSE))?;
        let mut rows = Vec::with_capacity(list.len());
        let mut last_stamp = None;
        for item in list {
            let stamp = iso_ms(&item["timestamp"])?;
            last_stamp = Some(stamp);
            rows.push(if q.kind == SeriesKind::Funding {
                let interval_hours = match item.get("fundingInterval") {
                    Some(i) if !i.is_null() => (iso_ms(i)? - INTERVAL_ORIGIN_MS) as f64 / 3.6e6,
                    _ => f64::NAN,
                };
                Row { ts_ms: stamp, values: [num(&item["fundingRate"])?, interval_hours, f64::NAN, f64::NAN, 0.0] }
            } else {
                Row { ts_ms: stamp - q.bar_ms, values: [num(&item["open"])?, num(&item["high"])?, num(&item["low"])?, num(&item["close"])?, num(&item["homeNotional"]).or_else(|_| num(&item["volume"])).unwrap_or(f64::NAN)] }
            });
        }
        Ok(Page::Rows { rows, next: last_stamp.map(|t| Cursor::From(t + 1)) })
    }
}
