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


def split_snippets(text: str) -> list[Snippet]:
    """Sentences of ``text`` with offsets; whitespace-only pieces are dropped."""
    pieces: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        head = text[start : m.start()]
        if _ABBREV.search(head):
            continue
        pieces.append((start, m.start()))
        start = m.end()
    pieces.append((start, len(text)))
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
