"""The workspace toolbelt: files, git, review, tests, tasks and web tools.

`workspace_tools()` returns every tool as `ToolSpec`s, ready for
`ToolRegistry.register_all`. Each tool is confined and policed through
`lynkr.tools`: paths stay in WORKSPACE_ROOT, pushes and commits obey the git
policy, fetches refuse private addresses.
"""

from __future__ import annotations

from lynkr.tools import ToolSpec
from lynkr.workspace._fs import fs_tools
from lynkr.workspace._git import git_tools
from lynkr.workspace._review import review_tools
from lynkr.workspace._tasks import load_tasks, task_tools, tasks_stream
from lynkr.workspace._testrun import harness_tools
from lynkr.workspace._web import Resolver, resolve_host, web_tools

__all__ = ["Resolver", "load_tasks", "resolve_host", "tasks_stream", "workspace_tools"]


def workspace_tools(*, resolve: Resolver | None = None) -> list[ToolSpec]:
    """Every workspace tool; `resolve` replaces DNS for `web_fetch` (tests)."""
    return [*fs_tools(), *git_tools(), *harness_tools(), *review_tools(),
            *task_tools(), *web_tools(resolve)]
