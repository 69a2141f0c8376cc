"""The provider supervisor and its children: one actor per configured backend.

A `ProviderActor` owns its backend's pooled HTTP client (created by a factory that
`lynkr` passes in, typed by the `PooledClient` protocol) and the circuit breaker
state. Trio code uses the client directly for I/O — the actor only decides: `admit()`
returns the client or raises `CircuitOpenError` while the backend is considered down,
and `report_success` / `report_failure` (cheap tells) feed the breaker. While the
breaker is closed the actor publishes the client on its `ProviderGate`, so the hot
path need not ask; and a success that would change nothing but the counters (the
caller's last report was a success, the breaker is closed) is counted on the gate
instead of told (`ProviderGate.count_success`). Closing is
async I/O, so `release()` hands the client back and the trio side awaits `aclose()`.

Breaker: `threshold` consecutive failures open it; after `reset_seconds` one trial
call is admitted (half-open); its success closes the breaker, its failure re-opens it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import pykka
import structlog

from actors._trio import TrioActor

__all__ = [
    "BreakerConfig",
    "CircuitOpenError",
    "PooledClient",
    "ProviderActor",
    "ProviderGate",
    "ProviderHealth",
    "ProviderSupervisor",
]

log = structlog.get_logger()

BreakerState = Literal["closed", "open", "half_open"]


class CircuitOpenError(Exception):
    """The backend's circuit breaker is open: fail fast instead of calling it."""

    def __init__(self, provider: str, retry_after: float) -> None:
        super().__init__(f"{provider} is unavailable (circuit open); retry in {retry_after:.0f}s")
        self.provider = provider
        self.retry_after = retry_after


class PooledClient(Protocol):
    """What a provider actor owns: a pooled async HTTP client (e.g. `httpx.AsyncClient`)."""

    async def aclose(self) -> None:
        """Close every pooled connection."""


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """When the breaker opens and how long it stays open."""

    threshold: int = 5
    reset_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    """A backend's state as `/health` reports it."""

    name: str
    state: BreakerState
    consecutive_failures: int
    successes: int
    failures: int
    last_error: str | None
    seconds_since_success: float | None


class ProviderGate:
    """What a `ProviderActor` publishes for callers to read without a round trip.

    `client` is the pooled client while the breaker is closed (when `admit` would
    return it without changing anything), and None otherwise: then callers must ask
    `admit`, which decides (fail fast, or the one half-open trial). Only the actor
    writes it; a read racing with a state change is the same race as an ask sent just
    before a failure report.

    The other fields belong to the caller (the one trio thread that reports): `clean`
    says its last report was a `report_success` tell, so the actor is (or, once its
    inbox is read, will be) closed with no failures counted; a success then changes
    nothing but the success count and time, which `count_success` keeps here and
    `health` adds up. Every other report clears `clean` (`mark_reported`), so the
    breaker sees every failure, and the success after one, in the order they happened.
    """

    __slots__ = ("_clock", "clean", "client", "last_success", "successes")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.client: PooledClient | None = None
        self.clean = False
        self.successes = 0
        self.last_success: float | None = None
        self._clock = clock

    def count_success(self) -> bool:
        """Count a success here if a tell would change nothing else; False: tell it."""
        if not self.clean or self.client is None:
            return False
        self.successes += 1
        self.last_success = self._clock()
        return True

    def mark_reported(self, success: bool) -> None:
        """The caller told the actor a report (`success`: it was `report_success`)."""
        self.clean = success


