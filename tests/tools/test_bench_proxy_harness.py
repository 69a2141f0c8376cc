"""`tools/bench_proxy.py`'s harness: a process's CPU counts its children's, logs go to files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools.bench_proxy import cpu_seconds, start, stop

# A parent that starts a child burning 0.4 s of CPU, then both sleep until killed.
FAMILY = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import time\\nend = time.process_time() + 0.4\\n"
    "while time.process_time() < end: pass\\nprint('burnt', flush=True)\\ntime.sleep(60)"],
    stdout=subprocess.PIPE, text=True)
child.stdout.readline()
print('LISTENING on 127.0.0.1:1', flush=True)
time.sleep(60)
"""


def test_cpu_seconds_counts_the_processes_under_the_gateway(tmp_path: Path):
    """The CPU a child used shows in its parent's figure, though the parent itself idles."""
    proc, port = start([sys.executable, "-c", FAMILY], tmp_path, {"PATH": "/usr/bin:/bin"},
                       "LISTENING", use_stderr=False)
    try:
        assert port == 1
        assert cpu_seconds(proc.pid) >= 0.35
    finally:
        subprocess.run(["pkill", "-KILL", "-P", str(proc.pid)], check=False)  # the child
        stop(proc)


def test_a_process_that_exits_before_its_marker_is_reported_with_its_stderr(tmp_path: Path):
    """No marker: SystemExit with the exit code and what it wrote to stderr (noticed when
    it exits, not after the wait for the marker has run out)."""
    with pytest.raises(SystemExit, match="exited before listening: 1\nno port for you"):
        start([sys.executable, "-c", "import sys; sys.exit('no port for you')"], tmp_path,
              {"PATH": "/usr/bin:/bin"}, "LISTENING", use_stderr=False)
