//! Fuzzing with proptest: arbitrary bytes and mutated valid files through the kline, funding and
//! generic loaders and the config parser. Nothing may panic, and every error must be an input
//! error (exit code 2) with a message, never an internal one.
//!
//! Bounded by default (256 cases per target, a few seconds). Longer runs:
//! `PROPTEST_CASES=20000 cargo test --release --test fuzz`. A failing input is saved by proptest
//! under tests/fuzz.proptest-regressions and replayed first on every later run; commit that file.

use std::path::Path;

use basis::config::{Config, FundingFormat, PriceSource};
use basis::data::binance::{load_funding, load_klines};
use basis::error::is_input_error;
use proptest::prelude::*;

mod common;

const VALID_KLINES: &str = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore
1704067200000,100,101,99,100.5,10,1704070799999,1000,5,5,500,0
1704070800000,100.5,102,100,101,12,1704074399999,1200,6,6,600,0
1704074400000,101,101.5,99.5,100,8,1704077999999,800,4,4,400,0
";
const VALID_FUNDING: &str = "calc_time,funding_interval_hours,last_funding_rate
1704096000000,8,0.0001
1704124800000,8,-0.00005
1704153600000,8,0.0003
";

/// Small edits to a valid file: overwrite, delete, insert or duplicate bytes.
fn mutated(base: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let edits = prop::collection::vec((0usize..4, any::<prop::sample::Index>(), 1usize..12, any::<u8>()), 1..6);
    edits.prop_map(move |edits| {
        let mut bytes = base.as_bytes().to_vec();
        for (kind, at, len, byte) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            let j = (i + len).min(bytes.len());
            match kind {
                0 => bytes[i] = byte,
                1 => {
                    bytes.drain(i..j);
                }
                2 => {
                    for k in 0..len {
                        bytes.insert(i, byte.wrapping_add(k as u8));
                    }
                }
                _ => {
                    let piece: Vec<u8> = bytes[i..j].to_vec();
                    bytes.splice(i..i, piece);
                }
            }
        }
        bytes
    })
}

fn write(bytes: &[u8], name: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path.to_string_lossy().into_owned())
}

fn klines(path: &str) -> anyhow::Result<()> {
    let source = PriceSource::binance_klines(path);
    load_klines(&source, "spot", &mut Vec::new(), &mut Vec::new()).map(|_| ())
}

fn funding(path: &str, format: FundingFormat) -> anyhow::Result<()> {
    load_funding(&common::funding_source(path, format), "TESTUSDT", &mut Vec::new(), &mut Vec::new()).map(|_| ())
}

#[track_caller]
fn input_error_or_ok(result: anyhow::Result<()>) {
    if let Err(err) = result {
        assert!(is_input_error(&err), "an internal error: {err:#}");
        assert!(!format!("{err:#}").is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256), failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"))), ..ProptestConfig::default() })]

    #[test]
    fn klines_from_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let (_dir, path) = write(&bytes, "spot.csv");
        input_error_or_ok(klines(&path));
    }

    #[test]
    fn klines_from_mutated_files(bytes in mutated(VALID_KLINES)) {
        let (_dir, path) = write(&bytes, "spot.csv");
        input_error_or_ok(klines(&path));
    }

    #[test]
    fn gzip_and_zip_from_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200), zip in any::<bool>()) {
        let mut data = if zip { b"PK\x03\x04".to_vec() } else { vec![0x1f, 0x8b, 0x08, 0x00] };
        data.extend(bytes);
        let (_dir, path) = write(&data, if zip { "spot.zip" } else { "spot.csv.gz" });
        input_error_or_ok(klines(&path));
    }

    #[test]
    fn funding_from_mutated_files(bytes in mutated(VALID_FUNDING), rest in any::<bool>()) {
        let (_dir, path) = write(&bytes, "funding.csv");
        input_error_or_ok(funding(&path, if rest { FundingFormat::BinanceRest } else { FundingFormat::BinanceFunding }));
    }

    #[test]
    fn funding_from_arbitrary_text(text in "[0-9a-z,.\\-eE\n ]{0,300}") {
        let (_dir, path) = write(text.as_bytes(), "funding.csv");
        input_error_or_ok(funding(&path, FundingFormat::BinanceFunding));
    }

    #[test]
    fn config_from_mutated_text(bytes in mutated(include_str!("../data/basis.toml"))) {
        let text = String::from_utf8_lossy(&bytes);
        let result = Config::from_toml_str(&text, "fuzz", Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data"))).map(|_| ());
        input_error_or_ok(result);
    }

    #[test]
    fn config_from_arbitrary_text(text in "\\PC{0,200}") {
        input_error_or_ok(Config::from_toml_str(&text, "fuzz", Path::new(".")).map(|_| ()));
    }
}
