"""Provider settings: every variable of the configuration contract, validated at start."""

from __future__ import annotations

import pytest

from lynkr.config import load_settings
from lynkr.errors import ConfigError


def _load(tmp_path, **env):
    return load_settings(env, cwd=tmp_path).providers


def test_no_configuration_means_databricks_unconfigured(tmp_path):
    """An empty environment starts with no backend and databricks as the provider."""
    providers = _load(tmp_path)
    assert providers.provider == "databricks"
    assert providers.active is None
    assert "DATABRICKS_API_BASE and DATABRICKS_API_KEY" in providers.missing_message()


def test_databricks_url_uses_the_default_endpoint_path(tmp_path):
    """DATABRICKS_ENDPOINT_PATH defaults to the claude-sonnet-4-5 serving endpoint."""
    providers = _load(tmp_path, DATABRICKS_API_BASE="https://dbc.example.com/",
                      DATABRICKS_API_KEY="k")
    assert providers.active.url == ("https://dbc.example.com/serving-endpoints/"
                                    "databricks-claude-sonnet-4-5/invocations")


def test_azure_needs_the_full_messages_url(tmp_path):
    """AZURE_ANTHROPIC_ENDPOINT must end in /messages; the version defaults to 2023-06-01."""
    providers = _load(tmp_path, MODEL_PROVIDER="azure-anthropic",
                      AZURE_ANTHROPIC_ENDPOINT="https://x.services.ai.azure.com/anthropic/v1/messages",
                      AZURE_ANTHROPIC_API_KEY="k")
    assert providers.active.api_version == "2023-06-01"
    with pytest.raises(ConfigError, match="AZURE_ANTHROPIC_ENDPOINT"):
        _load(tmp_path, AZURE_ANTHROPIC_ENDPOINT="https://x/anthropic", AZURE_ANTHROPIC_API_KEY="k")


def test_openai_key_is_optional(tmp_path):
    """A local OpenAI-compatible server needs only OPENAI_BASE_URL."""
    providers = _load(tmp_path, MODEL_PROVIDER="openai", OPENAI_BASE_URL="http://127.0.0.1:11434/v1")
    assert providers.active.url == "http://127.0.0.1:11434/v1/chat/completions"
    assert providers.active.api_key is None


def test_anthropic_upstream_url_gets_v1_messages(tmp_path):
    """ANTHROPIC_UPSTREAM_URL may be a base or the full messages URL."""
    base = _load(tmp_path, MODEL_PROVIDER="anthropic", ANTHROPIC_UPSTREAM_URL="https://api.x.com")
    full = _load(tmp_path, MODEL_PROVIDER="anthropic",
                 ANTHROPIC_UPSTREAM_URL="https://api.x.com/v1/messages")
    assert base.active.url == full.active.url == "https://api.x.com/v1/messages"


def test_every_problem_is_reported_on_its_own_line(tmp_path):
    """Unknown provider, bad URL, missing key and bad numbers are all listed at once."""
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, MODEL_PROVIDER="bedrock", OPENAI_BASE_URL="ftp://x",
              DATABRICKS_API_BASE="https://d", UPSTREAM_MAX_RETRIES="many",
              UPSTREAM_READ_TIMEOUT="-1")
    problems = caught.value.problems
    assert any(p.startswith("MODEL_PROVIDER:") for p in problems)
    assert any(p.startswith("OPENAI_BASE_URL:") for p in problems)
    assert any(p.startswith("DATABRICKS_API_KEY:") for p in problems)
    assert any(p.startswith("UPSTREAM_MAX_RETRIES:") for p in problems)
    assert any(p.startswith("UPSTREAM_READ_TIMEOUT:") for p in problems)


def test_an_explicit_provider_without_its_variables_is_a_problem(tmp_path):
    """MODEL_PROVIDER=openai without OPENAI_BASE_URL fails at start."""
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL: required"):
        _load(tmp_path, MODEL_PROVIDER="openai")


def test_resilience_and_cap_settings_are_read(tmp_path):
    """Timeouts, retries, breaker, cap and beta filter come from their variables."""
    providers = _load(tmp_path, UPSTREAM_CONNECT_TIMEOUT="3", UPSTREAM_READ_TIMEOUT="30",
                      UPSTREAM_MAX_RETRIES="4", CIRCUIT_BREAKER_THRESHOLD="7",
                      CIRCUIT_BREAKER_RESET_SECONDS="9", MODEL_MAX_TOKENS="8192",
                      ANTHROPIC_BETA_DROP="context-1m-2025-08-07, other")
    res = providers.resilience
    assert (res.connect_timeout, res.read_timeout, res.max_retries) == (3.0, 30.0, 4)
    assert (res.breaker_threshold, res.breaker_reset) == (7, 9.0)
    assert providers.max_tokens_cap == 8192
    assert providers.drop_betas == ("context-1m-2025-08-07", "other")


def test_dotenv_is_read_and_the_environment_wins(tmp_path):
    """A .env in the working directory sets values; the environment overrides them."""
    (tmp_path / ".env").write_text("MODEL_PROVIDER=openai\nOPENAI_BASE_URL=http://a/v1\n")
    providers = load_settings({"OPENAI_BASE_URL": "http://b/v1"}, cwd=tmp_path).providers
    assert providers.active.url == "http://b/v1/chat/completions"
