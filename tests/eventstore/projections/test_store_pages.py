"""`ProjectionStore`: a page per projection in one savepoint, offsets written on change."""

from __future__ import annotations

from pathlib import Path

import pytest

import eventstore.events  # noqa: F401  (registers the event classes)
from eventstore import Recorded, SqliteRecorder
from eventstore.events.session import RouteChosen, SessionStarted, StreamAborted
from eventstore.projections import (
    Projection,
    ProjectionContext,
    ProjectionStore,
    Upsert,
    all_projections,
)
from tests.eventstore.projections.sample_log import write_sample_log


@pytest.fixture
def recorder(tmp_path: Path):
    rec = SqliteRecorder(tmp_path / "lynkr.db")
    yield rec
    rec.close()


def counting(fail_on_turn: int | None = None, crash_on_turn: int | None = None) -> Projection:
    """Counts RouteChosen per provider; a projection bug on one turn, a crash on another."""

    def project(record: Recorded, context: ProjectionContext) -> list:
        if record.event.turn == fail_on_turn:
            raise ValueError("this projection has a bug")
        if record.event.turn == crash_on_turn:
            raise RuntimeError("the process dies here")
        return [Upsert("counts", {"provider": record.event.provider}, add={"n": 1})]

    return Projection(name="counting", version=1, project=project,
                      types=frozenset({"RouteChosen"}),
                      tables={"counts": "CREATE TABLE IF NOT EXISTS counts "
                              "(provider TEXT PRIMARY KEY, n INTEGER)"})


def route(turn: int) -> RouteChosen:
    return RouteChosen(turn=turn, provider="p", backend_model="m", reason="r")


def aborted(turn: int) -> StreamAborted:
    return StreamAborted(turn=turn, reason="r")


class CountingReads:
    """A recorder wrapper counting `read_all` calls."""

    def __init__(self, recorder: SqliteRecorder) -> None:
        self.recorder = recorder
        self.reads = 0

    def read_all(self, after_position: int = 0, limit: int = 1000) -> list:
        self.reads += 1
        return self.recorder.read_all(after_position, limit)

    def load_blob(self, ref):
        return self.recorder.load_blob(ref)


def test_failure_mid_page_keeps_the_good_events_and_stops_before_the_bad(recorder, tmp_path):
    """Events before the failing one stay applied (once), events it ignores included."""
    recorder.append("s", 0, [route(1), aborted(1), route(2), aborted(2), route(3), route(4)])
    store = ProjectionStore(tmp_path / "projections.db", [counting(fail_on_turn=3)])
    report = store.catch_up(recorder)
    assert report.positions == {"counting": 4}  # the StreamAborted just before turn 3
    assert store.query("SELECT n FROM counts") == [{"n": 2}]
    assert "position 5 (RouteChosen)" in report.failures["counting"]
    assert "position 5" in (store.status()[0].error or "")
    # Still failing: nothing is applied twice and the offset holds.
    again = store.catch_up(recorder)
    assert again.positions == {"counting": 4}
    assert store.query("SELECT n FROM counts") == [{"n": 2}]
    store.close()


def test_failure_on_the_first_event_of_a_page_holds_the_offset(recorder, tmp_path):
    """A projection failing on its first event of the page applies nothing of it."""
    recorder.append("s", 0, [route(1), route(2), route(3)])
    store = ProjectionStore(tmp_path / "projections.db", [counting(fail_on_turn=2)])
    assert store.catch_up(recorder, page=1).positions == {"counting": 1}
    assert store.query("SELECT n FROM counts") == [{"n": 1}]
    store.close()


def test_a_crash_mid_page_applies_nothing_of_the_page(recorder, tmp_path):
    """An error that escapes the store rolls the whole page back, offsets included."""
    recorder.append("s", 0, [route(1), route(2), route(3)])
    path = tmp_path / "projections.db"
    store = ProjectionStore(path, [counting(crash_on_turn=3), *all_projections()])
    with pytest.raises(RuntimeError, match="dies"):
        store.catch_up(recorder)
    assert store.query("SELECT * FROM counts") == []
    assert {s.position for s in store.status()} == {0}
    store.close()
    store = ProjectionStore(path, [counting(), *all_projections()])
    assert store.catch_up(recorder).positions["counting"] == 3
    assert store.query("SELECT n FROM counts") == [{"n": 3}]
    store.close()


def test_a_short_page_ends_the_catch_up(recorder, tmp_path):
    """A page shorter than the page size was the end of the log: one read, not two."""
    write_sample_log(recorder)
    store = ProjectionStore(tmp_path / "projections.db", all_projections())
    reads = CountingReads(recorder)
    report = store.catch_up(reads)  # type: ignore[arg-type]
    assert reads.reads == 1
    assert report.events == recorder.last_position()
    assert set(report.positions.values()) == {recorder.last_position()}
    reads.reads = 0
    assert store.catch_up(reads, page=4).events == 0  # type: ignore[arg-type]
    assert reads.reads == 1
    store.close()


def test_offsets_are_written_only_when_they_move(recorder, tmp_path):
    """A catch-up with nothing new leaves the offsets table untouched."""
    recorder.append("session-a", 0, [SessionStarted(session_id="a", source="header")])
    store = ProjectionStore(tmp_path / "projections.db", all_projections())
    store.catch_up(recorder)
    changes = store._conn.total_changes()
    store.catch_up(recorder)
    assert store._conn.total_changes() == changes
    recorder.append("session-a", 1, [route(1)])
    store.catch_up(recorder)
    assert store._conn.total_changes() > changes
    assert {s.position for s in store.status()} == {2}
    store.close()


def test_page_at_a_time_gives_the_same_rows_as_event_at_a_time(recorder, tmp_path):
    """Applying the sample log in one page or one event per page gives identical rows."""
    write_sample_log(recorder)
    whole = ProjectionStore(tmp_path / "whole.db", all_projections())
    single = ProjectionStore(tmp_path / "single.db", all_projections())
    whole.catch_up(recorder)
    single.catch_up(recorder, page=1)
    for projection in whole.projections.values():
        for table in projection.tables:
            rows = sorted(whole.query(f"SELECT * FROM {table}"), key=repr)
            assert rows == sorted(single.query(f"SELECT * FROM {table}"), key=repr), table
    whole.close()
    single.close()


def test_on_page_is_told_the_position_after_each_page(recorder, tmp_path):
    """`catch_up` and `rebuild` report the position reached after every page (progress)."""
    write_sample_log(recorder)
    store = ProjectionStore(tmp_path / "projections.db", all_projections())
    seen: list[int] = []
    store.catch_up(recorder, page=4, on_page=seen.append)
    last = recorder.last_position()
    assert seen == sorted(seen)
    assert seen[-1] == last
    assert len(seen) == -(-last // 4)  # one report per page
    seen.clear()
    store.rebuild(recorder, on_page=seen.append)
    assert seen == [last]
    store.close()
