"""The one module that calls pykka's private actor internals (pinned: pykka 4.5.0).

`DispatchedActor` runs its messages on a dispatcher's workers instead of a thread of
its own, so it drives pykka's message loop one step at a time instead of calling the
loop whole. pykka documents three hooks for implementors of new actor types
(`_create_actor_inbox`, `_create_future`, `_start_actor_loop`; `TrioActor` and
`DispatchedActor` override them where they are defined). The steps of the loop have
no public form; this module is the only place that calls them, and
`tests/actors/test_pykka_private.py` fails, naming `PYKKA_PINNED`, if an upgrade
renames one or changes its signature. Each function below is what `Actor._actor_loop`
and `Actor._actor_loop_running` (pykka `_actor.py`) do at that step.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import pykka

__all__ = [
    "DOCUMENTED_HOOKS",
    "PRIVATE_STEPS",
    "PYKKA_PINNED",
    "answer_queued_as_dead",
    "handle_message",
    "record_failure",
    "run_on_start",
    "start_unlisted",
    "stop_now",
]

PYKKA_PINNED = "4.5.0"
"""The pykka release these names were read from (pyproject pins it; the test checks it)."""

ExcInfo = tuple[type[BaseException] | None, BaseException | None, TracebackType | None]

PRIVATE_STEPS: dict[str, tuple[str, ...]] = {
    "_actor_loop_setup": ("self",),
    "_handle_receive": ("self", "message"),
    "_actor_loop_teardown": ("self",),
    "_handle_failure": ("self", "exception_type", "exception_value", "traceback"),
    "_stop": ("self",),
}
"""`pykka.Actor` methods called here, with their parameters at `PYKKA_PINNED`."""

DOCUMENTED_HOOKS: dict[str, tuple[str, ...]] = {
    "_create_actor_inbox": (),
    "_create_future": (),
    "_start_actor_loop": ("self",),
}
"""pykka's documented hooks for new actor types (overridden in `_trio`, `_dispatched`)."""


def run_on_start(actor: pykka.Actor) -> None:
    """Run `on_start`; a failure is logged and stops the actor (pykka's loop setup)."""
    actor._actor_loop_setup()  # quarantined: see module docstring


def handle_message(actor: pykka.Actor, message: Any) -> Any:
    """One message as pykka handles it: a stop, a proxy call/get/set, or `on_receive`.

    Returns:
        The reply for the asker (None for a tell).
    """
    return actor._handle_receive(message)


def answer_queued_as_dead(actor: pykka.Actor) -> None:
    """Answer every queued ask with `ActorDeadError` (a stop's with None): pykka's teardown."""
    actor._actor_loop_teardown()


def record_failure(actor: pykka.Actor, exc_info: ExcInfo) -> None:
    """Log an unhandled failure, unregister the actor and mark it stopped."""
    actor._handle_failure(*exc_info)


def stop_now(actor: pykka.Actor) -> None:
    """Stop without handling the rest of the inbox (runs `on_stop`)."""
    actor._stop()


def start_unlisted(actor_class: type[pykka.Actor], *args: Any, **kwargs: Any) -> Any:
    """Start an actor as `pykka.Actor.start` does, but without listing it in
    `pykka.ActorRegistry`, whose list pykka scans to unregister each stopped actor:
    with thousands of sessions that scan was on every passivation. Whoever starts it
    must stop it (the `SessionRegistry` does); `ActorRegistry.stop_all` does not see it.

    Returns:
        The actor's `pykka.ActorRef`.
    """
    actor = actor_class(*args, **kwargs)
    actor_class._start_actor_loop(actor)  # the documented hook, as `start` calls it
    return actor.actor_ref
