"""WAL checkpoints on their own thread: off the commit path, and the WAL stays bounded."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import apsw
import pytest

import eventstore.events  # noqa: F401  (registers the event classes)
from eventstore import ANY_VERSION, SqliteRecorder, make_blob
from eventstore._checkpoint import Checkpointer
from eventstore.events.session import RouteChosen

PAGES = 40
FRAME = 4096 + 24  # a WAL frame: one page and its header


def wal_file_frames(db: Path) -> int:
    """Frames the WAL file has room for: its high-water mark (a restarted WAL is
    written again from its beginning, not truncated)."""
    wal = Path(f"{db}-wal")
    return max(0, (wal.stat().st_size - 32) // FRAME) if wal.exists() else 0


def wal_pages(recorder: SqliteRecorder) -> int:
    return recorder._checkpointer.wal_pages


def append_pages(recorder: SqliteRecorder, count: int, start: int = 0) -> None:
    """`count` appends of a ~3 KB blob each (a few WAL pages per append)."""
    for i in range(start, start + count):
        blob = make_blob({"text": "x" * 3000 + str(i)})
        recorder.append(f"session-{i % 5}", ANY_VERSION,
                        [RouteChosen(turn=1, provider="p", backend_model="m", reason="r")],
                        blobs=[blob])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "lynkr.db"


def test_a_full_wal_is_checkpointed_on_the_checkpoint_thread(db) -> None:
    """One threshold's worth of WAL: the checkpoint thread copies it, no commit does."""
    recorder = SqliteRecorder(db, checkpoint_pages=PAGES)
    try:
        i = 0
        while wal_pages(recorder) < PAGES:  # fill the WAL past the threshold, once
            append_pages(recorder, 1, start=i)
            i += 1
        assert recorder.wait_checkpointed(10)
        assert recorder.checkpoints == 1
        assert recorder._checkpointer.writer_checkpoints == 0
        append_pages(recorder, 1, start=i)  # the next commit restarts the WAL
        assert wal_pages(recorder) < PAGES // 2
    finally:
        recorder.close()


def test_a_commit_checkpoints_itself_only_at_twice_the_threshold(db) -> None:
    """With the thread stopped, SQLite's own checkpoint no longer runs at `pages`;
    at twice that, the commit copies the rest itself, and the WAL restarts."""
    recorder = SqliteRecorder(db, checkpoint_pages=PAGES)
    try:
        recorder._checkpointer.close()  # no background checkpoints from here on
        i = 0
        while wal_pages(recorder) < PAGES * 3 // 2:
            append_pages(recorder, 1, start=i)
            i += 1
        assert recorder._checkpointer.writer_checkpoints == 0  # SQLite's would have run
        while recorder._checkpointer.writer_checkpoints == 0:
            append_pages(recorder, 1, start=i)
            i += 1
            assert i < 10 * PAGES
        assert wal_pages(recorder) >= 2 * PAGES  # the commit that reached twice the limit
        append_pages(recorder, 1, start=i)
        assert wal_pages(recorder) < PAGES // 2  # and the next one restarted the WAL
    finally:
        recorder.close()


def test_back_to_back_commits_keep_the_wal_bounded(db) -> None:
    """Commits with no gap for the background checkpoint to finish in: the WAL still
    stays within a few thresholds (unbounded, it would hold every append: ~2,000 pages),
    however slow the background checkpoint (a commit at 3 x waits for it)."""
    recorder = SqliteRecorder(db, checkpoint_pages=PAGES)
    try:
        largest = 0
        for start in range(0, 400, 10):
            append_pages(recorder, 10, start=start)
            largest = max(largest, wal_pages(recorder))
        assert largest <= 4 * PAGES
        assert wal_file_frames(db) <= 5 * PAGES
    finally:
        recorder.close()
    assert not os.path.exists(f"{db}-wal")  # the last connection closed checkpoints it away


class _BusyOnce:
    """A write connection whose first checkpoint finds another under way; it notes
    each attempt in `events` ("busy", then "checkpoint")."""

    def __init__(self, events: list[str]) -> None:
        self.calls = 0
        self.events = events
        self.first_attempt = threading.Event()

    def wal_checkpoint(self, mode: int) -> tuple[int, int]:
        self.calls += 1
        if self.calls == 1:
            self.events.append("busy")
            self.first_attempt.set()
            raise apsw.BusyError("a checkpoint is running")
        self.events.append("checkpoint")
        return 0, 0


def _background_checkpoint_until(checkpointer: Checkpointer, conn: _BusyOnce) -> threading.Thread:
    """Pretend the background thread is checkpointing until the writer has found it
    busy; its end is noted in `conn.events` as "background ended"."""
    with checkpointer._cond:
        checkpointer._wanted = True

    def finish() -> None:
        assert conn.first_attempt.wait(10)
        with checkpointer._cond:
            checkpointer._wanted = False
            conn.events.append("background ended")
            checkpointer._cond.notify_all()

    thread = threading.Thread(target=finish, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(("factor", "order", "copied"), [
    (2, ["busy", "background ended"], 0),
    (3, ["busy", "background ended", "checkpoint"], 1),
])
def test_a_commit_waits_for_a_slow_background_checkpoint_only_at_three_times(
    db, factor: int, order: list[str], copied: int,
) -> None:
    """Busy at 2 x the threshold: the next commit tries again. Busy at 3 x: this commit
    waits for the background checkpoint to end, then copies the rest itself."""
    checkpointer = Checkpointer(apsw.Connection(str(db)), pages=PAGES)
    conn = _BusyOnce([])
    try:
        finisher = _background_checkpoint_until(checkpointer, conn)
        checkpointer._on_commit(conn, "main", factor * PAGES)  # type: ignore[arg-type]
        finisher.join(10)
        assert conn.events == order
        assert checkpointer.writer_checkpoints == copied
    finally:
        checkpointer.close()


def test_closing_stops_the_checkpoint_thread(db) -> None:
    recorder = SqliteRecorder(db, checkpoint_pages=PAGES)
    thread = recorder._checkpointer._thread
    assert thread.is_alive()
    recorder.close()
    assert not thread.is_alive()


def test_a_threshold_below_one_page_is_refused(db) -> None:
    with pytest.raises(ValueError, match="checkpoint_pages"):
        SqliteRecorder(db, checkpoint_pages=0)
    assert not db.exists()  # refused before anything was opened
