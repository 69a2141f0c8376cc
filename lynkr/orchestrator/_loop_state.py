"""The agent loop's state within one turn (`_loop.py`): the plan, the running turn, and
the step-limit notice."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from lynkr.orchestrator._call import CallStats, ProviderHandle
from lynkr.orchestrator._record import TurnTicket
from lynkr.orchestrator._server_tools import Offer
from lynkr.orchestrator._shape import usage_of

if TYPE_CHECKING:
    from lynkr.tools import ToolSpec

__all__ = ["LoopPlan", "LoopTurn", "cancelled", "step_limit_text"]

_ADDED_USAGE = ("input_tokens", "output_tokens", "cache_read_input_tokens",
                "cache_creation_input_tokens")


def step_limit_text(max_steps: int) -> str:
    """The notice that ends a turn at the step limit."""
    return (f"[Lynkr stopped this turn: the model asked for more than POLICY_MAX_STEPS="
            f"{max_steps} server tool calls in one turn. Ask again to continue, or raise "
            f"POLICY_MAX_STEPS.]")


@dataclass(slots=True)
class LoopPlan:
    """One request under the loop: the body the upstream gets and the server tools."""

    body: dict[str, Any]  # the client's body with the tool list and spliced history
    offer: Offer
    headers: Mapping[str, str]  # the client's (lower-case names), for the adapter

    @property
    def server(self) -> Mapping[str, ToolSpec]:
        """Names the loop runs itself."""
        return self.offer.server


@dataclass(slots=True)
class LoopTurn:
    """The loop's running state within one turn."""

    plan: LoopPlan
    ticket: TurnTicket
    handle: ProviderHandle
    stats: CallStats
    steps: int = 0  # model answers so far
    calls: int = 0  # server tool calls so far (what POLICY_MAX_STEPS counts)
    extra: list[dict[str, Any]] = field(default_factory=list)  # hidden messages so far
    visible: list[Any] = field(default_factory=list)  # the client's content blocks
    usage: dict[str, int] = field(default_factory=dict)
    first: Mapping[str, Any] | None = None  # the first step's message (id, model)

    def add_usage(self, message: Mapping[str, Any]) -> None:
        for key, value in usage_of(message).items():
            if key in _ADDED_USAGE:
                self.usage[key] = self.usage.get(key, 0) + value

    def body(self) -> dict[str, Any]:
        """The next step's request: the plan's body, the hidden messages appended, and a
        forced `tool_choice` relaxed to `auto` after the first step (else the model
        could never stop calling tools)."""
        body = self.plan.body
        if not self.extra:
            return body
        body = {**body, "messages": [*body.get("messages", ()), *self.extra]}
        choice = body.get("tool_choice")
        if isinstance(choice, Mapping) and choice.get("type") in ("any", "tool"):
            body["tool_choice"] = {"type": "auto"}
        return body



def cancelled(exc: BaseException) -> bool:
    """True for trio's `Cancelled`, also when a nursery grouped it (concurrent calls)."""
    if isinstance(exc, trio.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        _, rest = exc.split(trio.Cancelled)
        return rest is None
    return False
