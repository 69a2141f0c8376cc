"""`IndexerSettings.from_env`: the indexer's settings section."""

from __future__ import annotations

import os

from lynkr._env import Env
from lynkr.config import load_settings
from lynkr.indexer import IndexerSettings
from lynkr.indexer._settings import DEFAULT_COVERAGE_FILES


def test_defaults_apply_when_nothing_is_set(tmp_path):
    """Without variables: 1 MB limit, a worker per CPU, CLAUDE.md updated (never
    created), the usual coverage files."""
    settings = IndexerSettings.from_env(Env({}, tmp_path))
    assert settings == IndexerSettings()
    assert settings.workers == len(os.sched_getaffinity(0))
    assert settings.coverage_files == DEFAULT_COVERAGE_FILES


def test_variables_are_read(tmp_path):
    """Each variable sets its field."""
    env = Env({"INDEXER_MAX_FILE_BYTES": "2048", "INDEXER_IGNORE": "fixtures/*, *.snap",
               "INDEXER_VERIFY_CONTENT": "yes",
               "INDEXER_WORKERS": "1", "INDEXER_CLAUDE_MD": "off",
               "WORKSPACE_TEST_COVERAGE_FILES": "cov/lcov.info"}, tmp_path)
    settings = IndexerSettings.from_env(env)
    assert (settings.max_file_bytes, settings.ignore_globs, settings.workers,
            settings.claude_md, settings.coverage_files) == (
        2048, ("fixtures/*", "*.snap"), 1, "off", ("cov/lcov.info",))
    assert settings.verify_content is True
    assert env.problems == []


def test_bad_values_are_collected_as_problems(tmp_path):
    """A non-number or a zero worker count is a problem naming the variable."""
    env = Env({"INDEXER_MAX_FILE_BYTES": "big", "INDEXER_WORKERS": "0"}, tmp_path)
    IndexerSettings.from_env(env)
    assert [p.split(":")[0] for p in env.problems] == ["INDEXER_MAX_FILE_BYTES",
                                                       "INDEXER_WORKERS"]


def test_the_section_is_part_of_the_settings(tmp_path):
    """`load_settings()` carries the indexer section."""
    assert load_settings({"INDEXER_WORKERS": "3"}, tmp_path).indexer.workers == 3


def test_the_default_worker_count_follows_the_cpus_this_process_may_use(monkeypatch):
    """The default parser count is the affinity mask's size, never below one."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2})
    assert IndexerSettings().workers == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set())
    assert IndexerSettings().workers == 1
