"""Smoke test of `tools/bench_begin_turn.py` at a tiny size (the numbers are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "bench_begin_turn.py"


def test_begin_turn_benchmark_prints_both_ways(tmp_path: Path) -> None:
    """Three turns, one round: a row for the baseline (ratio 1.00) and one for the cache."""
    done = subprocess.run([sys.executable, str(SCRIPT), "--turns", "3", "--rounds", "1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [line.split("|") for line in done.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| way")]
    assert [row[1].strip() for row in rows] == ["make_blob", "BlobCache"]
    assert rows[0][4].strip() == "1.00"
