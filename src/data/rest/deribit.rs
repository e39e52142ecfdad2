//! Deribit v2 public API (`https://www.deribit.com/api/v2`, JSON-RPC over GET, VENUE_APIS.md §6).
//!
//! - Funding: `GET /public/get_funding_rate_history?instrument_name=BTC-PERPETUAL&start_timestamp=
//!   …&end_timestamp=…`, one row per hour, oldest-first: `{timestamp, index_price,
//!   prev_index_price, interest_8h, interest_1h}` (JSON numbers). Deribit's funding accrues
//!   continuously; `interest_1h` is what accrued over the hour, so each row is a 1-hour
//!   settlement at that rate (never `interest_8h` per hour), valued at `index_price`.
//! - Bars: `/public/get_tradingview_chart_data?…&resolution=60`, columnar arrays `{ticks, open,
//!   high, low, close, volume, status}` (`status` "no_data" for an empty window).
//! - Paging is by time window: the row limits are undocumented (ccxt sees about 744 funding
//!   rows and 5,000 bars a call, UNCONFIRMED), so windows of 30 days of funding and 4,000 bars
//!   walk forward.
//! - Errors: `{"error":{"code":10028,"message":"too_many_requests"}}` (and 10066, too many
//!   concurrent requests) are slow-downs.
//! - Instruments: `BTC-PERPETUAL` (inverse, USD); `BTC_USDC-PERPETUAL` for a `…USDC` symbol
//!   (linear naming UNCONFIRMED). No mark or index history for perps, no open interest history.

use anyhow::Result;

use super::{json, ms, num, Api, Cursor, Page, Query, Request, Row, SeriesKind};
use crate::bail_input;

/// Deribit v2.
pub struct Deribit;

const FUNDING_WINDOW_MS: i64 = 30 * 86_400_000;
const BARS_PER_WINDOW: i64 = 4_000;

impl Deribit {
    fn window_end(q: &Query, from: i64) -> i64 {
        let span = if q.kind == SeriesKind::Funding { FUNDING_WINDOW_MS } else { BARS_PER_WINDOW * q.bar_ms };
        (from + span).min(q.end_ms)
    }
}

impl Api for Deribit {
    fn name(&self) -> &'static str {
        "deribit"
    }

    fn default_base_url(&self) -> &'static str {
        "https://www.deribit.com/api/v2"
    }

    fn instrument(&self, symbol: &str, _kind: SeriesKind) -> Result<String> {
        let s = symbol.trim().to_ascii_uppercase();
        if s.contains('-') {
            return Ok(s);
        }
        if s.is_empty() {
            bail_input!("deribit: --symbols is empty; use BTC-PERPETUAL");
        }
        Ok(if s.ends_with("USDC") && s.len() > 4 { format!("{}_USDC-PERPETUAL", super::base_of(&s)) } else { format!("{}-PERPETUAL", super::base_of(&s)) })
    }

    fn bar_name(&self, bar_ms: i64) -> Result<String> {
        Ok(match bar_ms / 60_000 {
            m @ (1 | 3 | 5 | 10 | 15 | 30 | 60 | 120 | 180 | 360 | 720) => m.to_string(),
            1440 => "1D".into(),
            m => bail_input!("deribit has no {m}-minute bars; use 1m, 3m, 5m, 10m, 15m, 30m, 1h, 2h, 3h, 6h, 12h or 1d"),
        })
    }

    fn supports(&self, kind: SeriesKind) -> Result<()> {
        match kind {
            SeriesKind::Funding | SeriesKind::Perp => Ok(()),
            other => bail_input!("deribit has no REST history of {} for perpetuals (mark history is for some options only; the index chart has preset ranges only); the funding rows carry the index price", other.name()),
        }
    }

    fn first(&self, q: &Query) -> Cursor {
        Cursor::From(q.start_ms)
    }

    fn request(&self, q: &Query, cursor: Cursor) -> Request {
        let Cursor::From(from) = cursor else { unreachable!("deribit pages forward") };
        let to = Deribit::window_end(q, from);
        let name = &q.instrument;
        Request::Get(match q.kind {
            SeriesKind::Funding => format!("/public/get_funding_rate_history?instrument_name={name}&start_timestamp={from}&end_timestamp={to}"),
            _ => format!("/public/get_tradingview_chart_data?instrument_name={name}&start_timestamp={from}&end_timestamp={to}&resolution={}", self.bar_name(q.bar_ms).unwrap_or_else(|_| "60".into())),
        })
    }

    fn parse(&self, q: &Query, cursor: Cursor, _status: u16, body: &str) -> Result<Page> {
        let Cursor::From(from) = cursor else { unreachable!("deribit pages forward") };
        let v = json(body)?;
        if let Some(error) = v.get("error") {
            let code = error.get("code").and_then(|c| c.as_i64()).unwrap_or(0);
            if code == 10028 || code == 10066 {
                return Ok(Page::Throttled);
            }
            bail_input!("Deribit answered error {code}: {} (check the instrument name, e.g. BTC-PERPETUAL)", error.get("message").and_then(|m| m.as_str()).unwrap_or(""));
        }
        let to = Deribit::window_end(q, from);
        // The next window starts where this one ended, whatever it held (an empty window
        // inside the history is a gap, not the end).
        let next = if to >= q.end_ms { None } else { Some(Cursor::From(to + 1)) };
        let result = v.get("result").ok_or_else(|| anyhow::anyhow!("{}: no result", super::PARSE))?;
        let mut rows = Vec::new();
        if q.kind == SeriesKind::Funding {
            for item in result.as_array().ok_or_else(|| anyhow::anyhow!("{}: result is not an array", super::PARSE))? {
                rows.push(Row { ts_ms: ms(&item["timestamp"])?, values: [num(&item["interest_1h"])?, 1.0, num(&item["index_price"]).unwrap_or(f64::NAN), f64::NAN, 0.0] });
            }
        } else if result.get("status").and_then(|s| s.as_str()) != Some("no_data") {
            let column = |name: &str| -> Result<Vec<serde_json::Value>> { result.get(name).and_then(|c| c.as_array()).cloned().ok_or_else(|| anyhow::anyhow!("{}: no {name} column", super::PARSE)) };
            let (ticks, open, high, low, close) = (column("ticks")?, column("open")?, column("high")?, column("low")?, column("close")?);
            let volume = column("volume").unwrap_or_default();
            if [open.len(), high.len(), low.len(), close.len()].iter().any(|&n| n != ticks.len()) {
                anyhow::bail!("{}: the chart's columns differ in length", super::PARSE);
            }
            for k in 0..ticks.len() {
                rows.push(Row { ts_ms: ms(&ticks[k])?, values: [num(&open[k])?, num(&high[k])?, num(&low[k])?, num(&close[k])?, volume.get(k).map(num).transpose()?.unwrap_or(f64::NAN)] });
            }
        }
        Ok(Page::Rows { rows, next })
    }

    fn empty_page_ends(&self) -> bool {
        false
    }

    fn usual_interval_hours(&self) -> f64 {
        1.0
    }
}
