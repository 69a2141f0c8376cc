"""The /admin/mcp blueprint on a bare QuartTrio app: access rules, validation, errors."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart_trio import QuartTrio

from actors import EventStore
from lynkr.errors import AuthenticationError, PermissionDeniedError
from lynkr.mcp import admin_allowed, admin_blueprint, open_mcp
from tests.lynkr.mcp.conftest import fast_settings

LOCAL = {"client": ("127.0.0.1", 50000)}
REMOTE = {"client": ("10.0.0.7", 50000)}


@pytest.fixture
async def app_runtime(store: EventStore, tmp_path: Path) -> AsyncIterator[Any]:
    """A bare app with the admin blueprint over a running runtime (no servers)."""
    async with open_mcp(fast_settings(), store, workspace=tmp_path) as rt:
        app = QuartTrio("t")
        app.register_blueprint(admin_blueprint(rt))
        yield app, rt


@pytest.fixture
async def token_app(store: EventStore, tmp_path: Path) -> AsyncIterator[Any]:
    """The same with LYNKR_ADMIN_TOKEN configured."""
    settings = dataclasses.replace(fast_settings(), admin_token="adm-token-1234")
    async with open_mcp(settings, store, workspace=tmp_path) as rt:
        app = QuartTrio("t")
        app.register_blueprint(admin_blueprint(rt))
        yield app


async def test_loopback_client_is_served_without_token(app_runtime) -> None:
    """Without a token, a loopback client may list servers."""
    app, _ = app_runtime
    response = await app.test_client().get("/admin/mcp/servers", scope_base=LOCAL)
    assert response.status_code == 200
    assert (await response.get_json()) == {"servers": [], "problems": []}


async def test_remote_client_is_refused_without_token(app_runtime) -> None:
    """Without a token, a non-loopback client gets 403 permission_error."""
    app, _ = app_runtime
    response = await app.test_client().get("/admin/mcp/servers", scope_base=REMOTE)
    assert response.status_code == 403
    assert (await response.get_json())["error"]["type"] == "permission_error"


async def test_token_is_required_when_configured(token_app) -> None:
    """With LYNKR_ADMIN_TOKEN, any client needs the bearer token; with it, remote works."""
    client = token_app.test_client()
    missing = await client.get("/admin/mcp/servers", scope_base=LOCAL)
    assert missing.status_code == 401
    good = await client.get("/admin/mcp/servers", scope_base=REMOTE,
                            headers={"authorization": "Bearer adm-token-1234"})
    assert good.status_code == 200


async def test_invalid_attach_bodies_are_400(app_runtime) -> None:
    """Bodies that are not a manifest or one server entry get a clear 400."""
    app, _ = app_runtime
    client = app.test_client()
    for body, reason in [({"x": 1}, "mcpServers"),
                         ({"name": "bad name!", "command": "x"}, "server name"),
                         ({"name": "s"}, "command must be"),
                         ({"mcpServers": {"h": {"type": "http", "url": "ftp://x"}}}, "http(s)")]:
        response = await client.post("/admin/mcp/servers", json=body, scope_base=LOCAL)
        assert response.status_code == 400, body
        assert reason in (await response.get_json())["error"]["message"]


async def test_detach_and_call_of_unknown_server_are_404(app_runtime) -> None:
    """Detaching or calling a server that is not attached is a 404 not_found_error."""
    app, _ = app_runtime
    client = app.test_client()
    response = await client.delete("/admin/mcp/servers/ghost", scope_base=LOCAL)
    assert response.status_code == 404
    response = await client.post("/admin/mcp/servers/ghost/tools/t/call",
                                 json={"arguments": {}}, scope_base=LOCAL)
    assert response.status_code == 404


@pytest.mark.parametrize("command", ["/nonexistent/server", "no-such-mcp-server-here"])
async def test_attach_of_a_command_that_cannot_start_is_refused(app_runtime, store,
                                                                command) -> None:
    """A command exec would refuse is a 400 with the reason; nothing is attached or recorded."""
    app, runtime = app_runtime
    response = await app.test_client().post(
        "/admin/mcp/servers", json={"name": "nope", "command": command}, scope_base=LOCAL)
    assert response.status_code == 400
    message = (await response.get_json())["error"]["message"]
    assert message == f"cannot start {command!r}: No such file or directory"
    assert dict(runtime.catalogue().servers) == {}
    assert await store.read_stream("mcp-nope") == []


def test_admin_allowed_rules() -> None:
    """The access rule: token if configured, else loopback only (IPv4 and IPv6)."""
    admin_allowed("127.0.0.1", None, None)
    admin_allowed("::1", None, None)
    with pytest.raises(PermissionDeniedError):
        admin_allowed("192.168.1.2", None, None)
    with pytest.raises(PermissionDeniedError):
        admin_allowed(None, None, None)
    with pytest.raises(AuthenticationError):
        admin_allowed("127.0.0.1", "Bearer wrong", "right")
    admin_allowed("8.8.8.8", "Bearer right", "right")
