"""The bridge: trio awaits actor replies without blocking its thread or holding a worker."""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import time

import pykka
import pytest
import trio
import trio.testing

import actors._trio as trio_bridge
from actors import TrioActor, TrioFuture, run_in_actor_thread


class Sleeper(TrioActor):
    def nap(self, seconds: float) -> str:
        time.sleep(seconds)
        return "rested"

    def fail(self) -> None:
        raise ValueError("bad input")

    def thread_name(self) -> str:
        return threading.current_thread().name


class PlainActor(pykka.ThreadingActor):
    def answer(self) -> int:
        return 42


async def test_awaiting_an_actor_does_not_block_the_trio_thread():
    """Other trio tasks keep running while an actor takes 200 ms to answer."""
    proxy = Sleeper.start().proxy()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await trio.sleep(0.01)
            ticks += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        assert await proxy.nap(0.2) == "rested"
        nursery.cancel_scope.cancel()
    assert ticks >= 5  # blocked, it would be 0 or 1


async def test_awaiting_holds_no_worker_thread():
    """While trio awaits an actor, no trio worker thread is busy on its behalf."""
    proxy = Sleeper.start().proxy()
    before = {t.name for t in threading.enumerate()}
    future = proxy.nap(0.1)
    await trio.sleep(0.05)
    during = {t.name for t in threading.enumerate()} - before
    assert await future == "rested"
    assert not [name for name in during if "trio" in name.lower()]


async def test_actor_exception_travels_to_the_awaiting_task():
    """An exception raised in the actor is raised by the `await`."""
    proxy = Sleeper.start().proxy()
    with pytest.raises(ValueError, match="bad input"):
        await proxy.fail()


async def test_cancelling_the_awaiting_task_is_clean():
    """A cancelled await leaves the actor working; the late reply harms nobody."""
    proxy = Sleeper.start().proxy()
    with trio.move_on_after(0.02) as scope:
        await proxy.nap(0.1)
    assert scope.cancelled_caught
    await trio.sleep(0.15)  # the reply lands after the cancellation
    assert await proxy.nap(0) == "rested"


def test_future_created_outside_trio_works_with_get():
    """Asked from a plain thread, a TrioFuture is an ordinary future with `.get()`."""
    proxy = Sleeper.start().proxy()
    future = proxy.nap(0)
    assert isinstance(future, TrioFuture)
    assert future.get(timeout=5) == "rested"


async def test_awaiting_a_future_created_outside_trio_is_a_clear_error():
    """A TrioFuture from a thread cannot be awaited; the error says to use `.get()`."""
    proxy = Sleeper.start().proxy()
    future = await trio.to_thread.run_sync(proxy.nap, 0)
    with pytest.raises(RuntimeError, match=r"call \.get\(\)"):
        await future


def test_reply_after_the_trio_run_ended_is_harmless():
    """A reply to a future whose trio run has finished is kept for `.get()`, no error."""
    proxy = Sleeper.start().proxy()
    futures = []

    async def main() -> None:
        futures.append(proxy.nap(0.05))

    trio.run(main)
    assert futures[0].get(timeout=5) == "rested"


async def test_stop_future_is_awaitable():
    """`ref.stop(block=False)` (a get-hook future) can be awaited from trio."""
    ref = Sleeper.start()
    assert await ref.stop(block=False) is True
    assert not ref.is_alive()


async def test_run_in_actor_thread_awaits_foreign_futures():
    """A plain pykka future is awaited through a worker thread."""
    proxy = PlainActor.start().proxy()
    assert await run_in_actor_thread(proxy.answer()) == 42


async def test_run_in_actor_thread_awaits_trio_futures_directly():
    """A TrioFuture goes through the token path, without a worker thread."""
    proxy = Sleeper.start().proxy()
    assert await run_in_actor_thread(proxy.thread_name()) != threading.current_thread().name


class Deferring(TrioActor):
    """Replies later: returns a concurrent future that a timer thread completes."""

    def later(self, value: object, fail: bool = False) -> concurrent.futures.Future[object]:
        pending: concurrent.futures.Future[object] = concurrent.futures.Future()

        def finish() -> None:
            if fail:
                pending.set_exception(KeyError(value))
            else:
                pending.set_result(value)

        threading.Timer(0.05, finish).start()
        return pending

    def ping(self) -> str:
        return "pong"


