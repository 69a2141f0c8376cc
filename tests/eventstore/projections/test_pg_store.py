"""`PostgresProjectionStore`: the projections in the log's PostgreSQL database.

Fed from a real PostgreSQL log (a fresh schema per test, see `tests/eventstore/postgres.py`)
and compared with the SQLite `ProjectionStore` fed from the same log.
"""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

import eventstore.events  # noqa: F401  (registers the event classes)
from eventstore import EventStoreError, Recorded, open_recorder
from eventstore.events.session import RouteChosen
from eventstore.projections import (
    Projection,
    ProjectionContext,
    ProjectionStore,
    Upsert,
    all_projections,
)
from eventstore.projections._open_store import open_projection_store
from eventstore.projections._pg_store import PostgresProjectionStore, pg_sql
from eventstore.projections.usage import query_usage
from tests.eventstore.projections.sample_log import write_sample_log


def counting(fail_on_turn: int | None = None) -> Projection:
    """Counts RouteChosen per provider, and keeps one row per event (to spot doubles)."""

    def project(record: Recorded, context: ProjectionContext) -> list:
        if record.event.turn == fail_on_turn:
            raise ValueError("this projection has a bug")
        return [Upsert("counts", {"provider": record.event.provider}, add={"n": 1}),
                Upsert("seen", {"position": record.position}, add={"times": 1})]

    return Projection(name="counting", version=1, project=project,
                      types=frozenset({"RouteChosen"}),
                      tables={"counts": "CREATE TABLE IF NOT EXISTS counts "
                              "(provider TEXT PRIMARY KEY, n INTEGER)",
                              "seen": "CREATE TABLE IF NOT EXISTS seen "
                              "(position INTEGER PRIMARY KEY, times INTEGER) WITHOUT ROWID"})


def route(turn: int, provider: str = "p") -> RouteChosen:
    return RouteChosen(turn=turn, provider=provider, backend_model="m", reason="r")


@pytest.fixture
def recorder(postgres_url: str):
    rec = open_recorder(postgres_url)
    yield rec
    rec.close()


def all_rows(store) -> dict[str, list[dict]]:
    """Every table of every projection, sorted, for equality checks."""
    return {t: sorted(store.query(f"SELECT * FROM {t}"), key=repr)
            for p in store.projections.values() for t in p.tables}


def test_sqlite_dialect_is_translated() -> None:
    """Placeholders, `%`, the reserved `user`, `instr`, DDL types and WITHOUT ROWID."""
    assert pg_sql("SELECT user, 'a?%' FROM t WHERE x LIKE '%' || ? AND n % 2 = ?") == (
        "SELECT \"user\", 'a?%%' FROM t WHERE x LIKE '%%' || %s AND n %% 2 = %s")
    assert pg_sql("SELECT instr(lower(a), ?) AS instr FROM t") == (
        "SELECT strpos(lower(a), %s) AS instr FROM t")
    ddl = pg_sql("CREATE TABLE t (\n a INTEGER, -- isn't it\n user TEXT, r REAL\n) WITHOUT ROWID",
                 ddl=True)
    assert ddl == 'CREATE TABLE t (\n a BIGINT, \n "user" TEXT, r DOUBLE PRECISION\n) '


def test_every_projection_gives_the_rows_sqlite_gives(recorder, postgres_url: str,
                                                       tmp_path: Path) -> None:
    """The whole catalogue on PostgreSQL equals the SQLite store fed the same log."""
    write_sample_log(recorder)
    pg = PostgresProjectionStore(postgres_url, all_projections())
    lite = ProjectionStore(tmp_path / "projections.db", all_projections())
    report = pg.catch_up(recorder)
    assert report == lite.catch_up(recorder)
    assert report.failures == {}
    assert all_rows(pg) == all_rows(lite)
    assert all_rows(pg)["transcript"]
    by_user = query_usage(pg, by=("day", "user"))
    assert by_user == query_usage(lite, by=("day", "user"))
    assert by_user
    assert all(type(r["requests"]) is int for r in by_user)
    assert pg.status() == lite.status()
    pg.close()
    lite.close()


def test_rebuild_from_zero_gives_identical_rows(recorder, postgres_url: str) -> None:
    write_sample_log(recorder)
    store = PostgresProjectionStore(postgres_url, all_projections())
    store.catch_up(recorder)
    before = all_rows(store)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DELETE FROM {store.schema}.transcript".encode())
    assert store.rebuild(recorder, "transcript").failures == {}
    assert all_rows(store) == before
    assert store.rebuild(recorder).failures == {}
    assert all_rows(store) == before
    store.close()


def test_offsets_survive_reopen_and_count_each_event_once(recorder, postgres_url: str) -> None:
    recorder.append("s", 0, [route(1), route(2), route(3, "q")])
    store = PostgresProjectionStore(postgres_url, [counting()])
    assert store.catch_up(recorder).events == 3
    store.close()
    recorder.append("s", 3, [route(4)])
    store = PostgresProjectionStore(postgres_url, [counting()])
    assert store.catch_up(recorder, page=1).events == 1
    assert store.catch_up(recorder).events == 0
    assert store.query("SELECT provider, n FROM counts ORDER BY provider") == [
        {"provider": "p", "n": 3}, {"provider": "q", "n": 1}]
    assert store.status()[0].position == 4
    store.close()


