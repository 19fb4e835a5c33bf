"""The words around an amount that say what it is: a level, a change, a component, guidance or
a comparative; and the words allowed between a metric and its amount. Pure."""

from __future__ import annotations

import re

from worker.normalize.period_text import PeriodMention
from worker.rules.mentions import words

_GAP_WORDS = words(
    """
    was were is are be been being has have had amounted amounting amounts amount totaled
    totalled totaling totalling totals total reached reaching stood standing came come rose
    risen rise rises rising grew grown grow increased increase increases increasing decreased
    decrease decreases decreasing fell fallen fall falls declined decline declines dropped drop
    drops climbed climb climbing jumped jump jumps surged soared improved improve improves
    slipped slumped plunged tumbled went go goes going up down to from of at by in for during on
    the a an its their our and or with as compared compare comparing versus vs against than
    approximately approx about around roughly some nearly almost over under just only reported
    recorded posted generated earned achieved delivered booked registered showed shows show saw
    narrowed contracted widened shrank expanded swung turned returned tripled doubled halved
    also respectively sequentially which that when they it this level levels figure value record
    new slightly significantly sharply strongly marginally further more less both each same
    period corresponding end ended ending representing represented corresponding equal
    equivalent stable flat unchanged net consolidated group company totalled year-on-year
    year-over-year approximately reaching remained per share diluted basic reach comes seen
    quarter quarters year years half months month fiscal financial percent percentage falling
    short expected estimated forecast projected closed landed red black proposed declared
    recommended after exceed exceeds exceeding surpass surpasses surpassing
    """
)
#: a threshold, not a level: "revenue exceeded EUR 1 billion" (unless it names a recorded value
#: a forecast is compared with, "expected to exceed the EUR 21.5 million reached in 2013")
THRESHOLD_BEFORE = re.compile(
    r"\b(?:exceed(?:s|ed|ing)?|surpass(?:es|ed|ing)?|topp(?:ed|ing)|tops?)\s+(?:the\s+)?"
    r"(?:(?:mark|level|threshold)\s+of\s+)?$",
    re.IGNORECASE,
)
#: a currency code standing alone between a metric and its amount ("revenue EUR rose to")
_GAP_CODE = re.compile(r"[A-Z]{3}")
#: a year in a list of years ("for fiscal 2019 and 2018 was")
_GAP_YEAR = re.compile(r"(?:19|20)\d{2}")
_GAP_TOKEN = re.compile(r"[A-Za-z][\w'’-]*|\d+(?:[.,]\d+)*|[^\s\w]")
_GAP_PUNCT = frozenset(",():;-–—'’\"")
_MAX_GAP_WORDS = 30

