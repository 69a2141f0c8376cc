"""Which server tools the model is offered inside `/v1/messages` (`LYNKR_SERVER_TOOLS`).

`lynkr.config.ServerToolSettings` parses the setting: `off` (the default: Claude Code
behaves exactly as without Lynkr's tools), `all`, or a comma list of groups (`index`, `fs`, `git`,
`tests`, `tasks`, `web`, `mcp`) and single tool names. A tool's group is its policy
family (`ToolSpec.policy`); the `mcp` group is every attached server's tools
(`mcp_<server>_<tool>`), read from the registry on every turn so a live attach or detach
shows from the next turn.

`ServerTools.offer(body, session_id)` decides one request's tool list: the client's
tools first, unchanged, then the enabled server tools it does not list, sorted by name
(a stable list keeps the upstream's prompt cache warm). A client tool whose name is an
enabled server tool runs server-side; a client tool whose name is a server tool of a
group that is not enabled stays the client's, logged once per session.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from lynkr.config import GROUPS, ServerToolSettings
from lynkr.tools import ToolRegistry, ToolSpec

__all__ = ["GROUPS", "Offer", "ServerToolSettings", "ServerTools", "UserTools"]

UserTools = Callable[[str], "Sequence[ToolSpec]"]
"""A user's own server tools now (the callback tunnel's connectors), by user id."""

log = structlog.get_logger()

_CLASH_LOGGED_MAX = 4096  # (session, tool) pairs remembered for log-once


@dataclass(frozen=True, slots=True)
class Offer:
    """One request's server tools: the tool list to send and who runs which name."""

    tools: list[dict[str, Any]]  # the client's tools, then the server tools it lacks
    server: Mapping[str, ToolSpec]  # names the loop runs itself


class ServerTools:
    """The enabled server tools of a registry (see module docstring)."""

    def __init__(self, settings: ServerToolSettings, registry: ToolRegistry,
                 user_tools: UserTools | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.user_tools = user_tools  # a user's own tools (the callback tunnel), if any
        self._clash_logged: OrderedDict[tuple[str, str], None] = OrderedDict()

    @property
    def enabled(self) -> bool:
        """True when any server tool may be offered."""
        return self.settings.enabled

    def offer(self, client_tools: Sequence[Any] | None, session_id: str,
              user: str | None = None) -> Offer:
        """The tool list for one request (see module docstring); `user`'s own tunnelled
        tools are added when the `local` group is enabled, and only for that user."""
        selected: dict[str, ToolSpec] = {}
        others: set[str] = set()
        specs = self.registry.specs()  # sorted by name: a stable order
        if user is not None and self.user_tools is not None and "local" in self.settings.groups:
            specs = sorted([*specs, *self.user_tools(user)], key=lambda s: s.name)
        for spec in specs:
            if self.settings.selects(spec):
                selected[spec.name] = spec
            else:
                others.add(spec.name)
        tools = [dict(t) for t in client_tools or () if isinstance(t, Mapping)]
        listed = {str(t.get("name")) for t in tools}
        for name in sorted(listed & others):
            self._log_clash(session_id, name)
        tools += [spec.definition() for name, spec in selected.items() if name not in listed]
        return Offer(tools=tools, server=selected)

    def _log_clash(self, session_id: str, name: str) -> None:
        key = (session_id, name)
        if key in self._clash_logged:
            return
        self._clash_logged[key] = None
        if len(self._clash_logged) > _CLASH_LOGGED_MAX:
            self._clash_logged.popitem(last=False)
        log.info("server_tool_left_to_client", session_id=session_id, tool=name,
                 reason="its group is not enabled in LYNKR_SERVER_TOOLS")
