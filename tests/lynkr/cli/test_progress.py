"""The progress bar of long commands: drawn on a terminal, absent when piped."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from eventstore import SqliteRecorder
from lynkr.cli._progress import ProgressBar
from tests.eventstore.projections.sample_log import write_sample_log

LONG_COMMANDS = [["projections", "rebuild"], ["verify"]]


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_bar_redraws_one_line_on_a_terminal() -> None:
    """On a TTY the bar is `\\r`-redrawn and its line is ended when it closes."""
    stream = Terminal()
    with ProgressBar("verify", 10, stream=stream) as bar:
        bar.update(3)
        bar.update(10)
    text = stream.getvalue()
    assert text.startswith("\rverify [")
    assert text.endswith("] 10/10\n")


def test_bar_writes_nothing_when_not_a_terminal() -> None:
    """Piped or redirected, the bar is silent."""
    stream = io.StringIO()
    with ProgressBar("verify", 10, stream=stream) as bar:
        bar.update(10)
    assert stream.getvalue() == ""


@pytest.fixture
def sample_env(lynkr_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The CLI's environment over a data directory holding the sample log."""
    (tmp_path / "data").mkdir()
    recorder = SqliteRecorder(tmp_path / "data" / "lynkr.db")
    write_sample_log(recorder)
    recorder.close()
    return lynkr_env


@pytest.mark.parametrize("argv", LONG_COMMANDS, ids=" ".join)
def test_piped_output_has_no_progress_bar(argv: list[str], sample_env: dict[str, str],
                                          tmp_path: Path) -> None:
    """With stdout and stderr piped, neither holds a bar: the output stays parseable."""
    done = subprocess.run([sys.executable, "-m", "lynkr", *argv], cwd=tmp_path, env=sample_env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stdout + done.stderr
    assert "[#" not in done.stdout + done.stderr


@pytest.mark.parametrize("argv", LONG_COMMANDS, ids=" ".join)
def test_terminal_stderr_shows_the_bar(argv: list[str], sample_env: dict[str, str],
                                       tmp_path: Path) -> None:
    """With stderr on a terminal the bar is drawn there, and stdout still has none."""
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "lynkr", *argv], cwd=tmp_path,
                              env=sample_env, stdout=subprocess.PIPE, stderr=terminal,
                              text=True, timeout=60, check=False)
        drawn = os.read(controller, 65536).decode()
    finally:
        os.close(terminal)
        os.close(controller)
    assert done.returncode == 0
    assert f"\r{argv[-1]} [" in drawn
    assert "\r" not in done.stdout
