"""The exporter's pure frames, CSV text, charts, page and the writer's files (no network)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from openpyxl import load_workbook

from export import cells, comparisons, page, tables, writer
from export import charts as charts_mod
from export.conflicts import CONFLICT_COLUMNS
from export.coverage import coverage
from export.tables import STORED_FIELDS
from schemas.errors import OutputNotWritable
from schemas.numbers import plain_decimal

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


# -- numbers and text ---------------------------------------------------------------------------
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
    # stored without a report date: the extraction time stands in
    prov = "2024-05-02T08:30:00Z,extracted,inbox/report.txt,report.txt,,,1"
    assert text.splitlines() == [
        "company,company_canonical,period,metric,value,currency,unit,metric_known,value_text,"
        "report_id,report_date,report_date_source,source,"
        "file_name,page,row,line,snippet,snippet_start,snippet_end,extractor,model,prompt_version,"
        "extracted_at,fact_id",
        f"Nokia,Nokia,Q4 2023,revenue,5100000000,EUR,currency,true,EUR 5.1 billion,rep-f3,{prov},"
        "Nokia revenue EUR 5.1 billion,0,10,rules,,,2024-05-02T08:30:00Z,f3",
        f"Nokia,Nokia,Q1 2024,revenue,4900000000,EUR,currency,true,EUR 4.9 billion,rep-f4,{prov},"
        "Nokia revenue EUR 4.9 billion,0,10,rules,,,2024-05-02T08:30:00Z,f4",
        f"XYZ,XYZ,Q1 2024,earnings per share,0.45,USD,currency_per_share,true,$0.45,rep-f5,{prov},"
        "XYZ earnings per share $0.45,0,10,rules,,,2024-05-02T08:30:00Z,f5",
        f"XYZ,XYZ,Q1 2024,gross margin,42.1,,percent,true,42.1%,rep-f6,{prov},"
        "XYZ gross margin 42.1%,0,10,rules,,,2024-05-02T08:30:00Z,f6",
        f"XYZ,XYZ,Q1 2024,net income,5300000,USD,currency,true,$5.3 million,rep-f1,{prov},"
        "XYZ net income $5.3 million,0,10,rules,,,2024-05-02T08:30:00Z,f1",
        f"XYZ,XYZ,Q2 2024,net income,-1200000,USD,currency,true,'-$1.2 million,rep-f2,{prov},"
        "XYZ net income -$1.2 million,0,10,rules,,,2024-05-02T08:30:00Z,f2",
    ]


def test_summary_has_one_row_per_company_and_period_with_currency_beside_each_value() -> None:
    assert csvs(*SEED)["summary_by_company_period.csv"] == (
        "company,period,revenue,revenue currency,net income,net income currency,"
        "earnings per share,earnings per share currency,gross margin (%),conflicts\n"
        "Nokia,Q4 2023,5100000000,EUR,,,,,,\n"
        "Nokia,Q1 2024,4900000000,EUR,,,,,,\n"
        "XYZ,Q1 2024,,,5300000,USD,0.45,USD,42.1,\n"
        "XYZ,Q2 2024,,,-1200000,USD,,,,\n"
    )


def test_metric_stats_per_metric_unit_and_currency() -> None:
    assert csvs(*SEED)["metric_stats.csv"] == (
        "metric,unit,currency,count,companies,min,median,max,latest_period\n"
        "earnings per share,currency_per_share,USD,1,1,0.45,0.45,0.45,Q1 2024\n"
        "gross margin,percent,,1,1,42.1,42.1,42.1,Q1 2024\n"
        "net income,currency,USD,2,1,-1200000,2050000,5300000,Q2 2024\n"
        "revenue,currency,EUR,2,1,4900000000,5000000000,5100000000,Q1 2024\n"
    )


def test_period_over_period_arithmetic_and_no_percent_across_a_sign_change() -> None:
    assert csvs(*SEED)["period_over_period.csv"] == (
        "company,metric,unit,currency,comparison,previous_period,period,previous_value,value,"
        "change,change_pct\n"
        "Nokia,revenue,currency,EUR,sequential,Q4 2023,Q1 2024,5100000000,4900000000,"
        "-200000000,-3.92\n"
        "XYZ,net income,currency,USD,sequential,Q1 2024,Q2 2024,5300000,-1200000,"
        "-6500000,\n"  # a profit turning into a loss has no percent
    )


def test_period_over_period_only_where_both_periods_exist_and_per_kind() -> None:
    text = csvs(
        doc("a", "A", "revenue", "100", "USD", "Q1 2024"),
        doc("b", "A", "revenue", "130.5", "USD", "Q3 2024"),  # Q2 2024, Q3 2023 missing: no row
        doc("c", "A", "revenue", "400", "USD", "FY 2023"),
        doc("d", "A", "revenue", "500", "USD", "FY 2024"),
        doc("e", "A", "revenue", "90", "USD", "Q4 2023"),
        doc("f", "A", "revenue", "200", "USD", "H1 2024"),
        doc("g", "A", "revenue", "0", "USD", "H2 2023"),
    )["period_over_period.csv"]
    assert text.splitlines()[1:] == [
        "A,revenue,currency,USD,sequential,Q4 2023,Q1 2024,90,100,10,11.11",
        "A,revenue,currency,USD,sequential,H2 2023,H1 2024,0,200,200,",
        "A,revenue,currency,USD,year_over_year,FY 2023,FY 2024,400,500,100,25",
    ]


def test_the_same_quarter_a_year_earlier_is_compared() -> None:
    text = csvs(
        doc("a23", "Acme Corp", "revenue", "10100000", "USD", "Q2 2023"),
        doc("a24", "Acme Corp", "revenue", "12400000", "USD", "Q2 2024"),
        doc("n23", "Northwind Robotics", "net income", "-1300000", "USD", "Q2 2023"),
        doc("n24", "Northwind Robotics", "net income", "4100000", "USD", "Q2 2024"),
    )["period_over_period.csv"]
    assert text.splitlines()[1:] == [
        "Acme Corp,revenue,currency,USD,year_over_year,Q2 2023,Q2 2024,10100000,12400000,"
        "2300000,22.77",
        "Northwind Robotics,net income,currency,USD,year_over_year,Q2 2023,Q2 2024,-1300000,"
        "4100000,5400000,",  # a loss turning into a profit has no percent
    ]


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
        "revenue [GBP] currency,revenue [USD],revenue [USD] currency,conflicts\n"
        "Acme,Q1 2024,90,EUR,,,100,USD,\n"
        "Acme,Q2 2024,95,EUR,,,110,USD,\n"
        "Beta,Q1 2024,,,70,GBP,,,\n"
    )
    assert files["metric_stats.csv"].splitlines()[1:] == [
        "revenue,currency,EUR,2,1,90,92.5,95,Q2 2024",
        "revenue,currency,GBP,1,1,70,70,70,Q1 2024",
        "revenue,currency,USD,2,1,100,105,110,Q2 2024",
    ]
    assert files["period_over_period.csv"].splitlines()[1:] == [
        "Acme,revenue,currency,EUR,sequential,Q1 2024,Q2 2024,90,95,5,5.56",
        "Acme,revenue,currency,USD,sequential,Q1 2024,Q2 2024,100,110,10,10",
    ]


def test_different_companies_in_different_currencies_share_one_column_pair() -> None:
    files = csvs(
        doc("a", "Acme", "revenue", "100", "USD", "Q1 2024"),
        doc("b", "Beta", "revenue", "90", "EUR", "Q1 2024"),
    )
    assert files["summary_by_company_period.csv"] == (
        "company,period,revenue,revenue currency,conflicts\n"
        "Acme,Q1 2024,100,USD,\n"
        "Beta,Q1 2024,90,EUR,\n"
    )


def test_without_report_dates_the_newest_extraction_wins_but_facts_keep_both() -> None:
    older = doc("old", "A", "revenue", "100", "USD", "Q1 2024", at=datetime(2024, 1, 1, tzinfo=UTC))
    newer = doc("new", "A", "revenue", "101", "USD", "Q1 2024", at=datetime(2024, 2, 1, tzinfo=UTC))
    files = csvs(newer, older)
    assert files["summary_by_company_period.csv"].splitlines()[1:] == ["A,Q1 2024,101,USD,revenue"]
    assert [ln.split(",")[4] for ln in files["facts.csv"].splitlines()[1:]] == ["100", "101"]


def test_injection_is_neutralized_in_text_columns_only() -> None:
    files = csvs(
        doc("x", "=HYPERLINK(1)", "net income", "-5", "USD", "Q1 2024", value_text="-5"),
        doc("y", "=HYPERLINK(1)", "net income", "-7", "USD", "Q2 2024", value_text="@7"),
    )
    facts = files["facts.csv"].splitlines()
    written = "'=HYPERLINK(1),'=HYPERLINK(1)"  # the name as written and as displayed
    assert facts[1].startswith(f"{written},Q1 2024,net income,-5,USD,currency,true,'-5,")
    assert facts[2].startswith(f"{written},Q2 2024,net income,-7,USD,currency,true,'@7,")
    assert files["summary_by_company_period.csv"].splitlines()[1:] == [
        "'=HYPERLINK(1),Q1 2024,-5,USD,",
        "'=HYPERLINK(1),Q2 2024,-7,USD,",
    ]
    assert files["period_over_period.csv"].splitlines()[1] == (
        "'=HYPERLINK(1),net income,currency,USD,sequential,Q1 2024,Q2 2024,-5,-7,-2,-40"
    )
    assert files["metric_stats.csv"].splitlines()[1] == (
        "net income,currency,USD,2,1,-7,-6,-5,Q2 2024"
    )


def test_a_metric_name_that_looks_like_a_formula_is_neutralized_in_the_header() -> None:
    d = doc("h", "A", "=cmd|x", "1", None, "Q1 2024", unit="count")
    assert csvs(d)["summary_by_company_period.csv"] == (
        "company,period,'=cmd|x (count),conflicts\nA,Q1 2024,1,\n"
    )


def test_text_with_commas_quotes_and_newlines_is_quoted() -> None:
    d = doc("q", "Acme, Inc.", "revenue", "1", "USD", "Q1 2024", value_text='1 "m"')
    d["snippet"] = "line one\nline two"
    facts = csvs(d)["facts.csv"]
    assert '"Acme, Inc.","Acme, Inc.",Q1 2024,revenue,1,USD,currency,true,"1 ""m"""' in facts
    assert '"line one\nline two"' in facts


