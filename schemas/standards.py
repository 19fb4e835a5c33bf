"""The financial data standard, as data: metric vocabulary, units, currencies, scales.

``schemas/STANDARDS.md`` explains each rule; this module is what the code enforces. Period labels
have their own module, :mod:`schemas.periods`. Pure: the standard library only.
"""

from __future__ import annotations

from enum import StrEnum


class Unit(StrEnum):
    CURRENCY = "currency"
    CURRENCY_PER_SHARE = "currency_per_share"
    PERCENT = "percent"
    COUNT = "count"


#: Canonical metrics and the unit each is reported in.
METRICS: dict[str, Unit] = {
    "revenue": Unit.CURRENCY,
    "net income": Unit.CURRENCY,
    "operating income": Unit.CURRENCY,
    "profit before tax": Unit.CURRENCY,
    "gross profit": Unit.CURRENCY,
    "ebitda": Unit.CURRENCY,
    "operating cash flow": Unit.CURRENCY,
    "free cash flow": Unit.CURRENCY,
    "total assets": Unit.CURRENCY,
    "cash and equivalents": Unit.CURRENCY,
    "capital expenditure": Unit.CURRENCY,
    "earnings per share": Unit.CURRENCY_PER_SHARE,
    "dividend per share": Unit.CURRENCY_PER_SHARE,
    "gross margin": Unit.PERCENT,
    "operating margin": Unit.PERCENT,
    "net margin": Unit.PERCENT,
    "ebitda margin": Unit.PERCENT,
}

#: Prefix for non-GAAP / adjusted / underlying / comparable variants of a metric.
ADJUSTED_PREFIX = "adjusted "

#: Metrics whose "loss" is stored as a negative value of the metric itself.
INCOME_METRICS = frozenset(
    {
        "net income",
        "operating income",
        "profit before tax",
        "gross profit",
        "ebitda",
        "earnings per share",
        "free cash flow",
        "operating cash flow",
    }
)


def metric_base(metric: str) -> str:
    """``adjusted ebitda`` -> ``ebitda``."""
    return metric.removeprefix(ADJUSTED_PREFIX)


def is_known_metric(metric: str) -> bool:
    return metric_base(metric) in METRICS


def unit_of(metric: str) -> Unit | None:
    return METRICS.get(metric_base(metric))


def currency_form(metric: str) -> str | None:
    """The metric a currency amount of ``metric`` is a value of. Gross margin stated in currency
    ("gross margin was $2.3 billion") is gross profit; any other percentage metric has no currency
    form (None); a currency or per-share metric is itself."""
    if unit_of(metric) is not Unit.PERCENT:
        return metric
    if metric_base(metric) == "gross margin":
        return metric.replace("gross margin", "gross profit")
    return None


def _words(text: str) -> frozenset[str]:
    """A set of words written as one whitespace-separated block."""
    return frozenset(text.split())


#: ISO 4217 codes finpipe accepts (the common reporting currencies plus historic European ones).
CURRENCIES = _words(
    """
    USD EUR GBP JPY CNY HKD SGD INR CAD AUD NZD CHF SEK NOK DKK ISK PLN CZK HUF RON BGN HRK RUB
    UAH TRY ZAR BRL MXN ARS CLP COP PEN KRW TWD THB MYR IDR PHP VND PKR BDT LKR AED SAR QAR KWD
    BHD OMR ILS EGP NGN KES MAD LVL LTL EEK
    """
)

#: The labelled core vocabulary (the accuracy benchmark scores only these, ``adjusted `` stripped).
LABELLED_METRICS = frozenset(
    {
        "revenue",
        "net income",
        "operating income",
        "earnings per share",
        "ebitda",
        "gross margin",
        "operating cash flow",
        "free cash flow",
        "dividend per share",
        "total assets",
        "profit before tax",
        "gross profit",
        "operating margin",
        "net margin",
        "ebitda margin",
    }
)

