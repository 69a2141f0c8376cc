"""`/api/mcp/…` over real HTTP: who may connect, poll and look, and Anthropic's error JSON
for everything refused."""

from __future__ import annotations

from typing import Any

import trio

from lynkr.tunnel import Register, ToolInfo
from tests.lynkr.http.gateway import Gateway, running_gateway
from tests.lynkr.tunnel.fake_connector import (
    TOOLS,
    close_of,
    create_user_key,
    poll_connector,
    ws_connector,
)

ENV = {"LYNKR_AUTH": "keys", "LYNKR_SERVER_TOOLS": "local"}


async def post(gw: Gateway, path: str, body: Any, secret: str) -> Any:
    return await gw.client.post(gw.url + path, json=body, headers={"x-api-key": secret})


async def get(gw: Gateway, path: str, secret: str) -> Any:
    return await gw.client.get(gw.url + path, headers={"x-api-key": secret})


def error_type(response: Any) -> str:
    body = response.json()
    assert body["type"] == "error"
    return str(body["error"]["type"])


async def test_a_key_without_mcp_callback_is_refused(tmp_path):
    """WebSocket: closed 1008 naming the scope; polling: 403 permission_error."""
    async with running_gateway(tmp_path, env=ENV, with_upstream=False) as gw:
        secret = await create_user_key(gw, "ann", scopes="anthropic-proxy")
        code, reason = await close_of(gw, "ann", {"x-api-key": secret})
        assert code == 1008
        assert "mcp-callback" in reason
        response = await post(gw, "/api/mcp/register", Register("c", TOOLS).as_json(), secret)
        assert response.status_code == 403
        assert error_type(response) == "permission_error"
        assert gw.system.tunnel.statistics().connectors == 0


async def test_a_key_of_another_user_is_refused(tmp_path):
    """Bob's key on Ann's WebSocket: closed 1008, nothing attached."""
    async with running_gateway(tmp_path, env=ENV, with_upstream=False) as gw:
        bob = await create_user_key(gw, "bob")
        code, reason = await close_of(gw, "ann", {"x-api-key": bob})
        assert code == 1008
        assert "another user" in reason
        assert gw.system.tunnel.statistics().connectors == 0


async def test_no_or_a_wrong_credential_is_refused(tmp_path):
    """No key, or an unknown one: closed 1008 with the authentication message."""
    async with running_gateway(tmp_path, env=ENV, with_upstream=False) as gw:
        code, reason = await close_of(gw, "ann", {})
        assert code == 1008
        assert "authentication required" in reason
        code, reason = await close_of(gw, "ann", {"x-api-key": "lk-not-a-real-key"})
        assert code == 1008
        assert reason == "invalid API key or token"


async def test_the_websocket_off_has_its_own_close_code(tmp_path):
    """LYNKR_TUNNEL_WS=off: closed 4000 "websocket disabled", whatever the key; not 1008."""
    env = {**ENV, "LYNKR_TUNNEL_WS": "off"}
    async with running_gateway(tmp_path, env=env, with_upstream=False) as gw:
        ann = await create_user_key(gw, "ann")
        for headers in ({"x-api-key": ann}, {"x-api-key": "lk-not-a-real-key"}):
            code, reason = await close_of(gw, "ann", headers)
            assert code == 4000
            assert reason.startswith("websocket disabled; use polling")
        assert gw.system.tunnel.statistics().connectors == 0


async def test_servers_shows_a_users_connectors_to_them_and_admins_only(tmp_path):
    """Ann sees her connector and tools; Bob gets 403; an admin sees Ann's."""
    async with running_gateway(tmp_path, env=ENV, with_upstream=False) as gw:
        ann = await create_user_key(gw, "ann")
        bob = await create_user_key(gw, "bob")
        admin = await create_user_key(gw, "root", scopes="admin")
        async with ws_connector(gw, "ann", ann):
            own = await get(gw, "/api/mcp/servers/ann", ann)
            other = await get(gw, "/api/mcp/servers/ann", bob)
            by_admin = await get(gw, "/api/mcp/servers/ann", admin)
        assert own.status_code == 200
        [connector] = own.json()["connectors"]
        assert (connector["connector_id"], connector["transport"], connector["state"]) == (
            "laptop", "ws", "connected")
        assert [t["name"] for t in connector["tools"]] == [
            "local_bash", "local_noop", "local_read_file"]
        assert connector["servers"] == ["local"]
        assert other.status_code == 403
        assert error_type(other) == "permission_error"
        assert "local_" not in other.text
        assert by_admin.status_code == 200
        assert by_admin.json()["connectors"][0]["tools"] == connector["tools"]


