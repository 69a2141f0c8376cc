"""The client's one message while the agent loop runs several model steps.

Each step's Anthropic SSE frames (translated, or passed through from an Anthropic
backend) go through `LoopFrames.feed`: the first step's `message_start` is the
message's; later steps' are dropped; a `tool_use` block naming a server tool is hidden
whole (start, deltas, stop); every other block is renumbered so the client sees one
gapless sequence of content blocks across steps; each step's `message_delta` and
`message_stop` are held back, because only the loop knows when the message ends.
`final` writes the one `message_delta` (the last step's stop reason, usage summed over
the steps) and `text_block` a block the loop adds itself (the step-limit notice).
Frames are passed through byte for byte when nothing in them changes.
"""

from __future__ import annotations

import json
from collections.abc import Container, Mapping
from typing import Any

from lynkr.providers import SSEParser, encode_sse

__all__ = ["LoopFrames"]

_DROPPED = frozenset({"message_delta", "message_stop"})


class LoopFrames:
    """Rewrites step frames into one message (see module docstring)."""

    __slots__ = ("_map", "_next", "_parser", "_server", "_started")

    def __init__(self, server: Container[str]) -> None:
        self._server = server
        self._parser = SSEParser()
        self._next = 0  # the client's index of the next visible block
        self._map: dict[int, int | None] = {}  # this step's index → client's (None: hidden)
        self._started = False

    def next_step(self) -> None:
        """A new model step begins: its block indexes start again at 0."""
        self._parser = SSEParser()
        self._map = {}

    def feed(self, data: bytes) -> bytes:
        """The client's frames for `data` (any split of the step's SSE bytes)."""
        if not data:
            return b""
        out: list[bytes] = []
        for event in self._parser.feed(data):
            name = event.event
            if name in _DROPPED or (name == "message_start" and self._started):
                continue
            if name == "message_start":
                self._started = True
                out.append(event.raw)
            elif name.startswith("content_block_"):
                frame = self._block(name, event.data, event.raw)
                if frame:
                    out.append(frame)
            else:  # ping, error
                out.append(event.raw)
        return b"".join(out)

    def _block(self, name: str, data: str, raw: bytes) -> bytes:
        payload: dict[str, Any] = json.loads(data)
        index = payload.get("index")
        if not isinstance(index, int):
            return raw
        if name == "content_block_start":
            block = payload.get("content_block")
            hidden = (isinstance(block, Mapping) and block.get("type") == "tool_use"
                      and block.get("name") in self._server)
            self._map[index] = None if hidden else self._next
            if not hidden:
                self._next += 1
        target = self._map.get(index, index)
        if target is None:
            return b""
        if target == index:
            return raw
        payload["index"] = target
        return encode_sse(name, payload)

    def text_block(self, text: str) -> bytes:
        """A whole text block the loop adds (after every block the client has seen)."""
        index = self._next
        self._next += 1
        return b"".join((
            encode_sse("content_block_start", {"type": "content_block_start", "index": index,
                                               "content_block": {"type": "text", "text": ""}}),
            encode_sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                               "delta": {"type": "text_delta", "text": text}}),
            encode_sse("content_block_stop", {"type": "content_block_stop", "index": index}),
        ))

    def final(self, stop_reason: str | None, stop_sequence: str | None,
              usage: Mapping[str, Any]) -> bytes:
        """The message's one `message_delta` (usage summed over the steps)."""
        return encode_sse("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
            "usage": dict(usage)})
