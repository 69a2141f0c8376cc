"""The eventstore exception tree.

```
EventStoreError
├── ConcurrencyError          an append's expected version did not match the stream
├── UnknownEventTypeError     a stored type name has no registered class
├── EventDecodeError          a stored payload cannot be decoded or upcast
├── SchemaVersionError        the database file was written by a newer Lynkr
├── StoreClosedError          we closed the store; no more appends or reads
├── StoreBrokenError          the database failed underneath us (disk, corruption)
├── BlobNotFoundError         an event refers to a blob the store does not hold
└── ProjectionWorkerError     a projection worker process failed or answered an error
```
"""

from __future__ import annotations

__all__ = [
    "BlobNotFoundError",
    "ConcurrencyError",
    "EventDecodeError",
    "EventStoreError",
    "ProjectionWorkerError",
    "SchemaVersionError",
    "StoreBrokenError",
    "StoreClosedError",
    "UnknownEventTypeError",
]


class EventStoreError(Exception):
    """Root of every error the eventstore raises."""


class ConcurrencyError(EventStoreError):
    """An append expected a stream version that is no longer (or not yet) current."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, append expected {expected}"
        )
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class UnknownEventTypeError(EventStoreError):
    """The log holds an event type that no registered class handles."""

    def __init__(self, type_name: str) -> None:
        super().__init__(f"unknown event type {type_name!r}: no class is registered for it")
        self.type_name = type_name


class EventDecodeError(EventStoreError):
    """A stored payload could not be decoded into its event class."""


class SchemaVersionError(EventStoreError):
    """The database schema is newer than this build understands."""


class StoreClosedError(EventStoreError):
    """The store was closed by its owner."""


class StoreBrokenError(EventStoreError):
    """SQLite failed underneath the store (I/O error, corruption, full disk)."""


class BlobNotFoundError(EventStoreError):
    """A blob reference points at content the store does not hold."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"blob {digest} is not in the store")
        self.digest = digest


class ProjectionWorkerError(EventStoreError):
    """A projection worker failed: it answered with an error, with a line that is not a
    report, or not at all (its driver raises this when the process is gone)."""
