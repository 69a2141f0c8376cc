"""`lynkr sessions|transcript|replay|verify|projections`: the event log from the shell.

Every command reads the event log of `LYNKR_STORE_URL` (default `$LYNKR_DATA_DIR/lynkr.db`,
never creating it). `sessions` and `transcript` read projections, caught up first into
`$LYNKR_DATA_DIR/projections.db` (with a PostgreSQL log: into the log's database)
(exactly once, so this is safe beside a running server). `replay` folds a session
stream step by step with the session fold; `verify` checks every stream's
contiguity and hash chain. Exit codes: 0 fine, 1 damage or a failure (one line on
stderr), 2 bad settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lynkr.cli._progress import ProgressBar
from lynkr.cli._session import session_arg
from lynkr.cli._setup import load_cli_settings
from lynkr.cli._timeline import event_line, print_state, print_turn, timeline, when
from lynkr.errors import LynkrError, NotFoundError

if TYPE_CHECKING:
    from eventstore import Recorder
    from eventstore.projections import ProjectionStore
    from eventstore.projections.session_state import SessionState
    from lynkr.config import Settings

# The event store is imported inside the handlers: `lynkr --help` and the other
# commands never pay for it (tools/bench_cli_startup.py).

__all__ = ["register"]

_SESSION = "session-"


class StoreCommandError(LynkrError):
    """The event log or a projection could not be read for a command."""


def register(subparsers: Any) -> None:
    """Add `sessions`, `transcript`, `replay`, `verify` and `projections`."""
    sessions = subparsers.add_parser(
        "sessions", help="sessions with event counts, turns and last activity",
        description="List recorded sessions, most recently active first.")
    transcript = subparsers.add_parser(
        "transcript", help="one session's transcript", description="Show a session turn by turn.")
    replay = subparsers.add_parser(
        "replay", help="fold a session's events step by step (time travel)",
        description="Fold a session stream event by event and show the state at a point.")
    verify = subparsers.add_parser(
        "verify", help="check every stream's contiguity and hash chain",
        description="Walk every stream; print the first damaged event of each; exit 1 on damage.")
    projections = subparsers.add_parser(
        "projections", help="projection status and rebuilds",
        description="Inspect or rebuild the projections (projections.db, or the "
                    "PostgreSQL log's database).")
    actions = projections.add_subparsers(dest="projections_action", metavar="ACTION",
                                         required=True)
    rebuild = actions.add_parser("rebuild", help="drop projections and replay from position 0")
    status = actions.add_parser("status", help="each projection's offset and last error")
    for parser in (transcript, replay):
        parser.add_argument("session", metavar="SESSION", type=session_arg,
                            help="session id, X or session-X")
    replay.add_argument("--until", metavar="SEQ", type=int, help="stop after this event")
    # -- replay --verify / --provider (lynkr/cli/_replay_verify.py, _replay_whatif.py)
    replay.add_argument("--verify", action="store_true",
                        help="re-translate the recorded upstream answers and prove each turn's "
                             "client bytes (exit 1 naming the first turn that differs)")
    replay.add_argument("--provider", metavar="NAME",
                        help="re-send the recorded requests to this configured backend and "
                             "diff the answers (recorded in whatif-<id>)")
    replay.add_argument("--turns", metavar="A..B", help="with --provider: only these turns")
    rebuild.add_argument("name", metavar="NAME", nargs="?", help="one projection (default: all)")
    rebuild.set_defaults(handler=_rebuild)
    for parser, handler in ((sessions, _sessions), (transcript, _transcript), (replay, _replay),
                            (verify, _verify), (status, _status)):
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.set_defaults(handler=handler)


# -- opening -----------------------------------------------------------------------------
@contextmanager
def _recorder(settings: Settings) -> Iterator[Recorder]:
    """The event log; a missing file is an error, never silently created."""
    from eventstore import EventStoreError, is_postgres_url, open_recorder, sqlite_path
    url = settings.store_url
    if not is_postgres_url(url) and not Path(sqlite_path(url)).is_file():
        raise NotFoundError(f"no event log at {sqlite_path(url)} (set LYNKR_DATA_DIR or "
                            "LYNKR_STORE_URL)")
    try:
        recorder = open_recorder(url, durability=settings.server.durability)
    except EventStoreError as exc:
        raise StoreCommandError(str(exc)) from exc
    try:
        yield recorder
    except EventStoreError as exc:
        raise StoreCommandError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        recorder.close()


@contextmanager
def _projections(settings: Settings, recorder: Recorder) -> Iterator[ProjectionStore]:
    """The projection store, caught up with the log."""
    store = _projection_store(settings)
    try:
        report = store.catch_up(recorder)
        for name, error in sorted(report.failures.items()):
            print(f"lynkr: warning: projection {name} is behind: {error}", file=sys.stderr)
        yield store
    finally:
        store.close()


def _projection_store(settings: Settings) -> ProjectionStore:
    """The log's projection store: `$LYNKR_DATA_DIR/projections.db` (the directory
    created if missing) for a SQLite log, the log's own database for PostgreSQL."""
    from eventstore.projections import all_projections, open_projection_store
    return open_projection_store(settings.store_url, all_projections(),
                                 settings.server.data_dir)


