"""Benchmark the indexer on the running interpreter's standard library, against ctags.

Indexes the stdlib tree (site-packages and __pycache__ excluded by the crawler's
vendored-folder rule) cold (empty catalogue) and warm (nothing changed), runs
universal-ctags on the very same file list in the same run, and times symbol search.
Prints a Markdown section; `--write` appends it to docs/benchmark-history.md. Not run in CI.

    .venv/bin/python tools/bench_index.py [--workers 1 2] [--queries 300] [--write]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import structlog

from lynkr.indexer import Indexer, IndexerSettings
from lynkr.indexer._crawl import list_files

ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (ctags, parser workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run_ctags(tree: Path, paths: tuple[str, ...], work: Path) -> tuple[float, int, float] | str:
    """(seconds, tags, cpu seconds) for universal-ctags over `paths`, or why it failed."""
    exe = shutil.which("ctags")
    if exe is None:
        return "ctags is not installed (apt-get install universal-ctags)"
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    if "Universal Ctags" not in version.stdout:
        return f"{exe} is not universal-ctags"
    listing = work / "files.txt"
    listing.write_text("\n".join(paths) + "\n")
    tags = work / "tags"
    started, cpu = time.perf_counter(), cpu_seconds()
    done = subprocess.run([exe, "-L", str(listing), "-f", str(tags)], cwd=tree,
                          capture_output=True, check=False)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    if done.returncode != 0:
        return f"ctags failed: {done.stderr.decode(errors='replace')[:200]}"
    count = sum(1 for line in tags.read_text(errors="replace").splitlines()
                if not line.startswith("!_"))
    return seconds, count, cpu


def gil_check(tree: Path, paths: tuple[str, ...], count: int = 600
              ) -> tuple[int, float, float]:
    """(files, seconds on one thread, seconds split over two threads) to parse Python files.

    If tree-sitter released the GIL while parsing, two threads would take about half.
    """
    from concurrent.futures import ThreadPoolExecutor

    from lynkr.indexer._grammars import loaded_grammar

    grammar = loaded_grammar("python")
    assert grammar is not None
    datas = [(tree / p).read_bytes() for p in paths if p.endswith(".py")][:count]

    def parse_all(chunk: list[bytes]) -> None:
        import tree_sitter

        parser = tree_sitter.Parser()
        parser.set_language(grammar[0])
        for data in chunk:
            parser.parse(data)

    started = time.perf_counter()
    parse_all(datas)
    one = time.perf_counter() - started
    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(parse_all, [datas[0::2], datas[1::2]]))
    return len(datas), one, time.perf_counter() - started


def walk_files(jobs: list[tuple[str, bytes]]) -> int:
    """Parse each file and run its query, keeping nothing: tree-sitter's share alone."""
    from lynkr.indexer._grammars import _parser, loaded_grammar

    captured = 0
    for language, data in jobs:
        grammar = loaded_grammar(language)
        if grammar is not None:
            root = _parser(language, grammar[0]).parse(data).root_node
            captured += len(grammar[1].captures(root))
    return captured


def tree_sitter_floor(tree: Path, paths: tuple[str, ...], workers: int) -> tuple[float, float]:
    """(wall s, CPU s) of `walk_files` over the tree, split like the indexer's pool.

    The floor under the cold index: the same files parsed and queried by this process
    and `workers - 1` spawned ones, with no extraction, no pickling and no SQLite. The
    files are read (and the pool started) inside the timing, as the indexer does.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from lynkr.indexer._languages import language_for

    started, cpu = time.perf_counter(), cpu_seconds()
    jobs = [(language_for(p), (tree / p).read_bytes()) for p in paths]
    jobs.sort(key=lambda job: len(job[1]), reverse=True)
    shares = [jobs[i::workers] for i in range(workers)]
    if workers == 1:
        walk_files(shares[0])
    else:
        with ProcessPoolExecutor(workers - 1, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(walk_files, share) for share in shares[1:]]
            walk_files(shares[0])
            for future in futures:
                future.result()
    return time.perf_counter() - started, cpu_seconds() - cpu


def time_searches(indexer: Indexer, queries: int) -> dict[str, float]:
    """p50/p95 milliseconds of fuzzy, prefix and exact search, and of references."""
    rng = random.Random(4)
    names = indexer.catalogue.distinct_names()
    picks = [rng.choice(names) for _ in range(queries)]
    results: dict[str, float] = {}
    modes = {
        "fuzzy": lambda n: indexer.search(n[: max(3, len(n) // 2)], mode="fuzzy"),
        "prefix": lambda n: indexer.search(n[:3], mode="prefix"),
        "exact": lambda n: indexer.search(n, mode="exact"),
        "refs": lambda n: indexer.references(n, limit=100),
    }
    indexer.search("warmup")  # builds the name index once, as the first real query would
    for mode, call in modes.items():
        times, cpu = [], []
        for name in picks:
            started, cpu_started = time.perf_counter(), time.thread_time()
            call(name)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.thread_time() - cpu_started) * 1000)
        times.sort()
        results[f"{mode}_p50"] = statistics.median(times)
        results[f"{mode}_p95"] = times[int(len(times) * 0.95) - 1]
        results[f"{mode}_cpu_p50"] = statistics.median(cpu)
    return results


CtagsRun = Callable[[], "tuple[float, int, float] | str"]


def adjacent_ctags(runs: list[tuple[float, int, float] | str]) -> tuple[float, float] | None:
    """Mean (wall s, CPU s) of the ctags runs around a cold index, if they all worked."""
    done = [run for run in runs if not isinstance(run, str)]
    if not done or len(done) < len(runs):
        return None
    return statistics.fmean(r[0] for r in done), statistics.fmean(r[2] for r in done)


def bench(tree: Path, workers: int, queries: int, ctags: CtagsRun) -> dict[str, object]:
    """One worker count: cold (between two ctags runs, the machine being shared), warm, search."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = IndexerSettings(workers=workers, claude_md="off")
        indexer = Indexer(tree, Path(tmp) / "index.db", settings)
        before = ctags()
        cpu = cpu_seconds()
        cold = indexer.rebuild()
        cold_cpu = cpu_seconds() - cpu
        around = adjacent_ctags([before, ctags()])
        warm = indexer.rebuild()
        verifying = Indexer(tree, Path(tmp) / "index.db",
                            IndexerSettings(workers=workers, claude_md="off",
                                            verify_content=True))
        warm_verify = verifying.rebuild()
        verifying.close()
        searches = time_searches(indexer, queries) if queries else {}
        size = (Path(tmp) / "index.db").stat().st_size
        indexer.close()
    floor = tree_sitter_floor(tree, list_files(tree, IndexerSettings()).paths, workers)
    return {"workers": workers, "cold": cold, "warm": warm, "searches": searches,
            "db_mb": size / 1e6, "cold_cpu": cold_cpu, "warm_verify": warm_verify,
            "floor": floor, "ctags": around}


