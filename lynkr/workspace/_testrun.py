"""Test tools: `workspace_test_run`, `workspace_test_history`, `workspace_test_summary`.

The command comes from settings (WORKSPACE_TEST_COMMAND, else POLICY_GIT_TEST_COMMAND)
or is detected (pytest, npm test, go test, cargo test) — never from the model. Each
run is recorded as `TestRunCompleted` in the `workspace-<id>` stream with the exact
tree it ran on; history and summary are projections of those events. A run over
WORKSPACE_TEST_TIMEOUT_MS has its whole process group killed and is recorded as
timed out.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import trio

from eventstore import ANY_VERSION
from eventstore.events.workspace import TestRunCompleted
from eventstore.projections.test_runs import fold_test_runs, summarize_test_runs
from lynkr.errors import ToolError
from lynkr.tools import Decision, ToolContext, ToolSpec
from lynkr.workspace._gitcmd import worktree_tree
from lynkr.workspace._paths import SymlinkRaceError, decide_path, open_confined
from lynkr.workspace._proc import ProcessOutcome, run_command
from lynkr.workspace._testparse import parse_counts, parse_coverage

__all__ = ["detect_test_command", "find_passing_run", "harness_tools", "read_coverage",
           "tree_identity", "workspace_stream"]

_COVERAGE_MAX = 20_000_000
_HASH_MAX_FILES = 20_000
_TAIL = 4000


def workspace_stream(workspace_id: str) -> str:
    """The stream of a workspace's facts (test runs)."""
    return f"workspace-{workspace_id}"


def detect_test_command(root: Path) -> str | None:
    """The usual test command for the project at `root`, or None."""
    python = "python" if shutil.which("python") else "python3"
    if any((root / n).exists() for n in ("pytest.ini", "conftest.py", "tox.ini")) or (
            (root / "pyproject.toml").is_file()
            and "pytest" in (root / "pyproject.toml").read_text(errors="replace")):
        return f"{python} -m pytest -q"
    package = root / "package.json"
    if package.is_file():
        try:
            scripts = json.loads(package.read_text()).get("scripts", {})
        except (ValueError, AttributeError):
            scripts = {}
        if isinstance(scripts, dict) and "test" in scripts:
            return "npm test --silent"
    if (root / "go.mod").is_file():
        return "go test -v ./..."
    if (root / "Cargo.toml").is_file():
        return "cargo test"
    if (root / "tests").is_dir() or (root / "test").is_dir():
        return f"{python} -m pytest -q"
    return None


def _command(ctx: ToolContext, for_commit: bool = False) -> tuple[str | None, str]:
    settings = ctx.settings
    if for_commit and settings.git_test_command:
        return settings.git_test_command, "POLICY_GIT_TEST_COMMAND"
    if settings.test_command:
        return settings.test_command, "WORKSPACE_TEST_COMMAND"
    if settings.git_test_command:
        return settings.git_test_command, "POLICY_GIT_TEST_COMMAND"
    return detect_test_command(ctx.workspace_root), "detected"


def _read_one(root: Path, raw: str) -> dict[str, Any]:
    decision, path = decide_path(root, raw)
    if not decision.allowed:
        return {"path": raw, "status": "refused", "reason": decision.reason}
    try:
        fd = open_confined(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return {"path": raw, "status": "missing"}
    except (OSError, SymlinkRaceError) as exc:
        return {"path": raw, "status": "unreadable", "reason": str(exc)}
    with os.fdopen(fd, "rb") as f:
        text = f.read(_COVERAGE_MAX).decode("utf-8", "replace")
    parsed = parse_coverage(raw, text)
    if parsed is None:
        return {"path": raw, "status": "unrecognized"}
    return {"path": raw, "status": "ok", "format": parsed[0], "percent": round(parsed[1], 2)}


def read_coverage(root: Path, files: tuple[str, ...]) -> list[dict[str, Any]]:
    """One entry per WORKSPACE_TEST_COVERAGE_FILES file; a missing file is reported."""
    return [_read_one(root, raw) for raw in files]


def _content_hash(root: Path) -> str | None:
    digest = hashlib.sha256()
    count = 0
    for top, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in (".git", "node_modules", ".venv"))
        for name in sorted(files):
            count += 1
            if count > _HASH_MAX_FILES:
                return None
            full = Path(top, name)
            if full.is_symlink() or not full.is_file():
                continue
            digest.update(str(full.relative_to(root)).encode() + b"\0")
            digest.update(hashlib.sha256(full.read_bytes()).digest())
    return "sha256:" + digest.hexdigest()


async def tree_identity(ctx: ToolContext) -> str | None:
    """The working tree's git tree id, or a content hash outside git."""
    try:
        return await worktree_tree(ctx)
    except ToolError:
        return await trio.to_thread.run_sync(_content_hash, ctx.workspace_root)


