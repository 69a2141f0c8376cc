"""`H11Transport` at its connection limit: a request that waits is logged and counted."""

from __future__ import annotations

from functools import partial

import httpx
import trio
import trio.testing
from structlog.testing import capture_logs

from lynkr.providers import H11Transport

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


async def test_a_request_that_waits_for_a_connection_is_logged_and_counted():
    """Pool of one, two requests at once: the second waits, once in the log and the count."""
    release = trio.Event()

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    return
                await release.wait()
                await stream.send_all(OK)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        url = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/"
        transport = H11Transport(max_connections=1)
        async with httpx.AsyncClient(transport=transport, timeout=5) as client:
            with capture_logs() as logs:
                async with trio.open_nursery() as fetches:
                    fetches.start_soon(client.get, url)
                    fetches.start_soon(client.get, url)
                    await trio.testing.wait_all_tasks_blocked()
                    assert transport.statistics().waiting == 1
                    release.set()
        nursery.cancel_scope.cancel()
    stats = transport.statistics()
    assert (stats.waited, stats.opened, stats.reused) == (1, 1, 1)
    waits = [e for e in logs if e["event"] == "upstream_pool_full"]
    assert [(e["log_level"], e["limit"], e["open"], e["waiting"]) for e in waits] == [
        ("warning", 1, 1, 1)]


async def test_requests_under_the_limit_never_wait():
    """Below the limit nothing waits: the count stays 0 and nothing is logged."""
    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            while await stream.receive_some(65536):
                await stream.send_all(OK)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        url = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/"
        transport = H11Transport(max_connections=4)
        async with httpx.AsyncClient(transport=transport, timeout=5) as client:
            with capture_logs() as logs:
                async with trio.open_nursery() as fetches:
                    for _ in range(4):
                        fetches.start_soon(client.get, url)
        nursery.cancel_scope.cancel()
    assert transport.statistics().waited == 0
    assert not [e for e in logs if e["event"] == "upstream_pool_full"]
