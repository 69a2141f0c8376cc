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
- Thinking blocks (Claude Code sends them back verbatim, and extended thinking with tool
  use needs them): a **signed** block goes back in the shape Databricks documents for
  Claude — a `{"type":"reasoning","summary":[{"type":"summary_text","text","signature"}]}`
  part at its place in the assistant message's content list (`redacted_thinking` as a
  `summary_encrypted_text` item) — the only chat-completions shape that carries a
  signature, so only a backend that signed it ever sees it. An unsigned block (reasoning
  that came as `reasoning_content`/`reasoning`) is dropped, or sent as the message's
  `reasoning_content` with `reasoning="reasoning_content"` (DeepSeek-style servers;
  OpenAI rejects the field); `reasoning="off"` drops every thinking block. The
  request's `thinking` setting has no portable equivalent and is dropped here
  (the Databricks adapter passes it to Claude endpoints).
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
- Other client blocks, never dropped silently: a text `document` (or one whose source
  is a list of text blocks) → text, titled; a PDF `document` (base64) → a `file` part
  when the backend takes them (`pdf_files`), else refused; `search_result` → text that
  names its title and source. Blocks with no faithful equivalent here
  (`server_tool_use`, `web_search_tool_result`, `container_upload`, URL or file-id
  documents, and any type Lynkr does not know) are refused with a 400
  `invalid_request_error` naming the block type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, cast

from lynkr import _json
from lynkr.errors import InvalidRequestError
from lynkr.providers._translate import DEFAULT_DROPPED_SCHEMA_KEYS, clean_schema
from lynkr.providers._wire import AnthropicRequest, ChatMessage, ChatRequest, ChatToolCall

__all__ = ["to_openai_request"]

_PASSED_SAMPLING = ("temperature", "top_p")
_UNSUPPORTED = ("server_tool_use", "web_search_tool_result", "web_fetch_tool_result",
                "code_execution_tool_result", "container_upload", "mcp_tool_use",
                "mcp_tool_result")


class _Options(NamedTuple):
    reasoning: str
    pdf_files: bool


def _refuse(kind: object, where: str) -> InvalidRequestError:
    if kind in _UNSUPPORTED:
        why = "it belongs to a tool hosted by Anthropic, which this backend cannot run"
    else:
        why = "this backend has no faithful equivalent for it"
    return InvalidRequestError(f"{where} holds a {kind!r} block that cannot be sent to an "
                               f"OpenAI-compatible backend: {why}")


def to_openai_request(
    request: AnthropicRequest,
    *,
    model: str,
    max_tokens_cap: int | None = None,
    reasoning: str = "auto",
    pdf_files: bool = True,
    dropped_schema_keys: frozenset[str] = DEFAULT_DROPPED_SCHEMA_KEYS,
) -> ChatRequest:
    """Translate a validated Anthropic request into an OpenAI chat-completions body.

    Args:
        request: the client's `/v1/messages` body (validated).
        model: the backend model to ask for (the mapped name).
        max_tokens_cap: the backend's configured maximum output tokens, if any.
        reasoning: how thinking blocks go back: `auto`, `reasoning_content` or `off`
            (module docstring).
        pdf_files: the backend takes PDF documents as `file` parts.
        dropped_schema_keys: schema keys the backend rejects.

    Returns:
        The chat-completions body.

    Raises:
        InvalidRequestError: a block has no faithful equivalent for this backend.
    """
    out: ChatRequest = {"model": model,
                        "messages": _messages(request, _Options(reasoning, pdf_files))}
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


def _messages(request: AnthropicRequest, options: _Options) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    system = _text_of(request.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    for message in request.get("messages") or []:
        role = message.get("role")
        content = message.get("content")
        if role == "assistant":
            messages.append(_assistant(content, options.reasoning))
        elif role == "system":
            messages.append({"role": "system", "content": _text_of(content)})
        else:
            messages.extend(_user(content, options))
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


def _assistant(content: object, reasoning_mode: str) -> ChatMessage:
    if not isinstance(content, list):
        return {"role": "assistant", "content": content if isinstance(content, str) else ""}
    texts: list[str] = []
    signed: list[dict[str, Any]] = []  # reasoning parts, in order, before the text
    unsigned: list[str] = []
    calls: list[ChatToolCall] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block["text"])
        elif kind == "tool_use":
            calls.append(_tool_call(block))
        elif kind in ("thinking", "redacted_thinking"):
            part = _reasoning_part(block)
            if part is not None:
                signed.append(part)
            elif kind == "thinking":
                unsigned.append(str(block.get("thinking", "")))
        else:
            raise _refuse(kind, "an assistant message")
    text = "".join(texts)
    message: ChatMessage = {"role": "assistant", "content": text or None}
    if signed and reasoning_mode != "off":
        parts = [*signed, *([{"type": "text", "text": text}] if text else [])]
        message["content"] = parts
    if calls:
        message["tool_calls"] = calls
    elif message["content"] is None:
        message["content"] = ""
    if reasoning_mode == "reasoning_content" and any(unsigned):
        message["reasoning_content"] = "".join(unsigned)
    return message


