""" "Respectively" lists: amounts paired in order with the periods or metrics listed beside them.
Pure.

"Operating cash flow was $912 million, $874 million and $801 million in 2017, 2016 and 2015,
respectively" gives each amount its year; "revenue and net income were $5.1 million and $0.4
million, respectively" gives each amount its metric. When the counts differ, or the list is not
one of years or metrics, every amount of the list is left out: the pairing is not decided.
"""

from __future__ import annotations

import re

from schemas.periods import format_label
from worker.normalize.period_text import PeriodMention
from worker.rules.mentions import MetricMention
from worker.rules.roles import Amt

_RESPECTIVELY = re.compile(r"\brespectively\b", re.IGNORECASE)
_LIST_GAP = re.compile(r"[\s,]*(?:and\s+)?", re.IGNORECASE)
_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")
_SUB_PERIOD = re.compile(r"\b(?:quarters?|halves|half|months|q[1-4]|h[12])\b", re.IGNORECASE)
_YEAR_LIST = re.compile(
    r"\b(?:19|20)\d{2}(?:\s*(?:,\s*(?:and\s+)?|and\s+|&\s*)(?:fiscal\s+)?(?:19|20)\d{2}\b)+"
)
_METRIC_GAP = re.compile(r"\s*(?:,\s*)?(?:and\s+)?(?:the\s+|its\s+)?", re.IGNORECASE)


#: a list of amounts followed by its list of years, without "respectively": "$ 4.2 billion ,
#: $ 3.9 billion and $ 3.1 billion for 2008 , 2007 and 2006"
_YEARS_AFTER = re.compile(
    r"\s*,?\s*(?:for|in|during)\s+(?:the\s+)?(?:fiscal\s+)?(?:years?\s+)?"
    r"(?:(?:ended|ending)\s+[a-z]+\s+\d{1,2}\s*,\s*)?(?=(?:19|20)\d{2}\s*(?:,|and|&))",
    re.IGNORECASE,
)


def pair_respectively(s: str, amounts: list[Amt], metrics: list[MetricMention]) -> None:
    """Give the amounts of each "respectively" list their periods or metrics, or leave them out;
    so too a list of amounts followed by a list of years."""
    _pair_listed_years(s, amounts)
    for r in _RESPECTIVELY.finditer(s):
        run = _run_before(s, amounts, r.start())
        if len(run) < 2:
            after = _run_after(s, amounts, r.end())
            if len(after) >= 2:  # "both A and B increased, respectively, from X and Y"
                _pair_metrics(s, after, metrics)
            continue
        tail = s[run[-1].end : r.start()]
        listed = _YEAR_LIST.findall(s, _head_start(amounts, run[0]), run[0].start)
        if _YEAR.search(tail):
            _pair_years(tail, run)
        elif len(listed) == 1:
            _pair_years(listed[0], run)  # "for fiscal 2019 and 2018 was X and Y, respectively"
        else:
            _pair_metrics(s, run, metrics)


def _run_before(s: str, amounts: list[Amt], pos: int) -> list[Amt]:
    """The amounts listed just before ``pos``: "$912 million, $874 million and $801 million"."""
    live = [a for a in amounts if a.primary and not a.dropped and a.end <= pos]
    run: list[Amt] = []
    for a in reversed(live):
        if run and not _LIST_GAP.fullmatch(s[a.end : run[0].start]):
            break
        run.insert(0, a)
    return run


def _pair_listed_years(s: str, amounts: list[Amt]) -> None:
    live = [a for a in amounts if a.primary and not a.dropped]
    for a in live:
        m = _YEARS_AFTER.match(s, a.end)
        listed = _YEAR_LIST.match(s, m.end()) if m else None
        if listed is None:
            continue
        run = _run_before(s, amounts, a.end)
        if len(run) >= 2 and not _RESPECTIVELY.search(s, listed.end(), listed.end() + 20):
            _pair_years(listed.group(0), run)


def _run_after(s: str, amounts: list[Amt], pos: int) -> list[Amt]:
    """The amounts listed just after ``pos`` ("respectively , from X and Y")."""
    live = [a for a in amounts if a.primary and not a.dropped and a.start >= pos]
    if not live or not re.fullmatch(r"[\s,]*(?:from|to|at|of)?\s*", s[pos : live[0].start]):
        return []
    run = [live[0]]
    for a in live[1:]:
        if not _LIST_GAP.fullmatch(s[run[-1].end : a.start]):
            break
        run.append(a)
    return run


def _head_start(amounts: list[Amt], first: Amt) -> int:
    """Where the words before a list start: after the amount before it, or at the start."""
    return max([a.end for a in amounts if a.end <= first.start] + [0])


def _pair_years(tail: str, run: list[Amt]) -> None:
    years = [int(y) for y in _YEAR.findall(tail)]
    if len(years) != len(run) or _SUB_PERIOD.search(tail):
        for a in run:
            a.skip = True
        return
    for a, year in zip(run, years, strict=True):
        a.own = PeriodMention(a.start, a.end, "abs", format_label("FY", year))
        a.bare = False
        a.year = year


def _pair_metrics(s: str, run: list[Amt], metrics: list[MetricMention]) -> None:
    """ "revenue and net income were X and Y": the metrics listed before the amounts, in order."""
    before = [m for m in metrics if m.end <= run[0].start and m.canonical is not None]
    listed: list[MetricMention] = []
    for m in reversed(before):
        if listed and not _METRIC_GAP.fullmatch(s[m.end : listed[0].start]):
            break
        listed.insert(0, m)
    if len(listed) != len(run):
        for a in run:
            a.skip = True
        return
    for a, m in zip(run, listed, strict=True):
        a.metric = m
