"""What `/metrics` reads at scrape time: counters folded from the log, and one snapshot.

`LogTally` folds the events appended since the gateway started (`PolicyDecided`,
`ToolCompleted`, `RateLimited`: policy decisions by tool and decision, server tool calls
and their durations, rate-limit refusals by tier), reading only what is new at each
scrape, so the request path carries no instrumentation for them and every process
that appends (the CLI's `lynkr tool call`, another gateway on the same log) is
counted too. `ScrapeSnapshot` holds the rest as last read (the prompt cache's
statistics, the MCP catalogue, the event store writer's counters, append latency
histogram and WAL size, the
projections' offsets, the callback tunnel's connectors and calls); `ScrapeCollector`
turns both into Prometheus metric families.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from actors import APPEND_BUCKETS
from eventstore import Recorded, Recorder
from eventstore.events.limits import RateLimited
from eventstore.events.session import PolicyDecided, ToolCompleted

__all__ = ["TOOL_BUCKETS", "LogTally", "ScrapeCollector", "ScrapeSnapshot"]

TOOL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Upper bounds (seconds) of the server tool duration histogram (+Inf added)."""

_PAGE = 1000  # events read per page while catching up


@dataclass(slots=True)
class _Durations:
    """One tool's duration histogram: per-bucket counts (the last is +Inf) and sum."""

    buckets: list[int] = field(default_factory=lambda: [0] * (len(TOOL_BUCKETS) + 1))
    total: float = 0.0

    def add(self, seconds: float) -> None:
        self.buckets[bisect.bisect_left(TOOL_BUCKETS, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        """Prometheus' cumulative buckets, `le` label first."""
        out, running = [], 0
        for bound, count in zip((*TOOL_BUCKETS, float("inf")), self.buckets, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
        return out


@dataclass(slots=True)
class LogTally:
    """Counters folded from the events after `position` (see module docstring)."""

    position: int
    decisions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (tool, decision)
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)  # (tool, "true"/"false")
    durations: dict[str, _Durations] = field(default_factory=dict)  # tool -> histogram
    refusals: Counter[tuple[str, str]] = field(default_factory=Counter)  # (tier, limit)

    @classmethod
    def starting_now(cls, recorder: Recorder) -> LogTally:
        """A tally that counts what is appended from now on (Prometheus counters start
        at zero with the process)."""
        return cls(position=recorder.last_position())

    def catch_up(self, recorder: Recorder) -> None:
        """Fold the events appended since the last call (blocking reads: call on a thread)."""
        while page := recorder.read_all(self.position, _PAGE):
            self.fold(page)

    def fold(self, records: Sequence[Recorded[Any]]) -> None:
        """Count each event of `records` that a metric reads; move the position past them."""
        for record in records:
            event = record.event
            if isinstance(event, PolicyDecided):
                self.decisions[(event.tool, event.decision)] += 1
            elif isinstance(event, ToolCompleted):
                self.calls[(event.tool, "true" if event.ok else "false")] += 1
                self.durations.setdefault(event.tool, _Durations()).add(event.duration_ms / 1000)
            elif isinstance(event, RateLimited):
                self.refusals[(event.tier, event.limit)] += 1
            self.position = max(self.position, record.position)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScrapeSnapshot:
    """What the last scrape read from the gateway's parts (None: that part is absent)."""

    cache: Any | None = None  # lynkr.orchestrator.CacheStatistics
    mcp_servers: Mapping[str, Any] = field(default_factory=dict)  # name -> McpServerView
    writer: Any | None = None  # actors.WriterStatistics
    wal_bytes: int | None = None
    projections: Any | None = None  # actors.RunnerStatus
    tunnel: Any | None = None  # lynkr.tunnel.TunnelStatistics


class ScrapeCollector:
    """A custom prometheus collector over a `LogTally` and the latest `ScrapeSnapshot`."""

    def __init__(self, tally: LogTally) -> None:
        self.tally = tally
        self.snapshot = ScrapeSnapshot()

    def describe(self) -> list[Metric]:
        """Nothing up front: the families are only known at collection time."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Every scrape-time family (see README, "Metrics")."""
        yield from self._from_log()
        snap = self.snapshot
        if snap.cache is not None:
            yield from _cache_families(snap.cache)
        yield from _mcp_families(snap.mcp_servers)
        if snap.writer is not None:
            yield from _writer_families(snap.writer)
        if snap.wal_bytes is not None:
            yield GaugeMetricFamily("lynkr_event_store_wal_bytes",
                                    "Size of the event log's SQLite WAL file", snap.wal_bytes)
        if snap.projections is not None:
            yield _lag_family(snap.projections)
        if snap.tunnel is not None:
            yield from _tunnel_families(snap.tunnel)

    def _from_log(self) -> Iterator[Metric]:
        tally = self.tally
        yield _counter("lynkr_policy_decisions", "Policy decisions since start",
                       ["tool", "decision"], tally.decisions)
        yield _counter("lynkr_server_tool_calls", "Server tool calls completed since start",
                       ["tool", "ok"], tally.calls)
        durations = HistogramMetricFamily("lynkr_server_tool_duration_seconds",
                                          "Server tool call durations", labels=["tool"])
        for tool, hist in sorted(tally.durations.items()):
            durations.add_metric([tool], hist.cumulative(), hist.total)
        yield durations
        yield _counter("lynkr_rate_limit_refusals", "Requests refused by a tier's limits",
                       ["tier", "limit"], tally.refusals)


def _counter(name: str, doc: str, labels: list[str],
             counts: Mapping[tuple[str, str], int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, value in sorted(counts.items()):
        family.add_metric(list(key), value)
    return family


def _cache_families(stats: Any) -> Iterator[Metric]:
    yield GaugeMetricFamily("lynkr_prompt_cache_entries", "Answers the prompt cache holds",
                            stats.entries)
    yield CounterMetricFamily("lynkr_prompt_cache_stores", "Answers stored since start",
                              stats.stores)
    yield CounterMetricFamily("lynkr_prompt_cache_evictions",
                              "Entries evicted (size or age) since start", stats.evictions)


def _mcp_families(servers: Mapping[str, Any]) -> Iterator[Metric]:
    states = GaugeMetricFamily("lynkr_mcp_servers", "Attached MCP servers by state",
                               labels=["state"])
    for state, count in sorted(Counter(v.state for v in servers.values()).items()):
        states.add_metric([state], count)
    yield states
    restarts = GaugeMetricFamily("lynkr_mcp_server_restarts",
                                 "Restarts of each MCP server since it was attached",
                                 labels=["server"])
    for name, view in sorted(servers.items()):
        restarts.add_metric([name], view.restarts)
    yield restarts


def _writer_families(stats: Any) -> Iterator[Metric]:
    for name, doc in (("appends", "Append requests committed"),
                      ("events", "Events committed"),
                      ("batches", "Group commits (events / batches = mean batch size)"),
                      ("conflicts", "Appends refused by optimistic concurrency"),
                      ("failures", "Appends that failed otherwise")):
        yield CounterMetricFamily(f"lynkr_event_store_{name}", doc + " since start",
                                  getattr(stats, name))
    yield GaugeMetricFamily("lynkr_event_store_position", "The log's last global position",
                            stats.last_position)
    if stats.append_buckets:
        yield _append_family(stats.append_buckets, stats.append_seconds)


def _append_family(buckets: Sequence[int], seconds: float) -> Metric:
    """`lynkr_eventstore_append_seconds`: the writer's submit-to-commit buckets."""
    family = HistogramMetricFamily("lynkr_eventstore_append_seconds",
                                   "Event store appends: time from submit to commit")
    cumulative, running = [], 0
    for bound, count in zip((*APPEND_BUCKETS, float("inf")), buckets, strict=True):
        running += count
        cumulative.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
    family.add_metric([], cumulative, seconds)
    return family


def _lag_family(status: Any) -> Metric:
    lag = GaugeMetricFamily("lynkr_projection_lag_events",
                            "Events each projection is behind the log", labels=["projection"])
    for projection in status.projections:
        lag.add_metric([projection.name], max(0, status.log_position - projection.position))
    return lag


def _tunnel_families(stats: Any) -> Iterator[Metric]:
    yield GaugeMetricFamily("lynkr_tunnel_connectors", "Connected `lynkr connect` connectors",
                            stats.connectors)
    yield GaugeMetricFamily("lynkr_tunnel_pending_calls",
                            "Tunnelled calls queued or waiting, not yet sent",
                            stats.pending_calls)
    yield GaugeMetricFamily("lynkr_tunnel_in_flight_calls",
                            "Tunnelled calls sent, not yet answered", stats.in_flight)
    yield CounterMetricFamily("lynkr_tunnel_answered_calls",
                              "Tunnelled calls answered since start", stats.answered)
