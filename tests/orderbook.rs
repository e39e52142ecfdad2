//! The `orderbook` cost model: a market order walks the last L2 snapshot known at the fill.
//! The walk by hand, the snapshots read from Tardis' layout point in time (by the time Tardis
//! received them), the sample's example entry checked against the generated book's formula,
//! and bad books refused with their row.

mod common;

use basis::data::book::load;
use basis::data::source::{BookSource, TimeFormat};
use basis::model::{Depth, DEPTH_LEVELS};
use common::{assert_close, HOUR, T0};

fn depth(asks: &[(f64, f64)], bids: &[(f64, f64)]) -> Depth {
    let mid = 0.5 * (asks[0].0 + bids[0].0);
    let mut d = Depth { asks: [(0.0, 0.0); DEPTH_LEVELS], bids: [(0.0, 0.0); DEPTH_LEVELS], ask_levels: asks.len() as u8, bid_levels: bids.len() as u8 };
    for (slot, (p, q)) in d.asks.iter_mut().zip(asks) {
        *slot = (p / mid - 1.0, *q);
    }
    for (slot, (p, q)) in d.bids.iter_mut().zip(bids) {
        *slot = (1.0 - p / mid, *q);
    }
    d
}

/// Asks 100.1 × 2 and 100.3 × 3, bids 99.9 × 1 and 99.5 × 5 (mid 100): buying 4 pays
/// (2 × 100.1 + 2 × 100.3) / 4 = 100.2, 20 bp over the mid; selling 3 gets
/// (99.9 + 2 × 99.5) / 3 = 99.6333…, 36.67 bp under it; buying 10, twice the visible asks,
/// fills the 5 beyond at the deepest ask: (2 × 100.1 + 8 × 100.3) / 10 = 100.26.
#[test]
fn a_market_order_walks_the_book_by_hand() {
    let d = depth(&[(100.1, 2.0), (100.3, 3.0)], &[(99.9, 1.0), (99.5, 5.0)]);
    assert_close(d.slippage(4.0), 0.002, 1e-12);
    assert_close(d.slippage(-3.0), 1.0 - (99.9 + 2.0 * 99.5) / 3.0 / 100.0, 1e-12);
    assert_close(d.slippage(10.0), 0.0026, 1e-12);
    assert_eq!(d.visible(1.0), 5.0);
    assert_eq!(d.visible(-1.0), 6.0);
    // The engine's fill: the bar's close moved by the book's slippage, the side's way.
    let costs = basis::model::Costs { spot_depth: Some(d), ..basis::model::Costs::FREE };
    assert_close(costs.spot_slippage_for(4.0), 0.002, 1e-12);
}

fn write_book(dir: &std::path::Path, rows: &[&str]) -> std::path::PathBuf {
    let mut text = String::from("exchange,symbol,timestamp,local_timestamp,asks[0].price,asks[0].amount,bids[0].price,bids[0].amount,asks[1].price,asks[1].amount,bids[1].price,bids[1].amount\n");
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    let path = dir.join("book.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn source(path: &std::path::Path) -> BookSource {
    BookSource { path: path.to_str().unwrap().into(), time_column: None, time_unit: TimeFormat::Auto, max_age_ms: None }
}

/// Snapshots are placed by `local_timestamp` (µs): the one Tardis received half an hour after
/// T0 serves the step at T0 + 1 h; the one taken before T0 + 2 h but received after it does not
/// serve that step (it is not known yet), so the older one does, unless it is older than a bar;
/// a thin side (an empty second level) is kept with the levels it has.
#[test]
fn snapshots_are_known_from_their_local_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let us = |ms: i64| ms * 1000;
    let rows = [
        format!("binance,X,{},{},100.1,2,99.9,2,100.2,3,,", us(T0 + HOUR / 2 - 10), us(T0 + HOUR / 2)),
        format!("binance,X,{},{},101.1,2,100.9,2,101.2,3,100.8,3", us(T0 + 2 * HOUR - 10), us(T0 + 2 * HOUR + 5)),
    ];
    let path = write_book(dir.path(), &rows.iter().map(String::as_str).collect::<Vec<_>>());
    let mut files = Vec::new();
    let book = load(&source(&path), "data.spot_book", &mut files).unwrap();
    assert_eq!(book.ts_ms, vec![T0 + HOUR / 2, T0 + 2 * HOUR + 5]);
    assert_eq!(book.bids[0], vec![(99.9, 2.0)]);
    let clock = [T0, T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR];
    let (series, notes) = book.on_clock(&clock, None);
    assert!(series.at(0).is_none(), "nothing known before the first snapshot");
    assert_close(series.at(1).unwrap().asks[0].0, 100.1 / 100.0 - 1.0, 1e-12);
    // T0 + 2 h: the second is not known yet; the first is 1.5 h old, more than a bar.
    assert!(series.at(2).is_none());
    assert_close(series.at(3).unwrap().asks[0].0, 101.1 / 101.0 - 1.0, 1e-12);
    assert!(notes.iter().any(|n| n.contains("2 of 4 steps")), "{notes:?}");
    // A longer stale limit lets the first serve T0 + 2 h.
    let (series, _) = book.on_clock(&clock, Some(2 * HOUR));
    assert_close(series.at(2).unwrap().asks[0].0, 100.1 / 100.0 - 1.0, 1e-12);
}

