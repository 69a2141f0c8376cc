"""The MCP client side on the official SDK, under trio: connect, list, follow, call.

`connect_server` opens one connection (stdio through `StdioTransport`, possibly
sandboxed, or Streamable HTTP), runs the initialization handshake with version
negotiation (MCP_PROTOCOL_MODE `auto`: the 2026-07-28 `server/discover` probe,
falling back to the `initialize` handshake; `legacy`: the handshake only), lists
every page of `tools/list`, and yields a `LiveConnection`. While it is open,
`follow_tools` re-lists on `notifications/tools/list_changed` (handshake era) or on
`subscriptions/listen` events (2026-07-28 era).

`call_tool` keeps the two kinds of failure apart: a tool execution error
(`isError: true`) is a normal `ToolCallResult` with `is_error=True`; a protocol
error (timeout — the request is cancelled —, lost connection, unknown tool,
malformed result) raises `McpError`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2
import mcp_types
import pydantic
import structlog
import trio
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ListenNotSupportedError, SubscriptionLost
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from eventstore import freeze
from lynkr._version import lynkr_version
from lynkr.errors import McpError
from lynkr.mcp._stdio import StdioTransport

__all__ = [
    "LiveConnection",
    "ToolCallResult",
    "call_tool",
    "connect_server",
    "follow_tools",
    "list_all_tools",
    "make_transport",
]

log = structlog.get_logger()

_PAGE_CAP = 1000  # a paginator that never ends cannot hang the start


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallResult:
    """A tool's answer; `is_error` is the server's `isError` (a tool failure, not ours)."""

    is_error: bool
    content: tuple[dict[str, Any], ...]
    structured: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (admin API, CLI)."""
        return {"is_error": self.is_error, "content": list(self.content),
                "structured_content": self.structured}

    def text(self) -> str:
        """The text blocks joined (what a model sees of the result)."""
        return "\n".join(c.get("text", "") for c in self.content if c.get("type") == "text")


@dataclass(slots=True, kw_only=True)
class LiveConnection:
    """An initialized session and what the handshake told us."""

    server: str
    client: Client
    transport: StdioTransport | None
    protocol_version: str
    server_name: str | None
    server_version: str | None
    tools: tuple[dict[str, Any], ...]
    list_changed: trio.MemoryReceiveChannel[None] = field(repr=False)
    changed: trio.MemorySendChannel[None] = field(repr=False)
    lost: trio.Event = field(default_factory=trio.Event)  # a call found the peer gone

    def poke(self) -> None:
        """Ask for a re-list (coalesced: one pending re-list is enough)."""
        with contextlib.suppress(trio.WouldBlock):  # a re-list is already pending
            self.changed.send_nowait(None)


def _tool_dict(tool: mcp_types.Tool) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description or "",
            "input_schema": freeze(tool.input_schema)}


async def list_all_tools(client: Client) -> tuple[dict[str, Any], ...]:
    """Every page of `tools/list`, in the server's order."""
    tools: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(_PAGE_CAP):
        page = await client.list_tools(cursor=cursor, cache_mode="bypass")
        tools += [_tool_dict(tool) for tool in page.tools]
        cursor = page.next_cursor
        if not cursor:
            break
    return tuple(tools)


def _protocol_error(server: str, what: str, exc: MCPError) -> McpError:
    if exc.code == mcp_types.REQUEST_TIMEOUT:
        return McpError(f"MCP server {server!r}: {what} timed out; the request was cancelled")
    if exc.code == mcp_types.CONNECTION_CLOSED:
        return McpError(f"MCP server {server!r} closed the connection during {what} "
                        "(it crashed or was stopped)")
    return McpError(f"MCP server {server!r}: {what} failed: {exc.message} (code {exc.code})")


