"""Fixtures of the event store tests: PostgreSQL databases (see `tests/eventstore/postgres.py`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.eventstore.postgres import fresh_schema, temporary_database


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """One database for the test module, dropped after it."""
    with temporary_database() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """A URL whose store starts empty: a new schema of the module's database."""
    return fresh_schema(postgres_database)
