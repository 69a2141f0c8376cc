"""The official `anthropic` Python SDK parses every Lynkr response, streaming and not."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import anthropic
import pytest
import trio

from tests.lynkr.http.gateway import running_gateway

TOOL = {"name": "Bash", "description": "run a command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}
TOOL_STEP = {"tool_calls": [{"name": "Bash", "arguments": {"command": "ls"}},
                            {"name": "Bash", "arguments": {"command": "pwd"}}],
             "interleave": True}


def _client(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key="anything", max_retries=0, timeout=20)


# Each helper closes its client: an unclosed one keeps a pooled keep-alive socket that the
# garbage collector later reports (as an unraisable ResourceWarning) in whichever test runs.
def _create(url: str, **kwargs):
    with _client(url) as client:
        return client.messages.create(model="claude-sonnet-4-6", max_tokens=100,
                                      messages=[{"role": "user", "content": "hi"}], **kwargs)


def _stream(url: str, **kwargs):
    with _client(url) as client, client.messages.stream(
            model="claude-sonnet-4-6", max_tokens=100,
            messages=[{"role": "user", "content": "hi"}], **kwargs) as stream:
        texts = list(stream.text_stream)
        return texts, stream.get_final_message()


@pytest.mark.parametrize("provider", ["openai", "databricks", "anthropic", "azure-anthropic"])
async def test_sdk_parses_a_non_streaming_answer(tmp_path, provider):
    """`messages.create` returns a typed Message from every backend kind."""
    async with running_gateway(tmp_path, provider=provider) as gw:
        message = await trio.to_thread.run_sync(_create, gw.url)
    assert message.content[0].text == "You said: hi"
    assert message.model == "claude-sonnet-4-6"
    assert message.stop_reason == "end_turn"


@pytest.mark.parametrize("provider", ["openai", "databricks", "anthropic", "azure-anthropic"])
async def test_sdk_parses_a_stream(tmp_path, provider):
    """`messages.stream` yields the text and a final message from every backend kind."""
    async with running_gateway(tmp_path, provider=provider) as gw:
        texts, final = await trio.to_thread.run_sync(_stream, gw.url)
    assert "".join(texts) == "You said: hi"
    assert final.usage.output_tokens > 0


async def test_sdk_parses_interleaved_parallel_tool_calls_in_a_stream(tmp_path):
    """Interleaved parallel tool calls arrive as two complete tool_use blocks."""
    async with running_gateway(tmp_path, {"responses": [TOOL_STEP]}) as gw:
        _, final = await trio.to_thread.run_sync(lambda: _stream(gw.url, tools=[TOOL]))
    calls = [block.input for block in final.content if block.type == "tool_use"]
    assert calls == [{"command": "ls"}, {"command": "pwd"}]
    assert final.stop_reason == "tool_use"


async def test_sdk_raises_its_typed_errors_for_gateway_errors(tmp_path):
    """A 429 from upstream reaches the SDK as RateLimitError with our message."""
    script = {"responses": [{"status": 429, "retry_after": 60}]}
    async with running_gateway(tmp_path, script) as gw:
        with pytest.raises(anthropic.RateLimitError):
            await trio.to_thread.run_sync(_create, gw.url)


def _open_connections_to(port: int) -> int:
    """How many of this process's TCP sockets are connected to 127.0.0.1:`port`."""
    ours = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            ours.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue  # closed while we looked
    count = 0
    for row in Path("/proc/self/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        remote_port = int(fields[2].split(":")[1], 16)
        count += remote_port == port and f"socket:[{fields[9]}]" in ours
    return count


async def test_sdk_helpers_close_their_connections(tmp_path):
    """No pooled socket outlives a helper (the garbage collector would report it later)."""
    async with running_gateway(tmp_path) as gw:
        port = urlsplit(gw.url).port
        await trio.to_thread.run_sync(_create, gw.url)
        await trio.to_thread.run_sync(_stream, gw.url)
        assert _open_connections_to(port) == 0
