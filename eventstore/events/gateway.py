"""Events of the `gateway` stream: the team gateway's API keys.

A key is created with a name, a user, a tier and scopes; it may be rotated (a new
secret, the old one still valid for a grace period), moved to another tier and
revoked. Only the SHA-256 of a secret is ever recorded, never the secret itself; the
key's public id (`lk_…`) and the first characters of its secret (`prefix`, enough to
recognise it in a list) are what names it. The gateway folds this stream into its
in-memory key ring (`lynkr.gateway`); `eventstore.projections.keys` lists it.
"""

from __future__ import annotations

from dataclasses import dataclass

from eventstore._registry import EVENTS, Event

__all__ = ["KeyCreated", "KeyRevoked", "KeyRotated", "KeyTierChanged"]


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class KeyCreated(Event):
    """An API key was issued (its secret was shown once, to its creator)."""

    key_id: str  # the public id, e.g. "lk_3f9a0c12d4e5"
    name: str
    user: str
    tier: str
    scopes: tuple[str, ...]
    secret_sha256: str  # hex SHA-256 of the secret
    prefix: str  # the secret's first characters, to recognise it ("lk-AbC1d")
    created_at: float  # epoch seconds
    expires_at: float | None = None  # epoch seconds; None: never
    created_by: str = ""  # "cli:<os user>", "key:<admin key id>", "jwt:<sub>", "token"


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class KeyRevoked(Event):
    """A key stopped working, every secret of it at once."""

    key_id: str
    revoked_at: float
    revoked_by: str = ""


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class KeyRotated(Event):
    """A key got a new secret; the previous one keeps working until `previous_valid_until`."""

    key_id: str
    secret_sha256: str
    prefix: str
    rotated_at: float
    previous_valid_until: float
    rotated_by: str = ""


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class KeyTierChanged(Event):
    """A key moved to another tier (its limits change from its next request)."""

    key_id: str
    tier: str
    previous: str
    changed_by: str = ""
