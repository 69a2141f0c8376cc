"""The PostgreSQL event log's schema, created or migrated when a recorder opens it.

The tables mirror the SQLite file's (`eventstore._schema`) so rows, hashes and blobs
are byte-identical and `lynkr migrate` copies them as they are, plus `log_head`: one
row holding the last assigned global position. Every append transaction updates it
first, which takes its row lock until commit, so positions are assigned and
committed in order across every process (see `eventstore._pg_writer`). The tables
live in the connection's current schema; a schema version row refuses a database
written by a newer Lynkr. Two processes opening a fresh database at once are
serialized by an advisory lock.
"""

from __future__ import annotations

import hashlib

import psycopg

from eventstore._errors import SchemaVersionError

__all__ = ["PG_SCHEMA_VERSION", "channel_name", "migrate_pg"]

PG_MIGRATIONS: tuple[str, ...] = (
    # v1: the log, stream heads, blobs and the position counter.
    """
    CREATE TABLE events (
        position    bigint           PRIMARY KEY,
        stream_id   text COLLATE "C" NOT NULL,
        seq         bigint           NOT NULL,
        type        text             NOT NULL,
        version     integer          NOT NULL,
        recorded_at double precision NOT NULL,
        payload     bytea            NOT NULL,
        metadata    bytea            NOT NULL,
        hash        bytea            NOT NULL,
        event_id    text,
        UNIQUE (stream_id, seq)
    );
    CREATE UNIQUE INDEX events_event_id ON events (event_id) WHERE event_id IS NOT NULL;
    CREATE TABLE streams (
        stream_id text COLLATE "C" PRIMARY KEY,
        version   bigint NOT NULL,
        last_hash bytea  NOT NULL
    );
    CREATE TABLE blobs (
        digest bytea   PRIMARY KEY,
        codec  integer NOT NULL,
        size   bigint  NOT NULL,
        data   bytea   NOT NULL
    );
    CREATE TABLE log_head (
        id       integer PRIMARY KEY CHECK (id = 1),
        position bigint  NOT NULL
    );
    INSERT INTO log_head VALUES (1, 0);
    """,
)
PG_SCHEMA_VERSION = len(PG_MIGRATIONS)
_LOCK_KEY = 0x6C796E6B72  # "lynkr": the advisory lock that serializes migrations


def channel_name(schema: str) -> str:
    """The LISTEN/NOTIFY channel of the log in `schema` (channels are per database,
    so two logs in two schemas of one database must not hear each other)."""
    return "lynkr_log_" + hashlib.sha256(schema.encode()).hexdigest()[:16]


def migrate_pg(conn: psycopg.Connection[tuple[object, ...]], where: str) -> str:
    """Bring the log in `conn`'s current schema up to date; returns that schema's name.

    Raises:
        SchemaVersionError: the database was written by a newer Lynkr.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        row = conn.execute("SELECT current_schema()").fetchone()
        schema = str(row[0]) if row and row[0] else "public"
        conn.execute("CREATE TABLE IF NOT EXISTS lynkr_schema (version integer NOT NULL)")
        found_row = conn.execute("SELECT max(version) FROM lynkr_schema").fetchone()
        found = int(str(found_row[0])) if found_row and found_row[0] is not None else 0
        if found > PG_SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{where} has schema version {found}, but this Lynkr understands up to "
                f"{PG_SCHEMA_VERSION}: upgrade Lynkr or point LYNKR_STORE_URL elsewhere")
        for version in range(found, PG_SCHEMA_VERSION):
            conn.execute(PG_MIGRATIONS[version].encode())
            conn.execute("DELETE FROM lynkr_schema")
            conn.execute("INSERT INTO lynkr_schema VALUES (%s)", (version + 1,))
    return schema
