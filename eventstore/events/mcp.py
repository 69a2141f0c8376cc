"""Events of `mcp-<server>` streams: one MCP server's life under the supervisor.

A server's stream is `ServerAttached` → (`ServerStarted` → `ToolsListed`+ →
`ServerExited` → `ServerRestarting`)* → … → `ServerDetached`, with `ServerGaveUp`
when it crashed more often than the restart limit allows. Environment *values*
never appear (they may be secrets); only the names of the variables passed.
A tool is a dict ``{"name", "description", "input_schema"}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventstore._registry import EVENTS, Event

__all__ = [
    "ServerAttached",
    "ServerDetached",
    "ServerExited",
    "ServerGaveUp",
    "ServerRestarting",
    "ServerStarted",
    "ToolsListed",
]


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class ServerAttached(Event):
    """A server was put under supervision (from a manifest, or live from the admin API)."""

    server: str
    transport: str  # "stdio" or "http"
    command: tuple[str, ...] = ()  # the command as configured (before any sandbox wrapper)
    url: str | None = None
    env_names: tuple[str, ...] = ()  # names of the variables passed; values are never stored
    sandbox: str | None = None  # "bwrap", "docker" or None
    source: str = "admin"  # the manifest path, or "admin"


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class ServerStarted(Event):
    """The initialization handshake succeeded: the server is ready."""

    server: str
    attempt: int  # 0 for the first start, n for the n-th restart
    pid: int | None
    protocol_version: str
    server_name: str | None
    server_version: str | None
    tools_digest: str  # sha256 of the canonical tool list (see `ToolsListed.digest`)


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class ToolsListed(Event):
    """A full (all pages) `tools/list` result: at start and after every list change."""

    server: str
    tools: tuple[dict[str, Any], ...]
    digest: str


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class ServerExited(Event):
    """The server's connection ended without being asked to (crash, exit, handshake failure)."""

    server: str
    exit_code: int | None  # None for HTTP servers and processes we could not reap
    reason: str
    stderr_tail: str = ""


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class ServerRestarting(Event):
    """The supervisor decided to restart the server after `delay` seconds."""

    server: str
    attempt: int
    delay: float
    restarts_in_window: int


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class ServerGaveUp(Event):
    """The server hit the restart limit; it stays stopped until attached again."""

    server: str
    restarts: int
    window: float
    reason: str


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class ServerDetached(Event):
    """The server was taken out of supervision and its process stopped."""

    server: str
    reason: str = "admin"
