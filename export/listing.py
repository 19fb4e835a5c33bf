"""What ``finpipe facts`` and ``finpipe companies`` print: stored facts, the values reports
disagree about (``finpipe facts --conflicts``) and companies as JSON lines, an aligned table for
reading, or CSV for a spreadsheet. Pure: documents and tables in, text out.

Each fact is shown with its company as written (``company``) and the company's display name
(``company_canonical``, ``export/companies.py``), the same names the exports use.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from export.cells import csv_text, exact_value, format_cell, missing
from export.companies import CompanyForms
from export.conflicts import CONFLICT_TEXT_COLUMNS, report_date_shown
from schemas.numbers import json_number

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("json", "table", "csv")

#: The fields of a fact in JSON lines (without ``--full``), as ``finpipe facts`` printed them
#: before company names were folded, with ``company_canonical`` beside ``company``.
JSON_FIELDS: tuple[str, ...] = (
    "company",
    "company_canonical",
    "metric",
    "value",
    "currency",
    "unit",
    "quarter",
    "value_text",
    "report_id",
    "report_date",
    "extractor",
)

#: Table and CSV columns, named as in ``facts.csv``: header -> stored field (``period`` is stored
#: as ``quarter``).
COLUMNS: dict[str, str] = {
    "company": "company",
    "company_canonical": "company_canonical",
    "period": "quarter",
    "metric": "metric",
    "value": "value",
    "currency": "currency",
    "unit": "unit",
    "value_text": "value_text",
    "report_id": "report_id",
    "report_date": "report_date",
}
FULL_COLUMNS: dict[str, str] = {
    **COLUMNS,
    "source": "source",
    "file_name": "file_name",
    "page": "page",
    "row": "row",
    "line": "line",
    "snippet": "snippet",
    "extractor": "extractor",
    "model": "model",
    "prompt_version": "prompt_version",
    "extracted_at": "extracted_at",
    "fact_id": "_id",
}
_NUMBER_COLUMNS = frozenset({"value", "page", "row", "line"})
_MAX_CELL = 60  # characters of a table cell; the rest is cut with an ellipsis


def with_canonical(doc: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """The document with ``company_canonical`` (``names``: written name -> display name) right
    after ``company``."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        out[key] = value
        if key == "company":
            out["company_canonical"] = names.get(value) if isinstance(value, str) else None
    out.setdefault("company_canonical", None)
    return out


def _cell(doc: Mapping[str, Any], field: str) -> Any:
    if field == "value":
        return exact_value(doc.get("value_decimal"), doc.get("value"))
    if field == "report_date":
        return report_date_shown(doc.get(field))
    return doc.get(field)


def _json_fact(doc: Mapping[str, Any], full: bool) -> dict[str, Any]:
    """A fact for JSON lines, its report date as ISO 8601 (a date when it is midnight UTC)."""
    out = dict(doc) if full else {k: doc.get(k) for k in JSON_FIELDS}
    if out.get("report_date") is not None:
        out["report_date"] = format_cell(report_date_shown(out["report_date"]), text=False)
    return out


def facts_text(
    docs: Sequence[Mapping[str, Any]], names: Mapping[str, str], *, fmt: str, full: bool
) -> str:
    """The facts in ``fmt`` (``FORMATS``): JSON lines (``JSON_FIELDS``, or every stored field
    with ``full``), an aligned table or CSV (``COLUMNS``, or ``FULL_COLUMNS`` with ``full``).
    Values in the table and the CSV are exact; CSV text cells are neutralized against formula
    execution as in the exports. No facts: empty JSON, a CSV header, a table saying so."""
    shown = [with_canonical(d, names) for d in docs]
    if fmt == "json":
        return "".join(
            _json_escaped(json.dumps(_json_fact(d, full), default=str, ensure_ascii=False)) + "\n"
            for d in shown
        )
    columns = FULL_COLUMNS if full else COLUMNS
    rows = [[_cell(d, field) for field in columns.values()] for d in shown]
    if fmt == "csv":
        return _csv(list(columns), rows)
    if not rows:
        return "no facts match\n"
    return _table(list(columns), rows)


