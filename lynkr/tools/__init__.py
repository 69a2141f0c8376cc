"""The tool registry and the policy engine: every server tool runs through here.

`ToolRegistry` holds `ToolSpec`s (static, and dynamic providers such as the MCP
catalogue); `ToolRunner` validates an input against the spec's JSON schema, asks
the policy engine, runs the handler and records `PolicyDecided`/`ToolCompleted`
events in the session stream. `PolicySettings` is the toolbelt's settings section.
"""

from __future__ import annotations

from lynkr.tools._policy import Decision, PolicyEngine, inputs_digest
from lynkr.tools._registry import ToolProvider, ToolRegistry
from lynkr.tools._runner import (
    ActorSessionSink,
    CallContext,
    RecorderSessionSink,
    SessionSink,
    ToolResult,
    ToolRunner,
)
from lynkr.tools._settings import PolicySettings, workspace_id_of
from lynkr.tools._spec import PolicyCheck, ToolContext, ToolHandler, ToolSpec

__all__ = [
    "ActorSessionSink",
    "CallContext",
    "Decision",
    "PolicyCheck",
    "PolicyEngine",
    "PolicySettings",
    "RecorderSessionSink",
    "SessionSink",
    "ToolContext",
    "ToolHandler",
    "ToolProvider",
    "ToolRegistry",
    "ToolResult",
    "ToolRunner",
    "ToolSpec",
    "inputs_digest",
    "workspace_id_of",
]
