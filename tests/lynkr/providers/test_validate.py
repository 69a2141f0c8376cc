"""Validation of incoming /v1/messages and count_tokens bodies."""

from __future__ import annotations

import pytest

from lynkr.errors import InvalidRequestError
from lynkr.providers import (
    parse_json_body,
    validate_count_tokens_request,
    validate_messages_request,
)


def _body(**changes):
    body = {"model": "claude-sonnet-4-5", "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}]}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


def test_a_valid_body_comes_back_unchanged():
    """Validation returns the same dict, unknown fields included."""
    body = _body(some_future_field={"x": 1})
    assert validate_messages_request(body) is body


@pytest.mark.parametrize(("changes", "field"), [
    ({"model": ...}, "model"),
    ({"model": ""}, "model"),
    ({"max_tokens": ...}, "max_tokens"),
    ({"max_tokens": "10"}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"messages": ...}, "messages"),
    ({"messages": {"role": "user"}}, "messages"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
    ({"messages": [{"role": "user"}]}, "messages.0.content"),
    ({"messages": [{"role": "user", "content": [{"text": "x"}]}]}, "messages.0.content.0.type"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
     "messages.0.content.0.tool_use_id"),
    ({"messages": [{"role": "assistant", "content": [
        {"type": "tool_use", "id": "a", "name": "b", "input": "x"}]}]},
     "messages.0.content.0.input"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "data": "x"}}]}]},
     "messages.0.content.0.source.media_type"),
    ({"system": 5}, "system"),
    ({"system": [{"type": "image"}]}, "system.0"),
    ({"tools": [{"description": "x"}]}, "tools.0.name"),
    ({"tools": [{"name": "x"}]}, "tools.0.input_schema"),
    ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
    ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
    ({"stream": "yes"}, "stream"),
    ({"temperature": "hot"}, "temperature"),
    ({"stop_sequences": "END"}, "stop_sequences"),
    ({"metadata": "x"}, "metadata"),
])
def test_bad_fields_are_named_in_the_error(changes, field):
    """Each missing or mistyped field gives a 400 that starts with its path."""
    with pytest.raises(InvalidRequestError) as info:
        validate_messages_request(_body(**changes))
    assert info.value.status == 400
    assert info.value.message.startswith(f"{field}:")


def test_unknown_block_types_pass_through():
    """A block type Lynkr does not know is accepted (an Anthropic upstream may)."""
    body = _body(messages=[{"role": "user", "content": [{"type": "document", "source": {}}]}])
    assert validate_messages_request(body) is body


def test_server_tools_without_schema_are_accepted():
    """Anthropic server tools carry a type instead of input_schema."""
    validate_messages_request(_body(tools=[{"type": "web_search_20250305",
                                            "name": "web_search"}]))


def test_count_tokens_needs_no_max_tokens():
    """count_tokens bodies are valid without max_tokens but still need model and messages."""
    validate_count_tokens_request({"model": "m", "messages": []})
    with pytest.raises(InvalidRequestError, match=r"^messages:"):
        validate_count_tokens_request({"model": "m"})


def test_a_body_that_is_not_an_object_is_rejected():
    """A JSON array body is a clear 400."""
    with pytest.raises(InvalidRequestError, match="JSON object"):
        validate_messages_request([1, 2])


def test_parse_json_body_rejects_invalid_json_clearly():
    """Broken JSON or bad UTF-8 is an InvalidRequestError, not a crash."""
    with pytest.raises(InvalidRequestError, match="not valid JSON"):
        parse_json_body(b"{nope")
    with pytest.raises(InvalidRequestError, match="not valid JSON"):
        parse_json_body(b"\xff\xfe")
    assert parse_json_body(b'{"a": 1}') == {"a": 1}
