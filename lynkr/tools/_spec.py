"""`ToolSpec`: what every server tool declares, whichever area provides it.

The toolbelt, the indexer and the MCP client each build `ToolSpec`s; the tool
registry (`lynkr.tools`) validates inputs against `input_schema`, asks the policy
engine about `checks`, runs `handler`, and records the decision and the result as
events. A handler returns JSON-like data (or text); it raises `ToolError` (or a
subclass) for a failure the model should see.

`check` is the tool's own policy check, run after input validation and before the
handler; it returns a `Decision` (see `lynkr.tools._policy`). Without one, the runner
records an allow under the rule ``<policy>.default``. A handler that meets a further
policy question while it runs (a redirect, a path that changed under it) asks
`ctx.enforce(decision)`, which records the decision and raises on a deny.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from actors import EventStore
    from eventstore import Recorder
    from lynkr.tools._policy import Decision
    from lynkr.tools._settings import PolicySettings

__all__ = ["PolicyCheck", "ToolContext", "ToolHandler", "ToolSpec"]


class ToolContext(Protocol):
    """What a handler may use while it runs (implemented by the tool registry)."""

    @property
    def session_id(self) -> str | None:
        """The session the call belongs to, if any."""

    @property
    def workspace_root(self) -> Any:
        """`pathlib.Path` of WORKSPACE_ROOT, already resolved."""

    @property
    def workspace_id(self) -> str:
        """Short stable id of the workspace (names its `tasks-`/`workspace-` streams)."""

    @property
    def settings(self) -> PolicySettings:
        """The policy settings in force for this call."""

    @property
    def store(self) -> EventStore:
        """The log's append path, for tools that keep their own streams (tasks, test
        runs): ``await ctx.store.append(stream_id, expected_version, events)``."""

    @property
    def recorder(self) -> Recorder:
        """The event log, for reads only (appends go through `store`)."""

    async def enforce(self, decision: Decision) -> None:
        """Record a policy decision taken while the tool runs; raise if it denies.

        Raises:
            PolicyDeniedError: the decision is a deny.
        """


ToolHandler = Callable[[ToolContext, Mapping[str, Any]], Awaitable[Any]]
PolicyCheck = Callable[[ToolContext, Mapping[str, Any]], Awaitable["Decision"]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSpec:
    """A server tool: its name, contract for the model, handler and policy needs."""

    name: str
    description: str
    input_schema: Mapping[str, Any]
    handler: ToolHandler
    policy: str = "default"  # which policy family decides: "fs", "git", "web", "mcp", …
    read_only: bool = True
    # The tool may change things outside the event log (files, git, a remote, a command's
    # side effects). A call interrupted mid-way says whether its effects may have happened
    # (`ToolCallInterrupted.effects_possible`). Unknown tools default to True: say so
    # unless the tool is known to only read (or, like tasks, to write only to the log).
    effects: bool = True
    tags: tuple[str, ...] = field(default_factory=tuple)
    check: PolicyCheck | None = None  # the tool's own rule; None = "<policy>.default" allow

    def definition(self) -> dict[str, Any]:
        """The tool as Anthropic's Messages API lists it (name, description, input_schema)."""
        return {"name": self.name, "description": self.description,
                "input_schema": dict(self.input_schema)}
