"""Task tools: create, list, update, set status, delete — events in `tasks-<workspace>`.

Commands are pure (`plan_*` take the current `TaskList` and return events or raise);
`_execute` reads the stream, folds it, plans, and appends at the version it read
through the event store (`ctx.store`), retrying on a concurrent writer (optimistic
concurrency). The list is a projection.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import trio

from eventstore import ConcurrencyError, Event, Recorder
from eventstore.events.tasks import TaskCreated, TaskDeleted, TaskStatusChanged, TaskUpdated
from eventstore.projections.tasks import TaskList, fold_tasks
from lynkr.errors import ToolError, ToolInputError
from lynkr.tools import ToolContext, ToolSpec

if TYPE_CHECKING:
    from actors import EventStore

__all__ = ["PRIORITIES", "STATUSES", "load_tasks", "plan_create", "plan_delete",
           "plan_set_status", "plan_update", "task_tools", "tasks_stream"]

STATUSES = ("todo", "in_progress", "blocked", "done", "cancelled")
PRIORITIES = ("low", "normal", "high", "urgent")
_RETRIES = 5
Plan = Callable[[TaskList], Sequence[Event]]


def tasks_stream(workspace_id: str) -> str:
    """The stream holding a workspace's tasks."""
    return f"tasks-{workspace_id}"


def load_tasks(recorder: Recorder, workspace_id: str) -> TaskList:
    """The task list folded from position 0 of its stream."""
    return fold_tasks(recorder.read_stream(tasks_stream(workspace_id)))


def _known(state: TaskList, task_id: str) -> None:
    if task_id not in state.tasks:
        raise ToolError(f"no task with id {task_id!r}; workspace_tasks_list shows them")


def plan_create(inputs: Mapping[str, Any], session_id: str | None, task_id: str) -> Plan:
    """A plan adding one task under `task_id`."""
    return lambda state: [TaskCreated(
        task_id=task_id, title=inputs["title"], description=inputs.get("description", ""),
        status=inputs.get("status", "todo"), priority=inputs.get("priority", "normal"),
        session_id=session_id)]


def plan_update(inputs: Mapping[str, Any]) -> Plan:
    """A plan changing the given fields of one task."""
    changes = {k: inputs[k] for k in ("title", "description", "priority") if k in inputs}
    if not changes:
        raise ToolInputError("workspace_task_update: give title, description or priority")

    def plan(state: TaskList) -> Sequence[Event]:
        _known(state, inputs["task_id"])
        return [TaskUpdated(task_id=inputs["task_id"], **changes)]

    return plan


def plan_set_status(task_id: str, status: str) -> Plan:
    """A plan moving one task to `status` (nothing when it is already there)."""

    def plan(state: TaskList) -> Sequence[Event]:
        _known(state, task_id)
        previous = state.tasks[task_id].status
        if previous == status:
            return []
        return [TaskStatusChanged(task_id=task_id, status=status, previous=previous)]

    return plan


def plan_delete(task_id: str) -> Plan:
    """A plan removing one task."""

    def plan(state: TaskList) -> Sequence[Event]:
        _known(state, task_id)
        return [TaskDeleted(task_id=task_id)]

    return plan


async def _apply_plan(store: EventStore, workspace_id: str, plan: Plan) -> TaskList:
    """Fold the stream, plan, append at the version folded; again on a lost race.

    Raises:
        ToolError: the plan refused, or other writers won the race `_RETRIES` times.
    """
    stream = tasks_stream(workspace_id)
    for attempt in range(_RETRIES):
        state = fold_tasks(await store.read_stream(stream))
        events = plan(state)
        if not events:
            return state
        try:
            await store.append(stream, state.version, events)
        except ConcurrencyError:
            if attempt == _RETRIES - 1:
                raise ToolError("the task list kept changing under us; try again") from None
            continue
        return fold_tasks(await store.read_stream(stream))
    raise ToolError("the task list could not be updated")  # the loop always returns first


async def _execute(ctx: ToolContext, plan: Plan) -> TaskList:
    return await _apply_plan(ctx.store, ctx.workspace_id, plan)


def _one(state: TaskList, task_id: str) -> dict[str, Any]:
    task = state.tasks.get(task_id)
    return task.as_dict() if task else {"task_id": task_id, "deleted": True}


async def _create(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
    task_id = uuid.uuid4().hex[:8]
    return _one(await _execute(ctx, plan_create(inputs, ctx.session_id, task_id)), task_id)


async def _list(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
    state = await trio.to_thread.run_sync(load_tasks, ctx.recorder, ctx.workspace_id)
    wanted = inputs.get("status")
    tasks = [t.as_dict() for t in state.ordered() if wanted is None or t.status == wanted]
    return {"tasks": tasks, "count": len(tasks), "version": state.version}


async def _update(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
    return _one(await _execute(ctx, plan_update(inputs)), inputs["task_id"])


async def _set_status(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
    plan = plan_set_status(inputs["task_id"], inputs["status"])
    return _one(await _execute(ctx, plan), inputs["task_id"])


async def _delete(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
    return _one(await _execute(ctx, plan_delete(inputs["task_id"])), inputs["task_id"])


def _obj(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required,
            "additionalProperties": False}


_ID = {"type": "string", "minLength": 1, "maxLength": 64}
_TITLE = {"type": "string", "minLength": 1, "maxLength": 500}
_TEXT = {"type": "string", "maxLength": 20_000}
_STATUS = {"enum": list(STATUSES)}
_PRIORITY = {"enum": list(PRIORITIES)}


def task_tools() -> list[ToolSpec]:
    """The five task tools."""
    return [
        ToolSpec(name="workspace_task_create", policy="tasks", handler=_create, effects=False,
                 read_only=False, description="Add a task to the workspace's task list.",
                 input_schema=_obj({"title": _TITLE, "description": _TEXT,
                                    "priority": _PRIORITY, "status": _STATUS}, ["title"])),
        ToolSpec(name="workspace_tasks_list", policy="tasks", handler=_list, effects=False,
                 description="The workspace's tasks in creation order, optionally by status.",
                 input_schema=_obj({"status": _STATUS}, [])),
        ToolSpec(name="workspace_task_update", policy="tasks", handler=_update, effects=False,
                 read_only=False, description="Change a task's title, description or priority.",
                 input_schema=_obj({"task_id": _ID, "title": _TITLE, "description": _TEXT,
                                    "priority": _PRIORITY}, ["task_id"])),
        ToolSpec(name="workspace_task_set_status", policy="tasks", handler=_set_status,
                 effects=False,
                 read_only=False, description="Move a task to another status.",
                 input_schema=_obj({"task_id": _ID, "status": _STATUS}, ["task_id", "status"])),
        ToolSpec(name="workspace_task_delete", policy="tasks", handler=_delete, effects=False,
                 read_only=False, description="Remove a task from the list.",
                 input_schema=_obj({"task_id": _ID}, ["task_id"])),
    ]
