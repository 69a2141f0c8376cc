"""The group-commit writer behind `PostgresRecorder`: one connection, positions in order.

As with SQLite (`eventstore._writer`), callers encode their events in their own
thread and queue an `AppendRequest`; one writer thread drains the queue and commits
everything queued as one transaction, placed by the same `Batch` (checks, sequence
numbers, the hash chain), so both stores write byte-identical rows.

Global order without gaps for readers: each transaction first updates the single
`log_head` row, which holds that row's lock until the transaction ends. Every
writer of every process does so, so the positions of one commit are assigned only
after the previous commit is visible, and a reader that has seen position N has
seen every position below it: a follower reading "after N" never skips an event
that commits late. The same lock makes this process the only writer while it holds
it, so the stream heads it read are current; a head cached from an earlier batch is
kept only if no other process committed since (the counter says so).

The (stream_id, seq) and event-id unique constraints stay the final word: a batch
that breaks one (a writer that did not take the lock) is rolled back and retried
request by request, and the request that still breaks it gets `ConcurrencyError`.
After each commit the writer NOTIFYs the log's channel with the last position.
"""

from __future__ import annotations

import queue
import time
import zlib
from collections.abc import Callable
from typing import Any

import psycopg
import structlog

from eventstore._batch import AppendRequest, Batch, Outcome
from eventstore._errors import ConcurrencyError, StoreBrokenError
from eventstore._pending import resolve_all
from eventstore._writer import STOP, AppendCounts

__all__ = ["PgWriter"]

log = structlog.get_logger()

_MAX_BATCH = 1024
_COMPRESS_OVER = 1024  # as the SQLite store: blobs are stored the same way in both
_KNOWN_BLOBS_LIMIT = 100_000
_INSERT_EVENT = (
    "INSERT INTO events (position, stream_id, seq, type, version, recorded_at, payload, "
    "metadata, hash, event_id) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
)
_UPSERT_HEAD = (
    "INSERT INTO streams VALUES (%s,%s,%s) ON CONFLICT (stream_id) DO UPDATE "
    "SET version = excluded.version, last_hash = excluded.last_hash"
)
Connect = Callable[[], psycopg.Connection[Any]]


