"""Smoke test of `tools/bench_gateway_auth.py` at a tiny size (the numbers are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "bench_gateway_auth.py"


def test_auth_benchmark_compares_every_cell_without_errors(tmp_path: Path) -> None:
    """50 keys, one round: four cells, no request refused or failed in either gateway."""
    out = tmp_path / "out.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--keys", "50", "--requests", "8",
                           "--rounds", "1", "--micro-rounds", "1000", "--json", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())
    assert [(r["mode"], r["concurrency"]) for r in rows] == [
        ("json", 1), ("json", 32), ("stream", 1), ("stream", 32)]
    for row in rows:
        for label in ("off", "keys"):
            [cell] = row["rounds"][label]
            assert (cell["errors"], cell["requests"]) == (0, 8 if row["concurrency"] == 1
                                                          else 32)
    assert "limiter admit + release" in done.stdout
