"""The loop guard: empty answers in a row and repeated requests stop a session's loop."""

from __future__ import annotations

from actors import LoopGuard, TurnRequest, begin_turn, finish_turn
from eventstore import BlobRef, Metadata, Recorded
from eventstore.events.session import (
    ModelResponded,
    SessionLoopStopped,
    SessionStarted,
    TurnStarted,
    UpstreamFailed,
)
from eventstore.projections.session_state import SessionState, fold_session

REF = BlobRef(b"\x03" * 32, 4)
GUARD = LoopGuard(empty_answers=3, repeats=5, window_s=120.0)


class Log:
    """A session folded as its events are 'committed', one second apart."""

    def __init__(self) -> None:
        self.state: SessionState | None = None
        self.clock = 1000.0

    def apply(self, events) -> None:
        start = self.state.version if self.state else 0
        records = []
        for i, event in enumerate(events, start=1):
            self.clock += 1.0
            records.append(Recorded(position=start + i, stream_id="session-s", seq=start + i,
                                    event=event, recorded_at=self.clock, metadata=Metadata()))
        self.state = fold_session(records, start=self.state)

    def begin(self, text: str, guard: LoopGuard | None = GUARD):
        n = len(self.state.turns) + 1 if self.state else 1
        request = TurnRequest(request_id=f"r{n}-{text}", model="m", stream=True,
                              messages=[{"role": "user", "content": text}],
                              loop_guard=guard, received_at=self.clock + 0.5)
        events = begin_turn(self.state, "s", request).events
        self.apply(events)
        return [e for e in events if not isinstance(e, SessionStarted)]

    def answer(self, turn: int, *, visible: int = 1, digest: str = "a") -> None:
        self.apply(finish_turn(self.state, turn, ModelResponded(
            turn=turn, message=REF, stop_reason="end_turn", usage={}, latency_ms=1.0,
            answer_digest=digest, visible_blocks=visible)).events)

    def turn(self, text: str, **answer) -> list:
        events = self.begin(text)
        started = [e for e in events if isinstance(e, TurnStarted)]
        if started:
            self.answer(started[0].turn, **answer)
        return events


def test_the_request_after_n_empty_answers_is_refused():
    """After exactly three empty answers the next request is a SessionLoopStopped."""
    log = Log()
    for i in range(3):
        events = log.turn(f"nudge {i}", visible=0)
        assert not any(isinstance(e, SessionLoopStopped) for e in events)
    events = log.begin("nudge 3")
    assert len(events) == 1
    assert isinstance(events[0], SessionLoopStopped)
    assert events[0].rule == "empty_answers"
    assert events[0].turns == (1, 2, 3)
    assert "Lynkr stopped a loop" in events[0].reason
    assert log.state.last_loop_stop == events[0]


def test_requests_within_the_window_after_a_stop_are_refused_too():
    """Retries and nudges right after a stop are refused, each one recorded."""
    log = Log()
    for i in range(3):
        log.turn(f"n{i}", visible=0)
    first = log.begin("stopped")[0]
    again = log.begin("a new nudge")[0]
    assert isinstance(again, SessionLoopStopped)
    assert again.reason == first.reason
    assert again.request_id != first.request_id


def test_after_the_window_the_session_is_served_and_counted_afresh():
    """Once the window has passed the session is served; the count restarts."""
    log = Log()
    for i in range(3):
        log.turn(f"n{i}", visible=0)
    log.begin("stopped")
    log.clock += 200.0
    for i in range(3):
        assert isinstance(log.turn(f"new direction {i}", visible=0)[0], TurnStarted)
    assert isinstance(log.begin("again")[0], SessionLoopStopped)


def test_an_answer_with_content_breaks_the_streak():
    """Two empty, one real, two empty: no stop."""
    log = Log()
    for i, visible in enumerate([0, 0, 1, 0, 0]):
        log.turn(f"t{i}", visible=visible)
    assert isinstance(log.begin("next")[0], TurnStarted)


def test_failed_turns_are_skipped_not_counted():
    """A failed turn between empty answers neither counts nor breaks the streak."""
    log = Log()
    log.turn("a", visible=0)
    log.turn("b", visible=0)
    started = log.begin("c")[0]
    log.apply([UpstreamFailed(turn=started.turn, status=502, error_type="api_error",
                              message="x")])
    log.turn("d", visible=0)
    assert isinstance(log.begin("e")[0], SessionLoopStopped)


def test_the_same_request_answered_the_same_five_times_is_refused_the_sixth():
    """Five identical requests with identical answers inside the window: the sixth stops."""
    log = Log()
    for _ in range(5):
        assert isinstance(log.turn("same")[0], TurnStarted)
    stop = log.begin("same")[0]
    assert isinstance(stop, SessionLoopStopped)
    assert stop.rule == "repeated_request"
    assert stop.count == 5


def test_the_same_request_with_different_answers_is_served():
    """A repeated request whose answers differ is not a loop."""
    log = Log()
    for i in range(6):
        assert isinstance(log.turn("same", digest=f"d{i}")[0], TurnStarted)


def test_repeats_outside_the_window_do_not_count():
    """Repeats older than the window are forgotten."""
    log = Log()
    guard = LoopGuard(empty_answers=None, repeats=2, window_s=10.0)
    for _ in range(2):
        events = log.begin("same", guard)
        log.answer(events[-1].turn)
    log.clock += 60.0
    assert isinstance(log.begin("same", guard)[0], TurnStarted)


def test_no_guard_never_stops():
    """With the guard off, empty answers go on being served."""
    log = Log()
    for i in range(10):
        events = log.begin(f"n{i}", None)
        assert isinstance(events[0], TurnStarted)
        log.answer(events[0].turn, visible=0)


def test_a_normal_thirty_turn_session_is_never_stopped():
    """Thirty turns of ordinary work, some with repeated tool results, run through."""
    log = Log()
    for i in range(30):
        events = log.turn(f"step {i}", digest=f"answer {i % 3}")
        assert isinstance(events[0], TurnStarted), i


def test_requests_carry_a_digest_of_what_they_sent():
    """Identical requests share a digest; a different message changes it."""
    log = Log()
    first = log.turn("same")[0]
    second = log.turn("same")[0]
    third = log.turn("other")[0]
    assert first.request_digest == second.request_digest != third.request_digest
