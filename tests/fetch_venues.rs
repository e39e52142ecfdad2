//! `basis data fetch VENUE` for Bybit, OKX, Hyperliquid, dYdX, Deribit and BitMEX, against a
//! local HTTP server started here that plays each venue: its documented paths, parameters, page
//! limits, paging direction, order, time units and envelopes (VENUE_APIS.md), serving real rows
//! from `../shared/data` converted into the API's shape where we hold them (Bybit, OKX,
//! Hyperliquid, dYdX; Deribit and BitMEX rows are made here: no history of theirs is held). On
//! top: a 429 (with `Retry-After` in seconds, and in milliseconds on dYdX), a 503, a truncated
//! body, an empty page, a page size below the one asked for, an interval change, a delisted
//! symbol, Bybit's IP ban, a resume that asks only for the missing window, `basis data list`,
//! and a config that names its data by catalog. No test touches the internet.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::real_data_dir;
use polars::prelude::*;

const HOUR: i64 = 3_600_000;

/// A response: status, extra headers, body.
type Response = (u16, Vec<(String, String)>, Vec<u8>);
/// A venue: (method, path with query, body) → response.
type Handler = Arc<dyn Fn(&str, &str, &str) -> Response + Send + Sync>;

/// Serve `handler` on a local port; every request's target is logged.
fn serve(handler: Handler, log: Arc<Mutex<Vec<String>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let handler = handler.clone();
            let log = log.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let target = parts.next().unwrap_or("/").to_string();
                let mut length = 0usize;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                    if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; length];
                reader.read_exact(&mut body).ok();
                let body = String::from_utf8_lossy(&body).to_string();
                log.lock().unwrap().push(format!("{method} {target} {body}"));
                let (status, headers, payload) = handler(&method, &target, &body);
                let mut stream = stream;
                let mut head = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nConnection: close\r\n");
                for (k, v) in &headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                // A truncated body: the length promises more than is sent.
                let promised = headers.iter().find(|(k, _)| k == "X-Promise").and_then(|(_, v)| v.parse::<usize>().ok()).unwrap_or(payload.len());
                head.push_str(&format!("Content-Length: {promised}\r\n\r\n"));
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&payload);
            });
        }
    });
    address
}

fn ok(body: String) -> Response {
    (200, vec![], body.into_bytes())
}

/// The query parameter `key` of `target`.
fn param(target: &str, key: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v.to_string()))
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn iso_ms(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
}

fn ms(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&format!("{text}T00:00:00Z")).unwrap().timestamp_millis()
}

/// A catalog folder of its own.
fn temp_root(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("basis-fetch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn basis(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_basis")).args(args).output().unwrap()
}

#[track_caller]
fn fetch_ok(venue: &str, base: &str, root: &Path, symbols: &str, kinds: &str, start: &str, end: &str) -> String {
    let out = basis(&["data", "fetch", venue, "--symbols", symbols, "--kinds", kinds, "--start", start, "--end", end, "--out", root.to_str().unwrap(), "--base-url", base, "--pace-ms", "0", "--backoff-ms", "5"]);
    assert!(out.status.success(), "fetch {venue} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The catalog's rows of a series: (time, values by column).
fn catalog_rows(root: &Path, venue: &str, kind: &str, symbol: &str) -> (Vec<i64>, BTreeMap<String, Vec<Option<f64>>>) {
    let kind = basis::data::rest::SeriesKind::parse(kind).unwrap();
    let dir = basis::data::catalog::series_dir(root, venue, kind, symbol);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "parquet")).collect();
    files.sort();
    let mut ts = Vec::new();
    let mut columns: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    for file in files {
        let frame = ParquetReader::new(std::fs::File::open(&file).unwrap()).finish().unwrap();
        let time = if frame.column("ts").is_ok() { "ts" } else { "open_time" };
        assert_eq!(frame.column(time).unwrap().dtype(), &DataType::Datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC)), "{}: UTC milliseconds", file.display());
        ts.extend(frame.column(time).unwrap().cast(&DataType::Int64).unwrap().i64().unwrap().iter().map(|v| v.unwrap()));
        for c in frame.columns() {
            if c.name().as_str() == time {
                continue;
            }
            let values: Vec<Option<f64>> = c.cast(&DataType::Float64).unwrap().f64().unwrap().iter().collect();
            columns.entry(c.name().to_string()).or_default().extend(values);
        }
    }
    (ts, columns)
}

fn feather(path: &Path) -> DataFrame {
    IpcReader::new(std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).finish().unwrap()
}

