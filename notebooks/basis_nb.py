"""Helpers the notebooks share: the repository's paths, and (for commands the Python package
does not wrap) the `basis` binary and a run folder's files. The notebooks run basis through the
package (`import basis`).

The binary is, in order: $BASIS_BIN; target/release/basis (or $CARGO_TARGET_DIR/release/basis)
when it exists; otherwise `cargo run --release --quiet --` (builds it on first use).
"""

import json
import os
import shlex
import subprocess
from pathlib import Path

import polars as pl

REPO = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "Cargo.toml").is_file() and (p / "src").is_dir())
"""The repository root (the notebooks run from notebooks/ or the root)."""

OUT = REPO / "reports" / "notebooks"
"""Where the notebooks write their runs (replaced on every run of a notebook)."""


def basis_command() -> list[str]:
    if os.environ.get("BASIS_BIN"):
        return [os.environ["BASIS_BIN"]]
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if not target.is_absolute():
        target = REPO / target
    binary = target / "release" / "basis"
    if binary.is_file():
        return [str(binary)]
    return ["cargo", "run", "--release", "--quiet", "--"]


def basis(*args: str) -> str:
    """Run `basis ARGS...` from the repository root; return its stdout, raise with its stderr."""
    command = basis_command() + [str(a) for a in args]
    print("$ basis " + " ".join(shlex.quote(str(a)) for a in args))
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"basis exited with {done.returncode}:\n{done.stderr}")
    return done.stdout


def read_run(folder: Path) -> tuple[pl.DataFrame, dict]:
    """A run folder's ledger and metrics."""
    return pl.read_parquet(folder / "ledger.parquet"), json.loads((folder / "metrics.json").read_text())
