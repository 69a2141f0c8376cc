"""The SQL the session viewer runs on the projections, each filtered by the `Viewer`.

A session's user is its key's user (the `keys` projection's `api_keys`), the `<sub>`
of a JWT key id `jwt:<sub>`, or "anonymous" when its turns carried no key (auth off).
Text filters match case-insensitively anywhere in the value (`instr`, so `%` and `_`
are plain characters); dates are inclusive UTC days `YYYY-MM-DD`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eventstore.projections.usage import usage_query
from lynkr.errors import InvalidRequestError
from lynkr.ui._access import Viewer

__all__ = ["Query", "audit_query", "session_query", "sessions_query", "usage_queries"]

_USER = ("CASE WHEN s.key_id IS NULL THEN 'anonymous' "
         "WHEN s.key_id LIKE 'jwt:%' THEN substr(s.key_id, 5) "
         "ELSE coalesce(k.user, s.key_id) END")
_SESSIONS = (f"SELECT s.session_id, s.events, s.turns, s.failures, s.model, s.source, "
             f"s.client, s.key_id, {_USER} AS user, s.first_at, s.last_at, s.last_position "
             "FROM sessions s LEFT JOIN api_keys k ON k.key_id = s.key_id")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
LIMIT = 200  # sessions listed at once: the newest first
AUDIT_LIMIT = 500


@dataclass
class Query:
    """A WHERE clause being built: conditions and their arguments."""

    where: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def add(self, condition: str, *args: Any) -> None:
        """AND one condition with its arguments."""
        self.where.append(condition)
        self.args.extend(args)

    def sql(self, head: str, tail: str = "") -> tuple[str, list[Any]]:
        """`head` WHERE … `tail`, and the arguments."""
        clause = f" WHERE {' AND '.join(self.where)}" if self.where else ""
        return f"{head}{clause}{tail}", self.args


def _day(args: Mapping[str, str], name: str) -> str | None:
    value = args.get(name) or None
    if value is not None and not _DAY.match(value):
        raise InvalidRequestError(f"{name} must be a UTC day as YYYY-MM-DD, not {value!r}")
    return value


def _contains(column: str) -> str:
    return f"instr(lower({column}), lower(?)) > 0"


def _viewer_sessions(viewer: Viewer) -> Query:
    query = Query()
    if viewer.user is not None:
        query.add(f"{_USER} = ?", viewer.user)
    return query


def sessions_query(viewer: Viewer, args: Mapping[str, str]) -> tuple[str, list[Any]]:
    """Sessions by last activity, filtered by `q` (id, model, client or turn text),
    `user`, `key`, `model`, `since` and `until` (of the last activity).

    Raises:
        InvalidRequestError: a date that is not YYYY-MM-DD.
    """
    query = _viewer_sessions(viewer)
    if text := args.get("q"):
        described = _contains("coalesce(s.model, s.client, '')")
        said = _contains("coalesce(user_text, '') || coalesce(assistant_text, '')")
        query.add(f"({_contains('s.session_id')} OR {described}"
                  f" OR s.session_id IN (SELECT session_id FROM transcript WHERE {said}))",
                  text, text, text)
    if user := args.get("user"):
        query.add(f"{_USER} = ?", user)
    if key := args.get("key"):
        query.add("s.key_id = ?", key)
    if model := args.get("model"):
        query.add(_contains("coalesce(s.model, '')"), model)
    if since := _day(args, "since"):
        query.add("date(s.last_at, 'unixepoch') >= ?", since)
    if until := _day(args, "until"):
        query.add("date(s.last_at, 'unixepoch') <= ?", until)
    return query.sql(_SESSIONS, f" ORDER BY s.last_position DESC LIMIT {LIMIT}")


def session_query(viewer: Viewer, session_id: str) -> tuple[str, list[Any]]:
    """One session's row, if the viewer may see it."""
    query = _viewer_sessions(viewer)
    query.add("s.session_id = ?", session_id)
    return query.sql(_SESSIONS)


def usage_queries(viewer: Viewer, args: Mapping[str, str]) -> dict[str, tuple[str, list[Any]]]:
    """The `usage_daily` sums per day, model and key (the viewer's own user only).

    Raises:
        InvalidRequestError: a date that is not YYYY-MM-DD.
    """
    since, until = _day(args, "since"), _day(args, "until")
    return {by: usage_query(by=(by,), user=viewer.user, since=since, until=until)
            for by in ("day", "model", "key")}


def audit_query(viewer: Viewer, args: Mapping[str, str]) -> tuple[str, list[Any]]:
    """Policy decisions, newest first, filtered by `session`, `tool`, `decision`, `since`
    and `until` (and to the viewer's sessions).

    Raises:
        InvalidRequestError: a date that is not YYYY-MM-DD.
    """
    query = Query()
    if viewer.user is not None:
        sessions_sql, sessions_args = session_ids_sql(viewer)
        query.add(f"session_id IN ({sessions_sql})", *sessions_args)
    for name in ("session", "tool"):
        if value := args.get(name):
            query.add(_contains("session_id" if name == "session" else "tool"), value)
    if decision := args.get("decision"):
        query.add("decision = ?", decision)
    if since := _day(args, "since"):
        query.add("date(recorded_at, 'unixepoch') >= ?", since)
    if until := _day(args, "until"):
        query.add("date(recorded_at, 'unixepoch') <= ?", until)
    return query.sql("SELECT position, session_id, recorded_at, tool, policy, rule, decision, "
                     "reason, tool_call_id, turn, caller FROM policy_audit",
                     f" ORDER BY position DESC LIMIT {AUDIT_LIMIT}")


def session_ids_sql(viewer: Viewer) -> tuple[str, list[Any]]:
    """The ids of the sessions the viewer may see, as a sub-select."""
    return _viewer_sessions(viewer).sql(
        "SELECT s.session_id FROM sessions s LEFT JOIN api_keys k ON k.key_id = s.key_id")
