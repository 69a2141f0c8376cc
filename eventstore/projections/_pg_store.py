"""`PostgresProjectionStore`: the projections in the PostgreSQL database of the log.

The same contract as `ProjectionStore` (the SQLite file), for a gateway whose event
log is PostgreSQL: every projection's tables and the `projection_offsets` rows live
in the schema `<log schema>_projections` of the log's database, so every gateway
sharing the log shares the read models too. A page of the log is one transaction
that applies each projection's row operations and moves its offset; that
transaction first locks the projections' offset rows (`FOR UPDATE`, in name order),
so two gateways catching up at once take turns and no event is applied twice.

The projections declare their tables in SQLite's dialect; `pg_sql` translates it
(and the `?` placeholders of `query`): `INTEGER` becomes `BIGINT`, `REAL` becomes
`DOUBLE PRECISION`, `WITHOUT ROWID` goes, and the column `user` (reserved in
PostgreSQL) is quoted. `query` returns the same row dicts as the SQLite store; sums
of integer columns come back as `int`, not `Decimal`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import psycopg
import structlog
from psycopg import sql as pgsql
from psycopg.rows import dict_row

from eventstore._codec import BlobRef
from eventstore._errors import EventStoreError, StoreBrokenError
from eventstore._recorder import Recorded, Recorder
from eventstore._registry import Event
from eventstore.projections._model import (
    Delete,
    Projection,
    ProjectionStatus,
    RowOp,
    check_identifier,
)
from eventstore.projections._store import (
    CatchUpReport,
    ProjectionStore,
    _position_before,
    _upsert_sql,
)

__all__ = ["PostgresProjectionStore", "pg_sql"]

log = structlog.get_logger()

_OFFSETS = """
CREATE TABLE IF NOT EXISTS projection_offsets (
    name     TEXT PRIMARY KEY,
    version  BIGINT NOT NULL,
    position BIGINT NOT NULL,
    error    TEXT
)
"""

_RESERVED = frozenset({"user"})
"""Column names the projections use that PostgreSQL reserves (quoted by `pg_sql`)."""

_DDL_TYPES = {"integer": "BIGINT", "real": "DOUBLE PRECISION"}

_TOKEN = re.compile(r"--[^\n]*|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[A-Za-z_][A-Za-z0-9_]*|.",
                    re.DOTALL)


def pg_sql(text: str, *, ddl: bool = False) -> str:
    """`text` (SQLite dialect, `?` placeholders) as PostgreSQL with `%s` placeholders.

    Outside string literals, quoted names and comments: `?` becomes `%s`, reserved
    column names are quoted and `instr(` becomes `strpos(` (same arguments). A query's
    `%` is doubled everywhere, literals included (psycopg reads every `%` of a query
    run with arguments). With `ddl` (run without arguments, `%` kept), SQLite's
    `INTEGER` and `REAL` become `BIGINT` and `DOUBLE PRECISION` and `WITHOUT ROWID` goes.
    """
    out: list[str] = []
    tokens = _TOKEN.findall(text)
    skip = 0
    for index, token in enumerate(tokens):
        if skip:
            skip -= 1
            continue
        lower = token.lower()
        if token == "?":
            out.append("%s")
        elif token.startswith("--"):
            continue
        elif not ddl and "%" in token:
            out.append(token.replace("%", "%%"))
        elif lower == "instr" and tokens[index + 1:index + 2] == ["("]:
            out.append("strpos")
        elif token in _RESERVED:
            out.append(f'"{token}"')
        elif ddl and lower in _DDL_TYPES:
            out.append(_DDL_TYPES[lower])
        elif ddl and lower == "without":
            rest = [t for t in tokens[index + 1:index + 4]]
            if len(rest) >= 2 and rest[0].isspace() and rest[1].lower() == "rowid":
                skip = 2
                continue
            out.append(token)
        else:
            out.append(token)
    return "".join(out)


def _plain(value: Any) -> Any:
    """A result value as SQLite's store would give it (sums are `numeric` in PostgreSQL)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _param(value: Any) -> Any:
    """A row value as PostgreSQL takes it into an INTEGER column (bools are 0/1 in SQLite)."""
    return int(value) if isinstance(value, bool) else value


def _q(name: str) -> str:
    """A checked identifier, double-quoted."""
    return f'"{check_identifier(name)}"'


class _Context:
    """The read-only view a projection gets: blobs from the recorder, its own rows."""

    def __init__(self, recorder: Recorder, conn: psycopg.Connection[Any],
                 tables: Iterable[str]) -> None:
        self._recorder = recorder
        self._db = conn
        self._tables = frozenset(tables)

    def load_blob(self, ref: BlobRef) -> Any:
        return self._recorder.load_blob(ref)

    def get(self, table: str, **key: Any) -> Mapping[str, Any] | None:
        if table not in self._tables:
            raise ValueError(f"a projection may only read its own tables, not {table!r}")
        where = " AND ".join(f"{_q(k)} = %s" for k in key)
        with self._db.cursor(row_factory=dict_row) as cursor:
            cursor.execute(f"SELECT * FROM {_q(table)} WHERE {where}".encode(),
                           tuple(_param(v) for v in key.values()))
            row = cursor.fetchone()
        return None if row is None else {k: _plain(v) for k, v in row.items()}


