"""`lynkr migrate --from URL --to URL`: copy an event log into PostgreSQL.

`--from` is `sqlite:///path/lynkr.db` (default: this gateway's `LYNKR_STORE_URL`) or
another PostgreSQL log; `--to` is a `postgresql://` URL. Events keep their positions,
hashes and metadata, blobs are copied first, and every event's hash chain is checked
before it is written (`eventstore.copy_log`). Progress goes to stderr after each page;
an interrupted copy is resumed by running the same command again (it continues after
the target's last position). Exit codes: 0 copied, 1 a store failed or a source event
is damaged, 2 bad settings.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lynkr.cli._setup import load_cli_settings
from lynkr.errors import LynkrError

__all__ = ["register"]


class MigrateError(LynkrError):
    """The copy could not start or stopped at a damaged event."""


def _migrate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from eventstore import (
        CopyProgress,
        EventStoreError,
        copy_log,
        is_postgres_url,
        open_recorder,
        redact_url,
        sqlite_path,
    )

    source_url = args.source or load_cli_settings().store_url
    if not is_postgres_url(args.target):
        raise MigrateError(f"--to must be a postgresql:// URL, not {redact_url(args.target)}")
    if not is_postgres_url(source_url) and not Path(sqlite_path(source_url)).is_file():
        raise MigrateError(f"no event log at {sqlite_path(source_url)}")

    def report(step: CopyProgress) -> None:
        share = f" ({100 * step.copied // step.total}%)" if step.total else ""
        print(f"lynkr migrate: {step.copied}/{step.total} events{share}, {step.blobs} blobs, "
              f"target at position {step.last_position}", file=sys.stderr, flush=True)

    try:
        source = open_recorder(source_url)
    except (EventStoreError, ValueError) as exc:
        raise MigrateError(f"cannot open {redact_url(source_url)}: {exc}") from exc
    try:
        target = open_recorder(args.target)
        try:
            done = copy_log(source, target, page=args.page, max_events=args.max_events,
                            progress=report)
        finally:
            target.close()
    except EventStoreError as exc:
        raise MigrateError(str(exc)) from exc
    finally:
        source.close()
    print(f"copied {done.copied} events and {done.blobs} blobs to "
          f"{redact_url(args.target)}; the target ends at position {done.last_position}")
    return 0


def register(subparsers: Any) -> None:
    """Add `migrate`."""
    migrate = subparsers.add_parser(
        "migrate", help="copy the event log into PostgreSQL (resumable)",
        description="Copy an event log (events with their positions and hashes, blobs) "
                    "into a PostgreSQL store, verifying each hash chain; run again to "
                    "resume an interrupted copy.")
    migrate.add_argument("--from", dest="source", metavar="URL",
                         help="sqlite:///path/lynkr.db or postgresql://… (default: "
                              "LYNKR_STORE_URL)")
    migrate.add_argument("--to", dest="target", metavar="URL", required=True,
                         help="postgresql://user@host/db")
    migrate.add_argument("--page", type=int, default=1000, metavar="N",
                         help="events per transaction (default 1000)")
    migrate.add_argument("--max-events", type=int, metavar="N",
                         help="stop after N events (run again to continue)")
    migrate.set_defaults(handler=_migrate)
