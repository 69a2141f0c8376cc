"""HTML reduced to readable text with the standard library's parser (no new dependency).

Scripts, styles and other non-content elements are dropped; block elements become
line breaks; runs of whitespace collapse. The `<title>` is kept separately.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["html_to_text"]

_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head", "iframe",
                   "object", "canvas"})
_BLOCK = frozenset({"p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article",
                    "header", "footer", "nav", "main", "aside", "h1", "h2", "h3", "h4", "h5",
                    "h6", "pre", "blockquote", "hr", "dt", "dd", "figcaption", "form"})
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANKS = re.compile(r"\n\s*\n+")


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self.skipping = 0
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        elif tag in _SKIP:
            self.skipping += 1
        elif tag in _BLOCK:
            self.parts.append("\n")
        if tag == "li" and not self.skipping:
            self.parts.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        elif tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif not self.skipping:
            self.parts.append(data)


def html_to_text(html: str) -> tuple[str | None, str]:
    """(title, readable text) of an HTML document."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    text = _SPACES.sub(" ", "".join(reader.parts))
    text = "\n".join(line.strip() for line in text.splitlines())
    title = " ".join("".join(reader.title).split()) or None
    return title, _BLANKS.sub("\n\n", text).strip()
