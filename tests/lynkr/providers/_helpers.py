"""Helpers shared by the provider tests: read SSE bytes back as (event, payload) pairs."""

from __future__ import annotations

import json
from typing import Any

from lynkr.providers import SSEParser


def sse_events(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Parse Anthropic SSE bytes into (event name, JSON payload) pairs."""
    parser = SSEParser()
    events = parser.feed(data)
    assert not parser.pending, "SSE output must end on an event boundary"
    return [(e.event, json.loads(e.data)) for e in events]


def openai_chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
                 **extra: Any) -> bytes:
    """One OpenAI streaming `data:` frame."""
    chunk: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk",
                             "choices": [{"index": 0, "delta": delta or {},
                                          "finish_reason": finish}]}
    chunk.update(extra)
    return f"data: {json.dumps(chunk)}\n\n".encode()


def assert_well_formed(events: list[tuple[str, dict[str, Any]]]) -> None:
    """Anthropic's stream grammar: one open block at a time, deltas only inside it."""
    names = [name for name, _ in events]
    assert names[0] == "message_start"
    open_index = None
    seen = -1
    for name, payload in events[1:]:
        if name == "content_block_start":
            assert open_index is None, "a block started while another was open"
            assert payload["index"] == seen + 1
            open_index = seen = payload["index"]
        elif name == "content_block_delta":
            assert payload["index"] == open_index, "a delta outside its open block"
        elif name == "content_block_stop":
            assert payload["index"] == open_index
            open_index = None
        elif name == "message_delta":
            assert open_index is None, "message_delta with a block still open"
    assert names[-1] == "message_delta"
