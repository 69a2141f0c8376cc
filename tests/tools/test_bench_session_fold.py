"""Smoke test of `tools/bench_session_fold.py` at a tiny size (the numbers are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "bench_session_fold.py"


def test_fold_benchmark_prints_a_row_per_reported_stretch(tmp_path: Path) -> None:
    """1,200 turns: the baseline stretch, the one at 1,001 and the last one."""
    done = subprocess.run([sys.executable, str(SCRIPT), "--turns", "1200"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and
            line[2].isdigit()]
    assert [row.split()[1] for row in rows] == ["1-500", "1001-1200"]
    assert rows[0].split("|")[3].strip() == "1.00"
