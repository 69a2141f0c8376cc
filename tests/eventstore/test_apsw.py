"""`SqliteRecorder` specifics: WAL, durability, migrations, group commit, external writers."""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

import apsw
import pytest

import eventstore.events  # noqa: F401  (registers the event classes)
from eventstore import (
    ANY_VERSION,
    SCHEMA_VERSION,
    ConcurrencyError,
    SchemaVersionError,
    SqliteRecorder,
    StoreBrokenError,
    verify_stream,
)
from eventstore._schema import MIGRATIONS
from eventstore.events.session import RouteChosen, TurnStarted


def route(turn: int) -> RouteChosen:
    """A small registered event."""
    return RouteChosen(turn=turn, provider="p", backend_model="m", reason="test")


def pragma(path: Path, name: str) -> object:
    """Read one pragma through a fresh plain connection."""
    conn = apsw.Connection(str(path))
    try:
        return conn.execute(f"PRAGMA {name}").fetchall()[0][0]
    finally:
        conn.close()


def test_database_uses_wal_mode(tmp_path: Path) -> None:
    """The log file is in WAL mode so readers never block the writer."""
    rec = SqliteRecorder(tmp_path / "lynkr.db")
    rec.close()
    assert pragma(tmp_path / "lynkr.db", "journal_mode") == "wal"


@pytest.mark.parametrize(("durability", "level"), [("NORMAL", 1), ("FULL", 2)])
def test_durability_sets_synchronous(tmp_path: Path, durability: str, level: int) -> None:
    """`durability` is SQLite's `synchronous` level on every connection."""
    rec = SqliteRecorder(tmp_path / "lynkr.db", durability=durability)  # type: ignore[arg-type]
    try:
        rec.append("s", 0, [route(1)])
        assert rec._reader().execute("PRAGMA synchronous").fetchall()[0][0] == level
        assert rec._writer_conn.execute("PRAGMA synchronous").fetchall()[0][0] == level
    finally:
        rec.close()


def test_unknown_durability_is_refused(tmp_path: Path) -> None:
    """Only NORMAL and FULL are accepted."""
    with pytest.raises(ValueError, match="durability"):
        SqliteRecorder(tmp_path / "lynkr.db", durability="OFF")  # type: ignore[arg-type]


