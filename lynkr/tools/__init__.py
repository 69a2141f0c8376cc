"""The tool registry and the policy engine: every server tool runs through here.

`ToolRegistry` holds `ToolSpec`s (static, and dynamic providers such as the MCP
catalogue); `ToolRunner` validates an input against the spec's JSON schema, asks
the policy engine, runs the handler and records `PolicyDecided`/`ToolCompleted`
events in the session stream. `PolicySettings` is the toolbelt's settings section.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lynkr._lazy import lazy_exports
from lynkr.tools._settings import PolicySettings, workspace_id_of

if TYPE_CHECKING:
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
    from lynkr.tools._spec import PolicyCheck, ToolContext, ToolHandler, ToolSpec

# Every command reads the settings (`PolicySettings`); the engine, the registry (jsonschema)
# and the runner (the actors) are imported on first use (PEP 562), so `lynkr tasks` and
# the other quick commands never load them (tools/bench_cli_startup.py).
_LAZY = {
    "ActorSessionSink": "lynkr.tools._runner",
    "CallContext": "lynkr.tools._runner",
    "Decision": "lynkr.tools._policy",
    "PolicyCheck": "lynkr.tools._spec",
    "PolicyEngine": "lynkr.tools._policy",
    "RecorderSessionSink": "lynkr.tools._runner",
    "SessionSink": "lynkr.tools._runner",
    "ToolContext": "lynkr.tools._spec",
    "ToolHandler": "lynkr.tools._spec",
    "ToolProvider": "lynkr.tools._registry",
    "ToolRegistry": "lynkr.tools._registry",
    "ToolResult": "lynkr.tools._runner",
    "ToolRunner": "lynkr.tools._runner",
    "ToolSpec": "lynkr.tools._spec",
    "inputs_digest": "lynkr.tools._policy",
}


__getattr__ = lazy_exports(__name__, _LAZY, globals())


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
