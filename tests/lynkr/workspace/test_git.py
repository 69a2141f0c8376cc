"""Git tools under policy: push gate, test-gated commits, status/diff/stage/pull."""

from __future__ import annotations

import pytest

from tests.lynkr.workspace.conftest import decisions, sh_git

PASS = "exit 0"
FAIL = "exit 1"


@pytest.fixture
def bare(repo, tmp_path):
    """A local bare repository registered as `origin`."""
    remote = tmp_path / "remote.git"
    sh_git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    sh_git(repo, "remote", "add", "origin", str(remote))
    return remote


async def test_status_lists_staged_unstaged_and_untracked(make_runner, session, repo):
    """Status reports the branch and each kind of change."""
    (repo / "app.py").write_text("changed\n")
    (repo / "new.txt").write_text("n")
    (repo / "staged.txt").write_text("s")
    sh_git(repo, "add", "staged.txt")
    result = await make_runner().call("workspace_git_status", {}, session_id=session)
    assert result.ok, result.content
    assert result.content["branch"] == "main"
    assert result.content["staged"] == [{"path": "staged.txt", "status": "A"}]
    assert result.content["unstaged"] == [{"path": "app.py", "status": "M"}]
    assert result.content["untracked"] == ["new.txt"]
    assert result.content["clean"] is False


async def test_diff_shows_working_changes(make_runner, session, repo):
    """The diff carries the changed lines."""
    (repo / "app.py").write_text("def add(a, b):\n    return a - b\n")
    result = await make_runner().call("workspace_git_diff", {}, session_id=session)
    assert "-    return a + b" in result.content["diff"]
    assert "+    return a - b" in result.content["diff"]


async def test_diff_refuses_an_option_as_base(make_runner, session, repo):
    """A base ref that looks like an option is an input error, never passed to git."""
    result = await make_runner().call("workspace_git_diff", {"base": "--output=/tmp/x"},
                                      session_id=session)
    assert not result.ok
    assert result.error_type == "ToolInputError"


async def test_stage_outside_the_workspace_is_denied(make_runner, session, store, repo):
    """Staging a path outside the workspace is refused and audited."""
    result = await make_runner().call("workspace_git_stage", {"paths": ["../x"]},
                                      session_id=session)
    assert not result.ok
    assert decisions(store, session)[0].rule == "fs.path.confined"


async def test_push_denied_by_default_with_the_policy_message(make_runner, session, store,
                                                              repo, bare):
    """POLICY_GIT_ALLOW_PUSH=false: denied, naming the setting, with an audited deny."""
    result = await make_runner().call("workspace_git_push", {}, session_id=session)
    assert not result.ok
    assert result.error_type == "PolicyDeniedError"
    assert "POLICY_GIT_ALLOW_PUSH=true" in result.content["error"]
    [decision] = decisions(store, session)
    assert (decision.rule, decision.decision) == ("git.push.allowed", "deny")
    assert decision.fields["remote"] == "origin"
    assert decision.fields["branch"] == "main"
    assert sh_git(bare, "branch", "--list") == ""


async def test_push_allowed_reaches_the_bare_repository(make_runner, session, store, repo,
                                                        bare):
    """POLICY_GIT_ALLOW_PUSH=true: the branch lands in the local bare repository."""
    result = await make_runner(git_allow_push=True).call("workspace_git_push", {},
                                                         session_id=session)
    assert result.ok, result.content
    head = sh_git(repo, "rev-parse", "HEAD").strip()
    assert sh_git(bare, "rev-parse", "refs/heads/main").strip() == head
    assert decisions(store, session)[0].decision == "allow"


async def test_pull_fast_forwards_from_the_remote(make_runner, session, repo, bare, tmp_path):
    """A pull brings a commit pushed by someone else."""
    sh_git(repo, "push", "-q", "origin", "main")
    other = tmp_path / "other"
    sh_git(tmp_path, "clone", "-q", str(bare), str(other))
    (other / "b.txt").write_text("b")
    sh_git(other, "add", "b.txt")
    sh_git(other, "commit", "-q", "-m", "feat: b")
    sh_git(other, "push", "-q", "origin", "main")
    result = await make_runner().call("workspace_git_pull", {}, session_id=session)
    assert result.ok, result.content
    assert (repo / "b.txt").read_text() == "b"


