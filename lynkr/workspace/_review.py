"""Review tools: `workspace_diff_review` and `workspace_release_notes`.

`review_diff` is pure: from git's name-status, numstat and zero-context patch it
builds the files, sizes and risk signals (deleted tests, auth- or secret-looking
paths, new TODOs, large binaries, a large diff). `release_notes` groups
conventional-commit subjects by type. The tools only gather git's output.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lynkr.tools import ToolContext, ToolSpec
from lynkr.workspace._gitcmd import git_ok, valid_ref
from lynkr.workspace._paths import decide_path

__all__ = ["parse_commits", "release_notes", "review_diff", "review_tools"]

_TEST_PATH = re.compile(
    r"(^|/)(tests?|__tests__|spec)/|(^|/)test_[^/]*\.py$|_test\.(py|go)$|\.(test|spec)\.[jt]sx?$")
_SENSITIVE = re.compile(r"auth|login|passw|secret|token|credential|permission|security|"
                        r"(^|/)\.env($|\.)|\.pem$|\.key$|id_rsa|\.p12$", re.I)
_TODO = re.compile(r"\b(TODO|FIXME|XXX|HACK)\b")
_CONVENTIONAL = re.compile(r"^(?P<type>[a-z]+)(?:\((?P<scope>[^)]*)\))?(?P<bang>!)?: (?P<s>.+)$")
LARGE_BINARY = 1_000_000
LARGE_DIFF = 1000
_TITLES = {"feat": "Features", "fix": "Bug fixes", "perf": "Performance",
           "refactor": "Refactoring", "docs": "Documentation", "test": "Tests",
           "build": "Build", "ci": "CI", "chore": "Chores", "style": "Style",
           "revert": "Reverts", "other": "Other changes"}


def _numstat(numstat: str) -> dict[str, tuple[int | None, int | None]]:
    counts: dict[str, tuple[int | None, int | None]] = {}
    for line in numstat.splitlines():
        added, deleted, path = [*line.split("\t", 2), "", ""][:3]
        counts[path] = (None, None) if added == "-" else (int(added), int(deleted))
    return counts


def _todos(patch: str) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    path = ""
    for line in patch.splitlines():
        if line.startswith("+++ "):
            path = line[6:] if line.startswith("+++ b/") else line[4:]
        elif line.startswith("+") and _TODO.search(line):
            found.append({"path": path, "line": line[1:].strip()[:200]})
    return found


def _file_risks(path: str, status: str, binary: bool, size: int | None) -> list[dict[str, Any]]:
    risks: list[dict[str, Any]] = []
    if status == "D" and _TEST_PATH.search(path):
        risks.append({"signal": "deleted_test", "path": path})
    if _SENSITIVE.search(path):
        risks.append({"signal": "sensitive_path", "path": path})
    if binary and size is not None and size >= LARGE_BINARY:
        risks.append({"signal": "large_binary", "path": path, "bytes": size})
    return risks


def review_diff(name_status: str, numstat: str, patch: str,
                sizes: Mapping[str, int]) -> dict[str, Any]:
    """The structured review of a diff (see module docstring)."""
    counts = _numstat(numstat)
    files: list[dict[str, Any]] = []
    risks: list[dict[str, Any]] = []
    for line in name_status.splitlines():
        status, _, path = line.partition("\t")
        added, deleted = counts.get(path, (0, 0))
        binary = added is None
        files.append({"path": path, "status": status[:1], "added": added, "deleted": deleted,
                      "binary": binary})
        risks += _file_risks(path, status[:1], binary, sizes.get(path))
    risks += [{"signal": "new_todo", **todo} for todo in _todos(patch)]
    total_added = sum(f["added"] or 0 for f in files)
    total_deleted = sum(f["deleted"] or 0 for f in files)
    if total_added + total_deleted >= LARGE_DIFF:
        risks.append({"signal": "large_diff", "lines": total_added + total_deleted})
    serious = {"deleted_test", "sensitive_path", "large_binary"}
    level = ("high" if any(r["signal"] in serious for r in risks)
             else "medium" if risks else "low")
    return {"files": files, "totals": {"files": len(files), "added": total_added,
                                       "deleted": total_deleted},
            "risks": risks, "risk_level": level}


async def _diff_review(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
    base = ["--cached"] if inputs.get("staged") else []
    if "base" in inputs:
        base = [valid_ref(inputs["base"], "base")]
    common = ["diff", "--no-ext-diff", "--no-textconv", "--no-renames", *base]
    name_status = await git_ok(ctx, *common, "--name-status", "--")
    numstat = await git_ok(ctx, *common, "--numstat", "--")
    patch = await git_ok(ctx, *common, "-U0", "--")
    sizes: dict[str, int] = {}
    for path, (added, _) in _numstat(numstat).items():
        decision, confined = decide_path(ctx.workspace_root, path)
        if added is None and decision.allowed and confined.absolute.is_file():
            sizes[path] = confined.absolute.stat().st_size
    return review_diff(name_status, numstat, patch, sizes)


def parse_commits(log: str) -> list[dict[str, Any]]:
    """Commits from ``git log --format=%H%x1f%s%x1f%b%x1e`` output."""
    commits = []
    for record in log.split("\x1e"):
        parts = record.strip("\n").split("\x1f")
        if len(parts) == 3:
            commits.append({"hash": parts[0], "subject": parts[1], "body": parts[2]})
    return commits


def release_notes(commits: list[dict[str, Any]]) -> dict[str, Any]:
    """Commits grouped by conventional type, breaking changes listed, as data and Markdown."""
    groups: dict[str, list[dict[str, Any]]] = {}
    breaking: list[dict[str, Any]] = []
    for commit in commits:
        match = _CONVENTIONAL.match(commit["subject"])
        kind = match["type"] if match and match["type"] in _TITLES else "other"
        entry = {"hash": commit["hash"][:12], "scope": match["scope"] if match else None,
                 "subject": match["s"] if match else commit["subject"]}
        groups.setdefault(kind, []).append(entry)
        if (match and match["bang"]) or "BREAKING CHANGE" in commit["body"]:
            breaking.append(entry)
    lines: list[str] = []
    for kind in [k for k in _TITLES if k in groups]:
        lines.append(f"## {_TITLES[kind]}")
        lines += [f"- {'**' + e['scope'] + ':** ' if e['scope'] else ''}{e['subject']} "
                  f"({e['hash'][:7]})" for e in groups[kind]]
        lines.append("")
    if breaking:
        lines += ["## Breaking changes", *[f"- {e['subject']} ({e['hash'][:7]})"
                                           for e in breaking], ""]
    return {"groups": groups, "breaking": breaking, "count": len(commits),
            "markdown": "\n".join(lines).strip()}


async def _release_notes(ctx: ToolContext, inputs: Mapping[str, Any]) -> Any:
    to = valid_ref(inputs.get("to", "HEAD"), "to")
    start = inputs.get("from")
    if start is None:
        tags = await git_ok(ctx, "tag", "--list", "--sort=-creatordate", "--merged", to)
        start = tags.splitlines()[0] if tags.strip() else None
    span = f"{valid_ref(start, 'from')}..{to}" if start else to
    log = await git_ok(ctx, "log", "--no-merges", "--format=%H%x1f%s%x1f%b%x1e", span, "--")
    return {"range": span, **release_notes(parse_commits(log))}


def review_tools() -> list[ToolSpec]:
    """The two review tools."""
    ref = {"type": "string", "minLength": 1, "maxLength": 200}
    return [
        ToolSpec(name="workspace_diff_review", policy="git", handler=_diff_review, effects=False,
                 description="A structured review of the diff: files, sizes and risk signals "
                             "(deleted tests, sensitive paths, new TODOs, large binaries).",
                 input_schema={"type": "object", "additionalProperties": False,
                               "properties": {"staged": {"type": "boolean"}, "base": ref}}),
        ToolSpec(name="workspace_release_notes", policy="git", handler=_release_notes,
                 effects=False,
                 description="Release notes from git log between two refs (default: the "
                             "latest tag to HEAD), grouped by conventional-commit type.",
                 input_schema={"type": "object", "additionalProperties": False,
                               "properties": {"from": ref, "to": ref}}),
    ]
