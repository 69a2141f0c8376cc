"""`lynkr.tunnel._connector`: the connector against a fake gateway on 127.0.0.1 —
register, calls and results, reconnects, the polling fallback, refusals, heartbeats."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from lynkr.tunnel._connector import Connector, GatewayRefusedError
from lynkr.tunnel._connector_settings import Backoff, ConnectSettings
from lynkr.tunnel._connector_status import StatusLine
from tests.lynkr.tunnel.fake_gateway import (
    KEY,
    USER,
    FakeGateway,
    eventually,
    open_fake_gateway,
)

FAST = Backoff(base_s=0.05, max_s=0.2)


def settings_for(gw: FakeGateway, root: Path, **changes: Any) -> ConnectSettings:
    """Connector settings pointing at `gw`, with fast reconnects."""
    values: dict[str, Any] = {"url": gw.url, "user_id": USER, "api_key": KEY,
                              "allowed_paths": (root.resolve(),), "reconnect": FAST,
                              "bash_timeout": 5.0, "shutdown_grace": 5.0}
    return ConnectSettings(**{**values, **changes})


@asynccontextmanager
async def running(gw: FakeGateway, root: Path, **changes: Any) -> AsyncIterator[Connector]:
    """A connector serving `gw` until the block ends."""
    connector = Connector(settings_for(gw, root, **changes), environ={"PATH": "/usr/bin:/bin"})
    async with trio.open_nursery() as nursery:
        await nursery.start(connector.run)
        yield connector
        connector.request_stop(now=True)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An allowed directory with one file."""
    (tmp_path / "hello.txt").write_text("hello from the laptop\n")
    return tmp_path


async def test_registers_its_tools_then_answers_a_call(root):
    """The register lists the five built-in tools; a read_file call is answered."""
    async with open_fake_gateway() as gw, running(gw, root):
        with trio.fail_after(10):
            register = await gw.wait_registered()
            result = await gw.call("local_read_file", {"path": "hello.txt"})
    assert {t.name: t.read_only for t in register.tools} == {
        "local_read_file": True, "local_write_file": False, "local_list_dir": True,
        "local_search": True, "local_bash": False}
    assert gw.registers[0][0] == "ws"
    assert result.ok
    assert result.content["content"] == "hello from the laptop\n"


async def test_refusal_travels_as_a_result_with_its_rule(root):
    """A path outside the allowed paths is answered ok=false with the rule."""
    async with open_fake_gateway() as gw, running(gw, root):
        with trio.fail_after(10):
            result = await gw.call("local_read_file", {"path": "/etc/passwd"})
            unknown = await gw.call("local_nope", {})
    assert (result.ok, result.rule) == (False, "path.outside_allowed")
    assert "outside the allowed paths" in result.content["error"]
    assert (unknown.ok, unknown.rule) == (False, None)


async def test_reconnects_and_registers_again_after_the_gateway_drops(root):
    """A dropped WebSocket is opened again (after the backoff), registered, and serves."""
    async with open_fake_gateway() as gw, running(gw, root):
        with trio.fail_after(10):
            await gw.wait_registered()
            gw.drop()
            await gw.wait_registered(2)
            result = await gw.call("local_list_dir", {})
    assert gw.ws_opened == 2
    assert result.ok


async def test_a_result_finished_while_the_link_was_down_is_delivered_later(root):
    """A call outlives its link: the result leaves on the next one."""
    async with open_fake_gateway() as gw, running(gw, root):
        with trio.fail_after(10):
            await gw.wait_registered()
            call_id = gw.queue("local_bash", {"command": "sleep 0.5; echo late"})
            await trio.sleep(0.2)
            gw.drop()
            result = await gw.wait_result(call_id)
    assert result.ok
    assert result.content["output"] == "late\n"


@pytest.mark.parametrize("ws_mode", ["reject", "close"])
async def test_auto_falls_back_to_polling_when_the_websocket_is_refused(root, ws_mode):
    """`auto` polls when the upgrade is refused (404) or closed with 4000 (WebSocket off)."""
    async with open_fake_gateway(ws_mode) as gw, running(gw, root):
        with trio.fail_after(10):
            await gw.wait_registered()
            result = await gw.call("local_read_file", {"path": "hello.txt"})
    assert [link for link, _ in gw.registers] == ["poll"]
    assert result.ok


async def test_poll_transport_never_opens_the_websocket(root):
    """`--transport poll` registers and answers over HTTP only."""
    async with open_fake_gateway() as gw, running(gw, root, transport="poll"):
        with trio.fail_after(10):
            result = await gw.call("local_search", {"pattern": "laptop"})
    assert gw.ws_opened == 0
    assert [m["line"] for m in result.content["matches"]] == [1]


