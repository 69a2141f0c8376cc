"""Lynkr's pykka actors: state owners and supervisors. Imports only `eventstore`.

Exceptions (see `actors._errors`): `ActorError` ⊃ `CommandRejectedError`,
`InlineBlockingError`, `InvalidSessionIdError`, `McpServerExistsError`,
`McpServerNotFoundError`, `SessionLoopStoppedError`, `SessionUnavailableError`.
"""

from __future__ import annotations

from actors._dispatch import Dispatcher, DispatcherStatistics
from actors._dispatched import DispatchedActor, ask_inline
from actors._errors import (
    ActorError,
    CommandRejectedError,
    InlineBlockingError,
    InvalidSessionIdError,
    McpServerExistsError,
    McpServerNotFoundError,
    SessionLoopStoppedError,
    SessionUnavailableError,
)
from actors._loop_guard import LoopGuard, loop_verdict
from actors._session_commands import (
    Decision,
    TurnRequest,
    begin_turn,
    finish_turn,
    record_events,
    request_digest,
)
from actors._sessions import Sessions
from actors._trio import TrioActor, TrioFuture, run_in_actor_thread
from actors.indexer import IndexerActor, IndexerStatus, IndexerStoppedError, request_rebuild
from actors.mcp_supervisor import (
    McpLauncher,
    McpServerActor,
    McpServerSpec,
    McpSupervisor,
    RestartDecision,
    RestartPolicy,
    StartedFacts,
)
from actors.projections import CatchUpWorker, ProjectionRunner, Projections, RunnerStatus
from actors.provider import (
    BreakerConfig,
    CircuitOpenError,
    PooledClient,
    ProviderActor,
    ProviderGate,
    ProviderHealth,
    ProviderSupervisor,
)
from actors.registry import (
    PassivateIdle,
    RegistryStatistics,
    SessionRegistry,
    SessionTouched,
    check_session_id,
)
from actors.session import (
    INLINE_REQUEST_BYTES,
    SessionActor,
    SessionCrash,
    conflict_retries,
    stream_of,
)
from actors.writer import (
    APPEND_BUCKETS,
    EventStore,
    EventStoreWriter,
    WriterHealth,
    WriterStatistics,
)

__all__ = [
    "APPEND_BUCKETS",
    "INLINE_REQUEST_BYTES",
    "ActorError",
    "BreakerConfig",
    "CatchUpWorker",
    "CircuitOpenError",
    "CommandRejectedError",
    "Decision",
    "DispatchedActor",
    "Dispatcher",
    "DispatcherStatistics",
    "EventStore",
    "EventStoreWriter",
    "IndexerActor",
    "IndexerStatus",
    "IndexerStoppedError",
    "InlineBlockingError",
    "InvalidSessionIdError",
    "LoopGuard",
    "McpLauncher",
    "McpServerActor",
    "McpServerExistsError",
    "McpServerNotFoundError",
    "McpServerSpec",
    "McpSupervisor",
    "PassivateIdle",
    "PooledClient",
    "ProjectionRunner",
    "Projections",
    "ProviderActor",
    "ProviderGate",
    "ProviderHealth",
    "ProviderSupervisor",
    "RegistryStatistics",
    "RestartDecision",
    "RestartPolicy",
    "RunnerStatus",
    "SessionActor",
    "SessionCrash",
    "SessionLoopStoppedError",
    "SessionRegistry",
    "SessionTouched",
    "SessionUnavailableError",
    "Sessions",
    "StartedFacts",
    "TrioActor",
    "TrioFuture",
    "TurnRequest",
    "WriterHealth",
    "WriterStatistics",
    "ask_inline",
    "begin_turn",
    "check_session_id",
    "conflict_retries",
    "finish_turn",
    "loop_verdict",
    "record_events",
    "request_digest",
    "request_rebuild",
    "run_in_actor_thread",
    "stream_of",
]
