"""`tools/bench_append_floor.py`: a tiny run of every floor, and the ``lean`` pipelines' rows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import apsw
import pytest

from tools.bench_append_floor import _LeanLog, lean_floor
from tools.bench_eventstore import route

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "bench_append_floor.py"


@pytest.mark.slow
def test_floor_benchmark_reports_every_floor(tmp_path: Path) -> None:
    """One tiny run prints a line for each floor, with CPU and wall columns."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--writers", "3", "--appends", "4", "--batch", "2",
         "--rounds", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    rows = [line.split() for line in lines[2:-1]]
    assert [row[0] for row in rows] == ["raw", "recorder", "trio-direct", "empty-ask",
                                        "empty-ask-disp", "thread-hop", "session-work", "lean",
                                        "lean-inline"]
    assert all(len(row) == 5 and float(row[1]) > 0 and float(row[3]) > 0 for row in rows)
    assert lines[-1].startswith("# bound through a session actor")
    assert "committing on trio's thread" in lines[-1]


@pytest.mark.parametrize("inline", [False, True])
def test_lean_pipeline_commits_every_append_in_order(tmp_path: Path, inline: bool) -> None:
    """Each writer's stream holds its appends as seqs 1..n, each chained to the last."""
    path = tmp_path / "lean.db"
    wall, cpu = lean_floor(path, 5, 7, inline=inline)
    assert wall > 0
    assert cpu > 0
    conn = apsw.Connection(str(path))
    rows = conn.execute("SELECT stream_id, seq FROM events ORDER BY position").fetchall()
    conn.close()
    assert len(rows) == 35
    for w in range(5):
        assert [seq for stream, seq in rows if stream == f"lean-{w}"] == list(range(1, 8))


def test_lean_check_fails_on_a_missing_append(tmp_path: Path) -> None:
    """The end-of-run check is not vacuous: a stream one append short fails it."""
    log = _LeanLog(tmp_path / "short.db")
    log.commit([[f"lean-{w}", route(n), None, 0] for w in range(2) for n in range(3)])
    log.commit([["lean-0", route(3), None, 0]])
    with pytest.raises(AssertionError, match="lost appends"):
        log.close_checked(2, 4)
