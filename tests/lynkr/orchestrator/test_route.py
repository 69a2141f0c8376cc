"""The routing decision: provider from MODEL_PROVIDER, model from the family map."""

from __future__ import annotations

import pytest

from lynkr.config import load_settings
from lynkr.errors import ProviderNotConfiguredError
from lynkr.orchestrator import choose_route


def _providers(tmp_path, **env):
    return load_settings({"LYNKR_DATA_DIR": str(tmp_path), **env}, cwd=tmp_path).providers


def test_family_names_map_to_backend_models(tmp_path):
    """opus/sonnet/haiku in the requested name pick their mapped model, and say why."""
    providers = _providers(tmp_path, MODEL_PROVIDER="openai", OPENAI_BASE_URL="http://h/v1",
                           MODEL_OPUS="big", MODEL_HAIKU="small", MODEL_DEFAULT="mid")
    assert choose_route(providers, "claude-opus-4-6").backend_model == "big"
    assert choose_route(providers, "claude-haiku-4-5-20251001").backend_model == "small"
    route = choose_route(providers, "claude-sonnet-4-6")
    assert (route.provider, route.backend_model) == ("openai", "mid")
    assert "default" in route.reason


def test_unknown_names_pass_through_without_a_default(tmp_path):
    """With no MODEL_DEFAULT an unmapped name is sent as it is."""
    providers = _providers(tmp_path, MODEL_PROVIDER="openai", OPENAI_BASE_URL="http://h/v1")
    route = choose_route(providers, "qwen3-coder")
    assert (route.backend_model, route.reason.endswith("passthrough")) == ("qwen3-coder", True)


def test_no_configured_backend_is_a_503_naming_variables(tmp_path):
    """The error says which variables to set."""
    with pytest.raises(ProviderNotConfiguredError, match="DATABRICKS_API_KEY"):
        choose_route(_providers(tmp_path), "claude-sonnet-4-6")
