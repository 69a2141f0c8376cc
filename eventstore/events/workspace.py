"""Events of `workspace-<id>` streams: facts about one workspace's tree, such as test runs.

A test run records the exact working tree it ran on (`tree`: the git tree id of the
index plus every tracked and untracked, not ignored, file; or a content hash outside
git), so the commit gate can demand a passing run for exactly the tree being committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventstore._registry import EVENTS, Event

__all__ = ["TestRunCompleted"]


@EVENTS.register
@dataclass(frozen=True, slots=True, kw_only=True)
class TestRunCompleted(Event):
    """A test command ran to an end: passed, failed, timed out or could not start."""

    __test__ = False  # a pytest collection hint: this is an event, not a test class

    run_id: str
    command: str
    tree: str | None  # working-tree identity the run saw; None when it cannot be known
    outcome: str  # "passed" | "failed" | "timed_out" | "error"
    exit_code: int | None
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    framework: str | None = None  # "pytest", "jest", "vitest", "go", "cargo", or None
    duration_ms: float = 0.0
    output_tail: str = ""
    coverage: tuple[dict[str, Any], ...] = ()  # one {path, status, percent} per file
    session_id: str | None = None
