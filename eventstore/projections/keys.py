"""The `keys` projection: every API key of the `gateway` stream, and when it was last used.

`api_keys` has one row per key (never its secret: the public id, the first characters
of the secret, name, user, tier, scopes, times and who made it); `api_key_use` counts
the turns each key started and the time of the last one, from the `key_id` in the
metadata of `TurnStarted` events (what the gateway records for the request's key).
`lynkr keys list` and `GET /api/v1/api-keys` read both.
"""

from __future__ import annotations

from typing import Any

from eventstore._recorder import Recorded
from eventstore._registry import Event
from eventstore.events.gateway import KeyCreated, KeyRevoked, KeyRotated, KeyTierChanged
from eventstore.events.session import TurnStarted
from eventstore.projections._model import Projection, ProjectionContext, RowOp, Upsert
from eventstore.projections._store import ProjectionStore

__all__ = ["PROJECTION", "key_rows", "project_keys"]

_GATEWAY = "gateway"


def project_keys(record: Recorded[Event], context: ProjectionContext) -> list[RowOp]:
    """Row operations for one event (pure)."""
    event = record.event
    if isinstance(event, TurnStarted):
        key_id = record.metadata.key_id
        if not key_id:  # JWT users ("jwt:<sub>") are counted too; lists join on keys
            return []
        return [Upsert("api_key_use", {"key_id": key_id}, set={
            "last_used_at": record.recorded_at}, add={"turns": 1})]
    if record.stream_id != _GATEWAY:
        return []
    key = {"key_id": getattr(event, "key_id", "")}
    match event:
        case KeyCreated():
            return [Upsert("api_keys", key, set={
                "name": event.name, "user": event.user, "tier": event.tier,
                "scopes": ",".join(event.scopes), "prefix": event.prefix,
                "created_at": event.created_at, "expires_at": event.expires_at,
                "created_by": event.created_by})]
        case KeyRevoked() if context.get("api_keys", **key):
            return [Upsert("api_keys", key, set={"revoked_at": event.revoked_at})]
        case KeyRotated() if context.get("api_keys", **key):
            return [Upsert("api_keys", key, set={"prefix": event.prefix,
                                                 "rotated_at": event.rotated_at})]
        case KeyTierChanged() if context.get("api_keys", **key):
            return [Upsert("api_keys", key, set={"tier": event.tier})]
        case _:
            return []


PROJECTION = Projection(
    name="keys",
    version=1,
    tables={
        "api_keys": """
            CREATE TABLE IF NOT EXISTS api_keys (
                key_id     TEXT PRIMARY KEY,
                name       TEXT,  -- no NOT NULL: an upsert's insert half names only
                user       TEXT,  -- the columns it sets (updates of existing rows)
                tier       TEXT,
                scopes     TEXT,
                prefix     TEXT,
                created_at REAL,
                expires_at REAL,
                revoked_at REAL,
                rotated_at REAL,
                created_by TEXT
            ) WITHOUT ROWID""",
        "api_key_use": """
            CREATE TABLE IF NOT EXISTS api_key_use (
                key_id       TEXT PRIMARY KEY,
                turns        INTEGER NOT NULL DEFAULT 0,
                last_used_at REAL
            ) WITHOUT ROWID""",
    },
    project=project_keys,
    types=frozenset({"KeyCreated", "KeyRevoked", "KeyRotated", "KeyTierChanged",
                     "TurnStarted"}),
)


def key_rows(store: ProjectionStore) -> list[dict[str, Any]]:
    """Every key with its use, oldest first."""
    return store.query("SELECT k.*, coalesce(u.turns, 0) AS turns, u.last_used_at "
                       "FROM api_keys k LEFT JOIN api_key_use u USING (key_id) "
                       "ORDER BY k.created_at, k.key_id")
