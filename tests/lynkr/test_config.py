"""`ServerSettings`: the server's own settings, defaults and validation."""

from __future__ import annotations

import pytest

from lynkr.config import load_settings
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
