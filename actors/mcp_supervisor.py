"""The MCP supervisor and its children: one `McpServerActor` per attached MCP server.

Each child is the single writer of its `mcp-<server>` stream and owns the server's
state machine (starting → ready → crashed → backing_off → … → stopped), folded from
its own events with `eventstore.projections.mcp_catalogue.apply_mcp_event`, so the
live view always equals the one rebuilt from the log.

The actors decide; trio does the I/O. `lynkr` passes in an `McpLauncher`: on
attach the supervisor asks it to start one trio task for the server (thread-safe,
non-blocking), and on detach to halt it. That task reports facts to its child with
cheap tells (`report_started`, `report_tools`) and, when the connection ends, asks
for a decision with ``await child.report_exited(...)``: a `RestartDecision` (sleep
`delay`, then connect again) or None (give up: the restart limit was hit, or the
server was detached). Reports carry the generation they were launched with, so a
late report from a halted connection never changes the state.

Backoff: `RestartPolicy.delay(n)` = base * factor^n, capped; at most
`max_restarts` restarts within `window` seconds, then `ServerGaveUp`. A server
whose process could not even be spawned before it was ever ready is given up on
at once: retrying exec of a missing or broken command cannot succeed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Protocol

import pykka
import structlog

from actors._errors import McpServerExistsError, McpServerNotFoundError
from actors._trio import TrioActor
from actors.writer import EventStore
from eventstore import Event
from eventstore.events import mcp as mcp_events
from eventstore.projections.mcp_catalogue import (
    McpCatalogue,
    McpServerView,
    apply_mcp_event,
    tools_digest,
)

__all__ = [
    "McpLauncher",
    "McpServerActor",
    "McpServerSpec",
    "McpSupervisor",
    "RestartDecision",
    "RestartPolicy",
    "StartedFacts",
]

log = structlog.get_logger()


@dataclass(frozen=True, slots=True, kw_only=True)
class McpServerSpec:
    """How to reach one MCP server: a command (stdio) or a URL (Streamable HTTP)."""

    name: str
    transport: Literal["stdio", "http"]
    command: tuple[str, ...] = ()
    url: str | None = None
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # never logged
    cwd: str | None = None
    sandbox: str | None = None  # "bwrap" / "docker" when the launcher wraps it
    source: str = "admin"


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartPolicy:
    """Exponential backoff and the restart limit (production defaults)."""

    base_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 30.0
    max_restarts: int = 5
    window: float = 60.0

    def delay(self, restarts_in_window: int) -> float:
        """Seconds to wait before the next restart, given the restarts already in the window."""
        return float(min(self.max_delay, self.base_delay * self.factor ** restarts_in_window))


@dataclass(frozen=True, slots=True, kw_only=True)
class StartedFacts:
    """What a successful handshake told us."""

    pid: int | None
    protocol_version: str
    server_name: str | None
    server_version: str | None
    tools: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class RestartDecision:
    """Connect again after `delay` seconds, reporting as `generation`."""

    delay: float
    generation: int
    attempt: int


class McpLauncher(Protocol):
    """The trio side that runs servers' connections (implemented in `lynkr.mcp`).

    Both methods are called on actor threads and must only hand the work to trio.
    """

    def launch(self, spec: McpServerSpec, child: Any, generation: int) -> None:
        """Start the server's connection task; `child` is its `McpServerActor` proxy."""

    def halt(self, server: str) -> None:
        """Stop the server's connection task and its process (closing stdin, TERM, KILL)."""


