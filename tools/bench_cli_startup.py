"""Wall time of the quick `lynkr` commands, start-up included (a script, not a test).

    .venv/bin/python tools/bench_cli_startup.py [--runs 20]

Creates a small data directory (a few tool calls recorded through the real CLI, so
`sessions`, `transcript`, `tasks` and `audit` have rows to print), then runs each
command `--runs` times as a new process, exactly as a user would start it (the
`lynkr` console script beside this Python, else `python -m lynkr`), and prints the
p50 and p90 wall milliseconds per command. The baseline is `python -c pass`,
measured in the same run: the part of a command's time that no Lynkr change can
remove. A command that exits non-zero is reported, not timed.

Each command runs once untimed first, with PYTHONDONTWRITEBYTECODE removed from its
environment, so its bytecode cache is written: a user's second run compiles nothing,
and neither should a measurement. To time another checkout (say, the commit before
a change), put it first on PYTHONPATH: ``git archive REV | tar -x -C /tmp/rev`` and
``PYTHONPATH=/tmp/rev python tools/bench_cli_startup.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SESSION = "bench"
COMMANDS: list[tuple[str, list[str]]] = [
    ("--help", ["--help"]),
    ("--version", ["--version"]),
    ("sessions", ["sessions"]),
    ("transcript", ["transcript", SESSION]),
    ("config", ["config"]),
    ("tasks", ["tasks"]),
    ("audit", ["audit"]),
]


def lynkr_command() -> list[str]:
    """How a user starts `lynkr` with this Python: its console script, else `-m lynkr`."""
    script = Path(sys.executable).parent / "lynkr"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lynkr"]


def make_data_dir(root: Path, env: dict[str, str]) -> None:
    """A log with one session holding two task creations and one denied read."""
    calls = [
        ("workspace_task_create", '{"title": "write the benchmark"}'),
        ("workspace_task_create", '{"title": "report the numbers"}'),
        ("fs_read", '{"path": "../outside"}'),
    ]
    for name, body in calls:
        subprocess.run([*lynkr_command(), "tool", "call", name, body, "--session", SESSION],
                       cwd=root, env=env, capture_output=True, check=False)
    if not (root / "data" / "lynkr.db").exists():
        sys.exit("bench_cli_startup: could not create the sample log with `lynkr tool call`")


def time_runs(argv: list[str], runs: int, cwd: Path, env: dict[str, str]) -> list[float] | str:
    """Wall milliseconds of `runs` runs of `argv`, or the error of the first failing run."""
    subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)  # warm caches
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        samples.append((time.perf_counter() - start) * 1000)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no stderr)"])[-1]
            return f"exit {done.returncode}: {last[:60]}"
    return samples


def percentile(samples: list[float], q: int) -> float:
    """The q-th percentile (inclusive method) of `samples`."""
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def row(name: str, result: list[float] | str, baseline: float | None) -> str:
    """One Markdown table row: command, p50, p90 and p50 above the baseline."""
    if isinstance(result, str):
        return f"| {name} | - | - | - | {result} |"
    p50, p90 = percentile(result, 50), percentile(result, 90)
    extra = "" if baseline is None else f"{p50 - baseline:.0f}"
    return f"| {name} | {p50:.0f} | {p90:.0f} | {extra} | |"


def main() -> None:
    """Build the data directory, time every command, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per command")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lynkr-bench-cli-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "LYNKR_DATA_DIR": str(root / "data"), "WORKSPACE_ROOT": str(root),
               "LOG_LEVEL": "warning"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        make_data_dir(root, env)
        base = time_runs([sys.executable, "-c", "pass"], args.runs, root, env)
        assert not isinstance(base, str), base
        baseline = percentile(base, 50)
        print(f"{args.runs} runs each, wall ms, {os.cpu_count()} CPUs, {sys.version.split()[0]}")
        print("| command | p50 | p90 | p50 - baseline | note |")
        print("|---|---:|---:|---:|---|")
        print(row("python -c pass (baseline)", base, None))
        for name, argv in COMMANDS:
            print(row(f"lynkr {name}", time_runs([*lynkr_command(), *argv], args.runs, root, env),
                      baseline), flush=True)


if __name__ == "__main__":
    main()
