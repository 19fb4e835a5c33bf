"""Every rules fact carries the evidence that produced it and a confidence derived from it; a fact
below the minimum confidence is not stored but listed among the unassigned amounts with a reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.errors import ConfigError
from schemas.fact import DEFAULT_MIN_CONFIDENCE
from schemas.settings import Settings
from tests.unit.test_pipeline import RecordingStore, _report
from worker.extract import RulesExtractor
from worker.pipeline import Pipeline
from worker.rules import extract_report
from worker.rules.evidence import WEIGHTS, confidence, weakest

PARTS = {"metric", "period", "sign", "scale", "company"}


@pytest.mark.parametrize(
    "text",
    [
        "Acme Oyj reported net sales of EUR 84.6 million for the first quarter of 2011 .",
        "Operating loss narrowed to $3.2 million in fiscal 2019 .",
        "EUR m Q1/21 Q1/20 Net sales 142.0 120.4",
        "Revenue and net income were $5.1 million and $0.4 million, respectively, in 2019.",
    ],
)
def test_each_fact_names_what_decided_each_of_its_parts(text: str) -> None:
    facts = extract_report(text, min_confidence=0.0).facts
    assert facts
    for rf in facts:
        assert {part for part, _ in rf.evidence} == PARTS
        assert all(piece in WEIGHTS for piece in rf.evidence), rf.evidence
        assert 0 < rf.confidence <= 1
        assert rf.confidence == confidence(rf.evidence)


def test_confidence_is_the_product_of_the_weights_and_the_reason_the_weakest() -> None:
    evidence = [("metric", "named before the amount"), ("scale", "none written")]
    expected = WEIGHTS[evidence[0]] * WEIGHTS[evidence[1]]
    assert confidence(evidence) == pytest.approx(expected, abs=1e-3)
    assert weakest(evidence) == "scale: none written"


@pytest.mark.parametrize(
    "text",
    [
        "Net sales for 2019 were EUR 84.6 .",
        "Operating profit in the third quarter of 2012 amounted to SEK 12.8 .",
        "The company 's net income was USD 7.9 in fiscal 2020 .",
    ],
)
def test_a_small_currency_amount_without_a_scale_word_is_withheld_with_its_reason(
    text: str,
) -> None:
    result = extract_report(text)
    assert result.facts == []
    [withheld] = result.withheld
    assert withheld.confidence < DEFAULT_MIN_CONFIDENCE
    assert withheld.reason == "scale: none written, small currency amount"
    assert result.unassigned == result.amounts
    assert len(extract_report(text, min_confidence=0.0).facts) == 1


def test_a_scaled_amount_in_an_ordinary_sentence_is_kept() -> None:
    [rf] = extract_report("Net sales for 2019 were EUR 84.6 million .").facts
    assert rf.confidence >= DEFAULT_MIN_CONFIDENCE


def test_the_report_record_lists_withheld_facts_and_stored_facts_carry_their_evidence() -> None:
    store = RecordingStore()
    kept = _report("Company XYZ reported a net income of $5.3 million for Q1 2024.")
    doubtful = _report("Company XYZ reported a net income of $5.3 for Q1 2024.")
    Pipeline(RulesExtractor(), store, clock=lambda: datetime(2024, 5, 1, tzinfo=UTC)).process(
        [kept, doubtful]
    )
    [doc] = store.facts[kept.report_id]
    assert doc["confidence"] >= DEFAULT_MIN_CONFIDENCE
    assert doc["evidence"]["scale"] == "as written"
    assert store.reports[kept.report_id]["unassigned_detail"] == []
    assert store.facts[doubtful.report_id] == []
    record = store.reports[doubtful.report_id]
    assert record["unassigned_amounts"] == 1
    [listed] = record["unassigned_detail"]
    assert listed["value_text"] == "$5.3"
    assert listed["metric"] == "net income"
    assert listed["reason"] == "scale: none written, small currency amount"


def test_a_lower_minimum_stores_what_the_default_withholds() -> None:
    store = RecordingStore()
    doubtful = _report("Company XYZ reported a net income of $5.3 for Q1 2024.")
    Pipeline(RulesExtractor(min_confidence=0.0), store).process([doubtful])
    assert len(store.facts[doubtful.report_id]) == 1


def test_the_minimum_confidence_is_a_setting() -> None:
    assert Settings.from_env({}).min_confidence == DEFAULT_MIN_CONFIDENCE
    assert Settings.from_env({"FINPIPE_MIN_CONFIDENCE": "0.8"}).min_confidence == 0.8
    with pytest.raises(ConfigError, match="FINPIPE_MIN_CONFIDENCE"):
        Settings.from_env({"FINPIPE_MIN_CONFIDENCE": "1.5"})


def test_a_release_whose_period_and_company_come_from_its_first_sentence_is_stored() -> None:
    text = (
        "Nordwind Oyj reported its results for the third quarter of 2021 .\n\n"
        "Net sales were EUR 52.0 million . Operating profit was EUR 4.4 million ."
    )
    found = extract_report(text)
    assert [(rf.fact.metric, rf.fact.quarter) for rf in found.facts] == [
        ("revenue", "Q3 2021"),
        ("operating income", "Q3 2021"),
    ]
    assert all(rf.confidence >= DEFAULT_MIN_CONFIDENCE for rf in found.facts)
