"""Which value a summary shows when reports disagree, and which values are in conflict."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from export import conflicts, page, tables, writer
from export.coverage import coverage
from tests.unit.test_export import doc, raw

MAY_1 = datetime(2024, 5, 1, tzinfo=UTC)
MAY_2 = datetime(2024, 5, 2, tzinfo=UTC)
JUNE_15 = datetime(2024, 6, 15, tzinfo=UTC)
RUN = datetime(2024, 7, 1, 3, 0, tzinfo=UTC)  # when a batch was extracted


def stated(
    fid: str,
    value: str,
    written: str,
    dated: datetime | None,
    *,
    at: datetime = RUN,
    currency: str = "USD",
    company: str = "Quillon Corp",
    **extra: Any,
) -> dict[str, Any]:
    """Quillon's Q1 2024 revenue as one report states it, dated ``dated``."""
    return doc(
        fid,
        company,
        "revenue",
        value,
        currency,
        "Q1 2024",
        value_text=written,
        at=at,
        report_date=dated,
        report_date_source="reported" if dated else None,
        **extra,
    )


def build(*docs: dict[str, Any]) -> tables.ExportFrames:
    return tables.build_frames(raw(*docs))


def summary_rows(frames: tables.ExportFrames) -> list[dict[str, Any]]:
    return frames.summary.to_dict("records")


# -- precision ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "written", "step"),
    [
        ("5300000", "$5.3 million", "100000"),
        ("5300000", "$5.30 million", "10000"),
        ("5312000", "$5,312,000", "1"),
        ("5300000", "$5,300,000", "1"),
        ("53000000", "$53 million", "1000000"),
        ("-1200000", "(1.2m)", "100000"),
        ("0.45", "$0.45", "0.01"),
        ("42.1", "42.1%", "0.1"),
        ("1234500000", "1.234,5 Mio. EUR", "100000"),  # a decimal comma
        ("5312000", "5.312.000 EUR", "1"),  # dots between thousands
        ("13020000000000", "¥13.02 trillion", "10000000000"),
        ("13020768000000", "¥13.02 trillion", "1000000"),  # not what it says: its own digits
        ("7000000", "seven million", "1000000"),  # no digits: the value's own last digit
        ("5300000", "5.3 million (2023: 4.1 million)", "100000"),  # the first number
    ],
)
def test_precision_is_the_place_of_the_last_digit_written(
    value: str, written: str, step: str
) -> None:
    assert conflicts.written_step(Decimal(value), written) == Decimal(step)


@pytest.mark.parametrize(
    ("a", "a_step", "b", "b_step", "together"),
    [
        ("5300000", "100000", "5312000", "1", True),  # $5.3 million is $5,312,000 rounded
        ("5300000", "100000", "5349999", "1", True),
        ("5300000", "100000", "5350001", "1", False),  # rounds to $5.4 million
        ("5300000", "100000", "5100000", "100000", False),  # a restatement
        ("5300000", "100000", "53000000", "1000000", False),
        ("100", "1", "101", "1", False),  # exact figures one apart
        ("0", "0", "0", "0", True),
    ],
)
def test_values_agree_when_one_can_be_the_other_rounded(
    a: str, a_step: str, b: str, b_step: str, together: bool
) -> None:
    args = (Decimal(a), Decimal(a_step), Decimal(b), Decimal(b_step))
    assert conflicts.agree(*args) is together
    assert conflicts.agree(args[2], args[3], args[0], args[1]) is together


def test_a_power_of_ten_apart_is_a_scale_slip() -> None:
    slip = conflicts.scale_slip
    m = Decimal(1_000_000)
    assert slip(Decimal(53) * m, m, Decimal("5.3") * m, m / 10) == 1
    assert slip(Decimal("5.3") * m, m / 10, Decimal(53) * m, m) == -1
    assert slip(Decimal(5300), Decimal(1), Decimal("5.3") * m, m / 10) == -3  # thousands lost
    assert slip(Decimal(53) * m, m, Decimal("5.1") * m, m / 10) is None  # 10.4 times
    assert slip(Decimal("5.3") * m, m / 10, Decimal("-53") * m, m) is None  # a sign apart
    assert slip(Decimal("5.3") * m, m / 10, Decimal("5.3") * m, m / 10) is None


# -- which value the summary shows --------------------------------------------------------------
QUILLON = (
    stated("q1", "5300000", "$5.3 million", MAY_1),
    stated("q2", "53000000", "$53 million", MAY_2),  # a typo in a feed
    stated("q3", "5100000", "$5.1 million", JUNE_15),  # the restatement
)


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_the_restatement_is_shown_whatever_order_the_reports_were_extracted_in(
    order: tuple[int, int, int],
) -> None:
    # one batch: extraction times follow the queue order, which says nothing of the reports
    docs = [dict(QUILLON[i], extracted_at=RUN.replace(second=n)) for n, i in enumerate(order)]
    [row] = summary_rows(build(*docs))
    assert row["revenue"] == Decimal(5_100_000)
    assert row["conflicts"] == "revenue"


