"""`Authenticator`: one request's credentials → a `Principal`, or a 401/403.

A client sends its API key or JWT as `x-api-key` (Claude Code's `ANTHROPIC_API_KEY`)
or `Authorization: Bearer` (`ANTHROPIC_AUTH_TOKEN`, `apiKeyHelper`). A credential
starting with `lk-` is an API key (`LYNKR_AUTH` must include `keys`), anything else a
JWT (`jwt`). `LYNKR_ADMIN_TOKEN`, when set, is accepted as a credential holding only
the `admin` scope. Every refusal is the same 401 `authentication_error` message (the
reason — unknown, revoked, expired, bad signature… — is logged, with the key's public
id when there is one, never the credential); a valid credential without the scope the
route needs is a 403 `permission_error`. With `LYNKR_AUTH=off` (a loopback bind) every
request is `ANONYMOUS`, except that admin routes still need `LYNKR_ADMIN_TOKEN` when it
is set (as `/admin/mcp` always has).

Keys are looked up in the `KeyRing`, folded from the `gateway` stream at start and kept
current by `follow` (every `LYNKR_KEYS_REFRESH` seconds it reads the stream's version,
and the new events if any: keys the CLI created or revoked in another process). A key
the ring does not know also triggers one catch-up before it is refused, so a key
created a moment ago works on its first request; concurrent misses share one.

`required_scope(path)` is the route table: which scope each path needs.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from typing import Protocol

import structlog
import trio

from eventstore import Event, Recorded
from lynkr.errors import AuthenticationError, PermissionDeniedError
from lynkr.gateway._auth_settings import AuthSettings
from lynkr.gateway._jwt import JwtVerifier
from lynkr.gateway._keys import GATEWAY_STREAM, KEY_PREFIX, KeyRing
from lynkr.gateway._principal import ANONYMOUS, Principal

__all__ = ["ADMIN_TOKEN_PRINCIPAL", "PUBLIC", "Authenticator", "KeyLog", "required_scope"]

log = structlog.get_logger()

PUBLIC = None
"""`required_scope` of a path anyone may call (`/health`, `HEAD /`)."""

ADMIN_TOKEN_PRINCIPAL = Principal(key_id="admin-token", user="admin", tier="enterprise",
                                  scopes=frozenset({"admin"}), via="token")
"""Who presents `LYNKR_ADMIN_TOKEN`."""

_PUBLIC_PATHS = frozenset({"/", "/health", "/v1/health", "/health/ready", "/ui", "/ui/"})
_MISSING = ("authentication required: send an API key as x-api-key or "
            "Authorization: Bearer (or a JWT as Authorization: Bearer)")
_REFUSED = "invalid API key or token"


def required_scope(path: str) -> str | None:
    """The scope `path` needs: None for public paths, "" for any authenticated caller."""
    if path in _PUBLIC_PATHS or path.startswith("/ui/static/"):
        return PUBLIC  # the session viewer's page and files hold no data (its API does)
    if path.startswith(("/v1/messages", "/v1/models")):
        return "anthropic-proxy"
    if path.startswith(("/admin/", "/api/v1/api-keys")):
        return "admin"
    return ""


def credential_of(headers: Mapping[str, str]) -> str | None:
    """The key or token in `x-api-key` or `Authorization: Bearer` (lower-case names)."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


class KeyLog(Protocol):
    """What the authenticator reads of the event log (a `Recorder` fits)."""

    def stream_version(self, stream_id: str) -> int:
        """The stream's last sequence number."""

    def read_stream(self, stream_id: str, from_seq: int = 1,
                    to_seq: int | None = None) -> list[Recorded[Event]]:
        """Events of one stream from `from_seq`."""


