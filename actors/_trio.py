"""The one bridge between pykka's threads and trio.

Trio code must never block on a plain pykka future (pykka's `__await__` ends in a
blocking `get()`; see jodal/pykka#99). Every Lynkr actor derives from `TrioActor`,
whose futures are `TrioFuture`s: created on the trio thread they capture the trio
token, and `set()` wakes a `trio.Event` through it, so `await proxy.method()` parks
the trio task without holding a worker thread. Created off the trio thread they
behave like ordinary `ThreadingFuture`s.

Deferred replies: an actor method may return a `concurrent.futures.Future` (e.g.
the event store's commit future); the asker's `TrioFuture` then resolves with that
future's outcome when it completes, so the actor can take its next message while
the reply is still pending. If the actor stops first, pykka answers every queued
ask with `ActorDeadError`, so no asker waits forever.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import Generator
from typing import Any, TypeVar, cast

import pykka
import trio

__all__ = ["TrioActor", "TrioFuture", "run_in_actor_thread"]

T = TypeVar("T")


class TrioFuture(pykka.ThreadingFuture[T]):
    """A pykka future that a trio task can `await` without blocking the trio thread."""

    def __init__(self) -> None:
        super().__init__()
        self._token: trio.lowlevel.TrioToken | None
        try:
            self._token = trio.lowlevel.current_trio_token()
        except RuntimeError:
            self._token = None
        self._done = trio.Event() if self._token is not None else None

    def _wake(self) -> None:
        if self._token is None or self._done is None:
            return
        # If the trio run that asked has ended, nobody is left to wake.
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(self._done.set)

    def set(self, value: Any | None = None) -> None:
        """Resolve with `value` and wake the awaiting trio task.

        A `concurrent.futures.Future` value is a deferred reply: this future resolves
        with its result (or exception) once it completes.
        """
        if isinstance(value, concurrent.futures.Future):
            value.add_done_callback(self._settle_from)
            return
        super().set(value)
        self._wake()

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

    def set_exception(self, exc_info: Any = None) -> None:
        """Resolve with an exception and wake the awaiting trio task."""
        super().set_exception(exc_info)
        self._wake()

    def __await__(self) -> Generator[Any, None, T]:
        if self._done is None:
            raise RuntimeError(
                "this future was created outside trio; call .get() from a thread instead"
            )
        if self._get_hook is not None:
            # Derived futures (`ActorRef.stop(block=False)`, `join`, `map`) are never
            # `set()`: their value comes from a hook that blocks, so it runs in a worker.
            return (yield from trio.to_thread.run_sync(self.get).__await__())  # type: ignore[no-any-return]
        yield from self._done.wait().__await__()
        return self.get(timeout=0)  # type: ignore[no-any-return]


class TrioActor(pykka.ThreadingActor):
    """Base of every Lynkr actor: its asks return `TrioFuture`s."""

    @classmethod
    def _create_future(cls) -> TrioFuture[Any]:
        return TrioFuture()


async def run_in_actor_thread(future: pykka.Future[T]) -> T:
    """Await any pykka future from trio, using a worker thread if it is not a `TrioFuture`.

    Prefer actors derived from `TrioActor`; this is the fallback for foreign futures.
    """
    if isinstance(future, TrioFuture) and future._done is not None:
        return cast("T", await future)
    return cast("T", await trio.to_thread.run_sync(future.get))
