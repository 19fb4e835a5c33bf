"""Fact-level accuracy of ``finpipe extract`` on labelled gold files, with errors by class.

    python bench/accuracy.py [GOLD.jsonl ...] [--provider rules] [--subprocess] [--quiet]

Without files it scores ``../shared/data/dev_snippets.jsonl``, ``dev2_snippets.jsonl`` and the
project's own sets ``tests/data/rules_snippets.jsonl`` and ``rules_fresh_snippets.jsonl``. A
gold file whose lines carry a ``kind`` is also scored per kind; the tables after the error lists
give all sets side by side, and (rules only) the confidence curve.

The gold file holds one JSON object per line: ``{"id", "text", "facts": [{"company", "metric",
"value", "currency", "unit", "period", "value_text"}]}``. A predicted fact matches a gold fact when
metric, unit, currency and period are equal and the value is within 0.5%; company names are
compared ignoring case, punctuation and legal suffixes, and a gold fact without a company accepts
any; a bare "$" in the gold ``value_text`` whose labelled currency is not USD also matches USD.
Predicted facts whose metric lies outside the labelled vocabulary count neither way.

Each error is put in one class so the next person sees where the errors are: a false positive
with a gold fact at the same place (same ``value_text``, or the same value) is *wrong sign*,
*wrong value/scale*, *wrong metric*, *wrong period*, *wrong company* or *wrong currency/unit*
(the first field that differs, in that order); a false positive with no gold fact at its place is
*not a fact* (a part counted as the whole, a change, a comparative, a conversion); a gold fact with
no prediction at its place is *missed*.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from schemas.standards import LABELLED_METRICS, metric_base  # noqa: E402

VALUE_TOLERANCE = Decimal("0.005")
_LEGAL = re.compile(
    r"\b(?:oyj|abp|inc|incorporated|corp|corporation|ltd|limited|plc|ag|sa|nv|ab|asa|as|se|spa|"
    r"gmbh|llc|lp|co|company|holdings?|group)\b"
)


def company_key(name: str) -> str:
    """ "Saimaa Steel Oyj" -> "saimaa steel"; "Walmart Inc." -> "walmart"."""
    s = re.sub(r"[^\w\s]", " ", name.lower())
    s = _LEGAL.sub(" ", s)
    return " ".join(s.split())


def company_matches(gold: str | None, predicted: str | None) -> bool:
    if gold is None:
        return True
    if predicted is None:
        return False
    g, p = company_key(gold), company_key(predicted)
    if not g or not p:
        return g == p
    return g == p or g in p or p in g


def _bare_dollar(value_text: str) -> bool:
    return bool(re.search(r"(?<![A-Za-z])\$", value_text))


def currency_matches(gold: dict[str, Any], predicted: dict[str, Any]) -> bool:
    if gold.get("currency") == predicted.get("currency"):
        return True
    return predicted.get("currency") == "USD" and _bare_dollar(str(gold.get("value_text", "")))


def value_matches(gold: Any, predicted: Any) -> bool:
    g, p = Decimal(str(gold)), Decimal(str(predicted))
    if g == 0:
        return p == 0
    return abs(p - g) <= abs(g) * VALUE_TOLERANCE


def fact_matches(gold: dict[str, Any], predicted: dict[str, Any]) -> bool:
    period = predicted.get("quarter", predicted.get("period"))
    return (
        gold["metric"] == predicted["metric"]
        and gold["unit"] == predicted["unit"]
        and gold.get("period") == period
        and currency_matches(gold, predicted)
        and value_matches(gold["value"], predicted["value"])
        and company_matches(gold.get("company"), predicted.get("company"))
    )


def scored(predicted: dict[str, Any]) -> bool:
    """Only facts in the labelled vocabulary count (``adjusted `` stripped)."""
    return metric_base(str(predicted.get("metric", ""))) in LABELLED_METRICS


ERROR_CLASSES = (
    "wrong sign",
    "wrong value/scale",
    "wrong metric",
    "wrong period",
    "wrong company",
    "wrong currency/unit",
    "not a fact (part-as-whole, change, ...)",
    "missed",
)
DATA = ROOT.parent / "shared" / "data"
OWN = ROOT / "tests" / "data" / "rules_snippets.jsonl"
FRESH = ROOT / "tests" / "data" / "rules_fresh_snippets.jsonl"
DEFAULT_GOLD = (DATA / "dev_snippets.jsonl", DATA / "dev2_snippets.jsonl", OWN, FRESH)


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    misses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    false_positives: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: (class, doc id, gold fact or None, predicted fact or None)
    errors: list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]] = field(
        default_factory=list
    )

    def error_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(ERROR_CLASSES, 0)
        for cls, *_ in self.errors:
            counts[cls] += 1
        return counts

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def score(
    gold: dict[str, list[dict[str, Any]]], predicted: dict[str, list[dict[str, Any]]]
) -> Score:
    """Match predicted facts to gold facts per document id (each used at most once)."""
    result = Score()
    for doc_id, gold_facts in gold.items():
        preds = [p for p in predicted.get(doc_id, []) if scored(p)]
        used: set[int] = set()
        for g in gold_facts:
            hit = next(
                (i for i, p in enumerate(preds) if i not in used and fact_matches(g, p)), None
            )
            if hit is None:
                result.fn += 1
                result.misses.append((doc_id, g))
            else:
                used.add(hit)
                result.tp += 1
        for i, p in enumerate(preds):
            if i not in used:
                result.fp += 1
                result.false_positives.append((doc_id, p))
    for doc_id, preds in predicted.items():
        if doc_id not in gold:
            for p in preds:
                if scored(p):
                    result.fp += 1
                    result.false_positives.append((doc_id, p))
    result.errors = classify(result)
    return result


def _same_place(gold: dict[str, Any], predicted: dict[str, Any]) -> bool:
    """The two facts read the same amount: the same ``value_text``, or the same absolute value."""
    g_text = " ".join(str(gold.get("value_text", "")).split())
    p_text = " ".join(str(predicted.get("value_text", "")).split())
    if g_text and g_text == p_text:
        return True
    g, p = Decimal(str(gold["value"])), Decimal(str(predicted["value"]))
    return value_matches(abs(g), abs(p))


def error_class(gold: dict[str, Any], predicted: dict[str, Any]) -> str:
    """The first field in which a false positive differs from the gold fact at its place."""
    g, p = Decimal(str(gold["value"])), Decimal(str(predicted["value"]))
    if not value_matches(g, p):
        return "wrong sign" if value_matches(abs(g), abs(p)) else "wrong value/scale"
    if metric_base(gold["metric"]) != metric_base(str(predicted["metric"])):
        return "wrong metric"
    if gold["metric"] != predicted["metric"]:
        return "wrong metric"
    if gold.get("period") != predicted.get("quarter", predicted.get("period")):
        return "wrong period"
    if not company_matches(gold.get("company"), predicted.get("company")):
        return "wrong company"
    return "wrong currency/unit"


def classify(
    result: Score,
) -> list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]]:
    """Pair each false positive with an unmatched gold fact at its place, and class the rest."""
    out: list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]] = []
    misses = list(result.misses)
    for doc_id, p in result.false_positives:
        k = next((i for i, (d, g) in enumerate(misses) if d == doc_id and _same_place(g, p)), None)
        if k is None:
            out.append(("not a fact (part-as-whole, change, ...)", doc_id, None, p))
            continue
        _, g = misses.pop(k)
        out.append((error_class(g, p), doc_id, g, p))
    out.extend(("missed", doc_id, g, None) for doc_id, g in misses)
    return out


def run_extract(lines: list[str], provider: str, *, use_subprocess: bool) -> list[dict[str, Any]]:
    """Run ``finpipe extract`` on JSONL input lines; returns its output records."""
    if use_subprocess:
        proc = subprocess.run(
            [sys.executable, "-m", "finpipe", "extract", "--provider", provider],
            input="\n".join(lines) + "\n",
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        out = proc.stdout
    else:
        import io

        from finpipe.cmd_standards import extract_stream

        buf, err = io.StringIO(), io.StringIO()
        extract_stream(iter(lines), buf, err, provider=provider)
        out = buf.getvalue()
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def read_gold(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def score_file(path: Path, provider: str, *, use_subprocess: bool) -> Score:
    return score_records(read_gold(path), provider, use_subprocess=use_subprocess)[0]


def score_records(
    records: list[dict[str, Any]], provider: str, *, use_subprocess: bool
) -> tuple[Score, dict[str, Score]]:
    """The score of a gold set, and per ``kind`` when its records carry one."""
    gold = {r["id"]: r["facts"] for r in records}
    lines = [json.dumps({"id": r["id"], "text": r["text"]}) for r in records]
    predicted = {
        r["id"]: r["facts"] for r in run_extract(lines, provider, use_subprocess=use_subprocess)
    }
    return score(gold, predicted), score_by_kind(records, predicted)


def score_by_kind(
    records: list[dict[str, Any]], predicted: dict[str, list[dict[str, Any]]]
) -> dict[str, Score]:
    """One score per ``kind`` of the gold records (none when they carry no kind)."""
    kinds: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if r.get("kind"):
            kinds.setdefault(str(r["kind"]), []).append(r)
    return {
        kind: score(
            {r["id"]: r["facts"] for r in rs}, {r["id"]: predicted.get(r["id"], []) for r in rs}
        )
        for kind, rs in sorted(kinds.items())
    }


#: the thresholds the confidence curve is printed at
THRESHOLDS = (0.0, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)


def rules_facts_with_confidence(
    records: list[dict[str, Any]],
) -> dict[str, list[tuple[float, dict[str, Any]]]]:
    """Every fact the rules propose for each record, withheld or not, with its confidence."""
    from finpipe.cmd_standards import fact_record
    from worker.rules import extract_report

    out: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    for r in records:
        found = extract_report(r["text"], min_confidence=0.0)
        out[r["id"]] = [(rf.confidence, fact_record(rf.fact)) for rf in found.facts]
    return out


def confidence_curve(
    records: list[dict[str, Any]], thresholds: tuple[float, ...] = THRESHOLDS
) -> list[tuple[float, Score]]:
    """The score of the rules extractor on ``records`` at each minimum confidence."""
    gold = {r["id"]: r["facts"] for r in records}
    found = rules_facts_with_confidence(records)
    return [
        (t, score(gold, {k: [f for c, f in fs if c >= t] for k, fs in found.items()}))
        for t in thresholds
    ]


def summary_line(name: str, result: Score) -> str:
    return (
        f"{name:34} {result.tp + result.fn:5d} {result.tp + result.fp:5d} {result.tp:5d} "
        f"{result.precision:6.3f} {result.recall:6.3f} {result.f1:6.3f}"
    )


SUMMARY_HEADER = f"{'set / kind':34} {'gold':>5} {'pred':>5} {'ok':>5} {'P':>6} {'R':>6} {'F1':>6}"


def report(path: Path, result: Score, *, quiet: bool) -> None:
    print(f"== {path.name}")
    if not quiet:
        for cls, doc_id, g, p in result.errors:
            shown = f"{_fmt(p)}  (gold: {_fmt(g)})" if p and g else _fmt(p or g or {})
            print(f"  {cls.split(' (')[0].upper():18} {doc_id}: {shown}")
    print(
        f"facts: gold {result.tp + result.fn}, predicted {result.tp + result.fp}, "
        f"matched {result.tp}, missed {result.fn}, false positives {result.fp}"
    )
    print(f"precision {result.precision:.3f}  recall {result.recall:.3f}  F1 {result.f1:.3f}")
    counts = result.error_counts()
    print("errors: " + ", ".join(f"{cls} {n}" for cls, n in counts.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gold", type=Path, nargs="*", help="gold JSONL files (default: dev, dev2)")
    parser.add_argument("--provider", default="rules", choices=["rules", "openai"])
    parser.add_argument(
        "--subprocess", action="store_true", help="run the finpipe CLI instead of in-process"
    )
    parser.add_argument("--quiet", action="store_true", help="only the summary lines")
    args = parser.parse_args(argv)
    table: list[str] = []
    curves: list[str] = []
    pooled = [Score() for _ in THRESHOLDS]
    for path in args.gold or [p for p in DEFAULT_GOLD if p.exists()]:
        records = read_gold(path)
        result, kinds = score_records(records, args.provider, use_subprocess=args.subprocess)
        report(path, result, quiet=args.quiet)
        table.append(summary_line(path.name, result))
        table.extend(summary_line(f"  {kind}", k) for kind, k in kinds.items())
        if args.provider == "rules":
            curve = [c for _, c in confidence_curve(records)]
            curves.append(curve_line(path.name, curve))
            for total, c in zip(pooled, curve, strict=True):
                total.tp, total.fp, total.fn = total.tp + c.tp, total.fp + c.fp, total.fn + c.fn
    print("\n== per set and kind (facts: gold, predicted, matched)")
    print(SUMMARY_HEADER)
    print("\n".join(table))
    if curves:
        print("\n== confidence curve: precision/recall at each FINPIPE_MIN_CONFIDENCE")
        print(f"{'set':24} " + "  ".join(f"{t:>11.2f}" for t in THRESHOLDS))
        print("\n".join(curves))
        print(curve_line("all sets pooled", pooled))
    return 0


def curve_line(name: str, scores: list[Score]) -> str:
    return f"{name:24} " + "  ".join(f"{c.precision:.3f}/{c.recall:.3f}" for c in scores)


def _fmt(f: dict[str, Any]) -> str:
    if not f:
        return "-"
    period = f.get("period", f.get("quarter"))
    return (
        f"{f.get('company')!s} | {f['metric']} | {f['value']} {f.get('currency')} {f['unit']} | "
        f"{period} | {f.get('value_text')!r}"
    )


if __name__ == "__main__":
    sys.exit(main())
