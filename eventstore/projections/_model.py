"""What a projection is: a pure function from one recorded event to row operations.

A `Projection` names its tables (with their `CREATE TABLE` statements) and a
`project(recorded, context)` function. The function reads nothing but its
arguments: the event, and a `ProjectionContext` giving read-only access to blobs
and to the projection's own rows as they stand before this event. It returns the
row operations to apply; the `ProjectionStore` applies them and moves the
projection's offset in the same transaction, so each event counts exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from eventstore._codec import BlobRef
from eventstore._recorder import Recorded
from eventstore._registry import Event

__all__ = [
    "Delete",
    "Projection",
    "ProjectionContext",
    "ProjectionStatus",
    "RowOp",
    "Upsert",
    "check_identifier",
]

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*\Z")


def check_identifier(name: str) -> str:
    """`name` if it is a plain lowercase SQL identifier.

    Raises:
        ValueError: otherwise (table and column names are spliced into SQL).
    """
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not a plain lowercase SQL identifier")
    return name


@dataclass(frozen=True, slots=True)
class Upsert:
    """Insert the row with `key`, or update it if it exists.

    `set` columns are written either way; `add` columns are added to (starting
    from 0 for a new row), which makes counters; `insert_only` columns are written
    only when the row is new (e.g. "first seen").
    """

    table: str
    key: Mapping[str, Any]
    set: Mapping[str, Any] = field(default_factory=dict)
    add: Mapping[str, int | float] = field(default_factory=dict)
    insert_only: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete the row with `key` (no error if it is absent)."""

    table: str
    key: Mapping[str, Any]


RowOp = Upsert | Delete


class ProjectionContext(Protocol):
    """Read-only inputs a projection may consult besides the event itself."""

    def load_blob(self, ref: BlobRef) -> Any:
        """The JSON-like value stored under `ref`.

        Raises:
            BlobNotFoundError: the store does not hold it.
        """

    def get(self, table: str, **key: Any) -> Mapping[str, Any] | None:
        """The projection's own row with `key`, as it stands before this event."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Projection:
    """A named read model: its tables and the pure function that fills them.

    Attributes:
        name: unique, a plain identifier (`lynkr projections rebuild NAME`).
        version: bump when `tables` or `project` change meaning; a stored
            projection of another version is dropped and rebuilt from position 0.
        tables: table name → `CREATE TABLE` statement.
        project: ``project(recorded, context) -> [RowOp, ...]``; pure.
        types: the event type names it reacts to (None: every event), so other
            events only move its offset.
    """

    name: str
    version: int
    tables: Mapping[str, str]
    project: Callable[[Recorded[Event], ProjectionContext], Sequence[RowOp]]
    types: frozenset[str] | None = None

    def __post_init__(self) -> None:
        check_identifier(self.name)
        for table in self.tables:
            check_identifier(table)


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    """Where one projection stands: its offset in the log and its last failure."""

    name: str
    version: int
    position: int
    error: str | None
