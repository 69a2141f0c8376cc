"""Smoke run of tools/bench_loop.py: it runs and prints its three figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_loop_runs(tmp_path: Path) -> None:
    out = tmp_path / "loop.json"
    done = subprocess.run([sys.executable, str(REPO / "tools" / "bench_loop.py"), "--turns", "3",
                           "--rounds", "1", "--json", str(out)], capture_output=True, text=True,
                          timeout=300, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["loop_turn_cpu_ms"] > 0
    assert "per loop step" in done.stdout
