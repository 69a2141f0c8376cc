"""The tasks projection: fold and table agree, and a rebuild from position 0 equals live."""

from __future__ import annotations

import pytest

from eventstore import SqliteRecorder
from eventstore.events.tasks import TaskCreated, TaskDeleted, TaskStatusChanged, TaskUpdated
from eventstore.projections import ProjectionStore, all_projections
from eventstore.projections.tasks import fold_tasks, project_tasks, stored_tasks


@pytest.fixture
def log(tmp_path):
    recorder = SqliteRecorder(tmp_path / "log.db")
    yield recorder
    recorder.close()


@pytest.fixture
def views(tmp_path):
    store = ProjectionStore(tmp_path / "projections.db", all_projections())
    yield store
    store.close()


def _history(log, stream="tasks-ws1"):
    steps = [[TaskCreated(task_id="a", title="A"), TaskCreated(task_id="b", title="B")],
             [TaskUpdated(task_id="a", description="more", priority="high")],
             [TaskStatusChanged(task_id="b", status="done", previous="todo")],
             [TaskCreated(task_id="c", title="C")],
             [TaskDeleted(task_id="a")],
             [TaskUpdated(task_id="a", title="ghost")]]  # about a deleted task: ignored
    version = 0
    for batch in steps:
        version = log.append(stream, version, batch).version
        yield


def test_table_rebuilt_from_zero_equals_the_live_table(log, views):
    """Catching up after every append, then rebuilding from scratch, gives the same rows."""
    for _ in _history(log):
        views.catch_up(log, names=["tasks"])
    live = stored_tasks(views, "ws1")
    views.rebuild(log, "tasks")
    assert stored_tasks(views, "ws1") == live
    assert [(t.task_id, t.status) for t in live] == [("b", "done"), ("c", "todo")]


def test_table_equals_the_fold(log, views):
    """The table and the in-memory fold of the stream hold the same tasks."""
    for _ in _history(log):
        pass
    views.catch_up(log, names=["tasks"])
    folded = fold_tasks(log.read_stream("tasks-ws1"))
    assert stored_tasks(views, "ws1") == folded.ordered()


def test_step_by_step_projection_equals_the_fold(log):
    """project_tasks applied one event at a time equals fold_tasks."""
    for _ in _history(log):
        pass
    records = log.read_stream("tasks-ws1")
    state = None
    for recorded in records:
        state = project_tasks(state, recorded)
    assert state == fold_tasks(records)
    assert state.version == len(records)


def test_workspaces_are_kept_apart(log, views):
    """Two workspaces' streams give two separate lists."""
    log.append("tasks-ws1", 0, [TaskCreated(task_id="a", title="one")])
    log.append("tasks-ws2", 0, [TaskCreated(task_id="a", title="two")])
    views.catch_up(log, names=["tasks"])
    assert [t.title for t in stored_tasks(views, "ws2")] == ["two"]
    assert len(stored_tasks(views)) == 2
