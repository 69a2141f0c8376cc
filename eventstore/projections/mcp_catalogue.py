"""The MCP catalogue projection: every attached server's state and tools, from `mcp-*` events.

Pure, no I/O, no clock. `project_mcp_catalogue(state, recorded)` folds one event;
`fold_mcp_catalogue(records)` folds a whole log. The supervisor actor folds its own
events through the same function, so the live catalogue and one rebuilt from the
log are equal by construction (and a test checks it against real servers).

`catalogue_entries(catalogue)` names the tools of every *ready* server
``mcp_<server>_<tool>``: characters outside ``[A-Za-z0-9_-]`` become ``_``, names
are cut to 64 characters (Anthropic's limit), and names that still collide all get
a suffix from a hash of their (server, tool) pair, so a tool's name never depends
on the order servers were attached in. Entries are sorted by (server, tool): the
same set of tools always gives the same list, which keeps prompt caches warm.

`PROJECTION` keeps the same fold in the `ProjectionStore` (table `mcp_servers`: one
row per attached server, its view as JSON); `catalogue_from_rows` reads it back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from eventstore._codec import freeze
from eventstore._recorder import Recorded
from eventstore._registry import Event
from eventstore.events.mcp import (
    ServerAttached,
    ServerDetached,
    ServerExited,
    ServerGaveUp,
    ServerRestarting,
    ServerStarted,
    ToolsListed,
)
from eventstore.projections._model import Delete, Projection, ProjectionContext, RowOp, Upsert

__all__ = [
    "MAX_TOOL_NAME",
    "PROJECTION",
    "McpCatalogue",
    "McpCatalogueEntry",
    "McpServerView",
    "apply_mcp_event",
    "catalogue_entries",
    "catalogue_from_rows",
    "fold_mcp_catalogue",
    "project_mcp_catalogue",
    "sanitize_name",
    "tools_digest",
]

MAX_TOOL_NAME = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, slots=True, kw_only=True)
class McpServerView:
    """One attached server as the log tells it."""

    server: str
    state: str  # starting | ready | crashed | backing_off | stopped
    transport: str
    restarts: int = 0  # restarts decided since it was attached
    protocol_version: str | None = None
    server_name: str | None = None
    pid: int | None = None
    tools: tuple[Mapping[str, Any], ...] = ()
    tools_digest: str | None = None
    last_exit_code: int | None = None
    last_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for `GET /admin/mcp/servers`)."""
        data = dataclasses.asdict(self)
        data["tools"] = [dict(tool) for tool in self.tools]
        return data


@dataclass(frozen=True, slots=True)
class McpCatalogue:
    """Every attached server by name."""

    servers: Mapping[str, McpServerView] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True, kw_only=True)
class McpCatalogueEntry:
    """One callable tool: its catalogue name, where it lives, and its contract."""

    name: str
    server: str
    tool: str
    description: str
    input_schema: Mapping[str, Any]


