"""The projection runner actor: catches up at start, follows commits, reports failures."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog
import structlog.testing
import trio

import eventstore.events  # noqa: F401  (registers the event classes)
from actors.projections import Projections, RunnerStatus, _Alarm
from eventstore import EVENTS, Event, EventRegistry, Recorded, SqliteRecorder
from eventstore.events.session import RouteChosen
from eventstore.projections import Projection, ProjectionContext, all_projections
from eventstore.projections.transcript import transcript_rows
from tests.eventstore.projections.sample_log import respond, start_turn, write_sample_log

STRAY = EventRegistry()


@STRAY.register
@dataclass(frozen=True, slots=True, kw_only=True)
class StrayHappened(Event):
    """An event type only the stray registry knows."""

    note: str


def broken_projection() -> Projection:
    """A projection that fails on every RouteChosen."""

    def project(record: Recorded, context: ProjectionContext) -> list:
        raise ValueError("broken on purpose")

    return Projection(name="broken", version=1, project=project,
                      types=frozenset({"RouteChosen"}),
                      tables={"broken": "CREATE TABLE IF NOT EXISTS broken (k TEXT PRIMARY KEY)"})


@pytest.fixture
def recorder(tmp_path: Path):
    rec = SqliteRecorder(tmp_path / "lynkr.db")
    yield rec
    rec.close()


async def settled(projections: Projections, predicate=lambda s: s.caught_up) -> RunnerStatus:
    """Poll the runner's status until `predicate` holds (20 s at most)."""
    with trio.fail_after(20):
        while True:
            status = await projections.status()
            if predicate(status):
                return status
            await trio.sleep(0.01)


async def test_runner_catches_up_existing_events_at_start(recorder, tmp_path: Path) -> None:
    """Events in the log before the runner started are projected."""
    write_sample_log(recorder)
    projections = Projections.start(recorder, tmp_path / "projections.db")
    status = await settled(projections)
    assert status.failures == {}
    rows = await projections.query("SELECT turn FROM transcript WHERE session_id = 'a'")
    assert [r["turn"] for r in rows] == [1, 2]
    await projections.aclose()


async def test_runner_follows_live_appends(recorder, tmp_path: Path) -> None:
    """An append after start shows up in the projections without being asked."""
    projections = Projections.start(recorder, tmp_path / "projections.db")
    await settled(projections)
    start_turn(recorder, "live", 1, "are you there?", None)
    respond(recorder, "live", 1, "yes", [])
    await settled(projections, lambda s: s.caught_up and s.log_position > 0)
    rows = await projections.query("SELECT status, assistant_text FROM transcript")
    assert rows == [{"status": "ok", "assistant_text": "yes"}]
    await projections.aclose()


async def test_bursts_of_commits_are_coalesced(recorder, tmp_path: Path) -> None:
    """Many commits cost at most one catch-up each, usually far fewer."""
    projections = Projections.start(recorder, tmp_path / "projections.db")
    await settled(projections)
    futures = [recorder.submit_append(f"session-{i % 5}", -1,
                                      [RouteChosen(turn=1, provider="p", backend_model="m",
                                                   reason="r")]) for i in range(300)]
    for future in futures:
        future.result()
    status = await settled(projections, lambda s: s.caught_up and s.log_position == 300)
    assert status.catch_ups <= 1 + recorder.batches
    await projections.aclose()


async def test_failing_projection_does_not_block_the_others(recorder, tmp_path: Path) -> None:
    """A broken projection is reported; the healthy ones keep following the log."""
    projections = Projections.start(recorder, tmp_path / "projections.db",
                                    [broken_projection(), *all_projections()])
    write_sample_log(recorder)
    status = await settled(projections, lambda s: "broken" in s.failures and all(
        p.position == s.log_position for p in s.projections if p.name != "broken"))
    assert "broken on purpose" in status.failures["broken"]
    rows = await projections.query("SELECT count(*) AS n FROM transcript")
    assert rows == [{"n": 4}]
    await projections.aclose()


async def test_unreadable_log_is_reported_not_fatal(tmp_path: Path) -> None:
    """An unknown event type in the log is kept in status; the actor stays up."""
    writer = SqliteRecorder(tmp_path / "lynkr.db", registry=STRAY)
    writer.append("odd", 0, [StrayHappened(note="x")])
    writer.close()
    recorder = SqliteRecorder(tmp_path / "lynkr.db", registry=EVENTS)
    projections = Projections.start(recorder, tmp_path / "projections.db")
    status = await settled(projections, lambda s: s.error is not None)
    assert "StrayHappened" in (status.error or "")
    assert projections.ref.is_alive()
    await projections.aclose()
    recorder.close()


async def test_a_lasting_error_is_logged_once_not_on_every_catch_up(tmp_path: Path) -> None:
    """Three catch-ups that fail the same way: one `projections_catch_up_failed` line."""
    writer = SqliteRecorder(tmp_path / "lynkr.db", registry=STRAY)
    writer.append("odd", 0, [StrayHappened(note="x")])
    writer.close()
    recorder = SqliteRecorder(tmp_path / "lynkr.db", registry=EVENTS)
    with structlog.testing.capture_logs() as logs:
        projections = Projections.start(recorder, tmp_path / "projections.db")
        for _ in range(3):
            assert "StrayHappened" in ((await projections.catch_up_now()).error or "")
        await projections.aclose()
    recorder.close()
    failed = [e for e in logs if e["event"] == "projections_catch_up_failed"]
    assert len(failed) == 1


