"""The one bridge between pykka's threads and trio.

Trio code must never block on a plain pykka future (pykka's `__await__` ends in a
blocking `get()`; see jodal/pykka#99). Every Lynkr actor derives from `TrioActor`,
whose futures are `TrioFuture`s: created on the trio thread they capture the trio
token, and `set()` reschedules the awaiting trio task through it, so `await
proxy.method()` parks the task without holding a worker thread. Created off the trio
thread they are ordinary futures that threads wait on with `.get()`.

Why not pykka's `ThreadingFuture` plus a `trio.Event`: that future builds a
`Condition` per instance and a waiter lock per `get()`, the actor inbox was a
`queue.Queue` (a lock and three Conditions, all in Python), and every reply paid a
`run_sync_soon` even when no task was waiting yet. Measured with 32 trio tasks
asking 32 idle actors, the round trip cost 60-110 µs of CPU; a `TrioFuture` is one
result slot behind a module-wide lock, a lock allocated only if a thread blocks in
`get()`, and a trio wake-up only when a task is parked on it, and `TrioActor`'s
inbox is a C `queue.SimpleQueue` (30-40 µs a round trip, see docs/benchmark-history.md).
Wake-ups of one trio run are coalesced: replies that land while an earlier one is
still waiting to be delivered share its `run_sync_soon`.

Deferred replies: an actor method may return a `concurrent.futures.Future` (e.g.
the event store's commit future); the asker's `TrioFuture` then resolves with that
future's outcome when it completes, so the actor can take its next message while
the reply is still pending. If the actor stops first, pykka answers every queued
ask with `ActorDeadError`, so no asker waits forever.
"""

from __future__ import annotations

import concurrent.futures
import queue
import sys
import threading
from collections.abc import Callable, Generator
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, TypeVar, cast

import pykka
import trio

__all__ = ["TrioActor", "TrioFuture", "manage_blocking", "run_in_actor_thread"]

T = TypeVar("T")
ExcInfo = tuple[type[BaseException] | None, BaseException | None, TracebackType | None]

_GUARD = threading.Lock()  # orders resolution against waiter registration, for every future
_managed = threading.local()  # .block: what a blocking get() on this thread runs inside
_PENDING, _VALUE, _FAILED = 0, 1, 2


