"""Every grammar loads and its query finds definitions, references and imports."""

from __future__ import annotations

import pytest

from lynkr.indexer._extract import extract
from lynkr.indexer._grammars import extract_with_grammar, grammar_languages, loaded_grammar

SAMPLES = {
    "python": (b"import os\nclass A(Base):\n    def m(self):\n        return f()\n",
               {("A", "class"), ("m", "method")}, {"Base", "f"}, {"os"}),
    "javascript": (b"const x = require('lib');\nclass A extends B { m() { go(); } }\n"
                   b"const h = () => 1;\nfunction g() {}\n",
                   {("A", "class"), ("m", "method"), ("h", "function"), ("g", "function")},
                   {"B", "go"}, {"lib"}),
    "typescript": (b"import { t } from './t';\ninterface I { a: T }\ntype U = I;\n"
                   b"enum E { X }\nexport class C implements I { run(): void { t(); } }\n",
                   {("I", "interface"), ("U", "type"), ("E", "enum"), ("C", "class"),
                    ("run", "method")}, {"t", "T", "I"}, {"./t"}),
    "tsx": (b"import React from 'react';\nexport function App() { return <Card/>; }\n",
            {("App", "function")}, {"Card", "React"}, {"react"}),
    "go": (b'package m\nimport "fmt"\ntype S struct{}\ntype I interface{}\n'
           b'func (s S) M() { fmt.Println() }\nfunc F() S { return S{} }\n',
           {("S", "struct"), ("I", "interface"), ("M", "method"), ("F", "function")},
           {"Println", "S"}, {'"fmt"'.strip('"')}),
    "rust": (b"use std::io;\nstruct P;\ntrait T {}\nimpl T for P { fn go(&self) { run(); } }\n"
             b"fn main() { println!(\"x\"); }\n",
             {("P", "struct"), ("T", "trait"), ("go", "method"), ("main", "function")},
             {"run", "println", "T"}, {"std::io"}),
    "java": (b"import java.util.List;\nclass A { A() {} void m() { List.of(); new B(); } }\n"
             b"interface I {}\n",
             {("A", "class"), ("m", "method"), ("I", "interface"), ("A", "constructor")},
             {"of", "B", "List"}, {"java.util.List"}),
    "ruby": (b"require 'json'\nmodule M\n  class K < Base\n    def go; helper(1); end\n"
             b"  end\nend\n",
             {("M", "module"), ("K", "class"), ("go", "method")}, {"Base", "helper"}, {"json"}),
}


@pytest.mark.parametrize("language", sorted(SAMPLES))
def test_each_grammar_loads_and_extracts(language):
    """The grammar of each required language loads and finds symbols, uses and imports."""
    source, symbols, refs, imports = SAMPLES[language]
    found = extract_with_grammar(language, source)
    assert found is not None
    assert found.parser == "grammar"
    assert found.problem is None
    assert symbols <= {(s.name, s.kind) for s in found.symbols}
    assert refs <= {r.name for r in found.references}
    assert imports <= {i.module for i in found.imports}


def test_all_required_languages_have_grammars():
    """Python, JS, TS, TSX, Go, Rust, Java and Ruby all have a loadable grammar and query."""
    required = {"python", "javascript", "typescript", "tsx", "go", "rust", "java", "ruby"}
    assert required <= grammar_languages()
    assert all(loaded_grammar(lang) is not None for lang in required)


def test_definition_names_are_not_references():
    """A definition's own name never shows up as a reference."""
    found = extract("python", b"def f():\n    return f()\n")
    assert [(r.name, r.line) for r in found.references] == [("f", 2)]


def test_a_syntax_error_is_reported_with_its_line():
    """A broken file still yields what parsed, with the error's line as the problem."""
    found = extract("python", b"def ok():\n    pass\n\ndef bad(:\n")
    assert found.problem == "syntax error near line 4"
    assert "ok" in {s.name for s in found.symbols}


def test_a_broken_grammar_query_falls_back_to_the_heuristic(monkeypatch):
    """If a language's query does not compile, the heuristic reads its files instead."""
    from lynkr.indexer import _grammars

    monkeypatch.setitem(_grammars.QUERIES, "ruby", "(this is not a query")
    monkeypatch.setattr(_grammars, "_loaded", {})
    monkeypatch.setattr(_grammars, "_broken", set())
    found = extract("ruby", b"class Shop\n  def open_up\n  end\nend\n")
    assert found.parser == "heuristic"
    assert {(s.name, s.kind) for s in found.symbols} == {("Shop", "class"),
                                                         ("open_up", "function")}
    assert "ruby" in _grammars._broken


def test_methods_get_their_class_as_parent_and_positions_are_one_based():
    """Positions are 1-based lines and columns; nested functions name their parent."""
    found = extract("python", b"class A:\n    def m(self):\n        pass\n")
    method = next(s for s in found.symbols if s.name == "m")
    assert (method.start_line, method.start_col, method.end_line, method.parent) == (2, 5, 3, "A")
    assert method.signature == "def m(self):"


def test_a_node_captured_as_two_kinds_keeps_the_first_patterns_kind():
    """A Go struct also matches the plain type-spec pattern; it is stored once, as a struct."""
    found = extract_with_grammar("go", b"package m\ntype S struct{}\ntype N int\n")
    assert found is not None
    assert [(s.name, s.kind) for s in found.symbols] == [("S", "struct"), ("N", "type")]


def test_kind_ranks_follow_the_query_order():
    """Each definition kind ranks by its first appearance in the query source."""
    from lynkr.indexer._grammars import _kind_ranks

    source = "(a) @definition.struct\n(b) @definition.type\n(c) @definition.struct)"
    assert _kind_ranks(source) == {"struct": 0, "type": 1}


def test_plain_rows_match_the_named_extraction():
    """`grammar_rows` yields the same fields, row for row, as `extract_with_grammar`."""
    from lynkr.indexer._grammars import grammar_rows

    for language, (source, *_rest) in SAMPLES.items():
        named = extract_with_grammar(language, source)
        rows = grammar_rows(language, source)
        assert named is not None
        assert rows is not None
        assert rows == (tuple(map(tuple, named.symbols)), tuple(map(tuple, named.references)),
                        tuple(map(tuple, named.imports)), named.parser, named.problem)


def test_references_come_in_order_with_their_enclosing_symbol():
    """Uses are listed by position, each with the innermost definition around it."""
    found = extract("python", b"class A(B):\n    def m(self) -> T:\n        return g(T)\n")
    assert [(r.name, r.line, r.col, r.enclosing) for r in found.references] == [
        ("B", 1, 9, "A"), ("T", 2, 20, "m"), ("g", 3, 16, "m")]


def test_nested_definitions_get_their_own_names_and_parents():
    """Each definition is named by its own name node, nested ones with their parent."""
    found = extract("python", b"class Outer:\n    class Inner:\n        def m(self):\n"
                              b"            pass\n    def n(self):\n        pass\nX = 1\n")
    assert [(s.name, s.kind, s.parent, s.start_line, s.end_line) for s in found.symbols] == [
        ("Outer", "class", None, 1, 6), ("Inner", "class", "Outer", 2, 4),
        ("m", "method", "Inner", 3, 4), ("n", "method", "Outer", 5, 6),
        ("X", "variable", None, 7, 7)]


def test_a_definitions_own_name_is_never_a_reference():
    """A Go type name captured as both the definition's name and a type use is not a use."""
    found = extract("go", b"package m\ntype S struct{ next *S }\n")
    assert [(r.name, r.line, r.col) for r in found.references] == [("S", 2, 22)]
