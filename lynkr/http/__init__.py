"""The HTTP API: a quart-trio app over a `System`, served by hypercorn's trio worker."""

from __future__ import annotations

from lynkr.http._app import create_app
from lynkr.http._errors import BODY_LIMIT, HTTP_ERROR_TYPES, error_response
from lynkr.http._fast import GatewayApp
from lynkr.http._health import probe_tcp
from lynkr.http._logline import RequestLog, new_request_id
from lynkr.http._routes import MODEL_ALIASES
from lynkr.http._serve import LISTEN_BACKLOG, bind_listener, hypercorn_config, serve_gateway

__all__ = [
    "BODY_LIMIT",
    "HTTP_ERROR_TYPES",
    "LISTEN_BACKLOG",
    "MODEL_ALIASES",
    "GatewayApp",
    "RequestLog",
    "bind_listener",
    "create_app",
    "error_response",
    "hypercorn_config",
    "new_request_id",
    "probe_tcp",
    "serve_gateway",
]
