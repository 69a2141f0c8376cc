"""The `usage` projection: what each key and user used, per model, provider and UTC day.

One `usage_daily` row per (day, key, user, model, provider) counts requests, input,
output, cache-read and cache-creation tokens, tool calls, errors and upstream latency.
Exactly once: the `ProjectionStore` moves the offset in the same transaction.

- **key**: the `key_id` in the `TurnStarted` metadata ("anonymous" without one).
- **user**: the key's user from its `KeyCreated` event (`usage_keys`); a JWT's key id
  `jwt:<sub>` is the user `<sub>`; otherwise the key id itself.
- **model / provider**: the backend model and provider of the turn's `RouteChosen`
  (before it: the model the client asked for); the provider of the outcome when it
  names one (a prompt-cache hit is provider `cache`).
- A request is counted on the UTC day of its outcome (`ModelResponded`,
  `UpstreamFailed` or `StreamAborted`); the two failures also count an error.
  Tokens and upstream latency (`latency_ms`, summed) come from `ModelResponded`; tool
  calls are the server tools run in the turn (`ToolCompleted`) plus the `tool_use`
  blocks of the answer the client got.

The open turns are remembered in `usage_turns` until their outcome arrives.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from eventstore._recorder import Recorded
from eventstore._registry import Event
from eventstore.events.gateway import KeyCreated
from eventstore.events.session import (
    ModelResponded,
    RouteChosen,
    StreamAborted,
    ToolCompleted,
    TurnStarted,
    UpstreamFailed,
)
from eventstore.projections._model import Delete, Projection, ProjectionContext, RowOp, Upsert
from eventstore.projections._store import ProjectionStore

__all__ = [
    "ANONYMOUS",
    "COUNTERS",
    "GROUPINGS",
    "PROJECTION",
    "day_of",
    "project_usage",
    "query_usage",
    "usage_by_day_and_key",
    "usage_by_model",
    "usage_query",
]

ANONYMOUS = "anonymous"
_SESSION = "session-"
_TOKENS = ("input_tokens", "output_tokens", "cache_read_input_tokens",
           "cache_creation_input_tokens")
COUNTERS = ("requests", *_TOKENS, "tool_calls", "errors", "latency_ms")
"""The summed columns of `usage_daily`, in report order."""
GROUPINGS = ("day", "model", "key", "user", "provider")
"""What `query_usage` can group by."""


def day_of(timestamp: float) -> str:
    """The UTC date of an event's `recorded_at` (a pure function, not a clock read)."""
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


def _user_of(key: str, context: ProjectionContext) -> str:
    row = context.get("usage_keys", key=key)
    if row is not None:
        return str(row["user"])
    return key[4:] if key.startswith("jwt:") else key


def _tool_uses(message: Any) -> int:
    content = message.get("content") if isinstance(message, Mapping) else None
    if not isinstance(content, list | tuple):  # blobs may come back frozen (tuples)
        return 0
    return sum(1 for block in content if isinstance(block, Mapping)
               and block.get("type") == "tool_use")


def _outcome(record: Recorded[Event], context: ProjectionContext, turn_key: dict[str, Any],
             counts: dict[str, int | float], provider: str | None) -> list[RowOp]:
    """The turn's daily row counted and its open-turn row forgotten."""
    turn = context.get("usage_turns", **turn_key) or {}
    key = str(turn.get("key") or ANONYMOUS)
    counts = {"requests": 1, **counts, "tool_calls": int(counts.get("tool_calls", 0))
              + int(turn.get("tool_calls") or 0)}
    row = {"day": day_of(record.recorded_at), "key": key,
           "user": str(turn.get("user") or key), "model": str(turn.get("model") or "unknown"),
           "provider": provider or str(turn.get("provider") or "unknown")}
    return [Upsert("usage_daily", row, add=counts), Delete("usage_turns", turn_key)]


def project_usage(record: Recorded[Event], context: ProjectionContext) -> list[RowOp]:
    """Row operations for one event (pure: reads only the event and its own rows)."""
    if isinstance(record.event, KeyCreated):
        return [Upsert("usage_keys", {"key": record.event.key_id},
                       set={"user": record.event.user})]
    if not record.stream_id.startswith(_SESSION):
        return []
    turn_key = {"session_id": record.stream_id[len(_SESSION):],
                "turn": getattr(record.event, "turn", 0)}
    match record.event:
        case TurnStarted() as ev:
            key = record.metadata.key_id or ANONYMOUS
            return [Upsert("usage_turns", turn_key, set={
                "key": key, "user": _user_of(key, context), "model": ev.model,
                "provider": None, "tool_calls": 0})]
        case RouteChosen() as ev:
            return [Upsert("usage_turns", turn_key,
                           set={"model": ev.backend_model, "provider": ev.provider})]
        case ToolCompleted() as ev if ev.turn is not None:
            if context.get("usage_turns", **turn_key) is None:
                return []
            return [Upsert("usage_turns", turn_key, add={"tool_calls": 1})]
        case ModelResponded() as ev:
            counts: dict[str, int | float] = {
                name: int(ev.usage.get(name, 0) or 0) for name in _TOKENS}
            counts["latency_ms"] = float(ev.latency_ms) if ev.provider != "cache" else 0.0
            counts["tool_calls"] = _tool_uses(context.load_blob(ev.message))
            return _outcome(record, context, turn_key, counts, ev.provider)
        case UpstreamFailed() | StreamAborted() as ev:
            return _outcome(record, context, turn_key, {"errors": 1}, ev.provider)
        case _:
            return []