/// Bad books are refused with the file, the row and what is wrong.
#[test]
fn bad_books_are_refused_with_their_row() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let crossed = write_book(dir.path(), &["binance,X,1704067200000000,1704067200000000,99.8,2,99.9,2,100.2,3,99.7,3"]);
    let err = format!("{:#}", load(&source(&crossed), "data.spot_book", &mut files).unwrap_err());
    assert!(err.contains("line 2") && err.contains("crossed"), "{err}");
    let disorder = write_book(dir.path(), &["binance,X,1704067200000000,1704067200000000,100.1,2,99.9,2,100.0,3,99.7,3"]);
    let err = format!("{:#}", load(&source(&disorder), "data.spot_book", &mut files).unwrap_err());
    assert!(err.contains("asks[1]") && err.contains("out of order"), "{err}");
    // A level of zero size ends its side, as an empty one does.
    let padded = write_book(dir.path(), &["binance,X,1704067200000000,1704067200000000,100.1,2,99.9,2,0,0,0,0"]);
    let book = load(&source(&padded), "data.spot_book", &mut files).unwrap();
    assert_eq!((book.asks[0].len(), book.bids[0].len()), (1, 1));
    let negative = write_book(dir.path(), &["binance,X,1704067200000000,1704067200000000,100.1,-2,99.9,2,100.2,3,99.7,3"]);
    let err = format!("{:#}", load(&source(&negative), "data.spot_book", &mut files).unwrap_err());
    assert!(err.contains("asks[0]") && err.contains("positive"), "{err}");
    // A config asking for the model without the book.
    let dir_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let text = std::fs::read_to_string(dir_path.join("basis.toml")).unwrap().replacen("\n[costs]\n", "\n[costs]\nspot_model = \"orderbook\"\n", 1);
    let err = format!("{:#}", basis::config::Config::from_toml_str(&text, "test", &dir_path).unwrap_err());
    assert!(err.contains("[data.spot_book]"), "{err}");
}

/// The example (`data/examples/orderbook-sample.toml`) enters at the sample's first close c:
/// the generated book holds 2 (k + 1) coins at (k + ½) bp from c on each side, so buying q spot
/// coins walks 2, 4, 6, 8 coins and the rest at 4.5 bp: the fill is c × (1 + Σ take_k d_k / q).
/// The quantity is the program's (sized with its costs); the price is derived here from the
/// book's formula, not read back.
#[test]
fn the_sample_entry_walks_the_generated_book() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/examples");
    let config = basis::config::Config::load(&dir.join("orderbook-sample.toml")).unwrap();
    let result = basis::app::backtest::run(&config).unwrap();
    let close = result.timeline.spot[0];
    let walk = |q: f64| {
        let (mut left, mut cost) = (q, 0.0);
        for k in 0..5 {
            let take = left.min(2.0 * (k as f64 + 1.0));
            cost += take * (k as f64 + 0.5) * 1e-4;
            left -= take;
        }
        (cost + left * 4.5e-4) / q
    };
    let spot = result.summary.trades.iter().find(|t| t.leg == "spot").unwrap();
    assert!(spot.qty > 20.0 && spot.qty < 30.0, "the entry walks into the fifth level: {}", spot.qty);
    // The file writes prices to 4 decimals: the level distances are exact to about 2e-8.
    assert_close(spot.fill_price, close * (1.0 + walk(spot.qty)), 1e-4);
    let perp = result.summary.trades.iter().find(|t| t.leg == "perp").unwrap();
    assert_close(perp.fill_price, result.timeline.perp[0] * (1.0 - walk(perp.qty.abs())), 1e-4);
    // The snapshots cover the first 31 days: every step of the window has one.
    assert!(!result.warnings.iter().any(|w| w.contains("no snapshot known")), "{:?}", result.warnings);
}

/// The generic long layout, one row per level (`ts`, `side`, `price`, `amount`), levels in any
/// order: read into the same snapshot as the wide layout (asks 100.1 × 2, 100.3 × 3; bids
/// 99.9 × 1, 99.5 × 5), so buying 4 pays 20 bp; a side that is neither bid nor ask is refused.
#[test]
fn the_long_layout_reads_the_same_book() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("levels.csv");
    std::fs::write(&path, format!("ts,side,price,amount\n{t},ask,100.3,3\n{t},bid,99.9,1\n{t},ask,100.1,2\n{t},bid,99.5,5\n", t = T0)).unwrap();
    let mut files = Vec::new();
    let book = load(&source(&path), "data.spot_book", &mut files).unwrap();
    assert_eq!(book.asks[0], vec![(100.1, 2.0), (100.3, 3.0)]);
    assert_eq!(book.bids[0], vec![(99.9, 1.0), (99.5, 5.0)]);
    let (series, _) = book.on_clock(&[T0, T0 + HOUR], None);
    assert_close(series.at(0).unwrap().slippage(4.0), 0.002, 1e-12);
    assert_close(series.at(1).unwrap().slippage(-3.0), 1.0 - (99.9 + 2.0 * 99.5) / 3.0 / 100.0, 1e-12);
    std::fs::write(&path, format!("ts,side,price,amount\n{T0},middle,100.3,3\n")).unwrap();
    let err = format!("{:#}", load(&source(&path), "data.spot_book", &mut files).unwrap_err());
    assert!(err.contains("line 2") && err.contains("bid or ask"), "{err}");
}
