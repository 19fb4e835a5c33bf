"""Whether a delivered message may enter a batch: pure, values in, a verdict out.

Everything a worker reads from the broker is untrusted: the body, the headers, the properties. A
message that cannot be taken as it is gets a ``Refused`` verdict with the reason, and the consumer
dead-letters that message alone; nothing here raises.

The checks, in order: the body's size against a generous envelope guard, decoding, the report id
against the hash of the text (a forged id must not replace another report's facts), the text's
UTF-8 size against ``FINPIPE_MAX_REPORT_BYTES`` (the same quantity intake checks), and the
delayed-retry counter header.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemas.errors import validation_summary
from schemas.message import ReportMessage, max_envelope_bytes, report_id_for, text_bytes
from schemas.topology import attempt_of


@dataclass(frozen=True)
class Admitted:
    report: ReportMessage
    attempt: int


@dataclass(frozen=True)
class Refused:
    """Dead-letter the message: ``kind`` and ``reason`` go into its headers. ``report_id`` is set
    only when the message is known to be that report (its id matches its text)."""

    reason: str
    kind: str
    report_id: str | None = None


def admit(body: bytes, headers: Mapping[str, Any], *, max_report_bytes: int) -> Admitted | Refused:
    """The verdict on one delivered message (see the module's docstring for the checks)."""
    envelope_limit = max_envelope_bytes(max_report_bytes)
    if len(body) > envelope_limit:
        return Refused(
            f"message of {len(body)} bytes is over the envelope limit of {envelope_limit} bytes "
            f"(derived from FINPIPE_MAX_REPORT_BYTES={max_report_bytes})",
            "too_large",
        )
    try:
        report = ReportMessage.from_body(body)
    except Exception as exc:  # untrusted input: whatever the decoder raises, refuse the message
        reason = validation_summary(exc, limit=3)
        return Refused(f"undecodable message: {reason}", "invalid_message")
    expected = report_id_for(report.raw_text)
    if report.report_id != expected:
        return Refused(
            f"report_id {report.report_id[:16]}... does not match the hash of its text "
            f"({expected[:16]}...)",
            "invalid_message",
        )
    size = text_bytes(report.raw_text)
    if size > max_report_bytes:
        return Refused(
            f"report text of {size} bytes is over the limit "
            f"(FINPIPE_MAX_REPORT_BYTES={max_report_bytes})",
            "too_large",
            report.report_id,
        )
    attempt = attempt_of(headers)
    if isinstance(attempt, str):
        return Refused(f"invalid message: {attempt}", "invalid_message", report.report_id)
    return Admitted(report, attempt)
