"""The admin API's tool call goes through the gateway's policy engine and is audited.

A real gateway system (`open_system`: event store, session actors, toolbelt, MCP
supervision) serves the app through Quart's test client; the MCP server is the real
`crashy_server.py` over stdio.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from eventstore.events.session import (
    PolicyDecided,
    SessionStarted,
    ToolCallInterrupted,
    ToolCallStarted,
    ToolCompleted,
)
from lynkr.config import load_settings
from lynkr.http import create_app
from lynkr.mcp import admin_blueprint
from lynkr.mcp._admin import admin_caller, admin_session
from lynkr.system import open_system
from lynkr.tools import Decision, ToolRegistry, ToolSpec
from lynkr.workspace import workspace_tools
from tests.lynkr.mcp.conftest import CRASHY

LOCAL = {"client": ("127.0.0.1", 50000)}
ATTACH = {"name": "crashy", "command": sys.executable, "args": [str(CRASHY)]}
STREAM = "session-admin-local"


class Client:
    """A provider client stand-in: these tests call no upstream."""

    def __init__(self, _name: str) -> None:
        pass

    async def aclose(self) -> None:
        """Nothing to close."""


def _settings(tmp_path: Path, **env: str) -> Any:
    (tmp_path / "manifests").mkdir(exist_ok=True)
    return load_settings({"LYNKR_DATA_DIR": str(tmp_path / "data"),
                          "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
                          "MCP_MANIFEST_DIRS": str(tmp_path / "manifests"),
                          "LYNKR_PROJECTOR": "thread", **env}, cwd=tmp_path)


async def _echo_refused(_ctx: Any, _inputs: Mapping[str, Any]) -> Decision:
    return Decision.deny("mcp", "mcp.echo.refused", "echo is not for admins here",
                         setting="a test-only rule")


async def _never(_ctx: Any, _inputs: Mapping[str, Any]) -> Any:
    raise AssertionError("a denied call must not run")


@asynccontextmanager
async def _gateway(tmp_path: Path, tools: ToolRegistry | None = None) -> AsyncIterator[Any]:
    """A running system with the crashy server attached through the admin API."""
    async with open_system(_settings(tmp_path), client_factory=Client, tools=tools) as system:
        client = create_app(system).test_client()
        attached = await client.post("/admin/mcp/servers", json=ATTACH, scope_base=LOCAL)
        assert attached.status_code == 201, await attached.get_json()
        yield system, client


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Any]:
    """(system, test client) of a gateway with the crashy server attached."""
    async with _gateway(tmp_path) as found:
        yield found


@pytest.fixture
async def denying_gateway(tmp_path: Path) -> AsyncIterator[Any]:
    """The same, with a static `mcp_crashy_echo` whose rule denies every call (a static
    name wins over the MCP catalogue's, so the route's call meets that rule)."""
    tools = ToolRegistry(workspace_tools())
    tools.register_all([ToolSpec(name="mcp_crashy_echo", description="refused",
                                 input_schema={"type": "object"}, handler=_never,
                                 policy="mcp", check=_echo_refused)])
    async with _gateway(tmp_path, tools) as found:
        yield found


async def _call(client: Any, tool: str, body: Any, **headers: str) -> tuple[int, Any]:
    response = await client.post(f"/admin/mcp/servers/crashy/tools/{tool}/call", json=body,
                                 scope_base=LOCAL, headers=headers)
    return response.status_code, await response.get_json()


def _events(system: Any, stream: str = STREAM) -> list[Any]:
    return [r.event for r in system.recorder.read_stream(stream)]


async def test_admin_call_is_decided_run_and_recorded_as_admin_local(gateway) -> None:
    """A call answers 200 and leaves, in a session the admin API started, PolicyDecided
    (admin:local), started and completed."""
    system, client = gateway
    status, body = await _call(client, "echo", {"arguments": {"text": "hello"}})
    assert status == 200, body
    assert body["content"][0]["text"] == "hello"
    assert body["session_id"] == "admin-local"
    events = _events(system)
    assert isinstance(events[0], SessionStarted)
    assert (events[0].session_id, events[0].source) == ("admin-local", "admin")
    [decided] = [e for e in events if isinstance(e, PolicyDecided)]
    [started] = [e for e in events if isinstance(e, ToolCallStarted)]
    [done] = [e for e in events if isinstance(e, ToolCompleted)]
    assert (decided.tool, decided.decision, decided.caller) == ("mcp_crashy_echo", "allow",
                                                                 "admin:local")
    assert started.caller == "admin:local"
    assert done.ok
    assert done.tool_call_id == body["tool_call_id"] == decided.tool_call_id
    assert system.recorder.load_blob(done.result)["content"][0]["text"] == "hello"


async def test_denied_admin_call_is_403_and_an_audited_deny(denying_gateway) -> None:
    """A policy deny is a 403 permission_error naming the rule; the deny is recorded."""
    system, client = denying_gateway
    status, body = await _call(client, "echo", {"arguments": {"text": "x"}})
    assert status == 403
    assert body["error"]["type"] == "permission_error"
    assert "mcp.echo.refused" in body["error"]["message"]
    events = _events(system)
    [decided] = [e for e in events if isinstance(e, PolicyDecided)]
    assert (decided.decision, decided.rule, decided.caller) == ("deny", "mcp.echo.refused",
                                                                "admin:local")
    assert not [e for e in events if isinstance(e, ToolCallStarted)]
    assert [e.ok for e in events if isinstance(e, ToolCompleted)] == [False]


async def test_arguments_that_break_the_schema_are_400_and_recorded(gateway) -> None:
    """Arguments the tool's schema refuses: 400 naming the field; the server is not called."""
    system, client = gateway
    status, body = await _call(client, "echo", {"arguments": {"text": 3}})
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert "invalid input at text" in body["error"]["message"]
    events = _events(system)
    assert not [e for e in events if isinstance(e, ToolCallStarted)]
    assert [e.ok for e in events if isinstance(e, ToolCompleted)] == [False]


