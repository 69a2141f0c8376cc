"""OpenAI chat completion → Anthropic Messages response (a pure function).

The first choice is the answer. Its content pieces (`lynkr.providers._parts`: a string
or a list of typed parts, reasoning fields, refusal) become blocks in the order they
came: consecutive thinking text is one `thinking` block carrying the signature the
backend sent for it (Databricks-hosted Claude signs it; reasoning from
`reasoning_content`/`reasoning` has none — an Anthropic upstream would reject an
unsigned block, so `strip_unsigned_thinking` removes those before a later turn goes
to one), encrypted reasoning is a `redacted_thinking` block, text and refusals are
`text` blocks (a refusal makes the stop reason `refusal`). Then one `tool_use` block
per tool call in the backend's order. Tool-call arguments must be a JSON object (empty
text counts as `{}`); anything else is an upstream failure, never a tool run with
garbage input. Parts Lynkr does not know are noted in an `UnknownParts`; if the answer
carried such content and would give the client no block at all, that is an upstream
failure naming the shape, never a silent empty answer.
The response carries the model name the client asked for.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from lynkr.errors import UpstreamError
from lynkr.providers._parts import Piece, UnknownParts, message_pieces
from lynkr.providers._translate import stop_reason_for, usage_from_openai
from lynkr.providers._wire import (
    AnthropicContentBlock,
    AnthropicResponse,
    ChatCompletion,
    Usage,
)

__all__ = [
    "blocks_from_pieces",
    "from_openai_response",
    "message_id_for",
    "parse_tool_arguments",
    "untranslatable",
]


def message_id_for(upstream_id: object) -> str:
    """An Anthropic-style message id, derived from the upstream id when there is one."""
    if isinstance(upstream_id, str) and upstream_id:
        return upstream_id if upstream_id.startswith("msg_") else f"msg_{upstream_id}"
    return f"msg_{uuid.uuid4().hex}"


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


def untranslatable(unknown: UnknownParts) -> UpstreamError:
    """The failure for an answer whose only content Lynkr cannot translate."""
    return UpstreamError("upstream answered with content Lynkr cannot translate, so the "
                         f"answer would be empty: {unknown.describe()}")


def blocks_from_pieces(pieces: list[Piece]) -> tuple[list[AnthropicContentBlock], bool]:
    """Content blocks from pieces (see module docstring); True if a refusal was among them."""
    blocks: list[AnthropicContentBlock] = []
    refused = False
    for piece in pieces:
        last = blocks[-1] if blocks else None
        if piece.kind in ("text", "refusal"):
            refused = refused or piece.kind == "refusal"
            if last is not None and last["type"] == "text":
                last["text"] += piece.text
            else:
                blocks.append({"type": "text", "text": piece.text})
        elif piece.kind == "thinking":
            if last is not None and last["type"] == "thinking" and not last["signature"]:
                last["thinking"] += piece.text
            else:
                blocks.append({"type": "thinking", "thinking": piece.text, "signature": ""})
        elif piece.kind == "signature":
            if last is not None and last["type"] == "thinking" and not last["signature"]:
                last["signature"] = piece.text
            else:
                blocks.append({"type": "thinking", "thinking": "", "signature": piece.text})
        else:
            blocks.append({"type": "redacted_thinking", "data": piece.text})
    return blocks, refused


def from_openai_response(
    completion: ChatCompletion,
    *,
    model: str,
    message_id: str | None = None,
    stop_sequences: tuple[str, ...] | list[str] = (),
    unknown: UnknownParts | None = None,
) -> AnthropicResponse:
    """Translate a non-streaming chat completion into an Anthropic message.

    Args:
        completion: the backend's JSON body.
        model: the model name the client asked for (echoed in the response).
        message_id: the id to use (default: derived from the upstream id).
        stop_sequences: the request's stop sequences (to report `stop_sequence`).
        unknown: collects the parts and fields that could not be translated.

    Returns:
        The Anthropic response body.

    Raises:
        UpstreamError: the body has no choice, a tool call is malformed, or the answer
            carried content only in shapes Lynkr cannot translate.
    """
    unknown = unknown if unknown is not None else UnknownParts()
    choices = completion.get("choices") if isinstance(completion, Mapping) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamError("upstream returned a completion without choices")
    choice = choices[0]
    message = choice.get("message") or {}
    msg_id = message_id or message_id_for(completion.get("id"))
    if not isinstance(message, dict):
        raise UpstreamError("upstream returned a choice whose message is not an object")
    blocks, refused = blocks_from_pieces(message_pieces(message, unknown))
    content = blocks + _tool_blocks(message, msg_id)
    if not content and unknown:
        raise untranslatable(unknown)
    has_tools = any(b["type"] == "tool_use" for b in content)
    finish = choice.get("finish_reason") or ("tool_calls" if has_tools else "stop")
    if refused and finish not in ("tool_calls", "length"):
        finish = "content_filter"
    stop_reason = stop_reason_for(
        finish, has_tool_calls=has_tools, matched_stop=choice.get("stop_reason"),
        stop_sequences=stop_sequences,
    )
    matched = str(choice.get("stop_reason")) if stop_reason == "stop_sequence" else None
    return build_response(msg_id, model, content, stop_reason, matched,
                          usage_from_openai(completion.get("usage")))


def _tool_blocks(message: Mapping[str, Any], msg_id: str) -> list[AnthropicContentBlock]:
    blocks: list[AnthropicContentBlock] = []
    calls = message.get("tool_calls")
    for position, call in enumerate(calls if isinstance(calls, list) else []):
        if not isinstance(call, dict):
            raise UpstreamError("upstream returned a tool call that is not an object")
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
