"""`lynkr code [-- CLAUDE ARGS…]`: Claude Code, pointed at the gateway.

1. The `claude` command is found on PATH (missing: one line saying how to install it,
   exit 2).
2. The configured gateway (`HOST`:`PORT`, see `lynkr status`) is asked for `/health`. If
   none answers, `lynkr serve` is started in the background — its own session, so a
   Ctrl-C in Claude Code does not reach it, its output appended to `serve.log` in the data
   directory — and the command says so, with the pid to stop it. It keeps running after
   Claude Code exits, so the next `lynkr code` (and the sessions' projections) use it.
3. Claude Code replaces this process (`exec`: its exit code and signals are its own) with
   `ANTHROPIC_BASE_URL` set to the gateway. Nothing else is changed, except when the
   gateway's auth is on: then `LYNKR_CODE_API_KEY`, if set, becomes `ANTHROPIC_API_KEY`;
   an `ANTHROPIC_API_KEY` already in the environment is used as it is; with neither, the
   command stops (exit 2) and says to create a key with `lynkr keys create`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lynkr.cli._cmd_status import gateway_url, probe_health
from lynkr.cli._setup import load_cli_settings

if TYPE_CHECKING:
    from lynkr.config import Settings

__all__ = ["register"]

SERVE_LOG = "serve.log"
_START_TIMEOUT = 60.0  # seconds a background gateway may take to answer /health
_INSTALL = ("lynkr: the `claude` command was not found on PATH; install Claude Code with "
            "`npm install -g @anthropic-ai/claude-code`")


def _claude_env(settings: Settings, url: str) -> dict[str, str] | None:
    """The environment Claude Code gets, or None (after saying why) when auth is on and
    no key is given."""
    env = {**os.environ, "ANTHROPIC_BASE_URL": url}
    if not settings.auth.enabled:
        return env
    key = os.environ.get("LYNKR_CODE_API_KEY")
    if key:
        env["ANTHROPIC_API_KEY"] = key
    elif not os.environ.get("ANTHROPIC_API_KEY"):
        print("lynkr: the gateway's auth is on: set LYNKR_CODE_API_KEY (or ANTHROPIC_API_KEY) "
              "to a key from `lynkr keys create`", file=sys.stderr)
        return None
    return env


def _start_gateway(settings: Settings, url: str) -> int | None:
    """Start `lynkr serve` in the background and wait until it answers; its pid, or None
    (after saying why) if it did not come up."""
    import subprocess

    data_dir = settings.server.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / SERVE_LOG
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "lynkr", "serve"], stdin=subprocess.DEVNULL,
                                stdout=log_file, stderr=log_file, start_new_session=True)
    print(f"lynkr: no gateway answered at {url}; started `lynkr serve` in the background "
          f"(pid {proc.pid}, log {log_path}); it keeps running after Claude Code exits "
          f"(stop it with `kill {proc.pid}`)", file=sys.stderr)
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(f"lynkr: the background gateway exited with code {proc.returncode}: "
                  f"{_last_line(log_path)}", file=sys.stderr)
            return None
        if probe_health(url, timeout=1.0)[0] is not None:
            return proc.pid
        time.sleep(0.1)
    print(f"lynkr: the background gateway (pid {proc.pid}) did not answer at {url} within "
          f"{_START_TIMEOUT:.0f} s; see {log_path}", file=sys.stderr)
    return None


def _last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "(no output)"


def _code(args: argparse.Namespace) -> int:
    claude = shutil.which("claude")
    if claude is None:
        print(_INSTALL, file=sys.stderr)
        return 2
    settings = load_cli_settings()
    url = gateway_url(settings)
    env = _claude_env(settings, url)
    if env is None:
        return 2
    if probe_health(url, timeout=1.0)[0] is None and _start_gateway(settings, url) is None:
        return 1
    claude_args = list(args.claude_args)
    if claude_args[:1] == ["--"]:
        claude_args = claude_args[1:]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(claude, [claude, *claude_args], env)  # the user's own CLI, no shell


def register(subparsers: Any) -> None:
    """Add `code`."""
    code = subparsers.add_parser(
        "code", help="start Claude Code pointed at the gateway (starting one if needed)",
        description="Start Claude Code with ANTHROPIC_BASE_URL set to the configured gateway; "
                    "if none answers, start `lynkr serve` in the background first (its log: "
                    "serve.log in the data directory; it keeps running). With auth on, "
                    "LYNKR_CODE_API_KEY (or ANTHROPIC_API_KEY) is the key Claude Code sends.",
        usage="lynkr code [-h] [-- CLAUDE_ARGS ...]")
    code.add_argument("claude_args", nargs=argparse.REMAINDER,
                      help="passed to `claude` as they are (after --)")
    code.set_defaults(handler=_code)
