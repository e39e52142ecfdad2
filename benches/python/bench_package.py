"""Benchmark of the Python package on a generated year of 1-minute bars (525,600 steps):

- the package's ``basis.backtest`` against the extension's bare library call (``_basis.backtest``:
  the config loaded and the run simulated in Rust, nothing converted) — the Python layer's cost;
- handing the 525,600-row ledger to polars (``run.ledger``: Arrow C stream, no copy);
- the CLI binary on the same config, for scale (it also writes the files).

    python benches/python/bench_package.py [--basis-bin target/release/basis]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import basis
from basis import _basis

ROOT = Path(__file__).resolve().parents[2]


def best(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--basis-bin", default=str(ROOT / "target" / "release" / "basis"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "sample"
        _basis.cli(["data", "synth", "--out", str(sample), "--bar-minutes", "1", "--days", "365"])
        text = (ROOT / "data" / "basis.toml").read_text().replace('"sample/', f'"{sample}/')
        config = Path(tmp) / "minute.toml"
        config.write_text(text.replace("-1h-", "-1m-"))
        # Alternated, so both see the same machine.
        bare_times, package_times = [], []
        for _ in range(6):
            bare_times.append(best(lambda: _basis.backtest("path", str(config), ["run.report=false"]), repeat=1)[0])
            package_times.append(best(lambda: basis.backtest(config, set=["run.report=false"]), repeat=1)[0])
        bare = (min(bare_times), statistics.median(bare_times))
        package = (min(package_times), statistics.median(package_times))
        run = basis.backtest(config, set=["run.report=false"])
        handoff = best(lambda: __import__("polars").DataFrame(run._result.table("ledger")), repeat=7)
        height = run.ledger.height
        print(f"steps {height}")
        print(f"library call (_basis.backtest)  best {bare[0]*1e3:8.1f} ms  median {bare[1]*1e3:8.1f} ms")
        print(f"basis.backtest                  best {package[0]*1e3:8.1f} ms  median {package[1]*1e3:8.1f} ms  overhead {100*(package[0]/bare[0]-1):+.1f} %")
        print(f"ledger to polars ({height} rows) best {handoff[0]*1e3:8.2f} ms  median {handoff[1]*1e3:8.2f} ms")
        if Path(args.basis_bin).is_file():
            cli = best(lambda: subprocess.run([args.basis_bin, "backtest", "--config", str(config), "--output-dir", str(Path(tmp) / "out"), "--force", "--set", "run.report=false"], check=True, capture_output=True), repeat=3)
            print(f"CLI backtest (writes the files)  best {cli[0]*1e3:8.1f} ms  median {cli[1]*1e3:8.1f} ms")


if __name__ == "__main__":
    main()
