"""Splitting a report into snippets (``worker.snippets``)."""

from __future__ import annotations

import itertools
import time

import pytest

from schemas.message import Provenance, ReportMessage, SubmitReport
from worker.extract import RulesExtractor
from worker.snippets import MAX_SNIPPET_CHARS, split_snippets


@pytest.mark.parametrize(
    "text",
    [
        "Acme reported revenue of $1 million for Q1 2024.\n" + "Q1\t$1.2m\n" * 5000,
        "$1 " * 5000,
        "x" * 5000 + " tail",
        "Acme grew. " + "word " * 400 + "\n" + "y" * 2500,
    ],
)
def test_no_snippet_is_longer_than_the_limit_and_offsets_still_index_the_text(text: str) -> None:
    snippets = split_snippets(text)
    assert all(0 < len(s.text) <= MAX_SNIPPET_CHARS for s in snippets)
    assert all(text[s.start : s.end] == s.text for s in snippets)
    assert all(a.end <= b.start for a, b in itertools.pairwise(snippets))
    kept = sum(len("".join(s.text.split())) for s in snippets)
    assert kept == len("".join(text.split()))  # no character but whitespace is lost


def test_sentences_under_the_limit_are_split_as_before() -> None:
    text = "Acme Inc. reported revenue of $5.3 million.\nIt grew.\n\nNet income was $1 million."
    assert [s.text for s in split_snippets(text)] == [
        "Acme Inc. reported revenue of $5.3 million.",
        "It grew.",
        "Net income was $1 million.",
    ]


def test_a_report_of_899999_bytes_of_short_lines_is_extracted_in_seconds() -> None:
    text = "Acme reported revenue of $1 million for Q1 2024.\n"
    text += "Q1\t$1.2m\n" * ((899_999 - len(text)) // 9)
    msg = ReportMessage.build(SubmitReport(raw_text=text), Provenance(channel="api"))
    started = time.monotonic()
    (extraction,) = RulesExtractor().extract([msg]).values()
    assert time.monotonic() - started < 60  # hours before sentences were bounded
    assert [f.fact.company for f in extraction.facts][:1] == ["Acme"]


def test_the_rules_extractor_splits_a_report_once_and_finds_what_the_rules_find(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from worker import rules, snippets
    from worker.rules import extract_report

    text = (
        "Acme Corp. reported revenue of $12.5 million for Q2 2024. The board met twice.\n\n"
        "Net income was $1.1 million, up from $0.9 million."
    )
    msg = ReportMessage.build(SubmitReport(raw_text=text), Provenance(channel="api"))
    expected = extract_report(text, min_confidence=0.7)
    calls: list[str] = []

    def counted(report: str) -> list[snippets.Snippet]:
        calls.append(report)
        return split_snippets(report)

    monkeypatch.setattr(snippets, "split_snippets", counted)
    monkeypatch.setattr(rules, "split_snippets", counted)
    (extraction,) = RulesExtractor(min_confidence=0.7).extract([msg]).values()
    assert calls == [text]
    assert [f.fact for f in extraction.facts] == [rf.fact for rf in expected.facts]
    assert extraction.facts and extraction.snippets == 3
    assert extraction.unassigned_amounts == expected.unassigned
