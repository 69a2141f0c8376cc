"""The linear connection pool decides as httpcore's does; `send_pooled` sends as `client.send`."""

from __future__ import annotations

import functools
import random

import httpcore
import httpx
import pytest
import trio

from lynkr.providers import LinearConnectionPool, send_pooled, use_linear_pool

ORIGINS = [httpcore.URL("http://a.test/").origin, httpcore.URL("http://b.test/").origin]


class FakeConnection:
    """A connection in a chosen state (only what the assignment step looks at)."""

    def __init__(self, name: str, origin: httpcore.Origin, state: str) -> None:
        self.name, self.origin, self.state = name, origin, state

    def is_closed(self) -> bool:
        return self.state == "closed"

    def has_expired(self) -> bool:
        return self.state == "expired"

    def is_idle(self) -> bool:
        return self.state == "idle"

    def is_available(self) -> bool:
        return self.state in ("idle", "available")

    def can_handle_request(self, origin: httpcore.Origin) -> bool:
        return origin == self.origin


def _scenario(cls: type[httpcore.AsyncConnectionPool], seed: int) -> tuple[object, ...]:
    """Run one assignment step on a random pool; what it closed, kept and assigned."""
    rng = random.Random(seed)
    pool = cls(max_connections=rng.randint(1, 8), max_keepalive_connections=rng.randint(0, 8))
    states = ["closed", "expired", "idle", "available", "busy"]
    pool._connections = [FakeConnection(f"c{i}", rng.choice(ORIGINS), rng.choice(states))
                         for i in range(rng.randint(0, 10))]
    created = iter(range(100))
    pool.create_connection = (  # type: ignore[method-assign]
        lambda origin: FakeConnection(f"new{next(created)}", origin, "busy"))
    requests = []
    for _ in range(rng.randint(0, 6)):
        request = httpcore._async.connection_pool.AsyncPoolRequest(
            httpcore.Request("GET", f"http://{rng.choice('ab')}.test/"))
        if rng.random() < 0.3:
            request.connection = FakeConnection("held", ORIGINS[0], "busy")
        requests.append(request)
    pool._requests = requests
    closing = pool._assign_requests_to_connections()
    return ([c.name for c in closing], [c.name for c in pool._connections],
            [r.connection.name if r.connection else None for r in requests])


@pytest.mark.parametrize("seed", range(400))
async def test_assignment_matches_httpcore(seed):
    """Same connections closed, kept (in order) and assigned as httpcore's own pool."""
    assert _scenario(LinearConnectionPool, seed) == _scenario(
        httpcore.AsyncConnectionPool, seed)


def test_use_linear_pool_keeps_the_client_and_its_limits():
    """The client's default transport gets the linear pool; its settings stay."""
    client = httpx.AsyncClient(limits=httpx.Limits(max_connections=7))
    assert use_linear_pool(client) is client
    pool = client._transport._pool  # type: ignore[attr-defined]
    assert type(pool) is LinearConnectionPool
    assert pool._max_connections == 7


def test_use_linear_pool_refuses_a_transport_it_does_not_know():
    """A client on another transport is an error, not silently left as it was."""
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    with pytest.raises(TypeError, match="transport"):
        use_linear_pool(client)


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


async def test_send_pooled_over_the_linear_pool_reuses_one_connection():
    """End to end on a real socket: keep-alive reuse through the linear pool."""
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
        client = use_linear_pool(httpx.AsyncClient())
        for _ in range(3):
            response = await send_pooled(client, "GET", f"http://127.0.0.1:{port}/",
                                         headers={}, content=b"")
            assert await response.aread() == b"ok"
            await response.aclose()
        await client.aclose()
        nursery.cancel_scope.cancel()
    assert len(peers) == 1
