"""`open_system`: every actor and client started together and stopped together."""

from __future__ import annotations

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
    from lynkr.providers import H11Transport, ResilienceSettings
    from lynkr.system import make_client_factory

    resilience = ResilienceSettings(connect_timeout=3.0, read_timeout=40.0, pool_size=12)
    client = make_client_factory(resilience)("openai")
    transport = client._transport
    assert isinstance(transport, H11Transport)
    assert (transport._max_connections, transport._max_keepalive) == (12, 12)
    assert (client.timeout.connect, client.timeout.read, client.timeout.pool) == (3.0, 40.0, 3.0)
    assert not client.follow_redirects
