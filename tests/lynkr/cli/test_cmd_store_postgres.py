"""The projection-reading commands with a PostgreSQL log: they answer without a data
directory, and the projections they read live in the log's database (no `projections.db`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import eventstore.events  # noqa: F401  (registers the event classes)
from eventstore import open_recorder
from eventstore.events.session import SessionStarted
from tests.eventstore.postgres import fresh_schema, temporary_database
from tests.lynkr.cli.conftest import RunLynkr


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty PostgreSQL store in a database dropped after the test."""
    with temporary_database() as url:
        yield fresh_schema(url)


@pytest.mark.parametrize("argv", [["usage", "--json"], ["sessions", "--json"],
                                  ["projections", "status", "--json"],
                                  ["projections", "rebuild"]])
def test_projection_commands_keep_projections_in_the_database(argv: list[str], postgres_url: str,
                                                        run_lynkr: RunLynkr,
                                                        tmp_path: Path) -> None:
    """With `LYNKR_STORE_URL` on PostgreSQL and no data directory, the command answers
    (exit 0) from projections kept in the schema `<log schema>_projections`."""
    recorder = open_recorder(postgres_url)
    try:
        recorder.append("session-pg", 0, [SessionStarted(session_id="pg", source="cli")])
    finally:
        recorder.close()
    data_dir = tmp_path / "data"
    assert not data_dir.exists()
    result = run_lynkr(*argv, LYNKR_STORE_URL=postgres_url)
    assert result.returncode == 0, result.stderr
    assert not (data_dir / "projections.db").exists()
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute("SELECT current_schema()").fetchone()
        assert row is not None
        names = conn.execute(f"SELECT name FROM {row[0]}_projections.projection_offsets"
                             .encode()).fetchall()
    assert ("sessions",) in names
    if argv[0] == "sessions":
        assert [row["session_id"] for row in json.loads(result.stdout)] == ["pg"]
