"""How `lynkr transcript` and `lynkr replay` print a session (text; `--json` is the data).

A transcript is the session's turns and the events outside any turn in log order
(`timeline`); each turn prints its user text, then what happened inside it (agent-loop
steps, policy decisions, tool calls with a result preview, prompt-cache hits), then the
answer, then what followed it (cache stores and evictions). `print_state` prints the
session fold at a replay point, with each turn's loop steps and server tool calls as
they stood then (a call still "running" at that point is shown so).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventstore.projections.session_state import SessionState, TurnState

__all__ = ["event_line", "print_state", "print_turn", "timeline", "when"]

_AFTER_ANSWER = frozenset({"cache_stored", "cache_evicted"})


def when(timestamp: float | None) -> str:
    """UTC time of `timestamp` as YYYY-MM-DD HH:MM:SS, or "-"."""
    if timestamp is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(timestamp))


def timeline(rows: list[dict[str, Any]],
              loose: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Turns and turn-less events merged in log order (a turn by its `TurnStarted`)."""
    items = [(row["started_seq"] or 0, "turn", row) for row in rows]
    items += [(event["seq"], "event", event) for event in loose]
    for _seq, kind, item in sorted(items, key=lambda entry: entry[0]):
        yield kind, item


def print_turn(row: dict[str, Any], events: list[dict[str, Any]]) -> None:
    """One `transcript` row with the `transcript_events` rows of its turn (module docstring)."""
    head = [f"turn {row['turn']}", row["model"] or "?", row["status"] or "?"]
    if row["stop_reason"]:
        head.append(row["stop_reason"])
    if row["latency_ms"] is not None:
        head.append(f"{row['latency_ms']:.0f} ms")
    if row["input_tokens"] is not None:
        head.append(f"in {row['input_tokens']} / out {row['output_tokens']} tokens")
    print(f"── {' · '.join(head)} · {when(row['started_at'])}")
    print(f"user:      {_indent(row['user_text'])}")
    for event in events:
        if event["kind"] not in _AFTER_ANSWER:
            print(f"  {event_line(event)}")
    if row["assistant_text"]:
        print(f"assistant: {_indent(row['assistant_text'])}")
    if row["tool_uses"]:
        print(f"tools:     {row['tool_uses'].replace(',', ', ')}")
    if row["error"]:
        print(f"error:     {row['error']}")
    for event in events:
        if event["kind"] in _AFTER_ANSWER:
            print(f"  {event_line(event)}")
    print()


def event_line(event: dict[str, Any]) -> str:
    """One line (two for a step with text) for a `transcript_events` row."""
    kind, name, status = event["kind"], event["name"], event["status"]
    detail, text = event["detail"], event["text"]
    caller = f" [{event['caller']}]" if event["caller"] else ""
    match kind:
        case "step":
            line = f"step {event['step']} · {status or '?'}"
            if detail:
                line += f" → calls {detail}"
            return line + (f"\n    {_indent(text, 4)}" if text else "")
        case "policy":
            return f"policy  {status} {name} by {detail}: {text}{caller}"
        case "tool_started":
            return f"tool    {name} started{caller}" + (f" ({detail})" if detail else "")
        case "tool_result":
            return f"tool    {name} {status} in {detail}: {text}"
        case "tool_interrupted":
            return f"tool    {name} interrupted: {status}" + (f" ({detail})" if detail else "")
        case "tool_queued":
            to = "waiting for a connector" if status == "waiting" else f"to connector {status}"
            return f"tool    {name} queued for {text}'s connector, {to} ({detail})"
        case "loop_stopped":
            return f"loop guard stopped a request ({name}, {detail}): {text}"
        case _:  # cache_hit, cache_stored, cache_evicted
            what = kind.removeprefix("cache_")
            return f"cache   {what} {name}" + "".join(f" · {v}" for v in (status, detail) if v)


def _indent(text: str | None, width: int = 11) -> str:
    return (text or "").replace("\n", "\n" + " " * width)


def print_state(state: SessionState, load: Callable[[Any], Any]) -> None:
    """The session fold at a replay point; `load` reads a blob (step messages, results)."""
    usage = ", ".join(f"{k} {v}" for k, v in sorted(state.usage.items())) or "none"
    print(f"state of session {state.session_id} at seq {state.version}: "
          f"{state.event_count} events, {len(state.turns)} turns, "
          f"last activity {when(state.last_activity)}")
    print(f"usage: {usage}")
    for turn in state.turns:
        route = f" → {turn.provider}/{turn.backend_model}" if turn.provider else ""
        detail = turn.stop_reason or turn.error or ""
        print(f"  turn {turn.number}: {turn.status:9} {turn.model}{route} {detail}".rstrip())
        _print_loop(turn, load)


def _print_loop(turn: TurnState, load: Callable[[Any], Any]) -> None:
    """The agent loop's steps and server tool calls of `turn`, as folded so far."""
    from eventstore import EventStoreError
    from eventstore.projections.transcript import assistant_parts, preview
    for number, ref in enumerate(turn.steps, 1):
        try:
            text, tools = assistant_parts(load(ref))
        except EventStoreError:
            text, tools = f"(message blob {ref.hex[:12]} is missing)", ()
        calls = f" → {', '.join(tools)}" if tools else ""
        shown = f": {preview(text, 100)}" if text else ""
        print(f"    step {number}{calls}{shown}")
    for call in turn.tool_calls:
        head = f"    call {call.tool} [{call.tool_call_id or '-'}] {call.status}"
        if call.status == "completed":
            try:
                result = preview(load(call.result), 100) if call.result else ""
            except EventStoreError:
                result = "(result blob missing)"
            print(f"{head} {'ok' if call.ok else 'error'}: {result}")
        elif call.status == "interrupted":
            effects = "; effects possible" if call.effects_possible else ""
            print(f"{head} ({call.reason}{effects})")
        else:
            effects = "; may change things" if call.effects_possible else ""
            print(f"{head} (running at this point{effects})")
