"""Tiers and the limit settings: what each tier may do, and how limits are counted.

A `Tier` caps requests per minute, requests per day, tokens per day and concurrent
requests (None: unlimited), and may restrict the backend models it reaches. The four
built-in tiers follow the team-gateway table; `lynkr.toml` may override any of their
fields or add custom tiers:

    [tiers.team]
    requests_per_minute = 120
    requests_per_day = "unlimited"
    tokens_per_day = 500000
    concurrent = 8
    models = ["small-model", "big-model"]

A field a custom tier leaves out is unlimited; one a built-in tier leaves out keeps
its default. `LimitSettings` adds `LYNKR_LIMITS_BY` (count per key or per user),
`LYNKR_LIMITS_TZ` (where per-day counters reset at midnight) and
`LYNKR_LIMITS_COUNT_FREE_ROUTES` (count health/models/count_tokens per minute too),
`LYNKR_LIMITS_STORE` (where the counters live: memory, or PostgreSQL shared by every
gateway) and `LYNKR_LIMITS_SLOT_TTL_S` (a shared concurrency slot's lease).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lynkr._env import Env

__all__ = ["DEFAULT_TIERS", "LimitSettings", "Tier", "parse_tiers"]

_LIMIT_FIELDS = ("requests_per_minute", "requests_per_day", "tokens_per_day", "concurrent")


@dataclass(frozen=True, slots=True, kw_only=True)
class Tier:
    """One tier's caps (None: unlimited) and the backend models it may reach."""

    name: str
    requests_per_minute: int | None = None
    requests_per_day: int | None = None
    tokens_per_day: int | None = None
    concurrent: int | None = None
    models: frozenset[str] | None = None  # None: any model

    @property
    def unlimited(self) -> bool:
        """True if no cap applies (nothing to count for this tier)."""
        return all(getattr(self, name) is None for name in _LIMIT_FIELDS)

    def allows_model(self, model: str) -> bool:
        """True if the tier may reach backend `model`."""
        return self.models is None or model in self.models

    def describe(self) -> str:
        """`rpm/rpd/tpd/concurrent` as `lynkr config` prints it (`-` for unlimited)."""
        return "/".join("-" if (v := getattr(self, n)) is None else str(v) for n in _LIMIT_FIELDS)


DEFAULT_TIERS: Mapping[str, Tier] = {
    "free": Tier(name="free", requests_per_minute=10, requests_per_day=100,
                 tokens_per_day=10_000, concurrent=2),
    "starter": Tier(name="starter", requests_per_minute=60, requests_per_day=1_000,
                    tokens_per_day=100_000, concurrent=4),
    "pro": Tier(name="pro", requests_per_minute=300, requests_per_day=None,
                tokens_per_day=1_000_000, concurrent=16),
    "enterprise": Tier(name="enterprise"),
}
"""The built-in tiers (the team-gateway issue's table)."""


def _limit(value: Any, where: str, problems: list[str]) -> int | None:
    """A cap from TOML: a whole number ≥ 0, or "unlimited"."""
    if value == "unlimited":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    problems.append(f"{where}: {value!r} is neither a whole number >= 0 nor \"unlimited\"")
    return None


def _tier(name: str, table: Any, problems: list[str]) -> Tier | None:
    """One `[tiers.<name>]` table merged over its built-in defaults (if any)."""
    where = f"lynkr.toml [tiers.{name}]"
    if not isinstance(table, dict):
        problems.append(f"{where}: must be a table")
        return None
    base = DEFAULT_TIERS.get(name, Tier(name=name))
    changes: dict[str, Any] = {}
    for key, value in table.items():
        if key in _LIMIT_FIELDS:
            changes[key] = _limit(value, f"{where} {key}", problems)
        elif key == "models":
            if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
                problems.append(f"{where} models: must be a list of model names")
            else:
                changes["models"] = frozenset(value)
        else:
            problems.append(f"{where}: unknown field {key!r} (known: "
                            f"{', '.join((*_LIMIT_FIELDS, 'models'))})")
    return dataclasses.replace(base, **changes)


