"""`ProjectionRunner`: the actor that keeps the projections caught up with the log.

On start it opens the `ProjectionStore` (on its own thread) and catches up from the
stored offsets; then a commit listener on the recorder tells it `CatchUp` after
every commit, coalesced: at most one catch-up per `interval` seconds (default
`DEFAULT_INTERVAL`, 50 ms), so a burst of commits costs one catch-up and a busy
gateway does not pay a `projections.db` transaction per turn. The last commit of a
burst is always followed by a catch-up at most `interval` later; `catch_up_now`
catches up at once. A catch-up that must wait is announced by the runner's one
`_Alarm` thread, started at the first such wait and kept until the runner stops:
a `threading.Timer` per wait started a thread several times a second under load.
A projection that fails is reported (in the log and in `status()`) and does not
hold back the others; if the log itself cannot be read, the error is kept in
`status()` and the next commit retries.

Where the work runs: on the runner's thread by default. Given a `CatchUpWorker`
(the gateway passes one that drives a child process, `lynkr.projector`), the
runner still decides when to catch up, keeps the status and answers queries from
its own connection to the projection file, but each catch-up and rebuild is done
by the worker: the runner's thread sends the request and waits on the reply,
holding no lock, so the projections' Python work no longer shares the server's
interpreter lock with its request handling. A worker that fails (its process
died, it answered with an error) is reported like a log that cannot be read: the
error is kept in `status()` (and logged once, not again while it lasts) and the
next commit tries again.

`Projections` is the handle trio code holds: `await projections.status()`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pykka
import structlog

from actors._trio import TrioActor, TrioFuture
from eventstore import EventStoreError, Recorder
from eventstore.projections import (
    CatchUpReport,
    Projection,
    ProjectionStatus,
    ProjectionStore,
    all_projections,
    open_projection_store_at,
)

__all__ = ["DEFAULT_INTERVAL", "CatchUp", "CatchUpWorker", "ProjectionRunner", "Projections",
           "RunnerStatus"]

log = structlog.get_logger()

DEFAULT_INTERVAL = 0.05  # seconds between catch-ups that follow commits


@dataclass(frozen=True, slots=True)
class CatchUp:
    """Message: the log has grown; apply what the projections have not seen."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunnerStatus:
    """Where the projections stand and what went wrong last."""

    log_position: int  # the recorder's last committed position
    projections: tuple[ProjectionStatus, ...]
    failures: Mapping[str, str] = field(default_factory=dict)  # from the last catch-up
    error: str | None = None  # the log could not be read on the last catch-up
    catch_ups: int = 0

    @property
    def caught_up(self) -> bool:
        """Every projection is at the log's last position."""
        return all(p.position >= self.log_position for p in self.projections)


class CatchUpWorker(Protocol):
    """Does the runner's catch-ups and rebuilds elsewhere (see module docstring).

    Called on the runner's thread only, one call at a time.
    """

    def catch_up(self) -> CatchUpReport:
        """Apply what the projections have not seen (`ProjectionStore.catch_up`).

        Raises:
            EventStoreError: the log could not be read, or the worker failed.
        """

    def rebuild(self, name: str | None) -> CatchUpReport:
        """Drop one projection (or all) and replay it (`ProjectionStore.rebuild`).

        Raises:
            EventStoreError: as `catch_up`.
        """

    def close(self) -> None:
        """Stop the worker; it is not called again."""


