"""A content block of a translated stream, as it is assembled and sent.

`StreamBlock` keeps what arrived for one Anthropic content block (text, thinking with its
signature, redacted thinking, or a tool call's argument text) and writes its frames:
`content_block_start`, the deltas (templated bytes: the hot path of a stream) and the
`signature_delta`; `final()` is the block in the assembled message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lynkr.providers._from_openai import parse_tool_arguments
from lynkr.providers._sse import encode_sse
from lynkr.providers._wire import AnthropicContentBlock

__all__ = ["StreamBlock"]

_encode_str = json.encoder.encode_basestring  # the C string encoder, as json.dumps uses
_encode_ascii = json.encoder.encode_basestring_ascii
_DELTA_TEMPLATES = {
    kind: (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
           b'"delta":{"type":"' + delta + b'","' + key + b'":%s}}\n\n')
    for kind, delta, key in (("text", b"text_delta", b"text"),
                             ("thinking", b"thinking_delta", b"thinking"),
                             ("tool_use", b"input_json_delta", b"partial_json"))
}

@dataclass(slots=True)
class StreamBlock:
    """One content block being assembled."""

    kind: str  # "text", "thinking", "tool_use" or "redacted_thinking"
    parts: list[str] = field(default_factory=list)
    tool_id: str = ""
    name: str = ""
    index: int = -1  # Anthropic index once started
    signature: str = ""  # a thinking block's, once the backend sent it

    def start_payload(self) -> dict[str, Any]:
        if self.kind == "tool_use":
            block: dict[str, Any] = {"type": "tool_use", "id": self.tool_id, "name": self.name,
                                     "input": {}}
        elif self.kind == "redacted_thinking":
            block = {"type": "redacted_thinking", "data": "".join(self.parts)}
        elif self.kind == "thinking":
            block = {"type": "thinking", "thinking": "", "signature": ""}
        else:
            block = {"type": "text", "text": ""}
        return {"type": "content_block_start", "index": self.index, "content_block": block}

    def delta_frame(self, text: str) -> bytes:
        """The encoded `content_block_delta` frame (templated: the hot path of a stream)."""
        try:
            encoded = _encode_str(text).encode()
        except UnicodeEncodeError:  # a lone surrogate from upstream: escape it, stay valid
            encoded = _encode_ascii(text).encode()
        return _DELTA_TEMPLATES[self.kind] % (self.index, encoded)

    def final(self) -> AnthropicContentBlock:
        text = "".join(self.parts)
        if self.kind == "tool_use":
            return {"type": "tool_use", "id": self.tool_id, "name": self.name,
                    "input": parse_tool_arguments(self.name, text)}
        if self.kind == "thinking":
            return {"type": "thinking", "thinking": text, "signature": self.signature}
        if self.kind == "redacted_thinking":
            return {"type": "redacted_thinking", "data": text}
        return {"type": "text", "text": text}

    def signature_frame(self) -> bytes:
        """The `signature_delta` frame of a signed thinking block."""
        return encode_sse("content_block_delta", {
            "type": "content_block_delta", "index": self.index,
            "delta": {"type": "signature_delta", "signature": self.signature}})