async def test_unknown_tool_is_404_before_anything_is_decided(gateway) -> None:
    """A tool the server does not have is a 404; nothing was decided or recorded."""
    system, client = gateway
    status, body = await _call(client, "no_such_tool", {"arguments": {}})
    assert status == 404
    assert "has no tool named 'no_such_tool'" in body["error"]["message"]
    assert system.recorder.stream_version(STREAM) == 0


async def test_a_tool_error_is_200_with_is_error(gateway) -> None:
    """The server's own isError stays a 200 result with is_error and its text."""
    _, client = gateway
    status, body = await _call(client, "fail", {"arguments": {"message": "it broke"}})
    assert status == 200
    assert body["is_error"] is True
    assert "it broke" in body["content"][0]["text"]


async def test_a_call_over_its_timeout_is_504_and_recorded_interrupted(gateway) -> None:
    """`timeout` cancels the call: 504 timeout_error, and ToolCallInterrupted("timeout")."""
    system, client = gateway
    status, body = await _call(client, "slow", {"arguments": {"seconds": 30}, "timeout": 0.5})
    assert status == 504
    assert body["error"]["type"] == "timeout_error"
    [interrupted] = [e for e in _events(system) if isinstance(e, ToolCallInterrupted)]
    assert (interrupted.reason, interrupted.effects_possible) == ("timeout", True)


async def test_lynkr_mcp_call_names_its_cli_user(gateway) -> None:
    """The x-lynkr-caller header of `lynkr mcp call` becomes the caller; a bad one is 400."""
    system, client = gateway
    status, _ = await _call(client, "echo", {"arguments": {"text": "x"}},
                            **{"x-lynkr-caller": "cli:alice"})
    assert status == 200
    [decided] = [e for e in _events(system) if isinstance(e, PolicyDecided)]
    assert decided.caller == "cli:alice"
    status, body = await _call(client, "echo", {"arguments": {"text": "x"}},
                               **{"x-lynkr-caller": "admin:root"})
    assert status == 400
    assert "x-lynkr-caller" in body["error"]["message"]


async def test_token_holders_are_recorded_as_admin_token(tmp_path: Path) -> None:
    """With LYNKR_ADMIN_TOKEN the caller is admin:token, in the session admin-token."""
    settings = _settings(tmp_path, LYNKR_ADMIN_TOKEN="adm-token-1234")
    auth = {"authorization": "Bearer adm-token-1234"}
    async with open_system(settings, client_factory=Client) as system:
        client = create_app(system).test_client()
        attached = await client.post("/admin/mcp/servers", json=ATTACH, headers=auth,
                                     scope_base={"client": ("10.0.0.7", 1)})
        assert attached.status_code == 201
        response = await client.post("/admin/mcp/servers/crashy/tools/echo/call",
                                     json={"arguments": {"text": "x"}}, headers=auth,
                                     scope_base={"client": ("10.0.0.7", 1)})
        assert response.status_code == 200
        [decided] = [e for e in _events(system, "session-admin-token")
                     if isinstance(e, PolicyDecided)]
    assert decided.caller == "admin:token"


async def test_without_a_system_the_call_needs_a_runner(store, tmp_path) -> None:
    """A bare app (no gateway system) refuses calls instead of bypassing the policy engine."""
    from quart_trio import QuartTrio

    from lynkr.mcp import open_mcp
    from tests.lynkr.mcp.conftest import crashy_spec, fast_settings
    async with open_mcp(fast_settings(), store, workspace=tmp_path) as rt:
        await rt.attach(crashy_spec())
        app = QuartTrio("t")
        app.register_blueprint(admin_blueprint(rt))
        response = await app.test_client().post("/admin/mcp/servers/crashy/tools/echo/call",
                                                json={"arguments": {"text": "x"}},
                                                scope_base=LOCAL)
    assert response.status_code == 500
    assert "tool registry" in (await response.get_json())["error"]["message"]


def test_admin_caller_and_session_names() -> None:
    """admin:<who> by default; a declared cli:<user> wins; sessions are admin-<who>."""
    assert admin_caller("local", None) == "admin:local"
    assert admin_caller("local", "cli:bob.smith") == "cli:bob.smith"
    assert admin_session("local") == "admin-local"
