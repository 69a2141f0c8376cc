"""`tools/bench_request_path.py` runs and prints a row per stage (a smoke test)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "tools" / "bench_request_path.py"


def test_it_prints_each_stage_with_a_ratio():
    """Both stages, at the history length asked for, with a positive ratio."""
    done = subprocess.run([sys.executable, str(TOOL), "--turns", "2", "--rounds", "1"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines()
            if line.startswith("| 2 |")]
    assert [r[2].strip() for r in rows] == ["upstream body", "TurnStarted encode"]
    assert all(float(r[5]) > 0 for r in rows)
