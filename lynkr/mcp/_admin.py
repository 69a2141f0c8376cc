"""The `/admin/mcp` API: attach, detach, list and call MCP servers of the running gateway.

| route | does |
|---|---|
| `GET /admin/mcp/servers` | every server: state, restarts, tools; plus manifest problems |
| `POST /admin/mcp/servers` | attach: a manifest (`{"mcpServers": …}`) or one entry with `name` |
| `DELETE /admin/mcp/servers/<name>` | detach (returns once the process is gone) |
| `GET /admin/mcp/tools` | the catalogue: names, servers, schemas, in the stable order |
| `POST /admin/mcp/servers/<name>/tools/<tool>/call` | `{"arguments": {…}}` → the result |

Access: with LYNKR_ADMIN_TOKEN set, every request needs ``Authorization: Bearer
<token>``; without it, only loopback clients are served (403 otherwise). Errors are
Anthropic-style error JSON; a tool execution error is a 200 with `is_error: true`.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from quart import Blueprint, Response, current_app, jsonify, request

from lynkr.errors import (
    AuthenticationError,
    InvalidRequestError,
    LynkrError,
    PermissionDeniedError,
)
from lynkr.mcp._client import thaw
from lynkr.mcp._manifest import parse_manifest, parse_server
from lynkr.mcp._runtime import McpRuntime

__all__ = ["admin_allowed", "admin_blueprint"]


def admin_allowed(remote_addr: str | None, authorization: str | None,
                  token: str | None) -> None:
    """Raise unless this client may use the admin API (see module docstring).

    Raises:
        AuthenticationError: a token is configured and the request lacks it.
        PermissionDeniedError: no token is configured and the client is not loopback.
    """
    if token:
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise AuthenticationError("the admin API needs Authorization: Bearer "
                                      "$LYNKR_ADMIN_TOKEN")
        return
    try:
        loopback = ipaddress.ip_address((remote_addr or "").strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise PermissionDeniedError("the admin API is served to loopback clients only; set "
                                    "LYNKR_ADMIN_TOKEN to allow others")


def _view_json(runtime: McpRuntime, name: str) -> dict[str, Any]:
    view = runtime.server(name)
    data: dict[str, Any] = thaw(view.as_dict())
    data["tools"] = [{"name": entry.name, "tool": entry.tool}
                     for entry in runtime.entries() if entry.server == name]
    data["server_tools"] = [tool["name"] for tool in view.tools]
    return data


def _attach_specs(body: Any) -> list[Any]:
    """The servers an attach body names: a whole manifest, or one server entry.

    Raises:
        InvalidRequestError: the body is neither, or a server entry is invalid.
    """
    if isinstance(body, dict) and "mcpServers" in body:
        loaded = parse_manifest(body, "admin")
        if loaded.problems:
            raise InvalidRequestError("; ".join(p.reason for p in loaded.problems))
        return list(loaded.specs)
    if isinstance(body, dict) and isinstance(body.get("name"), str):
        entry = {k: v for k, v in body.items() if k != "name"}
        try:
            return [parse_server(body["name"], entry, "admin")]
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from exc
    raise InvalidRequestError('send a manifest {"mcpServers": {...}} or one server '
                              '{"name": ..., "command": ...} as JSON')


def _call_body(body: Any) -> tuple[dict[str, Any], float | None]:
    """(arguments, timeout) of a call body.

    Raises:
        InvalidRequestError: arguments are not an object or the timeout is not positive.
    """
    arguments = body.get("arguments", {}) if isinstance(body, dict) else None
    if not isinstance(arguments, dict):
        raise InvalidRequestError('send {"arguments": {...}} as JSON')
    timeout = body.get("timeout") if isinstance(body, dict) else None
    if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
        raise InvalidRequestError("timeout must be a positive number of seconds")
    return arguments, timeout


def admin_blueprint(runtime: McpRuntime | None = None) -> Blueprint:
    """The blueprint; without `runtime` it uses `app.extensions["lynkr"].mcp`."""
    bp = Blueprint("mcp_admin", __name__, url_prefix="/admin/mcp")

    def current() -> McpRuntime:
        found = runtime or getattr(current_app.extensions.get("lynkr"), "mcp", None)
        if found is None:
            raise LynkrError("MCP supervision is not running in this gateway")
        return found

    @bp.before_request
    async def guard() -> None:
        admin_allowed(request.remote_addr, request.headers.get("authorization"),
                      current().settings.admin_token)

    @bp.errorhandler(LynkrError)
    async def failed(exc: LynkrError) -> tuple[Response, int]:
        return jsonify(exc.to_body()), exc.status

    @bp.get("/servers")
    async def list_servers() -> Response:
        rt = current()
        names = sorted(rt.catalogue().servers)
        return jsonify({"servers": [_view_json(rt, n) for n in names],
                        "problems": [str(p) for p in rt.problems]})

    @bp.post("/servers")
    async def attach() -> tuple[Response, int]:
        rt = current()
        specs = _attach_specs(await request.get_json(force=True, silent=True))
        for spec in specs:
            await rt.attach(spec)
        return jsonify({"servers": [_view_json(rt, s.name) for s in specs]}), 201

    @bp.delete("/servers/<name>")
    async def detach(name: str) -> Response:
        await current().detach(name)
        return jsonify({"detached": name})

    @bp.get("/tools")
    async def tools() -> Response:
        return jsonify({"tools": [
            {"name": e.name, "server": e.server, "tool": e.tool, "description": e.description,
             "input_schema": thaw(e.input_schema)} for e in current().entries()]})

    @bp.post("/servers/<name>/tools/<tool>/call")
    async def call(name: str, tool: str) -> Response:
        arguments, timeout = _call_body(await request.get_json(force=True, silent=True))
        result = await current().call(name, tool, arguments, request_timeout=timeout)
        return jsonify(result.as_dict())

    return bp
