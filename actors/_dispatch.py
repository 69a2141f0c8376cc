"""Dispatched actors: pykka actors that share a small pool of threads instead of one each.

A `pykka.ThreadingActor` owns a thread, so every message to it is a thread wake-up
and a hand-over of the GIL. Session actors are many (one per live session) and
each command is a few microseconds of Python, so with 32 sessions busy at once
the wake-ups cost several times the work (docs/benchmark-history.md, event store). A
`DispatchedActor` keeps everything an actor is — its own mailbox, one message at
a time, `on_start` / `on_stop` / `on_failure`, refs, proxies, `ActorRegistry` —
but its messages run on a `Dispatcher`'s worker threads: a mailbox that receives
a message while idle puts its actor on the dispatcher's ready queue, and a worker
runs a slice of at most `throughput` messages before putting it at the back of the
queue again, so one chatty actor cannot starve the others.

Wake-ups: a worker is woken only when no worker is awake to take the work; 32
asks arriving together cost one wake-up, not 32. Blocking: an actor that waits on
something (a read from the writer actor, a commit) while on a worker would hold
up every other actor, so the wait is *managed*, as in a fork/join pool: inside
`Dispatcher.blocking()` (entered automatically by `TrioFuture.get()` on a worker)
the worker does not count as awake, and another worker is woken or started, up
to `max_threads`, if work is waiting.

Ordering and exclusion per actor are the mailbox's: it is scheduled at most once
at a time (its `scheduled` flag, under its lock), so no two workers ever run the
same actor. A message put after the actor stopped is answered with
`ActorDeadError` (a `ThreadingActor` whose thread has ended leaves it unanswered).

Before-idle hooks: an actor on a worker may ask for a callback before that worker
next waits (`call_before_idle`): the session actors defer their appends and the
worker commits all of them in one transaction when it runs out of sessions to run,
so a burst of appends costs one commit and no hand-over to the writer thread.

Inline asks: `ask_inline` runs the message on the asking (trio) thread itself when
the actor is idle (nothing queued, not on a worker) and its `may_run_inline(message)`
says the message needs no waiting. The run takes the mailbox's `scheduled` flag
exactly as a worker's slice does, so exclusion and order are unchanged, and a
message that arrives meanwhile is queued and run by a worker afterwards. This saves
the two thread hand-overs of an ask (waking a worker, then waking trio), the larger
part of its cost when nothing else is going on; under load, workers are better:
they batch many actors' commits into one while trio serves the other requests, so
the caller chooses (`Sessions` asks inline only when none of its asks is in
flight). The run must not wait: a `TrioFuture.get()` or `Dispatcher.blocking()`
inside it raises `InlineBlockingError`. Its before-idle hooks (the session's group
commit) run right after it, on the same thread.

Workers are daemon threads: they hold no state of their own, and an actor's
`on_stop` runs when it is stopped (`ActorRegistry.stop_all()` at shutdown), not
when the interpreter exits.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from actors._errors import InlineBlockingError
from actors._trio import manage_blocking

if TYPE_CHECKING:
    from actors._dispatched import DispatchedActor

__all__ = ["Dispatcher", "DispatcherStatistics", "default_dispatcher"]

log = structlog.get_logger()

_worker = threading.local()  # on a worker: .dispatcher, .hooks (before idle), .slices;
# during an inline run also .inline (True)


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatcherStatistics:
    """What a dispatcher has done since it started."""

    threads: int  # worker threads started
    awake: int  # workers running actors now (not idle, not in a managed block)
    ready: int  # actors waiting for a worker
    slices: int  # actor slices run
    wakeups: int  # times an idle worker was woken
    inline: int  # messages run inline, on the asking thread (`ask_inline`)


class Dispatcher:
    """A pool of worker threads that runs `DispatchedActor`s (see module docstring)."""

    def __init__(self, name: str = "actors", *, max_threads: int = 8, throughput: int = 32,
                 flush_every: int = 64):
        """Workers are named `<name>-<n>` and started on demand, up to `max_threads`;
        a worker that never runs out of work runs its before-idle hooks every
        `flush_every` slices.

        Raises:
            ValueError: `max_threads`, `throughput` or `flush_every` is less than 1.
        """
        if max_threads < 1 or throughput < 1 or flush_every < 1:
            raise ValueError("a dispatcher needs at least one thread, "
                             "and throughput and flush_every of 1+")
        self.name = name
        self.max_threads = max_threads
        self.throughput = throughput
        self.flush_every = flush_every
        self._ready: deque[DispatchedActor] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._threads = 0
        self._idle = 0  # workers waiting on `_wake`
        self._awake = 0  # workers running, not in a managed block
        self._slices = 0
        self._wakeups = 0
        self._inline = 0

    def call_before_idle(self, key: object, hook: Callable[[], object]) -> bool:
        """On one of this dispatcher's workers: run `hook` once before this worker next
        waits (for work, or in a managed block), or after `flush_every` more slices.

        One hook per `key` is kept (the latest). This is how an actor defers work it
        can do for many messages at once, such as a group commit of the appends of
        every session the worker ran in a row.

        Returns:
            False, and nothing is registered, on a thread that is not such a worker.
        """
        if getattr(_worker, "dispatcher", None) is not self:
            return False
        _worker.hooks[key] = hook
        return True

    def _run_hooks(self) -> None:
        """On a worker, without the lock: run (and clear) its before-idle hooks."""
        hooks: dict[object, Callable[[], object]] = _worker.hooks
        _worker.slices = 0
        while hooks:
            _, hook = hooks.popitem()
            try:
                hook()
            except Exception:  # a hook's bug must not end the worker that every actor needs
                log.exception("dispatcher_hook_failed", dispatcher=self.name, hook=repr(hook))

    def schedule(self, actor: DispatchedActor) -> None:
        """Queue `actor` for a slice on a worker (any thread; its mailbox calls this)."""
        with self._lock:
            self._ready.append(actor)
            if self._awake == 0:
                self._rouse()

    def _rouse(self) -> None:
        """With the lock held: get one more worker going, if one can be had."""
        if self._idle:
            # The worker is counted awake from now: a second schedule() before it runs
            # must not wake another one for the same work.
            self._idle -= 1
            self._awake += 1
            self._wakeups += 1
            self._wake.notify()
        elif self._threads < self.max_threads:
            self._threads += 1
            self._awake += 1  # counted now so that the next schedule does not start another
            threading.Thread(target=self._work, name=f"{self.name}-{self._threads}",
                             daemon=True).start()

    @contextmanager
    def blocking(self) -> Iterator[None]:
        """Around a blocking wait on a worker: lets another worker run meanwhile.

        A no-op on a thread that is not one of this dispatcher's workers.
        """
        if getattr(_worker, "dispatcher", None) is not self:
            yield
            return
        if getattr(_worker, "inline", False):
            raise InlineBlockingError("an actor running inline must not wait")
        if _worker.hooks:  # what we may wait on can depend on them (a deferred commit)
            self._run_hooks()
        with self._lock:
            self._awake -= 1
            if self._ready and self._awake == 0:
                self._rouse()
        try:
            yield
        finally:
            with self._lock:
                self._awake += 1

    def running_inline(self) -> bool:
        """True while this thread runs one of this dispatcher's actors inline."""
        return getattr(_worker, "inline", False) and _worker.dispatcher is self

    def _run_inline(self, actor: DispatchedActor, envelope: Any) -> None:
        """On the asking thread, holding the actor's run: one message as a worker
        would run it, then the hooks it registered; waiting raises `InlineBlockingError`."""
        saved = (getattr(_worker, "dispatcher", None), getattr(_worker, "hooks", None),
                 getattr(_worker, "inline", False))
        hooks: dict[object, Callable[[], object]] = {}
        _worker.dispatcher, _worker.hooks, _worker.inline = self, hooks, True
        previous = manage_blocking(_refuse_blocking)
        try:
            actor._handle_envelope(envelope)
            while hooks:
                _, hook = hooks.popitem()
                try:
                    hook()
                except Exception:  # as on a worker: logged, and the other hooks still run
                    log.exception("dispatcher_hook_failed", dispatcher=self.name,
                                  hook=repr(hook))
        finally:
            manage_blocking(previous)
            _worker.dispatcher, _worker.hooks, _worker.inline = saved
        with self._lock:
            self._inline += 1

    def statistics(self) -> DispatcherStatistics:
        """Threads, workers awake, actors ready, slices and wake-ups so far."""
        with self._lock:
            return DispatcherStatistics(threads=self._threads, awake=self._awake,
                                        ready=len(self._ready), slices=self._slices,
                                        wakeups=self._wakeups, inline=self._inline)

    def _work(self) -> None:
        _worker.dispatcher = self
        hooks: dict[object, Callable[[], object]] = {}
        _worker.hooks = hooks
        _worker.slices = 0
        manage_blocking(self.blocking)  # a TrioFuture.get() here is a managed block
        lock, ready = self._lock, self._ready
        lock.acquire()
        try:
            while True:
                while not ready:
                    if hooks:  # before sleeping: what was deferred until now is due
                        lock.release()
                        try:
                            self._run_hooks()
                        finally:
                            lock.acquire()
                        continue
                    self._awake -= 1
                    self._idle += 1
                    self._wake.wait()  # the notifier counted us awake again (`_rouse`)
                actor = ready.popleft()
                self._slices += 1
                lock.release()
                try:
                    actor._run_slice(self.throughput)
                    _worker.slices += 1
                    if hooks and _worker.slices >= self.flush_every:
                        self._run_hooks()  # a busy worker still flushes now and then
                finally:
                    del actor  # asleep, a worker keeps no actor alive (a stopped one is freed)
                    lock.acquire()
        finally:  # only a BaseException out of an actor ends a worker
            self._awake -= 1
            self._threads -= 1
            if ready and self._awake == 0:
                self._rouse()
            lock.release()


_default: Dispatcher | None = None
_default_lock = threading.Lock()


def default_dispatcher() -> Dispatcher:
    """The process-wide dispatcher that `DispatchedActor`s use unless told otherwise."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Dispatcher("actors")
    return _default


@contextmanager
def _refuse_blocking() -> Iterator[None]:
    raise InlineBlockingError("an actor running inline on this thread must not wait")
    yield  # pragma: no cover  (makes this a generator)
