"""basis from Python: the backtester's runs as polars DataFrames, in the notebook.

A thin layer over the Rust library (the extension ``basis._basis``): every function loads its
config as ``basis`` on the command line does and calls the same code, so a run here and the
CLI's files agree byte for byte.

    >>> import basis
    >>> run = basis.backtest("data/basis.toml", set={"portfolio.leverage": 2})
    >>> run.metrics["apr"], run.ledger.height
    >>> run.write("reports", report=True)   # the folder `basis backtest` writes

Errors raise :class:`ConfigError` (the config or an override is invalid), :class:`DataError`
(a file, row or column the CLI would refuse) or :class:`BasisError` (anything else), carrying
the CLI's message.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from . import _basis
from ._basis import BasisError, ConfigError, DataError

__all__ = [
    "BasisError",
    "ConfigError",
    "DataError",
    "Run",
    "backtest",
    "caps",
    "inspect",
    "merge_shards",
    "presets",
    "stress",
    "sweep",
    "sweep_to_folder",
    "term",
    "venues",
]
__version__ = _basis.__version__

def _source(config: Any) -> tuple[str, str]:
    """A config as the extension takes it: a path, TOML text, or a dict (as JSON)."""
    if isinstance(config, Mapping):
        return "json", json.dumps(config)
    if isinstance(config, os.PathLike):
        return "path", os.fspath(config)
    if isinstance(config, str):
        if "\n" not in config and (os.path.exists(config) or config.endswith(".toml")):
            return "path", config
        return "toml", config
    raise TypeError(f"config must be a path, TOML text or a dict, not {type(config).__name__}")


def _overrides(set: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    """`set` as the CLI's `--set KEY=VALUE` items (values written as TOML)."""
    if set is None:
        return []
    if isinstance(set, Mapping):
        return [f"{key}={json.dumps(value)}" for key, value in set.items()]
    return [str(item) for item in set]


def _frame(obj: Any, name: str) -> pl.DataFrame:
    """A polars, pandas or pyarrow table as a polars DataFrame."""
    if isinstance(obj, pl.DataFrame):
        return obj
    if type(obj).__module__.startswith("pandas"):
        return pl.from_pandas(obj)
    if hasattr(obj, "__arrow_c_stream__"):
        return pl.DataFrame(obj)
    raise TypeError(f"data[{name!r}] must be a polars, pandas or pyarrow table, not {type(obj).__name__}")


class Run:
    """One backtest's results. Tables are polars DataFrames with the columns and values of the
    files ``basis backtest`` writes; ``metrics`` is ``metrics.json`` as a dict."""

    def __init__(self, result: Any, scratch: tempfile.TemporaryDirectory | None = None) -> None:
        self._result = result
        self._scratch = scratch
        self._tables: dict[str, pl.DataFrame] = {}
        self.metrics: dict[str, Any] = json.loads(result.metrics_json())
        self.warnings: list[str] = list(result.warnings())

    def _table(self, name: str) -> pl.DataFrame:
        if name not in self._tables:
            self._tables[name] = pl.DataFrame(self._result.table(name))
        return self._tables[name]

    @property
    def ledger(self) -> pl.DataFrame:
        """Per step: prices, state, quantities, cash, margin, equity, PnL by component (ledger.parquet)."""
        return self._table("ledger")

    @property
    def trades(self) -> pl.DataFrame:
        """Every fill with its reason, fee and slippage (trades.parquet)."""
        return self._table("trades")

    @property
    def funding(self) -> pl.DataFrame:
        """Every settlement in the window, held or not (funding.parquet)."""
        return self._table("funding")

    @property
    def legs(self) -> pl.DataFrame:
        """A book's pairs and legs per step (legs.parquet)."""
        return self._table("legs")

    @property
    def accounts(self) -> pl.DataFrame:
        """A book's margin accounts per step (accounts.parquet)."""
        return self._table("accounts")

    def summary(self) -> str:
        """The text ``basis backtest`` prints."""
        return self._result.summary()

    def write(self, output_dir: str | os.PathLike[str] = "reports", name: str | None = None, report: bool = True, force: bool = False) -> Path:
        """Write the run's folder as ``basis backtest`` does (a new folder unless ``force``)."""
        return Path(self._result.write(Path(output_dir), name, report, force))

    def __repr__(self) -> str:
        first = self.summary().splitlines()[:2]
        return "<basis.Run " + " | ".join(line.strip() for line in first) + ">"


