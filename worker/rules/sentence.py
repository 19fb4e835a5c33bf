"""The facts of one sentence, in named phases over a small record of what it holds. Pure.

0. :mod:`worker.rules.tables`: a table flattened into the sentence is read on its own.
1. :func:`_read`: periods, amounts (those not inside a period), metric mentions, and the spans
   that do not count as words between a metric and its amount.
2. :mod:`worker.rules.roles`: what each amount is (level, duplicate, range, change, guidance,
   component, comparative) and its own period; :mod:`worker.rules.respectively` pairs listed
   amounts with listed years or metrics.
3. :meth:`_Sentence.split_periods`: which named periods are current and which are prior.
4. :func:`_candidate`: for each remaining amount, the metric that governs it, the unit and sign
   the metric asks for, and the period, or nothing when one of them is not decided.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from schemas.periods import parse_label, shift_steps, shift_years, with_year
from schemas.standards import (
    INCOME_METRICS,
    Unit,
    metric_base,
)
from worker.normalize.amounts import find_amounts
from worker.normalize.period_text import PeriodMention, find_dates, find_periods
from worker.rules.candidate import Candidate
from worker.rules.cues import (
    BALANCE_METRICS,
    GUIDANCE,
    LEVEL_VERB,
    OF_IN_AFTER,
    PERIODISH,
    PRIOR_PERIOD_BEFORE,
    REFERENCE_GAP,
    ends_with,
    gap_ok,
)
from worker.rules.mentions import MetricMention, find_metrics
from worker.rules.respectively import pair_respectively
from worker.rules.roles import (
    Amt,
    assign_own_periods,
    mark_comparatives,
    mark_neighbours,
    mark_non_levels,
)
from worker.rules.tables import read_table
from worker.rules.units import metric_and_unit, zero_words

#: a result given as "in the red" is a loss ("closed the year in the red with a net result of")
_IN_THE_RED = re.compile(r"\bin\s+(?:the\s+)?red\b[^.;]{0,60}$", re.IGNORECASE)

#: periods named relative to the current one ("a year earlier", "the prior quarter")
_RELATIVE = ("prev", "same", "prev_step")


@dataclass(slots=True)
class _Sentence:
    text: str
    periods: list[PeriodMention]
    amounts: list[Amt]
    metrics: list[MetricMention]
    covered: list[tuple[int, int]]
    carry: str | None
    current_abs: list[PeriodMention] = field(default_factory=list)
    prior_abs: list[PeriodMention] = field(default_factory=list)
    has_relative: bool = False

    def split_periods(self) -> None:
        """Absolute periods that a comparative claims are prior; the others are current."""
        prior = {id(a.own) for a in self.amounts if a.comparative and a.own is not None}
        absolute = [p for p in self.periods if p.kind == "abs"]
        self.current_abs = [p for p in absolute if id(p) not in prior]
        self.prior_abs = [p for p in absolute if id(p) in prior]
        self.has_relative = any(p.kind in _RELATIVE for p in self.periods)

    @property
    def carried(self) -> str | None:
        """The period of an earlier sentence, when this one names no current period."""
        return self.carry if not self.current_abs else None

    def reference(self, pos: int) -> str | None:
        """The current period a relative period at ``pos`` is relative to."""
        before = [p for p in self.current_abs if p.start < pos]
        pick = before[-1] if before else (self.current_abs[0] if self.current_abs else None)
        return pick.label if pick is not None else self.carried

    def resolve(self, p: PeriodMention, pos: int) -> tuple[bool, str | None]:
        """(resolved, label) of a period mention; relative ones need a current period."""
        if p.kind == "abs":
            return True, p.label
        if p.kind == "prev_step":
            ref = self.reference(pos)
            dated = ref is not None and parse_label(ref).kind == "quarter"
            label = shift_steps(ref, -1) if ref is not None and dated else None
            return label is not None, label
        if p.kind in ("prev", "same"):
            ref = self.reference(pos)
            if ref is None:
                # "sales reached X last year": a year, but which one the text does not say
                return (True, "FY") if _is_last_year(self, p) else (False, None)
            if p.kind == "same":
                label = with_year(ref, p.year) if p.year is not None else None
            else:
                label = shift_years(ref, -1)
            return label is not None, label
        return False, None

    def next_carry(self) -> str | None:
        """The current period this sentence establishes for the sentences after it."""
        return self.current_abs[0].label if self.current_abs else self.carry


def _is_last_year(sent: _Sentence, p: PeriodMention) -> bool:
    return p.kind == "prev" and sent.text[p.start : p.end].lower() == "last year"


@dataclass(frozen=True, slots=True)
class SentenceFacts:
    """What one sentence gives: its facts, the current period it establishes for the sentences
    after it, and how many amounts it holds (those that became no fact are left unassigned)."""

    facts: list[Candidate]
    carry: str | None
    amounts: int


def sentence_facts(s: str, carry: str | None = None) -> SentenceFacts:
    """Facts of one sentence, and the current period it establishes for the sentences after it.

    ``carry`` is the period an earlier sentence established ("results for the fourth quarter of
    fiscal 2024. Revenue was ..."); it applies only when this sentence names no period at all.
    """
    table = read_table(s)
    if table is not None:
        return SentenceFacts(table.facts, carry, table.cells)
    periods = find_periods(s)
    sent = _read(s, periods, carry)
    if not sent.amounts:
        labelled = [p for p in periods if p.kind == "abs"]
        return SentenceFacts([], labelled[0].label if labelled else carry, 0)
    mark_neighbours(s, sent.amounts)
    mark_non_levels(s, sent.amounts)
    mark_comparatives(s, sent.amounts, sent.periods)
    assign_own_periods(s, sent.amounts, sent.periods)
    pair_respectively(s, sent.amounts, sent.metrics)
    sent.split_periods()
    out = []
    for idx, cur in enumerate(sent.amounts):
        if cur.dropped or cur.skip:
            continue
        cand = _candidate(sent, idx, cur)
        if cand is not None:
            out.append(cand)
    return SentenceFacts(_second_values(out), sent.next_carry(), len(sent.amounts))


def _second_values(cands: list[Candidate]) -> list[Candidate]:
    """A second value of the same metric for the same period in one sentence is most often a
    part of the first (a segment's, a region's, a product line's): it is not decided."""
    seen: dict[tuple[str, str | None, str], Candidate] = {}
    out = []
    for cand in cands:
        key = (cand.metric, cand.period, cand.unit.value)
        first = seen.setdefault(key, cand)
        if first is not cand and first.value != cand.value:
            cand = replace(
                cand, evidence=(*cand.evidence, ("metric", "second value for the same period"))
            )
        out.append(cand)
    return out


#: the rest of a range written with one currency and one scale: the "-12 mn" of "EUR 10-12 mn"
#: (tight: "EUR -0.04 -0.06" is a level and its comparative)
_RANGE_TAIL = re.compile(
    r"[-–]\d[\d.,]*(?:\s[.,]\d+)?(?:\s?(?:mn|mln|m|million|bn|billion|thousand|k|%|percent))?"
    r"(?![\w])",
    re.IGNORECASE,
)


def _read(s: str, periods: list[PeriodMention], carry: str | None) -> _Sentence:
    found = sorted(find_amounts(s) + zero_words(s), key=lambda a: a.start)
    amounts = [
        Amt(a)
        for a in found
        if not any(p.start <= a.start < p.end and p.kind != "abs" for p in periods)
        and not any(p.start <= a.start and a.end <= p.end for p in periods)
    ]
    periods = [p for p in periods if not any(a.start <= p.start < a.end for a in amounts)]
    spans = [(a.start, a.mention.scale_end or a.end) for a in amounts]
    for a in amounts:  # "EUR 10-12 mn": a range, never a level; its tail is no word
        tail = _RANGE_TAIL.match(s, a.end)
        if tail is not None:
            a.dropped = True
            spans.append((a.start, tail.end()))
    spans += [(p.start, p.end) for p in periods]
    metrics = find_metrics(s, spans)
    covered = spans + find_dates(s) + [(m.start, m.end) for m in metrics if m.base]
    return _Sentence(s, periods, amounts, metrics, covered, carry)


def _candidate(sent: _Sentence, idx: int, cur: Amt) -> Candidate | None:
    s = sent.text
    metric = _governing_metric(sent, cur)
    if metric is None or metric.canonical is None or metric.segment:
        return None
    if metric.change and not LEVEL_VERB.search(s[metric.end : cur.start]):
        return None
    typed = metric_and_unit(sent.text, sent.amounts, idx, metric)
    if typed is None:
        return None
    name, unit, currency, scale_how = typed
    value = cur.mention.amount.value
    red = bool(ends_with(_IN_THE_RED, s, cur.start))
    sign_how = "as written"
    if (metric.loss or red) and metric_base(name) in INCOME_METRICS and value > 0:
        value = -value
        sign_how = "loss word" if metric.loss else "in the red"
        if metric.loss and metric.bare_word and _amount_between(sent, metric.end, cur.start):
            sign_how = "loss word of an earlier amount"  # "a loss of X compared with Y"
    ok, period, period_how = _period_of(sent, cur)
    if not ok:
        return None
    if metric_base(name) in BALANCE_METRICS:
        dated = _balance_date(s, cur, period)
        period_how = "balance date" if dated != period else period_how
        period = dated
    evidence: tuple[tuple[str, str], ...] = (
        ("metric", _metric_how(sent, cur, metric)),
        ("period", period_how),
        ("sign", sign_how),
        ("scale", scale_how),
    )
    if metric.opening:
        evidence += (("adjusted", metric.opening),)
    return Candidate(cur.start, cur.end, name, value, currency, unit, period or None, evidence)


def _amount_between(sent: _Sentence, lo: int, hi: int) -> bool:
    return any(lo <= a.start and a.end <= hi and not a.dropped for a in sent.amounts)


def _metric_how(sent: _Sentence, cur: Amt, metric: MetricMention) -> str:
    while cur.anchor is not None:
        cur = sent.amounts[cur.anchor]
    if cur.metric is not None:
        return "respectively list"
    if metric.bare_word:
        if metric.defaulted:
            return "bare profit or loss word, no metric named"
        return "bare profit or loss word"
    return "named after the amount" if metric.start >= cur.end else "named before the amount"


def _balance_date(s: str, cur: Amt, period: str | None) -> str | None:
    """A balance takes the date the sentence states ("as of December 31, 2019"); in a list paired
    with years ("as of December 31, 2019 and 2018, ... X and Y, respectively"), that date in its
    own year."""
    dates = [p for p in find_periods(s) if p.kind == "date"]
    if not dates or dates[0].label is None:
        return period
    if cur.year is None:
        return dates[0].label
    return shift_years(dates[0].label, cur.year - int(dates[0].label[:4]))


def _period_of(sent: _Sentence, cur: Amt) -> tuple[bool, str | None, str]:
    """(decided, label, how) of an amount's period: its own, a comparative's prior period, or
    the current period before it (or carried from an earlier sentence)."""
    if cur.own is not None:
        ok, label = sent.resolve(cur.own, cur.start)
        if ok and label and cur.comparative and cur.own.kind == "abs":
            label = _same_part_of_year(sent, cur, label)
        how = "respectively years" if cur.year is not None else "named after the amount"
        if cur.own.kind != "abs":
            how = "relative to the current period"
        return ok, label, how
    if cur.comparative:
        if cur.bare and not sent.has_relative:
            return False, None, ""
        rel = next((p for p in sent.periods if p.kind in _RELATIVE), None)
        if rel is not None:
            return (*sent.resolve(rel, cur.start), "relative to the current period")
        before_prior = [p for p in sent.prior_abs if p.start < cur.start]
        if not before_prior:
            return False, None, ""
        return True, before_prior[-1].label, "labelled parenthesis"
    before_cur = [p for p in sent.current_abs if p.start < cur.start]
    if before_cur:
        owner = next((a for a in sent.amounts if a.own is before_cur[-1] and a is not cur), None)
        if owner is not None and _names_other_item(sent, owner):
            return False, None, ""  # "the order backlog was X at the end of 2009, while sales"
        return True, before_cur[-1].label, "current period before the amount"
    if sent.carried is not None:
        return True, sent.carried, "carried from an earlier sentence"
    return _period_stated_later(sent, cur)


def _same_part_of_year(sent: _Sentence, cur: Amt, label: str) -> str:
    """A comparative dated by a year only ("a third-quarter loss of X compared with a profit of Y
    in 2007") against a current sub-period is the same sub-period of that year (Q3 2007)."""
    own, ref = parse_label(label), sent.reference(cur.start)
    if own.sub != "FY" or own.year is None or ref is None or parse_label(ref).sub in ("", "FY"):
        return label
    if not re.fullmatch(
        r"(?:19|20)\d{2}", sent.text[cur.own.start : cur.own.end] if cur.own else ""
    ):
        return label
    return with_year(ref, own.year) or label


def _period_stated_later(sent: _Sentence, cur: Amt) -> tuple[bool, str | None, str]:
    """A level with no period before it: the sentence's current period stated after it ("net
    sales of X and an operating margin of Y in 2006"), none when the sentence states none (a
    null period), undecided when a forecast, a dated comparison or a non-vocabulary item stands
    between them ("X; it expects growth in 2010")."""
    if any(_is_last_year(sent, p) for p in sent.periods if p.end <= cur.start):
        return True, "FY", "last year without a year"  # "Last year, net sales were X"
    after = [
        p
        for p in sent.current_abs
        if p.start >= cur.end and not ends_with(PRIOR_PERIOD_BEFORE, sent.text, p.start)
    ]
    if not after:
        return True, None, "none stated"
    lo = max([a.end for a in sent.amounts if cur.end <= a.start < after[0].start] + [cur.end])
    if REFERENCE_GAP.search(sent.text, lo, after[0].start):
        return False, None, ""  # "X, the highest since 2007"; "X, while in 2009 it was Y"
    if GUIDANCE.search(sent.text, cur.end, after[0].start):
        return False, None, ""
    if any(
        a.comparative
        and a.own is not None
        and not a.labelled
        and cur.end <= a.start < after[0].start
        for a in sent.amounts
    ):
        return False, None, ""  # "X, against Y in Q2 2019, ... in the second quarter"
    if any(m.canonical is None and cur.end <= m.start < after[0].start for m in sent.metrics):
        return False, None, ""  # "X and the order backlog stood at Y at the end of 2010"
    between = [a for a in sent.amounts if not a.dropped and cur.end <= a.start < after[0].start]
    if any(_vocabulary_metric(sent, a) is None for a in between):
        return False, None, ""  # "X and the order book stood at Y at the end of 2010"
    return True, after[0].label, "current period stated later"


def _names_other_item(sent: _Sentence, cur: Amt) -> bool:
    """The amount is a value of a non-vocabulary item named just before it ("order backlog")."""
    governing = _governing_metric(sent, cur)
    if governing is not None:
        return governing.canonical is None
    before = [m for m in sent.metrics if m.end <= cur.start]
    return bool(before) and before[-1].canonical is None


def _periodish(word: str) -> bool:
    """A word that starts a period ("the", "fiscal", "FY19", "Q3", "2H")."""
    return word.lower() in PERIODISH or bool(_PERIOD_TOKEN.fullmatch(word))


#: a period written as one token: "FY19", "FY2019", "Q3", "H1", "1H", "3Q", "9M"
_PERIOD_TOKEN = re.compile(r"(?i:fy|q[1-4]|h[12]|[1-4]q|[12]h|9m)\d*")


def _vocabulary_metric(sent: _Sentence, cur: Amt) -> MetricMention | None:
    metric = _governing_metric(sent, cur)
    return metric if metric is not None and metric.canonical is not None else None


def _governing_metric(sent: _Sentence, cur: Amt) -> MetricMention | None:
    """The metric an amount is a value of: the one just after it ("$5 million of revenue") or
    the nearest one before it with only gap words between."""
    s = sent.text
    while cur.anchor is not None:
        cur = sent.amounts[cur.anchor]
    if cur.metric is not None:
        return cur.metric
    after = s[cur.end :]
    if cur.mention.amount.unit is not Unit.PERCENT:
        m = re.match(r"^\s*(?:(?:in|of)\s+)?", after)
        pos = cur.end + (m.end() if m else 0)
        following = next((x for x in sent.metrics if x.start == pos and not x.base), None)
        if following is not None:
            return following
        of_in = OF_IN_AFTER.match(after)
        if of_in and not _periodish(of_in.group(1)):
            return None  # "$2.5 billion of cash used for ...": a component
    preceding = [x for x in sent.metrics if x.end <= cur.start and not x.base]
    if not preceding:
        return None
    metric = preceding[-1]
    if not gap_ok(s, metric.end, cur.start, sent.covered):
        return None
    return metric
