"""What produced each part of a rules fact, and the confidence that evidence earns. Pure.

Every fact the rules propose records, for each of its parts (metric, period, sign, scale,
company), the name of the pattern that decided it. Each pattern has a weight: how often a part
decided that way is right, judged from the labelled sets (``bench/accuracy.py`` prints the
curve). The confidence of a fact is the product of the weights of its evidence; a fact below the
configured minimum (``FINPIPE_MIN_CONFIDENCE``) is not stored but reported as unassigned, with the
weakest evidence as the reason.
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas.fact import DEFAULT_MIN_CONFIDENCE

__all__ = ["DEFAULT_MIN_CONFIDENCE", "WEIGHTS", "Evidence", "confidence", "weakest"]

#: one piece of evidence: (part of the fact, pattern that decided it)
Evidence = tuple[str, str]

#: the weight of each pattern; an unknown pattern weighs 1.0 (it decides nothing doubtful)
WEIGHTS: dict[Evidence, float] = {
    # metric: which words named the metric of the amount
    ("metric", "named after the amount"): 0.97,
    ("metric", "named before the amount"): 0.97,
    ("metric", "bare profit or loss word"): 0.9,
    ("metric", "bare profit or loss word, no metric named"): 0.8,
    ("metric", "respectively list"): 0.9,
    ("metric", "table row label"): 0.95,
    ("metric", "second value for the same period"): 0.4,
    # period
    ("period", "named after the amount"): 0.97,
    ("period", "labelled parenthesis"): 0.95,
    ("period", "relative to the current period"): 0.9,
    ("period", "current period before the amount"): 0.95,
    ("period", "carried from an earlier sentence"): 0.85,
    ("period", "current period stated later"): 0.85,
    ("period", "last year without a year"): 0.8,
    ("period", "none stated"): 0.93,
    ("period", "respectively years"): 0.9,
    ("period", "table column"): 0.95,
    ("period", "balance date"): 0.95,
    # sign
    ("sign", "as written"): 1.0,
    ("sign", "loss word"): 0.95,
    ("sign", "in the red"): 0.9,
    ("sign", "cash used"): 0.95,
    ("sign", "loss word of an earlier amount"): 0.3,
    # scale
    ("scale", "as written"): 1.0,
    ("scale", "after a parenthesised comparative"): 0.9,
    ("scale", "table header"): 0.95,
    ("scale", "currency of the amount before"): 0.85,
    ("scale", "none written, small currency amount"): 0.5,
    ("scale", "none written"): 0.9,
    ("scale", "per share by the metric"): 0.95,
    ("scale", "zero in words"): 0.9,
    # adjusted: only when a sentence opens with an adjustment phrase
    ("adjusted", "opening phrase"): 0.9,
    ("adjusted", "undecided after an opening phrase"): 0.5,
    # company
    ("company", "named in the sentence"): 1.0,
    ("company", "named in an earlier sentence"): 0.95,
    ("company", "hint"): 1.0,
    ("company", "not named"): 1.0,
}


def confidence(evidence: Iterable[Evidence]) -> float:
    """The product of the weights of the evidence, rounded to three places."""
    value = 1.0
    for piece in evidence:
        value *= WEIGHTS.get(piece, 1.0)
    return round(value, 3)


def weakest(evidence: Iterable[Evidence]) -> str:
    """The reason a fact is doubtful: its lowest-weighted piece of evidence, as text."""
    pieces = list(evidence)
    if not pieces:
        return "no evidence"
    part, pattern = min(pieces, key=lambda e: WEIGHTS.get(e, 1.0))
    return f"{part}: {pattern}"
