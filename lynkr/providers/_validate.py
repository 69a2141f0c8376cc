"""Validation of incoming `/v1/messages` and `/v1/messages/count_tokens` bodies.

Checks what Lynkr relies on — required fields, their types, known tags — and names the
offending field in the error (`messages.2.content.0.tool_use_id: …`), the way Anthropic
does. Unknown fields and unknown content-block types pass through untouched (an
Anthropic upstream may understand them; the OpenAI translation drops them on purpose).
Validation never copies the body: the same dict comes back, typed.
"""

from __future__ import annotations

import json
from typing import Any, cast

from lynkr.errors import InvalidRequestError
from lynkr.providers._wire import AnthropicRequest

__all__ = ["parse_json_body", "validate_count_tokens_request", "validate_messages_request"]

_ROLES = ("user", "assistant", "system")
_TOOL_CHOICES = ("auto", "any", "tool", "none")


def _fail(path: str, problem: str) -> InvalidRequestError:
    return InvalidRequestError(f"{path}: {problem}")


def parse_json_body(data: bytes) -> Any:
    """The JSON value of a request body.

    Raises:
        InvalidRequestError: the body is not UTF-8 JSON.
    """
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"request body is not valid JSON: {exc}") from exc


def validate_messages_request(body: object) -> AnthropicRequest:
    """Check a `/v1/messages` body.

    Raises:
        InvalidRequestError: naming the first field that is missing or of the wrong type.
    """
    request = cast(dict[str, Any], _common(body))
    max_tokens = request.get("max_tokens")
    if max_tokens is None:
        raise _fail("max_tokens", "Field required")
    if not _is_int(max_tokens) or max_tokens < 1:
        raise _fail("max_tokens", "must be a whole number of at least 1")
    _optional(request, "stream", bool, "a boolean")
    _number(request, "temperature")
    _number(request, "top_p")
    if "top_k" in request and not _is_int(request["top_k"]):
        raise _fail("top_k", "must be a whole number")
    stops = request.get("stop_sequences")
    if stops is not None and not (
        isinstance(stops, list) and all(isinstance(s, str) for s in stops)
    ):
        raise _fail("stop_sequences", "must be a list of strings")
    _optional(request, "metadata", dict, "an object")
    _optional(request, "thinking", dict, "an object")
    _optional(request, "output_config", dict, "an object")
    return cast(AnthropicRequest, request)


def validate_count_tokens_request(body: object) -> AnthropicRequest:
    """Check a `/v1/messages/count_tokens` body (no `max_tokens` needed).

    Raises:
        InvalidRequestError: naming the first field that is missing or wrong.
    """
    return _common(body)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional(request: dict[str, Any], key: str, kind: type, label: str) -> None:
    if request.get(key) is not None and not isinstance(request[key], kind):
        raise _fail(key, f"must be {label}")


def _number(request: dict[str, Any], key: str) -> None:
    value = request.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise _fail(key, "must be a number")


def _common(body: object) -> AnthropicRequest:
    if not isinstance(body, dict):
        raise InvalidRequestError("request body must be a JSON object")
    model = body.get("model")
    if model is None:
        raise _fail("model", "Field required")
    if not isinstance(model, str) or not model.strip():
        raise _fail("model", "must be a non-empty string")
    _messages(body.get("messages"))
    _system(body.get("system"))
    _tools(body.get("tools"))
    _tool_choice(body.get("tool_choice"))
    return cast(AnthropicRequest, body)


def _messages(messages: object) -> None:
    if messages is None:
        raise _fail("messages", "Field required")
    if not isinstance(messages, list):
        raise _fail("messages", "must be a list")
    for i, message in enumerate(messages):
        path = f"messages.{i}"
        if not isinstance(message, dict):
            raise _fail(path, "must be an object")
        if message.get("role") not in _ROLES:
            raise _fail(f"{path}.role", f"must be one of {', '.join(_ROLES)}")
        if "content" not in message:
            raise _fail(f"{path}.content", "Field required")
        _content(message["content"], f"{path}.content")


def _system(system: object) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise _fail("system", "must be a string or a list of text blocks")
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise _fail(f"system.{i}", "must be a text block")
        if not isinstance(block.get("text"), str):
            raise _fail(f"system.{i}.text", "must be a string")


def _content(content: object, path: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _fail(path, "must be a string or a list of content blocks")
    for i, block in enumerate(content):
        _block(block, f"{path}.{i}")


_REQUIRED_STR = {
    "text": ("text",),
    "tool_use": ("id", "name"),
    "tool_result": ("tool_use_id",),
    "thinking": ("thinking",),
    "redacted_thinking": ("data",),
}


def _block(block: object, path: str) -> None:
    if not isinstance(block, dict):
        raise _fail(path, "must be an object")
    kind = block.get("type")
    if not isinstance(kind, str):
        raise _fail(f"{path}.type", "Field required")
    for key in _REQUIRED_STR.get(kind, ()):
        if not isinstance(block.get(key), str):
            raise _fail(f"{path}.{key}", "must be a string")
    if kind == "tool_use" and not isinstance(block.get("input"), dict):
        raise _fail(f"{path}.input", "must be an object")
    if kind == "image":
        _image(block.get("source"), f"{path}.source")
    if kind == "tool_result" and "content" in block:
        _content(block["content"], f"{path}.content")
        if "is_error" in block and not isinstance(block["is_error"], bool):
            raise _fail(f"{path}.is_error", "must be a boolean")


def _image(source: object, path: str) -> None:
    if not isinstance(source, dict):
        raise _fail(path, "Field required")
    kind = source.get("type")
    if kind == "base64":
        for key in ("media_type", "data"):
            if not isinstance(source.get(key), str):
                raise _fail(f"{path}.{key}", "must be a string")
    elif kind == "url":
        if not isinstance(source.get("url"), str):
            raise _fail(f"{path}.url", "must be a string")
    elif not isinstance(kind, str):
        raise _fail(f"{path}.type", "Field required")


def _tools(tools: object) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _fail("tools", "must be a list")
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _fail(f"tools.{i}", "must be an object")
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise _fail(f"tools.{i}.name", "must be a non-empty string")
        if "input_schema" in tool and not isinstance(tool["input_schema"], dict):
            raise _fail(f"tools.{i}.input_schema", "must be an object")
        if "input_schema" not in tool and not isinstance(tool.get("type"), str):
            raise _fail(f"tools.{i}.input_schema", "Field required")


def _tool_choice(choice: object) -> None:
    if choice is None:
        return
    if not isinstance(choice, dict) or choice.get("type") not in _TOOL_CHOICES:
        raise _fail("tool_choice.type", f"must be one of {', '.join(_TOOL_CHOICES)}")
    if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
        raise _fail("tool_choice.name", "must be a string")
    if "disable_parallel_tool_use" in choice and not isinstance(
        choice["disable_parallel_tool_use"], bool
    ):
        raise _fail("tool_choice.disable_parallel_tool_use", "must be a boolean")
