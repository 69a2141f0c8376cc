"""The callback tunnel's gateway side over real HTTP and WebSockets on loopback: a model's
call of a user's tunnelled tool goes gateway → connector → gateway → model, and every
call is an event in the calling session."""

from __future__ import annotations

import json
from typing import Any

import trio

from eventstore.events.session import PolicyDecided, ToolCallQueued, ToolCompleted
from eventstore.events.tunnel import ConnectorAttached, ConnectorDetached, tunnel_stream
from lynkr.tunnel import ResultMessage
from tests.lynkr.http.gateway import Gateway, running_gateway
from tests.lynkr.tunnel.fake_connector import (
    close_of,
    create_user_key,
    poll_connector,
    read_file_answer,
    ws_connector,
)

SESSION = "tunnel-test"
ENV = {"LYNKR_AUTH": "keys", "LYNKR_SERVER_TOOLS": "local"}
ASK = {"model": "claude-sonnet-4-6", "max_tokens": 256,
       "messages": [{"role": "user", "content": "what is in notes.txt?"}]}


def _read(call_id: str = "toolu_r1", path: str = "/home/ann/notes.txt") -> dict[str, Any]:
    return {"name": "local_read_file", "arguments": {"path": path}, "id": call_id}


def _bash(call_id: str = "toolu_b1") -> dict[str, Any]:
    return {"name": "local_bash", "arguments": {"command": "sleep 100"}, "id": call_id}


def script(*calls: dict[str, Any]) -> list[dict[str, Any]]:
    """The model asks for `calls`, then answers."""
    return [{"text": "Let me look.", "tool_calls": list(calls)}, {"text": "Done."}]


async def ask(gw: Gateway, secret: str, session: str = SESSION) -> Any:
    """One `/v1/messages` turn as the key's user."""
    return await gw.post("/v1/messages", ASK, headers={"x-api-key": secret,
                                                       "X-Claude-Code-Session-Id": session})


class BackgroundTurn:
    """One `/v1/messages` turn run in a nursery; `done` is set once it has its response."""

    def __init__(self, gw: Gateway, secret: str) -> None:
        self.gw, self.secret = gw, secret
        self.response: Any = None
        self.done = trio.Event()

    async def run(self) -> None:
        self.response = await ask(self.gw, self.secret)
        self.done.set()


async def session_events(gw: Gateway, session: str = SESSION) -> list[Any]:
    return [r.event for r in await gw.system.store.read_stream(f"session-{session}")]


def tool_results(gw: Gateway) -> list[dict[str, Any]]:
    """The tool_result blocks the upstream was sent, in order."""
    blocks = []
    for request in gw.fake.requests:
        for message in request["body"].get("messages", []):
            content = message.get("content")
            if isinstance(content, list):
                blocks += [b for b in content if b.get("type") == "tool_result"]
    return blocks


async def wait_for_event(gw: Gateway, kind: type, session: str = SESSION) -> Any:
    with trio.fail_after(10):
        while True:  # the log offers nothing to wait on, so poll
            found = [e for e in await session_events(gw, session) if isinstance(e, kind)]
            if found:
                return found[-1]
            await trio.sleep(0.02)


async def test_a_model_call_goes_to_the_users_connector_and_back_over_the_websocket(tmp_path):
    """local_read_file: queued (an event), answered by the connector, seen by the model."""
    async with running_gateway(tmp_path, script(_read()), provider="anthropic",
                               env=ENV) as gw:
        secret = await create_user_key(gw, "ann")
        async with ws_connector(gw, "ann", secret) as (seen, _ws):
            assert seen.registered == {"type": "registered", "connector_id": "laptop",
                                       "tools": 3}
            response = await ask(gw, secret)
        assert response.status_code == 200, response.text
        assert response.json()["content"][-1]["text"] == "Done."
        assert [c["tool"] for c in seen.calls] == ["local_read_file"]
        assert seen.calls[0]["input"] == {"path": "/home/ann/notes.txt"}
        [result] = tool_results(gw)
        assert not result["is_error"]
        assert "contents of /home/ann/notes.txt" in result["content"]
        events = await session_events(gw)
        queued = [e for e in events if isinstance(e, ToolCallQueued)]
        assert [(q.tool, q.user, q.connector_id, q.tool_call_id) for q in queued] == [
            ("local_read_file", "ann", "laptop", "toolu_r1")]
        kinds = [type(e).__name__ for e in events]
        assert kinds.index("ToolCallStarted") < kinds.index("ToolCallQueued") < \
            kinds.index("ToolCompleted")
        [completed] = [e for e in events if isinstance(e, ToolCompleted)]
        assert completed.ok
        assert completed.tool == "local_read_file"
        lifecycle = [r.event for r in await gw.system.store.read_stream(tunnel_stream("ann"))]
        assert isinstance(lifecycle[0], ConnectorAttached)
        assert lifecycle[0].tools == ("local_bash", "local_noop", "local_read_file")


