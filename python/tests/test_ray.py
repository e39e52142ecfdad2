"""A sweep spread over a real local Ray cluster (a head and a second worker process on this
machine), its shards merged: the same bytes as the sweep run in one process. The README's
"From Python" recipe, run as written.

Needs `ray` (PyPI). Under CI it must run, unless .ci/run reported that Ray could not be
installed (BASIS_RAY_SKIP says why).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import basis

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "basis.toml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_or_skip():
    try:
        import ray  # noqa: F401
    except ImportError as err:
        reason = os.environ.get("BASIS_RAY_SKIP")
        if os.environ.get("CI") in ("true", "1") and not reason:
            pytest.fail(f"ray is not installed ({err}) and .ci/run did not report why: under CI the Ray test must run")
        pytest.skip(reason or f"ray is not installed: {err}")
    import ray

    return ray


def test_a_sweep_sharded_over_a_local_ray_cluster_merges_to_the_same_bytes(tmp_path: Path) -> None:
    ray = ray_or_skip()
    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text(f'base = "{SAMPLE}"\nname = "rs"\nmetric = "apr"\n[params]\n"portfolio.leverage" = [1.0, 2.0, 3.0, 4.0]\n"portfolio.top_up_distance" = [0.1, 0.2]\n')
    whole = basis.sweep_to_folder(sweep_file, output_dir=tmp_path / "whole")

    ray_bin = Path(sys.executable).parent / "ray"
    port = free_port()
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    # A short folder: Ray's Unix sockets live under it (107 characters at most).
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    common = ["--num-cpus=1", "--object-store-memory=100000000", "--disable-usage-stats"]
    def ray_cli(*args: str) -> None:
        done = subprocess.run([str(ray_bin), *args], env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"ray {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"

    ray_cli("start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", f"--temp-dir={temp}", "--include-dashboard=false", *common)
    try:
        ray_cli("start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1", *common)
        ray.init(address=f"127.0.0.1:{port}", log_to_driver=False)
        assert len(ray.nodes()) == 2, ray.nodes()

        # The recipe: one task per shard; each returns its results.parquet's bytes (no shared
        # disk needed); the driver puts them in folders and merges.
        @ray.remote(num_cpus=1)
        def run_shard(sweep_path: str, i: int, n: int) -> bytes:
            import tempfile

            import basis

            with tempfile.TemporaryDirectory() as out:
                folder = basis.sweep_to_folder(sweep_path, shard=(i, n), output_dir=out, threads=1)
                return (folder / "results.parquet").read_bytes()

        n = 4
        parts = ray.get([run_shard.remote(str(sweep_file), i, n) for i in range(n)])
        folders = []
        for i, data in enumerate(parts):
            folder = tmp_path / "shards" / f"{i}"
            folder.mkdir(parents=True)
            (folder / "results.parquet").write_bytes(data)
            folders.append(folder)
        merged = basis.merge_shards(folders, tmp_path / "merged", "rs")
        assert (merged / "results.parquet").read_bytes() == (whole / "results.parquet").read_bytes()
    finally:
        ray.shutdown()
        subprocess.run([str(ray_bin), "stop", "--force"], env=env, capture_output=True)
        shutil.rmtree(temp, ignore_errors=True)
