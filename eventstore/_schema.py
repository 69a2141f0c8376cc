"""The event database's schema and its migrations, tracked in `PRAGMA user_version`.

Each entry of `MIGRATIONS` lifts the file by one version inside one transaction.
Opening a file whose version is higher than `SCHEMA_VERSION` is refused.
"""

from __future__ import annotations

from typing import Any

import apsw

from eventstore._errors import SchemaVersionError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

MIGRATIONS: tuple[str, ...] = (
    # v1: the log and the stream heads.
    """
    CREATE TABLE events (
        position    INTEGER PRIMARY KEY AUTOINCREMENT,
        stream_id   TEXT    NOT NULL,
        seq         INTEGER NOT NULL,
        type        TEXT    NOT NULL,
        version     INTEGER NOT NULL,
        recorded_at REAL    NOT NULL,
        payload     BLOB    NOT NULL,
        metadata    BLOB    NOT NULL,
        hash        BLOB    NOT NULL,
        UNIQUE (stream_id, seq)
    );
    CREATE TABLE streams (
        stream_id TEXT PRIMARY KEY,
        version   INTEGER NOT NULL,
        last_hash BLOB    NOT NULL
    ) WITHOUT ROWID;
    """,
    # v2: idempotent appends and content-addressed blobs.
    """
    ALTER TABLE events ADD COLUMN event_id TEXT;
    CREATE UNIQUE INDEX events_event_id ON events (event_id) WHERE event_id IS NOT NULL;
    CREATE TABLE blobs (
        digest BLOB PRIMARY KEY,
        codec  INTEGER NOT NULL,
        size   INTEGER NOT NULL,
        data   BLOB    NOT NULL
    ) WITHOUT ROWID;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: apsw.Connection, path: str, target: int = SCHEMA_VERSION) -> int:
    """Bring the database at `conn` up to `target`; returns the version it started at.

    Raises:
        SchemaVersionError: the file is newer than this build understands.
    """
    row: Any = conn.execute("PRAGMA user_version").fetchall()[0]
    found = int(row[0])
    if found > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path} has schema version {found}, but this Lynkr understands up to "
            f"{SCHEMA_VERSION}: upgrade Lynkr or point LYNKR_DATA_DIR elsewhere"
        )
    for version in range(found, target):
        with conn:
            conn.execute(MIGRATIONS[version])
            conn.execute(f"PRAGMA user_version = {version + 1}")
    return found
