"""Anthropic Messages request → OpenAI chat-completions request (a pure function).

`to_openai_request` maps every key Claude Code sends; each decision is deliberate:

- `system` (a string or text blocks) → one leading `system` message, blocks joined with a
  blank line. A mid-conversation `role: "system"` message stays a `system` message at
  its position.
- Text → text; images → `image_url` parts (base64 as a `data:` URL, URLs as they are).
  A user message made only of text becomes a plain string (older local servers accept
  nothing else).
- `tool_use` blocks → the assistant message's `tool_calls` (arguments as JSON text).
  `tool_result` blocks → `role: "tool"` messages placed right after the assistant turn,
  before any other content of the same user message. Images inside a tool result cannot
  ride in a tool message, so they move into a user message that follows the tool
  messages, introduced by a line naming the tool call. `is_error: true` becomes an
  `ERROR: ` prefix on the tool message text.
- Tools: client tools → `function` tools, their schema cleaned of keys strict backends
  reject (`clean_schema`). Anthropic server tools (a `type` and no `input_schema`, such
  as `web_search_20250305`) cannot run on these backends and are dropped.
- `tool_choice`: `auto` → `auto`, `any` → `required`, `tool` → the named function,
  `none` → `none`; `disable_parallel_tool_use` → `parallel_tool_calls: false`. Dropped
  when no tool is left.
- Thinking blocks (Claude Code sends them back verbatim) → the assistant message's
  `reasoning_content` only when `send_reasoning` is set (DeepSeek-style servers want it;
  OpenAI rejects it); otherwise dropped. `redacted_thinking` is always dropped. The
  request's `thinking` setting has no portable equivalent and is dropped.
- `output_config.format` (`json_schema`) → `response_format: {"type":"json_schema"}`;
  `output_config.effort` is dropped (only some reasoning models accept an effort).
- `stop_sequences` → `stop`; `temperature`, `top_p` pass through; `top_k` is dropped.
- `max_tokens` is clamped to `max_tokens_cap` when one is configured for the backend,
  and otherwise sent as the client asked — never silently lowered.
- `metadata` is dropped (its `user_id` holds device and account ids that a third-party
  backend has no business seeing); `context_management` and `cache_control` are
  Anthropic-only (OpenAI-compatible servers cache prompt prefixes on their own) and are
  dropped; `anthropic-beta` is a header and never reaches these backends.
- `stream: true` → `stream: true` with `stream_options.include_usage` so usage arrives.
- Unknown block types (e.g. `document`, `server_tool_use`) are dropped, except a text
  `document`, whose text is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from lynkr import _json
from lynkr.providers._translate import DEFAULT_DROPPED_SCHEMA_KEYS, clean_schema
from lynkr.providers._wire import AnthropicRequest, ChatMessage, ChatRequest, ChatToolCall

__all__ = ["to_openai_request"]

_PASSED_SAMPLING = ("temperature", "top_p")


def to_openai_request(
    request: AnthropicRequest,
    *,
    model: str,
    max_tokens_cap: int | None = None,
    send_reasoning: bool = False,
    dropped_schema_keys: frozenset[str] = DEFAULT_DROPPED_SCHEMA_KEYS,
) -> ChatRequest:
    """Translate a validated Anthropic request into an OpenAI chat-completions body.

    Args:
        request: the client's `/v1/messages` body (validated).
        model: the backend model to ask for (the mapped name).
        max_tokens_cap: the backend's configured maximum output tokens, if any.
        send_reasoning: send thinking back as `reasoning_content`.
        dropped_schema_keys: schema keys the backend rejects.

    Returns:
        The chat-completions body.
    """
    out: ChatRequest = {"model": model, "messages": _messages(request, send_reasoning)}
    max_tokens = request.get("max_tokens")
    if isinstance(max_tokens, int):
        out["max_tokens"] = min(max_tokens, max_tokens_cap) if max_tokens_cap else max_tokens
    for key in _PASSED_SAMPLING:
        if key in request:
            out[key] = request[key]  # type: ignore[literal-required]
    if request.get("stop_sequences"):
        out["stop"] = list(request["stop_sequences"])
    if request.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    tools = _tools(request.get("tools") or [], dropped_schema_keys)
    if tools:
        out["tools"] = tools
        _tool_choice(out, request.get("tool_choice"))
    response_format = _response_format(request.get("output_config"))
    if response_format:
        out["response_format"] = response_format
    return out


def _messages(request: AnthropicRequest, send_reasoning: bool) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    system = _text_of(request.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    for message in request.get("messages") or []:
        role = message.get("role")
        content = message.get("content")
        if role == "assistant":
            messages.append(_assistant(content, send_reasoning))
        elif role == "system":
            messages.append({"role": "system", "content": _text_of(content)})
        else:
            messages.extend(_user(content))
    return messages


def _text_of(content: object) -> str:
    """The text of a string or a list of blocks (non-text blocks ignored)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "\n\n".join(
        b["text"] for b in content
        if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
    )