/// (open ms, [o, h, l, c, v]) and (settle ms, rate) of a freqtrade folder's files.
fn freqtrade_bars(path: &Path) -> Vec<(i64, [f64; 5])> {
    let f = feather(path);
    let t: Vec<i64> = f.column("date").unwrap().cast(&DataType::Datetime(TimeUnit::Milliseconds, None)).unwrap().cast(&DataType::Int64).unwrap().i64().unwrap().iter().map(|v| v.unwrap()).collect();
    let col = |n: &str| -> Vec<f64> { f.column(n).unwrap().cast(&DataType::Float64).unwrap().f64().unwrap().iter().map(|v| v.unwrap()).collect() };
    let (o, h, l, c, v) = (col("open"), col("high"), col("low"), col("close"), col("volume"));
    (0..t.len()).map(|i| (t[i], [o[i], h[i], l[i], c[i], v[i]])).collect()
}

fn freqtrade_funding(path: &Path) -> Vec<(i64, f64)> {
    freqtrade_bars(path).into_iter().map(|(t, v)| (t, v[0])).collect()
}

/// Rows of the multi-venue table for `venue`/BTC: (ms, values).
fn multivenue(file: &str, venue: &str, columns: &[&str]) -> Vec<(i64, Vec<f64>)> {
    let f = ParquetReader::new(std::fs::File::open(real_data_dir().join("multivenue-hourly").join(file)).unwrap()).finish().unwrap();
    let text = |n: &str| -> Vec<String> { f.column(n).unwrap().str().unwrap().iter().map(|v| v.unwrap_or("").to_string()).collect() };
    let (venues, coins) = (text("venue"), text("coin"));
    let all_t: Vec<i64> = f.column("timestamp").unwrap().cast(&DataType::Datetime(TimeUnit::Milliseconds, None)).unwrap().cast(&DataType::Int64).unwrap().i64().unwrap().iter().map(|v| v.unwrap()).collect();
    let all_values: Vec<Vec<f64>> = columns.iter().map(|c| f.column(c).unwrap().f64().unwrap().iter().map(|v| v.unwrap()).collect()).collect();
    let mut keep: Vec<usize> = (0..all_t.len()).filter(|&i| venues[i] == venue && coins[i] == "BTC").collect();
    keep.sort_by_key(|&i| all_t[i]);
    let t: Vec<i64> = keep.iter().map(|&i| all_t[i]).collect();
    let values: Vec<Vec<f64>> = all_values.iter().map(|v| keep.iter().map(|&i| v[i]).collect()).collect();
    (0..t.len()).map(|i| (t[i], values.iter().map(|v| v[i]).collect())).collect()
}

fn have_real_data(folder: &str) -> bool {
    let there = real_data_dir().join(folder).is_dir();
    if !there {
        assert!(std::env::var_os("CI").is_none(), "{folder} is missing from ../shared/data: under CI the venue fetchers are tested on it");
    }
    there
}

/// Fault injection: the n-th request (0-based) gets a fault instead of its answer.
#[derive(Clone, Default)]
struct Faults {
    count: Arc<AtomicUsize>,
    at: Arc<Mutex<BTreeMap<usize, Response>>>,
}

impl Faults {
    fn new(faults: Vec<(usize, Response)>) -> Faults {
        Faults { count: Arc::new(AtomicUsize::new(0)), at: Arc::new(Mutex::new(faults.into_iter().collect())) }
    }
    fn next(&self) -> Option<Response> {
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        self.at.lock().unwrap().remove(&n)
    }
}

fn too_many(retry_after: &str) -> Response {
    (429, vec![("Retry-After".into(), retry_after.into())], b"{}".to_vec())
}

fn unavailable() -> Response {
    (503, vec![], b"Service Unavailable".to_vec())
}

fn truncated(body: &str) -> Response {
    let cut = &body.as_bytes()[..body.len() / 2];
    (200, vec![("X-Promise".into(), cut.len().to_string())], cut.to_vec())
}

// ---------------------------------------------------------------- Bybit

