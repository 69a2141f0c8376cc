"""The quart-trio application: hooks, error handlers and blueprints, around a `System`.

Each request gets a request id (the `request-id` response header) bound into
structlog's context, is authenticated (`lynkr.gateway.Authenticator`: the caller's
`Principal` is `g.principal`, the scope the path needs checked; a refusal is a 401 or
403 in Anthropic's error JSON before any handler runs), and ends with one canonical log
line (see `_logline`), which also feeds the app's Prometheus metrics (`GET /metrics`,
`_metrics`), and carries `x-lynkr-overhead-ms` (Lynkr's own time; `RequestLog.overhead_ms`).
Bodies over 32 MB are refused with 413 `request_too_large`.

The authenticator is built here from the system's settings and log (the key ring
folded from the `gateway` stream) and kept in `app.extensions["lynkr.auth"]`, where
`GatewayApp` finds it too; while the app serves, a background task keeps the ring
current (`Authenticator.follow`).
"""

from __future__ import annotations

import structlog
from quart import Response, current_app, g, request
from quart_trio import QuartTrio

from lynkr.gateway import Authenticator, required_scope
from lynkr.http._api_keys import AUTH_EXTENSION, api_keys
from lynkr.http._errors import BODY_LIMIT, register_error_handlers
from lynkr.http._health import health
from lynkr.http._logline import RequestLog, new_request_id
from lynkr.http._metrics import METRICS_EXTENSION, GatewayMetrics, metrics_api
from lynkr.http._routes import api
from lynkr.http._tunnel_api import tunnel_api
from lynkr.http._usage_api import usage_api
from lynkr.system import System
from lynkr.ui import ui

__all__ = ["create_app"]

log = structlog.get_logger()


async def _begin_request() -> None:
    request_id = new_request_id()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    rule = request.url_rule
    g.request_log = RequestLog(request_id=request_id, method=request.method, path=request.path,
                               route=rule.rule if rule is not None else "unmatched",
                               sink=current_app.extensions[METRICS_EXTENSION].observe)


async def _authenticate() -> None:
    auth: Authenticator = current_app.extensions[AUTH_EXTENSION]
    headers = {k.lower(): v for k, v in request.headers.items()}
    g.principal = await auth.authenticate(headers, required_scope(request.path))


async def _start_auth() -> None:
    auth: Authenticator = current_app.extensions[AUTH_EXTENSION]
    log.info("gateway_auth", mode=auth.settings.describe(), how=auth.describe())
    if auth.enabled and "keys" in auth.settings.modes:
        current_app.add_background_task(auth.follow)


async def _end_request(response: Response) -> Response:
    record: RequestLog | None = g.get("request_log")
    if record is None:  # a failure before the first hook ran
        record = RequestLog(request_id=new_request_id(), method=request.method,
                            path=request.path, route="unmatched",
                            sink=current_app.extensions[METRICS_EXTENSION].observe)
    response.headers["request-id"] = record.request_id
    response.headers["x-lynkr-overhead-ms"] = f"{record.overhead_ms():.2f}"
    record.emit(response.status_code)
    return response


def create_app(system: System) -> QuartTrio:
    """The gateway's app, serving `system` (plus any blueprints other areas registered)."""
    app = QuartTrio("lynkr")
    app.config.update(MAX_CONTENT_LENGTH=BODY_LIMIT, BODY_TIMEOUT=120, RESPONSE_TIMEOUT=None,
                      PROVIDE_AUTOMATIC_OPTIONS=False)
    app.extensions["lynkr"] = system
    app.extensions[AUTH_EXTENSION] = Authenticator.open(
        system.settings.auth, system.recorder, admin_token=system.settings.mcp.admin_token)
    app.extensions[METRICS_EXTENSION] = GatewayMetrics(system)
    app.before_serving(_start_auth)
    app.before_request(_begin_request)
    app.before_request(_authenticate)
    app.after_request(_end_request)
    register_error_handlers(app)
    app.register_blueprint(api)
    app.register_blueprint(health)
    app.register_blueprint(api_keys)
    app.register_blueprint(usage_api)  # after authentication: counts free routes too
    if system.tunnel is not None:
        app.register_blueprint(tunnel_api)
    app.register_blueprint(metrics_api)
    app.register_blueprint(ui)  # the session viewer at /ui
    for blueprint in system.blueprints:
        app.register_blueprint(blueprint)
    return app
