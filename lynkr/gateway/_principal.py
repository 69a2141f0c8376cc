"""`Principal`: who a request is, once authenticated (an API key or a JWT).

The auth layer (`lynkr/gateway/_auth.py`) turns credentials into a `Principal`; the
limits (`_limits.py`), usage metering and routing read it; the event log records its
`key_id` in each append's `Metadata` (never a secret). With `LYNKR_AUTH=off` (loopback
only) every request is `ANONYMOUS`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ANONYMOUS", "Principal"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """An authenticated caller: which key or token, which user, which tier and scopes."""

    key_id: str  # an API key's public id (e.g. "lk_3f9a…" prefix id), or "jwt:<sub>"
    user: str  # the key's user, or the JWT's user claim (`sub` by default)
    tier: str  # "free", "starter", "pro", "enterprise" or a custom tier name
    scopes: frozenset[str]  # "anthropic-proxy", "mcp-callback", "admin"
    via: str  # "key", "jwt" or "none" (auth off)

    def allows(self, scope: str) -> bool:
        """True if the principal holds `scope`."""
        return scope in self.scopes


ANONYMOUS = Principal(key_id="anonymous", user="anonymous", tier="enterprise",
                      scopes=frozenset({"anthropic-proxy", "mcp-callback", "admin"}), via="none")
"""The caller when `LYNKR_AUTH=off` (a loopback bind): everything is allowed."""