def test_empty_input_gives_headers_only() -> None:
    files = csvs()
    assert files == {
        "facts.csv": ",".join(tables.FACT_COLUMNS) + "\n",
        "summary_by_company_period.csv": "company,period,conflicts\n",
        "conflicts.csv": ",".join(CONFLICT_COLUMNS) + "\n",
        "metric_stats.csv": ",".join(tables.METRIC_STATS_COLUMNS) + "\n",
        "period_over_period.csv": ",".join(comparisons.POP_COLUMNS) + "\n",
    }
    cov = coverage(tables.facts_table(raw()))
    assert cov["facts"] == 0 and cov["first_extracted_at"] is None


def test_missing_company_and_period_sort_last() -> None:
    text = csvs(
        doc("n", None, "revenue", "1", "USD", None),
        doc("a", "A", "revenue", "2", "USD", "Q4"),
        doc("b", "A", "revenue", "3", "USD", "Q1 2024"),
    )["facts.csv"]
    assert [ln.split(",")[:5] for ln in text.splitlines()[1:]] == [
        ["A", "A", "Q1 2024", "revenue", "3"],
        ["A", "A", "Q4", "revenue", "2"],
        ["", "", "", "revenue", "1"],
    ]


# -- company names ------------------------------------------------------------------------------
ORION = (
    doc("o1", "Orion Outdoor Gear", "revenue", "66000000", "USD", "Q3 2023"),
    doc("o2", "Orion Outdoor Gear", "revenue", "73400000", "USD", "Q3 2024"),
    doc("o3", "Orion Outdoor Gear", "net income", "6100000", "USD", "Q3 2023"),
    doc("o4", "Orion Outdoor Gear plc", "net income", "8900000", "USD", "Q3 2024"),
    doc("o5", "ORION OUTDOOR GEAR", "gross profit", "31200000", "USD", "Q3 2024"),
    doc("a1", "Acme Corp", "revenue", "12400000", "USD", "Q3 2024"),
)


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        # the most frequent written form is the display name
        (["Nokia", "Nokia Oyj", "Nokia Corporation", "NOKIA", "Nokia"], "Nokia"),
        (
            ["Orion Outdoor Gear plc", "Orion Outdoor Gear", "Orion Outdoor Gear"],
            "Orion Outdoor Gear",
        ),
        (["Vaskor AG", "Vaskor AG", "VASKOR"], "Vaskor AG"),
        # ties: the shortest, then mixed case before capitals
        (["Tamarind Foods, Inc.", "Tamarind Foods"], "Tamarind Foods"),
        (["HARBOR BANK", "Harbor Bank"], "Harbor Bank"),
        # whitespace is collapsed in the display name
        (["  Moreau   S.A. ", "Moreau S.A."], "Moreau S.A."),
    ],
)
def test_written_forms_fold_to_one_canonical_name(written: list[str], canonical: str) -> None:
    facts = tables.facts_table(
        raw(
            *(
                doc(f"f{i}", w, "revenue", str(i + 1), "USD", "Q1 2024")
                for i, w in enumerate(written)
            )
        )
    )
    assert sorted(facts["company"]) == sorted(written)  # kept as written
    assert set(facts["company_canonical"]) == {canonical}


