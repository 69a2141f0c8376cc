"""Task tools: the full lifecycle, persistence across a restart, projection rebuilds."""

from __future__ import annotations

import pytest

from actors import EventStore
from eventstore import SqliteRecorder
from eventstore.projections.tasks import fold_tasks, project_tasks
from lynkr.tools import PolicySettings, ToolRegistry, ToolRunner
from lynkr.workspace import load_tasks, tasks_stream, workspace_tools
from lynkr.workspace._tasks import _apply_plan, plan_set_status


async def test_task_lifecycle_persists_across_a_restart(tmp_path, ws, session):
    """create → list → update → set status → delete; a reopened log shows the same list."""
    db = tmp_path / "tasks.db"
    settings = PolicySettings(workspace_root=ws)
    store = SqliteRecorder(db)
    appender = EventStore.start(store)
    runner = ToolRunner(ToolRegistry(workspace_tools()), settings, store=appender,
                        recorder=store)
    a = (await runner.call("workspace_task_create", {"title": "write docs"},
                           session_id=session)).content
    b = (await runner.call("workspace_task_create", {"title": "fix bug", "priority": "high"},
                           session_id=session)).content
    listed = await runner.call("workspace_tasks_list", {}, session_id=session)
    assert [t["title"] for t in listed.content["tasks"]] == ["write docs", "fix bug"]
    updated = await runner.call("workspace_task_update",
                                {"task_id": a["task_id"], "description": "the README"},
                                session_id=session)
    assert updated.content["description"] == "the README"
    moved = await runner.call("workspace_task_set_status",
                              {"task_id": b["task_id"], "status": "in_progress"},
                              session_id=session)
    assert moved.content["status"] == "in_progress"
    deleted = await runner.call("workspace_task_delete", {"task_id": a["task_id"]},
                                session_id=session)
    assert deleted.content == {"task_id": a["task_id"], "deleted": True}
    live = load_tasks(store, settings.workspace_id)
    await appender.aclose()  # closes `store`

    reopened = SqliteRecorder(db)
    try:
        again = load_tasks(reopened, settings.workspace_id)
        assert again == live
        [task] = again.ordered()
        assert (task.title, task.status, task.priority) == ("fix bug", "in_progress", "high")
        records = reopened.read_stream(tasks_stream(settings.workspace_id))
    finally:
        reopened.close()
    state = None
    for recorded in records:
        state = project_tasks(state, recorded)
    assert state == fold_tasks(records) == live


async def test_unknown_task_is_a_clear_error(make_runner, session):
    """Updating a task that does not exist is an error result naming the id."""
    result = await make_runner().call("workspace_task_set_status",
                                      {"task_id": "nope", "status": "done"},
                                      session_id=session)
    assert not result.ok
    assert "'nope'" in result.content["error"]


async def test_invalid_status_is_rejected_by_the_schema(make_runner, session):
    """A status outside the allowed set is a tool input error."""
    result = await make_runner().call("workspace_task_create",
                                      {"title": "x", "status": "whenever"}, session_id=session)
    assert not result.ok
    assert result.error_type == "ToolInputError"


async def test_update_without_changes_is_an_input_error(make_runner, session):
    """An update that changes nothing is refused."""
    created = await make_runner().call("workspace_task_create", {"title": "t"},
                                       session_id=session)
    result = await make_runner().call("workspace_task_update",
                                      {"task_id": created.content["task_id"]},
                                      session_id=session)
    assert not result.ok
    assert result.error_type == "ToolInputError"


async def test_concurrent_writer_is_retried_with_optimistic_concurrency(tmp_path, event_store,
                                                                         ws):
    """A plan that loses a race to another process's writer re-reads the stream and
    appends at the new version."""
    from eventstore.events.tasks import TaskCreated

    wsid = PolicySettings(workspace_root=ws).workspace_id
    await event_store.append(tasks_stream(wsid), 0, [TaskCreated(task_id="t1", title="one")])
    other = SqliteRecorder(tmp_path / "lynkr.db")  # the same file, as a second process opens it
    raced = {"done": False}

    def racing_plan(state):
        if not raced["done"]:  # the other writer appends between our read and our append
            raced["done"] = True
            other.append(tasks_stream(wsid), state.version,
                         [TaskCreated(task_id="t2", title="two")])
        return plan_set_status("t1", "done")(state)

    try:
        final = await _apply_plan(event_store, wsid, racing_plan)
    finally:
        other.close()
    assert final.tasks["t1"].status == "done"
    assert "t2" in final.tasks
    assert await event_store.stream_version(tasks_stream(wsid)) == 3


@pytest.mark.parametrize("status", ["todo", "done"])
async def test_setting_the_same_status_appends_nothing(event_store, ws, status):
    """A status change to the current status is a no-op, not an event."""
    from eventstore.events.tasks import TaskCreated

    wsid = PolicySettings(workspace_root=ws).workspace_id
    await event_store.append(tasks_stream(wsid), 0,
                             [TaskCreated(task_id="t1", title="one", status=status)])
    await _apply_plan(event_store, wsid, plan_set_status("t1", status))
    assert await event_store.stream_version(tasks_stream(wsid)) == 1
