"""The policy-audit projection: one row per decision, filters, rebuild equality."""

from __future__ import annotations

import dataclasses

import pytest

from eventstore import SqliteRecorder
from eventstore.events.session import PolicyDecided, SessionStarted, ToolCompleted
from eventstore.events.tasks import TaskCreated
from eventstore.projections import ProjectionStore, all_projections
from eventstore.projections.policy_audit import (
    AuditFilter,
    filter_audit,
    find_audit_row,
    fold_policy_audit,
    project_policy_audit,
    query_audit,
)


def decided(tool, decision, rule="r"):
    return PolicyDecided(tool=tool, policy="p", rule=rule, decision=decision,
                         reason=f"{tool} {decision}", inputs_digest="d" * 64,
                         fields={"path": "x", "list": ("a",)}, config_hash="c" * 64)


@pytest.fixture
def log(tmp_path):
    recorder = SqliteRecorder(tmp_path / "log.db")
    recorder.append("session-s1", 0, [SessionStarted(session_id="s1", source="cli"),
                                      decided("fs_read", "deny")])
    recorder.append("session-s2", 0, [SessionStarted(session_id="s2", source="cli"),
                                      decided("git_push", "allow")])
    recorder.append("tasks-w", 0, [TaskCreated(task_id="t", title="not a decision")])
    recorder.append("session-s1", 2, [decided("fs_write", "allow")])
    yield recorder
    recorder.close()


@pytest.fixture
def views(tmp_path):
    store = ProjectionStore(tmp_path / "projections.db", all_projections())
    yield store
    store.close()


def test_only_decisions_in_session_streams_become_rows(log):
    """Other events and streams are skipped; rows keep log order and the session id."""
    rows = fold_policy_audit(log.read_all())
    assert [(r.session_id, r.tool, r.decision) for r in rows] == [
        ("s1", "fs_read", "deny"), ("s2", "git_push", "allow"), ("s1", "fs_write", "allow")]


def test_table_matches_the_fold_and_survives_a_rebuild(log, views):
    """Stored rows equal the pure fold, before and after a rebuild from position 0."""
    views.catch_up(log, names=["policy_audit"])
    live = query_audit(views, AuditFilter())
    assert live == fold_policy_audit(log.read_all())
    views.rebuild(log, "policy_audit")
    assert query_audit(views, AuditFilter()) == live


def test_filters_in_sql_and_in_memory_agree(log, views):
    """session/tool/decision/time filters give the same rows both ways."""
    views.catch_up(log, names=["policy_audit"])
    rows = fold_policy_audit(log.read_all())
    middle = rows[1].recorded_at
    for flt in (AuditFilter(session_id="s1"), AuditFilter(tool="git_push"),
                AuditFilter(decision="deny"), AuditFilter(since=middle),
                AuditFilter(until=middle), AuditFilter(session_id="s1", decision="allow")):
        assert query_audit(views, flt) == filter_audit(rows, flt), flt


def test_limit_keeps_the_latest_rows(log, views):
    """A limit returns the last N decisions, still in log order."""
    views.catch_up(log, names=["policy_audit"])
    assert [r.tool for r in query_audit(views, AuditFilter(), limit=2)] == [
        "git_push", "fs_write"]


def test_find_by_position(log, views):
    """A decision is found by its log position; an unknown one is None."""
    views.catch_up(log, names=["policy_audit"])
    first = query_audit(views, AuditFilter())[0]
    assert find_audit_row(views, str(first.position)) == first
    assert find_audit_row(views, "424242") is None


def test_project_step_by_step_equals_the_fold(log):
    """Folding one event at a time gives the same rows as the batch fold."""
    rows = None
    for recorded in log.read_all():
        rows = project_policy_audit(rows, recorded)
    assert list(rows) == fold_policy_audit(log.read_all())


def test_tool_results_are_not_audit_rows(tmp_path):
    """ToolCompleted is a result, not a decision."""
    from eventstore import make_blob

    ref, data = make_blob({"ok": True})
    recorder = SqliteRecorder(tmp_path / "x.db")
    try:
        recorder.append("session-z", 0, [ToolCompleted(tool="t", ok=True, result=ref,
                                                        duration_ms=1.0)], blobs=[(ref, data)])
        assert fold_policy_audit(recorder.read_all()) == []
    finally:
        recorder.close()


@pytest.fixture
def callers(tmp_path):
    """Decisions by every kind of caller, and one recorded before callers were named."""
    recorder = SqliteRecorder(tmp_path / "callers.db")
    events = [SessionStarted(session_id="c", source="cli")]
    for caller in ("session", "cli:alice", "cli:bob", "admin:local", None):
        events.append(dataclasses.replace(decided(f"t-{caller}", "allow"), caller=caller))
    recorder.append("session-c", 0, events)
    yield recorder
    recorder.close()


def test_rows_carry_the_caller(callers):
    """Each row names who called; a decision from before v2 has no caller."""
    assert [r.caller for r in fold_policy_audit(callers.read_all())] == [
        "session", "cli:alice", "cli:bob", "admin:local", None]


def test_caller_filter_takes_a_caller_or_a_family_in_sql_and_in_memory(callers, views):
    """`cli:alice` is one caller; `cli` is every cli:<user>; `session` the loop's calls."""
    views.catch_up(callers, names=["policy_audit"])
    rows = fold_policy_audit(callers.read_all())
    expected = {"cli:alice": ["cli:alice"], "cli": ["cli:alice", "cli:bob"],
                "session": ["session"], "admin": ["admin:local"], "cl": []}
    for wanted, found in expected.items():
        flt = AuditFilter(caller=wanted)
        assert [r.caller for r in query_audit(views, flt)] == found, wanted
        assert filter_audit(rows, flt) == query_audit(views, flt), wanted

