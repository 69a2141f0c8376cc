"""`ServerSettings`: the server's own settings, defaults and validation."""

from __future__ import annotations

import pytest

from lynkr.config import is_loopback, load_settings
from lynkr.errors import ConfigError


def test_projections_run_in_a_worker_process_by_default(tmp_path):
    """LYNKR_PROJECTOR defaults to process."""
    assert load_settings({}, cwd=tmp_path).server.projector == "process"


def test_the_projector_can_run_on_a_thread(tmp_path):
    """LYNKR_PROJECTOR=thread is accepted, in any case."""
    assert load_settings({"LYNKR_PROJECTOR": "Thread"}, cwd=tmp_path).server.projector == "thread"


def test_an_unknown_projector_is_a_problem_naming_the_variable(tmp_path):
    """Anything else is one problem line naming LYNKR_PROJECTOR."""
    with pytest.raises(ConfigError) as caught:
        load_settings({"LYNKR_PROJECTOR": "fork"}, cwd=tmp_path)
    assert any("LYNKR_PROJECTOR" in line for line in caught.value.problems)


def test_loopback_detection():
    """localhost, 127.x and ::1 are loopback; others are not."""
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"]))
    assert not any(map(is_loopback, ["0.0.0.0", "10.0.0.1", "example.com", "::"]))


def test_a_non_loopback_host_is_one_problem_among_the_others(tmp_path):
    """HOST=0.0.0.0 is reported in the same pass as every other bad setting."""
    with pytest.raises(ConfigError) as caught:
        load_settings({"HOST": "0.0.0.0", "LYNKR_PROJECTOR": "fork"}, cwd=tmp_path)
    problems = caught.value.problems
    assert [line.split(":")[0] for line in problems] == ["HOST", "LYNKR_PROJECTOR"]
