"""Results on stdout, logs on stderr: JSON off a terminal, console on one, LOG_FORMAT wins."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.processes import start, stop

from .conftest import REPO, RunLynkr


def _json_lines(text: str) -> list[dict[str, object]]:
    """The lines of `text` that are JSON objects."""
    found = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                found.append(value)
    return found


def _events(text: str) -> list[object]:
    return [line.get("event") for line in _json_lines(text)]


def test_tool_call_prints_only_its_result_on_stdout(tmp_path: Path, run_lynkr: RunLynkr) -> None:
    """stdout is the result, parseable as a whole; the policy log line is JSON on stderr."""
    (tmp_path / "ws" / "a.py").write_text("x = 1\n")
    done = run_lynkr("tool", "call", "fs_read", '{"path": "a.py"}')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["content"] == "x = 1\n"
    assert "policy_decided" in _events(done.stderr)


def test_index_rebuild_prints_its_report_and_logs_to_stderr(
        tmp_path: Path, run_lynkr: RunLynkr) -> None:
    """The report is the only thing on stdout; `index_rebuilt` is a JSON line on stderr."""
    (tmp_path / "ws" / "a.py").write_text("def f():\n    return 1\n")
    done = run_lynkr("index", "rebuild")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("indexed 1 files")
    assert "index_rebuilt" not in done.stdout
    assert "index_rebuilt" in _events(done.stderr)


def test_projections_rebuild_logs_to_stderr_in_the_same_format(
        tmp_path: Path, run_lynkr: RunLynkr) -> None:
    """`projections rebuild` prints only its `rebuilt …` lines; its log line is JSON on stderr."""
    assert run_lynkr("tool", "call", "fs_list", "{}").returncode == 0
    done = run_lynkr("projections", "rebuild")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines
    assert all(line.startswith("rebuilt ") for line in lines), done.stdout
    assert "projections_rebuilding" in _events(done.stderr)


def test_log_format_console_renders_logs_for_humans(run_lynkr: RunLynkr) -> None:
    """LOG_FORMAT=console off a terminal: key=value lines, no JSON."""
    done = run_lynkr("tool", "call", "fs_list", "{}", LOG_FORMAT="console")
    assert done.returncode == 0, done.stderr
    [line] = [x for x in done.stderr.splitlines() if "policy_decided" in x]
    assert "decision=allow" in line
    assert _json_lines(done.stderr) == []


def _on_a_terminal(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[str, str]:
    """Run `lynkr ARGS…` with stderr on a pseudo-terminal; (stdout, terminal output)."""
    main_fd, child_fd = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "lynkr", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=child_fd, text=True)
    os.close(child_fd)
    chunks = []
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main_fd)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    return out, b"".join(chunks).decode()


def test_logs_on_a_terminal_are_for_humans_unless_log_format_says_json(
        tmp_path: Path, lynkr_env: dict[str, str]) -> None:
    """auto: console lines on a terminal; LOG_FORMAT=json: JSON lines on the same terminal."""
    _, human = _on_a_terminal(tmp_path, lynkr_env, "tool", "call", "fs_list", "{}")
    assert "policy_decided" in human
    assert _json_lines(human) == []
    _, machine = _on_a_terminal(tmp_path, {**lynkr_env, "LOG_FORMAT": "json"},
                                "tool", "call", "fs_list", "{}")
    assert "policy_decided" in _events(machine)


def test_an_unknown_log_format_is_a_settings_error(run_lynkr: RunLynkr) -> None:
    """LOG_FORMAT=xml: one line naming the choices, exit 2."""
    done = run_lynkr("sessions", LOG_FORMAT="xml")
    assert done.returncode == 2
    assert done.stderr.strip() == ("lynkr: config: LOG_FORMAT: 'xml' is not one of "
                                   "auto, console, json")


def test_config_shows_the_log_format(run_lynkr: RunLynkr) -> None:
    """`lynkr config` lists LOG_FORMAT with its effective value."""
    assert "LOG_FORMAT=auto" in run_lynkr("config").stdout.splitlines()
    assert "LOG_FORMAT=json" in run_lynkr("config", LOG_FORMAT="json").stdout.splitlines()


def test_the_gateway_logs_to_stderr_in_the_chosen_format(
        tmp_path: Path, lynkr_env: dict[str, str]) -> None:
    """`lynkr serve` with LOG_FORMAT=console: nothing on stdout, console lines on stderr."""
    env = {**lynkr_env, "PORT": "0", "PYTHONPATH": str(REPO), "LOG_FORMAT": "console"}
    proc, url = start([sys.executable, "-m", "lynkr", "serve"], tmp_path, env,
                      "lynkr: listening on ", "stderr")
    assert httpx.get(f"{url}/health", timeout=10).status_code in (200, 503)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    stop(proc, signal.SIGCONT)  # already exited: only closes the pipes
    assert out == ""
    assert "gateway_stopping" in err
    assert _json_lines(err) == []
