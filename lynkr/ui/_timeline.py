"""A session's events as the viewer shows them: timeline rows and the conversation.

`timeline_row(record, load)` maps one event of a `session-<id>` stream to a row
(`seq`, `at`, `kind`, `turn`, `title`, `status`, `detail`, `latency_ms`): turns,
routing decisions with their reason, agent-loop steps, policy decisions, server tool
calls (started, queued, completed, interrupted), prompt-cache hits, stores and
evictions, answers and failures. An event this module does not know is still a row
(its type name), so nothing that happened is hidden. `refusal_row(record)` is the row
of a request of the session the rate limits refused (`RateLimited`, `limits` stream).

`conversation(records, load)` is the transcript: per turn the messages the client
added since the previous turn (Claude Code resends the whole history; when the
previous turn's messages are not a prefix, all of them) and the answer it got, each a
list of blocks (`text`, `thinking`, `tool_use`, `tool_result`, `other`) holding plain
text only: the page renders them, escaping everything. Pure: `load` reads a blob.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from eventstore import Event, Recorded
from eventstore.events.limits import RateLimited
from eventstore.events.session import (
    CacheEvicted,
    CacheHit,
    CacheStored,
    LoopStepResponded,
    ModelResponded,
    PolicyDecided,
    RouteChosen,
    SessionLoopStopped,
    SessionStarted,
    StreamAborted,
    ToolCallInterrupted,
    ToolCallQueued,
    ToolCallStarted,
    ToolCompleted,
    TurnStarted,
    UpstreamFailed,
)
from eventstore.projections.transcript import preview

__all__ = ["Load", "conversation", "timeline_row"]

Load = Callable[[Any], Any]
RESULT_CHARS = 400  # of a tool result in the timeline


def _row(record: Recorded[Event], kind: str, title: str, *, status: str | None = None,
         detail: str | None = None, latency_ms: float | None = None) -> dict[str, Any]:
    return {"seq": record.seq, "at": record.recorded_at, "kind": kind,
            "turn": getattr(record.event, "turn", None), "title": title, "status": status,
            "detail": detail, "latency_ms": latency_ms}


def _tokens(usage: Mapping[str, Any]) -> str:
    parts = [f"in {usage.get('input_tokens', 0)}", f"out {usage.get('output_tokens', 0)}"]
    if usage.get("cache_read_input_tokens"):
        parts.append(f"cache read {usage['cache_read_input_tokens']}")
    return " / ".join(parts) + " tokens"


def _calls(message: Any) -> str | None:
    content = message.get("content") if isinstance(message, Mapping) else None
    names = [str(b.get("name", "?")) for b in content or ()
             if isinstance(b, Mapping) and b.get("type") in ("tool_use", "server_tool_use")]
    return ", ".join(names) or None


def _loop_row(record: Recorded[Event], load: Load) -> dict[str, Any] | None:
    """Rows of the agent loop and the server tools (None: not one of theirs)."""
    match record.event:
        case LoopStepResponded() as ev:
            calls = _calls(load(ev.message))
            return _row(record, "step", f"loop step {ev.step}", status=ev.stop_reason,
                        detail=f"calls {calls}" if calls else _tokens(ev.usage),
                        latency_ms=ev.latency_ms)
        case PolicyDecided() as ev:
            who = f" [{ev.caller}]" if ev.caller else ""
            return _row(record, "policy", f"policy {ev.decision} {ev.tool}", status=ev.decision,
                        detail=f"{ev.rule}: {ev.reason}{who}")
        case ToolCallStarted() as ev:
            return _row(record, "tool_started", f"tool {ev.tool} started",
                        detail="may change things" if ev.effects else None)
        case ToolCallQueued() as ev:
            return _row(record, "tool_queued", f"tool {ev.tool} queued for {ev.user}'s connector",
                        detail=f"timeout {ev.timeout_s:.0f} s")
        case ToolCompleted() as ev:
            return _row(record, "tool_result", f"tool {ev.tool} {'ok' if ev.ok else 'error'}",
                        status="ok" if ev.ok else "error",
                        detail=preview(load(ev.result), RESULT_CHARS), latency_ms=ev.duration_ms)
        case ToolCallInterrupted() as ev:
            effects = " (effects possible)" if ev.effects_possible else ""
            return _row(record, "tool_interrupted", f"tool {ev.tool} interrupted",
                        status="error", detail=f"{ev.reason}{effects}")
        case _:
            return None


def _cache_row(record: Recorded[Event]) -> dict[str, Any] | None:
    match record.event:
        case CacheHit() as ev:
            return _row(record, "cache_hit", "prompt cache hit",
                        detail=f"{ev.input_tokens} input tokens read from the cache")
        case CacheStored() as ev:
            return _row(record, "cache_stored", "answer stored in the prompt cache",
                        detail=f"{ev.input_tokens} input tokens")
        case CacheEvicted() as ev:
            return _row(record, "cache_evicted", "prompt cache entry evicted", detail=ev.reason)
        case _:
            return None


def refusal_row(record: Recorded[Event]) -> dict[str, Any] | None:
    """The timeline row of a `RateLimited` event of the `limits` stream (None for any
    other event): `seq` is None (it is not the session's), `position` orders it."""
    event = record.event
    if not isinstance(event, RateLimited):
        return None
    return {**_row(record, "rate_limit", f"rate limited ({event.limit.replace('_', ' ')})",
                   status="error",
                   detail=f"tier {event.tier}; {event.subject} told to retry after "
                          f"{event.retry_after} s; request {event.request_id} on {event.route}"),
            "seq": None, "turn": None, "position": record.position}


def timeline_row(record: Recorded[Event], load: Load) -> dict[str, Any]:
    """The viewer's row for one session event (module docstring)."""
    found = _loop_row(record, load) or _cache_row(record)
    if found is not None:
        return found
    match record.event:
        case SessionStarted() as ev:
            return _row(record, "session", "session started",
                        detail=f"id from {ev.source}" + (f"; client {ev.client}" if ev.client
                                                         else ""))
        case TurnStarted() as ev:
            mode = "streaming" if ev.stream else "non-streaming"
            return _row(record, "turn", f"turn {ev.turn}: {ev.model}",
                        detail=f"{mode}; request {ev.request_id}")
        case RouteChosen() as ev:
            return _row(record, "route", f"routed to {ev.provider}/{ev.backend_model}",
                        detail=ev.reason)
        case ModelResponded() as ev:
            via = f" from {ev.provider}" if ev.provider else ""
            return _row(record, "answer", f"answer{via}", status=ev.stop_reason,
                        detail=_tokens(ev.usage), latency_ms=ev.latency_ms)
        case UpstreamFailed() as ev:
            return _row(record, "failure", f"upstream failed ({ev.status} {ev.error_type})",
                        status="error", detail=f"{ev.message} (attempts {ev.attempts})")
        case StreamAborted() as ev:
            return _row(record, "failure", "stream aborted", status="error", detail=ev.reason)
        case SessionLoopStopped() as ev:
            return _row(record, "loop_stopped", f"loop guard stopped a request ({ev.rule})",
                        status="error", detail=ev.reason)
        case _:
            return _row(record, "other", record.type_name)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "\n".join(_text_of(b.get("text", "")) if isinstance(b, Mapping)
                         and b.get("type") == "text" else _json(b) for b in content)
    return _json(content)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def _block(block: Any) -> dict[str, Any]:
    if isinstance(block, str):
        return {"type": "text", "text": block}
    if not isinstance(block, Mapping):
        return {"type": "other", "text": _json(block)}
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": str(block.get("text", ""))}
    if kind == "thinking":
        return {"type": "thinking", "text": str(block.get("thinking", ""))}
    if kind == "redacted_thinking":
        return {"type": "thinking", "text": "(redacted thinking)"}
    if kind in ("tool_use", "server_tool_use"):
        return {"type": "tool_use", "name": str(block.get("name", "?")),
                "id": block.get("id"), "text": _json(block.get("input", {}))}
    if kind == "tool_result":
        return {"type": "tool_result", "id": block.get("tool_use_id"),
                "error": bool(block.get("is_error")), "text": _text_of(block.get("content", ""))}
    return {"type": "other", "name": str(kind), "text": _json(block)}


def message_entry(message: Any, turn: int) -> dict[str, Any]:
    """One message as the page renders it: role, turn and plain-text blocks."""
    if not isinstance(message, Mapping):
        return {"role": "unknown", "turn": turn, "blocks": [_block(message)]}
    content = message.get("content")
    blocks = [_block(content)] if isinstance(content, str) else [
        _block(b) for b in content or ()]
    return {"role": str(message.get("role", "assistant")), "turn": turn, "blocks": blocks}


def conversation(records: Sequence[Recorded[Event]], load: Load) -> list[dict[str, Any]]:
    """The session's messages in order (module docstring)."""
    entries: list[dict[str, Any]] = []
    previous: tuple[Any, ...] = ()
    answered = False  # the previous turn's answer is shown: its echo in the history is not
    for record in records:
        match record.event:
            case TurnStarted() as ev:
                refs = tuple(ev.messages)
                start = len(previous) if refs[:len(previous)] == previous else 0
                added = [message_entry(load(ref), ev.turn) for ref in refs[start:]]
                if start and answered and added and added[0]["role"] == "assistant":
                    added = added[1:]
                entries += added
                previous, answered = refs, False
            case ModelResponded() as ev:
                entries.append(message_entry(load(ev.message), ev.turn))
                answered = True
            case UpstreamFailed() as ev:
                entries.append({"role": "error", "turn": ev.turn, "blocks": [
                    {"type": "text", "text": f"{ev.error_type} ({ev.status}): {ev.message}"}]})
            case _:
                pass
    return entries
