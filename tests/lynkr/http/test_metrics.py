"""`GET /metrics` over real HTTP, parsed with prometheus_client's own parser, and the
`x-lynkr-overhead-ms` header on every answer."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from lynkr.http import create_app
from tests.lynkr.http.gateway import Gateway, completed_lines, running_gateway

HELLO = {"model": "claude-sonnet-4-6", "max_tokens": 64,
         "messages": [{"role": "user", "content": "hello"}]}
REMOTE = {"client": ("10.0.0.7", 50000)}
ADMIN_TOKEN = "admin-token-for-the-metrics-1234"


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value)
            for family in text_string_to_metric_families(text) for s in family.samples]


def _value(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(v for n, ls, v in samples
               if n == name and all(ls.get(k) == x for k, x in labels.items()))


async def _scrape(gw: Gateway, **headers: str) -> list[tuple[str, dict[str, str], float]]:
    response = await gw.client.get(f"{gw.url}/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return _samples(response.text)


async def test_request_counters_and_histograms_match_the_traffic(tmp_path):
    """Three JSON and two streaming turns: counters, overhead, upstream and TTFT agree."""
    with capture_logs() as logs:
        async with running_gateway(tmp_path) as gw:
            for _ in range(3):
                assert (await gw.post("/v1/messages", HELLO)).status_code == 200
            for _ in range(2):
                stream = await gw.post("/v1/messages", {**HELLO, "stream": True})
                assert stream.status_code == 200
            bad = await gw.post("/v1/messages", {"model": "x"})
            await completed_lines(logs, 6)
            samples = await _scrape(gw)
    assert bad.status_code == 400
    route = {"route": "/v1/messages"}
    assert _value(samples, "lynkr_requests_total", **route, status="200", provider="openai",
                  outcome="ok") == 5
    assert _value(samples, "lynkr_requests_total", **route, status="400",
                  outcome="rejected") == 1
    assert _value(samples, "lynkr_overhead_seconds_count", **route) == 6
    assert _value(samples, "lynkr_request_duration_seconds_count", **route) == 6
    assert _value(samples, "lynkr_upstream_duration_seconds_count", provider="openai") == 5
    assert _value(samples, "lynkr_time_to_first_token_seconds_count", provider="openai") == 2
    assert _value(samples, "lynkr_tokens_total", kind="input", key="anonymous") > 0
    assert _value(samples, "lynkr_tokens_total", kind="output") > 0
    overhead = _value(samples, "lynkr_overhead_seconds_sum", **route)
    total = _value(samples, "lynkr_request_duration_seconds_sum", **route)
    assert 0 < overhead < total
    assert _value(samples, "lynkr_event_store_events_total") >= 10  # 5 turns, 2 events each
    assert any(n == "lynkr_event_store_wal_bytes" for n, _, _ in samples)
    assert any(n == "lynkr_projection_lag_events" for n, _, _ in samples)
    assert _value(samples, "lynkr_tunnel_connectors") == 0  # no `lynkr connect` here
    appended = sum(_value(samples, f"lynkr_event_store_{name}_total")
                   for name in ("appends", "conflicts", "failures"))
    assert _value(samples, "lynkr_eventstore_append_seconds_count") == appended >= 5
    assert _value(samples, "lynkr_eventstore_append_seconds_bucket", le="+Inf") == appended
    assert 0 < _value(samples, "lynkr_eventstore_append_seconds_sum") < total


async def test_prompt_cache_counters_move(tmp_path):
    """A miss then a hit of one request: lookups by result, one store, one entry."""
    async with running_gateway(tmp_path, env={"PROMPT_CACHE_ENABLED": "true"}) as gw:
        first = await gw.post("/v1/messages", HELLO)
        second = await gw.post("/v1/messages", HELLO)
        samples = await _scrape(gw)
    assert (first.status_code, second.status_code) == (200, 200)
    assert _value(samples, "lynkr_prompt_cache_lookups_total", result="miss") == 1
    assert _value(samples, "lynkr_prompt_cache_lookups_total", result="hit") == 1
    assert _value(samples, "lynkr_prompt_cache_stores_total") == 1
    assert _value(samples, "lynkr_prompt_cache_entries") == 1
    assert _value(samples, "lynkr_requests_total", outcome="cache_hit") == 1


async def test_policy_and_server_tool_counters_come_from_the_log(tmp_path):
    """Two allowed server calls and the step-limit deny (a failed call) are counted."""
    create = {"name": "workspace_task_create", "arguments": {"title": "notes"}, "id": "toolu_l"}
    env = {"LYNKR_SERVER_TOOLS": "tasks", "POLICY_MAX_STEPS": "2"}
    looping = [{"text": "", "tool_calls": [create], "times": 5}]
    async with running_gateway(tmp_path, looping, provider="anthropic", env=env) as gw:
        before = await _scrape(gw)
        assert (await gw.post("/v1/messages", HELLO)).status_code == 200
        samples = await _scrape(gw)
    tool = {"tool": "workspace_task_create"}
    assert _value(before, "lynkr_policy_decisions_total") == 0
    assert _value(samples, "lynkr_policy_decisions_total", **tool, decision="allow") == 2
    assert _value(samples, "lynkr_policy_decisions_total", decision="deny") == 1
    assert _value(samples, "lynkr_server_tool_calls_total", **tool, ok="true") == 2
    assert _value(samples, "lynkr_server_tool_calls_total", **tool, ok="false") == 1  # denied
    assert _value(samples, "lynkr_server_tool_duration_seconds_count", **tool) == 3


async def test_a_remote_client_is_refused(tmp_path):
    """Auth off: a non-loopback client gets 403 permission_error; loopback is served."""
    async with running_gateway(tmp_path, with_upstream=False) as gw:
        client = create_app(gw.system).test_client()
        remote = await client.get("/metrics", scope_base=REMOTE)
        local = await client.get("/metrics", scope_base={"client": ("127.0.0.1", 5)})
    assert remote.status_code == 403
    assert (await remote.get_json())["error"]["type"] == "permission_error"
    assert local.status_code == 200


async def test_with_auth_on_only_the_admin_scope_may_scrape(tmp_path):
    """A proxy key is refused (403), no credential is a 401, an admin key is served."""
    env = {"LYNKR_AUTH": "keys", "LYNKR_ADMIN_TOKEN": ADMIN_TOKEN}
    async with running_gateway(tmp_path, env=env) as gw:
        keys = []
        for scopes in (["anthropic-proxy"], ["admin"]):
            created = await gw.post("/api/v1/api-keys", {"name": "k", "tier": "enterprise",
                                                         "scopes": scopes},
                                    headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
            assert created.status_code == 201, created.text
            keys.append(created.json()["key"])
        url = f"{gw.url}/metrics"
        proxy = await gw.client.get(url, headers={"x-api-key": keys[0]})
        missing = await gw.client.get(url)
        admin = await gw.client.get(url, headers={"x-api-key": keys[1]})
    assert (proxy.status_code, missing.status_code, admin.status_code) == (403, 401, 200)
    assert proxy.json()["error"]["type"] == "permission_error"
    assert "lynkr_requests_total" in admin.text


async def test_every_answer_carries_the_overhead_header(tmp_path):
    """JSON, stream, error and Quart routes: a non-negative figure below the wall time."""
    async with running_gateway(tmp_path) as gw:
        answers: list[tuple[Any, float]] = []
        for call in (lambda: gw.post("/v1/messages", HELLO),
                     lambda: gw.post("/v1/messages", {**HELLO, "stream": True}),
                     lambda: gw.post("/v1/messages", {"model": "x"}),
                     lambda: gw.client.get(f"{gw.url}/health")):
            started = time.perf_counter()
            response = await call()
            answers.append((response, (time.perf_counter() - started) * 1000))
    for response, wall_ms in answers:
        overhead = float(response.headers["x-lynkr-overhead-ms"])
        assert 0 <= overhead <= wall_ms, (response.request.url, overhead, wall_ms)
