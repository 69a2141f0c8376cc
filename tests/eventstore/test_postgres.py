"""What the PostgreSQL store adds to the contract: several processes on one log.

The contract itself runs in `test_recorder_contract.py`; here, the promises that only
matter when several gateways share the database: positions commit in order (a
follower never skips an event that commits late), the unique constraint decides
conflicts between processes, and NOTIFY wakes a follower in another process.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

import eventstore.events  # noqa: F401  (registers the event classes)
from eventstore import (
    ConcurrencyError,
    SchemaVersionError,
    open_recorder,
    redact_url,
    sqlite_path,
    verify_log,
)
from eventstore.events.session import RouteChosen

ORDER_CHILD = Path(__file__).with_name("order_child.py")


def route(turn: int) -> RouteChosen:
    """A small registered event."""
    return RouteChosen(turn=turn, provider="p", backend_model="m", reason="test")


def test_a_follower_sees_every_position_once_in_order_while_processes_append(
        postgres_url: str) -> None:
    """Three processes append 3,000 events at once; a follower sees 1..3000 exactly once."""
    follower = open_recorder(postgres_url)
    seen: list[int] = []
    thread = threading.Thread(target=lambda: seen.extend(
        r.position for r in follower.follow(0, idle_timeout=5, page=7)))
    thread.start()
    children = [subprocess.Popen([sys.executable, str(ORDER_CHILD), postgres_url, f"p{n}",
                                  "1000"], stdout=subprocess.PIPE, text=True)
                for n in range(3)]
    try:
        outs = [child.communicate(timeout=120)[0] for child in children]
    finally:
        for child in children:
            child.kill()
    thread.join()
    follower.close()
    assert [out.strip() for out in outs] == ["done"] * 3
    assert seen == list(range(1, 3001))


def test_two_recorders_conflict_on_one_stream(postgres_url: str) -> None:
    """The second gateway appending at a taken version gets ConcurrencyError, not an overwrite."""
    first, second = open_recorder(postgres_url), open_recorder(postgres_url)
    try:
        first.append("session-x", 0, [route(1)])
        with pytest.raises(ConcurrencyError):
            second.append("session-x", 0, [route(2)])
        assert second.append("session-x", 1, [route(2)]).version == 2
        assert [r.event.turn for r in first.read_stream("session-x")] == [1, 2]
        assert all(damage is None for _, _, damage in verify_log(first))
    finally:
        first.close()
        second.close()


def test_the_unique_constraint_refuses_a_taken_sequence_number(postgres_url: str) -> None:
    """Even SQL that bypasses the recorder cannot store a second event at (stream, seq)."""
    recorder = open_recorder(postgres_url)
    try:
        recorder.append("s", 0, [route(1)])
        with psycopg.connect(postgres_url) as conn, pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO events SELECT position + 100, stream_id, seq, type, "
                         "version, recorded_at, payload, metadata, hash, NULL FROM events")
    finally:
        recorder.close()


def test_a_commit_in_another_recorder_wakes_a_waiter(postgres_url: str) -> None:
    """LISTEN/NOTIFY: `wait_for_position` returns when another connection commits."""
    waiter, writer = open_recorder(postgres_url), open_recorder(postgres_url)
    heard: list[int] = []
    waiter.add_commit_listener(heard.append)
    try:
        timer = threading.Timer(0.1, lambda: writer.append("s", 0, [route(1)]))
        timer.start()
        assert waiter.wait_for_position(0, timeout=10) == 1
        timer.join()
        assert heard == [1]
    finally:
        waiter.close()
        writer.close()


def test_a_newer_schema_is_refused(postgres_url: str) -> None:
    """A database written by a newer Lynkr is refused with a clear message."""
    open_recorder(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE lynkr_schema SET version = 99")
    with pytest.raises(SchemaVersionError, match="schema version 99"):
        open_recorder(postgres_url)


def test_store_urls_name_their_store() -> None:
    """sqlite:/// URLs and plain paths name a file; passwords are masked in messages."""
    assert sqlite_path("sqlite:///var/lynkr/lynkr.db") == "/var/lynkr/lynkr.db"
    assert sqlite_path("data/lynkr.db") == "data/lynkr.db"
    with pytest.raises(ValueError, match="mysql"):
        sqlite_path("mysql://x/y")
    assert redact_url("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