PROJECTION = Projection(
    name="usage",
    version=2,
    tables={
        "usage_daily": """
            CREATE TABLE IF NOT EXISTS usage_daily (
                day      TEXT NOT NULL,
                key      TEXT NOT NULL,
                user     TEXT NOT NULL,
                model    TEXT NOT NULL,
                provider TEXT NOT NULL,
                requests INTEGER NOT NULL DEFAULT 0,
                input_tokens INTEGER NOT NULL DEFAULT 0,
                output_tokens INTEGER NOT NULL DEFAULT 0,
                cache_read_input_tokens INTEGER NOT NULL DEFAULT 0,
                cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0,
                tool_calls INTEGER NOT NULL DEFAULT 0,
                errors INTEGER NOT NULL DEFAULT 0,
                latency_ms REAL NOT NULL DEFAULT 0,
                PRIMARY KEY (day, key, user, model, provider)
            ) WITHOUT ROWID""",
        "usage_turns": """
            CREATE TABLE IF NOT EXISTS usage_turns (
                session_id TEXT NOT NULL,
                turn       INTEGER NOT NULL,
                key        TEXT,
                user       TEXT,
                model      TEXT,
                provider   TEXT,
                tool_calls INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (session_id, turn)
            ) WITHOUT ROWID""",
        "usage_keys": """
            CREATE TABLE IF NOT EXISTS usage_keys (
                key  TEXT PRIMARY KEY,
                user TEXT NOT NULL
            ) WITHOUT ROWID""",
    },
    project=project_usage,
    types=frozenset({"KeyCreated", "TurnStarted", "RouteChosen", "ToolCompleted",
                     "ModelResponded", "UpstreamFailed", "StreamAborted"}),
)


_SUMS = ", ".join(f"sum({c}) AS {c}" for c in COUNTERS)


def usage_query(
    *, by: Sequence[str] = ("day",), key: str | None = None, user: str | None = None,
    since: str | None = None, until: str | None = None,
) -> tuple[str, list[str]]:
    """The SQL (and its arguments) summing the counters grouped by `by` (names from
    `GROUPINGS`), filtered by key, user and an inclusive range of UTC days
    (`YYYY-MM-DD`); ordered by the groups.

    Raises:
        ValueError: a grouping that is not in `GROUPINGS`.
    """
    for name in by:
        if name not in GROUPINGS:
            raise ValueError(f"cannot group usage by {name!r} (one of {', '.join(GROUPINGS)})")
    where, args = [], []
    for column, op, value in (("key", "=", key), ("user", "=", user), ("day", ">=", since),
                              ("day", "<=", until)):
        if value is not None:
            where.append(f"{column} {op} ?")
            args.append(value)
    groups = ", ".join(by)
    sql = (f"SELECT {groups + ', ' if groups else ''}{_SUMS} FROM usage_daily"
           f"{' WHERE ' + ' AND '.join(where) if where else ''}"
           f"{' GROUP BY ' + groups + ' ORDER BY ' + groups if groups else ''}")
    return sql, args


def query_usage(
    store: ProjectionStore, *, by: Sequence[str] = ("day",), key: str | None = None,
    user: str | None = None, since: str | None = None, until: str | None = None,
) -> list[dict[str, Any]]:
    """`usage_query` run on `store` (rows with no request at all left out).

    Raises:
        ValueError: a grouping that is not in `GROUPINGS`.
    """
    sql, args = usage_query(by=by, key=key, user=user, since=since, until=until)
    return [r for r in store.query(sql, args) if r["requests"] is not None]


def usage_by_day_and_key(store: ProjectionStore) -> list[dict[str, Any]]:
    """Counters per UTC day and API key, newest day first."""
    return sorted(query_usage(store, by=("day", "key")), key=lambda r: r["day"], reverse=True)


def usage_by_model(store: ProjectionStore) -> list[dict[str, Any]]:
    """Counters per model over all time."""
    return query_usage(store, by=("model",))
