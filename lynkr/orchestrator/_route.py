"""The routing decision: which backend and model serve a request, and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lynkr.errors import ProviderNotConfiguredError
from lynkr.gateway import TaskRouter, Tier
from lynkr.providers import (
    ProviderSettings,
)

__all__ = ["Route", "choose_route"]


@dataclass(frozen=True, slots=True)
class Route:
    """The decision recorded as `RouteChosen`."""

    provider: str
    backend_model: str
    reason: str


def choose_route(settings: ProviderSettings, requested_model: str, *,
                 router: TaskRouter | None = None, body: dict[str, Any] | None = None,
                 tier: Tier | None = None, request_bytes: int = 0,
                 tokens: int | None = None) -> Route:
    """The backend and model for `requested_model`: the family map, or with a `router`
    the gateway's routing rules and the caller's `tier` (`lynkr.gateway._routing`;
    `tokens`: the request's input tokens if counted already).

    Raises:
        ProviderNotConfiguredError: `MODEL_PROVIDER`'s backend has no settings.
    """
    if settings.active is None:
        raise ProviderNotConfiguredError(settings.missing_message())
    family = settings.models.resolve(requested_model)
    if router is None or body is None:
        backend_model, reason = family
        return Route(settings.provider, backend_model,
                     f"MODEL_PROVIDER={settings.provider}; {reason}")
    decided = router.route(requested_model, body, family, tier, request_bytes, tokens)
    provider = decided.provider or settings.provider
    return Route(provider, decided.backend_model, f"MODEL_PROVIDER={provider}; {decided.reason}")
