"""The routing decision: which backend and model serve a request, and why."""

from __future__ import annotations

from dataclasses import dataclass

from lynkr.errors import ProviderNotConfiguredError
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


def choose_route(settings: ProviderSettings, requested_model: str) -> Route:
    """The backend and model for `requested_model`.

    Raises:
        ProviderNotConfiguredError: `MODEL_PROVIDER`'s backend has no settings.
    """
    if settings.active is None:
        raise ProviderNotConfiguredError(settings.missing_message())
    backend_model, reason = settings.models.resolve(requested_model)
    return Route(settings.provider, backend_model, f"MODEL_PROVIDER={settings.provider}; {reason}")
