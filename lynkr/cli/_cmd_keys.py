"""`lynkr keys create|list|revoke|rotate|tier`: the team gateway's API keys.

The commands append to the `gateway` stream of the log in `LYNKR_DATA_DIR` themselves,
whether or not a gateway runs on it (as `lynkr tool call` does; docs/INTERNALS.md "The
CLI appends the way the gateway does"): each decides against the stream folded to
version N and appends at N, so a conflicting write is retried on the new state, never
lost. A running gateway sees the change at its next look at the stream (every
`LYNKR_KEYS_REFRESH` second) and, for a key it does not know yet, at once. A new secret
is printed once, alone on stdout (so `KEY=$(lynkr keys create …)` works); only its
SHA-256 is stored.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lynkr.cli._setup import load_cli_settings

if TYPE_CHECKING:
    from eventstore import Event
    from lynkr.config import Settings
    from lynkr.gateway import KeyRing

__all__ = ["register"]


def _when(iso: str | None) -> str:
    return "-" if iso is None else iso.replace("T", " ").removesuffix("+00:00")


def _run(settings: Settings, command: Callable[[KeyRing], tuple[Event, str | None]]
         ) -> tuple[Event, str | None]:
    """Run a key command on the log, appending as the gateway does (module docstring)."""
    from actors import EventStore
    from eventstore import open_recorder
    from lynkr.gateway import run_key_command_sync

    settings.server.data_dir.mkdir(parents=True, exist_ok=True)
    recorder = open_recorder(settings.store_url, durability=settings.server.durability)
    store = EventStore.start(recorder)
    try:
        return run_key_command_sync(recorder, store, command,
                                    actor=f"cli:{getpass.getuser()}")
    finally:
        store.stop()


def _settings() -> Settings:
    return load_cli_settings()


def _print_secret(key: dict[str, Any], secret: str | None, as_json: bool, verb: str) -> None:
    if as_json:
        print(json.dumps({**key, "key": secret}, indent=2))
        return
    print(f"lynkr: {verb} API key {key['id']} ({key['name']}, user {key['user']}, tier "
          f"{key['tier']}, scopes {','.join(key['scopes'])}); its secret is shown only "
          "now:", file=sys.stderr)
    print(secret)


def _created_json(event: Any) -> dict[str, Any]:
    from lynkr.gateway import key_json
    return key_json({"key_id": event.key_id, "prefix": event.prefix, "name": event.name,
                     "user": event.user, "tier": event.tier, "scopes": event.scopes,
                     "created_at": event.created_at, "expires_at": event.expires_at,
                     "created_by": event.created_by})


def _create(args: argparse.Namespace) -> int:
    from lynkr.gateway import create_key, parse_duration
    settings = _settings()
    expires = parse_duration(args.expires) if args.expires else None
    tiers = settings.limits.tiers
    by = f"cli:{getpass.getuser()}"
    event, secret = _run(settings, lambda ring: create_key(
        ring, name=args.name, user=args.user, tier=args.tier, scopes=args.scopes,
        expires_in=expires, now=time.time(), by=by, tiers=tiers))
    _print_secret(_created_json(event), secret, args.json, "created")
    return 0


def _rows(settings: Settings) -> list[dict[str, Any]]:
    """Every key with its last use (the `keys` projection, caught up first)."""
    from eventstore import is_postgres_url, open_recorder
    from eventstore.projections import all_projections, open_projection_store
    from eventstore.projections.keys import key_rows
    from lynkr.errors import LynkrError
    from lynkr.gateway import key_json
    if not is_postgres_url(settings.store_url) and not settings.db_path.exists():
        return []
    store = open_projection_store(settings.store_url, all_projections(),
                                  settings.server.data_dir)
    recorder = open_recorder(settings.store_url)
    try:
        report = store.catch_up(recorder, names=["keys"])
        if report.failures:
            raise LynkrError(f"projection keys failed: {report.failures['keys']}")
        return [key_json(row) for row in key_rows(store)]
    finally:
        recorder.close()
        store.close()


def _list(args: argparse.Namespace) -> int:
    keys = _rows(_settings())
    if args.json:
        print(json.dumps(keys, indent=2))
        return 0
    if not keys:
        print("no API keys (create one: lynkr keys create --name NAME)")
        return 0
    now = datetime.now(UTC).isoformat(timespec="seconds")
    header = ("ID", "PREFIX", "NAME", "USER", "TIER", "SCOPES", "CREATED", "EXPIRES",
              "LAST USED", "STATE")
    rows = [header] + [(
        k["id"], k["prefix"] + "…", k["name"], k["user"], k["tier"], ",".join(k["scopes"]),
        _when(k["created_at"]), _when(k["expires_at"]), _when(k["last_used_at"]),
        "revoked" if k["revoked_at"] else
        "expired" if k["expires_at"] and k["expires_at"] <= now else "active")
        for k in keys]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from lynkr.gateway import revoke_key
    by = f"cli:{getpass.getuser()}"
    _run(_settings(), lambda ring: (revoke_key(ring, args.key_id, now=time.time(), by=by),
                                    None))
    print(f"lynkr: revoked API key {args.key_id}", file=sys.stderr)
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from lynkr.gateway import parse_duration, rotate_key
    settings = _settings()
    grace = parse_duration(args.grace) if args.grace else settings.auth.rotation_grace
    by = f"cli:{getpass.getuser()}"
    event, secret = _run(settings, lambda ring: rotate_key(ring, args.key_id, now=time.time(),
                                                           grace=grace, by=by))
    key = next(k for k in _rows(settings) if k["id"] == args.key_id)
    if not args.json:
        until = datetime.fromtimestamp(event.previous_valid_until,  # type: ignore[attr-defined]
                                       UTC).isoformat(timespec="seconds")
        print(f"lynkr: the previous secret of {args.key_id} works until {until}",
              file=sys.stderr)
    _print_secret(key, secret, args.json, "rotated")
    return 0


def _tier(args: argparse.Namespace) -> int:
    from lynkr.gateway import change_tier
    settings = _settings()
    tiers = settings.limits.tiers
    by = f"cli:{getpass.getuser()}"
    _run(settings, lambda ring: (change_tier(ring, args.key_id, args.tier, by=by,
                                             tiers=tiers), None))
    print(f"lynkr: API key {args.key_id} is on tier {args.tier} now", file=sys.stderr)
    return 0


def register(subparsers: Any) -> None:
    """Add `keys` and its subcommands."""
    keys = subparsers.add_parser(
        "keys", help="the team gateway's API keys: create, list, revoke, rotate, tier",
        description="API keys of the team gateway (LYNKR_AUTH=keys). Secrets are shown "
                    "once and stored only as a SHA-256.")
    sub = keys.add_subparsers(dest="keys_command", metavar="SUBCOMMAND", required=True)
    create = sub.add_parser("create", help="issue a key; prints its secret once")
    create.add_argument("--name", required=True, help="what the key is for")
    create.add_argument("--user", help="who it belongs to (default: the name)")
    create.add_argument("--tier", default="free",
                        help="free (default), starter, pro, enterprise or a lynkr.toml tier")
    create.add_argument("--scopes", default="anthropic-proxy",
                        help="comma list of anthropic-proxy (default), mcp-callback, admin")
    create.add_argument("--expires", metavar="DURATION",
                        help="e.g. 90d, 12h, 2w (default: never)")
    create.add_argument("--json", action="store_true", help="print one JSON object")
    create.set_defaults(handler=_create)
    listing = sub.add_parser("list", help="every key (never a secret), with its last use")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.set_defaults(handler=_list)
    revoke = sub.add_parser("revoke", help="stop a key working, from the gateway's next "
                                           "request")
    revoke.add_argument("key_id", metavar="ID", help="the key's id (lk_…)")
    revoke.set_defaults(handler=_revoke)
    rotate = sub.add_parser("rotate", help="a new secret; the old one works for a grace "
                                           "period")
    rotate.add_argument("key_id", metavar="ID", help="the key's id (lk_…)")
    rotate.add_argument("--grace", metavar="DURATION",
                        help="how long the old secret keeps working (default: "
                             "LYNKR_KEYS_ROTATION_GRACE, 24h)")
    rotate.add_argument("--json", action="store_true", help="print one JSON object")
    rotate.set_defaults(handler=_rotate)
    tier = sub.add_parser("tier", help="move a key to another tier")
    tier.add_argument("key_id", metavar="ID", help="the key's id (lk_…)")
    tier.add_argument("tier", metavar="TIER", help="the new tier")
    tier.set_defaults(handler=_tier)
