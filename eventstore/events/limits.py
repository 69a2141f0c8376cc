"""Events of the `limits` stream: requests the gateway's rate limits refused.

Admitted requests need no event of their own (their `TurnStarted`, with the key in its
metadata, is what the limits count); a refusal starts no turn, so it is recorded here.
"""

from __future__ import annotations

from dataclasses import dataclass

from eventstore._registry import EVENTS, Event, Payload

__all__ = ["LIMITS_STREAM", "RateLimited"]

LIMITS_STREAM = "limits"


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimited(Event):
    """A request was refused with 429 `rate_limit_error` (the key is in the metadata).

    v2 adds `session_id`: the session the refused request named (its
    `x-claude-code-session-id` / `x-session-id` header, `metadata.user_id`, or the id
    inferred from its first message); None when it named none, and in older events.
    """

    class_version = 2

    request_id: str
    subject: str  # what was counted: the key id, or the user with LYNKR_LIMITS_BY=user
    tier: str
    limit: str  # "requests_per_minute", "requests_per_day", "tokens_per_day", "concurrent"
    retry_after: int  # seconds the client was told to wait
    route: str  # the path refused, e.g. "/v1/messages"
    session_id: str | None = None  # v2


@EVENTS.upcaster("RateLimited", from_version=1)
def _rate_limited_v1_v2(payload: Payload) -> Payload:
    payload["session_id"] = None
    return payload
