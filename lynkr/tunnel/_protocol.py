"""The callback tunnel's wire protocol: JSON messages between the gateway and `lynkr connect`.

The same messages travel over the WebSocket (`WS /api/mcp/ws/{user_id}`, one JSON object
per text frame) and over the polling fallback (`POST /api/mcp/register`, `/poll`,
`/submit`, as bodies and answers). Every message is an object with a `type`:

connector → gateway
- `register`: `{"type": "register", "connector_id": str, "tools": [ToolInfo…]}` — the
  connector's tools as the model will see them: `local_<tool>` for its built-in tools,
  `mcp_<server>_<tool>` for its local MCP servers. Sent again whenever the set changes
  (a local MCP server restarted); the gateway answers `registered`.
- `result`: `{"type": "result", "call_id": str, "ok": bool, "content": Any,
  "rule": str | None}` — `content` is the tool's JSON-like result, or when not ok
  `{"error": str}`; `rule` names the connector's own rule that refused the call (a path
  outside the allowed roots, a dangerous command), recorded by the gateway.
- `pong`: `{"type": "pong", "ts": float}` answers a `ping`; the connector pings too.

gateway → connector
- `registered`: `{"type": "registered", "connector_id": str, "tools": int}`.
- `call`: `{"type": "call", "call_id": str, "tool": str, "input": dict,
  "timeout_s": float}` — run the tool (by the name it registered) and answer `result`.
- `cancel`: `{"type": "cancel", "call_id": str}` — the call is no longer wanted.
- `ping`: `{"type": "ping", "ts": float}`.

Polling: `POST /api/mcp/register` with a `register` body answers `registered`;
`POST /api/mcp/poll` with `{"connector_id": str}` waits up to 25 s and answers
`{"calls": [call…]}` (possibly empty); `POST /api/mcp/submit` with
`{"results": [result…]}` answers `{"recorded": int}` (a result for a call already
answered is not recorded twice). The connector authenticates every request with
`x-api-key` or `Authorization: Bearer` (a key or JWT with the `mcp-callback` scope whose
user is the connector's user).

Closing the WebSocket, the gateway says why with the close code: 1008 (policy
violation) for a credential that is missing, invalid, without `mcp-callback` or of
another user (the reason names which; retrying will not help), 4000 with the reason
"websocket disabled; use polling" when the gateway runs with `LYNKR_TUNNEL_WS=off` (the
key was not looked at: a connector in `auto` polls at once).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "POLL_WAIT_S",
    "CallMessage",
    "ProtocolError",
    "Register",
    "ResultMessage",
    "ToolInfo",
    "decode",
    "encode",
]

POLL_WAIT_S = 25.0
"""How long `POST /api/mcp/poll` waits for a call before answering an empty list."""


class ProtocolError(ValueError):
    """A message that is not JSON, has no known `type`, or lacks a field."""


@dataclass(frozen=True, slots=True)
class ToolInfo:
    """One tool a connector offers: its model-facing name and contract."""

    name: str  # local_<tool> or mcp_<server>_<tool>
    description: str
    input_schema: Mapping[str, Any]
    read_only: bool = False  # safe to redeliver after the connector dropped mid-call

    def as_json(self) -> dict[str, Any]:
        """The tool as it travels in a `register` message."""
        return {"name": self.name, "description": self.description,
                "input_schema": dict(self.input_schema), "read_only": self.read_only}


@dataclass(frozen=True, slots=True)
class CallMessage:
    """A tool call the gateway sends to a connector."""

    call_id: str
    tool: str
    input: Mapping[str, Any]
    timeout_s: float

    def as_json(self) -> dict[str, Any]:
        """The `call` message."""
        return {"type": "call", "call_id": self.call_id, "tool": self.tool,
                "input": dict(self.input), "timeout_s": self.timeout_s}


@dataclass(frozen=True, slots=True)
class ResultMessage:
    """A connector's answer to one call."""

    call_id: str
    ok: bool
    content: Any
    rule: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The `result` message."""
        return {"type": "result", "call_id": self.call_id, "ok": self.ok,
                "content": self.content, "rule": self.rule}


@dataclass(frozen=True, slots=True)
class Register:
    """A connector's tool list (`register`)."""

    connector_id: str
    tools: tuple[ToolInfo, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, Any]:
        """The `register` message."""
        return {"type": "register", "connector_id": self.connector_id,
                "tools": [t.as_json() for t in self.tools]}


def encode(message: Mapping[str, Any]) -> str:
    """One message as compact JSON text."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def _str(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"{data.get('type')}: {name} must be a non-empty string")
    return value


def decode(text: str | bytes | Mapping[str, Any]) -> Any:
    """A message as its dataclass (`Register`, `CallMessage`, `ResultMessage`) or, for
    `registered`, `ping`, `pong` and `cancel`, the dict itself.

    Raises:
        ProtocolError: not JSON, not an object, an unknown type, or a missing field.
    """
    if isinstance(text, Mapping):
        data: Any = text
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ProtocolError(f"not JSON: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ProtocolError("a message is a JSON object")
    kind = data.get("type")
    if kind == "register":
        tools = data.get("tools")
        if not isinstance(tools, list):
            raise ProtocolError("register: tools must be a list")
        infos = []
        for tool in tools:
            if not isinstance(tool, Mapping):
                raise ProtocolError("register: each tool is an object")
            schema = tool.get("input_schema")
            if not isinstance(schema, Mapping):
                raise ProtocolError(f"register: {tool.get('name')}: input_schema must be "
                                    f"an object")
            infos.append(ToolInfo(_str(tool, "name"), str(tool.get("description") or ""),
                                  schema, bool(tool.get("read_only"))))
        return Register(_str(data, "connector_id"), tuple(infos))
    if kind == "call":
        payload = data.get("input")
        if not isinstance(payload, Mapping):
            raise ProtocolError("call: input must be an object")
        timeout = data.get("timeout_s")
        if not isinstance(timeout, int | float) or timeout <= 0:
            raise ProtocolError("call: timeout_s must be a positive number")
        return CallMessage(_str(data, "call_id"), _str(data, "tool"), payload, float(timeout))
    if kind == "result":
        rule = data.get("rule")
        return ResultMessage(_str(data, "call_id"), bool(data.get("ok")), data.get("content"),
                             rule if isinstance(rule, str) else None)
    if kind in ("registered", "ping", "pong", "cancel"):
        return dict(data)
    raise ProtocolError(f"unknown message type {kind!r}")
