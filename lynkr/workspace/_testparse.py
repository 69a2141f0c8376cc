"""Reading test output and coverage files: pure parsers, no I/O.

`parse_counts` finds pass/fail/skip counts in the output of pytest, jest, vitest,
go test and cargo test. `parse_coverage` reads a coverage report (coverage.py JSON,
istanbul `coverage-summary.json`, lcov, Cobertura XML) into a line percentage.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

__all__ = ["TestCounts", "parse_counts", "parse_coverage"]

_PYTEST = re.compile(
    r"^=*\s*((?:\d+ (?:passed|failed|skipped|errors?|xfailed|xpassed|deselected|warnings?)"
    r"(?:, )?)+) in [\d.]+s", re.M)
_PYTEST_ITEM = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)")
_JEST = re.compile(r"^Tests:\s+(.+)$", re.M)
_VITEST = re.compile(r"^\s*Tests\s+(.+?)\s*\(\d+\)\s*$", re.M)
_ITEM = re.compile(r"(\d+) (passed|failed|skipped|todo)")
_GO_CASE = re.compile(r"^\s*--- (PASS|FAIL|SKIP): ", re.M)
_GO_PKG = re.compile(r"^(ok|FAIL|\?)\s+\S+", re.M)
_CARGO = re.compile(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored")
_LINE_RATE = re.compile(r"<coverage\b[^>]*\bline-rate=\"([\d.]+)\"")


@dataclass(frozen=True, slots=True)
class TestCounts:
    """Counts found in a test run's output."""

    __test__ = False  # not a pytest test class

    framework: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0


def _pytest(output: str) -> TestCounts | None:
    summaries = _PYTEST.findall(output)
    if not summaries:
        return None
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for number, word in _PYTEST_ITEM.findall(summaries[-1]):
        key = {"error": "failed", "errors": "failed", "xfailed": "skipped",
               "xpassed": "passed"}.get(word, word)
        counts[key] += int(number)
    return TestCounts("pytest", **counts)


def _tally(framework: str, text: str) -> TestCounts:
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for number, word in _ITEM.findall(text):
        counts["skipped" if word == "todo" else word] += int(number)
    return TestCounts(framework, **counts)


def _go(output: str) -> TestCounts | None:
    cases = _GO_CASE.findall(output)
    if cases:
        return TestCounts("go", cases.count("PASS"), cases.count("FAIL"), cases.count("SKIP"))
    packages = _GO_PKG.findall(output)
    if not packages:
        return None
    return TestCounts("go", packages.count("ok"), packages.count("FAIL"), packages.count("?"))


def _cargo(output: str) -> TestCounts | None:
    results = _CARGO.findall(output)
    if not results:
        return None
    return TestCounts("cargo", *(sum(int(r[i]) for r in results) for i in range(3)))


def parse_counts(output: str) -> TestCounts | None:
    """Pass/fail/skip counts of the first framework whose summary is in `output`."""
    if found := _pytest(output):
        return found
    if match := _JEST.findall(output):
        return _tally("jest", match[-1])
    if match := _VITEST.findall(output):
        return _tally("vitest", match[-1])
    return _go(output) or _cargo(output)


def _json_percent(text: str) -> tuple[str, float] | None:
    data = json.loads(text)
    if not isinstance(data, dict):
        return None
    totals = data.get("totals")
    if isinstance(totals, dict) and isinstance(totals.get("percent_covered"), (int, float)):
        return "coverage.py", float(totals["percent_covered"])
    total = data.get("total")
    if isinstance(total, dict) and isinstance(total.get("lines"), dict):
        pct = total["lines"].get("pct")
        if isinstance(pct, (int, float)):
            return "istanbul", float(pct)
    return None


def _lcov_percent(text: str) -> tuple[str, float] | None:
    found = hit = 0
    for line in text.splitlines():
        if line.startswith("LF:"):
            found += int(line[3:] or 0)
        elif line.startswith("LH:"):
            hit += int(line[3:] or 0)
    if not found:
        return None
    return "lcov", 100.0 * hit / found


def parse_coverage(name: str, text: str) -> tuple[str, float] | None:
    """(format, line coverage percent) of a coverage report, or None if unrecognised."""
    try:
        if name.endswith(".json"):
            return _json_percent(text)
        if match := _LINE_RATE.search(text[:4096]):
            return "cobertura", 100.0 * float(match.group(1))
        if "\nLF:" in text or text.startswith(("TN:", "SF:")):
            return _lcov_percent(text)
    except (ValueError, TypeError):
        return None
    return None
