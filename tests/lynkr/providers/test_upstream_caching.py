"""Backend-side prompt caching is kept: markers reach Anthropic-dialect backends, OpenAI cached
tokens reach the client as cache reads (over real HTTP, through the gateway)."""

from __future__ import annotations

import json

import pytest

from lynkr.providers import SSEParser
from tests.lynkr.http.gateway import running_gateway

EPHEMERAL = {"type": "ephemeral"}
MARKED = {
    "model": "claude-sonnet-4-6", "max_tokens": 64,
    "system": [{"type": "text", "text": "You are terse.", "cache_control": EPHEMERAL}],
    "tools": [{"name": "Read", "description": "read a file", "cache_control": EPHEMERAL,
               "input_schema": {"type": "object", "properties": {"p": {"type": "string"}}}}],
    "messages": [{"role": "user", "content": [
        {"type": "text", "text": "hello", "cache_control": EPHEMERAL}]}],
}
CACHED_USAGE = {"responses": [{"usage": {"prompt_tokens": 1000, "cached_tokens": 800},
                               "times": 2}]}


@pytest.mark.parametrize("provider", ["anthropic", "azure-anthropic"])
@pytest.mark.parametrize("stream", [False, True])
async def test_cache_control_markers_reach_anthropic_dialect_backends(tmp_path, provider,
                                                                      stream):
    """System, tool and message markers arrive at the backend exactly as the client sent them."""
    async with running_gateway(tmp_path, provider=provider) as gw:
        response = await gw.post("/v1/messages", {**MARKED, "stream": stream})
        assert response.status_code == 200
        received = gw.fake.requests[-1]["body"]
    assert received["system"] == MARKED["system"]
    assert received["tools"] == MARKED["tools"]
    assert received["messages"] == MARKED["messages"]


async def test_openai_cached_tokens_are_cache_reads_in_a_json_answer(tmp_path):
    """prompt_tokens_details.cached_tokens → cache_read_input_tokens; input_tokens the rest."""
    async with running_gateway(tmp_path, CACHED_USAGE) as gw:
        body = (await gw.post("/v1/messages", MARKED)).json()
    assert body["usage"]["cache_read_input_tokens"] == 800
    assert body["usage"]["input_tokens"] == 200


async def test_openai_cached_tokens_are_cache_reads_in_a_stream(tmp_path):
    """The streamed answer's final usage carries the cached tokens as cache reads."""
    async with running_gateway(tmp_path, CACHED_USAGE) as gw:
        text = (await gw.post("/v1/messages", {**MARKED, "stream": True})).text
    deltas = [json.loads(e.data) for e in SSEParser().feed(text.encode())
              if e.event == "message_delta"]
    assert deltas[-1]["usage"]["cache_read_input_tokens"] == 800
    assert deltas[-1]["usage"]["input_tokens"] == 200
