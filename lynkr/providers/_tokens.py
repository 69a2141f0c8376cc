"""Offline token counting for `/v1/messages/count_tokens` on backends without a counter.

The tokenizer is `anthropic-tokenizer` (PyPI): Anthropic's published 65,000-token BPE
vocabulary (the one its SDK shipped for Claude 2), embedded in a Rust extension, so it
works with no network and no download at run time. Current Claude models use a newer,
unpublished tokenizer; this is an estimate, never characters/4.

How a whole request is counted (the way Anthropic bills a request):
- every text: system blocks, message text, `tool_result` text, documents;
- `tool_use` blocks: the name plus the input as compact JSON;
- tool definitions: name, description and compact-JSON `input_schema`, plus
  `TOOL_OVERHEAD` each, plus Anthropic's documented tool-use system prompt
  (`TOOL_SYSTEM_PROMPT`: 346 tokens with `tool_choice` auto/none, 313 with any/tool);
- framing: `MESSAGE_OVERHEAD` per message, `BLOCK_OVERHEAD` per content block,
  `REQUEST_OVERHEAD` once;
- images: Anthropic's documented formula, tokens = width * height / 750 after scaling
  the long edge down to 1568 px, at most 1600 per image. The size is read from the
  base64 data's PNG, GIF, JPEG or WebP header; an image given by URL (or with an
  unreadable header) counts as the maximum, 1600;
- thinking blocks from earlier assistant turns are not counted (Anthropic drops them
  from the context).

Measured error (`tools/measure_token_estimate.py`, 76 samples, 401k characters: the
shared design docs and every Lynkr source file). No real Anthropic counts are available
offline, so the reference is an independent tokenizer: OpenAI's o200k_base run by
tiktoken from the vocabulary file the `bpe-openai` wheel ships. This estimate is +10.6 %
above o200k in total (per sample |difference|: median 11.0 %, p90 18.4 %, max 37.0 %;
against cl100k_base: +11.0 %, median 11.3 %). That is how far two good BPE vocabularies
disagree on this text, not the error against Claude's own counter.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from functools import lru_cache
from typing import Any

import anthropic_tokenizer  # ships no type hints

__all__ = [
    "BLOCK_OVERHEAD",
    "IMAGE_MAX_TOKENS",
    "MESSAGE_OVERHEAD",
    "REQUEST_OVERHEAD",
    "TOOL_OVERHEAD",
    "TOOL_SYSTEM_PROMPT",
    "count_request_tokens",
    "count_text_tokens",
    "image_size",
    "image_tokens",
]

REQUEST_OVERHEAD = 3
MESSAGE_OVERHEAD = 4
BLOCK_OVERHEAD = 1
TOOL_OVERHEAD = 8
TOOL_SYSTEM_PROMPT = {"auto": 346, "none": 346, "any": 313, "tool": 313}
IMAGE_MAX_TOKENS = 1600
_IMAGE_LONG_EDGE = 1568


@lru_cache(maxsize=8192)
def count_text_tokens(text: str) -> int:
    """Tokens in one text (cached: Claude Code resends the same blocks every turn)."""
    return int(anthropic_tokenizer.count_tokens(text)) if text else 0


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def count_request_tokens(request: dict[str, Any]) -> int:
    """Estimated input tokens of a (validated) Messages or count_tokens request."""
    total = REQUEST_OVERHEAD + _system_tokens(request.get("system"))
    for message in request.get("messages") or []:
        total += MESSAGE_OVERHEAD + _content_tokens(message.get("content"))
    tools = [t for t in request.get("tools") or [] if isinstance(t, dict)]
    if tools:
        choice = request.get("tool_choice")
        kind = choice.get("type", "auto") if isinstance(choice, dict) else "auto"
        total += TOOL_SYSTEM_PROMPT.get(kind, TOOL_SYSTEM_PROMPT["auto"])
        total += sum(_tool_tokens(t) for t in tools)
    return total


def _system_tokens(system: object) -> int:
    if isinstance(system, str):
        return count_text_tokens(system)
    if isinstance(system, list):
        return _content_tokens(system)
    return 0


def _tool_tokens(tool: dict[str, Any]) -> int:
    parts = [str(tool.get("name", "")), str(tool.get("description", ""))]
    if "input_schema" in tool:
        parts.append(_json(tool["input_schema"]))
    else:  # an Anthropic server tool: its type names a built-in definition
        parts.append(str(tool.get("type", "")))
    return TOOL_OVERHEAD + sum(count_text_tokens(p) for p in parts)


def _content_tokens(content: object) -> int:
    if isinstance(content, str):
        return count_text_tokens(content)
    if not isinstance(content, list):
        return 0
    return sum(BLOCK_OVERHEAD + _block_tokens(b) for b in content if isinstance(b, dict))


def _block_tokens(block: dict[str, Any]) -> int:
    kind = block.get("type")
    if kind == "text":
        return count_text_tokens(str(block.get("text", "")))
    if kind == "image":
        return image_tokens(block.get("source"))
    if kind in ("tool_use", "server_tool_use"):
        return count_text_tokens(str(block.get("name", ""))) + count_text_tokens(
            _json(block.get("input", {})))
    if kind == "tool_result":
        return _content_tokens(block.get("content", ""))
    if kind == "document":
        source = block.get("source")
        return count_text_tokens(str(source.get("data", ""))) if isinstance(source, dict) else 0
    if kind in ("thinking", "redacted_thinking"):
        return 0
    return count_text_tokens(_json(block))  # an unknown block: count what it carries


def image_tokens(source: object) -> int:
    """Tokens for one image source, by Anthropic's documented formula."""
    size = None
    if isinstance(source, dict) and source.get("type") == "base64":
        try:
            data = base64.b64decode(str(source.get("data", ""))[:87_384], validate=False)
        except (binascii.Error, ValueError):
            data = b""
        size = image_size(data)
    if size is None:
        return IMAGE_MAX_TOKENS
    width, height = size
    scale = min(1.0, _IMAGE_LONG_EDGE / max(width, height, 1))
    return min(IMAGE_MAX_TOKENS, max(1, math.ceil(width * scale * height * scale / 750)))


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF, JPEG or WebP header, or None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        return width, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 9 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return width, height
        pos += 2 + length
    return None

