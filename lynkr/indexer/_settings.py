"""`IndexerSettings`: the indexer's section of the configuration."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal, cast

from lynkr._env import Env

__all__ = ["CLAUDE_MD_MODES", "DEFAULT_COVERAGE_FILES", "ClaudeMdMode", "IndexerSettings",
           "available_cpus"]

ClaudeMdMode = Literal["update", "create", "off"]
CLAUDE_MD_MODES: tuple[ClaudeMdMode, ...] = ("update", "create", "off")
"""INDEXER_CLAUDE_MD: `update` refreshes the marked section of an existing CLAUDE.md and
never creates one (the default: the file is the user's); `create` also creates it when
missing; `off` never touches it."""

DEFAULT_COVERAGE_FILES = (
    "coverage/coverage-summary.json",
    "coverage.xml",
    "lcov.info",
    "coverage/lcov.info",
)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexerSettings:
    """Limits and switches of the repository catalogue."""

    max_file_bytes: int = 1_000_000  # INDEXER_MAX_FILE_BYTES: larger files are skipped
    ignore_globs: tuple[str, ...] = ()  # INDEXER_IGNORE: extra comma-separated globs
    # INDEXER_WORKERS: parsers for big rebuilds, this process included (default: one per
    # available CPU; 1 = in-process only; 2 = this process and one spawned worker)
    workers: int = field(default_factory=available_cpus)
    claude_md: ClaudeMdMode = "update"  # INDEXER_CLAUDE_MD (see CLAUDE_MD_MODES)
    verify_content: bool = False  # INDEXER_VERIFY_CONTENT: hash even files whose size and
    # mtime are unchanged (off: trust them, as git does; on: ~3x slower no-change rebuilds)
    coverage_files: tuple[str, ...] = DEFAULT_COVERAGE_FILES  # WORKSPACE_TEST_COVERAGE_FILES

    @classmethod
    def from_env(cls, env: Env) -> IndexerSettings:
        """Read INDEXER_MAX_FILE_BYTES, INDEXER_IGNORE, INDEXER_WORKERS, INDEXER_CLAUDE_MD,
        INDEXER_VERIFY_CONTENT and WORKSPACE_TEST_COVERAGE_FILES; problems go on `env`."""
        coverage = tuple(env.list("WORKSPACE_TEST_COVERAGE_FILES")) or DEFAULT_COVERAGE_FILES
        return cls(
            max_file_bytes=env.int("INDEXER_MAX_FILE_BYTES", 1_000_000, minimum=1),
            ignore_globs=tuple(env.list("INDEXER_IGNORE")),
            workers=env.int("INDEXER_WORKERS", available_cpus(), minimum=1),
            claude_md=cast(ClaudeMdMode, env.choice("INDEXER_CLAUDE_MD", "update",
                                                    CLAUDE_MD_MODES)),
            verify_content=env.bool("INDEXER_VERIFY_CONTENT", False),
            coverage_files=coverage,
        )
