"""`open_system`: every actor and client started together and stopped together."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import pykka
from quart import Blueprint

from lynkr.config import load_settings
from lynkr.http import create_app
from lynkr.system import open_system


class Client:
    """A pooled-client stand-in that records its closing."""

    closed: ClassVar[list[str]] = []

    def __init__(self, name: str) -> None:
        self.name = name

    async def aclose(self) -> None:
        Client.closed.append(self.name)


def _settings(tmp_path):
    return load_settings({"LYNKR_DATA_DIR": str(tmp_path / "data"),
                          "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
                          "ANTHROPIC_UPSTREAM_URL": "http://127.0.0.1:9"}, cwd=tmp_path)


async def test_one_provider_actor_and_client_per_configured_backend(tmp_path):
    """Each configured backend gets a handle; clients are closed and actors gone after exit."""
    Client.closed = []
    async with open_system(_settings(tmp_path), client_factory=Client) as system:
        assert sorted(system.handles) == ["anthropic", "openai"]
        assert (tmp_path / "data" / "lynkr.db").exists()
        assert pykka.ActorRegistry.get_all()
    assert sorted(Client.closed) == ["anthropic", "openai"]
    assert not pykka.ActorRegistry.get_all()


async def test_extra_blueprints_are_served(tmp_path):
    """Blueprints passed to open_system are registered by create_app."""
    extra = Blueprint("extra", __name__)

    @extra.get("/admin/ping")
    async def ping() -> str:
        return "pong"

    async with open_system(_settings(tmp_path), client_factory=Client,
                           blueprints=[extra]) as system:
        client = create_app(system).test_client()
        response = await client.get("/admin/ping")
        assert response.status_code == 200
        assert response.headers["request-id"].startswith("req_")


async def test_the_gateway_carries_workspace_indexer_and_mcp_tools(tmp_path):
    """The running system's tool registry has the workspace, indexer and MCP-call tools."""
    async with open_system(_settings(tmp_path), client_factory=Client) as system:
        names = {spec.name for spec in system.tools.specs()}
    assert {"fs_read", "workspace_git_status", "workspace_task_create"} <= names
    assert {"workspace_symbol_search", "workspace_index_rebuild", "project_summary"} <= names
    assert "workspace_mcp_call" in names


async def test_projections_follow_live_appends(tmp_path):
    """The projection runner started with the system catches up with what is appended."""
    from eventstore.events.system import ActorRestarted

    async with open_system(_settings(tmp_path), client_factory=Client) as system:
        await system.store.append("system", -1, [ActorRestarted(actor="t", recovered_version=0)])
        status = await system.projections.catch_up_now()
    assert status.log_position >= 1
    assert status.caught_up
    assert not status.failures


def test_provider_clients_send_over_the_h11_transport():
    """The factory's client: `H11Transport` sized by UPSTREAM_POOL_SIZE, httpx's timeouts."""
    from lynkr.providers import H11Transport, ResilienceSettings, _pool
    from lynkr.system import make_client_factory

    resilience = ResilienceSettings(connect_timeout=3.0, read_timeout=40.0, pool_size=12)
    client = make_client_factory(resilience)("openai")
    transport = _pool._POOLED.get(client)
    assert isinstance(transport, H11Transport)
    assert (transport._max_connections, transport._max_keepalive) == (12, 12)
    assert (client.timeout.connect, client.timeout.read, client.timeout.pool) == (3.0, 40.0, 3.0)
    assert not client.follow_redirects


def _projector_children() -> list[int]:
    """Pids of this process's children running `lynkr.projector`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if parent == os.getpid() and b"lynkr.projector" in argv:
            found.append(int(entry.name))
    return found


async def test_projections_are_caught_up_by_a_child_process_that_stops_with_the_system(
        tmp_path):
    """By default a `lynkr.projector` child catches up; it is gone after the system stops."""
    async with open_system(_settings(tmp_path), client_factory=Client) as system:
        assert system.projections is not None
        status = await system.projections.catch_up_now()
        assert status.caught_up
        assert status.error is None
        assert len(_projector_children()) == 1
    assert _projector_children() == []


async def test_with_the_thread_projector_no_child_is_started(tmp_path):
    """LYNKR_PROJECTOR=thread catches up on the runner's thread."""
    settings = load_settings({"LYNKR_DATA_DIR": str(tmp_path / "data"),
                              "LYNKR_PROJECTOR": "thread"}, cwd=tmp_path)
    async with open_system(settings, client_factory=Client) as system:
        assert system.projections is not None
        assert (await system.projections.catch_up_now()).caught_up
        assert _projector_children() == []
