"""`_parse_pool`: this process and spawned workers share a big rebuild's batches."""

from __future__ import annotations

import time
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

from lynkr.indexer import _rebuild
from lynkr.indexer._extract import extract_rows
from lynkr.indexer._model import Extraction
from lynkr.indexer._rebuild import Job


def _jobs(count: int) -> list[Job]:
    sources = [f"def f{i}():\n    return g{i}(h)\n".encode() for i in range(count)]
    return [Job(f"m{i}.py", "python", len(data), 1, "h", data, None)
            for i, data in enumerate(sources)]


def _rows(found: Extraction) -> tuple[object, ...]:
    return tuple(found)


def test_every_job_comes_back_once_parsed_like_in_process(monkeypatch):
    """Each file is parsed exactly once, by someone, with the in-process result."""
    monkeypatch.setattr(_rebuild, "_BATCH_BYTES", 1)  # one file per batch
    jobs = _jobs(12)
    got = {job.path: found for job, found in _rebuild._parse_pool(jobs, 2)}
    assert sorted(got) == sorted(job.path for job in jobs)
    for job in jobs:
        assert _rows(got[job.path]) == extract_rows(job.language, job.data)


def test_this_process_and_the_worker_both_parse(monkeypatch):
    """The parent parses batches while the worker starts, and the worker takes some too."""
    monkeypatch.setattr(_rebuild, "_BATCH_BYTES", 1)
    real = _rebuild._parse_batch
    local: list[int] = []

    def slow_local(batch: list[Job]) -> list[Extraction]:
        local.append(len(batch))
        time.sleep(0.15)  # a big batch, as seen by the worker racing it
        return real(batch)

    monkeypatch.setattr(_rebuild, "_parse_batch", slow_local)
    jobs = _jobs(24)
    done = [job.path for job, _ in _rebuild._parse_pool(jobs, 2)]
    assert sorted(done) == sorted(job.path for job in jobs)
    assert 1 <= len(local) < len(jobs)


def test_a_broken_pools_batch_is_parsed_here():
    """When the worker died, its batch is parsed in this process instead."""
    jobs = _jobs(2)
    future: Future[list[object]] = Future()
    future.set_exception(BrokenProcessPool("worker died"))
    found = _rebuild._pool_result(future, jobs)  # type: ignore[arg-type]
    assert [_rows(f) for f in found] == [extract_rows("python", j.data) for j in jobs]


class _DyingPool:
    """A process pool whose only worker dies on its first batch, as a crash would leave it."""

    def __init__(self, *_args: object, **_kwargs: object) -> None:
        self.broken = False

    def submit(self, *_args: object) -> Future[list[object]]:
        if self.broken:
            raise BrokenProcessPool("a child process terminated abruptly")
        self.broken = True
        future: Future[list[object]] = Future()
        future.set_exception(BrokenProcessPool("worker died"))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to stop."""


def test_after_the_pool_breaks_every_batch_is_parsed_here(monkeypatch):
    """A dead worker breaks the pool; the rebuild parses the remaining batches itself."""
    monkeypatch.setattr(_rebuild, "_BATCH_BYTES", 1)
    monkeypatch.setattr(_rebuild, "ProcessPoolExecutor", _DyingPool)
    jobs = _jobs(6)
    got = {job.path: found for job, found in _rebuild._parse_pool(jobs, 2)}
    assert sorted(got) == sorted(job.path for job in jobs)
    for job in jobs:
        assert _rows(got[job.path]) == extract_rows(job.language, job.data)
