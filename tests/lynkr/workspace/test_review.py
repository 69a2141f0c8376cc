"""Diff review risk signals and release notes by conventional-commit type."""

from __future__ import annotations

from lynkr.workspace._review import parse_commits, release_notes, review_diff
from tests.lynkr.workspace.conftest import sh_git


def test_review_flags_deleted_tests_sensitive_paths_and_todos():
    """Each risk signal is found from git's raw output."""
    name_status = "D\ttests/test_app.py\nM\tsrc/auth/login.py\nA\tlogo.png\n"
    numstat = "0\t20\ttests/test_app.py\n3\t1\tsrc/auth/login.py\n-\t-\tlogo.png\n"
    patch = ("+++ b/src/auth/login.py\n+    # TODO: check the password properly\n"
             "+    return True\n")
    review = review_diff(name_status, numstat, patch, {"logo.png": 5_000_000})
    signals = {(r["signal"], r.get("path")) for r in review["risks"]}
    assert ("deleted_test", "tests/test_app.py") in signals
    assert ("sensitive_path", "src/auth/login.py") in signals
    assert ("new_todo", "src/auth/login.py") in signals
    assert ("large_binary", "logo.png") in signals
    assert review["risk_level"] == "high"
    assert review["totals"] == {"files": 3, "added": 3, "deleted": 21}


def test_review_of_a_plain_change_is_low_risk():
    """A small change with no signal is low risk."""
    review = review_diff("M\tsrc/app.py\n", "2\t1\tsrc/app.py\n", "+x = 1\n", {})
    assert review["risks"] == []
    assert review["risk_level"] == "low"


def test_release_notes_group_by_type_and_list_breaking_changes():
    """feat/fix/other groups, scopes kept, `!` and BREAKING CHANGE both mark breaking."""
    log = ("a" * 40 + "\x1ffeat(api): add search\x1f\x1e"
           + "b" * 40 + "\x1ffix: crash on empty input\x1f\x1e"
           + "c" * 40 + "\x1ffeat!: drop v1\x1f\x1e"
           + "d" * 40 + "\x1frefactor: split module\x1fBREAKING CHANGE: renamed\x1e"
           + "e" * 40 + "\x1fUpdate readme\x1f\x1e")
    notes = release_notes(parse_commits(log))
    assert [e["subject"] for e in notes["groups"]["feat"]] == ["add search", "drop v1"]
    assert notes["groups"]["feat"][0]["scope"] == "api"
    assert [e["subject"] for e in notes["groups"]["other"]] == ["Update readme"]
    assert [e["subject"] for e in notes["breaking"]] == ["drop v1", "split module"]
    assert notes["markdown"].startswith("## Features\n- **api:** add search")


async def test_diff_review_tool_on_a_real_repository(make_runner, session, repo):
    """The tool reviews the working tree's diff of a real repository."""
    (repo / "tests").mkdir()
    (repo / "tests" / "test_app.py").write_text("def test_x():\n    assert True\n")
    sh_git(repo, "add", "-A")
    sh_git(repo, "commit", "-q", "-m", "test: add")
    (repo / "tests" / "test_app.py").unlink()
    (repo / "app.py").write_text("def add(a, b):\n    return a + b  # FIXME overflow\n")
    result = await make_runner().call("workspace_diff_review", {}, session_id=session)
    assert result.ok, result.content
    signals = {r["signal"] for r in result.content["risks"]}
    assert {"deleted_test", "new_todo"} <= signals


async def test_release_notes_tool_between_a_tag_and_head(make_runner, session, repo):
    """With no `from`, notes run from the latest tag to HEAD."""
    sh_git(repo, "tag", "v1.0.0")
    for subject in ("feat: search", "fix: typo"):
        (repo / "f.txt").write_text(subject)
        sh_git(repo, "add", "-A")
        sh_git(repo, "commit", "-q", "-m", subject)
    result = await make_runner().call("workspace_release_notes", {}, session_id=session)
    assert result.ok, result.content
    assert result.content["range"] == "v1.0.0..HEAD"
    assert set(result.content["groups"]) == {"feat", "fix"}
