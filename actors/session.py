"""`SessionActor`: the single writer of one `session-<id>` stream, and its state.

(Over 400 lines on purpose: the actor's commands, its settle/commit hand-over and its
shared-log catch-up are one state machine around `_state`/`_inflight`; the pure parts
already live in `_session_commands.py`, `_session_commit.py` and `_loop_guard.py`.)

Session actors are `DispatchedActor`s: many sessions share the dispatcher's few
worker threads (`actors._dispatch`), one message at a time per session as ever.
"Its thread" below is whichever thread runs it: a worker, or the asking trio
thread itself when `Sessions` asks inline (`ask_inline`: no other ask of its in
flight) and `may_run_inline` accepts the command: the state is loaded, the last
append was settled cleanly, the store takes appends without waiting (a
`SqliteRecorder`) and a `BeginTurn`'s request is at most `INLINE_REQUEST_BYTES`.
Then nothing in the command can wait, and its commit is `commit_deferred(wait=False)`,
which hands the append to the writer thread rather than wait for a lock, another
process or a disk sync.

The state is `fold_session` of the stream, loaded on the first message (so a
failed recovery reaches the caller as an exception instead of killing the
actor). A command runs a pure function from `actors._session_commands` and
submits its decision, with the state's version as the expected version, from
this actor's thread straight into the recorder's group commit
(`EventStore.submit_append`), not through the writer actor's mailbox, and
deferred: the worker commits the appends of every session it ran in a row in one
transaction before it next waits (`Dispatcher.call_before_idle`), on its own
thread, so a commit costs no hand-over to the writer thread and back. The reply
is deferred too: the committing thread folds the events as committed (positions,
sequence numbers and the commit time come from the append's `AppendResult`, so
nothing is read back) and only then resolves it, while this thread is already
free (`actors._session_commit`). The actor adopts that fold before it decides
anything else, so commands to one session are still serialized and each is
validated against the committed state. If another process appended to the
stream meanwhile (`ConcurrencyError`), the actor catches up on the tail and
retries the command once. Blob hashing (system prompt, tool list, messages)
happens here, on the actor's thread: on the trio thread only in an inline run,
for a request of at most `INLINE_REQUEST_BYTES`. Parts the session stored on an
earlier turn are found in its `BlobCache` (`actors._blob_cache`) and not encoded
again.

If a message sent with `tell` fails, pykka stops the actor and `on_failure`
reports a `SessionCrash` to the supervisor callback (the `SessionRegistry`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import pykka
import structlog

from actors._blob_cache import MAX_LIMIT, BlobCache
from actors._dispatched import DispatchedActor
from actors._errors import SessionLoopStoppedError
from actors._session_commands import (
    Blob,
    Decision,
    TurnRequest,
    begin_turn,
    finish_turn,
    record_events,
)
from actors._session_commit import Answer, InFlight, Settle, as_committed
from actors.writer import EventStore
from eventstore import ConcurrencyError, Event, Metadata, StoreClosedError
from eventstore.projections.session_state import SessionState, TurnState, fold_session

__all__ = [
    "INLINE_REQUEST_BYTES",
    "BeginTurn",
    "FinishTurn",
    "Record",
    "SessionActor",
    "SessionCrash",
    "conflict_retries",
    "stream_of",
]

log = structlog.get_logger()



class _Tally:
    """A count that any actor thread may add to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self) -> int:
        with self._lock:
            self.value += 1
            return self.value


_CONFLICTS_RETRIED = _Tally()


def conflict_retries() -> int:
    """Commands retried in this process because another writer (another gateway on a
    shared store) appended to the session's stream first (`/health` shows it)."""
    return _CONFLICTS_RETRIED.value

T = TypeVar("T")
_KNOWN_BLOBS_LIMIT = 4096  # digests remembered as stored (to skip resending them), at first;
# grown with the requests to twice a request's parts, like the session's `BlobCache`
INLINE_REQUEST_BYTES = 256 * 1024
"""Largest request whose `BeginTurn` may run inline: encoding and hashing the blobs of
a new request takes ~1 ms per 100 KB (a later turn, mostly `BlobCache` hits, ~0.2 ms),
all of it time the trio thread serves nobody else."""


def stream_of(session_id: str) -> str:
    """The stream id of a session: ``session-<id>``."""
    return f"session-{session_id}"


@dataclass(frozen=True, slots=True)
class BeginTurn:
    """Message: `SessionActor.begin_turn`."""

    request: TurnRequest


@dataclass(frozen=True, slots=True)
class Record:
    """Message: `SessionActor.record`."""

    turn: int
    events: tuple[Event, ...]
    blobs: Sequence[Blob] = ()


