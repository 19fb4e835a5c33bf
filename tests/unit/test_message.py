import hashlib
import json

import pytest
from pydantic import ValidationError

from schemas.message import (
    Provenance,
    ReportMessage,
    SubmitReport,
    normalize_text,
    report_id_for,
)

SEED = "Company XYZ reported a net income of $5.3 million for Q1 2024."


def test_report_id_is_the_sha256_of_the_normalized_text() -> None:
    assert report_id_for(SEED) == hashlib.sha256(SEED.encode()).hexdigest()
    assert report_id_for("  Company XYZ reported a net income\n of $5.3 million for Q1 2024. ") == (
        report_id_for(SEED)
    )


def test_normalize_text_folds_whitespace_and_unicode_forms() -> None:
    assert normalize_text("Cafe\u0301  \t net\n\nsales ") == "Café net sales"


def test_message_round_trips_through_the_queue_body() -> None:
    msg = ReportMessage.build(
        SubmitReport(raw_text=SEED, source="wire", company_hint="XYZ"),
        Provenance(channel="file", file_name="a.jsonl", file_sha256="0" * 64, line=3),
    )
    again = ReportMessage.from_body(msg.to_body())
    assert again == msg
    assert json.loads(msg.to_body())["schema_version"] == 1


def test_unknown_schema_version_is_rejected() -> None:
    msg = ReportMessage.build(SubmitReport(raw_text=SEED), Provenance(channel="api"))
    body = json.loads(msg.to_body())
    body["schema_version"] = 2
    with pytest.raises(ValidationError, match="unsupported schema_version 2"):
        ReportMessage.from_body(json.dumps(body).encode())


@pytest.mark.parametrize(
    "payload",
    [{"raw_text": ""}, {"raw_text": "  "}, {}, {"raw_text": SEED, "extra": 1}, {"raw_text": 5}],
)
def test_submit_report_rejects_bad_payloads(payload: dict) -> None:
    with pytest.raises(ValidationError):
        SubmitReport.model_validate(payload)


def test_page_of_maps_offsets_to_pdf_pages() -> None:
    msg = ReportMessage.build(
        SubmitReport(raw_text="page one text. page two text."),
        Provenance(channel="file", page_offsets=[0, 15]),
    )
    assert [msg.page_of(0), msg.page_of(14), msg.page_of(15), msg.page_of(28)] == [1, 1, 2, 2]
    plain = ReportMessage.build(SubmitReport(raw_text="x"), Provenance(channel="api"))
    assert plain.page_of(0) is None


@pytest.mark.parametrize("text", ["\x1c", "\u2028 \x1f", "\t\n"])
def test_text_of_separators_only_is_not_a_report(text: str) -> None:
    with pytest.raises(ValidationError, match=r"must contain text|at least 1 character"):
        SubmitReport(raw_text=text)
