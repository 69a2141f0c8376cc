"""Smoke test of `tools/bench_cli_startup.py`, two runs a command (numbers not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "bench_cli_startup.py"


def test_cli_startup_benchmark_times_every_quick_command(tmp_path: Path) -> None:
    """A row for the baseline and for each command, each with a p50 (no command failed)."""
    done = subprocess.run([sys.executable, str(SCRIPT), "--runs", "2"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    rows = {cells[1].strip(): cells[2].strip() for line in done.stdout.splitlines()
            if line.startswith("| ") and (cells := line.split("|"))[2].strip().isdigit()}
    assert set(rows) == {"python -c pass (baseline)", "lynkr --help", "lynkr --version",
                         "lynkr sessions", "lynkr transcript", "lynkr config", "lynkr tasks",
                         "lynkr audit"}