async def call_tool(
    connection: LiveConnection, tool: str, arguments: dict[str, Any], request_timeout: float,
) -> ToolCallResult:
    """Call `tool`; a timeout cancels the request on the server.

    Raises:
        McpError: a protocol error (see module docstring).
    """
    what = f"tools/call {tool!r}"
    try:
        result = await connection.client.call_tool(tool, arguments,
                                                   read_timeout_seconds=request_timeout)
    except MCPError as exc:
        if exc.code == mcp_types.CONNECTION_CLOSED:
            connection.lost.set()
        raise _protocol_error(connection.server, what, exc) from exc
    except httpx2.HTTPError as exc:
        connection.lost.set()
        raise McpError(f"MCP server {connection.server!r} is unreachable during {what}: "
                       f"{exc}") from exc
    except pydantic.ValidationError as exc:
        raise McpError(f"MCP server {connection.server!r}: {what} returned a malformed "
                       f"result: {exc.error_count()} problems") from exc
    content = tuple(block.model_dump(mode="json", by_alias=True, exclude_none=True)
                    for block in result.content)
    return ToolCallResult(is_error=bool(result.is_error), content=content,
                          structured=result.structured_content)


async def _notice_list_changed(send: trio.MemorySendChannel[None], message: Any) -> None:
    if isinstance(message, mcp_types.ToolListChangedNotification):
        with contextlib.suppress(trio.WouldBlock):  # a re-list is already pending
            send.send_nowait(None)
    await trio.lowlevel.checkpoint()


def make_transport(
    spec: Any, argv: tuple[str, ...], env: dict[str, str], *, grace: float = 2.0,
    term_timeout: float = 2.0,
) -> tuple[Any, StdioTransport | None]:
    """The SDK transport for `spec`, and the `StdioTransport` itself for stdio servers."""
    if spec.transport == "http":
        return streamable_http_client(spec.url), None
    transport = StdioTransport(argv, env=env, cwd=spec.cwd, server=spec.name, grace=grace,
                               term_timeout=term_timeout)
    return transport, transport


@asynccontextmanager
async def connect_server(
    server: str, transport: Any, stdio: StdioTransport | None, *, mode: str,
    request_timeout: float, start_timeout: float,
) -> AsyncIterator[LiveConnection]:
    """Open, initialize and list one server over `transport` (see module docstring).

    Raises:
        McpError: the handshake or the first listing failed or timed out.
        OSError: the command could not be started.
    """
    send, receive = trio.open_memory_channel[None](1)

    async def handler(message: Any) -> None:
        await _notice_list_changed(send, message)

    client = Client(transport, mode=mode, read_timeout_seconds=request_timeout,
                    message_handler=handler, cache=None,
                    client_info=mcp_types.Implementation(name="lynkr",
                                                         version=lynkr_version()))
    with trio.CancelScope(deadline=trio.current_time() + start_timeout) as start:
        async with client:
            try:
                tools = await list_all_tools(client)
            except MCPError as exc:
                raise _protocol_error(server, "tools/list", exc) from exc
            start.deadline = math.inf
            info = client.server_info
            yield LiveConnection(
                server=server, client=client, transport=stdio,
                protocol_version=client.protocol_version,
                server_name=info.name if info else None,
                server_version=info.version if info else None, tools=tools,
                list_changed=receive, changed=send)
    if start.cancelled_caught:
        raise McpError(f"MCP server {server!r} did not finish the handshake within "
                       f"{start_timeout:g}s")


async def follow_tools(
    connection: LiveConnection, report: Callable[[tuple[dict[str, Any], ...]], Awaitable[None]],
) -> None:
    """Re-list on every change notice and `report` the new list; runs until cancelled."""
    async with trio.open_nursery() as nursery:
        if connection.protocol_version in MODERN_PROTOCOL_VERSIONS:
            nursery.start_soon(_listen_modern, connection)
        async for _ in connection.list_changed:
            try:
                tools = await list_all_tools(connection.client)
            except MCPError as exc:
                log.warning("mcp_relist_failed", server=connection.server, error=exc.message)
                continue
            await report(tools)


async def _listen_modern(connection: LiveConnection) -> None:
    """2026-07-28 era: change notices arrive on a `subscriptions/listen` stream."""
    caps = connection.client.server_capabilities
    if caps.tools is None or not getattr(caps.tools, "list_changed", False):
        return
    try:
        async with connection.client.listen(tools_list_changed=True) as subscription:
            async for _event in subscription:
                connection.poke()
    except* (MCPError, SubscriptionLost, ListenNotSupportedError) as group:
        # The connection ended (the server's own task reports that) or listen is refused.
        log.info("mcp_listen_ended", server=connection.server, error=str(group.exceptions[0]))
