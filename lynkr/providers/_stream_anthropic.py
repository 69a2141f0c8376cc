"""Anthropic SSE pass-through: forward an upstream stream untouched while reading it.

For Azure-hosted Anthropic and Anthropic-native upstreams no translation is needed.
`AnthropicStreamAssembler.feed` returns each complete upstream event's exact bytes
(at most one event of delay, no re-encoding) and assembles the final message from
the events as they pass. `message_stop` is held back in `stop_frame` so the caller can
commit the turn first (acknowledged means durable).

A stream is complete only when `message_stop` arrived after a `message_start`. An
upstream `error` event is forwarded as it is and ends the stream as failed with its
type. A malformed event (data that is not JSON, a delta for a block that was never
started) is not forwarded: an `api_error` SSE event replaces it. A stream that ends
before `message_stop` (cut, or ended early) gets an `api_error` event, which makes
Claude Code resend without streaming, never a clean-looking end.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from lynkr.providers._sse import SSEEvent, encode_sse
from lynkr.providers._stream_reader import MESSAGE_STOP_FRAME, StreamReader, error_frame
from lynkr.providers._wire import AnthropicResponse, StreamOutcome, Usage

__all__ = ["AnthropicStreamAssembler", "encode_message_stream"]


class _MalformedError(Exception):
    """An upstream event that does not fit the Messages stream protocol."""


class AnthropicStreamAssembler(StreamReader):
    """Read an Anthropic SSE stream in passing; assemble its final message."""

    def __init__(self) -> None:
        """Start with nothing received."""
        super().__init__()
        self._message: dict[str, Any] | None = None
        self._json_parts: dict[int, list[str]] = {}
        self._events = 0

    # `feed` returns each complete upstream event's own bytes, to be forwarded as they
    # are; `end` fails the stream unless `message_stop` was seen (see `StreamReader`).

    def _on_end(self, out: list[bytes]) -> None:
        self._fail_unfinished(out, "ended before message_stop")

    def _fail(self, out: list[bytes], error_type: str, message: str, forwarded: bool = False
              ) -> None:
        if not forwarded:
            out.append(error_frame(error_type, message))
            self._events += 1
        self._outcome = StreamOutcome(complete=False, error_type=error_type,
                                      error_message=message, raw=bytes(self._raw),
                                      events=self._events, usage=self._usage())

    def _usage(self) -> Usage:
        usage = (self._message or {}).get("usage") or {}
        return Usage(**{k: v for k, v in usage.items() if k in Usage.__slots__
                        and isinstance(v, int)})

    def _on_event(self, event: SSEEvent, out: list[bytes]) -> None:
        try:
            self._read_event(event, out)
        except _MalformedError as exc:
            self._fail(out, "api_error", f"upstream sent a malformed stream event: {exc}")

    def _read_event(self, event: SSEEvent, out: list[bytes]) -> None:
        try:
            payload = json.loads(event.data)
        except ValueError as exc:
            raise _MalformedError("data is not JSON") from exc
        if not isinstance(payload, dict):
            raise _MalformedError("data is not an object")
        kind = payload.get("type", event.event)
        if kind == "error":
            raw_error = payload.get("error")
            error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
            out.append(event.raw)
            self._events += 1
            self._fail(out, str(error.get("type") or "api_error"),
                       str(error.get("message") or "upstream error"), forwarded=True)
            return
        if kind == "message_stop":
            self._finish(event)
            return
        self._apply(kind, payload)
        out.append(event.raw)
        self._events += 1

    def _apply(self, kind: str, payload: dict[str, Any]) -> None:
        if kind == "message_start":
            message = payload.get("message")
            if not isinstance(message, dict):
                raise _MalformedError("message_start without a message")
            self._message = copy.deepcopy(message)
            self._message.setdefault("content", [])
            return
        if kind == "ping":
            return
        if self._message is None:
            raise _MalformedError(f"{kind} before message_start")
        if kind == "content_block_start":
            self._block_start(payload)
        elif kind == "content_block_delta":
            self._block_delta(payload)
        elif kind == "content_block_stop":
            self._block_stop(payload)
        elif kind == "message_delta":
            delta = payload.get("delta") or {}
            self._message.update({k: v for k, v in delta.items()
                                  if k in ("stop_reason", "stop_sequence")})
            usage = payload.get("usage") or {}
            self._message.setdefault("usage", {}).update(
                {k: v for k, v in usage.items() if v is not None})

    def _content(self) -> list[dict[str, Any]]:
        assert self._message is not None
        content: list[dict[str, Any]] = self._message["content"]
        return content

    def _block_at(self, payload: dict[str, Any]) -> dict[str, Any]:
        index = payload.get("index")
        content = self._content()
        if not isinstance(index, int) or not 0 <= index < len(content):
            raise _MalformedError(f"no content block at index {index!r}")
        return content[index]

    def _block_start(self, payload: dict[str, Any]) -> None:
        block = payload.get("content_block")
        if not isinstance(block, dict) or payload.get("index") != len(self._content()):
            raise _MalformedError("content_block_start out of order")
        self._content().append(copy.deepcopy(block))
        if block.get("type") in ("tool_use", "server_tool_use"):
            self._json_parts[payload["index"]] = []

    def _block_delta(self, payload: dict[str, Any]) -> None:
        block = self._block_at(payload)
        delta = payload.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            block["text"] = block.get("text", "") + str(delta.get("text", ""))
        elif kind == "input_json_delta":
            self._json_parts.setdefault(payload["index"], []).append(
                str(delta.get("partial_json", "")))
        elif kind == "thinking_delta":
            block["thinking"] = block.get("thinking", "") + str(delta.get("thinking", ""))
        elif kind == "signature_delta":
            block["signature"] = block.get("signature", "") + str(delta.get("signature", ""))
        elif kind == "citations_delta":
            block.setdefault("citations", []).append(delta.get("citation"))

    def _block_stop(self, payload: dict[str, Any]) -> None:
        block = self._block_at(payload)
        parts = self._json_parts.pop(payload["index"], None)
        if parts is not None:
            text = "".join(parts)
            try:
                block["input"] = json.loads(text) if text.strip() else block.get("input", {})
            except ValueError as exc:
                raise _MalformedError("tool input is not valid JSON") from exc

    def _finish(self, event: SSEEvent) -> None:
        if self._message is None:
            raise _MalformedError("message_stop before message_start")
        if self._json_parts:
            raise _MalformedError("message_stop with a tool_use block still open")
        self.stop_frame = event.raw
        message: AnthropicResponse = self._message  # type: ignore[assignment]
        self._outcome = StreamOutcome(complete=True, message=message, raw=bytes(self._raw),
                                      events=self._events + 1, usage=self._usage())


def _block_events(index: int, block: dict[str, Any]) -> list[bytes]:
    kind = block.get("type")
    if kind == "text":
        start: dict[str, Any] = {**block, "text": ""}
        deltas = [{"type": "text_delta", "text": block.get("text", "")}]
    elif kind == "thinking":
        start = {**block, "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": block.get("thinking", "")}]
        if block.get("signature"):
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind in ("tool_use", "server_tool_use"):
        start = {**block, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": json.dumps(
            block.get("input", {}), separators=(",", ":"), ensure_ascii=False)}]
    else:  # redacted thinking and anything else arrive whole in their start event
        start, deltas = block, []
    frames = [encode_sse("content_block_start", {"type": "content_block_start", "index": index,
                                                  "content_block": start})]
    frames += [encode_sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                  "delta": d}) for d in deltas]
    frames.append(encode_sse("content_block_stop", {"type": "content_block_stop",
                                                    "index": index}))
    return frames


def encode_message_stream(message: AnthropicResponse) -> tuple[bytes, bytes]:
    """A complete message as an Anthropic SSE stream (for cached or replayed answers).

    Returns:
        The stream up to and including `message_delta`, and the `message_stop` frame to
        send once the turn is committed.
    """
    usage = dict(message.get("usage") or {})
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {**usage, "output_tokens": 0}}
    frames = [encode_sse("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message.get("content") or []):
        frames += _block_events(index, dict(block))
    frames.append(encode_sse("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": message.get("stop_reason"),
                  "stop_sequence": message.get("stop_sequence")},
        "usage": {"output_tokens": usage.get("output_tokens", 0)}}))
    return b"".join(frames), MESSAGE_STOP_FRAME
