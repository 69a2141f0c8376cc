"""Shared rate-limit counters: PostgreSQL or Redis? Added latency and CPU per request.

    .venv/bin/python tools/bench_limits_store.py [--requests 3000] [--subjects 20]
        [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--redis redis://127.0.0.1:6379/15]

Every request admitted by a shared limiter costs one admission (check every limit,
count the request, take a concurrency slot) and one release (free the slot, add the
turn's tokens). This times that pair, one request after another, on:

- **memory**: `lynkr.gateway.Limiter` (one gateway, nothing shared) — the floor;
- **postgresql**: `PostgresLimitsStore` (`lynkr.gateway._limits_store`, what Lynkr
  uses): one `lynkr_limits_admit` and one `lynkr_limits_release` call, each a single
  round trip that locks the subject's row;
- **redis**: the same rules as two Lua scripts (a sorted set for the minute window and
  one for the slots, a hash for the day) through redis-py's `EVALSHA`, one round trip
  each. Needs `pip install redis==8.1.0` (not a Lynkr dependency); skipped without it.

Reported per request: wall latency (median, p99), the client's CPU (this process) and
the server's CPU (the PostgreSQL backend's or redis-server's, from /proc), in µs. The
pro tier's limits (300/min, 1M tokens/day, 16 concurrent) over `--subjects` keys, so
nothing is refused and the minute windows hold realistic lengths. A scratch schema
(PostgreSQL) or key prefix (Redis) is created and removed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lynkr.gateway import Admission, Limiter, LimitSettings, Principal

RPM, RPD, TPD, CONC = 300, None, 1_000_000, 16
USAGE = {"input_tokens": 40, "output_tokens": 10}

_ADMIT_LUA = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[2]))
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local d = redis.call('HMGET', KEYS[1], 'day_end', 'req', 'tok')
local req, tok = tonumber(d[2]) or 0, tonumber(d[3]) or 0
if d[1] ~= ARGV[3] then req = 0; tok = 0 end
local m, f = redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3])
local refused = ''
if ARGV[4] ~= '' and m >= tonumber(ARGV[4]) then refused = 'requests_per_minute'
elseif ARGV[5] ~= '' and req >= tonumber(ARGV[5]) then refused = 'requests_per_day'
elseif ARGV[6] ~= '' and tok >= tonumber(ARGV[6]) then refused = 'tokens_per_day'
elseif ARGV[7] ~= '' and f >= tonumber(ARGV[7]) then refused = 'concurrent'
else
  redis.call('ZADD', KEYS[2], now, ARGV[8]); req = req + 1
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[9]), ARGV[8])
end
redis.call('HSET', KEYS[1], 'day_end', ARGV[3], 'req', req, 'tok', tok)
return {refused, redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES'), req, tok, f}
"""
_RELEASE_LUA = """
redis.call('ZREM', KEYS[3], ARGV[1])
if ARGV[2] == '0' then
  redis.call('ZREM', KEYS[2], ARGV[1]); redis.call('HINCRBY', KEYS[1], 'req', -1)
else
  redis.call('HINCRBY', KEYS[1], 'tok', ARGV[3])
end
"""


def _cpu_of(pid: int) -> float:
    """Seconds of CPU (user + system) process `pid` used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run(name: str, one: Callable[[int], None], n: int, server_pid: int | None) -> dict[str, float]:
    for i in range(min(200, n)):  # warm up: connections, plans, scripts
        one(i)
    times: list[float] = []
    cpu0, server0 = time.process_time(), _cpu_of(server_pid) if server_pid else 0.0
    for i in range(n):
        start = time.perf_counter()
        one(i)
        times.append(time.perf_counter() - start)
    cpu = time.process_time() - cpu0
    server = (_cpu_of(server_pid) - server0) if server_pid else 0.0
    times.sort()
    row = {"median_us": statistics.median(times) * 1e6, "p99_us": times[int(n * 0.99)] * 1e6,
           "client_cpu_us": cpu / n * 1e6, "server_cpu_us": server / n * 1e6}
    print(f"{name:<11} latency median {row['median_us']:7.0f} µs  p99 {row['p99_us']:7.0f} µs  "
          f"client CPU {row['client_cpu_us']:6.0f} µs  server CPU {row['server_cpu_us']:6.0f} µs"
          "  (per admit + release)")
    return row


def bench_memory(n: int, subjects: int) -> dict[str, float]:
    limiter = Limiter(LimitSettings())
    keys = [Principal(key_id=f"k{i}", user="u", tier="pro", scopes=frozenset(), via="key")
            for i in range(subjects)]

    def one(i: int) -> None:
        admitted = limiter.admit(keys[i % subjects])
        assert isinstance(admitted, Admission)
        admitted.release(started=True, usage=USAGE)

    return _run("memory", one, n, None)


def bench_postgres(url: str, n: int, subjects: int) -> dict[str, float]:
    import psycopg

    from lynkr.gateway._limits_store import PostgresLimitsStore

    schema = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}".encode())
    sep = "&" if "?" in url else "?"
    store = PostgresLimitsStore(f"{url}{sep}options={quote(f'-csearch_path={schema}')}",
                                gateway="bench", pool_size=1)
    try:
        store.open()
        with store._pool.connection("bench") as conn:  # the one backend serving the calls
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
        pid = int(row[0]) if row else None
        day_end = time.time() + 86_400

        def one(i: int) -> None:
            now, slot = time.time(), uuid.uuid4().hex
            subject = f"k{i % subjects}"
            result = store.admit(subject, now, window=60.0, day_end=day_end,
                                 limits=(RPM, RPD, TPD, CONC), slot=slot)
            assert result.refused is None, result.refused
            store.release(subject, slot, started=True, at=now, admit_day_end=day_end,
                          day_end=day_end, tokens=50)

        return _run("postgresql", one, n, pid)
    finally:
        store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())


def bench_redis(url: str, n: int, subjects: int) -> dict[str, float] | None:
    try:
        import redis
    except ImportError:
        print("redis       skipped: pip install redis==8.1.0 to measure it")
        return None
    client = redis.Redis.from_url(url)
    admit, release = client.register_script(_ADMIT_LUA), client.register_script(_RELEASE_LUA)
    prefix = f"lynkr-bench-{secrets.token_hex(4)}"
    pid = int(client.info("server")["process_id"])
    day_end = str(time.time() + 86_400)
    rpd = "" if RPD is None else str(RPD)

    def one(i: int) -> None:
        now, slot = time.time(), uuid.uuid4().hex
        keys = [f"{prefix}:{i % subjects}:{part}" for part in ("day", "minute", "slots")]
        out = admit(keys=keys, args=[now, 60, day_end, RPM, rpd, TPD, CONC, slot, 30])
        assert out[0] == b"", out[0]
        release(keys=keys, args=[slot, 1, 50])

    try:
        return _run("redis", one, n, pid)
    finally:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--subjects", type=int, default=20)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    bench_memory(args.requests, args.subjects)
    bench_postgres(args.pg, args.requests, args.subjects)
    bench_redis(args.redis, args.requests, args.subjects)


if __name__ == "__main__":
    main()