CHANGE_BEFORE = re.compile(
    r"(?:\b(?:increased|decreased|rose|fell|grew|declined|dropped|climbed|jumped|improved|gained|"
    r"slipped|increase|decrease|rise|fall|growth|decline|drop|reduction|improvement|change|up|down|"
    r"higher|lower|widened|narrowed|surged|soared|plunged|tumbled|shrank|expanded)(?:\s+by)?"
    r"|\b(?:increase|decrease|rise|fall|growth|decline|drop|reduction|improvement|change|"
    r"deterioration)(?:\s+in\s+[\w\s'-]{0,40}?)?\s+of)"
    r"(?:\s+(?:approximately|about|some|nearly|almost|roughly|around|over|more\s+than))?\s*$",
    re.IGNORECASE,
)
CHANGE_AFTER = re.compile(
    r"^\s*,?\s*(?:or\s+[\d.,]+\s?%\s*,?\s*)?(?:increase|decrease|rise|decline|reduction|"
    r"improvement|higher|lower|more|less|above|below|growth|drop|gain|jump|change|improved|"
    r"smaller|larger|bigger|greater|better|worse|year-on-year|year-over-year)\b",
    re.IGNORECASE,
)
COMPONENT_AFTER = re.compile(
    r"^\s*(?:on\s+(?:the\s+)?(?:sale|disposal|divestiture|impairment|extinguishment|early|"
    r"settlement|write|revaluation|assets?)"
    r"|(?:\s*(?:in|during|for)\s+[^,.;]{1,40}?)?\s*,?\s*(?:which\s+represent(?:ed|s)?|representing)\s+(?:approximately\s+)?[\d.,]+\s?%\s*"
    r"(?:\(\s*[\d.,]+\s?%\s*\)\s*)?of\s+(?:our\s+|the\s+|its\s+)?(?:total|consolidated|group))",
    re.IGNORECASE,
)
#: words just before an amount that make it a part of the total named before: "EUR 500 million,
#: of which EUR 120 million", "$2.1 billion, including $600 million"
COMPONENT_BEFORE = re.compile(
    r"\b(?:of\s+which|of\s+this|of\s+that|including|included|includes|whereof)\s+"
    r"(?:(?:approximately|about|some|around|roughly|nearly)\s+)?$",
    re.IGNORECASE,
)
OF_IN_AFTER = re.compile(r"^\s*(?:of|in)\s+([A-Za-z]+\d*)", re.IGNORECASE)
PERIODISH = words(
    """
    the fiscal financial first second third fourth last final full calendar year years quarter
    quarters half q1 q2 q3 q4 fy h1 h2 9m january february march april may june july august
    september october november december jan feb mar apr jun jul aug sep sept oct nov dec each
    both this that which
    """
)
GUIDANCE = re.compile(
    r"(?<!than-)(?<!than\s)\b(?:expects?|expected|expecting|forecasts?|forecasted|guidance|outlook|targets?|targeted|"
    r"estimates?|estimated|consensus|analysts?|projects?|projected|projection|anticipates?|"
    r"anticipated|aims?|plans?|predicts?|sees|will|would|could|should|might|(?-i:may)|likely|"
    r"expectations?|guides?|guided|(?:is|are)\s+seen)\b",
    re.IGNORECASE,
)
LEVEL_VERB = re.compile(
    r"\b(?:reached|was|were|amounted|totall?ed|stood|came|reported|recorded|posted)\b",
    re.IGNORECASE,
)
COMPARATIVE_BEFORE = re.compile(
    r"(?:\bfrom|\bcompared\s+(?:to|with)|\bversus|\bvs\.?|\bagainst|\bthan|\byear-on-year|"
    r"\byear-over-year|\bover|\bshort\s+of)\s+(?:(?:a|an|the)\s+)?(?:year-(?:earlier|ago)\s+)?"
    r"(?:(?:net\s+|operating\s+|pre-?tax\s+)?(?:loss|profit)\s+(?:of\s+)?)?"
    r"(?:approximately\s+|about\s+)?$",
    re.IGNORECASE,
)
#: words just before a period that make it the comparison period ("lower than 2018",
#: "compared with the first quarter of 2019")
PRIOR_PERIOD_BEFORE = re.compile(
    r"\b(?:than|compared\s+(?:to|with)|as\s+compared\s+(?:to|with)|versus|vs\.?|against|from|over)"
    r"\s+(?:in\s+|with\s+)?$",
    re.IGNORECASE,
)
#: words between an amount and a later period that make the period a point of reference, not
#: the amount's own: "X, the highest since 2007", "X, compared with the 2009 figure of Y", "X,
#: while in 2009 it was Y", "X, twice the level of 2009"
REFERENCE_GAP = re.compile(
    r"\b(?:since|levels?|figures?|results?|seen|exceed\w*|twice|times|improvement|highest|"
    r"lowest|best|worst|record|ago|before|when|compared|versus|vs|against|than|from|while|"
    r"whereas|it\s+was|it\s+were)\b",
    re.IGNORECASE,
)
MARGIN_BASE_AFTER = re.compile(
    r"^\s*(?:\(\s*[\d.,]+\s?%\s*\)\s*)?of\s+(?:the\s+|our\s+|its\s+)?(?:net\s+|total\s+)?"
    r"(?:sales|revenues?|turnover)\b",
    re.IGNORECASE,
)
#: a metric named as a share of sales: "gross profit as a percentage of revenue was 42%"
AS_SHARE_OF_SALES = re.compile(
    r"^\s*(?:as\s+a\s+)?(?:percent(?:age)?|%|share)\s+of\s+(?:the\s+|our\s+|its\s+)?"
    r"(?:net\s+|total\s+)?(?:sales|revenues?|turnover)\b",
    re.IGNORECASE,
)
BALANCE_METRICS = frozenset({"total assets", "cash and equivalents"})


#: how far back the words before an amount or a metric are read (a long clause)
LOOKBACK = 250


def ends_with(rx: re.Pattern[str], s: str, pos: int) -> re.Match[str] | None:
    """``rx`` (anchored with ``$``) matched by the words just before ``pos``."""
    return rx.search(s, max(0, pos - LOOKBACK), pos)


def gap_ok(s: str, lo: int, hi: int, covered: list[tuple[int, int]]) -> bool:
    """The words between a metric (ending at ``lo``) and its amount (at ``hi``) read as "metric
    ... was / rose to / of ... amount": few, and all from the gap vocabulary. Spans in
    ``covered`` (other amounts, periods, dates) do not count."""
    words = 0
    for t in _GAP_TOKEN.finditer(s, lo, hi):
        if any(a <= t.start() and t.end() <= b for a, b in covered):
            continue
        tok = t.group(0)
        if tok in _GAP_PUNCT or _GAP_YEAR.fullmatch(tok):
            continue
        words += 1
        if words > _MAX_GAP_WORDS or (
            tok.lower() not in _GAP_WORDS and not _GAP_CODE.fullmatch(tok)
        ):
            return False
    return True


_LIST_WORDS = frozenset({"and", "in", "during", "for", "recorded", "reported", "posted", "at"})


def continues_list(head: str, lo: int, periods: list[PeriodMention]) -> bool:
    """ "... compared with $52.2 million in 2003 and $51.3 million" continues the comparison."""
    chars = list(head)
    for p in periods:
        for k in range(max(p.start, lo), min(p.end, lo + len(head))):
            chars[k - lo] = " "
    words = re.findall(r"[A-Za-z]+", "".join(chars))
    return all(w.lower() in _LIST_WORDS for w in words)
