"""A small MCP server for the supervision tests, on the `mcp` SDK (stdio).

Tools: `echo`, `crash` (exits at once with a code, after a line on stderr),
`add_tool` / `remove_tool` (change the tool list at runtime and notify the client:
`notifications/tools/list_changed` on handshake-era connections, the
`subscriptions/listen` bus on 2026-07-28 ones), `slow` (sleeps), `fail` (a tool
execution error), `read_file` and `connect` (for the sandbox tests). `tools/list`
is paginated, `PAGE_SIZE` tools a page, so clients must follow cursors.

Run: `python crashy_server.py [--crash-on-start | --http PORT]`.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from typing import Any

if "--crash-on-start" in sys.argv:  # before the heavy imports: crash loops stay fast
    print("crashy: crashing on start", file=sys.stderr, flush=True)
    sys.exit(7)

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ListToolsResult, PaginatedRequestParams

PAGE_SIZE = 3


class PagedServer(MCPServer):
    """`MCPServer` whose `tools/list` answers `PAGE_SIZE` tools a page."""

    async def _handle_list_tools(self, ctx: Any, params: PaginatedRequestParams | None
                                 ) -> ListToolsResult:
        tools = sorted(await self.list_tools(), key=lambda t: t.name)
        start = int(params.cursor) if params and params.cursor else 0
        end = start + PAGE_SIZE
        return ListToolsResult(tools=tools[start:end],
                               next_cursor=str(end) if end < len(tools) else None)


server = PagedServer("crashy", version="1.0")


@server.tool()
def echo(text: str) -> str:
    """Return `text`."""
    return text


@server.tool()
def crash(code: int = 3) -> str:
    """Exit the process at once with `code`."""
    print(f"crashy: crashing on request with code {code}", file=sys.stderr, flush=True)
    os._exit(code)


@server.tool()
async def slow(seconds: float, started_file: str = "") -> str:
    """Sleep `seconds`, then answer; first create `started_file` if one is named."""
    if started_file:  # lets a test wait until the call is really in flight
        await anyio.Path(started_file).write_text("started")
    await anyio.sleep(seconds)
    return f"slept {seconds}"


@server.tool()
def fail(message: str = "boom") -> str:
    """Fail as a tool (isError), not as a protocol error."""
    raise ToolError(message)


def _extra(name: str) -> Any:
    def extra(text: str = "") -> str:
        return f"{name}:{text}"
    extra.__doc__ = f"A tool added at runtime: {name}."
    return extra


async def _notify(ctx: Context) -> None:
    await ctx.request_context.session.send_tool_list_changed()
    await ctx.notify_tools_changed()


@server.tool()
async def add_tool(name: str, ctx: Context) -> str:
    """Add a tool called `name` and notify the client."""
    server.add_tool(_extra(name), name=name)
    await _notify(ctx)
    return f"added {name}"


@server.tool()
async def remove_tool(name: str, ctx: Context) -> str:
    """Remove the tool called `name` and notify the client."""
    server.remove_tool(name)
    await _notify(ctx)
    return f"removed {name}"


@server.tool()
def read_file(path: str) -> str:
    """Return the text of the file at `path`."""
    with open(path) as handle:
        return handle.read()


@server.tool()
def connect(host: str, port: int) -> str:
    """Open a TCP connection to host:port and say whether it worked."""
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=2):
        return f"connected in {time.monotonic() - started:.3f}s"


if __name__ == "__main__":
    if "--http" in sys.argv:  # Streamable HTTP on 127.0.0.1:PORT (uvicorn: asyncio)
        port = int(sys.argv[sys.argv.index("--http") + 1])
        anyio.run(lambda: server.run_streamable_http_async(port=port), backend="asyncio")
    else:
        anyio.run(server.run_stdio_async, backend="trio")
