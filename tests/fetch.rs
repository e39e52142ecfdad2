//! `basis data fetch binance` end to end against a local HTTP server started by the test (CI has
//! no internet): layout, checksums, resume with Range, skip when present, missing months, and a
//! damaged download refused; the fetched dumps then load with the Binance loaders.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

type Files = Arc<Mutex<BTreeMap<String, Vec<u8>>>>;
type Log = Arc<Mutex<Vec<String>>>;

/// A tiny HTTP/1.1 file server: GET with optional `Range: bytes=N-`, 404 for unknown paths.
fn serve(files: Files, log: Log) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let path = request.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
            let mut range = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    range = value.trim().trim_end_matches('-').parse::<usize>().ok();
                }
            }
            log.lock().unwrap().push(format!("{path} {range:?}"));
            let mut stream = stream;
            let body = files.lock().unwrap().get(&path).cloned();
            let response = match (body, range) {
                (None, _) => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                (Some(body), Some(from)) if from < body.len() => {
                    let mut r = format!("HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {from}-{}/{}\r\nConnection: close\r\n\r\n", body.len() - from, body.len() - 1, body.len()).into_bytes();
                    r.extend(&body[from..]);
                    r
                }
                (Some(body), _) => {
                    let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).into_bytes();
                    r.extend(body);
                    r
                }
            };
            let _ = stream.write_all(&response);
        }
    });
    address
}

fn zipped(name: &str, csv: &str) -> Vec<u8> {
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buffer);
        zip.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(csv.as_bytes()).unwrap();
        zip.finish().unwrap();
    }
    buffer.into_inner()
}

fn publish(files: &Files, remote: &str, body: Vec<u8>) {
    let name = remote.rsplit('/').next().unwrap();
    let checksum = format!("{:x}  {name}\n", Sha256::digest(&body));
    let mut files = files.lock().unwrap();
    files.insert(format!("{remote}.CHECKSUM"), checksum.into_bytes());
    files.insert(remote.to_string(), body);
}

fn klines_csv(month_start_ms: i64, bars: i64, header: bool) -> String {
    let mut text = if header { "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore\n".to_string() } else { String::new() };
    for i in 0..bars {
        let open = month_start_ms + i * 3_600_000;
        text.push_str(&format!("{open},100,101,99,100.5,10,{},1000,5,5,500,0\n", open + 3_599_999));
    }
    text
}

fn basis(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_basis")).args(args).output().unwrap()
}

