"""The MCP supervisor actor: attach/detach, restart decisions with backoff and limits, events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import (
    EventStore,
    McpServerExistsError,
    McpServerNotFoundError,
    McpServerSpec,
    McpSupervisor,
    RestartDecision,
    RestartPolicy,
    StartedFacts,
)
from eventstore.projections.mcp_catalogue import McpCatalogue, fold_mcp_catalogue

TOOLS = ({"name": "echo", "description": "", "input_schema": {"type": "object"}},)
POLICY = RestartPolicy(base_delay=0.5, factor=2.0, max_delay=3.0, max_restarts=3, window=60.0)


class RecordingLauncher:
    """An `McpLauncher` that records what the supervisor asked for."""

    def __init__(self) -> None:
        self.launched: list[tuple[str, Any, int]] = []
        self.halted: list[str] = []

    def launch(self, spec: McpServerSpec, child: Any, generation: int) -> None:
        self.launched.append((spec.name, child, generation))

    def halt(self, server: str) -> None:
        self.halted.append(server)


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    """A real SQLite event store."""
    handle = EventStore.open(tmp_path / "db")
    yield handle
    handle.stop()


@pytest.fixture
def setup(store: EventStore) -> tuple[Any, RecordingLauncher, Clock, list[McpCatalogue]]:
    """A supervisor with a recording launcher, a fake clock and the published catalogues."""
    launcher, clock, published = RecordingLauncher(), Clock(), []
    ref = McpSupervisor.start(store, launcher, policy=POLICY, publish=published.append,
                              clock=clock)
    return ref.proxy(), launcher, clock, published


def spec(name: str = "srv") -> McpServerSpec:
    return McpServerSpec(name=name, transport="stdio", command=("srv", "--x"),
                         env={"SECRET_TOKEN": "s3cret"})


def facts() -> StartedFacts:
    return StartedFacts(pid=42, protocol_version="2025-11-25", server_name="srv",
                        server_version="1", tools=TOOLS)


def types(store: EventStore, name: str = "srv") -> list[str]:
    return [type(r.event).__name__ for r in store.read_stream(f"mcp-{name}").get()]


def test_attach_records_event_without_env_values_and_launches(setup, store) -> None:
    """Attach appends ServerAttached (env names only) and launches generation 1."""
    supervisor, launcher, _, _ = setup
    view = supervisor.attach(spec()).get()
    assert view.state == "starting"
    [record] = store.read_stream("mcp-srv").get()
    assert record.event.env_names == ("SECRET_TOKEN",)
    assert "s3cret" not in repr(record.event)
    assert [(n, g) for n, _, g in launcher.launched] == [("srv", 1)]


def test_attach_twice_is_refused(setup) -> None:
    """A second server with the same name is refused."""
    supervisor, *_ = setup
    supervisor.attach(spec()).get()
    with pytest.raises(McpServerExistsError):
        supervisor.attach(spec()).get()


def test_started_makes_server_ready_with_tools(setup, store) -> None:
    """report_started appends ServerStarted and ToolsListed; the view is ready."""
    supervisor, launcher, _, _ = setup
    supervisor.attach(spec()).get()
    child = launcher.launched[0][1]
    child.report_started(1, facts()).get()
    assert types(store) == ["ServerAttached", "ServerStarted", "ToolsListed"]
    view = child.view().get()
    assert (view.state, view.pid, len(view.tools)) == ("ready", 42, 1)


def test_unchanged_tool_list_appends_nothing(setup, store) -> None:
    """A re-list with the same digest is not an event; a changed one is."""
    supervisor, launcher, _, _ = setup
    supervisor.attach(spec()).get()
    child = launcher.launched[0][1]
    child.report_started(1, facts()).get()
    child.report_tools(1, TOOLS).get()
    assert types(store).count("ToolsListed") == 1
    child.report_tools(1, (*TOOLS, {"name": "new", "description": "", "input_schema": {}})).get()
    assert types(store).count("ToolsListed") == 2


def test_exits_restart_with_exponential_backoff_then_give_up(setup, store) -> None:
    """Each exit decides a restart (0.5, 1, 2 s) until max_restarts, then ServerGaveUp."""
    supervisor, launcher, _, _ = setup
    supervisor.attach(spec()).get()
    child = launcher.launched[0][1]
    generation, delays = 1, []
    for _ in range(3):
        decision = child.report_exited(generation, 1, "exited", "tail").get()
        assert isinstance(decision, RestartDecision)
        delays.append(decision.delay)
        generation = decision.generation
    assert delays == [0.5, 1.0, 2.0]
    assert child.report_exited(generation, 1, "exited", "").get() is None
    assert types(store)[-2:] == ["ServerExited", "ServerGaveUp"]
    view = child.view().get()
    assert view.state == "stopped"
    assert "restart limit" in view.last_reason


def test_spawn_failure_before_ready_gives_up_at_once(setup, store) -> None:
    """A process that could not be spawned before it was ever ready is not retried."""
    supervisor, launcher, _, _ = setup
    supervisor.attach(spec()).get()
    child = launcher.launched[0][1]
    reason = "cannot start 'srv': No such file or directory"
    assert child.report_exited(1, None, reason, "", spawned=False).get() is None
    assert types(store) == ["ServerAttached", "ServerExited", "ServerGaveUp"]
    view = child.view().get()
    assert (view.state, view.restarts) == ("stopped", 0)
    assert view.last_reason.startswith(reason)


def test_spawn_failure_after_ready_is_restarted(setup) -> None:
    """A server that ran once is restarted with backoff even if one spawn fails."""
    supervisor, launcher, _, _ = setup
    supervisor.attach(spec()).get()
    child = launcher.launched[0][1]
    child.report_started(1, facts()).get()
    decision = child.report_exited(1, None, "cannot start 'srv'", "", spawned=False).get()
    assert isinstance(decision, RestartDecision)


def test_restarts_outside_the_window_do_not_count(setup) -> None:
    """Restarts older than the window are forgotten, so a rare crash is always restarted."""
    supervisor, launcher, clock, _ = setup
    supervisor.attach(spec()).get()
    child = launcher.launched[0][1]
    generation = 1
    for _ in range(6):
        decision = child.report_exited(generation, 1, "exited", "").get()
        assert decision is not None
        assert decision.delay == 0.5
        generation = decision.generation
        clock.now += 61


def test_stale_generation_reports_are_ignored(setup, store) -> None:
    """A report from a connection already replaced changes nothing."""
    supervisor, launcher, _, _ = setup
    supervisor.attach(spec()).get()
    child = launcher.launched[0][1]
    child.report_exited(1, 1, "exited", "").get()
    before = types(store)
    assert child.report_exited(1, 1, "late", "").get() is None
    child.report_started(1, facts()).get()
    assert types(store) == before


def test_detach_records_halts_and_forgets(setup, store) -> None:
    """Detach appends ServerDetached, halts the task and drops the server from the catalogue."""
    supervisor, launcher, _, published = setup
    supervisor.attach(spec()).get()
    supervisor.detach("srv").get()
    assert types(store)[-1] == "ServerDetached"
    assert launcher.halted == ["srv"]
    assert supervisor.catalogue().get().servers == {}
    assert published[-1].servers == {}
    with pytest.raises(McpServerNotFoundError):
        supervisor.detach("srv").get()


def test_published_catalogue_equals_fold_of_the_log(setup, store) -> None:
    """The catalogue the supervisor publishes is the fold of its events."""
    supervisor, launcher, _, _published = setup
    supervisor.attach(spec("a")).get()
    supervisor.attach(spec("b")).get()
    launcher.launched[0][1].report_started(1, facts()).get()
    launcher.launched[1][1].report_exited(1, 9, "crash", "").get()
    live = supervisor.catalogue().get()
    records = sorted(store.read_stream("mcp-a").get() + store.read_stream("mcp-b").get(),
                     key=lambda r: r.position)
    assert dict(fold_mcp_catalogue(records).servers) == dict(live.servers)
    assert live.servers["b"].state == "backing_off"