#: Written forms of each canonical metric, lower case, single-spaced. Longer forms win.
METRIC_SYNONYMS: dict[str, tuple[str, ...]] = {
    "revenue": (
        "revenue",
        "revenues",
        "net revenue",
        "net revenues",
        "total revenue",
        "total revenues",
        "sales",
        "net sales",
        "total net sales",
        "turnover",
        "net turnover",
        "revenue from operations",
        "operating revenue",
        "operating revenues",
        "sales revenue",
        "sales revenues",
        "top line",
    ),
    "net income": (
        "net income",
        "net profit",
        "net earnings",
        "profit after tax",
        "profit after taxes",
        "profit after taxation",
        "net profit after tax",
        "net profit after taxes",
        "net profit after taxation",
        "net income after tax",
        "net income after taxes",
        "profit after income tax",
        "pat",
        "profit for the period",
        "profit for the year",
        "profit for the quarter",
        "net result",
        "profit attributable to shareholders",
        "profit attributable to owners",
        "profit attributable to equity holders",
        "profit attributable to owners of the parent",
        "net income attributable to shareholders",
        "bottom line",
        "profit for the accounting period",
        "profit for accounting period",
        "net loss",
        "loss for the period",
        "loss for the year",
        "loss after tax",
        "loss after taxes",
        "loss after taxation",
        "net losses",
        "net loss attributable to shareholders",
        "net loss attributable to owners",
        "net loss attributable to equity holders",
    ),
    "operating income": (
        "operating income",
        "operating profit",
        "operating result",
        "operating earnings",
        "income from operations",
        "profit from operations",
        "result from operations",
        "ebit",
        "operating loss",
        "loss from operations",
    ),
    "profit before tax": (
        "profit before tax",
        "profit before taxes",
        "profit before taxation",
        "pre-tax profit",
        "pretax profit",
        "pre tax profit",
        "earnings before tax",
        "earnings before taxes",
        "earnings before income taxes",
        "result before tax",
        "result before taxes",
        "result before taxation",
        "pre-tax result",
        "pretax result",
        "income before taxes",
        "income before income taxes",
        "income before income tax",
        "income before income tax expense",
        "pre-tax income",
        "pretax income",
        "loss before tax",
        "loss before taxes",
        "pre-tax loss",
        "pretax loss",
        "pbt",
    ),
    "gross profit": ("gross profit", "gross loss"),
    "ebitda": ("ebitda",),
    "operating cash flow": (
        "operating cash flow",
        "operating cash flows",
        "cash flow from operations",
        "cash flows from operations",
        "cash from operations",
        "cash provided by operations",
        "cash flow provided by operations",
        "cash flows provided by operations",
        "cash flow from business operations",
        "cash flow from operating activities",
        "cash flows from operating activities",
        "net cash flow from operating activities",
        "net cash flows from operating activities",
        "cash provided by operating activities",
        "net cash provided by operating activities",
        "cash generated from operations",
        "cash generated from operating activities",
        "net cash from operating activities",
        "cash from operating activities",
        "cash used in operating activities",
        "net cash used in operating activities",
        "net cash provided by (used in) operating activities",
    ),
    "free cash flow": ("free cash flow", "free cashflow", "free cash flows"),
    "total assets": ("total assets",),
    "cash and equivalents": ("cash and cash equivalents", "cash and equivalents"),
    "capital expenditure": ("capital expenditure", "capital expenditures", "capex"),
    "earnings per share": (
        "earnings per share",
        "eps",
        "diluted eps",
        "basic eps",
        "diluted earnings per share",
        "basic earnings per share",
        "earnings per diluted share",
        "net income per share",
        "net income per diluted share",
        "loss per share",
        "net loss per share",
        "diluted loss per share",
        "basic and diluted earnings per share",
        "profit per share",
    ),
    "dividend per share": (
        "dividend per share",
        "dividends per share",
        "dividend",
        "dividends",
        "dividends declared per share",
        "dividend declared per share",
    ),
    "gross margin": ("gross margin", "gross profit margin"),
    "operating margin": ("operating margin", "operating profit margin", "ebit margin"),
    "net margin": ("net margin", "net profit margin", "net income margin"),
    "ebitda margin": ("ebitda margin",),
}

#: Words before a metric that mark its non-GAAP variant (``adjusted `` prefix).
ADJUSTED_WORDS = frozenset(
    {
        "adjusted",
        "non-gaap",
        "non-ifrs",
        "underlying",
        "comparable",
        "core",
        "recurring",
        "unlevered",
        "normalized",
        "normalised",
        "pro forma",
        "pro-forma",
    }
)

