"""The exporter's pure frames, CSV text, charts, page and the writer's files (no network)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from export import cells, page, tables, writer
from export import charts as charts_mod
from export.tables import STORED_FIELDS
from schemas.errors import OutputNotWritable

T0 = datetime(2024, 5, 2, 8, 30, tzinfo=UTC)


def doc(
    fid: str,
    company: str | None,
    metric: str,
    value: str,
    currency: str | None,
    period: str | None,
    *,
    unit: str = "currency",
    value_text: str | None = None,
    at: datetime = T0,
    **extra: Any,
) -> dict[str, Any]:
    d = Decimal(value)
    stored: int | float = int(d) if d == d.to_integral_value() else float(value)
    return {
        "_id": fid,
        "report_id": f"rep-{fid}",
        "company": company,
        "metric": metric,
        "metric_known": True,
        "value": stored,
        "value_decimal": value,
        "currency": currency,
        "unit": unit,
        "quarter": period,
        "value_text": value_text or value,
        "snippet": f"{company} {metric} {value_text or value}",
        "snippet_start": 0,
        "snippet_end": 10,
        "page": None,
        "source": "inbox/report.txt",
        "file_name": "report.txt",
        "line": 1,
        "row": None,
        "extractor": "rules",
        "model": None,
        "prompt_version": None,
        "extracted_at": at,
        **extra,
    }


def raw(*docs: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(
        {f: pd.Series([d.get(f) for d in docs], dtype=object) for f in STORED_FIELDS},
        columns=list(STORED_FIELDS),
    )


def csvs(*docs: dict[str, Any]) -> dict[str, str]:
    return tables.build_frames(raw(*docs)).csv_files()


# -- periods ------------------------------------------------------------------------------------
def test_periods_sort_chronologically_within_and_across_years() -> None:
    labels = [
        "FY 2024",
        "Q4 2023",
        "H2 2023",
        "Q1 2024",
        "9M 2023",
        "FY 2023",
        "H1 2024",
        "Q2 2024",
        "Q3 2023",
        "2024-03-31",
        "Q4",
        "FY",
        "Q1 2023",
    ]
    ordered = sorted(labels, key=lambda s: tables.parse_period(s).sort_key)
    assert ordered == [
        "Q1 2023",
        "Q3 2023",
        "9M 2023",
        "Q4 2023",
        "H2 2023",
        "FY 2023",
        "2024-03-31",
        "Q1 2024",
        "Q2 2024",
        "H1 2024",
        "FY 2024",
        "Q4",
        "FY",
    ]


@pytest.mark.parametrize(
    ("earlier", "later", "consecutive"),
    [
        ("Q1 2024", "Q2 2024", True),
        ("Q4 2023", "Q1 2024", True),
        ("Q1 2024", "Q3 2024", False),
        ("Q1 2023", "Q1 2024", False),
        ("H1 2024", "H2 2024", True),
        ("H2 2023", "H1 2024", True),
        ("FY 2022", "FY 2023", True),
        ("9M 2023", "9M 2024", True),
        ("Q3 FY2024", "Q4 FY2024", True),
        ("Q4 FY2024", "Q1 FY2025", True),
        ("2023-12-31", "2024-03-31", True),
        ("2024-03-31", "2024-09-30", False),
    ],
)
def test_consecutive_periods_of_one_kind(earlier: str, later: str, consecutive: bool) -> None:
    a, b = tables.parse_period(earlier), tables.parse_period(later)
    assert a.series == b.series
    assert a.step is not None and b.step is not None
    assert (b.step - a.step == 1) is consecutive


@pytest.mark.parametrize(
    ("a", "b"),
    [("Q4 2024", "Q4 FY2024"), ("Q2 2024", "H1 2024"), ("FY 2024", "9M 2024")],
)
def test_different_kinds_of_period_are_different_series(a: str, b: str) -> None:
    assert tables.parse_period(a).series != tables.parse_period(b).series


@pytest.mark.parametrize("label", ["Q4", "FY", "2024-02-15", "sometime", None])
def test_undated_or_odd_periods_are_never_compared(label: str | None) -> None:
    assert tables.parse_period(label).step is None


# -- numbers and text ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("5300000"), "5300000"),
        (Decimal("5.3E+6"), "5300000"),
        (Decimal("-1.2E+6"), "-1200000"),
        (Decimal("0.45"), "0.45"),
        (Decimal("1.50"), "1.5"),
        (Decimal("1E-7"), "0.0000001"),
        (Decimal("123456789012345678901234567890"), "123456789012345678901234567890"),
        (Decimal("-0"), "0"),
    ],
)
def test_decimals_are_written_exactly_without_exponents(value: Decimal, text: str) -> None:
    assert cells.format_decimal(value) == text


def test_value_decimal_wins_over_a_float_with_artefacts() -> None:
    assert cells.exact_value("2010000", 2009999.9999999998) == Decimal("2010000")
    assert cells.exact_value(None, 5.3) == Decimal("5.3")
    assert cells.exact_value(None, 5300000) == Decimal("5300000")
    assert cells.exact_value(None, None) is None


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("=SUM(A1:A9)", "'=SUM(A1:A9)"),
        ("+1 555", "'+1 555"),
        ("-$1.2 million", "'-$1.2 million"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("Company XYZ", "Company XYZ"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_formula_cells_are_neutralized(text: str, shown: str) -> None:
    assert cells.neutralize(text) == shown


def test_iso_dates_are_utc_with_z() -> None:
    assert cells.iso_utc(datetime(2024, 5, 2, 8, 30, tzinfo=UTC)) == "2024-05-02T08:30:00Z"
    assert (
        cells.iso_utc(datetime(2024, 5, 2, 8, 30, 1, 250000, tzinfo=UTC))
        == "2024-05-02T08:30:01.250Z"
    )


# -- the CSVs, exactly --------------------------------------------------------------------------
SEED = (
    doc("f1", "XYZ", "net income", "5300000", "USD", "Q1 2024", value_text="$5.3 million"),
    doc("f2", "XYZ", "net income", "-1200000", "USD", "Q2 2024", value_text="-$1.2 million"),
    doc("f3", "Nokia", "revenue", "5100000000", "EUR", "Q4 2023", value_text="EUR 5.1 billion"),
    doc("f4", "Nokia", "revenue", "4900000000", "EUR", "Q1 2024", value_text="EUR 4.9 billion"),
    doc(
        "f5",
        "XYZ",
        "earnings per share",
        "0.45",
        "USD",
        "Q1 2024",
        unit="currency_per_share",
        value_text="$0.45",
    ),
    doc("f6", "XYZ", "gross margin", "42.1", None, "Q1 2024", unit="percent", value_text="42.1%"),
)


def test_facts_csv_is_tidy_sorted_and_exact() -> None:
    text = csvs(*SEED)["facts.csv"]
    prov = "inbox/report.txt,report.txt,,,1"
    assert text.splitlines() == [
        "company,period,metric,value,currency,unit,metric_known,value_text,report_id,source,"
        "file_name,page,row,line,snippet,snippet_start,snippet_end,extractor,model,prompt_version,"
        "extracted_at,fact_id",
        f"Nokia,Q4 2023,revenue,5100000000,EUR,currency,true,EUR 5.1 billion,rep-f3,{prov},"
        "Nokia revenue EUR 5.1 billion,0,10,rules,,,2024-05-02T08:30:00Z,f3",
        f"Nokia,Q1 2024,revenue,4900000000,EUR,currency,true,EUR 4.9 billion,rep-f4,{prov},"
        "Nokia revenue EUR 4.9 billion,0,10,rules,,,2024-05-02T08:30:00Z,f4",
        f"XYZ,Q1 2024,earnings per share,0.45,USD,currency_per_share,true,$0.45,rep-f5,{prov},"
        "XYZ earnings per share $0.45,0,10,rules,,,2024-05-02T08:30:00Z,f5",
        f"XYZ,Q1 2024,gross margin,42.1,,percent,true,42.1%,rep-f6,{prov},"
        "XYZ gross margin 42.1%,0,10,rules,,,2024-05-02T08:30:00Z,f6",
        f"XYZ,Q1 2024,net income,5300000,USD,currency,true,$5.3 million,rep-f1,{prov},"
        "XYZ net income $5.3 million,0,10,rules,,,2024-05-02T08:30:00Z,f1",
        f"XYZ,Q2 2024,net income,-1200000,USD,currency,true,'-$1.2 million,rep-f2,{prov},"
        "XYZ net income -$1.2 million,0,10,rules,,,2024-05-02T08:30:00Z,f2",
    ]


def test_summary_has_one_row_per_company_and_period_with_currency_beside_each_value() -> None:
    assert csvs(*SEED)["summary_by_company_period.csv"] == (
        "company,period,revenue,revenue currency,net income,net income currency,"
        "earnings per share,earnings per share currency,gross margin (%)\n"
        "Nokia,Q4 2023,5100000000,EUR,,,,,\n"
        "Nokia,Q1 2024,4900000000,EUR,,,,,\n"
        "XYZ,Q1 2024,,,5300000,USD,0.45,USD,42.1\n"
        "XYZ,Q2 2024,,,-1200000,USD,,,\n"
    )


def test_metric_stats_per_metric_unit_and_currency() -> None:
    assert csvs(*SEED)["metric_stats.csv"] == (
        "metric,unit,currency,count,companies,min,median,max,latest_period\n"
        "earnings per share,currency_per_share,USD,1,1,0.45,0.45,0.45,Q1 2024\n"
        "gross margin,percent,,1,1,42.1,42.1,42.1,Q1 2024\n"
        "net income,currency,USD,2,1,-1200000,2050000,5300000,Q2 2024\n"
        "revenue,currency,EUR,2,1,4900000000,5000000000,5100000000,Q1 2024\n"
    )


def test_period_over_period_arithmetic_including_a_loss() -> None:
    assert csvs(*SEED)["period_over_period.csv"] == (
        "company,metric,unit,currency,comparison,previous_period,period,previous_value,value,"
        "change,change_pct\n"
        "Nokia,revenue,currency,EUR,quarter to quarter,Q4 2023,Q1 2024,5100000000,4900000000,"
        "-200000000,-3.92\n"
        "XYZ,net income,currency,USD,quarter to quarter,Q1 2024,Q2 2024,5300000,-1200000,"
        "-6500000,-122.64\n"
    )


def test_period_over_period_only_where_both_periods_exist_and_per_kind() -> None:
    text = csvs(
        doc("a", "A", "revenue", "100", "USD", "Q1 2024"),
        doc("b", "A", "revenue", "130.5", "USD", "Q3 2024"),  # Q2 missing: no row
        doc("c", "A", "revenue", "400", "USD", "FY 2023"),
        doc("d", "A", "revenue", "500", "USD", "FY 2024"),
        doc("e", "A", "revenue", "90", "USD", "Q4 2023"),
        doc("f", "A", "revenue", "200", "USD", "H1 2024"),
        doc("g", "A", "revenue", "0", "USD", "H2 2023"),
    )["period_over_period.csv"]
    assert text.splitlines()[1:] == [
        "A,revenue,currency,USD,quarter to quarter,Q4 2023,Q1 2024,90,100,10,11.11",
        "A,revenue,currency,USD,half to half,H2 2023,H1 2024,0,200,200,",
        "A,revenue,currency,USD,year to year,FY 2023,FY 2024,400,500,100,25",
    ]


def test_a_shrinking_loss_is_a_positive_change() -> None:
    assert tables.percent_change(Decimal("-100"), Decimal("-50")) == Decimal("50.00")
    assert tables.percent_change(Decimal("3"), Decimal("4")) == Decimal("33.33")
    assert tables.percent_change(Decimal("3"), Decimal("5")) == Decimal("66.67")
    assert tables.percent_change(Decimal("0"), Decimal("5")) is None


def test_currencies_are_never_mixed() -> None:
    files = csvs(
        doc("u1", "Acme", "revenue", "100", "USD", "Q1 2024"),
        doc("e1", "Acme", "revenue", "90", "EUR", "Q1 2024"),
        doc("u2", "Acme", "revenue", "110", "USD", "Q2 2024"),
        doc("e2", "Acme", "revenue", "95", "EUR", "Q2 2024"),
        doc("g1", "Beta", "revenue", "70", "GBP", "Q1 2024"),
    )
    assert files["summary_by_company_period.csv"] == (
        "company,period,revenue [EUR],revenue [EUR] currency,revenue [GBP],"
        "revenue [GBP] currency,revenue [USD],revenue [USD] currency\n"
        "Acme,Q1 2024,90,EUR,,,100,USD\n"
        "Acme,Q2 2024,95,EUR,,,110,USD\n"
        "Beta,Q1 2024,,,70,GBP,,\n"
    )
    assert files["metric_stats.csv"].splitlines()[1:] == [
        "revenue,currency,EUR,2,1,90,92.5,95,Q2 2024",
        "revenue,currency,GBP,1,1,70,70,70,Q1 2024",
        "revenue,currency,USD,2,1,100,105,110,Q2 2024",
    ]
    assert files["period_over_period.csv"].splitlines()[1:] == [
        "Acme,revenue,currency,EUR,quarter to quarter,Q1 2024,Q2 2024,90,95,5,5.56",
        "Acme,revenue,currency,USD,quarter to quarter,Q1 2024,Q2 2024,100,110,10,10",
    ]


def test_different_companies_in_different_currencies_share_one_column_pair() -> None:
    files = csvs(
        doc("a", "Acme", "revenue", "100", "USD", "Q1 2024"),
        doc("b", "Beta", "revenue", "90", "EUR", "Q1 2024"),
    )
    assert files["summary_by_company_period.csv"] == (
        "company,period,revenue,revenue currency\nAcme,Q1 2024,100,USD\nBeta,Q1 2024,90,EUR\n"
    )


def test_newest_extraction_wins_in_summaries_but_facts_keep_both() -> None:
    older = doc("old", "A", "revenue", "100", "USD", "Q1 2024", at=datetime(2024, 1, 1, tzinfo=UTC))
    newer = doc("new", "A", "revenue", "101", "USD", "Q1 2024", at=datetime(2024, 2, 1, tzinfo=UTC))
    files = csvs(newer, older)
    assert files["summary_by_company_period.csv"].splitlines()[1:] == ["A,Q1 2024,101,USD"]
    assert [ln.split(",")[3] for ln in files["facts.csv"].splitlines()[1:]] == ["100", "101"]


def test_injection_is_neutralized_in_text_columns_only() -> None:
    files = csvs(
        doc("x", "=HYPERLINK(1)", "net income", "-5", "USD", "Q1 2024", value_text="-5"),
        doc("y", "=HYPERLINK(1)", "net income", "-7", "USD", "Q2 2024", value_text="@7"),
    )
    facts = files["facts.csv"].splitlines()
    assert facts[1].startswith("'=HYPERLINK(1),Q1 2024,net income,-5,USD,currency,true,'-5,")
    assert facts[2].startswith("'=HYPERLINK(1),Q2 2024,net income,-7,USD,currency,true,'@7,")
    assert files["summary_by_company_period.csv"].splitlines()[1:] == [
        "'=HYPERLINK(1),Q1 2024,-5,USD",
        "'=HYPERLINK(1),Q2 2024,-7,USD",
    ]
    assert files["period_over_period.csv"].splitlines()[1] == (
        "'=HYPERLINK(1),net income,currency,USD,quarter to quarter,Q1 2024,Q2 2024,-5,-7,-2,-40"
    )
    assert files["metric_stats.csv"].splitlines()[1] == (
        "net income,currency,USD,2,1,-7,-6,-5,Q2 2024"
    )


def test_a_metric_name_that_looks_like_a_formula_is_neutralized_in_the_header() -> None:
    d = doc("h", "A", "=cmd|x", "1", None, "Q1 2024", unit="count")
    assert csvs(d)["summary_by_company_period.csv"] == (
        "company,period,'=cmd|x (count)\nA,Q1 2024,1\n"
    )


def test_text_with_commas_quotes_and_newlines_is_quoted() -> None:
    d = doc("q", "Acme, Inc.", "revenue", "1", "USD", "Q1 2024", value_text='1 "m"')
    d["snippet"] = "line one\nline two"
    facts = csvs(d)["facts.csv"]
    assert '"Acme, Inc.",Q1 2024,revenue,1,USD,currency,true,"1 ""m"""' in facts
    assert '"line one\nline two"' in facts


