"""Events of the `system` stream: facts about the gateway itself."""

from __future__ import annotations

from dataclasses import dataclass

from eventstore._registry import EVENTS, Event

__all__ = ["ActorCrashed", "ActorRestarted", "IndexRebuilt"]


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class ActorCrashed(Event):
    """An actor failed with an unhandled exception."""

    actor: str  # e.g. "session:abc123"
    error_type: str
    error: str


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class ActorRestarted(Event):
    """A supervisor restarted an actor from its committed events."""

    actor: str
    recovered_version: int


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class IndexRebuilt(Event):
    """The indexer brought the repository catalogue up to date with the workspace."""

    workspace: str  # the workspace root that was indexed
    files: int  # files in the catalogue afterwards
    symbols: int
    changed: int  # files added, modified or deleted by this rebuild
    problems: int  # files skipped or only partly understood
    duration_s: float
