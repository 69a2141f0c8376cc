"""The `sessions` projection: one row per session with counts and first/last activity.

`key_id` is the gateway key of the session's latest turn (from its `TurnStarted`
metadata; None with auth off), so a reader can show a user only their own sessions.
"""

from __future__ import annotations

from typing import Any

from eventstore._recorder import Recorded
from eventstore._registry import Event
from eventstore.events.session import (
    SessionStarted,
    StreamAborted,
    TurnStarted,
    UpstreamFailed,
)
from eventstore.projections._model import Projection, ProjectionContext, RowOp, Upsert
from eventstore.projections._store import ProjectionStore

__all__ = ["PROJECTION", "project_sessions", "session_rows"]

_SESSION = "session-"


def project_sessions(record: Recorded[Event], context: ProjectionContext) -> list[RowOp]:
    """Row operations for one event of a `session-<id>` stream (pure)."""
    if not record.stream_id.startswith(_SESSION):
        return []
    add: dict[str, int] = {"events": 1}
    values: dict[str, Any] = {"last_at": record.recorded_at, "last_position": record.position,
                              "version": record.seq}
    match record.event:
        case SessionStarted() as ev:
            values |= {"source": ev.source, "client": ev.client}
        case TurnStarted() as ev:
            add["turns"] = 1
            values["model"] = ev.model
            values["key_id"] = record.metadata.key_id
        case UpstreamFailed() | StreamAborted():
            add["failures"] = 1
        case _:
            pass
    return [Upsert("sessions", {"session_id": record.stream_id[len(_SESSION):]}, set=values,
                   add=add, insert_only={"first_at": record.recorded_at})]


PROJECTION = Projection(
    name="sessions",
    version=2,  # 2: key_id
    tables={"sessions": """
        CREATE TABLE IF NOT EXISTS sessions (
            session_id    TEXT PRIMARY KEY,
            events        INTEGER NOT NULL DEFAULT 0,
            turns         INTEGER NOT NULL DEFAULT 0,
            failures      INTEGER NOT NULL DEFAULT 0,
            version       INTEGER,
            model         TEXT,
            source        TEXT,
            client        TEXT,
            key_id        TEXT,
            first_at      REAL,
            last_at       REAL,
            last_position INTEGER
        ) WITHOUT ROWID"""},
    project=project_sessions,
)


def session_rows(store: ProjectionStore) -> list[dict[str, Any]]:
    """Every session, most recently active first."""
    return store.query("SELECT * FROM sessions ORDER BY last_position DESC")
