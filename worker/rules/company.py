"""The company a sentence names as the reporting entity. Pure."""

from __future__ import annotations

import re

from schemas.standards import METRIC_SYNONYMS
from worker.rules.mentions import FORMS, MENTION_RE, SEGMENT_CAPS, words

#: a capitalised word, or one that starts with digits ("3M", "7-Eleven")
_UPPER = "A-ZÀ-ÖØ-ÞŠŽČŁŚŻĆŃŘĚ"
#: the rest of a name's word: letters, digits, "&.+-", and the bytes of a mis-decoded UTF-8 letter
#: ("SÃ¤Ã¤stÃ¶pankki" is "Säästöpankki" read as Latin-1; names are kept as written)
_MOJIBAKE = "\u0080-\u00bf\u2020-\u2026\u2030\u2122\u0152\u0153\u0161\u017e\u0192"
_CAP = rf"(?:[{_UPPER}]|\d+-?[{_UPPER}])[\w&.+\-{_MOJIBAKE}]*"
_LEGAL = (
    r"(?:Oyj|Abp|Inc\.?|Incorporated|Corp\.?|Corporation|Ltd\.?|Limited|plc|PLC|Plc|AG|SA|S\.A\.|"
    r"NV|N\.V\.|AB|ASA|A/S|SE|SpA|S\.p\.A\.|GmbH|LLC|L\.P\.|Co\.|Holdings?|Group|group|Oy)"
)
_VERBS = (
    r"(?:reports|reported|said|says|saw|posted|posts|earned|announced|announces|recorded|records|"
    r"generated|booked|achieved|delivered|swung|slipped|returned|turned|is|was|has|had|sees|"
    r"expects|made|makes|narrowed|widened|raised|increased|decreased|improved|cut|closed|closes|"
    r"ended|ends|finished|"
    r"board\sof\sdirectors|,\s(?:headquartered|based|a|the|which|one))\b"
)
#: an aside between a name and its verb ("Acme , however , posted ...")
_ASIDE = r"(?:\s?,\s(?:however|meanwhile|also|too|in\saddition)\s?,)?"
_DATELINE = re.compile(
    r"^\s*(?:\d{1,2}\s[A-Z][a-z]+\s\d{4}|[A-Z]{3,}(?:\s\(\s?[^()]{1,40}?\s?\))?)\s*[-–—]\s*"
)
#: an opening phrase that names a source, not the reporter: "According to Statistics Finland ,"
_SOURCE_OPENING = re.compile(
    r"^\s*(?:according\s+to|as\s+reported\s+by|citing|as\s+(?:cited|quoted)\s+by|"
    r"(?:data|figures)\s+from)\s+[^,;]{1,80}?\s?,\s*",
    re.IGNORECASE,
)
_COMPANY_PATTERNS = [
    re.compile(rf"(?<![\w&])((?:(?:{_CAP}|&)\s){{0,4}}{_CAP}\s{_LEGAL})(?![\w])"),
    re.compile(rf"\b((?:{_CAP}\s){{0,3}}{_CAP}(?:\s[a-z]+)?)\s?(?:'s|’s|'|’)\s"),
    re.compile(rf"\b((?:{_CAP}\s){{0,3}}{_CAP}){_ASIDE}\s{_VERBS}"),
]
_STRIP_WORDS = words(
    """
    the company companies finnish swedish norwegian danish icelandic estonian latvian lithuanian
    german french british uk us u.s. american canadian japanese chinese indian dutch swiss
    nordic scandinavian russian polish italian spanish australian korean also however meanwhile
    separately additionally moreover furthermore
    """
)
_NOT_NAMES = words(
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
    prices price volumes volume costs cost demand margins margin orders order deliveries
    production exports imports shipments expenses investments investment profitability
    employment inventories liquidity performance growth capacity output market markets
    customers business operations trading rates rate statutory underlying reported normalised
    normalized core recurring non-gaap gaap ifrs non-ifrs pro forma organic
    """
)


def find_company(sentence: str) -> str | None:
    """The company a sentence names as the reporting entity, as written, or None."""
    text = _SOURCE_OPENING.sub("", _DATELINE.sub("", sentence))
    for rx in _COMPANY_PATTERNS:
        for m in rx.finditer(text):
            name = _clean_name(m.group(1))
            if name:
                return name
    return _name_before_metric(text)


_PART_WORDS = words(
    """
    division divisions segment segments unit units business businesses region regions
    operations subsidiary subsidiaries department departments stores
    """
)


def _clean_name(raw: str) -> str | None:
    words = raw.split()
    while words and words[0].lower().strip(".") in _STRIP_WORDS:
        words = words[1:]
    if not words or (not words[0][0].isupper() and not words[0][0].isdigit()):
        return None  # "the Estonian dairy 's": a description, not a name
    if any(_NOT_A_NAME_WORD.fullmatch(w) for w in words):
        return None
    if words[0].lower() in _NOT_NAMES or re.fullmatch(_LEGAL, " ".join(words)):
        return None
    if any(w.lower() in _METRIC_WORDS for w in words):
        return None
    if words[-1].lower() in _PART_WORDS:
        return None  # "the Paper division 's": a part of the company, not the reporter
    return " ".join(words).strip(" ,")


#: numbers, years and period labels ("2009", "Q3", "FY2019", "9M") are not parts of a name;
#: "3M", "7-Eleven" and "C12" are
_NOT_A_NAME_WORD = re.compile(r"(?i:[\d.,]+|'?\d{2,4}s?|q[1-4]|h[12]|fy\d*|9m|\d[qh])")

_METRIC_WORDS = frozenset(
    w for forms in METRIC_SYNONYMS.values() for form in forms for w in form.split()
) - {"of", "the", "for", "from", "to", "by", "in", "per", "and", "before", "after"}


def _name_before_metric(text: str) -> str | None:
    """ "In 2023 , Northwind net sales were ..." -> "Northwind"."""
    for m in re.finditer(rf"(?:^|[,;]\s|\b\d{{4}}\s,?\s?)((?:{_CAP}\s){{0,2}}{_CAP})\s", text):
        rest = text[m.end() :]
        mention = MENTION_RE.match(rest)
        if mention is None or FORMS.get(" ".join(mention.group(0).lower().split())) is None:
            continue
        name = _clean_name(m.group(1))
        if name and name.lower() not in SEGMENT_CAPS:
            return name
    return None
