"""Every registered projection is pure: same inputs, same operations; no clock, no files."""

from __future__ import annotations

import builtins
import time
from collections.abc import Mapping
from typing import Any

import pytest

import eventstore.events  # noqa: F401  (registers the event classes)
from eventstore import BlobRef, MemoryRecorder
from eventstore.projections import Projection, all_projections
from tests.eventstore.projections.sample_log import write_sample_log


class DictContext:
    """A context backed by plain dicts: blobs from a recorder snapshot, no rows."""

    def __init__(self, blobs: Mapping[bytes, Any]) -> None:
        self.blobs = blobs
        self.reads: list[tuple[str, dict[str, Any]]] = []

    def load_blob(self, ref: BlobRef) -> Any:
        return self.blobs[ref.digest]

    def get(self, table: str, **key: Any) -> Mapping[str, Any] | None:
        self.reads.append((table, key))
        return None


def forbid(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a projection read the clock or opened a file")


@pytest.mark.parametrize("projection", all_projections(), ids=lambda p: p.name)
def test_projection_is_pure(projection: Projection, monkeypatch: pytest.MonkeyPatch) -> None:
    """Projecting the sample log twice gives equal operations without clock or file access."""
    recorder = MemoryRecorder()
    write_sample_log(recorder)
    records = recorder.read_all()
    blobs = {d: recorder.load_blob(BlobRef(d)) for d in recorder._blobs}
    for name in ("time", "time_ns", "monotonic", "perf_counter"):
        monkeypatch.setattr(time, name, forbid)
    monkeypatch.setattr(builtins, "open", forbid)
    first = [projection.project(r, DictContext(blobs)) for r in records]
    second = [projection.project(r, DictContext(blobs)) for r in records]
    assert first == second
    sample_types = {r.type_name for r in records}
    if projection.types is None or projection.types & sample_types:
        assert any(first)
