"""Fixtures for the workspace tools: a real SQLite log (and the event store appending to
it), a workspace directory, a runner."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from actors import EventStore
from eventstore import SqliteRecorder
from eventstore.events.session import PolicyDecided, ToolCompleted
from lynkr.tools import PolicySettings, ToolRegistry, ToolRunner, ToolSpec
from lynkr.workspace import workspace_tools


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteRecorder]:
    recorder = SqliteRecorder(tmp_path / "lynkr.db")
    yield recorder
    recorder.close()


@pytest.fixture
def event_store(store: SqliteRecorder) -> Iterator[EventStore]:
    """The append path over `store` (stopping it closes `store`)."""
    started = EventStore.start(store)
    yield started
    started.stop()


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root.resolve()


RunnerFactory = Callable[..., ToolRunner]


@pytest.fixture
def make_runner(store: SqliteRecorder, event_store: EventStore, ws: Path) -> RunnerFactory:
    def build(*, extra: list[ToolSpec] | None = None, resolve: Any = None,
              **overrides: Any) -> ToolRunner:
        settings = PolicySettings(workspace_root=ws, **overrides)
        registry = ToolRegistry([*workspace_tools(resolve=resolve), *(extra or [])])
        return ToolRunner(registry, settings, store=event_store, recorder=store)

    return build


@pytest.fixture
def session() -> str:
    return uuid.uuid4().hex[:8]


def decisions(store: SqliteRecorder, session_id: str) -> list[PolicyDecided]:
    """Every PolicyDecided of a session, in order."""
    return [r.event for r in store.read_stream(f"session-{session_id}")
            if isinstance(r.event, PolicyDecided)]


def completions(store: SqliteRecorder, session_id: str) -> list[ToolCompleted]:
    """Every ToolCompleted of a session, in order."""
    return [r.event for r in store.read_stream(f"session-{session_id}")
            if isinstance(r.event, ToolCompleted)]


def sh_git(root: Path, *args: str) -> str:
    """Run git synchronously for test setup."""
    import subprocess

    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.invalid",
                       "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.invalid",
                       "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def repo(ws: Path, git_identity: None) -> Path:
    """`ws` as a git repository on branch main with one commit."""
    sh_git(ws, "init", "-q", "-b", "main")
    (ws / "app.py").write_text("def add(a, b):\n    return a + b\n")
    (ws / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n")
    sh_git(ws, "add", "-A")
    sh_git(ws, "commit", "-q", "-m", "feat: first")
    return ws
