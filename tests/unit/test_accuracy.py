"""The accuracy benchmark: its scoring rules, and the accuracy gate on the dev set."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from bench.accuracy import company_matches, run_extract, score

DEV = Path(__file__).resolve().parents[3] / "shared" / "data" / "dev_snippets.jsonl"


def gold_fact(**kw: Any) -> dict[str, Any]:
    fact: dict[str, Any] = {
        "company": "Acme Oyj",
        "metric": "revenue",
        "value": 1000000,
        "currency": "EUR",
        "unit": "currency",
        "period": "FY 2023",
        "value_text": "EUR 1 million",
    }
    fact.update(kw)
    return fact


def predicted(**kw: Any) -> dict[str, Any]:
    fact = gold_fact(**kw)
    fact["quarter"] = fact.pop("period")
    return fact


def test_identical_fact_matches() -> None:
    result = score({"d": [gold_fact()]}, {"d": [predicted()]})
    assert (result.tp, result.fp, result.fn) == (1, 0, 0)
    assert result.f1 == 1.0


@pytest.mark.parametrize(
    ("change", "matches"),
    [
        ({"value": 1004999}, True),
        ({"value": 1006000}, False),
        ({"period": "FY 2022"}, False),
        ({"currency": "USD"}, False),
        ({"unit": "currency_per_share"}, False),
        ({"metric": "net income"}, False),
        ({"company": "ACME"}, True),
        ({"company": "Other Corp"}, False),
        ({"company": None}, False),
    ],
)
def test_matching_rule(change: dict[str, Any], matches: bool) -> None:
    result = score({"d": [gold_fact()]}, {"d": [predicted(**change)]})
    assert result.tp == int(matches)


def test_gold_without_company_accepts_any() -> None:
    result = score({"d": [gold_fact(company=None)]}, {"d": [predicted(company="Whoever")]})
    assert result.tp == 1


def test_bare_dollar_matches_usd() -> None:
    gold = gold_fact(currency="CAD", value_text="$1 million")
    assert score({"d": [gold]}, {"d": [predicted(currency="USD")]}).tp == 1
    gold = gold_fact(currency="CAD", value_text="C$1 million")
    assert score({"d": [gold]}, {"d": [predicted(currency="USD")]}).tp == 0


def test_facts_outside_the_labelled_vocabulary_count_neither_way() -> None:
    extra = predicted(metric="capital expenditure")
    result = score({"d": [gold_fact()]}, {"d": [predicted(), extra]})
    assert (result.tp, result.fp, result.fn) == (1, 0, 0)


def test_misses_and_false_positives_are_listed() -> None:
    result = score({"d": [gold_fact()]}, {"d": [predicted(value=5)]})
    assert (result.tp, result.fp, result.fn) == (0, 1, 1)
    assert result.misses[0][0] == "d" and result.false_positives[0][0] == "d"
    assert result.precision == 0.0 and result.recall == 0.0 and result.f1 == 0.0


@pytest.mark.parametrize(
    ("gold", "pred", "ok"),
    [
        ("Saimaa Steel Oyj", "Saimaa Steel", True),
        ("Walmart Inc.", "Walmart", True),
        ("Neste oil", "Neste Oil Corporation", True),
        ("Fiskars", "Nokia", False),
    ],
)
def test_lenient_company_names(gold: str, pred: str, ok: bool) -> None:
    assert company_matches(gold, pred) is ok


def test_rules_extractor_meets_the_accuracy_gate_on_the_dev_set() -> None:
    if not DEV.exists():
        if os.environ.get("FINPIPE_SKIP_ACCURACY_GATE") == "1":
            pytest.skip("FINPIPE_SKIP_ACCURACY_GATE=1: the dev set is not checked out")
        pytest.fail(
            f"the accuracy gate needs the labelled dev set at {DEV} (shared/data beside the "
            "project); set FINPIPE_SKIP_ACCURACY_GATE=1 to leave the gate out knowingly"
        )
    records = [json.loads(x) for x in DEV.read_text(encoding="utf-8").splitlines() if x.strip()]
    lines = [json.dumps({"id": r["id"], "text": r["text"]}) for r in records]
    out = run_extract(lines, "rules", use_subprocess=False)
    result = score({r["id"]: r["facts"] for r in records}, {r["id"]: r["facts"] for r in out})
    assert result.precision >= 0.90, result.false_positives
    assert result.f1 >= 0.70, result.misses


@pytest.mark.parametrize(
    ("change", "cls"),
    [
        ({"value": -1000000}, "wrong sign"),
        ({"value": 1000}, "wrong value/scale"),
        ({"metric": "net income"}, "wrong metric"),
        ({"period": "FY 2022"}, "wrong period"),
        ({"company": "Other Corp"}, "wrong company"),
        ({"currency": "USD"}, "wrong currency/unit"),
        ({"value": 77, "value_text": "EUR 77"}, "not a fact (part-as-whole, change, ...)"),
    ],
)
def test_each_false_positive_is_put_in_one_class(change: dict[str, Any], cls: str) -> None:
    result = score({"d": [gold_fact()]}, {"d": [predicted(**change)]})
    classes = [c for c, *_ in result.errors]
    if cls.startswith("not a fact"):
        assert sorted(classes) == sorted([cls, "missed"])
    else:
        assert classes == [cls]
    assert sum(result.error_counts().values()) == len(result.errors)


def test_a_gold_fact_nobody_proposed_is_missed() -> None:
    result = score({"d": [gold_fact()]}, {"d": []})
    assert [c for c, *_ in result.errors] == ["missed"]


def test_each_kind_is_scored_on_its_own_records() -> None:
    from bench.accuracy import score_by_kind

    records = [
        {"id": "a", "kind": "zero value", "facts": [gold_fact()]},
        {"id": "b", "kind": "ordinary", "facts": [gold_fact()]},
    ]
    kinds = score_by_kind(records, {"a": [predicted()], "b": [predicted(value=7)]})
    assert (kinds["zero value"].tp, kinds["zero value"].fp) == (1, 0)
    assert (kinds["ordinary"].tp, kinds["ordinary"].fp, kinds["ordinary"].fn) == (0, 1, 1)


def test_the_confidence_curve_trades_recall_for_precision() -> None:
    from bench.accuracy import confidence_curve

    records = [
        {
            "id": "a",
            "text": "Net sales for 2019 were EUR 84.6 million . Operating profit was EUR 5.1 .",
            "facts": [gold_fact(company=None, value=84600000, period="FY 2019")],
        }
    ]
    curve = dict(confidence_curve(records, (0.0, 0.7, 0.99)))
    assert (curve[0.0].tp, curve[0.0].fp) == (1, 1)  # the unscaled EUR 5.1 is proposed
    assert (curve[0.7].tp, curve[0.7].fp) == (1, 0)  # ... and withheld at the default
    assert curve[0.99].tp == 0
