"""The key ring (fold of the `gateway` stream) and the pure key commands."""

from __future__ import annotations

import pytest

from eventstore.events.gateway import KeyCreated
from lynkr.errors import InvalidRequestError, NotFoundError
from lynkr.gateway import (
    KeyRing,
    change_tier,
    create_key,
    parse_duration,
    revoke_key,
    rotate_key,
)

NOW = 1_800_000_000.0


def _ring_with_key(**kwargs: object) -> tuple[KeyRing, KeyCreated, str]:
    ring = KeyRing()
    event, secret = create_key(ring, name="ci", user=None, tier="pro", scopes="anthropic-proxy",
                               expires_in=None, now=NOW, by="test", **kwargs)  # type: ignore[arg-type]
    ring.apply(event, 1)
    assert secret is not None
    return ring, event, secret


def test_a_created_key_is_found_by_its_secret_and_never_records_it():
    """The event holds the SHA-256 and a short prefix; the ring finds the key by secret."""
    ring, event, secret = _ring_with_key()
    key, verdict = ring.lookup(secret, NOW)
    assert (verdict, key.principal.key_id, key.principal.user) == ("ok", event.key_id, "ci")
    assert secret not in repr(event)
    assert secret.startswith(event.prefix)
    assert len(secret) - len("lk-") >= 22  # at least 128 bits of base64url


def test_revoked_expired_and_rotated_out_secrets_are_refused_with_their_reason():
    """Each refusal has its own logged reason; an unknown secret is None."""
    ring, event, secret = _ring_with_key()
    rotated, new = rotate_key(ring, event.key_id, now=NOW, grace=60, by="t")
    ring.apply(rotated, 2)
    assert ring.lookup(secret, NOW + 59)[1] == "ok"
    assert ring.lookup(secret, NOW + 61)[1] == "rotated"
    assert ring.lookup(new, NOW + 61)[1] == "ok"
    ring.apply(revoke_key(ring, event.key_id, now=NOW + 62, by="t"), 3)
    assert ring.lookup(new, NOW + 63)[1] == "revoked"
    assert ring.lookup("lk-nope", NOW) == (None, "unknown")
    expiring = KeyRing()
    created, expiring_secret = create_key(expiring, name="x", user="u", tier="free", scopes=None,
                                          expires_in=10, now=NOW, by="t")
    expiring.apply(created, 1)
    assert expiring.lookup(expiring_secret, NOW + 10)[1] == "expired"


def test_commands_refuse_what_does_not_fit():
    """Unknown ids, double revokes, unknown tiers and scopes are errors, not events."""
    ring, event, _ = _ring_with_key()
    with pytest.raises(NotFoundError):
        revoke_key(ring, "lk_000000000000", now=NOW, by="t")
    with pytest.raises(InvalidRequestError, match="unknown tier"):
        change_tier(ring, event.key_id, "gold", by="t", tiers={"free", "pro"})
    with pytest.raises(InvalidRequestError, match="unknown: root"):
        create_key(ring, name="x", user=None, tier="free", scopes="root", expires_in=None,
                   now=NOW, by="t")
    ring.apply(change_tier(ring, event.key_id, "free", by="t"), 2)
    assert ring.get(event.key_id).principal.tier == "free"
    ring.apply(revoke_key(ring, event.key_id, now=NOW, by="t"), 3)
    with pytest.raises(InvalidRequestError, match="revoked already"):
        revoke_key(ring, event.key_id, now=NOW, by="t")


def test_durations_read_as_seconds():
    """90d, 12h, 30m, 2w; nonsense is refused."""
    assert [parse_duration(d) for d in ("90d", "12h", "30m", "2w", "45s")] == [
        7_776_000, 43_200, 1_800, 1_209_600, 45]
    with pytest.raises(InvalidRequestError):
        parse_duration("soon")
