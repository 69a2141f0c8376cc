"""`ProviderSettings`: which backends are configured, how models map, and how calls behave.

Read from the environment (see `lynkr._env.Env`). `MODEL_PROVIDER` picks the backend
that serves `/v1/messages`; every backend whose variables are set is configured (one
provider actor each). With nothing set the gateway still starts and answers 503 with
the variables to set. A backend named explicitly in `MODEL_PROVIDER` whose required
variables are missing is a start-up problem (exit code 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, cast

from lynkr._env import Env

__all__ = [
    "PROVIDER_KINDS",
    "REQUIRED_VARIABLES",
    "BackendSettings",
    "ModelMap",
    "ProviderKind",
    "ProviderSettings",
    "ResilienceSettings",
]

ProviderKind = Literal["databricks", "azure-anthropic", "openai", "anthropic"]
PROVIDER_KINDS: tuple[ProviderKind, ...] = ("databricks", "azure-anthropic", "openai", "anthropic")

DEFAULT_DATABRICKS_PATH = "/serving-endpoints/databricks-claude-sonnet-4-5/invocations"

REQUIRED_VARIABLES: dict[str, tuple[str, ...]] = {
    "databricks": ("DATABRICKS_API_BASE", "DATABRICKS_API_KEY"),
    "azure-anthropic": ("AZURE_ANTHROPIC_ENDPOINT", "AZURE_ANTHROPIC_API_KEY"),
    "openai": ("OPENAI_BASE_URL",),
    "anthropic": ("ANTHROPIC_UPSTREAM_URL",),
}
"""Per provider, the variables that must be set for it to be configured."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendSettings:
    """One configured backend: where it is and how to authenticate."""

    name: ProviderKind
    url: str  # full URL of the messages / chat-completions / invocations endpoint
    api_key: str | None = field(default=None, repr=False)
    api_version: str = "2023-06-01"  # anthropic-version sent to Anthropic-format backends
    base_url: str = ""  # the base the URL was built from (for /models, count_tokens)

    @property
    def wire(self) -> Literal["openai", "anthropic"]:
        """The body format the backend speaks."""
        return "anthropic" if self.name in ("azure-anthropic", "anthropic") else "openai"


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelMap:
    """Claude model names → backend model names, by family, with a fallback."""

    default: str | None  # MODEL_DEFAULT: unknown names and the fallback
    opus: str | None
    sonnet: str | None
    haiku: str | None

    def resolve(self, requested: str) -> tuple[str, str]:
        """The backend model for `requested`, and why it was chosen.

        Returns:
            ``(backend_model, reason)``; the requested name passes through when nothing
            maps it.
        """
        lowered = requested.lower()
        for family in ("opus", "sonnet", "haiku"):
            target = getattr(self, family)
            if family in lowered and target:
                return target, f"family:{family}"
        if self.default:
            return self.default, "default"
        return requested, "passthrough"

    def listed(self) -> list[tuple[str, str]]:
        """(family or 'default', backend model) pairs that are configured."""
        pairs = [(f, getattr(self, f)) for f in ("opus", "sonnet", "haiku", "default")]
        return [(name, target) for name, target in pairs if target]