def tools_digest(tools: Iterable[Mapping[str, Any]]) -> str:
    """sha256 of the canonical JSON of a tool list (names, descriptions, schemas, in order)."""
    canonical = json.dumps([dict(tool) for tool in tools], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def sanitize_name(text: str) -> str:
    """`text` with every character outside ``[A-Za-z0-9_-]`` replaced by ``_``."""
    return _UNSAFE.sub("_", text)


def apply_mcp_event(view: McpServerView | None, event: Event) -> McpServerView | None:
    """One server's view after one more event of its stream (None: not attached)."""
    match event:
        case ServerAttached():
            return McpServerView(server=event.server, state="starting", transport=event.transport)
        case _ if view is None:
            return None  # an event before attach (or after detach) changes nothing
        case ServerStarted():
            return dataclasses.replace(
                view, state="ready", protocol_version=event.protocol_version,
                server_name=event.server_name, pid=event.pid)
        case ToolsListed():
            return dataclasses.replace(view, tools=event.tools, tools_digest=event.digest)
        case ServerExited():
            return dataclasses.replace(view, state="crashed", pid=None,
                                       last_exit_code=event.exit_code, last_reason=event.reason)
        case ServerRestarting():
            return dataclasses.replace(view, state="backing_off", restarts=view.restarts + 1)
        case ServerGaveUp():
            return dataclasses.replace(view, state="stopped", last_reason=event.reason)
        case ServerDetached():
            return None
        case _:
            return view


def project_mcp_catalogue(state: McpCatalogue | None, recorded: Recorded[Event]) -> McpCatalogue:
    """The catalogue after one more recorded event (events of other streams change nothing)."""
    state = state or McpCatalogue()
    event = recorded.event
    server = getattr(event, "server", None)
    if not recorded.stream_id.startswith("mcp-") or not isinstance(server, str):
        return state
    servers = dict(state.servers)
    view = apply_mcp_event(servers.get(server), event)
    if view is None:
        servers.pop(server, None)
    else:
        servers[server] = view
    return McpCatalogue(MappingProxyType(servers))


def fold_mcp_catalogue(records: Iterable[Recorded[Event]]) -> McpCatalogue:
    """The catalogue from a whole log (or every `mcp-*` stream), in position order."""
    state = McpCatalogue()
    for recorded in records:
        state = project_mcp_catalogue(state, recorded)
    return state


def _base_name(server: str, tool: str) -> str:
    name = f"mcp_{sanitize_name(server)}_{sanitize_name(tool)}"
    if len(name) <= MAX_TOOL_NAME:
        return name
    return name[: MAX_TOOL_NAME - 7] + "_" + _pair_hash(server, tool)


def _pair_hash(server: str, tool: str) -> str:
    return hashlib.sha256(f"{server}\0{tool}".encode()).hexdigest()[:6]


def catalogue_entries(catalogue: McpCatalogue) -> tuple[McpCatalogueEntry, ...]:
    """Every tool of every ready server, uniquely named, in a stable order (module docstring)."""
    pairs: list[tuple[str, Mapping[str, Any]]] = []
    for server in sorted(catalogue.servers):
        view = catalogue.servers[server]
        if view.state == "ready":
            pairs.extend((server, tool) for tool in sorted(view.tools, key=lambda t: t["name"]))
    counts: dict[str, int] = {}
    for server, tool in pairs:
        base = _base_name(server, tool["name"])
        counts[base] = counts.get(base, 0) + 1
    entries = []
    for server, tool in pairs:
        name = _base_name(server, tool["name"])
        if counts[name] > 1:
            name = name[: MAX_TOOL_NAME - 7] + "_" + _pair_hash(server, tool["name"])
        entries.append(McpCatalogueEntry(
            name=name, server=server, tool=tool["name"],
            description=tool.get("description") or "",
            input_schema=tool.get("input_schema") or {"type": "object"}))
    return tuple(entries)


def _view_from_json(text: str) -> McpServerView:
    data = json.loads(text)
    data["tools"] = tuple(freeze(tool) for tool in data["tools"])
    return McpServerView(**data)


def _project_rows(recorded: Recorded[Event], context: ProjectionContext) -> list[RowOp]:
    server = getattr(recorded.event, "server", None)
    if not recorded.stream_id.startswith("mcp-") or not isinstance(server, str):
        return []
    row = context.get("mcp_servers", server=server)
    view = apply_mcp_event(_view_from_json(row["view"]) if row else None, recorded.event)
    if view is None:
        return [Delete("mcp_servers", {"server": server})]
    return [Upsert("mcp_servers", {"server": server},
                   set={"state": view.state, "view": json.dumps(view.as_dict(), sort_keys=True)})]


def catalogue_from_rows(rows: Iterable[Mapping[str, Any]]) -> McpCatalogue:
    """The catalogue from `SELECT view FROM mcp_servers` rows of the projection store."""
    views = (_view_from_json(row["view"]) for row in rows)
    return McpCatalogue(MappingProxyType({view.server: view for view in views}))


PROJECTION = Projection(
    name="mcp_catalogue",
    version=1,
    tables={"mcp_servers": """
        CREATE TABLE IF NOT EXISTS mcp_servers (
            server TEXT PRIMARY KEY,
            state  TEXT NOT NULL,
            view   TEXT NOT NULL
        ) WITHOUT ROWID"""},
    project=_project_rows,
    types=frozenset({"ServerAttached", "ServerStarted", "ToolsListed", "ServerExited",
                     "ServerRestarting", "ServerGaveUp", "ServerDetached"}),
)
