"""`AuthSettings`: how clients authenticate (LYNKR_AUTH, LYNKR_KEYS_*, LYNKR_JWT_*).

| variable | default | meaning |
|---|---|---|
| LYNKR_AUTH | `off` | `off`, `keys`, `jwt` or `keys,jwt`; `off` only on a loopback HOST |
| LYNKR_KEYS_ROTATION_GRACE | 86400 | seconds a rotated key's previous secret keeps working |
| LYNKR_KEYS_REFRESH | 1 | seconds between the gateway's looks for keys changed by the CLI |
| LYNKR_JWT_SECRET | — | HS256 shared secret (at least 32 bytes) |
| LYNKR_JWT_PUBLIC_KEY_FILE | — | PEM public key: RSA → RS256, EC P-256 → ES256 |
| LYNKR_JWT_JWKS_FILE / LYNKR_JWT_JWKS_URL | — | a JWKS (e.g. an OIDC provider's) |
| LYNKR_JWT_JWKS_TTL | 600 | seconds a fetched JWKS is used before it is fetched again |
| LYNKR_JWT_ISSUER / LYNKR_JWT_AUDIENCE | — | required `iss` / `aud` when set |
| LYNKR_JWT_LEEWAY | 30 | seconds of clock skew allowed on `exp` and `nbf` |
| LYNKR_JWT_USER_CLAIM / _TIER_CLAIM / _SCOPES_CLAIM | `sub` / `tier` / `scope` | claims |
| LYNKR_JWT_DEFAULT_TIER | `free` | the tier of a token without the tier claim |
| LYNKR_JWT_DEFAULT_SCOPES | `anthropic-proxy` | scopes every valid token has |

Only presence and shape are checked here (reading settings must stay light); the key
material is parsed when the gateway starts (`lynkr.gateway.JwtVerifier.load`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lynkr._env import Env

__all__ = ["AUTH_MODES", "AuthSettings", "JwtSettings"]

AUTH_MODES = ("keys", "jwt")
_SCOPES = ("anthropic-proxy", "mcp-callback", "admin")  # lynkr.gateway._keys.SCOPES
_MIN_HS_SECRET = 32  # bytes: RFC 7518 3.2 wants an HS256 key at least as long as the hash


@dataclass(frozen=True, slots=True, kw_only=True)
class JwtSettings:
    """Where JWT verification keys come from and how claims map to a `Principal`."""

    secret: str | None = None
    public_key_file: Path | None = None
    jwks_file: Path | None = None
    jwks_url: str | None = None
    jwks_ttl: float = 600.0
    issuer: str | None = None
    audience: str | None = None
    leeway: float = 30.0
    user_claim: str = "sub"
    tier_claim: str = "tier"
    scopes_claim: str = "scope"
    default_tier: str = "free"
    default_scopes: tuple[str, ...] = ("anthropic-proxy",)

    @property
    def configured(self) -> bool:
        """True if any verification key source is set."""
        return bool(self.secret or self.public_key_file or self.jwks_file or self.jwks_url)

    @classmethod
    def from_env(cls, env: Env) -> JwtSettings:
        """Read LYNKR_JWT_* (module docstring)."""
        secret = env.str("LYNKR_JWT_SECRET")
        if secret is not None and len(secret.encode()) < _MIN_HS_SECRET:
            env.problems.append(f"LYNKR_JWT_SECRET: must be at least {_MIN_HS_SECRET} bytes "
                                "for HS256")
        scopes = tuple(env.list("LYNKR_JWT_DEFAULT_SCOPES")) if env.str(
            "LYNKR_JWT_DEFAULT_SCOPES") else ("anthropic-proxy",)
        for scope in scopes:
            if scope not in _SCOPES:
                env.problems.append(f"LYNKR_JWT_DEFAULT_SCOPES: {scope!r} is not one of "
                                    f"{', '.join(_SCOPES)}")
        return cls(
            secret=secret,
            public_key_file=_file(env, "LYNKR_JWT_PUBLIC_KEY_FILE"),
            jwks_file=_file(env, "LYNKR_JWT_JWKS_FILE"),
            jwks_url=env.url("LYNKR_JWT_JWKS_URL"),
            jwks_ttl=env.positive("LYNKR_JWT_JWKS_TTL", 600.0),
            issuer=env.str("LYNKR_JWT_ISSUER"),
            audience=env.str("LYNKR_JWT_AUDIENCE"),
            leeway=max(0.0, env.float("LYNKR_JWT_LEEWAY", 30.0)),
            user_claim=env.str("LYNKR_JWT_USER_CLAIM", "sub") or "sub",
            tier_claim=env.str("LYNKR_JWT_TIER_CLAIM", "tier") or "tier",
            scopes_claim=env.str("LYNKR_JWT_SCOPES_CLAIM", "scope") or "scope",
            default_tier=env.str("LYNKR_JWT_DEFAULT_TIER", "free") or "free",
            default_scopes=tuple(s for s in _SCOPES if s in scopes),
        )


def _file(env: Env, name: str) -> Path | None:
    if env.str(name) is None:
        return None
    path = env.path(name, "")
    if not path.is_file():
        env.problems.append(f"{name}: {str(path)!r} is not a readable file")
    return path


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthSettings:
    """`LYNKR_AUTH` and the key and JWT settings (module docstring)."""

    modes: frozenset[str] = frozenset()  # empty: off
    rotation_grace: float = 86400.0
    refresh: float = 1.0
    jwt: JwtSettings = field(default_factory=JwtSettings)

    @property
    def enabled(self) -> bool:
        """False for `LYNKR_AUTH=off`: every request is `ANONYMOUS`."""
        return bool(self.modes)

    def describe(self) -> str:
        """The setting as `lynkr config` prints it."""
        return ",".join(m for m in AUTH_MODES if m in self.modes) or "off"

    @classmethod
    def from_env(cls, env: Env) -> AuthSettings:
        """Read LYNKR_AUTH, LYNKR_KEYS_* and LYNKR_JWT_*; problems go to `env.problems`."""
        raw = [m.strip().lower() for m in (env.str("LYNKR_AUTH", "off") or "off").split(",")
               if m.strip()]
        modes = frozenset(m for m in raw if m in AUTH_MODES)
        if raw != ["off"] and (set(raw) - set(AUTH_MODES) or not raw):
            env.problems.append(f"LYNKR_AUTH: {','.join(raw)!r} is not off, keys, jwt or "
                                "keys,jwt")
        jwt = JwtSettings.from_env(env)
        if "jwt" in modes and not jwt.configured:
            env.problems.append("LYNKR_AUTH: jwt needs LYNKR_JWT_SECRET, "
                                "LYNKR_JWT_PUBLIC_KEY_FILE, LYNKR_JWT_JWKS_FILE or "
                                "LYNKR_JWT_JWKS_URL")
        return cls(modes=modes,
                   rotation_grace=max(0.0, env.float("LYNKR_KEYS_ROTATION_GRACE", 86400.0)),
                   refresh=env.positive("LYNKR_KEYS_REFRESH", 1.0), jwt=jwt)
