"""`GET /metrics`: the gateway's Prometheus metrics, with the official `prometheus_client`.

Access: a loopback client, or (with `LYNKR_ADMIN_TOKEN` set and auth off) one presenting
the token; with the team gateway's auth on, a key or JWT with the `admin` scope. Anyone
else gets a 403 `permission_error` (a missing credential is the app's 401).

Two sources, so the request path is instrumented in one place only:
- **Per request** — `GatewayMetrics.observe`, the sink of the canonical log line
  (`RequestLog.emit`): requests by route, status, provider, backend model and outcome;
  latency histograms of the whole request, the upstream call and Lynkr's own overhead
  (request minus upstream); time to the first upstream byte of a stream; tokens by
  model, key and kind; prompt-cache lookups (hit or miss).
- **At scrape time** — `lynkr.http._metrics_log`: counters folded from the events
  appended since start (policy decisions, server tool calls and durations, rate-limit
  refusals) and statistics read from their owners (prompt cache entries, stores and
  evictions; MCP servers by state and restarts; event store writer counters, append
  latency (`lynkr_eventstore_append_seconds`, submit to commit) and WAL
  size; projection lag; the callback tunnel's connectors and pending calls).

Every gateway app has its own `CollectorRegistry` (two gateways in one process do not
mix). Only the gateway process records metrics: the projector child
(`lynkr.projector`) never imports `prometheus_client`, and its work is visible through
what the gateway reads (projection lag), so prometheus_client's multiprocess mode and
`PROMETHEUS_MULTIPROC_DIR` are not needed. Several `lynkr serve` processes each serve
their own `/metrics`; Prometheus sums them.
"""

from __future__ import annotations

import os
from typing import Any

import trio
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from quart import Blueprint, Response, current_app, g, request

from lynkr.errors import PermissionDeniedError
from lynkr.http._logline import RequestLog
from lynkr.http._metrics_log import LogTally, ScrapeCollector, ScrapeSnapshot

__all__ = ["METRICS_EXTENSION", "GatewayMetrics", "metrics_api", "require_observer"]

METRICS_EXTENSION = "lynkr.metrics"
"""Where the app keeps its `GatewayMetrics` (`app.extensions`)."""

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    60.0, 120.0, 300.0)
_OVERHEAD_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                     2.5)
_TOKEN_KINDS = (("input_tokens", "input"), ("output_tokens", "output"),
                ("cache_read_input_tokens", "cache_read"),
                ("cache_creation_input_tokens", "cache_creation"))

metrics_api = Blueprint("metrics", __name__)


class GatewayMetrics:
    """One gateway's registry: the per-request instruments and the scrape collector."""

    def __init__(self, system: Any) -> None:
        self.system = system
        self.registry = CollectorRegistry(auto_describe=False)
        reg = self.registry
        self.requests = Counter("lynkr_requests", "Requests answered",
                                ["route", "status", "provider", "backend_model", "outcome"],
                                registry=reg)
        self.duration = Histogram("lynkr_request_duration_seconds",
                                  "Whole request, first byte in to last byte out", ["route"],
                                  buckets=_LATENCY_BUCKETS, registry=reg)
        self.upstream = Histogram("lynkr_upstream_duration_seconds",
                                  "The upstream call of a turn", ["provider"],
                                  buckets=_LATENCY_BUCKETS, registry=reg)
        self.overhead = Histogram("lynkr_overhead_seconds",
                                  "Lynkr's own time per request: request minus upstream",
                                  ["route"], buckets=_OVERHEAD_BUCKETS, registry=reg)
        self.first_token = Histogram("lynkr_time_to_first_token_seconds",
                                     "Streaming turns: upstream request sent to first byte",
                                     ["provider"], buckets=_LATENCY_BUCKETS, registry=reg)
        self.tokens = Counter("lynkr_tokens", "Tokens by model, key and kind",
                              ["model", "key", "kind"], registry=reg)
        self.cache_lookups = Counter("lynkr_prompt_cache_lookups",
                                     "Prompt cache lookups of turns, by result", ["result"],
                                     registry=reg)
        self.collector = ScrapeCollector(LogTally.starting_now(system.recorder))
        reg.register(self.collector)
        self._refreshing = trio.Lock()

    def observe(self, record: RequestLog, status: int, elapsed: float) -> None:
        """Count one finished request (the canonical log line's sink)."""
        info = record.turn
        route = record.route or record.path
        upstream = record.upstream_s(record.started + elapsed)
        self.requests.labels(route, str(status), info.provider or "", info.backend_model or "",
                             record.outcome(status)).inc()
        self.duration.labels(route).observe(elapsed)
        self.overhead.labels(route).observe(max(0.0, elapsed - upstream))
        if info.upstream is not None and info.provider is not None:
            self.upstream.labels(info.provider).observe(upstream)
            if record.stream and info.upstream.first_byte_ms is not None:
                self.first_token.labels(info.provider).observe(info.upstream.first_byte_ms / 1000)
        model, key = info.backend_model or record.model or "", record.key or "anonymous"
        for name, kind in _TOKEN_KINDS:
            value = info.usage.get(name)
            if value:
                self.tokens.labels(model, key, kind).inc(value)
        if info.cache_key is not None:
            hit = info.outcome == "cache_hit"
            self.cache_lookups.labels("hit" if hit else "miss").inc()

    async def refresh(self) -> None:
        """Read the scrape-time statistics (log tally, owners' statistics) once."""
        system = self.system
        async with self._refreshing:
            await trio.to_thread.run_sync(self.collector.tally.catch_up, system.recorder)
            cache = system.orchestrator.cache
            mcp = system.mcp
            projections = system.projections
            tunnel = getattr(system, "tunnel", None)
            self.collector.snapshot = ScrapeSnapshot(
                cache=cache.statistics() if cache is not None else None,
                mcp_servers=dict(mcp.catalogue().servers) if mcp is not None else {},
                writer=await system.store.statistics(),
                wal_bytes=_file_size(f"{system.settings.db_path}-wal"),
                projections=await projections.status() if projections is not None else None,
                tunnel=tunnel.statistics() if tunnel is not None else None)

    def render(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


def _file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0  # no WAL yet (or checkpointed and removed)


def require_observer() -> None:
    """Refuse a client that may not read the gateway's metrics (module docstring).

    Raises:
        PermissionDeniedError: an authenticated caller without the `admin` scope, or
            (auth off, no admin token) a client that is not on loopback.
        AuthenticationError: auth off, LYNKR_ADMIN_TOKEN set, and not presented.
    """
    principal = g.get("principal")
    if principal is not None and principal.via in ("key", "jwt", "token"):
        if not principal.allows("admin"):
            raise PermissionDeniedError("this route needs a key with the admin scope")
        return
    from lynkr.mcp import admin_allowed

    admin_allowed(request.remote_addr, request.headers.get("authorization"),
                  current_app.extensions["lynkr"].settings.mcp.admin_token)


@metrics_api.get("/metrics")
async def metrics() -> Response:
    """The gateway's metrics in Prometheus' text format."""
    require_observer()
    gateway: GatewayMetrics = current_app.extensions[METRICS_EXTENSION]
    await gateway.refresh()
    return Response(gateway.render(), content_type=CONTENT_TYPE_LATEST)
