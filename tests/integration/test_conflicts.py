"""Three reports that disagree about one figure, through /submit, RabbitMQ, a rules worker and
MongoDB: the summary shows the restatement and marks the conflict, and every surface lists it."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from ingest.app import create_app
from schemas.settings import Settings
from tests.integration.conftest import finpipe_cli, publish, queue_depth, wait_until

pytestmark = pytest.mark.integration

QUILLON = [  # in queue order: the restatement first, the typo last
    ("2024-06-15", "Quillon Corp restated its revenue to $5.1 million for Q1 2024."),
    ("2024-05-01", "Quillon Corp reported revenue of $5.3 million for Q1 2024."),
    ("2024-05-02", "Quillon Corp reported revenue of $53 million for Q1 2024."),  # a feed's typo
]


def submit(settings: Settings, reports: list[tuple[str, str]]) -> list[str]:
    """POST the reports to /submit as one array; their report ids."""
    app = create_app(settings)
    app.config["TESTING"] = True
    try:
        body = [{"raw_text": text, "reported_at": day} for day, text in reports]
        resp = app.test_client().post("/submit", json=body)
        assert resp.status_code == 202, resp.get_json()
        return [r["report_id"] for r in resp.get_json()]
    finally:
        app.extensions["finpipe.close"]()


def csv_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_three_disagreeing_reports_show_the_restatement_and_list_the_conflict(
    settings: Settings, start_worker: Any, db: Any
) -> None:
    ids = submit(settings, QUILLON)
    worker = start_worker()
    wait_until(lambda: db.financial_data.count_documents({}) == 3, 60, "three facts")
    wait_until(lambda: queue_depth(settings)[0] == 0, 30, "the queue to drain")
    assert worker.stop() == 0
    stored = {d["report_id"]: d for d in db.financial_data.find()}
    assert [stored[i]["report_date"].date().isoformat() for i in ids] == [d for d, _ in QUILLON]
    assert {d["report_date_source"] for d in stored.values()} == {"reported"}

    done = finpipe_cli(settings, "export", check=True)
    folder = Path(done.stdout.strip().splitlines()[-1])

    summary = csv_rows(folder / "summary_by_company_period.csv")
    assert [(r["company"], r["period"], r["revenue"], r["conflicts"]) for r in summary] == [
        ("Quillon Corp", "Q1 2024", "5100000", "revenue")
    ]
    conflicts = csv_rows(folder / "conflicts.csv")
    assert [
        (r["value"], r["value_text"], r["report_date"], r["kind"], r["report_id"])
        for r in conflicts
    ] == [
        ("5300000", "$5.3 million", "2024-05-01", "differs", ids[1]),
        ("53000000", "$53 million", "2024-05-02", "scale slip", ids[2]),
        ("5100000", "$5.1 million", "2024-06-15", "shown", ids[0]),
    ]
    assert {(r["company"], r["metric"], r["currency"], r["extractor"]) for r in conflicts} == {
        ("Quillon Corp", "revenue", "USD", "rules")
    }
    assert conflicts[1]["snippet"] == QUILLON[2][1]
    facts = csv_rows(folder / "facts.csv")
    assert sorted(r["report_date"] for r in facts) == ["2024-05-01", "2024-05-02", "2024-06-15"]

    report = json.loads((folder / "run_report.json").read_text(encoding="utf-8"))
    assert report["conflicts"] == {"figures": 1, "values": 3, "scale_slips": 1}
    page = (folder / "index.html").read_text(encoding="utf-8")
    section = page[page.index('<h2 id="conflicts">') :]
    for shown in ("5,300,000 USD", "53,000,000 USD", "5,100,000 USD", "scale slip", "2024-06-15"):
        assert shown in section
    book = load_workbook(folder / "summary.xlsx")
    sheet = list(book["conflicts"].iter_rows(values_only=True))
    header = sheet[0]
    assert [r[header.index("value")] for r in sheet[1:]] == [5_300_000, 53_000_000, 5_100_000]
    assert [r[header.index("report_date")] for r in sheet[1:]] == [
        datetime(2024, 5, 1),
        datetime(2024, 5, 2),
        datetime(2024, 6, 15),
    ]

    listed = finpipe_cli(settings, "facts", "--conflicts", "--format", "json", check=True)
    values = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(d["value"], d["report_date"]) for d in values] == [
        (5300000, "2024-05-01"),
        (53000000, "2024-05-02"),
        (5100000, "2024-06-15"),
    ]


def test_an_old_report_processed_again_does_not_replace_the_newer_value(
    settings: Settings, start_worker: Any, db: Any
) -> None:
    from schemas.message import Provenance, ReportMessage, SubmitReport

    submit(settings, QUILLON[:2])  # the restatement (June) and the May report
    worker = start_worker()
    wait_until(lambda: db.financial_data.count_documents({}) == 2, 60, "two facts")
    may = ReportMessage.build(
        SubmitReport(raw_text=QUILLON[1][1], reported_at=QUILLON[1][0]),
        Provenance(channel="api", ingested_at=datetime.now(UTC)),
    )
    first = db.financial_data.find_one({"report_id": may.report_id})
    db.financial_data.update_one({"_id": first["_id"]}, {"$set": {"value_text": "edited"}})
    publish(settings, [may])  # processed again: its fact is rewritten, extracted later
    wait_until(
        lambda: db.financial_data.find_one({"_id": first["_id"]})["value_text"] != "edited",
        60,
        "the May report processed again",
    )
    assert worker.stop() == 0
    again = db.financial_data.find_one({"_id": first["_id"]})
    assert again["extracted_at"] > first["extracted_at"]

    folder = Path(finpipe_cli(settings, "export", check=True).stdout.strip().splitlines()[-1])
    [row] = csv_rows(folder / "summary_by_company_period.csv")
    assert (row["revenue"], row["conflicts"]) == ("5100000", "revenue")
