"""The quart-trio application: hooks, error handlers and blueprints, around a `System`.

Each request gets a request id (the `request-id` response header) bound into
structlog's context, and ends with one canonical log line (see `_logline`). Bodies
over 32 MB are refused with 413 `request_too_large`.
"""

from __future__ import annotations

import structlog
from quart import Response, g, request
from quart_trio import QuartTrio

from lynkr.http._errors import BODY_LIMIT, register_error_handlers
from lynkr.http._health import health
from lynkr.http._logline import RequestLog, new_request_id
from lynkr.http._routes import api
from lynkr.system import System

__all__ = ["create_app"]


async def _begin_request() -> None:
    request_id = new_request_id()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    g.request_log = RequestLog(request_id=request_id, method=request.method, path=request.path)


async def _end_request(response: Response) -> Response:
    record: RequestLog | None = g.get("request_log")
    if record is None:  # a failure before the first hook ran
        record = RequestLog(request_id=new_request_id(), method=request.method,
                            path=request.path)
    response.headers["request-id"] = record.request_id
    record.emit(response.status_code)
    return response


def create_app(system: System) -> QuartTrio:
    """The gateway's app, serving `system` (plus any blueprints other areas registered)."""
    app = QuartTrio("lynkr")
    app.config.update(MAX_CONTENT_LENGTH=BODY_LIMIT, BODY_TIMEOUT=120, RESPONSE_TIMEOUT=None,
                      PROVIDE_AUTOMATIC_OPTIONS=False)
    app.extensions["lynkr"] = system
    app.before_request(_begin_request)
    app.after_request(_end_request)
    register_error_handlers(app)
    app.register_blueprint(api)
    app.register_blueprint(health)
    for blueprint in system.blueprints:
        app.register_blueprint(blueprint)
    return app
