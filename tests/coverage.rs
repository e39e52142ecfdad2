//! Data truth through the library, with figures worked out by hand from the corpus fixtures in
//! tests/corpus/ (48 hourly bars closing 2024-01-01 01:00 .. 2024-01-03 00:00 UTC, spot at 100,
//! perp at 100.1, +0.01 % funding every 8 h): the window is clipped or refused where a source
//! ends, a partly covered window counts funding over covered time only, a local-time funding
//! file reads correctly with `utc_offset_hours`, and oracle-paid venues value funding at the
//! index. The same fixtures run through the binary in tests/bad_inputs.rs.

mod common;

use std::path::Path;

use basis::app::backtest;
use basis::config::Config;
use basis::measure::ledger::events;
use common::*;

fn corpus(case: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(case)
}

fn load(case: &str) -> Config {
    Config::load(&corpus(case).join("config.toml")).unwrap_or_else(|e| panic!("{case}: {e:#}"))
}

#[test]
fn funding_that_ends_early_clips_the_default_window() {
    let result = backtest::run(&load("39-funding-ends-early")).unwrap();
    // Three settlements (08:00, 16:00, 00:00) cover up to 2024-01-02 08:00: steps 01:00 .. 08:00
    // of the next day, 32 of the 48.
    assert_eq!(result.timeline.len(), 32);
    assert_eq!(result.metrics.end, "2024-01-02 08:00:00Z");
    assert_eq!(result.metrics.settlements_held, 3);
    assert!(result.warnings.iter().any(|w| w.contains("(16 perp steps cut)")), "{:?}", result.warnings);
}

/// Only the source that sets the bound is blamed, once: the spot also ends before the perp, but
/// after the funding does, so the 16 steps are the funding's cut alone.
#[test]
fn a_clipped_window_names_only_the_binding_source() {
    let dir = tempfile::tempdir().unwrap();
    let case = corpus("39-funding-ends-early");
    for file in ["config.toml", "funding.csv", "perp.csv"] {
        std::fs::copy(case.join(file), dir.path().join(file)).unwrap();
    }
    // The spot's first 40 of 48 hourly bars: it ends at 2024-01-02 16:00, after the funding's
    // cover (08:00) and before the perp (2024-01-03 00:00).
    let spot = std::fs::read_to_string(case.join("spot.csv")).unwrap();
    let kept: Vec<&str> = spot.lines().take(40 + usize::from(spot.starts_with("open_time"))).collect();
    std::fs::write(dir.path().join("spot.csv"), kept.join("\n") + "\n").unwrap();
    let result = backtest::run(&Config::load(&dir.path().join("config.toml")).unwrap()).unwrap();
    let cut: Vec<&String> = result.warnings.iter().filter(|w| w.contains("perp steps cut")).collect();
    assert_eq!(cut.len(), 1, "{cut:?}");
    assert!(cut[0].starts_with("coverage: funding (") && cut[0].contains("(16 perp steps cut)") && !cut[0].contains("spot ("), "{cut:?}");
}

#[test]
fn funding_that_starts_late_clips_the_front() {
    let result = backtest::run(&load("40-funding-starts-late")).unwrap();
    // Settlements from 2024-01-02 00:00 cover from one interval before: 2024-01-01 16:00.
    assert_eq!(result.metrics.start, "2024-01-01 16:00:00Z");
    assert_eq!(result.timeline.len(), 48 - 15);
}

#[test]
fn a_partly_covered_window_flags_its_steps_and_counts_funding_over_covered_time() {
    let result = backtest::run(&load("44-partial-coverage-allowed")).unwrap();
    assert_eq!(result.timeline.len(), 48);
    // Steps closing after 2024-01-02 08:00 (33 h .. 48 h) are outside the funding's coverage.
    let flagged: Vec<usize> = result.ledger.rows().enumerate().filter(|(_, r)| r.events & events::UNCOVERED != 0).map(|(i, _)| i).collect();
    assert_eq!(flagged, (32..48).collect::<Vec<_>>());
    let m = &result.metrics;
    assert_eq!(m.settlements_held, 3);
    // Σ side × rate = 3 × 0.0001 over 47 h of window, 16 of them uncovered: 31 covered hours.
    assert_close(m.years_uncovered, 16.0 / 8760.0, 1e-15);
    assert_close(m.funding_apr_over_window, 0.0003 * 8760.0 / 31.0, 1e-12);
    // Held from the first step to the last: 47 h.
    assert_close(m.funding_apr_while_held, 0.0003 * 8760.0 / 47.0, 1e-12);
}

#[test]
fn an_explicit_window_past_the_data_is_refused() {
    let err = format!("{:#}", backtest::run(&load("42-window-beyond-coverage")).err().expect("an error"));
    assert!(err.contains("strategy.end = 2024-01-05 00:00:00Z is after the data ends"), "{err}");
    assert!(basis::error::is_input_error(&backtest::run(&load("43-window-before-coverage")).err().unwrap()));
}

