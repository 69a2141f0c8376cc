"""pykka's private names that `actors._pykka_private` relies on are still there, as pinned."""

from __future__ import annotations

import importlib.metadata
import inspect
import pathlib

import pykka
import pytest

from actors._pykka_private import DOCUMENTED_HOOKS, PRIVATE_STEPS, PYKKA_PINNED

INSTALLED = importlib.metadata.version("pykka")


def _changed(name: str, expected: tuple[str, ...]) -> str | None:
    """Why `pykka.Actor.<name>` no longer matches `expected` parameters (None: it does)."""
    method = getattr(pykka.Actor, name, None)
    if not callable(method):
        return f"pykka.Actor.{name} is gone"
    found = tuple(inspect.signature(method).parameters)
    if found != expected:
        return f"pykka.Actor.{name}{found} is no longer {name}{expected}"
    return None


def _fail(reason: str) -> None:
    pytest.fail(f"{reason}: actors/_pykka_private.py was written against pykka "
                f"{PYKKA_PINNED} and pykka {INSTALLED} is installed; re-read pykka's "
                f"_actor.py and update that module (and PYKKA_PINNED)", pytrace=False)


@pytest.mark.parametrize("name", sorted(PRIVATE_STEPS))
def test_each_private_step_exists_with_its_pinned_signature(name: str) -> None:
    """Every private `pykka.Actor` method the quarantine calls has the parameters it expects."""
    reason = _changed(name, PRIVATE_STEPS[name])
    if reason is not None:
        _fail(reason)


@pytest.mark.parametrize("name", sorted(DOCUMENTED_HOOKS))
def test_each_documented_hook_exists_with_its_pinned_signature(name: str) -> None:
    """The actor-implementation hooks `TrioActor` and `DispatchedActor` override still exist."""
    reason = _changed(name, DOCUMENTED_HOOKS[name])
    if reason is not None:
        _fail(reason)


def test_the_installed_pykka_is_the_pinned_one() -> None:
    """An upgrade is a deliberate step: re-read the private names, then move the pin."""
    if INSTALLED != PYKKA_PINNED:
        _fail("the pykka version changed")


def test_no_other_module_calls_pykkas_private_steps() -> None:
    """Only the quarantine module names pykka's private loop steps."""
    root = pathlib.Path(__file__).resolve().parents[2]
    offenders = [str(path.relative_to(root))
                 for package in ("actors", "lynkr", "eventstore")
                 for path in (root / package).rglob("*.py")
                 if path.name != "_pykka_private.py"
                 and any(f".{name}(" in path.read_text() for name in PRIVATE_STEPS)]
    assert offenders == []
