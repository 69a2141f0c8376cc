"""`Tunnel`: the gateway's hub of the callback tunnel (`lynkr connect` connectors).

A connector `register`s its tools (`attach`); they are offered to its user's sessions
only (`specs_for(user)`, the agent loop's `user_tools`) as `ToolSpec`s in the `local`
group (tags ``tunnel`` and ``tunnel:<user>``). When the model calls one, the spec's
handler (`ToolRunner` has recorded its `PolicyDecided` and `ToolCallStarted`) records
`ToolCallQueued` in the session through the runner's sink — before anything is sent —
then queues the call for the least loaded connector of the user offering the tool, or
for the first one that comes (`waiting`), and waits for its result up to
`LYNKR_TUNNEL_CALL_TIMEOUT` seconds. Whoever serves a connector takes its calls: the
WebSocket's sender (`next_message`) or a long poll (`wait_calls`); results come back
through `resolve`, once per call id (a second result of a call is ignored).

A connector that goes away (`detach`: its WebSocket closed, its heartbeat or polls
stopped, another connection took its id) hands back its calls: those never sent are
queued again, a read-only call it was running is queued again once (to a reconnecting
connector of the same user), any other fails with a result saying the connector went
away. Its tools stay offered for `LYNKR_TUNNEL_GRACE` seconds, so a call made while it
reconnects waits for it. A refusal by the connector's own rules (a `result` with a
`rule`) is recorded as a `PolicyDecided` deny naming that rule (policy ``tunnel``), and
the model gets the `is_error` result. Connector arrivals and departures are
`ConnectorAttached`/`ConnectorDetached` events in the `tunnel-<user>` stream.

Everything here runs on the trio thread; the state is `lynkr.tunnel._state`.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
import trio

from eventstore import ANY_VERSION, Event
from eventstore.events.session import ToolCallQueued
from eventstore.events.tunnel import ConnectorAttached, ConnectorDetached, tunnel_stream
from lynkr.errors import ToolError
from lynkr.tools import CallContext, Decision, StoreSessionSink, ToolContext, ToolSpec
from lynkr.tunnel._protocol import Register, ResultMessage, ToolInfo
from lynkr.tunnel._settings import TunnelSettings
from lynkr.tunnel._state import Connector, PendingCall, UserTunnel, checked_tools

if TYPE_CHECKING:
    from actors import EventStore

__all__ = ["Tunnel", "TunnelStatistics", "error_text"]

log = structlog.get_logger()

RECORD_TIMEOUT = 10.0  # seconds a shielded lifecycle append may take
POLL_STALE_FACTOR = 2.0  # a poller silent for this many heartbeats (and not polling) is gone


@dataclass(frozen=True, slots=True)
class TunnelStatistics:
    """Counts for `GET /api/mcp/status` (no user names)."""

    users: int
    connectors: int
    pending_calls: int  # queued or waiting, not yet sent
    in_flight: int  # sent, not yet answered
    answered: int  # results received since the gateway started
    mean_latency_ms: float | None  # send → result, over the answered calls


class Tunnel:
    """The gateway side of the callback tunnel (see module docstring)."""

    def __init__(self, settings: TunnelSettings, store: EventStore) -> None:
        self.settings = settings
        self.store = store
        self._users: dict[str, UserTunnel] = {}
        self._answered = 0
        self._latency_total = 0.0

    # --- connectors -------------------------------------------------------------------

    def connector(self, user: str, connector_id: str) -> Connector | None:
        """`user`'s attached connector of that id, if any."""
        hub = self._users.get(user)
        return None if hub is None else hub.connectors.get(connector_id)

    async def attach(self, user: str, register: Register, *, transport: str,
                     key_id: str | None, current: Connector | None = None) -> Connector:
        """Attach (or update) the connector `register` names, for `user`.

        `current` is the connector this connection already serves (its tools are updated
        in place). Another live connector of that id is detached as ``replaced`` first,
        handing its calls to this one.

        Returns:
            The connector, with the calls waiting for its tools queued to it.

        Raises:
            InvalidRequestError: a tool name that is not ``local_<tool>`` or
                ``mcp_<server>_<tool>`` (letters, digits, ``_``, ``-``; 64 at most), or
                a name given twice.
        """
        tools = checked_tools(register.tools)
        hub = self._users.setdefault(user, UserTunnel(user))
        old = hub.connectors.get(register.connector_id)
        if current is not None and old is current:
            connector = current
            connector.tools = tools
        else:
            if old is not None:
                await self.detach(old, "replaced")
            connector = Connector(connector_id=register.connector_id, user=user,
                                  transport=transport, key_id=key_id, tools=tools)
            hub.connectors[connector.connector_id] = connector
        for name in tools:
            hub.remembered.pop(name, None)
        self._place_waiting(hub)
        log.info("tunnel_connector_attached", user=user, connector_id=connector.connector_id,
                 transport=transport, tools=len(tools))
        await self._record(user, ConnectorAttached(
            connector_id=connector.connector_id, user=user, transport=transport,
            tools=tuple(sorted(tools)), key_id=key_id))
        return connector

    async def detach(self, connector: Connector, reason: str) -> None:
        """Take `connector` away (see module docstring); recorded, shielded."""
        if connector.gone:
            return
        connector.gone = True
        connector.notify()
        hub = self._users[connector.user]
        if hub.connectors.get(connector.connector_id) is connector:
            del hub.connectors[connector.connector_id]
        until = trio.current_time() + self.settings.grace
        for name, info in connector.tools.items():
            if self.settings.grace > 0 and hub.choose(name) is None:
                hub.remembered[name] = (info, until)
        unsent, running = list(connector.outbox), list(connector.in_flight.values())
        connector.outbox.clear()
        connector.in_flight.clear()
        for call in unsent:
            self._place(hub, call)
        redelivered = failed = 0
        for call in running:
            if call.finished:
                continue
            if call.read_only and call.deliveries < 2:  # safe to run again, once
                redelivered += 1
                self._place(hub, call)
            else:
                failed += 1
                call.failure = "gone"
                call.done.set()
        log.info("tunnel_connector_detached", user=connector.user,
                 connector_id=connector.connector_id, reason=reason,
                 redelivered=redelivered, failed=failed)
        with trio.move_on_after(RECORD_TIMEOUT) as scope:
            scope.shield = True
            await self._record(connector.user, ConnectorDetached(
                connector_id=connector.connector_id, user=connector.user, reason=reason,
                redelivered=redelivered, failed=failed))

    def touch(self, connector: Connector) -> None:
        """The connector was heard from now."""
        connector.last_seen = trio.current_time()

    async def reap(self) -> int:
        """Detach pollers that stopped polling; forget expired remembered tools.

        Returns:
            The connectors detached.
        """
        now = trio.current_time()
        stale_after = POLL_STALE_FACTOR * self.settings.heartbeat
        stale = [c for hub in self._users.values() for c in hub.connectors.values()
                 if c.transport == "poll" and c.polls == 0 and now - c.last_seen > stale_after]
        for connector in stale:
            await self.detach(connector, "poll_stale")
        for user, hub in list(self._users.items()):
            hub.remembered = {n: kept for n, kept in hub.remembered.items() if kept[1] > now}
            if hub.idle:
                del self._users[user]
        return len(stale)

    async def serve_reaper(self, *, task_status: trio.TaskStatus[None]
                           = trio.TASK_STATUS_IGNORED) -> None:
        """Run `reap` every second, until cancelled."""
        task_status.started()
        while True:
            await trio.sleep(1.0)
            await self.reap()

    # --- what the model is offered ----------------------------------------------------

    def specs_for(self, user: str) -> Sequence[ToolSpec]:
        """`user`'s tunnelled tools now, as server tools (the agent loop's `user_tools`)."""
        hub = self._users.get(user)
        if hub is None:
            return ()
        return [self._spec(user, info) for info in hub.tools(trio.current_time()).values()]

    def _spec(self, user: str, info: ToolInfo) -> ToolSpec:
        return ToolSpec(name=info.name, description=info.description,
                        input_schema=info.input_schema,
                        handler=functools.partial(self._handle, user, info),
                        policy="tunnel", read_only=info.read_only, effects=not info.read_only,
                        tags=("tunnel", f"tunnel:{user}"))

    # --- calls ------------------------------------------------------------------------

    async def _handle(self, user: str, info: ToolInfo, ctx: ToolContext,
                      inputs: Mapping[str, Any]) -> Any:
        """The handler of a tunnelled tool: queued (an event), sent, awaited."""
        call = self._new_call(user, info, inputs)
        hub = self._users.get(user)
        target = None if hub is None else hub.choose(info.name)
        await self.record_queued(ctx, call, target)
        result = await self._await(call)
        if result.ok:
            return result.content
        error = error_text(result.content)
        if result.rule:
            await ctx.enforce(Decision.deny(
                "tunnel", result.rule, f"the user's connector refused it: {error}",
                connector_id=call.connector_id))
        raise ToolError(f"{info.name} failed on the user's machine: {error}")

    async def request(self, user: str, tool: str, inputs: Mapping[str, Any], *,
                      read_only: bool = True) -> ResultMessage:
        """Send one call of `tool` to `user`'s connectors and return its result, with no
        session and no events (the transport alone: `tools/bench_tunnel.py`).

        Raises:
            ToolError: no result in time, or the connector went away.
        """
        info = ToolInfo(tool, "", {}, read_only)
        return await self._await(self._new_call(user, info, inputs))

    def _new_call(self, user: str, info: ToolInfo, inputs: Mapping[str, Any]) -> PendingCall:
        return PendingCall(call_id=f"tc_{uuid.uuid4().hex}", user=user, tool=info.name,
                           input=dict(inputs), read_only=info.read_only,
                           deadline=trio.current_time() + self.settings.call_timeout)

    async def _await(self, call: PendingCall) -> ResultMessage:
        """Queue `call`, wait for its end; a timeout or a departure raises `ToolError`."""
        hub = self._users.setdefault(call.user, UserTunnel(call.user))  # kept while it waits
        hub.calls[call.call_id] = call
        self._place(hub, call)
        try:
            with trio.move_on_at(call.deadline):
                await call.done.wait()
        finally:
            self._forget(hub, call)
        if call.result is not None:
            return call.result
        timeout = self.settings.call_timeout
        if call.failure == "gone":
            raise ToolError(f"{call.tool}: the user's connector went away while the call ran; "
                            "it is not retried because the tool may change things (run it "
                            "again once `lynkr connect` is back)")
        if call.deliveries == 0:
            raise ToolError(f"{call.tool}: no connector of this user came within {timeout:g} s "
                            "(LYNKR_TUNNEL_CALL_TIMEOUT); is `lynkr connect` running?")
        raise ToolError(f"{call.tool}: the user's connector did not answer within "
                        f"{timeout:g} s (LYNKR_TUNNEL_CALL_TIMEOUT)")

    def _place(self, hub: UserTunnel, call: PendingCall) -> None:
        """Queue `call` for the best connector offering its tool, else keep it waiting."""
        connector = hub.choose(call.tool)
        if connector is None:
            call.connector_id = None
            hub.waiting.append(call)
            return
        call.connector_id = connector.connector_id
        connector.outbox.append(call)
        connector.notify()

    def _place_waiting(self, hub: UserTunnel) -> None:
        waiting, hub.waiting = list(hub.waiting), type(hub.waiting)()
        for call in waiting:
            if not call.finished:
                self._place(hub, call)

    def _forget(self, hub: UserTunnel, call: PendingCall) -> None:
        """Drop `call` everywhere; a connector running it is told to cancel it."""
        hub.calls.pop(call.call_id, None)
        if call in hub.waiting:
            hub.waiting.remove(call)
        connector = hub.connectors.get(call.connector_id or "")
        if connector is None:
            return
        if call in connector.outbox:
            connector.outbox.remove(call)
        running = connector.in_flight.pop(call.call_id, None) is not None
        if running and not call.finished and connector.transport == "ws":  # pollers: no cancel
            connector.cancels.append(call.call_id)
            connector.notify()

    def resolve(self, user: str, result: ResultMessage) -> bool:
        """Record `result` for `user`'s open call; False if there is none (answered
        already, timed out, unknown, or another user's)."""
        hub = self._users.get(user)
        call = None if hub is None else hub.calls.get(result.call_id)
        if call is None or call.finished:
            log.info("tunnel_result_ignored", user=user, call_id=result.call_id)
            return False
        call.result = result
        if call.deliveries:
            self._answered += 1
            self._latency_total += time.perf_counter() - call.sent_at
        call.done.set()
        return True

    async def wait_calls(self, connector: Connector, wait_s: float) -> list[PendingCall]:
        """The calls queued for a poller, waiting up to `wait_s` seconds for one."""
        connector.polls += 1
        self.touch(connector)
        try:
            with trio.move_on_after(wait_s):
                while not connector.outbox and not connector.gone:
                    await connector.wake.wait()
                    connector.rearm()
        finally:
            connector.polls -= 1
            self.touch(connector)
        return [] if connector.gone else connector.take_calls()

    async def next_message(self, connector: Connector) -> dict[str, Any] | None:
        """The next message for a WebSocket connector (`call` or `cancel`); None once it
        is detached."""
        while True:
            if connector.gone:
                return None
            if connector.cancels:
                return {"type": "cancel", "call_id": connector.cancels.popleft()}
            if connector.outbox:
                return connector.take_one().message().as_json()
            await connector.wake.wait()
            connector.rearm()

    # --- reports ----------------------------------------------------------------------

    def statistics(self) -> TunnelStatistics:
        """Counts across users (see `TunnelStatistics`)."""
        hubs = list(self._users.values())
        connectors = [c for hub in hubs for c in hub.connectors.values()]
        pending = sum(len(hub.waiting) for hub in hubs) + sum(len(c.outbox) for c in connectors)
        mean = self._latency_total / self._answered * 1000 if self._answered else None
        return TunnelStatistics(
            users=sum(1 for hub in hubs if hub.connectors), connectors=len(connectors),
            pending_calls=pending, in_flight=sum(len(c.in_flight) for c in connectors),
            answered=self._answered, mean_latency_ms=None if mean is None else round(mean, 3))

    def users(self) -> list[str]:
        """Users with a connector attached or calls open."""
        return sorted(user for user, hub in self._users.items() if not hub.idle)

    def servers(self, user: str) -> dict[str, Any]:
        """`user`'s connectors, their tools and state (`GET /api/mcp/servers/{user}`)."""
        return (self._users.get(user) or UserTunnel(user)).view(trio.current_time())

    # --- events -----------------------------------------------------------------------

    async def _record(self, user: str, event: Event) -> None:
        await self.store.append(tunnel_stream(user), ANY_VERSION, [event])

    @staticmethod
    async def record_queued(ctx: ToolContext, call: PendingCall,
                            target: Connector | None) -> None:
        """`ToolCallQueued` in the calling session, through the runner's own sink."""
        session_id = ctx.session_id
        if session_id is None:
            return
        turn = ctx.turn if isinstance(ctx, CallContext) else None
        tool_call_id = ctx.tool_call_id if isinstance(ctx, CallContext) else None
        sink = ctx.runner.sink if isinstance(ctx, CallContext) else StoreSessionSink(ctx.store)
        timeout = round(call.deadline - trio.current_time(), 3)
        await sink.record(session_id, [ToolCallQueued(
            tool=call.tool, user=call.user, timeout_s=timeout,
            connector_id=None if target is None else target.connector_id,
            tool_call_id=tool_call_id, turn=turn)], turn=turn)


def error_text(content: Any) -> str:
    """The message of a connector's error result (its `{"error": …}`, else the content)."""
    if isinstance(content, Mapping) and "error" in content:
        return str(content["error"])
    return str(content)
