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
refusal is a `SessionLoopStopped` event and the guard starts counting afresh after it,
so a user who changes course is served again. Each look is bounded (`_SCAN_LIMIT`
turns), so the cost does not grow with the session.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    first = max(state.loop_checked_after, len(state.turns) - _SCAN_LIMIT)
    recent = [state.turns[i] for i in range(len(state.turns) - 1, first - 1, -1)]
    if guard.empty_answers:
        verdict = _empty_streak(recent, guard.empty_answers, request_id)
        if verdict is not None:
            return verdict
    if guard.repeats:
        return _repeats(recent, request_id, request_digest, now - guard.window_s, guard)
    return None


def _empty_streak(recent: list[TurnState], limit: int,
                  request_id: str) -> SessionLoopStopped | None:
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
                reason=(f"Lynkr stopped a loop: the model gave {limit} empty answers in a row "
                        f"(turns {streak[-1]} to {streak[0]}), so this request was not sent to "
                        "the backend. Rephrase the request or check the backend; "
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
                f"(turns {', '.join(map(str, numbers))}), so it was not sent to the backend "
                "again. LOOP_GUARD_REPEATS and LOOP_GUARD_WINDOW_S set the limit."))
