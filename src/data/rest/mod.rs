//! `basis data fetch VENUE`: history from the venues' public REST APIs (Bybit, OKX,
//! Hyperliquid, dYdX v4, Deribit, BitMEX), page by page, into the local catalog
//! ([`super::catalog`]).
//!
//! Each venue is a small [`Api`]: the request for a page, the parser of its response, and the
//! cursor of the next page. The loop here is shared: it walks the pages from the end of the
//! window back to its start (venues that page newest-first) or from its start forward (those
//! that page oldest-first) and keeps the rows inside the window, de-duplicated. It retries a
//! 429 or a venue's own "too many requests" answer after the venue's `Retry-After` (seconds,
//! or milliseconds on dYdX) or an exponential back-off, retries 5xx answers and bodies that do
//! not parse (a truncated page) a few times, stops at an empty page, and refuses a page that
//! would not move the cursor. Where the venue does not state a settlement's interval it is
//! inferred from the spacing to the previous settlement, and the catalog records which.
//!
//! The facts each venue's module relies on (paths, parameters, limits, paging direction, time
//! units, rate-limit answers) are from `../shared/reference/VENUE_APIS.md` and the venues' own
//! documentation it cites; what that reference marks UNCONFIRMED is named in each module.

pub mod bitmex;
pub mod bybit;
pub mod deribit;
pub mod dydx;
pub mod hyperliquid;
pub mod okx;

use std::time::Duration;

use anyhow::Result;

use crate::{bail_input, input_error};

/// What a series holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SeriesKind {
    /// Funding settlements.
    Funding,
    /// Perp bars (last price).
    Perp,
    /// Spot bars.
    Spot,
    /// Mark-price bars.
    Mark,
    /// Index (oracle) price bars.
    Index,
    /// Premium-index bars (or points).
    Premium,
    /// Open interest.
    OpenInterest,
}

impl SeriesKind {
    /// Every kind, in catalog order.
    pub const ALL: [SeriesKind; 7] = [SeriesKind::Funding, SeriesKind::Perp, SeriesKind::Spot, SeriesKind::Mark, SeriesKind::Index, SeriesKind::Premium, SeriesKind::OpenInterest];

    /// The name used on the command line and as the catalog folder.
    pub fn name(self) -> &'static str {
        match self {
            SeriesKind::Funding => "funding",
            SeriesKind::Perp => "perp",
            SeriesKind::Spot => "spot",
            SeriesKind::Mark => "mark",
            SeriesKind::Index => "index",
            SeriesKind::Premium => "premium",
            SeriesKind::OpenInterest => "open_interest",
        }
    }

    /// A kind from its name.
    pub fn parse(text: &str) -> Result<SeriesKind> {
        SeriesKind::ALL.into_iter().find(|k| k.name() == text.trim()).ok_or_else(|| input_error!("--kinds: {text:?} is not a kind; use {}", SeriesKind::ALL.map(|k| k.name()).join(", ")))
    }

    /// Whether the series is bars (open, high, low, close, volume).
    pub fn is_bars(self) -> bool {
        matches!(self, SeriesKind::Perp | SeriesKind::Spot | SeriesKind::Mark | SeriesKind::Index | SeriesKind::Premium)
    }
}

/// One row of a series: its time (a bar's open, a settlement's time, an open-interest
/// sample's time; epoch ms UTC) and its values, by kind:
/// - bars: open, high, low, close, volume (NaN where the venue gives none);
/// - funding: rate (decimal per interval), interval hours (NaN where the venue does not say,
///   until inferred), the price the venue reports with it (dYdX's oracle, Deribit's index; else
///   NaN), the premium (Hyperliquid; else NaN), and 1 where the interval was inferred (else 0);
/// - open interest: in the base asset, in USD (NaN where not given).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// Epoch ms UTC.
    pub ts_ms: i64,
    /// The values, as above.
    pub values: [f64; 5],
}

/// What one series fetch asks for.
#[derive(Debug, Clone)]
pub struct Query {
    /// What to fetch.
    pub kind: SeriesKind,
    /// The venue's own name for the market, from [`Api::instrument`].
    pub instrument: String,
    /// Window start, epoch ms (inclusive).
    pub start_ms: i64,
    /// Window end, epoch ms (exclusive).
    pub end_ms: i64,
    /// Bar length for bar kinds, ms.
    pub bar_ms: i64,
}

/// Where the next page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// Rows at or before this time (venues that page backward).
    Before(i64),
    /// Rows at or after this time (venues that page forward).
    From(i64),
    /// Rows at or below this block height (dYdX's funding).
    Height(i64),
}

/// An HTTP request for one page.
#[derive(Debug, Clone)]
pub enum Request {
    /// `GET base + path` (the path holds its query string).
    Get(String),
    /// `POST base + path` with a JSON body.
    Post(String, String),
}

