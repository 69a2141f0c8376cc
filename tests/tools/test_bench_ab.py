"""Smoke tests of the two-way benchmarks at a tiny size (the numbers are not checked).

`tools/bench_begin_turn.py` (make_blob against the session's BlobCache) and
`tools/bench_session_turn.py` (session commands on the workers against inline).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / "tools"


@pytest.mark.parametrize(("script", "size", "ways"), [
    ("bench_begin_turn.py", "3", ["make_blob", "BlobCache"]),
    ("bench_session_turn.py", "20", ["workers", "inline"]),
])
def test_two_way_benchmark_runs(tmp_path: Path, script: str, size: str,
                                ways: list[str]) -> None:
    """One round at a tiny size ends well and measures both ways."""
    done = subprocess.run([sys.executable, str(TOOLS / script), "--turns", size,
                           "--rounds", "1"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert all(way in done.stdout for way in ways)
