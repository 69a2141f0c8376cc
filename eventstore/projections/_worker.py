"""The catch-up worker's side of a pipe: `serve_catch_ups` runs catch-ups on request.

A server that must not spend its own interpreter on projections (the gateway: its
trio thread and the projection thread share one GIL) runs a `ProjectionStore` in a
child process and asks it to catch up over a pair of pipes, one JSON line each way:

    {"op": "catch_up"}                  → {"events": n, "positions": {…}, "failures": {…}}
    {"op": "rebuild", "name": null|"…"} → the same
    (the log cannot be read)            → {"error": "StoreBrokenError: …"}
    (a request this end cannot parse)   → {"error": "bad request: …"}

End of input ends the loop. `report_to_wire` / `report_from_wire` are the one
encoding of a `CatchUpReport` on that pipe, used by both ends.
"""

from __future__ import annotations

import json
from typing import Any, BinaryIO

import structlog

from eventstore._errors import EventStoreError, ProjectionWorkerError
from eventstore._recorder import Recorder
from eventstore.projections._store import CatchUpReport, ProjectionStore

__all__ = ["report_from_wire", "report_to_wire", "serve_catch_ups"]

log = structlog.get_logger()


def report_to_wire(report: CatchUpReport) -> dict[str, Any]:
    """A `CatchUpReport` as the JSON object `serve_catch_ups` replies with."""
    return {"events": report.events, "positions": dict(report.positions),
            "failures": dict(report.failures)}


def report_from_wire(line: bytes) -> CatchUpReport:
    """Parse one reply line of `serve_catch_ups`.

    Raises:
        ProjectionWorkerError: the reply is an error, or not a well-formed report.
    """
    try:
        reply = json.loads(line)
    except ValueError as exc:
        raise ProjectionWorkerError(f"unreadable reply from the projection worker: {exc}") from None
    if not isinstance(reply, dict):
        raise ProjectionWorkerError("unreadable reply from the projection worker: not an object")
    if "error" in reply:
        raise ProjectionWorkerError(str(reply["error"]))
    events, positions, failures = (reply.get("events"), reply.get("positions"),
                                   reply.get("failures"))
    if (type(events) is not int or not isinstance(positions, dict)
            or not isinstance(failures, dict)
            or not all(type(v) is int for v in positions.values())):
        raise ProjectionWorkerError("unreadable reply from the projection worker: missing fields")
    return CatchUpReport(events, {str(k): v for k, v in positions.items()},
                         {str(k): str(v) for k, v in failures.items()})


def serve_catch_ups(recorder: Recorder, store: ProjectionStore, requests: BinaryIO,
                    replies: BinaryIO) -> int:
    """Answer catch-up and rebuild requests, one line each, until `requests` ends.

    A failure to read the log (or the projection file) is answered as an error and
    the loop goes on, as the in-process runner keeps going; so is a request this
    end cannot parse.

    Returns:
        How many requests were answered.
    """
    answered = 0
    for line in requests:
        reply = _answer(recorder, store, line)
        replies.write(json.dumps(reply, separators=(",", ":")).encode() + b"\n")
        replies.flush()
        answered += 1
    return answered


def _answer(recorder: Recorder, store: ProjectionStore, line: bytes) -> dict[str, Any]:
    request = _parse(line)
    if request is None:
        log.warning("projection_worker_bad_request", request=line[:200].decode(errors="replace"))
        return {"error": f"bad request: {line[:200]!r}"}
    op, name = request
    if name is not None and name not in store.projections:
        return {"error": f"bad request: no projection named {name!r}"}
    try:
        report = store.catch_up(recorder) if op == "catch_up" else store.rebuild(recorder, name)
    except EventStoreError as exc:
        log.exception("projections_catch_up_failed", error_type=type(exc).__name__,
                      error=str(exc))
        return {"error": f"{type(exc).__name__}: {exc}"}
    if report.events:
        log.debug("projections_caught_up", events=report.events,
                  failures=sorted(report.failures))
    return report_to_wire(report)


def _parse(line: bytes) -> tuple[str, str | None] | None:
    """(op, projection name) of a well-formed request line, else None."""
    try:
        request = json.loads(line)
    except ValueError:
        return None
    if not isinstance(request, dict) or request.get("op") not in ("catch_up", "rebuild"):
        return None
    name = request.get("name") if request["op"] == "rebuild" else None
    if name is not None and not isinstance(name, str):
        return None
    return request["op"], name
