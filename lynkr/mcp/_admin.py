"""The `/admin/mcp` API: attach, detach, list and call MCP servers of the running gateway.

| route | does |
|---|---|
| `GET /admin/mcp/servers` | every server: state, restarts, tools; plus manifest problems |
| `POST /admin/mcp/servers` | attach: a manifest (`{"mcpServers": …}`) or one entry with `name` |
| `DELETE /admin/mcp/servers/<name>` | detach (returns once the process is gone) |
| `GET /admin/mcp/tools` | the catalogue: names, servers, schemas, in the stable order |
| `POST /admin/mcp/servers/<name>/tools/<tool>/call` | `{"arguments": {…}}` → the result |

Access: with the team gateway's auth on (`LYNKR_AUTH`), the app has already admitted
only an `admin`-scoped key or JWT, or LYNKR_ADMIN_TOKEN (the caller is then named by
its key id, `admin-<key id>`). With auth off: with LYNKR_ADMIN_TOKEN set, every request
needs ``Authorization: Bearer <token>``; without it, only loopback clients are served
(403 otherwise). Errors are
Anthropic-style error JSON; a tool execution error is a 200 with `is_error: true`.

A call goes through the policy engine like any other tool call (one door): the
server and tool are looked up in the live catalogue (an unknown server or tool is a
404 before anything is decided, a server that is not ready a 502), then the gateway's
one `ToolRunner` (`System.runner`, the agent loop's) runs the catalogue's tool
(`mcp_<server>_<tool>`, the name the agent loop uses, so the same policy applies),
recording `PolicyDecided` (with its caller), `ToolCallStarted` and `ToolCompleted`
(or `ToolCallInterrupted` when the call's `timeout` ran out: 504) in the session
``admin-<who>``: `who` is the gateway key's id when the app authenticated the request
with one, else ``token`` (LYNKR_ADMIN_TOKEN) or ``local`` (``session-admin-local``).
The caller is ``admin:<who>``, or the ``cli:<os user>`` that `lynkr mcp call` names in the
``x-lynkr-caller`` header (honoured only from a client the access rule already
admitted, which may attach any command anyway). A policy deny is a 403
`permission_error`, input that breaks the tool's schema a 400, both audited; the
response carries the `session_id` and `tool_call_id` to find them in `lynkr audit`.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import re
from typing import Any

import trio
from quart import Blueprint, Response, current_app, g, jsonify, request

from eventstore import thaw
from lynkr import errors
from lynkr.errors import (
    AuthenticationError,
    InvalidRequestError,
    LynkrError,
    McpError,
    NotFoundError,
    PermissionDeniedError,
)
from lynkr.mcp._manifest import parse_manifest, parse_server
from lynkr.mcp._runtime import McpRuntime
from lynkr.tools import ToolResult, ToolRunner

__all__ = ["CALLER_HEADER", "admin_allowed", "admin_blueprint", "admin_caller",
           "admin_session"]

CALLER_HEADER = "x-lynkr-caller"
_CLI_CALLER = re.compile(r"cli:[A-Za-z0-9._@-]{1,64}\Z")


def admin_allowed(remote_addr: str | None, authorization: str | None,
                  token: str | None) -> str:
    """Who this admin client is, or raise if it may not use the admin API (module docstring).

    Returns:
        ``"token"`` (it presented LYNKR_ADMIN_TOKEN) or ``"local"`` (a loopback client,
        no token configured).

    Raises:
        AuthenticationError: a token is configured and the request lacks it.
        PermissionDeniedError: no token is configured and the client is not loopback.
    """
    if token:
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise AuthenticationError("the admin API needs Authorization: Bearer "
                                      "$LYNKR_ADMIN_TOKEN")
        return "token"
    try:
        loopback = ipaddress.ip_address((remote_addr or "").strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise PermissionDeniedError("the admin API is served to loopback clients only; set "
                                    "LYNKR_ADMIN_TOKEN to allow others")
    return "local"


def _identity(key_id: str) -> str:
    """A key id or ``jwt:<user>`` as it may appear in a session id."""
    return re.sub(r"[^A-Za-z0-9._:@-]", "_", key_id)[:100]


def admin_session(identity: str) -> str:
    """The session recording the admin API's tool calls of `identity`: ``admin-<identity>``."""
    return f"admin-{identity}"


