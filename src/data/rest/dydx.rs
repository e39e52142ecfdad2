//! dYdX v4 indexer (`https://indexer.dydx.trade/v4`, VENUE_APIS.md §5).
//!
//! - Funding: `GET /historicalFunding/{ticker}?limit=1000&effectiveBeforeOrAtHeight=…` (the first
//!   page `effectiveBeforeOrAt` = the window's end, ISO-8601), newest-first by block height: the
//!   next page is at the oldest row's height − 1, which never repeats a row. Rows `{ticker,
//!   rate, price, effectiveAt (ISO), effectiveAtHeight}`, strings. `rate` is already the
//!   1-hour rate (the protocol's 8-hour value ÷ 8), `price` the oracle price at the tick.
//! - Bars: `GET /candles/perpetualMarkets/{ticker}?resolution=1HOUR&limit=1000&toISO=…`,
//!   newest-first, `toISO` exclusive: the next page ends at the oldest `startedAt`. The
//!   candles' `startingOpenInterest` is the open-interest history.
//! - Perps only: no spot, mark or index bars (the oracle price is in the funding rows).
//! - 429 comes with `Retry-After` in milliseconds (not seconds).

use anyhow::Result;

use super::{iso, iso_ms, json, num, Api, Cursor, Page, Query, Request, Row, SeriesKind};
use crate::bail_input;

/// The dYdX v4 indexer.
pub struct Dydx;

impl Api for Dydx {
    fn name(&self) -> &'static str {
        "dydx"
    }

    fn default_base_url(&self) -> &'static str {
        "https://indexer.dydx.trade/v4"
    }

    fn instrument(&self, symbol: &str, _kind: SeriesKind) -> Result<String> {
        let s = symbol.trim().to_ascii_uppercase();
        if s.contains('-') {
            return Ok(s);
        }
        if s.is_empty() {
            bail_input!("dydx: --symbols is empty; use BTC-USD or BTCUSD");
        }
        Ok(format!("{}-USD", super::base_of(&s)))
    }

    fn bar_name(&self, bar_ms: i64) -> Result<String> {
        Ok(match bar_ms / 60_000 {
            1 => "1MIN".into(),
            5 => "5MINS".into(),
            15 => "15MINS".into(),
            30 => "30MINS".into(),
            60 => "1HOUR".into(),
            240 => "4HOURS".into(),
            1440 => "1DAY".into(),
            m => bail_input!("dydx has no {m}-minute candles; use 1m, 5m, 15m, 30m, 1h, 4h or 1d"),
        })
    }

    fn supports(&self, kind: SeriesKind) -> Result<()> {
        match kind {
            SeriesKind::Funding | SeriesKind::Perp | SeriesKind::OpenInterest => Ok(()),
            SeriesKind::Index => bail_input!("dydx has no index bars; the oracle price at each funding tick is the funding rows' `price` column in the catalog"),
            other => bail_input!("dydx has no {} history (the indexer serves perps: funding, perp candles and open interest)", other.name()),
        }
    }

    fn first(&self, q: &Query) -> Cursor {
        Cursor::Before(q.end_ms)
    }

    fn request(&self, q: &Query, cursor: Cursor) -> Request {
        let t = &q.instrument;
        Request::Get(match (q.kind, cursor) {
            (SeriesKind::Funding, Cursor::Before(end)) => format!("/historicalFunding/{t}?limit=1000&effectiveBeforeOrAt={}", iso(end - 1)),
            (SeriesKind::Funding, Cursor::Height(h)) => format!("/historicalFunding/{t}?limit=1000&effectiveBeforeOrAtHeight={h}"),
            (_, Cursor::Before(end)) => format!("/candles/perpetualMarkets/{t}?resolution={}&limit=1000&fromISO={}&toISO={}", self.bar_name(q.bar_ms).unwrap_or_else(|_| "1HOUR".into()), iso(q.start_ms), iso(end)),
            (_, other) => unreachable!("dydx candles page by time, not {other:?}"),
        })
    }

    fn parse(&self, q: &Query, _cursor: Cursor, status: u16, body: &str) -> Result<Page> {
        if status == 404 || status == 400 {
            bail_input!("HTTP {status}: {} (check the ticker: BTC-USD; a delisted market has no history here)", body.chars().take(200).collect::<String>());
        }
        if !(200..300).contains(&status) {
            bail_input!("HTTP {status}: {}", body.chars().take(200).collect::<String>());
        }
        let v = json(body)?;
        if q.kind == SeriesKind::Funding {
            let list = v.get("historicalFunding").and_then(|l| l.as_array()).ok_or_else(|| anyhow::anyhow!("{}: no historicalFunding", super::PARSE))?;
            let mut rows = Vec::with_capacity(list.len());
            let mut lowest = None::<i64>;
            for item in list {
                let height: i64 = item["effectiveAtHeight"].as_str().and_then(|h| h.parse().ok()).or_else(|| item["effectiveAtHeight"].as_i64()).ok_or_else(|| anyhow::anyhow!("{}: effectiveAtHeight", super::PARSE))?;
                lowest = Some(lowest.map_or(height, |l: i64| l.min(height)));
                rows.push(Row { ts_ms: iso_ms(&item["effectiveAt"])?, values: [num(&item["rate"])?, f64::NAN, num(&item["price"]).unwrap_or(f64::NAN), f64::NAN, 0.0] });
            }
            // Past the window's start: no further page.
            let oldest = rows.iter().map(|r| r.ts_ms).min();
            let next = match (lowest, oldest) {
                (Some(h), Some(t)) if t >= q.start_ms && h > 1 => Some(Cursor::Height(h - 1)),
                _ => None,
            };
            return Ok(Page::Rows { rows, next });
        }
        let list = v.get("candles").and_then(|l| l.as_array()).ok_or_else(|| anyhow::anyhow!("{}: no candles", super::PARSE))?;
        let mut rows = Vec::with_capacity(list.len());
        for item in list {
            let t = iso_ms(&item["startedAt"])?;
            rows.push(if q.kind == SeriesKind::OpenInterest {
                Row { ts_ms: t, values: [num(&item["startingOpenInterest"])?, f64::NAN, f64::NAN, f64::NAN, f64::NAN] }
            } else {
                Row { ts_ms: t, values: [num(&item["open"])?, num(&item["high"])?, num(&item["low"])?, num(&item["close"])?, num(&item["baseTokenVolume"]).unwrap_or(f64::NAN)] }
            });
        }
        let next = rows.iter().map(|r| r.ts_ms).min().map(Cursor::Before);
        Ok(Page::Rows { rows, next })
    }

    fn retry_after_unit_ms(&self) -> u64 {
        1
    }

    fn usual_interval_hours(&self) -> f64 {
        1.0
    }
}
