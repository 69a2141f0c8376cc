"""`ProjectionStore`: exactly-once offsets, rebuilds, versions, failing projections."""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

import eventstore.events  # noqa: F401  (registers the event classes)
from eventstore import MemoryRecorder, Recorded, SqliteRecorder
from eventstore.events.session import RouteChosen
from eventstore.projections import (
    Delete,
    Projection,
    ProjectionContext,
    ProjectionStore,
    Upsert,
    all_projections,
)
from tests.eventstore.projections.sample_log import write_sample_log


def counting(version: int = 1, fail_on_turn: int | None = None) -> Projection:
    """A projection counting RouteChosen per provider; raises on `fail_on_turn`."""

    def project(record: Recorded, context: ProjectionContext) -> list:
        if record.event.turn == fail_on_turn:
            raise ValueError("this projection has a bug")
        return [Upsert("counts", {"provider": record.event.provider}, add={"n": 1})]

    return Projection(name="counting", version=version, project=project,
                      types=frozenset({"RouteChosen"}),
                      tables={"counts": "CREATE TABLE IF NOT EXISTS counts "
                              "(provider TEXT PRIMARY KEY, n INTEGER)"})


def route(turn: int, provider: str = "p") -> RouteChosen:
    """A RouteChosen for `turn`."""
    return RouteChosen(turn=turn, provider=provider, backend_model="m", reason="r")


@pytest.fixture
def recorder(tmp_path: Path):
    rec = SqliteRecorder(tmp_path / "lynkr.db")
    yield rec
    rec.close()


def all_rows(store: ProjectionStore) -> dict[str, list[dict]]:
    """Every table of every projection, sorted, for equality checks."""
    return {t: sorted(store.query(f"SELECT * FROM {t}"), key=repr)
            for p in store.projections.values() for t in p.tables}


def test_catch_up_applies_each_event_once(recorder, tmp_path: Path) -> None:
    """Catching up twice counts every event exactly once."""
    recorder.append("s", 0, [route(1), route(2), route(3, "q")])
    store = ProjectionStore(tmp_path / "projections.db", [counting()])
    report = store.catch_up(recorder)
    store.catch_up(recorder)
    assert report.events == 3
    assert report.positions == {"counting": 3}
    assert store.query("SELECT * FROM counts ORDER BY provider") == [
        {"provider": "p", "n": 2}, {"provider": "q", "n": 1}]
    store.close()


def test_offsets_survive_reopen(recorder, tmp_path: Path) -> None:
    """A reopened store continues from its stored offset, never recounting."""
    recorder.append("s", 0, [route(1)])
    store = ProjectionStore(tmp_path / "projections.db", [counting()])
    store.catch_up(recorder)
    store.close()
    recorder.append("s", 1, [route(2)])
    store = ProjectionStore(tmp_path / "projections.db", [counting()])
    store.catch_up(recorder)
    assert store.query("SELECT n FROM counts") == [{"n": 2}]
    store.close()


def test_pages_are_applied_in_separate_transactions(recorder, tmp_path: Path) -> None:
    """Small pages still count every event once."""
    recorder.append("s", 0, [route(i) for i in range(1, 11)])
    store = ProjectionStore(tmp_path / "projections.db", [counting()])
    assert store.catch_up(recorder, page=3).events == 10
    assert store.query("SELECT n FROM counts") == [{"n": 10}]
    store.close()


def test_two_stores_on_one_file_do_not_double_count(recorder, tmp_path: Path) -> None:
    """Two processes' stores catching up the same file take turns (offset read in the txn)."""
    recorder.append("s", 0, [route(i) for i in range(1, 6)])
    first = ProjectionStore(tmp_path / "projections.db", [counting()])
    second = ProjectionStore(tmp_path / "projections.db", [counting()])
    first.catch_up(recorder, page=2)
    second.catch_up(recorder, page=2)
    assert first.query("SELECT n FROM counts") == [{"n": 5}]
    first.close()
    second.close()


def test_failing_projection_is_reported_and_spares_the_others(recorder, tmp_path) -> None:
    """A projection that raises stops at its last good event; the others finish."""
    recorder.append("session-x", 0, [route(1), route(2), route(3)])
    projections = [counting(fail_on_turn=2), *all_projections()]
    store = ProjectionStore(tmp_path / "projections.db", projections)
    report = store.catch_up(recorder)
    assert "this projection has a bug" in report.failures["counting"]
    assert report.positions["counting"] == 1
    assert report.positions["sessions"] == 3
    assert store.query("SELECT n FROM counts") == [{"n": 1}]
    status = {s.name: s for s in store.status()}
    assert "position 2 (RouteChosen)" in (status["counting"].error or "")
    assert status["sessions"].error is None
    store.close()


