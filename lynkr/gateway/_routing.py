"""Routing by task: which backend model serves a request, decided from the request.

Rules, first match wins (each only when its setting is set; unset rules keep the
family map, `MODEL_OPUS`/`MODEL_SONNET`/`MODEL_HAIKU`/`MODEL_DEFAULT`):

1. `ROUTER_LONG_CONTEXT_MODEL` — the request's input is at least
   `ROUTER_LONG_CONTEXT_THRESHOLD` tokens (default 60,000), counted with the offline
   tokenizer (`lynkr.providers.count_request_tokens`). A body shorter in bytes than the
   threshold is never counted (a token is at least one byte). First, because a request
   that does not fit a model's context cannot be served by it at all.
2. `ROUTER_BACKGROUND_MODEL` — Claude Code's background requests: the requested model
   is haiku-class (its small/fast model: session titles, summaries, topic checks), or
   the request has no tools and asks for a structured `output_config.format` (the
   title request).
3. `ROUTER_THINK_MODEL` — `thinking: {"type": "enabled", …}` (an explicit budget;
   `adaptive`, where the model decides, is not routed: Claude Code sends it on every
   turn of newer models).
4. `ROUTER_TASK_MODELS` (`debugging=model-x,review=model-y,…`) — the task type inferred
   from the latest user text (`classify_task`; tool results and `<system-reminder>`
   text are ignored): `code_generation`, `debugging`, `review` or `documentation`.

A value is a backend model of `MODEL_PROVIDER`, or `<backend>:<model>` for another
configured backend (`openai:gpt-4o-mini`; a prefix that names no configured backend
is part of the model name, e.g. `qwen2.5:7b`). A tier with `models = [...]` reaches
only those: a rule whose model it may not use is skipped; if the model finally chosen
is not allowed either, the tier's first allowed model (sorted) serves, and the reason
says so. Every decision's reason is recorded in `RouteChosen.reason`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lynkr._env import Env
from lynkr.gateway._tiers import Tier

__all__ = ["TASK_TYPES", "RouteDecision", "RoutingSettings", "TaskRouter", "classify_task"]

TASK_TYPES = ("code_generation", "debugging", "review", "documentation")

_TASK_ALIASES = {"codegen": "code_generation", "code-generation": "code_generation",
                 "generation": "code_generation", "debug": "debugging", "docs": "documentation"}

# Weighted patterns per task type (case-insensitive, on word boundaries). The scores of
# a prompt are summed per type; the highest wins, ties going to the earlier type here.
_RULES: dict[str, tuple[tuple[str, int], ...]] = {
    "debugging": (
        (r"(traceback|stack ?trace|exception|segfault|panic(ked)?|core dump)", 3),
        (r"(error|errors|bug|bugs|crash(es|ed|ing)?|fail(s|ed|ing|ure)?|broken)", 2),
        (r"(fix|debug|debugging|diagnose|why (does|is|do|did)|doesn'?t work|not working)", 2),
        (r"(wrong (result|output|value)|unexpected(ly)?|regression|flaky|hangs?|leak(s|ing)?)",
         2),
        (r"(TypeError|ValueError|KeyError|NullPointer\w*|undefined is not|NaN)", 3),
    ),
    "review": (
        (r"(review|code review|critique|audit)", 3),
        (r"(pull request|PR|diff|changeset|patch)", 1),
        (r"(feedback|look over|second pair of eyes|any (issues|problems|concerns))", 2),
        (r"(is this (code )?(good|ok|okay|idiomatic|correct|safe)|best practices?|"
         r"code smells?|(spot|find) (issues|problems))", 2),
    ),
    "documentation": (
        (r"(document|documentation|docstrings?|readme|docs|jsdoc|javadoc|changelog)", 3),
        (r"(comment(s|ing)?|api reference|usage guide|tutorial|man page)", 2),
        (r"(explain (how|what) .* (to users|for users)|write[- ]up)", 1),
    ),
    "code_generation": (
        (r"(write|implement|create|generate|scaffold|build|add) (a|an|the|me|some|new)", 2),
        (r"(function|class|method|endpoint|script|module|component|cli|parser|test(s)?)"
         r" (that|which|to|for)", 2),
        (r"(implement|scaffold|boilerplate|prototype|from scratch)", 2),
        (r"(convert|port|translate|rewrite) .* (to|into) (python|rust|go|typescript|java)", 2),
    ),
}
_COMPILED = {task: tuple((re.compile(rf"\b{pattern}\b", re.I), weight)
                         for pattern, weight in rules) for task, rules in _RULES.items()}
_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.S)


def _latest_user_text(body: Mapping[str, Any]) -> str:
    """The text of the latest user message that has any (tool results skipped)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            text = content
        elif isinstance(content, list):
            text = "\n".join(str(b.get("text", "")) for b in content
                             if isinstance(b, dict) and b.get("type") == "text")
        else:
            continue
        text = _REMINDER.sub("", text).strip()
        if text:
            return text
    return ""


def classify_task(body: Mapping[str, Any]) -> str | None:
    """The task type of a request (`TASK_TYPES`), or None when no rule matches.

    Inferred from the latest user text with weighted keyword rules (module docstring);
    measured on the labelled prompts in `tests/lynkr/gateway/task_prompts.py`.
    """
    text = _latest_user_text(body)[:4000]  # the ask is at the start; bound the cost
    if not text:
        return None
    best, best_score = None, 0
    for task in ("debugging", "review", "documentation", "code_generation"):
        score = sum(weight for pattern, weight in _COMPILED[task] if pattern.search(text))
        if score > best_score:
            best, best_score = task, score
    return best


