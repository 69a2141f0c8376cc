"""A turn end to end: what is recorded, durable acknowledgement, broken streams, disconnects."""

from __future__ import annotations

import contextlib
import json

import httpx
import trio

from eventstore.events.session import (
    ModelResponded,
    RouteChosen,
    SessionStarted,
    StreamAborted,
    TurnStarted,
    UpstreamFailed,
)
from tests.lynkr.http.gateway import running_gateway

HELLO = {"model": "claude-sonnet-4-6", "max_tokens": 64,
         "messages": [{"role": "user", "content": "hello"}]}
SESSION = {"X-Claude-Code-Session-Id": "turn-test"}
TOOL_CALLS = [{"name": "Bash", "arguments": {"command": "echo " + "x" * 40}},
              {"name": "Read", "arguments": {"file_path": "/etc/hostname"}}]


async def events_of(gw, session="turn-test"):
    """The events of a session stream, in order."""
    return [r.event for r in await gw.system.store.read_stream(f"session-{session}")]


async def _read_first_bytes_then_leave(url: str, body: dict) -> None:
    """Send a streaming request on a raw socket, read its first bytes, close the socket."""
    host, port = url.removeprefix("http://").split(":")
    data = json.dumps(body).encode()
    async with await trio.open_tcp_stream(host, int(port)) as stream:
        await stream.send_all(
            b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"x-claude-code-session-id: turn-test\r\n"
            b"content-length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
        received = b""
        while b"event: " not in received:
            chunk = await stream.receive_some(65536)
            assert chunk, f"the gateway closed before the first event: {received!r}"
            received += chunk


async def test_a_turn_records_request_route_and_response(tmp_path):
    """SessionStarted, TurnStarted, RouteChosen, ModelResponded land in session-<id>."""
    async with running_gateway(tmp_path, env={"MODEL_DEFAULT": "backend-m"}) as gw:
        await gw.post("/v1/messages", HELLO, headers=SESSION)
        events = await events_of(gw)
    assert [type(e) for e in events] == [SessionStarted, TurnStarted, RouteChosen,
                                         ModelResponded]
    route, answer = events[2], events[3]
    assert (route.provider, route.backend_model) == ("openai", "backend-m")
    assert "default" in route.reason
    assert answer.stop_reason == "end_turn"
    assert answer.usage["output_tokens"] > 0
    assert answer.upstream is not None


async def test_the_recorded_response_is_what_the_client_got(tmp_path):
    """The message blob of ModelResponded equals the non-streaming body."""
    async with running_gateway(tmp_path) as gw:
        body = (await gw.post("/v1/messages", HELLO, headers=SESSION)).json()
        answer = (await events_of(gw))[-1]
        recorder = gw.system.recorder
        assert recorder.load_blob(answer.message)["content"][0]["text"] == \
            body["content"][0]["text"]


async def test_an_upstream_error_is_recorded_as_upstream_failed(tmp_path):
    """A 400 from the backend ends the turn with UpstreamFailed."""
    async with running_gateway(tmp_path, {"responses": [{"status": 400}]}) as gw:
        await gw.post("/v1/messages", HELLO, headers=SESSION)
        failed = (await events_of(gw))[-1]
    assert isinstance(failed, UpstreamFailed)
    assert (failed.status, failed.error_type, failed.upstream_status) == (
        400, "invalid_request_error", 400)


async def test_message_stop_is_sent_only_after_the_response_is_committed(tmp_path):
    """When the client reads message_stop, ModelResponded is already in the log."""
    async with running_gateway(tmp_path) as gw:
        async with gw.client.stream("POST", gw.url + "/v1/messages",
                                    json={**HELLO, "stream": True}, headers=SESSION) as r:
            seen, checked = b"", False
            async for chunk in r.aiter_raw():
                seen += chunk
                if b"event: message_stop" in seen and not checked:
                    events = await events_of(gw)
                    assert isinstance(events[-1], ModelResponded)
                    checked = True
        assert checked


async def test_the_non_streaming_body_is_sent_only_after_the_commit(tmp_path):
    """By the time the body arrives, ModelResponded is committed."""
    async with running_gateway(tmp_path) as gw:
        response = await gw.post("/v1/messages", HELLO, headers=SESSION)
        assert response.status_code == 200
        assert isinstance((await events_of(gw))[-1], ModelResponded)


async def test_a_stream_cut_mid_tool_call_becomes_an_error_event(tmp_path):
    """A cut stream ends with an SSE api_error, no message_stop, and StreamAborted."""
    script = {"responses": [{"tool_calls": TOOL_CALLS, "fault": "cut"}]}
    async with running_gateway(tmp_path, script) as gw:
        response = await gw.post("/v1/messages", {**HELLO, "stream": True}, headers=SESSION)
        events = await events_of(gw)
    assert "event: error" in response.text
    assert '"api_error"' in response.text
    assert "event: message_stop" not in response.text
    assert isinstance(events[-1], StreamAborted)


async def test_a_malformed_chunk_becomes_an_error_event(tmp_path):
    """A data line that is not JSON ends the stream with an error, recorded as aborted."""
    script = {"responses": [{"text": "some words here", "fault": "malformed"}]}
    async with running_gateway(tmp_path, script) as gw:
        response = await gw.post("/v1/messages", {**HELLO, "stream": True}, headers=SESSION)
        events = await events_of(gw)
    assert "event: error" in response.text
    assert "event: message_stop" not in response.text
    assert isinstance(events[-1], StreamAborted)


async def test_a_stream_without_finish_reason_is_never_a_clean_end(tmp_path):
    """An upstream that just stops (no finish reason) gets an error event, not end_turn."""
    script = {"responses": [{"tool_calls": TOOL_CALLS, "fault": "no_finish"}]}
    async with running_gateway(tmp_path, script) as gw:
        response = await gw.post("/v1/messages", {**HELLO, "stream": True}, headers=SESSION)
    assert "event: error" in response.text
    assert "event: message_stop" not in response.text


async def test_interleaved_parallel_tool_calls_stream_complete(tmp_path):
    """Two interleaved tool calls arrive as two complete tool_use blocks in order."""
    script = {"responses": [{"tool_calls": TOOL_CALLS, "interleave": True}]}
    async with running_gateway(tmp_path, script) as gw:
        await gw.post("/v1/messages", {**HELLO, "stream": True}, headers=SESSION)
        answer = (await events_of(gw))[-1]
        recorder = gw.system.recorder
        message = recorder.load_blob(answer.message)
    assert [b["input"] for b in message["content"]] == [c["arguments"] for c in TOOL_CALLS]
    assert message["stop_reason"] == "tool_use"


async def test_a_client_disconnect_cancels_the_upstream_request(tmp_path):
    """A client that leaves while the backend is slow ends the turn as client_disconnected."""
    script = {"responses": [{"delay": 5}]}
    async with running_gateway(tmp_path, script) as gw:
        with contextlib.suppress(httpx.ReadTimeout):
            await gw.client.post(gw.url + "/v1/messages", json=HELLO, headers=SESSION,
                                 timeout=0.3)
        with trio.fail_after(4):  # generous for a loaded machine, still under the 5 s delay
            while not isinstance((await events_of(gw))[-1], StreamAborted):  # noqa: ASYNC110
                await trio.sleep(0.02)
        aborted = (await events_of(gw))[-1]
        assert aborted.reason == "client_disconnected"


async def test_a_client_leaving_mid_stream_is_recorded(tmp_path):
    """A client that closes a slow stream ends the turn as client_disconnected."""
    script = {"responses": [{"text": "a b c d e f g h", "chunks": 8, "chunk_delay": 1.0}]}
    async with running_gateway(tmp_path, script) as gw:
        await _read_first_bytes_then_leave(gw.url, {**HELLO, "stream": True})
        with trio.fail_after(6):  # the stream lasts 8 s; a loaded machine needs the margin
            while not isinstance((await events_of(gw))[-1], StreamAborted):  # noqa: ASYNC110
                await trio.sleep(0.02)
        assert (await events_of(gw))[-1].reason == "client_disconnected"
