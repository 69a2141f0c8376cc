"""Smoke tests of the two-way benchmarks at a tiny size (the numbers are not checked).

`tools/bench_begin_turn.py` (make_blob against the session's BlobCache) and
`tools/bench_session_turn.py` (session commands on the workers against inline) each
print the baseline row, whose ratio column is 1.00, then the other way's row.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / "tools"


@pytest.mark.parametrize(("script", "size", "ways", "baseline"), [
    ("bench_begin_turn.py", "3", ["make_blob", "BlobCache"], "1.00"),
    ("bench_session_turn.py", "20", ["workers", "inline"], "1.00, 1.00"),
])
def test_two_way_benchmark_prints_the_baseline_then_the_other_way(
    tmp_path: Path, script: str, size: str, ways: list[str], baseline: str,
) -> None:
    """One round at a tiny size: both rows, the baseline's ratio 1.00."""
    done = subprocess.run([sys.executable, str(TOOLS / script), "--turns", size,
                           "--rounds", "1"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [line.split("|") for line in done.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| way")]
    assert [row[1].strip() for row in rows] == ways
    assert rows[0][-2].strip() == baseline
