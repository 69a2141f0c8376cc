"""`PostgresLimitsStore`: the rate-limit counters of every gateway, in one PostgreSQL database.

One row per subject (`lynkr_limit_budgets`: the admission times of the last minute, the
day's end, requests and tokens of that day) and one row per concurrency slot held
(`lynkr_limit_slots`: subject, holding gateway, expiry). Each admission is **one round
trip**: the `lynkr_limits_admit` function locks the subject's row (`FOR UPDATE`), so
gateways deciding for the same subject at once are serialised by PostgreSQL and the
limits hold exactly across them; a release is one more (`lynkr_limits_release`).

Concurrency slots expire: a gateway renews the slots it holds every `ttl / 3` seconds
(`heartbeat`), so the slots of a gateway killed mid-request are free again at most
`ttl` seconds later (`LYNKR_LIMITS_SLOT_TTL_S`, default 30).

Counters commit with `synchronous_commit = off`: a limit check never waits for a disk
flush (≈8 ms a request here with it); a crash of PostgreSQL itself may forget the counts
of its last fraction of a second, never the log (the event store keeps its own setting).

Blocking (psycopg, a few reused connections): callers run these methods in a worker
thread. Every failure to reach the database is `LimitsStoreUnavailableError` (503): the
gateway fails closed rather than admit requests it cannot count.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog

from lynkr.gateway._limits import LimitsStoreUnavailableError

__all__ = ["AdmitResult", "PostgresLimitsStore"]

log = structlog.get_logger()

_CONNECT_TIMEOUT_S = 2.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lynkr_limit_budgets (
    subject      text PRIMARY KEY,
    minute       double precision[] NOT NULL DEFAULT '{}',
    day_end      double precision   NOT NULL DEFAULT 0,
    day_requests integer            NOT NULL DEFAULT 0,
    day_tokens   bigint             NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS lynkr_limit_slots (
    slot       text PRIMARY KEY,
    subject    text NOT NULL,
    gateway    text NOT NULL,
    expires_at double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS lynkr_limit_slots_subject ON lynkr_limit_slots (subject);

-- Admit or refuse one request of `p_subject` at `p_now` (epoch seconds, the gateway's
-- clock). Returns the limit refused (NULL: admitted, counted, slot taken) and the
-- subject's counts as they were before this request.
CREATE OR REPLACE FUNCTION lynkr_limits_admit(
    p_subject text, p_now double precision, p_window double precision,
    p_day_end double precision, p_rpm integer, p_rpd integer, p_tpd bigint, p_conc integer,
    p_slot text, p_gateway text, p_ttl double precision, p_minute_only boolean,
    OUT refused text, OUT minute double precision[], OUT day_requests integer,
    OUT day_tokens bigint, OUT in_flight integer)
LANGUAGE plpgsql AS $$
DECLARE b lynkr_limit_budgets%ROWTYPE;
BEGIN
    INSERT INTO lynkr_limit_budgets (subject) VALUES (p_subject) ON CONFLICT DO NOTHING;
    SELECT * INTO b FROM lynkr_limit_budgets WHERE subject = p_subject FOR UPDATE;
    IF b.day_end <> p_day_end THEN
        b.day_end := p_day_end; b.day_requests := 0; b.day_tokens := 0;
    END IF;
    b.minute := COALESCE(ARRAY(SELECT t FROM unnest(b.minute) AS t
                               WHERE t > p_now - p_window ORDER BY t), '{}');
    DELETE FROM lynkr_limit_slots s WHERE s.subject = p_subject AND s.expires_at <= p_now;
    SELECT count(*) INTO in_flight FROM lynkr_limit_slots s WHERE s.subject = p_subject;
    minute := b.minute; day_requests := b.day_requests; day_tokens := b.day_tokens;
    IF p_rpm IS NOT NULL AND cardinality(b.minute) >= p_rpm THEN
        refused := 'requests_per_minute';
    ELSIF NOT p_minute_only AND p_rpd IS NOT NULL AND b.day_requests >= p_rpd THEN
        refused := 'requests_per_day';
    ELSIF NOT p_minute_only AND p_tpd IS NOT NULL AND b.day_tokens >= p_tpd THEN
        refused := 'tokens_per_day';
    ELSIF NOT p_minute_only AND p_conc IS NOT NULL AND in_flight >= p_conc THEN
        refused := 'concurrent';
    ELSE
        b.minute := b.minute || p_now;
        IF NOT p_minute_only THEN
            b.day_requests := b.day_requests + 1;
            INSERT INTO lynkr_limit_slots VALUES (p_slot, p_subject, p_gateway, p_now + p_ttl);
        END IF;
    END IF;
    UPDATE lynkr_limit_budgets SET minute = b.minute, day_end = b.day_end,
        day_requests = b.day_requests, day_tokens = b.day_tokens WHERE subject = p_subject;
END $$;

-- End one admitted request: free its slot; give its request back if it never started
-- a turn (`p_started` false), else add its tokens to the current day.
CREATE OR REPLACE FUNCTION lynkr_limits_release(
    p_subject text, p_slot text, p_started boolean, p_at double precision,
    p_admit_day_end double precision, p_day_end double precision, p_tokens bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE b lynkr_limit_budgets%ROWTYPE;
BEGIN
    DELETE FROM lynkr_limit_slots WHERE slot = p_slot;
    SELECT * INTO b FROM lynkr_limit_budgets WHERE subject = p_subject FOR UPDATE;
    IF NOT FOUND THEN RETURN; END IF;
    IF NOT p_started THEN
        b.minute := array_remove(b.minute, p_at);
        IF b.day_end = p_admit_day_end THEN
            b.day_requests := greatest(0, b.day_requests - 1);
        END IF;
    ELSIF p_tokens > 0 THEN
        IF b.day_end <> p_day_end THEN
            b.day_end := p_day_end; b.day_requests := 0; b.day_tokens := 0;
        END IF;
        b.day_tokens := b.day_tokens + p_tokens;
    END IF;
    UPDATE lynkr_limit_budgets SET minute = b.minute, day_end = b.day_end,
        day_requests = b.day_requests, day_tokens = b.day_tokens WHERE subject = p_subject;
END $$;
"""
_SCHEMA_LOCK = 0x6C796E6B72  # "lynkr": serialise two gateways creating the tables at once


