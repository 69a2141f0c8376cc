"""`lynkr usage`: what each key and user used, from the `usage` projection.

`lynkr usage [--key K] [--user U] [--since D] [--until D] [--by day|model|key|user|provider]
[--json|--csv]` catches the projections up with the log (exactly once, safe beside a
running server), sums the `usage` projection per group and adds an estimated cost from
the price table (`lynkr.toml` `[prices]`, defaults in `lynkr.gateway._usage`). Days are
UTC dates, `--since`/`--until` inclusive. Exit codes: 0, 1 (no log, a bad filter), 2
(bad settings).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from lynkr.cli._setup import load_cli_settings

__all__ = ["register"]

_COLUMNS = ("requests", "input_tokens", "output_tokens", "cache_read_input_tokens",
            "cache_creation_input_tokens", "tool_calls", "errors", "latency_ms", "cost_usd")
_HEADERS = ("REQUESTS", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE", "TOOL CALLS", "ERRORS",
            "LATENCY MS", "COST USD (EST.)")


def _usage(args: argparse.Namespace) -> int:
    from lynkr.cli._cmd_store import _projections, _recorder, _table
    from lynkr.gateway import usage_filters, usage_report

    by = usage_filters(by=args.by, since=args.since, until=args.until)
    settings = load_cli_settings()
    with _recorder(settings) as recorder, _projections(settings, recorder) as store:
        rows = usage_report(store, settings.prices, by=by, key=args.key, user=args.user,
                            since=args.since, until=args.until)
    columns = (by[0], *_COLUMNS)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_cell(row.get(c)) for c in columns] for row in rows])
    elif not rows:
        print("no usage recorded" + (" for these filters" if _filtered(args) else ""))
    else:
        _table([by[0].upper(), *_HEADERS], [[row.get(c) for c in columns] for row in rows])
        print("# cost is an estimate from the price table (lynkr.toml [prices])")
    return 0


def _cell(value: Any) -> Any:
    return "" if value is None else value


def _filtered(args: argparse.Namespace) -> bool:
    return any(v is not None for v in (args.key, args.user, args.since, args.until))


def register(subparsers: Any) -> None:
    """Add `usage`."""
    usage = subparsers.add_parser(
        "usage", help="requests, tokens, tool calls, errors and estimated cost per key/user",
        description="Usage from the event log's `usage` projection (UTC days), with an "
                    "estimated cost from the price table.")
    usage.add_argument("--key", metavar="K", help="one API key id (lk_…)")
    usage.add_argument("--user", metavar="U", help="one user")
    usage.add_argument("--since", metavar="D", help="first UTC day, YYYY-MM-DD")
    usage.add_argument("--until", metavar="D", help="last UTC day, YYYY-MM-DD")
    usage.add_argument("--by", default="day",
                       choices=("day", "model", "key", "user", "provider"),
                       help="group rows by (default: day)")
    out = usage.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print a JSON list")
    out.add_argument("--csv", action="store_true", help="print CSV")
    usage.set_defaults(handler=_usage)
