"""Running key commands: fold, decide, append at the folded version, retry on a conflict.

The CLI (`lynkr keys`, in its own process, gateway running or not) and the gateway's
admin API (`/api/v1/api-keys`) both append to the `gateway` stream this way: the
command is decided against the ring folded up to version N and appended with
`expected_version=N`, so two writers (two CLIs, a CLI and a gateway) can never both
act on a stale view; the loser re-folds and decides again (a revoke of a key revoked
meanwhile then fails with a message, it does not append twice).

`key_json` is the one JSON shape of a key (API answers, `lynkr keys list --json`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from eventstore import ConcurrencyError, Event, Metadata
from lynkr.errors import InternalError
from lynkr.gateway._auth import Authenticator, KeyLog
from lynkr.gateway._keys import GATEWAY_STREAM, KeyRing

__all__ = ["KeyCommand", "iso_time", "key_json", "ring_of", "run_key_command",
           "run_key_command_sync"]

KeyCommand = Callable[[KeyRing], tuple[Event, str | None]]
"""Decides against the ring: the event to append and the new secret (or None)."""

_ATTEMPTS = 5


class _SyncStore(Protocol):
    def submit_append(self, stream_id: str, expected_version: int, events: Any, *,
                      metadata: Metadata | None = None) -> Any: ...


class _AsyncStore(Protocol):
    async def append(self, stream_id: str, expected_version: int, events: Any, *,
                     metadata: Metadata | None = None) -> Any: ...


def iso_time(timestamp: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC time (None stays None)."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def key_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A key as the API and `keys list --json` show it, from a `KeyState`'s fields or a
    `keys` projection row (never its secret)."""
    scopes = row["scopes"]
    return {
        "id": row["key_id"], "prefix": row["prefix"], "name": row["name"],
        "user": row["user"], "tier": row["tier"],
        "scopes": scopes.split(",") if isinstance(scopes, str) else list(scopes),
        "created_at": iso_time(row["created_at"]), "expires_at": iso_time(row["expires_at"]),
        "revoked_at": iso_time(row.get("revoked_at")),
        "last_used_at": iso_time(row.get("last_used_at")),
        "created_by": row.get("created_by"),
    }


def ring_of(log: KeyLog) -> KeyRing:
    """The ring folded from the whole `gateway` stream (a blocking read)."""
    ring = KeyRing()
    for record in log.read_stream(GATEWAY_STREAM):
        ring.apply(record.event, record.seq)
    return ring


def run_key_command_sync(log: KeyLog, store: _SyncStore, command: KeyCommand, *,
                         actor: str) -> tuple[Event, str | None]:
    """Run `command` from a thread (the CLI): `store` is an `actors.EventStore`.

    Raises:
        LynkrError: the command refused (not found, revoked already, bad input).
        InternalError: the stream kept changing under it.
    """
    for _ in range(_ATTEMPTS):
        ring = ring_of(log)
        event, secret = command(ring)
        try:
            store.submit_append(GATEWAY_STREAM, ring.version, [event],
                                metadata=Metadata(actor=actor)).result()
        except ConcurrencyError:
            continue
        return event, secret
    raise InternalError("the gateway stream kept changing; try again")


async def run_key_command(auth: Authenticator, store: _AsyncStore, command: KeyCommand, *,
                          actor: str, key_id: str | None = None) -> tuple[Event, str | None]:
    """Run `command` in the gateway (trio): decided against `auth`'s ring, folded into it
    once committed, so the change holds from the next request.

    Raises:
        LynkrError: the command refused.
        InternalError: the stream kept changing under it.
    """
    for _ in range(_ATTEMPTS):
        await auth.catch_up()
        event, secret = command(auth.ring)
        try:
            await store.append(GATEWAY_STREAM, auth.ring.version, [event],
                               metadata=Metadata(actor=actor, key_id=key_id))
        except ConcurrencyError:
            continue
        await auth.catch_up()
        return event, secret
    raise InternalError("the gateway stream kept changing; try again")
