"""`GET /health` and `GET /v1/health`: the gateway's version, provider reachability and
event-store status.

Reachability is a TCP connect to the active backend (1 s timeout, no request sent),
plus each provider actor's circuit-breaker state and its client's connection pool
(connections open and idle, requests waiting for one, connections opened and
requests sent on a reused connection so far). The answer is 200 while the
gateway can serve (even with no provider configured, which it reports), and 503
when the event store cannot be read. It also counts the session commands retried
after another gateway appended first (`sessions.conflicts_retried`).

`GET /health/ready` is readiness, for a load balancer: 200 `{"ready": true}` while the
gateway should get requests; 503 `{"ready": false, "reasons": [...]}` while the event
store cannot be read, the shared limits store (`LYNKR_LIMITS_STORE`) cannot be reached,
or the gateway is draining for shutdown. `/health` stays liveness.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit

import trio
from quart import Blueprint, Response, current_app

from actors import conflict_retries
from lynkr._version import lynkr_version

__all__ = ["health", "probe_tcp"]

health = Blueprint("health", __name__)

_PROBE_TIMEOUT = 1.0


async def probe_tcp(url: str, limit: float = _PROBE_TIMEOUT) -> str | None:
    """None if a TCP connection to `url`'s host and port opens in time, else why not."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with trio.move_on_after(limit):
        try:
            stream = await trio.open_tcp_stream(parts.hostname or "", port)
        except OSError as exc:
            return f"connect failed: {exc.strerror or type(exc).__name__}"
        await stream.aclose()
        return None
    return "connect timed out"


async def _store_status(system: Any) -> dict[str, Any]:
    try:
        status = await system.store.check_health()
    except Exception as exc:  # noqa: BLE001 - a health check reports every failure
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": bool(getattr(status, "ok", True)), **_plain(status)}


def _plain(value: Any) -> dict[str, Any]:
    try:
        return {k: v for k, v in asdict(value).items() if k != "ok"}
    except TypeError:
        return {}


async def _providers(system: Any) -> dict[str, Any]:
    settings = system.settings.providers
    breakers = {h.name: asdict(h) for h in await system.providers.health()}
    active = settings.active
    out: dict[str, Any] = {"active": settings.provider, "configured": active is not None}
    if active is None:
        out["message"] = settings.missing_message()
        return out
    problem = await probe_tcp(active.url)
    pool = system.pool_statistics(active.name)
    out.update(reachable=problem is None, breaker=breakers.get(active.name),
               pool=asdict(pool) if pool is not None else None)
    if problem:
        out["error"] = problem
    return out


@health.route("/health", methods=["GET"])
@health.route("/v1/health", methods=["GET"])
async def check() -> Response:
    """Provider reachability and event-store status."""
    system = current_app.extensions["lynkr"]
    store = await _store_status(system)
    providers = await _providers(system)
    ok = store["ok"]
    status = "ok" if ok and providers.get("reachable", False) else ("degraded" if ok else "down")
    body = {"status": status, "version": lynkr_version(), "event_store": store,
            "provider": providers, "sessions": {"conflicts_retried": conflict_retries()}}
    return Response(json.dumps(body, default=str), status=200 if ok else 503,
                    content_type="application/json")


async def _limits_ready(system: Any) -> bool:
    ready = getattr(system.limiter, "ready", None)
    if ready is None:  # in memory: nothing to reach
        return True
    return bool(await ready())


@health.route("/health/ready", methods=["GET"])
async def ready() -> Response:
    """Readiness (module docstring): 200 or 503 with the reasons."""
    system = current_app.extensions["lynkr"]
    reasons = []
    draining = current_app.extensions.get("lynkr.draining")
    if draining is not None and draining.is_set():
        reasons.append("shutting down")
    if not (await _store_status(system))["ok"]:
        reasons.append("event store unreachable")
    if not await _limits_ready(system):
        reasons.append("limits store unreachable")
    body: dict[str, Any] = {"ready": not reasons}
    if reasons:
        body["reasons"] = reasons
    return Response(json.dumps(body), status=503 if reasons else 200,
                    content_type="application/json")
