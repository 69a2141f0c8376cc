"""The MCP catalogue projection: states from events, naming, collisions, stable order."""

from __future__ import annotations

from typing import Any

from eventstore import Event, MemoryRecorder, Metadata, Recorded
from eventstore.events.mcp import (
    ServerAttached,
    ServerDetached,
    ServerExited,
    ServerGaveUp,
    ServerRestarting,
    ServerStarted,
    ToolsListed,
)
from eventstore.projections import ProjectionStore
from eventstore.projections.mcp_catalogue import (
    PROJECTION,
    McpCatalogue,
    McpServerView,
    catalogue_entries,
    catalogue_from_rows,
    fold_mcp_catalogue,
    sanitize_name,
    tools_digest,
)


def rec(events: list[Event]) -> list[Recorded[Event]]:
    return [Recorded(position=i + 1, stream_id=f"mcp-{e.server}", seq=i + 1, event=e,
                     recorded_at=0.0, metadata=Metadata()) for i, e in enumerate(events)]


def tool(name: str) -> dict[str, Any]:
    return {"name": name, "description": f"d {name}", "input_schema": {"type": "object"}}


def ready(server: str, *tools: str) -> list[Event]:
    listed = tuple(tool(t) for t in tools)
    digest = tools_digest(listed)
    return [ServerAttached(server=server, transport="stdio", command=("x",)),
            ServerStarted(server=server, attempt=0, pid=1, protocol_version="2025-11-25",
                          server_name=server, server_version="1", tools_digest=digest),
            ToolsListed(server=server, tools=listed, digest=digest)]


def test_lifecycle_states_follow_the_events() -> None:
    """starting → ready → crashed → backing_off → stopped; detach removes the server."""
    events = ready("s", "a")
    states = [fold_mcp_catalogue(rec(events[:n])).servers["s"].state for n in (1, 3)]
    events += [ServerExited(server="s", exit_code=1, reason="x")]
    states.append(fold_mcp_catalogue(rec(events)).servers["s"].state)
    events += [ServerRestarting(server="s", attempt=1, delay=0.5, restarts_in_window=1)]
    view = fold_mcp_catalogue(rec(events)).servers["s"]
    states.append(view.state)
    assert view.restarts == 1
    events += [ServerGaveUp(server="s", restarts=1, window=60, reason="limit")]
    states.append(fold_mcp_catalogue(rec(events)).servers["s"].state)
    assert states == ["starting", "ready", "crashed", "backing_off", "stopped"]
    events += [ServerDetached(server="s")]
    assert fold_mcp_catalogue(rec(events)).servers == {}


def test_only_ready_servers_tools_are_listed_in_stable_order() -> None:
    """Entries are mcp_<server>_<tool> of ready servers, sorted by server then tool."""
    events = ready("zeta", "b", "a") + ready("alpha", "x")
    events += [ServerAttached(server="pending", transport="stdio")]
    names = [e.name for e in catalogue_entries(fold_mcp_catalogue(rec(events)))]
    assert names == ["mcp_alpha_x", "mcp_zeta_a", "mcp_zeta_b"]
    reordered = ready("alpha", "x") + ready("zeta", "a", "b")
    assert [e.name for e in catalogue_entries(fold_mcp_catalogue(rec(reordered)))] == names


def test_names_are_sanitised_and_limited() -> None:
    """Odd characters become _, and long names are cut to 64 with a hash suffix."""
    assert sanitize_name("a.b/c d") == "a_b_c_d"
    events = ready("my.server", "do/it", "t" * 80)
    entries = catalogue_entries(fold_mcp_catalogue(rec(events)))
    names = [e.name for e in entries]
    assert "mcp_my_server_do_it" in names
    assert all(len(n) <= 64 for n in names)
    assert all(set(n) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
               for n in names)


def test_collisions_resolve_deterministically() -> None:
    """Two tools that sanitise to the same name both get distinct hash suffixes, every time."""
    events = ready("a_b", "t") + ready("a.b", "t")
    first = catalogue_entries(fold_mcp_catalogue(rec(events)))
    again = catalogue_entries(fold_mcp_catalogue(rec(ready("a.b", "t") + ready("a_b", "t"))))
    assert len({e.name for e in first}) == 2
    assert {(e.server, e.name) for e in first} == {(e.server, e.name) for e in again}


def test_events_of_other_streams_change_nothing() -> None:
    """Events outside mcp-* streams leave the catalogue as it was."""
    [record] = rec([ServerAttached(server="s", transport="stdio")])
    other = Recorded(position=1, stream_id="session-x", seq=1, event=record.event,
                     recorded_at=0.0, metadata=Metadata())
    assert fold_mcp_catalogue([other]) == McpCatalogue()
    assert isinstance(fold_mcp_catalogue([record]).servers["s"], McpServerView)


def test_projection_store_rows_equal_the_fold(tmp_path) -> None:
    """The mcp_catalogue projection in the ProjectionStore gives the fold's catalogue."""
    recorder = MemoryRecorder()
    events = ready("a", "x", "y") + ready("b", "z")
    events += [ServerExited(server="b", exit_code=2, reason="crash", stderr_tail="t"),
               ServerRestarting(server="b", attempt=1, delay=0.5, restarts_in_window=1)]
    events += [*ready("gone", "q"), ServerDetached(server="gone")]
    for event in events:
        stream = f"mcp-{event.server}"
        recorder.append(stream, recorder.stream_version(stream), [event])
    store = ProjectionStore(tmp_path / "p.db", [PROJECTION])
    try:
        store.catch_up(recorder)
        rows = store.query("SELECT view FROM mcp_servers ORDER BY server")
        built = catalogue_from_rows(rows)
        assert dict(built.servers) == dict(fold_mcp_catalogue(recorder.read_all()).servers)
        store.rebuild(recorder)
        rebuilt = catalogue_from_rows(store.query("SELECT view FROM mcp_servers"))
        assert dict(rebuilt.servers) == dict(built.servers)
        assert sorted(built.servers) == ["a", "b"]
    finally:
        store.close()
