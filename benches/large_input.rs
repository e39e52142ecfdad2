//! Large input: a multi-GB Binance kline CSV loaded with bounded memory. The loader reads the
//! file a block of whole lines at a time (plain, gzip or zip), keeping only the parsed rows, so
//! peak memory follows the number of bars (about 48 bytes each while loading, 40 after), not the
//! size of the text.
//!
//! `cargo bench --bench large_input` writes a CSV of BASIS_LARGE_ROWS rows (default 8,000,000,
//! about 1 GB; 16,000,000 gives 2 GB) to a temporary folder, loads it, and prints the file size,
//! load time and peak resident memory.

mod common;

use std::io::Write;
use std::time::Instant;

use basis::config::{PriceFormat, PriceSource};
use basis::data::binance::load_klines;

use common::peak_rss_mib;


fn main() {
    let rows: usize = std::env::var("BASIS_LARGE_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(8_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("BTCUSDT-1m-large.csv");
    {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).expect("create"));
        writeln!(out, "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore").unwrap();
        let t0: i64 = 1_500_000_000_000;
        for i in 0..rows as i64 {
            let open = t0 + i * 60_000;
            let price = 30_000.0 + (i % 1000) as f64 * 0.5;
            writeln!(out, "{open},{price:.2},{:.2},{:.2},{price:.2},12.345678,{},370370.37,1234,6.172839,185185.18,0", price + 5.0, price - 5.0, open + 59_999).unwrap();
        }
    }
    let bytes = std::fs::metadata(&path).expect("size").len() as f64;
    let before = peak_rss_mib();
    let source = PriceSource::binance_klines(path.to_string_lossy().into_owned());
    let started = Instant::now();
    let bars = load_klines(&source, "perp", &mut Vec::new(), &mut Vec::new()).expect("load");
    let seconds = started.elapsed().as_secs_f64();
    let peak = peak_rss_mib();
    println!(
        "large kline CSV: {:.0} MiB, {} rows loaded in {seconds:.2} s ({:.1} M rows/s, {:.0} MiB/s); peak RSS {peak:.0} MiB ({before:.0} MiB before; {:.0} bytes per row, {:.2}x the file size)",
        bytes / 1048576.0,
        bars.ts_ms.len(),
        rows as f64 / seconds / 1e6,
        bytes / 1048576.0 / seconds,
        (peak - before) * 1048576.0 / rows as f64,
        (peak - before) * 1048576.0 / bytes
    );

    // The same bars as canonical Parquet (`basis data convert`), loaded back.
    let parquet = dir.path().join("perp.parquet");
    basis::output::write_parquet_atomic(&parquet, &mut basis::app::convert::bars_frame(&bars).expect("frame")).expect("write");
    drop(bars);
    let source = PriceSource {
        format: PriceFormat::Generic,
        path: parquet.to_string_lossy().into_owned(),
        close_time_column: Some("ts".into()),
        close_column: Some("close".into()),
        high_column: Some("high".into()),
        low_column: Some("low".into()),
        volume_column: Some("volume".into()),
        ..source
    };
    let started = Instant::now();
    let again = basis::data::generic::load_prices(&source, "perp", &mut Vec::new(), &mut Vec::new()).expect("load parquet");
    let parquet_seconds = started.elapsed().as_secs_f64();
    println!(
        "canonical Parquet of the same bars: {:.0} MiB, {} rows loaded in {parquet_seconds:.2} s ({:.1}x faster than the CSV)",
        std::fs::metadata(&parquet).expect("size").len() as f64 / 1048576.0,
        again.ts_ms.len(),
        seconds / parquet_seconds
    );
}
