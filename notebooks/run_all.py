"""Execute every notebook top to bottom (as CI does) and fail on any cell error.

    python notebooks/run_all.py            # all notebooks
    python notebooks/run_all.py 02         # those whose name contains "02"

Notebooks are stored without outputs; this refuses a notebook that has some (clear them with
Jupyter's "Clear All Outputs" before committing). Executed copies are not saved. Each notebook
runs with notebooks/ as its working directory and writes under reports/notebooks/.
"""

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent


def main() -> int:
    wanted = sys.argv[1:]
    notebooks = sorted(p for p in HERE.glob("*.ipynb") if not wanted or any(w in p.name for w in wanted))
    if not notebooks:
        print("no notebooks matched", file=sys.stderr)
        return 1
    failed = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        stored = [c for c in nb.cells if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count"))]
        if stored:
            print(f"FAIL {path.name}: stored with outputs in {len(stored)} cell(s); clear them before committing", file=sys.stderr)
            failed.append(path.name)
            continue
        started = time.time()
        client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(HERE)}})
        try:
            client.execute()
        except CellExecutionError as err:
            print(f"FAIL {path.name}:\n{err}", file=sys.stderr)
            failed.append(path.name)
            continue
        print(f"ok   {path.name} ({time.time() - started:.1f} s, {len(nb.cells)} cells)")
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
