"""Which session a request belongs to.

Order: the `X-Claude-Code-Session-Id` header, else `x-session-id`, else the
`session_id` inside `metadata.user_id` (Claude Code sends it as a JSON string),
else a new id that the response returns in an `x-session-id` header.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SessionRef", "resolve_session"]

_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True, slots=True)
class SessionRef:
    """A resolved session id and where it came from."""

    session_id: str
    source: str  # "header", "metadata" or "generated"

    @property
    def generated(self) -> bool:
        """True when the client sent no id and must learn it from the response header."""
        return self.source == "generated"

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


def resolve_session(headers: Mapping[str, str], body: Mapping[str, Any]) -> SessionRef:
    """The session for a request (see module docstring); ids that are not safe are ignored."""
    candidates = (
        (headers.get("x-claude-code-session-id"), "header"),
        (headers.get("x-session-id"), "header"),
        (_from_metadata(body), "metadata"),
    )
    for value, source in candidates:
        if value and _VALID_ID.match(value):
            return SessionRef(value, source)
    return SessionRef(str(uuid.uuid4()), "generated")
