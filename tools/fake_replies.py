"""Reply builders for the scripted fake upstream (`tools/fake_upstream.py`).

A *step* is one scripted answer (a JSON object); these functions turn a step into
OpenAI chat-completions or Anthropic Messages bodies and stream frames. Step keys:

- `text` (str; default: an echo of the last user message), `reasoning` (str),
  `tool_calls` (list of `{"name", "arguments": object or JSON text, "id"?}`),
  `chunks` (how many pieces the text is streamed in), `interleave` (bool: stream the
  argument pieces of parallel tool calls alternating), `finish_reason` (override),
  `usage` (`{"prompt_tokens", "completion_tokens", "cached_tokens"}`).
- Recorded answers, replayed verbatim: `raw_chunks` (a streaming answer: each item a
  JSON payload sent as a `data:` line, a string starting with `:` sent as an SSE
  comment line, or `"[DONE]"`) and `raw_body` (a non-streaming JSON body).
- Faults: `status` (answer this HTTP status with the format's error body; `retry_after`,
  `message`), `fault`: `cut` (drop the connection mid-tool-call, or mid-text),
  `malformed` (a data line that is not JSON), `no_finish` (end the stream cleanly
  without a finish reason / `message_stop`). `delay` (seconds before the first byte),
  `chunk_delay` (seconds between stream frames), `times` (use the step N times).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "anthropic_error",
    "anthropic_frames",
    "anthropic_message",
    "databricks_error",
    "echo_text",
    "openai_completion",
    "openai_error",
    "openai_frames",
    "raw_frames",
    "split_text",
]

_OPENAI_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                       429: "rate_limit_error"}
_ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                          429: "rate_limit_error", 503: "overloaded_error",
                          529: "overloaded_error"}
_DATABRICKS_CODES = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 429: "REQUEST_LIMIT_EXCEEDED",
                     503: "TEMPORARILY_UNAVAILABLE"}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def echo_text(body: Any) -> str:
    """The canned default reply: the last user message's text, echoed."""
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in reversed(messages or []):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(str(b.get("text", "")) for b in content
                               if isinstance(b, dict) and b.get("type") == "text")
        if isinstance(content, str) and content.strip():
            return f"You said: {content.strip()[:200]}"
    return "OK"


def split_text(text: str, pieces: int) -> list[str]:
    """`text` in `pieces` nearly equal parts (fewer when the text is shorter)."""
    pieces = max(1, min(pieces, len(text) or 1))
    size, extra = divmod(len(text), pieces)
    out, pos = [], 0
    for i in range(pieces):
        step = size + (1 if i < extra else 0)
        out.append(text[pos:pos + step])
        pos += step
    return [p for p in out if p] or [text]


def _calls(step: dict[str, Any]) -> list[dict[str, Any]]:
    calls = []
    for i, call in enumerate(step.get("tool_calls") or []):
        arguments = call.get("arguments", {})
        calls.append({"id": call.get("id") or f"call_fake{i}", "name": call["name"],
                      "arguments": arguments if isinstance(arguments, str) else _dumps(arguments)})
    return calls


def _usage(step: dict[str, Any], default_out: int) -> dict[str, int]:
    usage = step.get("usage") or {}
    return {"prompt_tokens": int(usage.get("prompt_tokens", 12)),
            "completion_tokens": int(usage.get("completion_tokens", default_out)),
            "cached_tokens": int(usage.get("cached_tokens", 0))}


def _finish(step: dict[str, Any]) -> str:
    return str(step.get("finish_reason") or ("tool_calls" if step.get("tool_calls") else "stop"))


def _openai_usage(u: dict[str, int]) -> dict[str, Any]:
    return {"prompt_tokens": u["prompt_tokens"], "completion_tokens": u["completion_tokens"],
            "total_tokens": u["prompt_tokens"] + u["completion_tokens"],
            "prompt_tokens_details": {"cached_tokens": u["cached_tokens"]}}


