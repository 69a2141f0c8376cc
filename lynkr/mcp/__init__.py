"""MCP servers under supervision: manifests, the SDK client under trio, sandbox, admin API.

`open_mcp` / `serve_mcp` run an `McpRuntime` (the trio side of the
`actors.mcp_supervisor` actors); `mcp_tool_specs` and `mcp_call_spec` expose its
catalogue as server tools; `admin_blueprint()` is the `/admin/mcp` API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lynkr._lazy import lazy_exports

if TYPE_CHECKING:
    from lynkr.mcp._admin import admin_allowed, admin_blueprint
    from lynkr.mcp._client import ToolCallResult
    from lynkr.mcp._manifest import (
        ManifestLoad,
        ManifestProblem,
        discover_manifests,
        parse_manifest,
        parse_server,
    )
    from lynkr.mcp._runtime import McpRuntime, open_mcp, serve_mcp
    from lynkr.mcp._sandbox import (
        SandboxedCommand,
        SandboxSettings,
        build_bwrap,
        build_docker,
        sandbox_command,
    )
    from lynkr.mcp._settings import McpSettings, RestartSettings
    from lynkr.mcp._stdio import StdioTransport
    from lynkr.mcp._tools import MCP_CALL_SCHEMA, mcp_call_spec, mcp_tool_specs

# The SDK and Quart are heavy to import (seconds on a loaded machine), and every CLI
# command loads the MCP settings: names are imported on first use (PEP 562).
__getattr__ = lazy_exports(__name__, globals(), {
    "_admin": ("admin_allowed", "admin_blueprint"),
    "_client": ("ToolCallResult",),
    "_manifest": ("ManifestLoad", "ManifestProblem", "discover_manifests", "parse_manifest",
                  "parse_server"),
    "_runtime": ("McpRuntime", "open_mcp", "serve_mcp"),
    "_sandbox": ("SandboxSettings", "SandboxedCommand", "build_bwrap", "build_docker",
                 "sandbox_command"),
    "_settings": ("McpSettings", "RestartSettings"),
    "_stdio": ("StdioTransport",),
    "_tools": ("MCP_CALL_SCHEMA", "mcp_call_spec", "mcp_tool_specs"),
})


__all__ = [
    "MCP_CALL_SCHEMA",
    "ManifestLoad",
    "ManifestProblem",
    "McpRuntime",
    "McpSettings",
    "RestartSettings",
    "SandboxSettings",
    "SandboxedCommand",
    "StdioTransport",
    "ToolCallResult",
    "admin_allowed",
    "admin_blueprint",
    "build_bwrap",
    "build_docker",
    "discover_manifests",
    "mcp_call_spec",
    "mcp_tool_specs",
    "open_mcp",
    "parse_manifest",
    "parse_server",
    "sandbox_command",
    "serve_mcp",
]
