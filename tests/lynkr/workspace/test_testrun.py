"""Test tools: runs recorded with their tree, timeouts, history, summary and coverage."""

from __future__ import annotations

import json
from pathlib import Path

from eventstore.events.workspace import TestRunCompleted
from eventstore.projections.test_runs import fold_test_runs
from lynkr.workspace._testrun import detect_test_command, workspace_stream


def _runs(store, ws):
    from lynkr.tools import workspace_id_of

    return [r.event for r in store.read_stream(workspace_stream(workspace_id_of(ws)))
            if isinstance(r.event, TestRunCompleted)]


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


async def test_run_records_counts_and_outcome(make_runner, session, store, ws):
    """A pytest-like summary is parsed and the run is recorded as an event."""
    cmd = "echo '=== 2 failed, 3 passed, 1 skipped in 0.1s ==='; exit 1"
    result = await make_runner(test_command=cmd).call("workspace_test_run", {},
                                                      session_id=session)
    assert result.ok
    assert (result.content["outcome"], result.content["passed"], result.content["failed"],
            result.content["skipped"]) == ("failed", 3, 2, 1)
    [run] = _runs(store, ws)
    assert run.outcome == "failed"
    assert run.framework == "pytest"
    assert run.tree
    assert run.tree.startswith("sha256:")


async def test_hanging_command_is_killed_and_recorded_as_timed_out(make_runner, session,
                                                                   store, ws):
    """A command past WORKSPACE_TEST_TIMEOUT_MS dies with its whole process group."""
    cmd = "sleep 30 & echo $! > child.pid; sleep 30"
    result = await make_runner(test_command=cmd, test_timeout_ms=300).call(
        "workspace_test_run", {}, session_id=session)
    assert result.content["outcome"] == "timed_out"
    assert result.content["exit_code"] is None
    assert "WORKSPACE_TEST_TIMEOUT_MS" in result.content["note"]
    assert not _alive(int((ws / "child.pid").read_text()))
    assert _runs(store, ws)[0].outcome == "timed_out"


async def test_no_command_is_denied_naming_the_setting(make_runner, session, store):
    """Nothing configured and nothing detected: a deny that names WORKSPACE_TEST_COMMAND."""
    result = await make_runner().call("workspace_test_run", {}, session_id=session)
    assert not result.ok
    assert "WORKSPACE_TEST_COMMAND" in result.content["error"]


def test_detection_recognises_common_projects(tmp_path):
    """pytest, npm, go and cargo projects are recognised by their files."""
    cases = {"pytest.ini": "pytest", "go.mod": "go test", "Cargo.toml": "cargo test"}
    for name, expected in cases.items():
        root = tmp_path / name.replace(".", "_")
        root.mkdir()
        (root / name).write_text("")
        assert expected in (detect_test_command(root) or "")
    npm = tmp_path / "npm"
    npm.mkdir()
    (npm / "package.json").write_text(json.dumps({"scripts": {"test": "jest"}}))
    assert detect_test_command(npm) == "npm test --silent"
    assert detect_test_command(tmp_path / "npm" / "..") is None


async def test_summary_reports_present_and_missing_coverage(make_runner, session, ws):
    """Coverage files are read when present and reported as missing otherwise."""
    (ws / "coverage.json").write_text(json.dumps({"totals": {"percent_covered": 91.0}}))
    runner = make_runner(test_command="echo '1 passed in 0.1s'",
                         test_coverage_files=("coverage.json", "lcov.info", "../escape.json"))
    run = await runner.call("workspace_test_run", {}, session_id=session)
    assert run.content["coverage"][0] == {"path": "coverage.json", "status": "ok",
                                          "format": "coverage.py", "percent": 91.0}
    summary = await runner.call("workspace_test_summary", {}, session_id=session)
    assert summary.ok
    statuses = [c["status"] for c in summary.content["coverage"]]
    assert statuses == ["ok", "missing", "refused"]
    assert summary.content["runs"] == 1
    assert summary.content["pass_rate"] == 1.0
    assert summary.content["command"]["source"] == "WORKSPACE_TEST_COMMAND"


async def test_summary_without_coverage_files_or_runs(make_runner, session):
    """An empty history and no coverage setting is a valid, empty summary."""
    result = await make_runner(test_command="true").call("workspace_test_summary", {},
                                                         session_id=session)
    assert result.ok
    assert result.content["runs"] == 0
    assert result.content["last_run"] is None
    assert result.content["coverage"] == []


async def test_history_is_the_projection_of_recorded_runs(make_runner, session, store, ws):
    """History lists runs newest first, equal to a fold of the workspace stream."""
    runner = make_runner(test_command="true")
    for _ in range(3):
        await runner.call("workspace_test_run", {}, session_id=session)
    result = await runner.call("workspace_test_history", {"limit": 2}, session_id=session)
    assert result.content["total"] == 3
    assert len(result.content["runs"]) == 2
    from lynkr.tools import workspace_id_of

    folded = fold_test_runs(store.read_stream(workspace_stream(workspace_id_of(ws))))
    assert [r["run_id"] for r in result.content["runs"]] == [
        r.event.run_id for r in folded][::-1][:2]


async def test_test_command_does_not_see_secrets(make_runner, session, monkeypatch):
    """API keys and secret-looking variables are not passed to the test command."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-very-secret")
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-very-secret")
    monkeypatch.setenv("HARMLESS_SETTING", "visible")
    cmd = "echo key=$ANTHROPIC_API_KEY tok=$MY_SERVICE_TOKEN h=$HARMLESS_SETTING"
    result = await make_runner(test_command=cmd).call("workspace_test_run", {},
                                                      session_id=session)
    assert "very-secret" not in result.content["output_tail"]
    assert "h=visible" in result.content["output_tail"]


async def test_real_pytest_run_is_counted(make_runner, session, ws):
    """A real pytest run in the workspace is parsed into pass/fail/skip counts."""
    import shlex
    import sys

    (ws / "test_sample.py").write_text(
        "import pytest\n\ndef test_a():\n    pass\n\ndef test_b():\n    pass\n\n"
        "def test_c():\n    assert 1 == 2\n\n@pytest.mark.skip\ndef test_d():\n    pass\n")
    cmd = (f"PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 {shlex.quote(sys.executable)} -m pytest -q "
           "-p no:cacheprovider test_sample.py")
    result = await make_runner(test_command=cmd).call("workspace_test_run", {},
                                                      session_id=session)
    counts = {k: result.content[k] for k in ("outcome", "framework", "passed", "failed",
                                             "skipped")}
    assert counts == {"outcome": "failed", "framework": "pytest", "passed": 2, "failed": 1,
                      "skipped": 1}
