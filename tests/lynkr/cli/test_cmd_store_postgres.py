"""The projection-reading commands with a PostgreSQL log: the data directory that holds
this machine's `projections.db` is created when missing (nothing else creates it when
the log is not a SQLite file in it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

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
def test_projection_commands_create_a_missing_data_dir(argv: list[str], postgres_url: str,
                                                        run_lynkr: RunLynkr,
                                                        tmp_path: Path) -> None:
    """With `LYNKR_STORE_URL` on PostgreSQL and no data directory yet, the command
    answers (exit 0) and leaves `projections.db` in a new data directory."""
    recorder = open_recorder(postgres_url)
    try:
        recorder.append("session-pg", 0, [SessionStarted(session_id="pg", source="cli")])
    finally:
        recorder.close()
    data_dir = tmp_path / "data"
    assert not data_dir.exists()
    result = run_lynkr(*argv, LYNKR_STORE_URL=postgres_url)
    assert result.returncode == 0, result.stderr
    assert (data_dir / "projections.db").is_file()
    if argv[0] == "sessions":
        assert [row["session_id"] for row in json.loads(result.stdout)] == ["pg"]
