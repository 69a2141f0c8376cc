"""Tiers and prices from lynkr.toml: defaults, overrides, custom entries, bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from lynkr.config import Settings, load_settings
from lynkr.errors import ConfigError
from lynkr.gateway import DEFAULT_TIERS, PriceTable, with_cost


def _load(tmp_path: Path, toml: str, **env: str) -> Settings:
    (tmp_path / "lynkr.toml").write_text(toml)
    return load_settings({"LYNKR_DATA_DIR": str(tmp_path), **env}, cwd=tmp_path)


def test_built_in_tiers_follow_the_table(tmp_path: Path) -> None:
    """free/starter/pro/enterprise as documented; unlimited is None."""
    tiers = _load(tmp_path, "").limits.tiers
    assert [(t.requests_per_minute, t.requests_per_day, t.tokens_per_day, t.concurrent)
            for t in (tiers[n] for n in ("free", "starter", "pro", "enterprise"))] == [
        (10, 100, 10_000, 2), (60, 1_000, 100_000, 4), (300, None, 1_000_000, 16),
        (None, None, None, None)]


def test_overrides_and_custom_tiers(tmp_path: Path) -> None:
    """A built-in keeps the fields not given; a custom tier's missing fields are unlimited."""
    settings = _load(tmp_path, '[tiers.free]\nrequests_per_minute = 5\n'
                               '[tiers.team]\ntokens_per_day = 7\nrequests_per_day = "unlimited"\n'
                               'models = ["a", "b"]\n',
                     LYNKR_LIMITS_TZ="Europe/Berlin", LYNKR_LIMITS_BY="user")
    free, team = settings.limits.tiers["free"], settings.limits.tiers["team"]
    assert (free.requests_per_minute, free.requests_per_day) == (5, 100)
    assert (team.tokens_per_day, team.requests_per_day, team.concurrent) == (7, None, None)
    assert team.models == frozenset({"a", "b"})
    assert (settings.limits.tz, settings.limits.by) == ("Europe/Berlin", "user")
    assert DEFAULT_TIERS["free"].requests_per_minute == 10  # the defaults are untouched


@pytest.mark.parametrize(("toml", "env", "problem"), [
    ("[tiers.free]\nrequests_per_minute = -1\n", {}, "requests_per_minute"),
    ("[tiers.free]\nburst = 3\n", {}, "unknown field 'burst'"),
    ("[tiers.team]\nmodels = \"a\"\n", {}, "models"),
    ("", {"LYNKR_LIMITS_TZ": "Mars/Olympus"}, "LYNKR_LIMITS_TZ"),
    ("", {"LYNKR_LIMITS_BY": "team"}, "LYNKR_LIMITS_BY"),
    ('[prices."m"]\ninput = 1\n', {}, "needs input and output"),
    ('[prices."m"]\ninput = -1\noutput = 1\n', {}, "prices must be numbers"),
])
def test_bad_values_are_reported_at_start(tmp_path: Path, toml: str, env: dict[str, str],
                                         problem: str) -> None:
    """Each bad tier, zone, counting mode or price is a problem line (exit 2 in the CLI)."""
    with pytest.raises(ConfigError, match=problem):
        _load(tmp_path, toml, **env)


def test_prices_match_the_longest_name_part_and_toml_adds_entries(tmp_path: Path) -> None:
    """Databricks endpoint names find their Claude price; a toml price wins; unknown: None."""
    prices = _load(tmp_path, '[prices."qwen3-coder"]\ninput = 0.5\noutput = 1.5\n').prices
    assert prices.price("databricks-claude-sonnet-4-5") == PriceTable().price("claude-sonnet-4")
    assert prices.price("gpt-4o-mini-2024") is PriceTable().prices["gpt-4o-mini"]
    qwen = prices.price("qwen3-coder")
    assert qwen is not None
    assert (qwen.input, qwen.output) == (0.5, 1.5)
    assert prices.price("llama3") is None
    assert prices.price("anything", "cache") is not None


def test_cost_is_summed_per_group_and_unknown_models_have_none() -> None:
    """A million input tokens of sonnet cost 3 USD; a group with an unpriced model: None."""
    rows = [{"day": "d1", "model": "claude-sonnet-4-6", "provider": "p", "requests": 1,
             "input_tokens": 1_000_000, "output_tokens": 0},
            {"day": "d1", "model": "claude-haiku-4-5", "provider": "p", "requests": 2,
             "input_tokens": 0, "output_tokens": 1_000_000},
            {"day": "d2", "model": "mystery", "provider": "p", "requests": 1,
             "input_tokens": 5, "output_tokens": 5}]
    out = with_cost(rows, PriceTable(), ("day",))
    assert out == [{"day": "d1", "cost_usd": 8.0, "requests": 3, "input_tokens": 1_000_000,
                    "output_tokens": 1_000_000},
                   {"day": "d2", "cost_usd": None, "requests": 1, "input_tokens": 5,
                    "output_tokens": 5}]
