"""`lynkr --version`: the version from the package metadata."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from lynkr._version import lynkr_version

REPO = Path(__file__).resolve().parents[3]


def test_the_version_is_the_package_metadatas():
    """`lynkr_version()` reads the installed distribution's version."""
    assert lynkr_version() == version("lynkr")


def test_version_flag_prints_it_and_exits_0(tmp_path):
    """`lynkr --version` prints `lynkr X.Y.Z` on stdout, exit 0."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "lynkr", "--version"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0
    assert result.stdout == f"lynkr {version('lynkr')}\n"
