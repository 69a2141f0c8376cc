"""The upstream call: error mapping per status, retries before the first byte, breaker, timeouts."""

from __future__ import annotations

import json
import socket

import h11
import httpx
import pytest
from structlog.testing import capture_logs

from lynkr.errors import UpstreamError
from lynkr.orchestrator import HTTPX_ERRORS, backoff_delay, map_httpx_errors
from lynkr.providers._settings import ResilienceSettings
from tests.lynkr.http.gateway import running_gateway
from tests.lynkr.providers.test_transport import serving

HELLO = {"model": "claude-sonnet-4-6", "max_tokens": 64,
         "messages": [{"role": "user", "content": "hello"}]}
NO_RETRY = {"UPSTREAM_MAX_RETRIES": "0"}


@pytest.mark.parametrize(("upstream", "status", "error_type"), [
    (400, 400, "invalid_request_error"),
    (401, 502, "api_error"),
    (404, 502, "api_error"),
    (429, 429, "rate_limit_error"),
    (500, 502, "api_error"),
    (502, 502, "api_error"),
    (503, 529, "overloaded_error"),
    (529, 529, "overloaded_error"),
])
@pytest.mark.parametrize("provider", ["openai", "databricks", "anthropic"])
async def test_upstream_status_maps_to_anthropic_error(tmp_path, provider, upstream, status,
                                                       error_type):
    """Each upstream error status becomes the documented status and Anthropic type."""
    script = {"responses": [{"status": upstream, "message": "upstream says no"}]}
    async with running_gateway(tmp_path, script, provider=provider, env=NO_RETRY) as gw:
        response = await gw.post("/v1/messages", HELLO)
    assert response.status_code == status
    assert response.json()["error"]["type"] == error_type
    assert "upstream says no" in response.json()["error"]["message"]


async def test_400_passes_the_upstream_message_through_unchanged(tmp_path):
    """The client sees exactly what the backend rejected."""
    script = {"responses": [{"status": 400, "message": "max_tokens: too big"}]}
    async with running_gateway(tmp_path, script) as gw:
        response = await gw.post("/v1/messages", HELLO)
    assert response.json()["error"]["message"] == "max_tokens: too big"


async def test_429_passes_retry_after_on(tmp_path):
    """A rate limit keeps the upstream's retry-after for the client."""
    script = {"responses": [{"status": 429, "retry_after": 30}]}
    async with running_gateway(tmp_path, script) as gw:
        response = await gw.post("/v1/messages", HELLO)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "30"
    assert len(gw.fake.requests) == 1  # longer than the retry budget: not retried here


async def test_5xx_is_retried_before_any_byte_reached_the_client(tmp_path):
    """Two 500s then a good answer: the client sees only the good answer."""
    script = {"responses": [{"status": 500}, {"status": 500}, {"text": "finally"}]}
    async with running_gateway(tmp_path, script) as gw:
        response = await gw.post("/v1/messages", HELLO)
    assert response.status_code == 200
    assert response.json()["content"][0]["text"] == "finally"
    assert len(gw.fake.requests) == 3


async def test_a_stream_is_retried_when_it_fails_before_its_first_byte(tmp_path):
    """A 529 before the stream began is retried; the client gets one clean stream."""
    script = {"responses": [{"status": 529}, {"text": "ok"}]}
    async with running_gateway(tmp_path, script) as gw:
        response = await gw.post("/v1/messages", {**HELLO, "stream": True})
    assert response.status_code == 200
    assert "event: message_stop" in response.text
    assert len(gw.fake.requests) == 2


async def test_400_is_not_retried(tmp_path):
    """A request the backend rejects is not sent again."""
    script = {"responses": [{"status": 400}, {"text": "never"}]}
    async with running_gateway(tmp_path, script) as gw:
        await gw.post("/v1/messages", HELLO)
    assert len(gw.fake.requests) == 1


async def test_retries_are_bounded(tmp_path):
    """UPSTREAM_MAX_RETRIES=2 means three attempts, then the error."""
    script = {"responses": [{"status": 500, "times": 5}]}
    async with running_gateway(tmp_path, script) as gw:
        response = await gw.post("/v1/messages", HELLO)
    assert response.status_code == 502
    assert len(gw.fake.requests) == 3


async def test_the_circuit_breaker_answers_overloaded_fast_while_the_backend_is_down(tmp_path):
    """After the threshold, calls fail at once with 529 and never reach the backend."""
    env = {**NO_RETRY, "CIRCUIT_BREAKER_THRESHOLD": "2", "CIRCUIT_BREAKER_RESET_SECONDS": "60"}
    script = {"responses": [{"status": 500, "times": 10}]}
    async with running_gateway(tmp_path, script, env=env) as gw:
        for _ in range(2):
            assert (await gw.post("/v1/messages", HELLO)).status_code == 502
        response = await gw.post("/v1/messages", HELLO)
        assert response.status_code == 529
        assert response.json()["error"]["type"] == "overloaded_error"
        assert "circuit open" in response.json()["error"]["message"]
        assert len(gw.fake.requests) == 2  # the backend was not asked