#[test]
fn a_local_time_funding_file_reads_correctly_with_its_offset() {
    let result = backtest::run(&load("46-funding-local-time-read-with-offset")).unwrap();
    assert!(result.warnings.iter().all(|w| !w.contains("schedule")), "{:?}", result.warnings);
    // The file says 11:00, 19:00, ... in UTC+3: settlements at 08:00, 16:00, ... UTC.
    let first = result.settlements.first().expect("settlements");
    assert_eq!(first.settlement.settle_ms, T0 + 8 * HOUR);
    assert_eq!(result.metrics.settlements_held, 6);
    // Without the offset the same file is three hours late, and says so.
    let mut config = load("46-funding-local-time-read-with-offset");
    config.data.funding.as_mut().unwrap().utc_offset_hours = None;
    let result = backtest::run(&config).unwrap();
    assert!(result.warnings.iter().any(|w| w.contains("3 h after Binance USD-M's 00/08/16 UTC schedule")), "{:?}", result.warnings);
}

#[test]
fn a_mark_with_a_hole_is_reported_and_the_perp_stands_in() {
    let result = backtest::run(&load("41-mark-missing-a-span")).unwrap();
    assert!(result.warnings.iter().any(|w| w.starts_with("mark: 10 of 48 steps have no mark bar")), "{:?}", result.warnings);
    // Where the mark is missing, the perp's close (100.1) values the position.
    assert_eq!(result.timeline.mark[12], 100.1);
    assert_eq!(result.timeline.mark[5], 100.05);
}

#[test]
fn clean_fixtures_raise_no_coverage_or_clock_warning() {
    let result = backtest::run(&load("19-crlf")).unwrap();
    assert!(result.warnings.iter().all(|w| !w.contains("coverage") && !w.contains("schedule") && !w.contains("grid")), "{:?}", result.warnings);
    assert_eq!(result.timeline.len(), 48);
}

#[test]
fn oracle_paid_venues_value_funding_at_the_index() {
    let spec = basis::data::synth::SynthSpec { days: 4, ..Default::default() };
    let mut data = basis::data::synth::market_data(&spec);
    let mut index = data.spot.clone();
    index.label = "index".into();
    index.close.iter_mut().for_each(|c| *c *= 1.01);
    index.high.iter_mut().for_each(|c| *c *= 1.01);
    index.low.iter_mut().for_each(|c| *c *= 1.01);
    data.index = Some(index.clone());
    let window = basis::data::align::Window { funding_at_index: true, ..Default::default() };
    let timeline = basis::data::align::align_window(&data, &window, 0.0).unwrap();
    assert!(!timeline.funding.is_empty());
    for event in &timeline.funding {
        let k = index.ts_ms.partition_point(|&t| t <= event.settle_ms) - 1;
        assert_eq!(event.price, index.close[k]);
    }
    // Without an index, a Hyperliquid run values funding at the mark and says so once.
    let text = std::fs::read_to_string(corpus("19-crlf").join("config.toml")).unwrap() + "\n[venue]\npreset = \"hyperliquid\"\n";
    let config = Config::from_toml_str(&text, "test", &corpus("19-crlf")).unwrap();
    let result = backtest::run(&config).unwrap();
    assert_eq!(result.warnings.iter().filter(|w| w.contains("oracle")).count(), 1, "{:?}", result.warnings);
}

/// Moving the perp's columns into the timeline and letting the spot bars go (what `basis
/// backtest` does) gives the same timeline as copying them, with and without a mark series,
/// for the whole data and a window cut inside it; without a mark series the perp's last is
/// kept once and read as the mark.
#[test]
fn aligning_with_the_perp_moved_in_equals_aligning_with_it_copied() {
    use basis::data::align::{align_window, align_window_taking_bars, Window};
    let data = basis::data::synth::market_data(&basis::data::synth::SynthSpec { days: 20, bar_minutes: 60, ..Default::default() });
    let day = 86_400_000;
    let t0 = data.perp.ts_ms[0];
    for with_mark in [true, false] {
        for window in [Window::default(), Window { start_ms: Some(t0 + 3 * day + 1), end_ms: Some(t0 + 11 * day - 1), ..Default::default() }] {
            let mut market = data.clone();
            if !with_mark {
                market.mark = None;
            }
            let copied = align_window(&market, &window, 0.03).unwrap();
            let moved = align_window_taking_bars(&mut market, &window, 0.03).unwrap();
            assert!(market.perp.ts_ms.is_empty(), "the perp's columns were moved out");
            assert!(copied.len() > 100 && copied.len() < data.perp.ts_ms.len() || window.start_ms.is_none(), "{} steps", copied.len());
            assert_eq!(moved.ts_ms, copied.ts_ms);
            assert_eq!(moved.perp, copied.perp);
            assert_eq!(moved.mark, copied.mark);
            assert_eq!(moved.mark_high, copied.mark_high);
            assert_eq!(moved.mark_low, copied.mark_low);
            assert_eq!(moved.spot, copied.spot);
            assert_eq!(moved.funding.len(), copied.funding.len());
            assert!(market.spot.ts_ms.is_empty(), "the spot bars were let go");
            if !with_mark {
                // One copy of the perp's last, read as the mark.
                assert!(moved.mark.is_empty());
                assert_eq!(moved.mark_prices(), &moved.perp[..], "without a mark series the perp's last stands in");
            } else {
                assert_eq!(moved.mark_prices(), &moved.mark[..]);
                assert_ne!(moved.mark, moved.perp);
            }
        }
    }
}

