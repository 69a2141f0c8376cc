"""OpenAI-dialect answer content → Anthropic content pieces (pure).

Backends that speak the chat-completions dialect put an answer's content in more than
one shape. A message's (or a streamed delta's) `content` is a string, `null`, or a list
of typed parts:

- `text` (and `output_text`) → text;
- `reasoning` with `summary` items (Databricks-hosted Claude): `summary_text` → thinking
  text plus its `signature`, `summary_encrypted_text` → a `redacted_thinking` block;
- `thinking` (Mistral's Magistral: `thinking` is a list of text parts, or a string) →
  thinking, with a `signature` when the part carries one;
- `refusal` → text, and the answer's stop reason becomes `refusal`;
- `redacted_thinking` (`data`) → a `redacted_thinking` block.

Beside `content`, a message or delta may carry `reasoning_content` (DeepSeek, xAI, vLLM),
`reasoning` (Ollama, Groq, OpenRouter), `reasoning_details` (OpenRouter: only the
signature and encrypted items are taken from it; its text repeats `reasoning`) and
`refusal`. Anything else — an unknown part type, an unknown summary item, an unknown
message field — is noted in `UnknownParts` by type and key names (never its text), so
the caller can log it once per session and count it in the turn's event.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["KNOWN_MESSAGE_FIELDS", "Piece", "UnknownParts", "content_pieces", "message_pieces"]

PieceKind = Literal["text", "thinking", "signature", "redacted_thinking", "refusal"]

KNOWN_MESSAGE_FIELDS = frozenset({
    "role", "content", "tool_calls", "function_call", "refusal", "reasoning_content",
    "reasoning", "reasoning_details", "name", "tool_call_id",
    # Understood and deliberately not translated (no Anthropic equivalent):
    "annotations",  # OpenAI web-search citations (url_citation spans over the text)
    "audio",  # OpenAI audio output: Claude Code never asks for it
    "logprobs",
    "extra_content", "thought_signature",  # Gemini's opaque thought signatures
    "provider_specific_fields",  # LiteLLM's passthrough of the above
})
"""Message and delta keys this module (or the tool-call reader) accounts for."""


@dataclass(frozen=True, slots=True)
class Piece:
    """One piece of answer content, in the order it came.

    `text` is the text (text, thinking, refusal), the signature (`signature`: it belongs
    to the thinking before it) or the opaque data (`redacted_thinking`).
    """

    kind: PieceKind
    text: str


class UnknownParts:
    """What a translation could not map: a count per part type, and the key names seen."""

    __slots__ = ("counts", "keys")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.keys: dict[str, tuple[str, ...]] = {}

    def __bool__(self) -> bool:
        return bool(self.counts)

    def note(self, kind: str, part: object) -> None:
        """Count one part (or field) of type `kind`; remember its key names once."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if kind not in self.keys:
            names = part.keys() if isinstance(part, Mapping) else ()
            self.keys[kind] = tuple(sorted(str(k) for k in names))

    def describe(self) -> str:
        """`part type 'x' (keys: a, b); …` — type and key names only, never content."""
        return "; ".join(f"{kind} (keys: {', '.join(self.keys.get(kind, ())) or 'none'})"
                         for kind in sorted(self.counts))


def content_pieces(content: object, unknown: UnknownParts) -> list[Piece]:
    """The pieces of a `content` value: a string, `null` or a list of typed parts."""
    if isinstance(content, str):
        return [Piece("text", content)] if content else []
    if content is None:
        return []
    if not isinstance(content, list):
        unknown.note(f"content:{type(content).__name__}", None)
        return []
    pieces: list[Piece] = []
    for part in content:
        pieces.extend(_part_pieces(part, unknown))
    return pieces


def message_pieces(message: Mapping[str, Any], unknown: UnknownParts) -> list[Piece]:
    """Every piece of a message or delta: reasoning fields, then `content`, then `refusal`.

    Unknown keys (beyond `KNOWN_MESSAGE_FIELDS`) with a value are noted as
    `field:<name>`.
    """
    pieces = list(_reasoning_fields(message, unknown))
    pieces.extend(content_pieces(message.get("content"), unknown))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        pieces.append(Piece("refusal", refusal))
    for key, value in message.items():
        if key not in KNOWN_MESSAGE_FIELDS and value not in (None, "", [], {}):
            unknown.note(f"field:{key}", value)
    return pieces