@pytest.mark.parametrize("transport", ["ws", "poll", "auto"])
async def test_a_refused_key_ends_the_connector(root, transport):
    """A gateway that refuses the key (1008 / 401) ends `run` with GatewayRefusedError;
    `auto` takes a 1008 as the refusal and does not poll."""
    async with open_fake_gateway() as gw:
        connector = Connector(settings_for(gw, root, api_key="wrong", transport=transport))
        with trio.fail_after(10), pytest.RaisesGroup(GatewayRefusedError, allow_unwrapped=True,
                                               flatten_subgroups=True):
            await connector.run()
    assert gw.polls_refused == (1 if transport == "poll" else 0)


async def test_ws_transport_keeps_retrying_a_gateway_with_the_websocket_off(root):
    """`--transport ws` against a 4000 close is not a refused key: it reconnects."""
    async with open_fake_gateway("close") as gw:
        connector = Connector(settings_for(gw, root, transport="ws"))
        with trio.move_on_after(1.5) as waited:
            await connector.run()
    assert waited.cancelled_caught  # still running, not GatewayRefusedError
    assert (gw.registers, gw.polls_refused) == ([], 0)


async def test_heartbeats_both_ways(root):
    """The connector answers the gateway's ping and sends its own."""
    async with open_fake_gateway() as gw, running(gw, root, ping_interval=0.1):
        with trio.fail_after(10):
            await gw.wait_registered()
            await eventually(lambda: gw.pongs >= 1 and gw.pings_from_connector >= 2)


async def test_an_answered_call_delivered_again_is_answered_again(root):
    """A redelivered call id gets the same result, without running twice."""
    async with open_fake_gateway() as gw, running(gw, root):
        with trio.fail_after(10):
            await gw.wait_registered()
            first = await gw.call("local_bash", {"command": "echo x >> count.txt"})
            gw.pending.append(gw.pending[0] if gw.pending else _same_call(first.call_id))
            gw.wake.set()
            await eventually(lambda: gw.result_counts[first.call_id] == 2)
    assert (root / "count.txt").read_text() == "x\n"


def _same_call(call_id: str) -> Any:
    from lynkr.tunnel import CallMessage

    return CallMessage(call_id, "local_bash", {"command": "echo x >> count.txt"}, 10.0)


async def test_stop_finishes_the_running_call_then_returns(root):
    """request_stop lets the running call finish and delivers its result."""
    async with open_fake_gateway() as gw:
        connector = Connector(settings_for(gw, root))
        async with trio.open_nursery() as nursery:
            await nursery.start(connector.run)
            await gw.wait_registered()
            call_id = gw.queue("local_bash", {"command": "sleep 0.5; echo finished"})
            await eventually(lambda: connector.running == 1)
            connector.request_stop()
            with trio.fail_after(10):
                await connector.stopped.wait()
        result = gw.results[call_id]
    assert (result.ok, result.content["output"]) == (True, "finished\n")


async def test_stop_now_reports_the_running_call_cancelled(root):
    """A second signal cancels the running call and reports it with its rule."""
    async with open_fake_gateway() as gw:
        connector = Connector(settings_for(gw, root))
        async with trio.open_nursery() as nursery:
            await nursery.start(connector.run)
            await gw.wait_registered()
            call_id = gw.queue("local_bash", {"command": "sleep 30"})
            await eventually(lambda: connector.running == 1)
            connector.request_stop(now=True)
            with trio.fail_after(10):
                await connector.stopped.wait()
        result = gw.results[call_id]
    assert (result.ok, result.rule) == (False, "connector.shutdown")


async def test_status_line_on_a_terminal(root):
    """A TTY sees one line rewritten in place: connected, with the tool count."""
    stream = io.StringIO()
    status = StatusLine(stream, tty=True)
    async with open_fake_gateway() as gw:
        connector = Connector(settings_for(gw, root), status=status)
        async with trio.open_nursery() as nursery:
            await nursery.start(connector.run)
            await gw.wait_registered()
            await trio.sleep(0.1)
            connector.request_stop(now=True)
    text = stream.getvalue()
    assert f"\r\x1b[Klynkr connect: connected to {gw.url} as {USER} (websocket) · 5 tools" \
        in text


def test_backoff_is_capped_and_jittered():
    """Delays double up to the cap, each between half and all of its step."""
    backoff = Backoff(base_s=1.0, max_s=8.0)
    for attempt, step in enumerate([1, 2, 4, 8, 8, 8]):
        delays = {backoff.delay(attempt) for _ in range(50)}
        assert all(step / 2 <= d <= step for d in delays)
        assert len(delays) > 1
