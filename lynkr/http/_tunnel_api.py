"""`/api/mcp/…`: the callback tunnel's routes (`lynkr connect` and its status).

| route | who | does |
|---|---|---|
| `WS /api/mcp/ws/<user_id>` | `mcp-callback`, user `user_id` | the connector's connection |
| `POST /api/mcp/register` | `mcp-callback` | a poller's `register` → `registered` |
| `POST /api/mcp/poll` | `mcp-callback` | `{"connector_id"}` → `{"calls": […]}` within 25 s |
| `POST /api/mcp/submit` | `mcp-callback` | `{"results": […]}` → `{"recorded": n}` |
| `GET /api/mcp/servers/<user_id>` | that user, or `admin` | connectors, tools, state |
| `GET /api/mcp/status` | anyone authenticated | counts; per user with `admin` |

The messages are `lynkr.tunnel._protocol`'s. The HTTP routes are authenticated by the
app's hook; the WebSocket (Quart runs no request hooks for it) authenticates here, from
the handshake's `x-api-key` or `Authorization: Bearer`: a credential that is missing,
invalid, without `mcp-callback` or of another user is accepted and then closed with
1008 (policy violation) and the reason, so the connector can say why; every
connection with `LYNKR_TUNNEL_WS=off` is closed with 4000 "websocket disabled; use
polling" (the close codes are `lynkr.tunnel._protocol`'s). (Refusing the handshake
itself would be a 403 without a reason, and trio-websocket 0.12 leaks the socket of
a rejected handshake.) A
poller's user is its credential's: it never names another user's calls or tools.
"""

from __future__ import annotations

from typing import Any

import structlog
from quart import Blueprint, Response, current_app, g, jsonify, request, websocket

from lynkr.errors import InvalidRequestError, LynkrError, NotFoundError, PermissionDeniedError
from lynkr.gateway import ANONYMOUS, Authenticator, Principal
from lynkr.http._api_keys import AUTH_EXTENSION
from lynkr.tunnel import (
    POLL_WAIT_S,
    ProtocolError,
    Register,
    ResultMessage,
    Tunnel,
    decode,
    serve_connector_socket,
)

__all__ = ["tunnel_api"]

log = structlog.get_logger()

tunnel_api = Blueprint("tunnel_api", __name__, url_prefix="/api/mcp")

_SCOPE = "mcp-callback"
POLICY_VIOLATION = 1008  # WebSocket close codes (lynkr.tunnel._protocol's docstring)
WS_DISABLED = 4000
WS_DISABLED_REASON = "websocket disabled; use polling (LYNKR_TUNNEL_WS=off)"


def _tunnel() -> Tunnel:
    tunnel: Tunnel = current_app.extensions["lynkr"].tunnel
    return tunnel


def _principal() -> Principal:
    principal = g.get("principal")
    return principal if isinstance(principal, Principal) else ANONYMOUS


def _connector_principal() -> Principal:
    principal = _principal()
    if not principal.allows(_SCOPE):
        raise PermissionDeniedError(f"this credential lacks the {_SCOPE!r} scope")
    return principal


async def _body() -> dict[str, Any]:
    body = await request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise InvalidRequestError("send the tunnel message as a JSON object")
    return body


@tunnel_api.before_app_serving
async def _start_reaper() -> None:
    current_app.add_background_task(_tunnel().serve_reaper)


@tunnel_api.websocket("/ws/<user_id>")
async def connector_socket(user_id: str) -> None:
    """One connector's WebSocket (module docstring)."""
    tunnel = _tunnel()
    await websocket.accept()
    if not tunnel.settings.ws:
        log.info("tunnel_ws_refused", user=user_id, reason="LYNKR_TUNNEL_WS=off")
        await websocket.close(WS_DISABLED, WS_DISABLED_REASON)
        return
    try:
        principal = await _socket_principal(user_id)
    except LynkrError as exc:
        log.info("tunnel_ws_refused", user=user_id, reason=exc.message)
        await websocket.close(POLICY_VIOLATION, exc.message[:120])  # 123 bytes at most
        return
    await serve_connector_socket(tunnel, websocket, principal, user_id)