def _outcome(proc: ProcessOutcome) -> str:
    if proc.timed_out:
        return "timed_out"
    if proc.error:
        return "error"
    return "passed" if proc.exit_code == 0 else "failed"


async def _record(ctx: ToolContext, event: TestRunCompleted) -> None:
    stream = workspace_stream(ctx.workspace_id)
    await ctx.store.append(stream, ANY_VERSION, [event])


async def _run_check(ctx: ToolContext, inputs: Mapping[str, Any]) -> Decision:
    command, source = _command(ctx, bool(inputs.get("for_commit")))
    if command is None:
        return Decision.deny("tests", "tests.command.known",
                             "no test command is configured and none was detected",
                             setting="WORKSPACE_TEST_COMMAND")
    return Decision.allow("tests", "tests.command.configured",
                          f"the test command comes from {source}", command=command,
                          source=source)


async def _run(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
    command, _ = _command(ctx, bool(inputs.get("for_commit")))
    assert command is not None
    settings = ctx.settings
    tree = await tree_identity(ctx)
    proc = await run_command(["/bin/sh", "-c", command], cwd=ctx.workspace_root,
                             timeout_s=settings.test_timeout_ms / 1000)
    counts = parse_counts(proc.output)
    coverage = await trio.to_thread.run_sync(read_coverage, ctx.workspace_root,
                                             settings.test_coverage_files)
    event = TestRunCompleted(
        run_id=uuid.uuid4().hex[:12], command=command, tree=tree, outcome=_outcome(proc),
        exit_code=proc.exit_code, passed=counts.passed if counts else 0,
        failed=counts.failed if counts else 0, skipped=counts.skipped if counts else 0,
        framework=counts.framework if counts else None,
        duration_ms=round(proc.duration_ms, 1),
        output_tail=(proc.error or proc.output)[-_TAIL:], coverage=tuple(coverage),
        session_id=ctx.session_id)
    await _record(ctx, event)
    result: dict[str, Any] = {
        "run_id": event.run_id, "command": command, "tree": tree, "outcome": event.outcome,
        "exit_code": event.exit_code, "passed": event.passed, "failed": event.failed,
        "skipped": event.skipped, "framework": event.framework,
        "duration_ms": event.duration_ms, "coverage": coverage,
        "output_tail": event.output_tail}
    if proc.timed_out:
        result["note"] = (f"killed after WORKSPACE_TEST_TIMEOUT_MS="
                          f"{settings.test_timeout_ms}")
    return result


async def _history_runs(ctx: ToolContext) -> list[Any]:
    stream = workspace_stream(ctx.workspace_id)
    records = await trio.to_thread.run_sync(ctx.recorder.read_stream, stream)
    return list(fold_test_runs(records))


async def find_passing_run(
    ctx: ToolContext, tree: str, command: str | None
) -> tuple[TestRunCompleted | None, TestRunCompleted | None]:
    """(the latest passing run on `tree` [of `command`], the latest run on `tree` at all)."""
    runs = [r.event for r in await _history_runs(ctx)
            if r.event.tree == tree and (command is None or r.event.command == command)]
    passing = [e for e in runs if e.outcome == "passed"]
    return (passing[-1] if passing else None), (runs[-1] if runs else None)


async def _history(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
    runs = await _history_runs(ctx)
    limit = int(inputs.get("limit", 20))
    return {"runs": [r.as_dict() for r in runs[-limit:]][::-1], "total": len(runs)}


async def _summary(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
    summary = summarize_test_runs(await _history_runs(ctx))
    command, source = _command(ctx)
    summary["command"] = {"command": command, "source": source}
    summary["coverage"] = await trio.to_thread.run_sync(
        read_coverage, ctx.workspace_root, ctx.settings.test_coverage_files)
    return summary


def harness_tools() -> list[ToolSpec]:
    """The three test tools."""
    empty: dict[str, Any] = {"type": "object", "properties": {},
                             "additionalProperties": False}
    return [
        ToolSpec(name="workspace_test_run", policy="tests", handler=_run, check=_run_check,
                 read_only=False, effects=True,
                 input_schema={"type": "object", "additionalProperties": False,
                               "properties": {"for_commit": {"type": "boolean"}}},
                 description="Run the project's tests (configured or detected command; "
                             "for_commit=true runs POLICY_GIT_TEST_COMMAND, the run that "
                             "gates commits); counts, coverage and the tree tested are "
                             "recorded."),
        ToolSpec(name="workspace_test_history", policy="tests", handler=_history, effects=False,
                 description="Recorded test runs, newest first.",
                 input_schema={"type": "object", "additionalProperties": False,
                               "properties": {"limit": {"type": "integer", "minimum": 1,
                                                        "maximum": 500}}}),
        ToolSpec(name="workspace_test_summary", policy="tests", handler=_summary, effects=False,
                 description="Pass rate, last runs, the test command and coverage files.",
                 input_schema=empty),
    ]