#[test]
fn fetches_verifies_resumes_and_reports_missing_months() {
    let files: Files = Arc::default();
    let log: Log = Arc::default();
    let base = serve(files.clone(), log.clone());
    let jan = 1_704_067_200_000i64;
    let spot_jan = "data/spot/monthly/klines/ETHUSDT/1h/ETHUSDT-1h-2024-01.zip";
    let spot_feb = "data/spot/monthly/klines/ETHUSDT/1h/ETHUSDT-1h-2024-02.zip";
    let funding_jan = "data/futures/um/monthly/fundingRate/ETHUSDT/ETHUSDT-fundingRate-2024-01.zip";
    publish(&files, spot_jan, zipped("ETHUSDT-1h-2024-01.csv", &klines_csv(jan, 744, false)));
    publish(&files, spot_feb, zipped("ETHUSDT-1h-2024-02.csv", &klines_csv(jan + 744 * 3_600_000, 696, false)));
    let funding_csv: String = std::iter::once("calc_time,funding_interval_hours,last_funding_rate\n".to_string())
        .chain((1..=93).map(|k| format!("{},8,0.0001\n", jan + k * 8 * 3_600_000)))
        .collect();
    publish(&files, funding_jan, zipped("ETHUSDT-fundingRate-2024-01.csv", &funding_csv));

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let fetch = || basis(&["data", "fetch", "binance", "--symbol", "ethusdt", "--from", "2024-01", "--to", "2024-02", "--kinds", "spot-1h,funding", "--out", out, "--base-url", &base]);
    let output = fetch();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("3 downloaded") && stdout.contains("1 missing"), "{stdout}");
    assert!(stdout.contains("not on the site: data/futures/um/monthly/fundingRate/ETHUSDT/ETHUSDT-fundingRate-2024-02.zip"), "{stdout}");
    for remote in [spot_jan, spot_feb, funding_jan] {
        assert_eq!(std::fs::read(dir.path().join(remote)).unwrap(), files.lock().unwrap()[remote]);
        assert!(dir.path().join(format!("{remote}.CHECKSUM")).is_file());
    }

    // Again: everything present and verified, only the missing month's checksum is asked for.
    log.lock().unwrap().clear();
    let stdout = String::from_utf8(fetch().stdout).unwrap();
    assert!(stdout.contains("0 downloaded") && stdout.contains("3 already present"), "{stdout}");
    assert_eq!(log.lock().unwrap().len(), 1, "{:?}", log.lock().unwrap());

    // A partial download resumes from its length with a Range request.
    let local = dir.path().join(spot_feb);
    let body = std::fs::read(&local).unwrap();
    std::fs::remove_file(&local).unwrap();
    std::fs::write(format!("{}.part", local.display()), &body[..body.len() / 2]).unwrap();
    log.lock().unwrap().clear();
    let stdout = String::from_utf8(fetch().stdout).unwrap();
    assert!(stdout.contains("1 downloaded"), "{stdout}");
    assert_eq!(std::fs::read(&local).unwrap(), body);
    assert!(log.lock().unwrap().iter().any(|l| l == &format!("{spot_feb} Some({})", body.len() / 2)), "{:?}", log.lock().unwrap());

    // The fetched dumps load as they are (the zip read directly, checksum verified on load).
    let spot = basis::config::PriceSource::binance_klines(dir.path().join("data/spot/monthly/klines/ETHUSDT/1h/*.zip").to_string_lossy().into_owned());
    let bars = basis::data::binance::load_klines(&spot, "spot", &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!(bars.ts_ms.len(), 744 + 696);
    // A damaged file is refused on load, naming the file and what to do.
    let mut damaged = std::fs::read(&local).unwrap();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;
    std::fs::write(&local, damaged).unwrap();
    let err = format!("{:#}", basis::data::binance::load_klines(&spot, "spot", &mut Vec::new(), &mut Vec::new()).unwrap_err());
    assert!(err.contains("does not match") && err.contains("fetch it again"), "{err}");
    // A server sending the wrong bytes is refused, and nothing half-written stays.
    files.lock().unwrap().insert(spot_feb.to_string(), b"not the file".to_vec());
    std::fs::remove_file(&local).unwrap();
    let output = fetch();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("does not match the published"));
    assert!(!local.exists() && !Path::new(&format!("{}.part", local.display())).exists());
    // Bad arguments.
    let output = basis(&["data", "fetch", "binance", "--symbol", "ETHUSDT", "--from", "2024-13", "--to", "2024-02", "--base-url", &base, "--out", out]);
    assert_eq!(output.status.code(), Some(2));
    let output = basis(&["data", "fetch", "binance", "--symbol", "ETHUSDT", "--from", "2024-01", "--to", "2024-02", "--kinds", "spot-7h", "--base-url", &base, "--out", out]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("spot-1h"));
}

#[test]
fn delivery_klines_fetch_the_quarterlies_live_over_the_window_and_skip_missing_months() {
    let files: Files = Arc::default();
    let log: Log = Arc::default();
    let base = serve(files.clone(), log.clone());
    // 2024-01 .. 2024-06: BTCUSDT_240329 (listed 2023-09), _240628 (listed 2023-12), _240927
    // (listed at the March delivery) and _241227 (listed at the June delivery) were live.
    let jan = 1_704_067_200_000i64;
    let feb = jan + 744 * 3_600_000;
    let path = |contract: &str, month: &str| format!("data/futures/um/monthly/klines/{contract}/1h/{contract}-1h-{month}.zip");
    publish(&files, &path("BTCUSDT_240329", "2024-01"), zipped("BTCUSDT_240329-1h-2024-01.csv", &klines_csv(jan, 744, true)));
    publish(&files, &path("BTCUSDT_240329", "2024-02"), zipped("BTCUSDT_240329-1h-2024-02.csv", &klines_csv(feb, 696, true)));
    publish(&files, &path("BTCUSDT_240628", "2024-01"), zipped("BTCUSDT_240628-1h-2024-01.csv", &klines_csv(jan, 744, true)));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let output = basis(&["data", "fetch", "binance", "--symbol", "BTCUSDT", "--from", "2024-01", "--to", "2024-06", "--kinds", "delivery-1h", "--contracts", "quarterly", "--out", out, "--base-url", &base]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    // Asked for: 240329 Jan–Mar (3), 240628 Jan–Jun (6), 240927 Mar–Jun (4), 241227 Jun (1) = 14.
    assert!(stdout.contains("3 downloaded") && stdout.contains("11 missing"), "{stdout}");
    assert!(stdout.contains(&path("BTCUSDT_240927", "2024-03")), "{stdout}");
    assert!(!stdout.contains(&path("BTCUSDT_240927", "2024-02")), "not listed yet in February: {stdout}");
    assert!(!stdout.contains(&path("BTCUSDT_240329", "2024-04")), "delivered in March: {stdout}");
    // The fetched dumps load as dated contracts, expiry from the file name.
    let source = basis::config::DatedSource::binance_klines(dir.path().join("data/futures/um/monthly/klines/*/1h/*.zip").to_string_lossy().into_owned());
    let contracts = basis::data::dated::load_contracts(&source, "data.dated", &mut Vec::new(), &mut Vec::new()).unwrap();
    let names: Vec<&str> = contracts.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["BTCUSDT_240329", "BTCUSDT_240628"]);
    assert_eq!(contracts[0].bars.ts_ms.len(), 744 + 696);
    assert_eq!(basis::time::format_ms(contracts[0].expiry_ms), "2024-03-29 08:00:00Z");
    // COIN-M contracts live under futures/cm.
    let output = basis(&["data", "fetch", "binance", "--symbol", "BTCUSD", "--from", "2024-01", "--to", "2024-01", "--kinds", "delivery-1h", "--out", out, "--base-url", &base]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("data/futures/cm/monthly/klines/BTCUSD_240329/1h/"), "{}", String::from_utf8_lossy(&output.stdout));
    let output = basis(&["data", "fetch", "binance", "--symbol", "BTCUSDT", "--from", "2024-01", "--to", "2024-01", "--kinds", "delivery-1h", "--contracts", "monthly", "--out", out, "--base-url", &base]);
    assert_eq!(output.status.code(), Some(2));
}

