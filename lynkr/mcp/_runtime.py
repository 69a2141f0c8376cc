"""`McpRuntime`: the trio side of MCP supervision, and `open_mcp` / `serve_mcp` to run it.

The runtime owns a nursery with one task per attached server; the `McpSupervisor`
actor and its children own the state machine and every decision. The runtime is
the actors' `McpLauncher`: `launch`/`halt` arrive on actor threads and cross into
trio only through the trio token. A server's task connects (`connect_server`),
reports `report_started`/`report_tools` facts to its child, serves calls, and when
the connection ends asks `await child.report_exited(...)` whether to restart.

The catalogue the supervisor publishes is kept in an attribute (an immutable
value, swapped atomically), so `catalogue()` and the tool specs read it from any
thread without asking an actor.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pykka
import structlog
import trio
from mcp.shared.exceptions import MCPError

from actors import (
    EventStore,
    McpServerExistsError,
    McpServerNotFoundError,
    McpServerSpec,
    McpSupervisor,
    RestartPolicy,
    StartedFacts,
)
from eventstore.projections.mcp_catalogue import (
    McpCatalogue,
    McpCatalogueEntry,
    McpServerView,
    catalogue_entries,
)
from lynkr.errors import InvalidRequestError, McpError, NotFoundError
from lynkr.mcp._client import (
    LiveConnection,
    ToolCallResult,
    call_tool,
    connect_server,
    follow_tools,
    make_transport,
)
from lynkr.mcp._manifest import ManifestProblem, discover_manifests, validate_name
from lynkr.mcp._sandbox import SandboxedCommand, sandbox_command
from lynkr.mcp._settings import McpSettings
from lynkr.mcp._stdio import start_problem

__all__ = ["McpRuntime", "open_mcp", "serve_mcp"]

log = structlog.get_logger()


@dataclass(slots=True)
class _ServerTask:
    spec: McpServerSpec
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)
    connection: LiveConnection | None = None


class McpRuntime:
    """Attach, detach, list and call MCP servers of a running gateway."""

    def __init__(self, settings: McpSettings, store: EventStore, *, workspace: Path,
                 environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.workspace = workspace
        self.problems: tuple[ManifestProblem, ...] = ()
        self._store = store
        self._environ = dict(os.environ if environ is None else environ)
        self._catalogue = McpCatalogue()
        self._tasks: dict[str, _ServerTask] = {}
        self._nursery: trio.Nursery | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._supervisor: Any = None

    # -- lifecycle --------------------------------------------------------------
    def _start(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._token = trio.lowlevel.current_trio_token()
        policy = RestartPolicy(**{name: getattr(self.settings.restart, name)
                                  for name in RestartPolicy.__dataclass_fields__})
        ref = McpSupervisor.start(self._store, self, policy=policy,
                                  publish=self._publish)
        self._supervisor = ref.proxy()

    async def aclose(self) -> None:
        """Stop every server (their processes too) and the supervisor."""
        if self._supervisor is None:
            return
        supervisor, self._supervisor = self._supervisor, None
        for task in list(self._tasks.values()):
            task.scope.cancel()
        await supervisor.actor_ref.stop(block=False)
        for task in list(self._tasks.values()):
            await task.done.wait()

    # -- McpLauncher (called on actor threads) ------------------------------------
    def launch(self, spec: McpServerSpec, child: Any, generation: int) -> None:
        """Start `spec`'s connection task in the runtime's nursery."""
        self._soon(self._spawn, spec, child, generation)

    def halt(self, server: str) -> None:
        """Cancel `server`'s connection task; its transport stops the process."""
        self._soon(self._cancel, server)

    def _soon(self, fn: Any, *args: Any) -> None:
        assert self._token is not None
        # RunFinishedError: the gateway is gone, and its nursery took every task with it.
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(fn, *args)

    def _spawn(self, spec: McpServerSpec, child: Any, generation: int) -> None:
        assert self._nursery is not None
        task = _ServerTask(spec)
        self._tasks[spec.name] = task
        self._nursery.start_soon(self._serve, task, child, generation)

    def _cancel(self, server: str) -> None:
        task = self._tasks.get(server)
        if task is not None:
            task.scope.cancel()

    def _publish(self, catalogue: McpCatalogue) -> None:
        self._catalogue = catalogue

    # -- one server's task --------------------------------------------------------
    async def _serve(self, task: _ServerTask, child: Any, generation: int) -> None:
        try:
            with task.scope:
                while True:
                    exit_code, reason, tail, spawned = await self._run_once(
                        task, child, generation)
                    try:
                        decision = await child.report_exited(generation, exit_code, reason, tail,
                                                             spawned=spawned)
                    except pykka.ActorDeadError:
                        return  # detached while we were stopping
                    if decision is None:
                        return
                    await trio.sleep(decision.delay)
                    generation = decision.generation
        finally:
            task.connection = None
            task.done.set()
            if self._tasks.get(task.spec.name) is task:
                del self._tasks[task.spec.name]

    async def _run_once(self, task: _ServerTask, child: Any,
                        generation: int) -> tuple[int | None, str, str, bool]:
        """One connection: (exit code, reason, stderr tail, whether a process was spawned)."""
        spec, s = task.spec, self.settings
        stdio = None
        try:
            command = self.command_for(spec)
            transport, stdio = make_transport(spec, command.argv, dict(command.env),
                                              grace=s.shutdown_grace, term_timeout=s.term_timeout)
            async with connect_server(spec.name, transport, stdio, mode=s.protocol_mode,
                                      request_timeout=s.request_timeout,
                                      start_timeout=s.start_timeout) as connection:
                _tell(child.report_started, generation, StartedFacts(
                    pid=stdio.pid if stdio else None,
                    protocol_version=connection.protocol_version,
                    server_name=connection.server_name,
                    server_version=connection.server_version, tools=connection.tools))
                task.connection = connection
                try:
                    await self._hold(connection, child, generation)
                finally:
                    task.connection = None
            reason = "the server process exited"
        except* (McpError, MCPError, OSError, httpx2.HTTPError) as group:
            reason = "; ".join(_reason(exc) for exc in _leaves(group))
        if stdio is None:
            return None, reason, "", spec.transport != "stdio"
        return stdio.returncode, reason, stdio.stderr_tail(), stdio.pid is not None

    async def _hold(self, connection: LiveConnection, child: Any, generation: int) -> None:
        async def report(tools: tuple[dict[str, Any], ...]) -> None:
            _tell(child.report_tools, generation, tools)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow_tools, connection, report)
            if connection.transport is not None:
                await connection.transport.exited.wait()
            else:  # HTTP: the connection is over when a call finds the server gone
                await connection.lost.wait()
            nursery.cancel_scope.cancel()

    # -- public API ---------------------------------------------------------------
    def command_for(self, spec: McpServerSpec) -> SandboxedCommand:
        """The argv and environment `spec` runs with (sandboxed when configured).

        Raises:
            McpError: the sandbox runtime is missing or misconfigured.
        """
        return sandbox_command(spec.command, self.settings.sandbox, workspace=self.workspace,
                               name=spec.name, env=spec.env, base_env=self._environ)

    async def attach_manifests(self) -> tuple[ManifestProblem, ...]:
        """Attach every server MCP_SERVER_MANIFEST and MCP_MANIFEST_DIRS define."""
        loaded = discover_manifests(self.settings.manifest, self.settings.manifest_dirs)
        problems = list(loaded.problems)
        for problem in loaded.problems:
            log.warning("mcp_manifest_invalid", source=problem.source, reason=problem.reason)
        for spec in loaded.specs:
            try:
                await self.attach(spec, wait=False)
            except (McpError, InvalidRequestError) as exc:
                problems.append(ManifestProblem(spec.source, exc.message))
                log.warning("mcp_attach_failed", server=spec.name, reason=exc.message)
        self.problems = tuple(problems)
        return self.problems

    async def attach(self, spec: McpServerSpec, *, wait: bool = True) -> McpServerView:
        """Attach a server; with `wait`, return once it is ready or has failed to start.

        A command that cannot start leaves nothing attached: refused before any event
        when exec would refuse it, else (with `wait`) given up on and detached at once.

        Raises:
            InvalidRequestError: the name is invalid or already attached, or the command
                cannot start.
            McpError: the sandbox runtime is missing (nothing is attached then), or (with
                `wait`) the server was given up on before it was ever ready.
        """
        if (why := validate_name(spec.name)) is not None:
            raise InvalidRequestError(why)
        if spec.transport == "stdio":
            self._check_startable(spec)  # before any event: nothing to undo
        if spec.name in self._tasks:
            await self._tasks[spec.name].done.wait()  # a detach still stopping it
        try:
            view: McpServerView = await self._supervisor.attach(
                McpServerSpec(**{**_fields(spec), "sandbox": self._sandbox_name(spec)}))
        except McpServerExistsError as exc:
            raise InvalidRequestError(str(exc)) from exc
        if wait:
            view = await self.wait_settled(spec.name, self.settings.start_timeout + 1)
            if view.state == "stopped":  # given up before it was ever ready: keep no ghost
                await self.detach(spec.name, reason="failed to start")
                raise McpError(view.last_reason or f"MCP server {spec.name!r} did not start")
        return view

    def _check_startable(self, spec: McpServerSpec) -> None:
        """Refuse a stdio command that exec would refuse (a missing sandbox raises too)."""
        command = self.command_for(spec)
        if self._sandbox_name(spec) == "docker":
            return  # the command lives in the image, not on this machine
        problem = start_problem(spec.command, env=command.env, cwd=spec.cwd)
        if problem is not None:
            log.warning("mcp_attach_refused", server=spec.name, reason=problem)
            raise InvalidRequestError(problem)

    def _sandbox_name(self, spec: McpServerSpec) -> str | None:
        sandbox = self.settings.sandbox
        return sandbox.runtime if sandbox.enabled and spec.transport == "stdio" else None

    async def wait_settled(self, name: str, seconds: float) -> McpServerView:
        """The server's view once it has left `starting` (or after `seconds`)."""
        with trio.move_on_after(seconds):
            while True:
                view = self._catalogue.servers.get(name)
                if view is None or view.state != "starting":
                    break
                await trio.sleep(0.01)
        return self.server(name)

    async def detach(self, name: str, reason: str = "admin") -> None:
        """Detach a server and wait until its process is gone.

        Raises:
            NotFoundError: no server with that name is attached.
        """
        task = self._tasks.get(name)
        try:
            await self._supervisor.detach(name, reason)
        except McpServerNotFoundError as exc:
            raise NotFoundError(str(exc)) from exc
        if task is not None:
            task.scope.cancel()
            await task.done.wait()

    def catalogue(self) -> McpCatalogue:
        """Every attached server's view, as last published by the supervisor."""
        return self._catalogue

    def entries(self) -> tuple[McpCatalogueEntry, ...]:
        """The callable tools of every ready server, named and ordered (see projection)."""
        return catalogue_entries(self._catalogue)

    def server(self, name: str) -> McpServerView:
        """One server's view.

        Raises:
            NotFoundError: no server with that name is attached.
        """
        view = self._catalogue.servers.get(name)
        if view is None:
            raise NotFoundError(f"no MCP server named {name!r} is attached")
        return view

    async def call(self, server: str, tool: str, arguments: Mapping[str, Any],
                   request_timeout: float | None = None) -> ToolCallResult:
        """Call `tool` on `server`.

        Raises:
            NotFoundError: the server is not attached.
            McpError: it is not ready, or a protocol error (timeouts cancel the request).
        """
        view = self.server(server)
        task = self._tasks.get(server)
        connection = task.connection if task else None
        if connection is None or view.state != "ready":
            raise McpError(f"MCP server {server!r} is not ready (state: {view.state}"
                           + (f"; {view.last_reason}" if view.last_reason else "") + ")")
        return await call_tool(connection, tool, dict(arguments),
                               request_timeout or self.settings.request_timeout)


