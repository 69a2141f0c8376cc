"""Offline token counting."""

from __future__ import annotations

import base64
import socket
import struct
import zlib

import pytest

from lynkr.providers import count_request_tokens, count_text_tokens, image_tokens
from lynkr.providers._tokens import (
    IMAGE_MAX_TOKENS,
    MESSAGE_OVERHEAD,
    TOOL_SYSTEM_PROMPT,
    image_size,
)


def _png(width, height):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)))


def _image(data):
    return {"type": "base64", "media_type": "image/png", "data": base64.b64encode(data).decode()}


def test_text_count_is_a_real_tokenizer_not_characters_over_four():
    """Counts come from a BPE vocabulary: a common word is one token, whatever its length."""
    assert count_text_tokens("") == 0
    assert count_text_tokens("Hello") == 1
    assert count_text_tokens("internationalization") != len("internationalization") // 4


def test_counting_works_with_the_network_blocked(monkeypatch):
    """No socket is opened: the vocabulary ships inside the package."""
    def refuse(*args, **kwargs):
        raise AssertionError("network used")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    count_text_tokens.cache_clear()
    assert count_text_tokens("offline counting works fine") > 0


def test_each_message_adds_its_text_and_overhead():
    """A second message adds its tokens plus the per-message overhead."""
    one = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}
    two = {"model": "m", "messages": [*one["messages"],
                                      {"role": "assistant", "content": "general kenobi"}]}
    assert count_request_tokens(two) - count_request_tokens(one) == (
        MESSAGE_OVERHEAD + count_text_tokens("general kenobi"))


def test_tools_add_the_tool_system_prompt_and_their_definitions():
    """Tool definitions cost their JSON plus Anthropic's tool-use system prompt."""
    base = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    tool = {"name": "Bash", "description": "Run a command",
            "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}
    with_tool = count_request_tokens({**base, "tools": [tool]})
    assert with_tool - count_request_tokens(base) > TOOL_SYSTEM_PROMPT["auto"]
    forced = count_request_tokens({**base, "tools": [tool], "tool_choice": {"type": "any"}})
    assert with_tool - forced == TOOL_SYSTEM_PROMPT["auto"] - TOOL_SYSTEM_PROMPT["any"]


def test_tool_use_and_tool_result_content_is_counted():
    """Tool inputs (as JSON) and tool results count toward the total."""
    def req(command, result):
        return {"model": "m", "messages": [
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "t", "name": "Bash", "input": {"command": command}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t", "content": result}]}]}
    small = count_request_tokens(req("ls", "a"))
    assert count_request_tokens(req("ls -la /usr/local/lib/python3", "a")) > small
    assert count_request_tokens(req("ls", "a long result " * 20)) > small


@pytest.mark.parametrize(("size", "tokens"), [
    ((200, 200), 54),            # 40000 / 750 = 53.3 → 54
    ((1000, 1000), 1334),        # 1,000,000 / 750
    ((4000, 3000), 1600),        # scaled to 1568 * 1176, capped at 1600
])
def test_image_tokens_follow_anthropics_formula(size, tokens):
    """width * height / 750 after scaling the long edge to 1568, at most 1600."""
    assert image_tokens(_image(_png(*size))) == tokens


def test_url_and_unreadable_images_count_as_the_maximum():
    """An image whose size cannot be read counts as 1600 tokens."""
    assert image_tokens({"type": "url", "url": "https://x/y.png"}) == IMAGE_MAX_TOKENS
    assert image_tokens(_image(b"not an image")) == IMAGE_MAX_TOKENS


def test_image_size_reads_gif_jpeg_and_webp_headers():
    """Sizes come from the GIF, JPEG (SOF0) and WebP (VP8X) headers."""
    gif = b"GIF89a" + struct.pack("<HH", 30, 20)
    jpeg = (b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", 4) + b"\0\0"
            + b"\xff\xc0" + struct.pack(">HBHH", 11, 8, 20, 30) + b"\0" * 8)
    webp = b"RIFF\0\0\0\0WEBPVP8X" + b"\0" * 8 + (29).to_bytes(3, "little") + (
        19).to_bytes(3, "little")
    assert image_size(gif) == (30, 20)
    assert image_size(jpeg) == (30, 20)
    assert image_size(webp) == (30, 20)


def test_thinking_from_earlier_turns_is_not_counted():
    """Thinking blocks do not add tokens (Anthropic drops them from the context)."""
    def req(thinking):
        return {"model": "m", "messages": [{"role": "assistant", "content": [
            {"type": "thinking", "thinking": thinking, "signature": "s"},
            {"type": "text", "text": "a"}]}]}
    assert count_request_tokens(req("x")) == count_request_tokens(req("long thought " * 50))
