"""`IndexerActor`: the owner of the repository catalogue; one rebuild at a time.

The concrete indexer is passed in by `lynkr` (it satisfies `RebuildablePort`). A
rebuild runs on a worker thread the actor owns, so the actor keeps answering while
it runs. Requests coalesce: every request that arrives while a rebuild runs waits for
the *one* rebuild that starts after it, so N callers during a rebuild cause one more
rebuild, not N. Each finished rebuild appends `IndexRebuilt` to the `system` stream
before any caller sees its report; progress goes to every waiting caller's callback.

Ask with ``proxy.rebuild(on_progress)`` (a deferred reply: the actor stays free while
the rebuild runs) or the shorthand `request_rebuild(ref)`: ``await`` it from trio,
``.get()`` it from a thread. Stopping the actor cancels a running rebuild at its next
file (the catalogue keeps its previous state) and fails the waiting callers with
`IndexerStoppedError`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pykka
import structlog

from actors._errors import ActorError
from actors._trio import TrioActor, TrioFuture
from actors.writer import EventStore
from eventstore import ANY_VERSION, Metadata
from eventstore.events.system import IndexRebuilt

__all__ = [
    "IndexerActor",
    "IndexerStatus",
    "IndexerStoppedError",
    "RebuildOutcome",
    "RebuildRequested",
    "RebuildablePort",
    "request_rebuild",
]

log = structlog.get_logger()

ProgressListener = Callable[[Any], None]
_JOIN_TIMEOUT = 30.0


class IndexerStoppedError(ActorError):
    """The indexer actor stopped before the requested rebuild finished."""


class RebuildOutcome(Protocol):
    """What the actor needs to know about a finished rebuild."""

    @property
    def files(self) -> int:
        """Files in the catalogue afterwards."""

    @property
    def symbols(self) -> int:
        """Symbols in the catalogue afterwards."""

    @property
    def changed(self) -> int:
        """Files added, modified or deleted."""

    @property
    def problems(self) -> Sequence[Any]:
        """Files skipped or partly understood."""

    @property
    def duration_s(self) -> float:
        """How long the rebuild took."""


class RebuildablePort(Protocol):
    """The concrete indexer (`lynkr.indexer.Indexer`)."""

    @property
    def root(self) -> Any:
        """The workspace root."""

    def rebuild(self, progress: ProgressListener | None = None) -> RebuildOutcome:
        """Bring the catalogue up to date, calling `progress` after each file."""


@dataclass(frozen=True, slots=True)
class RebuildRequested:
    """A caller waiting for the next rebuild: its reply and its progress callback."""

    reply: concurrent.futures.Future[Any]
    on_progress: ProgressListener | None = None


@dataclass(frozen=True, slots=True)
class _RebuildFinished:
    report: Any | None
    error: BaseException | None


@dataclass(frozen=True, slots=True)
class IndexerStatus:
    """A snapshot of the actor: whether it rebuilds, how far, and what it did last."""

    running: bool
    waiting: int  # callers queued for the next rebuild
    done: int  # files looked at by the running rebuild
    total: int
    rebuilds: int  # rebuilds finished since the actor started
    last_report: Any | None


class _Cancelled(Exception):
    """Raised from the progress callback to abandon a rebuild when the actor stops."""


def request_rebuild(ref: pykka.ActorRef[Any],
                    on_progress: ProgressListener | None = None) -> TrioFuture[Any]:
    """Ask the indexer actor behind `ref` for a rebuild; the future gives its report.

    Call it from the thread or trio task that will wait: the future captures the trio
    token when there is one (`await` it), and is an ordinary future otherwise (`.get()`).
    A stopped actor answers with `IndexerStoppedError`.
    """
    try:
        return ref.proxy().rebuild(on_progress)  # type: ignore[no-any-return]
    except pykka.ActorDeadError:
        failed: TrioFuture[Any] = TrioFuture()
        error = IndexerStoppedError("the indexer actor is stopped")
        failed.set_exception(exc_info=(IndexerStoppedError, error, None))
        return failed


class IndexerActor(TrioActor):
    """Owns the catalogue through `indexer`; records each rebuild in `store`."""

    def __init__(self, indexer: RebuildablePort, store: EventStore) -> None:
        super().__init__()
        self._indexer = indexer
        self._store = store
        self._running: list[RebuildRequested] | None = None
        self._next: list[RebuildRequested] = []
        self._worker: threading.Thread | None = None
        self._stopping = threading.Event()
        self._progress: tuple[int, int] = (0, 0)
        self._rebuilds = 0
        self._last: Any | None = None

    # -- messages ------------------------------------------------------------------
    def rebuild(self, on_progress: ProgressListener | None = None
                ) -> concurrent.futures.Future[Any]:
        """Join the next rebuild (starting it if none runs); the reply is its report.

        Args:
            on_progress: called on the rebuild's thread after each file.
        """
        reply: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._next.append(RebuildRequested(reply, on_progress))
        self._start_if_idle()
        return reply

    def on_receive(self, message: Any) -> Any:
        """Handle the rebuild thread's finish notice."""
        if isinstance(message, _RebuildFinished):
            self._finish(message)
        else:
            log.warning("indexer_unknown_message", type=type(message).__name__)

    def status(self) -> IndexerStatus:
        """Where the indexer is now."""
        done, total = self._progress
        return IndexerStatus(running=self._running is not None, waiting=len(self._next),
                             done=done, total=total, rebuilds=self._rebuilds,
                             last_report=self._last)

    def _start_if_idle(self) -> None:
        if self._running is not None or not self._next:
            return
        self._running, self._next = self._next, []
        self._progress = (0, 0)
        self._worker = threading.Thread(
            target=self._rebuild, args=(list(self._running),), name="lynkr-indexer-rebuild")
        self._worker.start()

    def _finish(self, message: _RebuildFinished) -> None:
        waiters, self._running = self._running or [], None
        if message.error is None:
            self._rebuilds += 1
            self._last = message.report
        for waiter in waiters:
            if message.error is None:
                waiter.reply.set_result(message.report)
            else:
                waiter.reply.set_exception(message.error)
        self._start_if_idle()

    # -- the worker thread -----------------------------------------------------------
    def _rebuild(self, waiters: list[RebuildRequested]) -> None:
        listeners = [w.on_progress for w in waiters if w.on_progress is not None]

        def progress(update: Any) -> None:
            """Record and pass on one step; abandon the rebuild if the actor is stopping."""
            if self._stopping.is_set():
                raise _Cancelled
            self._progress = (int(getattr(update, "done", 0)), int(getattr(update, "total", 0)))
            for listener in list(listeners):
                try:
                    listener(update)
                except Exception as exc:  # noqa: BLE001 - a caller's display must not stop us
                    log.warning("index_progress_listener_failed", error=str(exc))
                    listeners.remove(listener)

        try:
            report = self._indexer.rebuild(progress)
            self._record(report)
            outcome = _RebuildFinished(report, None)
        except _Cancelled:
            outcome = _RebuildFinished(None, IndexerStoppedError("the indexer stopped"))
        except Exception as exc:  # noqa: BLE001 - the waiting callers get the failure
            log.warning("index_rebuild_failed", error_type=type(exc).__name__, error=str(exc))
            outcome = _RebuildFinished(None, exc)
        try:
            self.actor_ref.tell(outcome)
        except pykka.ActorDeadError:
            self._fail(waiters, outcome.error or IndexerStoppedError("the indexer stopped"))

    def _record(self, report: RebuildOutcome) -> None:
        event = IndexRebuilt(
            workspace=str(self._indexer.root), files=report.files, symbols=report.symbols,
            changed=report.changed, problems=len(report.problems),
            duration_s=round(report.duration_s, 6),
        )
        started = time.perf_counter()
        self._store.submit_append("system", ANY_VERSION, [event],
                                  metadata=Metadata(actor="indexer")).result()
        log.debug("index_rebuilt_recorded", seconds=round(time.perf_counter() - started, 4))

    @staticmethod
    def _fail(waiters: list[RebuildRequested], error: BaseException) -> None:
        for waiter in waiters:
            with contextlib.suppress(concurrent.futures.InvalidStateError):  # already resolved
                waiter.reply.set_exception(error)

    # -- lifecycle -----------------------------------------------------------------
    def on_stop(self) -> None:
        """Cancel a running rebuild, wait for its thread, fail every waiting caller."""
        self._stopping.set()
        if self._worker is not None:
            self._worker.join(_JOIN_TIMEOUT)
        error = IndexerStoppedError("the indexer stopped")
        self._fail(self._next + (self._running or []), error)
        self._next, self._running = [], None
