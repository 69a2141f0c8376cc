"""Smoke test of `tools/bench_eventstore.py` at tiny sizes (the numbers are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "bench_eventstore.py"


@pytest.mark.slow
def test_benchmark_runs_every_path_and_reports_ratios(tmp_path: Path) -> None:
    """One tiny run through sessions, writer and recorder prints a ratio for each line."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--writers", "3", "--appends", "4",
         "--replay-events", "40", "--rounds", "1", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    names = [r["name"] for r in report["results"]]
    assert names == ["append via sessions (3 writers)", "append via writer (3 writers)",
                     "append via recorder (3 writers)", "replay read_all + decode"]
    assert all(r["ratio"] > 0 and r["cpu_ratio"] > 0 for r in report["results"])
    assert report["results"][0]["events"] == 12
    assert report["machine"]["nproc"]


def test_unknown_path_is_refused(tmp_path: Path) -> None:
    """`--via` names only known paths."""
    done = subprocess.run([sys.executable, str(SCRIPT), "--via", "carrier-pigeon"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown --via: carrier-pigeon" in done.stderr


@pytest.mark.slow
def test_events_per_append_multiplies_the_events_and_labels_the_lines(tmp_path: Path) -> None:
    """`--events-per-append 2` appends twice the events and says so in each name."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--via", "sessions,recorder", "--writers", "2",
         "--appends", "3", "--events-per-append", "2", "--replay-events", "40",
         "--rounds", "1", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    assert [r["name"] for r in results[:2]] == ["append via sessions (2w, 2 ev)",
                                                "append via recorder (2w, 2 ev)"]
    assert [r["events"] for r in results[:2]] == [12, 12]


def test_events_per_append_below_one_is_refused(tmp_path: Path) -> None:
    """`--events-per-append 0` is a usage error, not a division by zero."""
    done = subprocess.run([sys.executable, str(SCRIPT), "--events-per-append", "0"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "at least 1" in done.stderr


@pytest.mark.slow
def test_zero_replay_events_measures_the_append_paths_only(tmp_path: Path) -> None:
    """`--replay-events 0` leaves the replay line out."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--via", "writer", "--writers", "2", "--appends", "3",
         "--replay-events", "0", "--rounds", "1", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    names = [r["name"] for r in json.loads(done.stdout)["results"]]
    assert names == ["append via writer (2 writers)"]
