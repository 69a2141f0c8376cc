"""API keys: their secrets, the pure commands that issue and change them, the key ring.

A secret is `lk-` followed by 43 URL-safe characters from `secrets` (256 bits). Only
its SHA-256 is recorded (`eventstore/events/gateway.py`): a secret with that much
entropy cannot be found from its hash by trying candidates, so a slow password hash
(bcrypt, scrypt) would add only CPU to every request, not protection. The key's public
id (`lk_` + 12 hex) names it in lists, logs and `Metadata.key_id`.

`KeyRing` is the fold of the `gateway` stream the gateway keeps in memory: a lookup is
one SHA-256 and one dict access by digest, whatever the number of keys, and never
reads the log. After a rotation the previous secret stays valid until its
`previous_valid_until` (`LYNKR_KEYS_ROTATION_GRACE`, 24 h by default).

Commands (`create_key`, `revoke_key`, `rotate_key`, `change_tier`) validate against
the ring and return the event to append (and a new secret, shown once); their caller
appends it at the ring's version (optimistic concurrency) and folds it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace

from eventstore import Event
from eventstore.events.gateway import KeyCreated, KeyRevoked, KeyRotated, KeyTierChanged
from lynkr.errors import InvalidRequestError, NotFoundError
from lynkr.gateway._principal import Principal

__all__ = [
    "DEFAULT_SCOPES",
    "GATEWAY_STREAM",
    "KEY_PREFIX",
    "SCOPES",
    "KeyRing",
    "KeyState",
    "change_tier",
    "create_key",
    "new_secret",
    "parse_duration",
    "parse_scopes",
    "revoke_key",
    "rotate_key",
    "secret_digest",
]

GATEWAY_STREAM = "gateway"
KEY_PREFIX = "lk-"
SCOPES = ("anthropic-proxy", "mcp-callback", "admin")
DEFAULT_SCOPES = ("anthropic-proxy",)
_SHOWN = 8  # characters of a secret kept as its `prefix` ("lk-" + 5 of 43: 226 bits stay)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@:+-]{0,63}\Z")
_TIER = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_DURATION = re.compile(r"(\d+)([smhdw])\Z")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def new_secret() -> str:
    """A fresh secret: `lk-` and 256 bits from `secrets`."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def secret_digest(secret: str) -> str:
    """The hex SHA-256 of `secret` (module docstring: why not a slow hash)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def parse_duration(text: str) -> float:
    """`90d`, `12h`, `30m`, `45s` or `2w` as seconds.

    Raises:
        InvalidRequestError: anything else, or zero.
    """
    found = _DURATION.match(text.strip())
    if found is None or int(found[1]) == 0:
        raise InvalidRequestError(f"{text!r} is not a duration like 90d, 12h, 30m or 2w")
    return float(int(found[1]) * _UNITS[found[2]])


def parse_scopes(scopes: str | Iterable[str] | None) -> tuple[str, ...]:
    """Scopes from a comma list or a sequence, checked and in `SCOPES` order.

    Raises:
        InvalidRequestError: an unknown scope, or none at all.
    """
    if scopes is None:
        return DEFAULT_SCOPES
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    names = {str(s).strip() for s in items if str(s).strip()}
    unknown = sorted(names - set(SCOPES))
    if unknown or not names:
        raise InvalidRequestError(f"scopes must be among {', '.join(SCOPES)}"
                                  + (f"; unknown: {', '.join(unknown)}" if unknown else ""))
    return tuple(s for s in SCOPES if s in names)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyState:
    """One key as the ring knows it (never its secret)."""

    key_id: str
    name: str
    user: str
    tier: str
    scopes: tuple[str, ...]
    prefix: str
    created_at: float
    created_by: str
    expires_at: float | None
    revoked_at: float | None = None
    rotated_at: float | None = None
    principal: Principal  # built once, handed to every request the key makes

    def usable(self, now: float) -> bool:
        """Neither revoked nor expired at `now`."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


def _principal(key_id: str, user: str, tier: str, scopes: Iterable[str]) -> Principal:
    return Principal(key_id=key_id, user=user, tier=tier, scopes=frozenset(scopes), via="key")


