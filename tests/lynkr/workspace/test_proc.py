"""Subprocesses: output capture, exit codes, timeouts killing the process group."""

from __future__ import annotations

from pathlib import Path

import trio

from lynkr.workspace._proc import child_env, run_command


async def test_output_and_exit_code_are_captured(tmp_path):
    """stdout and stderr are captured together by default, with the exit code."""
    outcome = await run_command(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"],
                                cwd=tmp_path, timeout_s=10)
    assert outcome.exit_code == 3
    assert not outcome.ok
    assert "out" in outcome.output
    assert "err" in outcome.output


async def test_stderr_can_be_kept_apart(tmp_path):
    """With merge_stderr=False, stderr is its own field."""
    outcome = await run_command(["/bin/sh", "-c", "echo out; echo err >&2"], cwd=tmp_path,
                                timeout_s=10, merge_stderr=False)
    assert outcome.output == "out\n"
    assert outcome.stderr == "err\n"


async def test_missing_program_is_an_outcome_not_an_exception(tmp_path):
    """A command that cannot start reports why."""
    outcome = await run_command(["/nonexistent/prog"], cwd=tmp_path, timeout_s=1)
    assert outcome.error is not None
    assert "cannot start" in outcome.error


async def test_output_keeps_the_tail_when_over_the_limit(tmp_path):
    """Only the last max_output bytes are kept."""
    outcome = await run_command(["/bin/sh", "-c", "seq 1 20000"], cwd=tmp_path, timeout_s=10,
                                max_output=100)
    assert len(outcome.output) <= 100
    assert outcome.output.endswith("20000\n")


async def test_background_child_does_not_hold_the_run_open(tmp_path):
    """A leftover background child is killed when the main process exits: the run ends
    with it, not at the timeout, and the child is gone."""
    outcome = await run_command(["/bin/sh", "-c", "sleep 30 & echo $!"], cwd=tmp_path,
                                timeout_s=10)
    assert outcome.ok  # not timed out: the child's end of the pipe did not hold the run
    assert not _running(int(outcome.output))


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except FileNotFoundError:
        return False


async def test_timed_out_group_is_gone_when_the_run_returns(tmp_path):
    """No grandchild of a timed-out command still runs once `run_command` has returned.

    SIGKILL reaches the group asynchronously; without waiting for the group, about
    one run in three here returned while the grandchild was still running.
    """
    for _ in range(20):
        (tmp_path / "child.pid").unlink(missing_ok=True)
        outcome = await run_command(
            ["/bin/sh", "-c", "sleep 30 & echo $! > child.pid; sleep 30"], cwd=tmp_path,
            timeout_s=0.05)
        assert outcome.timed_out
        if (tmp_path / "child.pid").exists():
            assert not _running(int((tmp_path / "child.pid").read_text()))


def test_child_env_drops_secrets(monkeypatch):
    """Lynkr's secret names and secret-looking variables are removed."""
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    monkeypatch.setenv("GITHUB_TOKEN", "y")
    monkeypatch.setenv("PLAIN", "z")
    env = child_env()
    assert "OPENAI_API_KEY" not in env
    assert "GITHUB_TOKEN" not in env
    assert env["PLAIN"] == "z"


async def test_cancelled_run_kills_the_group_before_cancelling_on(tmp_path):
    """Cancelling the task kills the command's whole group; the Cancelled propagates only
    once no member runs."""
    pid_file = tmp_path / "child.pid"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_command(
            ["/bin/sh", "-c", "sleep 30 & echo $! > child.pid; wait"], cwd=tmp_path,
            timeout_s=60))
        with trio.fail_after(10):
            while not pid_file.exists() or not pid_file.read_text().strip():  # noqa: ASYNC110 - a file, no event
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert not _running(int(pid_file.read_text()))
