"""Events of `whatif-<id>` streams: `lynkr replay SESSION --provider NAME` runs.

A what-if re-sends a session's recorded requests to another backend; nothing is
appended to the session itself. Each re-sent turn is one `WhatIfAnswered` (the answer,
or the error the backend gave) in the stream `whatif-<session id>`, so runs against
several backends sit side by side and can be read again later.
"""

from __future__ import annotations

from dataclasses import dataclass

from eventstore._codec import BlobRef
from eventstore._registry import EVENTS, Event

__all__ = ["WhatIfAnswered"]


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class WhatIfAnswered(Event):
    """One recorded turn re-sent to `provider`, and what came back."""

    session_id: str
    turn: int
    provider: str
    backend_model: str
    message: BlobRef | None  # the Anthropic message (None: the backend failed)
    error: str | None
    usage: dict[str, int]
    latency_ms: float