def test_one_company_written_several_ways_is_one_company_everywhere() -> None:
    frames = tables.build_frames(raw(*ORION))
    files = frames.csv_files()
    facts = [ln.split(",")[:4] for ln in files["facts.csv"].splitlines()[1:]]
    assert facts == [  # by canonical name, period and metric; the written form is kept
        ["Acme Corp", "Acme Corp", "Q3 2024", "revenue"],
        ["Orion Outdoor Gear", "Orion Outdoor Gear", "Q3 2023", "net income"],
        ["Orion Outdoor Gear", "Orion Outdoor Gear", "Q3 2023", "revenue"],
        ["ORION OUTDOOR GEAR", "Orion Outdoor Gear", "Q3 2024", "gross profit"],
        ["Orion Outdoor Gear plc", "Orion Outdoor Gear", "Q3 2024", "net income"],
        ["Orion Outdoor Gear", "Orion Outdoor Gear", "Q3 2024", "revenue"],
    ]
    assert files["summary_by_company_period.csv"].splitlines()[1:] == [
        "Acme Corp,Q3 2024,12400000,USD,,,,,",
        "Orion Outdoor Gear,Q3 2023,66000000,USD,6100000,USD,,,",
        "Orion Outdoor Gear,Q3 2024,73400000,USD,8900000,USD,31200000,USD,",
    ]
    assert [ln.split(",")[:5] for ln in files["metric_stats.csv"].splitlines()[1:]] == [
        ["gross profit", "currency", "USD", "1", "1"],
        ["net income", "currency", "USD", "2", "1"],  # one company, not two
        ["revenue", "currency", "USD", "3", "2"],
    ]
    assert [
        (r.company, r.metric, r.comparison, r.change_pct)
        for r in frames.pop.itertuples(index=False)
    ] == [
        ("Orion Outdoor Gear", "net income", "year_over_year", Decimal("45.90")),
        ("Orion Outdoor Gear", "revenue", "year_over_year", Decimal("11.21")),
    ]
    specs = charts_mod.chart_specs(frames.facts)
    assert [(s.title, list(s.series)) for s in specs] == [
        ("Revenue (USD, quarterly)", ["Acme Corp", "Orion Outdoor Gear"]),
        ("Net income (USD, quarterly)", ["Orion Outdoor Gear"]),  # one line, not two
    ]
    cov = coverage(frames.facts)
    assert cov["companies"] == ["Acme Corp", "Orion Outdoor Gear"]
    assert cov["merged_names"] == {
        "Orion Outdoor Gear": ["ORION OUTDOOR GEAR", "Orion Outdoor Gear", "Orion Outdoor Gear plc"]
    }


