"""`Sessions`: the trio face of the `SessionRegistry`, one `await` per session command.

It looks the session up (its proxy cached, least recently used out first) and calls
it; if the actor was stopped between the two (passivation, restart), it looks it up
again, once. What it used since its last lookup rides along with the next one, so
the registry's least-recently-used order is exact where it decides which session a
new one displaces.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, cast

import pykka
import structlog

from actors._dispatched import ask_inline
from actors._errors import SessionUnavailableError
from actors._session_commands import Blob, TurnRequest
from actors.registry import (
    MAX_LIVE_SESSIONS,
    RegistryStatistics,
    SessionRegistry,
    SessionTouched,
)
from actors.session import BeginTurn, FinishTurn, Record, SessionActor
from actors.writer import EventStore
from eventstore import Event
from eventstore.projections.session_state import SessionState, TurnState

__all__ = ["Sessions"]

log = structlog.get_logger()

_MAX_TOUCH_INTERVAL = 1.0  # seconds: the registry's idle clock is this fresh


class Sessions:
    """The trio side of the session registry: one `await` per session command.

    Use it from one trio thread. It caches the proxies of up to `max_live` session
    actors (least recently used out first), so a call to a known session costs one
    actor round trip. It tells the registry the session was used (a tell) to keep
    its idle clock honest, at most once per `touch_interval` seconds per session
    (`start` uses a tenth of the idle timeout, at most a second), so busy sessions do
    not wake the registry's thread on every command; the exact order of use goes
    with the next lookup (see module docstring).
    """

    def __init__(self, registry: pykka.ActorRef[SessionRegistry], *,
                 touch_interval: float = 0.0, inline: bool = True,
                 max_live: int = MAX_LIVE_SESSIONS) -> None:
        """Commands are asked inline when none is in flight (see `_command`), unless
        `inline` is False: then the workers run every one (for comparison)."""
        self.ref = registry
        self._registry = registry.proxy()
        # session id -> (proxy, when we last told the registry it was used)
        self._proxies: OrderedDict[str, tuple[pykka.ActorProxy[SessionActor], float]] = (
            OrderedDict())
        self._max_cached = max_live
        # session id -> actor urn, used since our last lookup, least recent first
        self._used: dict[str, str] = {}
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
        max_live: int = MAX_LIVE_SESSIONS,
    ) -> Sessions:
        """Start a `SessionRegistry` over `store` and return its handle.

        Args:
            store: the event store the sessions append to.
            idle_timeout: seconds after which an unused session is passivated.
            tick: seconds between idle checks (default: a quarter of the timeout).
            actor_class: the session actor (tests pass subclasses).
            inline: see `__init__`.
            max_live: live sessions at most; beyond it the least recently used one
                is passivated.

        Raises:
            ValueError: `idle_timeout` is not positive or `max_live` below 1.
        """
        return cls(SessionRegistry.start(store, idle_timeout=idle_timeout, tick=tick,
                                         actor_class=actor_class, max_live=max_live),
                   touch_interval=min(idle_timeout / 10, _MAX_TOUCH_INTERVAL), inline=inline,
                   max_live=max_live)

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
        cached = self._proxies.get(session_id)
        try:
            if cached is not None and cached[0].actor_ref.is_alive():
                self._touch(session_id, *cached)
                return cached[0]
            used, self._used = tuple(self._used.items()), {}
            proxy = cast("pykka.ActorProxy[SessionActor]",
                         await self._registry.session(session_id, used))
        except pykka.ActorDeadError as exc:
            raise SessionUnavailableError("the session registry is stopped") from exc
        proxies = self._proxies
        proxies[session_id] = (proxy, time.monotonic())  # the lookup itself reset the clock
        proxies.move_to_end(session_id)
        if len(proxies) > self._max_cached:  # the registry passivated that one, or will
            evicted, _ = proxies.popitem(last=False)
            self._used.pop(evicted, None)
        return proxy

    def _touch(self, session_id: str, proxy: pykka.ActorProxy[SessionActor],
               touched: float) -> None:
        self._proxies.move_to_end(session_id)
        used = self._used
        used.pop(session_id, None)  # to the end: most recent
        used[session_id] = proxy.actor_ref.actor_urn
        now = time.monotonic()
        if now - touched >= self._touch_interval:
            self._proxies[session_id] = (proxy, now)
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