async def test_rebuild_through_the_runner_gives_identical_rows(recorder, tmp_path) -> None:
    """Rebuilding the transcript via the actor reproduces the same rows."""
    write_sample_log(recorder)
    projections = Projections.start(recorder, tmp_path / "projections.db")
    await settled(projections)
    before = await projections.query("SELECT * FROM transcript ORDER BY session_id, turn")
    report = await projections.rebuild("transcript")
    after = await projections.query("SELECT * FROM transcript ORDER BY session_id, turn")
    assert report.failures == {}
    assert after == before
    await projections.aclose()


def test_projections_are_readable_with_the_store_after_stop(recorder, tmp_path) -> None:
    """What the runner wrote is in the file for anyone (e.g. the CLI) to read."""
    write_sample_log(recorder)
    projections = Projections.start(recorder, tmp_path / "projections.db")
    assert projections.catch_up_now().get(timeout=5).caught_up
    projections.stop()
    from eventstore.projections import ProjectionStore

    store = ProjectionStore(tmp_path / "projections.db", all_projections())
    assert [r["turn"] for r in transcript_rows(store, "a")] == [1, 2]
    store.close()


def route(turn: int = 1) -> RouteChosen:
    """A small event to append."""
    return RouteChosen(turn=turn, provider="p", backend_model="m", reason="r")


async def test_separate_commits_within_the_interval_share_one_catch_up(recorder, tmp_path):
    """Fifty commits spread over ~0.25 s with a 10 s interval cost one catch-up, not 50."""
    projections = Projections.start(recorder, tmp_path / "projections.db", interval=10.0)
    start = (await settled(projections)).catch_ups
    for i in range(50):
        recorder.append(f"session-{i}", 0, [route()])
        await trio.sleep(0.005)
    status = await projections.status()
    assert status.catch_ups == start  # the first catch-up after start is still 10 s away
    assert status.log_position == 50
    assert not status.caught_up
    forced = await projections.catch_up_now()
    assert forced.caught_up
    assert forced.catch_ups == start + 1
    await projections.aclose()


async def test_a_burst_is_caught_up_within_the_interval(recorder, tmp_path):
    """After a burst of commits the projections catch up within about one interval."""
    projections = Projections.start(recorder, tmp_path / "projections.db", interval=0.1)
    start = (await settled(projections)).catch_ups
    began = trio.current_time()
    for i in range(40):
        recorder.append(f"session-{i}", 0, [route()])
        await trio.sleep(0.002)
    with trio.fail_after(2):  # about one 0.1 s interval, with room for a loaded machine
        status = await settled(projections, lambda s: s.caught_up and s.log_position == 40)
    # 40 commits in ~0.1-0.2 s (longer on a loaded machine): at most one catch-up per 0.1 s
    # while they arrive, plus the one that settles the last of them.
    allowed = int((trio.current_time() - began) / 0.1) + 2
    assert 1 <= status.catch_ups - start <= min(allowed, 39)
    await projections.aclose()


async def test_zero_interval_catches_up_after_each_idle_commit(recorder, tmp_path):
    """With interval 0 every commit that finds the runner idle gets its own catch-up."""
    projections = Projections.start(recorder, tmp_path / "projections.db", interval=0.0)
    start = (await settled(projections)).catch_ups
    for i in range(3):
        recorder.append(f"session-{i}", 0, [route()])
        status = await settled(projections, lambda s, n=i + 1: s.caught_up and s.log_position == n)
    assert status.catch_ups - start == 3
    await projections.aclose()


def test_negative_interval_is_refused(recorder, tmp_path) -> None:
    """A negative interval is a clear ValueError, not a runner that never catches up."""
    with pytest.raises(ValueError, match="interval"):
        Projections.start(recorder, tmp_path / "projections.db", interval=-1)


def _alarm_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ProjectionAlarm"]


async def test_delayed_catch_ups_share_one_alarm_thread(recorder, tmp_path):
    """Every wait for the interval is kept by one thread, not a new thread per wait,
    and the thread ends with the runner."""
    before = len(_alarm_threads())
    projections = Projections.start(recorder, tmp_path / "projections.db", interval=0.05)
    start = (await settled(projections)).catch_ups
    seen: set[int] = set()
    for i in range(15):  # each commit lands inside the interval after the last catch-up
        recorder.append(f"session-{i}", 0, [route()])
        status = await settled(projections, lambda s, n=i + 1: s.caught_up and s.log_position == n)
        seen.update(id(t) for t in _alarm_threads())
    assert status.catch_ups - start == 15
    assert len(_alarm_threads()) == before + 1
    assert len(seen) == before + 1  # the same thread every time
    await projections.aclose()
    assert len(_alarm_threads()) == before


def test_alarm_rings_once_per_wait_and_not_after_close() -> None:
    """A moved wait rings once, at its new time; a closed alarm ignores new waits."""
    rang: list[float] = []
    alarm = _Alarm(lambda: rang.append(time.monotonic()))
    asked = time.monotonic()
    alarm.ring_in(5.0)
    alarm.ring_in(0.05)  # moves the wait
    deadline = time.monotonic() + 5
    while not rang and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(rang) == 1
    assert rang[0] - asked >= 0.05
    time.sleep(0.1)
    assert len(rang) == 1
    thread = alarm.thread
    alarm.close()
    assert thread is not None
    assert not thread.is_alive()
    alarm.ring_in(0.0)
    time.sleep(0.05)
    assert len(rang) == 1
    assert alarm.thread is thread
