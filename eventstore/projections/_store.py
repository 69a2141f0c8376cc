"""`ProjectionStore`: applies projections to their own SQLite file, exactly once.

The file (normally `$LYNKR_DATA_DIR/projections.db`) holds every projection's tables
and one `projection_offsets` row per projection. `catch_up` reads the event log a
page at a time; each page is one transaction that applies the row operations of
every projection and moves each offset, so a crash never counts an event twice or
skips one. The offsets are re-read inside that transaction, so two processes
catching up the same file (the server and `lynkr projections rebuild`) take turns
instead of double-counting.

A projection that raises is rolled back to its last good event, reported in
`CatchUpReport.failures` and in `status()`, and skipped for the rest of the call;
the others carry on. `rebuild` drops a projection's tables and replays from 0.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import apsw
import structlog

from eventstore._codec import BlobRef
from eventstore._errors import EventStoreError, StoreBrokenError
from eventstore._recorder import Recorded, Recorder
from eventstore._registry import Event
from eventstore.projections._model import (
    Delete,
    Projection,
    ProjectionStatus,
    RowOp,
    Upsert,
    check_identifier,
)

__all__ = ["CatchUpReport", "ProjectionStore"]

log = structlog.get_logger()

_OFFSETS = """
CREATE TABLE IF NOT EXISTS projection_offsets (
    name     TEXT PRIMARY KEY,
    version  INTEGER NOT NULL,
    position INTEGER NOT NULL,
    error    TEXT
) WITHOUT ROWID
"""


@dataclass(frozen=True, slots=True)
class CatchUpReport:
    """What one `catch_up` did: events read, each projection's offset, and failures."""

    events: int
    positions: Mapping[str, int]
    failures: Mapping[str, str] = field(default_factory=dict)


class _Context:
    """The read-only view a projection gets: blobs from the recorder, its own rows."""

    def __init__(self, recorder: Recorder, conn: apsw.Connection, tables: Iterable[str]) -> None:
        self._recorder = recorder
        self._conn = conn
        self._tables = frozenset(tables)

    def load_blob(self, ref: BlobRef) -> Any:
        return self._recorder.load_blob(ref)

    def get(self, table: str, **key: Any) -> Mapping[str, Any] | None:
        if table not in self._tables:
            raise ValueError(f"a projection may only read its own tables, not {table!r}")
        where = " AND ".join(f"{check_identifier(k)} = ?" for k in key)
        cursor = self._conn.execute(f"SELECT * FROM {table} WHERE {where}", tuple(key.values()))
        for row in cursor:
            names = [d[0] for d in cursor.getdescription()]
            return dict(zip(names, row, strict=True))
        return None