def _tell(method: Any, *args: Any) -> None:
    """Report a fact to a child actor; a child already stopped (detached) needs no news."""
    with contextlib.suppress(pykka.ActorDeadError):
        method(*args)


def _fields(spec: McpServerSpec) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in spec.__dataclass_fields__}


def _leaves(group: BaseExceptionGroup[Any]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found += _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return found


def _reason(exc: BaseException) -> str:
    if isinstance(exc, McpError):
        return exc.message
    if isinstance(exc, MCPError):
        return f"protocol error: {exc.message} (code {exc.code})"
    return str(exc)


@asynccontextmanager
async def open_mcp(
    settings: McpSettings, store: EventStore, *, workspace: Path,
    environ: Mapping[str, str] | None = None, load_manifests: bool = True,
) -> AsyncIterator[McpRuntime]:
    """Run MCP supervision (manifests attached) for the duration of the block."""
    runtime = McpRuntime(settings, store, workspace=workspace, environ=environ)
    async with trio.open_nursery() as nursery:
        runtime._start(nursery)
        try:
            if load_manifests:
                await runtime.attach_manifests()
            yield runtime
        finally:
            with trio.CancelScope(shield=True):
                await runtime.aclose()
            nursery.cancel_scope.cancel()


async def serve_mcp(
    settings: McpSettings, store: EventStore, *, workspace: Path,
    task_status: trio.TaskStatus[McpRuntime] = trio.TASK_STATUS_IGNORED,
) -> None:
    """`open_mcp` as a long-lived service: `task_status.started(runtime)`, run until cancelled."""
    async with open_mcp(settings, store, workspace=workspace) as runtime:
        task_status.started(runtime)
        await trio.sleep(math.inf)
