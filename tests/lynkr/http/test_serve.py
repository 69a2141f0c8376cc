"""`serve_gateway`'s listener: the backlog 1,000 clients at once need, the open-file limit."""

from __future__ import annotations

import inspect
import resource
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import trio
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from structlog.testing import capture_logs

from lynkr.http import LISTEN_BACKLOG, hypercorn_config
from tests.lynkr.http.gateway import running_gateway


def _somaxconn() -> int:
    return int(Path("/proc/sys/net/core/somaxconn").read_text())


def test_hypercorn_is_asked_for_our_backlog():
    """The config hypercorn listens with carries `LISTEN_BACKLOG`, not its default 100."""
    assert hypercorn_config("127.0.0.1", 0).backlog == LISTEN_BACKLOG >= 1000


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs iproute2's ss")
async def test_the_listening_socket_has_the_backlog_we_set(tmp_path):
    """`ss` shows the serving socket's backlog: ours (as far as the kernel allows)."""
    async with running_gateway(tmp_path) as gw:
        port = urlsplit(gw.url).port
        shown = await trio.run_process(["ss", "-ltnH", f"sport = :{port}"],
                                       capture_stdout=True)
    out = shown.stdout.decode().split()
    # LISTEN Recv-Q Send-Q ...: for a listening socket, Send-Q is its backlog
    assert int(out[2]) == min(LISTEN_BACKLOG, _somaxconn())


async def test_serving_raises_the_open_file_limit_to_the_hard_limit(tmp_path):
    """A soft RLIMIT_NOFILE below the hard one is raised when serving starts, and logged."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 1024:
        pytest.skip("needs a finite hard limit above 1024")
    low = min(hard - 1, 2048)  # room for what the test process already holds
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        with capture_logs() as logs:
            async with running_gateway(tmp_path):
                now = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert now == hard
    raised = [e for e in logs if e["event"] == "open_file_limit_raised"]
    assert [(e["before"], e["now"]) for e in raised] == [(low, hard)]


def test_the_hypercorn_worker_parts_we_serve_with_keep_their_signatures():
    """`_serve` runs hypercorn's trio worker parts itself: a change to them fails here."""
    for part, expected in ((Lifespan, ["app", "config", "state"]),
                           (TCPServer, ["app", "config", "context", "state", "stream"]),
                           (WorkerContext, ["max_requests"])):
        assert list(inspect.signature(part).parameters) == expected, (
            f"hypercorn's {part.__module__}.{part.__qualname__} changed: check "
            "lynkr/http/_serve.py (serve_gateway) against hypercorn.trio.run.worker_serve")
    assert callable(TCPServer.run)
    assert callable(Lifespan.handle_lifespan)


async def test_clients_that_connect_together_are_all_served(tmp_path):
    """200 connections opened at once: every one gets its answer."""
    async with running_gateway(tmp_path) as gw:
        port = urlsplit(gw.url).port
        answers: list[bytes] = []

        async def ask() -> None:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
                answers.append(await stream.receive_some(12))

        async with trio.open_nursery() as nursery:
            for _ in range(200):
                nursery.start_soon(ask)
    assert answers == [b"HTTP/1.1 200"] * 200
