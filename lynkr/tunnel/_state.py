"""The callback tunnel's in-memory state: connectors, the calls they carry, per user.

Plain objects, changed only on the trio thread by `lynkr.tunnel._hub.Tunnel`:
`Connector` (one `lynkr connect` connection: its tools, the calls waiting to be sent to
it, the calls it is running), `PendingCall` (one tunnelled call until its result, a
failure or its timeout) and `UserTunnel` (a user's connectors, the calls no connector
can take yet, and the tools of connectors that left recently, still offered for
`LYNKR_TUNNEL_GRACE` seconds so a reconnect does not change the model's tool list).
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from lynkr.errors import InvalidRequestError
from lynkr.tunnel._protocol import CallMessage, ResultMessage, ToolInfo

__all__ = ["Connector", "PendingCall", "UserTunnel", "checked_tools"]

_TOOL_NAME = re.compile(r"^(local|mcp)_[A-Za-z0-9_-]{1,58}$")  # Anthropic's names: 64 at most


def checked_tools(tools: Sequence[ToolInfo]) -> dict[str, ToolInfo]:
    """`tools` by name, each name checked.

    Raises:
        InvalidRequestError: a name that is not ``local_<tool>`` or ``mcp_<server>_<tool>``
            (letters, digits, ``_``, ``-``; 64 at most), or a name given twice.
    """
    checked: dict[str, ToolInfo] = {}
    for info in tools:
        if not _TOOL_NAME.match(info.name):
            raise InvalidRequestError(
                f"tool name {info.name[:80]!r}: a connector's tools are named local_<tool> or "
                "mcp_<server>_<tool> (letters, digits, _ and -, 64 characters at most)")
        if info.name in checked:
            raise InvalidRequestError(f"tool {info.name!r} is registered twice")
        checked[info.name] = info
    return checked


@dataclass(eq=False, slots=True, kw_only=True)
class PendingCall:
    """One tunnelled call, from queued to answered (or failed, or timed out)."""

    call_id: str
    user: str
    tool: str
    input: Mapping[str, Any]
    read_only: bool
    deadline: float  # trio time by which the caller stops waiting
    connector_id: str | None = None  # the connector holding it (to send, or running it)
    deliveries: int = 0  # times sent to a connector
    sent_at: float = 0.0  # perf_counter of the last send (latency is measured from it)
    result: ResultMessage | None = None
    failure: str | None = None  # why it ended without a result (the connector went away)
    done: trio.Event = field(default_factory=trio.Event)

    @property
    def finished(self) -> bool:
        """True once it has a result or a failure."""
        return self.done.is_set()

    def message(self) -> CallMessage:
        """The `call` message, with the time the caller still waits as its timeout."""
        remaining = max(0.001, self.deadline - trio.current_time())
        return CallMessage(self.call_id, self.tool, self.input, round(remaining, 3))


@dataclass(eq=False, slots=True, kw_only=True)
class Connector:
    """One connector of one user: its tools and the calls it holds."""

    connector_id: str
    user: str
    transport: str  # "ws" or "poll"
    key_id: str | None
    tools: dict[str, ToolInfo]
    outbox: deque[PendingCall] = field(default_factory=deque)  # queued for it, not yet sent
    cancels: deque[str] = field(default_factory=deque)  # call ids to cancel (WebSocket only)
    in_flight: dict[str, PendingCall] = field(default_factory=dict)  # sent, not answered
    wake: trio.Event = field(default_factory=trio.Event)  # set when it has something to send
    attached_at: float = field(default_factory=time.time)  # epoch seconds
    last_seen: float = field(default_factory=trio.current_time)  # trio time
    polls: int = 0  # long polls under way (a poller is alive while it polls)
    gone: bool = False  # detached; whoever serves it stops

    @property
    def load(self) -> int:
        """Calls it holds (a new call goes to the least loaded connector)."""
        return len(self.outbox) + len(self.in_flight)

    def notify(self) -> None:
        """Wake whoever sends its calls."""
        self.wake.set()

    def rearm(self) -> None:
        """A fresh wake-up once everything is taken."""
        if not self.outbox and not self.cancels and not self.gone:
            self.wake = trio.Event()

    def take_one(self) -> PendingCall:
        """The oldest call queued for it, now in flight (the caller sends it at once)."""
        call = self.outbox.popleft()
        call.deliveries += 1
        call.sent_at = time.perf_counter()
        self.in_flight[call.call_id] = call
        return call

    def take_calls(self) -> list[PendingCall]:
        """Every call queued for it, now in flight (the caller sends them at once)."""
        taken = [self.take_one() for _ in range(len(self.outbox))]
        self.rearm()
        return taken


@dataclass(eq=False, slots=True)
class UserTunnel:
    """One user's connectors, calls and recently offered tools."""

    user: str
    connectors: dict[str, Connector] = field(default_factory=dict)
    waiting: deque[PendingCall] = field(default_factory=deque)  # no connector has the tool
    calls: dict[str, PendingCall] = field(default_factory=dict)  # open calls by call id
    remembered: dict[str, tuple[ToolInfo, float]] = field(default_factory=dict)  # until (trio)

    def tools(self, now: float) -> dict[str, ToolInfo]:
        """The tools offered now: the attached connectors', then remembered ones."""
        offered: dict[str, ToolInfo] = {}
        for name, (info, until) in self.remembered.items():
            if until > now:
                offered[name] = info
        for connector in self.connectors.values():
            offered.update(connector.tools)
        return offered

    def choose(self, tool: str) -> Connector | None:
        """The least loaded attached connector offering `tool`, if any."""
        best: Connector | None = None
        for connector in self.connectors.values():
            if tool in connector.tools and (best is None or connector.load < best.load):
                best = connector
        return best

    @property
    def idle(self) -> bool:
        """Nothing left to keep: no connector, call or remembered tool."""
        return not (self.connectors or self.calls or self.waiting or self.remembered)

    def view(self, now: float) -> dict[str, Any]:
        """The user's connectors, tools and state as JSON (`GET /api/mcp/servers/{user}`)."""
        return {
            "user": self.user,
            "connectors": [{
                "connector_id": c.connector_id, "transport": c.transport,
                "state": "connected", "attached_at": round(c.attached_at, 3),
                "last_seen_s": round(now - c.last_seen, 3), "in_flight": len(c.in_flight),
                "queued": len(c.outbox), "servers": _servers(c.tools.values()),
                "tools": [{"name": i.name, "read_only": i.read_only}
                          for i in sorted(c.tools.values(), key=lambda i: i.name)],
            } for c in sorted(self.connectors.values(), key=lambda c: c.connector_id)],
            "away_tools": sorted(name for name, (_, until) in self.remembered.items()
                                 if until > now),
            "waiting_calls": len(self.waiting),
        }


def _servers(tools: Any) -> list[str]:
    """The MCP servers behind `mcp_<server>_<tool>` names, plus ``local`` for built-ins."""
    names = set()
    for info in tools:
        if info.name.startswith("local_"):
            names.add("local")
        elif info.name.startswith("mcp_"):
            names.add(info.name[4:].split("_", 1)[0])
    return sorted(names)
