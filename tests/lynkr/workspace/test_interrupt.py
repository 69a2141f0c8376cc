"""A workspace tool whose task is cancelled: its process group dies, the call is interrupted."""

from __future__ import annotations

from pathlib import Path

import trio

from eventstore.events.session import ToolCallInterrupted, ToolCallStarted, ToolCompleted
from eventstore.events.workspace import TestRunCompleted


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except FileNotFoundError:
        return False


async def test_cancelled_test_run_kills_its_group_and_is_interrupted(make_runner, store, ws,
                                                                    session):
    """Cancelling a running `workspace_test_run` kills the command and its children and
    records ToolCallInterrupted (effects possible) instead of a result or a test run."""
    runner = make_runner(test_command="sleep 30 & echo $! > child.pid; wait")
    pid_file = ws / "child.pid"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: runner.call("workspace_test_run", {}, session_id=session,
                                               tool_call_id="toolu_t",
                                               cancel_reason="client_disconnected"))
        with trio.fail_after(10):
            while not pid_file.exists() or not pid_file.read_text().strip():  # noqa: ASYNC110 - a file, no event
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert not _running(int(pid_file.read_text()))
    recorded = [r.event for r in store.read_stream(f"session-{session}")]
    assert [type(e).__name__ for e in recorded[-2:]] == ["ToolCallStarted",
                                                         "ToolCallInterrupted"]
    started, interrupted = recorded[-2:]
    assert isinstance(started, ToolCallStarted)
    assert started.effects
    assert isinstance(interrupted, ToolCallInterrupted)
    assert (interrupted.reason, interrupted.effects_possible, interrupted.tool_call_id) == (
        "client_disconnected", True, "toolu_t")
    assert not [e for e in recorded if isinstance(e, ToolCompleted)]
    runs = [r for s in store.list_streams("workspace-") for r in store.read_stream(s.stream_id)
            if isinstance(r.event, TestRunCompleted)]
    assert runs == []


async def test_every_toolbelt_spec_declares_its_effects(make_runner):
    """Tools that change files, git or run commands say so; readers and tasks do not."""
    runner = make_runner()
    effects = {s.name for s in runner.registry.specs() if s.effects}
    assert effects == {"fs_write", "workspace_git_stage", "workspace_git_commit",
                       "workspace_git_push", "workspace_git_pull", "workspace_test_run"}
