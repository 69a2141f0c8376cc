"""The session viewer's routes: the page, its static files, its JSON and its live feed.

| route | answers |
|---|---|
| `GET /ui` | the page (`static/index.html`); `/ui/static/…` its script and style |
| `GET /ui/api/sessions?q=&user=&key=&model=&since=&until=` | sessions, last active first |
| `GET /ui/api/sessions/<id>?after=SEQ` | one session: its row, timeline (events after |
|  | `SEQ`), rate-limit refusals (`rate_limits`: all of them, by `position`) and |
|  | conversation |
| `GET /ui/api/usage?since=&until=` | usage per day, model and key |
| `GET /ui/api/audit?session=&tool=&decision=&since=&until=` | policy decisions |
| `GET /ui/api/servers` | MCP servers and their state; tunnel connectors (`lynkr |
|  | connect`) with their state, per user (all users for an admin) |
| `GET /ui/events?after=POSITION` | SSE: `position` each time the log grows (then the |
|  | projections are caught up), a comment every 15 s to keep the line open |

The page and its static files are public (they hold no data); every other route runs
after the app's authentication, and what it answers is cut to the caller's `Viewer`
(`_access`). The projections are caught up before each answer. A session is read from
the log itself (its stream), so the timeline shows every event, not only those the
projections keep. Every answer carries a strict Content-Security-Policy: the page runs
only its own script and styles and connects only to its own origin.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import trio
from quart import Blueprint, Response, current_app, g, request, send_from_directory

from eventstore import BlobRef, EventStoreError, thaw
from eventstore.events.limits import LIMITS_STREAM
from lynkr.errors import InvalidRequestError, NotFoundError
from lynkr.gateway import ANONYMOUS, Principal
from lynkr.ui._access import Viewer, viewer_for
from lynkr.ui._queries import audit_query, session_query, sessions_query, usage_queries
from lynkr.ui._timeline import conversation, refusal_row, timeline_row

__all__ = ["ui"]

STATIC = Path(__file__).parent / "static"
KEEPALIVE = 15.0  # seconds between SSE comments while the log is quiet
REFUSALS_SCANNED = 5000  # newest `limits` events searched for a session's refusals
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

ui = Blueprint("ui", __name__, url_prefix="/ui", static_folder="static",
               static_url_path="/static")


@ui.after_request
async def _harden(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _system() -> Any:
    return current_app.extensions["lynkr"]


def _viewer() -> Viewer:
    principal = g.get("principal")
    return viewer_for(principal if isinstance(principal, Principal) else ANONYMOUS,
                      auth_enabled=_system().settings.auth.enabled,
                      remote_addr=request.remote_addr)


def _json(body: Any) -> Response:
    return Response(json.dumps(body, default=str), content_type="application/json")


async def _rows(sql: str, args: list[Any]) -> list[dict[str, Any]]:
    projections = _system().projections
    if projections is None:
        return []
    await projections.catch_up_now()
    rows: list[dict[str, Any]] = await projections.query(sql, args)
    return rows


@ui.get("")
@ui.get("/")
async def page() -> Response:
    """The viewer's one page (everything else it shows comes from `/ui/api`)."""
    return await send_from_directory(STATIC, "index.html")


@ui.get("/api/sessions")
async def sessions() -> Response:
    """Sessions the caller may see, filtered by the query."""
    rows = await _rows(*sessions_query(_viewer(), request.args))
    return _json({"data": rows})


def _refusals(recorder: Any, session_id: str) -> list[dict[str, Any]]:
    """Rows of the session's rate-limit refusals among the newest `REFUSALS_SCANNED`
    of the `limits` stream (blocking read)."""
    first = max(1, recorder.stream_version(LIMITS_STREAM) - REFUSALS_SCANNED + 1)
    rows = (refusal_row(r) for r in recorder.read_stream(LIMITS_STREAM, first)
            if getattr(r.event, "session_id", None) == session_id)
    return [row for row in rows if row is not None]


