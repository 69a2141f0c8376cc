"""`Connector`: the user's side of the callback tunnel (`lynkr connect`).

It registers its tools with the gateway, runs the calls the gateway sends and answers
each with a `result` (wire format in `lynkr.tunnel._protocol`). The link is a
WebSocket (`WS {url}/api/mcp/ws/{user_id}`, the key in `x-api-key`) or HTTP polling
(`POST /api/mcp/register`, `/poll`, `/submit`); `auto` tries the WebSocket and falls
back to polling when the gateway refuses the WebSocket (an HTTP status other than
401/403 for the upgrade, or a close with 4000: the gateway has the WebSocket off).
The links live in `lynkr.tunnel._connector_links`.

- **Reconnects forever**: a link that fails or drops is opened again after a capped,
  jittered exponential backoff (reset once a link registered); every new link
  registers again. A gateway that refuses the key (401/403, or a WebSocket closed
  with 1008 policy violation) ends the connector with `GatewayRefusedError`: retrying
  a refused key cannot succeed.
- **Calls outlive links**: calls run in the connector's own nursery and their results
  wait in an outbox, so a result finished while the link was down is delivered by
  the next one (the gateway records a result once per call id). A call already
  answered and delivered again is answered again from a short memory of results.
- **Stopping** (`request_stop`, on SIGINT/SIGTERM): no new calls are run (they are
  answered `connector.shutdown`); running calls get `shutdown_grace` seconds to
  finish, then are cancelled and reported `ok=false` with the rule
  `connector.shutdown`; the outbox is flushed for up to `_FLUSH_S`; `run` returns.
  `request_stop(now=True)` (a second signal) cancels running calls at once.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog
import trio

from lynkr.errors import LynkrError
from lynkr.tunnel._connector_bash import BashLimits
from lynkr.tunnel._connector_mcp import LocalMcpServers, load_manifest
from lynkr.tunnel._connector_settings import ENV_PREFIX, ConnectSettings
from lynkr.tunnel._connector_status import StatusLine
from lynkr.tunnel._local_tools import LocalTools, LocalToolSettings, ToolOutcome
from lynkr.tunnel._protocol import CallMessage, Register, ResultMessage

__all__ = ["Connector", "GatewayRefusedError", "Outbox"]

log = structlog.get_logger()

_FLUSH_S = 5.0  # how long results may take to leave after the calls are done
_REMEMBERED = 256  # answered calls kept to answer a redelivery


class GatewayRefusedError(LynkrError):
    """The gateway refused the connector's key or user (401/403, WebSocket 1008)."""


@dataclass(slots=True)
class _Running:
    scope: trio.CancelScope
    cancelled_by_gateway: bool = False


@dataclass(slots=True)
class Outbox:
    """Results waiting for a link; a link takes them, sends them, then `remove`s them."""

    pending: list[ResultMessage] = field(default_factory=list)
    in_flight: int = 0
    changed: trio.Event = field(default_factory=trio.Event)
    emptied: trio.Event = field(default_factory=trio.Event)

    def put(self, result: ResultMessage) -> None:
        """Queue `result` for the next send."""
        self.pending.append(result)
        self.emptied = trio.Event()
        self.changed.set()

    def remove(self, results: list[ResultMessage]) -> None:
        """`results` were delivered."""
        for result in results:
            self.pending.remove(result)
        if self.empty:
            self.emptied.set()

    async def wait_nonempty(self) -> None:
        """Return once a result waits."""
        while not self.pending:
            self.changed = trio.Event()
            await self.changed.wait()

    @property
    def empty(self) -> bool:
        """Nothing waits and nothing is being sent."""
        return not self.pending and not self.in_flight


