"""A shell command line cut into simple commands, the way a POSIX shell reads it.

`parse_line` finds every command substitution first (`$(…)`, backticks, `<(…)`,
`>(…)`, outside single quotes, nesting and quotes respected) and replaces it by a
placeholder word, keeping its body to be checked as a line of its own; then `shlex`
splits the rest into words (quotes removed, as the shell does) and punctuation, and
the words are cut into commands at `;`, `&&`, `||`, `|`, `&`, newlines and
parentheses. Redirect targets are kept apart. It never expands variables or globs:
the rules in `lynkr.tunnel._bash_guard` decide what a word means.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

__all__ = ["PUNCTUATION", "ParsedLine", "parse_line"]

PUNCTUATION = "();<>|&\n"


@dataclass(slots=True)
class ParsedLine:
    """A command line cut into simple commands, with the nested lines found inside."""

    commands: list[list[str]]
    redirects: list[str]  # redirect targets
    nested: list[str]  # $(…), `…`, <(…) bodies
    pipelines: list[list[int]]  # indexes into `commands`, one list per pipeline
    tokens: list[str]  # the words and punctuation, substitutions as placeholders


def _tokens(flat: str) -> list[str]:
    """Words (quotes removed) and punctuation runs; a newline is punctuation, as `;` is.

    Comments were removed before (`shlex` would start one at any `#`, even mid-word).
    """
    lexer = shlex.shlex(flat, posix=True, punctuation_chars=PUNCTUATION)
    lexer.whitespace_split = True
    lexer.whitespace = " \t\r"
    lexer.commenters = ""
    return list(lexer)


def _extract_substitutions(line: str) -> tuple[str, list[str]]:
    """`line` with each substitution replaced by a placeholder word, and their bodies.

    Raises:
        ValueError: an unclosed quote or substitution.
    """
    out: list[str] = []
    bodies: list[str] = []
    i, quote = 0, ""
    while i < len(line):
        char = line[i]
        if char == "\\" and quote != "'":
            out.append(line[i:i + 2])
            i += 2
            continue
        if quote == "'":
            quote = "" if char == "'" else quote
            out.append(char)
            i += 1
            continue
        if char in "'\"" and (not quote or quote == char):
            quote = "" if quote else char
            out.append(char)
            i += 1
            continue
        if char == "#" and not quote and (i == 0 or line[i - 1] in " \t\n;&|()"):
            end = line.find("\n", i)  # a comment: only where a word starts, as in bash
            i = len(line) if end < 0 else end
            continue
        opener = line[i:i + 2]
        if opener in ("$(", "<(", ">(") and not (opener[0] in "<>" and quote):
            end = _matching_paren(line, i + 2)
            bodies.append(line[i + 2:end])
            out.append(" __lynkr_subst__ " if not quote else "__lynkr_subst__")
            i = end + 1
            continue
        if char == "`":
            end = line.find("`", i + 1)
            if end < 0:
                raise ValueError("an unclosed backtick")
            bodies.append(line[i + 1:end])
            out.append("__lynkr_subst__")
            i = end + 1
            continue
        out.append(char)
        i += 1
    if quote:
        raise ValueError(f"an unclosed {quote} quote")
    return "".join(out), bodies


def _matching_paren(line: str, start: int) -> int:
    depth, quote, i = 1, "", start
    while i < len(line):
        char = line[i]
        if char == "\\" and quote != "'":
            i += 2
            continue
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError("an unclosed $( substitution")


def parse_line(line: str) -> ParsedLine:
    """`line` as simple commands, redirect targets, substitution bodies and pipelines.

    Raises:
        ValueError: an unclosed quote or substitution.
    """
    flat, nested = _extract_substitutions(line)
    tokens = _tokens(flat)
    parsed = ParsedLine(commands=[[]], redirects=[], nested=nested, pipelines=[[0]],
                        tokens=tokens)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token and all(c in PUNCTUATION for c in token):
            if "<" in token or ">" in token:
                if i + 1 < len(tokens):
                    parsed.redirects.append(tokens[i + 1])
                i += 2
                continue
            parsed.commands.append([])
            if token in ("|", "|&"):
                parsed.pipelines[-1].append(len(parsed.commands) - 1)
            else:
                parsed.pipelines.append([len(parsed.commands) - 1])
        else:
            parsed.commands[-1].append(token)
        i += 1
    return parsed
