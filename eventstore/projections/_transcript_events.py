"""The `transcript_events` rows: what happened inside a turn, one row per event.

`event_values(event, load)` maps one session event to the columns of its row, or None
for events the turn rows already show (`TurnStarted`, `ModelResponded`, …). It reads
the event and at most one blob through `load` (the agent-loop step's message, or the
tool's result), never other rows, so its work does not grow with the session.

| kind | from | name | status | text | detail |
|---|---|---|---|---|---|
| `step` | `LoopStepResponded` | - | stop reason | the step's text | its server tool calls |
| `policy` | `PolicyDecided` | tool | allow / deny | reason | rule |
| `tool_started` | `ToolCallStarted` | tool | - | - | "may change things" |
| `tool_result` | `ToolCompleted` | tool | ok / error | result preview | duration |
| `tool_interrupted` | `ToolCallInterrupted` | tool | reason | - | "effects possible" |
| `tool_queued` | `ToolCallQueued` | tool | connector (or "waiting") | user | timeout |
| `cache_hit` / `cache_stored` / `cache_evicted` | `Cache*` | key (12 hex) | reason | - | tokens |
| `loop_stopped` | `SessionLoopStopped` | rule | - | the reason the client saw | turns |
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeGuard

from eventstore._registry import Event
from eventstore.events.session import (
    CacheEvicted,
    CacheHit,
    CacheStored,
    LoopStepResponded,
    PolicyDecided,
    SessionLoopStopped,
    ToolCallInterrupted,
    ToolCallQueued,
    ToolCallStarted,
    ToolCompleted,
)

__all__ = ["EVENT_TYPES", "event_values", "preview"]

EVENT_TYPES = frozenset({"LoopStepResponded", "PolicyDecided", "ToolCallStarted",
                         "ToolCompleted", "ToolCallInterrupted", "CacheHit", "CacheStored",
                         "CacheEvicted", "SessionLoopStopped", "ToolCallQueued"})
PREVIEW_CHARS = 160  # of a tool result
INPUT_CHARS = 60  # of a server tool call's input

Load = Callable[[Any], Any]


def preview(value: Any, limit: int = PREVIEW_CHARS) -> str:
    """A one-line preview of a JSON-like value, cut at `limit` characters.

    A string is itself; MCP text blocks (alone, or as a result's `content`) give their
    text; an object whose only key is `error` gives the error; anything else is compact
    JSON. Whitespace runs become one space; a cut preview ends with "… (N chars)".
    """
    text = " ".join(_as_text(value).split())
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} chars)"


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if set(value) == {"error"} and isinstance(value["error"], str):
            return value["error"]
        blocks = value.get("content")
        if _text_blocks(blocks):
            return " ".join(b["text"] for b in blocks)
    if _text_blocks(value):
        return " ".join(b["text"] for b in value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _text_blocks(value: Any) -> TypeGuard[Sequence[dict[str, Any]]]:
    return isinstance(value, (list, tuple)) and bool(value) and all(
        isinstance(b, dict) and isinstance(b.get("text"), str) for b in value)


def _step(event: LoopStepResponded, load: Load) -> dict[str, Any]:
    message = load(event.message)
    content = message.get("content") if isinstance(message, dict) else None
    texts, calls = [], []
    for block in content if isinstance(content, (list, tuple)) else ():
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif block.get("type") in ("tool_use", "server_tool_use"):
            shown = preview(block.get("input", {}), INPUT_CHARS)
            calls.append(f"{block.get('name', '?')}({shown})")
    return {"kind": "step", "step": event.step, "status": event.stop_reason,
            "text": "\n".join(texts), "detail": ", ".join(calls) or None}


def event_values(event: Event, load: Load) -> dict[str, Any] | None:
    """The `transcript_events` columns of one session event (see module docstring).

    Args:
        event: the recorded event.
        load: reads a blob (`ProjectionContext.load_blob`, tolerant of missing blobs).

    Returns:
        kind, name, status, text, detail, step, tool_call_id, caller; or None.
    """
    values: dict[str, Any]
    match event:
        case LoopStepResponded():
            values = _step(event, load)
        case PolicyDecided():
            values = {"kind": "policy", "name": event.tool, "status": event.decision,
                      "text": event.reason, "detail": event.rule, "caller": event.caller}
        case ToolCallStarted():
            values = {"kind": "tool_started", "name": event.tool, "caller": event.caller,
                      "detail": "may change things" if event.effects else None}
        case ToolCompleted():
            values = {"kind": "tool_result", "name": event.tool,
                      "status": "ok" if event.ok else "error",
                      "text": preview(load(event.result)),
                      "detail": f"{event.duration_ms:.0f} ms"}
        case ToolCallQueued():
            values = {"kind": "tool_queued", "name": event.tool,
                      "status": event.connector_id or "waiting", "text": event.user,
                      "detail": f"timeout {event.timeout_s:g} s"}
        case ToolCallInterrupted():
            values = {"kind": "tool_interrupted", "name": event.tool, "status": event.reason,
                      "detail": "effects possible" if event.effects_possible else None}
        case CacheHit():
            values = {"kind": "cache_hit", "name": event.key[:12],
                      "detail": f"{event.input_tokens} input tokens read from the cache"}
        case CacheStored():
            values = {"kind": "cache_stored", "name": event.key[:12],
                      "detail": f"{event.input_tokens} input tokens"}
        case CacheEvicted():
            values = {"kind": "cache_evicted", "name": event.key[:12], "status": event.reason}
        case SessionLoopStopped():
            return {"kind": "loop_stopped", "name": event.rule, "text": event.reason,
                    "detail": f"{event.count} times; turns {', '.join(map(str, event.turns))}"}
        case _:
            return None
    values.setdefault("tool_call_id", getattr(event, "tool_call_id", None))
    return values