def parse_tiers(raw: Any, problems: list[str]) -> dict[str, Tier]:
    """The built-in tiers updated by the `[tiers]` table of `lynkr.toml` (`raw`)."""
    tiers = dict(DEFAULT_TIERS)
    if raw is None:
        return tiers
    if not isinstance(raw, dict):
        problems.append("lynkr.toml [tiers]: must be a table of tables")
        return tiers
    for name, table in raw.items():
        tier = _tier(str(name), table, problems)
        if tier is not None:
            tiers[tier.name] = tier
    return tiers


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitSettings:
    """How the gateway's rate limits are counted (see module docstring)."""

    tiers: Mapping[str, Tier] = field(default_factory=lambda: dict(DEFAULT_TIERS))
    by: str = "key"  # LYNKR_LIMITS_BY: "key" or "user"
    tz: str = "UTC"  # LYNKR_LIMITS_TZ: per-day counters reset at midnight here
    count_free_routes: bool = False  # LYNKR_LIMITS_COUNT_FREE_ROUTES
    store: str = "memory"  # LYNKR_LIMITS_STORE: "memory", "postgresql" or postgresql://…
    slot_ttl: float = 30.0  # LYNKR_LIMITS_SLOT_TTL_S: a shared concurrency slot's lease

    @property
    def zone(self) -> ZoneInfo:
        """`tz` as a zoneinfo zone."""
        return ZoneInfo(self.tz)

    def tier(self, name: str) -> Tier:
        """The tier called `name`; an unknown name gets the most restrictive built-in
        (`free`) rather than no limits at all."""
        return self.tiers.get(name) or self.tiers.get("free") or DEFAULT_TIERS["free"]

    @classmethod
    def from_env(cls, env: Env) -> LimitSettings:
        """Read LYNKR_LIMITS_BY, LYNKR_LIMITS_TZ, LYNKR_LIMITS_COUNT_FREE_ROUTES and the
        `[tiers]` table of lynkr.toml."""
        tz = env.str("LYNKR_LIMITS_TZ", "UTC") or "UTC"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            env.problems.append(f"LYNKR_LIMITS_TZ: {tz!r} is not a known time zone "
                                "(e.g. UTC, Europe/Berlin)")
            tz = "UTC"
        return cls(tiers=parse_tiers(env.toml.get("tiers"), env.problems),
                   by=env.choice("LYNKR_LIMITS_BY", "key", ("key", "user")), tz=tz,
                   count_free_routes=env.bool("LYNKR_LIMITS_COUNT_FREE_ROUTES", False),
                   store=_limits_store(env),
                   slot_ttl=max(0.3, env.float("LYNKR_LIMITS_SLOT_TTL_S", 30.0)))

    def shared_url(self, store_url: str) -> str | None:
        """The PostgreSQL URL of the shared counters (None: in memory, one gateway);
        `postgresql` alone means the event store's database (`store_url`)."""
        if self.store == "memory":
            return None
        return store_url if self.store == "postgresql" else self.store


def _limits_store(env: Env) -> str:
    """`LYNKR_LIMITS_STORE`: memory (default), postgresql, or a postgresql:// URL."""
    value = (env.str("LYNKR_LIMITS_STORE", "memory") or "memory").strip()
    if value == "postgresql" and not (env.str("LYNKR_STORE_URL", "") or "").startswith(
            ("postgresql://", "postgres://")):
        env.problems.append("LYNKR_LIMITS_STORE: postgresql means the event store's database, "
                            "but LYNKR_STORE_URL is not a postgresql:// URL; set it, or give "
                            "LYNKR_LIMITS_STORE a postgresql:// URL")
        return "memory"
    if value in ("memory", "postgresql") or value.startswith(("postgresql://", "postgres://")):
        return value
    env.problems.append(f"LYNKR_LIMITS_STORE: {value.split('://')[0]!r} is not a limits store; "
                        "use memory, postgresql (the store's database) or postgresql://…")
    return "memory"