/// Bybit v5: funding (200 rows a page, `endTime`, newest-first) and linear klines (1000 a
/// page, `end`, newest-first, arrays of strings), `retCode` envelope.
fn bybit(funding: Vec<(i64, f64)>, bars: Vec<(i64, [f64; 5])>, faults: Faults) -> Handler {
    Arc::new(move |_, target, _| {
        if let Some(fault) = faults.next() {
            return fault;
        }
        let symbol = param(target, "symbol").unwrap_or_default();
        if symbol != "BTCUSDT" {
            return ok(r#"{"retCode":10001,"retMsg":"params error: symbol invalid","result":{},"retExtInfo":{},"time":1}"#.into());
        }
        let envelope = |list: String| ok(format!(r#"{{"retCode":0,"retMsg":"OK","result":{{"category":"linear","list":[{list}]}},"retExtInfo":{{}},"time":1700000000000}}"#));
        if target.starts_with("/v5/market/funding/history") {
            if param(target, "startTime").is_some() && param(target, "endTime").is_none() {
                return ok(r#"{"retCode":10001,"retMsg":"startTime only","result":{},"retExtInfo":{},"time":1}"#.into());
            }
            let end: i64 = param(target, "endTime").map(|e| e.parse().unwrap()).unwrap_or(i64::MAX);
            let limit: usize = param(target, "limit").map(|l| l.parse::<usize>().unwrap().min(200)).unwrap_or(200);
            let rows: Vec<String> = funding.iter().rev().filter(|(t, _)| *t <= end).take(limit).map(|(t, r)| format!(r#"{{"symbol":"BTCUSDT","fundingRate":"{r}","fundingRateTimestamp":"{t}"}}"#)).collect();
            return envelope(rows.join(","));
        }
        if target.starts_with("/v5/market/kline") {
            assert_eq!(param(target, "interval").as_deref(), Some("60"));
            let end: i64 = param(target, "end").map(|e| e.parse().unwrap()).unwrap_or(i64::MAX);
            let limit: usize = param(target, "limit").map(|l| l.parse::<usize>().unwrap().min(1000)).unwrap_or(200);
            let rows: Vec<String> = bars.iter().rev().filter(|(t, _)| *t <= end).take(limit).map(|(t, v)| format!(r#"["{t}","{}","{}","{}","{}","{}","0"]"#, v[0], v[1], v[2], v[3], v[4])).collect();
            return envelope(rows.join(","));
        }
        (404, vec![], b"{}".to_vec())
    })
}

/// Bybit on real BTCUSDT rows (freqtrade-bybit-1h), 2024-01-01 → 2024-06-01: three funding
/// pages and four kline pages, a 429 (Retry-After in seconds), a 503 and a truncated body on
/// the way; every rate and price arrives as in the file, the 8 h interval is inferred and said
/// so, and a second fetch over a longer window asks only for the new months.
#[test]
fn bybit_real_rows_with_faults_and_resume() {
    if !have_real_data("freqtrade-bybit-1h") {
        return;
    }
    let dir = real_data_dir().join("freqtrade-bybit-1h/bybit/futures");
    let funding = freqtrade_funding(&dir.join("BTC_USDT_USDT-1h-funding_rate.feather"));
    let bars = freqtrade_bars(&dir.join("BTC_USDT_USDT-1h-futures.feather"));
    let faults = Faults::new(vec![(0, too_many("0")), (2, unavailable()), (4, truncated(r#"{"retCode":0,"retMsg":"OK","result":{"category":"linear","list":[]}}"#))]);
    let log = Arc::new(Mutex::new(Vec::new()));
    let base = serve(bybit(funding.clone(), bars.clone(), faults), log.clone());
    let root = temp_root("bybit");
    let out = fetch_ok("bybit", &base, &root, "BTCUSDT", "funding,perp", "2024-01-01", "2024-06-01");
    assert!(out.contains("bybit funding BTCUSDT"), "{out}");
    assert!(out.contains("inferred from the spacing"), "{out}");
    let (start, end) = (ms("2024-01-01"), ms("2024-06-01"));
    let want_funding: Vec<(i64, f64)> = funding.iter().copied().filter(|(t, _)| *t >= start && *t < end).collect();
    let (ts, cols) = catalog_rows(&root, "bybit", "funding", "BTCUSDT");
    assert_eq!(ts, want_funding.iter().map(|r| r.0).collect::<Vec<_>>());
    assert_eq!(cols["rate"].iter().map(|r| r.unwrap()).collect::<Vec<_>>(), want_funding.iter().map(|r| r.1).collect::<Vec<_>>());
    assert!(cols["interval_hours"].iter().all(|h| *h == Some(8.0)));
    assert!(cols["interval_inferred"].iter().all(|b| *b == Some(1.0)));
    let want_bars: Vec<(i64, [f64; 5])> = bars.iter().copied().filter(|(t, _)| *t >= start && *t < end).collect();
    let (ts, cols) = catalog_rows(&root, "bybit", "perp", "BTCUSDT");
    assert_eq!(ts, want_bars.iter().map(|r| r.0).collect::<Vec<_>>());
    assert_eq!(cols["close"].iter().map(|r| r.unwrap()).collect::<Vec<_>>(), want_bars.iter().map(|r| r.1[3]).collect::<Vec<_>>());
    assert_eq!(cols["high"].iter().map(|r| r.unwrap()).collect::<Vec<_>>(), want_bars.iter().map(|r| r.1[1]).collect::<Vec<_>>());
    let first_run = log.lock().unwrap().len();
    // Extended to July: only June onwards is asked for (the pages' end bounds are all past June 1).
    let out = fetch_ok("bybit", &base, &root, "BTCUSDT", "funding,perp", "2024-01-01", "2024-07-01");
    assert!(out.contains("rows fetched"), "{out}");
    let requests: Vec<String> = log.lock().unwrap()[first_run..].to_vec();
    for r in &requests {
        let end: i64 = param(r.split_whitespace().nth(1).unwrap(), "endTime").or_else(|| param(r.split_whitespace().nth(1).unwrap(), "end")).unwrap().parse().unwrap();
        assert!(end >= ms("2024-06-01") - 8 * HOUR, "a resumed fetch asked for old rows again: {r}");
    }
    let (ts, _) = catalog_rows(&root, "bybit", "funding", "BTCUSDT");
    assert_eq!(ts.len(), funding.iter().filter(|(t, _)| *t >= start && *t < ms("2024-07-01")).count());
    // The same window again: nothing asked.
    let before = log.lock().unwrap().len();
    let out = fetch_ok("bybit", &base, &root, "BTCUSDT", "funding", "2024-02-01", "2024-07-01");
    assert!(out.contains("already covered"), "{out}");
    assert_eq!(log.lock().unwrap().len(), before);
    // `basis data list` shows what was fetched.
    let list = basis(&["data", "list", "--root", root.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success());
    let funding_line = text.lines().find(|l| l.starts_with("bybit") && l.contains("funding")).unwrap_or_else(|| panic!("{text}"));
    assert!(funding_line.contains(&ts.len().to_string()) && funding_line.contains("2024-01-01 00:00:00Z") && funding_line.contains("8h"), "{funding_line}");
    let perp_line = text.lines().find(|l| l.contains(" perp ")).unwrap();
    assert!(perp_line.contains("1h"), "{perp_line}");
}

/// A delisted or unknown symbol (retCode 10001) and Bybit's IP ban (HTTP 403) stop the fetch
/// with what to do; nothing is written.
#[test]
fn bybit_refusals_are_clear() {
    let base = serve(bybit(vec![(ms("2024-01-01"), 0.0001)], vec![], Faults::default()), Arc::new(Mutex::new(Vec::new())));
    let root = temp_root("bybit-refusals");
    let out = basis(&["data", "fetch", "bybit", "--symbols", "LUNAUSDT", "--kinds", "funding", "--start", "2024-01-01", "--end", "2024-02-01", "--out", root.to_str().unwrap(), "--base-url", &base, "--pace-ms", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("delisted") && err.contains("symbol"), "{err}");
    assert!(!root.join("bybit").exists());
    let banned = serve(Arc::new(|_: &str, _: &str, _: &str| (403, vec![], b"access too frequent".to_vec())), Arc::new(Mutex::new(Vec::new())));
    let out = basis(&["data", "fetch", "bybit", "--symbols", "BTCUSDT", "--kinds", "funding", "--start", "2024-01-01", "--end", "2024-02-01", "--out", root.to_str().unwrap(), "--base-url", &banned, "--pace-ms", "0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("10 minutes"), "{err}");
}

/// Persistent 503s give up after the tries, naming the URL and saying the fetch resumes.
#[test]
fn persistent_errors_give_up_with_the_url() {
    let base = serve(Arc::new(|_: &str, _: &str, _: &str| unavailable()), Arc::new(Mutex::new(Vec::new())));
    let root = temp_root("give-up");
    let out = basis(&["data", "fetch", "okx", "--symbols", "BTCUSDT", "--kinds", "funding", "--start", "2024-01-01", "--end", "2024-02-01", "--out", root.to_str().unwrap(), "--base-url", &base, "--pace-ms", "0", "--backoff-ms", "1", "--attempts", "3"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("gave up after 3 tries") && err.contains("funding-rate-history") && err.contains("HTTP 503") && err.contains("resumes"), "{err}");
}

// ---------------------------------------------------------------- OKX

/// OKX v5: `after` (exclusive), newest-first, at most 100 a page, strings, `code` envelope;
/// candles carry `confirm` (the newest bar still open); 50011 in the body is a slow-down.
fn okx(funding: Vec<(i64, f64)>, bars: Vec<(i64, Vec<f64>)>, faults: Faults) -> Handler {
    Arc::new(move |_, target, _| {
        if let Some(fault) = faults.next() {
            return fault;
        }
        let after: i64 = param(target, "after").map(|a| a.parse().unwrap()).unwrap_or(i64::MAX);
        let limit = param(target, "limit").map(|l| l.parse::<usize>().unwrap().min(100)).unwrap_or(100);
        let id = param(target, "instId").unwrap_or_default();
        if id != "BTC-USDT-SWAP" {
            return ok(r#"{"code":"51001","msg":"Instrument ID does not exist","data":[]}"#.into());
        }
        if target.starts_with("/api/v5/public/funding-rate-history") {
            let rows: Vec<String> = funding
                .iter()
                .rev()
                .filter(|(t, _)| *t < after)
                .take(limit)
                .map(|(t, r)| format!(r#"{{"formulaType":"withRate","fundingRate":"0.00001","fundingTime":"{t}","instId":"BTC-USDT-SWAP","instType":"SWAP","method":"current_period","realizedRate":"{r}"}}"#))
                .collect();
            return ok(format!(r#"{{"code":"0","msg":"","data":[{}]}}"#, rows.join(",")));
        }
        if target.starts_with("/api/v5/market/history-candles") {
            assert_eq!(param(target, "bar").as_deref(), Some("1H"));
            let newest = bars.last().map(|b| b.0).unwrap_or(0);
            let rows: Vec<String> = bars
                .iter()
                .rev()
                .filter(|(t, _)| *t < after)
                .take(limit)
                .map(|(t, v)| format!(r#"["{t}","{}","{}","{}","{}","{}","{}","{}","{}"]"#, v[0], v[1], v[2], v[3], v[4] * 100.0, v[4], v[4] * v[3], if *t == newest { "0" } else { "1" }))
                .collect();
            return ok(format!(r#"{{"code":"0","msg":"","data":[{}]}}"#, rows.join(",")));
        }
        (404, vec![], b"{}".to_vec())
    })
}

/// OKX on the multi-venue table's real BTC rows: 283 funding settlements (3 pages) and 2,160
/// hourly candles (22 pages), with a 50011 slow-down in the body and a 429; the realized rate
/// is stored, the open bar is dropped, and the volume in coins is kept.
#[test]
fn okx_real_rows() {
    if !have_real_data("multivenue-hourly") {
        return;
    }
    let funding: Vec<(i64, f64)> = multivenue("funding_rates.parquet", "okx", &["funding_rate"]).into_iter().map(|(t, v)| (t, v[0])).collect();
    let bars = multivenue("candles.parquet", "okx", &["o", "h", "l", "c", "v"]);
    let faults = Faults::new(vec![(1, ok(r#"{"msg":"Too Many Requests","code":"50011"}"#.into())), (5, too_many("0"))]);
    let base = serve(okx(funding.clone(), bars.clone(), faults), Arc::new(Mutex::new(Vec::new())));
    let root = temp_root("okx");
    fetch_ok("okx", &base, &root, "BTCUSDT", "funding,perp", "2025-12-01", "2026-03-08");
    let (ts, cols) = catalog_rows(&root, "okx", "funding", "BTCUSDT");
    assert_eq!(ts, funding.iter().map(|r| r.0).collect::<Vec<_>>());
    assert_eq!(cols["rate"].iter().map(|r| r.unwrap()).collect::<Vec<_>>(), funding.iter().map(|r| r.1).collect::<Vec<_>>());
    let (ts, cols) = catalog_rows(&root, "okx", "perp", "BTCUSDT");
    assert_eq!(ts.len(), bars.len() - 1, "the open bar is dropped");
    assert_eq!(ts, bars[..bars.len() - 1].iter().map(|r| r.0).collect::<Vec<_>>());
    assert_eq!(cols["close"].iter().map(|r| r.unwrap()).collect::<Vec<_>>(), bars[..bars.len() - 1].iter().map(|r| r.1[3]).collect::<Vec<_>>());
    assert_eq!(cols["volume"].iter().map(|r| r.unwrap()).collect::<Vec<_>>(), bars[..bars.len() - 1].iter().map(|r| r.1[4]).collect::<Vec<_>>(), "volCcy, in coins");
}

// ---------------------------------------------------------------- Hyperliquid

/// Hyperliquid: POST /info, fundingHistory from `startTime` (inclusive) to `endTime`,
/// oldest-first, at most 500 a response; integer ms times.
fn hyperliquid(funding: Vec<(i64, f64)>, faults: Faults) -> Handler {
    Arc::new(move |method, target, body| {
        if let Some(fault) = faults.next() {
            return fault;
        }
        assert_eq!((method, target), ("POST", "/info"));
        let request: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(request["type"], "fundingHistory");
        let coin = request["coin"].as_str().unwrap();
        if coin != "BTC" {
            return ok("[]".into());
        }
        let (start, end) = (request["startTime"].as_i64().unwrap(), request["endTime"].as_i64().unwrap_or(i64::MAX));
        let rows: Vec<String> = funding.iter().filter(|(t, _)| *t >= start && *t <= end).take(500).map(|(t, r)| format!(r#"{{"coin":"BTC","fundingRate":"{r}","premium":"-0.0003","time":{t}}}"#)).collect();
        ok(format!("[{}]", rows.join(",")))
    })
}

/// Hyperliquid on its real BTC funding (freqtrade-hyperliquid-1h), 2023-05-12 → 2023-07-01:
/// 8-hourly until 2023-06-08, hourly after, stamped a few ms late. Two pages of 500 and a
/// third; the stored times keep their ms; the interval is inferred per row (8 h, then 1 h from
/// the first hourly settlement), and the loader reads the catalog with its jitter rounded away.
#[test]
fn hyperliquid_real_rows_interval_change() {
    if !have_real_data("freqtrade-hyperliquid-1h") {
        return;
    }
    let funding = freqtrade_funding(&real_data_dir().join("freqtrade-hyperliquid-1h/hyperliquid/futures/BTC_USDC_USDC-1h-funding_rate.feather"));
    let base = serve(hyperliquid(funding.clone(), Faults::new(vec![(1, too_many("0"))])), Arc::new(Mutex::new(Vec::new())));
    let root = temp_root("hyperliquid");
    fetch_ok("hyperliquid", &base, &root, "BTCUSDT", "funding", "2023-05-12", "2023-07-01");
    let want: Vec<(i64, f64)> = funding.iter().copied().filter(|(t, _)| *t >= ms("2023-05-12") && *t < ms("2023-07-01")).collect();
    assert!(want.len() > 600, "{} rows: two pages of 500", want.len());
    assert!(want.iter().any(|(t, _)| t % 1000 != 0), "the stamps carry ms jitter");
    let (ts, cols) = catalog_rows(&root, "hyperliquid", "funding", "BTCUSDT");
    assert_eq!(ts, want.iter().map(|r| r.0).collect::<Vec<_>>());
    assert_eq!(cols["rate"].iter().map(|r| r.unwrap()).collect::<Vec<_>>(), want.iter().map(|r| r.1).collect::<Vec<_>>());
    let hours: Vec<f64> = cols["interval_hours"].iter().map(|h| h.unwrap()).collect();
    let switch = ts.iter().position(|&t| t >= ms("2023-06-08") + HOUR - 1000).unwrap();
    assert!(hours[..switch - 1].iter().all(|&h| h == 8.0), "8-hourly before the switch");
    assert!(hours[switch..].iter().all(|&h| h == 1.0), "hourly after it");
    assert_eq!(cols["premium"][0], Some(-0.0003));
    // The funding loader reads the catalog series: times rounded to the second, the
    // intervals from the column.
    let source = basis::data::catalog::funding_source(&root, "hyperliquid", "BTCUSDT").unwrap().unwrap();
    let series = basis::data::load_funding(&source, "BTCUSDT", &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!(series.len(), want.len());
    assert!(series.settle_ms().iter().all(|t| t % 1000 == 0));
    assert_eq!(series.interval_hours(), hours);
}

// ---------------------------------------------------------------- dYdX

/// dYdX v4 indexer: historicalFunding newest-first by height, `effectiveBeforeOrAt` (ISO) or
/// `effectiveBeforeOrAtHeight`, capped here at 100 rows a page whatever `limit` asks (the
/// production cap is UNCONFIRMED); 429 with Retry-After in milliseconds.
fn dydx(funding: Vec<(i64, f64, f64)>, faults: Faults) -> Handler {
    Arc::new(move |_, target, _| {
        if let Some(fault) = faults.next() {
            return fault;
        }
        assert!(target.starts_with("/historicalFunding/BTC-USD?"), "{target}");
        // Heights: 1,000,000 + the row's index.
        let upto = match (param(target, "effectiveBeforeOrAtHeight"), param(target, "effectiveBeforeOrAt")) {
            (Some(h), _) => h.parse::<i64>().unwrap() - 1_000_000,
            (None, Some(t)) => funding.iter().rposition(|r| r.0 <= iso_ms(&t.replace("%3A", ":"))).map(|i| i as i64).unwrap_or(-1),
            _ => funding.len() as i64 - 1,
        };
        let rows: Vec<String> = (0..=upto.max(-1)).rev().take(100).map(|i| {
            let (t, r, p) = funding[i as usize];
            format!(r#"{{"ticker":"BTC-USD","rate":"{r}","price":"{p}","effectiveAtHeight":"{}","effectiveAt":"{}"}}"#, 1_000_000 + i, iso(t))
        }).collect();
        ok(format!(r#"{{"historicalFunding":[{}]}}"#, rows.join(",")))
    })
}

/// dYdX on the multi-venue table's real BTC funding (1,000 hourly rates with ms jitter, per
/// hour already): ten pages at the 100-row cap, a 429 whose Retry-After is milliseconds (a
/// 200 000 read as seconds would stall the test), the oracle price kept in `price`.
#[test]
fn dydx_real_rows_retry_after_in_ms() {
    if !have_real_data("multivenue-hourly") {
        return;
    }
    let funding: Vec<(i64, f64, f64)> = multivenue("funding_rates.parquet", "dydx", &["funding_rate"]).into_iter().enumerate().map(|(i, (t, v))| (t, v[0], 90_000.0 + i as f64)).collect();
    let base = serve(dydx(funding.clone(), Faults::new(vec![(2, too_many("20"))])), Arc::new(Mutex::new(Vec::new())));
    let root = temp_root("dydx");
    let started = std::time::Instant::now();
    fetch_ok("dydx", &base, &root, "BTC-USD", "funding", "2026-01-01", "2026-04-01");
    assert!(started.elapsed().as_secs() < 15, "Retry-After 20 is 20 ms on dYdX");
    let (ts, cols) = catalog_rows(&root, "dydx", "funding", "BTC-USD");
    assert_eq!(ts, funding.iter().map(|r| r.0).collect::<Vec<_>>());
    assert_eq!(cols["rate"].iter().map(|r| r.unwrap()).collect::<Vec<_>>(), funding.iter().map(|r| r.1).collect::<Vec<_>>());
    assert_eq!(cols["price"].iter().map(|r| r.unwrap()).collect::<Vec<_>>(), funding.iter().map(|r| r.2).collect::<Vec<_>>());
    assert!(cols["interval_hours"].iter().all(|h| *h == Some(1.0)));
}

// ---------------------------------------------------------------- Deribit

/// Deribit: get_funding_rate_history over a time window (inclusive), oldest-first, JSON
/// numbers; an error object with code 10028 is a slow-down. The rows are made here (no Deribit
/// history is held), with an empty month in the middle (a gap, not the end).
#[test]
fn deribit_windows_and_gap() {
    let start = ms("2024-01-01");
    let rows: Vec<(i64, f64)> = (0..24 * 100).map(|h| (start + h * HOUR, 1e-6 * (h % 7) as f64)).filter(|(t, _)| !(*t >= ms("2024-02-05") && *t < ms("2024-03-10"))).collect();
    let faults = Faults::new(vec![(1, ok(r#"{"jsonrpc":"2.0","error":{"code":10028,"message":"too_many_requests"}}"#.into()))]);
    let served = rows.clone();
    let handler: Handler = Arc::new(move |_, target, _| {
        if let Some(fault) = faults.next() {
            return fault;
        }
        assert!(target.starts_with("/public/get_funding_rate_history?instrument_name=BTC-PERPETUAL"), "{target}");
        let (from, to): (i64, i64) = (param(target, "start_timestamp").unwrap().parse().unwrap(), param(target, "end_timestamp").unwrap().parse().unwrap());
        assert!(to - from <= 31 * 24 * HOUR, "windows under 744 rows");
        let list: Vec<String> = served.iter().filter(|(t, _)| *t >= from && *t <= to).map(|(t, r)| format!(r#"{{"timestamp":{t},"index_price":42000.5,"prev_index_price":41999.0,"interest_8h":{},"interest_1h":{r}}}"#, r * 8.0)).collect();
        ok(format!(r#"{{"jsonrpc":"2.0","id":1,"result":[{}],"usIn":1,"usOut":2,"usDiff":1,"testnet":false}}"#, list.join(",")))
    });
    let base = serve(handler, Arc::new(Mutex::new(Vec::new())));
    let root = temp_root("deribit");
    fetch_ok("deribit", &base, &root, "BTC", "funding", "2024-01-01", "2024-04-10");
    let (ts, cols) = catalog_rows(&root, "deribit", "funding", "BTC");
    assert_eq!(ts, rows.iter().map(|r| r.0).collect::<Vec<_>>(), "rows after the empty month are fetched too");
    assert_eq!(cols["rate"].iter().map(|r| r.unwrap()).collect::<Vec<_>>(), rows.iter().map(|r| r.1).collect::<Vec<_>>(), "interest_1h, not interest_8h");
    assert!(cols["interval_hours"].iter().all(|h| *h == Some(1.0)));
    assert!(cols["interval_inferred"].iter().all(|b| *b == Some(0.0)), "hourly records by construction");
    let list = String::from_utf8_lossy(&basis(&["data", "list", "--root", root.to_str().unwrap()]).stdout).to_string();
    assert!(list.contains("1: 2024-02-04 23:00:00Z -> 2024-03-10 00:00:00Z"), "the gap is listed: {list}");
}

// ---------------------------------------------------------------- BitMEX

/// BitMEX: forward from `startTime` (ISO), `count` ≤ 500, oldest-first, JSON numbers; funding
/// rows state their interval (`2000-01-01T08:00:00.000Z` = 8 h, then 4 h here); buckets are
/// stamped at the end of their hour and stored by their open. Rows made here.
#[test]
fn bitmex_interval_from_rows_and_bucket_ends() {
    let start = ms("2024-01-01");
    let mut funding = Vec::new();
    let mut t = start + 4 * HOUR;
    while t < ms("2024-04-01") {
        let hours = if t < ms("2024-03-01") { 8 } else { 4 };
        funding.push((t, 1e-5 * ((t / HOUR) % 11) as f64, hours));
        t += hours * HOUR;
    }
    let buckets: Vec<(i64, f64)> = (1..=1200).map(|h| (start + h * HOUR, 40_000.0 + h as f64)).collect();
    let (f, b) = (funding.clone(), buckets.clone());
    let faults = Faults::new(vec![(0, unavailable()), (3, truncated("[]"))]);
    let handler: Handler = Arc::new(move |_, target, _| {
        if let Some(fault) = faults.next() {
            return fault;
        }
        let from = iso_ms(&param(target, "startTime").unwrap().replace("%3A", ":"));
        let count: usize = param(target, "count").unwrap().parse().unwrap();
        assert!(count <= 500);
        if target.starts_with("/funding?") {
            let rows: Vec<String> = f.iter().filter(|r| r.0 >= from).take(count).map(|(t, r, h)| format!(r#"{{"timestamp":"{}","symbol":"XBTUSD","fundingInterval":"2000-01-01T{h:02}:00:00.000Z","fundingRate":{r},"fundingRateDaily":{}}}"#, iso(*t), r * 3.0)).collect();
            return ok(format!("[{}]", rows.join(",")));
        }
        assert!(target.starts_with("/trade/bucketed?symbol=XBTUSD&binSize=1h"), "{target}");
        let rows: Vec<String> = b.iter().filter(|r| r.0 >= from).take(count).map(|(t, c)| format!(r#"{{"timestamp":"{}","symbol":"XBTUSD","open":{},"high":{},"low":{},"close":{c},"trades":5,"volume":100,"homeNotional":0.5}}"#, iso(*t), c - 1.0, c + 2.0, c - 3.0)).collect();
        ok(format!("[{}]", rows.join(",")))
    });
    let base = serve(handler, Arc::new(Mutex::new(Vec::new())));
    let root = temp_root("bitmex");
    fetch_ok("bitmex", &base, &root, "BTCUSD", "funding,perp", "2024-01-01", "2024-02-15");
    let (ts, cols) = catalog_rows(&root, "bitmex", "funding", "BTCUSD");
    let want: Vec<_> = funding.iter().filter(|r| r.0 < ms("2024-02-15")).collect();
    assert_eq!(ts, want.iter().map(|r| r.0).collect::<Vec<_>>());
    assert!(cols["interval_inferred"].iter().all(|b| *b == Some(0.0)));
    fetch_ok("bitmex", &base, &root, "BTCUSD", "funding", "2024-01-01", "2024-04-01");
    let (_, cols) = catalog_rows(&root, "bitmex", "funding", "BTCUSD");
    let hours: Vec<f64> = cols["interval_hours"].iter().map(|h| h.unwrap()).collect();
    assert_eq!(hours, funding.iter().map(|r| r.2 as f64).collect::<Vec<_>>(), "8 h, then 4 h, as each row says");
    let (ts, cols) = catalog_rows(&root, "bitmex", "perp", "BTCUSD");
    // Bucket stamped 01:00 is the 00:00 bar.
    assert_eq!(ts[0], start);
    assert_eq!(cols["close"][0], Some(40_001.0));
    assert_eq!(ts.len() as i64, (ms("2024-02-15") - start) / HOUR);
}

// ---------------------------------------------------------------- catalog in a config

/// A config names its perp and funding by catalog (`[data] catalog, venue`) and its spot by
/// path; the run reads the fetched Bybit rows with the usual coverage and clock checks, and pays
/// exactly the catalog's settlements inside the window.
#[test]
fn config_names_data_by_catalog() {
    if !have_real_data("freqtrade-bybit-1h") || !have_real_data("freqtrade-binance-1h") {
        return;
    }
    let dir = real_data_dir().join("freqtrade-bybit-1h/bybit/futures");
    let funding = freqtrade_funding(&dir.join("BTC_USDT_USDT-1h-funding_rate.feather"));
    let bars = freqtrade_bars(&dir.join("BTC_USDT_USDT-1h-futures.feather"));
    let base = serve(bybit(funding.clone(), bars, Faults::default()), Arc::new(Mutex::new(Vec::new())));
    let root = temp_root("config");
    fetch_ok("bybit", &base, &root, "BTCUSDT", "funding,perp", "2024-01-01", "2024-04-01");
    let spot = real_data_dir().join("freqtrade-binance-1h/binance/BTC_USDT-1h.feather");
    let text = format!(
        r#"
[data]
symbol = "BTCUSDT"
catalog = "{}"
venue = "bybit"
spot = {{ format = "generic", path = "{}", open_time_column = "date", bar_seconds = 3600, close_column = "close", high_column = "high", low_column = "low" }}

[venue]
preset = "bybit_linear"

[strategy]
start = "2024-01-02T00:00:00Z"
end = "2024-03-31T00:00:00Z"
"#,
        root.display(),
        spot.display()
    );
    let config = basis::config::Config::from_toml_str(&text, "test", Path::new(".")).unwrap();
    let (timeline, _, _) = basis::app::pipeline::prepare(&config).unwrap();
    let inside = funding.iter().filter(|(t, _)| *t > timeline.ts_ms[0] && *t <= *timeline.ts_ms.last().unwrap()).count();
    assert_eq!(timeline.paid_settlements().count(), inside);
    assert!(timeline.funding.len() > inside, "the timeline keeps the settlements before the window for the signals");
    assert_eq!(timeline.ts_ms[0], ms("2024-01-02"));
    // A venue the catalog does not hold is refused with the fetch command to run.
    let missing = text.replace("venue = \"bybit\"", "venue = \"okx\"");
    let err = basis::config::Config::from_toml_str(&missing, "test", Path::new(".")).unwrap_err().to_string();
    assert!(err.contains("basis data fetch okx --symbols BTCUSDT --kinds perp"), "{err}");
}