/// A close-only spot source keeps no range after loading (no two extra copies of its closes);
/// the timeline then has no spot range either, and `data convert` writes its closes as high
/// and low.
#[test]
fn a_close_only_spot_keeps_no_range() {
    let dir = tempfile::tempdir().unwrap();
    let hour = 3_600_000i64;
    let t0 = 1_704_067_200_000i64;
    let mut spot = String::from("ts,close\n");
    let mut perp = String::from("ts,close,high,low\n");
    for k in 1..=48 {
        let price = 100.0 + k as f64 * 0.5;
        spot.push_str(&format!("{},{price}\n", t0 + k * hour));
        perp.push_str(&format!("{},{},{},{}\n", t0 + k * hour, price + 0.1, price + 0.6, price - 0.4));
    }
    let funding: String = std::iter::once("ts,rate\n".to_string()).chain((0..=6).map(|k| format!("{},0.0001\n", t0 + k * 8 * hour))).collect();
    std::fs::write(dir.path().join("spot.csv"), spot).unwrap();
    std::fs::write(dir.path().join("perp.csv"), perp).unwrap();
    std::fs::write(dir.path().join("funding.csv"), funding).unwrap();
    let text = "[data]\nsymbol = \"TESTUSDT\"\n\
        [data.spot]\nformat = \"generic\"\npath = \"spot.csv\"\nclose_time_column = \"ts\"\nclose_column = \"close\"\n\
        [data.perp]\nformat = \"generic\"\npath = \"perp.csv\"\nclose_time_column = \"ts\"\nclose_column = \"close\"\nhigh_column = \"high\"\nlow_column = \"low\"\n\
        [data.funding]\nformat = \"generic\"\npath = \"funding.csv\"\ntime_column = \"ts\"\nrate_column = \"rate\"\ninterval_hours = 8\n";
    let config = Config::from_toml_str(text, "test", dir.path()).unwrap();
    let market = basis::data::load(&config.data).unwrap();
    assert_eq!(market.spot.close.len(), 48);
    assert!(market.spot.high.is_empty() && market.spot.low.is_empty(), "a close-only spot keeps no range");
    assert_eq!(market.perp.high.len(), 48, "the perp keeps its range");
    let timeline = basis::data::align::align_window(&market, &Default::default(), 0.0).unwrap();
    assert!(timeline.spot_high.is_empty() && timeline.spot_low.is_empty());
    assert_eq!(timeline.spot[..3], [100.5, 101.0, 101.5]);
    let frame = basis::app::convert::bars_frame(&market.spot).unwrap();
    for name in ["high", "low"] {
        let column: Vec<f64> = frame.column(name).unwrap().f64().unwrap().into_no_null_iter().collect();
        assert_eq!(column, market.spot.close, "{name}");
    }
}

/// A venue's schedule comes from its preset, whether the config names the preset or only a
/// format of that venue's data: a BitMEX funding file without `[venue] preset` is checked
/// against BitMEX's 04/12/20 UTC grid, a Binance dump against 00/08/16.
#[test]
fn a_venue_format_takes_its_schedule_from_the_preset() {
    let bitmex = basis::venue::Preset::load_shared("bitmex", std::path::Path::new(".")).unwrap().schedule();
    assert_eq!((bitmex.interval_hours, bitmex.offset_hours), (8.0, 4.0));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    // data/basis.toml without its `[venue] preset`: the dump format alone names the venue.
    let text = std::fs::read_to_string(dir.join("basis.toml")).unwrap().replace("preset = \"binance_usdm\"", "");
    let config = basis::config::Config::from_toml_str(&text, "test", &dir).unwrap();
    assert!(config.venue.preset.is_none());
    let schedule = config.data.funding_schedule.expect("the Binance dump format implies Binance's schedule");
    assert_eq!((schedule.venue.as_str(), schedule.interval_hours, schedule.offset_hours), ("Binance USD-M", 8.0, 0.0));
    let generic = text.replace("format = \"binance_funding\"", "format = \"generic\"");
    let config = basis::config::Config::from_toml_str(&generic, "test", &dir).unwrap();
    assert!(config.data.funding_schedule.is_none(), "a generic file implies no venue");
}