async def _socket_principal(user_id: str) -> Principal:
    """Who opened the WebSocket, checked for the scope and the user.

    Raises:
        LynkrError: not authenticated, no `mcp-callback`, or another user.
    """
    auth: Authenticator = current_app.extensions[AUTH_EXTENSION]
    headers = {k.lower(): v for k, v in websocket.headers.items()}
    principal = await auth.authenticate(headers, _SCOPE)
    if principal is not ANONYMOUS and principal.user != user_id:
        raise PermissionDeniedError(f"this credential belongs to another user than "
                                    f"{user_id!r}")
    return principal


@tunnel_api.post("/register")
async def register() -> Response:
    """A poller announces its tools; the answer is `registered`."""
    principal = _connector_principal()
    try:
        message = decode(await _body())
    except ProtocolError as exc:
        raise InvalidRequestError(str(exc)) from exc
    if not isinstance(message, Register):
        raise InvalidRequestError('POST /api/mcp/register takes a "register" message')
    tunnel = _tunnel()
    current = tunnel.connector(principal.user, message.connector_id)
    connector = await tunnel.attach(principal.user, message, transport="poll",
                                    key_id=principal.key_id,
                                    current=current if current and current.transport == "poll"
                                    else None)
    tunnel.touch(connector)
    return jsonify({"type": "registered", "connector_id": connector.connector_id,
                    "tools": len(connector.tools)})


@tunnel_api.post("/poll")
async def poll() -> Response:
    """The calls for a poller, waiting up to 25 s for one."""
    principal = _connector_principal()
    connector_id = (await _body()).get("connector_id")
    if not isinstance(connector_id, str) or not connector_id:
        raise InvalidRequestError("connector_id must be a non-empty string")
    tunnel = _tunnel()
    connector = tunnel.connector(principal.user, connector_id)
    if connector is None or connector.transport != "poll":
        raise NotFoundError(f"connector {connector_id!r} is not registered for polling: "
                            "POST /api/mcp/register first")
    calls = await tunnel.wait_calls(connector, POLL_WAIT_S)
    return jsonify({"calls": [call.message().as_json() for call in calls]})


@tunnel_api.post("/submit")
async def submit() -> Response:
    """Results of calls; one answered already (or another user's) is not recorded."""
    principal = _connector_principal()
    results = (await _body()).get("results")
    if not isinstance(results, list):
        raise InvalidRequestError("results must be a list of result messages")
    messages = []
    for item in results:
        try:
            message = decode(item) if isinstance(item, dict) else None
        except ProtocolError as exc:
            raise InvalidRequestError(str(exc)) from exc
        if not isinstance(message, ResultMessage):
            raise InvalidRequestError('each of results must be a "result" message')
        messages.append(message)
    tunnel = _tunnel()
    recorded = sum(tunnel.resolve(principal.user, message) for message in messages)
    return jsonify({"recorded": recorded})


@tunnel_api.get("/servers/<user_id>")
async def servers(user_id: str) -> Response:
    """`user_id`'s connectors, tools and state: that user or an admin only."""
    principal = _principal()
    if principal.user != user_id and not principal.allows("admin"):
        raise PermissionDeniedError("a credential sees only its own user's connectors "
                                    "(another user's need the admin scope)")
    return jsonify(_tunnel().servers(user_id))


@tunnel_api.get("/status")
async def status() -> Response:
    """Counts of connectors, pending calls and mean latency; per user for admins."""
    tunnel = _tunnel()
    stats = tunnel.statistics()
    body: dict[str, Any] = {
        "websocket": tunnel.settings.ws, "call_timeout_s": tunnel.settings.call_timeout,
        "users": stats.users, "connectors": stats.connectors,
        "pending_calls": stats.pending_calls, "in_flight": stats.in_flight,
        "answered": stats.answered, "mean_latency_ms": stats.mean_latency_ms,
    }
    if _principal().allows("admin"):
        body["by_user"] = {user: tunnel.servers(user) for user in tunnel.users()}
    return jsonify(body)
