"""The connector's local MCP servers: started from `--mcp-manifest`, restarted when they crash.

Each server of the manifest (the `.mcp.json` format of `lynkr.mcp._manifest`) runs in
its own task with the MCP client code the gateway uses (`lynkr.mcp._client`): connect,
list the tools, follow list changes, and when the process exits (or an HTTP server
is lost) start it again after a capped, jittered exponential backoff, forever. While
a server is up its tools are offered as `mcp_<server>_<tool>` (characters a model's
tool name may not hold become `_`); every change of the set calls `on_change`, so the
connector registers again.

A bare command is looked up on PATH, then beside this Python. Stdio servers run with
the connector's environment minus its own `LYNKR_CONNECT_*` settings (the key stays
with the connector), plus the manifest entry's `env`.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import structlog
import trio
from mcp.shared.exceptions import MCPError

from actors import McpServerSpec
from eventstore import thaw
from lynkr.errors import McpError
from lynkr.mcp._client import (
    LiveConnection,
    call_tool,
    connect_server,
    follow_tools,
    make_transport,
)
from lynkr.mcp._manifest import discover_manifests
from lynkr.tunnel._connector_settings import Backoff
from lynkr.tunnel._local_tools import ToolOutcome
from lynkr.tunnel._protocol import ToolInfo

__all__ = ["LocalMcpServers", "load_manifest", "tool_name"]

log = structlog.get_logger()

_BAD_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def tool_name(server: str, tool: str) -> str:
    """The model-facing name of `server`'s `tool`: `mcp_<server>_<tool>`, at most 64 chars."""
    return _BAD_CHARS.sub("_", f"mcp_{server}_{tool}")[:64]


def load_manifest(path: Path) -> tuple[McpServerSpec, ...]:
    """The servers of the manifest at `path`.

    Raises:
        ValueError: the file cannot be read, or one of its entries is invalid.
    """
    loaded = discover_manifests(path, ())
    if loaded.problems:
        raise ValueError("; ".join(str(p) for p in loaded.problems))
    return tuple(dataclasses.replace(spec, command=(_resolve(spec.command[0]),
                                                    *spec.command[1:]))
                 if spec.transport == "stdio" else spec for spec in loaded.specs)


def _resolve(command: str) -> str:
    """A bare command found on PATH, else beside this Python (where `lynkr` and the MCP
    servers installed with it live), as the user's shell would find it from here."""
    if "/" in command:
        return command
    return (shutil.which(command) or shutil.which(command, path=str(Path(sys.executable)
                                                                    .parent)) or command)


@dataclass(slots=True)
class _Server:
    spec: McpServerSpec
    connection: LiveConnection | None = None
    tools: dict[str, str] = field(default_factory=dict)  # model-facing name → server's name
    infos: tuple[ToolInfo, ...] = ()
    restarts: int = 0


class LocalMcpServers:
    """The supervised local MCP servers of one connector (see module docstring)."""

    def __init__(self, specs: tuple[McpServerSpec, ...], *, env: Mapping[str, str],
                 on_change: Callable[[], None], backoff: Backoff | None = None,
                 request_timeout: float = 60.0, start_timeout: float = 30.0) -> None:
        self._servers = {spec.name: _Server(spec) for spec in specs}
        self._env = dict(env)
        self._on_change = on_change
        self._backoff = backoff or Backoff()
        self._request_timeout = request_timeout
        self._start_timeout = start_timeout

    @property
    def infos(self) -> tuple[ToolInfo, ...]:
        """The tools of every server that is up, in manifest order."""
        return tuple(info for server in self._servers.values() for info in server.infos)

    def pid(self, name: str) -> int | None:
        """The process id of the stdio server `name` while it is up."""
        connection = self._servers[name].connection
        return connection.transport.pid if connection and connection.transport else None

    def restarts(self, name: str) -> int:
        """How many times the server `name` was started again."""
        return self._servers[name].restarts

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
                    ) -> None:
        """Supervise every server until cancelled."""
        async with trio.open_nursery() as nursery:
            for server in self._servers.values():
                nursery.start_soon(self._supervise, server)
            task_status.started()

    async def call(self, name: str, inputs: Mapping[str, Any],
                   timeout_s: float) -> ToolOutcome | None:
        """Call the tool registered as `name`; None when no server offers it."""
        for server in self._servers.values():
            if name in server.tools:
                connection = server.connection
                if connection is None:
                    return ToolOutcome.refused(None, f"the MCP server {server.spec.name!r} "
                                                     "is restarting; try again")
                try:
                    result = await call_tool(connection, server.tools[name], dict(inputs),
                                             timeout_s)
                except McpError as exc:
                    return ToolOutcome.refused(None, exc.message)
                return ToolOutcome(ok=not result.is_error, content=result.as_dict())
        return None

    def _publish(self, server: _Server, tools: tuple[dict[str, Any], ...]) -> None:
        server.tools = {tool_name(server.spec.name, t["name"]): t["name"] for t in tools}
        server.infos = tuple(
            ToolInfo(tool_name(server.spec.name, t["name"]),
                     t.get("description") or f"{t['name']} (MCP server {server.spec.name})",
                     thaw(t["input_schema"]), read_only=False)
            for t in tools)
        self._on_change()

    async def _supervise(self, server: _Server) -> None:
        attempt = 0
        while True:
            if await self._run_once(server):
                attempt = 0  # it was up: the next failure starts the backoff again
            delay = self._backoff.delay(attempt)
            attempt += 1
            server.restarts += 1
            log.warning("connector_mcp_restarting", server=server.spec.name,
                        delay_s=round(delay, 2), restarts=server.restarts)
            await trio.sleep(delay)

    async def _run_once(self, server: _Server) -> bool:
        """One life of the server; True if it got as far as listing its tools."""
        spec, was_up = server.spec, False
        env = {**self._env, **spec.env}
        try:
            transport, stdio = make_transport(spec, spec.command, env, grace=0.5,
                                              term_timeout=1.0)
            async with connect_server(spec.name, transport, stdio, mode="auto",
                                      request_timeout=self._request_timeout,
                                      start_timeout=self._start_timeout) as connection:
                was_up = True
                server.connection = connection
                self._publish(server, connection.tools)
                log.info("connector_mcp_ready", server=spec.name, tools=len(server.tools))
                await self._hold(server, connection)
        except* (McpError, MCPError, OSError, httpx2.HTTPError) as group:
            log.warning("connector_mcp_failed", server=spec.name,
                        error="; ".join(str(e) for e in group.exceptions))
        finally:
            server.connection = None
            if server.infos:
                server.tools, server.infos = {}, ()
                self._on_change()
        return was_up

    async def _hold(self, server: _Server, connection: LiveConnection) -> None:
        async def report(tools: tuple[dict[str, Any], ...]) -> None:
            self._publish(server, tools)
            await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow_tools, connection, report)
            if connection.transport is not None:
                await connection.transport.exited.wait()
            else:
                await connection.lost.wait()
            nursery.cancel_scope.cancel()

