"""The deterministic rules extractor: the offline default and the fallback when a model fails. Pure.

A report is split into sentences. In each sentence the extractor finds amounts (currency, scale,
percent), metric mentions (the synonym table of the standard), periods and the company, then
attaches each amount to the metric that governs it when the words between them read as "metric
... was / rose to / of ... amount". Amounts that are changes ("increased by $5 million"), ranges,
guidance, analyst estimates, currency conversions, components ("$36 billion of cash") or segment
figures ("Mobile phone sales") are left out: a missing fact is better than a wrong one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from schemas.fact import Fact
from schemas.standards import (
    ADJUSTED_PREFIX,
    ADJUSTED_WORDS,
    INCOME_METRICS,
    MARGIN_OF,
    METRIC_SYNONYMS,
    Unit,
    is_known_metric,
    metric_base,
    unit_of,
)
from worker.normalize import (
    AmountMention,
    PeriodMention,
    find_amounts,
    find_dates,
    find_periods,
    shift_label,
    split_label,
)
from worker.snippets import Snippet, has_amount, split_snippets


@dataclass(frozen=True, slots=True)
class RuleFact:
    """A fact and the snippet it came from; ``fact.start/end`` index ``snippet.text``."""

    snippet: Snippet
    fact: Fact


def extract_facts(text: str, company_hint: str | None = None) -> list[RuleFact]:
    """All facts the rules find in ``text``, in reading order."""
    out: list[RuleFact] = []
    doc_company: str | None = None
    period: str | None = None
    for snippet in split_snippets(text):
        named = find_company(snippet.text)
        if named:
            doc_company = named
        if not has_amount(snippet):
            continue
        company = named or doc_company or (company_hint.strip() if company_hint else None)
        cands, period = _sentence_facts(snippet.text, period)
        for cand in cands:
            fact = Fact(
                company=company or None,
                metric=cand.metric,
                metric_known=is_known_metric(cand.metric),
                value=cand.value,
                currency=cand.currency,
                unit=cand.unit,
                quarter=cand.period,
                value_text=snippet.text[cand.start : cand.end],
                start=cand.start,
                end=cand.end,
            )
            out.append(RuleFact(snippet, fact))
    return out


# --------------------------------------------------------------------------------------------
# Company names
# --------------------------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    """A set of words written as one whitespace-separated block."""
    return frozenset(text.split())


_CAP = r"[A-Z][\w&.\-]*"
_LEGAL = (
    r"(?:Oyj|Abp|Inc\.?|Incorporated|Corp\.?|Corporation|Ltd\.?|Limited|plc|PLC|Plc|AG|SA|S\.A\.|"
    r"NV|N\.V\.|AB|ASA|A/S|SE|SpA|S\.p\.A\.|GmbH|LLC|L\.P\.|Co\.|Holdings?|Group)"
)
_VERBS = (
    r"(?:reports|reported|said|says|saw|posted|posts|earned|announced|announces|recorded|records|"
    r"generated|booked|achieved|delivered|swung|slipped|returned|turned|is|was|has|had|sees|"
    r"expects|,\s(?:headquartered|based|a|the|which|one))\b"
)
_DATELINE = re.compile(
    r"^\s*(?:\d{1,2}\s[A-Z][a-z]+\s\d{4}|[A-Z]{3,}(?:\s\(\s?[A-Z]+\s?\))?)\s*[-–—]\s*"
)
_COMPANY_PATTERNS = [
    re.compile(rf"\b((?:{_CAP}\s){{0,4}}{_CAP}\s{_LEGAL})(?![\w])"),
    re.compile(rf"\b((?:{_CAP}\s){{0,3}}{_CAP}(?:\s[a-z]+)?)\s?(?:'s|’s|'|’)\s"),
    re.compile(rf"\b((?:{_CAP}\s){{0,3}}{_CAP})\s{_VERBS}"),
]
_STRIP_WORDS = _words(
    """
    the company companies finnish swedish norwegian danish icelandic estonian latvian lithuanian
    german french british uk us u.s. american canadian japanese chinese indian dutch swiss
    nordic scandinavian russian polish italian spanish australian korean
    """
)
_NOT_NAMES = _words(
    """
    the this that these those it its we our their in for on at as by during after before while
    when with net revenue revenues sales turnover operating cash total group company board
    management earnings profit income ebitda ebit eps gross adjusted consolidated underlying
    comparable dividend dividends loss results result quarter year fiscal first second third
    fourth half q1 q2 q3 q4 fy h1 h2 january february march april may june july august september
    october november december wireless cable media consumer enterprise services products
    software hardware international domestic americas europe asia emea segment division free
    basic diluted reported however also according shares share stock capital investors analysts
    chief ceo cfo president director directors helsinki stockholm oslo copenhagen london new
    """
)


def find_company(sentence: str) -> str | None:
    """The company a sentence names as the reporting entity, as written, or None."""
    text = _DATELINE.sub("", sentence)
    for rx in _COMPANY_PATTERNS:
        for m in rx.finditer(text):
            name = _clean_name(m.group(1))
            if name:
                return name
    return _name_before_metric(text)


def _clean_name(raw: str) -> str | None:
    words = raw.split()
    while words and words[0].lower().strip(".") in _STRIP_WORDS:
        words = words[1:]
    if not words or any(ch.isdigit() for ch in "".join(words)):
        return None
    if words[0].lower() in _NOT_NAMES or re.fullmatch(_LEGAL, " ".join(words)):
        return None
    if any(w.lower() in _METRIC_WORDS for w in words):
        return None
    return " ".join(words).strip(" ,")


_METRIC_WORDS = frozenset(
    w for forms in METRIC_SYNONYMS.values() for form in forms for w in form.split()
) - {"of", "the", "for", "from", "to", "by", "in", "per", "and", "before", "after"}


# --------------------------------------------------------------------------------------------
# Metric mentions
# --------------------------------------------------------------------------------------------

_BLOCKERS = (
    "income tax",
    "income taxes",
    "tax benefit",
    "tax expense",
    "deferred revenue",
    "deferred revenues",
    "unearned revenue",
    "total income",
    "other income",
    "interest income",
    "net interest income",
    "ebita",
    "dividends paid",
    "dividend payments",
    "dividend payment",
    "total dividends",
    "net debt",
    "order intake",
    "order backlog",
    "backlog",
    "comprehensive income",
    "comprehensive loss",
    "book value",
    "revenue recognition",
    "cost of sales",
    "cost of revenue",
    "cost of revenues",
    "sales and marketing",
    "noncontrolling interests",
    "non-controlling interests",
    "minority interest",
    "sales growth",
    "revenue growth",
    "net sales growth",
    "earnings growth",
    "comparable sales",
    "same-store sales",
    "like-for-like sales",
    "sales volume",
    "sales volumes",
    "sales price",
    "sales prices",
    "selling price",
    "loss on",
    "gain on",
    "profit warning",
    "cash flow hedge",
    "cash flow hedges",
    "operating expenses",
    "operating costs",
    "operating lease",
    "operating leases",
    "operating activities",
    "sales tax",
    "net assets",
    "revenue per",
    "sales per",
    "earnings call",
    "earnings release",
    "income statement",
)
_BARE = ("profit", "loss", "losses", "earnings")
_FORMS: dict[str, str | None] = {f: m for m, forms in METRIC_SYNONYMS.items() for f in forms}
_FORMS.update({b: None for b in _BLOCKERS})
_FORMS.update({b: "" for b in _BARE})
_MENTION_RE = re.compile(
    r"(?<![\w-])(?:"
    + "|".join(
        r"\s+".join(re.escape(w) for w in f.split()) for f in sorted(_FORMS, key=len, reverse=True)
    )
    + r")(?![\w-])",
    re.IGNORECASE,
)
_ADJ_BEFORE = re.compile(
    r"(?:(?:"
    + "|".join(re.escape(w) for w in sorted(ADJUSTED_WORDS, key=len, reverse=True))
    + r")\s+)+$",
    re.IGNORECASE,
)
_ADJ_AFTER = re.compile(
    r"^,?\s*\(?(?:excluding|before|excl\.?)\s(?:non-?recurring|one-?off|special|exceptional|"
    r"extraordinary|one-?time)\s(?:items|charges|costs)\)?",
    re.IGNORECASE,
)
_CHANGE_IN = re.compile(
    r"\b(?:increase|decrease|growth|decline|rise|fall|reduction|improvement|change|drop|"
    r"deterioration|increases|decreases|declines|reductions|changes)\s+in\s+(?:the\s+|our\s+|its\s+|"
    r"total\s+|net\s+)*$",
    re.IGNORECASE,
)
_BASE_BEFORE = re.compile(
    r"(?:%|percent|per cent|pct)\s*(?:\(\s*[\d.,]+\s*%\s*\)\s*)?of\s+(?:the\s+|our\s+|its\s+|"
    r"total\s+|consolidated\s+)*$",
    re.IGNORECASE,
)
_ALLOWED_BEFORE = _words(
    """
    final interim special quarterly annual proposed ordinary cash recommended its their our his
    her the a an total consolidated group group's company company's reported quarterly annual
    full-year yearly record and or of in for with as to from at on by that which while whereas
    but quarter half year half-year period months interim diluted basic gaap ifrs statutory 's s
    ' was were is are reported posted recorded generated earned achieved had has have saw booked
    delivered showed also both when where than versus vs compared said says reports stated
    combined overall corporate entire
    """
)
_SEGMENT_CAPS = _words(
    """
    wireless cable media consumer enterprise services products software hardware international
    domestic americas europe asia emea segment division mobile retail wholesale commercial
    industrial residential
    """
)


@dataclass(slots=True)
class _Metric:
    start: int
    end: int
    canonical: str | None  # None: a blocker (non-vocabulary phrase); "": bare profit / loss
    loss: bool = False
    adjusted: bool = False
    segment: bool = False
    change: bool = False
    base: bool = False


def _find_metrics(s: str, spans: list[tuple[int, int]]) -> list[_Metric]:
    out: list[_Metric] = []
    for m in _MENTION_RE.finditer(s):
        form = " ".join(m.group(0).lower().split())
        canonical = _FORMS[form]
        start, end = m.start(), m.end()
        before = s[:start]
        adjusted = False
        adj = _ADJ_BEFORE.search(before)
        if adj:
            adjusted, start = True, adj.start()
            before = s[:start]
        after = _ADJ_AFTER.match(s[end:])
        if after:
            adjusted, end = True, end + after.end()
        loss = bool(re.search(r"\bloss(es)?\b|\bused in\b", form))
        mention = _Metric(start, end, canonical, loss, adjusted)
        if canonical is not None:
            mention.segment = _is_segment(s, start, spans)
            mention.change = bool(_CHANGE_IN.search(before))
            mention.base = bool(_BASE_BEFORE.search(before))
        out.append(mention)
    # a bare "loss" / "profit" refers to the metric just named ("operating profit ... from a loss")
    last: _Metric | None = None
    for mention in out:
        if mention.canonical == "":
            if last is not None and last.canonical:
                mention.canonical = last.canonical
                mention.adjusted = mention.adjusted or last.adjusted
                mention.segment = mention.segment or last.segment
            else:
                mention.canonical = "net income"
        if mention.canonical and not mention.base:
            last = mention
    return out


def _is_segment(s: str, start: int, spans: list[tuple[int, int]]) -> bool:
    """A metric qualified by a word that is not the company's ("Mobile phone sales")."""
    i = start
    while True:
        prev = re.search(r"([\w'&.-]+|[^\w\s])\s*$", s[:i])
        if prev is None:
            return False
        word = prev.group(1)
        if any(a <= prev.start(1) < b for a, b in spans):
            return False
        if not word[0].isalnum():
            return False
        low = word.lower()
        if low in ADJUSTED_WORDS or low in ("total", "consolidated"):
            i = prev.start(1)
            continue
        if low in _ALLOWED_BEFORE or word.isdigit():
            return False
        if word[0].isupper():
            return low in _SEGMENT_CAPS
        return True