def test_a_rerun_of_an_old_report_does_not_override_a_newer_one() -> None:
    newer = stated("new", "5100000", "$5.1 million", JUNE_15, at=RUN)
    # the May report extracted again a month later, by a better extractor
    rerun = stated("old", "5300000", "$5.3 million", MAY_1, at=datetime(2024, 8, 1, tzinfo=UTC))
    frames = build(rerun, newer)
    assert summary_rows(frames)[0]["revenue"] == Decimal(5_100_000)
    assert [(r["value"], r["kind"]) for r in frames.conflicts.to_dict("records")] == [
        (Decimal(5_300_000), conflicts.DIFFERS),
        (Decimal(5_100_000), conflicts.SHOWN),
    ]


def test_rounded_and_precise_values_agree_and_the_more_precise_is_shown() -> None:
    precise = stated("p", "5312000", "$5,312,000", MAY_1)
    rounded = stated("r", "5300000", "$5.3 million", JUNE_15)
    frames = build(rounded, precise)
    [row] = summary_rows(frames)
    assert row["revenue"] == Decimal(5_312_000)
    assert row["conflicts"] is None
    assert len(frames.conflicts) == 0


def test_the_newest_value_wins_over_a_more_precise_one_it_contradicts() -> None:
    precise = stated("p", "5312000", "$5,312,000", MAY_1)
    restated = stated("r", "5100000", "$5.1 million", JUNE_15)
    [row] = summary_rows(build(precise, restated))
    assert (row["revenue"], row["conflicts"]) == (Decimal(5_100_000), "revenue")


def test_a_report_without_a_date_falls_back_to_when_it_was_extracted() -> None:
    undated = stated("u", "5200000", "$5.2 million", None, at=datetime(2024, 6, 1, tzinfo=UTC))
    frames = build(undated, QUILLON[2])  # dated June 15, after the undated one was extracted
    assert summary_rows(frames)[0]["revenue"] == Decimal(5_100_000)
    sources = {r["fact_id"]: r["report_date_source"] for r in frames.facts.to_dict("records")}
    assert sources == {"u": "extracted", "q3": "reported"}


def test_values_in_several_currencies_never_conflict() -> None:
    frames = build(
        stated("usd", "5300000", "$5.3 million", MAY_1),
        stated("eur", "4900000", "EUR 4.9 million", MAY_2, currency="EUR"),
        stated("jpy", "790000000", "¥790 million", JUNE_15, currency="JPY"),
    )
    [row] = summary_rows(frames)
    assert row["revenue [USD]"] == Decimal(5_300_000)
    assert row["revenue [EUR]"] == Decimal(4_900_000)
    assert row["conflicts"] is None
    assert len(frames.conflicts) == 0


def test_one_currency_in_conflict_is_named_by_its_column() -> None:
    frames = build(
        stated("usd", "5300000", "$5.3 million", MAY_1),
        stated("eur1", "4900000", "EUR 4.9 million", MAY_1, currency="EUR"),
        stated("eur2", "4700000", "EUR 4.7 million", MAY_2, currency="EUR"),
    )
    assert summary_rows(frames)[0]["conflicts"] == "revenue [EUR]"
    assert set(frames.conflicts["currency"]) == {"EUR"}


def test_written_forms_of_one_company_are_one_figure() -> None:
    frames = build(
        stated("a", "5300000", "$5.3 million", MAY_1, company="Quillon Corp"),
        stated("b", "5100000", "$5.1 million", JUNE_15, company="QUILLON CORPORATION"),
    )
    assert len(frames.summary) == 1
    assert len(set(frames.conflicts["company"])) == 1 and len(frames.conflicts) == 2


# -- what conflicts.csv says --------------------------------------------------------------------
def test_conflicts_list_every_value_with_its_date_and_name_the_scale_slip() -> None:
    rows = build(*QUILLON).conflicts.to_dict("records")
    assert [
        (r["value"], r["value_text"], r["report_date"], r["kind"], r["report_id"]) for r in rows
    ] == [
        (Decimal(5_300_000), "$5.3 million", date(2024, 5, 1), "differs", "rep-q1"),
        (Decimal(53_000_000), "$53 million", date(2024, 5, 2), "scale slip", "rep-q2"),
        (Decimal(5_100_000), "$5.1 million", date(2024, 6, 15), "shown", "rep-q3"),
    ]
    assert rows[1]["note"] == "10 × 5,300,000 of 2024-05-01"
    assert {r["company"] for r in rows} == {"Quillon Corp"}
    assert {(r["period"], r["metric"], r["unit"], r["currency"]) for r in rows} == {
        ("Q1 2024", "revenue", "currency", "USD")
    }
    assert all(r["snippet"] and r["extractor"] == "rules" for r in rows)


