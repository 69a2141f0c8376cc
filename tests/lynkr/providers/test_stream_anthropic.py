"""Anthropic SSE pass-through: bytes forwarded untouched, message assembled."""

from __future__ import annotations

from lynkr.providers import AnthropicStreamAssembler, encode_message_stream, encode_sse

from ._helpers import sse_events

_START = encode_sse("message_start", {"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [],
    "stop_reason": None, "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 1}}})
_TEXT = [
    encode_sse("content_block_start", {"type": "content_block_start", "index": 0,
                                       "content_block": {"type": "text", "text": ""}}),
    encode_sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": "Hi"}}),
    encode_sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
]
_TOOL = [
    encode_sse("content_block_start", {"type": "content_block_start", "index": 1,
                                       "content_block": {"type": "tool_use", "id": "toolu_1",
                                                         "name": "Bash", "input": {}}}),
    encode_sse("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
        "type": "input_json_delta", "partial_json": '{"command":'}}),
    encode_sse("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
        "type": "input_json_delta", "partial_json": '"ls"}'}}),
    encode_sse("content_block_stop", {"type": "content_block_stop", "index": 1}),
]
_END = [
    encode_sse("message_delta", {"type": "message_delta", "delta": {
        "stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 9}}),
    encode_sse("message_stop", {"type": "message_stop"}),
]
_STREAM = b"".join([_START, b": ping comment\n\n", *_TEXT, *_TOOL, *_END])


def _feed_bytewise(data: bytes) -> tuple[AnthropicStreamAssembler, bytes]:
    asm = AnthropicStreamAssembler()
    out = b"".join(asm.feed(data[i:i + 7]) for i in range(0, len(data), 7))
    return asm, out + asm.end()


def test_bytes_are_forwarded_untouched_except_the_held_back_stop():
    """Forwarded bytes plus stop_frame are exactly the upstream bytes."""
    asm, out = _feed_bytewise(_STREAM)
    assert out + asm.stop_frame == _STREAM
    assert asm.stop_frame == _END[-1]


def test_the_final_message_is_assembled_from_the_events():
    """Text, tool input and usage are assembled into the final message."""
    asm, _ = _feed_bytewise(_STREAM)
    message = asm.outcome.message
    assert asm.outcome.complete
    assert message["content"] == [
        {"type": "text", "text": "Hi"},
        {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == {"input_tokens": 10, "output_tokens": 9}


def test_a_stream_without_message_stop_fails_with_api_error():
    """A stream that ends early gets an api_error event, never a clean end."""
    asm, out = _feed_bytewise(b"".join([_START, *_TEXT, _TOOL[0], _TOOL[1]]))
    assert sse_events(out)[-1][1]["error"]["type"] == "api_error"
    assert not asm.outcome.complete
    assert asm.stop_frame == b""


def test_a_cut_mid_event_is_reported_as_cut():
    """Bytes of an unfinished event at the end mean the stream was cut."""
    asm, out = _feed_bytewise(_START + b"event: content_block_start\ndata: {\"ty")
    assert "cut" in asm.outcome.error_message
    assert out.endswith(b"\n\n")
    assert b'"api_error"' in out


def test_an_upstream_error_event_is_forwarded_and_ends_the_stream():
    """An upstream SSE error passes through as is and fails the outcome with its type."""
    error = encode_sse("error", {"type": "error", "error": {"type": "overloaded_error",
                                                           "message": "busy"}})
    asm, out = _feed_bytewise(_START + error)
    assert out == _START + error
    assert asm.outcome.error_type == "overloaded_error"


def test_a_malformed_event_is_replaced_by_an_api_error():
    """Non-JSON data is not forwarded; an api_error event takes its place."""
    asm, out = _feed_bytewise(_START + b"event: content_block_delta\ndata: {nope\n\n")
    assert b"{nope" not in out
    assert asm.outcome.error_type == "api_error"


def test_a_delta_for_a_block_never_started_is_malformed():
    """A delta with an unknown index fails the stream instead of crashing."""
    asm, _ = _feed_bytewise(_START + _TEXT[1])
    assert not asm.outcome.complete


def test_encode_message_stream_round_trips_through_the_assembler():
    """A complete message encoded as SSE assembles back to the same message."""
    message = {"id": "msg_9", "type": "message", "role": "assistant", "model": "claude",
               "content": [{"type": "thinking", "thinking": "t", "signature": "sig"},
                           {"type": "text", "text": "Hi"},
                           {"type": "tool_use", "id": "toolu_1", "name": "Bash",
                            "input": {"command": "ls"}}],
               "stop_reason": "tool_use", "stop_sequence": None,
               "usage": {"input_tokens": 5, "output_tokens": 3}}
    body, stop = encode_message_stream(message)
    asm = AnthropicStreamAssembler()
    assert asm.feed(body + stop) == body
    assert asm.outcome.complete
    assert asm.outcome.message == message
