"""Smoke run of tools/bench_scaleout.py (needs the local PostgreSQL, as CI has)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_scaleout_runs(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    done = subprocess.run([sys.executable, str(REPO / "tools" / "bench_scaleout.py"),
                           "--requests", "40", "--rounds", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=600, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert {run["setup"] for run in report["runs"]} == {"sqlite", "pg-1", "pg-2"}
    assert all(run["errors"] == 0 for run in report["runs"])