def test_empty_input_gives_headers_only() -> None:
    files = csvs()
    assert files == {
        "facts.csv": ",".join(tables.FACT_COLUMNS) + "\n",
        "summary_by_company_period.csv": "company,period\n",
        "metric_stats.csv": ",".join(tables.METRIC_STATS_COLUMNS) + "\n",
        "period_over_period.csv": ",".join(tables.POP_COLUMNS) + "\n",
    }
    cov = tables.coverage(tables.facts_table(raw()))
    assert cov["facts"] == 0 and cov["first_extracted_at"] is None


def test_missing_company_and_period_sort_last() -> None:
    text = csvs(
        doc("n", None, "revenue", "1", "USD", None),
        doc("a", "A", "revenue", "2", "USD", "Q4"),
        doc("b", "A", "revenue", "3", "USD", "Q1 2024"),
    )["facts.csv"]
    assert [ln.split(",")[:4] for ln in text.splitlines()[1:]] == [
        ["A", "Q1 2024", "revenue", "3"],
        ["A", "Q4", "revenue", "2"],
        ["", "", "revenue", "1"],
    ]


# -- charts -------------------------------------------------------------------------------------
def test_charts_only_for_metrics_with_a_trend_labelled_with_unit_and_currency() -> None:
    specs = charts_mod.chart_specs(tables.facts_table(raw(*SEED)))
    assert [(s.filename, s.title, s.ylabel) for s in specs] == [
        ("chart-revenue-eur-quarter.png", "Revenue (EUR, quarterly)", "EUR billions"),
        ("chart-net-income-usd-quarter.png", "Net income (USD, quarterly)", "USD millions"),
    ]
    assert specs[1].periods == ["Q1 2024", "Q2 2024"]
    assert specs[1].series == {"XYZ": [Decimal("5300000"), Decimal("-1200000")]}


