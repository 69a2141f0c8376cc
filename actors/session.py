"""`SessionActor`: the single writer of one `session-<id>` stream, and its state.

The state is `fold_session` of the stream, loaded on the first message (so a
failed recovery reaches the caller as an exception instead of killing the
actor). A command runs a pure function from `actors._session_commands`, appends
its decision with the state's version as the expected version, folds the events
as committed (positions, sequence numbers and the commit time come from the
append's `AppendResult`, so nothing is read back) and only then replies. The
append goes from this actor's thread straight into the recorder's group commit
(`EventStore.append_and_wait`), not through the writer actor's mailbox. If
another process appended to the stream meanwhile (`ConcurrencyError`), the actor
catches up on the tail and retries the command once. Blob hashing (system prompt,
tool list, messages) happens here, on the actor's thread, never on the trio thread.

If a message sent with `tell` fails, pykka stops the actor and `on_failure`
reports a `SessionCrash` to the supervisor callback (the `SessionRegistry`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pykka
import structlog

from actors._session_commands import (
    Blob,
    Decision,
    TurnRequest,
    begin_turn,
    finish_turn,
    record_events,
)
from actors._trio import TrioActor
from actors.writer import EventStore
from eventstore import (
    AppendResult,
    ConcurrencyError,
    Event,
    Metadata,
    Recorded,
    StoreClosedError,
)
from eventstore.projections.session_state import SessionState, TurnState, fold_session

__all__ = ["SessionActor", "SessionCrash", "stream_of"]

log = structlog.get_logger()

T = TypeVar("T")
_KNOWN_BLOBS_LIMIT = 4096  # digests remembered as stored, to skip resending them


def stream_of(session_id: str) -> str:
    """The stream id of a session: ``session-<id>``."""
    return f"session-{session_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionCrash:
    """Notice to the supervisor: a session actor died of an unhandled exception."""

    session_id: str
    actor_urn: str
    error_type: str
    error: str


class SessionActor(TrioActor):
    """One session's state owner (see module docstring)."""

    def __init__(
        self,
        session_id: str,
        store: EventStore,
        *,
        on_crash: Callable[[SessionCrash], None] | None = None,
    ) -> None:
        super().__init__()
        self.session_id = session_id
        self.stream_id = stream_of(session_id)
        self._store = store
        self._on_crash = on_crash
        self._state: SessionState | None = None
        self._loaded = False
        self._known_blobs: set[bytes] = set()

    # -- commands --------------------------------------------------------------------
    def state(self) -> SessionState | None:
        """The folded state (None if the session has no events yet)."""
        return self._current()

    def recover(self) -> int:
        """Reload the state from the stream; returns its version (0 if empty).

        Raises:
            SessionFoldError: the stream cannot be folded.
        """
        self._loaded = False
        state = self._current()
        return state.version if state is not None else 0

    def begin_turn(self, request: TurnRequest) -> int:
        """Start the next turn (and the session on its first turn); returns the turn number.

        Replies after `TurnStarted` (and the blobs of the request, and `RouteChosen` when
        the request carries its route) are committed.

        Raises:
            CommandRejectedError: the request is incomplete or cannot be stored.
            ConcurrencyError: another writer won twice in a row.
        """
        state = self._execute(lambda s: begin_turn(s, self.session_id, request),
                              request.request_id)
        return state.turns[-1].number  # the fold of our commit ends with our turn

    def record(self, turn: int, *events: Event, blobs: Sequence[Blob] = ()) -> int:
        """Append `RouteChosen` / `PolicyDecided` / `ToolCompleted` events of an open turn.

        Returns:
            The stream version after the commit.

        Raises:
            CommandRejectedError: see `record_events`.
        """
        state = self._execute(lambda s: record_events(s, turn, events, blobs), None, turn)
        return state.version

    def finish_turn(self, turn: int, outcome: Event, blobs: Sequence[Blob] = ()) -> TurnState:
        """End an open turn with `ModelResponded`, `UpstreamFailed` or `StreamAborted`.

        `blobs` are the `make_blob` results the outcome refers to (message, upstream).

        Returns:
            The turn as committed.

        Raises:
            CommandRejectedError: see `finish_turn` in `actors._session_commands`.
        """
        state = self._execute(lambda s: finish_turn(s, turn, outcome, blobs), None, turn)
        return state.turn(turn)

    # -- machinery -------------------------------------------------------------------
    def _current(self) -> SessionState | None:
        if not self._loaded:
            records = _wait(self._store.read_stream(self.stream_id))
            self._state = fold_session(records)
            self._loaded = True
            log.debug("session_recovered", session_id=self.session_id,
                      version=self._version(self._state))
        return self._state

    @staticmethod
    def _version(state: SessionState | None) -> int:
        return state.version if state is not None else 0

    def _execute(
        self,
        command: Callable[[SessionState | None], Decision],
        request_id: str | None,
        turn: int | None = None,
    ) -> SessionState:
        """Decide, append, fold what was committed; on a conflict catch up and retry once."""
        try:
            state = self._current()
            try:
                return self._commit(state, command(state), request_id or _request_of(state, turn))
            except ConcurrencyError:
                log.info("session_conflict_retry", session_id=self.session_id,
                         version=self._version(state))
                state = self._catch_up(state)
            return self._commit(state, command(state), request_id or _request_of(state, turn))
        except Exception:
            # Whatever failed, the next command starts again from the stream.
            self._loaded = False
            raise

    def _catch_up(self, state: SessionState | None) -> SessionState | None:
        tail = _wait(self._store.read_stream(self.stream_id, self._version(state) + 1))
        self._state = fold_session(tail, start=state)
        return self._state

    def _commit(
        self, state: SessionState | None, decision: Decision, request_id: str | None
    ) -> SessionState:
        expected = self._version(state)
        blobs = [b for b in decision.blobs if b[0].digest not in self._known_blobs]
        metadata = Metadata(request_id=request_id, actor=f"session:{self.session_id}")
        result = self._store.append_and_wait(self.stream_id, expected, decision.events,
                                             metadata=metadata, blobs=blobs)
        committed = _as_committed(self.stream_id, expected, decision.events, metadata, result)
        if committed is None:  # not what was asked (e.g. an idempotent replay): read it back
            committed = _wait(self._store.read_stream(self.stream_id, expected + 1,
                                                      result.version))
        new_state = fold_session(committed, start=state)
        assert new_state is not None  # a commit always adds at least one event
        self._state = new_state
        if len(self._known_blobs) > _KNOWN_BLOBS_LIMIT:
            self._known_blobs.clear()
        self._known_blobs.update(ref.digest for ref, _ in decision.blobs)
        return new_state

    # -- lifecycle -------------------------------------------------------------------
    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        """Tell the supervisor that this actor died, and of what."""
        log.error("session_actor_crashed", session_id=self.session_id,
                  error_type=getattr(exception_type, "__name__", "?"), error=str(exception_value))
        if self._on_crash is not None:
            self._on_crash(SessionCrash(
                session_id=self.session_id, actor_urn=self.actor_urn,
                error_type=getattr(exception_type, "__name__", "?"), error=str(exception_value),
            ))


def _wait(future: pykka.Future[T]) -> T:
    """Block this actor's thread on the store's reply; a stopped writer is a closed store."""
    try:
        return future.get()
    except pykka.ActorDeadError as exc:
        raise StoreClosedError("the event store writer is stopped") from exc


def _as_committed(
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


def _request_of(state: SessionState | None, turn: int | None) -> str | None:
    if state is None or turn is None or not 1 <= turn <= len(state.turns):
        return None
    return state.turns[turn - 1].request_id

