"""PolicySettings: the original setting names, defaults, problems and the config hash."""

from __future__ import annotations

from lynkr._env import Env
from lynkr.config import load_settings
from lynkr.tools import PolicySettings


def test_defaults_are_safe(tmp_path):
    """Push off, tests not required, no web host allowed, no private host lifted."""
    settings = PolicySettings.from_env(Env({}, cwd=tmp_path))
    assert settings.git_allow_push is False
    assert settings.git_require_tests is False
    assert settings.web_allowed_hosts == ()
    assert settings.web_fetch_allow_private_hosts == ()
    assert settings.workspace_root == tmp_path.resolve()


def test_original_names_are_read(tmp_path):
    """Every original variable name lands in its field."""
    env = Env({"POLICY_MAX_STEPS": "3", "POLICY_GIT_ALLOW_PUSH": "true",
               "POLICY_GIT_REQUIRE_TESTS": "1", "POLICY_GIT_TEST_COMMAND": "make test",
               "WEB_SEARCH_ALLOWED_HOSTS": "Docs.Python.org, *.example.com",
               "WEB_SEARCH_ENDPOINT": "http://127.0.0.1:8888",
               "WEB_FETCH_ALLOW_PRIVATE_HOSTS": "intranet.local",
               "WORKSPACE_TEST_COMMAND": "pytest -q", "WORKSPACE_TEST_TIMEOUT_MS": "5000",
               "WORKSPACE_TEST_COVERAGE_FILES": "coverage.json,lcov.info"}, cwd=tmp_path)
    s = PolicySettings.from_env(env)
    assert env.problems == []
    assert (s.max_steps, s.git_allow_push, s.git_require_tests) == (3, True, True)
    assert s.git_test_command == "make test"
    assert s.test_command == "pytest -q"
    assert s.web_allowed_hosts == ("docs.python.org", "*.example.com")
    assert s.web_search_endpoint == "http://127.0.0.1:8888"
    assert s.web_fetch_allow_private_hosts == ("intranet.local",)
    assert s.test_timeout_ms == 5000
    assert s.test_coverage_files == ("coverage.json", "lcov.info")


def test_bad_values_are_reported_as_problems(tmp_path):
    """Wrong values become one problem each, named by variable."""
    env = Env({"POLICY_GIT_ALLOW_PUSH": "maybe", "POLICY_MAX_STEPS": "0",
               "WEB_SEARCH_ENDPOINT": "ftp://x"}, cwd=tmp_path)
    PolicySettings.from_env(env)
    joined = " ".join(env.problems)
    for name in ("POLICY_GIT_ALLOW_PUSH", "POLICY_MAX_STEPS", "WEB_SEARCH_ENDPOINT"):
        assert name in joined


def test_lynkr_toml_env_table_is_read(tmp_path):
    """The same names work from the [env] table of lynkr.toml."""
    (tmp_path / "lynkr.toml").write_text('[env]\nPOLICY_GIT_ALLOW_PUSH = "true"\n')
    settings = load_settings({}, cwd=tmp_path)
    assert settings.policy.git_allow_push is True


def test_config_hash_tracks_every_setting(tmp_path):
    """Equal settings hash equal; changing one setting changes the hash."""
    a = PolicySettings(workspace_root=tmp_path)
    assert a.config_hash == PolicySettings(workspace_root=tmp_path).config_hash
    assert a.config_hash != PolicySettings(workspace_root=tmp_path,
                                           git_allow_push=True).config_hash
    assert len(a.config_hash) == 64


def test_workspace_id_is_short_and_stable(tmp_path):
    """The workspace id depends only on the resolved root."""
    assert PolicySettings(workspace_root=tmp_path).workspace_id == \
        PolicySettings(workspace_root=tmp_path).workspace_id
    assert len(PolicySettings(workspace_root=tmp_path).workspace_id) == 12


def test_ca_bundle_must_exist(tmp_path):
    """WEB_FETCH_CA_BUNDLE pointing nowhere is a problem; an existing file is taken."""
    env = Env({"WEB_FETCH_CA_BUNDLE": "missing.pem"}, cwd=tmp_path)
    assert PolicySettings.from_env(env).web_fetch_ca_bundle is None
    assert "WEB_FETCH_CA_BUNDLE" in env.problems[0]
    (tmp_path / "ca.pem").write_text("pem")
    env = Env({"WEB_FETCH_CA_BUNDLE": "ca.pem"}, cwd=tmp_path)
    assert PolicySettings.from_env(env).web_fetch_ca_bundle == tmp_path / "ca.pem"


def test_tool_result_max_bytes_defaults_to_200_kb_and_is_read(tmp_path):
    """TOOL_RESULT_MAX_BYTES is 204800 unless set; below 1024 it is a problem."""
    assert PolicySettings.from_env(Env({}, cwd=tmp_path)).result_max_bytes == 204_800
    env = Env({"TOOL_RESULT_MAX_BYTES": "4096"}, cwd=tmp_path)
    assert PolicySettings.from_env(env).result_max_bytes == 4096
    small = Env({"TOOL_RESULT_MAX_BYTES": "10"}, cwd=tmp_path)
    PolicySettings.from_env(small)
    assert any("TOOL_RESULT_MAX_BYTES" in p for p in small.problems)
