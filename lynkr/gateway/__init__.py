"""The team gateway: API keys, JWT, tiers and rate limits, usage metering, routing by task."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lynkr._lazy import lazy_exports
from lynkr.gateway._auth_settings import AuthSettings, JwtSettings
from lynkr.gateway._limits import (
    Admission,
    Limiter,
    LimitsStoreUnavailableError,
    RateLimitRefusal,
    counted_tokens,
    record_refusal,
)
from lynkr.gateway._principal import ANONYMOUS, Principal
from lynkr.gateway._routing import (
    TASK_TYPES,
    RouteDecision,
    RoutingSettings,
    TaskRouter,
    classify_task,
)
from lynkr.gateway._tiers import DEFAULT_TIERS, LimitSettings, Tier
from lynkr.gateway._usage import (
    BY_CHOICES,
    DEFAULT_PRICES,
    Price,
    PriceTable,
    report_query,
    usage_filters,
    usage_report,
    with_cost,
)

if TYPE_CHECKING:
    from lynkr.gateway._auth import (
        ADMIN_TOKEN_PRINCIPAL,
        Authenticator,
        credential_of,
        required_scope,
    )
    from lynkr.gateway._jwt import JwtVerifier
    from lynkr.gateway._key_admin import (
        KeyCommand,
        iso_time,
        key_json,
        ring_of,
        run_key_command,
        run_key_command_sync,
    )
    from lynkr.gateway._keys import (
        SCOPES,
        KeyRing,
        KeyState,
        change_tier,
        create_key,
        parse_duration,
        parse_scopes,
        revoke_key,
        rotate_key,
    )
    from lynkr.gateway._limits_shared import SharedLimiter, open_limiter

# Authentication imports PyJWT, cryptography, trio and the event store: only on first
# use (PEP 562), so reading the settings (every CLI command) does not pay for them.
__getattr__ = lazy_exports(__name__, globals(), {
    "_auth": ("ADMIN_TOKEN_PRINCIPAL", "Authenticator", "credential_of", "required_scope"),
    "_jwt": ("JwtVerifier",),
    "_key_admin": ("KeyCommand", "iso_time", "key_json", "ring_of", "run_key_command",
                   "run_key_command_sync"),
    "_limits_shared": ("SharedLimiter", "open_limiter"),
    "_keys": ("SCOPES", "KeyRing", "KeyState", "change_tier", "create_key", "parse_duration",
              "parse_scopes", "revoke_key", "rotate_key"),
})

__all__ = [
    "ADMIN_TOKEN_PRINCIPAL",
    "ANONYMOUS",
    "BY_CHOICES",
    "DEFAULT_PRICES",
    "DEFAULT_TIERS",
    "SCOPES",
    "TASK_TYPES",
    "Admission",
    "AuthSettings",
    "Authenticator",
    "JwtSettings",
    "JwtVerifier",
    "KeyCommand",
    "KeyRing",
    "KeyState",
    "LimitSettings",
    "Limiter",
    "LimitsStoreUnavailableError",
    "Price",
    "PriceTable",
    "Principal",
    "RateLimitRefusal",
    "RouteDecision",
    "RoutingSettings",
    "SharedLimiter",
    "TaskRouter",
    "Tier",
    "change_tier",
    "classify_task",
    "counted_tokens",
    "create_key",
    "credential_of",
    "iso_time",
    "key_json",
    "open_limiter",
    "parse_duration",
    "parse_scopes",
    "record_refusal",
    "report_query",
    "required_scope",
    "revoke_key",
    "ring_of",
    "rotate_key",
    "run_key_command",
    "run_key_command_sync",
    "usage_filters",
    "usage_report",
    "with_cost",
]
