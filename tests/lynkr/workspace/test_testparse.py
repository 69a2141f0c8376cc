"""Parsing test output (pytest, jest, vitest, go, cargo) and coverage reports."""

from __future__ import annotations

import json

import pytest

from lynkr.workspace._testparse import TestCounts, parse_counts, parse_coverage


@pytest.mark.parametrize(("output", "expected"), [
    ("....F.s\n==== 1 failed, 5 passed, 1 skipped in 0.12s ====\n",
     TestCounts("pytest", 5, 1, 1)),
    ("3 passed, 2 warnings in 0.01s\n", TestCounts("pytest", 3, 0, 0)),
    ("= 1 passed, 1 error, 1 xfailed in 1.00s =", TestCounts("pytest", 1, 1, 1)),
    ("Test Suites: 1 failed, 1 total\nTests:       1 failed, 2 skipped, 7 passed, 10 total\n",
     TestCounts("jest", 7, 1, 2)),
    (" Test Files  1 failed | 2 passed (3)\n      Tests  2 failed | 9 passed | 1 skipped (12)\n",
     TestCounts("vitest", 9, 2, 1)),
    ("=== RUN   TestA\n--- PASS: TestA (0.00s)\n--- FAIL: TestB (0.00s)\n"
     "--- SKIP: TestC (0.00s)\nFAIL\tex/pkg\t0.01s\n", TestCounts("go", 1, 1, 1)),
    ("ok  \tex/a\t0.01s\nok  \tex/b\t0.01s\n", TestCounts("go", 2, 0, 0)),
    ("test result: ok. 4 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out\n"
     "test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured\n",
     TestCounts("cargo", 5, 2, 1)),
])
def test_counts_are_parsed_per_framework(output, expected):
    """Each framework's summary gives its pass/fail/skip counts."""
    assert parse_counts(output) == expected


def test_unknown_output_has_no_counts():
    """Output with no known summary yields None rather than zeros."""
    assert parse_counts("hello\n") is None


def test_coverage_py_json_is_read():
    """coverage.py JSON gives totals.percent_covered."""
    assert parse_coverage("coverage.json", json.dumps(
        {"totals": {"percent_covered": 87.5}})) == ("coverage.py", 87.5)


def test_istanbul_summary_is_read():
    """istanbul's coverage-summary.json gives total.lines.pct."""
    assert parse_coverage("coverage-summary.json", json.dumps(
        {"total": {"lines": {"pct": 66.6}}})) == ("istanbul", 66.6)


def test_lcov_is_summed_over_files():
    """lcov line counts are summed over every file record."""
    text = "TN:\nSF:a.js\nLF:10\nLH:5\nend_of_record\nSF:b.js\nLF:10\nLH:10\nend_of_record\n"
    assert parse_coverage("lcov.info", text) == ("lcov", 75.0)


def test_cobertura_line_rate_is_read():
    """Cobertura XML's root line-rate becomes a percentage."""
    text = '<?xml version="1.0" ?>\n<coverage line-rate="0.5" branch-rate="0">\n</coverage>'
    assert parse_coverage("coverage.xml", text) == ("cobertura", 50.0)


def test_garbage_coverage_is_unrecognised():
    """An unreadable report is None, not an exception."""
    assert parse_coverage("coverage.json", "{not json") is None
    assert parse_coverage("x.txt", "nothing") is None
