"""`Catalogue`: the repository catalogue in its own apsw SQLite file (`index.db`).

Tables: ``files`` (path, language, size, mtime, content hash, parser, problem),
``symbols``, ``refs``, ``imports`` (each tied to a file id) and ``meta`` (JSON values:
project facts, the last rebuild). The schema version lives in ``PRAGMA user_version``;
the catalogue is derived data, so a file with another version is emptied and rebuilt
rather than migrated. One writer (the indexer, inside `write()`), any number of
readers, each thread with its own connection (WAL mode).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import apsw

from lynkr.errors import IndexerError
from lynkr.indexer._model import Extraction

__all__ = ["SCHEMA_VERSION", "Catalogue", "FileState"]

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, language TEXT NOT NULL,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, hash TEXT NOT NULL, parser TEXT NOT NULL,
    problem TEXT);
CREATE TABLE symbols (id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL, name TEXT NOT NULL,
    kind TEXT NOT NULL, start_line INTEGER, start_col INTEGER,
    end_line INTEGER, end_col INTEGER, parent TEXT, signature TEXT);
CREATE TABLE refs (id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL, name TEXT NOT NULL,
    line INTEGER, col INTEGER, enclosing TEXT);
CREATE TABLE imports (file_id INTEGER NOT NULL, module TEXT NOT NULL, line INTEGER);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Secondary indexes: `bulk()` drops them before a load into an empty catalogue and
# builds them after it, which is cheaper than updating them row by row.
_INDEXES = """
CREATE INDEX IF NOT EXISTS symbols_name ON symbols(name);
CREATE INDEX IF NOT EXISTS symbols_file ON symbols(file_id);
CREATE INDEX IF NOT EXISTS refs_name ON refs(name);
CREATE INDEX IF NOT EXISTS refs_file ON refs(file_id);
CREATE INDEX IF NOT EXISTS imports_file ON imports(file_id);
"""
_INDEX_NAMES = ("symbols_name", "symbols_file", "refs_name", "refs_file", "imports_file")
_TABLES = ("files", "symbols", "refs", "imports", "meta")
_SYMBOL_COLUMNS = ("s.name, s.kind, f.path, f.language, s.start_line, s.start_col, s.end_line, "
                   "s.end_col, s.parent, s.signature")

FileState = tuple[int, int, int, str]  # (file id, size, mtime_ns, content hash)


class Catalogue:
    """The catalogue file (see module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._prepare(self._conn())
        except (OSError, apsw.Error) as exc:
            raise IndexerError(f"cannot open the catalogue {self.path}: {exc}") from exc

    # -- connections ---------------------------------------------------------------
    def _conn(self) -> apsw.Connection:
        conn: apsw.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = apsw.Connection(str(self.path))
            conn.set_busy_timeout(10_000)
            conn.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def _prepare(self, conn: apsw.Connection) -> None:
        with conn:
            version = conn.execute("PRAGMA user_version").fetchall()[0][0]
            if version == SCHEMA_VERSION:
                return
            for table in _TABLES:
                conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(_SCHEMA)
            conn.execute(_INDEXES)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn().execute(sql, args).fetchall()
        except apsw.Error as exc:
            raise IndexerError(f"catalogue read failed: {exc}") from exc

    # -- writing -------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[None]:
        """One transaction around a batch of writes."""
        try:
            with self._conn():
                yield
        except apsw.Error as exc:
            raise IndexerError(f"catalogue write failed: {exc}") from exc

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """`write()` for loading an empty catalogue: indexes built at the end, no fsync.

        The secondary indexes are dropped inside the transaction and built again
        before it commits (a failure rolls both back), and ``synchronous=OFF`` skips
        the fsyncs: the catalogue is derived data that a rebuild recreates.
        """
        conn = self._conn()
        conn.execute("PRAGMA synchronous=OFF")
        try:
            with self.write():
                for name in _INDEX_NAMES:
                    conn.execute(f"DROP INDEX IF EXISTS {name}")
                yield
                conn.execute(_INDEXES)
        finally:
            conn.execute("PRAGMA synchronous=NORMAL")

    def file_states(self) -> dict[str, FileState]:
        """Every catalogued path with its (id, size, mtime_ns, hash)."""
        return {row[0]: row[1:] for row in
                self._rows("SELECT path, id, size, mtime_ns, hash FROM files")}

    def _clear_file(self, file_id: int) -> None:
        conn = self._conn()
        for table in ("symbols", "refs", "imports"):
            conn.execute(f"DELETE FROM {table} WHERE file_id=?", (file_id,))

    def store_file(self, path: str, language: str, size: int, mtime_ns: int, digest: str,
                   found: Extraction, old_id: int | None) -> None:
        """Insert or replace one file and everything extracted from it (inside `write()`)."""
        conn = self._conn()
        if old_id is not None:
            self._clear_file(old_id)
            conn.execute("DELETE FROM files WHERE id=?", (old_id,))
        conn.execute(
            "INSERT INTO files(id, path, language, size, mtime_ns, hash, parser, problem) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (old_id, path, language, size, mtime_ns, digest, found.parser, found.problem))
        file_id = conn.last_insert_rowid()
        conn.executemany(
            "INSERT INTO symbols(file_id, name, kind, start_line, start_col, "
            "end_line, end_col, parent, signature) VALUES (?,?,?,?,?,?,?,?,?)",
            [(file_id, *s) for s in found.symbols])
        conn.executemany(
            "INSERT INTO refs(file_id, name, line, col, enclosing) VALUES (?,?,?,?,?)",
            [(file_id, *r) for r in found.references])
        conn.executemany("INSERT INTO imports(file_id, module, line) VALUES (?,?,?)",
                         [(file_id, *i) for i in found.imports])

    def touch_file(self, file_id: int, mtime_ns: int) -> None:
        """Record a new mtime for a file whose content did not change."""
        self._conn().execute("UPDATE files SET mtime_ns=? WHERE id=?", (mtime_ns, file_id))

    def delete_file(self, file_id: int) -> None:
        """Forget a file and everything extracted from it (inside `write()`)."""
        self._clear_file(file_id)
        self._conn().execute("DELETE FROM files WHERE id=?", (file_id,))

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON value under `key`."""
        self._conn().execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                             (key, json.dumps(value, sort_keys=True)))

    # -- reading -------------------------------------------------------------------
    def meta(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under `key`, or `default`."""
        rows = self._rows("SELECT value FROM meta WHERE key=?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def counts(self) -> tuple[int, int, int]:
        """(files, symbols, references) in the catalogue."""
        row = self._rows("SELECT (SELECT count(*) FROM files), (SELECT count(*) FROM symbols), "
                         "(SELECT count(*) FROM refs)")[0]
        return int(row[0]), int(row[1]), int(row[2])

    def language_counts(self) -> dict[str, int]:
        """Number of files per language, most common first."""
        rows = self._rows("SELECT language, count(*) AS n FROM files GROUP BY language "
                          "ORDER BY n DESC, language")
        return {str(lang): int(n) for lang, n in rows}

    def problems(self) -> list[tuple[str, str]]:
        """(path, problem) of catalogued files that were only partly understood."""
        return self._rows("SELECT path, problem FROM files WHERE problem IS NOT NULL "
                          "ORDER BY path")

    def symbols_where(self, clause: str, args: Sequence[Any], limit: int) -> list[tuple[Any, ...]]:
        """Symbol rows (see `_SYMBOL_COLUMNS`) matching a WHERE clause on ``s``/``f``."""
        return self._rows(
            f"SELECT {_SYMBOL_COLUMNS} FROM symbols s JOIN files f ON f.id = s.file_id "
            f"WHERE {clause} ORDER BY f.path, s.start_line LIMIT ?", (*args, limit))

    def distinct_names(self) -> list[str]:
        """Every distinct symbol name."""
        return [row[0] for row in self._rows("SELECT DISTINCT name FROM symbols")]

    def references(self, name: str, limit: int) -> list[tuple[Any, ...]]:
        """(path, line, col, enclosing) of uses of `name`, by path and position."""
        return self._rows(
            "SELECT f.path, r.line, r.col, r.enclosing FROM refs r JOIN files f "
            "ON f.id = r.file_id WHERE r.name = ? ORDER BY f.path, r.line, r.col LIMIT ?",
            (name, limit))

    def file_row(self, path: str) -> tuple[Any, ...] | None:
        """(id, language, parser, problem) of a catalogued path, or None."""
        rows = self._rows("SELECT id, language, parser, problem FROM files WHERE path=?", (path,))
        return rows[0] if rows else None

    def outline_rows(self, file_id: int) -> list[tuple[Any, ...]]:
        """(name, kind, start_line, end_line, start_col, end_col, signature) of a file."""
        return self._rows(
            "SELECT name, kind, start_line, end_line, start_col, end_col, signature FROM symbols "
            "WHERE file_id=? ORDER BY start_line, start_col, end_line DESC", (file_id,))

    def import_counts(self, limit: int) -> list[tuple[str, int]]:
        """The most imported modules with how many files import each."""
        return self._rows(
            "SELECT module, count(DISTINCT file_id) AS n FROM imports GROUP BY module "
            "ORDER BY n DESC, module LIMIT ?", (limit,))

    def paths(self) -> list[str]:
        """Every catalogued path, sorted."""
        return [row[0] for row in self._rows("SELECT path FROM files ORDER BY path")]
