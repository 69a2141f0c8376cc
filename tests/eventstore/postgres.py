"""Throwaway PostgreSQL databases and schemas for the tests of the PostgreSQL store.

The server is `LYNKR_TEST_POSTGRES_URL` when set, else the local one at 127.0.0.1
(trust auth, user `postgres`), as on the CI machine. A test module gets its own
database `lynkr_test_<random>`, dropped at the end; each test gets a fresh schema in
it (selected through the URL's `search_path`), which is much faster than a database
per test and just as separate (the store's NOTIFY channel is named after its schema).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

ADMIN_URL = os.environ.get("LYNKR_TEST_POSTGRES_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


@contextmanager
def temporary_database() -> Iterator[str]:
    """A new empty database's URL, dropped (with its connections) on exit."""
    name = f"lynkr_test_{secrets.token_hex(6)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}".encode())
    try:
        yield _with_database(ADMIN_URL, name)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())


def fresh_schema(database_url: str) -> str:
    """A URL of `database_url` whose tables go to a new empty schema."""
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}".encode())
    separator = "&" if "?" in database_url else "?"
    return f"{database_url}{separator}options={quote(f'-csearch_path={schema}')}"
