"""`SessionRegistry`: spawns, passivates and supervises session actors; `Sessions`, its trio face.

The registry starts a `SessionActor` the first time a session is used (the actor
recovers by folding its stream), stops sessions idle for longer than
`idle_timeout` (a ticker thread it owns sends it `PassivateIdle`), and supervises:
when a session actor dies of an unhandled exception, the registry appends
`ActorCrashed` to the `system` stream, starts a fresh actor, lets it recover from
its committed events and appends `ActorRestarted` with the recovered version.

`Sessions` is what the HTTP handler holds: one `await` per session command. It
looks the session up and calls it; if the actor was stopped between the two
(passivation, restart), it looks it up again, once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import pykka
import structlog

from actors._dispatched import ask_inline
from actors._errors import InvalidSessionIdError, SessionUnavailableError
from actors._session_commands import Blob, TurnRequest
from actors._trio import TrioActor
from actors.session import BeginTurn, FinishTurn, Record, SessionActor, SessionCrash
from actors.writer import EventStore
from eventstore import ANY_VERSION, Event
from eventstore.events.system import ActorCrashed, ActorRestarted
from eventstore.projections.session_state import SessionState, TurnState

__all__ = [
    "PassivateIdle",
    "RegistryStatistics",
    "SessionRegistry",
    "SessionTouched",
    "Sessions",
    "check_session_id",
]

log = structlog.get_logger()

T = TypeVar("T")
SYSTEM_STREAM = "system"
_MAX_ID = 128
_STOP_TIMEOUT = 10.0  # seconds a stopping registry waits for each session's last command


@dataclass(frozen=True, slots=True)
class PassivateIdle:
    """Message: stop every session idle for longer than the timeout."""


@dataclass(frozen=True, slots=True)
class SessionTouched:
    """Message: a cached session actor is being used (resets its idle clock)."""

    session_id: str
    actor_urn: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryStatistics:
    """Live sessions and what the registry has done since it started."""

    live: int
    spawned: int
    passivated: int
    restarted: int


@dataclass(slots=True)
class _Child:
    ref: pykka.ActorRef[SessionActor]
    proxy: pykka.ActorProxy[SessionActor]
    last_used: float


def check_session_id(session_id: str) -> str:
    """Return `session_id` if it can name a stream.

    Raises:
        InvalidSessionIdError: empty, longer than 128 characters, or holding
            whitespace or control characters.
    """
    fits = isinstance(session_id, str) and 0 < len(session_id) <= _MAX_ID
    if not fits or not session_id.isprintable() or any(c.isspace() for c in session_id):
        raise InvalidSessionIdError(
            f"session id must be 1-{_MAX_ID} printable characters without spaces, "
            f"got {session_id!r:.60}")
    return session_id


class SessionRegistry(TrioActor):
    """Owns every live `SessionActor` (see module docstring)."""

    def __init__(
        self,
        store: EventStore,
        *,
        idle_timeout: float = 600.0,
        tick: float | None = None,
        actor_class: type[SessionActor] = SessionActor,
    ) -> None:
        super().__init__()
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive, not {idle_timeout}")
        self._store = store
        self._idle_timeout = idle_timeout
        self._tick = tick if tick is not None else min(max(idle_timeout / 4, 0.01), 30.0)
        self._actor_class = actor_class
        self._children: dict[str, _Child] = {}
        self._counts = {"spawned": 0, "passivated": 0, "restarted": 0}
        self._stopping = threading.Event()
        self._ticker: threading.Thread | None = None

    # -- asks ------------------------------------------------------------------------
    def session(self, session_id: str) -> pykka.ActorProxy[SessionActor]:
        """The live actor of `session_id`, started (and so recovered) if needed.

        Raises:
            InvalidSessionIdError: see `check_session_id`.
        """
        child = self._children.get(check_session_id(session_id))
        if child is None or not child.ref.is_alive():
            child = self._spawn(session_id)
        child.last_used = time.monotonic()
        return child.proxy

    def live_sessions(self) -> tuple[str, ...]:
        """Ids of the sessions that have a running actor, sorted."""
        return tuple(sorted(k for k, c in self._children.items() if c.ref.is_alive()))

    def statistics(self) -> RegistryStatistics:
        """How many sessions are live, and how many were spawned, passivated, restarted."""
        return RegistryStatistics(live=len(self.live_sessions()), **self._counts)

    def passivate_idle(self) -> tuple[str, ...]:
        """Stop sessions unused for longer than the idle timeout; returns their ids."""
        cutoff = time.monotonic() - self._idle_timeout
        idle = sorted(k for k, c in self._children.items() if c.last_used < cutoff)
        for session_id in idle:
            child = self._children.pop(session_id)
            child.ref.stop(block=False)  # messages already queued are still served
            self._counts["passivated"] += 1
            log.info("session_passivated", session_id=session_id)
        return tuple(idle)

    def handle_crash(self, crash: SessionCrash) -> None:
        """Record a session actor's crash and restart it from its committed events."""
        actor = f"session:{crash.session_id}"
        self._append_system(ActorCrashed(actor=actor, error_type=crash.error_type,
                                         error=crash.error))
        child = self._children.get(crash.session_id)
        if child is None or not child.ref.is_alive() or child.ref.actor_urn == crash.actor_urn:
            child = self._spawn(crash.session_id)
        try:
            version = child.proxy.recover().get()
        except Exception as exc:  # noqa: BLE001  (unfoldable stream: leave it stopped, say why)
            log.error("session_restart_failed",  # noqa: TRY400  (the event says it all) session_id=crash.session_id,
                      error_type=type(exc).__name__, error=str(exc))
            self._children.pop(crash.session_id, None)
            child.ref.stop(block=False)
            return
        self._counts["restarted"] += 1
        self._append_system(ActorRestarted(actor=actor, recovered_version=version))
        log.info("session_restarted", session_id=crash.session_id, recovered_version=version)

    def on_receive(self, message: Any) -> Any:
        """Handle `PassivateIdle`, `SessionTouched` (`Sessions`), `SessionCrash` (children)."""
        if isinstance(message, PassivateIdle):
            return self.passivate_idle()
        if isinstance(message, SessionTouched):
            child = self._children.get(message.session_id)
            if child is not None and child.ref.actor_urn == message.actor_urn:
                child.last_used = time.monotonic()
            return None
        if isinstance(message, SessionCrash):
            try:
                self.handle_crash(message)
            except Exception as exc:  # noqa: BLE001  (a supervisor outlives a failed restart)
                log.error("session_crash_handling_failed",  # noqa: TRY400 session_id=message.session_id,
                          error_type=type(exc).__name__, error=str(exc))
            return None
        # A supervisor must not die of a stray message: say so and carry on.
        log.warning("registry_unexpected_message", message_type=type(message).__name__)
        return None

    # -- machinery -------------------------------------------------------------------
    def _spawn(self, session_id: str) -> _Child:
        own_ref = self.actor_ref

        def report(crash: SessionCrash) -> None:  # runs on the dying child's thread
            try:
                own_ref.tell(crash)
            except pykka.ActorDeadError:
                log.warning("session_crash_unsupervised", session_id=crash.session_id)

        ref = self._actor_class.start(session_id, self._store, on_crash=report)
        child = _Child(ref=ref, proxy=ref.proxy(), last_used=time.monotonic())
        self._children[session_id] = child
        self._counts["spawned"] += 1
        return child

    def _append_system(self, event: Event) -> None:
        self._store.append(SYSTEM_STREAM, ANY_VERSION, [event]).get()

    def _tick_loop(self) -> None:
        ref = self.actor_ref
        while not self._stopping.wait(self._tick):
            try:
                ref.tell(PassivateIdle())
            except pykka.ActorDeadError:
                return

    def on_start(self) -> None:
        """Start the ticker thread that drives passivation."""
        self._ticker = threading.Thread(target=self._tick_loop, name="session-registry-ticker",
                                        daemon=True)
        self._ticker.start()

    def on_stop(self) -> None:
        """Stop the ticker and every session actor, letting each finish its queued commands."""
        self._stopping.set()
        stops = [(k, c.ref.stop(block=False)) for k, c in self._children.items()]
        self._children.clear()
        for session_id, stopped in stops:
            try:
                stopped.get(timeout=_STOP_TIMEOUT)
            except pykka.Timeout:
                log.warning("session_stop_timed_out", session_id=session_id)
        if self._ticker is not None:
            self._ticker.join()

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        """Stop the ticker and the children when the registry itself dies."""
        self.on_stop()