@dataclass(frozen=True, slots=True)
class FinishTurn:
    """Message: `SessionActor.finish_turn`."""

    turn: int
    outcome: Event
    blobs: Sequence[Blob] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionCrash:
    """Notice to the supervisor: a session actor died of an unhandled exception."""

    session_id: str
    actor_urn: str
    error_type: str
    error: str


class SessionActor(DispatchedActor):
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
        self._known_limit = _KNOWN_BLOBS_LIMIT  # grown with the requests (`begin_turn`)
        self._blob_cache = BlobCache(self._known_blobs)
        self._inflight: InFlight | None = None  # submitted, reply waiting for the commit

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

    def begin_turn(self, request: TurnRequest) -> Future[int]:
        """Start the next turn (and the session on its first turn); replies the turn number.

        Replies after `TurnStarted` (and the blobs of the request, and `RouteChosen` when
        the request carries its route) are committed.

        Raises:
            CommandRejectedError: the request is incomplete or cannot be stored.
            ConcurrencyError: another writer won twice in a row.
        """
        parts = sum(len(p) if isinstance(p, list | tuple) else 1
                    for p in (request.system, request.messages)) + 1  # + the tool list
        self._blob_cache.fit(parts)  # every part is resent every turn: keep them all known
        self._known_limit = max(self._known_limit, min(MAX_LIMIT, 2 * parts))  # likewise
        make = self._blob_cache.make
        if self._store.shared:
            self._refresh()
        return self._execute(lambda s: begin_turn(s, self.session_id, request, blob=make),
                             request.request_id, None,
                             lambda state: _started_turn(state, request.request_id),
                             key_id=request.key_id)

    def record(self, turn: int, *events: Event, blobs: Sequence[Blob] = ()) -> Future[int]:
        """Append `RouteChosen` / `PolicyDecided` / `ToolCompleted` events of an open turn.

        Returns:
            A deferred reply: the stream version after the commit.

        Raises:
            CommandRejectedError: see `record_events`.
        """
        return self._execute(lambda s: record_events(s, turn, events, blobs), None, turn,
                             _version_of)

    def finish_turn(
        self, turn: int, outcome: Event, blobs: Sequence[Blob] = ()
    ) -> Future[TurnState]:
        """End an open turn with `ModelResponded`, `UpstreamFailed` or `StreamAborted`.

        `blobs` are the `make_blob` results the outcome refers to (message, upstream).

        Returns:
            A deferred reply: the turn as committed.

        Raises:
            CommandRejectedError: see `finish_turn` in `actors._session_commands`.
        """
        return self._execute(lambda s: finish_turn(s, turn, outcome, blobs), None, turn,
                             lambda state: state.turn(turn))

    def on_receive(self, message: Any) -> Any:
        """The typed commands (`Record`, `BeginTurn`, `FinishTurn`: what `Sessions` sends,
        cheaper than a proxy call) and `Settle` (an append of ours needs this thread)."""
        if isinstance(message, Record):
            return self.record(message.turn, *message.events, blobs=message.blobs)
        if isinstance(message, BeginTurn):
            return self.begin_turn(message.request)
        if isinstance(message, FinishTurn):
            return self.finish_turn(message.turn, message.outcome, message.blobs)
        if isinstance(message, Settle):
            self._settle()
            return None
        return super().on_receive(message)

    def may_run_inline(self, message: Any) -> bool:
        """Commands may run on the asking (trio) thread when nothing in them can wait:
        the state is loaded, the last append settled cleanly, the store takes appends
        without waiting, and a request is small enough to hash there (see module
        docstring)."""
        if isinstance(message, BeginTurn):
            if message.request.request_bytes > INLINE_REQUEST_BYTES:
                return False
        elif not isinstance(message, Record | FinishTurn):
            return False
        if not self._loaded or not self._store.submits_directly:
            return False
        inflight = self._inflight
        return inflight is None or inflight.settled_cleanly()

    # -- machinery -------------------------------------------------------------------
    def _current(self) -> SessionState | None:
        self._settle()
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
        turn: int | None,
        answer: Answer,
        *,
        key_id: str | None = None,
    ) -> Future[Any]:
        """Decide and submit; the reply resolves after the commit (see `_session_commit`)."""
        try:
            state = self._current()
            decision = command(state)
            expected = self._version(state)
            metadata = Metadata(request_id=request_id or _request_of(state, turn),
                                actor=f"session:{self.session_id}", key_id=key_id)
            blobs = [b for b in decision.blobs if b[0].digest not in self._known_blobs]
            inflight = InFlight(self.stream_id, state, expected, decision, metadata, command,
                                answer, self.actor_ref)
            # Commit when this worker runs out of sessions to run: one transaction for
            # every session it ran in a row, and no hand-over to the writer thread.
            store = self._store
            commit = (store.commit_deferred_nowait if self._pool.running_inline()
                      else store.commit_deferred)
            deferred = self._pool.call_before_idle(store, commit)
            pending = store.submit_append(self.stream_id, expected, decision.events,
                                          metadata=metadata, blobs=blobs, defer=deferred)
        except Exception:
            # Whatever failed, the next command starts again from the stream.
            self._loaded = False
            raise
        self._inflight = inflight
        pending.add_done_callback(inflight.on_commit)
        return inflight

    def _settle(self) -> None:
        """Adopt the fold of the append in flight, or finish it here; resolves its reply."""
        inflight, self._inflight = self._inflight, None
        if inflight is None:
            return
        if not inflight.settled.acquire(blocking=False):
            self._store.commit_deferred()  # ours may still wait for this very worker
            inflight.settled.acquire()  # on_commit has recorded the outcome
        inflight.settled.release()
        if inflight.folded is not None:  # a clean commit, folded and answered on commit
            self._adopt(inflight.folded, inflight.decision)
            return
        try:
            state = self._finish(inflight)
            value = inflight.answer(state)
        except Exception as exc:  # noqa: BLE001  (the command's failure goes to its asker)
            self._loaded = False
            inflight.set_exception(exc)
            return
        inflight.set_result(value)

    def _finish(self, inflight: InFlight) -> SessionState:
        """The commit's outcome that `on_commit` left for this thread: read back or retry."""
        appended = inflight.result_of_append
        if appended is not None and inflight.error is None:
            committed = _wait(self._store.read_stream(self.stream_id, inflight.expected + 1,
                                                      appended.version))
            return self._adopt(fold_session(committed, start=inflight.start), inflight.decision)
        assert inflight.error is not None
        if not isinstance(inflight.error, ConcurrencyError):
            raise inflight.error
        log.info("session_conflict_retried", session_id=self.session_id,
                 version=inflight.expected, retries=_CONFLICTS_RETRIED.add())
        state = self._catch_up(inflight.start)
        decision = inflight.command(state)
        expected = self._version(state)
        metadata = inflight.metadata  # same request, same turn
        blobs = [b for b in decision.blobs if b[0].digest not in self._known_blobs]
        pending = self._store.submit_append(self.stream_id, expected, decision.events,
                                            metadata=metadata, blobs=blobs)
        with self._pool.blocking():
            result = pending.result()
        built = as_committed(self.stream_id, expected, decision.events, metadata, result)
        committed = built if built is not None else _wait(
            self._store.read_stream(self.stream_id, expected + 1, result.version))
        return self._adopt(fold_session(committed, start=state), decision)

    def _adopt(self, state: SessionState | None, decision: Decision) -> SessionState:
        assert state is not None  # a commit always adds at least one event
        self._state = state
        if len(self._known_blobs) > self._known_limit:
            # Not at a request's size: a clear on its turn's last commit would forget
            # every part it sent, and the next turn would encode all of them again.
            self._known_blobs.clear()
        self._known_blobs.update(ref.digest for ref, _ in decision.blobs)
        return state

    def _refresh(self) -> None:
        """With a shared log (N gateways), catch up before a turn begins if another gateway
        appended to this session since: a session whose requests alternate between
        gateways then starts each turn from the stream's head instead of losing a race
        and retrying (one version read per turn; within a turn every command comes to
        the gateway that began it)."""
        state = self._current()
        try:
            version = _wait(self._store.stream_version(self.stream_id))
        except Exception:  # noqa: BLE001  (the append decides; a failed peek is only a miss)
            return
        if version != self._version(state):
            self._catch_up(state)

    def _catch_up(self, state: SessionState | None) -> SessionState | None:
        tail = _wait(self._store.read_stream(self.stream_id, self._version(state) + 1))
        self._state = fold_session(tail, start=state)
        return self._state

    # -- lifecycle -------------------------------------------------------------------
    def on_stop(self) -> None:
        """Answer the command still waiting for its commit before the thread ends."""
        self._settle()

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        """Answer the command in flight, then tell the supervisor that this actor died."""
        self._settle()
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


def _started_turn(state: SessionState, request_id: str) -> int:
    """The turn our commit started; or the loop guard's refusal, raised to the asker."""
    stop = state.last_loop_stop
    if stop is not None and stop.request_id == request_id and (
            not state.turns or state.turns[-1].request_id != request_id):
        raise SessionLoopStoppedError(stop.reason)
    return state.turns[-1].number  # the fold of our commit ends with our turn


def _version_of(state: SessionState) -> int:
    return state.version


def _request_of(state: SessionState | None, turn: int | None) -> str | None:
    if state is None or turn is None or not 1 <= turn <= len(state.turns):
        return None
    return state.turns[turn - 1].request_id

