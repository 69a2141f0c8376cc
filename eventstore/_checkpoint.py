"""`Checkpointer`: WAL checkpoints on a thread of their own, off the commit path.

SQLite's automatic checkpoint runs inside the commit that pushes the WAL past 1,000
pages, on the committing thread: every ~100 gateway turns one commit (and so one
client's reply) took ~5 ms instead of ~0.1 ms, and the mean commit carried ~20 µs
of it. Here the write connection's WAL hook (which replaces the automatic
checkpoint) only notes the WAL's size after each commit; once it reaches
`pages`, a thread with its own connection runs a PASSIVE checkpoint, which copies
what it can to the database file without blocking the writer or the readers.
apsw releases the GIL while SQLite works, so on a second core the checkpoint costs
the writer nothing.

A background checkpoint copies the frames the WAL held when it started, and the WAL
restarts from its beginning only at a commit that finds it wholly copied: commits
that follow each other with no gap would keep it growing. So a commit that leaves
the WAL at `2 * pages` copies what is left itself, in its WAL hook (as SQLite's
own checkpoint does): only the frames since the last background checkpoint. If a
background checkpoint is still under way then (its syncs are slow on a busy host),
the commit leaves it to the next one, unless the WAL has reached `3 * pages`: that
commit waits for the background checkpoint to end and then copies the rest, so
the WAL stays bounded however slow the disk. Below
that, a WAL still over `pages` gets another background checkpoint once it has
grown by `pages / 8` since the last one (not after every commit: each checkpoint
syncs the files).

Crash safety is SQLite's: a checkpoint interrupted by a kill leaves the WAL in
place, and the next open recovers from it. The WAL is reset by the first commit
after a complete checkpoint, as with the automatic one; a reader that holds an old
snapshot can keep a checkpoint from completing, in both cases alike.
"""

from __future__ import annotations

import threading

import apsw
import structlog

__all__ = ["DEFAULT_CHECKPOINT_PAGES", "Checkpointer"]

log = structlog.get_logger()

DEFAULT_CHECKPOINT_PAGES = 1000  # SQLite's own automatic-checkpoint threshold
_CATCH_UP_FACTOR = 2  # WAL pages, in `pages`, at which a commit checkpoints itself
_WAIT_FACTOR = 3  # ... and at which it waits for a background checkpoint under way first
_WAIT_SECONDS = 10.0  # the longest such a wait lasts (then the next commit tries again)
_REGROW_DIVISOR = 8  # growth, in `pages`, that asks the thread again before a restart


class Checkpointer:
    """Runs the WAL checkpoints of one database file (see module docstring)."""

    def __init__(self, conn: apsw.Connection, *, pages: int = DEFAULT_CHECKPOINT_PAGES) -> None:
        """Checkpoint through `conn`, a connection of its own that it closes at the end.

        Raises:
            ValueError: `pages` is less than 1.
        """
        if pages < 1:
            raise ValueError(f"pages must be at least 1, got {pages!r}")
        self.pages = pages
        self._limit = pages * _CATCH_UP_FACTOR
        self._hard_limit = pages * _WAIT_FACTOR
        self._conn = conn
        self._cond = threading.Condition()
        self._wanted = False
        self._closed = False
        self._checkpoints = 0
        self._on_writer = 0
        self._wal_pages = 0
        self._ask_at = pages  # WAL pages at which the thread is asked (next) to checkpoint
        self._thread = threading.Thread(target=self._run, name="eventstore-checkpoint",
                                        daemon=True)
        self._thread.start()

    @property
    def checkpoints(self) -> int:
        """Checkpoints run so far on the checkpoint thread."""
        return self._checkpoints

    @property
    def wal_pages(self) -> int:
        """Pages in the WAL after the last commit."""
        return self._wal_pages

    @property
    def writer_checkpoints(self) -> int:
        """Checkpoints a commit ran itself, the WAL having reached twice `pages`."""
        return self._on_writer

    def watch(self, conn: apsw.Connection) -> None:
        """Take over the checkpoints of `conn`, the write connection."""
        conn.set_wal_hook(self._on_commit)

    def _on_commit(self, conn: apsw.Connection, _name: str, pages: int) -> int:
        # On the committing thread, after each commit: a flag and a notify, and only
        # when commits left the thread no gap, a checkpoint of the rest (module doc).
        self._wal_pages = pages
        if pages < self.pages:
            self._ask_at = self.pages  # the WAL restarted
            return apsw.SQLITE_OK
        if pages < self._limit:
            if pages >= self._ask_at and not self._wanted:
                with self._cond:
                    self._wanted = True
                    self._cond.notify()
            return apsw.SQLITE_OK
        for attempt in (1, 2):  # the thread is not asked again meanwhile
            try:
                conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
            except apsw.BusyError:
                # The thread is still checkpointing: the next commit tries again, unless
                # the WAL has grown this far during it; then this commit waits for it.
                if attempt == 1 and pages >= self._hard_limit:
                    self.wait_idle(_WAIT_SECONDS)
                    continue
            except apsw.Error as exc:
                log.warning("eventstore_checkpoint_failed", error=str(exc), on="writer")
            else:
                self._on_writer += 1
            break
        return apsw.SQLITE_OK

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no checkpoint is wanted or running (for tests); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._wanted or self._closed, timeout)

    def close(self) -> None:
        """Stop the thread (after the checkpoint under way, if any) and close its connection."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        conn = self._conn
        try:
            while self._next():
                self._checkpoint(conn)
        finally:
            conn.close()

    def _next(self) -> bool:
        with self._cond:
            self._cond.wait_for(lambda: self._wanted or self._closed)
            return not self._closed

    def _checkpoint(self, conn: apsw.Connection) -> None:
        try:
            frames, _ = conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
        except apsw.BusyError:
            pass  # a commit is checkpointing (module doc): it finishes the job
        except apsw.Error as exc:  # the next commit past `pages` asks again
            log.warning("eventstore_checkpoint_failed", error=str(exc))
        else:
            self._checkpoints += 1
            self._ask_at = frames + max(1, self.pages // _REGROW_DIVISOR)
        finally:
            with self._cond:
                self._wanted = False
                self._cond.notify_all()
