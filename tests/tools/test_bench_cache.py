"""`tools/bench_cache.py`: a smoke run (a few requests, a small log), numbers not checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_cache_benchmark_runs_misses_hits_and_the_warm_up(tmp_path):
    """Every request answered; hits and misses timed; the warm-up reloads the stored answers."""
    out = tmp_path / "cache.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "tools" / "bench_cache.py"), "--requests", "3", "--turn",
         "2", "--warm-events", "300", "--json", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode in (0, 1), done.stderr[-2000:]  # 1: the goal missed on a busy host
    report = json.loads(out.read_text())
    rows = [(r["mode"], r["target"], r["requests"], r["errors"]) for r in report["results"]]
    assert rows == [("json", "miss", 3, 0), ("json", "hit", 3, 0),
                    ("stream", "miss", 3, 0), ("stream", "hit", 3, 0)]
    assert report["warm_up"]["events"] >= 300
    assert report["warm_up"]["loaded"] == 12  # PROMPT_CACHE_MAX_ENTRIES: 4 times --requests
    assert "prompt_cache_warmed" in report["warm_up"]["gateway_line"]
    assert set(report["gateway_p50_ms"]) == {"json hit", "json miss", "stream hit",
                                             "stream miss"}
    assert "goal (hit p50 <= 3.0 ms)" in done.stdout
