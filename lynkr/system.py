"""Wiring: every actor and service of a running gateway, started and stopped together.

`open_system(settings)` opens the event store (its writer actor), the session
registry, the projection runner (following live appends; its catch-ups run in a
child process, `lynkr.projector`, unless LYNKR_PROJECTOR=thread), the toolbelt (workspace
and indexer tools, with the indexer actor), MCP supervision, and the provider
supervisor with one actor per configured backend, each owning a pooled
`httpx.AsyncClient`. Before it yields, the server tool calls a killed gateway left
open are closed as interrupted (`lynkr.tools.recover_interrupted_calls`). On exit it
closes the clients (async I/O, on the trio side), then stops the actors in reverse
order. The `System` it yields is what the HTTP app and the CLI use. Callers may bring
their own `tools`, `mcp`, `indexer` and `blueprints` (extra Quart blueprints, e.g.
`/admin/mcp/...`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import structlog
import trio

from actors import (
    BreakerConfig,
    EventStore,
    PooledClient,
    Projections,
    ProviderSupervisor,
    Sessions,
)
from eventstore import BlobRef, Durability, Recorder, is_postgres_url, open_recorder, redact_url
from eventstore.projections import projection_store_location
from lynkr.config import Settings
from lynkr.gateway import Limiter, SharedLimiter, TaskRouter, open_limiter
from lynkr.mcp import admin_blueprint, mcp_call_spec, mcp_tool_specs, open_mcp
from lynkr.orchestrator import (
    AgentLoop,
    LoopHistory,
    Orchestrator,
    PromptCache,
    ProviderHandle,
    ServerTools,
    SessionRecorder,
)
from lynkr.projector import ProjectorProcess
from lynkr.providers import (
    Adapter,
    AnthropicAdapter,
    BackendSettings,
    DatabricksAdapter,
    OpenAIAdapter,
    ProviderSettings,
    ResilienceSettings,
    TransportStatistics,
    count_request_tokens,
    pool_statistics,
    pooled_client,
)
from lynkr.toolbelt import open_toolbelt
from lynkr.tools import (
    StoreSessionSink,
    ToolRegistry,
    ToolRunner,
    recover_interrupted_calls,
)
from lynkr.tunnel import Tunnel

if TYPE_CHECKING:
    from lynkr.tunnel import TunnelRelay

__all__ = ["System", "make_adapter", "make_client_factory", "open_system"]

log = structlog.get_logger()

ClientFactory = Callable[[str], PooledClient]


@dataclass(slots=True)
class System:
    """A running gateway's parts (see module docstring)."""

    settings: Settings
    recorder: Recorder  # for reads (streams, blobs); every append goes through `store`
    store: EventStore
    sessions: Sessions
    providers: Any  # pykka.ActorProxy[ProviderSupervisor]
    handles: dict[str, ProviderHandle]
    orchestrator: Orchestrator
    tools: Any | None = None  # lynkr.tools.ToolRegistry
    runner: Any | None = None  # lynkr.tools.ToolRunner: every in-gateway tool call goes here
    mcp: Any | None = None
    indexer: Any | None = None
    projections: Projections | None = None
    blueprints: list[Any] = field(default_factory=list)
    clients: dict[str, PooledClient] = field(default_factory=dict)  # latest per provider
    limiter: Limiter | SharedLimiter | None = None  # the tiers' rate limits (lynkr.gateway)
    tunnel: Tunnel | None = None  # users' connectors (`lynkr connect`), lynkr.tunnel
    relay: TunnelRelay | None = None  # other gateways' connectors (a PostgreSQL store)

    def pool_statistics(self, provider: str) -> TransportStatistics | None:
        """The connection pool of `provider`'s client (None: none made yet, or not ours).

        Call from the trio thread, which owns the clients' I/O."""
        return pool_statistics(self.clients.get(provider))


