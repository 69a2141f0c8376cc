"""Lynkr's event store: immutable events in an append-only log, blobs, projections.

Imports neither `actors` nor `lynkr`. The public surface is re-exported here;
implementation lives in private `_name.py` modules and the `events` package.
"""

from __future__ import annotations

# Register every event class whenever the store is imported, so a reader can never
# mistake a known type for an unknown one because nobody imported its module.
from eventstore import events as _events  # noqa: F401
from eventstore._apsw import Durability, SqliteRecorder
from eventstore._codec import BlobRef, decode_value, encode_value, freeze, make_blob, thaw
from eventstore._copy import CopyProgress, copy_log
from eventstore._errors import (
    BlobNotFoundError,
    ConcurrencyError,
    EventDecodeError,
    EventStoreError,
    ProjectionWorkerError,
    SchemaVersionError,
    StoreBrokenError,
    StoreClosedError,
    UnknownEventTypeError,
)
from eventstore._memory import MemoryRecorder
from eventstore._open import is_postgres_url, open_recorder, redact_url, sqlite_path
from eventstore._pending import PendingAppend
from eventstore._recorder import (
    ANY_VERSION,
    AppendResult,
    Damage,
    Metadata,
    RawEvent,
    Recorded,
    Recorder,
    StreamInfo,
)
from eventstore._registry import EVENTS, Event, EventRegistry
from eventstore._schema import SCHEMA_VERSION
from eventstore._verify import damaged_blobs, verify_log, verify_stream

__all__ = [
    "ANY_VERSION",
    "EVENTS",
    "SCHEMA_VERSION",
    "AppendResult",
    "BlobNotFoundError",
    "BlobRef",
    "ConcurrencyError",
    "CopyProgress",
    "Damage",
    "Durability",
    "Event",
    "EventDecodeError",
    "EventRegistry",
    "EventStoreError",
    "MemoryRecorder",
    "Metadata",
    "PendingAppend",
    "ProjectionWorkerError",
    "RawEvent",
    "Recorded",
    "Recorder",
    "SchemaVersionError",
    "SqliteRecorder",
    "StoreBrokenError",
    "StoreClosedError",
    "StreamInfo",
    "UnknownEventTypeError",
    "copy_log",
    "damaged_blobs",
    "decode_value",
    "encode_value",
    "freeze",
    "is_postgres_url",
    "make_blob",
    "open_recorder",
    "redact_url",
    "sqlite_path",
    "thaw",
    "verify_log",
    "verify_stream",
]