class PostgresProjectionStore(ProjectionStore):
    """Projections' tables and offsets in the log's PostgreSQL database (module docstring).

    A `ProjectionStore` to its callers (the query helpers of the projection modules
    take either): `catch_up` is inherited, every method touching the database is
    PostgreSQL's own.
    """

    def __init__(self, url: str, projections: Sequence[Projection]) -> None:
        """Connect, create the schema and every projection's tables (version-checked).

        Raises:
            StoreBrokenError: the database cannot be reached or set up.
            ValueError: two projections share a name or a table.
        """
        self.path = url
        self.projections = {p.name: p for p in projections}
        if len(self.projections) != len(projections):
            raise ValueError("projection names must be unique")
        tables = [t for p in projections for t in p.tables]
        if len(set(tables)) != len(tables):
            raise ValueError("projections must not share tables")
        try:
            self._db: psycopg.Connection[Any] = psycopg.connect(url, autocommit=False)
        except psycopg.Error as exc:
            raise StoreBrokenError(f"cannot connect to the projection database: {exc}") from None
        try:
            row = self._db.execute("SELECT current_schema()").fetchone()
            self.schema = f"{row[0] if row and row[0] else 'public'}_projections"
            # One gateway at a time creates the schema and tables (PostgreSQL's
            # CREATE … IF NOT EXISTS can still collide when two run at once).
            self._db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.schema,))
            self._db.execute(pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                pgsql.Identifier(self.schema)))
            self._db.execute(pgsql.SQL("SET search_path TO {}").format(
                pgsql.Identifier(self.schema)))
            self._db.execute(_OFFSETS)
            for projection in projections:
                self._prepare(projection)
            self._db.commit()
        except psycopg.Error as exc:
            self._db.close()
            raise StoreBrokenError(f"cannot set up the projection tables: {exc}") from None

    def _prepare(self, projection: Projection) -> None:
        """Create the projection's tables; drop them first if its version changed."""
        rows = self._db.execute("SELECT version FROM projection_offsets WHERE name = %s",
                                  (projection.name,)).fetchall()
        if rows and rows[0][0] != projection.version:
            log.info("projection_version_changed", projection=projection.name,
                     stored=rows[0][0], current=projection.version)
            self._drop(projection)
            rows = []
        for ddl in projection.tables.values():
            self._db.execute(pg_sql(ddl, ddl=True).encode())
        if not rows:
            self._db.execute("INSERT INTO projection_offsets VALUES (%s, %s, 0, NULL) "
                               "ON CONFLICT (name) DO NOTHING",
                               (projection.name, projection.version))

    def _drop(self, projection: Projection) -> None:
        """Drop the tables and move the offset back to 0 under the current version.

        The offset row is updated, not deleted and inserted again, so a gateway waiting
        on its lock (`_page`) then sees position 0 instead of missing the row.
        """
        for table in projection.tables:
            self._db.execute(f"DROP TABLE IF EXISTS {_q(table)}".encode())
        self._db.execute("UPDATE projection_offsets SET version = %s, position = 0, error = NULL "
                         "WHERE name = %s", (projection.version, projection.name))

    # -- applying -------------------------------------------------------------------
    def _page(
        self, recorder: Recorder, active: list[Projection], size: int, failures: dict[str, str]
    ) -> tuple[int, dict[str, int]]:
        """Apply one page of the log in one transaction, the offset rows locked."""
        conn = self._db
        try:
            try:
                # Lock the offsets before reading them: a second gateway waits here
                # and then reads the offsets this transaction committed.
                locked = conn.execute(
                    "SELECT name, position, error FROM projection_offsets "
                    "WHERE name = ANY(%s) ORDER BY name FOR UPDATE",
                    ([p.name for p in active],)).fetchall()
                stored = {r[0]: (int(r[1]), r[2]) for r in locked}
                offsets = {p.name: stored.get(p.name, (0, None))[0] for p in active}
                records = recorder.read_all(min(offsets.values()), size)
                for projection in active:
                    name = projection.name
                    done = self._apply_page(recorder, projection, offsets[name], records,
                                            failures)
                    error = failures.get(name)
                    if (done, error) != stored.get(name, (0, None)):
                        conn.execute("UPDATE projection_offsets SET position = %s, error = %s "
                                     "WHERE name = %s", (done, error, name))
                    offsets[name] = done
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        except psycopg.Error as exc:
            raise StoreBrokenError(f"projection store (schema {self.schema}): {exc}") from None
        return len(records), offsets

    def _apply_page(
        self,
        recorder: Recorder,
        projection: Projection,
        offset: int,
        records: list[Recorded[Event]],
        failures: dict[str, str],
    ) -> int:
        """Apply `records` past `offset` in one savepoint; returns the position reached."""
        types = projection.types
        todo = [r for r in records if r.position > offset
                and (types is None or r.type_name in types)]
        end = records[-1].position if records and records[-1].position > offset else offset
        if not todo:
            return end
        context = _Context(recorder, self._db, projection.tables)
        conn = self._db
        conn.execute("SAVEPOINT projection_page")
        failed = self._apply_events(projection, todo, context)
        while failed is not None:
            index, error = failed
            conn.execute("ROLLBACK TO SAVEPOINT projection_page")
            failures[projection.name] = error
            end = _position_before(records, todo[index].position, offset)
            todo = todo[:index]
            failed = self._apply_events(projection, todo, context)
        conn.execute("RELEASE SAVEPOINT projection_page")
        return end

    def _apply_events(
        self, projection: Projection, records: list[Recorded[Event]], context: _Context
    ) -> tuple[int, str] | None:
        """Apply each record's row operations; on a handler error, (its index, the error)."""
        for index, record in enumerate(records):
            try:
                for op in projection.project(record, context):
                    self._execute(projection, op)
            except (EventStoreError, psycopg.DataError, psycopg.IntegrityError,
                    psycopg.ProgrammingError, ValueError, TypeError, KeyError, LookupError,
                    AttributeError, ArithmeticError) as exc:
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
            where = " AND ".join(f"{_q(k)} = %s" for k in op.key)
            self._db.execute(f"DELETE FROM {_q(op.table)} WHERE {where}".encode(),
                               tuple(_param(v) for v in op.key.values()))
            return
        values = (*op.key.values(), *op.set.values(), *op.add.values(),
                  *op.insert_only.values())
        self._db.execute(_upsert_sql(op, "postgres").encode(),
                         tuple(_param(v) for v in values))

    def _offsets(self) -> dict[str, tuple[int, str | None]]:
        """Every stored offset row: name → (position, error), read in a transaction of its own."""
        try:
            rows = self._db.execute(
                "SELECT name, position, error FROM projection_offsets").fetchall()
        except psycopg.Error as exc:
            raise StoreBrokenError(f"projection store (schema {self.schema}): {exc}") from None
        finally:
            self._db.rollback()
        return {r[0]: (int(r[1]), r[2]) for r in rows}

    # -- maintenance ----------------------------------------------------------------
    def rebuild(
        self, recorder: Recorder, name: str | None = None, *,
        on_page: Callable[[int], None] | None = None,
    ) -> CatchUpReport:
        """Drop the projection's (or every projection's) rows and replay from position 0.

        Raises:
            KeyError: no projection has that name.
            StoreBrokenError: the database failed.
        """
        chosen = [self.projections[name]] if name is not None else list(
            self.projections.values())
        try:
            try:
                self._db.execute("SELECT name FROM projection_offsets WHERE name = ANY(%s) "
                                   "ORDER BY name FOR UPDATE", ([p.name for p in chosen],))
                for projection in chosen:
                    self._drop(projection)
                    self._prepare(projection)
                self._db.commit()
            except BaseException:
                self._db.rollback()
                raise
        except psycopg.Error as exc:
            raise StoreBrokenError(f"projection store (schema {self.schema}): {exc}") from None
        log.info("projections_rebuilding", projections=[p.name for p in chosen])
        return self.catch_up(recorder, names=[p.name for p in chosen], on_page=on_page)

    def status(self) -> list[ProjectionStatus]:
        """Every registered projection's offset and last error, by name."""
        try:
            rows = self._db.execute("SELECT name, version, position, error "
                                      "FROM projection_offsets ORDER BY name").fetchall()
        finally:
            self._db.rollback()
        return [ProjectionStatus(r[0], int(r[1]), int(r[2]), r[3]) for r in rows
                if r[0] in self.projections]

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a read-only query (SQLite dialect, `?` placeholders); rows as dicts.

        Raises:
            StoreBrokenError: the query failed.
        """
        try:
            with self._db.cursor(row_factory=dict_row) as cursor:
                cursor.execute(pg_sql(sql).encode(), tuple(_param(a) for a in args))
                rows = cursor.fetchall() if cursor.description is not None else []
        except psycopg.Error as exc:
            raise StoreBrokenError(f"projection query failed: {exc}") from None
        finally:
            self._db.rollback()
        return [{k: _plain(v) for k, v in row.items()} for row in rows]

    def close(self) -> None:
        """Close the connection. Idempotent."""
        self._db.close()
