"""The HTTP API over real loopback HTTP: endpoints, errors, request ids, limits, sessions."""

from __future__ import annotations

import contextlib
import json
from importlib.metadata import version

import trio
from structlog.testing import capture_logs

from lynkr.http import BODY_LIMIT
from tests.lynkr.http.gateway import completed_lines, running_gateway

HELLO = {"model": "claude-sonnet-4-5", "max_tokens": 64,
         "messages": [{"role": "user", "content": "hello"}]}


def sse_events(text: str) -> list[tuple[str, dict]]:
    """(event, data) pairs of an SSE body."""
    out = []
    for frame in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line)
        out.append((lines.get("event", ""), json.loads(lines["data"])))
    return out


async def test_health_reports_provider_reachability_and_event_store(tmp_path):
    """/health and /v1/health say the provider is reachable and the store readable."""
    async with running_gateway(tmp_path) as gw:
        for path in ("/health", "/v1/health"):
            response = await gw.client.get(gw.url + path)
            body = response.json()
            assert response.status_code == 200
            assert body["status"] == "ok"
            assert body["provider"]["reachable"] is True
            assert body["event_store"]["ok"] is True


async def test_health_reports_the_gateways_version(tmp_path):
    """/health carries the package version, as `lynkr --version` prints it."""
    async with running_gateway(tmp_path) as gw:
        body = (await gw.client.get(gw.url + "/health")).json()
    assert body["version"] == version("lynkr")


async def test_answers_that_are_not_turns_log_their_outcome_from_the_status(tmp_path):
    """200 from /health and /v1/models is outcome `ok`; a 404 is `rejected`."""
    async with running_gateway(tmp_path) as gw:
        with capture_logs() as logs:
            for path in ("/health", "/v1/models", "/no-such-route"):
                await gw.client.get(gw.url + path)
            lines = await completed_lines(logs, count=3)
    assert [(line["path"], line["status"], line["outcome"]) for line in lines] == [
        ("/health", 200, "ok"), ("/v1/models", 200, "ok"), ("/no-such-route", 404, "rejected")]


async def test_health_reports_the_active_providers_connection_pool(tmp_path):
    """Three turns in a row reuse one pooled upstream connection, and /health says so."""
    async with running_gateway(tmp_path) as gw:
        before = (await gw.client.get(gw.url + "/health")).json()["provider"]["pool"]
        assert before == {"open": 0, "idle": 0, "waiting": 0, "opened": 0, "reused": 0,
                          "waited": 0}
        for _ in range(3):
            assert (await gw.post("/v1/messages", HELLO)).status_code == 200
        pool = (await gw.client.get(gw.url + "/v1/health")).json()["provider"]["pool"]
        assert pool == {"open": 1, "idle": 1, "waiting": 0, "opened": 1, "reused": 2,
                        "waited": 0}


async def test_root_answers_head_and_get(tmp_path):
    """Claude Code's `HEAD /` at start gets a 200, and so does `GET /`."""
    async with running_gateway(tmp_path) as gw:
        assert (await gw.client.head(gw.url + "/")).status_code == 200
        assert (await gw.client.get(gw.url + "/")).status_code == 200


async def test_every_response_carries_a_request_id(tmp_path):
    """Success, client error and unknown path all carry a `request-id` header."""
    async with running_gateway(tmp_path) as gw:
        responses = [await gw.post("/v1/messages", HELLO),
                     await gw.post("/v1/messages", {"model": "x"}),
                     await gw.client.get(gw.url + "/nope")]
        ids = [r.headers.get("request-id", "") for r in responses]
        assert all(i.startswith("req_") for i in ids)
        assert len(set(ids)) == 3


async def test_non_streaming_turn_answers_with_the_requested_model(tmp_path):
    """The message names the model the client asked for, not the backend's."""
    async with running_gateway(tmp_path, env={"MODEL_DEFAULT": "backend-model"}) as gw:
        response = await gw.post("/v1/messages?beta=true", HELLO)
        assert response.status_code == 200
        body = response.json()
        assert body["model"] == "claude-sonnet-4-5"
        assert body["content"][0]["text"] == "You said: hello"
        assert gw.fake.requests[-1]["body"]["model"] == "backend-model"


