"""`lynkr.tunnel._connector_mcp`: a real local `mcp-server-time` behind the connector,
its tools registered as `mcp_time_…`, restarted (and registered again) after a crash."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest
import trio

from lynkr.tunnel._connector import Connector
from lynkr.tunnel._connector_mcp import load_manifest, tool_name
from tests.lynkr.tunnel.fake_gateway import open_fake_gateway
from tests.lynkr.tunnel.test_connector import settings_for

TIME_SERVER = Path(sys.executable).with_name("mcp-server-time")


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    """A .mcp.json with the time server."""
    path = tmp_path / ".mcp.json"
    path.write_text(json.dumps({"mcpServers": {"time": {
        "command": "mcp-server-time", "args": ["--local-timezone", "UTC"]}}}))
    return path


def test_tool_names_are_model_safe():
    """mcp_<server>_<tool>, with characters a tool name may not hold replaced."""
    assert tool_name("time", "get_current_time") == "mcp_time_get_current_time"
    assert tool_name("my.docs", "search v2") == "mcp_my_docs_search_v2"
    assert len(tool_name("s" * 40, "t" * 40)) == 64


def test_an_invalid_manifest_is_refused(tmp_path):
    """A manifest entry without a command is an error with its reason."""
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"mcpServers": {"x": {"args": []}}}))
    with pytest.raises(ValueError, match="command must be a non-empty string"):
        load_manifest(path)


@pytest.mark.skipif(not TIME_SERVER.exists(), reason="mcp-server-time is not installed")
async def test_local_time_server_answers_through_the_tunnel_and_restarts(tmp_path, manifest):
    """mcp_time_get_current_time is registered and answers; after the server is killed
    its tools leave, come back, and answer again."""
    async with open_fake_gateway() as gw:
        connector = Connector(settings_for(gw, tmp_path, mcp_manifest=manifest),
                              environ=dict(os.environ))
        async with trio.open_nursery() as nursery:
            await nursery.start(connector.run)
            with trio.fail_after(60):
                while not any(t.name == "mcp_time_get_current_time"
                              for _, r in gw.registers for t in r.tools):
                    await gw.wait_registered(len(gw.registers) + 1)
                result = await gw.call("mcp_time_get_current_time", {"timezone": "UTC"})
                assert result.ok, result.content
                answer = json.loads(result.content["content"][0]["text"])
                assert answer["timezone"] == "UTC"

                pid = connector.mcp.pid("time")
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
                seen = len(gw.registers)
                while not any(t.name.startswith("mcp_time_") for t in
                              (await gw.wait_registered(seen + 1)).tools):
                    seen = len(gw.registers)
                again = await gw.call("mcp_time_get_current_time", {"timezone": "UTC"})
            connector.request_stop(now=True)
    assert connector.mcp.restarts("time") >= 1
    assert again.ok
    without = [r for _, r in gw.registers[1:] if not any(
        t.name.startswith("mcp_") for t in r.tools)]
    assert without, "the crashed server's tools were withdrawn before it came back"