class ProjectionStore:
    """Projections' tables and offsets in one SQLite file (see module docstring)."""

    def __init__(self, path: str | os.PathLike[str], projections: Sequence[Projection]) -> None:
        """Open (creating) the file and create or version-check every projection's tables.

        Raises:
            StoreBrokenError: the file cannot be opened as a database.
            ValueError: two projections share a name or a table.
        """
        self.path = os.fspath(path)
        self.projections = {p.name: p for p in projections}
        if len(self.projections) != len(projections):
            raise ValueError("projection names must be unique")
        tables = [t for p in projections for t in p.tables]
        if len(set(tables)) != len(tables):
            raise ValueError("projections must not share tables")
        try:
            self._conn = apsw.Connection(self.path)
            self._conn.setbusytimeout(10_000)
            self._conn.execute("PRAGMA journal_mode = WAL")
            with self._conn:
                self._conn.execute(_OFFSETS)
                for projection in projections:
                    self._prepare(projection)
        except apsw.Error as exc:
            raise StoreBrokenError(f"cannot open {self.path}: {exc}") from exc

    def _prepare(self, projection: Projection) -> None:
        """Create the projection's tables; drop them first if its version changed."""
        rows = self._conn.execute("SELECT version FROM projection_offsets WHERE name = ?",
                                  (projection.name,)).fetchall()
        if rows and rows[0][0] != projection.version:
            log.info("projection_version_changed", projection=projection.name,
                     stored=rows[0][0], current=projection.version)
            self._drop(projection)
            rows = []
        for ddl in projection.tables.values():
            self._conn.execute(ddl)
        if not rows:
            self._conn.execute("INSERT INTO projection_offsets VALUES (?, ?, 0, NULL)",
                               (projection.name, projection.version))

    def _drop(self, projection: Projection) -> None:
        for table in projection.tables:
            self._conn.execute(f"DROP TABLE IF EXISTS {table}")
        self._conn.execute("DELETE FROM projection_offsets WHERE name = ?", (projection.name,))

    # -- applying -------------------------------------------------------------------
    def catch_up(
        self, recorder: Recorder, *, names: Iterable[str] | None = None, page: int = 1000
    ) -> CatchUpReport:
        """Apply every event after each projection's offset, a page per transaction.

        Raises:
            EventStoreError: the log cannot be read (e.g. an unknown event type).
            KeyError: `names` holds a projection that is not registered.
        """
        chosen = [self.projections[n] for n in names] if names is not None else list(
            self.projections.values())
        failures: dict[str, str] = {}
        events = 0
        while True:
            active = [p for p in chosen if p.name not in failures]
            read = self._page(recorder, active, page, failures) if active else 0
            events += read
            if read == 0:
                break
        positions = {p.name: self._offset(p.name) for p in chosen}
        return CatchUpReport(events, positions, failures)

    def _page(
        self, recorder: Recorder, active: list[Projection], size: int, failures: dict[str, str]
    ) -> int:
        """Apply one page of the log in one transaction; returns the events read."""
        conn = self._conn
        try:
            # IMMEDIATE: take the write lock before reading the offsets, so that two
            # processes catching up the same file serialise instead of double-counting.
            conn.execute("BEGIN IMMEDIATE")
            try:
                offsets = {p.name: self._offset(p.name) for p in active}
                records = recorder.read_all(min(offsets.values()), size)
                for projection in active:
                    done = self._apply_all(recorder, projection, offsets[projection.name],
                                           records, failures)
                    self._set_offset(projection.name, done, failures.get(projection.name))
                conn.execute("COMMIT")
            except BaseException:
                if not conn.getautocommit():
                    conn.execute("ROLLBACK")
                raise
        except apsw.Error as exc:
            raise StoreBrokenError(f"projection store {self.path}: {exc}") from exc
        return len(records)

    def _apply_all(
        self,
        recorder: Recorder,
        projection: Projection,
        offset: int,
        records: list[Recorded[Event]],
        failures: dict[str, str],
    ) -> int:
        """Apply `records` past `offset`; returns the position it got to."""
        context = _Context(recorder, self._conn, projection.tables)
        for record in records:
            if record.position <= offset:
                continue
            if projection.types is None or record.type_name in projection.types:
                error = self._apply_one(projection, record, context)
                if error is not None:
                    failures[projection.name] = error
                    return offset
            offset = record.position
        return offset

    def _apply_one(
        self, projection: Projection, record: Recorded[Event], context: _Context
    ) -> str | None:
        """Apply one event in a savepoint; on failure undo it and return the error."""
        self._conn.execute("SAVEPOINT one_event")
        try:
            for op in projection.project(record, context):
                self._execute(projection, op)
        except (EventStoreError, apsw.Error, ValueError, TypeError, KeyError, LookupError,
                AttributeError, ArithmeticError) as exc:
            # A projection bug must not stop the others: report it and hold its offset.
            self._conn.execute("ROLLBACK TO one_event")
            self._conn.execute("RELEASE one_event")
            error = f"position {record.position} ({record.type_name}): {type(exc).__name__}: {exc}"
            log.exception("projection_failed", projection=projection.name, position=record.position,
                      error_type=type(exc).__name__, error=str(exc))
            return error
        self._conn.execute("RELEASE one_event")
        return None

    def _execute(self, projection: Projection, op: RowOp) -> None:
        if op.table not in projection.tables:
            raise ValueError(f"projection {projection.name} wrote to {op.table!r}, "
                             "which is not one of its tables")
        if isinstance(op, Delete):
            where = " AND ".join(f"{check_identifier(k)} = ?" for k in op.key)
            self._conn.execute(f"DELETE FROM {op.table} WHERE {where}", tuple(op.key.values()))
            return
        self._conn.execute(*_upsert_sql(op))

    def _offset(self, name: str) -> int:
        rows: list[Any] = self._conn.execute(
            "SELECT position FROM projection_offsets WHERE name = ?", (name,)).fetchall()
        return int(rows[0][0]) if rows else 0

    def _set_offset(self, name: str, position: int, error: str | None) -> None:
        self._conn.execute("UPDATE projection_offsets SET position = ?, error = ? WHERE name = ?",
                           (position, error, name))

    # -- maintenance ----------------------------------------------------------------
    def rebuild(self, recorder: Recorder, name: str | None = None) -> CatchUpReport:
        """Drop the projection's (or every projection's) rows and replay from position 0.

        Raises:
            KeyError: no projection has that name.
        """
        chosen = [self.projections[name]] if name is not None else list(
            self.projections.values())
        with self._conn:
            for projection in chosen:
                self._drop(projection)
                self._prepare(projection)
        log.info("projections_rebuilding", projections=[p.name for p in chosen])
        return self.catch_up(recorder, names=[p.name for p in chosen])

    def status(self) -> list[ProjectionStatus]:
        """Every registered projection's offset and last error, by name."""
        rows = self._conn.execute(
            "SELECT name, version, position, error FROM projection_offsets ORDER BY name")
        return [ProjectionStatus(r[0], int(r[1]), int(r[2]), r[3]) for r in rows
                if r[0] in self.projections]

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a read-only query on the projection tables; rows as dicts."""
        cursor = self._conn.execute(sql, tuple(args))
        out = []
        for row in cursor:
            names = [d[0] for d in cursor.getdescription()]
            out.append(dict(zip(names, row, strict=True)))
        return out

    def close(self) -> None:
        """Close the file. Idempotent."""
        self._conn.close()


def _upsert_sql(op: Upsert) -> tuple[str, tuple[Any, ...]]:
    """`INSERT … ON CONFLICT (key) DO UPDATE` for one `Upsert`."""
    columns = [*op.key, *op.set, *op.add, *op.insert_only]
    for column in columns:
        check_identifier(column)
    values = (*op.key.values(), *op.set.values(), *op.add.values(), *op.insert_only.values())
    updates = [f"{c} = excluded.{c}" for c in op.set]
    updates += [f"{c} = coalesce({op.table}.{c}, 0) + excluded.{c}" for c in op.add]
    action = f"DO UPDATE SET {', '.join(updates)}" if updates else "DO NOTHING"
    sql = (f"INSERT INTO {check_identifier(op.table)} ({', '.join(columns)}) "
           f"VALUES ({', '.join('?' * len(columns))}) "
           f"ON CONFLICT ({', '.join(op.key)}) {action}")
    return sql, values
