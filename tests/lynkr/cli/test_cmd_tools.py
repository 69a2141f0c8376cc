"""`lynkr tool list|call`, `lynkr tasks` and `lynkr audit`, against a real log on disk."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import time

import pytest
import structlog

from lynkr.cli import main
from lynkr.cli._cmd_tools import parse_time


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A clean working directory, data directory and workspace (a git repo on main)."""
    ws = tmp_path / "ws"
    ws.mkdir()
    for key in [k for k in os.environ if k.startswith(("POLICY_", "WEB_", "WORKSPACE_"))]:
        monkeypatch.delenv(key)
    values = {"LYNKR_DATA_DIR": str(tmp_path / "data"), "WORKSPACE_ROOT": str(ws),
              "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
              "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.invalid",
              "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "-C", str(ws), "init", "-q", "-b", "main"], check=True)
    subprocess.run(["git", "-C", str(ws), "commit", "-q", "--allow-empty", "-m", "init"],
                   check=True)
    yield ws
    structlog.reset_defaults()  # the CLI configured logging onto this test's captured stderr


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_tool_list_names_every_workspace_tool(env, capsys):
    """`tool list --json` lists the toolbelt with schemas and policy families."""
    code, out, _ = run(capsys, "tool", "list", "--json")
    tools = {t["name"]: t for t in json.loads(out)}
    assert code == 0
    assert {"fs_read", "workspace_git_push", "web_fetch", "workspace_task_create"} <= set(tools)
    assert tools["workspace_git_push"]["policy"] == "git"
    assert tools["fs_read"]["input_schema"]["required"] == ["path"]


def test_tool_call_with_bad_json_is_a_clear_error(env, capsys):
    """Input that is not JSON exits 1 with a one-line message, no traceback."""
    code, _, err = run(capsys, "tool", "call", "fs_read", "{nope")
    assert code == 1
    assert "not JSON" in err
    assert "Traceback" not in err


def test_tool_call_with_schema_violation_fails_cleanly(env, capsys):
    """Input that breaks the schema is a tool error result with exit code 1."""
    code, out, _ = run(capsys, "tool", "call", "fs_read", '{"path": 3}')
    assert code == 1
    assert "invalid input at path" in json.loads(out)["error"]


def test_unknown_tool_is_refused_and_audited(env, capsys):
    """Calling a tool that does not exist is a recorded deny."""
    code, _, _ = run(capsys, "tool", "call", "rm_rf", "{}", "--session", "s9")
    assert code == 1
    _, out, _ = run(capsys, "audit", "--session", "s9", "--json")
    assert json.loads(out)[0]["rule"] == "registry.tool_known"


def test_tasks_command_shows_tasks_created_through_tool_calls(env, capsys):
    """Tasks made with `tool call` appear in `lynkr tasks`, table and JSON."""
    for title in ("first", "second"):
        code, _, _ = run(capsys, "tool", "call", "workspace_task_create",
                         json.dumps({"title": title}))
        assert code == 0
    code, out, _ = run(capsys, "tasks", "--json")
    assert [t["title"] for t in json.loads(out)] == ["first", "second"]
    _, table, _ = run(capsys, "tasks")
    assert "first" in table
    assert "todo" in table


def test_tasks_without_a_log_is_empty(env, capsys):
    """With no event log yet, `lynkr tasks` says so instead of failing."""
    code, out, _ = run(capsys, "tasks")
    assert code == 0
    assert "no tasks" in out


def _decisions(capsys):
    run(capsys, "tool", "call", "fs_read", '{"path": "../outside"}', "--session", "s1")
    run(capsys, "tool", "call", "fs_write", '{"path": "ok.txt", "content": "x"}',
        "--session", "s1")
    run(capsys, "tool", "call", "workspace_git_push", "{}", "--session", "s2")
    run(capsys, "tool", "call", "web_fetch", '{"url": "http://169.254.169.254/"}',
        "--session", "s2")


def test_audit_filters_by_session_tool_decision_and_time(env, capsys, monkeypatch):
    """Each filter narrows the decisions; all of them show a reason."""
    monkeypatch.setenv("WEB_SEARCH_ALLOWED_HOSTS", "*")
    _decisions(capsys)
    code, out, _ = run(capsys, "audit", "--json")
    rows = json.loads(out)
    assert code == 0
    assert [(r["tool"], r["decision"]) for r in rows] == [
        ("fs_read", "deny"), ("fs_write", "allow"), ("workspace_git_push", "deny"),
        ("web_fetch", "allow"), ("web_fetch", "deny")]
    assert all(r["reason"] for r in rows)

    def rules(*argv):
        return [r["rule"] for r in json.loads(run(capsys, "audit", "--json", *argv)[1])]

    assert rules("--session", "s1") == ["fs.path.confined", "fs.path.confined"]
    assert rules("--decision", "deny") == ["fs.path.confined", "git.push.allowed",
                                           "web.address.public"]
    assert rules("--tool", "workspace_git_push") == ["git.push.allowed"]
    assert rules("--since", "1h") == rules()
    assert rules("--until", "1h") == []
    assert rules("--since", "2999-01-01") == []
    assert rules("--limit", "1") == ["web.address.public"]


def test_audit_table_shows_reasons(env, capsys):
    """The terminal table has a header and one line per decision with its reason."""
    _decisions(capsys)
    _, out, _ = run(capsys, "audit", "--decision", "deny")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["POS", "TIME", "(UTC)"]
    assert any("pushing is disabled by policy" in line for line in lines)
    assert any("outside the workspace" in line for line in lines)


def test_audit_explain_shows_digest_rule_and_config_hash(env, capsys):
    """--explain EVENT prints the inputs digest, the rule and the configuration hash."""
    _decisions(capsys)
    rows = json.loads(run(capsys, "audit", "--json", "--tool", "workspace_git_push")[1])
    code, out, _ = run(capsys, "audit", "--explain", str(rows[0]["position"]))
    assert code == 0
    assert f"inputs digest: {rows[0]['inputs_digest']}" in out
    assert "rule:          git.push.allowed" in out
    assert f"{rows[0]['config_hash']} (the same as now)" in out
    assert "POLICY_GIT_ALLOW_PUSH=true" in out  # the setting is kept in the fields
    assert run(capsys, "audit", "--explain", "999999")[0] == 1


def test_audit_rejects_a_bad_time(env, capsys):
    """An unreadable --since is a one-line error."""
    code, _, err = run(capsys, "audit", "--since", "yesterday-ish")
    assert code == 1
    assert "not an ISO time" in err


def test_parse_time_accepts_ages_and_iso():
    """Ages count back from now; naive ISO times are UTC."""
    assert parse_time("2h", now=10_000.0) == 10_000.0 - 7200
    assert parse_time("1970-01-01T01:00:00") == 3600.0
    assert parse_time("1970-01-01T01:00:00+01:00") == 0.0


@pytest.mark.slow
def test_end_to_end_tool_call_then_audit_in_real_processes(env, tmp_path):
    """Two real `lynkr` processes: a denied push is recorded, then shown by `lynkr audit`."""
    started = time.time()
    call = subprocess.run([sys.executable, "-m", "lynkr", "tool", "call", "workspace_git_push",
                           "{}", "--session", "e2e"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert call.returncode == 1
    assert "POLICY_GIT_ALLOW_PUSH=true" in json.loads(call.stdout)["error"]
    assert "session: e2e" in call.stderr
    audit = subprocess.run([sys.executable, "-m", "lynkr", "audit", "--session", "e2e",
                            "--json"], capture_output=True, text=True, timeout=60, check=False)
    [row] = json.loads(audit.stdout)
    assert (row["rule"], row["decision"]) == ("git.push.allowed", "deny")
    assert row["recorded_at"] >= started - 1


def test_audit_lists_every_refusal_of_the_attack_matrix(env, capsys, monkeypatch, tmp_path):
    """Traversal, absolute path, outside symlink, SSRF, push and untested commit: each
    refusal is in `lynkr audit --decision deny` with its rule and reason."""
    monkeypatch.setenv("WEB_SEARCH_ALLOWED_HOSTS", "*")
    monkeypatch.setenv("POLICY_GIT_REQUIRE_TESTS", "true")
    (tmp_path / "outside.txt").write_text("secret")
    (env / "link").symlink_to(tmp_path / "outside.txt")
    (env / "new.txt").write_text("n")
    calls = [("fs_read", {"path": "../outside.txt"}), ("fs_read", {"path": "/etc/passwd"}),
             ("fs_read", {"path": "link"}), ("web_fetch", {"url": "http://localhost/"}),
             ("web_fetch", {"url": "http://10.0.0.1/"}), ("workspace_git_push", {}),
             ("workspace_git_commit", {"message": "feat: x", "all": True})]
    for name, inputs in calls:
        code, out, _ = run(capsys, "tool", "call", name, json.dumps(inputs), "--session", "m")
        assert code == 1, (name, out)
        assert "secret" not in out
    rows = json.loads(run(capsys, "audit", "--json", "--decision", "deny", "--session", "m")[1])
    assert [r["rule"] for r in rows] == [
        "fs.path.confined", "fs.path.confined", "fs.path.confined", "web.address.public",
        "web.address.public", "git.push.allowed", "git.commit.tests_required"]
    assert all(r["reason"] and r["fields"].get("setting") for r in rows)


def test_tool_call_is_audited_with_the_cli_user_as_caller(env, capsys):
    """`tool call` records cli:<os user>; `audit --session S --json` and the table show it."""
    user = getpass.getuser()
    code, _, _ = run(capsys, "tool", "call", "fs_list", "{}", "--session", "who")
    assert code == 0
    _, out, _ = run(capsys, "audit", "--session", "who", "--json")
    [row] = json.loads(out)
    assert (row["tool"], row["decision"], row["caller"]) == ("fs_list", "allow", f"cli:{user}")
    _, out, _ = run(capsys, "audit", "--session", "who")
    header, line = out.splitlines()
    assert header.split()[:6] == ["POS", "TIME", "(UTC)", "SESSION", "CALLER", "TOOL"]
    assert f"cli:{user}" in line.split()


def test_audit_caller_filter_takes_a_caller_or_a_family(env, capsys):
    """`--caller cli` and `--caller cli:<user>` find the CLI's calls; others find none."""
    user = getpass.getuser()
    run(capsys, "tool", "call", "fs_list", "{}", "--session", "who")

    def tools(*argv):
        return [r["tool"] for r in json.loads(run(capsys, "audit", "--json", *argv)[1])]

    assert tools("--caller", "cli") == tools("--caller", f"cli:{user}") == ["fs_list"]
    assert tools("--caller", "admin") == tools("--caller", "session") == []


def test_transcript_of_the_cli_session_shows_its_calls(env, capsys):
    """A CLI session has no turns, yet its transcript lists each call and result."""
    run(capsys, "tool", "call", "fs_read", '{"path": "../x"}', "--session", "tx")
    code, out, _ = run(capsys, "transcript", "tx")
    assert code == 0
    assert "── policy  deny fs_read by fs.path.confined" in out
    assert "── tool    fs_read error in" in out
