"""`ToolSpec`: what every server tool declares, whichever area provides it.

The toolbelt, the indexer and the MCP client each build `ToolSpec`s; the tool
registry (`lynkr.tools`) validates inputs against `input_schema`, asks the policy
engine about `checks`, runs `handler`, and records the decision and the result as
events. A handler returns JSON-like data (or text); it raises `ToolError` (or a
subclass) for a failure the model should see.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["ToolContext", "ToolHandler", "ToolSpec"]


class ToolContext(Protocol):
    """What a handler may use while it runs (implemented by the tool registry)."""

    @property
    def session_id(self) -> str | None:
        """The session the call belongs to, if any."""

    @property
    def workspace_root(self) -> Any:
        """`pathlib.Path` of WORKSPACE_ROOT, already resolved."""


ToolHandler = Callable[[ToolContext, Mapping[str, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSpec:
    """A server tool: its name, contract for the model, handler and policy needs."""

    name: str
    description: str
    input_schema: Mapping[str, Any]
    handler: ToolHandler
    policy: str = "default"  # which policy family decides: "fs", "git", "web", "mcp", …
    read_only: bool = True
    tags: tuple[str, ...] = field(default_factory=tuple)
