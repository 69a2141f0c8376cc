"""Inline asks: a dispatched actor's message run on the asking trio thread when it is idle."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pykka
import pytest
import trio
import trio.testing

from actors import (
    DispatchedActor,
    Dispatcher,
    InlineBlockingError,
    TrioActor,
    TrioFuture,
    ask_inline,
)


@dataclass(frozen=True)
class Note:
    """Record `n` and the thread that ran it; accepted inline."""

    n: int


@dataclass(frozen=True)
class Refused:
    """Like `Note`, but never accepted inline."""

    n: int


@dataclass(frozen=True)
class Wait:
    """Block on a reply that never comes (accepted inline, wrongly)."""


@dataclass(frozen=True)
class Hook:
    """Register a before-idle hook that records where and when it ran."""


@dataclass(frozen=True)
class Hold:
    """Wait (on a worker) until `gate` is set."""

    gate: threading.Event


@dataclass(frozen=True)
class TellSelf:
    """Send `Note(n)` to self with tell, then record `n - 1`."""

    n: int


def make_actor_class(dispatcher: Dispatcher) -> type[DispatchedActor]:
    """A fresh actor class on `dispatcher` that records what ran on which thread."""

    class Inliner(DispatchedActor):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[tuple[int, str]] = []
            self.hooked: list[tuple[str, bool]] = []

        def may_run_inline(self, message: Any) -> bool:
            return not isinstance(message, Refused)

        def on_receive(self, message: Any) -> Any:
            here = threading.current_thread().name
            if isinstance(message, Note | Refused):
                self.seen.append((message.n, here))
                return message.n
            if isinstance(message, Hold):
                message.gate.wait(5)
                return None
            if isinstance(message, Wait):
                return TrioFuture().get(timeout=1)
            if isinstance(message, Hook):
                pool = self._pool
                return pool.call_before_idle(
                    "k", lambda: self.hooked.append((threading.current_thread().name,
                                                     pool.running_inline())))
            if isinstance(message, TellSelf):
                self.actor_ref.tell(Note(message.n))
                self.seen.append((message.n - 1, here))
                return None
            return super().on_receive(message)

        def history(self) -> list[tuple[int, str]]:
            return self.seen

        def hooks_run(self) -> list[tuple[str, bool]]:
            return self.hooked

    Inliner.dispatcher = dispatcher
    return Inliner


@pytest.fixture
def dispatcher() -> Dispatcher:
    return Dispatcher("inline-test", max_threads=2)


async def started(dispatcher: Dispatcher) -> pykka.ActorRef[Any]:
    """An actor that has run `on_start` (on a worker) and is idle again."""
    ref = make_actor_class(dispatcher).start()
    await ref.proxy().history()
    # The reply is set before the worker marks the mailbox idle: wait for that too,
    # or an inline ask made at once may find the actor still scheduled.
    for _ in range(5000):
        if not ref.actor_inbox._scheduled:
            return ref
        await trio.sleep(0.001)
    raise AssertionError("the actor stayed scheduled for 5 s")


async def test_an_idle_actor_runs_the_ask_on_the_trio_thread(dispatcher):
    """The reply comes back and the message ran here, counted as inline."""
    ref = await started(dispatcher)
    before = dispatcher.statistics()
    assert await ask_inline(ref, Note(1)) == 1
    assert await ref.proxy().history() == [(1, threading.current_thread().name)]
    after = dispatcher.statistics()
    assert after.inline == before.inline + 1
    assert after.slices == before.slices + 1  # only the history() ask used a worker


async def test_a_message_refused_inline_runs_on_a_worker(dispatcher):
    """`may_run_inline` False: an ordinary ask, answered from a worker."""
    ref = await started(dispatcher)
    assert await ask_inline(ref, Refused(2)) == 2
    [(n, thread)] = await ref.proxy().history()
    assert (n, thread.startswith("inline-test-")) == (2, True)
    assert dispatcher.statistics().inline == 0


async def test_an_actor_with_work_queued_takes_the_ask_after_it(dispatcher):
    """A busy actor is not run inline: the ask waits its turn, then a worker runs it."""
    ref = await started(dispatcher)
    gate = threading.Event()
    ref.tell(Hold(gate))  # keeps the actor on a worker until the gate opens
    ref.tell(Note(0))
    results: list[int] = []

    async def ask() -> None:
        results.append(await ask_inline(ref, Note(1)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        assert results == []
        gate.set()
    assert results == [1]
    seen = await ref.proxy().history()
    assert [n for n, _ in seen] == [0, 1]
    assert all(thread.startswith("inline-test-") for _, thread in seen)
    assert dispatcher.statistics().inline == 0


async def test_an_inline_run_that_would_wait_raises_inline_blocking_error(dispatcher):
    """Waiting on trio's thread is refused with an error, and the actor lives on."""
    ref = await started(dispatcher)
    with pytest.raises(InlineBlockingError):
        await ask_inline(ref, Wait())
    assert await ask_inline(ref, Note(3)) == 3


async def test_hooks_of_an_inline_run_run_right_after_it_on_the_same_thread(dispatcher):
    """A before-idle hook registered inline has run, here, when the reply arrives."""
    ref = await started(dispatcher)
    assert await ask_inline(ref, Hook()) is True
    assert await ref.proxy().hooks_run() == [(threading.current_thread().name, True)]
    assert dispatcher.running_inline() is False


async def test_a_message_sent_during_an_inline_run_goes_to_a_worker_after_it(dispatcher):
    """A tell that arrives mid-run is queued and then run by a worker, in order."""
    ref = await started(dispatcher)
    await ask_inline(ref, TellSelf(5))
    for _ in range(500):
        seen = await ref.proxy().history()
        if len(seen) == 2:
            break
        await trio.sleep(0.01)
    (first, here), (second, there) = seen
    assert (first, second) == (4, 5)
    assert here == threading.current_thread().name
    assert there.startswith("inline-test-")


async def test_an_inline_ask_to_a_stopped_actor_is_actor_dead(dispatcher):
    """The same error as any ask to a stopped actor."""
    ref = await started(dispatcher)
    ref.stop()
    with pytest.raises(pykka.ActorDeadError):
        await ask_inline(ref, Note(1))


async def test_an_inline_ask_to_a_threading_actor_is_a_plain_ask():
    """An actor with its own thread has no inline path: its thread answers."""

    class Threaded(TrioActor):
        def on_receive(self, message: Any) -> Any:
            return threading.current_thread().name

    ref = Threaded.start()
    try:
        assert await ask_inline(ref, Note(1)) != threading.current_thread().name
    finally:
        ref.stop()
