"""Dispatched actors: pykka actors sharing a few worker threads, one message at a time each."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from typing import Any

import pykka
import pytest
import trio
from structlog.testing import capture_logs

from actors import DispatchedActor, Dispatcher, TrioFuture
from actors._dispatched import _Envelope


def make_actor_class(dispatcher: Dispatcher) -> type[DispatchedActor]:
    """A fresh actor class on `dispatcher`, recording what it runs and where."""

    class Recorder(DispatchedActor):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[int] = []
            self.threads: set[str] = set()
            self.inside = 0
            self.overlaps = 0
            self.started_on: str | None = None
            self.stopped = threading.Event()
            self.failures: list[str] = []

        def on_start(self) -> None:
            self.started_on = threading.current_thread().name

        def on_stop(self) -> None:
            self.stopped.set()

        def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
            self.failures.append(str(exception_value))

        def note(self, n: int) -> int:
            self.inside += 1
            if self.inside > 1:
                self.overlaps += 1
            self.threads.add(threading.current_thread().name)
            self.seen.append(n)
            time.sleep(0)  # let another worker in, if one could run this actor
            self.inside -= 1
            return n

        def history(self) -> tuple[list[int], int, set[str], str | None]:
            return self.seen, self.overlaps, self.threads, self.started_on

        def fail(self) -> None:
            raise ValueError("bad message")

        def wait_for(self, event: threading.Event) -> str:
            event.wait(5)  # an unmanaged wait: this worker stays counted as awake
            return "waited"

        def get_reply_of(self, future: pykka.Future[Any]) -> Any:
            return future.get(timeout=5)  # a managed wait: another worker may run meanwhile

        def failures_seen(self) -> list[str]:
            return self.failures

        def defer(self, key: str, calls: list[tuple[str, int]]) -> bool:
            return self._pool.call_before_idle(key, lambda: calls.append((key, len(self.seen))))

        def defer_failing(self) -> bool:
            def broken() -> None:
                raise RuntimeError("hook bug")
            return self._pool.call_before_idle("broken", broken)

    Recorder.dispatcher = dispatcher
    return Recorder


@pytest.fixture
def dispatcher() -> Dispatcher:
    return Dispatcher("test-dispatch", max_threads=3, throughput=4)


def test_messages_to_one_actor_run_in_order_and_never_overlap(dispatcher):
    """Tells from 8 threads to one actor: each thread's order kept, never two at once."""
    ref = make_actor_class(dispatcher).start()
    proxy = ref.proxy()

    def sender(base: int) -> None:
        for i in range(200):
            proxy.note(base + i)

    threads = [threading.Thread(target=sender, args=(k * 1000,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seen, overlaps, _, _ = proxy.history().get(timeout=5)
    assert overlaps == 0
    assert len(seen) == 1600
    for k in range(8):
        mine = [n for n in seen if k * 1000 <= n < (k + 1) * 1000]
        assert mine == list(range(k * 1000, k * 1000 + 200))


def test_many_actors_share_at_most_max_threads_workers(dispatcher):
    """50 actors, each asked 20 times, run on no more than the dispatcher's 3 threads."""
    proxies = [make_actor_class(dispatcher).start().proxy() for _ in range(50)]
    futures = [p.note(i) for i in range(20) for p in proxies]
    assert [f.get(timeout=5) for f in futures] == [i for i in range(20) for _ in proxies]
    names = set().union(*(p.history().get(timeout=5)[2] for p in proxies))
    assert names <= {f"test-dispatch-{n}" for n in (1, 2, 3)}
    assert dispatcher.statistics().threads <= 3


async def test_trio_awaits_a_dispatched_actor():
    """`await proxy.method()` from trio gets the value, and an exception as itself."""
    proxy = make_actor_class(Dispatcher("trio-dispatch")).start().proxy()
    assert await proxy.note(7) == 7
    with pytest.raises(ValueError, match="bad message"):
        await proxy.fail()
    assert await proxy.note(8) == 8  # an ask that failed does not stop the actor


async def test_thirty_two_trio_tasks_asking_together(dispatcher):
    """32 tasks, 50 asks each, to 32 actors all answer, each actor's in order."""
    proxies = [make_actor_class(dispatcher).start().proxy() for _ in range(32)]

    async def asker(proxy: Any) -> None:
        for i in range(50):
            assert await proxy.note(i) == i

    async with trio.open_nursery() as nursery:
        for proxy in proxies:
            nursery.start_soon(asker, proxy)
    for proxy in proxies:
        assert (await proxy.history())[0] == list(range(50))


def test_on_start_runs_on_a_worker_before_the_first_message(dispatcher):
    """on_start ran on one of the dispatcher's workers before any message was handled."""
    proxy = make_actor_class(dispatcher).start().proxy()
    _, _, threads, started_on = proxy.history().get(timeout=5)
    assert started_on is not None
    assert started_on.startswith("test-dispatch-")
    assert threads == set()


def test_a_failed_tell_stops_the_actor_and_calls_on_failure(dispatcher):
    """A tell that raises: on_failure runs, the actor stops, later asks get ActorDeadError."""
    ref = make_actor_class(dispatcher).start()
    failures = ref.proxy().failures.get(timeout=5)  # the actor's own list, kept by reference
    ref.proxy().fail.defer()
    deadline = time.monotonic() + 5
    while ref.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not ref.is_alive()
    assert failures == ["bad message"]
    with pytest.raises(pykka.ActorDeadError):
        ref.proxy().note(1).get(timeout=5)


def test_stop_runs_on_stop_and_answers_what_was_queued_behind_it(dispatcher):
    """Asks queued behind a stop are answered with ActorDeadError, on_stop has run."""
    ref = make_actor_class(dispatcher).start()
    on_stop_ran = ref.proxy().stopped.get(timeout=5)  # the actor's own Event
    gate = threading.Event()
    blocker = ref.proxy().wait_for(gate)  # holds the actor while we queue behind it
    stopped = ref.stop(block=False)
    late = pykka.ActorRef.ask(ref, pykka.messages.ProxyCall(attr_path=("note",), args=(1,),
                                                              kwargs={}), block=False)
    gate.set()
    assert blocker.get(timeout=5) == "waited"
    assert stopped.get(timeout=5) is True
    assert on_stop_ran.is_set()
    with pytest.raises(pykka.ActorDeadError):
        late.get(timeout=5)


def test_a_message_put_after_the_stop_is_answered_not_lost(dispatcher):
    """An envelope that races into a stopped actor's mailbox still gets ActorDeadError."""
    ref = make_actor_class(dispatcher).start()
    ref.stop()
    future: TrioFuture[Any] = TrioFuture()
    ref.actor_inbox.put(_Envelope(pykka.messages.ProxyCall(attr_path=("note",), args=(1,),
                                                            kwargs={}), reply_to=future))
    with pytest.raises(pykka.ActorDeadError):
        future.get(timeout=5)


def test_a_stopped_actor_is_freed_by_reference_counting(dispatcher):
    """Once stopped, an actor no longer referenced is freed at once, without the cyclic
    garbage collector (its inbox no longer holds it); a message that reaches its inbox
    later is still answered with ActorDeadError, and a stop with False."""
    instances: list[weakref.ref[Any]] = []

    class Tracked(make_actor_class(dispatcher)):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            instances.append(weakref.ref(self))

    ref = Tracked.start()
    proxy = ref.proxy()
    assert proxy.note(1).get(timeout=5) == 1
    del proxy
    collecting = gc.isenabled()
    gc.disable()  # only reference counting may free it
    try:
        assert ref.stop() is True
        deadline = time.monotonic() + 5
        while instances[0]() is not None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert instances[0]() is None
    finally:
        if collecting:
            gc.enable()
    late: TrioFuture[Any] = TrioFuture()
    ref.actor_inbox.put(_Envelope(pykka.messages.ProxyCall(attr_path=("note",), args=(2,),
                                                            kwargs={}), reply_to=late))
    with pytest.raises(pykka.ActorDeadError):
        late.get(timeout=5)
    assert ref.stop() is False


def test_a_stopped_actor_still_referenced_answers_through_its_worker(dispatcher):
    """A stopped actor that a proxy still holds answers late messages as before."""
    ref = make_actor_class(dispatcher).start()
    proxy = ref.proxy()
    ref.stop()
    late: TrioFuture[Any] = TrioFuture()
    ref.actor_inbox.put(_Envelope(pykka.messages.ProxyCall(attr_path=("note",), args=(3,),
                                                            kwargs={}), reply_to=late))
    with pytest.raises(pykka.ActorDeadError):
        late.get(timeout=5)
    assert proxy.actor_ref is ref


def test_an_actor_waiting_for_a_reply_lets_other_actors_run():
    """While one worker's actor waits on a future (a managed wait), another worker
    serves the other actors; the first gets its reply when the future is set."""
    dispatcher = Dispatcher("managed", max_threads=2)
    cls = make_actor_class(dispatcher)
    waiter, other = cls.start().proxy(), cls.start().proxy()
    other.note(0).get(timeout=5)
    pending = TrioFuture()
    reply = waiter.get_reply_of(pending)
    deadline = time.monotonic() + 5
    while dispatcher.statistics().awake and time.monotonic() < deadline:
        time.sleep(0.001)  # until the waiter's worker is inside its managed wait
    assert other.note(5).get(timeout=5) == 5  # served by a second worker meanwhile
    pending.set("answer")
    assert reply.get(timeout=5) == "answer"
    assert dispatcher.statistics().threads == 2


def test_one_busy_worker_is_not_joined_by_others_for_queued_work():
    """While the one awake worker is busy, new work waits for it: no second wake-up."""
    dispatcher = Dispatcher("lazy", max_threads=4)
    cls = make_actor_class(dispatcher)
    busy = cls.start().proxy()
    others = [cls.start().proxy() for _ in range(10)]
    for proxy in others:  # let each actor's on_start run, so the pool is quiet
        proxy.note(0).get(timeout=5)
    before = dispatcher.statistics()
    gate = threading.Event()
    held = busy.wait_for(gate)
    while dispatcher.statistics().awake == 0:  # wait until a worker took it
        time.sleep(0.001)
    replies = [p.note(1) for p in others]
    time.sleep(0.05)
    during = dispatcher.statistics()
    assert during.threads == before.threads  # no worker started for the queued work
    assert during.ready == 10
    gate.set()
    assert held.get(timeout=5) == "waited"
    assert [r.get(timeout=5) for r in replies] == [1] * 10


def test_a_chatty_actor_does_not_starve_the_others():
    """An actor with 2,000 queued messages yields after each slice, so another's ask is
    answered long before the backlog is done."""
    dispatcher = Dispatcher("fair", max_threads=1, throughput=8)
    cls = make_actor_class(dispatcher)
    chatty, quiet = cls.start().proxy(), cls.start().proxy()
    quiet.note(0).get(timeout=5)
    backlog = [chatty.note(i) for i in range(2000)]
    assert quiet.note(1).get(timeout=5) == 1
    done_before = sum(f._state != 0 for f in backlog)
    assert done_before < 2000
    assert [f.get(timeout=5) for f in backlog] == list(range(2000))


def test_a_before_idle_hook_runs_once_after_the_queued_work():
    """Hooks registered by ten queued messages run once, after all ten, before the
    worker waits."""
    dispatcher = Dispatcher("hooks", max_threads=1)
    proxy = make_actor_class(dispatcher).start().proxy()
    calls: list[tuple[str, int]] = []
    gate = threading.Event()
    held = proxy.wait_for(gate)  # queue everything behind this one
    registered = [proxy.defer("commit", calls) for _ in range(10)]
    after = [proxy.note(i) for i in range(5)]
    gate.set()
    assert held.get(timeout=5) == "waited"
    assert all(r.get(timeout=5) for r in registered)
    assert [f.get(timeout=5) for f in after] == list(range(5))
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(0.02)
    assert calls == [("commit", 5)]  # one of the ten (the latest), run once, after the notes


def test_a_hook_runs_before_its_worker_blocks():
    """A worker about to wait in a managed block runs its hooks first."""
    dispatcher = Dispatcher("hooks-block", max_threads=2)
    cls = make_actor_class(dispatcher)
    proxy = cls.start().proxy()
    calls: list[tuple[str, int]] = []
    pending = TrioFuture()

    class Deferring(cls):  # registers a hook, then waits in the same message
        def defer_then_wait(self) -> Any:
            self._pool.call_before_idle("k", lambda: calls.append(("k", -1)))
            return pending.get(timeout=5)

    waiter = Deferring.start().proxy()
    reply = waiter.defer_then_wait()
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.001)
    assert calls == [("k", -1)]  # ran while the message was still waiting
    pending.set("go")
    assert reply.get(timeout=5) == "go"
    assert proxy.note(1).get(timeout=5) == 1


def test_hooks_are_refused_off_the_workers(dispatcher):
    """call_before_idle on a thread that is not one of the dispatcher's workers is refused."""
    assert dispatcher.call_before_idle("k", lambda: None) is False


def test_a_busy_worker_runs_its_hooks_every_flush_every_slices():
    """A worker that never runs out of work still runs its hooks after flush_every slices."""
    dispatcher = Dispatcher("hooks-busy", max_threads=1, throughput=1, flush_every=3)
    cls = make_actor_class(dispatcher)
    proxies = [cls.start().proxy() for _ in range(2)]
    for proxy in proxies:
        proxy.note(0).get(timeout=5)
    calls: list[tuple[str, int]] = []
    gate = threading.Event()
    held = proxies[0].wait_for(gate)
    first = proxies[1].defer("a", calls)
    rest = [p.note(i) for i in range(20) for p in proxies]
    gate.set()
    assert held.get(timeout=5) == "waited"
    assert first.get(timeout=5)
    for future in rest:
        future.get(timeout=5)
        if calls:
            break
    assert [key for key, _ in calls] == ["a"]
    assert calls[0][1] < 21  # before proxies[1] had all its notes
    assert not all(f._state != 0 for f in rest)  # it ran while work was still queued


def test_a_failing_hook_is_logged_and_the_worker_goes_on(dispatcher):
    """A hook that raises is logged; the worker keeps serving the actors."""
    proxy = make_actor_class(dispatcher).start().proxy()
    with capture_logs() as logs:
        assert proxy.defer_failing().get(timeout=5)
        deadline = time.monotonic() + 5
        while not logs and time.monotonic() < deadline:
            time.sleep(0.001)
    assert [entry["event"] for entry in logs] == ["dispatcher_hook_failed"]
    assert proxy.note(3).get(timeout=5) == 3


def test_a_dispatcher_needs_a_thread_and_a_throughput():
    """max_threads and throughput below 1 are refused."""
    with pytest.raises(ValueError, match="at least one thread"):
        Dispatcher(max_threads=0)
    with pytest.raises(ValueError, match="throughput"):
        Dispatcher(throughput=0)
    with pytest.raises(ValueError, match="at least one thread"):
        Dispatcher(flush_every=0)
