"""``summary.xlsx``: the export's tables in one workbook, one sheet per CSV, with their types.

The frames come from the same builders as the CSVs; openpyxl writes the cells (pandas' own
``to_excel`` would store a missing value as an empty string and text that starts with ``=`` as a
formula). Numbers stay exact: a whole value is an integer, any other is the exact decimal as
written in the CSV (``1.18``, ``0.1594``, never ``1.1799999``); spreadsheets read them as numbers.
Text cells get the same formula neutralization as the CSVs. Returns bytes, so the writer can put
the file in place atomically. Pure apart from the creation time openpyxl stamps in the file.
"""

from __future__ import annotations

import io
import numbers
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from export.cells import format_cell, missing, neutralize
from schemas.numbers import exact_decimal, plain_decimal

#: Excel's limit on a sheet name, and the characters it forbids in one.
MAX_SHEET_NAME = 31
_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")

INTEGER_FORMAT = "0"  # whole numbers in full, never 5.3E+09
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"  # UTC, as the CSVs' ISO times
DATE_FORMAT = "yyyy-mm-dd"

_MIN_WIDTH = 6
_PADDING = 2


def sheet_titles(names: Iterable[str]) -> list[str]:
    """Valid, unique sheet names in the given order: a trailing ``.csv`` dropped, characters
    Excel forbids (``[ ] : * ? / \\``) replaced by ``_``, no leading or trailing apostrophe, at
    most 31 characters, and a repeated name (Excel ignores case) numbered ``name (2)``."""
    titles: list[str] = []
    taken = {"history"}  # Excel reserves it
    for name in names:
        base = name[:-4] if name.casefold().endswith(".csv") else name
        base = _FORBIDDEN.sub("_", base).strip().strip("'").strip() or "Sheet"
        title = base[:MAX_SHEET_NAME]
        n = 1
        while title.casefold() in taken:
            n += 1
            suffix = f" ({n})"
            title = base[: MAX_SHEET_NAME - len(suffix)].rstrip() + suffix
        taken.add(title.casefold())
        titles.append(title)
    return titles


def _number(d: Decimal) -> int | Decimal | None:
    """A whole value as ``int``; any other as the exact decimal, written plainly."""
    if not d.is_finite():
        return None
    if d == d.to_integral_value():
        return int(d)
    return exact_decimal(d)


def _naive_utc(x: datetime) -> datetime:
    if x.tzinfo is not None:
        x = x.astimezone(UTC).replace(tzinfo=None)
    return x


def _cell(x: Any, *, text: bool) -> Any:
    """One cell value: text columns hold the CSV's text; other columns hold numbers, booleans
    and times, and text only where a value is not a number (neutralized)."""
    if missing(x):
        return None
    if text:
        return format_cell(x, text=True) or None
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, Decimal):
        return _number(x)
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real):
        return _number(Decimal(repr(float(x))))
    if isinstance(x, pd.Timestamp):
        x = x.to_pydatetime()
    if isinstance(x, datetime):
        return _naive_utc(x)
    if isinstance(x, date):
        return x
    s = str(x)
    try:
        parsed = Decimal(s.strip())
    except (InvalidOperation, ValueError):
        return neutralize(s) if s else None
    return _number(parsed) if parsed.is_finite() else neutralize(s)


def _shown_width(value: Any) -> int:
    """About how many characters the cell shows."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return 5
    if isinstance(value, datetime):
        return 19
    if isinstance(value, date):
        return 10
    if isinstance(value, int | Decimal):
        return len(plain_decimal(Decimal(value)))
    return max((len(line) for line in str(value).splitlines()), default=0)


def workbook_bytes(
    sheets: Mapping[str, tuple[pd.DataFrame, Iterable[str]]], *, max_width: int = 60
) -> bytes:
    """An ``.xlsx`` with one sheet per entry, in order: sheet name (made valid and unique by
    ``sheet_titles``) -> (frame, its text columns). Each sheet has a bold, frozen header row
    (header cells neutralized like the CSVs'), a filter on the header, and columns as wide as
    their longest shown value plus a margin, at most ``max_width`` characters."""
    wb = Workbook()
    wb.remove(wb.active)
    bold = Font(bold=True)
    for title, (frame, text_columns) in zip(sheet_titles(sheets), sheets.values(), strict=True):
        ws = wb.create_sheet(title)
        text_set = frozenset(text_columns)
        headers = [neutralize(str(c)) for c in frame.columns]
        ws.append(headers)
        for cell in ws[1]:
            cell.font = bold
        widths = [len(h) for h in headers]
        columns = [[_cell(x, text=c in text_set) for x in frame[c].tolist()] for c in frame.columns]
        for row_number, row in enumerate(zip(*columns, strict=True), start=2):
            for col_number, value in enumerate(row, start=1):
                if value is None:
                    continue
                cell = ws.cell(row=row_number, column=col_number, value=value)
                if isinstance(value, bool):
                    pass
                elif isinstance(value, int):
                    cell.number_format = INTEGER_FORMAT
                elif isinstance(value, datetime):
                    cell.number_format = DATETIME_FORMAT
                elif isinstance(value, date):
                    cell.number_format = DATE_FORMAT
                elif isinstance(value, str):
                    cell.data_type = "s"  # never a formula, whatever it starts with
                widths[col_number - 1] = max(widths[col_number - 1], _shown_width(value))
        for i, width in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(i)].width = min(
                max(width + _PADDING, _MIN_WIDTH), max_width
            )
        ws.freeze_panes = "A2"
        if len(headers):
            ws.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{max(len(frame), 1) + 1}"
    if not wb.worksheets:
        wb.create_sheet("Sheet")
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
