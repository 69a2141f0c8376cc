"""Smoke run of `tools/turn_modules.py`: it serves a turn and lists the modules it ran."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "turn_modules.py"


def test_turn_modules_lists_the_handler_and_the_store(tmp_path: Path) -> None:
    """One streamed turn runs through the one handler, the session actor and the recorder."""
    done = subprocess.run([sys.executable, str(SCRIPT), "--stream"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert {"lynkr/http/_fast.py", "actors/session.py", "eventstore/_apsw.py"} <= set(lines)
    assert lines[-1].startswith(f"# {len(lines) - 1} modules")