# --------------------------------------------------------------------------------------------
# Attaching amounts to metrics and periods
# --------------------------------------------------------------------------------------------

_GAP_WORDS = _words(
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
    year-over-year approximately reaching remained per share diluted basic
    """
)
_GAP_TOKEN = re.compile(r"[A-Za-z][\w'’-]*|\d+(?:[.,]\d+)*|[^\s\w]")
_GAP_PUNCT = frozenset(",():;-–—'’\"")
_MAX_GAP_WORDS = 30

_CHANGE_BEFORE = re.compile(
    r"(?:\b(?:increased|decreased|rose|fell|grew|declined|dropped|climbed|jumped|improved|gained|"
    r"slipped|increase|decrease|rise|fall|growth|decline|drop|reduction|improvement|change|up|down|"
    r"higher|lower|widened|narrowed|surged|soared|plunged|tumbled|shrank|expanded)(?:\s+by)?"
    r"|\b(?:increase|decrease|rise|fall|growth|decline|drop|reduction|improvement|change|"
    r"deterioration)(?:\s+in\s+[\w\s'-]{0,40}?)?\s+of)"
    r"(?:\s+(?:approximately|about|some|nearly|almost|roughly|around|over|more\s+than))?\s*$",
    re.IGNORECASE,
)
_CHANGE_AFTER = re.compile(
    r"^\s*,?\s*(?:or\s+[\d.,]+\s?%\s*,?\s*)?(?:increase|decrease|rise|decline|reduction|"
    r"improvement|higher|lower|more|less|above|below|growth|drop|gain|jump|change|improved|"
    r"year-on-year|year-over-year)\b",
    re.IGNORECASE,
)
_COMPONENT_AFTER = re.compile(
    r"^\s*(?:on\s+(?:the\s+)?(?:sale|disposal|divestiture|impairment|extinguishment|early|"
    r"settlement|write|revaluation|assets?)"
    r"|(?:\s*(?:in|during|for)\s+[^,.;]{1,40}?)?\s*,?\s*(?:which\s+represent(?:ed|s)?|representing)\s+(?:approximately\s+)?[\d.,]+\s?%\s*"
    r"(?:\(\s*[\d.,]+\s?%\s*\)\s*)?of\s+(?:our\s+|the\s+|its\s+)?(?:total|consolidated|group))",
    re.IGNORECASE,
)
_OF_IN_AFTER = re.compile(r"^\s*(?:of|in)\s+([A-Za-z]+\d*)", re.IGNORECASE)
_PERIODISH = _words(
    """
    the fiscal financial first second third fourth last final full calendar year years quarter
    quarters half q1 q2 q3 q4 fy h1 h2 9m january february march april may june july august
    september october november december jan feb mar apr jun jul aug sep sept oct nov dec each
    both this that which
    """
)
_GUIDANCE = re.compile(
    r"\b(?:expects?|expected|expecting|forecasts?|forecasted|guidance|outlook|targets?|targeted|"
    r"estimates?|estimated|consensus|analysts?|projects?|projected|projection|anticipates?|"
    r"anticipated|aims?|plans?|predicts?|sees|will|would|could|should|might|may|likely|"
    r"expectations?|guides?|guided)\b",
    re.IGNORECASE,
)
_LEVEL_VERB = re.compile(
    r"\b(?:reached|was|were|amounted|totall?ed|stood|came|reported|recorded|posted)\b",
    re.IGNORECASE,
)
_COMPARATIVE_BEFORE = re.compile(
    r"(?:\bfrom|\bcompared\s+(?:to|with)|\bversus|\bvs\.?|\bagainst|\bthan|\byear-on-year|"
    r"\byear-over-year|\bover)\s+(?:(?:a|an|the)\s+)?(?:(?:net\s+|operating\s+)?(?:loss|profit)\s+"
    r"(?:of\s+)?)?(?:approximately\s+|about\s+)?$",
    re.IGNORECASE,
)
_MARGIN_BASE_AFTER = re.compile(
    r"^\s*(?:\(\s*[\d.,]+\s?%\s*\)\s*)?of\s+(?:the\s+|our\s+|its\s+)?(?:net\s+|total\s+)?"
    r"(?:sales|revenues?|turnover)\b",
    re.IGNORECASE,
)
_BALANCE_METRICS = frozenset({"total assets", "cash and equivalents"})


@dataclass(slots=True)
class _Amt:
    mention: AmountMention
    primary: bool = True  # delimits period windows
    dropped: bool = False  # conversion, duplicate, range: never a fact
    skip: bool = False  # change, guidance, component: not a fact, but delimits windows
    comparative: bool = False
    anchor: int | None = None  # index of the amount an "or $1.18 per share" belongs to
    own: PeriodMention | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def start(self) -> int:
        return self.mention.start

    @property
    def end(self) -> int:
        return self.mention.end


@dataclass(frozen=True, slots=True)
class _Candidate:
    start: int
    end: int
    metric: str
    value: Decimal
    currency: str | None
    unit: Unit
    period: str | None


def _sentence_facts(s: str, carry: str | None = None) -> tuple[list[_Candidate], str | None]:
    """Facts of one sentence, and the current period it establishes for the sentences after it.

    ``carry`` is the period an earlier sentence established ("results for the fourth quarter of
    fiscal 2024. Revenue was ..."); it applies only when this sentence names no period at all.
    """
    periods = [p for p in find_periods(s)]
    amounts = [
        _Amt(a)
        for a in find_amounts(s)
        if not any(p.start <= a.start < p.end and p.kind != "abs" for p in periods)
        and not any(p.start <= a.start and a.end <= p.end for p in periods)
    ]
    labelled = [p for p in periods if p.kind == "abs"]
    if not amounts:
        return [], labelled[0].label if labelled else carry
    periods = [p for p in periods if not any(a.start <= p.start < a.end for a in amounts)]
    metrics = _find_metrics(
        s, [(a.start, a.end) for a in amounts] + [(p.start, p.end) for p in periods]
    )
    covered = [(a.start, a.end) for a in amounts] + [(p.start, p.end) for p in periods]
    covered += find_dates(s)
    covered += [(m.start, m.end) for m in metrics if m.base]

    # 1. relations between neighbouring amounts
    for i, cur in enumerate(amounts):
        if i == 0:
            continue
        prev = amounts[i - 1]
        between = s[prev.end : cur.start]
        pa, ca = prev.mention.amount, cur.mention.amount
        if (re.fullmatch(r"\s*\(?\s*", between) and "(" in between) or re.fullmatch(
            r"\s*", between
        ):
            if pa.unit is Unit.PERCENT and ca.unit is Unit.PERCENT and pa.value == ca.value:
                cur.dropped = True  # "27.5% ( 27.5 % )"
                continue
            if pa.currency and ca.currency and pa.currency != ca.currency:
                cur.dropped = True  # "EUR 40.0 million ( USD 43.5 m )": a conversion
                continue
            if "(" in between and not cur.mention.negative_marked:
                cur.comparative = True  # Nordic "( EUR 72,473 thousand )": bare comparative
                cur.extra["bare"] = True
                continue
        same_kind = pa.unit is ca.unit and (pa.currency == ca.currency or not ca.currency)
        if same_kind and (
            re.fullmatch(r"\s*[-–]?\s*", between)
            or (
                re.fullmatch(r"\s*to\s*", between)
                and not (_COMPARATIVE_BEFORE.search(s[: prev.start]) or prev.comparative)
                and not _CHANGE_BEFORE.search(s[: prev.start])
            )
        ):
            prev.dropped = cur.dropped = True  # a range "10 % -20 %"
            continue
        if re.fullmatch(r"\s*,?\s*or\s*", between):
            cur.anchor = prev.anchor if prev.anchor is not None else i - 1
            cur.primary = False
    for i, cur in enumerate(amounts):
        if re.search(r"\bbetween\s+$", s[: cur.start], re.IGNORECASE):
            cur.dropped = True
            if i + 1 < len(amounts):
                amounts[i + 1].dropped = True

    # 2. changes, guidance, components
    for cur in amounts:
        before, after = s[: cur.start], s[cur.end :]
        if cur.mention.amount.points or _CHANGE_BEFORE.search(before) or _CHANGE_AFTER.match(after):
            cur.skip = True
        if _COMPONENT_AFTER.match(after):
            cur.skip = True
        guidance = [g.end() for g in _GUIDANCE.finditer(before)]
        if guidance and not _LEVEL_VERB.search(s[guidance[-1] : cur.start]):
            cur.skip = True
        if re.match(r"^\s*(?:consensus|analyst|estimate)", after, re.IGNORECASE):
            cur.skip = True
    for cur in amounts:
        if cur.anchor is not None and amounts[cur.anchor].skip:
            cur.skip = True

    # 3. comparatives
    last_primary: _Amt | None = None
    for cur in amounts:
        if cur.dropped or not cur.primary:
            continue
        if "bare" in cur.extra:
            last_primary = cur
            continue
        lo = last_primary.end if last_primary is not None else 0
        head = s[lo : cur.start]
        if (
            _COMPARATIVE_BEFORE.search(s[: cur.start])
            or re.search(r"\(\s*$", head)
            or (
                last_primary is not None
                and last_primary.comparative
                and _continues_list(head, lo, periods)
            )
        ):
            cur.comparative = True
        last_primary = cur
    for cur in amounts:
        if cur.anchor is not None:
            cur.comparative = amounts[cur.anchor].comparative

    # 4. own periods: the first period after the amount, before the next primary amount; for a
    #    parenthesised comparative, the period just before the parenthesis
    live = [a for a in amounts if not a.dropped]
    for k, cur in enumerate(live):
        if not cur.primary:
            continue
        nxt = next((b.start for b in live[k + 1 :] if b.primary), len(s))
        own = next((p for p in periods if cur.end <= p.start < nxt and p.kind != "date"), None)
        if own is None and cur.comparative and re.search(r"\(\s*$", s[: cur.start]):
            paren = s[: cur.start].rstrip().rstrip("(").rstrip()
            prev_end = max([a.end for a in live if a.end <= cur.start] + [0])
            own = next((p for p in periods if p.end == len(paren) and p.start >= prev_end), None)
            if own is not None:
                cur.extra.pop("bare", None)
        cur.own = own
    for cur in amounts:
        if cur.anchor is not None:
            cur.own = amounts[cur.anchor].own

    prior_claimed = {id(a.own) for a in amounts if a.comparative and a.own is not None}
    current_abs = [p for p in periods if p.kind == "abs" and id(p) not in prior_claimed]
    prior_abs = [p for p in periods if p.kind == "abs" and id(p) in prior_claimed]
    has_relative = any(p.kind in ("prev", "same") for p in periods)
    carried = carry if not current_abs else None

    def reference(pos: int) -> str | None:
        before = [p for p in current_abs if p.start < pos]
        pick = before[-1] if before else (current_abs[0] if current_abs else None)
        return pick.label if pick is not None else carried

    def resolve(p: PeriodMention, pos: int) -> tuple[bool, str | None]:
        if p.kind == "abs":
            return True, p.label
        if p.kind in ("prev", "same"):
            ref = reference(pos)
            if ref is None:
                return False, None
            label = (
                shift_label(ref, to_year=p.year)
                if p.kind == "same"
                else shift_label(ref, by_years=-1)
            )
            return label is not None, label
        return False, None

    # 5. metric, unit, sign, period for each amount
    out: list[_Candidate] = []
    for idx, cur in enumerate(amounts):
        if cur.dropped or cur.skip:
            continue
        amount = cur.mention.amount
        metric = _governing_metric(s, cur, metrics, covered, amounts, idx)
        if metric is None or metric.canonical is None or metric.segment:
            continue
        if metric.change and not _LEVEL_VERB.search(s[metric.end : cur.start]):
            continue
        name = (ADJUSTED_PREFIX if metric.adjusted else "") + metric.canonical
        currency = amount.currency
        unit = amount.unit
        value = amount.value
        if unit is Unit.COUNT:
            currency = next(
                (
                    a.mention.amount.currency
                    for a in reversed(amounts[:idx])
                    if a.mention.amount.currency
                ),
                None,
            )
            if currency is None:
                continue
            unit = Unit.CURRENCY
        expected = unit_of(name)
        if unit is Unit.PERCENT:
            if expected is not Unit.PERCENT:
                margin = MARGIN_OF.get(metric_base(name))
                if margin is None or not _MARGIN_BASE_AFTER.match(s[cur.end :]):
                    continue
                name = (ADJUSTED_PREFIX if metric.adjusted else "") + margin
                expected = Unit.PERCENT
        else:
            if expected is Unit.PERCENT:
                if metric_base(name) != "gross margin":
                    continue
                name = name.replace("gross margin", "gross profit")
                expected = Unit.CURRENCY
            if unit is Unit.CURRENCY_PER_SHARE and expected is Unit.CURRENCY:
                if metric_base(name) != "net income":
                    continue
                name = name.replace("net income", "earnings per share")
                expected = Unit.CURRENCY_PER_SHARE
            elif expected is Unit.CURRENCY_PER_SHARE and unit is Unit.CURRENCY:
                if amount.scaled or abs(value) >= 1000:
                    continue
            elif expected is not unit and expected is not None:
                continue
        if expected is None:
            continue
        if metric.loss and metric_base(name) in INCOME_METRICS and value > 0:
            value = -value
        # period
        period: str | None
        if cur.own is not None:
            ok, period = resolve(cur.own, cur.start)
            if not ok:
                continue
        elif cur.comparative:
            if "bare" in cur.extra and not has_relative:
                continue
            rel = next((p for p in periods if p.kind in ("prev", "same")), None)
            if rel is not None:
                ok, period = resolve(rel, cur.start)
                if not ok:
                    continue
            else:
                before_prior = [p for p in prior_abs if p.start < cur.start]
                if not before_prior:
                    continue
                period = before_prior[-1].label
        else:
            before_cur = [p for p in current_abs if p.start < cur.start]
            period = before_cur[-1].label if before_cur else carried
        if metric_base(name) in _BALANCE_METRICS:
            dates = [p for p in find_periods(s) if p.kind == "date"]
            if dates:
                period = dates[0].label
        if period is not None and split_label(period)[0] == "":
            period = None
        out.append(
            _Candidate(
                cur.start,
                cur.end,
                name,
                value,
                currency if expected is not Unit.PERCENT else None,
                expected,
                period,
            )
        )
    return out, current_abs[0].label if current_abs else carry


_LIST_WORDS = frozenset({"and", "in", "during", "for", "recorded", "reported", "posted", "at"})


def _continues_list(head: str, lo: int, periods: list[PeriodMention]) -> bool:
    """ "... compared with $52.2 million in 2003 and $51.3 million" continues the comparison."""
    chars = list(head)
    for p in periods:
        for k in range(max(p.start, lo), min(p.end, lo + len(head))):
            chars[k - lo] = " "
    words = re.findall(r"[A-Za-z]+", "".join(chars))
    return all(w.lower() in _LIST_WORDS for w in words)


def _governing_metric(
    s: str,
    cur: _Amt,
    metrics: list[_Metric],
    covered: list[tuple[int, int]],
    amounts: list[_Amt],
    idx: int,
) -> _Metric | None:
    amount = cur.mention.amount
    if cur.anchor is not None:
        anchor = amounts[cur.anchor]
        return _governing_metric(s, anchor, metrics, covered, amounts, cur.anchor)
    after = s[cur.end :]
    if amount.unit is not Unit.PERCENT:
        m = re.match(r"^\s*(?:(?:in|of)\s+)?", after)
        pos = cur.end + (m.end() if m else 0)
        following = next((x for x in metrics if x.start == pos and not x.base), None)
        if following is not None:
            return following
        of_in = _OF_IN_AFTER.match(after)
        if of_in and of_in.group(1).lower() not in _PERIODISH:
            return None  # "$2.5 billion of cash used for ...": a component
    preceding = [x for x in metrics if x.end <= cur.start and not x.base]
    if not preceding:
        return None
    metric = preceding[-1]
    if not _gap_ok(s, metric.end, cur.start, covered):
        return None
    return metric


def _gap_ok(s: str, lo: int, hi: int, covered: list[tuple[int, int]]) -> bool:
    words = 0
    for t in _GAP_TOKEN.finditer(s, lo, hi):
        if any(a <= t.start() and t.end() <= b for a, b in covered):
            continue
        tok = t.group(0)
        if tok in _GAP_PUNCT:
            continue
        words += 1
        if words > _MAX_GAP_WORDS or tok.lower() not in _GAP_WORDS:
            return False
    return True


def _name_before_metric(text: str) -> str | None:
    """ "In 2023 , Northwind net sales were ..." -> "Northwind"."""
    for m in re.finditer(rf"(?:^|[,;]\s|\b\d{{4}}\s,?\s?)((?:{_CAP}\s){{0,2}}{_CAP})\s", text):
        rest = text[m.end() :]
        mention = _MENTION_RE.match(rest)
        if mention is None or _FORMS.get(" ".join(mention.group(0).lower().split())) is None:
            continue
        name = _clean_name(m.group(1))
        if name and name.lower() not in _SEGMENT_CAPS:
            return name
    return None