class Connector:
    """One `lynkr connect` process's tools, calls and links (see module docstring)."""

    def __init__(self, settings: ConnectSettings, *, status: StatusLine | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.connector_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.status = status or StatusLine.for_stream(None)
        env = {k: v for k, v in (environ if environ is not None else os.environ).items()
               if not k.startswith(ENV_PREFIX)}  # the key stays with the connector
        self.local = LocalTools(LocalToolSettings(
            roots=settings.allowed_paths, deny=settings.deny_commands, env=env,
            output_cap=settings.output_cap,
            bash=BashLimits(timeout_s=settings.bash_timeout, cpu_s=settings.bash_cpu_seconds,
                            memory_mb=settings.bash_memory_mb,
                            output_cap=settings.output_cap)))
        specs = load_manifest(settings.mcp_manifest) if settings.mcp_manifest else ()
        self.mcp = LocalMcpServers(specs, env=env, on_change=self._tools_changed)
        self.outbox = Outbox()
        self.tools_changed = trio.Event()
        self.registered_once = False  # this link registered (resets the backoff)
        self._running: dict[str, _Running] = {}
        self._answered: OrderedDict[str, ResultMessage] = OrderedDict()
        self._idle = trio.Event()
        self._stop = trio.Event()
        self.stopped = trio.Event()  # set when `run` has returned
        self._stopping = False
        self._nursery: trio.Nursery | None = None

    # -- tools ---------------------------------------------------------------------
    def register_message(self) -> Register:
        """The `register` message for the tools offered right now."""
        return Register(self.connector_id, (*self.local.infos, *self.mcp.infos))

    def _tools_changed(self) -> None:
        self.tools_changed.set()

    async def wait_tools_changed(self) -> None:
        """Return once the tool set changed since the last call (then register again)."""
        await self.tools_changed.wait()
        self.tools_changed = trio.Event()

    # -- calls ---------------------------------------------------------------------
    @property
    def running(self) -> int:
        """Calls in progress."""
        return len(self._running)

    def accept(self, call: CallMessage) -> None:
        """Start `call` (or answer it at once: stopping, a duplicate, already answered)."""
        if call.call_id in self._running:
            return  # delivered twice while it runs: one answer will come
        if (answered := self._answered.get(call.call_id)) is not None:
            self.outbox.put(answered)
            return
        if self._stopping or self._nursery is None:
            self._answer(call.call_id, ToolOutcome.refused(
                "connector.shutdown", "the connector is shutting down; the call was not run"))
            return
        self._nursery.start_soon(self._run_call, call)

    def cancel(self, call_id: str) -> None:
        """The gateway no longer wants `call_id`: stop it, answer nothing."""
        running = self._running.get(call_id)
        if running is not None:
            running.cancelled_by_gateway = True
            running.scope.cancel()

    async def _run_call(self, call: CallMessage) -> None:
        running = _Running(trio.CancelScope(deadline=trio.current_time() + call.timeout_s))
        self._running[call.call_id] = running
        self._idle = trio.Event()
        log.info("connector_call_started", call_id=call.call_id, tool=call.tool)
        started = trio.current_time()
        outcome: ToolOutcome | None = None
        try:
            with running.scope:
                outcome = await self._dispatch(call)
        finally:
            del self._running[call.call_id]
            if not self._running:
                self._idle.set()
        if outcome is None:
            if running.cancelled_by_gateway:
                log.info("connector_call_cancelled", call_id=call.call_id, tool=call.tool)
                return
            outcome = (ToolOutcome.refused("connector.shutdown", "the connector shut down; "
                                           "the call was cancelled") if self._stopping else
                       ToolOutcome.refused("connector.timeout", f"the call did not finish "
                                           f"within {call.timeout_s:g} s; it was cancelled"))
        log.info("connector_call_finished", call_id=call.call_id, tool=call.tool,
                 ok=outcome.ok, rule=outcome.rule,
                 duration_ms=round((trio.current_time() - started) * 1000, 1))
        self._answer(call.call_id, outcome)

    async def _dispatch(self, call: CallMessage) -> ToolOutcome:
        if call.tool.startswith("local_"):
            # local_bash ends its own command a little before the gateway gives up.
            return await self.local.call(call.tool, call.input,
                                         deadline_s=max(call.timeout_s - 0.5, 0.1))
        outcome = await self.mcp.call(call.tool, call.input, call.timeout_s)
        return outcome or ToolOutcome.refused(None, f"this connector has no tool "
                                                    f"{call.tool!r}")

    def _answer(self, call_id: str, outcome: ToolOutcome) -> None:
        result = ResultMessage(call_id, outcome.ok, outcome.content, outcome.rule)
        self._answered[call_id] = result
        while len(self._answered) > _REMEMBERED:
            self._answered.popitem(last=False)
        self.outbox.put(result)

    # -- lifecycle -----------------------------------------------------------------
    def request_stop(self, *, now: bool = False) -> None:
        """Stop taking calls and end `run` (see module docstring)."""
        self._stopping = True
        self._stop.set()
        if now:
            for running in self._running.values():
                running.scope.cancel()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
                  ) -> None:
        """Serve until `request_stop`; links, local MCP servers and calls run inside.

        Raises:
            GatewayRefusedError: the gateway refused the key.
        """
        from lynkr.tunnel._connector_links import maintain_link

        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self.mcp.serve)
                nursery.start_soon(maintain_link, self)
                task_status.started()
                await self._stop.wait()
                log.info("connector_stopping", running=self.running)
                await self._drain()
                nursery.cancel_scope.cancel()
            self.status.show("stopped", self)
        finally:
            self.stopped.set()

    async def _drain(self) -> None:
        with trio.move_on_after(self.settings.shutdown_grace):
            while self._running:
                await self._idle.wait()
        for running in self._running.values():
            running.scope.cancel()
        while self._running:
            await self._idle.wait()
        with trio.move_on_after(_FLUSH_S):
            if not self.outbox.empty:
                await self.outbox.emptied.wait()
        if not self.outbox.empty:
            log.warning("connector_results_undelivered", results=len(self.outbox.pending))

    @property
    def stopping(self) -> bool:
        """True once `request_stop` was called."""
        return self._stopping
