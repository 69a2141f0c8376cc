"""`/api/v1/api-keys`: the gateway's API keys over HTTP, for admins.

| route | does |
|---|---|
| `POST /api/v1/api-keys` | body below → 201, the key with its secret (`"key"`), shown once |
| `GET /api/v1/api-keys` | every key (never a secret), with its last use |
| `DELETE /api/v1/api-keys/<id>` | revoke: no secret of it works from the next request |
| `POST /api/v1/api-keys/<id>/rotate` | a new secret (201, shown once); the old one works |
|  | for `LYNKR_KEYS_ROTATION_GRACE` more |

The create body is `{"name", "scopes", "tier", "user_id", "expires_in"}`.

The app's authentication hook lets only a credential with the `admin` scope through
(an admin key, an admin JWT or `LYNKR_ADMIN_TOKEN`). Changes are appended to the
`gateway` stream at the version the gateway's key ring has folded (`run_key_command`)
and folded before the answer, so they hold from the next request. `expires_in` is
seconds, or a duration such as `"90d"`; `scopes` a list or a comma string
(default `anthropic-proxy`); `tier` defaults to `free`; `user_id` to the name.
"""

from __future__ import annotations

import time
from typing import Any

from quart import Blueprint, Response, current_app, g, jsonify, request

from lynkr.errors import InvalidRequestError
from lynkr.gateway import (
    Authenticator,
    KeyState,
    create_key,
    iso_time,
    key_json,
    parse_duration,
    revoke_key,
    rotate_key,
    run_key_command,
)

__all__ = ["AUTH_EXTENSION", "api_keys"]

AUTH_EXTENSION = "lynkr.auth"
"""`app.extensions` key of the app's `Authenticator`."""

api_keys = Blueprint("api_keys", __name__, url_prefix="/api/v1/api-keys")


def _auth() -> Authenticator:
    auth: Authenticator = current_app.extensions[AUTH_EXTENSION]
    return auth


def _actor() -> str:
    principal = g.get("principal")
    return f"{principal.via}:{principal.key_id}" if principal is not None else "http"


def _expires_in(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    if isinstance(value, str):
        return parse_duration(value)
    raise InvalidRequestError("expires_in must be a positive number of seconds or a "
                              "duration such as \"90d\"")


def _text(body: dict[str, Any], name: str, default: str | None) -> str | None:
    value = body.get(name, default)
    if value is not None and not isinstance(value, str):
        raise InvalidRequestError(f"{name} must be a string")
    return value


def _state_json(key: KeyState) -> dict[str, Any]:
    return key_json({"key_id": key.key_id, "prefix": key.prefix, "name": key.name,
                     "user": key.user, "tier": key.tier, "scopes": key.scopes,
                     "created_at": key.created_at, "expires_at": key.expires_at,
                     "revoked_at": key.revoked_at, "created_by": key.created_by})


async def _with_secret(key_id: str, secret: str | None) -> dict[str, Any]:
    key = _auth().ring.get(key_id)
    assert key is not None  # just folded
    return {**_state_json(key), "key": secret}


@api_keys.post("")
async def create() -> tuple[Response, int]:
    """Issue a key; the answer is the only place its secret ever appears."""
    body = await request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise InvalidRequestError('send {"name": ..., "scopes": [...], "tier": ..., '
                                  '"user_id": ..., "expires_in": ...} as JSON')
    name = _text(body, "name", None)
    if not name:
        raise InvalidRequestError("name is required")
    user, tier = _text(body, "user_id", None), _text(body, "tier", "free") or "free"
    scopes, expires = body.get("scopes"), _expires_in(body.get("expires_in"))
    if scopes is not None and not isinstance(scopes, str | list):
        raise InvalidRequestError("scopes must be a list of scope names")
    tiers = current_app.extensions["lynkr"].settings.limits.tiers
    event, secret = await run_key_command(
        _auth(), current_app.extensions["lynkr"].store,
        lambda ring: create_key(ring, name=name, user=user, tier=tier, scopes=scopes,
                                expires_in=expires, now=time.time(), by=_actor(),
                                tiers=tiers),
        actor=_actor(), key_id=g.principal.key_id)
    return jsonify(await _with_secret(event.key_id, secret)), 201  # type: ignore[attr-defined]


@api_keys.get("")
async def list_keys() -> Response:
    """Every key, with its last use where the `keys` projection has it."""
    await _auth().catch_up()
    used: dict[str, Any] = {}
    projections = current_app.extensions["lynkr"].projections
    if projections is not None:
        rows = await projections.query("SELECT key_id, last_used_at FROM api_key_use")
        used = {row["key_id"]: row["last_used_at"] for row in rows}
    data = [{**_state_json(k), "last_used_at": iso_time(used.get(k.key_id))}
            for k in _auth().ring.listed()]
    return jsonify({"data": data})


@api_keys.delete("/<key_id>")
async def revoke(key_id: str) -> Response:
    """Revoke a key."""
    await run_key_command(
        _auth(), current_app.extensions["lynkr"].store,
        lambda ring: (revoke_key(ring, key_id, now=time.time(), by=_actor()), None),
        actor=_actor(), key_id=g.principal.key_id)
    return jsonify({"id": key_id, "revoked": True})


@api_keys.post("/<key_id>/rotate")
async def rotate(key_id: str) -> tuple[Response, int]:
    """A new secret for a key (shown once)."""
    grace = _auth().settings.rotation_grace
    _, secret = await run_key_command(
        _auth(), current_app.extensions["lynkr"].store,
        lambda ring: rotate_key(ring, key_id, now=time.time(), grace=grace, by=_actor()),
        actor=_actor(), key_id=g.principal.key_id)
    return jsonify(await _with_secret(key_id, secret)), 201
