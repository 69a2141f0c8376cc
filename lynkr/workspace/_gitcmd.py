"""Running `git` for the toolbelt, and the exact identity of a working tree.

git runs as a trio subprocess in the workspace with no prompt (`GIT_TERMINAL_PROMPT=0`,
batch-mode ssh), no pager, no fsmonitor hook and a time limit. `worktree_tree` is
the git tree id of everything a commit of the whole working tree would hold (the
index plus every tracked and untracked, not ignored, file), computed in a scratch
index so the real one is untouched; it is how a test run names the tree it saw.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from functools import partial
from pathlib import Path

import trio

from lynkr.config import SECRET_NAMES
from lynkr.errors import ToolError, ToolInputError
from lynkr.tools import ToolContext
from lynkr.workspace._proc import ProcessOutcome, run_command

__all__ = ["git", "git_env", "git_ok", "index_tree", "valid_ref", "worktree_tree"]

_GIT_MAX_OUTPUT = 50_000_000  # parsed output (status, numstat) must arrive whole
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/@{}~^+-]*$")


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment git runs with: no prompts, no pager, stable messages, no Lynkr secrets.

    Other credentials stay: git's own credential helpers may need them for a push.
    """
    env = {k: v for k, v in os.environ.items() if k not in SECRET_NAMES}
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "PAGER": "cat",
                "GIT_SSH_COMMAND": "ssh -o BatchMode=yes", "LC_ALL": "C",
                "GIT_OPTIONAL_LOCKS": "0"})
    env.update(extra or {})
    return env


def valid_ref(value: str, what: str) -> str:
    """`value` if it is a plain ref/remote name (never an option such as ``--force``).

    Raises:
        ToolInputError: it is empty, starts with ``-`` or holds odd characters.
    """
    if not _REF.match(value):
        raise ToolInputError(f"{what} {value!r} is not a valid name")
    return value


async def git(ctx: ToolContext, *args: str, env: Mapping[str, str] | None = None,
              root: Path | None = None) -> ProcessOutcome:
    """Run ``git <args>`` in the workspace (or `root`).

    Raises:
        ToolError: git cannot be started.
    """
    argv = ["git", "--no-pager", "-c", "core.fsmonitor=false", "-c", "color.ui=false",
            "-c", "core.quotepath=false", *args]
    outcome = await run_command(argv, cwd=root or ctx.workspace_root,
                                timeout_s=ctx.settings.git_timeout_ms / 1000,
                                env=git_env(env), merge_stderr=False,
                                max_output=_GIT_MAX_OUTPUT)
    if outcome.error:
        raise ToolError(outcome.error)
    if outcome.timed_out:
        raise ToolError(f"git {args[0]} timed out after {ctx.settings.git_timeout_ms} ms "
                        "(POLICY_GIT_TIMEOUT_MS)")
    return outcome


async def git_ok(ctx: ToolContext, *args: str, env: Mapping[str, str] | None = None) -> str:
    """The stdout of ``git <args>``.

    Raises:
        ToolError: git failed; the message carries its stderr.
    """
    outcome = await git(ctx, *args, env=env)
    if outcome.exit_code != 0:
        detail = (outcome.stderr or outcome.output).strip().splitlines()[-5:]
        raise ToolError(f"git {args[0]} failed: " + " | ".join(detail))
    return outcome.output


async def index_tree(ctx: ToolContext) -> str:
    """The tree id of the index: exactly what `git commit` would record."""
    return (await git_ok(ctx, "write-tree")).strip()


async def worktree_tree(ctx: ToolContext) -> str:
    """The tree id of the whole working tree (see module docstring).

    Raises:
        ToolError: the workspace is not a git repository.
    """
    real_index = Path((await git_ok(ctx, "rev-parse", "--path-format=absolute",
                                    "--git-path", "index")).strip())
    scratch = Path(await trio.to_thread.run_sync(partial(tempfile.mkdtemp,
                                                         prefix="lynkr-index-")))
    try:
        index = scratch / "index"
        await trio.to_thread.run_sync(_copy_index, real_index, index)
        env = {"GIT_INDEX_FILE": str(index)}
        await git_ok(ctx, "add", "-A", env=env)
        return (await git_ok(ctx, "write-tree", env=env)).strip()
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(partial(shutil.rmtree, scratch, ignore_errors=True))


def _copy_index(real: Path, scratch: Path) -> None:
    if real.is_file():
        shutil.copyfile(real, scratch)  # keeps the stat cache: `add -A` stays fast