class McpServerActor(TrioActor):
    """One server's stream and state machine (see module docstring)."""

    def __init__(
        self, spec: McpServerSpec, store: EventStore, policy: RestartPolicy,
        on_change: Callable[[str, McpServerView | None], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.spec = spec
        self._store = store
        self._policy = policy
        self._on_change = on_change
        self._clock = clock
        self._stream = f"mcp-{spec.name}"
        self._version = -1
        self._view: McpServerView | None = None
        self._generation = 1
        self._restarts: list[float] = []
        self._attempt = 0
        self._detached = False
        self._ever_started = False

    def _append(self, *events: Event) -> None:
        if self._version < 0:
            self._version = self._store.stream_version(self._stream).get()
        result = self._store.submit_append(self._stream, self._version, events).result()
        self._version = result.version
        for event in events:
            self._view = apply_mcp_event(self._view, event)
        self._on_change(self.spec.name, self._view)

    def attach(self) -> McpServerView:
        """Record `ServerAttached`; the supervisor launches the connection next."""
        spec = self.spec
        self._append(mcp_events.ServerAttached(
            server=spec.name, transport=spec.transport, command=spec.command, url=spec.url,
            env_names=tuple(sorted(spec.env)), sandbox=spec.sandbox, source=spec.source))
        log.info("mcp_server_attached", server=spec.name, transport=spec.transport)
        assert self._view is not None
        return self._view

    def generation(self) -> int:
        """The generation the current connection task reports as."""
        return self._generation

    def view(self) -> McpServerView | None:
        """The server as its events tell it (None once detached)."""
        return self._view

    def _current(self, generation: int) -> bool:
        return generation == self._generation and not self._detached

    def report_started(self, generation: int, facts: StartedFacts) -> None:
        """Fact: the handshake succeeded and the tools were listed."""
        if not self._current(generation):
            return
        digest = tools_digest(facts.tools)
        self._ever_started = True
        self._append(
            mcp_events.ServerStarted(
                server=self.spec.name, attempt=self._attempt, pid=facts.pid,
                protocol_version=facts.protocol_version, server_name=facts.server_name,
                server_version=facts.server_version, tools_digest=digest),
            mcp_events.ToolsListed(server=self.spec.name, tools=facts.tools, digest=digest))
        log.info("mcp_server_ready", server=self.spec.name, attempt=self._attempt,
                 protocol_version=facts.protocol_version, tools=len(facts.tools))

    def report_tools(self, generation: int, tools: Sequence[dict[str, Any]]) -> None:
        """Fact: the tool list was fetched again (after `notifications/tools/list_changed`)."""
        tools = tuple(tools)
        digest = tools_digest(tools)
        if not self._current(generation) or (self._view and self._view.tools_digest == digest):
            return
        self._append(mcp_events.ToolsListed(server=self.spec.name, tools=tools, digest=digest))
        log.info("mcp_tools_changed", server=self.spec.name, tools=len(tools))

    def report_exited(
        self, generation: int, exit_code: int | None, reason: str, stderr_tail: str = "",
        *, spawned: bool = True,
    ) -> RestartDecision | None:
        """Fact and question: the connection ended; restart (after a delay) or give up?

        `spawned` is False when the process could not be started at all.
        """
        if not self._current(generation):
            return None
        name = self.spec.name
        exited = mcp_events.ServerExited(server=name, exit_code=exit_code, reason=reason,
                                         stderr_tail=stderr_tail)
        log.warning("mcp_server_exited", server=name, exit_code=exit_code, reason=reason)
        if not spawned and not self._ever_started:
            self._give_up(exited, f"{reason}; fix the command and attach it again")
            return None
        self._append(exited)
        now = self._clock()
        self._restarts = [t for t in self._restarts if now - t < self._policy.window]
        if len(self._restarts) >= self._policy.max_restarts:
            self._give_up(None, f"restart limit reached: {len(self._restarts)} restarts "
                                f"within {self._policy.window:g}s; attach it again to retry")
            return None
        delay = self._policy.delay(len(self._restarts))
        self._restarts.append(now)
        self._attempt += 1
        self._generation += 1
        self._append(mcp_events.ServerRestarting(
            server=name, attempt=self._attempt, delay=delay,
            restarts_in_window=len(self._restarts)))
        log.info("mcp_server_restarting", server=name, attempt=self._attempt, delay=delay)
        return RestartDecision(delay=delay, generation=self._generation, attempt=self._attempt)

    def _give_up(self, exited: mcp_events.ServerExited | None, why: str) -> None:
        """Record `ServerGaveUp` (after `exited`, in the same append) and ignore later reports."""
        name = self.spec.name
        gave_up = mcp_events.ServerGaveUp(server=name, restarts=len(self._restarts),
                                          window=self._policy.window, reason=why)
        self._append(*([exited] if exited else []), gave_up)
        log.error("mcp_server_gave_up", server=name, restarts=len(self._restarts), reason=why)
        self._generation += 1

    def detach(self, reason: str = "admin") -> None:
        """Record `ServerDetached`; later reports are ignored."""
        if self._detached:
            return
        self._detached = True
        self._generation += 1
        self._append(mcp_events.ServerDetached(server=self.spec.name, reason=reason))
        log.info("mcp_server_detached", server=self.spec.name, reason=reason)


class McpSupervisor(TrioActor):
    """Attaches and detaches servers, one `McpServerActor` child each, and keeps the catalogue.

    `publish(catalogue)` is called (on this actor's thread) after every change, so
    trio code can read the latest catalogue without asking an actor.
    """

    def __init__(
        self, store: EventStore, launcher: McpLauncher, *,
        policy: RestartPolicy | None = None,
        publish: Callable[[McpCatalogue], None] = lambda _c: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._store = store
        self._launcher = launcher
        self._policy = policy or RestartPolicy()
        self._publish = publish
        self._clock = clock
        self._children: dict[str, pykka.ActorRef[McpServerActor]] = {}
        self._views: dict[str, McpServerView] = {}

    def attach(self, spec: McpServerSpec) -> McpServerView:
        """Put a server under supervision and launch it.

        Raises:
            McpServerExistsError: a server with that name is attached.
        """
        if spec.name in self._children:
            raise McpServerExistsError(f"an MCP server named {spec.name!r} is already attached")
        me = self.actor_ref.proxy()
        ref = McpServerActor.start(spec, self._store, self._policy,
                                   lambda n, v: me.child_changed(n, v), self._clock)
        try:
            view: McpServerView = ref.proxy().attach().get()
        except Exception:
            ref.stop()
            raise
        self._children[spec.name] = ref
        self._views[spec.name] = view
        self._emit()
        self._launcher.launch(spec, ref.proxy(), 1)
        return view

    def detach(self, name: str, reason: str = "admin") -> None:
        """Record the detach, halt the connection and stop the child.

        Raises:
            McpServerNotFoundError: no server with that name is attached.
        """
        ref = self._children.pop(name, None)
        if ref is None:
            raise McpServerNotFoundError(f"no MCP server named {name!r} is attached")
        try:
            ref.proxy().detach(reason).get()
        finally:
            self._launcher.halt(name)
            ref.stop()
            self._views.pop(name, None)
            self._emit()

    def child_changed(self, name: str, view: McpServerView | None) -> None:
        """A child's view changed (tell from the child)."""
        if name not in self._children:
            return
        if view is None:
            self._views.pop(name, None)
        else:
            self._views[name] = view
        self._emit()

    def _emit(self) -> None:
        self._publish(self.catalogue())

    def catalogue(self) -> McpCatalogue:
        """Every attached server's current view."""
        return McpCatalogue(MappingProxyType(dict(self._views)))

    def names(self) -> list[str]:
        """Names of the attached servers, sorted."""
        return sorted(self._children)

    def on_stop(self) -> None:
        """Halt every connection (no events: the gateway stopping is not a detach)."""
        for name, ref in self._children.items():
            self._launcher.halt(name)
            ref.stop()
        self._children.clear()
