"""`TunnelRelay`: a connector attached to one gateway serves sessions handled by another.

With the event log on PostgreSQL every gateway runs a relay on that database:

- **Offers.** Every second a gateway writes the tunnelled tools its own connectors offer,
  per user, to `lynkr_tunnel_offers` (with a 5 s expiry) and reads the other gateways'
  offers. `specs_for(user)` is the hub's own tools for `user` plus, for a tool no local
  connector offers, the tool of another gateway that does.
- **Calls and results.** Calling such a remote tool records `ToolCallQueued` in the
  session (as the hub does, connector unknown here), then sends a `call` message to the
  gateway holding the connector; that gateway runs it through its hub
  (`Tunnel.request`: queued, delivered, redelivered or failed by the hub's rules) and
  sends back a `result` message. A message is a row of `lynkr_tunnel_messages` (so a
  result of any size fits) announced by `NOTIFY lynkr_tunnel_relay, '<gateway>:<id>'`;
  the addressee's listener thread takes its rows (`DELETE … RETURNING`, also every 5 s
  without a notification) and hands them to the trio thread. The caller waits up to
  `LYNKR_TUNNEL_CALL_TIMEOUT`.

A gateway that dies takes its offers with it after their expiry, and its calls time out
on the caller's side like any unanswered call. The relay is a transport: the policy
decision and the `ToolCompleted` of the call are the calling session's, recorded by its
own gateway's tool runner.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import structlog
import trio
from psycopg.types.json import Jsonb

from lynkr.errors import ToolError
from lynkr.tools import Decision, ToolContext, ToolSpec
from lynkr.tunnel._hub import Tunnel, error_text
from lynkr.tunnel._state import PendingCall

__all__ = ["CHANNEL", "TunnelRelay", "open_relay"]

log = structlog.get_logger()

CHANNEL = "lynkr_tunnel_relay"
_OFFER_EVERY_S = 1.0
_OFFER_TTL_S = 5.0
_LISTEN_POLL_S = 0.5  # how soon the listener thread notices it should stop
_SWEEP_EVERY_S = 5.0  # messages are looked for at least this often, notified or not

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lynkr_tunnel_offers (
    gateway    text NOT NULL,
    user_id    text NOT NULL,
    tools      jsonb NOT NULL,
    expires_at double precision NOT NULL,
    PRIMARY KEY (gateway, user_id)
);
CREATE TABLE IF NOT EXISTS lynkr_tunnel_messages (
    id     bigserial PRIMARY KEY,
    target text NOT NULL,
    body   jsonb NOT NULL
);
"""
_SCHEMA_LOCK = 0x6C796E6B74  # serialise two gateways creating the tables at once


@dataclass(frozen=True, slots=True)
class _RemoteTool:
    gateway: str
    name: str
    description: str
    input_schema: Mapping[str, Any]
    read_only: bool


@dataclass(slots=True)
class _Waiter:
    body: dict[str, Any] | None = None
    done: trio.Event = field(default_factory=trio.Event)