/// `--catalog`: the fetched dumps are also written into the catalog (bars by their open time,
/// funding with its interval), listed by `basis data list`, and a config reads them by venue.
#[test]
fn binance_dumps_into_the_catalog() {
    let files: Files = Arc::default();
    let base = serve(files.clone(), Arc::default());
    let jan = 1_704_067_200_000i64;
    for (kind, name) in [("spot/monthly/klines", "ETHUSDT-1h-2024-01"), ("futures/um/monthly/klines", "ETHUSDT-1h-2024-01")] {
        publish(&files, &format!("data/{kind}/ETHUSDT/1h/{name}.zip"), zipped(&format!("{name}.csv"), &klines_csv(jan, 744, true)));
    }
    let funding_csv: String = std::iter::once("calc_time,funding_interval_hours,last_funding_rate\n".to_string()).chain((1..=93).map(|k| format!("{},8,0.0001\n", jan + k * 8 * 3_600_000))).collect();
    publish(&files, "data/futures/um/monthly/fundingRate/ETHUSDT/ETHUSDT-fundingRate-2024-01.zip", zipped("ETHUSDT-fundingRate-2024-01.csv", &funding_csv));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let catalog = dir.path().join("catalog");
    let output = basis(&["data", "fetch", "binance", "--symbol", "ETHUSDT", "--from", "2024-01", "--to", "2024-01", "--kinds", "spot-1h,perp-1h,funding", "--out", cache.to_str().unwrap(), "--base-url", &base, "--catalog", catalog.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("binance perp ETHUSDT") && stdout.contains("744 rows fetched"), "{stdout}");
    let list = String::from_utf8(basis(&["data", "list", "--root", catalog.to_str().unwrap()]).stdout).unwrap();
    let line = |kind: &str| list.lines().find(|l| l.starts_with("binance") && l.split_whitespace().nth(1) == Some(kind)).unwrap_or_else(|| panic!("{kind}: {list}")).to_string();
    assert!(line("perp").contains("744") && line("perp").contains("2024-01-01 00:00:00Z") && line("perp").contains("2024-01-31 23:00:00Z"), "{list}");
    assert!(line("funding").contains(" 93 ") && line("funding").contains("8h") && line("funding").contains("none"), "{list}");
    // Read by catalog: the same bars as the dumps.
    let text = format!("[data]\nsymbol = \"ETHUSDT\"\ncatalog = \"{}\"\nvenue = \"binance\"\n\n[venue]\npreset = \"binance_usdm\"\n", catalog.display());
    let config = basis::config::Config::from_toml_str(&text, "test", Path::new(".")).unwrap();
    let market = basis::data::load(&config.data).unwrap();
    let dumps = basis::data::binance::load_klines(&basis::config::PriceSource::binance_klines(cache.join("data/futures/um/monthly/klines/ETHUSDT/1h/*.zip").to_string_lossy().into_owned()), "perp", &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!(market.perp.ts_ms, dumps.ts_ms);
    assert_eq!(market.perp.close, dumps.close);
    assert_eq!(market.funding.len(), 93);
}