def make_client_factory(resilience: ResilienceSettings) -> ClientFactory:
    """The factory provider actors use to create their pooled client."""

    def create(_name: str) -> httpx.AsyncClient:
        timeout = httpx.Timeout(connect=resilience.connect_timeout,
                                read=resilience.read_timeout, write=resilience.read_timeout,
                                pool=resilience.connect_timeout)
        limits = httpx.Limits(max_connections=resilience.pool_size,
                              max_keepalive_connections=resilience.pool_size)
        return pooled_client(timeout=timeout, limits=limits)

    return create


def make_adapter(backend: BackendSettings, settings: ProviderSettings) -> Adapter:
    """The adapter for one configured backend."""
    cap = settings.max_tokens_cap
    if backend.wire == "anthropic":
        return AnthropicAdapter(backend, max_tokens_cap=cap, drop_betas=settings.drop_betas)
    if backend.name == "databricks":
        endpoints = frozenset(target for _, target in settings.models.listed())
        return DatabricksAdapter(backend, max_tokens_cap=cap, endpoints=endpoints)
    return OpenAIAdapter(backend, max_tokens_cap=cap, reasoning_replay=settings.reasoning_replay)


async def _start_providers(
    settings: ProviderSettings, factory: ClientFactory,
) -> tuple[Any, dict[str, ProviderHandle]]:
    breaker = BreakerConfig(threshold=settings.resilience.breaker_threshold,
                            reset_seconds=settings.resilience.breaker_reset)
    names = list(settings.backends)
    ref = await trio.to_thread.run_sync(
        lambda: ProviderSupervisor.start(names, factory, breaker))
    supervisor = ref.proxy()
    children: Mapping[str, Any] = await supervisor.children()
    handles = {name: ProviderHandle(name, make_adapter(settings.backends[name], settings),
                                    children[name]) for name in names}
    return supervisor, handles


async def _close_providers(supervisor: Any) -> None:
    clients: Sequence[PooledClient] = await supervisor.release_clients()
    for client in clients:
        await client.aclose()
    await trio.to_thread.run_sync(lambda: supervisor.actor_ref.stop())


def _durability(settings: Settings) -> Durability:
    return "FULL" if settings.server.durability == "FULL" else "NORMAL"


@asynccontextmanager
async def _open_mcp(
    settings: Settings, store: EventStore, given: Any | None, tools: Any | None,
) -> AsyncIterator[tuple[Any, list[Any]]]:
    """MCP supervision with its admin blueprint, unless the caller brought its own."""
    if given is not None:
        yield given, []
        return
    async with open_mcp(settings.mcp, store, workspace=settings.server.workspace_root) as mcp:
        if tools is not None:
            tools.register_all([mcp_call_spec(mcp)])
            tools.add_provider(lambda: mcp_tool_specs(mcp))
        yield mcp, [admin_blueprint()]


def _open_relay(tunnel: Tunnel,
                store_url: str) -> AbstractAsyncContextManager[TunnelRelay | None]:
    """Other gateways' connectors, through the shared PostgreSQL store (psycopg loads
    only then); one gateway on SQLite has nothing to relay."""
    if not is_postgres_url(store_url):
        return nullcontext(None)
    from lynkr.tunnel import open_relay
    return open_relay(tunnel, store_url)


def _agent_loop(settings: Settings, store: EventStore, recorder: Recorder, sessions: Sessions,
                orchestrator: Orchestrator, tools: Any,
                tunnel: Tunnel | TunnelRelay) -> ToolRunner | None:
    """The gateway's one `ToolRunner`, and the agent loop on the orchestrator when
    `LYNKR_SERVER_TOOLS` offers any tool (each user's tunnelled tools to that user's
    sessions, with the `local` group).

    The agent loop's calls record through the session actors (within their turn), the
    admin API's through the store (no turn; their sessions start with source "admin").
    """
    if not isinstance(tools, ToolRegistry):
        return None
    runner = ToolRunner(tools, settings.policy, store=store, recorder=recorder,
                        sink=StoreSessionSink(store, sessions, source="admin"))

    async def load_blob(ref: BlobRef) -> Any:
        return await trio.to_thread.run_sync(recorder.load_blob, ref)

    if settings.server_tools.enabled:
        orchestrator.loop = AgentLoop(
            ServerTools(settings.server_tools, tools, user_tools=tunnel.specs_for), runner,
            LoopHistory(load_blob), orchestrator.turns)
        log.info("server_tools_offered", tools=settings.server_tools.describe())
    return runner


