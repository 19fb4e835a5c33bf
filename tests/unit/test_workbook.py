"""summary.xlsx: one sheet per table, numbers as numbers, neutralized text, frozen header."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from export.cells import csv_text
from export.workbook import MAX_SHEET_NAME, sheet_titles, workbook_bytes

AT = datetime(2024, 8, 1, 9, 30, 15, tzinfo=UTC)


def frame(columns: dict[str, list[Any]]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in columns.items()})


FACTS = frame(
    {
        "company": ["Tamarind Foods", "=HYPERLINK(1)", "@sum", None],
        "metric": ["revenue", "earnings per share", "gross margin", "employees"],
        "value": [Decimal("5300000000"), Decimal("1.18"), Decimal("42.10"), Decimal("5.3E+3")],
        "currency": ["USD", "USD", None, None],
        "previous": ["120", 0.1594, np.int64(7), "n/a"],
        "metric_known": [True, True, False, None],
        "extracted_at": [AT, AT, pd.Timestamp(AT), None],
        "snippet": ["x" * 500, "short", "", "-1"],
    }
)
FACT_TEXT = {"company", "metric", "currency", "snippet"}


def sheet(data: bytes, name: str) -> Worksheet:
    ws = load_workbook(io.BytesIO(data))[name]
    assert isinstance(ws, Worksheet)
    return ws


def values(ws: Worksheet) -> list[list[Any]]:
    return [[c.value for c in row] for row in ws.iter_rows()]


def test_it_opens_with_one_sheet_per_table_in_order() -> None:
    empty = frame({"metric": [], "count": []})
    data = workbook_bytes({"facts.csv": (FACTS, FACT_TEXT), "metric_stats": (empty, {"metric"})})
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["facts", "metric_stats"]
    assert values(sheet(data, "metric_stats")) == [["metric", "count"]]


def test_numbers_are_numbers_and_exact() -> None:
    data = workbook_bytes({"facts": (FACTS, FACT_TEXT)})
    ws = sheet(data, "facts")
    value = [c.value for c in ws["C"]][1:]
    assert value == [5300000000, 1.18, 42.1, 5300]
    assert [type(v) for v in value] == [int, float, float, int]
    assert ws["C2"].number_format == "0"  # a large whole number is shown in full
    previous = [c.value for c in ws["E"]][1:]
    assert previous == [120, 0.1594, 7, "n/a"]  # numbers written as text become numbers
    # exact in the file itself: the decimal as written, no float artefacts or exponents
    xml = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
    for v in ("<v>5300000000</v>", "<v>1.18</v>", "<v>42.1</v>", "<v>5300</v>", "<v>0.1594</v>"):
        assert v in xml


def test_numbers_equal_the_csvs() -> None:
    ws = sheet(workbook_bytes({"facts": (FACTS, FACT_TEXT)}), "facts")
    csv_rows = list(csv.reader(io.StringIO(csv_text(FACTS, FACT_TEXT))))
    for row, csv_row in zip(ws.iter_rows(min_row=2), csv_rows[1:], strict=True):
        cell, text = row[2].value, csv_row[2]
        assert isinstance(cell, int | float)
        assert Decimal(repr(cell)).normalize() == Decimal(text).normalize()


def test_booleans_times_and_missing_cells() -> None:
    ws = sheet(workbook_bytes({"facts": (FACTS, FACT_TEXT)}), "facts")
    assert [c.value for c in ws["F"]][1:] == [True, True, False, None]
    assert ws["G2"].value == datetime(2024, 8, 1, 9, 30, 15)  # UTC
    assert ws["G4"].value == datetime(2024, 8, 1, 9, 30, 15)
    assert ws["G2"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert ws["D4"].value is None and ws["G5"].value is None and ws["H4"].value is None


def test_text_cells_are_neutralized_like_the_csvs() -> None:
    hostile = frame({"=cmd|' /C calc'!A0": ["=cmd|' /C calc'!A0", "+1", "plain", "-1"]})
    ws = sheet(workbook_bytes({"t": (hostile, {"=cmd|' /C calc'!A0"})}), "t")
    assert [c.value for c in ws["A"]] == [
        "'=cmd|' /C calc'!A0",  # the header too
        "'=cmd|' /C calc'!A0",
        "'+1",
        "plain",
        "'-1",
    ]
    assert all(c.data_type == "s" for c in ws["A"])
    facts = sheet(workbook_bytes({"facts": (FACTS, FACT_TEXT)}), "facts")
    assert facts["A3"].value == "'=HYPERLINK(1)" and facts["A4"].value == "'@sum"
    assert facts["H5"].value == "'-1"  # in a text column even a number-like text stays text


def test_header_row_is_frozen_and_bold() -> None:
    ws = sheet(workbook_bytes({"facts": (FACTS, FACT_TEXT)}), "facts")
    assert ws.freeze_panes == "A2"
    assert all(c.font.bold for c in ws[1])
    assert ws.auto_filter.ref == "A1:H5"


def test_columns_are_as_wide_as_their_values_within_a_cap() -> None:
    ws = sheet(workbook_bytes({"facts": (FACTS, FACT_TEXT)}, max_width=40), "facts")
    width = {c: ws.column_dimensions[c].width for c in "ABCDEFGH"}
    assert width["A"] == len("=HYPERLINK(1)") + 1 + 2  # the neutralized text
    assert width["B"] == len("earnings per share") + 2
    assert width["C"] == len("5300000000") + 2
    assert width["D"] == len("currency") + 2  # the header is the longest
    assert width["G"] == 19 + 2
    assert width["H"] == 40  # a 500-character snippet is capped


@pytest.mark.parametrize(
    ("names", "titles"),
    [
        (["facts.csv", "summary_by_company_period.csv"], ["facts", "summary_by_company_period"]),
        (
            ["a" * 40, "a" * 40, "A" * 35],
            ["a" * 31, "a" * 27 + " (2)", "A" * 27 + " (3)"],
        ),
        (
            ["what? [draft]", "'quoted'", "", "History"],
            ["what_ _draft_", "quoted", "Sheet", "History (2)"],
        ),
        (["Facts", "facts"], ["Facts", "facts (2)"]),
    ],
)
def test_sheet_names_are_valid_and_unique(names: list[str], titles: list[str]) -> None:
    assert sheet_titles(names) == titles
    assert all(len(t) <= MAX_SHEET_NAME for t in titles)


def test_an_empty_mapping_still_makes_a_workbook() -> None:
    assert load_workbook(io.BytesIO(workbook_bytes({}))).sheetnames == ["Sheet"]
