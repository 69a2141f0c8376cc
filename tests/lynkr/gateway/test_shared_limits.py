"""Shared limits: two gateways' limiters on one PostgreSQL database count as one.

Each test gets a throwaway database (tests.eventstore.postgres); the limiters' clocks
are injected so minute windows, days and slot leases are crossed without waiting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from lynkr.config import load_settings
from lynkr.errors import ConfigError
from lynkr.gateway import (
    Admission,
    LimitSettings,
    LimitsStoreUnavailableError,
    RateLimitRefusal,
    SharedLimiter,
)
from tests.eventstore.postgres import ADMIN_URL, temporary_database
from tests.lynkr.gateway.test_limits import NOON, Clock, key
from tests.lynkr.gateway.test_limits_http import KEYS, ask, mint_keys
from tests.lynkr.http.gateway import running_gateway


@pytest.fixture
def limits_url() -> Iterator[str]:
    """A fresh database for the shared counters, dropped after the test."""
    with temporary_database() as url:
        yield url


@asynccontextmanager
async def two_limiters(url: str, clock: Clock, *, ttl: float = 30.0,
                       settings: LimitSettings | None = None
                       ) -> AsyncIterator[tuple[SharedLimiter, SharedLimiter]]:
    """Two gateways' limiters (two pools, two gateway ids) on one database."""
    settings = settings or LimitSettings()
    a = await trio.to_thread.run_sync(lambda: SharedLimiter.open(settings, url, ttl=ttl))
    b = await trio.to_thread.run_sync(lambda: SharedLimiter.open(settings, url, ttl=ttl))
    a.now = b.now = clock
    try:
        yield a, b
    finally:
        a.close()
        b.close()


async def test_eleventh_request_in_a_minute_is_refused_whichever_gateway_gets_it(
        limits_url: str) -> None:
    """Free tier, requests alternating between gateways: 10 admitted, the 11th refused on
    either with the retry-after of the first request, admitted again once it left."""
    clock = Clock()
    async with two_limiters(limits_url, clock) as (a, b):
        for i in range(10):
            clock.now = NOON + i
            admitted = await (a, b)[i % 2].acquire(key())
            assert isinstance(admitted, Admission), admitted
            await admitted.aclose(started=True, usage={})
        clock.now = NOON + 30
        for limiter in (a, b):
            refused = await limiter.acquire(key())
            assert isinstance(refused, RateLimitRefusal)
            assert (refused.limit, refused.retry_after) == ("requests_per_minute", 30)
        clock.now = NOON + 60
        assert isinstance(await b.acquire(key()), Admission)


async def test_tokens_counted_on_one_gateway_refuse_on_the_other(limits_url: str) -> None:
    """A turn's tokens released on A reach the free tier's 10,000 a day seen by B."""
    clock = Clock()
    async with two_limiters(limits_url, clock) as (a, b):
        admitted = await a.acquire(key())
        assert isinstance(admitted, Admission)
        await admitted.aclose(started=True, usage={"input_tokens": 9_000, "output_tokens": 1_000,
                                                    "cache_read_input_tokens": 50_000})
        clock.now = NOON + 61
        refused = await b.acquire(key())
        assert isinstance(refused, RateLimitRefusal)
        assert refused.limit == "tokens_per_day"
        clock.now = NOON + 12 * 3600 + 1  # the next UTC day
        assert isinstance(await b.acquire(key()), Admission)


async def test_request_that_never_started_is_given_back_across_gateways(
        limits_url: str) -> None:
    """An admission released unstarted on A does not count on B (minute or day)."""
    clock = Clock()
    async with two_limiters(limits_url, clock) as (a, b):
        for i in range(10):
            clock.now = NOON + i
            admitted = await a.acquire(key())
            assert isinstance(admitted, Admission)
            await admitted.aclose(started=(i != 9))
        clock.now = NOON + 20
        assert isinstance(await b.acquire(key()), Admission)


async def test_concurrency_slots_are_shared_and_a_dead_gateways_slots_expire(
        limits_url: str) -> None:
    """Free tier: 2 concurrent. A holds both (B refused); A's heartbeat keeps them past
    one lease; A dies (no release, no heartbeat): B is admitted once the lease ends."""
    clock = Clock()
    async with two_limiters(limits_url, clock, ttl=10.0) as (a, b):
        held = [await a.acquire(key()), await a.acquire(key())]
        assert all(isinstance(h, Admission) for h in held)
        clock.now = NOON + 8
        refused = await b.acquire(key())
        assert isinstance(refused, RateLimitRefusal)
        assert refused.limit == "concurrent"
        assert await trio.to_thread.run_sync(a.store.heartbeat, clock.now) == 2
        clock.now = NOON + 15  # past the first lease, inside the renewed one
        refused = await b.acquire(key())
        assert isinstance(refused, RateLimitRefusal)
        assert refused.limit == "concurrent"
        a.close()  # the gateway is gone: its slots are never released
        clock.now = NOON + 18.5
        admitted = await b.acquire(key())
        assert isinstance(admitted, Admission)
        stats = await b.acquire(key())
        assert isinstance(stats, Admission)  # both of A's slots expired