class Authenticator:
    """Credentials → `Principal` (module docstring)."""

    def __init__(self, settings: AuthSettings, keys: KeyLog, *,
                 jwt: JwtVerifier | None = None, admin_token: str | None = None) -> None:
        self.settings = settings
        self.ring = KeyRing()
        self._log = keys
        self._jwt = jwt
        self._admin_token = admin_token.encode() if admin_token else None
        self._keys_on = "keys" in settings.modes
        self._lock = trio.Lock()
        self._last_catch_up = -float("inf")  # trio time the last catch-up began

    @classmethod
    def open(cls, settings: AuthSettings, keys: KeyLog, *,
             admin_token: str | None = None) -> Authenticator:
        """An authenticator with the ring folded from the log now (blocking read) and the
        JWT keys parsed.

        Raises:
            ConfigError: a JWT key file cannot be used.
        """
        verifier = JwtVerifier(settings.jwt) if "jwt" in settings.modes else None
        auth = cls(settings, keys, jwt=verifier, admin_token=admin_token)
        auth.fold(keys.read_stream(GATEWAY_STREAM))
        return auth

    @property
    def enabled(self) -> bool:
        """False with `LYNKR_AUTH=off`."""
        return self.settings.enabled

    def describe(self) -> str:
        """One line for the start-up log: how clients authenticate."""
        if not self.enabled:
            return "auth off (loopback only): every client is anonymous"
        ways = []
        if self._keys_on:
            ways.append(f"an API key ({len(self.ring)} stored) as x-api-key or "
                        "Authorization: Bearer")
        if self._jwt is not None:
            ways.append("a JWT as Authorization: Bearer")
        return f"auth {self.settings.describe()}: clients send " + " or ".join(ways)

    async def authenticate(self, headers: Mapping[str, str], scope: str | None) -> Principal:
        """Who sent these headers, checked for `scope` (`required_scope`).

        Raises:
            AuthenticationError: no, or no valid, credential (401).
            PermissionDeniedError: a valid one without `scope` (403).
        """
        if scope is PUBLIC:
            return ANONYMOUS
        # auth off (loopback only): LYNKR_ADMIN_TOKEN, when set, still guards admin routes
        if not self.enabled and (scope != "admin" or self._admin_token is None):
            return ANONYMOUS
        credential = credential_of(headers)
        if credential is None:
            raise AuthenticationError(_MISSING)
        principal = await self._identify(credential) if self.enabled else \
            self._admin_token_holder(credential)
        if scope and scope not in principal.scopes:
            log.info("auth_forbidden", key_id=principal.key_id, scope=scope)
            raise PermissionDeniedError(f"this credential lacks the {scope!r} scope")
        return principal

    def _admin_token_holder(self, credential: str) -> Principal:
        token = self._admin_token
        if token is not None and hmac.compare_digest(credential.encode(), token):
            return ADMIN_TOKEN_PRINCIPAL
        log.info("auth_refused", via="token", reason="not_the_admin_token")
        raise AuthenticationError(_REFUSED)

    async def _identify(self, credential: str) -> Principal:
        token = self._admin_token
        if token is not None and hmac.compare_digest(credential.encode(), token):
            return ADMIN_TOKEN_PRINCIPAL
        if credential.startswith(KEY_PREFIX):
            if not self._keys_on:
                log.info("auth_refused", via="key", reason="keys_off")
                raise AuthenticationError(_REFUSED)
            return await self._key(credential)
        if self._jwt is None:
            log.info("auth_refused", via="jwt", reason="jwt_off")
            raise AuthenticationError(_REFUSED)
        return await self._jwt.verify(credential)

    async def _key(self, secret: str) -> Principal:
        key, verdict = self.ring.lookup(secret, time.time())
        if key is None:
            await self._catch_up_after(trio.current_time())
            key, verdict = self.ring.lookup(secret, time.time())
        if key is None or verdict != "ok":
            log.info("auth_refused", via="key", reason=verdict,
                     key_id=key.key_id if key is not None else None)
            raise AuthenticationError(_REFUSED)
        return key.principal

    def fold(self, records: list[Recorded[Event]]) -> int:
        """Fold `gateway` events the ring has not seen; returns how many were new."""
        new = [r for r in records if r.seq > self.ring.version]
        for record in new:
            self.ring.apply(record.event, record.seq)
        return len(new)

    async def catch_up(self) -> int:
        """Fold what the `gateway` stream gained since the ring's version (reads on a
        worker thread); returns the events folded."""
        async with self._lock:
            self._last_catch_up = trio.current_time()
            version = await trio.to_thread.run_sync(self._log.stream_version, GATEWAY_STREAM)
            if version <= self.ring.version:
                return 0
            records = await trio.to_thread.run_sync(self._log.read_stream, GATEWAY_STREAM,
                                                    self.ring.version + 1)
            return self.fold(records)

    async def _catch_up_after(self, asked: float) -> None:
        """A catch-up that began at or after `asked` (one already under way may do)."""
        async with self._lock:
            if self._last_catch_up >= asked:
                return
        await self.catch_up()

    async def follow(self) -> None:
        """Catch up every `LYNKR_KEYS_REFRESH` seconds, until cancelled."""
        while True:
            await trio.sleep(self.settings.refresh)
            try:
                folded = await self.catch_up()
            except Exception as exc:  # noqa: BLE001 - a failed look is retried at the next
                log.warning("keys_catch_up_failed", error_type=type(exc).__name__)
                continue
            if folded:
                log.info("keys_changed", events=folded, keys=len(self.ring))