def _read_session(recorder: Any, session_id: str, after: int) -> dict[str, Any]:
    """The session's timeline rows after `after`, its rate-limit refusals and its
    conversation (blocking reads)."""
    records = recorder.read_stream(f"session-{session_id}")

    def load(ref: Any) -> Any:
        if not isinstance(ref, BlobRef):
            return ref
        try:
            return thaw(recorder.load_blob(ref))
        except EventStoreError:
            return {"missing_blob": ref.hex}

    return {"timeline": [timeline_row(r, load) for r in records if r.seq > after],
            "rate_limits": _refusals(recorder, session_id),
            "conversation": conversation(records, load),
            "version": records[-1].seq if records else 0}


@ui.get("/api/sessions/<session_id>")
async def session(session_id: str) -> Response:
    """One session the caller may see: row, timeline and conversation."""
    after = request.args.get("after", "0")
    if not after.isdigit():
        raise InvalidRequestError("after must be a sequence number")
    found = await _rows(*session_query(_viewer(), session_id))
    if not found:
        raise NotFoundError(f"no session {session_id!r} that you may see")
    body = await trio.to_thread.run_sync(_read_session, _system().recorder, session_id,
                                         int(after))
    return _json({"session": found[0], **body})


@ui.get("/api/usage")
async def usage() -> Response:
    """Usage per day, model and key (the caller's own unless an admin)."""
    queries = usage_queries(_viewer(), request.args)
    body = {by: [r for r in await _rows(sql, args) if r["requests"] is not None]
            for by, (sql, args) in queries.items()}
    return _json(body)


@ui.get("/api/audit")
async def audit() -> Response:
    """Policy decisions, newest first, filtered by the query."""
    return _json({"data": await _rows(*audit_query(_viewer(), request.args))})


@ui.get("/api/servers")
async def servers() -> Response:
    """The MCP servers attached to this gateway and their state, and the callback
    tunnel's connectors (every user's for an admin, the caller's own user's otherwise)."""
    viewer = _viewer()
    system = _system()
    body: dict[str, Any] = {"mcp": [], "mcp_enabled": system.mcp is not None,
                            "tunnel": _tunnel_views(system.tunnel, viewer),
                            "tunnel_enabled": system.tunnel is not None}
    if system.mcp is not None:
        views = system.mcp.catalogue().servers
        body["mcp"] = [{"server": name, "state": view.state, "transport": view.transport,
                        "restarts": view.restarts, "tools": len(view.tools), "pid": view.pid,
                        "last_reason": view.last_reason}
                       for name, view in sorted(views.items())]
    return _json(body)


def _tunnel_views(tunnel: Any, viewer: Viewer) -> list[dict[str, Any]]:
    """`Tunnel.servers` of each user the viewer may see (`GET /api/mcp/servers/{user}`)."""
    if tunnel is None:
        return []
    users = tunnel.users() if viewer.sees_all else [viewer.user]
    return [tunnel.servers(user) for user in users]


async def _positions(recorder: Any, projections: Any, after: int) -> AsyncIterator[bytes]:
    """SSE frames: the log's position each time it passes `after` (module docstring)."""
    token = trio.lowlevel.current_trio_token()
    grown = trio.Event()

    def wake() -> None:  # on the trio thread: the current event, not one captured earlier
        grown.set()

    def announce(_position: int) -> None:  # on the committing thread: hand the news on
        with contextlib.suppress(trio.RunFinishedError):  # the gateway has stopped
            token.run_sync_soon(wake)

    remove = recorder.add_commit_listener(announce)
    try:
        yield b"retry: 2000\n\n"
        position = after
        while True:
            latest = recorder.last_position()
            if latest > position:
                if projections is not None:
                    await projections.catch_up_now()
                position = latest
                yield f"event: position\ndata: {json.dumps({'position': position})}\n\n".encode()
                continue
            with trio.move_on_after(KEEPALIVE) as waited:
                await grown.wait()
            grown = trio.Event()
            if waited.cancelled_caught:
                yield b": keepalive\n\n"
    finally:
        remove()


@ui.get("/events")
async def events() -> Response:
    """The live feed the page follows (module docstring)."""
    _viewer()
    after = request.args.get("after", "0")
    if not after.isdigit():
        raise InvalidRequestError("after must be a log position")
    system = _system()
    response = Response(_positions(system.recorder, system.projections, int(after)),
                        content_type="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.timeout = None
    return response