#: Table columns of ``finpipe facts --conflicts`` (CSV and JSON carry every ``conflicts.csv``
#: column)
CONFLICT_TABLE_COLUMNS: tuple[str, ...] = (
    "company",
    "period",
    "metric",
    "value",
    "currency",
    "value_text",
    "report_date",
    "kind",
    "report_id",
    "note",
)


def _json_cell(x: Any) -> Any:
    if missing(x):
        return None
    if isinstance(x, Decimal):
        return json_number(x)
    return format_cell(x, text=False)


def conflicts_text(table: pd.DataFrame, *, fmt: str) -> str:
    """Rows of ``conflicts.csv`` in ``fmt``: JSON lines (values as exact numbers, dates ISO
    8601), CSV exactly as ``conflicts.csv``, or an aligned table of ``CONFLICT_TABLE_COLUMNS``."""
    if fmt == "csv":
        return csv_text(table, CONFLICT_TEXT_COLUMNS)
    records = table.to_dict("records") if len(table) else []
    if fmt == "json":
        return "".join(
            json.dumps({k: _json_cell(v) for k, v in r.items()}, ensure_ascii=False) + "\n"
            for r in records
        )
    if not records:
        return "no two reports disagree\n"
    columns = list(CONFLICT_TABLE_COLUMNS)
    return _table(columns, [[r.get(c) for c in columns] for r in records])


def _json_escaped(line: str) -> str:
    """A JSON line with every character that is not printable (DEL, C1 controls such as U+009B,
    which starts a terminal sequence like ESC [, bidirectional and other format characters; JSON
    escapes only those below U+0020) written as a ``\\u`` escape: the same JSON."""
    if line.isprintable():
        return line
    return "".join(c if c.isprintable() else _json_escape(c) for c in line)


def _json_escape(c: str) -> str:
    encoded = c.encode("utf-16-be")  # a surrogate pair beyond the BMP
    units = [int.from_bytes(encoded[i : i + 2], "big") for i in range(0, len(encoded), 2)]
    return "".join(f"\\u{u:04x}" for u in units)


def _csv(headers: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(headers)
    for row in rows:
        out.writerow(
            format_cell(x, text=h not in _NUMBER_COLUMNS) for h, x in zip(headers, row, strict=True)
        )
    return buf.getvalue()


def terminal_text(text: str) -> str:
    """``text`` safe to print on a terminal: every character that is not printable (control
    characters, the escape that starts a terminal sequence, C1 controls, bidirectional and
    other format characters) is shown escaped as Python writes it (``\\x1b``, ``\\u202e``)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escaped(c) for c in text)


def _escaped(c: str) -> str:
    o = ord(c)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def _short(text: str) -> str:
    text = terminal_text(" ".join(text.split()))
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    """Columns padded to their widest cell, numbers right-aligned, two spaces between."""
    cells = [[_short(format_cell(x, text=False)) for x in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    right = [h in _NUMBER_COLUMNS for h in headers]

    def line(values: list[str]) -> str:
        padded = (
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        )
        return "  ".join(padded).rstrip() + "\n"

    return line(headers) + "".join(line(r) for r in cells)


def companies_text(companies: Sequence[CompanyForms], *, as_json: bool) -> str:
    """``finpipe companies``: each canonical company with its fact count and the written forms
    merged into it (with their counts), as an aligned table or as one JSON array."""
    if as_json:
        return (
            json.dumps(
                [
                    {
                        "name": c.name,
                        "key": c.key,
                        "facts": c.facts,
                        "written": [{"name": n, "facts": k} for n, k in c.forms],
                    }
                    for c in companies
                ],
                indent=2,
                ensure_ascii=False,
            )
            + "\n"
        )
    if not companies:
        return "no facts stored\n"
    rows = [
        [
            terminal_text(c.name),
            str(c.facts),
            ", ".join(f"{terminal_text(n)} ({k})" for n, k in c.forms),
        ]
        for c in companies
    ]
    name_w = max(len("company"), *(len(r[0]) for r in rows))
    facts_w = max(len("facts"), *(len(r[1]) for r in rows))
    head = f"{'company'.ljust(name_w)}  {'facts'.rjust(facts_w)}  written as\n"
    return head + "".join(f"{r[0].ljust(name_w)}  {r[1].rjust(facts_w)}  {r[2]}\n" for r in rows)