class TunnelRelay:
    """Cross-gateway delivery of tunnelled calls (module docstring). Trio thread, except
    the `_db_*` methods, which run in worker threads."""

    def __init__(self, tunnel: Tunnel, url: str, *, gateway: str | None = None) -> None:
        self.tunnel = tunnel
        self.gateway = gateway or f"gw-{uuid.uuid4().hex[:12]}"
        self._url = url
        self._remote: dict[str, dict[str, _RemoteTool]] = {}
        self._waiting: dict[str, _Waiter] = {}
        self._conn: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one statement or transaction at a time on `_conn`
        self.forwarded = 0  # calls sent to another gateway
        self.served = 0  # calls run here for another gateway

    # -- what the sessions see ------------------------------------------------------------
    def specs_for(self, user: str) -> Sequence[ToolSpec]:
        """`user`'s tunnelled tools: this gateway's, then other gateways' (module doc)."""
        specs = list(self.tunnel.specs_for(user))
        names = {s.name for s in specs}
        for tool in self._remote.get(user, {}).values():
            if tool.name not in names:
                specs.append(ToolSpec(
                    name=tool.name, description=tool.description,
                    input_schema=dict(tool.input_schema),
                    handler=functools.partial(self._call_remote, user, tool),
                    policy="tunnel", read_only=tool.read_only, effects=not tool.read_only,
                    tags=("tunnel", f"tunnel:{user}")))
        return specs

    async def _call_remote(self, user: str, tool: _RemoteTool, ctx: ToolContext,
                           inputs: Mapping[str, Any]) -> Any:
        """The handler of another gateway's tool: queued (an event), relayed, awaited."""
        timeout = self.tunnel.settings.call_timeout
        call = PendingCall(call_id=f"tc_{uuid.uuid4().hex}", user=user, tool=tool.name,
                           input=dict(inputs), read_only=tool.read_only,
                           deadline=trio.current_time() + timeout)
        await Tunnel.record_queued(ctx, call, None)  # the hub's own recording
        waiter = self._waiting[call.call_id] = _Waiter()
        try:
            await self._send(tool.gateway, {
                "kind": "call", "call_id": call.call_id, "user": user, "tool": tool.name,
                "input": call.input, "read_only": tool.read_only, "reply_to": self.gateway})
            self.forwarded += 1
            log.info("tunnel_call_relayed", call_id=call.call_id, tool=tool.name, user=user,
                     to_gateway=tool.gateway)
            with trio.move_on_at(call.deadline):
                await waiter.done.wait()
        finally:
            self._waiting.pop(call.call_id, None)
        body = waiter.body
        if body is None:
            raise ToolError(f"{tool.name}: the gateway holding the user's connector did not "
                            f"answer within {timeout:g} s (LYNKR_TUNNEL_CALL_TIMEOUT)")
        if body["ok"]:
            return body["content"]
        error = error_text(body["content"])
        if body.get("rule"):
            await ctx.enforce(Decision.deny("tunnel", body["rule"],
                                            f"the user's connector refused it: {error}"))
        raise ToolError(f"{tool.name} failed on the user's machine: {error}")

    # -- messages -------------------------------------------------------------------------
    async def _send(self, target: str, body: dict[str, Any]) -> None:
        await trio.to_thread.run_sync(self._db_send, target, body)

    def _deliver(self, nursery: trio.Nursery, body: dict[str, Any]) -> None:
        """A message for this gateway (trio thread)."""
        log.debug("tunnel_relay_message", kind=body.get("kind"), call_id=body.get("call_id"))
        if body.get("kind") == "result":
            waiter = self._waiting.get(str(body.get("call_id")))
            if waiter is not None and not waiter.done.is_set():
                waiter.body = body
                waiter.done.set()
        elif body.get("kind") == "call":
            nursery.start_soon(self._serve_call, body)

    async def _serve_call(self, body: dict[str, Any]) -> None:
        """Run another gateway's call through this gateway's hub; send its result back."""
        self.served += 1
        reply: dict[str, Any] = {"kind": "result", "call_id": body["call_id"]}
        try:
            result = await self.tunnel.request(body["user"], body["tool"], body["input"],
                                               read_only=bool(body["read_only"]))
            reply.update(ok=result.ok, content=result.content, rule=result.rule)
        except ToolError as exc:
            reply.update(ok=False, content=exc.message, rule=None)
        try:
            await self._send(str(body["reply_to"]), reply)
        except psycopg.Error as exc:
            log.warning("tunnel_relay_result_lost", call_id=body["call_id"],
                        error_type=type(exc).__name__)

    # -- the database (worker threads) ------------------------------------------------------
    def _db_open(self) -> None:
        self._conn = psycopg.connect(self._url, autocommit=True)
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            self._conn.execute(_SCHEMA)

    def _db_send(self, target: str, body: dict[str, Any]) -> None:
        assert self._conn is not None
        with self._lock:
            self._conn.execute(
                "WITH m AS (INSERT INTO lynkr_tunnel_messages (target, body) VALUES (%s, %s) "
                "RETURNING id) SELECT pg_notify(%s, %s || ':' || id) FROM m",
                (target, Jsonb(body), CHANNEL, target))

    def _db_offer(self, offers: dict[str, list[dict[str, Any]]]) -> list[tuple[Any, ...]]:
        """Write this gateway's offers, drop its withdrawn ones; the others' live ones."""
        assert self._conn is not None
        now = time.time()
        with self._lock, self._conn.transaction():
            self._conn.execute("DELETE FROM lynkr_tunnel_offers WHERE gateway = %s "
                               "AND NOT (user_id = ANY(%s))", (self.gateway, list(offers)))
            for user, tools in offers.items():
                self._conn.execute(
                    "INSERT INTO lynkr_tunnel_offers VALUES (%s, %s, %s, %s) ON CONFLICT "
                    "(gateway, user_id) DO UPDATE SET tools = EXCLUDED.tools, "
                    "expires_at = EXCLUDED.expires_at",
                    (self.gateway, user, Jsonb(tools), now + _OFFER_TTL_S))
            rows = self._conn.execute(
                "SELECT gateway, user_id, tools FROM lynkr_tunnel_offers "
                "WHERE gateway <> %s AND expires_at > %s ORDER BY gateway",
                (self.gateway, now)).fetchall()
        return rows

    def _db_listen(self, deliver: Any, token: trio.lowlevel.TrioToken) -> None:
        """The listener thread: take each message addressed here, hand it to trio."""
        with psycopg.connect(self._url, autocommit=True) as conn:
            conn.execute(f"LISTEN {CHANNEL}".encode())
            self._db_take(conn, deliver, token)  # any sent before we listened
            swept = time.monotonic()
            while not self._stop.is_set():
                # No query while `notifies` runs (it holds the connection): wake on the
                # first notification, then take every message addressed here, which
                # also catches one whose notification came during the last take.
                notes = list(conn.notifies(timeout=_LISTEN_POLL_S, stop_after=1))
                mine = any(n.payload.rpartition(":")[0] == self.gateway for n in notes)
                if mine or time.monotonic() - swept > _SWEEP_EVERY_S:
                    swept = time.monotonic()
                    self._db_take(conn, deliver, token)

    def _db_take(self, conn: psycopg.Connection[Any], deliver: Any,
                 token: trio.lowlevel.TrioToken) -> None:
        rows = conn.execute("DELETE FROM lynkr_tunnel_messages WHERE target = %s "
                            "RETURNING id, body", (self.gateway,)).fetchall()
        for _id, body in sorted(rows, key=lambda row: int(row[0])):
            trio.from_thread.run_sync(deliver, body, trio_token=token)

    def _db_close(self) -> None:
        if self._conn is None:
            return
        try:
            with self._lock:
                self._conn.execute("DELETE FROM lynkr_tunnel_offers WHERE gateway = %s",
                                   (self.gateway,))
        except psycopg.Error as exc:  # the offers expire on their own
            log.warning("tunnel_relay_offers_left", error_type=type(exc).__name__)
        self._conn.close()

    # -- lifecycle ----------------------------------------------------------------------
    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and offer until cancelled."""
        token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            deliver = functools.partial(self._deliver, nursery)
            nursery.start_soon(self._listen, deliver, token)
            try:
                await self._offer_once()
                task_status.started()
                while True:
                    await trio.sleep(_OFFER_EVERY_S)
                    await self._offer_once()
            finally:  # cancelled or failed: the listener thread returns within a poll
                self._stop.set()

    async def _listen(self, deliver: Any, token: trio.lowlevel.TrioToken) -> None:
        """Run the listener thread; again a second later if the database failed it."""
        while not self._stop.is_set():
            try:
                # The thread is not cancellable while it waits on the socket: `serve`
                # sets `_stop` when it ends, which it notices within `_LISTEN_POLL_S`.
                await trio.to_thread.run_sync(self._db_listen, deliver, token)
            except psycopg.Error as exc:
                log.warning("tunnel_relay_listen_failed", error_type=type(exc).__name__)
                await trio.sleep(1.0)

    async def _offer_once(self) -> None:
        offers = {user: [{"name": s.name, "description": s.description,
                          "input_schema": s.input_schema, "read_only": s.read_only}
                         for s in self.tunnel.specs_for(user)]
                  for user in self.tunnel.users()}
        offers = {user: tools for user, tools in offers.items() if tools}
        try:
            seen = await trio.to_thread.run_sync(self._db_offer, offers)
        except psycopg.Error as exc:
            log.warning("tunnel_relay_offer_failed", error_type=type(exc).__name__)
            return
        remote: dict[str, dict[str, _RemoteTool]] = {}
        for gateway, user, tools in seen:
            for tool in tools:
                remote.setdefault(user, {}).setdefault(tool["name"], _RemoteTool(
                    gateway, tool["name"], tool["description"], tool["input_schema"],
                    bool(tool["read_only"])))
        self._remote = remote


@asynccontextmanager
async def open_relay(tunnel: Tunnel, url: str) -> AsyncIterator[TunnelRelay]:
    """A running relay on the PostgreSQL database `url` (the event store's).

    Raises:
        psycopg.Error: the database cannot be reached at start.
    """
    relay = TunnelRelay(tunnel, url)
    await trio.to_thread.run_sync(relay._db_open)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(relay.serve)
            yield relay
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(relay._db_close)
