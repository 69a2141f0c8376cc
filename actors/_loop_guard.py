"""The loop guard: a pure verdict on whether a session is stuck in a loop.

A client that gets an empty answer asks again (Claude Code adds "your previous response
had no visible output" and resends); a client that gets the same answer to the same
request may resend it forever. Either burns a team's budget without end. Before a turn
starts, `loop_verdict` looks at the session's recent turns — only those after its last
`SessionLoopStopped` — and refuses the request when:

- `empty_answers`: the last N answered turns in a row were empty (no content block
  with anything in it; failed and aborted turns are skipped, not counted), or
- `repeated_request`: this very request (same `request_digest`) was already answered
  M times within the window, with the same answer every time.

So the upstream is asked exactly N (or M) times; the next request is refused. The
refusal is a `SessionLoopStopped` event. Every request of the session within the
window after a refusal is refused too, each one an event and none sent upstream (a
client retries: Claude Code resends, then nudges the model with a new message, within
milliseconds); after the window the session is served again and the counts start
afresh. Each look is bounded (`_SCAN_LIMIT` turns), so the cost does not grow with the
session.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from eventstore.events.session import SessionLoopStopped
from eventstore.projections.session_state import SessionState, TurnState

__all__ = ["LoopGuard", "loop_verdict"]

_SCAN_LIMIT = 200  # turns looked at, at most, per request


@dataclass(frozen=True, slots=True)
class LoopGuard:
    """The guard's limits; None turns a rule off."""

    empty_answers: int | None = 3
    repeats: int | None = 5
    window_s: float = 120.0


def loop_verdict(
    state: SessionState | None, request_id: str, request_digest: str, now: float,
    guard: LoopGuard,
) -> SessionLoopStopped | None:
    """The `SessionLoopStopped` that refuses this request, or None to let it through.

    Args:
        state: the session before the request (None: a new session).
        request_id: the request's id (recorded with the refusal).
        request_digest: the request's `TurnStarted.request_digest`.
        now: the request's arrival time (epoch seconds, as `recorded_at`).
        guard: the limits.
    """
    if state is None:
        return None
    stop = state.last_loop_stop
    if stop is not None and now - state.last_loop_stop_at < guard.window_s:
        return replace(stop, request_id=request_id)
    first = max(state.loop_checked_after, len(state.turns) - _SCAN_LIMIT)
    recent = [state.turns[i] for i in range(len(state.turns) - 1, first - 1, -1)]
    if guard.empty_answers:
        verdict = _empty_streak(recent, guard.empty_answers, request_id, guard.window_s)
        if verdict is not None:
            return verdict
    if guard.repeats:
        return _repeats(recent, request_id, request_digest, now - guard.window_s, guard)
    return None


def _empty_streak(recent: list[TurnState], limit: int, request_id: str,
                  window_s: float) -> SessionLoopStopped | None:
    streak: list[int] = []
    for turn in recent:
        if turn.status != "responded":
            continue
        if turn.visible_blocks != 0:
            return None
        streak.append(turn.number)
        if len(streak) == limit:
            return SessionLoopStopped(
                request_id=request_id, rule="empty_answers", count=limit,
                turns=tuple(reversed(streak)),
                reason=(f"Lynkr stopped a loop: the model gave {limit} answers in a row with "
                        f"no visible output (turns {streak[-1]} to {streak[0]}), so requests "
                        "are not sent to the backend for the next "
                        f"{window_s:g} s. Check the backend, or start a new session; "
                        "LOOP_GUARD_EMPTY_ANSWERS sets the limit."))
    return None


def _repeats(recent: list[TurnState], request_id: str, digest: str, since: float,
             guard: LoopGuard) -> SessionLoopStopped | None:
    same: list[TurnState] = []
    for turn in recent:
        if turn.started_at < since:
            break
        if turn.request_digest == digest and turn.status == "responded":
            same.append(turn)
    assert guard.repeats is not None
    if len(same) < guard.repeats:
        return None
    answers = {turn.answer_digest for turn in same}
    if len(answers) != 1 or None in answers:
        return None
    numbers = tuple(sorted(turn.number for turn in same))
    return SessionLoopStopped(
        request_id=request_id, rule="repeated_request", count=len(same), turns=numbers,
        reason=(f"Lynkr stopped a loop: this exact request was already answered {len(same)} "
                f"times in the last {guard.window_s:g} s with the same answer each time "
                f"(turns {', '.join(map(str, numbers))}), so requests are not sent to the "
                f"backend for the next {guard.window_s:g} s. LOOP_GUARD_REPEATS and "
                "LOOP_GUARD_WINDOW_S set the limit."))
