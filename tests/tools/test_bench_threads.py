"""Smoke test of `tools/bench_threads.py` at a tiny size (the numbers are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "bench_threads.py"


def test_thread_benchmark_prints_the_trio_thread_and_the_process(tmp_path: Path) -> None:
    """Twenty requests: a row for the whole process and one for the trio (main) thread."""
    done = subprocess.run([sys.executable, str(SCRIPT), "--requests", "20"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    names = [line.split("|")[1].strip() for line in done.stdout.splitlines()
             if line.startswith("| ") and not line.startswith("| thread")]
    assert names[:2] == ["(process)", "MainThread"]
