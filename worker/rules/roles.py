"""What each amount of a sentence is: a level, a duplicate, a conversion, part of a range, an
alternative form of its neighbour, a change, guidance, a component or a comparative. Pure.

The phases run in this order over the amounts of one sentence (left to right) and only set flags
on them; which metric and period an amount belongs to is decided afterwards
(:mod:`worker.rules.sentence`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from schemas.standards import Unit
from worker.normalize.amounts import AmountMention
from worker.normalize.period_text import PeriodMention
from worker.rules.cues import (
    CHANGE_AFTER,
    CHANGE_BEFORE,
    COMPARATIVE_BEFORE,
    COMPONENT_AFTER,
    COMPONENT_BEFORE,
    GUIDANCE,
    LEVEL_VERB,
    LOOKBACK,
    PRIOR_PERIOD_BEFORE,
    REFERENCE_GAP,
    THRESHOLD_BEFORE,
    continues_list,
    ends_with,
)
from worker.rules.mentions import MetricMention


@dataclass(slots=True)
class Amt:
    """An amount of a sentence and what the phases found out about it."""

    mention: AmountMention
    primary: bool = True  # delimits period windows
    dropped: bool = False  # conversion, duplicate, range: never a fact
    skip: bool = False  # change, guidance, component: not a fact, but delimits windows
    comparative: bool = False
    bare: bool = False  # a comparative in parentheses with no period of its own (yet)
    anchor: int | None = None  # index of the amount an "or $1.18 per share" belongs to
    own: PeriodMention | None = None
    metric: MetricMention | None = None  # given by a "respectively" list
    year: int | None = None  # given by a "respectively" list of years
    labelled: bool = False  # a comparative whose period a "(2020: ..." label names

    @property
    def start(self) -> int:
        return self.mention.start

    @property
    def end(self) -> int:
        return self.mention.end


_CONVERSION_GAP = re.compile(
    r"\s*[(,]?\s*(?:(?:approximately|approx\.?|about|around|roughly|some|c\.|ca\.?|"
    r"equivalent\s+to|or|i\.e\.)\s*)?",
    re.IGNORECASE,
)


def _tight_pair(s: str, prev: Amt, cur: Amt, between: str) -> bool:
    """Two amounts side by side ("27.5% ( 27.5 % )", "EUR 40.0 million ( USD 43.5 m )",
    "EUR 73.3 mn ( EUR 72.5 mn )"): marks the second one; True when it did."""
    pa, ca = prev.mention.amount, cur.mention.amount
    converted = pa.currency and ca.currency and pa.currency != ca.currency
    if converted and _CONVERSION_GAP.fullmatch(between):
        cur.dropped = True  # "CAD 50 million ( approximately EUR 34 million )": a conversion
        return True
    if not (
        re.fullmatch(r"\s*", between) or (re.fullmatch(r"\s*\(?\s*", between) and "(" in between)
    ):
        return False
    if pa.unit is Unit.PERCENT and ca.unit is Unit.PERCENT and pa.value == ca.value:
        cur.dropped = True  # a duplicated percentage
        return True
    if "(" in between and not cur.mention.negative_marked:
        cur.comparative = cur.bare = True  # Nordic "( EUR 72,473 thousand )"
        return True
    return False


def _lost_parens(prev: Amt, cur: Amt, between: str) -> bool:
    """ "EUR 5.2 million EUR 4.9 million", "EUR 64.1 58.9 million": a prior-period comparative
    whose parentheses were lost. It is never a fact; when only it carries the scale, the scale of
    the first is not decided either ("never 64.1 as 64.1 euros")."""
    pa, ca = prev.mention.amount, cur.mention.amount
    if not re.fullmatch(r"\s+", between) or pa.currency is None or pa.unit is Unit.PERCENT:
        return False
    if ca.currency not in (None, pa.currency) or ca.unit is Unit.PERCENT:
        return False
    if cur.mention.negative_marked and not prev.mention.negative_marked:
        return False  # "EUR 5 -6 million": a range
    cur.dropped = True
    if ca.scaled and not pa.scaled:
        prev.dropped = True
    return True


def _is_range(s: str, prev: Amt, cur: Amt, between: str) -> bool:
    """ "10 % -20 %", "$5 million to $7 million" (not "from $5 million to $7 million")."""
    pa, ca = prev.mention.amount, cur.mention.amount
    if not (pa.unit is ca.unit and (pa.currency == ca.currency or not ca.currency)):
        return False
    if re.fullmatch(r"\s*[-–]?\s*", between):
        return True
    return bool(
        re.fullmatch(r"\s*to\s*", between)
        and not (ends_with(COMPARATIVE_BEFORE, s, prev.start) or prev.comparative)
        and not ends_with(CHANGE_BEFORE, s, prev.start)
    )


def mark_neighbours(s: str, amounts: list[Amt]) -> None:
    """Relations between neighbouring amounts: duplicates, conversions, bare comparatives,
    ranges, "between X and Y", and "X, or Y per share" alternatives."""
    for i in range(1, len(amounts)):
        prev, cur = amounts[i - 1], amounts[i]
        between = s[prev.mention.scale_end or prev.end : cur.start]
        if _tight_pair(s, prev, cur, between) or _lost_parens(prev, cur, between):
            continue
        if _is_range(s, prev, cur, between):
            prev.dropped = cur.dropped = True
            continue
        if re.fullmatch(r"\s*,?\s*or\s*", between):
            cur.anchor = prev.anchor if prev.anchor is not None else i - 1
            cur.primary = False
    for i, cur in enumerate(amounts):
        if ends_with(_BETWEEN, s, cur.start):
            cur.dropped = True
            if i + 1 < len(amounts):
                amounts[i + 1].dropped = True


#: "... to grow to X from Y in 2009", "... X, as compared to Y in the first quarter 2008": in a
#: forecast, the dated level it is compared with is an actual
_ACTUAL_IN_FORECAST = re.compile(
    r"\s*(?P<verb>(?:recorded|reported|reached|achieved|posted|booked|realised|realized|generated|"
    r"seen|made)\s+)?(?:(?:in|for)\s+(?:the\s+)?(?:(?:first|second|third|fourth|last)\s+"
    r"(?:quarter|half)\s+(?:of\s+)?)?(?:(?:fiscal|financial)\s+(?:year\s+)?)?(?:19|20)\d{2}\b"
    r"|last\s+year\b)",
    re.IGNORECASE,
)
#: what a forecast is compared with, besides the comparison words of any sentence: "expected to
#: exceed the EUR 21.5 million reached in 2013", "EBITDA of SEK 95 million, after SEK 88 million"
_FORECAST_COMPARISON = re.compile(
    r"\b(?:exceed(?:s|ing)?|surpass(?:es|ing)?|above|below|after|beyond|match(?:es|ing)?|"
    r"(?:higher|lower|more|less|better|worse)\s+than)\s+(?:the\s+|last\s+year's\s+)?$",
    re.IGNORECASE,
)


def _actual_beside_forecast(s: str, cur: Amt) -> bool:
    """A dated level a forecast is compared with ("compared with X in 2011", "after X in 2015",
    "the X reached in 2013"). After a threshold word ("exceed X in 2012") the year may be the
    forecast's own: the level is an actual only when it says so ("reached", "recorded") or a
    later year names the forecast."""
    dated = _ACTUAL_IN_FORECAST.match(s, cur.end)
    if dated is None:
        return False
    if ends_with(COMPARATIVE_BEFORE, s, cur.start):
        return True
    if not ends_with(_FORECAST_COMPARISON, s, cur.start):
        return False
    if dated.group("verb"):
        return True
    year = re.search(r"(?:19|20)\d{2}", dated.group(0))
    later = [int(y) for y in re.findall(r"\b(?:19|20)\d{2}\b", s)]
    return year is not None and any(y > int(year.group(0)) for y in later)


def mark_non_levels(s: str, amounts: list[Amt]) -> None:
    """Changes ("up by $5 million"), points, components ("a gain on the sale"), guidance and
    analyst estimates are not levels of a metric."""
    for cur in amounts:
        lo, after = max(0, cur.start - LOOKBACK), s[cur.end :]
        changed = ends_with(CHANGE_BEFORE, s, cur.start) or CHANGE_AFTER.match(after)
        if cur.mention.amount.points or changed:
            cur.skip = True
        if COMPONENT_AFTER.match(after) or ends_with(COMPONENT_BEFORE, s, cur.start):
            cur.skip = True
        guidance = [g.end() for g in GUIDANCE.finditer(s, lo, cur.start)]
        if guidance and not LEVEL_VERB.search(s[guidance[-1] : cur.start]):
            actual = _actual_beside_forecast(s, cur)
            cur.skip = not actual
            cur.comparative = cur.comparative or actual
        if re.match(r"^\s*(?:consensus|analyst|estimate)", after, re.IGNORECASE):
            cur.skip = True
        if ends_with(THRESHOLD_BEFORE, s, cur.start) and not cur.comparative:
            cur.skip = True
    for cur in amounts:
        if cur.anchor is not None and amounts[cur.anchor].skip:
            cur.skip = True


def mark_comparatives(s: str, amounts: list[Amt], periods: list[PeriodMention]) -> None:
    """Amounts of an earlier period: after "from", "compared with", "versus", "against", an
    opening parenthesis, or listed after such an amount ("... and $51.3 million")."""
    last: Amt | None = None
    for cur in amounts:
        if cur.dropped or not cur.primary:
            continue
        if cur.bare:
            last = cur
            continue
        lo = last.end if last is not None else 0
        head = s[lo : cur.start]
        if (
            ends_with(COMPARATIVE_BEFORE, s, cur.start)
            or re.search(r"\(\s*$", head)
            or labelled_paren(s, cur.start)
            or (last is not None and last.comparative and continues_list(head, lo, periods))
        ):
            cur.comparative = True
        last = cur
    for cur in amounts:
        if cur.anchor is not None:
            cur.comparative = amounts[cur.anchor].comparative


#: where a clause about another thing starts: a period after it is not the amount's own
CLAUSE_END = re.compile(
    r"\s?[,;]\s(?:which|while|whereas|but|and\s(?:the|its|it|our|we))\b|\s;\s",
    re.IGNORECASE,
)


#: a parenthesis that names the period of the amount after it: "(2020: £4.2 million)",
#: "(H1 2009: EUR 3.1 mn)"
_LABELLED_PAREN = re.compile(r"\(\s*[^():]{1,40}?\s*:\s*$")
#: the next label of a list inside such a parenthesis: "( 2010 : EUR 15.2 million ; 2009 : "
_NEXT_LABEL = re.compile(r"\(\s*[^()]*[;,]\s*[^():;,]{1,40}?\s*:\s*$")


def labelled_paren(s: str, pos: int) -> re.Match[str] | None:
    """The "(2020: " or "(2010: X; 2009: " that names the period of the amount at ``pos``."""
    first = ends_with(_LABELLED_PAREN, s, pos)
    if first is not None:
        return first
    listed = ends_with(_NEXT_LABEL, s, pos)
    if listed is None:
        return None
    label = re.search(r"[;,]\s*[^():;,]{1,40}?\s*:\s*$", listed.group(0))
    return re.compile(re.escape(label.group(0)) + "$").search(s, 0, pos) if label else None


_OPEN_PAREN = re.compile(r"\(\s*$")
_BETWEEN = re.compile(r"\bbetween\s+$", re.IGNORECASE)


def _is_label_of_next(s: str, p: PeriodMention) -> bool:
    """ "(2020: ..." names the period of what follows the colon, not of what precedes."""
    return s[p.end :].lstrip().startswith(":")


def assign_own_periods(s: str, amounts: list[Amt], periods: list[PeriodMention]) -> None:
    """Each amount's own period: the first period after it, before the next primary amount and
    within its clause ("..., which made it a record year" is another clause); for a
    parenthesised comparative, the period just before the parenthesis."""
    live = [a for a in amounts if not a.dropped]
    for k, cur in enumerate(live):
        if not cur.primary:
            continue
        nxt = next((b.start for b in live[k + 1 :] if b.primary), len(s))
        clause = CLAUSE_END.search(s, cur.end, nxt)
        nxt = clause.start() if clause else nxt
        own = next(
            (
                p
                for p in periods
                if cur.end <= p.start < nxt
                and p.kind != "date"
                and not _is_label_of_next(s, p)
                and (cur.comparative or not ends_with(PRIOR_PERIOD_BEFORE, s, p.start))
                and (cur.comparative or not REFERENCE_GAP.search(s, cur.end, p.start))
            ),
            None,
        )
        if own is not None and GUIDANCE.search(s, cur.end, own.start):
            own = None  # "X, and it expects growth in 2010": 2010 is the forecast's
        labelled = labelled_paren(s, cur.start) if cur.comparative else None
        if labelled is not None:  # "(2020: £4.2 million)"
            inside = [p for p in periods if labelled.start() <= p.start and p.end <= cur.start]
            own = inside[0] if len(inside) == 1 else None
            cur.bare = own is None
            cur.labelled = own is not None
        if own is None and cur.comparative and ends_with(_OPEN_PAREN, s, cur.start):
            paren = s[: cur.start].rstrip().rstrip("(").rstrip()
            prev_end = max([a.end for a in live if a.end <= cur.start] + [0])
            own = next((p for p in periods if p.end == len(paren) and p.start >= prev_end), None)
            if own is not None:
                cur.bare = False
        cur.own = own
    for cur in amounts:
        if cur.anchor is not None:
            cur.own = amounts[cur.anchor].own