async def test_heartbeat_task_renews_slots_in_real_time(limits_url: str) -> None:
    """`serve_heartbeat` renews a held slot so another gateway still sees it taken
    after more than a lease of real time."""
    settings = LimitSettings()
    async with two_limiters(limits_url, Clock(), ttl=0.6, settings=settings) as (a, b):
        import time

        a.now = b.now = time.time
        async with trio.open_nursery() as nursery:
            await nursery.start(a.serve_heartbeat)
            held = [await a.acquire(key()), await a.acquire(key())]
            await trio.sleep(1.5)
            refused = await b.acquire(key())
            assert isinstance(refused, RateLimitRefusal)
            assert refused.limit == "concurrent"
            for h in held:
                await h.aclose(started=True, usage={})
            assert isinstance(await b.acquire(key()), Admission)
            nursery.cancel_scope.cancel()


async def test_unreachable_store_fails_closed(limits_url: str) -> None:
    """The database gone: `acquire` raises the 503 error naming the limits store."""
    clock = Clock()
    async with two_limiters(limits_url, clock) as (a, _b):
        import psycopg

        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            name = limits_url.rsplit("/", 1)[1]
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)".encode())
            admin.execute(f"CREATE DATABASE {name}".encode())  # empty: no tables
            admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false".encode())
        with pytest.raises(LimitsStoreUnavailableError) as caught:
            await a.acquire(key())
        assert caught.value.status == 503
        assert "rate-limits store" in caught.value.message
        assert await a.ready() is False
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true".encode())


async def test_two_http_gateways_share_the_minute_and_fail_closed(tmp_path: Path,
                                                                  limits_url: str) -> None:
    """Two real gateways on loopback, one limits database: requests alternate, the 11th
    is 429 on either; with the database unreachable both answer 503 api_error and
    `/health/ready` says why (ready again once it is back)."""
    env = {**KEYS, "LYNKR_LIMITS_STORE": limits_url}
    (tmp_path / "a").mkdir()
    [secret] = mint_keys(tmp_path / "a", ("laptop", "ann", "free"))
    _copy_log(tmp_path / "a", tmp_path / "b")  # gateway b knows the same key
    async with (running_gateway(tmp_path / "a", env=env) as a,
                running_gateway(tmp_path / "b", env=env) as b):
        for n in range(10):
            response = await ask((a, b)[n % 2], secret, n)
            assert response.status_code == 200, response.text
        ready = await a.client.get(a.url + "/health/ready")
        assert (ready.status_code, ready.json()) == (200, {"ready": True})
        for gateway in (a, b):
            refused = await ask(gateway, secret, 99)
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"]["type"] == "rate_limit_error"
        import psycopg

        name = limits_url.rsplit("/", 1)[1]
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false".encode())
            admin.execute(b"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          b"WHERE datname = %s", (name,))
        try:
            for gateway in (a, b):
                down = await ask(gateway, secret, 100)
                assert down.status_code == 503, down.text
                error = down.json()["error"]
                assert error["type"] == "api_error"
                assert "rate-limits store" in error["message"]
            not_ready = await b.client.get(b.url + "/health/ready")
            assert not_ready.status_code == 503
            assert not_ready.json() == {"ready": False, "reasons": ["limits store unreachable"]}
            assert (await b.client.get(b.url + "/health")).status_code == 200  # alive
        finally:
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true".encode())
        ready = await b.client.get(b.url + "/health/ready")
        assert ready.status_code == 200


def _copy_log(source: Path, target: Path) -> None:
    """The same key ring in a second gateway's data directory (its own SQLite log)."""
    import shutil

    shutil.copytree(source / "data", target / "data")


@pytest.mark.parametrize(("environ", "problem"), [
    ({"LYNKR_LIMITS_STORE": "postgresql"}, "LYNKR_STORE_URL is not a postgresql:// URL"),
    ({"LYNKR_LIMITS_STORE": "redis://127.0.0.1:6379"}, "'redis' is not a limits store"),
])
def test_limits_store_setting_problems_are_named(tmp_path: Path, environ: dict[str, str],
                                                 problem: str) -> None:
    """A limits store Lynkr cannot use is a configuration problem, one line, at start."""
    with pytest.raises(ConfigError) as caught:
        load_settings(environ, cwd=tmp_path)
    assert any(problem in line for line in caught.value.problems), caught.value.problems


def test_limits_store_postgresql_means_the_store_database(tmp_path: Path) -> None:
    """`postgresql` alone shares the event store's database; memory shares nothing."""
    url = "postgresql://lynkr@db:5432/lynkr"
    shared = load_settings({"LYNKR_LIMITS_STORE": "postgresql", "LYNKR_STORE_URL": url},
                           cwd=tmp_path)
    assert shared.limits.shared_url(shared.store_url) == url
    assert load_settings({}, cwd=tmp_path).limits.shared_url(url) is None


async def test_free_routes_count_per_minute_across_gateways(limits_url: str) -> None:
    """With count_free_routes: 10 free-route requests on A fill the minute; B refuses
    the next free route and the next turn, and no slot or day count was taken."""
    clock = Clock()
    settings = LimitSettings(count_free_routes=True)
    async with two_limiters(limits_url, clock, settings=settings) as (a, b):
        for i in range(10):
            clock.now = NOON + i
            assert await a.acount_free_route(key()) is None
        clock.now = NOON + 20
        refused = await b.acount_free_route(key())
        assert refused is not None
        assert (refused.limit, refused.retry_after) == ("requests_per_minute", 40)
        turn = await b.acquire(key())
        assert isinstance(turn, RateLimitRefusal)
        assert turn.limit == "requests_per_minute"
        clock.now = NOON + 61  # the free routes at NOON+0 and +1 left the window
        admitted = await b.acquire(key())
        assert isinstance(admitted, Admission)  # 8 free routes + this turn: 1 left
        assert admitted.headers[1] == (b"anthropic-ratelimit-requests-remaining", b"1")