def backtest(config: Any, set: Mapping[str, Any] | Sequence[str] | None = None, data: Mapping[str, Any] | None = None) -> Run:
    """Run a backtest (one pair, or a book) as ``basis backtest --config CONFIG --set ...`` does.

    ``config``: a path, TOML text or a dict. ``set``: ``{"portfolio.leverage": 2}`` (or
    ``["portfolio.leverage=2"]``). ``data``: any ``[data.*]`` source as a DataFrame instead of
    its file, e.g. ``{"funding": df}``: the config's section keeps its format and columns, and
    the frame is read by the same loaders with the same checks (errors name it).
    """
    overrides = _overrides(set)
    scratch = None
    if data:
        scratch = tempfile.TemporaryDirectory(prefix="basis-frames-")
        for name, obj in data.items():
            # CSV, the one layout every reader takes (Binance's dump formats are CSV only);
            # named for messages, without glob characters (the path is read as a pattern).
            path = Path(scratch.name) / f"data.{name} (DataFrame).csv"
            _frame(obj, name).write_csv(path)
            overrides.append(f"data.{name}.path={json.dumps(str(path))}")
    kind, text = _source(config)
    try:
        return Run(_basis.backtest(kind, text, overrides), scratch)
    finally:
        if scratch is not None:
            scratch.cleanup()


def _progress_callback(progress: Any) -> Any:
    """`progress=True`: a tqdm bar (tqdm.auto: a widget in a notebook) when tqdm is installed;
    a callable is called as `progress(done, total)`."""
    if progress is None or progress is False:
        return None
    if callable(progress):
        return progress
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="config")
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def sweep_to_folder(config: str | os.PathLike[str], threads: int | None = None, shard: tuple[int, int] | None = None, name: str | None = None, output_dir: str | os.PathLike[str] | None = None, force: bool = False, progress: Any = None) -> Path:
    """Run a sweep file as ``basis sweep`` does; return its folder (``results.parquet``, the
    report, ``walk_forward.parquet``).

    ``shard=(i, n)`` runs the configurations with ``id % n == i`` into ``<name>.shard-i-of-n``;
    ``threads`` sizes the pool (default: every core). ``progress``: ``True`` for a tqdm bar, or
    a callable ``progress(done, total)``. Ctrl-C stops the sweep at its next chunk; running it
    again resumes there.
    """
    folder = _basis.sweep(Path(config), threads, shard, name, Path(output_dir) if output_dir is not None else None, force, _progress_callback(progress))
    return Path(folder)


def sweep(config: str | os.PathLike[str], threads: int | None = None, shard: tuple[int, int] | None = None, name: str | None = None, output_dir: str | os.PathLike[str] | None = None, force: bool = False, progress: Any = None) -> pl.DataFrame:
    """Run a sweep file as ``basis sweep`` does and return its ``results.parquet``
    (see :func:`sweep_to_folder` for the arguments)."""
    return pl.read_parquet(sweep_to_folder(config, threads, shard, name, output_dir, force, progress) / "results.parquet")


def merge_shards(folders: Sequence[str | os.PathLike[str]], output_dir: str | os.PathLike[str], name: str, force: bool = False) -> Path:
    """Merge the folders of a sweep's shards (from any machines) into
    ``<output_dir>/<name>/results.parquet``: the same bytes as the unsharded sweep's."""
    return Path(_basis.merge_shards([Path(f) for f in folders], Path(output_dir), name, force))


def _command(args: list[str], output_dir: str | os.PathLike[str] | None) -> None:
    if output_dir is not None:
        args = args + ["--output-dir", os.fspath(output_dir)]
    _basis.cli(args)


def caps(config: str | os.PathLike[str], venues: Sequence[str] = (), caps: Sequence[str] = (), output_dir: str | os.PathLike[str] | None = None, extra: Sequence[str] = ()) -> None:
    """``basis caps``: one carry under several funding rule sets (files in ``output_dir``)."""
    args = ["caps", "--config", os.fspath(config)]
    for venue in venues:
        args += ["--venue", venue]
    for cap in caps:
        args += ["--cap", str(cap)]
    _command(args + list(extra), output_dir)


def venues(funding: str | os.PathLike[str], output_dir: str | os.PathLike[str] | None = None, extra: Sequence[str] = ()) -> None:
    """``basis venues``: funding across venues from one table (files in ``output_dir``)."""
    _command(["venues", "--funding", os.fspath(funding)] + list(extra), output_dir)


def term(config: str | os.PathLike[str], output_dir: str | os.PathLike[str] | None = None, extra: Sequence[str] = ()) -> None:
    """``basis term``: the dated contracts' annualised basis against the perp's funding."""
    _command(["term", "--config", os.fspath(config)] + list(extra), output_dir)


def stress(config: str | os.PathLike[str], stress_file: str | os.PathLike[str], output_dir: str | os.PathLike[str] | None = None, extra: Sequence[str] = ()) -> None:
    """``basis stress``: shocks, replays, capacity and Monte Carlo for a carry."""
    _command(["stress", "--config", os.fspath(config), "--stress", os.fspath(stress_file)] + list(extra), output_dir)


def presets() -> list[dict[str, Any]]:
    """The built-in venue presets (``basis presets``), each as a dict."""
    return json.loads(_basis.presets_json())


def inspect(path: str | os.PathLike[str]) -> str:
    """``basis data inspect FILE``: which reader the file needs and what it holds."""
    return _basis.inspect_text(Path(path))
