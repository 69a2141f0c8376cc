"""Request ids and the one canonical log line per request.

Every response carries a `request-id` header (`req_` + 24 hex digits). At the end of
a request exactly one `request_completed` line is logged: on `/v1/messages` once the
response's last byte was written or the client left (so the line is off the client's
critical path), on Quart's routes as the response leaves the app. It has the request
id, session, provider, model, status, outcome (a turn's own outcome once a turn
began; for other requests `ok` below status 400 and `rejected` from 400), usage
(`usage_in`/`usage_out`/`usage_cache_read`: key names without "token", which the
secret redactor would hide), attempts, latency, and how much of it was upstream
(`upstream_ms`) and Lynkr's own (`overhead_ms`, see `RequestLog.overhead_ms`).
Headers are never logged. When the app keeps metrics, `emit` also hands the finished
record to its `sink` (`lynkr.http._metrics.GatewayMetrics.observe`): the one place the
request path is instrumented.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
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
    route: str | None = None  # the route's rule for metrics (None: `path`)
    key: str | None = None  # the caller's key id, once authenticated
    sink: Callable[[RequestLog, int, float], None] | None = None  # (record, status, seconds)

    def emit(self, status: int) -> None:
        """Log the canonical line and hand the record to the sink (only the first call)."""
        if self.emitted:
            return
        self.emitted = True
        now = time.perf_counter()
        elapsed = now - self.started
        upstream = self.upstream_s(now)
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
            latency_ms=round(elapsed * 1000, 2), upstream_ms=round(upstream * 1000, 2),
            overhead_ms=round((elapsed - upstream) * 1000, 2))
        if self.sink is not None:
            self.sink(self, status, elapsed)

    def outcome(self, status: int) -> str:
        """What became of the request: the turn's outcome once a turn began (the
        orchestrator resolved its session); for any other request, its status says."""
        if self.turn.session is not None:
            return self.turn.outcome
        return "ok" if status < 400 else "rejected"

    def upstream_s(self, now: float | None = None) -> float:
        """Seconds of this request spent on the upstream call: its recorded duration once
        its answer ended, else the time since it began (so far, for a stream whose
        headers are going out; until the failure, for one that failed); 0 without one."""
        info = self.turn
        if info.upstream is None:
            return 0.0
        now = time.perf_counter() if now is None else now
        if info.upstream_ms is not None:
            spent = info.upstream_ms / 1000
        else:
            spent = now - info.upstream.started
        return max(0.0, min(spent, now - self.started))

    def overhead_ms(self, now: float | None = None) -> float:
        """Lynkr's own milliseconds so far: time since the request came in minus the
        upstream time (`upstream_s`). For a stream's headers that is what Lynkr spent
        before it sent the upstream request; the whole figure is in the log line."""
        now = time.perf_counter() if now is None else now
        return max(0.0, (now - self.started - self.upstream_s(now)) * 1000)
