//! Borrow availability for the reverse carry (`[data.borrow_available]`): an entry cut to what
//! can be borrowed, recalls that force a buy-back, and the summary saying how often.

mod common;

use basis::config::Direction;
use basis::model::TradeReason;
use common::{assert_close, flat_timeline, plain_params, HOUR};

/// A reverse carry of 10,000 at 1x on a flat 100 would borrow 50 coins; only 30 can be
/// borrowed, so 30 are (one capped entry). At step 2 the lender has 10: 20 are recalled,
/// bought back at market with 20 of the long perp closed. At step 3 it has none: the rest is
/// recalled and the carry is flat. Prices do not move and nothing costs: equity stays 10,000.
#[test]
fn entry_capped_then_recalled() {
    let prices = vec![100.0; 5];
    let timeline = flat_timeline(&prices, &prices, &prices, HOUR);
    let mut params = plain_params(10_000.0);
    params.entry.direction = Direction::Reverse;
    params.borrow_available = Some(std::sync::Arc::new(vec![30.0, 30.0, 10.0, 0.0, 0.0]));
    let summary = basis::sim::run(&timeline, &params, &mut basis::model::NoLedger);
    let entry_spot = summary.trades.iter().find(|t| t.reason == TradeReason::Entry && t.leg == "spot").unwrap();
    assert_close(entry_spot.qty, -30.0, 1e-12);
    let recalls: Vec<(&str, f64)> = summary.trades.iter().filter(|t| t.reason == TradeReason::Recall).map(|t| (t.leg, t.qty)).collect();
    assert_eq!(recalls.len(), 4, "{recalls:?}");
    assert_eq!(recalls[0].0, "perp");
    assert_close(recalls[0].1, -20.0, 1e-9);
    assert_close(recalls[1].1, 20.0, 1e-9);
    assert_close(recalls[3].1, 10.0, 1e-9);
    assert_eq!((summary.borrow_capped, summary.recalls), (1, 2));
    assert_close(summary.final_equity, 10_000.0, 1e-9);
    assert!(summary.borrow_limited);
    let metrics = basis::measure::metrics::compute(&summary, "TEST", true);
    assert!(metrics.summary_text().contains("1 reverse-carry entries or resizes cut to the borrowable quantity, 2 recalls bought back"));
}

/// Unknown availability (before the series' first row is known, NaN) borrows nothing.
#[test]
fn unknown_availability_borrows_nothing() {
    let prices = vec![100.0; 3];
    let timeline = flat_timeline(&prices, &prices, &prices, HOUR);
    let mut params = plain_params(10_000.0);
    params.entry.direction = Direction::Reverse;
    params.borrow_available = Some(std::sync::Arc::new(vec![f64::NAN, f64::NAN, f64::NAN]));
    let summary = basis::sim::run(&timeline, &params, &mut basis::model::NoLedger);
    assert!(summary.trades.is_empty());
    assert_eq!(summary.entries, 0);
}

/// On the sample, as a config: a reverse carry with a file of borrowable quantities (the
/// sample's coin, 5 coins from the start, 2 from 2025-01-01) is recalled on that day, and
/// metrics.json says so; a long carry with the same file is not limited.
#[test]
fn sample_reverse_carry_with_a_borrow_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("borrowable.csv");
    std::fs::write(&file, "time,value\n2024-06-01T00:00:00Z,5\n2025-01-01T00:00:00Z,2\n").unwrap();
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let base = std::fs::read_to_string(data.join("basis.toml")).unwrap();
    let text = base.replacen("\ndirection = \"long\"", "\ndirection = \"reverse\"", 1).replacen("\n[data]\n", &format!("\n[data]\nborrow_available = {{ path = \"{}\", time_column = \"time\", value_column = \"value\" }}\n", file.display()), 1);
    let config = basis::config::Config::from_toml_str(&text, "test", &data).unwrap();
    let result = basis::app::backtest::run(&config).unwrap();
    let s = &result.summary;
    let borrowed_max = s.trades.iter().filter(|t| t.leg == "spot" && t.qty < 0.0).map(|t| -t.qty).fold(0.0, f64::max);
    assert!(borrowed_max <= 5.0 + 1e-9, "never more than 5 borrowed: {borrowed_max}");
    let recall = s.trades.iter().find(|t| t.reason == TradeReason::Recall).expect("recalled when the lender has 2");
    assert!(basis::time::format_ms(recall.ts_ms).starts_with("2025-01-01"), "{}", basis::time::format_ms(recall.ts_ms));
    assert!(result.metrics.borrow.is_some_and(|b| b.recalls >= 1 && b.capped >= 1));
    assert!((s.final_equity - s.initial_capital - s.pnl.total()).abs() < 1e-6 * s.initial_capital);
}
