"""`open_recorder`: one place that turns a store URL into the recorder behind it.

`sqlite:///path/lynkr.db` (or a plain path) opens `SqliteRecorder` on that file;
`postgresql://…` (or `postgres://…`) opens `PostgresRecorder` on that database.
"""

from __future__ import annotations

import os

from eventstore._recorder import Recorder
from eventstore._registry import EventRegistry

__all__ = ["is_postgres_url", "open_recorder", "redact_url", "sqlite_path"]

_PG_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(url: str | os.PathLike[str]) -> bool:
    """Whether `url` names a PostgreSQL database."""
    return isinstance(url, str) and url.startswith(_PG_SCHEMES)


def sqlite_path(url: str | os.PathLike[str]) -> str:
    """The file a `sqlite:///path` URL (or a plain path) names.

    Raises:
        ValueError: `url` is a URL of another kind.
    """
    text = os.fspath(url)
    if text.startswith("sqlite://"):
        return text.removeprefix("sqlite://")
    if "://" in text:
        raise ValueError(f"not a store URL Lynkr knows: {text.split('://', 1)[0]}:// "
                         "(use sqlite:///path or postgresql://…)")
    return text


def open_recorder(url: str | os.PathLike[str], *, durability: str = "NORMAL",
                  registry: EventRegistry | None = None) -> Recorder:
    """The recorder for `url` (see module docstring), opened and ready.

    Raises:
        ValueError: the URL's scheme is unknown, or `durability` is not NORMAL/FULL.
        SchemaVersionError: the store was written by a newer Lynkr.
        StoreBrokenError: the store cannot be opened.
    """
    if is_postgres_url(url):
        from eventstore._postgres import PostgresRecorder  # psycopg loads only when used
        return PostgresRecorder(os.fspath(url), durability=durability, registry=registry)
    from eventstore._apsw import SqliteRecorder
    if durability not in ("NORMAL", "FULL"):
        raise ValueError(f"durability must be NORMAL or FULL, not {durability!r}")
    return SqliteRecorder(sqlite_path(url), durability=durability,  # type: ignore[arg-type]
                          registry=registry)


def redact_url(url: str) -> str:
    """`url` with its password (if any) replaced by `***`, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"
