"""The projection worker process, and `ProjectorProcess`, which drives it.

`lynkr serve` keeps the projections (`projections.db`, or the PostgreSQL log's
database) caught up with the log as it grows. Done on
a thread of the gateway, that work (reading and decoding the new events, running
every projection, writing the rows) took the interpreter lock from the request
path several hundred microseconds per turn, and the request path waited for it:
at concurrency 1, 0.4 ms of added latency per request and a quarter of the
throughput at 32 (docs/benchmark-history.md, "projections in a worker process"). So by
default (`LYNKR_PROJECTOR=process`) the `ProjectionRunner` actor hands each
catch-up to a child, `python -m lynkr.projector`, which runs
`eventstore.projections.serve_catch_ups` on its stdin and stdout: one JSON
request line, one reply line. The actor still decides when to catch up, keeps
the status and answers queries; only the work moves.

The child is started on first use and again after it dies (its death fails the
catch-up in flight, which the runner reports as it reports an unreadable log; the
next commit tries again), no sooner than a backoff after the last death (0.5 s,
doubling up to 30 s, back to 0.5 s after a good reply), so a child that cannot
start is not started twenty times a second. It runs in a session of its own, so a
terminal's Ctrl-C reaches only the gateway, which then closes the child's stdin:
the child answers what it was asked and exits. If the gateway is killed, the
child sees the end of its stdin and exits too. Its log lines go to the gateway's
stderr, in the same format.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import structlog

from eventstore import EventStoreError, ProjectionWorkerError, open_recorder, redact_url
from eventstore.projections import (
    CatchUpReport,
    all_projections,
    open_projection_store_at,
    report_from_wire,
    serve_catch_ups,
)
from lynkr._gc import tune_gc
from lynkr.logs import LOG_FORMATS, configure_logging

__all__ = ["ProjectorProcess", "main"]

log = structlog.get_logger()

_BACKOFF_FIRST = 0.5  # seconds before the first restart after a death
_BACKOFF_MAX = 30.0
_STOP_TIMEOUT = 10.0  # seconds a closing child gets to finish before SIGKILL
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])  # the directory holding `lynkr`


class ProjectorProcess:
    """An `actors.projections.CatchUpWorker` that runs the work in a child process.

    Used from one thread at a time (the runner's), as the protocol says.
    """

    def __init__(self, log_path: str | os.PathLike[str], store_path: str | os.PathLike[str],
                 *, log_level: str = "info", log_format: str = "auto",
                 durability: str = "NORMAL", python: str = sys.executable) -> None:
        """Nothing is started until the first `catch_up` or `rebuild`."""
        self._argv = [python, "-m", "lynkr.projector", "--log", os.fspath(log_path),
                      "--store", os.fspath(store_path), "--log-level", log_level,
                      "--log-format", log_format, "--durability", durability]
        self._proc: subprocess.Popen[bytes] | None = None
        self._backoff = _BACKOFF_FIRST
        self._not_before = 0.0  # time.monotonic() before which no child is started
        self._closed = False
        self.starts = 0  # children started so far (for tests and diagnostics)

    @property
    def pid(self) -> int | None:
        """The running child's process id, or None."""
        return self._proc.pid if self._proc is not None else None

    def catch_up(self) -> CatchUpReport:
        """See `CatchUpWorker.catch_up`."""
        return self._ask({"op": "catch_up"})

    def rebuild(self, name: str | None) -> CatchUpReport:
        """See `CatchUpWorker.rebuild`."""
        return self._ask({"op": "rebuild", "name": name})

    def close(self) -> None:
        """Close the child's stdin and wait for it to exit (SIGKILL after 10 s)."""
        self._closed = True
        proc, self._proc = self._proc, None
        if proc is None:
            return
        _close_quietly(proc.stdin)
        try:
            proc.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning("projector_kill", pid=proc.pid)
            proc.kill()
            proc.wait()
        _close_quietly(proc.stdout)

    def _ask(self, request: dict[str, Any]) -> CatchUpReport:
        proc = self._running()
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            proc.stdin.flush()
            reply = proc.stdout.readline()
        except (OSError, ValueError):  # a broken pipe; ValueError: a closed file
            reply = b""
        if not reply.endswith(b"\n"):  # the child died before or while answering
            self._lost(proc)
        report = report_from_wire(reply)  # a ProjectionWorkerError if it is an error
        self._backoff = _BACKOFF_FIRST
        return report

    def _running(self) -> subprocess.Popen[bytes]:
        if self._closed:
            raise ProjectionWorkerError("the projection worker is closed")
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        if self._proc is not None:
            self._lost(self._proc)
        if time.monotonic() < self._not_before:  # one message while it lasts: logged once
            raise ProjectionWorkerError("the projection worker exited; restarting after a "
                                        "backoff")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)}
        try:
            self._proc = subprocess.Popen(self._argv, stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, env=env,
                                          start_new_session=True)
        except OSError as exc:
            self._schedule_restart()
            raise ProjectionWorkerError(f"cannot start the projection worker: {exc}") from exc
        self.starts += 1
        log.info("projector_started", pid=self._proc.pid)
        return self._proc

    def _lost(self, proc: subprocess.Popen[bytes]) -> None:
        """Reap a child that stopped answering; raises the error for the caller."""
        self._proc = None
        _close_quietly(proc.stdin)
        try:
            code = proc.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:  # it closed its stdout but lives on
            proc.kill()
            code = proc.wait()
        _close_quietly(proc.stdout)
        self._schedule_restart()
        log.warning("projector_exited", pid=proc.pid, code=code,
                    restart_in_s=round(self._not_before - time.monotonic(), 1))
        raise ProjectionWorkerError(f"the projection worker exited (code {code})")

    def _schedule_restart(self) -> None:
        self._not_before = time.monotonic() + self._backoff
        self._backoff = min(_BACKOFF_MAX, self._backoff * 2)


def _close_quietly(stream: IO[bytes] | None) -> None:
    if stream is not None:
        with contextlib.suppress(OSError):  # a broken pipe: flushing a dead child's stdin
            stream.close()


def main(argv: list[str] | None = None) -> int:
    """The child: answer catch-up requests on stdin until it ends (see module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m lynkr.projector",
                                     description="Lynkr's projection worker (started by "
                                                 "`lynkr serve`; speaks JSON lines on stdio).")
    parser.add_argument("--log", required=True, help="the event log (a path or store URL)")
    parser.add_argument("--store", required=True,
                        help="the projection store: projections.db, or the PostgreSQL log's URL")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--log-format", default="auto", choices=LOG_FORMATS)
    parser.add_argument("--durability", default="NORMAL", choices=("NORMAL", "FULL"))
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the gateway closes our stdin instead
    configure_logging(args.log_level, log_format=args.log_format)
    structlog.contextvars.bind_contextvars(component="projector")
    try:
        recorder = open_recorder(args.log, durability=args.durability)
    except EventStoreError as exc:
        log.error("projector_cannot_open", path=args.log, error=str(exc))  # noqa: TRY400
        return 1
    try:
        store = open_projection_store_at(args.store, all_projections())
    except EventStoreError as exc:
        recorder.close()
        log.error("projector_cannot_open", path=redact_url(args.store),  # noqa: TRY400
                  error=str(exc))
        return 1
    tune_gc()
    try:
        serve_catch_ups(recorder, store, sys.stdin.buffer, sys.stdout.buffer)
    except BrokenPipeError:  # the gateway went away mid-reply
        pass
    finally:
        store.close()
        recorder.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
