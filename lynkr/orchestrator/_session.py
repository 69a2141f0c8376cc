"""Which session a request belongs to.

Order: the `X-Claude-Code-Session-Id` header, else `x-session-id`, else the
`session_id` inside `metadata.user_id` (Claude Code sends it as a JSON string),
else an id *inferred* from the request: clients that send no session id (the
`anthropic` SDK, most API clients) resend the whole conversation every turn, so
the system prompt and the first user message identify it. The inferred id is
`auto-` and 32 hex digits of a SHA-256 over

- the client's identity: the SHA-256 of its `x-api-key` (else `authorization`)
  header, and `metadata.user_id` when it is a plain string (the end user an app
  names), so two keys or users with the same prompt never share a session; the
  key itself is never stored or logged;
- the system prompt and the first user message, `cache_control` markers removed
  (clients move them to the newest message each turn) and a string content read
  as one text block.

So a client resending its growing history lands in the same session turn after
turn, and a new first message starts a new one. The response returns the id in
an `x-session-id` header, as it does for an id generated for a request that has
no user message at all (a random one, as every such request was given before).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lynkr._json import dumps_sorted

__all__ = ["SessionRef", "resolve_session"]

_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_INFERRED_PREFIX = "auto-"
_DIGEST_HEX = 32  # 128 bits: no two conversations meet by chance
_KEY_HEADERS = ("x-api-key", "authorization")


@dataclass(frozen=True, slots=True)
class SessionRef:
    """A resolved session id and where it came from."""

    session_id: str
    source: str  # "header", "metadata", "inferred" or "generated"

    @property
    def generated(self) -> bool:
        """True when Lynkr chose the id (inferred or generated): the client sent none and
        learns it from the response header."""
        return self.source in ("inferred", "generated")

    @property
    def stream_id(self) -> str:
        """The event stream of this session."""
        return f"session-{self.session_id}"


def _from_metadata(body: Mapping[str, Any]) -> str | None:
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        return None
    user_id = metadata.get("user_id")
    if not isinstance(user_id, str) or not user_id.startswith("{"):
        return None
    try:
        parsed = json.loads(user_id)
    except ValueError:
        return None
    session = parsed.get("session_id") if isinstance(parsed, dict) else None
    return session if isinstance(session, str) else None


def _blocks(content: Any) -> Any:
    """Content as the client means it: a string is one text block; `cache_control` goes."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [{k: v for k, v in block.items() if k != "cache_control"}
                if isinstance(block, dict) else block for block in content]
    return content


def _first_user_message(body: Mapping[str, Any]) -> Any:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user":
            return _blocks(message.get("content"))
    return None


def _client_identity(headers: Mapping[str, str], body: Mapping[str, Any]) -> list[str]:
    key = next((headers[name] for name in _KEY_HEADERS if headers.get(name)), "")
    metadata = body.get("metadata")
    user = metadata.get("user_id") if isinstance(metadata, dict) else None
    return [hashlib.sha256(key.encode()).hexdigest() if key else "",
            user if isinstance(user, str) else ""]


def infer_session_id(headers: Mapping[str, str], body: Mapping[str, Any]) -> str | None:
    """The id of the conversation a request without a session id continues (see module
    docstring); None when it has no user message to tell it by."""
    first = _first_user_message(body)
    if first is None:
        return None
    digest = hashlib.sha256(dumps_sorted(
        [_client_identity(headers, body), _blocks(body.get("system")), first])).hexdigest()
    return _INFERRED_PREFIX + digest[:_DIGEST_HEX]


def resolve_session(headers: Mapping[str, str], body: Mapping[str, Any]) -> SessionRef:
    """The session for a request (see module docstring); ids that are not safe are ignored.

    Args:
        headers: the request's headers, lower-case names.
        body: the parsed `/v1/messages` body.
    """
    candidates = (
        (headers.get("x-claude-code-session-id"), "header"),
        (headers.get("x-session-id"), "header"),
        (_from_metadata(body), "metadata"),
    )
    for value, source in candidates:
        if value and _VALID_ID.match(value):
            return SessionRef(value, source)
    inferred = infer_session_id(headers, body)
    if inferred is not None:
        return SessionRef(inferred, "inferred")
    return SessionRef(str(uuid.uuid4()), "generated")