def _reasoning_fields(message: Mapping[str, Any], unknown: UnknownParts) -> Iterator[Piece]:
    has_text = False
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value:
            yield Piece("thinking", value)
            has_text = True
            break
    details = message.get("reasoning_details")
    if isinstance(details, list):
        for item in details:
            yield from _detail_pieces(item, unknown, has_text)


def _detail_pieces(item: object, unknown: UnknownParts, has_text: bool) -> Iterator[Piece]:
    """OpenRouter's `reasoning_details`: its text repeats `reasoning` (taken only when
    that is missing); its signature and encrypted items are new."""
    if not isinstance(item, Mapping):
        return
    kind = item.get("type")
    if kind in ("reasoning.text", "reasoning.summary"):
        text = item.get("text" if kind == "reasoning.text" else "summary")
        if not has_text and isinstance(text, str) and text:
            yield Piece("thinking", text)
        signature = item.get("signature")
        if isinstance(signature, str) and signature:
            yield Piece("signature", signature)
    elif kind == "reasoning.encrypted":
        data = item.get("data")
        if isinstance(data, str) and data:
            yield Piece("redacted_thinking", data)
    else:
        unknown.note(f"reasoning_details:{kind}", item)


def _part_pieces(part: object, unknown: UnknownParts) -> list[Piece]:
    if isinstance(part, str):  # a bare string in a list: some servers do it
        return [Piece("text", part)] if part else []
    if not isinstance(part, Mapping):
        unknown.note(f"part:{type(part).__name__}", None)
        return []
    kind = part.get("type")
    if kind in ("text", "output_text") and isinstance(part.get("text"), str):
        return [Piece("text", part["text"])] if part["text"] else []
    if kind == "reasoning":
        return _summary_pieces(part, unknown)
    if kind == "thinking":
        return _thinking_pieces(part, unknown)
    if kind == "refusal" and isinstance(part.get("refusal"), str):
        return [Piece("refusal", part["refusal"])] if part["refusal"] else []
    if kind == "redacted_thinking" and isinstance(part.get("data"), str):
        return [Piece("redacted_thinking", part["data"])]
    unknown.note(str(kind), part)
    return []


def _summary_pieces(part: Mapping[str, Any], unknown: UnknownParts) -> list[Piece]:
    pieces: list[Piece] = []
    summary = part.get("summary")
    for item in summary if isinstance(summary, list) else ():
        kind = item.get("type") if isinstance(item, Mapping) else None
        if kind == "summary_text":
            pieces.extend(_text_and_signature("thinking", item.get("text"),
                                              item.get("signature")))
        elif kind == "summary_encrypted_text" and isinstance(item.get("data"), str):
            pieces.append(Piece("redacted_thinking", item["data"]))
        else:
            unknown.note(f"reasoning.summary:{kind}", item)
    if not isinstance(summary, list):
        unknown.note("reasoning", part)
    return pieces


def _thinking_pieces(part: Mapping[str, Any], unknown: UnknownParts) -> list[Piece]:
    value = part.get("thinking")
    if isinstance(value, list):
        texts = []
        for item in value:
            if isinstance(item, Mapping) and item.get("type") == "text" and isinstance(
                    item.get("text"), str):
                texts.append(item["text"])
            else:
                unknown.note(f"thinking:{item.get('type') if isinstance(item, Mapping) else ''}",
                             item)
        value = "".join(texts)
    if not isinstance(value, str):
        unknown.note("thinking", part)
        return []
    return _text_and_signature("thinking", value, part.get("signature"))


def _text_and_signature(kind: PieceKind, text: object, signature: object) -> list[Piece]:
    pieces = []
    if isinstance(text, str) and text:
        pieces.append(Piece(kind, text))
    if isinstance(signature, str) and signature:
        pieces.append(Piece("signature", signature))
    return pieces
