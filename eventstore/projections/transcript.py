"""The `transcript` projection: one row per session turn, readable in a terminal.

From `TurnStarted` (model, the latest user text), `ModelResponded` (the assistant's
text, tool_use names, stop reason, usage, latency), `UpstreamFailed` and
`StreamAborted` (status and error). Message content is read through the blob
lookup of the context, so the function stays pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventstore._errors import BlobNotFoundError
from eventstore._recorder import Recorded
from eventstore._registry import Event
from eventstore.events.session import (
    ModelResponded,
    StreamAborted,
    TurnStarted,
    UpstreamFailed,
)
from eventstore.projections._model import Projection, ProjectionContext, RowOp, Upsert
from eventstore.projections._store import ProjectionStore

__all__ = [
    "PROJECTION",
    "assistant_parts",
    "project_transcript",
    "transcript_rows",
    "user_text",
]

_SESSION = "session-"
_TABLE = "transcript"


def _blob(context: ProjectionContext, ref: Any) -> Any:
    """The blob's value, or a marker if the log lost it (a projection never crashes on it)."""
    try:
        return context.load_blob(ref)
    except BlobNotFoundError:
        return {"missing_blob": ref.hex}


def _texts(content: Any) -> list[str]:
    """Text of a message's content: a string, or the `text` of its text blocks."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, (list, tuple)):
        return [b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text"
                and isinstance(b.get("text"), str)]
    return []


def user_text(messages: Sequence[Any]) -> str:
    """The text of the latest user message that has any (tool results alone have none)."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            texts = _texts(message.get("content"))
            if texts:
                return "\n".join(texts)
    return ""


def assistant_parts(message: Any) -> tuple[str, tuple[str, ...]]:
    """(text, tool_use names) of an assistant message object."""
    if not isinstance(message, dict):
        return "", ()
    content = message.get("content")
    tools = tuple(b.get("name", "?") for b in content or ()
                  if isinstance(b, dict) and b.get("type") == "tool_use")
    return "\n".join(_texts(content)), tools


def _latest_user(context: ProjectionContext, refs: Sequence[Any]) -> str:
    # Load from the end: the latest user text is almost always in the last message.
    for ref in reversed(refs):
        text = user_text([_blob(context, ref)])
        if text:
            return text
    return ""


def project_transcript(record: Recorded[Event], context: ProjectionContext) -> list[RowOp]:
    """Row operations for one event (pure: reads only its arguments)."""
    if not record.stream_id.startswith(_SESSION):
        return []
    key = {"session_id": record.stream_id[len(_SESSION):], "turn": getattr(record.event, "turn", 0)}
    match record.event:
        case TurnStarted() as ev:
            values: dict[str, Any] = {
                "model": ev.model, "request_id": ev.request_id, "status": "open",
                "user_text": _latest_user(context, ev.messages),
                "started_at": record.recorded_at, "position": record.position}
        case ModelResponded() as ev:
            text, tools = assistant_parts(_blob(context, ev.message))
            values = {
                "status": "ok", "assistant_text": text, "tool_uses": ",".join(tools),
                "stop_reason": ev.stop_reason, "latency_ms": ev.latency_ms,
                "input_tokens": int(ev.usage.get("input_tokens", 0)),
                "output_tokens": int(ev.usage.get("output_tokens", 0)),
                "ended_at": record.recorded_at, "position": record.position}
        case UpstreamFailed() as ev:
            values = {"status": "failed", "error": f"{ev.error_type} ({ev.status}): {ev.message}",
                      "ended_at": record.recorded_at, "position": record.position}
        case StreamAborted() as ev:
            partial = assistant_parts(_blob(context, ev.partial))[0] if ev.partial else ""
            values = {"status": "aborted", "error": ev.reason, "assistant_text": partial,
                      "ended_at": record.recorded_at, "position": record.position}
        case _:
            return []
    return [Upsert(_TABLE, key, set=values)]


PROJECTION = Projection(
    name="transcript",
    version=1,
    tables={_TABLE: """
        CREATE TABLE IF NOT EXISTS transcript (
            session_id     TEXT    NOT NULL,
            turn           INTEGER NOT NULL,
            model          TEXT,
            request_id     TEXT,
            user_text      TEXT,
            assistant_text TEXT,
            tool_uses      TEXT,
            stop_reason    TEXT,
            input_tokens   INTEGER,
            output_tokens  INTEGER,
            status         TEXT,
            error          TEXT,
            latency_ms     REAL,
            started_at     REAL,
            ended_at       REAL,
            position       INTEGER,
            PRIMARY KEY (session_id, turn)
        ) WITHOUT ROWID"""},
    project=project_transcript,
    types=frozenset({"TurnStarted", "ModelResponded", "UpstreamFailed", "StreamAborted"}),
)


def transcript_rows(store: ProjectionStore, session_id: str) -> list[dict[str, Any]]:
    """The session's turns in order, as stored by the projection."""
    return store.query("SELECT * FROM transcript WHERE session_id = ? ORDER BY turn",
                       (session_id,))