def test_an_aliases_mapping_joins_what_folding_cannot() -> None:
    files = tables.build_frames(
        raw(
            doc("k1", "Kestrel Labs", "revenue", "10", "USD", "FY 2023"),
            doc("k2", "Brightwater Analytics", "revenue", "12", "USD", "FY 2024"),
        ),
        {"Kestrel Labs": "Brightwater", "Brightwater Analytics": "Brightwater"},
    ).csv_files()
    assert [ln.split(",")[:2] for ln in files["facts.csv"].splitlines()[1:]] == [
        ["Kestrel Labs", "Brightwater"],
        ["Brightwater Analytics", "Brightwater"],
    ]
    assert files["period_over_period.csv"].splitlines()[1:] == [
        "Brightwater,revenue,currency,USD,year_over_year,FY 2023,FY 2024,10,12,2,20"
    ]
    no_aliases = tables.build_frames(
        raw(doc("k1", "Kestrel Labs", "revenue", "10", "USD", "FY 2023"))
    )
    assert list(no_aliases.facts["company_canonical"]) == ["Kestrel Labs"]


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


def test_a_chart_of_1000_companies_draws_the_top_ten_and_says_how_many_are_left_out() -> None:
    docs = [
        doc(f"r{i}-{q}", f"Co {i:04d}", "revenue", str(1_000_000 * (i + 1)), "USD", f"Q{q} 2024")
        for i in range(1000)
        for q in (1, 2)
    ]
    (spec,) = charts_mod.chart_specs(tables.facts_table(raw(*docs)))
    assert list(spec.series) == [f"Co {i:04d}" for i in range(990, 1000)]
    assert spec.left_out == 990
    labels = spec.legend_labels()
    assert len(labels) == 11 and labels[-1] == "... and 990 more (top 10 by latest value)"
    assert charts_mod.render_chart(spec).startswith(b"\x89PNG")


