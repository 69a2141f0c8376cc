"""The heuristic reader: common definition keywords, calls, imports; never a crash."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lynkr.indexer._extract import extract
from lynkr.indexer._fallback import extract_heuristic


def test_kotlin_php_and_c_definitions_are_found():
    """Classes and functions in languages without a grammar query are recognised."""
    kotlin = extract("kotlin", b"data class P(val x: Int)\nfun main() { run(P(1)) }\n")
    php = extract("php", b"<?php\nclass Shop {\n  public function open() {}\n}\n")
    assert {(s.name, s.kind) for s in kotlin.symbols} == {("P", "class"), ("main", "function")}
    assert {"run", "P"} <= {r.name for r in kotlin.references}
    assert {(s.name, s.kind) for s in php.symbols} == {("Shop", "class"), ("open", "function")}


def test_imports_and_includes_are_recorded():
    """#include, import and use lines become imports."""
    found = extract_heuristic(b'#include <stdio.h>\nimport foo.bar\nuse Some::Mod;\n')
    assert [i.module for i in found.imports] == ["stdio.h", "foo.bar", "Some::Mod"]


def test_non_code_languages_yield_no_symbols():
    """Markdown and JSON files are catalogued with no symbols and no parser."""
    found = extract("markdown", b"# def looks_like_code():\n")
    assert (found.symbols, found.parser) == ((), "none")


def test_very_long_lines_are_skipped():
    """A minified line longer than the cap is not scanned."""
    found = extract_heuristic(b"function a() {}" + b" " * 5000 + b"\n")
    assert found.symbols == ()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash_any_reader(data):
    """Grammar and heuristic readers accept any bytes without raising."""
    for language in ("python", "ruby", "tsx", "kotlin", "c"):
        extract(language, data)
