"""Cells of an export: exact numbers, UTC times, spreadsheet-safe text, and CSV text. Pure."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from schemas.numbers import plain_decimal

if TYPE_CHECKING:
    import pandas as pd

# pandas is imported by the code that builds a frame (``csv_text`` here), not by this module: the
# operator commands that print stored documents (``finpipe facts``, ``companies``, ``status``) use
# these cells and start without pandas (tests/unit/test_startup.py). A cell can only hold a pandas
# value (``NA``, ``NaT``, ``Timestamp``) once pandas is loaded, so the tests below look it up in
# ``sys.modules``.

#: Characters that make a spreadsheet treat a cell as a formula (OWASP's list).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


# -- values -------------------------------------------------------------------------------------
def exact_value(value_decimal: Any, value: Any) -> Decimal | None:
    """The stored amount as a ``Decimal``: ``value_decimal`` when present, else ``value``
    (a float through its shortest ``repr``, so 5.3 stays 5.3)."""
    for candidate in (value_decimal, value):
        if missing(candidate) or isinstance(candidate, bool):
            continue
        try:
            if isinstance(candidate, float):
                return Decimal(repr(candidate))
            return Decimal(str(candidate).strip())
        except (InvalidOperation, ValueError):
            continue
    return None


def neutralize(text: str) -> str:
    """Prefix a cell a spreadsheet would execute with ``'`` so it is shown as text."""
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def iso_utc(when: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``; milliseconds only when present (MongoDB's precision)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    spec = "milliseconds" if when.microsecond else "seconds"
    return when.isoformat(timespec=spec).replace("+00:00", "Z")


def missing(x: Any) -> bool:
    """Whether a cell holds no value: ``None``, NaN (numpy's float too), pandas' ``NA`` or
    ``NaT``. The one test of the export's modules. An empty string is a value (text written
    empty), not missing."""
    if x is None:
        return True
    if isinstance(x, float):
        return math.isnan(x)
    pandas = sys.modules.get("pandas")
    return pandas is not None and (x is pandas.NA or x is pandas.NaT)


def as_text(x: Any) -> str | None:
    return None if missing(x) else str(x)


def as_int(x: Any) -> int | None:
    if missing(x) or isinstance(x, bool):
        return None
    try:
        return int(x)
    except (TypeError, ValueError):
        return None


def as_datetime(x: Any) -> datetime | None:
    if missing(x):
        return None
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(x, pandas.Timestamp):
        x = x.to_pydatetime()
    if isinstance(x, datetime):
        return x if x.tzinfo is not None else x.replace(tzinfo=UTC)
    return None


# -- CSV ----------------------------------------------------------------------------------------
def format_cell(x: Any, *, text: bool) -> str:
    """One CSV cell: numbers exact, dates ISO 8601, booleans ``true``/``false``, missing empty;
    text cells neutralized against formula execution."""
    if missing(x):
        return ""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, Decimal):
        return plain_decimal(x)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return plain_decimal(Decimal(repr(x)))
    if isinstance(x, datetime):  # pandas' Timestamp too (a subclass)
        dt = as_datetime(x)
        return iso_utc(dt) if dt is not None else ""
    if isinstance(x, date):
        return x.isoformat()
    s = str(x)
    return neutralize(s) if text else s


def csv_text(frame: pd.DataFrame, text_columns: Iterable[str]) -> str:
    """The frame as CSV (UTF-8 text, header row, ``\\n`` line ends), every cell formatted by
    ``format_cell``; columns not in ``text_columns`` are numbers and are never neutralized.
    Header cells are text (metric names come from reports) and are neutralized too."""
    import pandas as pd

    text_set = frozenset(text_columns)
    formatted = pd.DataFrame(
        {
            c: pd.Series(
                [format_cell(x, text=c in text_set) for x in frame[c].tolist()], dtype=object
            )
            for c in frame.columns
        },
        columns=list(frame.columns),
    )
    formatted.columns = pd.Index([neutralize(str(c)) for c in frame.columns], dtype=object)
    out: str = formatted.to_csv(index=False, lineterminator="\n")
    return out
