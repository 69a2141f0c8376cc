"""Git tools: status, diff, stage, commit, push and pull, under the git policy.

Push is denied unless POLICY_GIT_ALLOW_PUSH. With POLICY_GIT_REQUIRE_TESTS, a commit
is allowed only when a passing test run (of POLICY_GIT_TEST_COMMAND, when set) was
recorded for exactly the tree being committed; the check is repeated in the handler
right before `git commit`, so a tree changed in between is refused too. Pull is
fast-forward only; nothing is ever force-pushed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lynkr.errors import ToolInputError
from lynkr.tools import Decision, ToolContext, ToolSpec
from lynkr.workspace._fs import confined
from lynkr.workspace._gitcmd import git_ok, index_tree, valid_ref, worktree_tree
from lynkr.workspace._paths import decide_path
from lynkr.workspace._testrun import find_passing_run

__all__ = ["git_tools"]


def _parse_branch(line: str) -> dict[str, Any]:
    head, _, track = line.removeprefix("## ").partition(" [")
    branch, _, upstream = head.partition("...")
    info: dict[str, Any] = {"branch": branch.removeprefix("No commits yet on "),
                            "upstream": upstream or None, "ahead": 0, "behind": 0}
    for part in track.rstrip("]").split(", "):
        word, _, count = part.partition(" ")
        if word in ("ahead", "behind") and count.isdigit():
            info[word] = int(count)
    return info


def parse_status(raw: str) -> dict[str, Any]:
    """`git status --porcelain=v1 -b -z` output as branch info and file lists."""
    entries = raw.split("\x00")
    result: dict[str, Any] = {"staged": [], "unstaged": [], "untracked": []}
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if entry.startswith("## "):
            result.update(_parse_branch(entry))
        elif entry.startswith("?? "):
            result["untracked"].append(entry[3:])
        elif len(entry) > 3:
            x, y, path = entry[0], entry[1], entry[3:]
            if x in "RC":
                i += 1  # a rename's source path follows as its own entry
            if x not in " ?":
                result["staged"].append({"path": path, "status": x})
            if y not in " ?":
                result["unstaged"].append({"path": path, "status": y})
    result["clean"] = not (result["staged"] or result["unstaged"] or result["untracked"])
    return result


async def _status(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
    return parse_status(await git_ok(ctx, "status", "--porcelain=v1", "-b", "-z"))


async def _diff(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
    args = ["diff", "--no-ext-diff", "--no-textconv"]
    if inputs.get("staged"):
        args.append("--cached")
    if "base" in inputs:
        args.append(valid_ref(inputs["base"], "base"))
    args.append("--")
    if "path" in inputs:
        args.append((await confined(ctx, inputs["path"])).relative)
    text = await git_ok(ctx, *args)
    limit = int(inputs.get("max_bytes", 200_000))
    return {"diff": text[:limit], "truncated": len(text) > limit, "bytes": len(text)}


async def _stage_check(ctx: ToolContext, inputs: Mapping[str, Any]) -> Decision:
    for raw in inputs.get("paths", []):
        decision, _ = decide_path(ctx.workspace_root, raw, write=True)
        if not decision.allowed:
            return decision
    return Decision.allow("git", "git.stage.confined", "every path is inside the workspace",
                          paths=tuple(inputs.get("paths", ())), all=bool(inputs.get("all")))


async def _stage(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
    if inputs.get("all"):
        await git_ok(ctx, "add", "-A")
    elif inputs.get("paths"):
        paths = [(await confined(ctx, raw, write=True)).relative for raw in inputs["paths"]]
        await git_ok(ctx, "add", "--", *paths)
    else:
        raise ToolInputError("workspace_git_stage: give paths, or all=true")
    return await _status(ctx, {})


async def _commit_decision(ctx: ToolContext, tree: str) -> Decision:
    settings = ctx.settings
    if not settings.git_require_tests:
        return Decision.allow("git", "git.commit.allowed",
                              "POLICY_GIT_REQUIRE_TESTS is off", tree=tree)
    run, last = await find_passing_run(ctx, tree, settings.git_test_command)
    if run is not None:
        return Decision.allow("git", "git.commit.tests_passed",
                              f"test run {run.run_id} passed on exactly this tree",
                              tree=tree, run_id=run.run_id)
    seen = f"the last run on it {last.outcome}" if last else "no test run was recorded on it"
    return Decision.deny(
        "git", "git.commit.tests_required",
        f"tests are required before a commit, and {seen} (tree {tree[:12]})",
        setting="POLICY_GIT_REQUIRE_TESTS=false, or a passing workspace_test_run "
                "(for_commit=true) on this tree",
        tree=tree)


async def _commit_check(ctx: ToolContext, inputs: Mapping[str, Any]) -> Decision:
    tree = await (worktree_tree(ctx) if inputs.get("all") else index_tree(ctx))
    return await _commit_decision(ctx, tree)


async def _commit(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
    if inputs.get("all"):
        await git_ok(ctx, "add", "-A")
    if ctx.settings.git_require_tests:  # the tree may have changed since the check
        decision = await _commit_decision(ctx, await index_tree(ctx))
        if not decision.allowed:
            await ctx.enforce(decision)
    await git_ok(ctx, "commit", "-m", inputs["message"])
    sha = (await git_ok(ctx, "rev-parse", "HEAD")).strip()
    return {"commit": sha, "summary": inputs["message"].splitlines()[0]}


async def _target(ctx: ToolContext, inputs: Mapping[str, Any]) -> tuple[str, str]:
    remote = valid_ref(inputs.get("remote", "origin"), "remote")
    branch = inputs.get("branch") or (
        await git_ok(ctx, "rev-parse", "--abbrev-ref", "HEAD")).strip()
    return remote, valid_ref(branch, "branch")


async def _push_check(ctx: ToolContext, inputs: Mapping[str, Any]) -> Decision:
    remote, branch = await _target(ctx, inputs)
    if not ctx.settings.git_allow_push:
        return Decision.deny("git", "git.push.allowed", "pushing is disabled by policy",
                             setting="POLICY_GIT_ALLOW_PUSH=true", remote=remote, branch=branch)
    return Decision.allow("git", "git.push.allowed", "POLICY_GIT_ALLOW_PUSH is on",
                          remote=remote, branch=branch)


async def _push(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
    remote, branch = await _target(ctx, inputs)
    args = ["push", *(["--set-upstream"] if inputs.get("set_upstream") else []), "--",
            remote, f"refs/heads/{branch}:refs/heads/{branch}"]
    outcome = await git_ok(ctx, *args)
    return {"remote": remote, "branch": branch, "output": outcome.strip()}


async def _pull_check(ctx: ToolContext, inputs: Mapping[str, Any]) -> Decision:
    remote, branch = await _target(ctx, inputs)
    return Decision.allow("git", "git.pull.ff_only", "fast-forward pulls are always allowed",
                          remote=remote, branch=branch)


async def _pull(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
    remote, branch = await _target(ctx, inputs)
    out = await git_ok(ctx, "pull", "--ff-only", "--no-rebase", "--", remote, branch)
    return {"remote": remote, "branch": branch, "output": out.strip()}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required or [],
            "additionalProperties": False}


_NAME = {"type": "string", "minLength": 1, "maxLength": 200}


def git_tools() -> list[ToolSpec]:
    """The six git tools."""
    stage_schema = _obj({"paths": {"type": "array", "items": _NAME, "minItems": 1},
                         "all": {"type": "boolean"}})
    stage_schema["anyOf"] = [{"required": ["paths"]}, {"required": ["all"]}]
    return [
        ToolSpec(name="workspace_git_status", policy="git", handler=_status, effects=False,
                 description="Branch, upstream, staged, unstaged and untracked files.",
                 input_schema=_obj({})),
        ToolSpec(name="workspace_git_diff", policy="git", handler=_diff, effects=False,
                 description="The diff of the working tree (or staged, or against a ref).",
                 input_schema=_obj({"staged": {"type": "boolean"}, "base": _NAME,
                                    "path": _NAME,
                                    "max_bytes": {"type": "integer", "minimum": 1}})),
        ToolSpec(name="workspace_git_stage", policy="git", handler=_stage,
                 check=_stage_check, read_only=False, effects=True,
                 description="Stage paths (or everything) for the next commit.",
                 input_schema=stage_schema),
        ToolSpec(name="workspace_git_commit", policy="git", handler=_commit,
                 check=_commit_check, read_only=False, effects=True,
                 description="Commit the staged changes (all=true stages everything first).",
                 input_schema=_obj({"message": {"type": "string", "minLength": 1},
                                    "all": {"type": "boolean"}}, ["message"])),
        ToolSpec(name="workspace_git_push", policy="git", handler=_push, check=_push_check,
                 read_only=False, effects=True,
                 description="Push a branch to a remote (never forced).",
                 input_schema=_obj({"remote": _NAME, "branch": _NAME,
                                    "set_upstream": {"type": "boolean"}})),
        ToolSpec(name="workspace_git_pull", policy="git", handler=_pull, check=_pull_check,
                 read_only=False, effects=True,
                 description="Fast-forward the branch from a remote.",
                 input_schema=_obj({"remote": _NAME, "branch": _NAME})),
    ]
