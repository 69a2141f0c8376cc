"""Session names on the command line: one CLI session per workspace, `X` or `session-X`,
and `tool call --raw`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from lynkr.cli._session import cli_session_id, raw_text, session_arg
from lynkr.tools import workspace_id_of

from .conftest import RunLynkr


def _sessions(run_lynkr: RunLynkr, **env: str) -> list[str]:
    done = run_lynkr("sessions", "--json", **env)
    assert done.returncode == 0, done.stderr
    return [row["session_id"] for row in json.loads(done.stdout)]


def test_tool_calls_without_a_session_share_the_workspace_cli_session(
        tmp_path: Path, run_lynkr: RunLynkr) -> None:
    """Three calls, one session `cli-<workspace id>`; another workspace gets its own."""
    for _ in range(3):
        done = run_lynkr("tool", "call", "fs_list", "{}")
        assert done.returncode == 0, done.stderr
    expected = cli_session_id(workspace_id_of((tmp_path / "ws").resolve()))
    assert f"session: {expected}" in done.stderr
    assert _sessions(run_lynkr) == [expected]
    other = tmp_path / "other"
    other.mkdir()
    assert run_lynkr("tool", "call", "fs_list", "{}", WORKSPACE_ROOT=str(other)).returncode == 0
    assert sorted(_sessions(run_lynkr)) == sorted(
        [expected, cli_session_id(workspace_id_of(other.resolve()))])


def test_raw_prints_a_file_as_its_text(tmp_path: Path, run_lynkr: RunLynkr) -> None:
    """`tool call fs_read --raw` prints the file's lines, not a JSON string of them."""
    text = 'line one\n  "quoted" two\n'
    (tmp_path / "ws" / "notes.txt").write_text(text)
    done = run_lynkr("tool", "call", "fs_read", '{"path": "notes.txt"}', "--raw")
    assert done.returncode == 0, done.stderr
    assert done.stdout == text


def test_a_session_is_accepted_as_x_or_session_x(tmp_path: Path, run_lynkr: RunLynkr) -> None:
    """tool call --session, transcript, replay and audit --session take either spelling."""
    assert run_lynkr("tool", "call", "fs_list", "{}", "--session", "session-abc").returncode == 0
    assert _sessions(run_lynkr) == ["abc"]
    for command in (["transcript"], ["replay"]):
        short = run_lynkr(*command, "abc", "--json")
        long = run_lynkr(*command, "session-abc", "--json")
        assert short.returncode == long.returncode == 0, long.stderr
        assert short.stdout == long.stdout
    audit = run_lynkr("audit", "--session", "session-abc", "--json")
    assert [row["session_id"] for row in json.loads(audit.stdout)] == ["abc"]


def test_session_arg_strips_the_stream_prefix_only() -> None:
    """`session-X` → `X`; `X` stays; the bare prefix names nothing."""
    assert session_arg("session-abc") == "abc"
    assert session_arg("cli-1234") == "cli-1234"
    with pytest.raises(argparse.ArgumentTypeError):
        session_arg("session-")


@pytest.mark.parametrize(("content", "text"), [
    ("plain", "plain"),
    ({"path": "a", "content": "x\ny\n", "truncated": False}, "x\ny\n"),
    ({"diff": "--- a\n+++ b\n", "truncated": False}, "--- a\n+++ b\n"),
    ({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}, "ab"),
    ({"entries": [1, 2]}, '{\n  "entries": [\n    1,\n    2\n  ]\n}'),
])
def test_raw_text_takes_the_text_field_or_falls_back_to_json(content: object, text: str) -> None:
    """A string, a text field or MCP text blocks as text; anything else as JSON."""
    assert raw_text(content) == text