class ProviderActor(TrioActor):
    """One backend: its pooled client and its circuit breaker."""

    def __init__(
        self,
        name: str,
        client: PooledClient,
        config: BreakerConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.name = name
        self._client: PooledClient | None = client
        self._config = config
        self._clock = clock
        self._state: BreakerState = "closed"
        self._consecutive = 0
        self._opened_at = 0.0
        self._trial_out = False
        self._successes = 0
        self._failures = 0
        self._last_error: str | None = None
        self._last_success: float | None = None
        self._gate = ProviderGate(clock)
        self._publish()

    def gate(self) -> ProviderGate:
        """The published view of this backend's admission (see `ProviderGate`)."""
        return self._gate

    def _publish(self) -> None:
        self._gate.client = self._client if self._state == "closed" else None

    def admit(self) -> PooledClient:
        """The client to call the backend with.

        Raises:
            CircuitOpenError: the breaker is open (or its one trial call is under way).
            RuntimeError: the client was released (the system is stopping).
        """
        if self._client is None:
            raise RuntimeError(f"provider {self.name} is stopping")
        if self._state == "open":
            waited = self._clock() - self._opened_at
            if waited < self._config.reset_seconds:
                raise CircuitOpenError(self.name, self._config.reset_seconds - waited)
            self._state, self._trial_out = "half_open", False
            self._publish()
            log.info("circuit_half_open", provider=self.name)
        if self._state == "half_open":
            if self._trial_out:
                raise CircuitOpenError(self.name, 1.0)
            self._trial_out = True
        return self._client

    def report_success(self) -> None:
        """A call got a good answer: close the breaker."""
        self._successes += 1
        self._consecutive = 0
        self._last_success = self._clock()
        if self._state != "closed":
            log.info("circuit_closed", provider=self.name)
        self._state, self._trial_out = "closed", False
        self._publish()

    def report_failure(self, reason: str) -> None:
        """A call failed in a way that says the backend is down or overloaded."""
        self._failures += 1
        self._consecutive += 1
        self._last_error = reason
        if self._state == "half_open" or self._consecutive >= self._config.threshold:
            if self._state != "open":
                log.warning("circuit_opened", provider=self.name, failures=self._consecutive,
                            reason=reason)
            self._state, self._opened_at, self._trial_out = "open", self._clock(), False
            self._publish()

    def report_neutral(self) -> None:
        """A call ended without saying anything about the backend (e.g. the client left)."""
        self._trial_out = False

    def health(self) -> ProviderHealth:
        """The breaker state and counters (successes counted on the gate included)."""
        last = max((t for t in (self._last_success, self._gate.last_success) if t is not None),
                   default=None)
        since = None if last is None else self._clock() - last
        return ProviderHealth(name=self.name, state=self._state,
                              consecutive_failures=self._consecutive,
                              successes=self._successes + self._gate.successes,
                              failures=self._failures, last_error=self._last_error,
                              seconds_since_success=since)

    def release(self) -> PooledClient | None:
        """Give the client up for closing; later `admit` calls fail."""
        client, self._client = self._client, None
        self._publish()
        return client


class ProviderSupervisor(TrioActor):
    """Starts one `ProviderActor` per configured backend and stops them with itself."""

    def __init__(
        self,
        names: Sequence[str],
        client_factory: Callable[[str], PooledClient],
        config: BreakerConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._names = tuple(names)
        self._factory = client_factory
        self._config = config
        self._clock = clock
        self._children: dict[str, pykka.ActorProxy[ProviderActor]] = {}

    def on_start(self) -> None:
        """Create each backend's client and actor."""
        for name in self._names:
            ref = ProviderActor.start(name, self._factory(name), self._config, self._clock)
            self._children[name] = ref.proxy()
        log.info("provider_supervisor_started", providers=list(self._names))

    def on_stop(self) -> None:
        """Stop every child (clients were released by then, or are dropped)."""
        for child in self._children.values():
            child.stop()
        self._children.clear()

    def children(self) -> Mapping[str, pykka.ActorProxy[ProviderActor]]:
        """Each backend's actor proxy, by provider name."""
        return dict(self._children)

    def health(self) -> list[ProviderHealth]:
        """Every backend's health, in configuration order."""
        return [child.health().get() for child in self._children.values()]

    def release_clients(self) -> list[PooledClient]:
        """Take every client back from the children so the trio side can close them."""
        clients = [child.release().get() for child in self._children.values()]
        return [client for client in clients if client is not None]
