"""Test helper: a fake upstream process and a `lynkr serve` process, started and stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def start(args: list[str], cwd: Path, env: dict[str, str], marker: str,
          stream: str) -> tuple[subprocess.Popen[str], str]:
    """Start a process and wait for its line starting with `marker`; return its last word."""
    proc = subprocess.Popen(args, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    assert pipe is not None
    for line in pipe:
        if line.startswith(marker):
            return proc, line.split()[-1]
    stop(proc, signal.SIGKILL)  # reaped and its pipes closed: no zombie, no unclosed file
    raise AssertionError(f"{args[1]} exited before printing {marker!r}")


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    """Signal, wait (kill after 15 s), close the pipes."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def provider_env(provider: str, fake_port: int) -> dict[str, str]:
    """The settings that point `provider` (openai or databricks) at the fake upstream."""
    if provider == "databricks":
        return {"MODEL_PROVIDER": "databricks",
                "DATABRICKS_API_BASE": f"http://127.0.0.1:{fake_port}",
                "DATABRICKS_API_KEY": "dapi-test"}
    return {"MODEL_PROVIDER": "openai", "OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1"}


@contextmanager
def gateway_processes(tmp_path: Path, provider: str = "openai",
                      extra_env: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """The fake upstream and `lynkr serve` (for `provider`) in front of it, as real
    processes; `extra_env` adds gateway settings."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
            "PYTHONPATH": str(REPO)}
    fake, fake_port = start([sys.executable, str(REPO / "tools" / "fake_upstream.py"),
                             "--port", "0"], tmp_path, base, "LISTENING", "stdout")
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    # The prompt cache is off unless a test turns it on: many tests resend one question
    # on purpose and must reach the scripted upstream each time.
    env = {**base, "PORT": "0", "LOG_LEVEL": "warning", "PROMPT_CACHE_ENABLED": "false",
           **provider_env(provider, int(fake_port)), **(extra_env or {})}
    try:
        lynkr, url = start([sys.executable, "-m", "lynkr", "serve"], server_dir, env,
                           "lynkr: listening on ", "stderr")
    except AssertionError:
        stop(fake)
        raise
    state = {"url": url, "fake": f"http://127.0.0.1:{fake_port}", "lynkr": lynkr,
             "db": server_dir / "data" / "lynkr.db", "tmp": tmp_path}
    try:
        yield state
    finally:
        if lynkr.poll() is None:
            stop(lynkr)
        else:
            stop(lynkr, signal.SIGCONT)  # already dead: just close its pipes
        stop(fake)
