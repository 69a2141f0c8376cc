"""`PolicySettings`: the toolbelt's settings section, with the original Lynkr names.

Read from the environment, `.env`, or the `[env]` table of `lynkr.toml` (see
`lynkr._env.Env`). `config_hash` fingerprints the settings in force; every
`PolicyDecided` event carries it, so an audit can tell which configuration decided.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from lynkr._env import Env

__all__ = ["PolicySettings", "workspace_id_of"]


def workspace_id_of(root: Path) -> str:
    """A short, stable id for a resolved workspace root (names its streams)."""
    return hashlib.sha256(str(root).encode()).hexdigest()[:12]


def _ca_bundle(env: Env) -> Path | None:
    if env.str("WEB_FETCH_CA_BUNDLE") is None:
        return None
    path = env.path("WEB_FETCH_CA_BUNDLE", ".")
    if not path.is_file():
        env.problems.append(f"WEB_FETCH_CA_BUNDLE: {path} is not a file")
        return None
    return path


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicySettings:
    """Every limit and permission the toolbelt obeys (names of the settings in comments)."""

    workspace_root: Path  # WORKSPACE_ROOT (resolved)
    max_steps: int = 8  # POLICY_MAX_STEPS: tool calls allowed per turn
    result_max_bytes: int = 204_800  # TOOL_RESULT_MAX_BYTES: what the model gets of a result
    git_allow_push: bool = False  # POLICY_GIT_ALLOW_PUSH
    git_require_tests: bool = False  # POLICY_GIT_REQUIRE_TESTS
    git_test_command: str | None = None  # POLICY_GIT_TEST_COMMAND
    git_timeout_ms: int = 60_000  # POLICY_GIT_TIMEOUT_MS
    web_allowed_hosts: tuple[str, ...] = ()  # WEB_SEARCH_ALLOWED_HOSTS ("*" = any public host)
    web_search_endpoint: str | None = None  # WEB_SEARCH_ENDPOINT (SearxNG base URL)
    web_fetch_allow_private_hosts: tuple[str, ...] = ()  # WEB_FETCH_ALLOW_PRIVATE_HOSTS
    web_fetch_max_bytes: int = 2_000_000  # WEB_FETCH_MAX_BYTES
    web_fetch_timeout_ms: int = 10_000  # WEB_FETCH_TIMEOUT_MS
    web_fetch_max_redirects: int = 5  # WEB_FETCH_MAX_REDIRECTS
    web_fetch_ca_bundle: Path | None = None  # WEB_FETCH_CA_BUNDLE (PEM; default: system CAs)
    test_command: str | None = None  # WORKSPACE_TEST_COMMAND
    test_timeout_ms: int = 300_000  # WORKSPACE_TEST_TIMEOUT_MS
    test_coverage_files: tuple[str, ...] = ()  # WORKSPACE_TEST_COVERAGE_FILES
    fs_max_read_bytes: int = 1_000_000  # WORKSPACE_FS_MAX_READ_BYTES
    fs_max_write_bytes: int = 1_000_000  # WORKSPACE_FS_MAX_WRITE_BYTES
    fs_search_max_results: int = 200  # WORKSPACE_FS_SEARCH_MAX_RESULTS

    @classmethod
    def from_env(cls, env: Env) -> PolicySettings:
        """Read the settings named in the field comments; problems go to `env.problems`."""
        return cls(
            workspace_root=env.path("WORKSPACE_ROOT", env.cwd).resolve(),
            max_steps=env.int("POLICY_MAX_STEPS", 8, minimum=1),
            result_max_bytes=env.int("TOOL_RESULT_MAX_BYTES", 204_800, minimum=1024),
            git_allow_push=env.bool("POLICY_GIT_ALLOW_PUSH", False),
            git_require_tests=env.bool("POLICY_GIT_REQUIRE_TESTS", False),
            git_test_command=env.str("POLICY_GIT_TEST_COMMAND"),
            git_timeout_ms=env.int("POLICY_GIT_TIMEOUT_MS", 60_000, minimum=100),
            web_allowed_hosts=tuple(h.lower() for h in env.list("WEB_SEARCH_ALLOWED_HOSTS")),
            web_search_endpoint=env.url("WEB_SEARCH_ENDPOINT"),
            web_fetch_allow_private_hosts=tuple(
                h.lower() for h in env.list("WEB_FETCH_ALLOW_PRIVATE_HOSTS")),
            web_fetch_max_bytes=env.int("WEB_FETCH_MAX_BYTES", 2_000_000, minimum=1),
            web_fetch_timeout_ms=env.int("WEB_FETCH_TIMEOUT_MS", 10_000, minimum=1),
            web_fetch_max_redirects=env.int("WEB_FETCH_MAX_REDIRECTS", 5, minimum=0),
            web_fetch_ca_bundle=_ca_bundle(env),
            test_command=env.str("WORKSPACE_TEST_COMMAND"),
            test_timeout_ms=env.int("WORKSPACE_TEST_TIMEOUT_MS", 300_000, minimum=1),
            test_coverage_files=tuple(env.list("WORKSPACE_TEST_COVERAGE_FILES")),
            fs_max_read_bytes=env.int("WORKSPACE_FS_MAX_READ_BYTES", 1_000_000, minimum=1),
            fs_max_write_bytes=env.int("WORKSPACE_FS_MAX_WRITE_BYTES", 1_000_000, minimum=1),
            fs_search_max_results=env.int("WORKSPACE_FS_SEARCH_MAX_RESULTS", 200, minimum=1),
        )

    @classmethod
    def defaults(cls) -> PolicySettings:
        """Every default, with the current directory as the workspace."""
        return cls(workspace_root=Path.cwd().resolve())

    @property
    def workspace_id(self) -> str:
        """Short stable id of `workspace_root`."""
        return workspace_id_of(self.workspace_root)

    @property
    def config_hash(self) -> str:
        """SHA-256 hex of the settings, canonically serialised."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        text = json.dumps(values, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()
