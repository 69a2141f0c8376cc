"""The test-run projection: history, summary, and the table rebuilt from position 0."""

from __future__ import annotations

import pytest

from eventstore import SqliteRecorder
from eventstore.events.workspace import TestRunCompleted
from eventstore.projections import ProjectionStore, all_projections
from eventstore.projections.test_runs import (
    fold_test_runs,
    project_test_runs,
    summarize_test_runs,
)


def run(run_id, outcome):
    return TestRunCompleted(run_id=run_id, command="pytest", tree="t1", outcome=outcome,
                            exit_code=0 if outcome == "passed" else 1, passed=3,
                            coverage=({"path": "c.json", "status": "missing"},))


@pytest.fixture
def log(tmp_path):
    recorder = SqliteRecorder(tmp_path / "log.db")
    recorder.append("workspace-w", 0, [run("r1", "failed"), run("r2", "passed")])
    recorder.append("workspace-w", 2, [run("r3", "timed_out")])
    yield recorder
    recorder.close()


def test_summary_counts_outcomes_and_finds_the_last_pass(log):
    """Outcome counts, pass rate, last run and last passing run."""
    summary = summarize_test_runs(fold_test_runs(log.read_stream("workspace-w")))
    assert summary["runs"] == 3
    assert summary["outcomes"] == {"failed": 1, "passed": 1, "timed_out": 1}
    assert summary["pass_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert summary["last_run"]["run_id"] == "r3"
    assert summary["last_passing_run"]["run_id"] == "r2"


def test_step_by_step_equals_the_fold(log):
    """project_test_runs one event at a time equals fold_test_runs."""
    history = None
    for recorded in log.read_stream("workspace-w"):
        history = project_test_runs(history, recorded)
    assert history == fold_test_runs(log.read_stream("workspace-w"))


def test_table_rebuild_equals_live(log, tmp_path):
    """The test_runs table is the same after a rebuild from position 0."""
    views = ProjectionStore(tmp_path / "p.db", all_projections())
    try:
        views.catch_up(log, names=["test_runs"])
        query = "SELECT * FROM test_runs ORDER BY position"
        live = views.query(query)
        views.rebuild(log, "test_runs")
        assert views.query(query) == live
        assert [r["outcome"] for r in live] == ["failed", "passed", "timed_out"]
    finally:
        views.close()
