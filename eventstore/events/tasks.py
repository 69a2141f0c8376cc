"""Events of `tasks-<workspace>` streams: the task list an agent keeps for one workspace.

A task is created, edited, moved between statuses and deleted; the task list is a
projection (`eventstore.projections.tasks`). The workspace id is a short hash of the
resolved WORKSPACE_ROOT, so two checkouts never share a list.
"""

from __future__ import annotations

from dataclasses import dataclass

from eventstore._registry import EVENTS, Event

__all__ = ["TaskCreated", "TaskDeleted", "TaskStatusChanged", "TaskUpdated"]


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class TaskCreated(Event):
    """A task was added to the workspace's list."""

    task_id: str
    title: str
    description: str = ""
    status: str = "todo"
    priority: str = "normal"
    session_id: str | None = None


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class TaskUpdated(Event):
    """A task's title, description or priority changed (only the given fields)."""

    task_id: str
    title: str | None = None
    description: str | None = None
    priority: str | None = None


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class TaskStatusChanged(Event):
    """A task moved from one status to another."""

    task_id: str
    status: str
    previous: str


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class TaskDeleted(Event):
    """A task was removed from the list."""

    task_id: str
