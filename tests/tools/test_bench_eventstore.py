"""Smoke test of `tools/bench_eventstore.py` at tiny sizes (the numbers are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "bench_eventstore.py"


@pytest.mark.slow
def test_benchmark_runs(tmp_path: Path) -> None:
    """One tiny run of every path ends well and reports a result per path."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--writers", "3", "--appends", "4",
         "--replay-events", "40", "--rounds", "1", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["results"]) == 4


def test_unknown_path_is_refused(tmp_path: Path) -> None:
    """`--via` names only known paths."""
    done = subprocess.run([sys.executable, str(SCRIPT), "--via", "carrier-pigeon"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown --via: carrier-pigeon" in done.stderr


def test_events_per_append_below_one_is_refused(tmp_path: Path) -> None:
    """`--events-per-append 0` is a usage error, not a division by zero."""
    done = subprocess.run([sys.executable, str(SCRIPT), "--events-per-append", "0"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "at least 1" in done.stderr
