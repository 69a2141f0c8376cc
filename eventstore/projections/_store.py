"""`ProjectionStore`: applies projections to their own SQLite file, exactly once.

The file (normally `$LYNKR_DATA_DIR/projections.db`) holds every projection's tables
and one `projection_offsets` row per projection. `catch_up` reads the event log a
page at a time; each page is one transaction that applies the row operations of
every projection and moves each offset, so a crash never counts an event twice or
skips one. The offsets are re-read inside that transaction, so two processes
catching up the same file (the server and `lynkr projections rebuild`) take turns
instead of double-counting.

Within a page each projection's events are applied in one savepoint, and an
offset row is written only when it moves. A projection that raises is rolled
back to its last good event (the savepoint is undone and the events before the
failing one applied again: handlers are pure), reported in
`CatchUpReport.failures` and in `status()`, and skipped for the rest of the call;
the others carry on. `rebuild` drops a projection's tables and replays from 0.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
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
        # A command may run before anything has created the data directory.
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
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
        self, recorder: Recorder, *, names: Iterable[str] | None = None, page: int = 1000,
        on_page: Callable[[int], None] | None = None,
    ) -> CatchUpReport:
        """Apply every event after each projection's offset, a page per transaction.

        A page shorter than `page` was the end of the log when it was read, so the
        call stops there instead of opening one more (empty) transaction.
        `on_page(position)` is told the furthest position reached after each page
        (a progress bar's hook).

        Raises:
            EventStoreError: the log cannot be read (e.g. an unknown event type).
            KeyError: `names` holds a projection that is not registered.
        """
        chosen = [self.projections[n] for n in names] if names is not None else list(
            self.projections.values())
        failures: dict[str, str] = {}
        events = 0
        positions: dict[str, int] = {}
        while True:
            active = [p for p in chosen if p.name not in failures]
            if not active:
                break
            read, reached = self._page(recorder, active, page, failures)
            positions.update(reached)
            events += read
            if on_page is not None and reached:
                on_page(max(reached.values()))
            if read < page:
                break
        if len(positions) < len(chosen):
            stored = self._offsets()
            positions = {p.name: positions.get(p.name, stored.get(p.name, (0, None))[0])
                         for p in chosen}
        return CatchUpReport(events, {p.name: positions[p.name] for p in chosen}, failures)

    def _page(
        self, recorder: Recorder, active: list[Projection], size: int, failures: dict[str, str]
    ) -> tuple[int, dict[str, int]]:
        """Apply one page of the log in one transaction.

        Returns the events read and every active projection's offset after it. An
        offset row is written only when the position or the error changed.
        """
        conn = self._conn
        try:
            # IMMEDIATE: take the write lock before reading the offsets, so that two
            # processes catching up the same file serialise instead of double-counting.
            conn.execute("BEGIN IMMEDIATE")
            try:
                stored = self._offsets()
                offsets = {p.name: stored.get(p.name, (0, None))[0] for p in active}
                records = recorder.read_all(min(offsets.values()), size)
                for projection in active:
                    name = projection.name
                    done = self._apply_page(recorder, projection, offsets[name], records,
                                            failures)
                    error = failures.get(name)
                    if (done, error) != stored.get(name, (0, None)):
                        self._set_offset(name, done, error)
                    offsets[name] = done
                conn.execute("COMMIT")
            except BaseException:
                if not conn.getautocommit():
                    conn.execute("ROLLBACK")
                raise
        except apsw.Error as exc:
            raise StoreBrokenError(f"projection store {self.path}: {exc}") from exc
        return len(records), offsets

    def _apply_page(
        self,
        recorder: Recorder,
        projection: Projection,
        offset: int,
        records: list[Recorded[Event]],
        failures: dict[str, str],
    ) -> int:
        """Apply `records` past `offset` in one savepoint; returns the position reached.

        If an event's handler raises, the savepoint is rolled back and the events
        before it are applied again (handlers are pure, so they give the same rows),
        so the projection stops at its last good event and the error is reported.
        """
        types = projection.types
        todo = [r for r in records if r.position > offset
                and (types is None or r.type_name in types)]
        end = records[-1].position if records and records[-1].position > offset else offset
        if not todo:
            return end
        context = _Context(recorder, self._conn, projection.tables)
        conn = self._conn
        conn.execute("SAVEPOINT projection_page")
        try:
            failed = self._apply_records(projection, todo, context)
            while failed is not None:
                # Undo the page and apply the events before the failing one again; a
                # failure on that replay (an impure handler) moves the stop back.
                index, error = failed
                conn.execute("ROLLBACK TO projection_page")
                failures[projection.name] = error
                end = _position_before(records, todo[index].position, offset)
                todo = todo[:index]
                failed = self._apply_records(projection, todo, context)
        finally:
            conn.execute("RELEASE projection_page")
        return end

    def _apply_records(
        self, projection: Projection, records: list[Recorded[Event]], context: _Context
    ) -> tuple[int, str] | None:
        """Apply each record's row operations; on a handler error, (its index, the error)."""
        for index, record in enumerate(records):
            try:
                for op in projection.project(record, context):
                    self._execute(projection, op)
            except (EventStoreError, apsw.Error, ValueError, TypeError, KeyError, LookupError,
                    AttributeError, ArithmeticError) as exc:
                # A projection bug must not stop the others: report it and hold its offset.
                log.exception("projection_failed", projection=projection.name,
                              position=record.position, error_type=type(exc).__name__,
                              error=str(exc))
                return index, (f"position {record.position} ({record.type_name}): "
                               f"{type(exc).__name__}: {exc}")
        return None

    def _execute(self, projection: Projection, op: RowOp) -> None:
        if op.table not in projection.tables:
            raise ValueError(f"projection {projection.name} wrote to {op.table!r}, "
                             "which is not one of its tables")
        if isinstance(op, Delete):
            where = " AND ".join(f"{check_identifier(k)} = ?" for k in op.key)
            self._conn.execute(f"DELETE FROM {op.table} WHERE {where}", tuple(op.key.values()))
            return
        self._conn.execute(_upsert_sql(op),
                           (*op.key.values(), *op.set.values(), *op.add.values(),
                            *op.insert_only.values()))

    def _offsets(self) -> dict[str, tuple[int, str | None]]:
        """Every stored offset row: name → (position, error)."""
        rows: list[Any] = self._conn.execute(
            "SELECT name, position, error FROM projection_offsets").fetchall()
        return {r[0]: (int(r[1]), r[2]) for r in rows}

    def _set_offset(self, name: str, position: int, error: str | None) -> None:
        self._conn.execute("UPDATE projection_offsets SET position = ?, error = ? WHERE name = ?",
                           (position, error, name))

    # -- maintenance ----------------------------------------------------------------
    def rebuild(
        self, recorder: Recorder, name: str | None = None, *,
        on_page: Callable[[int], None] | None = None,
    ) -> CatchUpReport:
        """Drop the projection's (or every projection's) rows and replay from position 0.

        `on_page` is passed to `catch_up`.

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
        return self.catch_up(recorder, names=[p.name for p in chosen], on_page=on_page)

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


def _position_before(records: list[Recorded[Event]], position: int, offset: int) -> int:
    """The position of the last record before `position` (at least `offset`)."""
    before = offset
    for record in records:
        if record.position >= position:
            break
        before = max(before, record.position)
    return before


def _upsert_sql(op: Upsert, dialect: str = "sqlite") -> str:
    """`INSERT … ON CONFLICT (key) DO UPDATE` for one `Upsert` (cached per shape), in
    SQLite's dialect (`?` placeholders) or PostgreSQL's (`%s`, every name quoted: a
    column may be called `user`).

    The values go in key, set, add, insert_only order.
    """
    shape = (dialect, op.table, tuple(op.key), tuple(op.set), tuple(op.add),
             tuple(op.insert_only))
    sql = _UPSERT_SQL.get(shape)
    if sql is None:
        sql = _build_upsert_sql(*shape)
        if len(_UPSERT_SQL) < _UPSERT_CACHE_SIZE:
            _UPSERT_SQL[shape] = sql
    return sql


_UpsertShape = tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...],
                     tuple[str, ...]]
_UPSERT_SQL: dict[_UpsertShape, str] = {}
_UPSERT_CACHE_SIZE = 1024  # projections have a few dozen shapes; a bound all the same


def _build_upsert_sql(dialect: str, table: str, key: tuple[str, ...], set_: tuple[str, ...],
                      add: tuple[str, ...], insert_only: tuple[str, ...]) -> str:
    columns = [*key, *set_, *add, *insert_only]
    for name in (table, *columns):
        check_identifier(name)
    postgres = dialect == "postgres"

    def q(name: str) -> str:
        return f'"{name}"' if postgres else name

    updates = [f"{q(c)} = excluded.{q(c)}" for c in set_]
    updates += [f"{q(c)} = coalesce({q(table)}.{q(c)}, 0) + excluded.{q(c)}" for c in add]
    action = f"DO UPDATE SET {', '.join(updates)}" if updates else "DO NOTHING"
    marks = ", ".join(["%s" if postgres else "?"] * len(columns))
    return (f"INSERT INTO {q(table)} ({', '.join(q(c) for c in columns)}) "
            f"VALUES ({marks}) ON CONFLICT ({', '.join(q(k) for k in key)}) {action}")
