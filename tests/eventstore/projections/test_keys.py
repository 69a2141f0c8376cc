"""The `keys` projection: keys from the `gateway` stream, last use from TurnStarted metadata;
a rebuild gives the same rows."""

from __future__ import annotations

from eventstore import Metadata, SqliteRecorder
from eventstore.events.gateway import KeyCreated, KeyRevoked, KeyTierChanged
from eventstore.events.session import TurnStarted
from eventstore.projections import ProjectionStore, all_projections
from eventstore.projections.keys import key_rows


def _created(key_id: str) -> KeyCreated:
    return KeyCreated(key_id=key_id, name="ci", user="ann", tier="pro",
                      scopes=("anthropic-proxy",), secret_sha256="00" * 32, prefix="lk-AbCdE",
                      created_at=1.0, expires_at=None, created_by="cli:test")


def test_keys_and_their_last_use_are_projected_and_rebuilt_the_same(tmp_path):
    """Created, moved, revoked; used by two turns (metadata key_id); rebuild equals."""
    recorder = SqliteRecorder(tmp_path / "lynkr.db")
    recorder.append("gateway", 0, [_created("lk_aaaaaaaaaaaa"), _created("lk_bbbbbbbbbbbb")])
    recorder.append("gateway", 2, [KeyTierChanged(key_id="lk_aaaaaaaaaaaa", tier="free",
                                                  previous="pro"),
                                   KeyRevoked(key_id="lk_bbbbbbbbbbbb", revoked_at=5.0)])
    for turn in (1, 2):
        recorder.append("session-s1", turn - 1, [TurnStarted(
            turn=turn, request_id=f"r{turn}", model="m", stream=False)],
            metadata=Metadata(request_id=f"r{turn}", key_id="lk_aaaaaaaaaaaa"))
    store = ProjectionStore(tmp_path / "projections.db", all_projections())
    store.catch_up(recorder, names=["keys"])
    rows = key_rows(store)
    store.rebuild(recorder, "keys")
    assert key_rows(store) == rows
    recorder.close()
    store.close()
    by_id = {row["key_id"]: row for row in rows}
    assert (by_id["lk_aaaaaaaaaaaa"]["tier"], by_id["lk_aaaaaaaaaaaa"]["turns"]) == ("free", 2)
    assert by_id["lk_aaaaaaaaaaaa"]["last_used_at"] is not None
    assert by_id["lk_bbbbbbbbbbbb"]["revoked_at"] == 5.0
    assert by_id["lk_bbbbbbbbbbbb"]["last_used_at"] is None