async def test_with_the_websocket_off_the_same_call_works_by_polling(tmp_path):
    """LYNKR_TUNNEL_WS=off: the socket is closed 4000; a polling connector answers."""
    env = {**ENV, "LYNKR_TUNNEL_WS": "off"}
    async with running_gateway(tmp_path, script(_read()), provider="anthropic",
                               env=env) as gw:
        secret = await create_user_key(gw, "ann")
        code, reason = await close_of(gw, "ann", {"x-api-key": secret})
        assert code == 4000
        assert "LYNKR_TUNNEL_WS=off" in reason
        async with poll_connector(gw, secret) as seen:
            response = await ask(gw, secret)
        assert response.status_code == 200, response.text
        assert [c["tool"] for c in seen.calls] == ["local_read_file"]
        [result] = tool_results(gw)
        assert not result["is_error"]
        assert "contents of" in result["content"]
        [queued] = [e for e in await session_events(gw) if isinstance(e, ToolCallQueued)]
        assert queued.connector_id == "laptop-poll"


async def test_a_call_queued_while_no_connector_is_there_is_delivered_when_one_comes(tmp_path):
    """The connector left (its tools still offered for the grace period); the call waits
    and goes to the connector that comes back."""
    async with running_gateway(tmp_path, script(_read()), provider="anthropic",
                               env=ENV) as gw:
        secret = await create_user_key(gw, "ann")
        async with ws_connector(gw, "ann", secret):
            pass
        await _wait_detached(gw, "ann")
        async with trio.open_nursery() as nursery:
            turn = BackgroundTurn(gw, secret)
            nursery.start_soon(turn.run)
            queued = await wait_for_event(gw, ToolCallQueued)
            assert queued.connector_id is None
            async with ws_connector(gw, "ann", secret) as (seen, _ws):
                with trio.fail_after(10):
                    await seen.got_call.wait()
                    await turn.done.wait()
        assert turn.response.status_code == 200
        [result] = tool_results(gw)
        assert not result["is_error"]
        assert "contents of" in result["content"]


async def _wait_detached(gw: Gateway, user: str) -> None:
    with trio.fail_after(10):
        # the log offers nothing to wait on, so poll
        while not any(isinstance(r.event, ConnectorDetached)  # noqa: ASYNC110
                      for r in await gw.system.store.read_stream(tunnel_stream(user))):
            await trio.sleep(0.02)


async def test_a_read_only_call_in_flight_is_redelivered_once_after_a_drop(tmp_path):
    """The connector drops mid-call; the reconnecting one gets the same call and answers."""
    async with running_gateway(tmp_path, script(_read()), provider="anthropic",
                               env=ENV) as gw:
        secret = await create_user_key(gw, "ann")
        turn = BackgroundTurn(gw, secret)

        async def never(_call: dict[str, Any]) -> ResultMessage | None:
            return None

        async with trio.open_nursery() as nursery:
            async with ws_connector(gw, "ann", secret, answer=never) as (first, _ws):
                nursery.start_soon(turn.run)
                with trio.fail_after(10):
                    await first.got_call.wait()
            async with ws_connector(gw, "ann", secret) as (second, _ws):
                with trio.fail_after(10):
                    await turn.done.wait()
        assert first.calls[0]["call_id"] == second.calls[0]["call_id"]
        [result] = tool_results(gw)
        assert not result["is_error"]
        assert "contents of" in result["content"]
        detached = [r.event for r in await gw.system.store.read_stream(tunnel_stream("ann"))
                    if isinstance(r.event, ConnectorDetached)]
        assert (detached[0].redelivered, detached[0].failed) == (1, 0)


async def test_a_call_that_may_change_things_fails_when_its_connector_drops(tmp_path):
    """local_bash is not read-only: no redelivery, an is_error result saying why."""
    async with running_gateway(tmp_path, script(_bash()), provider="anthropic",
                               env=ENV) as gw:
        secret = await create_user_key(gw, "ann")
        turn = BackgroundTurn(gw, secret)

        async def never(_call: dict[str, Any]) -> ResultMessage | None:
            return None

        async with trio.open_nursery() as nursery:
            async with ws_connector(gw, "ann", secret, answer=never) as (first, _ws):
                nursery.start_soon(turn.run)
                with trio.fail_after(10):
                    await first.got_call.wait()
            with trio.fail_after(10):
                await turn.done.wait()
        assert turn.response.status_code == 200
        [result] = tool_results(gw)
        assert result["is_error"]
        assert "connector went away" in result["content"]


