"""`_parse_pool`: this process and spawned workers share a big rebuild's batches."""

from __future__ import annotations

import os
import time
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import apsw

from lynkr.indexer import Indexer, IndexerSettings, _rebuild
from lynkr.indexer._extract import extract_rows
from lynkr.indexer._model import Extraction
from lynkr.indexer._rebuild import Job

from .conftest import SAMPLE, git_init, write_tree


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


_DUMP = {
    "files": "SELECT path, language, size, hash, parser, problem FROM files ORDER BY path",
    "symbols": "SELECT f.path, s.name, s.kind, s.start_line, s.start_col, s.end_line, s.end_col,"
               " s.parent, s.signature FROM symbols s JOIN files f ON f.id = s.file_id"
               " ORDER BY f.path, s.id",
    "refs": "SELECT f.path, r.name, r.line, r.col, r.enclosing FROM refs r"
            " JOIN files f ON f.id = r.file_id ORDER BY f.path, r.id",
    "imports": "SELECT f.path, i.module, i.line FROM imports i JOIN files f ON f.id = i.file_id"
               " ORDER BY f.path, i.line, i.module",
}


def _catalogue_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = apsw.Connection(str(path))
    try:
        return {table: conn.execute(sql).fetchall() for table, sql in _DUMP.items()}
    finally:
        conn.close()


def test_the_pool_builds_the_same_catalogue_as_one_process(tmp_path, monkeypatch):
    """Rows, problems, outlines and search ranking match between in-process and pool rebuilds."""
    monkeypatch.setattr(_rebuild, "_POOL_MIN_BYTES", 1)
    monkeypatch.setattr(_rebuild, "_BATCH_BYTES", 256)  # many batches, shared both ways
    root = tmp_path / "mixed"
    write_tree(root, {**SAMPLE,
                      "bad.py": "def broken(:\n    pass\n\ndef fine():\n    pass\n",
                      "blob.py": b"\x00\x01\x02binary\x00" * 50,
                      **{f"pkg/m{i}.py": f"import os\n\nclass Help{i}:\n    def run(self):\n"
                                         f"        return helper{i + 1}(os.sep)\n\n"
                                         f"def helper{i}(x):\n    return Help{i}().run()\n"
                         for i in range(40)}})
    os.symlink("loop_b.py", root / "loop_a.py")
    os.symlink("loop_a.py", root / "loop_b.py")
    git_init(root)
    found = {}
    for workers in (1, 2):
        indexer = Indexer(root, tmp_path / f"data{workers}" / "index.db",
                          IndexerSettings(workers=workers, claude_md="off"))
        report = indexer.rebuild()
        found[workers] = (
            _catalogue_rows(indexer.catalogue.path),
            sorted((p.path, p.reason) for p in report.problems),
            indexer.outline("pkg/m7.py"), indexer.outline("lib/util.py"),
            indexer.search("Help", mode="fuzzy", limit=50), indexer.search("helper1"),
            indexer.references("run"))
        indexer.close()
    assert all(found[1][0][table] for table in ("symbols", "refs", "imports"))
    assert ("bad.py", "syntax error near line 1") in found[1][1]
    assert found[2] == found[1]