async def test_deferred_reply_resolves_when_the_inner_future_completes():
    """An actor returning a concurrent future answers with its result, later."""
    proxy = Deferring.start().proxy()
    reply = proxy.later("done")
    assert await proxy.ping() == "pong"  # the actor was free while the reply was pending
    assert await reply == "done"


async def test_deferred_reply_carries_the_inner_exception():
    """The inner future's exception is raised by the await."""
    proxy = Deferring.start().proxy()
    with pytest.raises(KeyError, match="lost"):
        await proxy.later("lost", fail=True)


def test_deferred_reply_works_with_get_from_threads():
    """Outside trio, `.get()` waits for the deferred reply."""
    proxy = Deferring.start().proxy()
    assert proxy.later(7).get(timeout=5) == 7


async def test_two_tasks_awaiting_one_future_both_get_the_value():
    """Every task parked on a future is woken with its value."""
    future: TrioFuture[int] = TrioFuture()
    got = []

    async def waiter() -> None:
        got.append(await future)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        await trio.to_thread.run_sync(future.set, 5)
    assert got == [5, 5]


async def test_a_cancelled_waiter_is_dropped_and_the_others_still_woken():
    """Cancelling one awaiting task leaves the future usable for the rest."""
    future: TrioFuture[str] = TrioFuture()
    got = []

    async def waiter() -> None:
        got.append(await future)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        with trio.move_on_after(0.01) as scope:
            await future  # cancelled while parked: removed from the waiters
        assert scope.cancelled_caught
        await trio.to_thread.run_sync(future.set, "late")
    assert got == ["late"]
    assert await future == "late"


def test_get_from_a_thread_times_out_and_then_still_gets_the_value():
    """`get(timeout=)` raises pykka.Timeout; a later `get()` sees the value."""
    future: TrioFuture[int] = TrioFuture()
    with pytest.raises(pykka.Timeout):
        future.get(timeout=0.01)
    threading.Timer(0.02, future.set, (9,)).start()
    assert future.get(timeout=5) == 9


def test_a_future_is_resolved_once():
    """A second `set`, `set_exception` or `set_get_hook` raises queue.Full, as in pykka."""
    future: TrioFuture[int] = TrioFuture()
    future.set(1)
    with pytest.raises(queue.Full):
        future.set(2)
    with pytest.raises(queue.Full):
        future.set_exception((ValueError, ValueError("x"), None))
    with pytest.raises(queue.Full):
        future.set_get_hook(lambda timeout: 3)
    assert future.get() == 1


async def test_replies_that_land_together_share_trio_wakeups(monkeypatch):
    """50 replies set back to back from one thread wake trio far fewer than 50 times."""
    deliveries = 0
    original = trio_bridge._Wakeups._deliver

    def counting(self) -> None:
        nonlocal deliveries
        deliveries += 1
        original(self)

    monkeypatch.setattr(trio_bridge._Wakeups, "_deliver", counting)
    futures: list[TrioFuture[int]] = [TrioFuture() for _ in range(50)]
    got = []

    async def waiter(future: TrioFuture[int]) -> None:
        got.append(await future)

    def resolve_all() -> None:
        for n, future in enumerate(futures):
            future.set(n)

    async with trio.open_nursery() as nursery:
        for future in futures:
            nursery.start_soon(waiter, future)
        await trio.testing.wait_all_tasks_blocked()
        await trio.to_thread.run_sync(resolve_all)
    assert sorted(got) == list(range(50))
    assert deliveries < 50


async def test_a_reply_set_before_the_await_costs_no_wakeup(monkeypatch):
    """Nobody parked on the future when it resolves: no run_sync_soon at all."""
    posts = []
    monkeypatch.setattr(trio_bridge._Wakeups, "post", lambda self, f: posts.append(f))
    future: TrioFuture[int] = TrioFuture()
    await trio.to_thread.run_sync(future.set, 3)
    assert await future == 3
    assert posts == []


def test_actor_inbox_is_a_simple_queue():
    """TrioActor's inbox is the C SimpleQueue (a Queue costs a lock and three Conditions)."""
    ref = Sleeper.start()
    try:
        assert isinstance(ref.actor_inbox, queue.SimpleQueue)
    finally:
        ref.stop()
