"""`lynkr config [--json]`: every documented setting, secrets masked, README and code in step."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .conftest import REPO, RunLynkr


def _readme_settings(readme: Path) -> list[str]:
    """Backticked upper-case names in the first column of the tables under "## Settings"."""
    text = readme.read_text()
    section = re.split(r"^## ", text.split("\n## Settings\n", 1)[1], maxsplit=1,
                       flags=re.M)[0]
    names: list[str] = []
    for line in section.splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 2:
            names += re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[1])
    return names


def _listed(stdout: str) -> list[str]:
    return [line.split("=", 1)[0] for line in stdout.splitlines() if not line.startswith("#")]


def test_config_lists_exactly_the_variables_the_readme_documents(run_lynkr: RunLynkr) -> None:
    """README "Settings" tables and `lynkr config` name the same variables, in the same order."""
    documented = _readme_settings(REPO / "README.md")
    assert len(documented) > 50  # the parser found the tables
    listed = _listed(run_lynkr("config").stdout)
    assert sorted(set(documented) - set(listed)) == []  # documented, not shown by config
    assert sorted(set(listed) - set(documented)) == []  # shown by config, not documented
    assert listed == documented


def test_config_json_is_one_object_with_typed_values(run_lynkr: RunLynkr) -> None:
    """--json: every variable, numbers and booleans as JSON ones, unset as null."""
    done = run_lynkr("config", "--json", PORT="9000", POLICY_GIT_ALLOW_PUSH="true")
    assert done.returncode == 0, done.stderr
    values = json.loads(done.stdout)
    assert list(values) == _listed(run_lynkr("config").stdout)
    assert (values["PORT"], values["POLICY_GIT_ALLOW_PUSH"], values["MODEL_DEFAULT"]) == (
        9000, True, None)
    assert "DATABRICKS_API_BASE" in done.stderr  # what to set, beside the result


def test_config_prints_effective_settings_with_secrets_masked(run_lynkr: RunLynkr) -> None:
    """A configured backend shows its variables; keys show only their last four characters."""
    done = run_lynkr("config", DATABRICKS_API_BASE="https://dbc.example.com",
                     DATABRICKS_API_KEY="dapi-very-secret-1234", MODEL_DEFAULT="m")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "dapi-very-secret" not in done.stdout
    assert {"DATABRICKS_API_BASE=https://dbc.example.com", "DATABRICKS_API_KEY=****1234",
            "DATABRICKS_ENDPOINT_PATH=/serving-endpoints/databricks-claude-sonnet-4-5/"
            "invocations", "MODEL_DEFAULT=m", "HOST=127.0.0.1", "LYNKR_PROJECTOR=process",
            "OPENAI_BASE_URL="} <= set(lines)


def test_config_covers_policy_indexer_and_mcp_sections(run_lynkr: RunLynkr) -> None:
    """Tool, indexer and MCP settings are printed too, the admin token masked."""
    done = run_lynkr("config", POLICY_GIT_ALLOW_PUSH="true", INDEXER_WORKERS="1",
                     MCP_SANDBOX_ENABLED="true", LYNKR_ADMIN_TOKEN="admin-token-9876",
                     MCP_TERM_TIMEOUT="7")
    assert done.returncode == 0, done.stderr
    lines = set(done.stdout.splitlines())
    assert {"POLICY_GIT_ALLOW_PUSH=True", "INDEXER_WORKERS=1", "MCP_SANDBOX_ENABLED=True",
            "LYNKR_ADMIN_TOKEN=****9876", "MCP_TERM_TIMEOUT=7.0"} <= lines
    assert "admin-token" not in done.stdout


def test_config_says_what_to_set_when_nothing_is_configured(run_lynkr: RunLynkr) -> None:
    """With no provider, `lynkr config` ends with the variables to set."""
    assert "DATABRICKS_API_BASE" in run_lynkr("config").stdout.splitlines()[-1]
