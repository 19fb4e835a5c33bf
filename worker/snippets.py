"""Split a report into snippets (sentences) with their character offsets. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Snippet:
    """A sentence of a report: ``text == report[start:end]``."""

    index: int
    start: int
    end: int
    text: str


# A sentence ends at . ! ? followed by whitespace and an upper-case letter, digit, quote or
# bracket, or at a blank line. Abbreviations and decimals ("Inc.", "5.3", "U.S.") do not end one.
_ABBREV = re.compile(
    r"(?:\b(?:Inc|Corp|Co|Ltd|Plc|plc|Oyj|Abp|AB|ASA|AG|SA|NV|Mr|Mrs|Ms|Dr|St|No|vs|approx|"
    r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|e\.g|i\.e|U\.S|U\.K)\.|\b[A-Z]\.)$"
)
_BOUNDARY = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9$€£¥₹])|\n\s*\n")
_AMOUNT = re.compile(r"\d")

#: a "sentence" longer than this is not one (a table, a list of lines): it is cut at line
#: breaks, and a line still longer at the last space before the limit. Extraction looks at
#: every pair of amounts in a sentence, so an unbounded one could hold a worker for hours.
MAX_SNIPPET_CHARS = 1000
_LINE = re.compile(r"[^\n]*(?:\n|$)")


def _bounded(start: int, end: int, text: str) -> list[tuple[int, int]]:
    """``text[start:end]`` as pieces of at most ``MAX_SNIPPET_CHARS`` characters."""
    if end - start <= MAX_SNIPPET_CHARS:
        return [(start, end)]
    out: list[tuple[int, int]] = []
    for line in _LINE.finditer(text, start, end):
        s, e = line.start(), line.end()
        while e - s > MAX_SNIPPET_CHARS:
            cut = text.rfind(" ", s + 1, s + MAX_SNIPPET_CHARS)
            cut = cut if cut > s else s + MAX_SNIPPET_CHARS
            out.append((s, cut))
            s = cut
        if e > s:
            out.append((s, e))
    return out


def split_snippets(text: str) -> list[Snippet]:
    """Sentences of ``text`` with offsets, none longer than ``MAX_SNIPPET_CHARS``;
    whitespace-only pieces are dropped."""
    pieces: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        head = text[start : m.start()]
        if _ABBREV.search(head):
            continue
        pieces += _bounded(start, m.start(), text)
        start = m.end()
    pieces += _bounded(start, len(text), text)
    out: list[Snippet] = []
    for s, e in pieces:
        seg = text[s:e]
        lead = len(seg) - len(seg.lstrip())
        trail = len(seg.rstrip())
        if trail <= lead:
            continue
        out.append(Snippet(len(out), s + lead, s + trail, text[s + lead : s + trail]))
    return out


def has_amount(snippet: Snippet) -> bool:
    """A snippet without a single digit cannot hold an amount (spelled-out numbers aside)."""
    return _AMOUNT.search(snippet.text) is not None