def _assistant(content: object, send_reasoning: bool) -> ChatMessage:
    if not isinstance(content, list):
        return {"role": "assistant", "content": content if isinstance(content, str) else ""}
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[ChatToolCall] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block["text"])
        elif kind == "thinking":
            reasoning.append(block.get("thinking", ""))
        elif kind == "tool_use":
            calls.append(_tool_call(block))
    message: ChatMessage = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    elif message["content"] is None:
        message["content"] = ""
    if send_reasoning and any(reasoning):
        message["reasoning_content"] = "".join(reasoning)
    return message


def _tool_call(block: Any) -> ChatToolCall:
    arguments = _json.dumps_text(block.get("input") or {})
    return {
        "id": str(block.get("id", "")),
        "type": "function",
        "function": {"name": str(block.get("name", "")), "arguments": arguments},
    }


def _image_part(block: Mapping[str, Any]) -> dict[str, Any] | None:
    source = block.get("source")
    if not isinstance(source, dict):
        return None
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    elif source.get("type") == "url":
        url = str(source.get("url", ""))
    else:
        return None
    return {"type": "image_url", "image_url": {"url": url}}


def _user(content: object) -> list[ChatMessage]:
    """Tool messages first (they must follow the assistant turn), then one user message."""
    if not isinstance(content, list):
        return [{"role": "user", "content": content if isinstance(content, str) else ""}]
    tool_messages: list[ChatMessage] = []
    moved_images: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "tool_result":
            message, images = _tool_result(block)
            tool_messages.append(message)
            moved_images.extend(images)
        elif kind == "text":
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            part = _image_part(block)
            if part:
                parts.append(part)
        elif kind == "document":
            text = _document_text(block)
            if text:
                parts.append({"type": "text", "text": text})
    parts = moved_images + parts
    if not parts:
        return tool_messages
    return [*tool_messages, {"role": "user", "content": _compact(parts)}]


def _document_text(block: Any) -> str | None:
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "text":
        return str(source.get("data", ""))
    return None


def _compact(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if all(p["type"] == "text" for p in parts):
        return "\n\n".join(p["text"] for p in parts)
    return parts


def _tool_result(block: Any) -> tuple[ChatMessage, list[dict[str, Any]]]:
    call_id = str(block.get("tool_use_id", ""))
    content = block.get("content")
    images: list[dict[str, Any]] = []
    if isinstance(content, list):
        for item in content:
            if isinstance(item, dict) and item.get("type") == "image":
                part = _image_part(item)
                if part:
                    images.append(part)
    text = _text_of(content)
    if block.get("is_error"):
        text = f"ERROR: {text}"
    if images:
        text = text or "(see the image(s) in the next message)"
        images.insert(0, {"type": "text", "text": f"Image(s) returned by tool call {call_id}:"})
    return {"role": "tool", "tool_call_id": call_id, "content": text}, images


def _tools(tools: list[Any], dropped: frozenset[str]) -> list[dict[str, Any]]:
    out = []
    for tool in tools:
        if not isinstance(tool, dict) or "input_schema" not in tool:
            continue  # an Anthropic server tool: nothing an OpenAI backend can run
        schema = clean_schema(tool.get("input_schema") or {}, dropped)
        if not schema:
            schema = {"type": "object", "properties": {}}
        function: dict[str, Any] = {"name": tool.get("name", ""), "parameters": schema}
        if tool.get("description"):
            function["description"] = tool["description"]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(out: ChatRequest, choice: object) -> None:
    if not isinstance(choice, dict):
        return
    kind = choice.get("type")
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name", "")}}
    if choice.get("disable_parallel_tool_use") and kind != "none":
        out["parallel_tool_calls"] = False


def _response_format(config: object) -> dict[str, Any] | None:
    if not isinstance(config, dict):
        return None
    fmt = config.get("format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None
    schema = fmt.get("schema") or {}
    name = fmt.get("name") or "output"
    return {"type": "json_schema", "json_schema": cast(Any, {"name": name, "schema": schema})}
