"""Routing by task: each rule, its precedence, tier restrictions, and the recorded reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eventstore.events.session import RouteChosen
from lynkr.config import Settings, load_settings
from lynkr.errors import ConfigError
from lynkr.gateway import TaskRouter, Tier, classify_task
from lynkr.orchestrator import Route, choose_route
from lynkr.providers import count_request_tokens
from tests.lynkr.gateway.task_prompts import LABELLED
from tests.lynkr.http.gateway import running_gateway

BASE = {"MODEL_PROVIDER": "openai", "OPENAI_BASE_URL": "http://h/v1", "MODEL_DEFAULT": "mid",
        "ANTHROPIC_UPSTREAM_URL": "http://a", "ANTHROPIC_UPSTREAM_API_KEY": "sk-x"}


def _settings(tmp_path: Path, **env: str) -> Settings:
    return load_settings({"LYNKR_DATA_DIR": str(tmp_path), **BASE, **env}, cwd=tmp_path)


def _route(settings: Settings, body: dict[str, Any], tier: Tier | None = None) -> Route:
    router = TaskRouter(settings.routing, frozenset(settings.providers.backends),
                        count_request_tokens)
    size = len(str(body))
    return choose_route(settings.providers, str(body.get("model", "")), router=router,
                        body=body, tier=tier, request_bytes=size)


def _ask(text: str, model: str = "claude-sonnet-4-6", **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": text}],
            **extra}


def test_unset_rules_keep_the_family_map(tmp_path: Path) -> None:
    """No ROUTER_* setting: the family map decides, as before."""
    route = _route(_settings(tmp_path), _ask("fix the bug", thinking={"type": "enabled",
                                                                      "budget_tokens": 2000}))
    assert (route.backend_model, route.reason) == ("mid", "MODEL_PROVIDER=openai; default")


def test_background_requests_go_to_the_background_model(tmp_path: Path) -> None:
    """Haiku-class requests and tool-less title requests (output_config.format)."""
    settings = _settings(tmp_path, ROUTER_BACKGROUND_MODEL="tiny")
    haiku = _route(settings, _ask("summarise", model="claude-haiku-4-5-20251001"))
    assert (haiku.backend_model, haiku.reason.endswith("rule:background")) == ("tiny", True)
    title = _route(settings, _ask("Please write a 5-10 word title", output_config={
        "format": {"type": "json_schema", "schema": {"type": "object"}}}))
    assert title.backend_model == "tiny"
    with_tools = _route(settings, _ask("hi", tools=[{"name": "Bash", "input_schema": {}}],
                                       output_config={"format": {}}))
    assert with_tools.backend_model == "mid"


def test_thinking_enabled_goes_to_the_think_model(tmp_path: Path) -> None:
    """thinking.type enabled is routed; adaptive is not."""
    settings = _settings(tmp_path, ROUTER_THINK_MODEL="deep")
    enabled = _route(settings, _ask("hi", thinking={"type": "enabled", "budget_tokens": 1024}))
    assert (enabled.backend_model, enabled.reason.endswith("rule:thinking")) == ("deep", True)
    assert _route(settings, _ask("hi", thinking={"type": "adaptive"})).backend_model == "mid"


def test_long_context_is_counted_with_the_offline_tokenizer(tmp_path: Path) -> None:
    """At or above the threshold (offline count) the long-context model serves, first."""
    settings = _settings(tmp_path, ROUTER_LONG_CONTEXT_MODEL="wide",
                         ROUTER_LONG_CONTEXT_THRESHOLD="2000", ROUTER_BACKGROUND_MODEL="tiny")
    long_body = _ask("lorem ipsum dolor sit amet " * 800, model="claude-haiku-4-5")
    tokens = count_request_tokens(long_body)
    assert tokens >= 2000
    route = _route(settings, long_body)
    assert route.backend_model == "wide"
    assert f"long_context ({tokens} >= 2000 tokens)" in route.reason
    assert _route(settings, _ask("short", model="claude-haiku-4-5")).backend_model == "tiny"


def test_task_types_map_to_their_models_and_other_backends(tmp_path: Path) -> None:
    """ROUTER_TASK_MODELS: each inferred task to its model; `backend:model` picks a backend."""
    settings = _settings(tmp_path, ROUTER_TASK_MODELS=(
        "debugging=anthropic:claude-fixer,review=reviewer,docs=writer,codegen=coder"))
    debug = _route(settings, _ask("I get a KeyError in the parser, please fix it"))
    assert (debug.provider, debug.backend_model) == ("anthropic", "claude-fixer")
    assert debug.reason == "MODEL_PROVIDER=anthropic; rule:task:debugging"
    assert _route(settings, _ask("review my diff")).backend_model == "reviewer"
    assert _route(settings, _ask("add docstrings to utils.py")).backend_model == "writer"
    assert _route(settings, _ask("implement a parser for TOML")).backend_model == "coder"
    assert _route(settings, _ask("hello there")).backend_model == "mid"


def test_the_task_is_read_from_the_latest_user_text_not_tool_results(tmp_path: Path) -> None:
    """Tool results and system reminders are skipped when inferring the task."""
    body = {"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "review the auth module"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "Read",
                                           "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t", "content": "Traceback: error"},
            {"type": "text", "text": "<system-reminder>fix bugs</system-reminder>"}]}]}
    assert classify_task(body) == "review"


def test_a_tier_reaches_only_its_models(tmp_path: Path) -> None:
    """A rule whose model the tier may not use is skipped; the fallback is its first model."""
    settings = _settings(tmp_path, ROUTER_THINK_MODEL="deep", ROUTER_BACKGROUND_MODEL="tiny")
    tier = Tier(name="free", models=frozenset({"tiny", "cheap"}))
    thinking = _ask("hi", model="claude-haiku-4-5", thinking={"type": "enabled",
                                                              "budget_tokens": 1024})
    assert _route(settings, thinking, tier).backend_model == "tiny"  # think skipped
    plain = _route(settings, _ask("hi"), tier)
    assert plain.backend_model == "cheap"
    assert "tier:free allows only cheap, tiny (asked mid)" in plain.reason


def test_task_rules_are_accurate_on_the_labelled_prompts() -> None:
    """The measured accuracy on tests/lynkr/gateway/task_prompts.py (README quotes it)."""
    right = sum(classify_task(_ask(text)) == label for text, label in LABELLED)
    assert len(LABELLED) == 46
    assert right >= 43  # 43/46 (93 %) when the rules were written; do not regress


def test_bad_task_settings_are_reported(tmp_path: Path) -> None:
    """An unknown task name is one problem line at start."""
    with pytest.raises(ConfigError, match="ROUTER_TASK_MODELS"):
        _settings(tmp_path, ROUTER_TASK_MODELS="poetry=bard")


async def test_the_route_and_its_reason_are_recorded(tmp_path: Path) -> None:
    """Over HTTP: the upstream gets the routed model and RouteChosen.reason says why."""
    async with running_gateway(tmp_path, env={"ROUTER_BACKGROUND_MODEL": "tiny-bg"}) as gateway:
        response = await gateway.post("/v1/messages", _ask("title?", model="claude-haiku-4-5"),
                                      headers={"x-session-id": "route-1"})
        assert response.status_code == 200, response.text
        assert gateway.fake is not None
        assert gateway.fake.requests[-1]["body"]["model"] == "tiny-bg"
        events = gateway.system.recorder.read_stream("session-route-1")
        chosen = [e.event for e in events if isinstance(e.event, RouteChosen)]
        assert chosen[0].reason == "MODEL_PROVIDER=openai; rule:background"


def test_tokens_counted_before_are_not_counted_again(tmp_path: Path) -> None:
    """The orchestrator counts in a thread and passes `tokens`; the router then uses them."""
    settings = _settings(tmp_path, ROUTER_LONG_CONTEXT_MODEL="wide",
                         ROUTER_LONG_CONTEXT_THRESHOLD="10")

    def refuse(body: dict[str, Any]) -> int:
        raise AssertionError("counted again")

    router = TaskRouter(settings.routing, frozenset(settings.providers.backends), refuse)
    assert router.needs_count(100)
    assert not router.needs_count(9)
    body = _ask("a long enough question")
    route = choose_route(settings.providers, "claude-sonnet-4-6", router=router, body=body,
                         request_bytes=100, tokens=12)
    assert (route.backend_model, "long_context (12 >= 10 tokens)" in route.reason) == (
        "wide", True)
    short = choose_route(settings.providers, "claude-sonnet-4-6", router=router, body=body,
                         request_bytes=100, tokens=3)
    assert short.backend_model == "mid"
