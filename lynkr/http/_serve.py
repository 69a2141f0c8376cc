"""`bind_listener` and `serve_gateway`: bind the gateway's port, then run the app (behind
its `/v1/messages` fast path) on hypercorn's trio worker until cancelled.

The port is bound before anything else starts, outside any nursery, so a port that
is taken is one `StartupError` line for the user rather than an exception group.
hypercorn is then handed the bound socket as `fd://N` (its documented way to serve
an inherited socket).

Many users at once: the socket listens with a backlog of `LISTEN_BACKLOG` (hypercorn's
default, 100, reset connections when 1,000 clients connected at the same moment; the
kernel caps it at `net.core.somaxconn`), and `serve_gateway` raises the process's soft
limit on open files to its hard limit (each stream holds two descriptors: the client's
connection and the upstream's), logging both.

The accept loop is ours (`_accept_connections`), the rest is hypercorn's trio worker
(its lifespan, and its `TCPServer` per connection, as `hypercorn.trio.serve` runs
them): trio's `SocketListener.accept` takes one connection per pass of the scheduler,
so while hundreds of streams are relaying chunks, 1,000 clients that connected at
once waited seconds in the kernel's queue (p99 to the first event 7-8 s, against
3.8-4.1 s when every ready connection is taken at each wake-up; `bench_proxy.py
--paced 1000`, BENCHMARKS.md). This module is the one place that uses hypercorn's
trio worker parts; `tests/lynkr/http/test_serve.py` pins them.
"""

from __future__ import annotations

import errno
import os
import resource
import socket
from collections.abc import Callable

import hypercorn.config
import structlog
import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from quart_trio import QuartTrio

from lynkr.errors import StartupError
from lynkr.http._fast import GatewayApp

__all__ = ["LISTEN_BACKLOG", "bind_listener", "hypercorn_config", "serve_gateway"]

log = structlog.get_logger()

LISTEN_BACKLOG = 4096  # connections the kernel queues before we accept them (module doc)
_ACCEPT_BATCH = 1024  # connections taken per wake-up at most, before others get a turn
# accept() failing for want of resources: wait a little and try again; for a client
# that gave up meanwhile: go on (both as trio's SocketListener does)
_ACCEPT_FULL = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
_ACCEPT_GONE = {errno.ECONNABORTED, errno.EPERM, errno.EPROTO}


def hypercorn_config(host: str, port: int) -> hypercorn.config.Config:
    """hypercorn settings: one bind, no access log (we log one line per request)."""
    config = hypercorn.config.Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.keep_alive_timeout = 75
    config.graceful_timeout = 5
    config.backlog = LISTEN_BACKLOG
    return config


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft limit on open files (`RLIMIT_NOFILE`) to the hard limit, and log it.

    Returns:
        (soft limit before, soft limit now).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == hard:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        log.warning("open_file_limit_kept", soft=soft, hard=hard, error=str(exc))
        return soft, soft
    log.info("open_file_limit_raised", before=soft, now=hard)
    return soft, hard


def bind_listener(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host:port` (not yet listening), as hypercorn would bind it.

    Raises:
        StartupError: the port is in use, or the address cannot be bound.
    """
    try:
        return hypercorn_config(host, port).create_sockets().insecure_sockets[0]
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(f"port {port} on {host} is in use; set PORT or pass "
                               "--port") from exc
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                           "set HOST and PORT or pass --host and --port") from exc


async def serve_gateway(
    app: QuartTrio, listener: socket.socket, *, stop: trio.Event | None = None,
    grace: float = 5.0,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on `listener` (from `bind_listener`; this takes it over and closes it);
    `task_status.started` gets the bound addresses.

    `POST /v1/messages` is served by `GatewayApp`'s plain ASGI handler in front of `app`.
    Runs until cancelled, or drains once `stop` is set: the listener closes (new
    connections are refused), idle keep-alive connections close, requests and streams
    under way get up to `grace` seconds to finish, then this returns.
    """
    raise_open_file_limit()
    host, port = listener.getsockname()[:2]
    config = hypercorn_config(host, port)
    wrapped = ASGIWrapper(GatewayApp(app))  # type: ignore[arg-type]
    state: dict[str, object] = {}
    lifespan = Lifespan(wrapped, config, state)
    context = WorkerContext(None)  # no max_requests
    with listener:
        listener.listen(config.backlog)
        listener.setblocking(False)
        async with trio.open_nursery() as lifespan_nursery:
            await lifespan_nursery.start(lifespan.handle_lifespan)
            await lifespan.wait_for_startup()
            async with trio.open_nursery() as connections:
                task_status.started(
                    [f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"])
                try:
                    with trio.CancelScope() as accepting:
                        if stop is not None:
                            connections.start_soon(_cancel_on, stop, accepting)
                        await _accept_connections(listener, connections, lambda stream: TCPServer(
                            wrapped, config, context, dict(state),
                            stream))  # type: ignore[arg-type]  # TLS or not, as hypercorn's
                finally:
                    listener.close()
                    await context.terminated.set()
                    connections.cancel_scope.deadline = trio.current_time() + grace
                    log.info("gateway_draining", grace_s=grace)
            await lifespan.wait_for_shutdown()
            lifespan_nursery.cancel_scope.cancel()


async def _accept_connections(
    listener: socket.socket, connections: trio.Nursery,
    server: Callable[[trio.SocketStream], TCPServer],
) -> None:
    """Accept every connection that is ready at each wake-up (module doc), each served
    by its own `server(stream)` task in `connections`, until cancelled."""
    try:
        while True:
            await trio.lowlevel.wait_readable(listener)
            for _ in range(_ACCEPT_BATCH):
                try:
                    sock, _address = listener.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:
                    if exc.errno in _ACCEPT_GONE:
                        continue
                    if exc.errno not in _ACCEPT_FULL:
                        raise
                    log.warning("accept_paused", error=os.strerror(exc.errno or 0))
                    await trio.sleep(0.1)
                    break
                stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
                connections.start_soon(_serve_connection, server(stream), stream)
            else:
                await trio.lowlevel.checkpoint()  # a full batch: let the others run
    finally:
        trio.lowlevel.notify_closing(listener)


async def _cancel_on(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def _serve_connection(server: TCPServer, stream: trio.SocketStream) -> None:
    try:
        await server.run()
    finally:
        await trio.aclose_forcefully(stream)
