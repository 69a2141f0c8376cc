"""`lynkr migrate`: a SQLite log copied into PostgreSQL, verified, resumable."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import apsw
import httpx
import pytest

import eventstore.events  # noqa: F401  (registers the event classes)
from eventstore import RawEvent, Recorder, SqliteRecorder, make_blob, open_recorder
from eventstore.events.session import RouteChosen
from lynkr.cli import main
from tests.e2e.processes import REPO, gateway_processes
from tests.eventstore.postgres import fresh_schema, temporary_database


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """One database for this module, dropped after it."""
    with temporary_database() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """An empty PostgreSQL store (a fresh schema)."""
    return fresh_schema(postgres_database)


def raw_log(recorder: Recorder) -> list[RawEvent]:
    """Every row of the log, undecoded, in position order."""
    return [row for info in recorder.list_streams() for row in recorder.read_raw(info.stream_id)]


def same_logs(sqlite_file: Path, url: str) -> bool:
    """Whether both stores hold the same rows (positions and hashes included) and blobs."""
    source, target = SqliteRecorder(sqlite_file), open_recorder(url)
    try:
        return (raw_log(source) == raw_log(target)
                and source.raw_blobs(b"", 10**6) == target.raw_blobs(b"", 10**6))  # type: ignore[attr-defined]
    finally:
        source.close()
        target.close()


def small_log(path: Path, events: int) -> None:
    """A SQLite log of `events` events over 7 streams, one blob per stream."""
    recorder = SqliteRecorder(path)
    try:
        for n in range(events):
            stream = f"session-{n % 7}"
            blob = make_blob({"system": f"prompt {n % 7}" * 300})
            recorder.append(stream, n // 7, [RouteChosen(turn=n, provider="p", backend_model="m",
                                                         reason="migrate")], blobs=[blob])
    finally:
        recorder.close()


def test_a_gateway_session_migrates_and_verifies_on_postgres(
        tmp_path: Path, postgres_url: str, monkeypatch, capsys) -> None:
    """Two turns served by a real gateway, copied: same rows, and `lynkr verify` passes there."""
    with gateway_processes(tmp_path) as state:
        for text in ("hello", "again"):
            reply = httpx.post(f"{state['url']}/v1/messages", timeout=30, headers={
                "x-api-key": "k", "anthropic-version": "2023-06-01",
                "X-Claude-Code-Session-Id": "migrated"}, json={
                "model": "claude-sonnet-4-5", "max_tokens": 50,
                "messages": [{"role": "user", "content": text}]})
            assert reply.status_code == 200, reply.text
    db = state["db"]
    monkeypatch.setenv("LYNKR_DATA_DIR", str(tmp_path / "elsewhere"))
    assert main(["migrate", "--from", f"sqlite://{db}", "--to", postgres_url]) == 0
    out = capsys.readouterr()
    assert "lynkr migrate: " in out.err
    assert "copied " in out.out
    assert same_logs(db, postgres_url)
    monkeypatch.setenv("LYNKR_STORE_URL", postgres_url)
    assert main(["verify"]) == 0
    checked = re.search(r"(\d+) events checked, 0 damaged", capsys.readouterr().out)
    assert checked is not None
    assert int(checked.group(1)) >= 6
    # ...and the client got exactly what the copied log implies (replay --verify there)
    monkeypatch.setenv("MODEL_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert main(["replay", "migrated", "--verify", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [turn["status"] for turn in report["turns"]] == ["ok", "ok"]


def test_a_copy_stopped_part_way_resumes_where_it_stopped(
        tmp_path: Path, postgres_url: str, capsys) -> None:
    """`--max-events` stops a copy; the next run continues from the target's last position."""
    db = tmp_path / "lynkr.db"
    small_log(db, 700)
    source = f"sqlite://{db}"
    assert main(["migrate", "--from", source, "--to", postgres_url, "--max-events", "250",
                 "--page", "100"]) == 0
    target = open_recorder(postgres_url)
    assert target.last_position() == 250
    target.close()
    assert main(["migrate", "--from", source, "--to", postgres_url]) == 0
    assert "copied 450 events" in capsys.readouterr().out
    assert same_logs(db, postgres_url)
    assert main(["migrate", "--from", source, "--to", postgres_url]) == 0
    assert "copied 0 events" in capsys.readouterr().out


def test_a_killed_copy_resumes_and_completes(tmp_path: Path, postgres_url: str) -> None:
    """SIGKILL during a copy loses nothing: the second run completes an identical log."""
    db = tmp_path / "lynkr.db"
    small_log(db, 6000)
    argv = [sys.executable, "-m", "lynkr", "migrate", "--from", f"sqlite://{db}", "--to",
            postgres_url, "--page", "100"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "LYNKR_DATA_DIR": str(tmp_path)}
    child = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             text=True)
    assert child.stderr is not None
    assert child.stderr.readline().startswith("lynkr migrate: ")
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stderr.close()
    partial = open_recorder(postgres_url)
    assert 0 < partial.last_position() < 6000
    partial.close()
    assert subprocess.run(argv, env=env, capture_output=True, check=False).returncode == 0
    assert same_logs(db, postgres_url)


def test_a_damaged_source_event_stops_the_copy(tmp_path: Path, postgres_url: str,
                                               capsys) -> None:
    """A payload edited in the source fails the hash check and is never written."""
    db = tmp_path / "lynkr.db"
    small_log(db, 20)
    conn = apsw.Connection(str(db))
    rows = conn.execute("SELECT payload FROM events WHERE position = 9").fetchall()
    payload = bytearray(rows[0][0])
    payload[-1] ^= 0x01
    conn.execute("UPDATE events SET payload = ? WHERE position = 9", (bytes(payload),))
    conn.close()
    assert main(["migrate", "--from", f"sqlite://{db}", "--to", postgres_url, "--page",
                 "5"]) == 1
    assert "position 9: hash mismatch" in capsys.readouterr().err
    target = open_recorder(postgres_url)
    assert target.last_position() == 5
    target.close()
