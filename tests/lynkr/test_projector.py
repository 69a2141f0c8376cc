"""`ProjectorProcess`: projections caught up by a real child process, restarted when it dies."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import trio

from actors import Projections
from eventstore import ProjectionWorkerError, SqliteRecorder
from lynkr import projector
from lynkr.projector import ProjectorProcess
from tests.eventstore.projections.sample_log import (
    STRAY,
    StrayNoted,
    respond,
    start_turn,
    stored_transcript,
    write_sample_log,
    write_stray_log,
)


@pytest.fixture
def recorder(tmp_path: Path):
    rec = SqliteRecorder(tmp_path / "lynkr.db")
    yield rec
    rec.close()


@pytest.fixture
def worker(tmp_path: Path, recorder):
    proc = ProjectorProcess(tmp_path / "lynkr.db", tmp_path / "projections.db")
    yield proc
    proc.close()


def wait_gone(pid: int) -> bool:
    """True once no process `pid` exists (5 s at most)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.01)
    return False


def test_nothing_is_started_before_the_first_request(worker):
    """The child starts on first use, not at construction."""
    assert worker.pid is None
    assert worker.starts == 0


def test_a_catch_up_in_the_child_writes_the_rows(worker, recorder, tmp_path):
    """The report counts the log's events and the transcript rows are in the file."""
    write_sample_log(recorder)
    report = worker.catch_up()
    assert report.events == recorder.last_position()
    assert all(p == recorder.last_position() for p in report.positions.values())
    assert [r["turn"] for r in stored_transcript(tmp_path, "a")] == [1, 2]
    assert worker.pid is not None
    assert worker.pid != os.getpid()


def test_one_child_serves_every_request(worker, recorder):
    """Later catch-ups reuse the running child and read only the new events."""
    write_sample_log(recorder)
    worker.catch_up()
    pid = worker.pid
    start_turn(recorder, "b", 1, "hello", None)
    respond(recorder, "b", 1, "hi", [])
    assert worker.catch_up().events == 3
    assert worker.rebuild("transcript").positions == {"transcript": recorder.last_position()}
    assert (worker.pid, worker.starts) == (pid, 1)


def test_a_killed_child_fails_one_catch_up_then_is_restarted(worker, recorder, monkeypatch):
    """SIGKILL: the next request fails naming the exit; after the backoff a new child serves."""
    monkeypatch.setattr(projector, "_BACKOFF_FIRST", 0.2)
    worker._backoff = 0.2
    write_sample_log(recorder)
    worker.catch_up()
    old = worker.pid
    assert old is not None
    os.kill(old, signal.SIGKILL)
    with pytest.raises(ProjectionWorkerError, match="exited"):
        worker.catch_up()
    with pytest.raises(ProjectionWorkerError, match="restarting after a backoff"):
        worker.catch_up()  # within the backoff: no new child yet
    time.sleep(0.25)
    start_turn(recorder, "b", 1, "after the kill", None)
    assert worker.catch_up().events == 1
    assert worker.starts == 2
    assert worker.pid not in (None, old)


def test_a_child_that_cannot_open_the_log_is_an_error_and_backs_off(tmp_path):
    """A log path that is a directory: the child exits 1 and the error says so."""
    (tmp_path / "dir.db").mkdir()
    proc = ProjectorProcess(tmp_path / "dir.db", tmp_path / "projections.db")
    try:
        with pytest.raises(ProjectionWorkerError, match=r"exited \(code 1\)"):
            proc.catch_up()
        with pytest.raises(ProjectionWorkerError, match="restarting after a backoff"):
            proc.catch_up()
    finally:
        proc.close()


def test_an_unreadable_log_is_reported_and_the_child_lives_on(tmp_path):
    """An event type the child does not know: an error reply, the same child afterwards."""
    write_stray_log(tmp_path / "lynkr.db")
    proc = ProjectorProcess(tmp_path / "lynkr.db", tmp_path / "projections.db")
    try:
        with pytest.raises(ProjectionWorkerError, match="StrayNoted"):
            proc.catch_up()
        pid = proc.pid
        with pytest.raises(ProjectionWorkerError, match="StrayNoted"):
            proc.catch_up()
        assert (proc.pid, proc.starts) == (pid, 1)
    finally:
        proc.close()


def test_close_ends_the_child_and_refuses_further_requests(worker, recorder):
    """After close the child has exited and a request is an error."""
    worker.catch_up()
    pid = worker.pid
    assert pid is not None
    worker.close()
    assert wait_gone(pid)
    with pytest.raises(ProjectionWorkerError, match="closed"):
        worker.catch_up()


async def test_the_runner_follows_commits_through_the_child(recorder, tmp_path):
    """A runner with a ProjectorProcess worker catches up after commits; status reads it."""
    worker = ProjectorProcess(tmp_path / "lynkr.db", tmp_path / "projections.db")
    projections = Projections.start(recorder, tmp_path / "projections.db", worker=worker,
                                    interval=0.01)
    try:
        assert (await projections.status()).catch_ups == 1  # on start, an empty log
        write_sample_log(recorder)
        with trio.fail_after(20):
            while True:
                status = await projections.status()
                if status.caught_up:
                    break
                await trio.sleep(0.01)
        assert status.error is None
        assert status.catch_ups >= 2
        found = await projections.query("SELECT turn FROM transcript WHERE session_id = 'a'")
        assert [r["turn"] for r in found] == [1, 2]
        assert worker.pid is not None
        pid = worker.pid
    finally:
        await projections.aclose()
    assert wait_gone(pid)


async def test_the_runner_keeps_a_worker_error_in_its_status(tmp_path):
    """The child's error reply is the runner's status error; nothing is caught up."""
    stray = SqliteRecorder(tmp_path / "lynkr.db", registry=STRAY)
    stray.append("session-x", 0, [StrayNoted(note="?")])
    worker = ProjectorProcess(tmp_path / "lynkr.db", tmp_path / "projections.db")
    projections = Projections.start(stray, tmp_path / "projections.db", worker=worker)
    try:
        status = await projections.catch_up_now()
        assert status.error is not None
        assert "StrayNoted" in status.error
        assert not status.caught_up
    finally:
        await projections.aclose()
        stray.close()


async def test_a_runner_rebuild_is_done_by_the_child(recorder, tmp_path):
    """rebuild(name) goes to the worker; an unknown name is a KeyError before it does."""
    worker = ProjectorProcess(tmp_path / "lynkr.db", tmp_path / "projections.db")
    projections = Projections.start(recorder, tmp_path / "projections.db", worker=worker)
    try:
        write_sample_log(recorder)
        report = await projections.rebuild("transcript")
        assert report.positions == {"transcript": recorder.last_position()}
        with pytest.raises(KeyError):
            await projections.rebuild("nope")
        assert worker.starts == 1
    finally:
        await projections.aclose()
