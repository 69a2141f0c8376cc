"""The policy engine: decisions, the inputs digest, and the `PolicyDecided` event.

A `Decision` names its policy family and rule, allows or denies, says why in words,
carries the input fields that mattered (path, remote and branch, URL host) and, for
a deny, the setting that would allow the call. `PolicyEngine` adds what every
decision shares: the step limit, the digest of the inputs and the hash of the
configuration in force.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eventstore.events.session import PolicyDecided
from lynkr.errors import PolicyDeniedError
from lynkr.tools._settings import PolicySettings

__all__ = ["Decision", "PolicyEngine", "inputs_digest"]


def inputs_digest(inputs: Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of a tool input."""
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str,
                      ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _cbor_safe(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_cbor_safe(v) for v in value)
    if isinstance(value, Mapping):
        return {str(k): _cbor_safe(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """One policy answer about one tool call."""

    policy: str
    rule: str
    allowed: bool
    reason: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    setting: str | None = None  # for a deny: the setting that would allow the call

    @classmethod
    def allow(cls, policy: str, rule: str, reason: str, **fields: Any) -> Decision:
        """An allow under `policy`/`rule`."""
        return cls(policy=policy, rule=rule, allowed=True, reason=reason, fields=fields)

    @classmethod
    def deny(
        cls, policy: str, rule: str, reason: str, *, setting: str | None = None, **fields: Any
    ) -> Decision:
        """A deny under `policy`/`rule`; `setting` names what would allow it."""
        return cls(policy=policy, rule=rule, allowed=False, reason=reason, fields=fields,
                   setting=setting)

    @property
    def verdict(self) -> str:
        """``"allow"`` or ``"deny"``."""
        return "allow" if self.allowed else "deny"

    def message(self) -> str:
        """The text the caller sees for a deny: the reason, and the setting to change."""
        text = f"denied by policy {self.rule}: {self.reason}"
        return f"{text} (to allow it: {self.setting})" if self.setting else text

    def error(self) -> PolicyDeniedError:
        """The tool error a deny becomes."""
        return PolicyDeniedError(self.message())


class PolicyEngine:
    """Shared rules and the audit record of every decision."""

    def __init__(self, settings: PolicySettings) -> None:
        self.settings = settings
        self.config_hash = settings.config_hash

    def check_steps(self, step: int) -> Decision | None:
        """A deny when `step` is past POLICY_MAX_STEPS, else None."""
        limit = self.settings.max_steps
        if step <= limit:
            return None
        return Decision.deny(
            "steps", "steps.max", f"tool call {step} of this turn is over POLICY_MAX_STEPS={limit}",
            setting=f"POLICY_MAX_STEPS={step} or more", step=step, limit=limit)

    def event(
        self,
        decision: Decision,
        *,
        tool: str,
        inputs: Mapping[str, Any],
        tool_call_id: str | None = None,
        turn: int | None = None,
        caller: str | None = None,
    ) -> PolicyDecided:
        """The `PolicyDecided` event recording `decision` about a call of `tool` by `caller`
        ("session", "cli:<os user>", "admin:<key id>")."""
        fields = dict(decision.fields)
        if decision.setting:
            fields["setting"] = decision.setting
        return PolicyDecided(
            tool=tool, policy=decision.policy, rule=decision.rule, decision=decision.verdict,
            reason=decision.reason, inputs_digest=inputs_digest(inputs),
            fields=_cbor_safe(fields), config_hash=self.config_hash,
            tool_call_id=tool_call_id, turn=turn, caller=caller,
        )
