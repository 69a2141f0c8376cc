"""`copy_log`: copy an event log into a PostgreSQL store, verified as it arrives.

Rows are copied as they are stored (positions, sequence numbers, hashes, metadata,
event ids) after their blobs, a page per transaction. Each row's sequence number
and chain hash are checked against the stream's previous event before it is
written, so a damaged source stops the copy at the first bad event, and the copy
is `verify`-clean. An interrupted copy resumes from the target's last position.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventstore._errors import EventStoreError
from eventstore._recorder import RawEvent, Recorder
from eventstore._rows import row_hash

__all__ = ["CopyProgress", "copy_log"]


@dataclass(frozen=True, slots=True)
class CopyProgress:
    """How far a copy is: events copied in this run, of about `total` to copy (the
    source's positions left), blobs copied, and the target's last position."""

    copied: int
    total: int
    blobs: int
    last_position: int


def copy_log(source: Recorder, target: Recorder, *, page: int = 1000,
             max_events: int | None = None,
             progress: Callable[[CopyProgress], None] = lambda _: None) -> CopyProgress:
    """Copy `source`'s blobs and events after `target`'s last position into `target`.

    Args:
        source: a SQLite or PostgreSQL recorder (it must offer `read_raw_log`).
        target: a PostgreSQL recorder.
        page: events per transaction.
        max_events: stop after this many events (the next run continues).
        progress: called after each committed page.

    Raises:
        EventStoreError: a source row breaks its stream's sequence or hash chain (nothing
            from that page is written), or the stores cannot take part in a copy.
    """
    read_page: Any = getattr(source, "read_raw_log", None)
    source_blobs: Any = getattr(source, "raw_blobs", None)
    import_log: Any = getattr(target, "import_log", None)
    if read_page is None or source_blobs is None or import_log is None:
        raise EventStoreError("copying needs a SQLite or PostgreSQL source and a PostgreSQL "
                              "target")
    blobs, after = 0, b""
    while chunk := source_blobs(after, 500):
        import_log([], chunk)
        blobs += len(chunk)
        after = chunk[-1][0]
    start = target.last_position()
    heads: dict[str, tuple[int, bytes]] = {}
    copied, position = 0, start
    done = CopyProgress(0, max(source.last_position() - start, 0), blobs, start)
    while max_events is None or copied < max_events:
        size = page if max_events is None else min(page, max_events - copied)
        rows: list[RawEvent] = read_page(position, size)
        if not rows:
            break
        for row in rows:
            _check(row, heads, target)
        position = import_log(rows)
        copied += len(rows)
        done = CopyProgress(copied, done.total, blobs, position)
        progress(done)
    return done


def _check(row: RawEvent, heads: dict[str, tuple[int, bytes]], target: Recorder) -> None:
    """Refuse `row` unless it follows its stream's last copied event and its hash holds."""
    head = heads.get(row.stream_id)
    if head is None:
        head = target.stream_head(row.stream_id) or (0, b"")
    version, previous = head
    if row.seq != version + 1:
        raise EventStoreError(f"{row.stream_id} position {row.position}: sequence gap "
                              f"(expected seq {version + 1}, found {row.seq})")
    if row_hash(row, previous or None) != row.hash:
        raise EventStoreError(f"{row.stream_id} seq {row.seq} position {row.position}: hash "
                              "mismatch (payload, metadata or the chain was altered)")
    heads[row.stream_id] = (row.seq, row.hash)