/// What a page's body said.
#[derive(Debug)]
pub enum Page {
    /// Rows (any order); `next` is the cursor of the next page, `None` at the end of history.
    Rows {
        /// The page's rows.
        rows: Vec<Row>,
        /// The next page's cursor.
        next: Option<Cursor>,
    },
    /// The venue asked to slow down in the body (Bybit 10006, OKX 50011, Deribit 10028).
    Throttled,
}

/// One venue's REST history API.
pub trait Api: Sync {
    /// The venue's name (`bybit`), the catalog's folder.
    fn name(&self) -> &'static str;
    /// The public API's base URL.
    fn default_base_url(&self) -> &'static str;
    /// The venue's name for `symbol` (`BTCUSDT`, or already the venue's own) as `kind`.
    fn instrument(&self, symbol: &str, kind: SeriesKind) -> Result<String>;
    /// The venue's name for a bar length, or why it has none.
    fn bar_name(&self, bar_ms: i64) -> Result<String>;
    /// Refuse a kind the venue has no history of, saying where it is found instead.
    fn supports(&self, kind: SeriesKind) -> Result<()>;
    /// The first page's cursor.
    fn first(&self, q: &Query) -> Cursor;
    /// The request for the page at `cursor`.
    fn request(&self, q: &Query, cursor: Cursor) -> Request;
    /// Parse a page (`status` is the HTTP status, 2xx or a 4xx the venue answers in JSON).
    fn parse(&self, q: &Query, cursor: Cursor, status: u16, body: &str) -> Result<Page>;
    /// Milliseconds in one unit of the venue's `Retry-After` header (1000: seconds).
    fn retry_after_unit_ms(&self) -> u64 {
        1000
    }
    /// Whether an empty page means the end of history (else the next window is asked for:
    /// venues paged by time window, where a window inside the history may be empty).
    fn empty_page_ends(&self) -> bool {
        true
    }
    /// The interval, hours, a settlement whose spacing says nothing is taken to cover.
    fn usual_interval_hours(&self) -> f64 {
        8.0
    }
}

/// The venue called `name`.
pub fn venue(name: &str) -> Result<&'static dyn Api> {
    Ok(match name {
        "bybit" => &bybit::Bybit,
        "okx" => &okx::Okx,
        "hyperliquid" => &hyperliquid::Hyperliquid,
        "dydx" => &dydx::Dydx,
        "deribit" => &deribit::Deribit,
        "bitmex" => &bitmex::Bitmex,
        other => bail_input!("unknown venue {other:?}; basis data fetch knows binance (the monthly dumps), bybit, okx, hyperliquid, dydx, deribit and bitmex"),
    })
}

/// How the loop waits and retries.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Tries per page before giving up.
    pub attempts: u32,
    /// First back-off where the venue gives no `Retry-After`, ms (doubled each try).
    pub base_ms: u64,
    /// Longest single wait, ms.
    pub max_ms: u64,
    /// Pause between pages, ms (to stay under the venue's rate).
    pub pace_ms: u64,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { attempts: 6, base_ms: 1000, max_ms: 60_000, pace_ms: 100 }
    }
}

/// What a fetch of one series did.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// The rows inside the window, sorted by time, without duplicates.
    pub rows: Vec<Row>,
    /// Pages requested.
    pub pages: usize,
    /// Answers retried (429, the venue's slow-down, 5xx, a body that did not parse).
    pub retries: usize,
    /// The URLs of the first and last page, for the manifest.
    pub urls: Vec<String>,
    /// Findings for the user (history shorter than asked, inferred intervals).
    pub notes: Vec<String>,
}

/// An HTTP client for one venue.
pub struct Client {
    agent: ureq::Agent,
    base_url: String,
    retry: Retry,
}

