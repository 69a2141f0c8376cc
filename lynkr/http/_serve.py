"""`serve_gateway`: run the app (behind its `/v1/messages` fast path) on hypercorn's trio
worker until cancelled."""

from __future__ import annotations

import hypercorn.config
import hypercorn.trio
import trio
from quart_trio import QuartTrio

from lynkr.http._fast import GatewayApp

__all__ = ["hypercorn_config", "serve_gateway"]


def hypercorn_config(host: str, port: int) -> hypercorn.config.Config:
    """hypercorn settings: one bind, no access log (we log one line per request)."""
    config = hypercorn.config.Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.keep_alive_timeout = 75
    config.graceful_timeout = 5
    return config


async def serve_gateway(
    app: QuartTrio, host: str, port: int, *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on `host:port`; `task_status.started` gets the bound addresses.

    `POST /v1/messages` is served by `GatewayApp`'s plain ASGI handler in front of `app`.
    """
    await hypercorn.trio.serve(GatewayApp(app),  # type: ignore[arg-type]
                               hypercorn_config(host, port), task_status=task_status)