def _reasoning_part(block: Mapping[str, Any]) -> dict[str, Any] | None:
    """Databricks' reasoning part for a signed thinking or a redacted block (else None)."""
    if block.get("type") == "redacted_thinking":
        data = block.get("data")
        item = {"type": "summary_encrypted_text", "data": data} if isinstance(data, str) else None
    else:
        signature = block.get("signature")
        item = ({"type": "summary_text", "text": str(block.get("thinking", "")),
                 "signature": signature} if isinstance(signature, str) and signature else None)
    return {"type": "reasoning", "summary": [item]} if item is not None else None


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


def _user(content: object, options: _Options) -> list[ChatMessage]:
    """Tool messages first (they must follow the assistant turn), then one user message."""
    if not isinstance(content, list):
        return [{"role": "user", "content": content if isinstance(content, str) else ""}]
    tool_messages: list[ChatMessage] = []
    moved_images: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "tool_result":
            message, images = _tool_result(block, options)
            tool_messages.append(message)
            moved_images.extend(images)
        elif kind == "text":
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            part = _image_part(block)
            if part:
                parts.append(part)
        else:
            parts.append(_other_part(block, kind, options, "a user message"))
    parts = moved_images + parts
    if not parts:
        return tool_messages
    return [*tool_messages, {"role": "user", "content": _compact(parts)}]


def _other_part(block: Any, kind: object, options: _Options, where: str) -> dict[str, Any]:
    """A `document` or `search_result` block as a text or file part (or a 400)."""
    if kind == "search_result":
        return {"type": "text", "text": _search_result_text(block)}
    if kind != "document":
        raise _refuse(kind, where)
    source = block.get("source") if isinstance(block.get("source"), dict) else {}
    title = block.get("title")
    heading = f"Document: {title}\n\n" if isinstance(title, str) and title else ""
    if source.get("type") == "text":
        return {"type": "text", "text": heading + str(source.get("data", ""))}
    if source.get("type") == "content":
        return {"type": "text", "text": heading + _text_of(source.get("content"))}
    if (source.get("type") == "base64" and source.get("media_type") == "application/pdf"
            and options.pdf_files):
        name = title if isinstance(title, str) and title else "document.pdf"
        return {"type": "file", "file": {
            "filename": name, "file_data": f"data:application/pdf;base64,{source.get('data', '')}"}}
    raise InvalidRequestError(
        f"{where} holds a document whose source is {source.get('type')!r} "
        f"({source.get('media_type', 'no media type')}), which cannot be sent to this "
        "OpenAI-compatible backend: send it as text, or use an Anthropic-dialect backend")


def _search_result_text(block: Any) -> str:
    title, source = block.get("title", ""), block.get("source", "")
    return f"Search result: {title} ({source})\n\n{_text_of(block.get('content'))}"


def _compact(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if all(p["type"] == "text" for p in parts):
        return "\n\n".join(p["text"] for p in parts)
    return parts


def _tool_result(block: Any, options: _Options) -> tuple[ChatMessage, list[dict[str, Any]]]:
    call_id = str(block.get("tool_use_id", ""))
    content = block.get("content")
    images: list[dict[str, Any]] = []
    texts: list[str] = []
    if isinstance(content, list):
        for item in content:
            kind = item.get("type") if isinstance(item, dict) else None
            if kind == "image":
                part = _image_part(item)
                if part:
                    images.append(part)
            elif kind == "text":
                texts.append(str(item.get("text", "")))
            else:
                part = _other_part(item, kind, options, "a tool result")
                if part["type"] != "text":
                    raise _refuse(kind, "a tool result (a file cannot ride in a tool message)")
                texts.append(part["text"])
    text = content if isinstance(content, str) else "\n\n".join(texts)
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
