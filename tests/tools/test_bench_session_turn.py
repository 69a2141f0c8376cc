"""Smoke test of `tools/bench_session_turn.py` at a tiny size (the numbers are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "bench_session_turn.py"


def test_session_turn_benchmark_prints_both_ways(tmp_path: Path) -> None:
    """Twenty turns, one round: the workers row (ratio 1.00) and the inline row."""
    done = subprocess.run([sys.executable, str(SCRIPT), "--turns", "20", "--rounds", "1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [line.split("|") for line in done.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| way")]
    assert [row[1].strip() for row in rows] == ["workers", "inline"]
    assert rows[0][5].strip() == "1.00, 1.00"