async def test_a_result_sent_twice_is_recorded_once(tmp_path):
    """A second result for an answered call is ignored: one ToolCompleted, recorded 0."""
    async with running_gateway(tmp_path, script(_read()), provider="anthropic",
                               env=ENV) as gw:
        secret = await create_user_key(gw, "ann")
        sent: list[dict[str, Any]] = []

        async def twice(call: dict[str, Any]) -> ResultMessage:
            result = await read_file_answer(call)
            sent.append(result.as_json())
            return result

        async with poll_connector(gw, secret, answer=twice):
            response = await ask(gw, secret)
        assert response.status_code == 200
        again = await gw.client.post(gw.url + "/api/mcp/submit", json={"results": sent},
                                     headers={"x-api-key": secret})
        assert again.json() == {"recorded": 0}
        completed = [e for e in await session_events(gw) if isinstance(e, ToolCompleted)]
        assert len(completed) == 1


async def test_a_call_nobody_answers_times_out_with_an_error_result(tmp_path):
    """LYNKR_TUNNEL_CALL_TIMEOUT: an is_error result saying so; the connector is told to
    cancel."""
    env = {**ENV, "LYNKR_TUNNEL_CALL_TIMEOUT": "2"}
    async with running_gateway(tmp_path, script(_read()), provider="anthropic",
                               env=env) as gw:
        secret = await create_user_key(gw, "ann")

        async def never(_call: dict[str, Any]) -> ResultMessage | None:
            return None

        async with ws_connector(gw, "ann", secret, answer=never) as (seen, _ws):
            response = await ask(gw, secret)
            with trio.fail_after(5):
                await seen.got_cancel.wait()
        assert response.status_code == 200
        [result] = tool_results(gw)
        assert result["is_error"]
        assert "did not answer within 2 s" in result["content"]
        assert seen.cancels == [seen.calls[0]["call_id"]]


async def test_a_refusal_by_the_connectors_rule_is_a_recorded_deny(tmp_path):
    """A result with a rule: PolicyDecided deny naming it, and the model gets is_error."""
    async with running_gateway(tmp_path, script(_read(path="/etc/shadow")),
                               provider="anthropic", env=ENV) as gw:
        secret = await create_user_key(gw, "ann")

        async def refuse(call: dict[str, Any]) -> ResultMessage:
            return ResultMessage(call["call_id"], False,
                                 {"error": "/etc/shadow is outside the allowed paths"},
                                 "fs.allowed_paths")

        async with ws_connector(gw, "ann", secret, answer=refuse):
            response = await ask(gw, secret)
        assert response.status_code == 200
        [result] = tool_results(gw)
        assert result["is_error"]
        assert "fs.allowed_paths" in result["content"]
        denies = [e for e in await session_events(gw)
                  if isinstance(e, PolicyDecided) and e.decision == "deny"]
        assert [(d.policy, d.rule, d.tool) for d in denies] == [
            ("tunnel", "fs.allowed_paths", "local_read_file")]
        assert "outside the allowed paths" in denies[0].reason


async def test_another_users_session_never_sees_the_tools(tmp_path):
    """Bob's request: no local_* tool offered upstream; his tool_use of it goes back to
    him as a client tool; nothing of Ann's in /v1/models."""
    async with running_gateway(tmp_path, script(_read()), provider="anthropic",
                               env=ENV) as gw:
        ann = await create_user_key(gw, "ann")
        bob = await create_user_key(gw, "bob")
        async with ws_connector(gw, "ann", ann) as (seen, _ws):
            response = await ask(gw, bob, session="bob-session")
            models = await gw.client.get(gw.url + "/v1/models", headers={"x-api-key": bob})
        assert response.status_code == 200
        offered = [t["name"] for t in gw.fake.requests[0]["body"].get("tools", [])]
        assert not any(name.startswith("local_") for name in offered)
        assert response.json()["stop_reason"] == "tool_use"  # left to Bob's client
        assert seen.calls == []
        assert "local_" not in models.text
        assert "ann" not in models.text
        assert not [e for e in await session_events(gw, "bob-session")
                    if isinstance(e, ToolCallQueued)]


async def test_the_tools_are_offered_to_their_users_sessions(tmp_path):
    """Ann's request lists her connector's tools after the client's, sorted."""
    async with running_gateway(tmp_path, [{"text": "hi"}], provider="anthropic",
                               env=ENV) as gw:
        ann = await create_user_key(gw, "ann")
        async with ws_connector(gw, "ann", ann):
            response = await ask(gw, ann)
        assert response.status_code == 200
        offered = [t["name"] for t in gw.fake.requests[0]["body"]["tools"]]
        assert offered == ["local_bash", "local_noop", "local_read_file"]


def _json(response: Any) -> Any:
    return json.loads(response.text)
