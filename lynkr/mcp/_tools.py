"""The MCP tools as `ToolSpec`s: one per catalogue entry, plus `workspace_mcp_call`.

`mcp_tool_specs(runtime)` is a `ToolProvider` for `lynkr.tools.ToolRegistry`
(`registry.add_provider(lambda: mcp_tool_specs(runtime))`): it reads the published
catalogue on every call, so a newly attached server's tools are there at once and a
detached server's are gone. `workspace_mcp_call` calls any tool by server and name.
A tool execution error (`isError`) raises `ToolError` (the model sees it as an
error result); a protocol failure raises `McpError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eventstore import thaw
from lynkr.errors import ToolError, ToolInputError
from lynkr.mcp._client import ToolCallResult
from lynkr.mcp._runtime import McpRuntime
from lynkr.tools import ToolContext, ToolHandler, ToolSpec

__all__ = ["MCP_CALL_SCHEMA", "mcp_call_spec", "mcp_tool_specs"]

MCP_CALL_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "server": {"type": "string", "description": "the attached MCP server's name"},
        "tool": {"type": "string", "description": "the tool's name on that server"},
        "arguments": {"type": "object", "description": "the tool's input"},
    },
    "required": ["server", "tool"],
    "additionalProperties": False,
}


def _answer(result: ToolCallResult) -> dict[str, Any]:
    if result.is_error:
        raise ToolError(result.text() or "the MCP tool reported an error")
    return result.as_dict()


def _handler(runtime: McpRuntime, server: str, tool: str) -> ToolHandler:
    async def handle(_ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
        return _answer(await runtime.call(server, tool, inputs))

    return handle


def mcp_tool_specs(runtime: McpRuntime) -> list[ToolSpec]:
    """One spec per tool of every ready server, in the catalogue's stable order."""
    return [
        ToolSpec(name=entry.name, description=entry.description or f"{entry.tool} "
                 f"(MCP server {entry.server})", input_schema=thaw(entry.input_schema),
                 handler=_handler(runtime, entry.server, entry.tool), policy="mcp",
                 read_only=False, effects=True, tags=("mcp", f"mcp:{entry.server}"))
        for entry in runtime.entries()
    ]


def mcp_call_spec(runtime: McpRuntime) -> ToolSpec:
    """`workspace_mcp_call`: call any attached server's tool by server and name."""

    async def handle(_ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
        arguments = inputs.get("arguments") or {}
        if not isinstance(arguments, Mapping):
            raise ToolInputError("arguments must be an object")
        return _answer(await runtime.call(str(inputs["server"]), str(inputs["tool"]),
                                          arguments))

    return ToolSpec(name="workspace_mcp_call",
                    description="Call a tool of an attached MCP server by server and tool name.",
                    input_schema=MCP_CALL_SCHEMA, handler=handle, policy="mcp", read_only=False,
                    effects=True, tags=("mcp",))