def _table(headers: list[str], rows: list[list[Any]]) -> None:
    cells = [headers, *[["-" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


open_log = _recorder  # for `lynkr export` (lynkr/cli/_cmd_export.py)


# -- sessions and transcript ------------------------------------------------------------
def _sessions(args: argparse.Namespace) -> int:
    from eventstore.projections.sessions import session_rows
    settings = load_cli_settings()
    with _recorder(settings) as recorder, _projections(settings, recorder) as store:
        rows = session_rows(store)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no sessions recorded")
        return 0
    _table(["SESSION", "EVENTS", "TURNS", "FAILED", "MODEL", "LAST ACTIVITY (UTC)"],
           [[r["session_id"], r["events"], r["turns"], r["failures"], r["model"],
             when(r["last_at"])] for r in rows])
    return 0


def _transcript(args: argparse.Namespace) -> int:
    from eventstore.projections.transcript import transcript_events, transcript_rows
    settings = load_cli_settings()
    with _recorder(settings) as recorder, _projections(settings, recorder) as store:
        rows = transcript_rows(store, args.session)
        events = transcript_events(store, args.session)
        if not rows and not events and recorder.stream_version(_SESSION + args.session) == 0:
            raise NotFoundError(f"no session {args.session!r} in the log")
    by_turn: dict[int, list[dict[str, Any]]] = {}
    loose = []  # events outside any turn: CLI and admin tool calls, loop-guard refusals
    for event in events:
        if event["turn"] is None:
            loose.append(event)
        else:
            by_turn.setdefault(event["turn"], []).append(event)
    if args.json:
        turns = [{**row, "events": by_turn.get(row["turn"], [])} for row in rows]
        print(json.dumps({"session_id": args.session, "turns": turns, "events": loose},
                         indent=2))
        return 0
    if not rows and not loose:
        print(f"session {args.session} has no turns yet")
    for kind, item in timeline(rows, loose):
        if kind == "turn":
            print_turn(item, by_turn.get(item["turn"], []))
        else:
            print(f"── {event_line(item)} · {when(item['recorded_at'])}")
    if loose:
        print()
    return 0


# -- replay ------------------------------------------------------------------------------
def _replay(args: argparse.Namespace) -> int:
    settings = load_cli_settings()
    stream = _SESSION + args.session
    if args.verify or args.provider:  # replay --verify / --provider
        return _replay_check(args, settings, stream)
    with _recorder(settings) as recorder:
        rows = recorder.read_raw(stream)
        if not rows:
            raise NotFoundError(f"no session {args.session!r} in the log")
        if args.until is not None and not 1 <= args.until <= len(rows):
            raise StoreCommandError(f"--until must be between 1 and {len(rows)}")
        steps, state = _fold(recorder, rows[: args.until or len(rows)], stream)
        if args.json:
            print(json.dumps({"stream_id": stream, "until": state.version, "steps": steps,
                              "state": state.as_dict()}, indent=2, default=str))
            return 0
        _table(["SEQ", "POSITION", "TYPE", "RECORDED (UTC)"],
               [[s["seq"], s["position"], s["type"], when(s["recorded_at"])] for s in steps])
        print()
        print_state(state, recorder.load_blob)  # reads step messages and tool results
    return 0


def _replay_check(args: argparse.Namespace, settings: Settings, stream: str) -> int:
    """`--verify` (exit 1 naming the first turn that differs) or `--provider` (what-if)."""
    if args.verify and args.provider:
        raise StoreCommandError("--verify and --provider are separate runs")
    if args.turns and not args.provider:
        raise StoreCommandError("--turns goes with --provider")
    with _recorder(settings) as recorder:
        events = [r.event for r in recorder.read_stream(stream)]
        if not events:
            raise NotFoundError(f"no session {args.session!r} in the log")
        if args.provider:
            from lynkr.cli._replay_whatif import run_whatif
            return run_whatif(recorder, settings, args.session, events, args.provider,
                              args.turns, as_json=args.json)
        from lynkr.cli._replay_verify import verify_turns
        checks = verify_turns(recorder, events, _adapter_for(settings))
    bad = next((c for c in checks if c.status == "differs"), None)
    if args.json:
        print(json.dumps({"session_id": args.session, "ok": bad is None,
                          "turns": [c.as_dict() for c in checks]}, indent=2))
    else:
        _table(["TURN", "KIND", "RESULT", "DETAIL"],
               [[c.turn, c.kind, c.status, c.detail] for c in checks])
    if bad is not None:
        print(f"lynkr: turn {bad.turn} differs: {bad.detail}", file=sys.stderr)
        return 1
    return 0


def _adapter_for(settings: Settings) -> Callable[[str], Any]:
    """The response translation of a recorded provider: its configured adapter, else
    the same kind's with no URL (translating answers needs neither URL nor key)."""
    from lynkr.providers import PROVIDER_KINDS, BackendSettings
    from lynkr.system import make_adapter
    providers = settings.providers

    def adapter_for(name: str) -> Any:
        backend = providers.backends.get(name)
        if backend is None:
            if name not in PROVIDER_KINDS:
                raise StoreCommandError(f"turn answered by unknown provider {name!r}")
            backend = BackendSettings(name=name, url="")
        return make_adapter(backend, providers)

    return adapter_for


def _fold(
    recorder: Recorder, rows: list[Any], stream: str
) -> tuple[list[dict[str, Any]], SessionState]:
    """Decode and fold one row at a time, so a failure names the exact event."""
    from eventstore import EventStoreError, Metadata, Recorded
    from eventstore.projections.session_state import evolve_session
    state: SessionState | None = None
    steps = []
    for row in rows:
        try:
            record = Recorded(position=row.position, stream_id=row.stream_id, seq=row.seq,
                              event=recorder.registry.decode(row.type_name, row.version,
                                                             row.payload),
                              recorded_at=row.recorded_at,
                              metadata=Metadata.decode(row.metadata), event_id=row.event_id)
            state = evolve_session(state, record)
        except EventStoreError as exc:
            raise StoreCommandError(
                f"cannot fold {stream} at seq {row.seq} (position {row.position}, "
                f"{row.type_name}): {exc}") from exc
        steps.append({"seq": row.seq, "position": row.position, "type": row.type_name,
                      "recorded_at": row.recorded_at})
    assert state is not None  # rows is not empty
    return steps, state


# -- verify and projections --------------------------------------------------------------
def _verify(args: argparse.Namespace) -> int:
    from eventstore import damaged_blobs, verify_log
    settings = load_cli_settings()
    damaged: list[dict[str, Any]] = []
    bad_blobs: list[str] = []
    streams = events = blobs = 0
    with _recorder(settings) as recorder, \
            ProgressBar("verify", recorder.last_position()) as bar:
        for _stream_id, count, damage in verify_log(recorder):
            streams += 1
            events += count
            bar.update(events)
            if damage is not None:
                damaged.append({"stream_id": damage.stream_id, "seq": damage.seq,
                                "position": damage.position, "reason": damage.reason})
        for checked, digest in damaged_blobs(recorder):
            blobs = checked
            if digest is not None:
                bad_blobs.append(digest.hex())
    if args.json:
        print(json.dumps({"ok": not damaged and not bad_blobs, "streams": streams,
                          "events": events, "damaged": damaged, "blobs": blobs,
                          "damaged_blobs": bad_blobs}, indent=2))
    else:
        for d in damaged:
            where = f"position {d['position']}" if d["position"] is not None else "at the end"
            print(f"DAMAGED {d['stream_id']} seq {d['seq']} {where}: {d['reason']}")
        for hex_digest in bad_blobs:
            print(f"DAMAGED blob {hex_digest}: its content no longer hashes to its digest")
        print(f"{streams} streams, {events} events checked, "
              f"{len(damaged) + len(bad_blobs)} damaged ({blobs} blobs checked)")
    return 1 if damaged or bad_blobs else 0


def _with_store(body: Callable[[ProjectionStore, Recorder], int]) -> int:
    settings = load_cli_settings()
    with _recorder(settings) as recorder:
        store = _projection_store(settings)
        try:
            return body(store, recorder)
        finally:
            store.close()


def _rebuild(args: argparse.Namespace) -> int:
    def body(store: ProjectionStore, recorder: Recorder) -> int:
        if args.name is not None and args.name not in store.projections:
            raise NotFoundError(f"no projection {args.name!r}; known: "
                                f"{', '.join(sorted(store.projections))}")
        with ProgressBar("rebuild", recorder.last_position()) as bar:
            report = store.rebuild(recorder, args.name, on_page=bar.update)
        for name, position in sorted(report.positions.items()):
            print(f"rebuilt {name} up to position {position}")
        for name, error in sorted(report.failures.items()):
            print(f"FAILED {name}: {error}")
        return 1 if report.failures else 0

    return _with_store(body)


def _status(args: argparse.Namespace) -> int:
    def body(store: ProjectionStore, recorder: Recorder) -> int:
        last = recorder.last_position()
        rows = [{"name": s.name, "version": s.version, "position": s.position,
                 "behind": last - s.position, "error": s.error} for s in store.status()]
        if args.json:
            print(json.dumps({"log_position": last, "projections": rows}, indent=2))
        else:
            _table(["PROJECTION", "VERSION", "POSITION", "BEHIND", "ERROR"],
                   [[r["name"], r["version"], r["position"], r["behind"], r["error"]]
                    for r in rows])
        return 0

    return _with_store(body)
