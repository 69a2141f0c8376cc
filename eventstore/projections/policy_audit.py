"""The policy-audit projection: one row per `PolicyDecided` in any session stream.

Pure: `audit_row(recorded)` maps one recorded event to a row (or None), and
`project_policy_audit(rows, recorded)` extends the rows. `filter_audit` applies the
`lynkr audit` filters (session, tool, decision, caller, time range) in memory; `PROJECTION`
keeps the same rows in the `policy_audit` table of the `ProjectionStore`, queried by
`query_audit` and `find_audit_row`.

The caller (`PolicyDecided.caller`, v2) names the door a call came in by: ``session``
(the agent loop of a client's turn), ``cli:<os user>`` (`lynkr tool call`, `lynkr mcp
call`) or ``admin:<key id or local>`` (the admin API). Decisions recorded before v2 have
none. A caller filter is either a whole caller (``cli:alice``) or a family without the
colon (``cli`` matches every ``cli:<user>``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eventstore._codec import freeze
from eventstore._recorder import Recorded
from eventstore._registry import Event
from eventstore.events.session import PolicyDecided
from eventstore.projections._model import Projection, ProjectionContext, RowOp, Upsert
from eventstore.projections._store import ProjectionStore

__all__ = [
    "PROJECTION",
    "AuditFilter",
    "AuditRow",
    "audit_row",
    "filter_audit",
    "find_audit_row",
    "fold_policy_audit",
    "project_audit_rows",
    "project_policy_audit",
    "query_audit",
]

_SESSION_PREFIX = "session-"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRow:
    """One policy decision as the audit shows it."""

    position: int
    event_id: str | None
    session_id: str
    recorded_at: float
    tool: str
    policy: str
    rule: str
    decision: str
    reason: str
    inputs_digest: str
    fields: Mapping[str, Any]
    config_hash: str
    tool_call_id: str | None
    turn: int | None
    caller: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {name: (dict(v) if isinstance(v, Mapping) else v)
                for name in self.__slots__ for v in [getattr(self, name)]}


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditFilter:
    """Which rows `lynkr audit` shows; None means any."""

    session_id: str | None = None
    tool: str | None = None
    decision: str | None = None
    caller: str | None = None  # a caller, or a family ("cli") matching "cli:<anyone>"
    since: float | None = None
    until: float | None = None

    def matches(self, row: AuditRow) -> bool:
        """Whether `row` passes every filter given."""
        return ((self.session_id is None or row.session_id == self.session_id)
                and (self.tool is None or row.tool == self.tool)
                and (self.decision is None or row.decision == self.decision)
                and (self.caller is None or _caller_matches(row.caller, self.caller))
                and (self.since is None or row.recorded_at >= self.since)
                and (self.until is None or row.recorded_at <= self.until))


def _caller_matches(caller: str | None, wanted: str) -> bool:
    """Whether `caller` is `wanted`, or belongs to the family `wanted` (no colon in it)."""
    if caller is None:
        return False
    return caller == wanted or (":" not in wanted and caller.startswith(wanted + ":"))


def audit_row(recorded: Recorded[Event]) -> AuditRow | None:
    """The audit row of a recorded `PolicyDecided` in a session stream, else None."""
    event = recorded.event
    if not isinstance(event, PolicyDecided) or not recorded.stream_id.startswith(_SESSION_PREFIX):
        return None
    return AuditRow(
        position=recorded.position, event_id=recorded.event_id,
        session_id=recorded.stream_id.removeprefix(_SESSION_PREFIX),
        recorded_at=recorded.recorded_at, tool=event.tool, policy=event.policy,
        rule=event.rule, decision=event.decision, reason=event.reason,
        inputs_digest=event.inputs_digest, fields=event.fields,
        config_hash=event.config_hash, tool_call_id=event.tool_call_id, turn=event.turn,
        caller=event.caller,
    )


def project_policy_audit(
    rows: tuple[AuditRow, ...] | None, recorded: Recorded[Event]
) -> tuple[AuditRow, ...]:
    """The audit rows after one more recorded event of the global log."""
    row = audit_row(recorded)
    base = rows or ()
    return (*base, row) if row is not None else base


def fold_policy_audit(records: Iterable[Recorded[Event]]) -> list[AuditRow]:
    """Every audit row of `records`, in log order."""
    return [row for recorded in records if (row := audit_row(recorded)) is not None]


def filter_audit(rows: Iterable[AuditRow], flt: AuditFilter) -> list[AuditRow]:
    """The rows that pass `flt`, in log order."""
    return [row for row in rows if flt.matches(row)]


_COLUMNS = ("position", "event_id", "session_id", "recorded_at", "tool", "policy", "rule",
            "decision", "reason", "inputs_digest", "fields", "config_hash", "tool_call_id",
            "turn", "caller")


def project_audit_rows(recorded: Recorded[Event], context: ProjectionContext) -> list[RowOp]:
    """Row operations for one event: one `policy_audit` row per `PolicyDecided`."""
    row = audit_row(recorded)
    if row is None:
        return []
    values = row.as_dict()
    values["fields"] = json.dumps(values["fields"], sort_keys=True, default=str)
    return [Upsert("policy_audit", {"position": row.position},
                   set={k: v for k, v in values.items() if k != "position"})]


PROJECTION = Projection(
    name="policy_audit",
    version=2,  # 2: the caller column (PolicyDecided v2)
    tables={"policy_audit": """
        CREATE TABLE IF NOT EXISTS policy_audit (
            position      INTEGER PRIMARY KEY,
            event_id      TEXT,
            session_id    TEXT NOT NULL,
            recorded_at   REAL NOT NULL,
            tool          TEXT NOT NULL,
            policy        TEXT NOT NULL,
            rule          TEXT NOT NULL,
            decision      TEXT NOT NULL,
            reason        TEXT NOT NULL,
            inputs_digest TEXT NOT NULL,
            fields        TEXT NOT NULL,
            config_hash   TEXT NOT NULL,
            tool_call_id  TEXT,
            turn          INTEGER,
            caller        TEXT
        )"""},
    project=project_audit_rows,
    types=frozenset({"PolicyDecided"}),
)


def _from_sql(row: Mapping[str, Any]) -> AuditRow:
    values = dict(row)
    values["fields"] = freeze(json.loads(values["fields"]))
    return AuditRow(**values)


def query_audit(store: ProjectionStore, flt: AuditFilter, limit: int | None = None) -> list[
        AuditRow]:
    """The stored rows passing `flt`, in log order (the last `limit` when given)."""
    where, args = [], []
    for column, value, op in (("session_id", flt.session_id, "="), ("tool", flt.tool, "="),
                              ("decision", flt.decision, "="),
                              ("recorded_at", flt.since, ">="),
                              ("recorded_at", flt.until, "<=")):
        if value is not None:
            where.append(f"{column} {op} ?")
            args.append(value)
    if flt.caller is not None:
        if ":" in flt.caller:
            where.append("caller = ?")
            args.append(flt.caller)
        else:  # a family: the bare word ("session") or any "family:<who>"
            where.append("(caller = ? OR substr(caller, 1, ?) = ?)")
            args.extend([flt.caller, len(flt.caller) + 1, flt.caller + ":"])
    sql = f"SELECT {', '.join(_COLUMNS)} FROM policy_audit"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY position DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [_from_sql(r) for r in reversed(store.query(sql, args))]


def find_audit_row(store: ProjectionStore, ref: str) -> AuditRow | None:
    """The row whose log position or event id is `ref`."""
    column, value = ("position", int(ref)) if ref.isdigit() else ("event_id", ref)
    rows = store.query(f"SELECT {', '.join(_COLUMNS)} FROM policy_audit WHERE {column} = ?",
                       (value,))
    return _from_sql(rows[0]) if rows else None
