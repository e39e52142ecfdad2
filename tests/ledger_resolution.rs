//! `[run] ledger`: full, hourly, daily or none. A coarser ledger keeps each period's last row
//! with the period's PnL summed, so every kept row still adds up; the metrics never change.

mod common;

use std::path::Path;

use basis::config::{Config, LedgerResolution};
use basis::measure::ledger::{PeriodLedger, Recorder, StepRow};
use common::*;

/// Half-hour steps at 00:30, 01:00, 01:30 and 02:00 make two hours: the 01:00 step closes the
/// first hour. Kept: (01:00, PnL 1 + 2, events 1|4) and (02:00, PnL 3 + 4, events 8|0).
#[test]
fn a_period_keeps_its_last_row_and_sums_its_pnl() {
    let mut ledger = PeriodLedger::new(HOUR, 2);
    for (k, (minutes, events)) in [(30, 1u8), (60, 4), (90, 8), (120, 0)].into_iter().enumerate() {
        let mut row = StepRow { ts_ms: T0 + minutes * 60_000, events, equity: 100.0 + k as f64, ..Default::default() };
        row.pnl.funding = (k + 1) as f64;
        ledger.record(&row);
    }
    let kept = ledger.finish();
    assert_eq!(kept.len(), 2);
    let (a, b) = (kept.row(0), kept.row(1));
    assert_eq!((a.ts_ms, a.events, a.pnl.funding, a.equity), (T0 + HOUR, 5, 3.0, 101.0));
    assert_eq!((b.ts_ms, b.events, b.pnl.funding, b.equity), (T0 + 2 * HOUR, 8, 7.0, 103.0));
}

fn sample(resolution: LedgerResolution) -> (Config, basis::app::backtest::BacktestResult) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/basis.toml");
    let mut config = Config::load(&path).expect("data/basis.toml loads");
    config.run.ledger = resolution;
    if resolution == LedgerResolution::None {
        config.run.report = false;
    }
    let result = basis::app::backtest::run(&config).expect("runs");
    (config, result)
}

#[test]
fn daily_rows_close_and_metrics_stay_exact() {
    let (_, full) = sample(LedgerResolution::Full);
    let (_, hourly) = sample(LedgerResolution::Hourly);
    let (_, daily) = sample(LedgerResolution::Daily);
    // The sample's steps are hourly: the hourly ledger is the full one.
    assert_eq!(hourly.ledger.len(), full.ledger.len());
    // One row per day, each the day's last step, its PnL the change in equity since the last:
    // steps 2024-07-01 01:00 .. 2025-07-01 00:00, the last closing 2025-06-30, so 365 days.
    assert_eq!(daily.ledger.len(), 365);
    let mut previous = full.summary.initial_capital;
    for row in daily.ledger.rows() {
        assert_close(row.equity - previous, row.pnl.total(), 1e-6);
        let at = full.ledger.rows().find(|r| r.ts_ms == row.ts_ms).expect("a kept row is a step");
        assert_close(row.equity, at.equity, 1e-9);
        previous = row.equity;
    }
    assert_eq!(serde_json::to_string(&daily.metrics).unwrap(), serde_json::to_string(&full.metrics).unwrap());
}

#[test]
fn no_ledger_writes_no_rows_and_needs_report_off() {
    let (config, none) = sample(LedgerResolution::None);
    let (_, full) = sample(LedgerResolution::Full);
    assert_eq!(none.ledger.len(), 0);
    assert_eq!(serde_json::to_string(&none.metrics).unwrap(), serde_json::to_string(&full.metrics).unwrap());
    let out = tempfile::tempdir().unwrap();
    let mut config = config;
    config.run.output_dir = out.path().to_path_buf();
    let folder = basis::app::backtest::write_outputs(&config, None, &none, false).unwrap();
    assert!(!folder.join("ledger.parquet").exists() && folder.join("metrics.json").exists());
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/basis.toml")).unwrap().replace("[run]\n", "[run]\nledger = \"none\"\n");
    let err = Config::from_toml_str(&text, "test", Path::new(env!("CARGO_MANIFEST_DIR")).join("data").as_path()).err().expect("refused");
    assert!(format!("{err:#}").contains("set report = false"), "{err:#}");
}

/// A run longer than one row group and than the report's row limit, written as it runs: the
/// file holds every row (values equal to the in-memory run's), in row groups of 65,536; the
/// report draws from whole-minute periods whose PnL still adds up to the change in equity.
#[test]
fn a_long_run_streams_its_ledger_and_draws_from_bounded_rows() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("minute");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_basis"))
        .args(["data", "synth", "--days", "100", "--bar-minutes", "1", "--out", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = format!(
        "[run]\nname = \"minute\"\noutput_dir = {out:?}\nreport = true\n[data]\nsymbol = \"SYNTHUSDT\"\nsynthetic = true\n\
         [data.spot]\nformat = \"binance_klines\"\npath = \"{d}/spot/*.csv\"\n[data.perp]\nformat = \"binance_klines\"\npath = \"{d}/perp/*.csv\"\n\
         [data.funding]\nformat = \"binance_funding\"\npath = \"{d}/funding/*.csv\"\n",
        out = dir.path().join("reports").to_string_lossy(),
        d = data.to_string_lossy()
    );
    let config = Config::from_toml_str(&text, "test", dir.path()).unwrap();
    let in_memory = basis::app::backtest::run(&config).unwrap();
    let steps = in_memory.ledger.len();
    assert!(steps > basis::measure::ledger::REPORT_ROWS && steps > 2 * basis::measure::ledger::ROW_GROUP_ROWS, "{steps} steps");
    let (streamed, folder) = basis::app::backtest::run_to_folder(&config, None, false).unwrap();
    let file = std::fs::File::open(folder.join("ledger.parquet")).unwrap();
    let mut reader = polars::prelude::ParquetReader::new(file);
    use polars::prelude::SerReader;
    assert_eq!(reader.num_rows().unwrap(), steps);
    let frame = reader.finish().unwrap();
    let read_back = basis::measure::ledger::FullLedger::from_frame(&frame, "ledger.parquet").unwrap();
    for name in ["equity", "pnl_funding", "pnl_total", "perp_qty"] {
        assert_eq!(read_back.column(name).unwrap(), in_memory.ledger.column(name).unwrap(), "{name}");
    }
    assert_eq!(read_back.ts_ms(), in_memory.ledger.ts_ms());
    // Every column, bit for bit (the file is written by a writer thread, row group by row group).
    assert!(frame.equals_missing(&in_memory.ledger.to_frame().unwrap()), "the streamed ledger differs from the in-memory one");
    // The report's rows: bounded, whole minutes, and each row's PnL is its change in equity.
    let drawn = &streamed.ledger;
    assert!(drawn.len() <= basis::measure::ledger::REPORT_ROWS, "{} rows drawn", drawn.len());
    let mut previous = config.portfolio.initial_capital;
    for row in drawn.rows() {
        assert_close(row.pnl.total(), row.equity - previous, 1e-6);
        previous = row.equity;
    }
    assert_eq!(drawn.row(drawn.len() - 1).equity, in_memory.summary.final_equity);
    assert_eq!(streamed.metrics.sharpe, in_memory.metrics.sharpe);
    // `basis report` reads the saved ledger a row group at a time into the same drawn rows: the
    // re-rendered page is the run's own, byte for byte.
    let page = std::fs::read(folder.join("index.html")).unwrap();
    basis::render::rerender(&folder).unwrap();
    assert!(std::fs::read(folder.join("index.html")).unwrap() == page, "the re-rendered report differs");
}
