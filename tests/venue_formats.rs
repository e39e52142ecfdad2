//! Every venue's funding export and Bybit's trade dumps, on fixtures written here in the layouts
//! of ../shared/reference/VENUES.md §3: times, rates, intervals and prices as loaded.

use std::io::Write;

use basis::config::{FundingFormat, PriceFormat, PriceSource};
use basis::data::venue_formats::{load_bybit_trades, load_funding};
use basis::data::FundingSeries;
use basis::error::is_input_error;

mod common;

const T: i64 = 1_704_067_200_000; // 2024-01-01 00:00 UTC
const H: i64 = 3_600_000;

fn load(format: FundingFormat, name: &str, content: &[u8]) -> anyhow::Result<FundingSeries> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    load_funding(&common::funding_source(path.to_str().unwrap(), format), &mut Vec::new(), &mut Vec::new())
}

#[test]
fn json_exports_of_every_venue() {
    // Bybit: strings, newest first, under result.list; intervals from spacing.
    let bybit = format!(
        r#"{{"retCode":0,"result":{{"category":"linear","list":[{{"symbol":"ETHUSDT","fundingRate":"0.0002","fundingRateTimestamp":"{}"}},{{"symbol":"ETHUSDT","fundingRate":"-0.0001","fundingRateTimestamp":"{}"}},{{"symbol":"ETHUSDT","fundingRate":"0.0001","fundingRateTimestamp":"{}"}}]}}}}"#,
        T + 16 * H, T + 8 * H, T
    );
    let f = load(FundingFormat::BybitJson, "bybit.json", bybit.as_bytes()).unwrap();
    assert_eq!(f.settle_ms(), vec![T, T + 8 * H, T + 16 * H]);
    assert_eq!(f.rates(), vec![0.0001, -0.0001, 0.0002]);
    assert!(f.interval_hours().iter().all(|h| *h == 8.0));

    // OKX: realizedRate (what was paid), not the predicted fundingRate.
    let okx = format!(
        r#"{{"code":"0","data":[{{"instId":"BTC-USDT-SWAP","fundingRate":"0.0009","realizedRate":"0.00012","fundingTime":"{}","method":"current_period"}},{{"instId":"BTC-USDT-SWAP","fundingRate":"0.0009","realizedRate":"0.0001","fundingTime":"{}"}}]}}"#,
        T + 8 * H, T
    );
    let f = load(FundingFormat::Okx, "okx.json", okx.as_bytes()).unwrap();
    assert_eq!(f.rates(), vec![0.0001, 0.00012]);
    // The same as CSV with the API's columns.
    let csv = format!("instId,fundingRate,realizedRate,fundingTime\nBTC-USDT-SWAP,0.0009,0.0001,{T}\nBTC-USDT-SWAP,0.0009,0.00012,{}\n", T + 8 * H);
    assert_eq!(load(FundingFormat::Okx, "okx.csv", csv.as_bytes()).unwrap().rates(), vec![0.0001, 0.00012]);

    // Hyperliquid: hourly rates, ms times, root array.
    let hl = format!(r#"[{{"coin":"ETH","fundingRate":"0.0000125","premium":"-0.0003","time":{T}}},{{"coin":"ETH","fundingRate":"0.00001","premium":"-0.0003","time":{}}}]"#, T + H);
    let f = load(FundingFormat::HyperliquidJson, "hl.json", hl.as_bytes()).unwrap();
    assert_eq!((f[0].rate, f[0].interval_hours), (0.0000125, 1.0));

    // dYdX v4: ISO times, hourly, with a price.
    let dydx = r#"{"historicalFunding":[{"ticker":"BTC-USD","rate":"0.00001","price":"42000.5","effectiveAt":"2024-01-01T01:00:00.000Z","effectiveAtHeight":"1"},{"ticker":"BTC-USD","rate":"-0.000002","price":"42100","effectiveAt":"2024-01-01T00:00:00.000Z","effectiveAtHeight":"0"}]}"#;
    let f = load(FundingFormat::DydxJson, "dydx.json", dydx.as_bytes()).unwrap();
    assert_eq!(f.settle_ms(), vec![T, T + H]);
    assert_eq!((f[0].rate, f[0].price, f[1].interval_hours), (-0.000002, 42100.0, 1.0));

    // Deribit: interest_1h is the hour's rate; interest_8h (trailing) is not used.
    let deribit = format!(r#"{{"jsonrpc":"2.0","result":[{{"timestamp":{T},"index_price":42000,"prev_index_price":41990,"interest_1h":0.00002,"interest_8h":0.0002}}]}}"#);
    let f = load(FundingFormat::DeribitJson, "deribit.json", deribit.as_bytes()).unwrap();
    assert_eq!((f[0].rate, f[0].interval_hours, f[0].price), (0.00002, 1.0, 42000.0));

    // BitMEX: the interval is a time after 2000-01-01; early history settled every 24 h.
    let bitmex = r#"[{"timestamp":"2016-05-14T12:00:00.000Z","symbol":"XBTUSD","fundingInterval":"2000-01-02T00:00:00.000Z","fundingRate":0.00375},{"timestamp":"2024-01-01T04:00:00.000Z","symbol":"XBTUSD","fundingInterval":"2000-01-01T08:00:00.000Z","fundingRate":0.0001},{"timestamp":"2024-01-01T12:00:00.000Z","symbol":"XBTUSD","fundingInterval":"2000-01-01T08:00:00.000Z","fundingRate":0.0001}]"#;
    let f = load(FundingFormat::BitmexJson, "bitmex.json", bitmex.as_bytes()).unwrap();
    assert_eq!(f.interval_hours(), vec![24.0, 8.0, 8.0]);
    assert_eq!(f[1].settle_ms, T + 4 * H);

    // Gate: `t` in seconds.
    let gate = format!(r#"[{{"t":{},"r":"0.0001"}},{{"t":{},"r":"0.0003"}}]"#, T / 1000, T / 1000 + 28_800);
    let f = load(FundingFormat::GateJson, "gate.json", gate.as_bytes()).unwrap();
    assert_eq!((f[1].settle_ms, f[1].rate, f[1].interval_hours), (T + 8 * H, 0.0003, 8.0));

    // ccxt: unified records.
    let ccxt = format!(r#"[{{"info":{{}},"symbol":"BTC/USDT:USDT","fundingRate":0.0001,"timestamp":{T},"datetime":"2024-01-01T00:00:00.000Z"}},{{"info":{{}},"symbol":"BTC/USDT:USDT","fundingRate":0.0002,"timestamp":{}}}]"#, T + 8 * H);
    assert_eq!(load(FundingFormat::CcxtJson, "ccxt.json", ccxt.as_bytes()).unwrap().rates(), vec![0.0001, 0.0002]);
}

#[test]
fn bad_exports_are_refused_with_the_record() {
    let err = load(FundingFormat::HyperliquidJson, "hl.json", br#"[{"coin":"ETH","fundingRate":"x","time":1704067200000}]"#).unwrap_err();
    assert!(is_input_error(&err) && format!("{err:#}").contains("record 1, field `fundingRate`"), "{err:#}");
    let err = load(FundingFormat::BybitJson, "b.json", br#"{"result":{"list":[{"symbol":"A","fundingRate":"0.1","fundingRateTimestamp":"1704067200000"},{"symbol":"B","fundingRate":"0.1","fundingRateTimestamp":"1704096000000"}]}}"#).unwrap_err();
    assert!(format!("{err:#}").contains("one file must hold one symbol"), "{err:#}");
    let err = load(FundingFormat::GateJson, "g.json", b"{not json").unwrap_err();
    assert!(format!("{err:#}").contains("not valid JSON"), "{err:#}");
    let err = load(FundingFormat::Okx, "o.json", br#"{"data":[{"instId":"X","fundingTime":"1704067200000"}]}"#).unwrap_err();
    assert!(format!("{err:#}").contains("missing field `realizedRate`"), "{err:#}");
}

fn gz(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn tardis_settlements_come_from_the_last_quote_before_each() {
    let us = |ms: i64| ms * 1000;
    let mut csv = String::from("exchange,symbol,timestamp,local_timestamp,funding_timestamp,funding_rate,predicted_funding_rate,open_interest,last_price,index_price,mark_price\n");
    // Quotes for the 08:00 settlement drift from 0.0001 to 0.00013; then the 16:00 one.
    for (minute, rate) in [(60, "0.0001"), (300, "0.00012"), (479, "0.00013")] {
        let t = us(T + minute * 60_000);
        csv.push_str(&format!("binance-futures,BTCUSDT,{t},{t},{},{rate},,1000,42000,42000,42001\n", us(T + 8 * H)));
    }
    let t = us(T + 8 * H + 60_000);
    csv.push_str(&format!("binance-futures,BTCUSDT,{t},{t},{},-0.00005,,1000,42000,42000,42002\n", us(T + 16 * H)));
    csv.push_str(&format!("binance-futures,BTCUSDT,{t},{t},,,,1000,42000,42000,42002\n"));
    let f = load(FundingFormat::Tardis, "ticker.csv.gz", &gz(&csv)).unwrap();
    assert_eq!(f.settle_ms(), vec![T + 8 * H, T + 16 * H]);
    assert_eq!(f.rates(), vec![0.00013, -0.00005]);
    assert_eq!(f[0].price, 42001.0);
}

#[test]
fn bybit_trades_become_bars_known_at_their_end() {
    let mut csv = String::from("timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional\n");
    let s = T as f64 / 1000.0;
    for (offset, size, price) in [(0.0974, 0.5, 100.0), (1800.5, 1.0, 103.0), (3599.9, 0.25, 101.0), (3600.2, 2.0, 99.0)] {
        csv.push_str(&format!("{:.4},BTCUSDT,Buy,{size},{price},PlusTick,x,1,1,1\n", s + offset));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("BTCUSDT2024-01-01.csv.gz");
    std::fs::write(&path, gz(&csv)).unwrap();
    let source = PriceSource { format: PriceFormat::BybitTrades, bar_seconds: Some(3600), ..PriceSource::binance_klines(path.to_string_lossy()) };
    let bars = load_bybit_trades(&source, "perp", &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!(bars.ts_ms, vec![T + H, T + 2 * H]);
    assert_eq!((bars.close[0], bars.high[0], bars.low[0], bars.volume[0]), (101.0, 103.0, 100.0, 1.75));
    assert_eq!(bars.close[1], 99.0);
}

#[test]
fn premium_and_index_klines_from_binance_dumps() {
    let dir = tempfile::tempdir().unwrap();
    let mut premium = String::from("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore\n");
    let mut index = premium.clone();
    for i in 0..24 {
        let open = T + i * H;
        premium.push_str(&format!("{open},-0.0002,-0.0001,-0.0004,{},0,{},0,12,0,0,0\n", -0.0001 * (i % 3) as f64, open + H - 1));
        index.push_str(&format!("{open},42000,42100,41900,42050,0,{},0,12,0,0,0\n", open + H - 1));
    }
    std::fs::write(dir.path().join("BTCUSDT-1h-premium.csv"), premium).unwrap();
    std::fs::write(dir.path().join("BTCUSDT-1h-index.csv"), index).unwrap();
    let series = basis::data::binance::load_premium_index(dir.path().join("BTCUSDT-1h-premium.csv").to_str().unwrap()).unwrap();
    assert_eq!(series.ts_ms.len(), 24);
    assert_eq!((series.ts_ms[0], series.premium[1]), (T + H, -0.0001));
    // Index klines are prices: they load as bars.
    let source = PriceSource::binance_klines(dir.path().join("BTCUSDT-1h-index.csv").to_string_lossy().into_owned());
    let bars = basis::data::binance::load_klines(&source, "index", &mut Vec::new(), &mut Vec::new()).unwrap();
    assert_eq!((bars.ts_ms.len(), bars.close[0]), (24, 42050.0));
    // A price file given as a premium index is refused.
    let err = basis::data::binance::load_premium_index(source.path.as_str()).unwrap_err();
    assert!(format!("{err:#}").contains("premiumIndexKlines"), "{err:#}");
}
