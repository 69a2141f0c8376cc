"""Projections: pure functions from recorded events to read-model rows or state.

A `Projection` maps one recorded event to row operations (`Upsert`, `Delete`);
`ProjectionStore` applies the registered ones (`all_projections()`, see
`_catalogue.py`) to their own SQLite file with exactly-once offsets, and can drop
and rebuild them from position 0 (`PostgresProjectionStore`, in `_pg_store`, does
the same in the PostgreSQL database of a PostgreSQL log; `open_projection_store`
picks the one that goes with the log); `serve_catch_ups` runs one in a worker process,
answering catch-up requests over a pipe. The fold modules (`session_state`, `tasks`,
`policy_audit`, `test_runs`) are pure folds used directly by actors and commands.
Import a projection module itself for its query helpers (e.g.
`eventstore.projections.transcript.transcript_rows`).
"""

from __future__ import annotations

from eventstore._errors import ProjectionWorkerError
from eventstore.projections._catalogue import MODULES, all_projections, projection_names
from eventstore.projections._model import (
    Delete,
    Projection,
    ProjectionContext,
    ProjectionStatus,
    RowOp,
    Upsert,
)
from eventstore.projections._open_store import (
    open_projection_store,
    open_projection_store_at,
    projection_store_location,
)
from eventstore.projections._store import CatchUpReport, ProjectionStore
from eventstore.projections._worker import (
    report_from_wire,
    report_to_wire,
    serve_catch_ups,
)

__all__ = [
    "MODULES",
    "CatchUpReport",
    "Delete",
    "Projection",
    "ProjectionContext",
    "ProjectionStatus",
    "ProjectionStore",
    "ProjectionWorkerError",
    "RowOp",
    "Upsert",
    "all_projections",
    "open_projection_store",
    "open_projection_store_at",
    "projection_names",
    "projection_store_location",
    "report_from_wire",
    "report_to_wire",
    "serve_catch_ups",
]