def test_a_slip_outvoted_by_other_reports_is_named_even_when_newest() -> None:
    frames = build(
        stated("a", "5300000", "$5.3 million", MAY_1),
        stated("b", "5312000", "$5,312,000", MAY_2),
        stated("c", "53000000", "$53 million", JUNE_15),  # newest, so shown, but alone
    )
    kinds = {r["fact_id"]: r["kind"] for r in frames.conflicts.to_dict("records")}
    assert kinds == {"a": "differs", "b": "differs", "c": "scale slip"}
    assert summary_rows(frames)[0]["revenue"] == Decimal(53_000_000)


def test_values_agreeing_with_the_shown_one_are_listed_as_agreeing() -> None:
    frames = build(
        stated("a", "5312000", "$5,312,000", MAY_1),
        stated("b", "4800000", "$4.8 million", MAY_2),
        stated("c", "5300000", "$5.3 million", JUNE_15),
    )
    kinds = {r["fact_id"]: r["kind"] for r in frames.conflicts.to_dict("records")}
    assert kinds == {"a": "shown", "b": "differs", "c": "agrees"}
    assert summary_rows(frames)[0]["revenue"] == Decimal(5_312_000)


def test_a_report_stating_the_same_value_twice_is_one_row() -> None:
    twice = stated("a2", "5300000", "$5.3 million", MAY_1, report_id="rep-q1")
    rows = build(*QUILLON, twice).conflicts
    assert len(rows) == 3


def test_conflict_counts_for_the_run_report() -> None:
    frames = build(*QUILLON, stated("z", "7", "7", MAY_1, company="Zed"))
    assert conflicts.conflict_counts(frames.conflicts) == {
        "figures": 1,
        "values": 3,
        "scale_slips": 1,
    }
    assert conflicts.conflict_counts(build().conflicts) == {
        "figures": 0,
        "values": 0,
        "scale_slips": 0,
    }


def test_statistics_and_changes_use_the_value_shown() -> None:
    q2 = stated("q2b", "6000000", "$6.0 million", JUNE_15)
    q2 = dict(q2, quarter="Q2 2024")
    frames = build(*QUILLON, q2)
    assert frames.pop.to_dict("records")[0]["previous_value"] == Decimal(5_100_000)
    assert frames.stats.to_dict("records")[0]["min"] == Decimal(5_100_000)


def test_report_dates_show_as_dates_at_midnight_and_times_otherwise() -> None:
    at_eight = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert conflicts.report_date_shown(MAY_1) == date(2024, 5, 1)
    assert conflicts.report_date_shown(at_eight) == at_eight
    assert conflicts.report_date_shown(None) is None
    text = tables.ExportFrames.csv_files(build(stated("t", "1", "1", at_eight)))["facts.csv"]
    assert ",rep-t,2024-05-01T08:00:00Z,reported," in text


# -- where an analyst sees it -------------------------------------------------------------------
def test_the_page_the_workbook_and_the_summary_show_the_conflict(tmp_path: Path) -> None:
    frames = build(*QUILLON)
    report = {
        "covers": coverage(frames.facts),
        "conflicts": conflicts.conflict_counts(frames.conflicts),
        "filters": {},
        "pipeline": {},
    }
    folder = writer.write_export(tmp_path, date(2024, 7, 2), frames, [], report)

    summary = (folder / "summary_by_company_period.csv").read_text().splitlines()
    assert summary == [
        "company,period,revenue,revenue currency,conflicts",
        "Quillon Corp,Q1 2024,5100000,USD,revenue",
    ]
    page = (folder / "index.html").read_text()
    assert "<tr><th>Figures reports disagree about</th><td>1</td></tr>" in page
    section = page[page.index('<h2 id="conflicts">') :]
    for shown in ("5,300,000 USD", "53,000,000 USD", "5,100,000 USD", "2024-05-02", "scale slip"):
        assert shown in section
    assert '<a href="conflicts.csv">' in page

    book = load_workbook(io.BytesIO((folder / "summary.xlsx").read_bytes()))
    assert book.sheetnames[:3] == ["facts", "summary_by_company_period", "conflicts"]
    sheet = book["conflicts"]
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    dates = [r[header.index("report_date")] for r in rows[1:]]
    assert dates == [datetime(2024, 5, 1), datetime(2024, 5, 2), datetime(2024, 6, 15)]
    assert [r[header.index("value")] for r in rows[1:]] == [5_300_000, 53_000_000, 5_100_000]


def test_the_page_says_when_no_reports_disagree() -> None:
    frames = build(stated("a", "5300000", "$5.3 million", MAY_1))
    html = page.render_index(
        title="t", csv_files=[], charts=[], report={}, conflicts=frames.conflicts
    )
    assert "No two reports disagree about a figure." in html
