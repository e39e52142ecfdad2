"""The Python package against the CLI: the same runs, byte for byte, from files and from
DataFrames, and the CLI's errors as typed exceptions.

Run by tests/python.rs (the README's `cargo test --release`), which builds the extension into a
virtual environment and sets BASIS_BIN to the CLI binary of the same build.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import polars as pl
import pytest

import basis

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "basis.toml"
REAL = ROOT.parent / "shared" / "data"
BIN = os.environ.get("BASIS_BIN")


def cli(*args: str) -> subprocess.CompletedProcess:
    assert BIN, "BASIS_BIN names the CLI binary (tests/python.rs sets it)"
    return subprocess.run([BIN, *args], cwd=ROOT, capture_output=True, text=True, check=True)


def test_backtest_equals_the_cli_byte_for_byte(tmp_path: Path) -> None:
    cli("backtest", "--config", str(SAMPLE), "--output-dir", str(tmp_path / "cli"), "--name", "run", "--set", "portfolio.leverage=3")
    run = basis.backtest(SAMPLE, set={"portfolio.leverage": 3})
    folder = run.write(tmp_path / "py", name="run", report=False)
    for name in ["ledger.parquet", "trades.parquet", "funding.parquet", "metrics.json"]:
        assert (folder / name).read_bytes() == (tmp_path / "cli" / "run" / name).read_bytes(), name
    # The in-memory tables are the files' tables.
    assert run.ledger.equals(pl.read_parquet(tmp_path / "cli" / "run" / "ledger.parquet"))
    assert run.trades.equals(pl.read_parquet(tmp_path / "cli" / "run" / "trades.parquet"))
    assert run.funding.equals(pl.read_parquet(tmp_path / "cli" / "run" / "funding.parquet"))
    # Hand-checked figures of the sample at 3x (README's sample run is at 2x): the ledger's last
    # equity is the metrics' final equity, and PnL components add up to it.
    last = run.ledger.row(-1, named=True)
    assert last["equity"] == pytest.approx(run.metrics["final_equity"], abs=1e-9)
    pnl_columns = [c for c in run.ledger.columns if c.startswith("pnl_") and c != "pnl_total"]
    total = run.ledger.select(pl.sum_horizontal(pnl_columns).sum()).item()
    assert total == pytest.approx(run.metrics["final_equity"] - run.metrics["initial_capital"], abs=1e-6)
    assert run.summary().startswith("SYNTHETIC DATA")


def test_a_config_as_text_or_dict_is_the_same_config(tmp_path: Path) -> None:
    text = SAMPLE.read_text()
    # Relative paths in text resolve against the working directory: the config's own folder.
    os.chdir(SAMPLE.parent)
    from_text = basis.backtest(text)
    import tomllib

    from_dict = basis.backtest(tomllib.loads(text))
    from_file = basis.backtest(SAMPLE)
    assert from_text.metrics == from_file.metrics == from_dict.metrics


def test_a_dataframe_input_gives_the_run_its_file_gives(tmp_path: Path) -> None:
    # The sample's funding files as one DataFrame (pandas and pyarrow tables go the same way).
    files = sorted((ROOT / "data" / "sample" / "funding").glob("SYNTHUSDT-fundingRate-*.csv"))
    frame = pl.concat([pl.read_csv(f) for f in files])
    from_files = basis.backtest(SAMPLE)
    from_frame = basis.backtest(SAMPLE, data={"funding": frame})
    assert from_frame.metrics == from_files.metrics
    assert from_frame.ledger.equals(from_files.ledger)
    pyarrow = pytest.importorskip("pyarrow")
    from_arrow = basis.backtest(SAMPLE, data={"funding": frame.to_arrow()})
    assert from_arrow.metrics == from_files.metrics
    assert isinstance(pyarrow.table(frame.to_arrow()), pyarrow.Table)


def test_bad_inputs_raise_typed_errors_with_the_cli_message() -> None:
    with pytest.raises(basis.ConfigError, match="leverage"):
        basis.backtest(SAMPLE, set={"portfolio.leverage": -1})
    with pytest.raises(basis.ConfigError, match="unknown"):
        basis.backtest(SAMPLE, set={"strategy.mode": "sometimes"})
    files = sorted((ROOT / "data" / "sample" / "funding").glob("SYNTHUSDT-fundingRate-*.csv"))
    frame = pl.concat([pl.read_csv(f) for f in files])
    # A rate that is not a number, in the fourth row: the message names the frame and the row.
    broken = frame.with_columns(pl.col("last_funding_rate").cast(pl.String)).with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("oops")).otherwise(pl.col("last_funding_rate")).alias("last_funding_rate")
    )
    with pytest.raises(basis.DataError) as err:
        basis.backtest(SAMPLE, data={"funding": broken})
    message = str(err.value)
    assert "data.funding (DataFrame)" in message and "oops" in message, message
    with pytest.raises(basis.BasisError):
        basis.backtest(SAMPLE, set={"data.spot.path": "does-not-exist-*.csv"})
    assert issubclass(basis.ConfigError, basis.BasisError) and issubclass(basis.DataError, basis.BasisError)


def test_sweep_shards_merge_into_the_whole_sweep(tmp_path: Path) -> None:
    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text(
        f'base = "{SAMPLE}"\nname = "s"\nmetric = "apr"\n[params]\n"portfolio.leverage" = [1.0, 2.0, 3.0]\n"portfolio.reserve_fraction" = [0.0, 0.1]\n'
    )
    seen: list[tuple[int, int]] = []
    whole = basis.sweep(sweep_file, output_dir=tmp_path / "whole", threads=2, progress=lambda done, total: seen.append((done, total)))
    assert whole.height == 6 and whole["error"].to_list() == [""] * 6
    # Progress is reported as the sweep goes, and ends at its total.
    assert seen and seen[-1] == (6, 6) and all(t == 6 for _, t in seen) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    folders = [basis.sweep_to_folder(sweep_file, shard=(i, 3), output_dir=tmp_path / f"shard{i}") for i in (2, 0, 1)]
    merged = basis.merge_shards(folders, tmp_path, "merged")
    assert (merged / "results.parquet").read_bytes() == (tmp_path / "whole" / "s" / "results.parquet").read_bytes()
    with pytest.raises(basis.DataError, match="two shards"):
        basis.merge_shards([folders[0], folders[0]], tmp_path, "twice")
    # The sweep's file is what the CLI writes.
    cli("sweep", "--config", str(sweep_file), "--output-dir", str(tmp_path / "cli"))
    assert pl.read_parquet(tmp_path / "cli" / "s" / "results.parquet").equals(whole)


def test_presets_and_inspect() -> None:
    ids = [p["id"] for p in basis.presets()]
    assert "binance_usdm" in ids and "hyperliquid" in ids
    text = basis.inspect(ROOT / "data" / "sample" / "funding" / "SYNTHUSDT-fundingRate-2024-08.csv")
    assert "binance_funding" in text
    with pytest.raises(basis.DataError):
        basis.inspect(ROOT / "data" / "nonexistent.csv")


@pytest.mark.skipif(not (REAL / "freqtrade-binance-1h").is_dir() and not os.environ.get("CI"), reason="../shared/data is missing")
def test_a_book_on_real_data(tmp_path: Path) -> None:
    run = basis.backtest(ROOT / "data" / "examples" / "portfolio-btc-eth-1h.toml")
    assert set(run.legs["pair"].unique()) == {"BTCUSDT", "ETHUSDT"}
    assert run.accounts.height == run.ledger.height
    cli("backtest", "--config", str(ROOT / "data" / "examples" / "portfolio-btc-eth-1h.toml"), "--output-dir", str(tmp_path / "cli"), "--name", "b")
    folder = run.write(tmp_path / "py", name="b", report=False)
    for name in ["ledger.parquet", "legs.parquet", "accounts.parquet", "trades.parquet", "funding.parquet", "metrics.json"]:
        assert (folder / name).read_bytes() == (tmp_path / "cli" / "b" / name).read_bytes(), name


def test_a_progress_callback_that_raises_stops_the_sweep_and_a_rerun_resumes(tmp_path: Path) -> None:
    sweep_file = tmp_path / "big.toml"
    # 6,000 configurations: six chunks of up to 1,024 (each a fraction of a second here).
    sweep_file.write_text(f'base = "{SAMPLE}"\nname = "big"\nmetric = "apr"\nmode = "random"\nsamples = 6000\n[params]\n"portfolio.leverage" = {{ min = 1.0, max = 3.0 }}\n')

    def stop(done: int, total: int) -> None:
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        basis.sweep(sweep_file, output_dir=tmp_path, progress=stop)
    assert (tmp_path / ".big.partial").is_dir(), "the finished chunk stays for the rerun"
    results = basis.sweep(sweep_file, output_dir=tmp_path)
    assert results.height == 6000


def test_caps_term_and_stress_write_the_cli_files(tmp_path: Path) -> None:
    cli("caps", "--config", str(SAMPLE), "--venue", "binance_usdm", "--cap", "0.003", "--output-dir", str(tmp_path / "cli"), "--name", "caps")
    basis.caps(SAMPLE, venues=["binance_usdm"], caps=["0.003"], output_dir=tmp_path / "py", extra=["--name", "caps"])
    for name in ["caps.json", "caps_settlements.parquet"]:
        assert (tmp_path / "py" / "caps" / name).read_bytes() == (tmp_path / "cli" / "caps" / name).read_bytes(), name
    dated = ROOT / "data" / "examples" / "dated-quarterly.toml"
    cli("term", "--config", str(dated), "--output-dir", str(tmp_path / "cli"), "--name", "term")
    basis.term(dated, output_dir=tmp_path / "py", extra=["--name", "term"])
    assert (tmp_path / "py" / "term" / "term.parquet").read_bytes() == (tmp_path / "cli" / "term" / "term.parquet").read_bytes()
    stress_file = ROOT / "data" / "examples" / "stress.toml"
    cli("stress", "--config", str(SAMPLE), "--stress", str(stress_file), "--output-dir", str(tmp_path / "cli"), "--name", "stress")
    basis.stress(SAMPLE, stress_file, output_dir=tmp_path / "py", extra=["--name", "stress"])
    assert (tmp_path / "py" / "stress" / "stress.json").read_bytes() == (tmp_path / "cli" / "stress" / "stress.json").read_bytes()
