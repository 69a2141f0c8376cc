"""`SessionRegistry`: spawns, passivates and supervises session actors.

The registry starts a `SessionActor` the first time a session is used (the actor
recovers by folding its stream), stops sessions idle for longer than
`idle_timeout` (a ticker thread it owns sends it `PassivateIdle`), stops the least
recently used one whenever more than `max_live` are live (so a gateway's memory
does not grow with the number of sessions it has served), and supervises:
when a session actor dies of an unhandled exception, the registry appends
`ActorCrashed` to the `system` stream, starts a fresh actor, lets it recover from
its committed events and appends `ActorRestarted` with the recovered version.

`Sessions` (`actors._sessions`) is what the HTTP handler holds: one `await` per
session command.

Nothing here scans the sessions on a request: the registry keeps its children in
least-recently-used order (a lookup or a touch moves one to the end; passivation
takes from the front), `Sessions` keeps at most `max_live` cached proxies the same
way, and session actors are not listed in `pykka.ActorRegistry` (a list: pykka's
`unregister` scans it on every stop). The registry stops them itself.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pykka
import structlog

from actors._errors import InvalidSessionIdError
from actors._pykka_private import start_unlisted
from actors._trio import TrioActor
from actors.session import SessionActor, SessionCrash
from actors.writer import EventStore
from eventstore import ANY_VERSION, Event
from eventstore.events.system import ActorCrashed, ActorRestarted

__all__ = [
    "MAX_LIVE_SESSIONS",
    "PassivateIdle",
    "RegistryStatistics",
    "SessionRegistry",
    "SessionTouched",
    "check_session_id",
]

log = structlog.get_logger()

SYSTEM_STREAM = "system"
_MAX_ID = 128
_STOP_TIMEOUT = 10.0  # seconds a stopping registry waits for each session's last command
MAX_LIVE_SESSIONS = 1000
"""Default cap on live session actors: ~14 KB each for a small session, up to a few
hundred KB for a long Claude Code one (its blob digests). A passivated session costs
nothing and recovers from its events on its next request."""


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
    passivated: int  # idle, or least recently used beyond `max_live`
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
        max_live: int = MAX_LIVE_SESSIONS,
    ) -> None:
        super().__init__()
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive, not {idle_timeout}")
        if max_live < 1:
            raise ValueError(f"max_live must be at least 1, not {max_live}")
        self._store = store
        self._idle_timeout = idle_timeout
        self._tick = tick if tick is not None else min(max(idle_timeout / 4, 0.01), 30.0)
        self._actor_class = actor_class
        self._max_live = max_live
        # Least recently used first: `_use` moves a child to the end.
        self._children: OrderedDict[str, _Child] = OrderedDict()
        self._counts = {"spawned": 0, "passivated": 0, "restarted": 0}
        self._stopping = threading.Event()
        self._ticker: threading.Thread | None = None

    # -- asks ------------------------------------------------------------------------
    def session(
        self, session_id: str, used: Sequence[tuple[str, str]] = ()
    ) -> pykka.ActorProxy[SessionActor]:
        """The live actor of `session_id`, started (and so recovered) if needed.

        Args:
            session_id: the session.
            used: `(session id, actor urn)` of the sessions the caller used since its
                last lookup, least recent first, so the least recently used order is
                exact where it decides which session a new one displaces.

        Raises:
            InvalidSessionIdError: see `check_session_id`.
        """
        for used_id, urn in used:
            self._touched(used_id, urn)
        child = self._children.get(check_session_id(session_id))
        if child is None or not child.ref.is_alive():
            child = self._spawn(session_id)
            self._passivate_beyond_cap()
        else:
            self._use(session_id, child)
        return child.proxy

    def live_sessions(self) -> tuple[str, ...]:
        """Ids of the sessions that have a running actor, sorted."""
        return tuple(sorted(k for k, c in self._children.items() if c.ref.is_alive()))

    def statistics(self) -> RegistryStatistics:
        """How many sessions are live, and how many were spawned, passivated, restarted."""
        return RegistryStatistics(live=len(self._children), **self._counts)

    def passivate_idle(self) -> tuple[str, ...]:
        """Stop sessions unused for longer than the idle timeout; returns their ids."""
        cutoff = time.monotonic() - self._idle_timeout
        idle = []
        while self._children:  # least recently used first: stop at the first one in use
            session_id, child = next(iter(self._children.items()))
            if child.last_used >= cutoff:
                break
            self._passivate(session_id, "idle")
            idle.append(session_id)
        return tuple(idle)

    def _passivate_beyond_cap(self) -> None:
        """Stop the least recently used sessions while more than `max_live` are live."""
        while len(self._children) > self._max_live:
            self._passivate(next(iter(self._children)), "lru")

    def _passivate(self, session_id: str, reason: str) -> None:
        child = self._children.pop(session_id)
        child.ref.stop(block=False)  # messages already queued are still served
        self._counts["passivated"] += 1
        log.info("session_passivated", session_id=session_id, reason=reason)

    def _use(self, session_id: str, child: _Child) -> None:
        child.last_used = time.monotonic()
        self._children.move_to_end(session_id)

    def _touched(self, session_id: str, actor_urn: str) -> None:
        child = self._children.get(session_id)
        if child is not None and child.ref.actor_urn == actor_urn:
            self._use(session_id, child)

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
            self._touched(message.session_id, message.actor_urn)
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

        ref = start_unlisted(self._actor_class, session_id, self._store, on_crash=report)
        child = _Child(ref=ref, proxy=ref.proxy(), last_used=time.monotonic())
        self._children[session_id] = child
        self._children.move_to_end(session_id)  # a restart replaces an entry in place
        self._counts["spawned"] += 1
        return child

    def _append_system(self, event: Event) -> None:
        self._store.submit_append(SYSTEM_STREAM, ANY_VERSION, [event]).result()

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
