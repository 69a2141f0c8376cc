"""The `/v1/messages` fast path in front of Quart, over real loopback HTTP."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import trio
from quart import request
from structlog.testing import capture_logs

from lynkr.errors import ProviderOverloadedError
from lynkr.http import bind_listener, create_app, serve_gateway
from lynkr.system import open_system
from tests.lynkr.http.gateway import completed_lines, gateway_settings, running_gateway
from tools.fake_upstream import serve_fake_upstream

HELLO = {"model": "claude-sonnet-4-5", "max_tokens": 64,
         "messages": [{"role": "user", "content": "hello"}]}


async def test_messages_is_served_without_quart_and_the_rest_with_it(tmp_path):
    """Quart's request hooks never run for POST /v1/messages, and do for other routes."""
    seen: list[str] = []
    async with trio.open_nursery() as nursery:
        fake = await nursery.start(serve_fake_upstream, None)
        async with open_system(gateway_settings(tmp_path, fake.url)) as system:
            app = create_app(system)

            @app.before_request
            async def note() -> None:
                seen.append(request.path)

            binds = await nursery.start(serve_gateway, app,
                                        bind_listener("127.0.0.1", 0))
            async with httpx.AsyncClient(timeout=10) as client:
                turn = await client.post(binds[0] + "/v1/messages?beta=true", json=HELLO)
                root = await client.get(binds[0] + "/")
            nursery.cancel_scope.cancel()
    assert (turn.status_code, root.status_code) == (200, 200)
    assert turn.headers["request-id"].startswith("req_")
    assert seen == ["/"]


async def test_a_bug_in_a_turn_is_a_generic_500_that_leaks_nothing(tmp_path, monkeypatch):
    """An unexpected exception is logged and answered 500 api_error with a request id."""
    async with running_gateway(tmp_path) as gw:
        async def broken(*args: object) -> None:
            raise RuntimeError("secret detail")

        monkeypatch.setattr(gw.system.orchestrator, "run_turn", broken)
        with capture_logs() as logs:
            response = await gw.post("/v1/messages", HELLO)
            lines = await completed_lines(logs)
    assert response.status_code == 500
    assert response.json() == {"type": "error",
                               "error": {"type": "api_error", "message": "internal error"}}
    assert response.headers["request-id"].startswith("req_")
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["unhandled_error"]
    assert [line["status"] for line in lines] == [500]


async def test_an_error_with_a_retry_time_carries_retry_after(tmp_path, monkeypatch):
    """A LynkrError's status, type and retry-after reach the client."""
    async with running_gateway(tmp_path) as gw:
        async def overloaded(*args: object) -> None:
            raise ProviderOverloadedError("busy", retry_after=2.4)

        monkeypatch.setattr(gw.system.orchestrator, "run_turn", overloaded)
        response = await gw.post("/v1/messages", HELLO)
    assert response.status_code == 529
    assert response.json()["error"] == {"type": "overloaded_error", "message": "busy"}
    assert response.headers["retry-after"] == "2"


async def test_a_client_leaving_before_its_body_is_sent_appends_nothing(tmp_path):
    """A request cut off mid-body is dropped quietly: no turn, and the gateway serves on."""
    async with running_gateway(tmp_path) as gw:
        parts = urlsplit(gw.url)
        async with await trio.open_tcp_stream(parts.hostname, parts.port) as stream:
            await stream.send_all(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\n"
                                  b"content-type: application/json\r\n"
                                  b"content-length: 500\r\n\r\n"
                                  b'{"model": "claude')
        await trio.sleep(0.1)
        response = await gw.post("/v1/messages", HELLO)
        assert response.status_code == 200
        sessions = [s.stream_id for s in gw.system.recorder.list_streams("session-")]
    assert len(sessions) == 1


async def test_a_streaming_answer_is_sse_without_caching(tmp_path):
    """A stream is text/event-stream, not cached, with a request id and a new session id."""
    async with running_gateway(tmp_path) as gw, gw.client.stream(
            "POST", gw.url + "/v1/messages", json={**HELLO, "stream": True}) as response:
        body = b"".join([chunk async for chunk in response.aiter_bytes()])
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["request-id"].startswith("req_")
    assert response.headers["x-session-id"]
    assert b"event: message_stop" in body


async def _sends_of(frames: list[bytes], *, gap: bool) -> list[tuple[bytes, bool]]:
    """The ASGI body messages `_FrameBatch` sends for `frames` (with or without pauses)."""
    from lynkr.http._fast import _FrameBatch

    sent: list[tuple[bytes, bool]] = []

    async def send(message: dict) -> None:
        sent.append((message["body"], message["more_body"]))
        await trio.lowlevel.checkpoint()

    async def source():
        for frame in frames:
            if gap:
                await trio.sleep(0.01)
            yield frame

    batch = _FrameBatch()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(batch.pull, source())
        await batch.push(send)
    return sent


async def test_the_last_frames_and_the_end_of_the_body_share_one_write():
    """Frames are relayed whole and in order; the final write also ends the body."""
    frames = [b"a", b"", b"b", b"c"]
    for gap in (False, True):
        sent = await _sends_of(frames, gap=gap)
        assert b"".join(body for body, _ in sent) == b"abc"
        assert [more for _, more in sent] == [True] * (len(sent) - 1) + [False]
        assert all(body for body, _ in sent)  # no empty write just to end the body
    assert await _sends_of([], gap=False) == [(b"", False)]
