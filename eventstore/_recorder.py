"""The recorder contract every storage backend fulfils, and the records it returns.

A recorder appends events to streams with optimistic concurrency, stores blobs by
content, and reads streams, the global log and blobs back. Two implementations
exist: `MemoryRecorder` (tests) and `SqliteRecorder` (apsw, group commit). One
contract suite in `tests/eventstore/test_recorder_contract.py` runs against both.
"""

from __future__ import annotations

import abc
import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog

from eventstore._codec import BlobRef, decode_value, encode_value, make_blob
from eventstore._errors import EventStoreError
from eventstore._registry import EVENTS, Event, EventRegistry

__all__ = [
    "ANY_VERSION",
    "AppendResult",
    "Damage",
    "Metadata",
    "RawEvent",
    "Recorded",
    "Recorder",
    "StreamInfo",
]

log = structlog.get_logger()

ANY_VERSION = -1
"""Pass as `expected_version` to append whatever the stream's current version."""

E_co = TypeVar("E_co", bound=Event, covariant=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Metadata:
    """Who caused an event: the request that carried it and the event that led to it.

    `key_id` is the public id of the gateway API key that made the request (never
    the secret); usage is metered per key, "anonymous" when it is None.
    """

    request_id: str | None = None
    causation_id: str | None = None
    actor: str | None = None
    key_id: str | None = None

    def encode(self) -> bytes:
        """Encode as cbor2, dropping empty fields."""
        # Fields read by name: `dataclasses.asdict` deep-copies every value, and each
        # append of a new request encodes its metadata once (~10 µs saved per append).
        return encode_value({name: value for name in _METADATA_NAMES
                             if (value := getattr(self, name)) is not None})

    @classmethod
    def decode(cls, data: bytes) -> Metadata:
        """Decode what `encode` wrote (unknown keys are ignored)."""
        raw = decode_value(data) if data else {}
        return cls(**{k: v for k, v in raw.items() if k in _METADATA_FIELDS})


_METADATA_NAMES = tuple(f.name for f in dataclasses.fields(Metadata))
_METADATA_FIELDS = frozenset(_METADATA_NAMES)


@dataclass(frozen=True, slots=True, kw_only=True)
class Recorded(Generic[E_co]):
    """An event as stored: its place in the log and in its stream, and when."""

    position: int
    stream_id: str
    seq: int
    event: E_co
    recorded_at: float
    metadata: Metadata
    event_id: str | None = None

    @property
    def type_name(self) -> str:
        """The registered type name of the event."""
        return type(self.event).type_name


@dataclass(frozen=True, slots=True, kw_only=True)
class RawEvent:
    """A stored row before decoding, as `verify` and the tamper tests see it."""

    position: int
    stream_id: str
    seq: int
    type_name: str
    version: int
    recorded_at: float
    payload: bytes
    metadata: bytes
    event_id: str | None
    hash: bytes


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Where an append landed: the stream's new version, the global positions used, and
    the `recorded_at` its events got (None for an empty append), so the appender can
    build their `Recorded` form without reading them back."""

    stream_id: str
    version: int
    first_position: int
    last_position: int
    recorded_at: float | None = None


_SET_RESULT = tuple(AppendResult.__dict__[name].__set__ for name in (
    "stream_id", "version", "first_position", "last_position", "recorded_at"))


def append_result(stream_id: str, version: int, first: int, last: int,
                  recorded_at: float | None) -> AppendResult:
    """`AppendResult(...)` without the frozen dataclass `__init__` (a third of its cost;
    the group writer makes one per append)."""
    result = object.__new__(AppendResult)
    set_stream, set_version, set_first, set_last, set_recorded = _SET_RESULT
    set_stream(result, stream_id)
    set_version(result, version)
    set_first(result, first)
    set_last(result, last)
    set_recorded(result, recorded_at)
    return result


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """One stream's summary for listings."""

    stream_id: str
    version: int
    last_position: int
    first_recorded_at: float
    last_recorded_at: float


@dataclass(frozen=True, slots=True)
class Damage:
    """The first damaged event of a stream, found by `verify`."""

    stream_id: str
    seq: int
    position: int | None
    reason: str


class Recorder(abc.ABC):
    """Storage contract for events and blobs (see module docstring).

    The append signature is defined here once: `append` and `submit_append` check
    the request and hand it to the backend's `_submit`. Outside the store, only the
    event store's writer (`actors.EventStore`) appends; everything else reads.
    """

    shared = False
    """True when other processes (other gateways) may append to the same log at any
    time, so a cached stream version is only a guess (PostgreSQL); an embedded SQLite
    log has one gateway (`gateway.lock`)."""

    def __init__(self, registry: EventRegistry | None = None) -> None:
        self.registry = registry or EVENTS
        self._listeners: list[Callable[[int], None]] = []
        self._listeners_lock = threading.Lock()

    # -- writing -------------------------------------------------------------------
    def append(self, stream_id: str, expected_version: int, events: Sequence[Event], *,
               metadata: Metadata | None = None, event_ids: Sequence[str] | None = None,
               blobs: Iterable[tuple[BlobRef, bytes]] = ()) -> AppendResult:
        """Append `events` to `stream_id` if it is at `expected_version`; block until durable.

        Args:
            stream_id: the stream, e.g. ``session-<id>``.
            expected_version: the stream's current version (0 for a new stream), or
                `ANY_VERSION`.
            events: registered event instances, stored with sequence numbers
                ``expected_version + 1 …``.
            metadata: stored with every event of this append.
            event_ids: one unique id per event; retrying an append with the same ids
                returns the first append's result instead of appending twice.
            blobs: content (from `make_blob`) the events refer to, stored in the same
                transaction, each digest once.

        Returns:
            Where the events landed.

        Raises:
            ConcurrencyError: the stream is not at `expected_version`.
            StoreClosedError: the recorder was closed.
        """
        return self.submit_append(stream_id, expected_version, events, metadata=metadata,
                                  event_ids=event_ids, blobs=blobs).result()

    def submit_append(
        self, stream_id: str, expected_version: int, events: Sequence[Event], *,
        metadata: Metadata | None = None, event_ids: Sequence[str] | None = None,
        blobs: Iterable[tuple[BlobRef, bytes]] = (), defer: bool = False,
    ) -> Future[AppendResult]:
        """`append` without waiting: the future resolves once the events are durable.

        Errors in the request itself (unregistered class, bad field value, event ids
        not one distinct id per event) raise at once; conflicts arrive on the future.
        With `defer` a backend with group commit queues the request until some thread
        calls `commit_deferred` (or `close`); a backend without one ignores it.

        Raises:
            EventStoreError: the request is invalid.
            StoreClosedError: the recorder was closed.
        """
        if event_ids is not None and (
            len(event_ids) != len(events) or len(set(event_ids)) != len(event_ids)
        ):
            raise EventStoreError("event_ids must give one distinct id per event")
        return self._submit(stream_id, expected_version, events, metadata, event_ids, blobs,
                            defer)

    @abc.abstractmethod
    def _submit(self, stream_id: str, expected_version: int, events: Sequence[Event],
                metadata: Metadata | None, event_ids: Sequence[str] | None,
                blobs: Iterable[tuple[BlobRef, bytes]], defer: bool) -> Future[AppendResult]:
        """The backend's part of `submit_append`, with the request checked."""

    def commit_deferred(self, *, wait: bool = True) -> int:
        """Commit the appends submitted with `defer=True`; how many there were (0 here:
        a backend without group commit never defers)."""
        return 0

    # -- reading -------------------------------------------------------------------
    @abc.abstractmethod
    def read_stream(
        self, stream_id: str, from_seq: int = 1, to_seq: int | None = None
    ) -> list[Recorded[Event]]:
        """Events of one stream with ``from_seq <= seq <= to_seq``, in order."""

    @abc.abstractmethod
    def read_all(self, after_position: int = 0, limit: int = 1000) -> list[Recorded[Event]]:
        """Up to `limit` events of the global log with position > `after_position`."""

    def position_before(self, cutoff: float) -> int:
        """The position to `read_all` after so that every event recorded at or after
        `cutoff` (epoch seconds) is read: commit times grow with position, so a binary
        search of single-event reads finds it (for a start-up that needs only the log's
        recent tail: the prompt cache, the rate limits)."""
        low, high = 0, self.last_position()
        while low < high:
            mid = (low + high) // 2
            first = self.read_all(mid, 1)
            if not first or first[0].recorded_at >= cutoff:
                high = mid
            else:
                low = first[0].position
        return low

    def read_since(self, cutoff: float, page: int = 1000) -> Iterator[Recorded[Event]]:
        """Every event recorded at or after `cutoff` (and possibly a few just before it),
        in log order, read `page` events at a time from `position_before(cutoff)`."""
        after = self.position_before(cutoff)
        while batch := self.read_all(after, page):
            after = batch[-1].position
            yield from batch

    @abc.abstractmethod
    def read_raw(self, stream_id: str) -> list[RawEvent]:
        """One stream's rows undecoded, in sequence order."""

    def stream_head(self, stream_id: str) -> tuple[int, bytes] | None:
        """(version, last hash) the store keeps for the stream apart from its events.

        `verify` compares it with the events to notice events removed from the end
        of a stream. None when the store keeps no separate head (the default).
        """
        return None

    def headed_streams(self) -> list[str]:
        """Ids of every stream the store keeps a separate head for (see `stream_head`).

        `verify` walks these too, so a stream whose every event was deleted is noticed.
        """
        return []

    @abc.abstractmethod
    def stream_version(self, stream_id: str) -> int:
        """The stream's current version (its last sequence number; 0 if it is empty)."""

    @abc.abstractmethod
    def list_streams(self, prefix: str = "") -> list[StreamInfo]:
        """Every stream whose id starts with `prefix`, ordered by id."""

    @abc.abstractmethod
    def last_position(self) -> int:
        """The highest committed global position (0 for an empty log)."""

    @abc.abstractmethod
    def get_blob(self, ref: BlobRef) -> bytes:
        """The stored bytes of a blob.

        Raises:
            BlobNotFoundError: no blob has that digest.
        """

    @abc.abstractmethod
    def blob_stats(self) -> tuple[int, int]:
        """(number of blobs, bytes stored for them)."""

    def load_blob(self, ref: BlobRef) -> Any:
        """A blob decoded back into the JSON-like value `make_blob` was given."""
        return decode_value(self.get_blob(ref))

    # -- following -----------------------------------------------------------------
    @property
    @abc.abstractmethod
    def closed(self) -> bool:
        """Whether `close` was called."""

    def follow(
        self, after_position: int = 0, *, idle_timeout: float | None = None, page: int = 1000
    ) -> Iterator[Recorded[Event]]:
        """The live subscription: every event after `after_position`, then each new one as
        its commit lands. Blocks between commits (run it on a thread of its own).

        Ends when the recorder is closed, or after `idle_timeout` seconds without a new
        event (never, if None).
        """
        position = after_position
        while not self.closed:
            records = self.read_all(position, page)
            if records:
                yield from records
                position = records[-1].position
                continue
            if self.wait_for_position(position, idle_timeout) <= position and (
                idle_timeout is not None
            ):
                return

    @abc.abstractmethod
    def wait_for_position(self, after_position: int, timeout: float | None) -> int:
        """Block until the log passes `after_position` or `timeout` ends; the last position."""

    def add_commit_listener(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """Call `callback(last_position)` after every commit; returns the remover.

        The callback runs on the committing thread before the appends of that commit
        return, so it must only hand the news on. An exception in it is logged.
        """
        with self._listeners_lock:
            self._listeners.append(callback)

        def remove() -> None:
            with self._listeners_lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return remove

    def _announce(self, last_position: int) -> None:
        """Tell every commit listener that the log now ends at `last_position`."""
        with self._listeners_lock:
            listeners = list(self._listeners)
        for callback in listeners:
            try:
                callback(last_position)
            except Exception:  # a listener's bug is not the commit's
                log.exception("eventstore_listener_failed", listener=repr(callback))

    # -- lifecycle -----------------------------------------------------------------
    @abc.abstractmethod
    def close(self) -> None:
        """Finish pending appends and release every resource. Idempotent."""

    # -- helpers shared by implementations ------------------------------------------
    @staticmethod
    def blob(content: Any) -> tuple[BlobRef, bytes]:
        """Shorthand for `make_blob`."""
        return make_blob(content)
