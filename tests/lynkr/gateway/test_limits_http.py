"""The tiers' limits over HTTP: a real gateway on loopback, keys minted into its log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import trio

from eventstore import SqliteRecorder
from eventstore.events.limits import LIMITS_STREAM, RateLimited
from lynkr.gateway._keys import GATEWAY_STREAM, create_key
from tests.lynkr.gateway.test_limits import NOON, Clock
from tests.lynkr.http.gateway import Gateway, running_gateway

KEYS = {"LYNKR_AUTH": "keys"}


def mint_keys(tmp_path: Path, *specs: tuple[str, str, str], scopes: str | None = None
              ) -> list[str]:
    """Append a key per (name, user, tier) to the log under tmp_path/data (with `scopes`,
    default anthropic-proxy); their secrets."""
    (tmp_path / "data").mkdir(exist_ok=True)
    recorder = SqliteRecorder(tmp_path / "data" / "lynkr.db")
    from lynkr.gateway._key_admin import ring_of

    secrets = []
    try:
        for name, user, tier in specs:
            ring = ring_of(recorder)
            event, secret = create_key(ring, name=name, user=user, tier=tier, scopes=scopes,
                                       expires_in=None, now=NOON, by="test")
            recorder.append(GATEWAY_STREAM, ring.version, [event])
            secrets.append(secret)
    finally:
        recorder.close()
    return secrets


async def ask(gateway: Gateway, secret: str, n: int, **extra: Any) -> httpx.Response:
    """One small request with key `secret` (a distinct text each time)."""
    body = {"model": "claude-sonnet-4-6", "max_tokens": 32,
            "messages": [{"role": "user", "content": f"question {n}"}], **extra}
    return await gateway.post("/v1/messages", body, headers={"x-api-key": secret})


def refusals(gateway: Gateway) -> list[RateLimited]:
    """The `RateLimited` events recorded so far."""
    return [r.event for r in gateway.system.recorder.read_stream(LIMITS_STREAM)
            if isinstance(r.event, RateLimited)]


async def test_free_key_eleventh_request_in_a_minute_is_429(tmp_path: Path) -> None:
    """10 answered with ratelimit headers counting down; the 11th: 429, retry-after, event."""
    [secret] = mint_keys(tmp_path, ("laptop", "ann", "free"))
    async with running_gateway(tmp_path, env=KEYS) as gateway:
        for n in range(10):
            response = await ask(gateway, secret, n)
            assert response.status_code == 200, response.text
            assert response.headers["anthropic-ratelimit-requests-remaining"] == str(9 - n)
            assert response.headers["anthropic-ratelimit-tokens-limit"] == "10000"
        refused = await ask(gateway, secret, 10)
        assert refused.status_code == 429
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["anthropic-ratelimit-requests-remaining"] == "0"
        assert refused.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
        [event] = refusals(gateway)
        assert (event.limit, event.tier, event.route) == ("requests_per_minute", "free",
                                                          "/v1/messages")


async def test_hundred_a_day_then_429_until_the_day_changes(tmp_path: Path) -> None:
    """With the limiter's clock injected: 100 requests, then 429 until UTC midnight."""
    [secret] = mint_keys(tmp_path, ("laptop", "ann", "free"))
    async with running_gateway(tmp_path, env=KEYS) as gateway:
        assert gateway.system.limiter is not None
        clock = gateway.system.limiter.now = Clock(NOON)
        for n in range(100):
            clock.now = NOON + n * 7  # at most 9 in any minute
            assert (await ask(gateway, secret, n)).status_code == 200
        clock.now = NOON + 3600
        refused = await ask(gateway, secret, 100)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == str(11 * 3600)
        assert refusals(gateway)[-1].limit == "requests_per_day"
        clock.now = NOON + 12 * 3600  # midnight UTC
        assert (await ask(gateway, secret, 101)).status_code == 200