def test_fixed_projection_resumes_and_clears_its_error(recorder, tmp_path: Path) -> None:
    """After the bug is fixed (new code, same version) it resumes where it stopped."""
    recorder.append("s", 0, [route(1), route(2)])
    store = ProjectionStore(tmp_path / "projections.db", [counting(fail_on_turn=2)])
    store.catch_up(recorder)
    store.close()
    store = ProjectionStore(tmp_path / "projections.db", [counting()])
    store.catch_up(recorder)
    assert store.query("SELECT n FROM counts") == [{"n": 2}]
    assert store.status()[0].error is None
    store.close()


def test_new_version_drops_and_rebuilds(recorder, tmp_path: Path) -> None:
    """Opening a store with a bumped projection version starts that projection over."""
    recorder.append("s", 0, [route(1)])
    store = ProjectionStore(tmp_path / "projections.db", [counting()])
    store.catch_up(recorder)
    store.close()
    store = ProjectionStore(tmp_path / "projections.db", [counting(version=2)])
    assert store.status()[0].position == 0
    store.catch_up(recorder)
    assert store.query("SELECT n FROM counts") == [{"n": 1}]
    assert store.status()[0].version == 2
    store.close()


def test_rebuild_gives_identical_rows(recorder, tmp_path: Path) -> None:
    """Dropping every projection and replaying from 0 reproduces every row."""
    write_sample_log(recorder)
    store = ProjectionStore(tmp_path / "projections.db", all_projections())
    store.catch_up(recorder)
    before = all_rows(store)
    report = store.rebuild(recorder)
    assert report.failures == {}
    assert all_rows(store) == before
    assert before["transcript"]
    store.close()


def test_rebuild_of_transcript_alone_gives_identical_rows(recorder, tmp_path: Path) -> None:
    """`rebuild("transcript")` drops and refills only the transcript, identically."""
    write_sample_log(recorder)
    store = ProjectionStore(tmp_path / "projections.db", all_projections())
    store.catch_up(recorder)
    before = all_rows(store)
    conn = apsw.Connection(str(tmp_path / "projections.db"))
    conn.execute("DELETE FROM transcript")  # the drop the rebuild must repair
    conn.close()
    store.rebuild(recorder, "transcript")
    assert all_rows(store) == before
    store.close()


def test_rebuild_of_unknown_projection_names_it(recorder, tmp_path: Path) -> None:
    """Rebuilding a name nobody registered is a KeyError naming it."""
    store = ProjectionStore(tmp_path / "projections.db", all_projections())
    with pytest.raises(KeyError, match="nope"):
        store.rebuild(recorder, "nope")
    store.close()


def test_writing_a_foreign_table_is_a_failure(tmp_path: Path) -> None:
    """A projection may only write its own tables."""
    rogue = Projection(name="rogue", version=1, tables={"mine": "CREATE TABLE IF NOT EXISTS "
                                                         "mine (k TEXT PRIMARY KEY)"},
                       project=lambda r, c: [Delete("sessions", {"session_id": "a"})])
    recorder = MemoryRecorder()
    recorder.append("s", 0, [route(1)])
    store = ProjectionStore(tmp_path / "projections.db", [rogue, *all_projections()])
    assert "not one of its tables" in store.catch_up(recorder).failures["rogue"]
    store.close()


def test_duplicate_names_and_bad_identifiers_are_refused(tmp_path: Path) -> None:
    """Names are unique plain identifiers (they are spliced into SQL)."""
    with pytest.raises(ValueError, match="unique"):
        ProjectionStore(tmp_path / "p.db", [counting(), counting()])
    with pytest.raises(ValueError, match="identifier"):
        Projection(name="x; DROP TABLE y", version=1, tables={}, project=lambda r, c: [])
    with pytest.raises(ValueError, match="identifier"):
        Projection(name="ok", version=1, tables={"Bad-Name": ""}, project=lambda r, c: [])


def test_memory_recorder_feeds_the_store_too(tmp_path: Path) -> None:
    """The store works from any recorder (the contract), here the in-memory one."""
    recorder = MemoryRecorder()
    write_sample_log(recorder)
    store = ProjectionStore(tmp_path / "projections.db", all_projections())
    assert store.catch_up(recorder).failures == {}
    assert {r["session_id"] for r in store.query("SELECT session_id FROM sessions")} == {"a", "b"}
    store.close()
