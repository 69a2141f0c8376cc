"""The group-commit writer behind `SqliteRecorder`: one connection, serialized commits.

Callers encode their events in their own thread and queue an `AppendRequest`. The
writer thread drains every queued request and commits them as one batch: `Batch`
(`eventstore._batch`) checks and places each request in Python, then the whole
batch is written with a few `executemany` calls in one transaction. Futures resolve
only after `COMMIT`. Other threads may commit batches of their own through the same
connection (`commit`, serialized on `lock`), and `try_commit` does so only if it
can start at once: the lock is free and no other process holds the database's
write lock; otherwise it does nothing and says so, and the caller hands the batch
to the writer thread.

If SQLite itself fails mid-batch, the batch is rolled back and each request is
retried alone, so a failure is reported only to the request that causes it.
`PRAGMA data_version` tells the writer when another connection (another process)
committed, and then it forgets its cached heads.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import apsw
import structlog

from eventstore._batch import AppendRequest, Batch, Outcome
from eventstore._errors import StoreBrokenError
from eventstore._pending import resolve_all

__all__ = ["BUSY_TIMEOUT_MS", "STOP", "AppendCounts", "AppendRequest", "GroupWriter"]

log = structlog.get_logger()

STOP = object()
"""Queue sentinel: commit what came before it, then end the writer loop."""

BUSY_TIMEOUT_MS = 10_000  # how long a waiting commit waits for another process's lock
_MAX_BATCH = 1024
_KNOWN_BLOBS_LIMIT = 100_000


class AppendCounts(NamedTuple):
    """What the writer's commits answered, by kind, since it started."""

    appends: int  # requests committed
    events: int  # events those requests carried
    conflicts: int  # requests refused with ConcurrencyError
    failures: int  # requests that failed otherwise at commit