class PgWriter:
    """Owns the write connection; commits queued appends in groups (module docstring)."""

    def __init__(self, connect: Connect, channel: str,
                 advance: Callable[[int], None], announce: Callable[[int], None]) -> None:
        """Write through connections made by `connect` (a new one after a failure);
        after each commit call `advance(last)` then `announce(last)`, before any
        future resolves."""
        self._connect = connect
        self._conn: psycopg.Connection[Any] | None = None
        self.channel = channel
        self.advance = advance
        self.announce = announce
        self.heads: dict[str, tuple[int, bytes]] = {}
        self.known_blobs: set[bytes] = set()
        self.next_position = 1
        self.batches = 0
        self.counts = AppendCounts(0, 0, 0, 0)

    def run(self, requests: queue.SimpleQueue[object]) -> None:
        """Commit batches from `requests` until `STOP` arrives, then close."""
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
        if self._conn is not None:
            self._conn.close()

    def commit(self, batch: list[AppendRequest]) -> None:
        """Commit `batch` in one transaction and resolve every request's future."""
        try:
            outcomes = self._transaction(batch)
        except psycopg.errors.IntegrityError as exc:
            self._forget()
            if len(batch) > 1:
                log.warning("eventstore_batch_split", error=str(exc), requests=len(batch))
                for req in batch:
                    self.commit([req])
                return
            req = batch[0]
            self._count(0, 0, 1, 0)
            req.future.set_exception(ConcurrencyError(req.stream_id, req.expected_version,
                                                      self._version_now(req.stream_id)))
            return
        except psycopg.Error as exc:
            self._forget()
            log.exception("eventstore_commit_failed", error=str(exc), requests=len(batch))
            self._count(0, 0, 0, len(batch))
            for req in batch:
                req.future.set_exception(StoreBrokenError(f"commit failed: {exc}"))
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
        self.advance(self.next_position - 1)
        self.announce(self.next_position - 1)
        resolve_all([req.future for req in batch], outcomes)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    def _transaction(self, batch: list[AppendRequest]) -> list[Outcome]:
        conn = self._connection()
        with conn.transaction():
            # The row lock taken here orders this commit after every earlier one.
            row = conn.execute("UPDATE log_head SET position = position WHERE id = 1 "
                               "RETURNING position").fetchone()
            top = int(row[0]) if row else 0
            if top != self.next_position - 1:  # another process committed since
                self.heads.clear()
                self.known_blobs.clear()
                self.next_position = top + 1
            self._load_heads(conn, {req.stream_id for req in batch})
            plan = Batch(self, time.time())
            outcomes = plan.place(batch)
            if plan.rows:
                self._write(conn, plan)
        self._count(plan.appends, plan.events, plan.conflicts, plan.failures)
        self.heads.update(plan.heads)
        self.known_blobs.update(plan.blobs)
        if len(self.known_blobs) > _KNOWN_BLOBS_LIMIT:
            self.known_blobs.clear()
        self.next_position = plan.next_position
        return outcomes

    def _write(self, conn: psycopg.Connection[Any], plan: Batch) -> None:
        last = plan.next_position - 1
        with conn.cursor() as cur:
            if plan.blobs:
                cur.executemany("INSERT INTO blobs VALUES (%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                                [_stored_blob(d, data) for d, data in plan.blobs.items()])
            cur.executemany(_INSERT_EVENT, plan.rows)
            cur.executemany(_UPSERT_HEAD, [(sid, v, h) for sid, (v, h) in plan.heads.items()])
            cur.execute("UPDATE log_head SET position = %s WHERE id = 1", (last,))
            cur.execute("SELECT pg_notify(%s, %s)", (self.channel, str(last)))

    def _load_heads(self, conn: psycopg.Connection[Any], streams: set[str]) -> None:
        missing = [s for s in streams if s not in self.heads]
        if not missing:
            return
        for sid, version, last_hash in conn.execute(
                "SELECT stream_id, version, last_hash FROM streams WHERE stream_id = ANY(%s)",
                (missing,)):
            self.heads[sid] = (int(version), bytes(last_hash))
        for sid in missing:
            self.heads.setdefault(sid, (0, b""))

    def head(self, stream_id: str) -> tuple[int, bytes]:
        """The stream's (version, last hash), loaded for the batch by `_load_heads`."""
        return self.heads.get(stream_id) or (0, b"")

    def lookup_ids(self, event_ids: list[str]) -> list[tuple[str, int, int, float]]:
        """(stream id, seq, position, recorded at) of stored events with these ids."""
        rows = self._connection().execute(
            "SELECT stream_id, seq, position, recorded_at FROM events WHERE event_id = ANY(%s)",
            (event_ids,)).fetchall()
        return [(str(r[0]), int(r[1]), int(r[2]), float(r[3])) for r in rows]

    def _version_now(self, stream_id: str) -> int:
        try:
            row = self._connection().execute(
                "SELECT version FROM streams WHERE stream_id = %s", (stream_id,)).fetchone()
        except psycopg.Error:
            return -1
        return int(row[0]) if row else 0

    def _forget(self) -> None:
        self.heads.clear()
        self.known_blobs.clear()
        self.next_position = 0  # never equal to a counter: the next batch reloads

    def _count(self, appends: int, events: int, conflicts: int, failures: int) -> None:
        old = self.counts
        self.counts = AppendCounts(old.appends + appends, old.events + events,
                                   old.conflicts + conflicts, old.failures + failures)


def _stored_blob(digest: bytes, data: bytes) -> tuple[bytes, int, int, bytes]:
    """A blob's row as the SQLite store writes it: zlib (codec 1) when that is smaller."""
    if len(data) > _COMPRESS_OVER:
        packed = zlib.compress(data, 6)
        if len(packed) < len(data):
            return digest, 1, len(data), packed
    return digest, 0, len(data), data
