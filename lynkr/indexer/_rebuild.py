"""One rebuild of the catalogue: crawl, compare by content hash, parse what changed, store.

A file whose size and mtime match the catalogue is taken as unchanged without reading
it (as git does; `IndexerSettings.verify_content` hashes it anyway); otherwise it is read
and hashed, and only a new hash sends it to the parser. Big batches are parsed in
worker processes next to this one (tree-sitter holds the GIL while it parses, so
threads do not help: measured in docs/benchmark-history.md). Everything lands in one
transaction, so readers see the old catalogue until the new one is complete; into an
empty catalogue that transaction is a bulk load (indexes built after the rows).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from lynkr.indexer._catalogue import Catalogue
from lynkr.indexer._crawl import FileSkipped, list_files, load_file, stat_file
from lynkr.indexer._extract import extract_batch, from_wire
from lynkr.indexer._languages import language_for
from lynkr.indexer._model import Extraction, Problem, RebuildProgress, WireExtraction
from lynkr.indexer._settings import IndexerSettings

__all__ = ["ChangeSet", "apply_changes", "plan_changes"]

log = structlog.get_logger()

ProgressCallback = Callable[[RebuildProgress], None]
# Spawning a parser process costs ~0.5 s of CPU (imports) and ~1 s before it parses;
# this process parses meanwhile, so the pool only has to pay for its CPU: below this
# much changed source (~2 s of parsing at ~2 MB/s) it would not.
_POOL_MIN_BYTES = 4_000_000
_BATCH_BYTES = 512 * 1024
_EXCLUDED_NAMES = frozenset({"CLAUDE.md"})  # the file we write is not part of the catalogue


@dataclass(frozen=True, slots=True)
class Job:
    """A file whose content changed: what to parse and where it goes."""

    path: str
    language: str
    size: int
    mtime_ns: int
    digest: str
    data: bytes
    old_id: int | None


@dataclass(slots=True)
class ChangeSet:
    """What the crawl found compared with the catalogue."""

    total: int = 0
    jobs: list[Job] = field(default_factory=list)
    touched: list[tuple[int, int]] = field(default_factory=list)  # (file id, new mtime)
    deleted: list[int] = field(default_factory=list)
    unchanged: int = 0
    problems: list[Problem] = field(default_factory=list)
    done: int = 0
    cold: bool = False  # the catalogue was empty: a bulk load (see `Catalogue.bulk`)

    def tick(self, progress: ProgressCallback | None, path: str) -> None:
        """Count one file as done and report it."""
        self.done += 1
        if progress is not None:
            progress(RebuildProgress(self.done, self.total, path))


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _own_folder(root: Path, catalogue: Catalogue) -> str | None:
    """The catalogue's folder relative to `root` ("data/" by default settings), if inside."""
    folder = Path(os.path.realpath(catalogue.path.parent))
    if folder == root or not folder.is_relative_to(root):
        return None
    return folder.relative_to(root).as_posix() + "/"


def plan_changes(root: Path, catalogue: Catalogue, settings: IndexerSettings,
                 progress: ProgressCallback | None) -> ChangeSet:
    """Crawl `root` and sort every file into unchanged, touched, to-parse or gone."""
    listing = list_files(root, settings)
    own = _own_folder(root, catalogue)
    paths = [p for p in listing.paths if p not in _EXCLUDED_NAMES
             and not (own and p.startswith(own))]
    states = catalogue.file_states()
    changes = ChangeSet(total=len(paths), cold=not states)
    seen: set[str] = set()
    for rel in paths:
        state = states.get(rel)
        try:
            st = stat_file(root, rel, settings.max_file_bytes)
            if (state is not None and not settings.verify_content
                    and (state[1], state[2]) == (st.st_size, st.st_mtime_ns)):
                seen.add(rel)
                changes.unchanged += 1
                changes.tick(progress, rel)
                continue
            data = load_file(root, rel, settings.max_file_bytes)
        except FileSkipped as skip:
            changes.problems.append(Problem(rel, skip.reason))
            changes.tick(progress, rel)
            continue
        seen.add(rel)
        digest = _digest(data)
        if state is not None and state[3] == digest:
            changes.touched.append((state[0], st.st_mtime_ns))
            changes.unchanged += 1
            changes.tick(progress, rel)
            continue
        changes.jobs.append(Job(rel, language_for(rel), len(data), st.st_mtime_ns, digest, data,
                                None if state is None else state[0]))
    changes.deleted = [state[0] for rel, state in states.items() if rel not in seen]
    return changes


