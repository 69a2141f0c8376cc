"""Crash safety with a real process: SIGKILL at random moments loses no acknowledged append.

A child process (`crash_child.py`) appends from several threads through the group
commit and prints each append after it returned. It is killed with SIGKILL at 21
random moments, restarted each time on the same file; after every kill
`lynkr verify` passes and every acknowledged append is in the log, unchanged. The
same holds on PostgreSQL (`LYNKR_STORE_URL`), killed 8 times.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import apsw
import psycopg
import pytest

import eventstore.events  # noqa: F401  (registers the event classes)
from eventstore import EVENTS
from lynkr.cli import main

CHILD = Path(__file__).with_name("crash_child.py")
KILLS = 21


def run_and_kill(db: Path | str, rng: random.Random) -> list[tuple[str, int]]:
    """Start the child, let it append for a random while, SIGKILL it; its acknowledgements."""
    # Unbuffered bytes: a buffered text reader's `readline` reads ahead, and
    # `communicate` then reads the pipe itself, so the read-ahead would be lost and the
    # line it cut would come back as a fragment (e.g. "ash-3 1653", never appended).
    child = subprocess.Popen([sys.executable, str(CHILD), str(db)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, bufsize=0)
    try:
        first = child.stdout.readline() if child.stdout else b""
        assert first, f"child died before appending: {child.stderr.read() if child.stderr else ''}"
        time.sleep(rng.uniform(0.0, 0.2))
    finally:
        os.kill(child.pid, signal.SIGKILL)
        out, _ = child.communicate(timeout=10)
    assert child.returncode == -signal.SIGKILL
    lines = (first + out).decode().split("\n")
    # The last line may have been cut by the kill: only whole lines count as acknowledged.
    return [(s, int(n)) for s, n in (line.split() for line in lines[:-1])]


def stored(db: Path) -> dict[tuple[str, int], bytes]:
    """Every stored (stream, seq) with its payload, read with plain SQL."""
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return {(s, n): bytes(p) for s, n, p in
                conn.execute("SELECT stream_id, seq, payload FROM events")}
    finally:
        conn.close()


@pytest.mark.slow
def test_sigkill_never_loses_an_acknowledged_append(tmp_path: Path, monkeypatch,
                                                    capsys) -> None:
    """After each of 21 SIGKILLs the log verifies and holds every acknowledged append."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LYNKR_DATA_DIR", str(tmp_path))
    db = tmp_path / "lynkr.db"
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    acknowledged: list[tuple[str, int]] = []
    for kill in range(KILLS):
        acknowledged += run_and_kill(db, rng)
        code = main(["verify"])
        report = capsys.readouterr().out
        assert code == 0, f"seed {seed}, kill {kill}: {report}"
        log = stored(db)
        missing = [a for a in acknowledged if a not in log]
        assert missing == [], f"seed {seed}, kill {kill}: lost {missing[:5]}"
        assert all(EVENTS.decode("RouteChosen", 1, log[a]).turn == a[1] for a in acknowledged)
    assert len(acknowledged) > KILLS
    assert len({s for s, _ in acknowledged}) == 4
    flip_and_verify(db, rng.choice(acknowledged), capsys)


def flip_and_verify(db: Path, target: tuple[str, int], capsys) -> None:
    """Flip one byte of `target`'s payload with plain SQL: verify exits 1 naming it."""
    conn = apsw.Connection(str(db))
    position, payload = conn.execute(
        "SELECT position, payload FROM events WHERE stream_id = ? AND seq = ?", target
    ).fetchall()[0]
    changed = bytearray(payload)
    changed[len(changed) // 2] ^= 0x20
    conn.execute("UPDATE events SET payload = ? WHERE position = ?", (bytes(changed), position))
    conn.close()
    assert main(["verify"]) == 1
    assert (f"DAMAGED {target[0]} seq {target[1]} position {position}"
            in capsys.readouterr().out)


@pytest.mark.slow
def test_sigkill_never_loses_an_acknowledged_append_on_postgres(
        tmp_path: Path, monkeypatch, capsys, postgres_url: str) -> None:
    """After each of 8 SIGKILLs the PostgreSQL log verifies and holds every acknowledged append."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LYNKR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LYNKR_STORE_URL", postgres_url)
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    acknowledged: list[tuple[str, int]] = []
    for kill in range(8):
        acknowledged += run_and_kill(postgres_url, rng)
        code = main(["verify"])
        report = capsys.readouterr().out
        assert code == 0, f"seed {seed}, kill {kill}: {report}"
        with psycopg.connect(postgres_url) as conn:
            log = {(s, n): bytes(p) for s, n, p in
                   conn.execute("SELECT stream_id, seq, payload FROM events")}
        missing = [a for a in acknowledged if a not in log]
        assert missing == [], f"seed {seed}, kill {kill}: lost {missing[:5]}"
        assert all(EVENTS.decode("RouteChosen", 1, log[a]).turn == a[1] for a in acknowledged)
    assert len({s for s, _ in acknowledged}) == 4