@asynccontextmanager
async def open_system(
    settings: Settings,
    *,
    client_factory: ClientFactory | None = None,
    tools: Any | None = None,
    mcp: Any | None = None,
    indexer: Any | None = None,
    blueprints: Sequence[Any] = (),
) -> AsyncIterator[System]:
    """Start every actor and service; stop them all on exit (see module docstring).

    Raises:
        eventstore.StoreBrokenError: the database cannot be opened.
    """
    settings.server.data_dir.mkdir(parents=True, exist_ok=True)
    recorder = await trio.to_thread.run_sync(
        lambda: open_recorder(settings.store_url, durability=_durability(settings)))
    store = EventStore.start(recorder)
    sessions = Sessions.start(store, max_live=settings.server.max_live_sessions)
    make = client_factory or make_client_factory(settings.providers.resilience)
    clients: dict[str, PooledClient] = {}

    def factory(name: str) -> PooledClient:
        # Remembered for `System.pool_statistics`; a restarted actor's new client
        # replaces its old one (a dict store is atomic, and the actors call this).
        client = clients[name] = make(name)
        return client

    supervisor, handles = await _start_providers(settings.providers, factory)
    cache = await trio.to_thread.run_sync(PromptCache.warmed, settings.cache, recorder)
    orchestrator = Orchestrator(settings.providers, handles, SessionRecorder(sessions),
                                cache=cache)
    orchestrator.router = TaskRouter(settings.routing, frozenset(handles),
                                     count_request_tokens)
    orchestrator.tiers = settings.limits
    log.info("system_started", db=redact_url(settings.store_url), providers=list(handles),
             active=settings.providers.provider if settings.providers.active else None)
    projections_db = projection_store_location(settings.store_url, settings.server.data_dir)
    worker = (ProjectorProcess(settings.store_url, projections_db,
                               log_level=settings.server.log_level,
                               log_format=settings.server.log_format,
                               durability=settings.server.durability)
              if settings.server.projector == "process" else None)
    projections = Projections.start(recorder, projections_db, worker=worker)
    try:
        # Before anything serves: the calls a killed gateway left open are closed.
        await recover_interrupted_calls(sessions, projections, store, recorder)
        with ExitStack() as stack:
            if tools is None:
                belt = stack.enter_context(open_toolbelt(settings, store))
                tools, indexer = belt.registry, indexer or belt.indexer_ref
            async with (_open_mcp(settings, store, mcp, tools) as (mcp, mcp_blueprints),
                        open_limiter(settings.limits, settings.store_url, recorder) as limiter):
                tunnel = Tunnel(settings.tunnel, store)
                async with _open_relay(tunnel, settings.store_url) as relay:
                    runner = _agent_loop(settings, store, recorder, sessions, orchestrator,
                                         tools, relay or tunnel)
                    yield System(settings=settings, recorder=recorder, store=store,
                                 sessions=sessions, providers=supervisor, handles=handles,
                                 orchestrator=orchestrator, tools=tools, runner=runner,
                                 mcp=mcp, indexer=indexer, projections=projections,
                                 blueprints=[*blueprints, *mcp_blueprints], clients=clients,
                                 limiter=limiter, tunnel=tunnel, relay=relay)
    finally:
        with trio.CancelScope(shield=True):
            await projections.aclose()
            await _close_providers(supervisor)
            await sessions.aclose()
            await store.aclose()
            log.info("system_stopped")