class Sessions:
    """The trio side of the session registry: one `await` per session command.

    Use it from one trio thread. It caches the proxies of live session actors, so
    a call to a known session costs one actor round trip; it tells the registry
    the session was used (a tell) to keep the idle clock honest, at most once per
    `touch_interval` seconds per session (`start` uses a tenth of the idle timeout),
    so busy sessions do not wake the registry's thread on every command.
    """

    _CACHE_PRUNE_AT = 1024

    def __init__(self, registry: pykka.ActorRef[SessionRegistry], *,
                 touch_interval: float = 0.0, inline: bool = True) -> None:
        """Commands are asked inline when none is in flight (see `_command`), unless
        `inline` is False: then the workers run every one (for comparison)."""
        self.ref = registry
        self._registry = registry.proxy()
        self._proxies: dict[str, pykka.ActorProxy[SessionActor]] = {}
        self._touched: dict[str, float] = {}
        self._touch_interval = touch_interval
        self._asking = 0  # commands awaiting their reply (see `_command`)
        self._inline = inline

    @classmethod
    def start(
        cls,
        store: EventStore,
        *,
        idle_timeout: float = 600.0,
        tick: float | None = None,
        actor_class: type[SessionActor] = SessionActor,
        inline: bool = True,
    ) -> Sessions:
        """Start a `SessionRegistry` over `store` and return its handle (`inline`: see
        `__init__`)."""
        return cls(SessionRegistry.start(store, idle_timeout=idle_timeout, tick=tick,
                                         actor_class=actor_class),
                   touch_interval=idle_timeout / 10, inline=inline)

    async def call(
        self, session_id: str, command: Callable[[pykka.ActorProxy[SessionActor]], Any]
    ) -> Any:
        """Run `command(proxy)` on the session's actor and await its reply.

        If the actor stopped between lookup and call, it is looked up (and so
        restarted) once more.

        Raises:
            SessionUnavailableError: the actor stopped twice, or the registry is stopped.
            InvalidSessionIdError: see `check_session_id`.
        """
        try:
            return await self._call_once(session_id, command)
        except pykka.ActorDeadError:
            log.info("session_lookup_retry", session_id=session_id)
        try:
            return await self._call_once(session_id, command)
        except pykka.ActorDeadError as exc:
            raise SessionUnavailableError(
                f"session {session_id} stopped twice while being called") from exc

    async def _call_once(
        self, session_id: str, command: Callable[[pykka.ActorProxy[SessionActor]], Any]
    ) -> Any:
        return await command(await self.actor(session_id))

    async def actor(self, session_id: str) -> pykka.ActorProxy[SessionActor]:
        """The proxy of the session's live actor (started if needed).

        Raises:
            SessionUnavailableError: the registry is stopped.
            InvalidSessionIdError: see `check_session_id`.
        """
        proxy = self._proxies.get(session_id)
        try:
            if proxy is not None and proxy.actor_ref.is_alive():
                self._touch(session_id, proxy)
                return proxy
            proxy = cast("pykka.ActorProxy[SessionActor]",
                         await self._registry.session(session_id))
        except pykka.ActorDeadError as exc:
            raise SessionUnavailableError("the session registry is stopped") from exc
        if len(self._proxies) >= self._CACHE_PRUNE_AT:
            self._proxies = {k: p for k, p in self._proxies.items() if p.actor_ref.is_alive()}
            self._touched = {k: t for k, t in self._touched.items() if k in self._proxies}
        self._proxies[session_id] = proxy
        self._touched[session_id] = time.monotonic()  # the lookup itself reset the clock
        return proxy

    def _touch(self, session_id: str, proxy: pykka.ActorProxy[SessionActor]) -> None:
        now = time.monotonic()
        if now - self._touched.get(session_id, float("-inf")) >= self._touch_interval:
            self._touched[session_id] = now
            self.ref.tell(SessionTouched(session_id, proxy.actor_ref.actor_urn))

    async def begin_turn(self, session_id: str, request: TurnRequest) -> int:
        """See `SessionActor.begin_turn`; returns the turn number after the commit."""
        return int(await self._command(session_id, BeginTurn(request)))

    async def record(
        self, session_id: str, turn: int, *events: Event, blobs: Sequence[Blob] = ()
    ) -> int:
        """See `SessionActor.record`; returns the stream version after the commit."""
        return int(await self._command(session_id, Record(turn, events, blobs)))

    async def finish_turn(
        self, session_id: str, turn: int, outcome: Event, blobs: Sequence[Blob] = ()
    ) -> TurnState:
        """See `SessionActor.finish_turn`; returns the turn as committed."""
        result: TurnState = await self._command(session_id, FinishTurn(turn, outcome, blobs))
        return result

    async def _command(self, session_id: str, message: BeginTurn | Record | FinishTurn) -> Any:
        """Ask the session; inline (`ask_inline`) when none of our other asks is in flight.

        Alone, an inline ask saves two thread hand-overs. With other asks in flight
        the workers run it: they commit many sessions' appends at once while trio
        serves the other requests.
        """
        alone = self._inline and self._asking == 0
        self._asking += 1
        try:
            if alone:
                return await self.call(session_id, lambda s: ask_inline(s.actor_ref, message))
            return await self.call(session_id, lambda s: s.actor_ref.ask(message, block=False))
        finally:
            self._asking -= 1

    async def state(self, session_id: str) -> SessionState | None:
        """The session's folded state (None if it has no events)."""
        result: SessionState | None = await self.call(session_id, lambda s: s.state())
        return result

    async def statistics(self) -> RegistryStatistics:
        """See `SessionRegistry.statistics`."""
        result: RegistryStatistics = await self._registry.statistics()
        return result

    async def aclose(self) -> None:
        """Stop the registry and its sessions (waits in a worker thread)."""
        await self.ref.stop(block=False)

    def stop(self) -> None:
        """Stop the registry and its sessions (blocks; for threads and sync code)."""
        self.ref.stop()

