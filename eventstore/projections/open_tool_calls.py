"""The `open_tool_calls` projection: server tool calls started and not yet ended.

One row per `ToolCallStarted` of a `session-<id>` stream, deleted by the call's
`ToolCompleted` or `ToolCallInterrupted` (matched by session and tool call id). At
gateway start every row whose call ran in the gateway is a call that died with the
previous process: recovery (`lynkr.tools.recover_interrupted_calls`) closes each one
with `ToolCallInterrupted(reason="gateway_restarted")` and reads this table instead of
scanning every session stream. The table stays as small as the calls in flight.
"""

from __future__ import annotations

from typing import Any

from eventstore._recorder import Recorded
from eventstore._registry import Event
from eventstore.events.session import ToolCallInterrupted, ToolCallStarted, ToolCompleted
from eventstore.projections._model import Delete, Projection, ProjectionContext, RowOp, Upsert
from eventstore.projections._store import ProjectionStore

__all__ = ["PROJECTION", "open_call_rows", "project_open_tool_calls"]

_SESSION = "session-"


def project_open_tool_calls(record: Recorded[Event], context: ProjectionContext) -> list[RowOp]:
    """Row operations for one tool-call event of a session stream (pure)."""
    event = record.event
    if not record.stream_id.startswith(_SESSION):
        return []
    if not isinstance(event, ToolCallStarted | ToolCompleted | ToolCallInterrupted):
        return []
    key = {"session_id": record.stream_id[len(_SESSION):], "tool_call_id": event.tool_call_id or ""}
    if isinstance(event, ToolCallStarted):
        return [Upsert("open_tool_calls", key, set={
            "tool": event.tool, "turn": event.turn, "effects": int(event.effects),
            "caller": event.caller, "seq": record.seq, "position": record.position,
            "started_at": record.recorded_at})]
    return [Delete("open_tool_calls", key)]


PROJECTION = Projection(
    name="open_tool_calls",
    version=1,
    tables={"open_tool_calls": """
        CREATE TABLE IF NOT EXISTS open_tool_calls (
            session_id   TEXT NOT NULL,
            tool_call_id TEXT NOT NULL,
            tool         TEXT NOT NULL,
            turn         INTEGER,
            effects      INTEGER NOT NULL,
            caller       TEXT,
            seq          INTEGER NOT NULL,
            position     INTEGER NOT NULL,
            started_at   REAL NOT NULL,
            PRIMARY KEY (session_id, tool_call_id)
        ) WITHOUT ROWID"""},
    project=project_open_tool_calls,
    types=frozenset({"ToolCallStarted", "ToolCompleted", "ToolCallInterrupted"}),
)


def open_call_rows(store: ProjectionStore) -> list[dict[str, Any]]:
    """Every open call, oldest first."""
    return store.query("SELECT * FROM open_tool_calls ORDER BY position")
