"""Crash recovery for server tool calls: a call in flight when the gateway died is closed.

`gateway.lock` allows one gateway per data directory, so at start-up every call the
previous gateway started (a `ToolCallStarted` with no `ToolCompleted` or
`ToolCallInterrupted` after it) died with it. `recover_interrupted_calls` finds them in
the `open_tool_calls` projection (caught up first; if it cannot be, by reading the log)
and appends, for each, `ToolCallInterrupted(reason="gateway_restarted",
effects_possible=<the tool's effects flag>)`; then it ends each turn that had one with
`StreamAborted(reason="gateway_restarted")`. Turn events go through the session actors
(`Sessions.record`, `Sessions.finish_turn`), so their state stays right. A call is never
re-run: the model learns it was interrupted, and whether its effects may have happened.

Calls made by `lynkr tool call` (caller ``cli:…``) run in their own process, which may
still be running: they are left alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
import trio

from actors import EventStore, Projections, Sessions
from eventstore import Recorder
from eventstore.events.session import StreamAborted, ToolCallInterrupted
from eventstore.projections import Delete, Upsert
from eventstore.projections.open_tool_calls import PROJECTION, project_open_tool_calls
from eventstore.projections.session_state import SessionState, TurnState
from lynkr.tools._sink import StoreSessionSink

__all__ = ["RecoveredCall", "RecoveryReport", "recover_interrupted_calls"]

log = structlog.get_logger()
REASON = "gateway_restarted"
_PAGE = 5000


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveredCall:
    """One call found open at start-up and closed as interrupted."""

    session_id: str
    tool_call_id: str
    tool: str
    turn: int | None
    effects: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryReport:
    """What recovery did: the calls it closed, the turns it ended, the calls it left."""

    interrupted: tuple[RecoveredCall, ...] = ()
    aborted_turns: tuple[tuple[str, int], ...] = ()  # (session id, turn)
    left_to_cli: int = 0  # open calls of `lynkr tool call` processes, not ours to close
    scanned_log: bool = False  # the projection was behind; the log was read instead


async def recover_interrupted_calls(
    sessions: Sessions, projections: Projections, store: EventStore, recorder: Recorder,
) -> RecoveryReport:
    """Close every tool call the previous gateway left open (see module docstring).

    Call at start-up, before the gateway serves requests.

    Args:
        sessions: the session actors (turn events go through them).
        projections: the projection runner holding `open_tool_calls`.
        store: the event store writer, for a call that belongs to no open turn.
        recorder: the log, read when the projection cannot be caught up.

    Returns:
        What was closed and left.
    """
    rows, scanned = await _open_rows(projections, recorder)
    mine = [row for row in rows if not str(row.get("caller") or "").startswith("cli:")]
    by_session: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in mine:
        by_session[str(row["session_id"])].append(row)
    interrupted: list[RecoveredCall] = []
    aborted: list[tuple[str, int]] = []
    for session_id, calls in by_session.items():
        closed, ended = await _recover_session(sessions, store, session_id, calls)
        interrupted += closed
        aborted += [(session_id, turn) for turn in ended]
    report = RecoveryReport(interrupted=tuple(interrupted), aborted_turns=tuple(aborted),
                            left_to_cli=len(rows) - len(mine), scanned_log=scanned)
    if rows:
        log.warning("tool_calls_recovered", interrupted=len(interrupted), turns=len(aborted),
                    left_to_cli=report.left_to_cli, scanned_log=scanned)
    return report


async def _open_rows(projections: Projections,
                     recorder: Recorder) -> tuple[Sequence[Mapping[str, Any]], bool]:
    """The open calls, from the caught-up projection (or, failing that, from the log)."""
    status = await projections.catch_up_now()
    at = {p.name: p.position for p in status.projections}.get(PROJECTION.name, -1)
    if status.error is None and PROJECTION.name not in status.failures \
            and at >= status.log_position:
        rows: list[dict[str, Any]] = await projections.query(
            "SELECT * FROM open_tool_calls ORDER BY position")
        return rows, False
    log.error("tool_recovery_projection_behind", position=at, log_position=status.log_position,
              error=status.error or status.failures.get(PROJECTION.name))
    return await trio.to_thread.run_sync(_scan_log, recorder), True


def _scan_log(recorder: Recorder) -> list[dict[str, Any]]:
    """The `open_tool_calls` rows computed straight from the whole log (the slow way)."""
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    after = 0
    while page := recorder.read_all(after, _PAGE):
        for record in page:
            if record.type_name not in (PROJECTION.types or ()):
                continue
            for op in project_open_tool_calls(record, _NO_CONTEXT):
                key = tuple(sorted(op.key.items()))
                if isinstance(op, Upsert):
                    found[key] = {**op.key, **op.set}
                elif isinstance(op, Delete):
                    found.pop(key, None)
        after = page[-1].position
    return sorted(found.values(), key=lambda row: int(row["position"]))


class _NoContext:
    """`open_tool_calls` reads neither blobs nor its rows."""

    def load_blob(self, ref: Any) -> Any:
        raise AssertionError("open_tool_calls reads no blobs")

    def get(self, table: str, **key: Any) -> Mapping[str, Any] | None:
        raise AssertionError("open_tool_calls reads no rows")


_NO_CONTEXT = _NoContext()


async def _recover_session(
    sessions: Sessions, store: EventStore, session_id: str, rows: Sequence[Mapping[str, Any]],
) -> tuple[list[RecoveredCall], list[int]]:
    """Close one session's open calls; end the open turns they were in."""
    state = await sessions.state(session_id)
    closed: list[RecoveredCall] = []
    turns: dict[int, None] = {}
    loose: list[ToolCallInterrupted] = []
    for row in rows:
        call = RecoveredCall(session_id=session_id, tool_call_id=str(row["tool_call_id"]),
                             tool=str(row["tool"]), turn=row["turn"],
                             effects=bool(row["effects"]))
        event = ToolCallInterrupted(tool=call.tool, reason=REASON, effects_possible=call.effects,
                                    tool_call_id=call.tool_call_id or None, turn=call.turn)
        turn = _turn_of(state, call.turn)
        if turn is not None and turn.is_open:
            if not any(c.tool_call_id == event.tool_call_id and c.status == "started"
                       for c in turn.tool_calls):
                continue  # the session's own events say it ended: nothing to close
            await sessions.record(session_id, turn.number, event)
            turns[turn.number] = None
        else:
            # No open turn to record it in (a call outside turns, or its turn was ended
            # without it): recorded outside any turn, which still closes the call.
            loose.append(_outside_turn(event))
        closed.append(call)
    if loose:
        await StoreSessionSink(store).record(session_id, loose)  # the stream exists
    for number in turns:
        await sessions.finish_turn(session_id, number, StreamAborted(turn=number, reason=REASON))
    for call in closed:
        log.warning("tool_call_interrupted", session_id=session_id, tool=call.tool,
                    tool_call_id=call.tool_call_id, turn=call.turn, reason=REASON,
                    effects=call.effects)
    return closed, list(turns)


def _turn_of(state: SessionState | None, number: int | None) -> TurnState | None:
    if state is None or number is None or not 1 <= number <= len(state.turns):
        return None
    return state.turn(number)


def _outside_turn(event: ToolCallInterrupted) -> ToolCallInterrupted:
    return ToolCallInterrupted(tool=event.tool, reason=event.reason,
                               effects_possible=event.effects_possible,
                               tool_call_id=event.tool_call_id, turn=None)