@dataclass(frozen=True, slots=True, kw_only=True)
class ResilienceSettings:
    """Timeouts, retries before the first byte, and the circuit breaker."""

    connect_timeout: float = 10.0  # UPSTREAM_CONNECT_TIMEOUT seconds
    read_timeout: float = 600.0  # UPSTREAM_READ_TIMEOUT seconds between bytes
    max_retries: int = 2  # UPSTREAM_MAX_RETRIES (extra attempts, before the first byte)
    retry_base_delay: float = 0.5  # UPSTREAM_RETRY_BASE_DELAY seconds, doubled each try
    retry_max_delay: float = 8.0  # UPSTREAM_RETRY_MAX_DELAY seconds
    breaker_threshold: int = 5  # CIRCUIT_BREAKER_THRESHOLD consecutive failures
    breaker_reset: float = 30.0  # CIRCUIT_BREAKER_RESET_SECONDS before a trial call
    # UPSTREAM_POOL_SIZE connections per backend: far above what one process serves at
    # once, so no stream queues behind it (one that does is logged and counted)
    pool_size: int = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderSettings:
    """The provider section of `Settings`."""

    provider: ProviderKind
    backends: dict[str, BackendSettings]
    models: ModelMap
    resilience: ResilienceSettings
    max_tokens_cap: int | None = None  # MODEL_MAX_TOKENS: clamp for the backend, if set
    drop_betas: tuple[str, ...] = ()  # ANTHROPIC_BETA_DROP: betas never forwarded
    reasoning_replay: str = "auto"  # OPENAI_REASONING_REPLAY: auto, reasoning_content, off
    loop_empty_answers: int | None = 3  # LOOP_GUARD_EMPTY_ANSWERS (None: off)
    loop_repeats: int | None = 5  # LOOP_GUARD_REPEATS (None: off)
    loop_window_s: float = 120.0  # LOOP_GUARD_WINDOW_S

    @property
    def active(self) -> BackendSettings | None:
        """The backend that serves requests, or None when it is not configured."""
        return self.backends.get(self.provider)

    def missing_message(self) -> str:
        """The 503 message naming the variables to set."""
        names = " and ".join(REQUIRED_VARIABLES[self.provider])
        return (f"no model provider is configured: MODEL_PROVIDER is {self.provider!r}; set "
                f"{names} (or choose another MODEL_PROVIDER: {', '.join(PROVIDER_KINDS)})")

    @classmethod
    def unconfigured(cls) -> ProviderSettings:
        """Defaults with no backend (what an empty environment gives)."""
        return cls(provider="databricks", backends={},
                   models=ModelMap(default=None, opus=None, sonnet=None, haiku=None),
                   resilience=ResilienceSettings())

    @classmethod
    def from_env(cls, env: Env) -> ProviderSettings:
        """Read and validate the provider variables (problems go to `env.problems`)."""
        raw = (env.str("MODEL_PROVIDER") or "").strip().lower()
        explicit = raw in PROVIDER_KINDS  # an invalid name is reported once, by `choice`
        provider = cast(ProviderKind, env.choice("MODEL_PROVIDER", "databricks", PROVIDER_KINDS))
        backends = _read_backends(env)
        if explicit and provider not in backends:
            missing = [n for n in REQUIRED_VARIABLES[provider] if env.str(n) is None]
            env.problems.extend(f"{n}: required when MODEL_PROVIDER={provider}" for n in missing)
        cap = env.int("MODEL_MAX_TOKENS", 0, minimum=0)
        return cls(
            provider=provider,
            backends=backends,
            models=ModelMap(default=env.str("MODEL_DEFAULT"), opus=env.str("MODEL_OPUS"),
                            sonnet=env.str("MODEL_SONNET"), haiku=env.str("MODEL_HAIKU")),
            resilience=_read_resilience(env),
            max_tokens_cap=cap or None,
            drop_betas=tuple(env.list("ANTHROPIC_BETA_DROP")),
            reasoning_replay=env.choice("OPENAI_REASONING_REPLAY", "auto",
                                        ("auto", "reasoning_content", "off")),
            loop_empty_answers=_limit(env, "LOOP_GUARD_EMPTY_ANSWERS", 3),
            loop_repeats=_limit(env, "LOOP_GUARD_REPEATS", 5),
            loop_window_s=env.positive("LOOP_GUARD_WINDOW_S", 120.0),
        )


def _limit(env: Env, name: str, default: int) -> int | None:
    """A count of at least 1, or `off` (None)."""
    if (env.str(name) or "").strip().lower() == "off":
        return None
    return env.int(name, default, minimum=1)


def _read_backends(env: Env) -> dict[str, BackendSettings]:
    readers = (_databricks, _azure, _openai, _anthropic)
    found = (reader(env) for reader in readers)
    return {b.name: b for b in found if b is not None}


def _require_key(env: Env, url_name: str, key_name: str) -> str | None:
    key = env.str(key_name)
    if key is None:
        env.problems.append(f"{key_name}: required when {url_name} is set")
    return key


