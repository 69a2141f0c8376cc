"""The `usage` projection: tokens per UTC day, per API key and per model.

The key comes from the `key_id` of the `TurnStarted` request metadata ("anonymous"
when there is none); the model is the backend model of the turn's `RouteChosen`,
or the model the client asked for. The open turns are remembered in
`usage_turns` until their outcome arrives, then forgotten.
"""

from __future__ import annotations

import time
from typing import Any

from eventstore._recorder import Recorded
from eventstore._registry import Event
from eventstore.events.session import (
    ModelResponded,
    RouteChosen,
    StreamAborted,
    TurnStarted,
    UpstreamFailed,
)
from eventstore.projections._model import Delete, Projection, ProjectionContext, RowOp, Upsert
from eventstore.projections._store import ProjectionStore

__all__ = [
    "ANONYMOUS",
    "PROJECTION",
    "day_of",
    "project_usage",
    "usage_by_day_and_key",
    "usage_by_model",
]

ANONYMOUS = "anonymous"
_SESSION = "session-"
_TOKENS = ("input_tokens", "output_tokens", "cache_creation_input_tokens",
           "cache_read_input_tokens")


def day_of(timestamp: float) -> str:
    """The UTC date of an event's `recorded_at` (a pure function, not a clock read)."""
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


def project_usage(record: Recorded[Event], context: ProjectionContext) -> list[RowOp]:
    """Row operations for one event (pure: reads only the event and its own rows)."""
    if not record.stream_id.startswith(_SESSION):
        return []
    turn_key = {"session_id": record.stream_id[len(_SESSION):],
                "turn": getattr(record.event, "turn", 0)}
    match record.event:
        case TurnStarted() as ev:
            key = record.metadata.key_id or ANONYMOUS
            return [Upsert("usage_turns", turn_key, set={"key": key, "model": ev.model})]
        case RouteChosen() as ev:
            return [Upsert("usage_turns", turn_key, set={"model": ev.backend_model})]
        case ModelResponded() as ev:
            turn = context.get("usage_turns", **turn_key) or {}
            counts: dict[str, Any] = {"turns": 1}
            counts |= {name: int(ev.usage.get(name, 0) or 0) for name in _TOKENS}
            row = {"day": day_of(record.recorded_at), "key": turn.get("key") or ANONYMOUS,
                   "model": turn.get("model") or "unknown"}
            return [Upsert("usage_daily", row, add=counts), Delete("usage_turns", turn_key)]
        case UpstreamFailed() | StreamAborted():
            return [Delete("usage_turns", turn_key)]
        case _:
            return []


PROJECTION = Projection(
    name="usage",
    version=1,
    tables={
        "usage_daily": """
            CREATE TABLE IF NOT EXISTS usage_daily (
                day   TEXT NOT NULL,
                key   TEXT NOT NULL,
                model TEXT NOT NULL,
                turns INTEGER NOT NULL DEFAULT 0,
                input_tokens INTEGER NOT NULL DEFAULT 0,
                output_tokens INTEGER NOT NULL DEFAULT 0,
                cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0,
                cache_read_input_tokens INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (day, key, model)
            ) WITHOUT ROWID""",
        "usage_turns": """
            CREATE TABLE IF NOT EXISTS usage_turns (
                session_id TEXT NOT NULL,
                turn       INTEGER NOT NULL,
                key        TEXT,
                model      TEXT,
                PRIMARY KEY (session_id, turn)
            ) WITHOUT ROWID""",
    },
    project=project_usage,
    types=frozenset({"TurnStarted", "RouteChosen", "ModelResponded", "UpstreamFailed",
                     "StreamAborted"}),
)


_SUMS = ", ".join(f"sum({c}) AS {c}" for c in ("turns", *_TOKENS))


def usage_by_day_and_key(store: ProjectionStore) -> list[dict[str, Any]]:
    """Tokens per UTC day and API key, newest day first."""
    return store.query(f"SELECT day, key, {_SUMS} FROM usage_daily GROUP BY day, key "
                       "ORDER BY day DESC, key")


def usage_by_model(store: ProjectionStore) -> list[dict[str, Any]]:
    """Tokens per model over all time."""
    return store.query(f"SELECT model, {_SUMS} FROM usage_daily GROUP BY model ORDER BY model")
