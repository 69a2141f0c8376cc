"""Shared translation rules: stop reasons, usage, schemas, betas and Anthropic pass-through.

Pure functions used by both directions of the Anthropic ⇄ OpenAI translation
(`_to_openai`, `_from_openai`, `_stream`) and by the Anthropic pass-through adapters.

Decisions:
- `finish_reason` → `stop_reason`: `stop` → `end_turn` (or `stop_sequence` when the
  backend names the matched stop string, as vLLM does in `stop_reason`), `length` →
  `max_tokens`, `tool_calls`/`function_call` → `tool_use` (also when a backend says `stop`
  but returned tool calls, as Ollama does), `content_filter` → `refusal`. A missing finish
  reason at the end of a stream is a failure, never `end_turn` (see `_stream`).
- Usage: OpenAI's `prompt_tokens` includes cached prompt tokens; Anthropic's
  `input_tokens` does not. Cached tokens (`prompt_tokens_details.cached_tokens`, or
  DeepSeek's `prompt_cache_hit_tokens`) are subtracted and reported as
  `cache_read_input_tokens`.
- Tool schemas: keys that strict backends reject (`$schema` by default, configurable) are
  removed at every depth of a tool's `input_schema`.
- `anthropic-beta`: forwarded to Anthropic-speaking upstreams minus a configurable set of
  betas the backend rejects (`filter_betas`); never sent to OpenAI-compatible backends.
- Thinking: an Anthropic upstream rejects thinking blocks it did not sign, so
  `strip_unsigned_thinking` removes thinking blocks without a signature (they come from an
  OpenAI-compatible backend's reasoning, see `_from_openai`) before a request goes to an
  Anthropic or Azure upstream. `redacted_thinking` is kept: only Anthropic produces it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from lynkr.providers._wire import AnthropicMessage, AnthropicRequest, Usage

__all__ = [
    "DEFAULT_DROPPED_SCHEMA_KEYS",
    "clean_schema",
    "filter_betas",
    "stop_reason_for",
    "strip_unsigned_thinking",
    "usage_from_openai",
]

DEFAULT_DROPPED_SCHEMA_KEYS: frozenset[str] = frozenset({"$schema"})

_FINISH_TO_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def stop_reason_for(
    finish_reason: str,
    *,
    has_tool_calls: bool = False,
    matched_stop: object = None,
    stop_sequences: Iterable[str] = (),
) -> str:
    """Anthropic's `stop_reason` for an OpenAI `finish_reason` (which must be known).

    Args:
        finish_reason: the backend's finish reason (`stop`, `length`, `tool_calls`, …).
        has_tool_calls: the answer contains tool calls.
        matched_stop: the stop string a backend reports it matched (vLLM `stop_reason`).
        stop_sequences: the request's `stop_sequences`.

    Returns:
        `end_turn`, `max_tokens`, `tool_use`, `stop_sequence` or `refusal`.
    """
    if has_tool_calls and finish_reason in ("stop", "tool_calls", "function_call"):
        return "tool_use"
    if finish_reason == "stop" and isinstance(matched_stop, str) and (
        matched_stop in stop_sequences
    ):
        return "stop_sequence"
    return _FINISH_TO_STOP.get(finish_reason, "end_turn")


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from_openai(usage: Mapping[str, Any] | None) -> Usage:
    """Anthropic usage from an OpenAI `usage` object (cached prompt tokens split out)."""
    if not usage:
        return Usage()
    prompt = _int(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, Mapping) else 0
    cached = cached or _int(usage.get("prompt_cache_hit_tokens"))
    cached = min(cached, prompt)
    return Usage(
        input_tokens=prompt - cached,
        output_tokens=_int(usage.get("completion_tokens")),
        cache_read_input_tokens=cached,
    )


def clean_schema(schema: Any, dropped: frozenset[str] = DEFAULT_DROPPED_SCHEMA_KEYS) -> Any:
    """A copy of a JSON schema without the `dropped` keys, at any depth.

    Property names are data, not keywords: a property called `$schema` is kept.
    """
    if isinstance(schema, list):
        return [clean_schema(item, dropped) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in dropped:
            continue
        if key in ("properties", "patternProperties", "$defs", "definitions") and isinstance(
            value, dict
        ):
            out[key] = {name: clean_schema(sub, dropped) for name, sub in value.items()}
        else:
            out[key] = clean_schema(value, dropped)
    return out


def filter_betas(header: str | None, rejected: Iterable[str]) -> str | None:
    """The `anthropic-beta` header without the betas a backend rejects (None if empty)."""
    if not header:
        return None
    blocked = set(rejected)
    kept = [b.strip() for b in header.split(",") if b.strip() and b.strip() not in blocked]
    return ",".join(kept) or None


def _is_unsigned_thinking(block: object) -> bool:
    return (
        isinstance(block, dict)
        and block.get("type") == "thinking"
        and not block.get("signature")
    )


def strip_unsigned_thinking(request: AnthropicRequest) -> AnthropicRequest:
    """The request without thinking blocks that carry no signature.

    Returns the same object when there is nothing to strip (the common case, so the
    pass-through path does not copy 100 KB bodies). An assistant message left empty
    gets a one-text-block placeholder (Anthropic rejects empty text) so turns still
    alternate.
    """
    messages = request.get("messages") or []
    if not any(
        isinstance(m.get("content"), list) and any(map(_is_unsigned_thinking, m["content"]))
        for m in messages
    ):
        return request
    cleaned: list[AnthropicMessage] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list) and any(map(_is_unsigned_thinking, content)):
            blocks = [b for b in content if not _is_unsigned_thinking(b)]
            content = blocks or [{"type": "text", "text": "(no content)"}]
            message = cast(AnthropicMessage, {**message, "content": content})
        cleaned.append(message)
    return cast(AnthropicRequest, {**request, "messages": cleaned})
