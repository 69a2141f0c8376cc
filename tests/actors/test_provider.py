"""Provider actors: the circuit breaker state machine and the supervisor's client lifecycle."""

from __future__ import annotations

import pytest

from actors.provider import BreakerConfig, CircuitOpenError, ProviderActor, ProviderSupervisor


class Client:
    """A stand-in pooled client that records whether it was closed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


class Clock:
    """A manual clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _actor(clock, threshold=2, reset=10.0):
    return ProviderActor.start("p", Client("p"), BreakerConfig(threshold, reset), clock).proxy()


def test_the_breaker_opens_after_the_threshold():
    """Two consecutive failures open it; admit then fails fast."""
    actor = _actor(Clock())
    actor.report_failure("api_error").get()
    actor.admit().get()
    actor.report_failure("api_error").get()
    with pytest.raises(CircuitOpenError):
        actor.admit().get()
    assert actor.health().get().state == "open"


def test_a_success_resets_the_count():
    """Failures must be consecutive to open the breaker."""
    actor = _actor(Clock())
    actor.report_failure("x").get()
    actor.report_success().get()
    actor.report_failure("x").get()
    assert actor.health().get().state == "closed"


def test_after_the_reset_time_one_trial_call_is_admitted():
    """Half-open admits one call; others still fail fast until it reports."""
    clock = Clock()
    actor = _actor(clock)
    for _ in range(2):
        actor.report_failure("x").get()
    clock.now += 11
    actor.admit().get()
    with pytest.raises(CircuitOpenError):
        actor.admit().get()
    actor.report_success().get()
    assert actor.health().get().state == "closed"


def test_a_failed_trial_reopens_the_breaker():
    """The half-open trial failing opens it again for a full reset period."""
    clock = Clock()
    actor = _actor(clock)
    for _ in range(2):
        actor.report_failure("x").get()
    clock.now += 11
    actor.admit().get()
    actor.report_failure("x").get()
    clock.now += 5
    with pytest.raises(CircuitOpenError):
        actor.admit().get()


def test_a_neutral_end_frees_the_trial_slot():
    """A trial call that ended without news (client left) lets the next call try."""
    clock = Clock()
    actor = _actor(clock)
    for _ in range(2):
        actor.report_failure("x").get()
    clock.now += 11
    actor.admit().get()
    actor.report_neutral().get()
    actor.admit().get()


def test_the_supervisor_starts_one_child_per_backend_and_releases_clients():
    """Each configured backend gets an actor and a client; release hands them back."""
    made: list[Client] = []

    def factory(name):
        made.append(Client(name))
        return made[-1]

    supervisor = ProviderSupervisor.start(["openai", "anthropic"], factory, BreakerConfig()).proxy()
    children = supervisor.children().get()
    assert sorted(children) == ["anthropic", "openai"]
    assert [h.name for h in supervisor.health().get()] == ["openai", "anthropic"]
    released = supervisor.release_clients().get()
    assert released == made
    with pytest.raises(RuntimeError, match="stopping"):
        children["openai"].admit().get()


def test_the_gate_publishes_the_client_only_while_the_breaker_is_closed():
    """Closed: the gate holds the client; open or half-open: None; closed again: the client."""
    clock = Clock()
    actor = _actor(clock)
    gate = actor.gate().get()
    client = gate.client
    assert client is actor.admit().get()
    actor.report_failure("x").get()
    actor.report_failure("x").get()
    assert gate.client is None
    clock.now += 11
    actor.admit().get()  # the half-open trial
    assert gate.client is None
    actor.report_success().get()
    assert gate.client is client
    actor.release().get()
    assert gate.client is None
    actor.stop()


def test_the_gate_counts_successes_only_after_a_told_success_while_closed():
    """`count_success` refuses until the caller told a success; health adds its count."""
    clock = Clock()
    actor = _actor(clock)
    gate = actor.gate().get()
    assert not gate.count_success()  # nothing told yet: tell this one
    actor.report_success().get()
    gate.mark_reported(True)
    clock.now += 3
    assert gate.count_success()
    assert gate.count_success()
    health = actor.health().get()
    assert health.successes == 3
    assert health.seconds_since_success == 0
    assert health.consecutive_failures == 0


def test_after_any_other_report_the_next_success_is_told():
    """A failure (or neutral end) clears `clean`, so the success after it resets the count."""
    actor = _actor(Clock())
    gate = actor.gate().get()
    actor.report_success().get()
    gate.mark_reported(True)
    actor.report_failure("x").get()
    gate.mark_reported(False)
    assert not gate.count_success()
    actor.report_success().get()
    gate.mark_reported(True)
    actor.report_failure("x").get()
    assert actor.health().get().state == "closed"  # not two consecutive failures


def test_the_gate_refuses_to_count_while_the_breaker_is_not_closed():
    """With the client unpublished (open, half-open, released) successes are told."""
    clock = Clock()
    actor = _actor(clock)
    gate = actor.gate().get()
    gate.mark_reported(True)
    actor.report_failure("x").get()
    actor.report_failure("x").get()
    assert not gate.count_success()
    actor.release().get()
    assert not gate.count_success()
    actor.stop()
