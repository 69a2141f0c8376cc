"""`lynkr tool list|call`, `lynkr tasks` and `lynkr audit`: the toolbelt from the shell.

`tool call NAME 'JSON' [--session S] [--raw]` runs one call through the policy engine in
this process, as caller ``cli:<os user>``, and records its events (`PolicyDecided`,
`ToolCallStarted`, `ToolCompleted`) in ``session-S`` (by default the workspace's one CLI
session, `cli-<workspace id>`: see `lynkr.cli._session`) of `$LYNKR_DATA_DIR/lynkr.db`
(through this process's own `EventStore` and the same `StoreSessionSink` as the
gateway's runner, without session actors: a CLI call belongs to no turn, so its events
are appended at the stream's version, re-read after a lost race). `tasks` and `audit`
read the `tasks` and `policy_audit` projections (caught up from the log into
`$LYNKR_DATA_DIR/projections.db`), so they work offline; `audit --caller` filters by
who called (`session`, `cli:<user>`, `admin:<who>`, or a family such as `cli`).
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lynkr.cli._session import cli_session_id, raw_text, session_arg
from lynkr.cli._setup import load_cli_settings
from lynkr.errors import InvalidRequestError

if TYPE_CHECKING:
    from actors import EventStore
    from eventstore import Recorder
    from eventstore.projections import ProjectionStore
    from eventstore.projections.policy_audit import AuditRow
    from lynkr.config import Settings

# The event store, trio and the toolbelt are imported inside the handlers: `lynkr --help`
# and the other commands never pay for them (tools/bench_cli_startup.py).

__all__ = ["parse_time", "register"]

_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def register(subparsers: Any) -> None:
    """Add `lynkr tool`, `lynkr tasks` and `lynkr audit`."""
    tool = subparsers.add_parser("tool", help="list and call server tools",
                                 description="List the server tools or call one under policy.")
    actions = tool.add_subparsers(dest="tool_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every tool with its policy family")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_tool_list)
    call = actions.add_parser("call", help="run one tool call through the policy engine")
    call.add_argument("name", metavar="NAME")
    call.add_argument("input", metavar="JSON", nargs="?", default="{}")
    call.add_argument("--session", type=session_arg, metavar="SESSION",
                      help="session to record in, X or session-X (default: the "
                           "workspace's CLI session, cli-<workspace id>)")
    call.add_argument("--raw", action="store_true",
                      help="print the result's text as text (a file's content, a diff, a "
                           "page), not as JSON")
    call.set_defaults(handler=_tool_call)
    tasks = subparsers.add_parser("tasks", help="the workspace's task list")
    tasks.add_argument("--json", action="store_true", help="print JSON")
    tasks.add_argument("--status", help="only tasks with this status")
    tasks.set_defaults(handler=_tasks)
    audit = subparsers.add_parser("audit", help="policy decisions, filtered",
                                  description="List recorded policy decisions.")
    audit.add_argument("--session", type=session_arg, help="X or session-X")
    audit.add_argument("--tool")
    audit.add_argument("--decision", choices=("allow", "deny"))
    audit.add_argument("--caller", help="who called: session, cli:<user>, admin:<key id>; "
                                        "or a family (cli, admin) for all of its callers")
    audit.add_argument("--since", help="ISO time (UTC) or an age such as 30m, 2h, 7d")
    audit.add_argument("--until", help="ISO time (UTC) or an age such as 30m, 2h, 7d")
    audit.add_argument("--limit", type=int, default=None, help="only the last N decisions")
    audit.add_argument("--json", action="store_true", help="print JSON")
    audit.add_argument("--explain", metavar="EVENT",
                       help="one decision in full, by log position or event id")
    audit.set_defaults(handler=_audit)


def parse_time(value: str, *, now: float | None = None) -> float:
    """A timestamp from ISO 8601 (naive means UTC) or an age (``90s``, ``30m``, ``2h``, ``7d``).

    Raises:
        InvalidRequestError: neither form.
    """
    match = _RELATIVE.match(value.strip())
    if match:
        return (time.time() if now is None else now) - int(match[1]) * _UNITS[match[2]]
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidRequestError(
            f"{value!r} is not an ISO time (2026-01-31T12:00) or an age (30m, 2h, 7d)") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _settings() -> Settings:
    """The settings, with logs configured to go to stderr (stdout is the command's output)."""
    return load_cli_settings()


def _tool_list(args: argparse.Namespace) -> int:
    from lynkr.toolbelt import open_toolbelt
    settings = _settings()
    _, store = _open_log(settings)
    try:
        with open_toolbelt(settings, store) as belt:
            specs = belt.registry.specs()
    finally:
        store.stop()
    if args.json:
        print(json.dumps([{**s.definition(), "policy": s.policy, "read_only": s.read_only}
                          for s in specs], indent=2))
        return 0
    width = max(len(s.name) for s in specs)
    for spec in specs:
        print(f"{spec.name:<{width}}  {spec.policy:<6} {spec.description}")
    return 0


def _open_log(settings: Settings) -> tuple[Recorder, EventStore]:
    """The log (for reads) and the gateway's append path over it, in this process: the
    CLI appends as the gateway does, with optimistic concurrency, whether or not a
    gateway runs on the same data directory (docs/INTERNALS.md, "the CLI appends").
    `EventStore.stop()` closes both."""
    from actors import EventStore
    from eventstore import open_recorder
    settings.server.data_dir.mkdir(parents=True, exist_ok=True)
    recorder = open_recorder(settings.store_url, durability=settings.server.durability)
    return recorder, EventStore.start(recorder)


def _tool_call(args: argparse.Namespace) -> int:
    import trio

    from lynkr.toolbelt import open_toolbelt
    from lynkr.tools import StoreSessionSink, ToolRunner
    try:
        inputs = json.loads(args.input)
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(f"the tool input is not JSON: {exc}") from None
    settings = _settings()
    session = args.session or cli_session_id(settings.policy.workspace_id)
    recorder, store = _open_log(settings)
    try:
        with open_toolbelt(settings, store) as belt:
            runner = ToolRunner(belt.registry, settings.policy, store=store,
                                recorder=recorder, sink=StoreSessionSink(store, source="cli"))
            caller = f"cli:{getpass.getuser()}"
            result = trio.run(lambda: runner.call(args.name, inputs, session_id=session,
                                                  caller=caller))
    finally:
        store.stop()
    print(f"session: {session}", file=sys.stderr)
    if args.raw and result.ok:
        text = raw_text(result.content)
        print(text, end="" if text.endswith("\n") else "\n")
    else:
        print(json.dumps(result.content, indent=2, ensure_ascii=False, default=str))
    return 0 if result.ok else 1


def _projections(settings: Settings, name: str) -> ProjectionStore | None:
    from eventstore import is_postgres_url, open_recorder
    from eventstore.projections import all_projections, open_projection_store
    if not is_postgres_url(settings.store_url) and not settings.db_path.exists():
        return None
    store = open_projection_store(settings.store_url, all_projections(),
                                  settings.server.data_dir)
    recorder = open_recorder(settings.store_url)
    try:
        report = store.catch_up(recorder, names=[name])
    finally:
        recorder.close()
    if report.failures:
        store.close()
        raise InvalidRequestError(f"projection {name} failed: {report.failures[name]}")
    return store


def _tasks(args: argparse.Namespace) -> int:
    from eventstore.projections.tasks import stored_tasks
    settings = _settings()
    store = _projections(settings, "tasks")
    tasks = []
    if store is not None:
        try:
            tasks = stored_tasks(store, settings.policy.workspace_id)
        finally:
            store.close()
    tasks = [t for t in tasks if args.status is None or t.status == args.status]
    if args.json:
        print(json.dumps([t.as_dict() for t in tasks], indent=2, ensure_ascii=False))
        return 0
    if not tasks:
        print(f"no tasks for {settings.policy.workspace_root}")
    for task in tasks:
        print(f"{task.task_id}  {task.status:<11} {task.priority:<6} {task.title}")
    return 0


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(rows: list[AuditRow]) -> None:
    header = ("POS", "TIME (UTC)", "SESSION", "CALLER", "TOOL", "RULE", "DECISION", "REASON")
    lines = [header] + [(str(r.position), _when(r.recorded_at), r.session_id, r.caller or "-",
                         r.tool, r.rule, r.decision, r.reason) for r in rows]
    widths = [min(max(len(line[i]) for line in lines), 40) for i in range(len(header) - 1)]
    for line in lines:
        cells = [cell[:w].ljust(w) for cell, w in zip(line, widths, strict=False)]
        print("  ".join([*cells, line[-1]]))


def _explain(row: AuditRow, current_hash: str) -> None:
    same = "the same as now" if row.config_hash == current_hash else "differs from now"
    pairs = [("position", row.position), ("event id", row.event_id),
             ("session", row.session_id), ("caller", row.caller),
             ("time (UTC)", _when(row.recorded_at)),
             ("tool", row.tool), ("policy", row.policy), ("rule", row.rule),
             ("decision", row.decision), ("reason", row.reason),
             ("inputs digest", row.inputs_digest),
             ("fields", json.dumps(dict(row.fields), sort_keys=True, default=str)),
             ("config hash", f"{row.config_hash} ({same})"),
             ("tool call id", row.tool_call_id), ("turn", row.turn)]
    for name, value in pairs:
        print(f"{name + ':':<15}{'-' if value is None else value}")


def _audit(args: argparse.Namespace) -> int:
    from eventstore.projections.policy_audit import AuditFilter, find_audit_row, query_audit
    settings = _settings()
    flt = AuditFilter(session_id=args.session, tool=args.tool, decision=args.decision,
                      caller=args.caller.strip() if args.caller else None,
                      since=parse_time(args.since) if args.since else None,
                      until=parse_time(args.until) if args.until else None)
    store = _projections(settings, "policy_audit")
    if store is None:
        rows, found = [], None
    else:
        try:
            found = find_audit_row(store, args.explain) if args.explain else None
            rows = [] if args.explain else query_audit(store, flt, args.limit)
        finally:
            store.close()
    if args.explain:
        if found is None:
            print(f"lynkr: no policy decision at {args.explain!r}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(found.as_dict(), indent=2, default=str))
        else:
            _explain(found, settings.policy.config_hash)
        return 0
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2, default=str))
    elif rows:
        _table(rows)
    else:
        print("no policy decisions match")
    return 0