async def test_read_timeout_is_configurable_and_clear(tmp_path):
    """A slow first byte past UPSTREAM_READ_TIMEOUT is a 504 timeout_error."""
    env = {**NO_RETRY, "UPSTREAM_READ_TIMEOUT": "0.2"}
    script = {"responses": [{"delay": 2}]}
    async with running_gateway(tmp_path, script, env=env) as gw:
        response = await gw.post("/v1/messages", HELLO)
    assert response.status_code == 504  # a wait for the backend's 2 s answer would be a 200
    assert response.json()["error"]["type"] == "timeout_error"
    assert "did not answer in time" in response.json()["error"]["message"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_backend_is_a_clear_502(tmp_path):
    """Connection refused becomes api_error saying the backend cannot be reached."""
    env = {**NO_RETRY, "MODEL_PROVIDER": "openai",
           "OPENAI_BASE_URL": f"http://127.0.0.1:{_closed_port()}/v1"}
    async with running_gateway(tmp_path, env=env, with_upstream=False) as gw:
        response = await gw.post("/v1/messages", HELLO)
        health = (await gw.client.get(gw.url + "/health")).json()
    assert response.status_code == 502
    assert "cannot connect" in response.json()["error"]["message"]
    assert health["provider"]["reachable"] is False
    assert health["status"] == "degraded"


def test_every_httpx_error_class_has_a_mapping():
    """No httpx exception class escapes unmapped (the table names each one)."""
    mapped = {cls for cls, _, _ in HTTPX_ERRORS}
    public = {getattr(httpx, name) for name in dir(httpx)
              if isinstance(getattr(httpx, name), type)
              and issubclass(getattr(httpx, name), httpx.HTTPError)}
    concrete = {cls for cls in public if cls not in (httpx.HTTPError, httpx.HTTPStatusError)}
    assert concrete - mapped <= {httpx.TransportError, httpx.NetworkError, httpx.TimeoutException,
                                 httpx.ProtocolError, httpx.RequestError, httpx.StreamError}
    for cls in concrete:
        try:
            with map_httpx_errors("p"):
                raise cls("boom")
        except UpstreamError:
            pass


def test_backoff_grows_with_jitter_and_honours_retry_after():
    """Delays double per attempt, are jittered below the ceiling, and never undercut retry-after."""
    settings = ResilienceSettings(retry_base_delay=1.0, retry_max_delay=8.0)
    first = [backoff_delay(1, settings, None) for _ in range(50)]
    third = [backoff_delay(3, settings, None) for _ in range(50)]
    assert all(0.5 <= d <= 1.0 for d in first)
    assert all(2.0 <= d <= 4.0 for d in third)
    assert len(set(first)) > 1
    assert backoff_delay(1, settings, 5.0) == 5.0


async def test_the_breaker_sees_a_failure_between_successes(tmp_path):
    """Successes counted on the gate never hide a failure: ok, fail, ok, fail stays closed."""
    env = {**NO_RETRY, "CIRCUIT_BREAKER_THRESHOLD": "2", "CIRCUIT_BREAKER_RESET_SECONDS": "60"}
    script = {"responses": [{}, {}, {"status": 500}, {}, {"status": 500}, {}, {}]}
    async with running_gateway(tmp_path, script, env=env) as gw:
        statuses = [(await gw.post("/v1/messages", HELLO)).status_code for _ in range(7)]
        health = (await gw.client.get(gw.url + "/health")).json()
    assert statuses == [200, 200, 502, 200, 502, 200, 200]
    assert len(gw.fake.requests) == 7
    breaker = health["provider"]["breaker"]
    assert breaker["state"] == "closed"
    assert (breaker["successes"], breaker["failures"]) == (5, 2)
    assert breaker["consecutive_failures"] == 0


async def test_the_keep_alive_race_is_resent_at_once_as_a_counted_logged_retry(tmp_path):
    """A backend that closes a reused connection unanswered: the turn is sent again on a
    new connection, without backoff, logged as `upstream_retry` and counted."""
    body = json.dumps({"id": "c", "object": "chat.completion", "choices": [{
        "index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": "ok"}}]}).encode()
    answer = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
              + str(len(body)).encode() + b"\r\n\r\n" + body)

    async def drop_second(n: int, k: int, request: h11.Request, data: bytes) -> bytes | None:
        return None if k == 2 else answer

    async with serving(drop_second) as server:
        env = {"MODEL_PROVIDER": "openai", "OPENAI_BASE_URL": server.url("/v1")}
        async with running_gateway(tmp_path, env=env, with_upstream=False) as gw:
            with capture_logs() as logs:
                first = await gw.post("/v1/messages", HELLO)
                second = await gw.post("/v1/messages", HELLO)
    assert (first.status_code, second.status_code) == (200, 200)
    retries = [e for e in logs if e["event"] == "upstream_retry"]
    assert [(e["attempt"], e["error"], e["delay_s"]) for e in retries] == [(1, "api_error", 0.0)]
    assert len(server.requests) == 3  # the second turn: sent, dropped, sent again