impl Client {
    /// A client for `base_url`.
    pub fn new(base_url: &str, retry: Retry) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(120))).build().into();
        Client { agent, base_url: base_url.trim_end_matches('/').to_string(), retry }
    }

    /// Send one request: the status, the `Retry-After` header and the body (an error for a
    /// network failure or a body cut short: both retried).
    fn send(&self, request: &Request) -> std::result::Result<(u16, Option<String>, String), String> {
        let response = match request {
            Request::Get(path) => self.agent.get(&format!("{}{path}", self.base_url)).call(),
            Request::Post(path, body) => self.agent.post(&format!("{}{path}", self.base_url)).content_type("application/json").send(body.as_str()),
        };
        let mut response = response.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = response.body_mut().with_config().limit(64 << 20).read_to_string().map_err(|e| format!("reading the body: {e}"))?;
        Ok((status, retry_after, body))
    }

    fn url(&self, request: &Request) -> String {
        match request {
            Request::Get(path) | Request::Post(path, _) => format!("{}{path}", self.base_url),
        }
    }

    /// One page, retried as the module doc says.
    fn page(&self, api: &dyn Api, q: &Query, cursor: Cursor, fetched: &mut Fetched) -> Result<(Vec<Row>, Option<Cursor>)> {
        let request = api.request(q, cursor);
        let url = self.url(&request);
        let mut last_problem = String::new();
        for attempt in 0..self.retry.attempts {
            if attempt > 0 {
                fetched.retries += 1;
            }
            let backoff = (self.retry.base_ms << attempt.min(16)).min(self.retry.max_ms);
            let (status, retry_after, body) = match self.send(&request) {
                Ok(answer) => answer,
                Err(problem) => {
                    last_problem = problem;
                    std::thread::sleep(Duration::from_millis(backoff));
                    continue;
                }
            };
            let wait = |retry_after: &Option<String>| -> u64 {
                retry_after.as_deref().and_then(|v| v.trim().parse::<f64>().ok()).map(|v| (v.max(0.0) * api.retry_after_unit_ms() as f64) as u64).unwrap_or(backoff).min(self.retry.max_ms)
            };
            match status {
                429 => {
                    last_problem = "HTTP 429 Too Many Requests".into();
                    std::thread::sleep(Duration::from_millis(wait(&retry_after)));
                    continue;
                }
                500..=599 => {
                    last_problem = format!("HTTP {status}");
                    std::thread::sleep(Duration::from_millis(wait(&retry_after)));
                    continue;
                }
                _ => {}
            }
            match api.parse(q, cursor, status, &body) {
                Ok(Page::Throttled) => {
                    last_problem = "the venue asked to slow down".into();
                    std::thread::sleep(Duration::from_millis(wait(&retry_after)));
                }
                Ok(Page::Rows { rows, next }) => return Ok((rows, next)),
                Err(err) if err.to_string().starts_with(PARSE) => {
                    // A body cut short or garbled in transit: asked again.
                    last_problem = err.to_string();
                    std::thread::sleep(Duration::from_millis(backoff));
                }
                Err(err) => return Err(input_error!("{}: {url}: {err:#}", api.name())),
            }
        }
        bail_input!("{}: {url}: gave up after {} tries: {last_problem}. Run the command again later: what was fetched is kept, and the fetch resumes from it", api.name(), self.retry.attempts)
    }

    /// Fetch `q` page by page.
    pub fn fetch(&self, api: &dyn Api, q: &Query) -> Result<Fetched> {
        api.supports(q.kind)?;
        let mut fetched = Fetched::default();
        let mut cursor = api.first(q);
        let mut rows: Vec<Row> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            if fetched.pages > 0 && self.retry.pace_ms > 0 {
                std::thread::sleep(Duration::from_millis(self.retry.pace_ms));
            }
            let url = self.url(&api.request(q, cursor));
            if fetched.urls.len() < 2 {
                fetched.urls.push(url.clone());
            } else {
                fetched.urls[1] = url.clone();
            }
            let (page, next) = self.page(api, q, cursor, &mut fetched)?;
            fetched.pages += 1;
            if page.is_empty() && (next.is_none() || api.empty_page_ends()) {
                break;
            }
            for row in page {
                if row.ts_ms >= q.start_ms && row.ts_ms < q.end_ms && seen.insert(row.ts_ms) {
                    rows.push(row);
                }
            }
            match next {
                None => break,
                Some(next) if next == cursor => bail_input!("{}: {url}: the page did not move the cursor ({next:?}); the venue's paging may have changed, report it", api.name()),
                Some(next) => {
                    let done = match next {
                        Cursor::Before(t) => t < q.start_ms,
                        Cursor::From(t) => t >= q.end_ms,
                        Cursor::Height(_) => false,
                    };
                    cursor = next;
                    if done {
                        break;
                    }
                }
            }
            if fetched.pages > 1_000_000 {
                bail_input!("{}: more than a million pages; narrow --start/--end", api.name());
            }
        }
        rows.sort_by_key(|r| r.ts_ms);
        if let (Some(first), true) = (rows.first(), q.kind != SeriesKind::OpenInterest) {
            let slack = if q.kind == SeriesKind::Funding { 8 * 3_600_000 * 3 } else { q.bar_ms * 3 };
            if first.ts_ms > q.start_ms + slack {
                fetched.notes.push(format!(
                    "{} {} {}: the venue's history starts at {}, after --start {} (a listing, or the venue keeps less history: OKX keeps about 3 months of funding, Hyperliquid the newest 5000 candles)",
                    api.name(),
                    q.kind.name(),
                    q.instrument,
                    crate::time::format_ms(first.ts_ms),
                    crate::time::format_ms(q.start_ms)
                ));
            }
        }
        if q.kind == SeriesKind::Funding {
            let missing = rows.iter().filter(|r| r.values[1].is_nan()).count();
            if missing > 0 {
                infer_intervals(&mut rows, api.usual_interval_hours());
                fetched.notes.push(format!("{} funding {}: the venue does not state each settlement's interval; {missing} were inferred from the spacing to the previous settlement (interval_inferred = true in the catalog)", api.name(), q.instrument));
            }
        }
        fetched.rows = rows;
        Ok(fetched)
    }
}