def _batches(jobs: list[Job]) -> Iterator[list[Job]]:
    batch: list[Job] = []
    size = 0
    for job in jobs:
        batch.append(job)
        size += job.size
        if size >= _BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _parse_batch(batch: list[Job]) -> list[Extraction]:
    return [from_wire(w) for w in extract_batch([(j.language, j.data) for j in batch])]


def _parse_local(jobs: list[Job]) -> Iterator[tuple[Job, Extraction]]:
    for batch in _batches(jobs):
        yield from zip(batch, _parse_batch(batch), strict=True)


def _pool_result(future: Future[list[WireExtraction]], batch: list[Job]) -> list[Extraction]:
    """A worker's batch, or the same batch parsed here when the pool broke."""
    try:
        return [from_wire(wire) for wire in future.result()]
    except BrokenProcessPool as exc:
        log.warning("indexer_worker_broken", files=len(batch), error=str(exc))
        return _parse_batch(batch)


def _parse_pool(jobs: list[Job], workers: int) -> Iterator[tuple[Job, Extraction]]:
    """Parse with this process and `workers - 1` spawned ones, sharing batches as they go.

    This process is one of the parsers: it parses the next batch itself whenever no
    worker result is waiting, so it never idles while the workers start (spawning
    costs ~1 s of imports) and writes their results between its own batches. At the
    end it takes back queued batches no worker has started. A broken pool's batches
    are parsed here too, and so is everything after it broke.
    """
    queue = deque(_batches(jobs))
    context = multiprocessing.get_context("spawn")  # never fork a process that has threads
    pool = ProcessPoolExecutor(workers - 1, mp_context=context)
    pending: dict[Future[list[WireExtraction]], list[Job]] = {}
    draining = False
    try:
        while queue or pending:
            while queue and not draining and len(pending) < 2 * (workers - 1):
                try:
                    future = pool.submit(extract_batch, [(j.language, j.data) for j in queue[-1]])
                except BrokenProcessPool as exc:  # a worker died: no more submissions
                    log.warning("indexer_pool_broken", batches_left=len(queue), error=str(exc))
                    draining = True
                    break
                pending[future] = queue.pop()
            ready = [future for future in pending if future.done()]
            for future in ready:
                batch = pending.pop(future)
                yield from zip(batch, _pool_result(future, batch), strict=True)
            if ready:
                continue
            if not queue:  # only the workers' work left: take back what has not started
                draining = True
                queue.extend(pending.pop(f) for f in list(pending) if f.cancel())
            if queue:
                batch = queue.popleft()
                yield from zip(batch, _parse_batch(batch), strict=True)
            elif pending:
                wait(pending, return_when=FIRST_COMPLETED)
    finally:
        # A cancelled rebuild (the actor stopping) must not wait for queued batches.
        pool.shutdown(wait=True, cancel_futures=True)


def apply_changes(catalogue: Catalogue, changes: ChangeSet, workers: int,
                  progress: ProgressCallback | None) -> None:
    """Parse the changed files and write every change in one transaction."""
    use_pool = workers > 1 and sum(job.size for job in changes.jobs) >= _POOL_MIN_BYTES
    parsed = _parse_pool(changes.jobs, workers) if use_pool else _parse_local(changes.jobs)
    started = time.perf_counter()
    with catalogue.bulk() if changes.cold and changes.jobs else catalogue.write():
        for file_id in changes.deleted:
            catalogue.delete_file(file_id)
        for file_id, mtime_ns in changes.touched:
            catalogue.touch_file(file_id, mtime_ns)
        for job, found in parsed:
            catalogue.store_file(job.path, job.language, job.size, job.mtime_ns, job.digest,
                                 found, job.old_id)
            if found.problem is not None:
                changes.problems.append(Problem(job.path, found.problem))
            changes.tick(progress, job.path)
    log.debug("indexer_changes_applied", parsed=len(changes.jobs), cold=changes.cold,
              seconds=round(time.perf_counter() - started, 3))