@dataclass(frozen=True, slots=True)
class AdmitResult:
    """What `lynkr_limits_admit` decided, with the subject's counts before the request."""

    refused: str | None
    minute: list[float]
    day_requests: int
    day_tokens: int
    in_flight: int


class PostgresLimitsStore:
    """The shared counters (module docstring). Blocking; thread-safe (a pool)."""

    def __init__(self, url: str, *, gateway: str, ttl: float = 30.0, pool_size: int = 4) -> None:
        """Args:
            url: a `postgresql://…` URL.
            gateway: this gateway's id (the holder of the slots it takes).
            ttl: seconds a slot lives without a heartbeat.
            pool_size: connections at most.
        """
        self.gateway = gateway
        self.ttl = ttl
        self._pool = _Connections(url, pool_size)

    def open(self) -> None:
        """Open the pool and create the tables and functions if missing.

        Raises:
            LimitsStoreUnavailableError: the database cannot be reached.
        """
        with self._call("open") as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            conn.execute(_SCHEMA)

    def close(self) -> None:
        """Close the connections (the slots this gateway holds expire on their own)."""
        self._pool.close()

    def _call(self, what: str) -> Any:
        return self._pool.connection(what)

    def admit(self, subject: str, now: float, *, window: float, day_end: float,
              limits: Sequence[int | None], slot: str, minute_only: bool = False) -> AdmitResult:
        """Admit or refuse one request (`limits`: rpm, rpd, tpd, concurrent).

        Raises:
            LimitsStoreUnavailableError: the database cannot be reached.
        """
        rpm, rpd, tpd, conc = limits
        with self._call("admit") as conn:
            row = conn.execute(
                "SELECT * FROM lynkr_limits_admit(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " %s)", (subject, now, window, day_end, rpm, rpd, tpd, conc, slot, self.gateway,
                         self.ttl, minute_only)).fetchone()
        assert row is not None  # a function with OUT parameters returns one row
        return AdmitResult(row[0], list(row[1]), int(row[2]), int(row[3]), int(row[4]))

    def release(self, subject: str, slot: str, *, started: bool, at: float,
                admit_day_end: float, day_end: float, tokens: int) -> None:
        """End one admitted request (see the SQL function).

        Raises:
            LimitsStoreUnavailableError: the database cannot be reached.
        """
        with self._call("release") as conn:
            conn.execute("SELECT lynkr_limits_release(%s, %s, %s, %s, %s, %s, %s)",
                         (subject, slot, started, at, admit_day_end, day_end, tokens))

    def heartbeat(self, now: float) -> int:
        """Renew every slot this gateway holds; returns how many.

        Raises:
            LimitsStoreUnavailableError: the database cannot be reached.
        """
        with self._call("heartbeat") as conn:
            cursor = conn.execute("UPDATE lynkr_limit_slots SET expires_at = %s "
                                  "WHERE gateway = %s", (now + self.ttl, self.gateway))
            return int(cursor.rowcount)

    def reachable(self) -> bool:
        """True if a trivial query answers (readiness)."""
        try:
            with self._call("ping") as conn:
                conn.execute("SELECT 1")
        except LimitsStoreUnavailableError:
            return False
        return True


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Counters commit without waiting for the WAL flush: a PostgreSQL crash may forget
    the last fraction of a second of counts (as Redis's default fsync would), and each
    request saves two disk flushes (module docstring)."""
    conn.execute("SET synchronous_commit = off")


class _Connections:
    """Idle connections to reuse, at most `size` kept; a new one when none is idle.
    A failure discards the connection and every idle one (after PostgreSQL restarted
    they are all dead), so the next call connects afresh; the failure itself is
    `LimitsStoreUnavailableError` (the one boundary where psycopg errors are mapped).
    psycopg_pool is not used: its reconnection backs off for minutes after an outage."""

    def __init__(self, url: str, size: int) -> None:
        self._url = url
        self._size = size
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def connection(self, what: str) -> Iterator[psycopg.Connection[Any]]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        try:
            if conn is None:
                conn = psycopg.connect(self._url, autocommit=True,
                                       connect_timeout=int(_CONNECT_TIMEOUT_S))
                _configure(conn)
            yield conn
        except psycopg.Error as exc:
            if conn is not None:
                conn.close()
            self._discard_idle()
            raise _unavailable(what, exc) from exc
        except Exception:  # not the database's failure: the connection's state is unknown
            if conn is not None:
                conn.close()
            raise
        with self._lock:
            if not self._closed and len(self._idle) < self._size:
                self._idle.append(conn)
                return
        conn.close()

    def _discard_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def close(self) -> None:
        self._closed = True
        self._discard_idle()


def _unavailable(what: str, exc: BaseException) -> LimitsStoreUnavailableError:
    log.warning("limits_store_unavailable", operation=what, error_type=type(exc).__name__)
    return LimitsStoreUnavailableError(
        "the rate-limits store (PostgreSQL, LYNKR_LIMITS_STORE) is unreachable: requests "
        "are refused until it is back, so limits cannot be exceeded; retry shortly")