def report(tree: Path, runs: list[dict[str, object]], ctags: tuple[float, int, float] | str,
           listed: int) -> str:
    load = os.getloadavg()
    lines = [
        f"## Indexer: Python stdlib, cold / warm / search vs universal-ctags "
        f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"- Machine: {os.cpu_count()} cores (`nproc`), {cpu_model()}, Python "
        f"{platform.python_version()}; load average at the end {load[0]:.1f} / {load[1]:.1f}",
        f"- Command: `.venv/bin/python tools/bench_index.py {' '.join(sys.argv[1:])}`",
        f"- Tree: `{tree}` ({listed} files after the crawler's rules)",
    ]
    if isinstance(ctags, str):
        lines.append(f"- ctags: **not measured**: {ctags}")
    else:
        lines.append(f"- universal-ctags on the same file list: {ctags[0]:.2f} s wall, "
                     f"{ctags[2]:.2f} s CPU, {ctags[1]} tags ({listed / ctags[0]:.0f} files/s, "
                     f"{ctags[1] / ctags[0]:.0f} tags/s)")
    lines += ["", "Each row's ratios are against the mean of two ctags runs timed just before "
              "and just after its cold index.", "",
              "| workers | cold s (wall) | cold CPU s | files/s | symbols/s | symbols | refs | "
              "ctags wall / CPU s | wall vs ctags | CPU vs ctags | "
              "tree-sitter floor wall / CPU s (vs ctags) | "
              "warm s | warm/cold | warm hashing all s | "
              "fuzzy p50 ms (wall/CPU) | prefix p50 | exact p50 | refs p50 | db MB |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        cold, warm, s = run["cold"], run["warm"], run["searches"]
        ctags_s, ctags_cpu = run["ctags"] or (None, None)
        near = f"{ctags_s:.2f} / {ctags_cpu:.2f}" if ctags_s else "n/a"
        wall = f"{cold.duration_s / ctags_s:.1f}x" if ctags_s else "n/a"
        cpu = f"{run['cold_cpu'] / ctags_cpu:.1f}x" if ctags_cpu else "n/a"
        floor_wall, floor_cpu = run["floor"]
        floor = f"{floor_wall:.2f} / {floor_cpu:.2f}" + (
            f" ({floor_wall / ctags_s:.1f}x / {floor_cpu / ctags_cpu:.1f}x)"
            if ctags_s and ctags_cpu else "")
        lines.append(
            f"| {run['workers']} | {cold.duration_s:.2f} | {run['cold_cpu']:.2f} | "
            f"{cold.files / cold.duration_s:.0f} | {cold.symbols / cold.duration_s:.0f} | "
            f"{cold.symbols} | {cold.references} | {near} | {wall} | {cpu} | {floor} | "
            f"{warm.duration_s:.3f} | "
            f"{100 * warm.duration_s / cold.duration_s:.1f} % | "
            f"{run['warm_verify'].duration_s:.3f} | "
            f"{s.get('fuzzy_p50', 0):.2f} / {s.get('fuzzy_cpu_p50', 0):.2f} | "
            f"{s.get('prefix_p50', 0):.2f} | {s.get('exact_p50', 0):.2f} | "
            f"{s.get('refs_p50', 0):.2f} | {run['db_mb']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--write", action="store_true", help="append to docs/benchmark-history.md")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    tree = args.tree.resolve()
    listing = list_files(tree, IndexerSettings())
    for path in listing.paths:  # warm the page cache: ctags, timed first, must not read cold
        with contextlib.suppress(OSError):
            (tree / path).read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        ctags = run_ctags(tree, listing.paths, Path(tmp))
    parsed, one, two = gil_check(tree, listing.paths)
    with tempfile.TemporaryDirectory() as tmp:
        def again() -> tuple[float, int, float] | str:
            return run_ctags(tree, listing.paths, Path(tmp))

        runs = [bench(tree, workers, args.queries, again) for workers in args.workers]
    text = report(tree, runs, ctags, len(listing.paths))
    text += (f"\nParsing {parsed} Python files with tree-sitter: {one:.2f} s on one thread, "
             f"{two:.2f} s split over two threads (tree-sitter 0.21.3 holds the GIL while "
             f"it parses, so the cold index uses worker processes instead).\n")
    print(text)
    if args.write:
        target = ROOT / "docs" / "benchmark-history.md"
        prefix = "" if target.exists() else "# Lynkr benchmarks\n\n"
        with target.open("a") as handle:
            handle.write(prefix + "\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