class GroupWriter:
    """Owns the write connection; commits queued appends in groups (see module docstring)."""

    def __init__(
        self,
        conn: apsw.Connection,
        advance: Callable[[int], None],
        announce: Callable[[int], None],
    ) -> None:
        """Write through `conn`; after each commit call `advance(last_position)` then
        `announce(last_position)`, both before any future resolves (so a caller whose
        append returned sees its position, and the listeners have heard of it)."""
        self.conn = conn
        self.advance = advance
        self.announce = announce
        self.heads: dict[str, tuple[int, bytes]] = {}
        self.known_blobs: set[bytes] = set()
        self.next_position = 1
        self.batches = 0
        self.batched_requests = 0
        # Counted here, on the only thread that resolves appends: a done-callback per
        # append to count it cost more than the counting.
        self.counts = AppendCounts(0, 0, 0, 0)
        self._data_version: int | None = None
        self.lock = threading.Lock()

    def run(self, requests: queue.SimpleQueue[object]) -> None:
        """Commit batches from `requests` until `STOP` arrives."""
        stopping = False
        while not stopping:
            batch: list[AppendRequest] = []
            item = requests.get()
            while True:
                if item is STOP:
                    stopping = True
                    break
                batch.append(item)  # type: ignore[arg-type]
                if len(batch) >= _MAX_BATCH:
                    break
                try:
                    item = requests.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self.commit(batch)

    def commit(self, batch: list[AppendRequest]) -> None:
        """Commit `batch` in one transaction and resolve every request's future.

        Any thread may call this; commits are serialized on `lock` (the writer
        thread's own batches, and `SqliteRecorder.commit_deferred` callers'), so the
        connection is never used by two threads at once.
        """
        with self.lock:
            self._commit(batch)

    def try_commit(self, batch: list[AppendRequest]) -> bool:
        """Commit `batch` as `commit` does, if that can start without waiting.

        It waits for nothing: not for `lock` (another thread is committing), and not
        for another connection's write lock on the database (another process is
        writing). Once the transaction has begun it runs as `commit`'s.

        Returns:
            False, with nothing done, if the commit would have had to wait.
        """
        if not self.lock.acquire(blocking=False):
            return False
        try:
            begun = self._begin_nowait()
            if begun is None:
                return False
            self._commit(batch, begun=begun)  # not begun: it fails there, and says so
        finally:
            self.lock.release()
        return True

    def _begin_nowait(self) -> bool | None:
        """`BEGIN IMMEDIATE` with no busy wait: True if begun, None if the database is
        locked, False if SQLite failed otherwise (the commit then reports it)."""
        conn = self.conn
        try:
            conn.setbusytimeout(0)
            try:
                conn.execute("BEGIN IMMEDIATE")
            finally:
                conn.setbusytimeout(BUSY_TIMEOUT_MS)
        except apsw.BusyError:
            return None
        except apsw.Error:
            return False
        return True

    def _commit(self, batch: list[AppendRequest], *, begun: bool = False) -> None:
        try:
            outcomes = self._transaction(batch, begun=begun)
        except apsw.Error as exc:
            self._forget()
            if len(batch) > 1:
                log.warning("eventstore_batch_split", error=str(exc), requests=len(batch))
                for req in batch:
                    self._commit([req])
                return
            log.exception("eventstore_commit_failed", error=str(exc), stream_id=batch[0].stream_id)
            self._count(0, 0, 0, 1)
            batch[0].future.set_exception(StoreBrokenError(f"commit failed: {exc}"))
            return
        except Exception as exc:
            # A bug here must not kill the only writer and leave every caller waiting.
            self._forget()
            log.exception("eventstore_writer_bug", requests=len(batch))
            self._count(0, 0, 0, len(batch))
            for req in batch:
                req.future.set_exception(StoreBrokenError(f"append failed: {exc!r}"))
            return
        self.batches += 1
        self.batched_requests += len(batch)
        self.advance(self.next_position - 1)
        self.announce(self.next_position - 1)
        resolve_all([req.future for req in batch], outcomes)

    def _count(self, appends: int, events: int, conflicts: int, failures: int) -> None:
        old = self.counts
        self.counts = AppendCounts(old.appends + appends, old.events + events,
                                   old.conflicts + conflicts, old.failures + failures)

    def _transaction(self, batch: list[AppendRequest], *, begun: bool = False) -> list[Outcome]:
        conn = self.conn
        try:
            if not begun:
                conn.execute("BEGIN IMMEDIATE")
            self._sync()
            plan = Batch(self, time.time())
            outcomes = plan.place(batch)
            plan.write(conn)
            conn.execute("COMMIT")
        except BaseException:
            if not conn.getautocommit():
                conn.execute("ROLLBACK")
            raise
        # Counted before any caller can see its answer.
        self._count(plan.appends, plan.events, plan.conflicts, plan.failures)
        self.heads.update(plan.heads)
        self.known_blobs.update(plan.blobs)
        if len(self.known_blobs) > _KNOWN_BLOBS_LIMIT:
            self.known_blobs.clear()
        self.next_position = plan.next_position
        return outcomes

    def _sync(self) -> None:
        """Forget cached state if another connection committed since our last batch."""
        version: int = self.conn.execute("PRAGMA data_version").fetchall()[0][0]  # type: ignore[assignment]
        if version == self._data_version:
            return
        self._data_version = version
        self.heads.clear()
        self.known_blobs.clear()
        top: Any = self.conn.execute(
            "SELECT max(coalesce((SELECT max(position) FROM events), 0), coalesce((SELECT seq "
            "FROM sqlite_sequence WHERE name = 'events'), 0))").fetchall()[0][0]
        self.next_position = int(top) + 1

    def _forget(self) -> None:
        self.heads.clear()
        self.known_blobs.clear()
        self._data_version = None

    def head(self, stream_id: str) -> tuple[int, bytes]:
        """The stream's (version, last hash), cached after the first read."""
        head = self.heads.get(stream_id)
        if head is None:
            rows: list[Any] = self.conn.execute(
                "SELECT seq, hash FROM events WHERE stream_id = ? ORDER BY seq DESC LIMIT 1",
                (stream_id,)).fetchall()
            head = (int(rows[0][0]), bytes(rows[0][1])) if rows else (0, b"")
            self.heads[stream_id] = head
        return head

    def lookup_ids(self, event_ids: list[str]) -> list[tuple[str, int, int, float]]:
        """(stream id, seq, position, recorded at) of stored events with these ids."""
        marks = ",".join("?" * len(event_ids))
        rows: list[Any] = self.conn.execute(
            f"SELECT stream_id, seq, position, recorded_at FROM events "
            f"WHERE event_id IN ({marks})", tuple(event_ids)).fetchall()
        return [(str(r[0]), int(r[1]), int(r[2]), float(r[3])) for r in rows]