def test_chart_lines_are_aligned_on_the_periods_of_all_companies() -> None:
    specs = charts_mod.chart_specs(
        tables.facts_table(
            raw(
                doc(
                    "a1",
                    "A",
                    "earnings per share",
                    "1.1",
                    "USD",
                    "FY 2022",
                    unit="currency_per_share",
                ),
                doc(
                    "a2",
                    "A",
                    "earnings per share",
                    "1.3",
                    "USD",
                    "FY 2023",
                    unit="currency_per_share",
                ),
                doc(
                    "b1",
                    "B",
                    "earnings per share",
                    "0.2",
                    "USD",
                    "FY 2024",
                    unit="currency_per_share",
                ),
            )
        )
    )
    assert len(specs) == 1
    s = specs[0]
    assert (s.ylabel, s.periods) == ("USD per share", ["FY 2022", "FY 2023", "FY 2024"])
    assert s.series == {
        "A": [Decimal("1.1"), Decimal("1.3"), None],
        "B": [None, None, Decimal("0.2")],
    }


def test_a_chart_renders_as_png() -> None:
    spec = charts_mod.chart_specs(tables.facts_table(raw(*SEED)))[0]
    png = charts_mod.render_chart(spec)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000


# -- the writer ---------------------------------------------------------------------------------
def test_atomic_write_replaces_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "facts.csv"
    writer.atomic_write_text(target, "old\n")
    writer.atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["facts.csv"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "facts.csv"
    writer.atomic_write_text(target, "old\n")

    def boom(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(writer.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        writer.atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["facts.csv"]


def test_write_export_makes_dated_folder_index_and_latest(tmp_path: Path) -> None:
    frames = tables.build_frames(raw(*SEED))
    charts = charts_mod.chart_specs(frames.facts)
    report = {"covers": tables.coverage(frames.facts), "filters": {}, "pipeline": {}}
    folder = writer.write_export(tmp_path, date(2024, 6, 1), frames, charts, report)
    assert folder == tmp_path / "2024-06-01"
    assert (tmp_path / "latest").resolve() == folder.resolve()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [
            "facts.csv",
            "summary_by_company_period.csv",
            "metric_stats.csv",
            "period_over_period.csv",
            "chart-revenue-eur-quarter.png",
            "chart-net-income-usd-quarter.png",
            "index.html",
            "run_report.json",
        ]
    )
    page = (folder / "index.html").read_text()
    assert '<img src="chart-revenue-eur-quarter.png"' in page
    assert '<a href="period_over_period.csv">' in page
    files = json.loads((folder / "run_report.json").read_text())["files"]
    assert files[-1] == "run_report.json"

    # a second export the same day drops charts that no longer apply; latest moves on
    empty = tables.build_frames(raw())
    writer.write_export(tmp_path, date(2024, 6, 1), empty, [], report)
    assert not list(folder.glob("chart-*.png"))
    writer.write_export(tmp_path, date(2024, 6, 2), empty, [], report)
    assert (tmp_path / "latest").resolve() == (tmp_path / "2024-06-02").resolve()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_index_escapes_text() -> None:
    html = page.render_index(
        title="t",
        csv_files=["facts.csv"],
        charts=[],
        report={"covers": {"facts": 1, "companies": ["<b>&Co"]}},
    )
    assert "&lt;b&gt;&amp;Co" in html and "<b>&Co" not in html


def test_an_export_folder_that_cannot_be_made_is_named_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    root = tmp_path / "a-file" / "exports"
    with pytest.raises(OutputNotWritable) as refused:
        writer.check_writable(root)
    assert str(refused.value) == f"cannot write to {root}: Not a directory"


def test_a_read_only_export_folder_is_named_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(path: Path, data: bytes) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(writer, "atomic_write_bytes", read_only)
    with pytest.raises(OutputNotWritable) as refused:
        writer.check_writable(tmp_path)
    assert str(refused.value) == f"cannot write to {tmp_path}: Permission denied"
    assert list(tmp_path.iterdir()) == []