def _base_url(env: Env, name: str) -> str | None:
    """The URL setting `name` without a trailing slash (None: unset, or not a URL)."""
    url = env.url(name)
    return None if url is None else url.rstrip("/")


def _databricks(env: Env) -> BackendSettings | None:
    if env.str("DATABRICKS_API_BASE") is None:
        return None
    base = _base_url(env, "DATABRICKS_API_BASE")
    path = env.str("DATABRICKS_ENDPOINT_PATH", DEFAULT_DATABRICKS_PATH) or ""
    if not path.startswith("/"):
        env.problems.append(f"DATABRICKS_ENDPOINT_PATH: {path!r} must start with '/'")
    key = _require_key(env, "DATABRICKS_API_BASE", "DATABRICKS_API_KEY")
    if base is None or key is None:
        return None
    return BackendSettings(name="databricks", url=base + path, api_key=key, base_url=base)


def _azure(env: Env) -> BackendSettings | None:
    if env.str("AZURE_ANTHROPIC_ENDPOINT") is None:
        return None
    url = env.url("AZURE_ANTHROPIC_ENDPOINT")
    key = _require_key(env, "AZURE_ANTHROPIC_ENDPOINT", "AZURE_ANTHROPIC_API_KEY")
    if url is not None and not url.rstrip("/").endswith("/messages"):
        env.problems.append(
            f"AZURE_ANTHROPIC_ENDPOINT: {url!r} must be the full …/anthropic/v1/messages URL")
        url = None
    version = env.str("AZURE_ANTHROPIC_VERSION", "2023-06-01") or "2023-06-01"
    if url is None or key is None:
        return None
    url = url.rstrip("/")
    return BackendSettings(name="azure-anthropic", url=url, api_key=key, api_version=version,
                           base_url=url.removesuffix("/messages"))


def _openai(env: Env) -> BackendSettings | None:
    base = _base_url(env, "OPENAI_BASE_URL")
    if base is None:
        return None
    return BackendSettings(name="openai", url=base + "/chat/completions",
                           api_key=env.str("OPENAI_API_KEY"), base_url=base)


def _anthropic(env: Env) -> BackendSettings | None:
    base = _base_url(env, "ANTHROPIC_UPSTREAM_URL")
    if base is None:
        return None
    url = base if base.endswith("/messages") else base + "/v1/messages"
    return BackendSettings(name="anthropic", url=url, api_key=env.str("ANTHROPIC_UPSTREAM_API_KEY"),
                           base_url=url.removesuffix("/messages"))


def _read_resilience(env: Env) -> ResilienceSettings:
    settings = ResilienceSettings(
        connect_timeout=env.float("UPSTREAM_CONNECT_TIMEOUT", 10.0),
        read_timeout=env.float("UPSTREAM_READ_TIMEOUT", 600.0),
        max_retries=env.int("UPSTREAM_MAX_RETRIES", 2, minimum=0),
        retry_base_delay=env.float("UPSTREAM_RETRY_BASE_DELAY", 0.5),
        retry_max_delay=env.float("UPSTREAM_RETRY_MAX_DELAY", 8.0),
        breaker_threshold=env.int("CIRCUIT_BREAKER_THRESHOLD", 5, minimum=1),
        breaker_reset=env.float("CIRCUIT_BREAKER_RESET_SECONDS", 30.0),
        pool_size=env.int("UPSTREAM_POOL_SIZE", 10_000, minimum=1),
    )
    for name, value in (("UPSTREAM_CONNECT_TIMEOUT", settings.connect_timeout),
                        ("UPSTREAM_READ_TIMEOUT", settings.read_timeout),
                        ("UPSTREAM_RETRY_BASE_DELAY", settings.retry_base_delay),
                        ("UPSTREAM_RETRY_MAX_DELAY", settings.retry_max_delay),
                        ("CIRCUIT_BREAKER_RESET_SECONDS", settings.breaker_reset)):
        if value < 0:
            env.problems.append(f"{name}: {value} must not be negative")
    return settings