def test_v1_file_is_migrated_and_keeps_its_events(tmp_path: Path) -> None:
    """Opening a schema v1 file lifts it to the current version with its rows intact."""
    path = tmp_path / "lynkr.db"
    rec = SqliteRecorder(path)
    rec.append("s", 0, [route(1), route(2)])
    rows = rec._reader().execute(
        "SELECT position, stream_id, seq, type, version, recorded_at, payload, metadata, hash "
        "FROM events").fetchall()
    rec.close()
    old = tmp_path / "old.db"
    conn = apsw.Connection(str(old))
    conn.execute(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    with conn:
        for row in rows:
            conn.execute("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)", row)
        conn.execute("INSERT INTO streams VALUES ('s', 2, ?)", (rows[-1][-1],))
    conn.close()
    migrated = SqliteRecorder(old)
    try:
        assert pragma(old, "user_version") == SCHEMA_VERSION
        assert [r.event for r in migrated.read_stream("s")] == [route(1), route(2)]
        assert verify_stream(migrated, "s") is None
        assert migrated.append("s", 2, [route(3)]).version == 3
    finally:
        migrated.close()


def test_newer_file_is_refused_with_clear_message(tmp_path: Path) -> None:
    """A file from a newer Lynkr is refused, naming both versions and the way out."""
    path = tmp_path / "lynkr.db"
    SqliteRecorder(path).close()
    conn = apsw.Connection(str(path))
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaVersionError) as info:
        SqliteRecorder(path)
    message = str(info.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert f"up to {SCHEMA_VERSION}" in message
    assert "LYNKR_DATA_DIR" in message


def test_garbage_file_is_store_broken(tmp_path: Path) -> None:
    """A file that is not a database is a `StoreBrokenError` naming the path."""
    path = tmp_path / "lynkr.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreBrokenError, match=r"lynkr\.db"):
        SqliteRecorder(path)


def test_events_survive_reopen(tmp_path: Path) -> None:
    """Closing and reopening the file keeps every event and the stream heads."""
    path = tmp_path / "lynkr.db"
    rec = SqliteRecorder(path)
    rec.append("s", 0, [route(1)])
    rec.close()
    rec = SqliteRecorder(path)
    try:
        assert rec.append("s", 1, [route(2)]).version == 2
        assert rec.last_position() == 2
        with pytest.raises(ConcurrencyError):
            rec.append("s", 1, [route(3)])
    finally:
        rec.close()


def test_group_commit_batches_concurrent_appends(tmp_path: Path) -> None:
    """Many threads appending at once share transactions; each append is committed on return."""
    path = tmp_path / "lynkr.db"
    rec = SqliteRecorder(path)
    check = apsw.Connection(str(path))
    missing: list[int] = []

    def writer(n: int) -> None:
        for i in range(25):
            result = rec.append(f"s-{n % 4}", ANY_VERSION, [route(i)])
            seen = check.execute("SELECT count(*) FROM events WHERE position = ?",
                                 (result.last_position,)).fetchall()[0][0]
            if seen != 1:
                missing.append(result.last_position)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert missing == []
        assert rec.batched_requests == 16 * 25
        assert rec.batches < rec.batched_requests
        for s in range(4):
            assert [r.seq for r in rec.read_stream(f"s-{s}")] == list(range(1, 101))
    finally:
        check.close()
        rec.close()


def test_one_conflict_in_a_batch_spares_the_others(tmp_path: Path) -> None:
    """A conflicting request in a group commit fails alone; its batch mates commit."""
    rec = SqliteRecorder(tmp_path / "lynkr.db")
    try:
        futures = [rec.submit_append("s", 0, [route(1)]) for _ in range(5)]
        futures += [rec.submit_append("t", ANY_VERSION, [route(2)]) for _ in range(5)]
        outcomes = [f.exception() for f in futures]
        assert sum(o is None for o in outcomes[:5]) == 1
        assert all(isinstance(o, ConcurrencyError) for o in outcomes[:5] if o is not None)
        assert outcomes[5:] == [None] * 5
        assert rec.stream_version("s") == 1
        assert rec.stream_version("t") == 5
    finally:
        rec.close()


def test_commits_count_appends_events_and_conflicts_before_answering(tmp_path: Path) -> None:
    """`append_counts` already includes an append when its caller sees the answer."""
    rec = SqliteRecorder(tmp_path / "lynkr.db")
    try:
        rec.append("s", 0, [route(1), route(1)])
        assert rec.append_counts == (1, 2, 0, 0)
        futures = [rec.submit_append("s", 2, [route(1)]) for _ in range(3)]
        errors = [f.exception() for f in futures]
        assert sum(isinstance(e, ConcurrencyError) for e in errors) == 2
        assert rec.append_counts == (2, 3, 2, 0)
    finally:
        rec.close()


def test_the_writer_chains_hashes_as_verify_recomputes_them(tmp_path: Path) -> None:
    """Hashes placed by the group writer (cached stream and type parts) pass verification."""
    rec = SqliteRecorder(tmp_path / "lynkr.db")
    try:
        futures = [rec.submit_append(f"s-{n % 3}", ANY_VERSION, [route(n), route(n + 1)])
                   for n in range(30)]
        futures.append(rec.submit_append("s-0", ANY_VERSION, [
            TurnStarted(turn=1, request_id="r", model="m", stream=True)]))
        for future in futures:
            future.result()
        for stream in ("s-0", "s-1", "s-2"):
            assert verify_stream(rec, stream) is None
    finally:
        rec.close()


def test_same_event_ids_in_one_batch_store_once(tmp_path: Path) -> None:
    """A retry racing its original inside one group commit is answered, not duplicated."""
    rec = SqliteRecorder(tmp_path / "lynkr.db")
    try:
        futures = [rec.submit_append("s", 0, [route(1)], event_ids=["e1"]) for _ in range(4)]
        results = [f.result() for f in futures]
        assert len(set(results)) == 1
        assert rec.stream_version("s") == 1
    finally:
        rec.close()


def test_appends_by_another_process_are_seen(tmp_path: Path) -> None:
    """Two recorders on one file (e.g. a CLI beside the server) keep the chain intact."""
    path = tmp_path / "lynkr.db"
    first = SqliteRecorder(path)
    second = SqliteRecorder(path)
    try:
        first.append("s", 0, [route(1)])
        second.append("s", 1, [route(2)])
        with pytest.raises(ConcurrencyError):
            first.append("s", 1, [route(3)])
        assert first.append("s", 2, [route(3)]).version == 3
        assert first.append("t", 0, [route(1)]).first_position == 4
        assert verify_stream(first, "s") is None
    finally:
        first.close()
        second.close()


def test_sqlite_failure_fails_only_the_request_that_caused_it(tmp_path: Path) -> None:
    """When SQLite refuses one request mid-batch, the batch is split and the rest commit."""
    path = tmp_path / "lynkr.db"
    rec = SqliteRecorder(path)
    conn = apsw.Connection(str(path))
    conn.execute("CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.stream_id = 'poison' "
                 "BEGIN SELECT RAISE(ABORT, 'poisoned stream'); END")
    conn.close()
    try:
        futures = [rec.submit_append(s, ANY_VERSION, [route(1)])
                   for s in ("good-1", "poison", "good-2")]
        outcomes = [f.exception(timeout=10) for f in futures]
        assert outcomes[0] is None
        assert outcomes[2] is None
        assert isinstance(outcomes[1], StoreBrokenError)
        assert "poisoned stream" in str(outcomes[1])
        assert rec.stream_version("good-1") == rec.stream_version("good-2") == 1
        assert rec.stream_version("poison") == 0
        assert rec.append("good-1", 1, [route(2)]).version == 2
    finally:
        rec.close()


def test_blobs_are_compressed_and_read_back(tmp_path: Path) -> None:
    """A large repetitive blob is stored compressed and reads back identical."""
    from eventstore import make_blob
    from eventstore.events.session import ToolCompleted

    rec = SqliteRecorder(tmp_path / "lynkr.db")
    ref, data = make_blob({"text": "the same sentence again. " * 2000})
    try:
        rec.append("s", 0, [ToolCompleted(tool="t", ok=True, result=ref, duration_ms=1.0)],
                   blobs=[(ref, data)])
        count, stored = rec.blob_stats()
        assert count == 1
        assert stored < len(data) / 10
        assert rec.get_blob(ref) == data
    finally:
        rec.close()


def test_a_deferred_append_waits_for_commit_deferred(tmp_path: Path) -> None:
    """With defer=True nothing is committed until the caller commits the deferred appends."""
    rec = SqliteRecorder(tmp_path / "lynkr.db")
    try:
        future = rec.submit_append("s", 0, [route(1)], defer=True)
        assert not future.done()
        assert rec.stream_version("s") == 0
        assert rec.commit_deferred() == 1
        assert future.done()
        assert future.result().version == 1
        assert rec.stream_version("s") == 1
        assert rec.commit_deferred() == 0
    finally:
        rec.close()


def test_deferred_appends_commit_together_on_the_calling_thread(tmp_path: Path) -> None:
    """Ten deferred appends: one transaction, on this thread; a conflict fails alone."""
    rec = SqliteRecorder(tmp_path / "lynkr.db")
    try:
        seen: list[str] = []
        futures = [rec.submit_append(f"s-{n}", 0, [route(1)], defer=True) for n in range(10)]
        futures.append(rec.submit_append("s-3", 0, [route(2)], defer=True))
        futures[0].add_done_callback(lambda _: seen.append(threading.current_thread().name))
        before = rec.batches
        assert rec.commit_deferred() == 11
        assert rec.batches == before + 1
        assert seen == [threading.current_thread().name]
        assert [f.exception() is None for f in futures] == [True] * 10 + [False]
        assert isinstance(futures[-1].exception(), ConcurrencyError)
    finally:
        rec.close()


def test_close_commits_the_deferred_appends(tmp_path: Path) -> None:
    """Appends still deferred when the recorder closes are committed, not dropped."""
    path = tmp_path / "lynkr.db"
    rec = SqliteRecorder(path)
    future = rec.submit_append("s", 0, [route(1), route(2)], defer=True)
    rec.close()
    assert future.result().version == 2
    again = SqliteRecorder(path)
    try:
        assert again.stream_version("s") == 2
    finally:
        again.close()


def test_deferred_commits_and_the_writer_thread_interleave_safely(tmp_path: Path) -> None:
    """Four threads committing their own deferred appends while four others go through
    the writer thread: every stream contiguous, the hash chain intact."""
    rec = SqliteRecorder(tmp_path / "lynkr.db")

    def deferring(n: int) -> None:
        for i in range(50):
            future = rec.submit_append(f"d-{n}", i, [route(i)], defer=True)
            rec.commit_deferred()
            future.result()

    def queued(n: int) -> None:
        for i in range(50):
            rec.append(f"q-{n}", i, [route(i)])

    threads = [threading.Thread(target=f, args=(n,)) for n in range(4)
               for f in (deferring, queued)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        for name in [f"{k}-{n}" for k in "dq" for n in range(4)]:
            assert [r.seq for r in rec.read_stream(name)] == list(range(1, 51))
            assert verify_stream(rec, name) is None
    finally:
        rec.close()


def _committer(future: Any) -> list[str]:
    """The name of the thread that resolves `future`, once it does."""
    seen: list[str] = []
    future.add_done_callback(lambda _: seen.append(threading.current_thread().name))
    return seen


def test_commit_deferred_without_waiting_commits_here_when_it_can(tmp_path: Path) -> None:
    """wait=False with nothing in the way: one transaction, on this thread."""
    rec = SqliteRecorder(tmp_path / "lynkr.db")
    try:
        future = rec.submit_append("s", 0, [route(1)], defer=True)
        seen = _committer(future)
        before = rec.batches
        assert rec.commit_deferred(wait=False) == 1
        assert future.result(timeout=0).version == 1
        assert seen == [threading.current_thread().name]
        assert rec.batches == before + 1
        assert rec.commit_deferred(wait=False) == 0
    finally:
        rec.close()


def test_commit_deferred_without_waiting_hands_over_while_another_thread_commits(
    tmp_path: Path,
) -> None:
    """The write lock held by another committer: the writer thread commits it later."""
    rec = SqliteRecorder(tmp_path / "lynkr.db")
    try:
        future = rec.submit_append("s", 0, [route(1)], defer=True)
        seen = _committer(future)
        with rec._writer.lock:  # as a worker in the middle of its own commit
            assert rec.commit_deferred(wait=False) == 1
            assert not future.done()
        assert future.result(timeout=5).version == 1
        assert seen == ["eventstore-writer"]
    finally:
        rec.close()


def test_commit_deferred_without_waiting_hands_over_while_another_process_writes(
    tmp_path: Path,
) -> None:
    """Another connection holding the database's write lock: the call returns while the
    lock is still held (no busy wait), and the writer thread commits once it is free."""
    path = tmp_path / "lynkr.db"
    rec = SqliteRecorder(path)
    other = apsw.Connection(str(path))
    # A call that waited for the lock would now wait until `other` lets it go, which
    # happens only after the call has returned: it would never return.
    rec._writer.conn.setbusytimeout(3_600_000)
    returned: queue.Queue[int] = queue.Queue()
    try:
        future = rec.submit_append("s", 0, [route(1)], defer=True)
        seen = _committer(future)
        other.execute("BEGIN IMMEDIATE")
        threading.Thread(target=lambda: returned.put(rec.commit_deferred(wait=False)),
                         daemon=True).start()
        assert returned.get(timeout=60) == 1, "commit_deferred(wait=False) waited for the lock"
        assert not future.done()
        other.execute("COMMIT")
        assert future.result(timeout=5).version == 1
        assert seen == ["eventstore-writer"]
        assert rec.stream_version("s") == 1
    finally:
        other.close()
        rec.close()


def test_commit_deferred_without_waiting_leaves_full_durability_to_the_writer(
    tmp_path: Path,
) -> None:
    """Durability FULL syncs to disk at every commit: the writer thread does that."""
    rec = SqliteRecorder(tmp_path / "lynkr.db", durability="FULL")
    try:
        future = rec.submit_append("s", 0, [route(1)], defer=True)
        seen = _committer(future)
        assert rec.commit_deferred(wait=False) == 1
        assert future.result(timeout=5).version == 1
        assert seen == ["eventstore-writer"]
    finally:
        rec.close()


class _FailingBegin:
    """The write connection, except that starting a transaction fails with an I/O error."""

    def __init__(self, conn: apsw.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "BEGIN IMMEDIATE":
            raise apsw.IOError("disk I/O error")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_commit_deferred_without_waiting_reports_a_failed_begin(tmp_path: Path) -> None:
    """SQLite failing otherwise than busy: the append gets the error, nobody waits forever."""
    rec = SqliteRecorder(tmp_path / "lynkr.db")
    real = rec._writer.conn
    try:
        future = rec.submit_append("s", 0, [route(1)], defer=True)
        rec._writer.conn = _FailingBegin(real)  # type: ignore[assignment]
        assert rec.commit_deferred(wait=False) == 1
        assert isinstance(future.exception(timeout=5), StoreBrokenError)
    finally:
        rec._writer.conn = real
        rec.close()