def test_the_top_series_go_by_latest_value_whatever_its_sign() -> None:
    d = Decimal
    kept, left_out = charts_mod.top_series(
        {"a": [d(100), None], "b": [None, d(-50)], "c": [d(1), d(2)], "d": [None, None]}, limit=2
    )
    assert (list(kept), left_out) == (["a", "b"], 2)


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
    report = {"covers": coverage(frames.facts), "filters": {}, "pipeline": {}}
    folder = writer.write_export(tmp_path, date(2024, 6, 1), frames, charts, report)
    assert folder == tmp_path / "2024-06-01"
    assert (tmp_path / "latest").resolve() == folder.resolve()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [
            "facts.csv",
            "summary_by_company_period.csv",
            "conflicts.csv",
            "metric_stats.csv",
            "period_over_period.csv",
            "summary.xlsx",
            "chart-revenue-eur-quarter.png",
            "chart-net-income-usd-quarter.png",
            "index.html",
            "run_report.json",
        ]
    )
    page = (folder / "index.html").read_text()
    assert '<img src="chart-revenue-eur-quarter.png"' in page
    assert '<a href="period_over_period.csv">' in page
    assert '<h2 id="largest-moves">Largest year-over-year moves</h2>' in page
    assert '<a href="summary.xlsx">' in page
    files = json.loads((folder / "run_report.json").read_text())["files"]
    assert files[:6] == [
        "facts.csv",
        "summary_by_company_period.csv",
        "conflicts.csv",
        "metric_stats.csv",
        "period_over_period.csv",
        "summary.xlsx",
    ]
    assert files[-1] == "run_report.json"

    # a second export the same day drops charts that no longer apply; latest moves on
    empty = tables.build_frames(raw())
    writer.write_export(tmp_path, date(2024, 6, 1), empty, [], report)
    assert not list(folder.glob("chart-*.png"))
    writer.write_export(tmp_path, date(2024, 6, 2), empty, [], report)
    assert (tmp_path / "latest").resolve() == (tmp_path / "2024-06-02").resolve()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def shown(value: Any) -> str:
    """A workbook cell as the CSVs write it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return cells.iso_utc(value.replace(tzinfo=UTC))
    if isinstance(value, int | float):
        return plain_decimal(Decimal(repr(value)))
    return str(value)


def assert_workbook_equals_csvs(data: bytes, csv_files: dict[str, str]) -> None:
    """Every sheet of ``summary.xlsx`` holds its CSV's cells, numbers as numbers."""
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == [name.removesuffix(".csv") for name in csv_files]
    for name, text in csv_files.items():
        rows = [[shown(c.value) for c in row] for row in wb[name.removesuffix(".csv")].iter_rows()]
        expected = list(csv.reader(io.StringIO(text)))
        assert rows == expected, name


def test_the_workbook_holds_every_csv_with_its_types() -> None:
    frames = tables.build_frames(raw(*SEED, *ORION))
    data = frames.workbook()
    assert_workbook_equals_csvs(data, frames.csv_files())
    wb = load_workbook(io.BytesIO(data))
    facts = wb["facts"]
    header = [c.value for c in facts[1]]
    row = {h: c.value for h, c in zip(header, facts[2], strict=True)}
    assert row["company"] == "Acme Corp" and row["company_canonical"] == "Acme Corp"
    assert isinstance(row["value"], int) and row["metric_known"] is True
    assert row["extracted_at"] == datetime(2024, 5, 2, 8, 30)  # UTC
    assert facts.freeze_panes == "A2"
    eps = [
        r for r in wb["summary_by_company_period"].iter_rows(values_only=True) if r[1] == "Q1 2024"
    ]
    assert 0.45 in eps[-1]  # per-share values as decimals
    pop = wb["period_over_period"]
    pcts = [r[-1] for r in pop.iter_rows(min_row=2, values_only=True)]
    assert pcts == [-3.92, 45.9, 11.21, None]  # no percent across a sign change
    assert all(isinstance(p, float) for p in pcts[:-1])


