"""The `transcript` projection: one row per session turn, readable in a terminal.

From `TurnStarted` (model, the latest user text: see `_latest_user`),
`ModelResponded` (the assistant's text, tool_use names, stop reason, usage,
latency), `UpstreamFailed` and `StreamAborted` (status and error). Message content
is read through the blob lookup of the context, so the function stays pure.

What happens inside a turn (and outside any, e.g. `lynkr tool call`, the admin API,
a request the loop guard refused) is one `transcript_events` row per event, keyed by
the session and the event's sequence number: the agent loop's steps
(`LoopStepResponded`: its text and server tool calls), policy decisions, tool calls
started, completed (with a short preview of the result) or interrupted, prompt-cache
hits, stores and evictions, and `SessionLoopStopped`. Each such row is built from its
own event (and at most one blob: the step's message or the tool's result), so the
work per event does not grow with the session (see `_transcript_events`). A turn row
keeps the sequence number of its `TurnStarted` (`started_seq`) so a reader can put the
events outside turns in order between the turns.
"""

from __future__ import annotations

import hashlib
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
from eventstore.projections._transcript_events import EVENT_TYPES, event_values, preview

__all__ = [
    "PROJECTION",
    "assistant_parts",
    "preview",
    "project_transcript",
    "transcript_events",
    "transcript_rows",
    "user_text",
]

_SESSION = "session-"
_TABLE = "transcript"
_EVENTS = "transcript_events"
_EVENT_COLUMNS = ("seq, turn, kind, step, name, tool_call_id, caller, status, text, detail, "
                  "recorded_at, position")
_SHOWN = ("session_id, turn, model, request_id, user_text, assistant_text, tool_uses, "
          "stop_reason, input_tokens, output_tokens, status, error, latency_ms, started_at, "
          "ended_at, position, started_seq")  # not the history bookkeeping of `_latest_user`


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


def _latest_user(
    context: ProjectionContext, key: dict[str, Any], refs: Sequence[Any]
) -> tuple[str, int, str]:
    """(the turn's user text, its message count, the digest of its message refs).

    A client resends the whole history every turn, and in a tool loop the messages
    since the user last wrote are all tool results: searching each turn's history
    from the end loaded O(turns) blobs per turn. So each row keeps its history's
    length and the SHA-256 of its refs; when the previous turn's history is an exact
    prefix of this one's, only the messages added since are searched, and if none of
    them has text the user's text is the one the previous turn found.
    """
    digest = _refs_digest(refs)
    start, found = 0, ""
    if key["turn"] > 1:
        previous = context.get(_TABLE, session_id=key["session_id"], turn=key["turn"] - 1)
        count = previous.get("message_count") if previous else None
        if (previous is not None and isinstance(count, int) and count <= len(refs)
                and previous.get("messages_digest") == _refs_digest(refs[:count])):
            start, found = count, str(previous.get("user_text") or "")
    for ref in reversed(refs[start:]):
        text = user_text([_blob(context, ref)])
        if text:
            return text, len(refs), digest
    return found, len(refs), digest


def _refs_digest(refs: Sequence[Any]) -> str:
    return hashlib.sha256(b"".join(ref.digest for ref in refs)).hexdigest()


def project_transcript(record: Recorded[Event], context: ProjectionContext) -> list[RowOp]:
    """Row operations for one event (pure: reads only its arguments)."""
    if not record.stream_id.startswith(_SESSION):
        return []
    if type(record.event).type_name in EVENT_TYPES:
        return _event_row(record, context)
    key = {"session_id": record.stream_id[len(_SESSION):], "turn": getattr(record.event, "turn", 0)}
    match record.event:
        case TurnStarted() as ev:
            text, count, digest = _latest_user(context, key, ev.messages)
            values: dict[str, Any] = {
                "model": ev.model, "request_id": ev.request_id, "status": "open",
                "user_text": text, "message_count": count, "messages_digest": digest,
                "started_at": record.recorded_at, "position": record.position,
                "started_seq": record.seq}
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


def _event_row(record: Recorded[Event], context: ProjectionContext) -> list[RowOp]:
    """The `transcript_events` row of one event inside (or outside) a turn."""
    values = event_values(record.event, lambda ref: _blob(context, ref))
    if values is None:
        return []
    values.update(turn=getattr(record.event, "turn", None), recorded_at=record.recorded_at,
                  position=record.position)
    return [Upsert(_EVENTS, {"session_id": record.stream_id[len(_SESSION):], "seq": record.seq},
                   set=values)]


PROJECTION = Projection(
    name="transcript",
    # 2: message_count and messages_digest, for `_latest_user`; 3: transcript_events
    # (agent-loop steps, tool calls, prompt cache, loop stops) and started_seq
    version=4,
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
            message_count  INTEGER,
            messages_digest TEXT,
            started_seq    INTEGER,
            PRIMARY KEY (session_id, turn)
        ) WITHOUT ROWID""", _EVENTS: """
        CREATE TABLE IF NOT EXISTS transcript_events (
            session_id   TEXT    NOT NULL,
            seq          INTEGER NOT NULL,
            turn         INTEGER,
            kind         TEXT    NOT NULL,
            step         INTEGER,
            name         TEXT,
            tool_call_id TEXT,
            caller       TEXT,
            status       TEXT,
            text         TEXT,
            detail       TEXT,
            recorded_at  REAL,
            position     INTEGER,
            PRIMARY KEY (session_id, seq)
        ) WITHOUT ROWID"""},
    project=project_transcript,
    types=frozenset({"TurnStarted", "ModelResponded", "UpstreamFailed", "StreamAborted",
                     *EVENT_TYPES}),
)


def transcript_rows(store: ProjectionStore, session_id: str) -> list[dict[str, Any]]:
    """The session's turns in order, as stored by the projection."""
    return store.query(f"SELECT {_SHOWN} FROM transcript WHERE session_id = ? ORDER BY turn",
                       (session_id,))


def transcript_events(store: ProjectionStore, session_id: str) -> list[dict[str, Any]]:
    """The session's in-turn (and turn-less) events in log order (`_transcript_events`)."""
    return store.query(f"SELECT {_EVENT_COLUMNS} FROM transcript_events WHERE session_id = ? "
                       "ORDER BY seq", (session_id,))
