"""The tool registry and the policy engine: every server tool runs through here.

`ToolRegistry` holds `ToolSpec`s (static, and dynamic providers such as the MCP
catalogue); `ToolRunner` validates an input against the spec's JSON schema, asks
the policy engine, runs the handler and records `PolicyDecided`/`ToolCompleted`
events in the session stream (`ToolCallStarted` before the handler runs, and
`ToolCallInterrupted` if it is cancelled) through `StoreSessionSink`, the one sink
(the session actor within a turn, the event store outside one).
`recover_interrupted_calls` closes, at gateway start, the calls a killed gateway left
open. `PolicySettings` is the toolbelt's settings section.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lynkr._lazy import lazy_exports
from lynkr.tools._settings import PolicySettings, workspace_id_of

if TYPE_CHECKING:
    from lynkr.tools._policy import Decision, PolicyEngine, inputs_digest
    from lynkr.tools._recovery import RecoveredCall, RecoveryReport, recover_interrupted_calls
    from lynkr.tools._registry import ToolProvider, ToolRegistry
    from lynkr.tools._runner import CallContext, ToolResult, ToolRunner
    from lynkr.tools._sink import StoreSessionSink
    from lynkr.tools._spec import PolicyCheck, ToolContext, ToolHandler, ToolSpec

# Every command reads the settings (`PolicySettings`); the engine, the registry (jsonschema)
# and the runner (the actors) are imported on first use (PEP 562), so `lynkr tasks` and
# the other quick commands never load them (tools/bench_cli_startup.py).
__getattr__ = lazy_exports(__name__, globals(), {
    "_policy": ("Decision", "PolicyEngine", "inputs_digest"),
    "_recovery": ("RecoveredCall", "RecoveryReport", "recover_interrupted_calls"),
    "_registry": ("ToolProvider", "ToolRegistry"),
    "_runner": ("CallContext", "ToolResult", "ToolRunner"),
    "_sink": ("StoreSessionSink",),
    "_spec": ("PolicyCheck", "ToolContext", "ToolHandler", "ToolSpec"),
})


__all__ = [
    "CallContext",
    "Decision",
    "PolicyCheck",
    "PolicyEngine",
    "PolicySettings",
    "RecoveredCall",
    "RecoveryReport",
    "StoreSessionSink",
    "ToolContext",
    "ToolHandler",
    "ToolProvider",
    "ToolRegistry",
    "ToolResult",
    "ToolRunner",
    "ToolSpec",
    "inputs_digest",
    "recover_interrupted_calls",
    "workspace_id_of",
]