def _task_models(env: Env) -> dict[str, str]:
    """`ROUTER_TASK_MODELS`: `task=model` pairs, comma-separated."""
    models: dict[str, str] = {}
    for item in env.list("ROUTER_TASK_MODELS"):
        task, sep, model = item.partition("=")
        task = _TASK_ALIASES.get(task.strip().lower(), task.strip().lower())
        if not sep or not model.strip() or task not in TASK_TYPES:
            env.problems.append(f"ROUTER_TASK_MODELS: {item!r} is not task=model with a task "
                                f"of {', '.join(TASK_TYPES)}")
            continue
        models[task] = model.strip()
    return models


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingSettings:
    """The `ROUTER_*` settings (module docstring)."""

    background_model: str | None = None  # ROUTER_BACKGROUND_MODEL
    think_model: str | None = None  # ROUTER_THINK_MODEL
    long_context_model: str | None = None  # ROUTER_LONG_CONTEXT_MODEL
    long_context_threshold: int = 60_000  # ROUTER_LONG_CONTEXT_THRESHOLD tokens
    task_models: Mapping[str, str] = field(default_factory=dict)  # ROUTER_TASK_MODELS

    @property
    def enabled(self) -> bool:
        """True if any rule is set."""
        return bool(self.background_model or self.think_model or self.long_context_model
                    or self.task_models)

    def describe_tasks(self) -> str:
        """`ROUTER_TASK_MODELS` as `lynkr config` prints it."""
        return ",".join(f"{task}={model}" for task, model in self.task_models.items())

    @classmethod
    def from_env(cls, env: Env) -> RoutingSettings:
        """Read the ROUTER_* variables."""
        return cls(background_model=env.str("ROUTER_BACKGROUND_MODEL"),
                   think_model=env.str("ROUTER_THINK_MODEL"),
                   long_context_model=env.str("ROUTER_LONG_CONTEXT_MODEL"),
                   long_context_threshold=env.int("ROUTER_LONG_CONTEXT_THRESHOLD", 60_000,
                                                  minimum=1),
                   task_models=_task_models(env))


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """A backend (None: `MODEL_PROVIDER`), a backend model, and why."""

    provider: str | None
    backend_model: str
    reason: str


def _is_background(requested: str, body: Mapping[str, Any]) -> bool:
    if "haiku" in requested.lower():
        return True
    output = body.get("output_config")
    return not body.get("tools") and isinstance(output, dict) and "format" in output


def _thinking(body: Mapping[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") == "enabled"


class TaskRouter:
    """Applies the routing rules to a request (module docstring)."""

    def __init__(self, settings: RoutingSettings, backends: frozenset[str],
                 count_tokens: Callable[[dict[str, Any]], int]) -> None:
        """Args:
            settings: the rules.
            backends: names of the configured backends (for `<backend>:<model>`).
            count_tokens: the offline token counter (`count_request_tokens`).
        """
        self.settings = settings
        self.backends = backends
        self.count_tokens = count_tokens

    def _target(self, value: str) -> tuple[str | None, str]:
        prefix, sep, rest = value.partition(":")
        if sep and rest and prefix in self.backends:
            return prefix, rest
        return None, value

    def needs_count(self, request_bytes: int) -> bool:
        """True if the long-context rule must count this request's tokens (CPU-bound:
        ~1 ms per 100 KB; the orchestrator counts in a worker thread and passes `tokens`)."""
        s = self.settings
        return bool(s.long_context_model) and request_bytes >= s.long_context_threshold

    def _candidates(self, requested: str, body: dict[str, Any], request_bytes: int,
                    tokens: int | None) -> list[tuple[str, str]]:
        """(setting value, reason) of every rule that matches, in rule order."""
        s = self.settings
        found: list[tuple[str, str]] = []
        if s.long_context_model and request_bytes >= s.long_context_threshold:
            tokens = self.count_tokens(body) if tokens is None else tokens
            if tokens >= s.long_context_threshold:
                found.append((s.long_context_model,
                              f"long_context ({tokens} >= {s.long_context_threshold} tokens)"))
        if s.background_model and _is_background(requested, body):
            found.append((s.background_model, "background"))
        if s.think_model and _thinking(body):
            found.append((s.think_model, "thinking"))
        if s.task_models:
            task = classify_task(body)
            if task is not None and task in s.task_models:
                found.append((s.task_models[task], f"task:{task}"))
        return found

    def route(self, requested: str, body: dict[str, Any], family: tuple[str, str],
              tier: Tier | None, request_bytes: int, tokens: int | None = None
              ) -> RouteDecision:
        """The decision for one request.

        Args:
            requested: the model the client asked for.
            body: the validated request body.
            family: the family map's (backend model, reason) for `requested`.
            tier: the caller's tier (its `models` may restrict the choice), or None.
            request_bytes: the body's size as received.
            tokens: the request's input tokens if already counted (else counted here
                when the long-context rule needs them).
        """
        for value, reason in self._candidates(requested, body, request_bytes, tokens):
            provider, model = self._target(value)
            if tier is None or tier.allows_model(value) or tier.allows_model(model):
                return RouteDecision(provider, model, f"rule:{reason}")
        model, reason = family
        if tier is None or tier.allows_model(model) or not tier.models:
            return RouteDecision(None, model, reason)
        allowed = sorted(tier.models)[0]
        provider, model = self._target(allowed)
        return RouteDecision(provider, model,
                             f"tier:{tier.name} allows only {', '.join(sorted(tier.models))} "
                             f"(asked {family[0]})")
