"""`send_pooled` sends as `client.send` would: straight to a `pooled_client`'s transport,
through `client.send` for any other client or when a proxy applies."""

from __future__ import annotations

import functools

import httpx
import pytest
import trio

from lynkr.providers import pooled_client, send_pooled


def _recording_client(seen: list[httpx.Request], **kwargs: object) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"set-cookie": "affinity=n1; Path=/"},
                              content=b"answer")

    return httpx.AsyncClient(transport=httpx.MockTransport(handler), **kwargs)  # type: ignore[arg-type]


async def test_send_pooled_sends_what_client_send_would():
    """Client default headers, request headers, body, timeout and cookies, as `send`."""
    seen: list[httpx.Request] = []
    client = _recording_client(seen, timeout=httpx.Timeout(3.0),
                               headers={"x-default": "1"})
    for _ in range(2):
        response = await send_pooled(client, "POST", "http://up.test/v1/chat",
                                     headers={"authorization": "Bearer k"}, content=b"{}")
        assert await response.aread() == b"answer"
        await response.aclose()
        assert response.request is seen[-1]
    first, second = seen
    assert first.headers["x-default"] == "1"
    assert first.headers["authorization"] == "Bearer k"
    assert first.content == b"{}"
    assert first.extensions["timeout"]["read"] == 3.0
    assert "cookie" not in first.headers
    assert second.headers["cookie"] == "affinity=n1"  # kept, as client.send does


async def test_send_pooled_uses_client_send_for_auth_and_hooks():
    """A client with auth or event hooks is served by `client.send` (they run)."""
    seen: list[httpx.Request] = []
    hooked: list[str] = []

    async def hook(request: httpx.Request) -> None:
        hooked.append(str(request.url))

    client = _recording_client(seen, auth=("user", "pw"), event_hooks={"request": [hook]})
    response = await send_pooled(client, "POST", "http://up.test/x", headers={}, content=b"")
    await response.aclose()
    assert seen[0].headers["authorization"].startswith("Basic ")
    assert hooked == ["http://up.test/x"]


async def test_send_pooled_refuses_a_closed_client():
    """Like `client.send`: a closed client raises."""
    client = _recording_client([])
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await send_pooled(client, "GET", "http://up.test/", headers={}, content=b"")


async def test_send_pooled_over_the_h11_transport_reuses_one_connection():
    """End to end on a real socket: keep-alive reuse through the h11 transport."""
    peers: list[object] = []

    async def serve(stream: trio.SocketStream) -> None:
        peers.append(stream)
        buffer = b""
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return
            buffer += data
            while b"\r\n\r\n" in buffer:
                _, _, buffer = buffer.partition(b"\r\n\r\n")
                await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        client = pooled_client()
        for _ in range(3):
            response = await send_pooled(client, "GET", f"http://127.0.0.1:{port}/",
                                         headers={}, content=b"")
            assert await response.aread() == b"ok"
            await response.aclose()
        await client.aclose()
        nursery.cancel_scope.cancel()
    assert len(peers) == 1


async def _serve_one_answer(seen: list[bytes], task_status=trio.TASK_STATUS_IGNORED) -> None:
    """A socket server that records each request head and answers `ok`."""

    async def serve(stream: trio.SocketStream) -> None:
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            data = await stream.receive_some(65536)
            if not data:
                return
            buffer += data
        seen.append(buffer.partition(b"\r\n\r\n")[0])
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    await trio.serve_tcp(serve, 0, host="127.0.0.1", task_status=task_status)


async def test_send_pooled_goes_through_a_proxy_the_environment_names(monkeypatch):
    """With `HTTP_PROXY` set when the client was made, the request goes to the proxy."""
    heads: list[bytes] = []
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(_serve_one_answer, heads)
        port = listeners[0].socket.getsockname()[1]
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = pooled_client()
        response = await send_pooled(client, "GET", "http://upstream.test/v1/x",
                                     headers={}, content=b"")
        assert await response.aread() == b"ok"
        await response.aclose()
        await client.aclose()
        nursery.cancel_scope.cancel()
    assert heads[0].startswith(b"GET http://upstream.test/v1/x HTTP/1.1")