class _Wakeups:
    """Trio tasks to reschedule, delivered to one trio run by as few `run_sync_soon`s as can be."""

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self._token = token
        self._ready: list[TrioFuture[Any]] = []
        self._lock = threading.Lock()

    def post(self, future: TrioFuture[Any]) -> None:
        """Wake `future`'s waiters on the trio thread (from any thread)."""
        with self._lock:
            self._ready.append(future)
            if len(self._ready) > 1:
                return  # a delivery is already scheduled and will take this one too
        try:
            self._token.run_sync_soon(self._deliver)
        except trio.RunFinishedError:
            with self._lock:  # nobody is left to wake
                self._ready.clear()

    def _deliver(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
        for future in ready:
            future._reschedule()


_wakeups: dict[trio.lowlevel.TrioToken, _Wakeups] = {}
_wakeups_lock = threading.Lock()


def _wakeups_of(token: trio.lowlevel.TrioToken) -> _Wakeups:
    found = _wakeups.get(token)
    if found is None:
        with _wakeups_lock:
            if len(_wakeups) > 64:  # tokens of finished runs (tests start many runs)
                _wakeups.clear()
            found = _wakeups.setdefault(token, _Wakeups(token))
    return found


Block = Callable[[], AbstractContextManager[None]]


def manage_blocking(block: Block | None) -> Block | None:
    """Make every blocking `TrioFuture.get()` on this thread wait inside `block()`.

    A dispatcher's workers set this (`actors._dispatch`), so an actor that waits for
    a reply lets another worker run the other actors meanwhile; an actor run inline
    on trio's thread gets a `block` that refuses to wait. None clears it.

    Returns:
        The `block` this thread had before.
    """
    previous: Block | None = getattr(_managed, "block", None)
    _managed.block = block
    return previous


class TrioFuture(pykka.Future[T]):
    """A pykka future that a trio task can `await` without blocking the trio thread."""

    def __init__(self) -> None:
        super().__init__()
        self._state = _PENDING
        self._value: Any = None
        self._exc_info: ExcInfo | None = None
        self._hooked = False  # set_get_hook() was called: a derived future, never set()
        self._latch: threading.Lock | None = None  # made when a thread blocks in get()
        self._tasks: list[trio.lowlevel.Task] | None = None  # trio tasks parked on us
        self._wakeups: _Wakeups | None
        try:
            self._wakeups = _wakeups_of(trio.lowlevel.current_trio_token())
        except RuntimeError:
            self._wakeups = None

    def __repr__(self) -> str:
        state = ("pending", "done", "failed")[self._state]
        return f"<TrioFuture {state}>"

    # -- resolving (any thread) ------------------------------------------------------
    def set(self, value: Any | None = None) -> None:
        """Resolve with `value` and wake whoever waits.

        A `concurrent.futures.Future` value is a deferred reply: this future resolves
        with its result (or exception) once it completes.

        Raises:
            queue.Full: the future was already resolved (pykka's contract).
        """
        if isinstance(value, concurrent.futures.Future):
            value.add_done_callback(self._settle_from)
            return
        self._resolve(_VALUE, value, None)

    def set_exception(self, exc_info: Any = None) -> None:
        """Resolve with an exception (`sys.exc_info()` if none given) and wake whoever waits.

        Raises:
            queue.Full: the future was already resolved (pykka's contract).
        """
        if exc_info is None:
            exc_info = sys.exc_info()
        self._resolve(_FAILED, None, cast("ExcInfo", tuple(exc_info)))

    def set_get_hook(self, func: Any) -> None:
        """Let `func(timeout)` produce the value (pykka's derived futures).

        Raises:
            queue.Full: the future was already resolved (pykka's contract).
        """
        with _GUARD:
            if self._state != _PENDING:
                raise queue.Full
            self._hooked = True
            super().set_get_hook(func)

    def _settle_from(self, done: concurrent.futures.Future[Any]) -> None:
        if done.cancelled():
            cancelled = concurrent.futures.CancelledError()
            self.set_exception((type(cancelled), cancelled, None))
            return
        exc = done.exception()
        if exc is not None:
            self.set_exception((type(exc), exc, exc.__traceback__))
        else:
            self.set(done.result())

    def _resolve(self, state: int, value: Any, exc_info: ExcInfo | None) -> None:
        with _GUARD:
            if self._state != _PENDING or self._hooked:
                raise queue.Full
            self._value, self._exc_info, self._state = value, exc_info, state
            latch, parked = self._latch, self._tasks is not None
        if latch is not None:
            latch.release()
        if parked and self._wakeups is not None:
            self._wakeups.post(self)

    def _reschedule(self) -> None:
        """On the trio thread: resume the tasks parked on this future."""
        tasks, self._tasks = self._tasks, None
        for task in tasks or ():
            trio.lowlevel.reschedule(task)

    # -- waiting ---------------------------------------------------------------------
    def get(self, *, timeout: float | None = None) -> T:
        """The value, blocking this thread until there is one (never call it from trio).

        Raises:
            pykka.Timeout: nothing arrived within `timeout` seconds.
            Exception: the exception the future was resolved with.
        """
        if self._hooked:
            return super().get(timeout=timeout)
        if self._state == _PENDING:
            with _GUARD:
                latch = self._latch
                if self._state == _PENDING and latch is None:
                    latch = self._latch = threading.Lock()
                    latch.acquire()
            if latch is not None and self._state == _PENDING:
                block = getattr(_managed, "block", None)
                if block is None:
                    acquired = latch.acquire(timeout=-1 if timeout is None else timeout)
                else:
                    with block():
                        acquired = latch.acquire(timeout=-1 if timeout is None else timeout)
                if not acquired:
                    raise pykka.Timeout(f"{timeout} seconds")
                latch.release()  # let the next waiting thread through too
        return self._outcome()

    def _outcome(self) -> T:
        if self._exc_info is not None:
            exc_type, exc_value, traceback = self._exc_info
            if exc_value is None:
                assert exc_type is not None
                exc_value = exc_type()
            if exc_value.__traceback__ is not traceback:
                raise exc_value.with_traceback(traceback)
            raise exc_value
        return cast("T", self._value)

    def __await__(self) -> Generator[Any, None, T]:
        if self._wakeups is None:
            raise RuntimeError(
                "this future was created outside trio; call .get() from a thread instead"
            )
        if self._hooked:
            # Derived futures (`ActorRef.stop(block=False)`, `join`, `map`) are never
            # `set()`: their value comes from a hook that blocks, so it runs in a worker.
            return (yield from trio.to_thread.run_sync(self.get).__await__())
        task = trio.lowlevel.current_task()
        with _GUARD:
            parked = self._state == _PENDING
            if parked:
                if self._tasks is None:
                    self._tasks = []
                self._tasks.append(task)
        if parked:
            def abort(_: Any) -> trio.lowlevel.Abort:
                if self._tasks is not None and task in self._tasks:
                    self._tasks.remove(task)
                return trio.lowlevel.Abort.SUCCEEDED

            yield from trio.lowlevel.wait_task_rescheduled(abort).__await__()  # noqa: ASYNC105  (this is the await)
        else:
            yield from trio.lowlevel.checkpoint().__await__()  # noqa: ASYNC105  (this is the await)
        return self._outcome()


class TrioActor(pykka.ThreadingActor):
    """Base of every Lynkr actor: its asks return `TrioFuture`s, its inbox is a SimpleQueue.

    Both through pykka's documented hooks for actor implementations
    (`_create_actor_inbox`, `_create_future`; checked by `tests/actors/test_pykka_private.py`).
    """

    @staticmethod
    def _create_actor_inbox() -> Any:
        return queue.SimpleQueue()

    @classmethod
    def _create_future(cls) -> TrioFuture[Any]:
        return TrioFuture()


async def run_in_actor_thread(future: pykka.Future[T]) -> T:
    """Await any pykka future from trio, using a worker thread if it is not a `TrioFuture`.

    Prefer actors derived from `TrioActor`; this is the fallback for foreign futures.
    """
    if isinstance(future, TrioFuture) and future._wakeups is not None:
        return cast("T", await future)
    return cast("T", await trio.to_thread.run_sync(future.get))
