"""`open_projection_store`: the projection store that goes with the event log.

A PostgreSQL log keeps its projections in the same database
(`PostgresProjectionStore`), shared by every gateway on it; a SQLite log keeps them
in `projections.db` in the data directory (`ProjectionStore`), one per gateway.
`projection_store_location` names that place (what the projection worker is given)
and `open_projection_store_at` opens it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from eventstore._open import is_postgres_url
from eventstore.projections._model import Projection
from eventstore.projections._store import ProjectionStore

__all__ = ["open_projection_store", "open_projection_store_at", "projection_store_location"]


def projection_store_location(
    store: str | os.PathLike[str], data_dir: str | os.PathLike[str]
) -> str | Path:
    """Where the projections of the log at `store` live: the log's own PostgreSQL URL,
    or `data_dir/projections.db` for a SQLite log."""
    if is_postgres_url(store):
        return os.fspath(store)
    return Path(data_dir) / "projections.db"


def open_projection_store_at(
    location: str | os.PathLike[str], projections: Sequence[Projection]
) -> ProjectionStore:
    """The store at `location` (from `projection_store_location`), opened.

    Raises:
        StoreBrokenError: the store cannot be opened.
    """
    if is_postgres_url(location):
        from eventstore.projections._pg_store import PostgresProjectionStore  # loads psycopg

        return PostgresProjectionStore(os.fspath(location), projections)
    return ProjectionStore(location, projections)


def open_projection_store(
    store: str | os.PathLike[str], projections: Sequence[Projection],
    data_dir: str | os.PathLike[str],
) -> ProjectionStore:
    """The projection store for the event log at `store` (a path or a PostgreSQL URL).

    Raises:
        StoreBrokenError: the store cannot be opened.
    """
    return open_projection_store_at(projection_store_location(store, data_dir), projections)