async def test_status_counts_without_user_data_unless_admin(tmp_path):
    """Counts for anyone authenticated; the per-user view only with the admin scope."""
    async with running_gateway(tmp_path, env=ENV, with_upstream=False) as gw:
        ann = await create_user_key(gw, "ann")
        admin = await create_user_key(gw, "root", scopes="admin")
        async with ws_connector(gw, "ann", ann), poll_connector(gw, ann):
            plain = (await get(gw, "/api/mcp/status", ann)).json()
            full = (await get(gw, "/api/mcp/status", admin)).json()
        assert (plain["connectors"], plain["users"], plain["pending_calls"]) == (2, 1, 0)
        assert "by_user" not in plain
        assert "ann" not in str(plain)
        assert set(full["by_user"]) == {"ann"}
        assert len(full["by_user"]["ann"]["connectors"]) == 2


async def test_status_reports_the_mean_latency_of_answered_calls(tmp_path):
    """After a call through the tunnel, answered is 1 and the latency is a number."""
    async with running_gateway(tmp_path, env=ENV, with_upstream=False) as gw:
        ann = await create_user_key(gw, "ann")
        async with ws_connector(gw, "ann", ann):
            result = await gw.system.tunnel.request("ann", "local_noop", {})
            status = (await get(gw, "/api/mcp/status", ann)).json()
        assert result.ok
        assert status["answered"] == 1
        assert status["mean_latency_ms"] > 0


async def test_bad_tunnel_requests_are_anthropic_errors(tmp_path):
    """Unknown poller 404, a body that is not the message 400, a bad tool name 400."""
    async with running_gateway(tmp_path, env=ENV, with_upstream=False) as gw:
        ann = await create_user_key(gw, "ann")
        unknown = await post(gw, "/api/mcp/poll", {"connector_id": "nobody"}, ann)
        assert unknown.status_code == 404
        assert error_type(unknown) == "not_found_error"
        for path, body in (("/api/mcp/poll", {}), ("/api/mcp/submit", {"results": [{}]}),
                           ("/api/mcp/register", {"type": "result"}),
                           ("/api/mcp/register", [1, 2])):
            response = await post(gw, path, body, ann)
            assert response.status_code == 400, (path, response.text)
            assert error_type(response) == "invalid_request_error"
        bad = Register("c", (ToolInfo("rm -rf", "", {"type": "object"}),)).as_json()
        response = await post(gw, "/api/mcp/register", bad, ann)
        assert response.status_code == 400
        assert "local_<tool>" in response.text


async def test_a_poller_that_stops_polling_is_detached(tmp_path):
    """With a short heartbeat, a poller silent for two of them is gone from status."""
    env = {**ENV, "LYNKR_TUNNEL_HEARTBEAT": "0.2"}
    async with running_gateway(tmp_path, env=env, with_upstream=False) as gw:
        ann = await create_user_key(gw, "ann")
        response = await post(gw, "/api/mcp/register", Register("p", TOOLS).as_json(), ann)
        assert response.json() == {"type": "registered", "connector_id": "p", "tools": 3}
        assert gw.system.tunnel.statistics().connectors == 1
        with trio.fail_after(10):
            # the reaper offers nothing to wait on, so poll
            while gw.system.tunnel.statistics().connectors:  # noqa: ASYNC110
                await trio.sleep(0.1)


async def test_a_silent_websocket_is_closed_when_its_heartbeat_is_lost(tmp_path):
    """A connector that answers no ping for three heartbeats: closed 1001, detached."""
    env = {**ENV, "LYNKR_TUNNEL_HEARTBEAT": "0.1"}
    async with running_gateway(tmp_path, env=env, with_upstream=False) as gw:
        ann = await create_user_key(gw, "ann")
        code, reason = await close_of(gw, "ann", {"x-api-key": ann})
        assert (code, reason) == (1001, "heartbeat lost")
        assert gw.system.tunnel.statistics().connectors == 0
