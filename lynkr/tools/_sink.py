"""`StoreSessionSink`: the one way a tool call's events reach its session stream.

Events of an open turn go through the session actor (`actors.Sessions.record`): while
a turn runs the actor owns the stream, and its state (the turn's tool calls) must see
them. Events outside any turn (a `lynkr tool call`, an admin API call) and, in a
process without session actors, every event, are appended with `EventStore.append`
at the stream's version: a new stream starts with `SessionStarted(source=…)`, and a
lost race (another writer appended since the version was read: a session actor, the
gateway while the CLI runs, another CLI) is answered by re-reading the version and
appending again, a few times.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog

from eventstore import BlobRef, ConcurrencyError, Event
from eventstore.events.session import SessionStarted

if TYPE_CHECKING:
    from actors import EventStore, Sessions

__all__ = ["StoreSessionSink"]

log = structlog.get_logger()
APPEND_ATTEMPTS = 5  # appends at a freshly read version before a lost race is raised


class StoreSessionSink:
    """Records a tool call's events in ``session-<id>``, durably, in order: the sink of
    every `ToolRunner` (see module docstring).

    Args:
        store: the event store that turn-less events are appended to.
        sessions: the session actors, for events of an open turn; None in a process
            without them (the CLI), where every event is appended directly (the turn
            number is on the events already).
        source: the `SessionStarted.source` of a stream this sink starts (``"cli"``,
            ``"admin"``).
    """

    def __init__(self, store: EventStore, sessions: Sessions | None = None, *,
                 source: str = "cli") -> None:
        self.store = store
        self.sessions = sessions
        self.source = source

    async def record(
        self,
        session_id: str,
        events: Sequence[Event],
        *,
        blobs: Sequence[tuple[BlobRef, bytes]] = (),
        turn: int | None = None,
    ) -> None:
        """Append `events` (and the blobs they refer to) to ``session-<session_id>``;
        return once they are committed.

        Raises:
            ConcurrencyError: other writers won the race `APPEND_ATTEMPTS` times running.
            StoreClosedError: the event store has stopped.
            ActorError: the session actor refused the events (e.g. `turn` is not open).
        """
        if turn is not None and self.sessions is not None:
            await self.sessions.record(session_id, turn, *events, blobs=blobs)
            return
        await self._append(session_id, events, list(blobs))

    async def _append(self, session_id: str, events: Sequence[Event],
                      blobs: list[tuple[BlobRef, bytes]]) -> None:
        """Append at the stream's version, re-reading it after a lost race."""
        stream = f"session-{session_id}"
        for attempt in range(1, APPEND_ATTEMPTS + 1):
            version = await self.store.stream_version(stream)
            batch = events if version else [
                SessionStarted(session_id=session_id, source=self.source), *events]
            try:
                await self.store.append(stream, version, batch, blobs=blobs)
            except ConcurrencyError:
                if attempt == APPEND_ATTEMPTS:
                    raise
                log.info("session_append_raced", session_id=session_id, version=version,
                         attempt=attempt)
                continue
            return
