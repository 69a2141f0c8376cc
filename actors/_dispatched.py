"""`DispatchedActor`, its mailbox, and `ask_inline`: the actor side of `actors._dispatch`.

A `DispatchedActor` is a pykka actor whose messages a `Dispatcher`'s workers run;
its `_Mailbox` schedules it on the dispatcher when a message arrives while it is
idle, and runs a message on the asking thread for `ask_inline` (see the
dispatcher's module docstring for both).
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections import deque
from typing import Any, ClassVar, NamedTuple

import pykka
from pykka import ActorRegistry

from actors._dispatch import Dispatcher, default_dispatcher
from actors._pykka_private import (
    answer_queued_as_dead,
    handle_message,
    record_failure,
    run_on_start,
    stop_now,
)
from actors._trio import TrioFuture, run_in_actor_thread

__all__ = ["DispatchedActor", "ask_inline"]


class _Mailbox:
    """A dispatched actor's inbox: a deque that schedules its actor when it gets work.

    It holds its actor strongly until the actor has stopped and answered what was
    queued, then only weakly (`release`). The actor holds its inbox too, and that cycle
    would leave every stopped actor (a passivated session with all its state) to the
    cyclic garbage collector, whose pass over thousands of them stalled the gateway for
    a third of a second, instead of freeing it when its last reference goes.
    """

    __slots__ = ("_actor", "_lock", "_queue", "_released", "_scheduled")

    def __init__(self) -> None:
        self._queue: deque[Any] = deque()
        self._lock = threading.Lock()
        self._scheduled = True  # until the actor is started: messages just queue
        self._actor: DispatchedActor | None = None
        self._released: weakref.ref[DispatchedActor] | None = None

    def put(self, envelope: Any, /) -> None:
        """Queue a message (pykka's `tell`/`ask`); schedules the actor if it was idle."""
        with self._lock:
            self._queue.append(envelope)
            if self._scheduled:
                return
            self._scheduled = True
        actor = self._actor  # read once: a worker may release it meanwhile
        if actor is None:
            actor = self._released_actor()
        if actor is not None:
            actor._pool.schedule(actor)

    def deliver_inline(self, envelope: Any) -> None:
        """Run the message on this thread if the actor is idle and accepts it inline
        (`DispatchedActor.may_run_inline`); otherwise queue it as `put` does."""
        with self._lock:
            actor = self._actor  # None once released: stopped, and `put` answers for it
            idle = actor is not None and not self._scheduled and not self._queue
            if idle:
                self._scheduled = True  # the run is ours, as a worker's slice would be
        if actor is None or not idle:
            self.put(envelope)
            return
        if (not actor._set_up or actor.actor_stopped.is_set()
                or not actor.may_run_inline(envelope.message)):
            with self._lock:
                self._queue.append(envelope)
            actor._pool.schedule(actor)  # what `put` does for an idle actor
            return
        try:
            actor._pool._run_inline(actor, envelope)
        finally:
            if not self.idle_if_empty():  # what came meanwhile goes to a worker
                actor._pool.schedule(actor)

    def take(self) -> Any | None:
        """The next message, or None and the actor marked idle (worker only)."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            self._scheduled = False
            return None

    def idle_if_empty(self) -> bool:
        """Mark the actor idle if nothing is queued; False if something is (worker only)."""
        with self._lock:
            if self._queue:
                return False
            self._scheduled = False
            return True

    def get(self) -> Any:
        """The next message, which must exist (pykka's teardown checks `empty()` first)."""
        with self._lock:
            return self._queue.popleft()

    def empty(self) -> bool:
        """True if no message is queued."""
        return not self._queue

    def start(self, actor: DispatchedActor) -> None:
        """Bind the actor and schedule its first slice (which runs `on_start`)."""
        self._actor = actor
        actor._pool.schedule(actor)

    def release(self) -> None:
        """Hold the stopped actor only weakly from now on (see class docstring)."""
        actor = self._actor
        if actor is not None:
            self._released = weakref.ref(actor)  # first: `put` reads `_actor` alone
            self._actor = None

    def _released_actor(self) -> DispatchedActor | None:
        """The released actor if something still references it. If nothing does, the
        queued messages are answered here with `ActorDeadError`, as its teardown would
        have answered them, and None is returned."""
        actor = self._released() if self._released is not None else None
        if actor is not None:
            return actor
        with self._lock:
            envelopes = list(self._queue)
            self._queue.clear()
            self._scheduled = False
        for envelope in envelopes:
            if envelope.reply_to is not None:
                error = pykka.ActorDeadError("the actor has stopped")
                envelope.reply_to.set_exception((pykka.ActorDeadError, error, None))
        return None


class DispatchedActor(pykka.Actor):
    """A pykka actor whose messages run on a `Dispatcher` (see module docstring).

    Its asks return `TrioFuture`s, as a `TrioActor`'s do. Set the class attribute
    `dispatcher` to use another pool than `default_dispatcher()`. It overrides pykka's
    documented hooks for new actor types (`_create_actor_inbox`, `_create_future`,
    `_start_actor_loop`); the loop's steps come from `actors._pykka_private`.
    """

    dispatcher: ClassVar[Dispatcher | None] = None
    actor_inbox: _Mailbox

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pool = type(self).dispatcher or default_dispatcher()
        self._set_up = False

    @staticmethod
    def _create_actor_inbox() -> Any:
        return _Mailbox()

    def may_run_inline(self, message: Any) -> bool:
        """Whether `message` may run on the asking thread (`ask_inline`): only if its
        handling never waits. Called on that thread, holding the actor's run, so it
        may read the actor's state. The default is False: always a worker."""
        return False

    @classmethod
    def _create_future(cls) -> TrioFuture[Any]:
        return TrioFuture()

    def _start_actor_loop(self) -> None:
        self.actor_inbox.start(self)

    def _run_slice(self, throughput: int) -> None:
        """Run `on_start` if due, then up to `throughput` messages (on a worker)."""
        if not self._set_up:
            self._set_up = True
            run_on_start(self)
        inbox = self.actor_inbox
        for _ in range(throughput):
            if self.actor_stopped.is_set():
                break
            envelope = inbox.take()
            if envelope is None:
                return
            self._handle_envelope(envelope)
        if self.actor_stopped.is_set():
            self._drain_stopped()
            return
        self._pool.schedule(self)  # more to do: to the back of the queue

    def _drain_stopped(self) -> None:
        """Answer what is queued behind the stop with `ActorDeadError`, then let the
        inbox hold this actor weakly (`_Mailbox.release`).

        A message put later schedules the actor again and is answered the same way, or
        by the inbox itself once nothing references the actor any more.
        """
        while True:
            answer_queued_as_dead(self)
            if self.actor_inbox.idle_if_empty():
                self.actor_inbox.release()
                return

    def _handle_envelope(self, envelope: Any) -> None:
        """One message, with `ThreadingActor`'s semantics for replies and failures."""
        reply_to = envelope.reply_to
        try:
            response = handle_message(self, envelope.message)
            if reply_to is not None:
                reply_to.set(response)
        except Exception:  # noqa: BLE001  (the asker gets it, as from any pykka actor)
            if reply_to is not None:
                reply_to.set_exception()
            else:  # a failed tell stops the actor; supervisors hear of it in on_failure
                record_failure(self, sys.exc_info())
                try:
                    self.on_failure(*sys.exc_info())
                except Exception:  # noqa: BLE001  (as pykka: logged, the actor is stopped anyway)
                    record_failure(self, sys.exc_info())
        except BaseException:
            stop_now(self)
            ActorRegistry.stop_all(block=False)
            raise


class _Envelope(NamedTuple):
    """An ask, shaped as pykka's own envelope (`message`, `reply_to`) wherever it ends up."""

    message: Any
    reply_to: TrioFuture[Any]


async def ask_inline(ref: pykka.ActorRef[Any], message: Any) -> Any:
    """Ask a `DispatchedActor` from trio and await the reply; inline when it can be.

    The message runs right here, on trio's thread, if the actor is idle and accepts
    it inline (see module docstring); otherwise this is an ordinary ask. Either way
    the reply comes when the actor's answer does (a deferred reply still waits for
    its commit).

    Raises:
        pykka.ActorDeadError: the actor is stopped.
        Exception: whatever the actor answered with.
    """
    inbox = ref.actor_inbox
    if not isinstance(inbox, _Mailbox):  # not a dispatched actor: a plain ask
        return await run_in_actor_thread(ref.ask(message, block=False))
    if not ref.is_alive():
        raise pykka.ActorDeadError(f"{ref} not found")
    envelope = _Envelope(message, TrioFuture())
    inbox.deliver_inline(envelope)
    return await envelope.reply_to
