"""The session viewer's JSON over real HTTP: what each caller may see, and bad input."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest

from eventstore import EVENTS
from eventstore.events.limits import RateLimited
from lynkr.errors import PermissionDeniedError
from lynkr.gateway import ANONYMOUS, Principal
from lynkr.ui._access import viewer_for
from tests.lynkr.http.gateway import Gateway, running_gateway
from tests.lynkr.tunnel.fake_connector import create_user_key, poll_connector

ADMIN_TOKEN = "admin-token-for-the-viewer-tests"
AUTH = {"LYNKR_AUTH": "keys", "LYNKR_ADMIN_TOKEN": ADMIN_TOKEN}
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
HELLO = {"model": "claude-sonnet-4-6", "max_tokens": 64,
         "messages": [{"role": "user", "content": "hello"}]}
ALICE = Principal(key_id="lk_a", user="alice", tier="free", scopes=frozenset({"anthropic-proxy"}),
                  via="key")


async def _key(gw: Gateway, user: str) -> str:
    response = await gw.post("/api/v1/api-keys", {"name": user, "user_id": user,
                                                  "tier": "enterprise"}, headers=ADMIN)
    assert response.status_code == 201, response.text
    secret: str = response.json()["key"]
    return secret


async def _get(gw: Gateway, path: str, headers: dict[str, str] | None = None) -> Any:
    return await gw.client.get(gw.url + path, headers=headers or {})


def test_auth_off_serves_loopback_clients_only():
    """With auth off a remote address is refused; loopback sees everything."""
    assert viewer_for(ANONYMOUS, auth_enabled=False, remote_addr="127.0.0.1").sees_all
    assert viewer_for(ANONYMOUS, auth_enabled=False, remote_addr="::1").sees_all
    with pytest.raises(PermissionDeniedError):
        viewer_for(ANONYMOUS, auth_enabled=False, remote_addr="10.1.2.3")


def test_a_user_without_admin_sees_their_own_user():
    """A non-admin key is cut to its user; an admin is not."""
    assert viewer_for(ALICE, auth_enabled=True, remote_addr="10.1.2.3").user == "alice"
    admin = Principal(key_id="lk_b", user="bob", tier="free", scopes=frozenset({"admin"}),
                      via="key")
    assert viewer_for(admin, auth_enabled=True, remote_addr="10.1.2.3").sees_all


async def test_each_user_sees_only_their_sessions_and_an_admin_all(tmp_path):
    """alice and bob each list their own session; alice cannot open bob's; admin lists both."""
    script = [{"text": "hi alice"}, {"text": "hi bob"}]
    async with running_gateway(tmp_path, script, provider="anthropic", env=AUTH) as gw:
        alice, bob = await _key(gw, "alice"), await _key(gw, "bob")
        for secret, session in ((alice, "s-alice"), (bob, "s-bob")):
            answer = await gw.post("/v1/messages", HELLO, headers={
                "x-api-key": secret, "x-claude-code-session-id": session})
            assert answer.status_code == 200, answer.text
        mine = (await _get(gw, "/ui/api/sessions", {"x-api-key": alice})).json()["data"]
        theirs = await _get(gw, "/ui/api/sessions/s-bob", {"x-api-key": alice})
        everyone = (await _get(gw, "/ui/api/sessions", ADMIN)).json()["data"]
        by_user = (await _get(gw, "/ui/api/sessions?user=bob", ADMIN)).json()["data"]
        nobody = await _get(gw, "/ui/api/sessions")
        page = await _get(gw, "/ui")
    assert [(r["session_id"], r["user"]) for r in mine] == [("s-alice", "alice")]
    assert theirs.status_code == 404
    assert theirs.json()["error"]["type"] == "not_found_error"
    assert sorted(r["session_id"] for r in everyone) == ["s-alice", "s-bob"]
    assert [r["session_id"] for r in by_user] == ["s-bob"]
    assert nobody.status_code == 401
    assert page.status_code == 200  # the page holds no data: it asks for a key
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_a_session_shows_its_route_answer_and_conversation(tmp_path):
    """The timeline has the turn, the routing decision with its reason and the answer."""
    async with running_gateway(tmp_path, [{"text": "**bold** answer"}],
                               provider="anthropic") as gw:
        await gw.post("/v1/messages", HELLO, headers={"x-claude-code-session-id": "s1"})
        body = (await _get(gw, "/ui/api/sessions/s1")).json()
        later = (await _get(gw, f"/ui/api/sessions/s1?after={body['version']}")).json()
    kinds = [row["kind"] for row in body["timeline"]]
    assert kinds[:2] == ["session", "turn"]
    assert "route" in kinds
    assert kinds[-1] == "answer"
    route = next(row for row in body["timeline"] if row["kind"] == "route")
    assert route["detail"]
    assert [m["role"] for m in body["conversation"]] == ["user", "assistant"]
    assert body["conversation"][1]["blocks"] == [{"type": "text", "text": "**bold** answer"}]
    assert later["timeline"] == []


@pytest.mark.parametrize("path", ["/ui/api/sessions?since=yesterday",
                                  "/ui/api/audit?until=2026-13",
                                  "/ui/api/sessions/s1?after=x", "/ui/events?after=-1"])