def admin_caller(identity: str, declared: str | None) -> str:
    """The caller of an admin API tool call: the declared ``cli:<user>``, else ``admin:<who>``.

    Raises:
        InvalidRequestError: the declared caller is not ``cli:<user>``.
    """
    if declared is None:
        return f"admin:{identity}"
    if not _CLI_CALLER.match(declared):
        raise InvalidRequestError(f"{CALLER_HEADER} must be cli:<user name>, not {declared!r}")
    return declared


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


def _catalogue_name(runtime: McpRuntime, server: str, tool: str) -> str:
    """The catalogue's name of `server`'s `tool` (what the registry and the loop call it).

    Raises:
        NotFoundError: no such server, or the ready server has no such tool.
        McpError: the server is attached but not ready.
    """
    view = runtime.server(server)
    for entry in runtime.entries():
        if entry.server == server and entry.tool == tool:
            return entry.name
    if view.state != "ready":
        raise McpError(f"MCP server {server!r} is not ready (state: {view.state}"
                       + (f"; {view.last_reason}" if view.last_reason else "") + ")")
    raise NotFoundError(f"MCP server {server!r} has no tool named {tool!r}")


def _system_runner() -> ToolRunner:
    """The running gateway's one `ToolRunner` (`System.runner`, the agent loop's too).

    Admin calls belong to no turn: its sink appends them through the event store.

    Raises:
        LynkrError: the gateway has no tool registry.
    """
    runner: ToolRunner | None = getattr(current_app.extensions.get("lynkr"), "runner", None)
    if runner is None:
        raise LynkrError("tool calls need the gateway's tool registry")
    return runner


def _error_class(name: str | None) -> type[LynkrError]:
    found = getattr(errors, name or "", None)
    if isinstance(found, type) and issubclass(found, LynkrError):
        return found
    return errors.InternalError


def _call_response(result: ToolResult, session: str) -> tuple[Response, int]:
    """The HTTP answer for a runner's result (see module docstring)."""
    where = {"session_id": session, "tool_call_id": result.tool_call_id}
    if result.ok or result.error_type == "ToolError":  # ToolError: the tool said isError
        content = result.content
        if not isinstance(content, dict) or "content" not in content:
            text = content.get("error") if isinstance(content, dict) else content
            content = {"is_error": not result.ok, "structured_content": None,
                       "content": [{"type": "text", "text": str(text)}]}
        return jsonify({**content, **where}), 200
    cls = _error_class(result.error_type)
    message = result.content.get("error") if isinstance(result.content, dict) else None
    body = {"type": "error", "error": {"type": cls.error_type,
                                       "message": str(message or result.text())}, **where}
    return jsonify(body), cls.status


def admin_blueprint(runtime: McpRuntime | None = None, *,
                    runner: ToolRunner | None = None) -> Blueprint:
    """The blueprint; without `runtime` it uses `app.extensions["lynkr"].mcp`, without
    `runner` that system's runner (`_system_runner`)."""
    bp = Blueprint("mcp_admin", __name__, url_prefix="/admin/mcp")

    def current() -> McpRuntime:
        found = runtime or getattr(current_app.extensions.get("lynkr"), "mcp", None)
        if found is None:
            raise LynkrError("MCP supervision is not running in this gateway")
        return found

    @bp.before_request
    async def guard() -> None:
        principal = g.get("principal")  # the app's authentication (lynkr/http/_app.py)
        if principal is not None and principal.via in ("key", "jwt", "token"):
            g.admin_identity = _identity(principal.key_id if principal.via != "token"
                                         else "token")
            return
        g.admin_identity = admin_allowed(request.remote_addr,
                                         request.headers.get("authorization"),
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
    async def call(name: str, tool: str) -> tuple[Response, int]:
        arguments, timeout = _call_body(await request.get_json(force=True, silent=True))
        caller = admin_caller(g.admin_identity, request.headers.get(CALLER_HEADER))
        catalogued = _catalogue_name(current(), name, tool)
        session = admin_session(g.admin_identity)
        tool_runner = runner or _system_runner()
        with trio.move_on_after(timeout if timeout is not None else math.inf) as scope:
            result = await tool_runner.call(
                catalogued, arguments, session_id=session, caller=caller,
                cancel_reason="timeout" if timeout else "cancelled")
        if scope.cancelled_caught:
            message = (f"{catalogued} did not answer within {timeout} s; the call is recorded "
                       f"as interrupted in session {session}")
            return jsonify({"type": "error", "error": {"type": "timeout_error",
                                                       "message": message},
                            "session_id": session}), 504
        return _call_response(result, session)

    return bp
