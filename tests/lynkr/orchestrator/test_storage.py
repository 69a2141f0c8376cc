"""Storage cost: a 20-turn Claude-Code-like session stores < 15 % of the request bytes.

The session resends a ~20 KB system prompt, ~70 KB of tool definitions and the whole
growing history on every turn, like Claude Code does. System blocks, the tool list and
each message are content-addressed blobs, so each is stored once. Measured: event
payloads + metadata + hashes, plus blob bytes as stored, over the request bytes received.
"""

from __future__ import annotations

import json
import random

from tests.lynkr.http.gateway import running_gateway

WORDS = ["the", "file", "function", "test", "value", "error", "return", "class", "module",
         "import", "state", "event", "stream", "session", "request", "response", "tool",
         "result", "message", "system", "prompt", "model", "token", "cache", "index", "query",
         "path", "write", "read", "edit", "commit", "branch", "merge", "review"]


def prose(rng: random.Random, size: int) -> str:
    """About `size` characters of word salad (compresses like prose, not like repeats)."""
    out: list[str] = []
    total = 0
    while total < size:
        word = rng.choice(WORDS) + (str(rng.randint(0, 999)) if rng.random() < 0.2 else "")
        out.append(word)
        total += len(word) + 1
    return " ".join(out)


def claude_code_like(rng: random.Random) -> tuple[list, list]:
    """A ~20 KB system (3 blocks) and ~70 KB of tools (24 schemas with `$schema`)."""
    system = [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1; cch=1;"},
              {"type": "text", "text": "You are Claude Code, Anthropic's official CLI."},
              {"type": "text", "text": prose(rng, 20_000), "cache_control": {"type": "ephemeral"}}]
    tools = [{"name": f"Tool{i}", "description": prose(rng, 2_200), "input_schema": {
        "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
        "additionalProperties": False,
        "properties": {f"arg{j}": {"type": "string", "description": prose(rng, 120)}
                       for j in range(4)}}} for i in range(24)]
    return system, tools


async def test_a_20_turn_session_stores_under_15_percent_of_request_bytes(tmp_path):
    """Blob dedup keeps storage below 15 % of what the client sent (ratio printed)."""
    rng = random.Random(7)
    system, tools = claude_code_like(rng)
    assert 18_000 < len(json.dumps(system)) < 24_000
    assert 65_000 < len(json.dumps(tools)) < 80_000
    history: list[dict] = []
    received = 0
    async with running_gateway(tmp_path, {"responses": [{"text": prose(rng, 600)}] * 20}) as gw:
        for turn in range(20):
            history.append({"role": "user", "content": prose(rng, 1_500)})
            body = {"model": "claude-sonnet-4-6", "max_tokens": 32000, "system": system,
                    "tools": tools, "messages": history, "stream": turn % 2 == 0,
                    "metadata": {"user_id": json.dumps({"session_id": "storage"})}}
            data = json.dumps(body).encode()
            received += len(data)
            response = await gw.client.post(gw.url + "/v1/messages", content=data)
            assert response.status_code == 200
            history.append({"role": "assistant", "content": [
                {"type": "text", "text": prose(rng, 600)}]})
        recorder = gw.system.recorder
        stored = recorder.log_bytes() + recorder.blob_stats()[1]
    ratio = stored / received
    print(f"\n20-turn session: received {received} B, stored {stored} B, ratio {ratio:.2%}")
    assert received > 20 * 90_000
    assert ratio < 0.15
