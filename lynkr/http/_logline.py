"""Request ids and the one canonical log line per request.

Every response carries a `request-id` header (`req_` + 24 hex digits). At the end of
a request exactly one `request_completed` line is logged: on `/v1/messages` once the
response's last byte was written or the client left (so the line is off the client's
critical path), on Quart's routes as the response leaves the app. It has the request
id, session, provider, model, status, outcome (a turn's own outcome once a turn
began; for other requests `ok` below status 400 and `rejected` from 400), usage
(`usage_in`/`usage_out`/`usage_cache_read`: key names without "token", which the
secret redactor would hide), attempts and latency. Headers are never logged.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

import structlog

from lynkr.orchestrator import TurnInfo

__all__ = ["RequestLog", "new_request_id"]

log = structlog.get_logger()


def new_request_id() -> str:
    """A fresh request id."""
    return "req_" + secrets.token_hex(12)


@dataclass(slots=True)
class RequestLog:
    """What the canonical line will say; `emit` logs it once."""

    request_id: str
    method: str
    path: str
    started: float = field(default_factory=time.perf_counter)
    turn: TurnInfo = field(default_factory=TurnInfo)
    model: str | None = None
    stream: bool | None = None
    emitted: bool = False

    def emit(self, status: int) -> None:
        """Log the canonical line (only the first call logs)."""
        if self.emitted:
            return
        self.emitted = True
        turn = self.turn
        log.info(
            "request_completed", request_id=self.request_id, method=self.method,
            path=self.path, status=status,
            session_id=turn.session.session_id if turn.session else None,
            provider=turn.provider, model=self.model, backend_model=turn.backend_model,
            stream=self.stream, turn=turn.turn, outcome=self.outcome(status),
            attempts=turn.attempts,
            usage_in=turn.usage.get("input_tokens"), usage_out=turn.usage.get("output_tokens"),
            usage_cache_read=turn.usage.get("cache_read_input_tokens"),
            latency_ms=round((time.perf_counter() - self.started) * 1000, 2))

    def outcome(self, status: int) -> str:
        """What became of the request: the turn's outcome once a turn began (the
        orchestrator resolved its session); for any other request, its status says."""
        if self.turn.session is not None:
            return self.turn.outcome
        return "ok" if status < 400 else "rejected"