async def test_tokens_per_day_hold_across_a_restart(tmp_path: Path) -> None:
    """A custom tier of 5 tokens/day: the turn crossing it finishes; the next is refused,
    also by a restarted gateway (counters from the log)."""
    (tmp_path / "lynkr.toml").write_text("[tiers.tiny]\ntokens_per_day = 5\n")
    [secret] = mint_keys(tmp_path, ("laptop", "ann", "tiny"))
    async with running_gateway(tmp_path, env=KEYS) as gateway:
        first = await ask(gateway, secret, 1)
        assert first.status_code == 200, first.text
        assert first.json()["usage"]["input_tokens"] + first.json()["usage"]["output_tokens"] > 5
        assert (await ask(gateway, secret, 2)).status_code == 429
    async with running_gateway(tmp_path, env=KEYS) as gateway:
        again = await ask(gateway, secret, 3)
        assert again.status_code == 429, again.text
        assert again.headers["anthropic-ratelimit-tokens-remaining"] == "0"
        assert refusals(gateway)[-1].limit == "tokens_per_day"


async def test_third_concurrent_stream_on_a_free_key_is_429(tmp_path: Path) -> None:
    """Two slow streams hold both free slots; a third request is refused; then served."""
    [secret] = mint_keys(tmp_path, ("laptop", "ann", "free"))
    slow = {"responses": [{"text": "a b c d e f", "chunks": 6, "chunk_delay": 0.25,
                           "times": 2}]}
    async with running_gateway(tmp_path, slow, env=KEYS) as gateway:
        statuses: list[int] = []

        async def stream(n: int) -> None:
            response = await ask(gateway, secret, n, stream=True)
            statuses.append(response.status_code)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream, 1)
            nursery.start_soon(stream, 2)
            await trio.sleep(0.5)  # both are streaming now
            third = await ask(gateway, secret, 3, stream=True)
            assert third.status_code == 429
            assert third.headers["retry-after"] == "1"
        assert statuses == [200, 200]
        assert refusals(gateway)[-1].limit == "concurrent"
        assert (await ask(gateway, secret, 4)).status_code == 200  # the slots came back


async def test_two_keys_of_one_user_share_the_budget_by_user(tmp_path: Path) -> None:
    """LYNKR_LIMITS_BY=user: 5 + 5 requests from two keys, the 11th from either is 429."""
    first, second = mint_keys(tmp_path, ("laptop", "ann", "free"), ("desktop", "ann", "free"))
    async with running_gateway(tmp_path, env={**KEYS, "LYNKR_LIMITS_BY": "user"}) as gateway:
        for n in range(10):
            assert (await ask(gateway, first if n % 2 else second, n)).status_code == 200
        refused = await ask(gateway, first, 10)
        assert refused.status_code == 429
        assert refusals(gateway)[-1].subject == "ann"


async def test_free_routes_count_only_when_configured(tmp_path: Path) -> None:
    """/v1/models is not counted by default; with LYNKR_LIMITS_COUNT_FREE_ROUTES it is."""
    secret, other = mint_keys(tmp_path, ("laptop", "ann", "free"), ("desktop", "bob", "free"))
    headers = {"x-api-key": secret}
    async with running_gateway(tmp_path, env=KEYS) as gateway:
        for _ in range(12):
            response = await gateway.client.get(gateway.url + "/v1/models", headers=headers)
            assert response.status_code == 200
        assert (await ask(gateway, secret, 1)).headers[
            "anthropic-ratelimit-requests-remaining"] == "9"
    async with running_gateway(tmp_path, env={**KEYS, "LYNKR_LIMITS_COUNT_FREE_ROUTES": "1"}
                               ) as gateway:
        headers = {"x-api-key": other}
        for _ in range(10):
            response = await gateway.client.get(gateway.url + "/v1/models", headers=headers)
            assert response.status_code == 200
        refused = await gateway.client.get(gateway.url + "/v1/models", headers=headers)
        assert refused.status_code == 429
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert "retry-after" in refused.headers
        assert refusals(gateway)[-1].route == "/v1/models"