async def test_streaming_turn_sends_the_anthropic_event_sequence(tmp_path):
    """A stream runs message_start … message_delta, message_stop, in that order."""
    async with running_gateway(tmp_path) as gw:
        response = await gw.post("/v1/messages?beta=true", {**HELLO, "stream": True})
        assert response.headers["content-type"].startswith("text/event-stream")
        names = [name for name, _ in sse_events(response.text)]
        assert names[0] == "message_start"
        assert names[-2:] == ["message_delta", "message_stop"]


async def test_invalid_json_is_a_400_naming_the_body(tmp_path):
    """A body that is not JSON gets invalid_request_error, not a crash."""
    async with running_gateway(tmp_path) as gw:
        response = await gw.client.post(gw.url + "/v1/messages", content=b"{nope")
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request_error"


async def test_wrong_shape_is_a_400_naming_the_field(tmp_path):
    """A missing `messages` is named in the error message."""
    async with running_gateway(tmp_path) as gw:
        response = await gw.post("/v1/messages", {"model": "m", "max_tokens": 5})
        assert response.status_code == 400
        assert "messages" in response.json()["error"]["message"]


async def test_body_over_the_limit_is_413_request_too_large(tmp_path):
    """More than 32 MB is refused with Anthropic's request_too_large."""
    async with running_gateway(tmp_path) as gw:
        big = b'{"model":"m","x":"' + b"a" * (BODY_LIMIT + 10) + b'"}'
        status, body = await _raw_post(gw.url, "/v1/messages", big)
        assert status == 413
        assert json.loads(body) == {"type": "error", "error": {
            "type": "request_too_large", "message": json.loads(body)["error"]["message"]}}


async def _raw_post(url: str, path: str, body: bytes) -> tuple[int, bytes]:
    """POST over a plain socket: a client that may be answered before it finished sending.

    (httpx's request-body generator is left half-consumed when the server answers
    early, and its garbage collection later trips `filterwarnings = error`.)
    """
    host, port = url.removeprefix("http://").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        # Answered and closed before the whole body went out: read the answer anyway.
        with contextlib.suppress(trio.BrokenResourceError):
            await stream.send_all(head + body)
        response = b""
        while chunk := await stream.receive_some(65536):
            response += chunk
    status_line, _, rest = response.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


async def test_unconfigured_provider_answers_503_naming_the_variables(tmp_path):
    """With no backend configured, /v1/messages says which variables to set."""
    async with running_gateway(tmp_path, with_upstream=False) as gw:
        response = await gw.post("/v1/messages", HELLO)
        assert response.status_code == 503
        message = response.json()["error"]["message"]
        assert "DATABRICKS_API_BASE" in message
        assert "MODEL_PROVIDER" in message
        health = await gw.client.get(gw.url + "/health")
        assert health.status_code == 200


async def test_a_rejected_request_appends_nothing(tmp_path):
    """Invalid bodies and unconfigured providers leave the event log empty."""
    async with running_gateway(tmp_path, with_upstream=False) as gw:
        await gw.post("/v1/messages", HELLO)
        await gw.post("/v1/messages", {"model": "m"})
        status = await gw.system.store.check_health()
        assert status.last_position == 0


async def test_unknown_path_is_a_404_not_found_error(tmp_path):
    """Framework errors are Anthropic error JSON too."""
    async with running_gateway(tmp_path) as gw:
        response = await gw.client.get(gw.url + "/v1/nothing")
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found_error"


async def test_models_lists_the_mapped_models(tmp_path):
    """/v1/models shows each mapped family in Anthropic's list shape."""
    env = {"MODEL_OPUS": "big", "MODEL_HAIKU": "small"}
    async with running_gateway(tmp_path, env=env) as gw:
        body = (await gw.client.get(gw.url + "/v1/models")).json()
        assert [m["id"] for m in body["data"]] == ["claude-opus-4-6", "claude-haiku-4-5"]
        assert body["has_more"] is False
        assert all(m["type"] == "model" for m in body["data"])


