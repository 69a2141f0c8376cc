"""The tunnel across gateways: a connector attached to gateway A serves a session handled
by gateway B, both on one PostgreSQL store (real HTTP, WebSocket and NOTIFY on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from eventstore.events.session import ToolCallQueued, ToolCompleted
from lynkr.tunnel import ResultMessage
from tests.eventstore.postgres import temporary_database
from tests.lynkr.http.gateway import Gateway, running_gateway
from tests.lynkr.tunnel.fake_connector import create_user_key, ws_connector
from tests.lynkr.tunnel.test_hub import ENV, _read, ask, script, session_events, tool_results


@pytest.fixture
def store_url() -> Iterator[str]:
    """A fresh PostgreSQL database for the shared event log, dropped after the test."""
    with temporary_database() as url:
        yield url


async def wait_for_remote_tool(gw: Gateway, user: str, tool: str) -> None:
    """Until `gw` offers `user` another gateway's `tool` (offers refresh every second)."""
    relay = gw.system.relay
    assert relay is not None
    with trio.fail_after(10):
        while tool not in {s.name for s in relay.specs_for(user)}:  # noqa: ASYNC110 - no event to wait on
            await trio.sleep(0.05)


async def test_a_connector_on_gateway_a_serves_a_session_on_gateway_b(
        tmp_path: Path, store_url: str) -> None:
    """The model on B calls local_read_file; A's connector answers; B's model sees it,
    and B's session records the queued call and its completion."""
    env = {**ENV, "LYNKR_STORE_URL": store_url}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with (running_gateway(tmp_path / "a", provider="anthropic", env=env) as a,
                running_gateway(tmp_path / "b", script(_read()), provider="anthropic",
                                env=env) as b):
        secret = await create_user_key(a, "ann")
        async with ws_connector(a, "ann", secret) as (seen, _ws):
            await wait_for_remote_tool(b, "ann", "local_read_file")
            response = await ask(b, secret)
        assert response.status_code == 200, response.text
        assert response.json()["content"][-1]["text"] == "Done."
        assert [c["tool"] for c in seen.calls] == ["local_read_file"]
        [result] = tool_results(b)
        assert not result["is_error"]
        assert "contents of /home/ann/notes.txt" in result["content"]
        events = await session_events(b)
        assert [(q.tool, q.user) for q in events if isinstance(q, ToolCallQueued)] == [
            ("local_read_file", "ann")]
        [completed] = [e for e in events if isinstance(e, ToolCompleted)]
        assert completed.ok
        assert (b.system.relay.forwarded, a.system.relay.served) == (1, 1)  # type: ignore[union-attr]


async def test_a_refusal_on_the_remote_connector_is_an_error_result(
        tmp_path: Path, store_url: str) -> None:
    """A's connector refuses by its rule: B's model gets an is_error result naming it."""

    async def refuse(call: dict[str, Any]) -> ResultMessage:
        return ResultMessage(call["call_id"], False, {"error": "outside allowed paths"},
                             rule="allowed_paths")

    env = {**ENV, "LYNKR_STORE_URL": store_url}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with (running_gateway(tmp_path / "a", provider="anthropic", env=env) as a,
                running_gateway(tmp_path / "b", script(_read()), provider="anthropic",
                                env=env) as b):
        secret = await create_user_key(a, "ann")
        async with ws_connector(a, "ann", secret, answer=refuse):
            await wait_for_remote_tool(b, "ann", "local_read_file")
            response = await ask(b, secret)
        assert response.status_code == 200, response.text
        [result] = tool_results(b)
        assert result["is_error"]
        assert "outside allowed paths" in str(result["content"])
