"""On real services: a rules fact below FINPIPE_MIN_CONFIDENCE is not stored but listed, with its
reason, in the report's record; stored facts carry their confidence and evidence."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from ingest.app import create_app
from schemas.settings import Settings
from tests.integration.conftest import SEED, wait_until

pytestmark = pytest.mark.timeout(90)


def _submit(settings: Settings, text: str) -> str:
    app = create_app(settings)
    app.config["TESTING"] = True
    try:
        assert app.test_client().post("/submit", json={"raw_text": text}).status_code == 202
    finally:
        app.extensions["finpipe.close"]()
    return hashlib.sha256(text.encode()).hexdigest()


def _done(db: Any, report_id: str) -> dict[str, Any]:
    return wait_until(
        lambda: (r := db.reports.find_one({"_id": report_id})) and r["status"] == "done" and r,
        30,
        "report status done",
    )


def test_a_doubtful_fact_is_listed_with_its_reason_and_a_sure_one_stored(
    settings: Settings, start_worker: Any, db: Any
) -> None:
    worker = start_worker()
    text = SEED + " Its net sales for Q1 2024 were $7.1 ."
    report_id = _submit(settings, text)
    report = _done(db, report_id)
    [fact] = list(db.financial_data.find({"report_id": report_id}))
    assert fact["metric"] == "net income"
    assert fact["confidence"] >= 0.7
    assert fact["evidence"]["scale"] == "as written"
    assert report["unassigned_amounts"] == 1
    [listed] = report["unassigned_detail"]
    assert (listed["metric"], listed["value_text"]) == ("revenue", "$7.1")
    assert listed["reason"] == "scale: none written, small currency amount"
    assert worker.stop() == 0


def test_the_worker_applies_the_configured_minimum(
    settings: Settings, start_worker: Any, db: Any
) -> None:
    worker = start_worker(FINPIPE_MIN_CONFIDENCE="0.99")
    report_id = _submit(settings, SEED)
    report = _done(db, report_id)
    assert db.financial_data.count_documents({"report_id": report_id}) == 0
    assert [d["metric"] for d in report["unassigned_detail"]] == ["net income"]
    assert worker.stop() == 0
