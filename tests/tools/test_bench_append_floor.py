"""Smoke test of `tools/bench_append_floor.py` at tiny sizes (the numbers are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "bench_append_floor.py"


@pytest.mark.slow
def test_floor_benchmark_reports_every_floor(tmp_path: Path) -> None:
    """One tiny run prints a line for each floor."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--writers", "3", "--appends", "4", "--batch", "2",
         "--rounds", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines() if not line.startswith("#")]
    assert names == ["raw", "recorder", "trio-direct", "empty-ask", "empty-ask-disp",
                     "thread-hop"]
