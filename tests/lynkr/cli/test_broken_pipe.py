"""A reader that closes stdout early (`lynkr … | head`) ends lynkr quietly, exit 141."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import RunLynkr


def _into_a_closed_pipe(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run `lynkr ARGS…` with stdout a pipe whose reader has already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "lynkr", *args], cwd=tmp_path, env=env,
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60,
                              check=False)
    finally:
        os.close(write_end)
    return done.returncode, done.stderr


def test_sessions_into_a_closed_pipe_exits_141_without_a_traceback(
        tmp_path: Path, lynkr_env: dict[str, str], run_lynkr: RunLynkr) -> None:
    """`lynkr sessions | head` with head gone: no BrokenPipeError, nothing on stderr."""
    assert run_lynkr("tool", "call", "fs_list", "{}").returncode == 0
    code, err = _into_a_closed_pipe(tmp_path, lynkr_env, "sessions")
    assert (code, err) == (141, "")


def test_index_search_json_piped_into_head_ends_quietly(
        tmp_path: Path, lynkr_env: dict[str, str], run_lynkr: RunLynkr) -> None:
    """`index search f --json | head -n 1`: head closes after one line of ~1 MB; lynkr
    exits 141 with an empty stderr, and head got its line."""
    source = "".join(f"def f_{n}(argument_{n}):\n    return {n}\n\n" for n in range(3000))
    (tmp_path / "ws" / "many.py").write_text(source)
    assert run_lynkr("index", "rebuild").returncode == 0
    lynkr = subprocess.Popen([sys.executable, "-m", "lynkr", "index", "search", "f_",
                              "--mode", "prefix", "--limit", "5000", "--json"],
                             cwd=tmp_path, env=lynkr_env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    assert lynkr.stdout is not None
    head = subprocess.run(["head", "-n", "1"], stdin=lynkr.stdout, capture_output=True,
                          timeout=60, check=True)
    lynkr.stdout.close()  # only head reads it
    _, err = lynkr.communicate(timeout=60)
    assert head.stdout == b"[\n"
    assert (lynkr.returncode, err) == (141, b"")
