"""`serve_catch_ups` and the report wire format: a projection worker's side of the pipe."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from eventstore import ProjectionWorkerError, SqliteRecorder
from eventstore.projections import (
    CatchUpReport,
    ProjectionStore,
    all_projections,
    report_from_wire,
    report_to_wire,
    serve_catch_ups,
)
from eventstore.projections.transcript import transcript_rows
from tests.eventstore.projections.sample_log import write_sample_log, write_stray_log


@pytest.fixture
def recorder(tmp_path: Path):
    rec = SqliteRecorder(tmp_path / "lynkr.db")
    yield rec
    rec.close()


@pytest.fixture
def store(tmp_path: Path):
    projections = ProjectionStore(tmp_path / "projections.db", all_projections())
    yield projections
    projections.close()


def serve(recorder, store, *requests: object) -> list[dict]:
    """Send each request (an object, or raw bytes) and return the parsed replies."""
    lines = b"".join(r if isinstance(r, bytes) else json.dumps(r).encode() + b"\n"
                     for r in requests)
    out = io.BytesIO()
    answered = serve_catch_ups(recorder, store, io.BytesIO(lines), out)
    replies = [json.loads(line) for line in out.getvalue().splitlines()]
    assert answered == len(replies)
    return replies


def test_a_catch_up_request_applies_the_log_and_replies_with_the_report(recorder, store):
    """The reply carries the events read and each projection's position; the rows exist."""
    write_sample_log(recorder)
    [reply] = serve(recorder, store, {"op": "catch_up"})
    report = report_from_wire(json.dumps(reply).encode())
    assert report.events == recorder.last_position()
    assert set(report.positions) == {p.name for p in all_projections()}
    assert all(v == recorder.last_position() for v in report.positions.values())
    assert [r["turn"] for r in transcript_rows(store, "a")] == [1, 2]


def test_a_second_catch_up_reads_nothing_new(recorder, store):
    """Offsets persist between requests: the second catch-up reads no events."""
    write_sample_log(recorder)
    first, second = serve(recorder, store, {"op": "catch_up"}, {"op": "catch_up"})
    assert first["events"] > 0
    assert second["events"] == 0


def test_a_rebuild_request_replays_one_projection(recorder, store):
    """`rebuild` with a name drops and replays only that projection."""
    write_sample_log(recorder)
    serve(recorder, store, {"op": "catch_up"})
    [reply] = serve(recorder, store, {"op": "rebuild", "name": "transcript"})
    assert set(reply["positions"]) == {"transcript"}
    assert [r["turn"] for r in transcript_rows(store, "a")] == [1, 2]


def test_an_unknown_projection_name_is_answered_with_an_error(recorder, store):
    """A rebuild of a name no projection has is an error reply, and nothing is dropped."""
    write_sample_log(recorder)
    serve(recorder, store, {"op": "catch_up"})
    [reply] = serve(recorder, store, {"op": "rebuild", "name": "nope"})
    assert reply == {"error": "bad request: no projection named 'nope'"}
    assert transcript_rows(store, "a")


@pytest.mark.parametrize("line", [b"not json\n", b"[1]\n", b'{"op": "drop"}\n',
                                  b'{"op": "rebuild", "name": 3}\n'])
def test_a_malformed_request_gets_an_error_and_the_loop_goes_on(recorder, store, line):
    """A bad line is answered with an error; the request after it is still served."""
    bad, good = serve(recorder, store, line, {"op": "catch_up"})
    assert bad["error"].startswith("bad request: ")
    assert "events" in good


def test_an_unreadable_log_is_an_error_reply_naming_the_type(tmp_path, store):
    """An event type nobody registered fails the catch-up with its name; the loop goes on."""
    write_stray_log(tmp_path / "lynkr.db")
    reader = SqliteRecorder(tmp_path / "lynkr.db")
    try:
        first, second = serve(reader, store, {"op": "catch_up"}, {"op": "catch_up"})
    finally:
        reader.close()
    assert "StrayNoted" in first["error"]
    assert "StrayNoted" in second["error"]


def test_end_of_input_ends_the_loop(recorder, store):
    """No requests: nothing answered, the call returns."""
    assert serve_catch_ups(recorder, store, io.BytesIO(b""), io.BytesIO()) == 0


def test_a_report_survives_the_wire():
    """report_from_wire(report_to_wire(r)) == r."""
    report = CatchUpReport(12, {"transcript": 40, "usage": 38}, {"usage": "position 39: boom"})
    line = json.dumps(report_to_wire(report)).encode() + b"\n"
    assert report_from_wire(line) == report


@pytest.mark.parametrize("line", [b"", b"garbage\n", b"[]\n", b'{"events": 1}\n',
                                  b'{"events": 1, "positions": {"a": "x"}, "failures": {}}\n'])
def test_an_unreadable_reply_raises(line):
    """Anything but a whole report is a ProjectionWorkerError."""
    with pytest.raises(ProjectionWorkerError, match="unreadable reply"):
        report_from_wire(line)


def test_an_error_reply_raises_with_its_message():
    """An error reply raises with the worker's message."""
    with pytest.raises(ProjectionWorkerError, match="StoreBrokenError: disk"):
        report_from_wire(b'{"error": "StoreBrokenError: disk"}\n')
