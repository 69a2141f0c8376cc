"""Decisions, the inputs digest and the PolicyDecided event they become."""

from __future__ import annotations

from lynkr.errors import PolicyDeniedError
from lynkr.tools import Decision, PolicyEngine, PolicySettings, inputs_digest


def test_inputs_digest_ignores_key_order():
    """The digest is over canonical JSON: key order does not matter, values do."""
    assert inputs_digest({"a": 1, "b": [1, 2]}) == inputs_digest({"b": [1, 2], "a": 1})
    assert inputs_digest({"a": 1}) != inputs_digest({"a": 2})


def test_deny_message_names_rule_reason_and_setting():
    """The caller's error says which rule denied, why, and what would allow it."""
    decision = Decision.deny("git", "git.push.allowed", "pushing is disabled",
                             setting="POLICY_GIT_ALLOW_PUSH=true")
    error = decision.error()
    assert isinstance(error, PolicyDeniedError)
    assert error.message == ("denied by policy git.push.allowed: pushing is disabled "
                             "(to allow it: POLICY_GIT_ALLOW_PUSH=true)")


def test_step_limit_denies_past_the_maximum(tmp_path):
    """Steps up to POLICY_MAX_STEPS pass; the next is denied naming the setting."""
    engine = PolicyEngine(PolicySettings(workspace_root=tmp_path, max_steps=2))
    assert engine.check_steps(2) is None
    over = engine.check_steps(3)
    assert over is not None
    assert not over.allowed
    assert "POLICY_MAX_STEPS" in over.message()


def test_event_carries_digest_fields_and_config_hash(tmp_path):
    """The event holds the digest of the inputs, the fields, the setting and the hash."""
    settings = PolicySettings(workspace_root=tmp_path)
    decision = Decision.deny("web", "web.address.public", "loopback",
                             setting="WEB_FETCH_ALLOW_PRIVATE_HOSTS=x", host="x",
                             addresses=["127.0.0.1"])
    event = PolicyEngine(settings).event(decision, tool="web_fetch", inputs={"url": "http://x"},
                                         tool_call_id="toolu_1", turn=2)
    assert event.decision == "deny"
    assert event.rule == "web.address.public"
    assert event.inputs_digest == inputs_digest({"url": "http://x"})
    assert event.config_hash == settings.config_hash
    assert event.fields == {"host": "x", "addresses": ("127.0.0.1",),
                            "setting": "WEB_FETCH_ALLOW_PRIVATE_HOSTS=x"}
    assert (event.tool_call_id, event.turn) == ("toolu_1", 2)
