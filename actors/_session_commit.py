"""`InFlight`: a session actor's append that is waiting for its group commit.

A session command's reply must wait for the commit, but the actor's thread need
not: the actor submits the decision to the recorder's group commit and returns
the `InFlight`'s reply future (a deferred reply, see `actors._trio`). When the
batch commits, the commit thread runs `on_commit`: it builds the committed
records from the `AppendResult`, folds them onto the state the decision was
made on (`fold_session` is pure), keeps that fold for the actor and only then
resolves the reply. So the asker is woken by the commit itself, without the
actor's thread blocking on the commit and being woken again.

The actor stays the only owner of its state: before it takes its next command
(or answers a query, or stops) it calls `SessionActor._settle`, which waits for
`settled` and adopts the fold. Anything but a clean commit folded here (a
conflict to retry, a failed commit, a result that does not describe the append)
is handed back to the actor: `on_commit` records the outcome without resolving
the reply and tells the actor to settle, so a failed commit never leaves a fold
of uncommitted events and the conflict retry stays on the actor's thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import pykka
import structlog

from actors._session_commands import Decision
from eventstore import AppendResult, Event, Metadata, PendingAppend, Recorded
from eventstore.projections.session_state import SessionState, fold_session

__all__ = ["Answer", "InFlight", "Settle", "as_committed"]

log = structlog.get_logger()

Answer = Callable[[SessionState], Any]
"""What a command replies, read from the state after its commit."""


@dataclass(frozen=True, slots=True)
class Settle:
    """Message to a session actor: an append of yours finished and needs you."""


class InFlight(PendingAppend[Any]):
    """One submitted decision, from submission until the actor has settled it.

    It is also the command's deferred reply: it resolves with the command's
    answer (or error) once the commit is folded (see module docstring).
    """

    def __init__(
        self,
        stream_id: str,
        start: SessionState | None,
        expected: int,
        decision: Decision,
        metadata: Metadata,
        command: Callable[[SessionState | None], Decision],
        answer: Answer,
        actor: pykka.ActorRef[Any],
    ) -> None:
        super().__init__()
        self.stream_id = stream_id
        self.start = start  # the state the decision was made on
        self.expected = expected
        self.decision = decision
        self.metadata = metadata
        self.command = command
        self.answer = answer
        self.actor = actor
        self.settled = threading.Lock()  # released by on_commit once the outcome is recorded
        self.settled.acquire()
        self.folded: SessionState | None = None  # the fold of the commit, made by on_commit
        self.result_of_append: AppendResult | None = None
        self.error: BaseException | None = None

    def settled_cleanly(self) -> bool:
        """True once the commit is folded and answered: adopting it needs no wait."""
        if not self.settled.acquire(blocking=False):
            return False
        self.settled.release()
        return self.folded is not None

    def on_commit(self, done: Future[AppendResult]) -> None:
        """On the commit thread: fold a clean commit and reply, or hand it to the actor."""
        try:
            self.result_of_append = done.result()
            committed = as_committed(self.stream_id, self.expected, self.decision.events,
                                     self.metadata, self.result_of_append)
            if committed is not None:
                self.folded = fold_session(committed, start=self.start)
                value = self.answer(self.folded) if self.folded is not None else None
        except Exception as exc:  # noqa: BLE001  (recorded for the actor, which replies with it)
            self.error = exc
            self.folded = None
        if self.folded is None:
            self.settled.release()
            try:
                self.actor.tell(Settle())
            except pykka.ActorDeadError:
                log.warning("session_settle_unsent", stream_id=self.stream_id)
            return
        self.settled.release()  # the fold is ready before anyone sees the reply
        self.set_result(value)


def as_committed(
    stream_id: str, expected: int, events: Sequence[Event], metadata: Metadata,
    result: AppendResult,
) -> list[Recorded[Event]] | None:
    """The appended events as the store recorded them, built from the append's result.

    None when the result does not describe exactly these events at the next sequence
    numbers (the caller then reads them back).
    """
    count = len(events)
    if (result.recorded_at is None or result.version != expected + count
            or result.last_position - result.first_position + 1 != count):
        return None
    return [Recorded(position=result.first_position + i, stream_id=stream_id,
                     seq=expected + 1 + i, event=event, recorded_at=result.recorded_at,
                     metadata=metadata)
            for i, event in enumerate(events)]
