"""Authentication over real loopback HTTP: every refusal is a 401/403 in Anthropic's error
JSON; keys (x-api-key or Bearer) and JWTs (HS256, RS256 from a JWKS, ES256) get through."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.lynkr.http.gateway import Gateway, running_gateway

HELLO = {"model": "claude-sonnet-4-5", "max_tokens": 64,
         "messages": [{"role": "user", "content": "hello"}]}
HS_SECRET = "hs256-shared-secret-of-at-least-32-bytes!"
ADMIN_TOKEN = "admin-token-for-the-tests-1234"
ISSUER, AUDIENCE = "https://idp.example.test", "lynkr"


class Keys:
    """The RSA and EC key pairs the tests sign with, and the JWKS file that names them."""

    def __init__(self, tmp_path: Path) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        jwks = {"keys": [
            {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key())),
             "kid": "rsa-1", "use": "sig"},
            {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key())),
             "kid": "ec-1", "use": "sig"}]}
        self.jwks_file = tmp_path / "jwks.json"
        self.jwks_file.write_text(json.dumps(jwks))
        self.rsa_public_pem = self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def token(self, alg: str = "RS256", **claims: Any) -> str:
        """A token signed with the key for `alg`, with valid claims unless overridden."""
        now = int(time.time())
        body = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600,
                "tier": "enterprise", **claims}
        body = {k: v for k, v in body.items() if v is not None}
        if alg == "HS256":
            return jwt.encode(body, HS_SECRET, algorithm="HS256")
        key, kid = (self.rsa, "rsa-1") if alg == "RS256" else (self.ec, "ec-1")
        return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(claims: dict[str, Any], header: dict[str, Any], key: bytes | None) -> str:
    """A token built by hand: `alg: none` (no key), or HS256 with `key` as the secret."""
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = b"" if key is None else hmac.new(key, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{_b64(signature)}"


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path)


def _env(keys: Keys, **extra: str) -> dict[str, str]:
    return {"LYNKR_AUTH": "keys,jwt", "LYNKR_JWT_SECRET": HS_SECRET,
            "LYNKR_JWT_JWKS_FILE": str(keys.jwks_file), "LYNKR_JWT_ISSUER": ISSUER,
            "LYNKR_JWT_AUDIENCE": AUDIENCE, "LYNKR_ADMIN_TOKEN": ADMIN_TOKEN,
            "LYNKR_JWT_LEEWAY": "5", **extra}


async def _new_key(gw: Gateway, **body: Any) -> dict[str, Any]:
    response = await gw.post("/api/v1/api-keys", {"name": "dev", "tier": "enterprise", **body},
                             headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _turn(gw: Gateway, headers: dict[str, str], path: str = "/v1/messages") -> Any:
    return await gw.post(path, HELLO, headers=headers)


def _refused(response: Any, status: int = 401) -> None:
    error_type = {401: "authentication_error", 403: "permission_error"}[status]
    assert response.status_code == status, response.text
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == error_type
    if status == 401:  # one message for every bad credential: nothing else revealed
        assert response.json()["error"]["message"] in (
            "invalid API key or token",
            "authentication required: send an API key as x-api-key or Authorization: Bearer "
            "(or a JWT as Authorization: Bearer)")


async def test_a_request_without_credentials_is_401(tmp_path, keys):
    """No x-api-key and no Authorization: 401 authentication_error, nothing recorded."""
    async with running_gateway(tmp_path, env=_env(keys)) as gw:
        response = await _turn(gw, {})
        streams = gw.system.recorder.list_streams("session-")
    _refused(response)
    assert "authentication required" in response.json()["error"]["message"]
    assert streams == []


async def test_a_key_works_as_x_api_key_and_as_bearer(tmp_path, keys):
    """The key a client got works in either header; the turn is answered."""
    async with running_gateway(tmp_path, env=_env(keys)) as gw:
        secret = (await _new_key(gw))["key"]
        by_header = await _turn(gw, {"x-api-key": secret})
        by_bearer = await _turn(gw, {"authorization": f"Bearer {secret}"})
    assert secret.startswith("lk-")
    assert len(secret) >= 3 + 43
    assert (by_header.status_code, by_bearer.status_code) == (200, 200)


async def test_an_unknown_key_is_401(tmp_path, keys):
    """A well-formed key the gateway never issued is refused."""
    async with running_gateway(tmp_path, env=_env(keys)) as gw:
        await _new_key(gw)
        _refused(await _turn(gw, {"x-api-key": "lk-" + "A" * 43}))


async def test_a_revoked_key_is_401_from_the_next_request(tmp_path, keys):
    """DELETE /api/v1/api-keys/<id>: the key worked before and is refused after."""
    async with running_gateway(tmp_path, env=_env(keys)) as gw:
        created = await _new_key(gw)
        before = await _turn(gw, {"x-api-key": created["key"]})
        revoked = await gw.client.delete(f"{gw.url}/api/v1/api-keys/{created['id']}",
                                         headers={"x-api-key": ADMIN_TOKEN})
        after = await _turn(gw, {"x-api-key": created["key"]})
    assert (before.status_code, revoked.status_code) == (200, 200)
    _refused(after)


async def test_an_expired_key_is_401(tmp_path, keys):
    """A key past its expires_in is refused."""
    async with running_gateway(tmp_path, env=_env(keys)) as gw:
        created = await _new_key(gw, expires_in=1)
        assert (await _turn(gw, {"x-api-key": created["key"]})).status_code == 200
        await trio.sleep(1.1)
        _refused(await _turn(gw, {"x-api-key": created["key"]}))


async def test_a_rotated_key_keeps_its_old_secret_for_the_grace_period(tmp_path, keys):
    """After a rotation both secrets work; with no grace the old one stops at once."""
    async with running_gateway(tmp_path, env=_env(keys)) as gw:
        created = await _new_key(gw)
        rotated = await gw.post(f"/api/v1/api-keys/{created['id']}/rotate", {},
                                headers={"x-api-key": ADMIN_TOKEN})
        new = rotated.json()["key"]
        old_works = await _turn(gw, {"x-api-key": created["key"]})
        new_works = await _turn(gw, {"x-api-key": new})
    assert (rotated.status_code, old_works.status_code, new_works.status_code) == (201, 200, 200)
    assert new != created["key"]
    async with running_gateway(tmp_path / "b", env=_env(
            keys, LYNKR_KEYS_ROTATION_GRACE="0")) as gw:
        created = await _new_key(gw)
        await gw.post(f"/api/v1/api-keys/{created['id']}/rotate", {},
                      headers={"x-api-key": ADMIN_TOKEN})
        _refused(await _turn(gw, {"x-api-key": created["key"]}))


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256"])
async def test_a_valid_jwt_is_served(tmp_path, keys, alg):
    """HS256 with the shared secret, RS256 and ES256 from the JWKS file all get through."""
    async with running_gateway(tmp_path, env=_env(keys)) as gw:
        response = await _turn(gw, {"authorization": f"Bearer {keys.token(alg)}"})
    assert response.status_code == 200, response.text


async def test_a_jwt_with_a_bad_signature_is_401(tmp_path, keys):
    """A token signed by a key the gateway does not trust is refused."""
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    forged = jwt.encode({"sub": "mallory", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600},
                        stranger, algorithm="RS256", headers={"kid": "rsa-1"})
    async with running_gateway(tmp_path, env=_env(keys)) as gw:
        _refused(await _turn(gw, {"authorization": f"Bearer {forged}"}))


async def test_an_alg_none_jwt_is_401(tmp_path, keys):
    """`alg: none` (no signature at all) is refused."""
    now = int(time.time())
    token = _unsigned({"sub": "mallory", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600,
                       "scope": "admin"}, {"alg": "none", "typ": "JWT"}, None)
    async with running_gateway(tmp_path, env=_env(keys)) as gw:
        _refused(await _turn(gw, {"authorization": f"Bearer {token}"}))


async def test_an_hs256_token_signed_with_the_rsa_public_key_is_401(tmp_path, keys):
    """Algorithm confusion: HS256 keyed with the RS256 public key (PEM) is refused."""
    now = int(time.time())
    token = _unsigned({"sub": "mallory", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600},
                      {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, keys.rsa_public_pem)
    pem = tmp_path / "rsa.pem"
    pem.write_bytes(keys.rsa_public_pem)
    async with running_gateway(tmp_path, env={
            "LYNKR_AUTH": "jwt", "LYNKR_JWT_PUBLIC_KEY_FILE": str(pem),
            "LYNKR_JWT_ISSUER": ISSUER, "LYNKR_JWT_AUDIENCE": AUDIENCE}) as gw:
        confused = await _turn(gw, {"authorization": f"Bearer {token}"})
        genuine = await _turn(gw, {"authorization": f"Bearer {keys.token('RS256')}"})
    _refused(confused)
    assert genuine.status_code == 200


@pytest.mark.parametrize(("claim", "value"), [("iss", "https://evil.example.test"),
                                              ("aud", "another-service")])
async def test_a_jwt_for_another_issuer_or_audience_is_401(tmp_path, keys, claim, value):
    """Wrong `iss` or `aud` is refused when they are configured."""
    async with running_gateway(tmp_path, env=_env(keys)) as gw:
        _refused(await _turn(gw, {"authorization": f"Bearer {keys.token(**{claim: value})}"}))


async def test_an_expired_jwt_is_401(tmp_path, keys):
    """A token past `exp` (beyond the leeway) is refused; one without `exp` too."""
    past = int(time.time()) - 60
    async with running_gateway(tmp_path, env=_env(keys)) as gw:
        _refused(await _turn(gw, {"authorization": f"Bearer {keys.token(exp=past)}"}))
        _refused(await _turn(gw, {"authorization": f"Bearer {keys.token(exp=None)}"}))


async def test_a_credential_without_the_route_scope_is_403(tmp_path, keys):
    """A proxy key cannot manage keys; an admin-only key cannot call /v1/messages; a JWT
    gets admin only from its scope claim."""
    async with running_gateway(tmp_path, env=_env(keys)) as gw:
        proxy = (await _new_key(gw))["key"]
        admin_only = (await _new_key(gw, scopes=["admin"]))["key"]
        listing = await gw.client.get(f"{gw.url}/api/v1/api-keys", headers={"x-api-key": proxy})
        mcp = await gw.client.get(f"{gw.url}/admin/mcp/servers", headers={"x-api-key": proxy})
        turn = await _turn(gw, {"x-api-key": admin_only})
        by_admin_key = await gw.client.get(f"{gw.url}/api/v1/api-keys",
                                           headers={"x-api-key": admin_only})
        user_jwt = await gw.client.get(f"{gw.url}/api/v1/api-keys", headers={
            "authorization": f"Bearer {keys.token()}"})
        admin_jwt = await gw.client.get(f"{gw.url}/api/v1/api-keys", headers={
            "authorization": f"Bearer {keys.token(scope='openid admin')}"})
    for refused in (listing, mcp, turn, user_jwt):
        _refused(refused, 403)
    assert (by_admin_key.status_code, admin_jwt.status_code) == (200, 200)
    assert len(by_admin_key.json()["data"]) == 2
    assert "key" not in by_admin_key.json()["data"][0]  # never a secret in a listing


async def test_health_reveals_no_keys_or_users(tmp_path, keys):
    """/health answers without credentials and names no key, prefix or user."""
    async with running_gateway(tmp_path, env=_env(keys)) as gw:
        created = await _new_key(gw, user_id="bob@example.test")
        await _turn(gw, {"x-api-key": created["key"]})
        health = await gw.client.get(f"{gw.url}/health")
        root = await gw.client.head(f"{gw.url}/")
    assert (health.status_code, root.status_code) == (200, 200)
    for secretish in (created["id"], created["prefix"], "bob@example.test", created["key"]):
        assert secretish not in health.text


async def test_messages_stream_is_a_streaming_alias(tmp_path, keys):
    """POST /v1/messages/stream answers SSE even when the body says stream: false."""
    async with running_gateway(tmp_path, env=_env(keys)) as gw:
        secret = (await _new_key(gw))["key"]
        response = await gw.post("/v1/messages/stream", {**HELLO, "stream": False},
                                 headers={"x-api-key": secret})
        unauthenticated = await gw.post("/v1/messages/stream", HELLO)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "event: message_stop" in response.text
    _refused(unauthenticated)