async def test_bad_filters_are_400_invalid_request(tmp_path, path):
    """A malformed date or position is Anthropic's 400 error JSON, never a 500."""
    async with running_gateway(tmp_path, with_upstream=False) as gw:
        response = await _get(gw, path)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_usage_audit_and_servers_answer_json(tmp_path):
    """Usage per day/model/key, the audit table and the MCP list are served as JSON."""
    async with running_gateway(tmp_path, [{"text": "ok"}], provider="anthropic") as gw:
        await gw.post("/v1/messages", HELLO, headers={"x-claude-code-session-id": "s1"})
        usage = (await _get(gw, "/ui/api/usage")).json()
        audit = (await _get(gw, "/ui/api/audit?decision=deny")).json()
        servers = (await _get(gw, "/ui/api/servers")).json()
    assert [r["requests"] for r in usage["day"]] == [1]
    assert [r["model"] for r in usage["model"]] == ["claude-sonnet-4-6"]
    assert [r["key"] for r in usage["key"]] == ["anonymous"]
    assert audit == {"data": []}
    assert set(servers) == {"mcp", "mcp_enabled", "tunnel", "tunnel_enabled"}
    assert (servers["tunnel"], servers["tunnel_enabled"]) == ([], True)


async def test_servers_show_tunnel_connectors_to_their_user_and_admins(tmp_path):
    """A polling connector of ann: ann and an admin see it with its state; bob does not."""
    async with running_gateway(tmp_path, env={**AUTH, "LYNKR_SERVER_TOOLS": "local"},
                               with_upstream=False) as gw:
        ann, bob = await create_user_key(gw, "ann"), await create_user_key(gw, "bob")
        async with poll_connector(gw, ann):
            own = (await _get(gw, "/ui/api/servers", {"x-api-key": ann})).json()
            other = (await _get(gw, "/ui/api/servers", {"x-api-key": bob})).json()
            everyone = (await _get(gw, "/ui/api/servers", ADMIN)).json()
    [view] = own["tunnel"]
    [connector] = view["connectors"]
    assert (view["user"], connector["connector_id"], connector["transport"],
            connector["state"]) == ("ann", "laptop-poll", "poll", "connected")
    assert connector["servers"] == ["local"]
    assert [v["user"] for v in other["tunnel"]] == ["bob"]
    assert other["tunnel"][0]["connectors"] == []
    assert "laptop-poll" not in str(other)
    assert [v["user"] for v in everyone["tunnel"]] == ["ann"]
    assert [c["connector_id"] for c in everyone["tunnel"][0]["connectors"]] == ["laptop-poll"]


async def test_a_sessions_rate_limit_refusals_are_on_its_timeline(tmp_path):
    """A free key's 11th request in a minute is refused: its session shows the refusal,
    another session does not, and a refusal naming no session is recorded without one."""
    async with running_gateway(tmp_path, [{"text": "ok"}] * 10, provider="anthropic",
                               env=AUTH) as gw:
        ann = await create_user_key(gw, "ann", tier="free")
        headers = {"x-api-key": ann, "x-claude-code-session-id": "s-busy"}
        for n in range(10):
            body = {**HELLO, "messages": [{"role": "user", "content": f"hello {n}"}]}
            answered = await gw.post("/v1/messages", body, headers=headers)
            assert answered.status_code == 200, answered.text
        refused = await gw.post("/v1/messages", HELLO, headers=headers)
        nameless = await gw.client.post(gw.url + "/v1/messages", content=b"not json",
                                        headers={"x-api-key": ann})
        busy = (await _get(gw, "/ui/api/sessions/s-busy", {"x-api-key": ann})).json()
        later = (await _get(gw, f"/ui/api/sessions/s-busy?after={busy['version']}",
                            {"x-api-key": ann})).json()
        events = [r.event for r in gw.system.recorder.read_stream("limits")]
    assert (refused.status_code, nameless.status_code) == (429, 429)
    assert [(e.session_id, e.limit) for e in events if isinstance(e, RateLimited)] == [
        ("s-busy", "requests_per_minute"), (None, "requests_per_minute")]
    [row] = busy["rate_limits"]
    assert (row["kind"], row["status"], row["seq"]) == ("rate_limit", "error", None)
    assert row["title"] == "rate limited (requests per minute)"
    assert "tier free" in row["detail"]
    assert "/v1/messages" in row["detail"]
    assert row["position"] > 0
    assert row["at"] >= busy["timeline"][-1]["at"]
    assert all(r["kind"] != "rate_limit" for r in busy["timeline"])
    assert later["timeline"] == []
    assert later["rate_limits"] == busy["rate_limits"]


def test_a_v1_rate_limited_event_reads_with_no_session():
    """Events recorded before `session_id` existed decode with it None (upcaster)."""
    payload = {"request_id": "req_1", "subject": "lk_a", "tier": "free",
               "limit": "concurrent", "retry_after": 1, "route": "/v1/messages"}
    event = EVENTS.decode("RateLimited", 1, cbor2.dumps(payload))
    assert isinstance(event, RateLimited)
    assert (event.session_id, event.limit) == (None, "concurrent")


async def test_the_search_box_finds_sessions_by_id_model_and_text(tmp_path):
    """`?q=` matches the session id, the model and what was said (case-insensitive)."""
    async with running_gateway(tmp_path, [{"text": "Paris is the capital."}],
                               provider="anthropic") as gw:
        await gw.post("/v1/messages", HELLO, headers={"x-claude-code-session-id": "geo-1"})
        by_id = (await _get(gw, "/ui/api/sessions?q=GEO")).json()
        by_text = (await _get(gw, "/ui/api/sessions?q=paris")).json()
        none = (await _get(gw, "/ui/api/sessions?q=zanzibar")).json()
    assert [r["session_id"] for r in by_id["data"]] == ["geo-1"]
    assert [r["session_id"] for r in by_text["data"]] == ["geo-1"]
    assert none["data"] == []
