"""The test-run projection of a `workspace-<id>` stream: history and summary.

Pure: `project_test_runs(history, recorded)` appends one run; `summarize(history)`
gives the counts, the last run, and the pass rate that `workspace_test_summary`
reports. Rebuilding from position 0 gives the same history. `PROJECTION` keeps
one row per run in the `test_runs` table of the `ProjectionStore`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from eventstore._recorder import Recorded
from eventstore._registry import Event
from eventstore.events.workspace import TestRunCompleted
from eventstore.projections._model import Projection, ProjectionContext, RowOp, Upsert

__all__ = ["PROJECTION", "TestRun", "fold_test_runs", "project_test_run_rows",
           "project_test_runs", "summarize_test_runs"]

_PREFIX = "workspace-"


@dataclass(frozen=True, slots=True, kw_only=True)
class TestRun:
    """One recorded run, with when it was recorded."""

    __test__ = False  # not a pytest test class

    recorded_at: float
    seq: int
    event: TestRunCompleted

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the output tail left out: it can be long)."""
        e = self.event
        return {
            "run_id": e.run_id, "recorded_at": self.recorded_at, "command": e.command,
            "tree": e.tree, "outcome": e.outcome, "exit_code": e.exit_code,
            "passed": e.passed, "failed": e.failed, "skipped": e.skipped,
            "framework": e.framework, "duration_ms": e.duration_ms,
            "coverage": [dict(c) for c in e.coverage], "session_id": e.session_id,
        }


def project_test_runs(
    history: tuple[TestRun, ...] | None, recorded: Recorded[Event]
) -> tuple[TestRun, ...]:
    """The run history after one more recorded event of the workspace stream."""
    base = history or ()
    if not isinstance(recorded.event, TestRunCompleted):
        return base
    return (*base, TestRun(recorded_at=recorded.recorded_at, seq=recorded.seq,
                           event=recorded.event))


def fold_test_runs(records: Iterable[Recorded[Event]]) -> tuple[TestRun, ...]:
    """The run history of a whole stream."""
    return tuple(TestRun(recorded_at=r.recorded_at, seq=r.seq, event=r.event)
                 for r in records if isinstance(r.event, TestRunCompleted))


def summarize_test_runs(history: Iterable[TestRun]) -> dict[str, Any]:
    """Counts per outcome, the pass rate, the last run and the last passing run."""
    runs = list(history)
    outcomes: dict[str, int] = {}
    for run in runs:
        outcomes[run.event.outcome] = outcomes.get(run.event.outcome, 0) + 1
    passing = [run for run in runs if run.event.outcome == "passed"]
    return {
        "runs": len(runs),
        "outcomes": outcomes,
        "pass_rate": round(len(passing) / len(runs), 4) if runs else None,
        "last_run": runs[-1].as_dict() if runs else None,
        "last_passing_run": passing[-1].as_dict() if passing else None,
    }


def project_test_run_rows(recorded: Recorded[Event], context: ProjectionContext) -> list[RowOp]:
    """One `test_runs` row per recorded run."""
    if not isinstance(recorded.event, TestRunCompleted):
        return []
    values = TestRun(recorded_at=recorded.recorded_at, seq=recorded.seq,
                     event=recorded.event).as_dict()
    values["coverage"] = json.dumps(values["coverage"], sort_keys=True)
    values["workspace_id"] = recorded.stream_id.removeprefix(_PREFIX)
    values["position"] = recorded.position
    return [Upsert("test_runs", {"run_id": values.pop("run_id")}, set=values)]


PROJECTION = Projection(
    name="test_runs",
    version=1,
    tables={"test_runs": """
        CREATE TABLE IF NOT EXISTS test_runs (
            run_id       TEXT PRIMARY KEY,
            workspace_id TEXT NOT NULL,
            position     INTEGER NOT NULL,
            recorded_at  REAL NOT NULL,
            command      TEXT NOT NULL,
            tree         TEXT,
            outcome      TEXT NOT NULL,
            exit_code    INTEGER,
            passed       INTEGER NOT NULL,
            failed       INTEGER NOT NULL,
            skipped      INTEGER NOT NULL,
            framework    TEXT,
            duration_ms  REAL NOT NULL,
            coverage     TEXT NOT NULL,
            session_id   TEXT
        )"""},
    project=project_test_run_rows,
    types=frozenset({"TestRunCompleted"}),
)