def test_two_stores_catching_up_at_once_apply_each_event_once(recorder,
                                                              postgres_url: str) -> None:
    """Two stores (two gateways) on one database, a page per event, racing: no doubles."""
    events = 120
    recorder.append("s", 0, [route(t) for t in range(1, events + 1)])
    stores = [PostgresProjectionStore(postgres_url, [counting()]) for _ in range(2)]
    applied: list[int] = []
    errors: list[EventStoreError] = []

    def run(store: PostgresProjectionStore) -> None:
        try:
            applied.append(store.catch_up(recorder, page=1).events)
        except EventStoreError as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert stores[0].query("SELECT n FROM counts") == [{"n": events}]
    assert stores[1].query("SELECT count(*) AS c, max(times) AS m FROM seen") == [
        {"c": events, "m": 1}]
    assert sum(applied) >= events  # each read its share (pages past the other's are empty)
    for store in stores:
        store.close()


def test_failing_projection_is_rolled_back_and_spares_the_others(recorder,
                                                                 postgres_url: str) -> None:
    write_sample_log(recorder)
    recorder.append("s", 0, [route(1), route(2), route(3)])
    store = PostgresProjectionStore(postgres_url, [counting(fail_on_turn=2),
                                                   *all_projections()])
    report = store.catch_up(recorder)
    assert list(report.failures) == ["counting"]
    assert "this projection has a bug" in report.failures["counting"]
    statuses = {s.name: s for s in store.status()}
    assert statuses["counting"].error is not None
    assert statuses["sessions"].error is None
    assert store.query("SELECT count(*) AS c FROM sessions")[0]["c"] > 0
    assert store.catch_up(recorder).failures == {"counting": report.failures["counting"]}
    store.close()


def test_the_factory_picks_the_store_of_the_log(postgres_url: str, tmp_path: Path) -> None:
    pg = open_projection_store(postgres_url, [counting()], tmp_path / "data")
    assert isinstance(pg, PostgresProjectionStore)
    pg.close()
    lite = open_projection_store(tmp_path / "lynkr.db", [counting()], tmp_path / "data")
    assert isinstance(lite, ProjectionStore)
    assert Path(lite.path) == tmp_path / "data" / "projections.db"
    lite.close()


def test_a_rebuild_racing_a_catch_up_applies_each_event_once(recorder,
                                                             postgres_url: str) -> None:
    """`lynkr projections rebuild` on one side, a gateway catching up on the other."""
    events = 80
    recorder.append("s", 0, [route(t) for t in range(1, events + 1)])
    gateway = PostgresProjectionStore(postgres_url, [counting()])
    gateway.catch_up(recorder)
    command = PostgresProjectionStore(postgres_url, [counting()])
    errors: list[EventStoreError] = []

    def rebuild() -> None:
        try:
            command.rebuild(recorder, on_page=None)
        except EventStoreError as exc:  # surfaced by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=rebuild)
    thread.start()
    while thread.is_alive():
        gateway.catch_up(recorder, page=1)
    thread.join()
    gateway.catch_up(recorder)
    assert errors == []
    assert gateway.query("SELECT n FROM counts") == [{"n": events}]
    assert gateway.query("SELECT count(*) AS c, max(times) AS m FROM seen") == [
        {"c": events, "m": 1}]
    assert [s.position for s in command.status()] == [events]
    gateway.close()
    command.close()


def test_the_viewer_queries_give_the_rows_sqlite_gives(recorder, postgres_url: str,
                                                       tmp_path: Path) -> None:
    """The session viewer's SQL (`LIKE 'jwt:%'`, `AS user`) and `instr` run unchanged."""
    from lynkr.ui._access import Viewer
    from lynkr.ui._queries import audit_query, session_query, sessions_query, usage_queries

    write_sample_log(recorder)
    pg = PostgresProjectionStore(postgres_url, all_projections())
    lite = ProjectionStore(tmp_path / "projections.db", all_projections())
    pg.catch_up(recorder)
    lite.catch_up(recorder)
    admin = Viewer(user=None, key_id=None)
    queries = [sessions_query(admin, {}), sessions_query(admin, {"user": "anonymous"}),
               sessions_query(Viewer(user="anonymous", key_id=None), {"model": "m"}),
               session_query(admin, "a"), audit_query(admin, {}),
               *usage_queries(admin, {}).values()]
    for sql, args in queries:
        assert pg.query(sql, args) == lite.query(sql, args), sql
    assert pg.query(*sessions_query(admin, {}))
    assert pg.query("SELECT session_id FROM sessions WHERE instr(lower(session_id), lower(?)) > 0"
                    " AND session_id NOT LIKE '%?%'", ["A"]) == [{"session_id": "a"}]
    pg.close()
    lite.close()
