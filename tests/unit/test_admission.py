"""What a worker lets into a batch, and why it refuses the rest (``worker.admission``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.message import Provenance, ReportMessage, SubmitReport, report_id_for
from schemas.topology import HEADER_ATTEMPT
from worker.admission import Admitted, Refused, admit

LIMIT = 1_000_000  # the default FINPIPE_MAX_REPORT_BYTES
SEED = "Company XYZ reported a net income of $5.3 million for Q1 2024."


def body_of(text: str) -> bytes:
    return ReportMessage.build(SubmitReport(raw_text=text), Provenance(channel="api")).to_body()


def short_lines(size: int) -> str:
    """``size`` bytes of ``Q1<tab>$1.2m`` lines: each tab and newline doubles when escaped."""
    line = "Q1\t$1.2m\n"
    text = "Acme reported revenue of $1 million for Q1 2024.\n"
    text += line * ((size - len(text)) // len(line))
    return text + "x" * (size - len(text))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(short_lines(899_999), id="899,999 bytes of short lines"),
        pytest.param(SEED + '"' * (LIMIT - len(SEED)), id="1,000,000 bytes of mostly quotes"),
        pytest.param(SEED + "\x01" * (LIMIT - len(SEED)), id="control characters, escaped 6x"),
    ],
)
def test_a_text_within_the_limit_is_admitted_however_much_escaping_grows_its_message(
    text: str,
) -> None:
    body = body_of(text)
    assert len(text.encode()) <= LIMIT
    assert len(body) > LIMIT + 64_000  # over what workers allowed a message before
    verdict = admit(body, {}, max_report_bytes=LIMIT)
    assert isinstance(verdict, Admitted), verdict
    assert verdict.report.raw_text == text.strip()


def test_a_text_one_byte_over_the_limit_is_refused_as_too_large_naming_the_setting() -> None:
    text = SEED + "x" * (LIMIT + 1 - len(SEED))
    verdict = admit(body_of(text), {}, max_report_bytes=LIMIT)
    assert verdict == Refused(
        f"report text of {LIMIT + 1} bytes is over the limit (FINPIPE_MAX_REPORT_BYTES={LIMIT})",
        "too_large",
        report_id_for(text),
    )


def test_an_absurdly_large_body_is_refused_before_it_is_decoded() -> None:
    verdict = admit(b"[" * (6 * 1000 + 1_000_001), {}, max_report_bytes=1000)
    assert isinstance(verdict, Refused)
    assert verdict.kind == "too_large"
    assert "envelope limit" in verdict.reason


def test_a_report_id_that_is_not_the_hash_of_its_text_is_refused_and_names_no_report() -> None:
    victim = report_id_for(SEED)
    forged = json.loads(body_of("HIJACK reported revenue of $1 for Q1 2024."))
    forged["report_id"] = victim
    verdict = admit(json.dumps(forged).encode(), {}, max_report_bytes=LIMIT)
    assert isinstance(verdict, Refused)
    assert verdict.kind == "invalid_message"
    assert "does not match the hash of its text" in verdict.reason
    assert verdict.report_id is None  # the victim's status must not be touched


@pytest.mark.parametrize(
    "body", [b"\xff\xfe not json", b"[]", b"{}", b'{"raw_text": ' + b"[" * 5000 + b"]" * 5000]
)
def test_an_undecodable_body_is_refused_without_raising(body: bytes) -> None:
    verdict = admit(body, {}, max_report_bytes=LIMIT)
    assert isinstance(verdict, Refused)
    assert verdict.kind == "invalid_message"
    assert verdict.reason.startswith("undecodable message")


@pytest.mark.parametrize("value", ["abc", "2", -1, 1001, True, 1.5, b"1", [1], {"n": 1}])
def test_a_malformed_attempt_header_refuses_that_message_with_a_reason(value: Any) -> None:
    verdict = admit(body_of(SEED), {HEADER_ATTEMPT: value}, max_report_bytes=LIMIT)
    assert isinstance(verdict, Refused)
    assert verdict.kind == "invalid_message"
    assert HEADER_ATTEMPT in verdict.reason
    assert verdict.report_id == report_id_for(SEED)


@pytest.mark.parametrize(
    ("headers", "attempt"),
    [({}, 0), ({HEADER_ATTEMPT: None}, 0), ({HEADER_ATTEMPT: 3}, 3), ({"other": "abc"}, 0)],
)
def test_a_wellformed_attempt_header_is_read(headers: dict[str, Any], attempt: int) -> None:
    verdict = admit(body_of(SEED), headers, max_report_bytes=LIMIT)
    assert isinstance(verdict, Admitted)
    assert verdict.attempt == attempt