def test_a_cells_type_comes_from_its_columns_role_not_from_the_end_of_its_name() -> None:
    frames = tables.build_frames(
        raw(
            doc("c1", "Acme Corp", "net income in constant currency", "5300000", "USD", "Q1 2024"),
            doc(
                "c2",
                "Acme Corp",
                "share of sales in foreign currency",
                "12.5",
                None,
                "Q1 2024",
                unit="percent",
            ),
        )
    )
    data = frames.workbook()
    assert_workbook_equals_csvs(data, frames.csv_files())
    sheet = load_workbook(io.BytesIO(data))["summary_by_company_period"]
    header = [c.value for c in sheet[1]]
    row = {h: c for h, c in zip(header, sheet[2], strict=True)}
    money = row["net income in constant currency"]
    assert money.value == 5300000 and money.data_type == "n"
    assert row["net income in constant currency currency"].value == "USD"
    share = next(c for h, c in row.items() if h.startswith("share of sales in foreign currency"))
    assert share.value == 12.5 and share.data_type == "n"


def test_index_shows_the_largest_year_over_year_moves() -> None:
    frames = tables.build_frames(
        raw(
            doc("a23", "Acme Corp", "revenue", "10100000", "USD", "Q2 2023"),
            doc("a24", "Acme Corp", "revenue", "12400000", "USD", "Q2 2024"),
            doc("b23", "<Beta>", "revenue", "200", "EUR", "FY 2023"),
            doc("b24", "<Beta>", "revenue", "100", "EUR", "FY 2024"),
            doc("n23", "Northwind", "net income", "-1300000", "USD", "Q2 2023"),  # sign change
            doc("n24", "Northwind", "net income", "4100000", "USD", "Q2 2024"),
        )
    )
    html = page.render_index(
        title="t",
        csv_files=[],
        charts=[],
        report={"covers": {"facts": 6}},
        moves=comparisons.largest_moves(frames.pop),
    )
    section = html[html.index('<h2 id="largest-moves">') : html.index("<h2>Charts</h2>")]
    assert section.count("<tr>") == 3  # the header and two moves; no percent across a sign
    beta, acme = section.index("&lt;Beta&gt;"), section.index("Acme Corp")
    assert beta < acme  # -50 % is a larger move than +22.77 %
    assert "<td>Q2 2024</td>" in section and "10,100,000 USD (Q2 2023)" in section
    assert "+2,300,000 USD" in section and "+22.77 %" in section and "-50 %" in section
    assert "-100 EUR" in section
    quiet = page.render_index(
        title="t",
        csv_files=[],
        charts=[],
        report={"covers": {"facts": 1}},
        moves=comparisons.largest_moves(tables.build_frames(raw()).pop),
    )
    assert "No year-over-year change yet" in quiet


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


# -- what a missing cell is, one meaning for every module of the export


@pytest.mark.parametrize(
    ("value", "is_missing"),
    [
        (None, True),
        (float("nan"), True),
        (pd.Series([1.5, None]).iloc[1], True),  # numpy's NaN
        (pd.NA, True),
        (pd.NaT, True),
        ("", False),  # text written empty is a value
        (0, False),
        (0.0, False),
        (False, False),
        ("nan", False),
        (Decimal("0"), False),
    ],
)
def test_a_cell_is_missing_when_it_holds_none_nan_na_or_nat(value: Any, is_missing: bool) -> None:
    assert cells.missing(value) is is_missing


def test_pandas_na_is_blank_in_the_csv_and_workbook_alike_and_empty_text_stays_text() -> None:
    assert cells.format_cell(pd.NA, text=True) == ""
    assert cells.format_cell(pd.NA, text=False) == ""
    assert cells.as_text(pd.NA) is None and cells.as_datetime(pd.NA) is None
    assert cells.exact_value(pd.NA, "5.3") == Decimal("5.3")
    assert cells.format_cell("", text=True) == "" and cells.as_text("") == ""
