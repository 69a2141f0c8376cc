"""Fixtures for the CLI tests: a clean environment to run `lynkr` as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

REPO = Path(__file__).resolve().parents[3]

RunLynkr = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    """A command run in-process configures logging onto the test's captured stderr."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def lynkr_env(tmp_path: Path) -> dict[str, str]:
    """A minimal environment: a workspace `ws/` and data in `data/` under tmp_path."""
    (tmp_path / "ws").mkdir(exist_ok=True)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
            "PYTHONPATH": str(REPO), "LYNKR_DATA_DIR": str(tmp_path / "data"),
            "WORKSPACE_ROOT": str(tmp_path / "ws"), "INDEXER_WORKERS": "1"}


@pytest.fixture
def run_lynkr(tmp_path: Path, lynkr_env: dict[str, str]) -> RunLynkr:
    """Run `python -m lynkr ARGS…` in tmp_path; extra keyword arguments are variables."""

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lynkr", *args], cwd=tmp_path,
                              env={**lynkr_env, **env}, capture_output=True, text=True,
                              timeout=60, check=False)

    return run