async def test_commit_without_required_tests_is_allowed(make_runner, session, repo):
    """With POLICY_GIT_REQUIRE_TESTS off, a commit just happens."""
    (repo / "x.txt").write_text("x")
    result = await make_runner().call("workspace_git_commit",
                                      {"message": "feat: x", "all": True}, session_id=session)
    assert result.ok, result.content
    assert sh_git(repo, "log", "-1", "--format=%s").strip() == "feat: x"


async def test_commit_gate_follows_test_runs_on_the_exact_tree(make_runner, session, store,
                                                               repo):
    """Require tests: denied before any run, after a failing run, allowed after a
    passing run on that tree, denied again once a file changes."""
    (repo / "x.txt").write_text("x")
    commit = {"message": "feat: x", "all": True}
    runner = make_runner(git_require_tests=True, test_command=FAIL)
    first = await runner.call("workspace_git_commit", commit, session_id=session)
    assert not first.ok
    assert "no test run was recorded" in first.content["error"]
    assert "POLICY_GIT_REQUIRE_TESTS=false" in first.content["error"]

    failing = await runner.call("workspace_test_run", {}, session_id=session)
    assert failing.content["outcome"] == "failed"
    second = await runner.call("workspace_git_commit", commit, session_id=session)
    assert not second.ok
    assert "failed" in second.content["error"]

    runner = make_runner(git_require_tests=True, test_command=PASS)
    passing = await runner.call("workspace_test_run", {}, session_id=session)
    assert passing.content["outcome"] == "passed"
    (repo / "x.txt").write_text("changed after the run")
    changed = await runner.call("workspace_git_commit", commit, session_id=session)
    assert not changed.ok

    (repo / "x.txt").write_text("x")
    allowed = await runner.call("workspace_git_commit", commit, session_id=session)
    assert allowed.ok, allowed.content
    rules = [(d.rule, d.decision) for d in decisions(store, session)
             if d.tool == "workspace_git_commit"]
    assert rules == [("git.commit.tests_required", "deny")] * 3 + [
        ("git.commit.tests_passed", "allow")]


async def test_commit_gate_uses_the_index_for_partial_commits(make_runner, session, repo):
    """Without all=true the staged tree is what must have passed."""
    (repo / "x.txt").write_text("x")
    sh_git(repo, "add", "x.txt")
    (repo / "y.txt").write_text("untracked, not committed")
    runner = make_runner(git_require_tests=True, test_command=PASS)
    await runner.call("workspace_test_run", {}, session_id=session)
    result = await runner.call("workspace_git_commit", {"message": "feat: x"},
                               session_id=session)
    assert not result.ok  # the run saw y.txt too: it did not test exactly the index
    (repo / "y.txt").unlink()
    await runner.call("workspace_test_run", {}, session_id=session)
    assert (await runner.call("workspace_git_commit", {"message": "feat: x"},
                              session_id=session)).ok


async def test_stage_without_paths_or_all_is_an_input_error(make_runner, session, repo):
    """all=false with no paths names what to give instead of failing obscurely."""
    result = await make_runner().call("workspace_git_stage", {"all": False},
                                      session_id=session)
    assert not result.ok
    assert result.error_type == "ToolInputError"


async def test_stage_paths_then_status_shows_them_staged(make_runner, session, repo):
    """Staging named paths puts exactly those in the index."""
    (repo / "a.txt").write_text("a")
    (repo / "b.txt").write_text("b")
    result = await make_runner().call("workspace_git_stage", {"paths": ["a.txt"]},
                                      session_id=session)
    assert result.ok, result.content
    assert result.content["staged"] == [{"path": "a.txt", "status": "A"}]
    assert result.content["untracked"] == ["b.txt"]


async def test_commit_gate_wants_the_git_test_command_when_set(make_runner, session, repo):
    """With POLICY_GIT_TEST_COMMAND set, only its passing run opens the gate."""
    (repo / "x.txt").write_text("x")
    runner = make_runner(git_require_tests=True, test_command=PASS,
                         git_test_command="echo gate; exit 0")
    await runner.call("workspace_test_run", {}, session_id=session)
    commit = {"message": "feat: x", "all": True}
    denied = await runner.call("workspace_git_commit", commit, session_id=session)
    assert not denied.ok
    gate = await runner.call("workspace_test_run", {"for_commit": True}, session_id=session)
    assert gate.content["command"] == "echo gate; exit 0"
    allowed = await runner.call("workspace_git_commit", commit, session_id=session)
    assert allowed.ok, allowed.content