#: Metric whose margin a percentage "of sales" gives.
MARGIN_OF: dict[str, str] = {
    "operating income": "operating margin",
    "net income": "net margin",
    "ebitda": "ebitda margin",
    "gross profit": "gross margin",
}

#: Currency symbols and prefixes -> ISO 4217. A bare "$" is USD (documented default).
CURRENCY_SYMBOLS: dict[str, str] = {
    "US$": "USD",
    "U.S.$": "USD",
    "USD$": "USD",
    "C$": "CAD",
    "CA$": "CAD",
    "CAN$": "CAD",
    "A$": "AUD",
    "AU$": "AUD",
    "AU": "AUD",
    "AUD$": "AUD",
    "NZ$": "NZD",
    "HK$": "HKD",
    "S$": "SGD",
    "SG$": "SGD",
    "NT$": "TWD",
    "R$": "BRL",
    "MX$": "MXN",
    "$": "USD",
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "₹": "INR",
    "₩": "KRW",
    "₽": "RUB",
    "₺": "TRY",
    "₪": "ILS",
    "Rs.": "INR",
    "Rs": "INR",
    "Dh": "AED",
    "Lt": "LTL",
    "RMB": "CNY",
    "SFr.": "CHF",
    "Fr.": "CHF",
}

#: Currency words (lower case) -> ISO 4217. Bare "dollars" is USD like a bare "$".
CURRENCY_WORDS: dict[str, str] = {
    "dollar": "USD",
    "dollars": "USD",
    "us dollars": "USD",
    "u.s. dollars": "USD",
    "canadian dollars": "CAD",
    "australian dollars": "AUD",
    "hong kong dollars": "HKD",
    "singapore dollars": "SGD",
    "new zealand dollars": "NZD",
    "euro": "EUR",
    "euros": "EUR",
    "pound": "GBP",
    "pounds": "GBP",
    "pounds sterling": "GBP",
    "sterling": "GBP",
    "yen": "JPY",
    "yuan": "CNY",
    "renminbi": "CNY",
    "rupee": "INR",
    "rupees": "INR",
    "swiss francs": "CHF",
    "swiss franc": "CHF",
    "francs": "CHF",
    "won": "KRW",
    "dirham": "AED",
    "dirhams": "AED",
    "lats": "LVL",
    "lati": "LVL",
    "kroon": "EEK",
    "kroons": "EEK",
    "litas": "LTL",
    "litai": "LTL",
    "kronor": "SEK",
    "swedish kronor": "SEK",
    "swedish crowns": "SEK",
    "norwegian kroner": "NOK",
    "danish kroner": "DKK",
    "kroner": "NOK",
    "zloty": "PLN",
    "zlotys": "PLN",
    "rand": "ZAR",
    "roubles": "RUB",
    "rubles": "RUB",
    "reais": "BRL",
    "pesos": "MXN",
    "ringgit": "MYR",
    "baht": "THB",
}

#: Sub-units: the word, its currency when the text gives no other (None: the amount's own or USD).
SUBUNITS: dict[str, str | None] = {
    "p": "GBP",
    "pence": "GBP",
    "penny": "GBP",
    "cents": None,
    "cent": None,
    "c": None,
    "euro cents": "EUR",
    "euro cent": "EUR",
    "eurocents": "EUR",
    "hk cents": "HKD",
    "us cents": "USD",
}

#: Scale words (lower case) -> multiplier. "m"/"M"/"MM" are million, "k" thousand.
SCALES: dict[str, int] = {
    "thousand": 10**3,
    "thousands": 10**3,
    "k": 10**3,
    "000": 10**3,
    "'000": 10**3,
    "million": 10**6,
    "millions": 10**6,
    "mn": 10**6,
    "mln": 10**6,
    "mio": 10**6,
    "m": 10**6,
    "mm": 10**6,
    "billion": 10**9,
    "billions": 10**9,
    "bn": 10**9,
    "bln": 10**9,
    "b": 10**9,
    "trillion": 10**12,
    "tn": 10**12,
    "crore": 10**7,
    "crores": 10**7,
    "cr": 10**7,
    "lakh": 10**5,
    "lakhs": 10**5,
    "lac": 10**5,
    "lacs": 10**5,
}
