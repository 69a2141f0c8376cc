"""JWT verification with PyJWT: HS256 with a shared secret, RS256/ES256 with a public key.

Keys come from `LYNKR_JWT_SECRET`, a PEM file, a JWKS file or a JWKS URL (an OIDC
provider's `jwks_uri`). Each key is pinned to one algorithm by its type (RSA → RS256,
EC P-256 → ES256, the shared secret → HS256) and PyJWT is always called with exactly
that algorithm, never the one the token names: so `alg: none` and an HS256 token signed
with the RSA public key as its "secret" (algorithm confusion) fail verification.
Symmetric (`oct`) and encryption keys of a JWKS are ignored.

A token must carry `exp`; `exp` and `nbf` are checked with `LYNKR_JWT_LEEWAY` seconds of
skew, and `iss`/`aud` when configured. Claims map to a `Principal`: the user claim
(`sub`), the tier claim (a string, or the first string of a list; else the default
tier) and the scopes claim (space-separated or a list; only known scopes count, added
to the default scopes every valid token has).

A JWKS URL is fetched on first use, again after `LYNKR_JWT_JWKS_TTL` seconds, and at
once when a token names a `kid` it does not hold (a provider's key rotation) — at most
once per `_REFETCH_COOLDOWN` seconds, so tokens with made-up `kid`s cannot make the
gateway hammer the provider. Verified tokens are remembered (at most `_CACHE_SIZE`)
until their `exp`, so a client resending its token pays one dict lookup.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from lynkr.errors import AuthenticationError, ConfigError
from lynkr.gateway._auth_settings import JwtSettings
from lynkr.gateway._principal import Principal

__all__ = ["JwtVerifier", "fetch_jwks"]

log = structlog.get_logger()

_ASYMMETRIC = {"RSA": "RS256", "EC": "ES256"}
_REFETCH_COOLDOWN = 10.0  # seconds between JWKS fetches caused by unknown `kid`s
_CACHE_SIZE = 4096
_SCOPES = frozenset({"anthropic-proxy", "mcp-callback", "admin"})
_REFUSED = "invalid API key or token"

Fetch = Callable[[str], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class _Key:
    """One verification key and the one algorithm it verifies."""

    key: Any
    algorithm: str


async def fetch_jwks(url: str) -> bytes:
    """GET a JWKS document (5 s timeout); raises `httpx.HTTPError` on failure."""
    import httpx

    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(url, headers={"accept": "application/json"})
        response.raise_for_status()
        return response.content


def _jwks_keys(data: bytes | str, where: str) -> dict[str | None, _Key]:
    """The usable asymmetric keys of a JWKS document, by `kid`.

    Raises:
        ConfigError: the document is not a JWKS with at least one RSA or EC key.
    """
    try:
        document = json.loads(data)
        entries = document["keys"]
        assert isinstance(entries, list)
    except (ValueError, KeyError, TypeError, AssertionError) as exc:
        raise ConfigError([f"{where}: not a JWKS document ({{\"keys\": [...]}})"]) from exc
    keys: dict[str | None, _Key] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        algorithm = _ASYMMETRIC.get(str(entry.get("kty")))
        if algorithm is None or entry.get("alg", algorithm) != algorithm:
            continue  # oct keys, other curves and algorithms are not accepted
        try:
            jwk = jwt.PyJWK.from_dict(entry, algorithm)
        except jwt.PyJWTError:
            continue
        keys[jwk.key_id] = _Key(jwk.key, algorithm)
    if not keys:
        raise ConfigError([f"{where}: no RS256 or ES256 signing key in the JWKS"])
    return keys


def _pem_key(path: Any) -> _Key:
    """The PEM public key file's key and algorithm.

    Raises:
        ConfigError: unreadable, not a public key, or neither RSA nor EC P-256.
    """
    where = f"LYNKR_JWT_PUBLIC_KEY_FILE: {path}"
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError([f"{where}: not a PEM public key ({exc})"]) from exc
    if isinstance(key, rsa.RSAPublicKey):
        return _Key(key, "RS256")
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return _Key(key, "ES256")
    raise ConfigError([f"{where}: only RSA (RS256) and EC P-256 (ES256) keys are supported"])


def _claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by name, or by a dotted path into nested objects (`realm_access.roles`)."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class JwtVerifier:
    """Verifies tokens against the configured keys and maps their claims (module doc).

    Building one parses the key files; a file that cannot be used raises `ConfigError`.
    """

    def __init__(self, settings: JwtSettings, *, fetch: Fetch = fetch_jwks) -> None:
        self.settings = settings
        self._fetch = fetch
        self._secret = settings.secret
        self._pem = _pem_key(settings.public_key_file) if settings.public_key_file else None
        self._file_keys = (_jwks_keys(settings.jwks_file.read_bytes(),
                                      f"LYNKR_JWT_JWKS_FILE: {settings.jwks_file}")
                           if settings.jwks_file else {})
        self._url_keys: dict[str | None, _Key] = {}
        self._fetched_at = -float("inf")  # monotonic time of the last JWKS URL fetch
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token.

        Raises:
            AuthenticationError: anything wrong with it (the reason is logged only).
        """
        cached = self._cache.get(token)
        if cached is not None and time.time() < cached[1]:
            self._cache.move_to_end(token)
            return cached[0]
        try:
            header = jwt.get_unverified_header(token)
            key = await self._key_for(header)
            claims = self._decode(token, key)
            principal = self._principal(claims)
        except (jwt.PyJWTError, ValueError) as exc:
            log.info("auth_refused", via="jwt", reason=type(exc).__name__)
            raise AuthenticationError(_REFUSED) from None
        self._remember(token, principal, float(claims["exp"]))
        return principal

    def _decode(self, token: str, key: _Key) -> dict[str, Any]:
        settings = self.settings
        required = ["exp", *(["iss"] if settings.issuer else []),
                    *(["aud"] if settings.audience else [])]
        claims: dict[str, Any] = jwt.decode(
            token, key.key, algorithms=[key.algorithm], audience=settings.audience,
            issuer=settings.issuer, leeway=settings.leeway,
            options={"require": required, "verify_aud": settings.audience is not None})
        return claims

    async def _key_for(self, header: dict[str, Any]) -> _Key:
        """The configured key this token's header points at (its `alg` picks the family,
        never the algorithm PyJWT is allowed to use)."""
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm == "HS256":
            if not self._secret:
                raise ValueError("HS256 token, no shared secret configured")
            return _Key(self._secret, "HS256")
        found = self._file_keys.get(kid)
        if found is None and self.settings.jwks_url is not None:
            found = await self._url_key(kid)
        found = found or self._pem
        if found is None:
            raise ValueError("no key with this kid")
        return found

    async def _url_key(self, kid: str | None) -> _Key | None:
        url = self.settings.jwks_url
        assert url is not None  # _key_for asks only then
        now = time.monotonic()
        stale = now - self._fetched_at > self.settings.jwks_ttl
        unknown = kid not in self._url_keys and now - self._fetched_at > _REFETCH_COOLDOWN
        if stale or unknown:
            self._fetched_at = now
            try:
                self._url_keys = _jwks_keys(await self._fetch(url), "LYNKR_JWT_JWKS_URL")
                log.info("jwks_fetched", keys=len(self._url_keys))
            except Exception as exc:  # noqa: BLE001 - any fetch failure keeps the old keys
                log.warning("jwks_fetch_failed", error_type=type(exc).__name__)
        return self._url_keys.get(kid)

    def _principal(self, claims: dict[str, Any]) -> Principal:
        settings = self.settings
        user = _claim(claims, settings.user_claim)
        if not isinstance(user, str) or not user:
            raise ValueError("no user claim")
        tier = _claim(claims, settings.tier_claim)
        if isinstance(tier, list):
            tier = next((t for t in tier if isinstance(t, str)), None)
        raw = _claim(claims, settings.scopes_claim)
        named = raw.split() if isinstance(raw, str) else raw if isinstance(raw, list) else []
        scopes = frozenset(settings.default_scopes) | (_SCOPES & {str(s) for s in named})
        return Principal(key_id=f"jwt:{user}", user=user,
                         tier=tier if isinstance(tier, str) and tier else settings.default_tier,
                         scopes=scopes, via="jwt")

    def _remember(self, token: str, principal: Principal, exp: float) -> None:
        self._cache[token] = (principal, exp + self.settings.leeway)
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