class ProjectionRunner(TrioActor):
    """Owns the `ProjectionStore`; follows the recorder (see module docstring)."""

    def __init__(
        self,
        recorder: Recorder,
        path: str | os.PathLike[str],
        projections: Sequence[Projection] | None = None,
        *,
        interval: float = DEFAULT_INTERVAL,
        worker: CatchUpWorker | None = None,
    ) -> None:
        super().__init__()
        if not interval >= 0:
            raise ValueError(f"interval must be >= 0 seconds, got {interval!r}")
        self._interval = interval
        self._last_catch_up = float("-inf")  # time.monotonic() of the last catch-up
        self._alarm = _Alarm(self._announce)
        self._recorder = recorder
        self._path = path
        self._projections = list(projections) if projections is not None else None
        self._store: ProjectionStore | None = None
        self._worker = worker
        self._wanted = threading.Event()
        self._remove_listener: Callable[[], None] | None = None
        self._failures: Mapping[str, str] = {}
        self._error: str | None = None
        self._catch_ups = 0

    def on_start(self) -> None:
        """Open the store, catch up, then follow commits."""
        projections = self._projections if self._projections is not None else all_projections()
        self._store = open_projection_store_at(self._path, projections)
        self._remove_listener = self._recorder.add_commit_listener(self._on_commit)
        self._catch_up()

    def _on_commit(self, last_position: int) -> None:
        # Runs on the recorder's commit thread: only hand the news on, at most once
        # per pending catch-up, and no sooner than `interval` after the last one.
        if self._wanted.is_set():
            return
        self._wanted.set()
        delay = self._last_catch_up + self._interval - time.monotonic()
        if delay <= 0:
            self._announce()
            return
        self._alarm.ring_in(delay)

    def _announce(self) -> None:
        with contextlib.suppress(pykka.ActorDeadError):  # stopping: listener going away
            self.actor_ref.tell(CatchUp())

    def on_receive(self, message: Any) -> Any:
        """Handle `CatchUp`; anything else is a programming error."""
        if isinstance(message, CatchUp):
            self._wanted.clear()
            self._catch_up()
            return None
        raise TypeError(f"ProjectionRunner cannot handle {type(message).__name__}")

    def _catch_up(self) -> CatchUpReport | None:
        assert self._store is not None  # opened in on_start
        self._catch_ups += 1
        self._last_catch_up = time.monotonic()
        try:
            report = (self._worker.catch_up() if self._worker is not None
                      else self._store.catch_up(self._recorder))
        except EventStoreError as exc:
            # The log (or the projection file) cannot be read: keep the error for
            # status(); the next commit tries again. Logged once per distinct error,
            # not on every commit while it lasts.
            error = f"{type(exc).__name__}: {exc}"
            if error != self._error:
                log.exception("projections_catch_up_failed", error_type=type(exc).__name__,
                              error=str(exc))
            self._error = error
            return None
        self._error = None
        self._failures = dict(report.failures)
        if report.events:
            log.debug("projections_caught_up", events=report.events,
                      failures=sorted(report.failures))
        return report

    # -- asks ----------------------------------------------------------------------
    def status(self) -> RunnerStatus:
        """Each projection's offset and error, and the log's last position."""
        assert self._store is not None
        return RunnerStatus(log_position=self._recorder.last_position(),
                            projections=tuple(self._store.status()), failures=self._failures,
                            error=self._error, catch_ups=self._catch_ups)

    def catch_up_now(self) -> RunnerStatus:
        """Catch up at once (whether or not a commit was announced); then the status."""
        self._catch_up()
        return self.status()

    def rebuild(self, name: str | None = None) -> CatchUpReport:
        """Drop one projection (or all) and replay it from position 0.

        Raises:
            KeyError: no projection has that name.
            EventStoreError: the worker failed (only with a worker).
        """
        assert self._store is not None
        if self._worker is None:
            report = self._store.rebuild(self._recorder, name)
        elif name is not None and name not in self._store.projections:
            raise KeyError(name)
        else:
            report = self._worker.rebuild(name)
        self._failures = dict(report.failures)
        return report

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """A read-only query on the projection tables (see `ProjectionStore.query`)."""
        assert self._store is not None
        return self._store.query(sql, args)

    # -- lifecycle -----------------------------------------------------------------
    def on_stop(self) -> None:
        """Stop following the log and close the store."""
        self._close()

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        """Release the listener and the file when the actor dies."""
        self._close()

    def _close(self) -> None:
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        self._alarm.close()
        if self._worker is not None:
            self._worker.close()
            self._worker = None
        if self._store is not None:
            self._store.close()
            self._store = None


class _Alarm:
    """Calls `action` once a wait asked with `ring_in` is over, on one thread of its own.

    The thread starts at the first `ring_in` and lives until `close`. A `ring_in`
    while a wait is pending moves it (the runner asks for at most one at a time).
    """

    def __init__(self, action: Callable[[], None]) -> None:
        self._action = action
        self._cond = threading.Condition()
        self._due: float | None = None  # time.monotonic() to ring at
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def thread(self) -> threading.Thread | None:
        """The alarm's thread, once started (for tests and diagnostics)."""
        return self._thread

    def ring_in(self, delay: float) -> None:
        """Call the action `delay` seconds from now (any thread; a no-op once closed)."""
        with self._cond:
            if self._closed:
                return
            self._due = time.monotonic() + delay
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ProjectionAlarm",
                                                daemon=True)
                self._thread.start()
            else:
                self._cond.notify()

    def close(self) -> None:
        """Drop a pending wait and end the thread (waits for it, unless called on it)."""
        with self._cond:
            self._closed, self._due = True, None
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._due is None:
                    self._cond.wait()
                    continue
                remaining = self._due - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                self._due = None
                self._cond.release()
                try:
                    self._action()
                except Exception:  # a bug in the action must not end the alarm
                    log.exception("projection_alarm_action_failed")
                finally:
                    self._cond.acquire()


class Projections:
    """Handle on a running `ProjectionRunner`; its methods return `TrioFuture`s."""

    def __init__(self, ref: pykka.ActorRef[ProjectionRunner]) -> None:
        self.ref = ref
        self._proxy = ref.proxy()

    @classmethod
    def start(
        cls,
        recorder: Recorder,
        path: str | os.PathLike[str],
        projections: Sequence[Projection] | None = None,
        *,
        interval: float = DEFAULT_INTERVAL,
        worker: CatchUpWorker | None = None,
    ) -> Projections:
        """Start a runner over `recorder`, keeping its tables in the file at `path`.

        Commits are followed by a catch-up at most once per `interval` seconds, done
        by `worker` if one is given (it is closed when the runner stops; it applies
        its own set of projections, which should be `projections`), else on the
        runner's thread.

        Raises:
            ValueError: `interval` is negative.
        """
        return cls(ProjectionRunner.start(recorder, path, projections, interval=interval,
                                          worker=worker))

    def status(self) -> TrioFuture[RunnerStatus]:
        """See `ProjectionRunner.status`."""
        return self._proxy.status()  # type: ignore[no-any-return]

    def catch_up_now(self) -> TrioFuture[RunnerStatus]:
        """See `ProjectionRunner.catch_up_now`."""
        return self._proxy.catch_up_now()  # type: ignore[no-any-return]

    def rebuild(self, name: str | None = None) -> TrioFuture[CatchUpReport]:
        """See `ProjectionRunner.rebuild`."""
        return self._proxy.rebuild(name)  # type: ignore[no-any-return]

    def query(self, sql: str, args: Sequence[Any] = ()) -> TrioFuture[list[dict[str, Any]]]:
        """See `ProjectionRunner.query`."""
        return self._proxy.query(sql, args)  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Stop the runner (blocks; for threads and sync code)."""
        self.ref.stop()

    async def aclose(self) -> None:
        """`stop` for trio code."""
        await self.ref.stop(block=False)
