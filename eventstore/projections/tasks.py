"""The task-list projection of a `tasks-<workspace>` stream: pure, no I/O, no clock.

`project_tasks(state, recorded)` folds one recorded event into the list;
`fold_tasks(records)` folds a whole stream from position 0. Rebuilding from the
log always gives the same list as the live one. `PROJECTION` keeps every
workspace's tasks in the `tasks` table of the `ProjectionStore` (`stored_tasks`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from eventstore._recorder import Recorded
from eventstore._registry import Event
from eventstore.events.tasks import TaskCreated, TaskDeleted, TaskStatusChanged, TaskUpdated
from eventstore.projections._model import Delete, Projection, ProjectionContext, RowOp, Upsert
from eventstore.projections._store import ProjectionStore

__all__ = ["PROJECTION", "Task", "TaskList", "fold_tasks", "project_task_rows", "project_tasks",
           "stored_tasks"]

_PREFIX = "tasks-"


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    """One task as it stands now."""

    task_id: str
    title: str
    description: str
    status: str
    priority: str
    created_at: float
    updated_at: float
    created_seq: int

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form for tool results and `lynkr tasks --json`."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class TaskList:
    """Every live task of one workspace, and the stream version it reflects."""

    tasks: Mapping[str, Task] = field(default_factory=lambda: MappingProxyType({}))
    version: int = 0

    def ordered(self) -> list[Task]:
        """Tasks in creation order."""
        return sorted(self.tasks.values(), key=lambda t: t.created_seq)


def _apply(tasks: dict[str, Task], event: Event, seq: int, at: float) -> None:
    match event:
        case TaskCreated():
            tasks[event.task_id] = Task(
                task_id=event.task_id, title=event.title, description=event.description,
                status=event.status, priority=event.priority, created_at=at, updated_at=at,
                created_seq=seq,
            )
        case TaskUpdated() if event.task_id in tasks:
            old = tasks[event.task_id]
            tasks[event.task_id] = dataclasses.replace(
                old,
                title=old.title if event.title is None else event.title,
                description=old.description if event.description is None else event.description,
                priority=old.priority if event.priority is None else event.priority,
                updated_at=at,
            )
        case TaskStatusChanged() if event.task_id in tasks:
            tasks[event.task_id] = dataclasses.replace(
                tasks[event.task_id], status=event.status, updated_at=at)
        case TaskDeleted():
            tasks.pop(event.task_id, None)
        case _:
            pass  # events of other kinds, or about tasks already deleted, change nothing


def project_tasks(state: TaskList | None, recorded: Recorded[Event]) -> TaskList:
    """The task list after one more recorded event of its stream."""
    tasks = dict(state.tasks) if state is not None else {}
    _apply(tasks, recorded.event, recorded.seq, recorded.recorded_at)
    return TaskList(MappingProxyType(tasks), recorded.seq)


def fold_tasks(records: Iterable[Recorded[Event]]) -> TaskList:
    """The task list after every event of `records`, in order (one copy, not one per event)."""
    tasks: dict[str, Task] = {}
    version = 0
    for recorded in records:
        _apply(tasks, recorded.event, recorded.seq, recorded.recorded_at)
        version = recorded.seq
    return TaskList(MappingProxyType(tasks), version)


def project_task_rows(recorded: Recorded[Event], context: ProjectionContext) -> list[RowOp]:
    """Row operations for one event of a `tasks-<workspace>` stream."""
    if not recorded.stream_id.startswith(_PREFIX):
        return []
    key = {"workspace_id": recorded.stream_id[len(_PREFIX):],
           "task_id": getattr(recorded.event, "task_id", "")}
    if isinstance(recorded.event, TaskDeleted):
        return [Delete("tasks", key)]
    old = context.get("tasks", **key)
    state = TaskList(MappingProxyType({key["task_id"]: _task_of(old)} if old else {}))
    new = project_tasks(state, recorded).tasks.get(key["task_id"])
    if new is None:
        return []
    values = new.as_dict()
    values.pop("task_id")
    return [Upsert("tasks", key, set=values)]


def _task_of(row: Mapping[str, object]) -> Task:
    names = {f.name for f in dataclasses.fields(Task)}
    return Task(**{k: v for k, v in row.items() if k in names})  # type: ignore[arg-type]


PROJECTION = Projection(
    name="tasks",
    version=1,
    tables={"tasks": """
        CREATE TABLE IF NOT EXISTS tasks (
            workspace_id TEXT NOT NULL,
            task_id      TEXT NOT NULL,
            title        TEXT NOT NULL,
            description  TEXT NOT NULL,
            status       TEXT NOT NULL,
            priority     TEXT NOT NULL,
            created_at   REAL NOT NULL,
            updated_at   REAL NOT NULL,
            created_seq  INTEGER NOT NULL,
            PRIMARY KEY (workspace_id, task_id)
        ) WITHOUT ROWID"""},
    project=project_task_rows,
    types=frozenset({"TaskCreated", "TaskUpdated", "TaskStatusChanged", "TaskDeleted"}),
)


def stored_tasks(store: ProjectionStore, workspace_id: str | None = None) -> list[Task]:
    """Tasks from the projection table (one workspace, or all), in creation order."""
    sql = "SELECT * FROM tasks"
    args: tuple[object, ...] = ()
    if workspace_id is not None:
        sql += " WHERE workspace_id = ?"
        args = (workspace_id,)
    rows = store.query(sql + " ORDER BY workspace_id, created_seq", args)
    return [_task_of(row) for row in rows]