def openai_completion(step: dict[str, Any], text: str, model: str) -> dict[str, Any]:
    """A non-streaming chat completion for `step`."""
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if step.get("reasoning"):
        message["reasoning_content"] = step["reasoning"]
    calls = _calls(step)
    if calls:
        message["tool_calls"] = [{"id": c["id"], "type": "function",
                                  "function": {"name": c["name"], "arguments": c["arguments"]}}
                                 for c in calls]
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": _finish(step)}],
            "usage": _openai_usage(_usage(step, max(1, len(text) // 4)))}


def _tool_deltas(step: dict[str, Any]) -> list[dict[str, Any]]:
    calls = _calls(step)
    firsts = [{"index": i, "id": c["id"], "type": "function",
               "function": {"name": c["name"], "arguments": ""}} for i, c in enumerate(calls)]
    pieces = [split_text(c["arguments"], 3) for c in calls]
    rest: list[dict[str, Any]] = []
    if step.get("interleave"):
        # all calls open first, then their argument pieces alternate
        for round_ in range(max((len(p) for p in pieces), default=0)):
            rest += [{"index": i, "function": {"arguments": p[round_]}}
                     for i, p in enumerate(pieces) if round_ < len(p)]
        return firsts + rest
    for i, first in enumerate(firsts):
        rest.append(first)
        rest += [{"index": i, "function": {"arguments": piece}} for piece in pieces[i]]
    return rest


def openai_frames(step: dict[str, Any], text: str, model: str) -> list[bytes]:
    """The `data:` frames of a streaming chat completion for `step` (faults applied)."""
    def frame(delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
                 "model": model, "choices": [{"index": 0, "delta": delta,
                                              "finish_reason": finish}]}
        return f"data: {_dumps(chunk)}\n\n".encode()

    frames = [frame({"role": "assistant", "content": ""})]
    pieces = split_text(step["reasoning"], step.get("chunks", 4)) if step.get("reasoning") else []
    frames += [frame({"reasoning_content": p}) for p in pieces]
    if text:
        frames += [frame({"content": p}) for p in split_text(text, int(step.get("chunks", 10)))]
    frames += [frame({"tool_calls": [d]}) for d in _tool_deltas(step)]
    fault = step.get("fault")
    if fault == "cut":
        return [*frames[:max(2, len(frames) - 2)], b'data: {"id":"chatcmpl-fake","cho']
    if fault == "malformed":
        frames.insert(len(frames) // 2 + 1, b"data: {this is not json}\n\n")
    if fault == "no_finish":
        return frames
    frames.append(frame({}, _finish(step)))
    usage = _openai_usage(_usage(step, len(frames)))
    frames.append(f"data: {_dumps({'id': 'chatcmpl-fake', 'choices': [], 'usage': usage})}\n\n"
                  .encode())
    frames.append(b"data: [DONE]\n\n")
    return frames


def raw_frames(chunks: list[Any]) -> list[bytes]:
    """SSE frames for recorded stream items (see the module docstring's `raw_chunks`)."""
    frames = []
    for chunk in chunks:
        if isinstance(chunk, str) and chunk.startswith(":"):
            frames.append(f"{chunk}\n\n".encode())
        elif isinstance(chunk, str):
            frames.append(f"data: {chunk}\n\n".encode())
        else:
            frames.append(f"data: {_dumps(chunk)}\n\n".encode())
    return frames


def openai_error(status: int, message: str) -> dict[str, Any]:
    """OpenAI's error body."""
    kind = _OPENAI_ERROR_TYPES.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "code": str(status)}}


def databricks_error(status: int, message: str) -> dict[str, Any]:
    """Databricks' error body (`error_code`, `message`)."""
    return {"error_code": _DATABRICKS_CODES.get(status, "INTERNAL_ERROR"), "message": message}


def anthropic_error(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error body."""
    kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def anthropic_message(step: dict[str, Any], text: str, model: str) -> dict[str, Any]:
    """A non-streaming Anthropic Messages response for `step`."""
    content: list[dict[str, Any]] = []
    if step.get("reasoning"):
        content.append({"type": "thinking", "thinking": step["reasoning"],
                        "signature": "fake-signature"})
    if text:
        content.append({"type": "text", "text": text})
    content += [{"type": "tool_use", "id": c["id"].replace("call_", "toolu_"), "name": c["name"],
                 "input": json.loads(c["arguments"] or "{}")} for c in _calls(step)]
    stop = {"tool_calls": "tool_use", "length": "max_tokens"}.get(_finish(step), "end_turn")
    u = _usage(step, max(1, len(text) // 4))
    usage = {"input_tokens": u["prompt_tokens"] - u["cached_tokens"],
             "output_tokens": u["completion_tokens"],
             "cache_read_input_tokens": u["cached_tokens"], "cache_creation_input_tokens": 0}
    return {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": None, "usage": usage}


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {_dumps(data)}\n\n".encode()


def _block_frames(index: int, block: dict[str, Any], chunks: int) -> list[bytes]:
    kind = block["type"]
    if kind == "text":
        start, key, delta_type = {"type": "text", "text": ""}, "text", "text_delta"
        pieces = split_text(block["text"], chunks)
    elif kind == "thinking":
        start, key, delta_type = {"type": "thinking", "thinking": "", "signature": ""}, \
            "thinking", "thinking_delta"
        pieces = split_text(block["thinking"], chunks)
    else:
        start = {**block, "input": {}}
        key, delta_type = "partial_json", "input_json_delta"
        pieces = split_text(_dumps(block["input"]), 3)
    frames = [_sse("content_block_start",
                   {"type": "content_block_start", "index": index, "content_block": start})]
    frames += [_sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                            "delta": {"type": delta_type, key: p}})
               for p in pieces]
    if kind == "thinking":
        frames.append(_sse("content_block_delta", {"type": "content_block_delta", "index": index,
                      "delta": {"type": "signature_delta", "signature": block["signature"]}}))
    frames.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
    return frames


def anthropic_frames(step: dict[str, Any], text: str, model: str) -> list[bytes]:
    """The SSE frames of a streaming Anthropic response for `step` (faults applied)."""
    message = anthropic_message(step, text, model)
    start = {**message, "content": [], "stop_reason": None,
             "usage": {**message["usage"], "output_tokens": 1}}
    frames = [_sse("message_start", {"type": "message_start", "message": start}),
              _sse("ping", {"type": "ping"})]
    for index, block in enumerate(message["content"]):
        frames += _block_frames(index, block, int(step.get("chunks", 10)))
    fault = step.get("fault")
    if fault == "cut":
        return [*frames[:max(3, len(frames) - 2)], b'event: content_block_delta\ndata: {"ty']
    if fault == "malformed":
        frames.insert(len(frames) // 2 + 1, b"event: content_block_delta\ndata: {nope\n\n")
    if fault == "no_finish":
        return frames
    frames.append(_sse("message_delta", {
        "type": "message_delta", "delta": {"stop_reason": message["stop_reason"],
                                           "stop_sequence": None},
        "usage": {"output_tokens": message["usage"]["output_tokens"]}}))
    frames.append(_sse("message_stop", {"type": "message_stop"}))
    return frames
