"""OpenAI chat completion → Anthropic Messages response (a pure function).

The first choice is the answer. Its reasoning (`reasoning_content`, or `reasoning` as
OpenRouter and Ollama name it) becomes a `thinking` block with an empty signature — an
Anthropic upstream would reject it, so `strip_unsigned_thinking` removes such blocks
before a later turn goes to one. Then the text, then one `tool_use` block per tool call
in the backend's order. Tool-call arguments must be a JSON object (empty text counts as
`{}`); anything else is an upstream failure, never a tool run with garbage input.
The response carries the model name the client asked for.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from lynkr.errors import UpstreamError
from lynkr.providers._translate import stop_reason_for, usage_from_openai
from lynkr.providers._wire import (
    AnthropicContentBlock,
    AnthropicResponse,
    ChatCompletion,
    Usage,
)

__all__ = ["from_openai_response", "message_id_for", "parse_tool_arguments", "reasoning_of"]


def message_id_for(upstream_id: object) -> str:
    """An Anthropic-style message id, derived from the upstream id when there is one."""
    if isinstance(upstream_id, str) and upstream_id:
        return upstream_id if upstream_id.startswith("msg_") else f"msg_{upstream_id}"
    return f"msg_{uuid.uuid4().hex}"


def reasoning_of(message: Mapping[str, Any]) -> str:
    """The reasoning text of a chat message or delta, whatever the backend calls it."""
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def parse_tool_arguments(name: str, arguments: object) -> dict[str, Any]:
    """The JSON object a tool call's `arguments` text holds.

    Raises:
        UpstreamError: the arguments are not a JSON object.
    """
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    try:
        value = json.loads(arguments) if isinstance(arguments, str) else None
    except ValueError as exc:
        raise UpstreamError(
            f"upstream returned arguments for tool {name!r} that are not valid JSON"
        ) from exc
    if not isinstance(value, dict):
        raise UpstreamError(f"upstream returned arguments for tool {name!r} that are not an object")
    return value


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers answer with content parts
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def from_openai_response(
    completion: ChatCompletion,
    *,
    model: str,
    message_id: str | None = None,
    stop_sequences: tuple[str, ...] | list[str] = (),
) -> AnthropicResponse:
    """Translate a non-streaming chat completion into an Anthropic message.

    Args:
        completion: the backend's JSON body.
        model: the model name the client asked for (echoed in the response).
        message_id: the id to use (default: derived from the upstream id).
        stop_sequences: the request's stop sequences (to report `stop_sequence`).

    Returns:
        The Anthropic response body.

    Raises:
        UpstreamError: the body has no choice, or a tool call is malformed.
    """
    choices = completion.get("choices") if isinstance(completion, Mapping) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamError("upstream returned a completion without choices")
    choice = choices[0]
    message = choice.get("message") or {}
    msg_id = message_id or message_id_for(completion.get("id"))
    content = _content_blocks(message, msg_id)
    has_tools = any(b["type"] == "tool_use" for b in content)
    finish = choice.get("finish_reason") or ("tool_calls" if has_tools else "stop")
    stop_reason = stop_reason_for(
        finish, has_tool_calls=has_tools, matched_stop=choice.get("stop_reason"),
        stop_sequences=stop_sequences,
    )
    matched = str(choice.get("stop_reason")) if stop_reason == "stop_sequence" else None
    return build_response(msg_id, model, content, stop_reason, matched,
                          usage_from_openai(completion.get("usage")))


def _content_blocks(message: Mapping[str, Any], msg_id: str) -> list[AnthropicContentBlock]:
    blocks: list[AnthropicContentBlock] = []
    reasoning = reasoning_of(message)
    if reasoning:
        blocks.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = _text(message.get("content"))
    if text:
        blocks.append({"type": "text", "text": text})
    for position, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        name = str(function.get("name") or "")
        blocks.append({
            "type": "tool_use",
            "id": str(call.get("id") or tool_id_for(msg_id, position)),
            "name": name,
            "input": parse_tool_arguments(name, function.get("arguments")),
        })
    return blocks


def tool_id_for(msg_id: str, position: int) -> str:
    """A stable tool-use id for a backend that sent none."""
    return f"toolu_{msg_id.removeprefix('msg_')}_{position}"


def build_response(
    msg_id: str,
    model: str,
    content: list[AnthropicContentBlock],
    stop_reason: str,
    stop_sequence: str | None,
    usage: Usage,
) -> AnthropicResponse:
    """Assemble an Anthropic response body."""
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage.to_json(),
    }
