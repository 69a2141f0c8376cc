"""`PendingAppend`: the light future of a queued append."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading

import pytest

from eventstore import ConcurrencyError, PendingAppend
from eventstore._pending import resolve_all
from eventstore._recorder import AppendResult, append_result


def test_result_waits_for_set_result_from_another_thread() -> None:
    """A waiter blocks until another thread resolves the append."""
    pending: PendingAppend[int] = PendingAppend()
    timer = threading.Timer(0.02, pending.set_result, args=(7,))
    timer.start()
    assert pending.result(timeout=5) == 7
    assert pending.done()
    timer.join()


def test_every_waiter_is_woken() -> None:
    """Several threads waiting on one append all get the result."""
    pending: PendingAppend[str] = PendingAppend()
    got: list[str] = []
    waiters = [threading.Thread(target=lambda: got.append(pending.result(5))) for _ in range(4)]
    for w in waiters:
        w.start()
    pending.set_result("ok")
    for w in waiters:
        w.join()
    assert got == ["ok"] * 4


def test_exception_is_raised_by_result_and_returned_by_exception() -> None:
    """A refused append raises its error from `result` and returns it from `exception`."""
    pending: PendingAppend[int] = PendingAppend()
    error = ConcurrencyError("s", 0, 1)
    pending.set_exception(error)
    assert pending.exception() is error
    with pytest.raises(ConcurrencyError):
        pending.result()


def test_result_times_out() -> None:
    """An unresolved append raises TimeoutError after the timeout."""
    with pytest.raises(TimeoutError):
        PendingAppend().result(timeout=0.01)


def test_callbacks_run_once_resolved_or_at_once_if_done() -> None:
    """Callbacks added before resolution run on resolution; later ones run immediately."""
    pending: PendingAppend[int] = PendingAppend()
    seen: list[int] = []
    pending.add_done_callback(lambda p: seen.append(p.result()))
    pending.set_result(3)
    pending.add_done_callback(lambda p: seen.append(p.result() + 1))
    assert seen == [3, 4]


def test_a_failing_callback_does_not_stop_the_others() -> None:
    """A callback's exception is logged; the next callback still runs."""
    pending: PendingAppend[int] = PendingAppend()
    seen: list[int] = []
    pending.add_done_callback(lambda p: 1 / 0)
    pending.add_done_callback(lambda p: seen.append(1))
    pending.set_result(0)
    assert seen == [1]


def test_resolving_twice_is_refused() -> None:
    """An append resolves exactly once."""
    pending: PendingAppend[int] = PendingAppend()
    pending.set_result(1)
    with pytest.raises(RuntimeError):
        pending.set_result(2)


def test_it_is_a_future_that_cannot_be_cancelled() -> None:
    """Code checking for a `concurrent.futures.Future` accepts it; cancel is refused."""
    pending: PendingAppend[int] = PendingAppend()
    assert isinstance(pending, concurrent.futures.Future)
    assert pending.cancel() is False
    assert not pending.cancelled()
    assert pending.running()
    assert "pending" in repr(pending)


def test_resolve_all_sets_each_outcome_wakes_waiters_and_runs_callbacks_in_order() -> None:
    """A batch: results and errors land on their own futures; an early waiter wakes;
    callbacks run in the batch's order."""
    futures: list[PendingAppend[int]] = [PendingAppend() for _ in range(3)]
    error = ConcurrencyError("s", 0, 1)
    order: list[int] = []
    futures[2].add_done_callback(lambda f: order.append(2))
    futures[0].add_done_callback(lambda f: order.append(0))
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(futures[0].result(5)))
    waiter.start()
    while futures[0]._latch is None:  # the waiter has parked on its latch
        threading.Event().wait(0.001)
    resolve_all(futures, [10, error, 12])
    waiter.join()
    assert got == [10]
    assert order == [0, 2]
    assert futures[1].exception() is error
    assert futures[2].result() == 12


def test_resolve_all_refuses_a_batch_holding_a_resolved_future() -> None:
    """No future of the batch is touched when one was already resolved."""
    first: PendingAppend[int] = PendingAppend()
    done: PendingAppend[int] = PendingAppend()
    done.set_result(1)
    with pytest.raises(RuntimeError):
        resolve_all([first, done], [5, 6])
    assert not first.done()


def test_a_future_read_after_resolution_never_makes_a_latch() -> None:
    """Only a thread waiting before the commit makes the lock it blocks on."""
    pending: PendingAppend[int] = PendingAppend()
    pending.set_result(3)
    assert pending.result() == 3
    assert pending._latch is None


def test_append_result_equals_the_dataclass_built_normally() -> None:
    """The writer's fast `AppendResult` is equal, hashes equal and stays frozen."""
    fast = append_result("s", 3, 10, 12, 1.5)
    slow = AppendResult("s", 3, 10, 12, 1.5)
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert repr(fast) == repr(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.version = 4  # type: ignore[misc]