/// A parse error's prefix: such a page is asked for again (a truncated body).
pub const PARSE: &str = "unreadable response";

/// Parse a JSON body, as a retryable error when it does not parse.
pub fn json(body: &str) -> Result<serde_json::Value> {
    serde_json::from_str(body).map_err(|e| anyhow::anyhow!("{PARSE}: {e} (body starts {:?})", body.chars().take(120).collect::<String>()))
}

/// A number the venue sends as a JSON number or a string; NaN for null or empty.
pub fn num(value: &serde_json::Value) -> Result<f64> {
    match value {
        serde_json::Value::Number(n) => n.as_f64().ok_or_else(|| anyhow::anyhow!("{PARSE}: {n} is not a number")),
        serde_json::Value::String(s) if s.is_empty() => Ok(f64::NAN),
        serde_json::Value::String(s) => s.trim().parse::<f64>().map_err(|_| anyhow::anyhow!("{PARSE}: {s:?} is not a number")),
        serde_json::Value::Null => Ok(f64::NAN),
        other => Err(anyhow::anyhow!("{PARSE}: {other} is not a number")),
    }
}

/// Epoch ms the venue sends as a number or a string of digits.
pub fn ms(value: &serde_json::Value) -> Result<i64> {
    match value {
        serde_json::Value::Number(n) => n.as_i64().ok_or_else(|| anyhow::anyhow!("{PARSE}: {n} is not epoch ms")),
        serde_json::Value::String(s) => s.trim().parse::<i64>().map_err(|_| anyhow::anyhow!("{PARSE}: {s:?} is not epoch ms")),
        other => Err(anyhow::anyhow!("{PARSE}: {other} is not epoch ms")),
    }
}

/// Epoch ms of an ISO-8601 time (`2025-12-08T16:00:00.219Z`).
pub fn iso_ms(value: &serde_json::Value) -> Result<i64> {
    let text = value.as_str().ok_or_else(|| anyhow::anyhow!("{PARSE}: {value} is not an ISO-8601 time"))?;
    chrono::DateTime::parse_from_rfc3339(text).map(|t| t.timestamp_millis()).map_err(|e| anyhow::anyhow!("{PARSE}: {text:?}: {e}"))
}

/// An ISO-8601 time with milliseconds, `Z`.
pub fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The base asset of a symbol written as the concatenation (`BTCUSDT` → `BTC`), or the symbol.
pub fn base_of(symbol: &str) -> String {
    let s = symbol.trim().to_ascii_uppercase();
    for quote in ["USDT", "USDC", "USD"] {
        if let Some(base) = s.strip_suffix(quote).filter(|b| !b.is_empty()) {
            return base.to_string();
        }
    }
    s
}

/// The quote of a concatenated symbol (`BTCUSDT` → `USDT`), default `USDT`.
pub fn quote_of(symbol: &str) -> &'static str {
    let s = symbol.trim().to_ascii_uppercase();
    ["USDT", "USDC", "USD"].into_iter().find(|q| s.ends_with(q) && s.len() > q.len()).unwrap_or("USDT")
}

/// Fill each row's missing interval from the spacing to the previous settlement, as the
/// funding loaders do ([`super::infer_interval_hours`]).
fn infer_intervals(rows: &mut [Row], usual_hours: f64) {
    let settle: Vec<i64> = rows.iter().map(|r| (r.ts_ms + 500).div_euclid(1000) * 1000).collect();
    let mut hours: Vec<f64> = rows.iter().map(|r| r.values[1]).collect();
    super::infer_interval_hours(&settle, &mut hours, Some(usual_hours));
    for (row, h) in rows.iter_mut().zip(hours) {
        if row.values[1].is_nan() {
            row.values[1] = h;
            row.values[4] = 1.0;
        }
    }
}

/// Bars of `ms` as a bar length: `1h` → 3,600,000.
pub fn parse_bar(text: &str) -> Result<i64> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: i64 = number.parse().map_err(|_| input_error!("--bar {text:?}: use 1m, 5m, 15m, 1h, 4h, 1d"))?;
    let unit_ms = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => bail_input!("--bar {text:?}: use 1m, 5m, 15m, 1h, 4h, 1d"),
    };
    if n <= 0 {
        bail_input!("--bar {text:?}: the length must be positive");
    }
    Ok(n * unit_ms)
}
