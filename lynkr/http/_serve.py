"""`bind_listener` and `serve_gateway`: bind the gateway's port, then run the app (behind
its `/v1/messages` fast path) on hypercorn's trio worker until cancelled.

The port is bound before anything else starts, outside any nursery, so a port that
is taken is one `StartupError` line for the user rather than an exception group.
hypercorn is then handed the bound socket as `fd://N` (its documented way to serve
an inherited socket).
"""

from __future__ import annotations

import errno
import socket

import hypercorn.config
import hypercorn.trio
import trio
from quart_trio import QuartTrio

from lynkr.errors import StartupError
from lynkr.http._fast import GatewayApp

__all__ = ["bind_listener", "hypercorn_config", "serve_gateway"]


def hypercorn_config(host: str, port: int) -> hypercorn.config.Config:
    """hypercorn settings: one bind, no access log (we log one line per request)."""
    config = hypercorn.config.Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.keep_alive_timeout = 75
    config.graceful_timeout = 5
    return config


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
    app: QuartTrio, listener: socket.socket, *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on `listener` (from `bind_listener`; this takes it over and closes it);
    `task_status.started` gets the bound addresses.

    `POST /v1/messages` is served by `GatewayApp`'s plain ASGI handler in front of `app`.
    """
    host, port = listener.getsockname()[:2]
    config = hypercorn_config(host, port)
    config.bind = [f"fd://{listener.detach()}"]  # hypercorn's socket now owns the descriptor
    await hypercorn.trio.serve(GatewayApp(app),  # type: ignore[arg-type]
                               config, task_status=task_status)
