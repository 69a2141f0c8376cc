"""Response shaping: the events that end a turn and the SSE error frame.

Pure functions: the orchestrator decides *when*; these decide *what*.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from eventstore import BlobRef, make_blob
from eventstore.events.session import ModelResponded, StreamAborted, UpstreamFailed
from lynkr import _json
from lynkr.errors import LynkrError, ProviderOverloadedError, RateLimitedError
from lynkr.providers import (
    encode_sse,
)

__all__ = [
    "aborted",
    "answer_digest",
    "body_digest",
    "error_frame",
    "failed",
    "responded",
    "usage_of",
    "visible_blocks",
]

Blobs = list[tuple[BlobRef, bytes]]


def usage_of(message: Mapping[str, Any]) -> dict[str, int]:
    """The integer usage counters of a message (others dropped)."""
    usage = message.get("usage")
    if not isinstance(usage, dict):
        return {}
    return {k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool)}


def visible_blocks(content: object) -> int:
    """Content blocks a user sees or a client acts on: non-empty text, tool calls and any
    other block — not thinking, which Claude Code counts as "no visible output"."""
    if not isinstance(content, list):
        return 0
    count = 0
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind in ("thinking", "redacted_thinking") or (kind == "text" and not block.get("text")):
            continue
        count += 1
    return count


def answer_digest(content: object) -> str:
    """SHA-256 (hex) of an answer's content blocks, keys sorted: the same answer twice has
    the same digest whatever its message id and usage, and so does the same answer as a
    client resends it (a string content is one text block; `cache_control` markers,
    which clients move from turn to turn, are ignored)."""
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if isinstance(content, list | tuple):
        content = [{k: v for k, v in b.items() if k != "cache_control"}
                   if isinstance(b, Mapping) else b for b in content]
    return hashlib.sha256(_json.dumps_sorted(content)).hexdigest()


# --- replay --verify: the digest of what the client was sent (lynkr/cli/_replay_verify.py)
def body_digest(message: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a non-streaming answer's body exactly as the HTTP layer writes it
    (`lynkr.http` sends `_json.dumps(message)`)."""
    return hashlib.sha256(_json.dumps(message)).hexdigest()
# --- end replay --verify


def responded(
    turn: int, message: Mapping[str, Any], raw: bytes, *, provider: str, latency_ms: float,
    first_byte_ms: float | None, unknown: Mapping[str, int] | None = None,
    client_digest: str | None = None,
) -> tuple[ModelResponded, Blobs]:
    """`ModelResponded` and its blobs (the final message, the raw upstream answer);
    `client_digest` is the SHA-256 of the bytes the client is sent (None: the JSON body,
    `body_digest(message)`)."""
    message_ref, message_data = make_blob(dict(message))
    raw_ref, raw_data = make_blob(raw)
    content = message.get("content")
    event = ModelResponded(
        turn=turn, message=message_ref, stop_reason=message.get("stop_reason"),
        usage=usage_of(message), latency_ms=round(latency_ms, 3),
        first_byte_ms=None if first_byte_ms is None else round(first_byte_ms, 3),
        upstream=raw_ref, provider=provider, answer_digest=answer_digest(content),
        visible_blocks=visible_blocks(content), unknown_parts=dict(unknown) if unknown else None,
        client_digest=client_digest or body_digest(message))
    return event, [(message_ref, message_data), (raw_ref, raw_data)]


def failed(turn: int, exc: LynkrError, *, provider: str, attempts: int) -> UpstreamFailed:
    """`UpstreamFailed` for an error the client gets as an HTTP status."""
    return UpstreamFailed(turn=turn, status=exc.status, error_type=exc.error_type,
                          message=exc.message, upstream_status=getattr(exc, "upstream_status",
                                                                      None),
                          attempts=attempts, provider=provider)


def aborted(
    turn: int, reason: str, *, provider: str, partial: Mapping[str, Any] | None, raw: bytes,
) -> tuple[StreamAborted, Blobs]:
    """`StreamAborted` with what had been assembled and received when it broke."""
    blobs: Blobs = []
    partial_ref = None
    if partial:
        partial_ref, data = make_blob(dict(partial))
        blobs.append((partial_ref, data))
    raw_ref, raw_data = make_blob(raw)
    blobs.append((raw_ref, raw_data))
    return StreamAborted(turn=turn, reason=reason, partial=partial_ref, upstream=raw_ref,
                         provider=provider), blobs


def error_frame(exc: LynkrError) -> bytes:
    """The SSE `error` event for a failure after the stream began.

    Claude Code retries the stream on `overloaded_error` (and rate limits), and resends
    the request without streaming on any other type — the right answer to a cut or
    malformed upstream stream.
    """
    error_type = exc.error_type
    if not isinstance(exc, (ProviderOverloadedError, RateLimitedError)) and (
            error_type not in ("overloaded_error", "rate_limit_error")):
        error_type = "api_error"
    return encode_sse("error", {"type": "error",
                                "error": {"type": error_type, "message": exc.message}})