async def test_count_tokens_counts_offline_for_openai_backends(tmp_path):
    """An OpenAI-compatible backend has no counter: the offline tokenizer answers."""
    async with running_gateway(tmp_path) as gw:
        response = await gw.post("/v1/messages/count_tokens?beta=true",
                                 {"model": "m", "messages": HELLO["messages"]})
        assert response.status_code == 200
        assert response.json()["input_tokens"] > 0
        assert not any(r["path"].endswith("count_tokens") for r in gw.fake.requests)


async def test_count_tokens_asks_an_anthropic_backend(tmp_path):
    """Anthropic-format backends count with their own endpoint."""
    async with running_gateway(tmp_path, provider="anthropic") as gw:
        response = await gw.post("/v1/messages/count_tokens",
                                 {"model": "m", "messages": HELLO["messages"]})
        assert response.status_code == 200
        assert response.json()["input_tokens"] > 0
        assert gw.fake.requests[-1]["path"] == "/v1/messages/count_tokens"


async def test_a_new_session_id_is_returned_in_a_header(tmp_path):
    """Without any session id, the response says which one was made."""
    async with running_gateway(tmp_path) as gw:
        response = await gw.post("/v1/messages", HELLO)
        session = response.headers["x-session-id"]
        assert await gw.system.store.stream_version(f"session-{session}") > 0


async def test_claude_code_session_header_names_the_stream(tmp_path):
    """`X-Claude-Code-Session-Id` is the stream the turn lands in; no id header is echoed."""
    async with running_gateway(tmp_path) as gw:
        response = await gw.post("/v1/messages", HELLO,
                                 headers={"X-Claude-Code-Session-Id": "cc-123"})
        assert "x-session-id" not in response.headers
        assert await gw.system.store.stream_version("session-cc-123") >= 4


async def test_one_canonical_log_line_without_secrets(tmp_path):
    """Each request logs one request_completed line; keys and auth headers never appear."""
    async with running_gateway(tmp_path, provider="databricks") as gw:
        with capture_logs() as logs:
            await gw.post("/v1/messages", HELLO,
                          headers={"authorization": "Bearer client-secret-1",
                                   "x-api-key": "client-secret-2"})
            lines = await completed_lines(logs)
        assert len(lines) == 1
        assert lines[0]["status"] == 200
        assert lines[0]["provider"] == "databricks"
        assert lines[0]["usage_out"] > 0
        text = repr(logs)
        for secret in ("client-secret-1", "client-secret-2", "dapi-test-secret"):
            assert secret not in text


async def test_a_stream_logs_its_line_when_it_ends(tmp_path):
    """The canonical line of a stream is written once, after the last frame."""
    async with running_gateway(tmp_path) as gw:
        with capture_logs() as logs:
            await gw.post("/v1/messages", {**HELLO, "stream": True})
            lines = await completed_lines(logs)
        assert len(lines) == 1
        assert lines[0]["outcome"] == "ok"
        assert lines[0]["stream"] is True


async def test_wrong_method_is_an_anthropic_error(tmp_path):
    """GET on /v1/messages is answered with error JSON, not HTML."""
    async with running_gateway(tmp_path) as gw:
        response = await gw.client.get(gw.url + "/v1/messages")
        assert response.status_code == 405
        assert response.json()["type"] == "error"


async def test_non_object_json_body_is_a_400(tmp_path):
    """A JSON array body is rejected naming the body."""
    async with running_gateway(tmp_path) as gw:
        response = await gw.client.post(gw.url + "/v1/messages", content=b"[1,2]")
        assert response.status_code == 400



async def test_unknown_fields_never_crash_a_turn(tmp_path):
    """Fields Lynkr does not know (Claude Code's context_management, future keys) are fine."""
    body = {**HELLO, "context_management": {"edits": []}, "output_config": {"effort": "high"},
            "some_future_field": {"x": [1, 2]}, "thinking": {"type": "adaptive"}}
    async with running_gateway(tmp_path) as gw:
        response = await gw.post("/v1/messages?beta=true", body)
    assert response.status_code == 200
    assert "some_future_field" not in gw.fake.requests[-1]["body"]