class KeyRing:
    """The fold of the `gateway` stream: keys by id and by secret digest (module doc).

    Not thread-safe: the gateway folds and looks up on its trio thread only.
    """

    def __init__(self) -> None:
        self.version = 0  # the last `gateway` sequence number folded
        self._by_id: dict[str, KeyState] = {}
        # digest → (key id, digest, valid until: None while it is the current secret)
        self._by_digest: dict[str, tuple[str, str, float | None]] = {}
        self._current: dict[str, str] = {}  # key id → the digest of its current secret

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, key_id: str) -> KeyState | None:
        """The key with this public id."""
        return self._by_id.get(key_id)

    def listed(self) -> list[KeyState]:
        """Every key, oldest first."""
        return sorted(self._by_id.values(), key=lambda k: (k.created_at, k.key_id))

    def lookup(self, secret: str, now: float) -> tuple[KeyState | None, str]:
        """The key whose secret this is (None if none is) and its verdict: "ok", or why
        not ("unknown", "revoked", "expired", "rotated": for the log only).

        The dict is keyed by the SHA-256 of the secret, so its timing says nothing
        about the secret; the found digest is still compared in constant time.
        """
        digest = secret_digest(secret)
        found = self._by_digest.get(digest)
        if found is None:
            return None, "unknown"
        key_id, stored, valid_until = found
        if not hmac.compare_digest(stored, digest):  # equal by construction; kept explicit
            return None, "unknown"
        key = self._by_id[key_id]
        if key.revoked_at is not None:
            return key, "revoked"
        if key.expires_at is not None and now >= key.expires_at:
            return key, "expired"
        if valid_until is not None and now >= valid_until:
            return key, "rotated"
        return key, "ok"

    def apply(self, event: Event, seq: int) -> None:
        """Fold one event of the `gateway` stream (its sequence number `seq`)."""
        match event:
            case KeyCreated():
                self._by_id[event.key_id] = KeyState(
                    key_id=event.key_id, name=event.name, user=event.user, tier=event.tier,
                    scopes=tuple(event.scopes), prefix=event.prefix,
                    created_at=event.created_at, created_by=event.created_by,
                    expires_at=event.expires_at,
                    principal=_principal(event.key_id, event.user, event.tier, event.scopes))
                self._by_digest[event.secret_sha256] = (event.key_id, event.secret_sha256, None)
                self._current[event.key_id] = event.secret_sha256
            case KeyRevoked() if event.key_id in self._by_id:
                key = self._by_id[event.key_id]
                self._by_id[event.key_id] = replace(key, revoked_at=event.revoked_at)
            case KeyRotated() if event.key_id in self._by_id:
                old = self._current[event.key_id]
                self._by_digest[old] = (event.key_id, old, event.previous_valid_until)
                self._by_digest[event.secret_sha256] = (event.key_id, event.secret_sha256, None)
                self._current[event.key_id] = event.secret_sha256
                key = self._by_id[event.key_id]
                self._by_id[event.key_id] = replace(key, prefix=event.prefix,
                                                    rotated_at=event.rotated_at)
            case KeyTierChanged() if event.key_id in self._by_id:
                key = self._by_id[event.key_id]
                self._by_id[event.key_id] = replace(
                    key, tier=event.tier,
                    principal=_principal(key.key_id, key.user, event.tier, key.scopes))
            case _:
                pass
        self.version = seq


def _known(ring: KeyRing, key_id: str) -> KeyState:
    key = ring.get(key_id)
    if key is None:
        raise NotFoundError(f"no API key {key_id!r} (`lynkr keys list` shows the ids)")
    return key


def _checked_tier(tier: str, tiers: Collection[str] | None) -> str:
    if not _TIER.match(tier):
        raise InvalidRequestError(f"tier {tier!r} must be letters, digits, '-' or '_'")
    if tiers is not None and tier not in tiers:
        raise InvalidRequestError(f"unknown tier {tier!r}; configured: "
                                  f"{', '.join(sorted(tiers))}")
    return tier


def create_key(ring: KeyRing, *, name: str, user: str | None, tier: str,
               scopes: str | Iterable[str] | None, expires_in: float | None, now: float,
               by: str,
               tiers: Collection[str] | None = None) -> tuple[KeyCreated, str]:
    """Issue a key. `user` defaults to `name`; `tiers`: the configured tier names.

    Returns:
        The event to append, and the secret (to show once, never to record).

    Raises:
        InvalidRequestError: a bad name, user, tier or expiry.
    """
    user = user or name
    for label, value in (("name", name), ("user", user)):
        if not isinstance(value, str) or not _NAME.match(value):
            raise InvalidRequestError(f"{label} must be 1-64 letters, digits, spaces or "
                                      "._@:+- starting with a letter or digit")
    if expires_in is not None and expires_in <= 0:
        raise InvalidRequestError("expires_in must be a positive number of seconds")
    key_id = "lk_" + secrets.token_hex(6)
    while ring.get(key_id) is not None:  # 48 bits: a clash is rare, never fatal
        key_id = "lk_" + secrets.token_hex(6)
    secret = new_secret()
    event = KeyCreated(key_id=key_id, name=name, user=user, tier=_checked_tier(tier, tiers),
                       scopes=parse_scopes(scopes), secret_sha256=secret_digest(secret),
                       prefix=secret[:_SHOWN], created_at=now,
                       expires_at=None if expires_in is None else now + expires_in,
                       created_by=by)
    return event, secret


def revoke_key(ring: KeyRing, key_id: str, *, now: float, by: str) -> KeyRevoked:
    """Revoke a key (every secret of it).

    Raises:
        NotFoundError: no such key.
        InvalidRequestError: it is revoked already.
    """
    if _known(ring, key_id).revoked_at is not None:
        raise InvalidRequestError(f"API key {key_id} is revoked already")
    return KeyRevoked(key_id=key_id, revoked_at=now, revoked_by=by)


def rotate_key(ring: KeyRing, key_id: str, *, now: float, grace: float,
               by: str) -> tuple[KeyRotated, str]:
    """A new secret for a key; the current one stays valid `grace` seconds more.

    Raises:
        NotFoundError: no such key.
        InvalidRequestError: it is revoked or expired.
    """
    if not _known(ring, key_id).usable(now):
        raise InvalidRequestError(f"API key {key_id} is revoked or expired; create a new one")
    secret = new_secret()
    return KeyRotated(key_id=key_id, secret_sha256=secret_digest(secret),
                      prefix=secret[:_SHOWN], rotated_at=now,
                      previous_valid_until=now + max(0.0, grace), rotated_by=by), secret


def change_tier(ring: KeyRing, key_id: str, tier: str, *, by: str,
                tiers: Collection[str] | None = None) -> KeyTierChanged:
    """Move a key to another tier.

    Raises:
        NotFoundError: no such key.
        InvalidRequestError: a bad tier name, or the key is on it already.
    """
    key = _known(ring, key_id)
    if key.tier == _checked_tier(tier, tiers):
        raise InvalidRequestError(f"API key {key_id} is on tier {tier!r} already")
    return KeyTierChanged(key_id=key_id, tier=tier, previous=key.tier, changed_by=by)
