"""Smoke run of tools/bench_tunnel.py: it runs and prints its three figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_tunnel_runs(tmp_path: Path) -> None:
    out = tmp_path / "tunnel.json"
    done = subprocess.run([sys.executable, str(REPO / "tools" / "bench_tunnel.py"),
                           "--calls", "20", "--connectors", "5", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["ws_p50_ms"] > 0
    assert figures["poll_p50_ms"] > 0
    assert figures["connectors"] == 5
    assert "connectors (fake) attached" in done.stdout
