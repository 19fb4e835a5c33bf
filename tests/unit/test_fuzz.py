"""Fuzzing the two doors reports come in by: ``POST /submit`` and the file readers.

The HTTP app is given in-memory stand-ins for its publisher and store: these tests exercise the
request validation layer only (the real broker path is covered in tests/integration). Whatever the
input: no 5xx, no crash, and every reject says why.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.app import create_app, too_deep
from ingest.readers import READERS, ReadOptions, UnreadableFile, read_bytes
from schemas.message import ReportMessage, report_id_for
from schemas.settings import Settings


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[ReportMessage] = []

    def publish_many(self, messages: list[ReportMessage]) -> int:
        self.published.extend(messages)
        return len(messages)

    def check(self) -> None:
        return None

    def close(self) -> None:
        return None


class NullStore:
    def mark_queued(self, *_: Any, **__: Any) -> None:
        return None

    def close(self) -> None:
        return None


PUBLISHER = RecordingPublisher()
APP = create_app(
    Settings.from_env({}, max_body_bytes=20_000, max_report_bytes=5_000),
    publisher_factory=lambda: PUBLISHER,  # type: ignore[arg-type,return-value]
    store_factory=lambda: NullStore(),  # type: ignore[arg-type,return-value]
)
CLIENT = APP.test_client()


def _nest(inner: st.SearchStrategy[Any], size: int) -> st.SearchStrategy[Any]:
    return (
        inner
        | st.lists(inner, max_size=size)
        | st.dictionaries(st.text(max_size=12), inner, max_size=size)
    )


_leaf = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
)
json_values = _nest(_nest(_nest(_leaf, 5), 4), 3)  # JSON values up to three levels deep
report_like = st.fixed_dictionaries(
    {"raw_text": st.text(max_size=200)},
    optional={
        "source": st.text(max_size=30) | st.none() | st.integers(),
        "company_hint": st.text(max_size=30) | st.none(),
        "reported_at": st.text(max_size=25) | st.dates().map(str) | st.none(),
    },
)
bodies = (
    json_values
    | report_like
    | st.lists(report_like | json_values, max_size=6)
    | st.binary(max_size=300)
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(body=bodies, content_type=st.sampled_from(["application/json", "text/plain", ""]))
def test_submit_never_answers_5xx_and_explains_every_reject(body: Any, content_type: str) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    before = len(PUBLISHER.published)
    resp = CLIENT.post("/submit", data=data, content_type=content_type or None)
    assert resp.status_code in (202, 400, 413, 415), resp.get_data(as_text=True)
    answer = resp.get_json()
    assert answer is not None, "every answer is JSON"
    if resp.status_code != 202:
        assert answer["error"], "a reject says why"
        assert len(PUBLISHER.published) == before, "nothing published on a reject"
        return
    items = [answer] if isinstance(answer, dict) else answer
    queued = [i for i in items if i["status"] == "queued"]
    assert len(PUBLISHER.published) - before == len(queued)
    for item, msg in zip(queued, PUBLISHER.published[before:], strict=True):
        assert item["report_id"] == msg.report_id == report_id_for(msg.raw_text)
    for item in items:
        if item["status"] == "rejected":
            assert all(e["field"] and e["error"] for e in item["errors"])


OPTIONS = {
    suffix: ReadOptions(
        file_name=f"fuzz{suffix}",
        file_sha256="0" * 64,
        ingested_at=datetime(2024, 1, 1, tzinfo=UTC),
        max_report_bytes=5_000,
    )
    for suffix in READERS
}
texty = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300).map(
    lambda s: s.encode("utf-8")
)
file_bodies = (
    st.binary(max_size=400)
    | texty
    | st.lists(
        st.one_of(
            st.builds(lambda t: json.dumps({"raw_text": t}), st.text(max_size=60)),
            st.text(max_size=60),
        ),
        max_size=8,
    ).map(lambda lines: "\n".join(lines).encode("utf-8"))
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=file_bodies, suffix=st.sampled_from(sorted(READERS)))
def test_file_readers_never_crash_and_explain_every_reject(data: bytes, suffix: str) -> None:
    try:
        result = read_bytes(data, OPTIONS[suffix])
    except UnreadableFile as exc:
        assert exc.reason.strip(), "an unreadable file says why"
        return
    for reject in result.rejects:
        assert reject.reason.strip()
        assert reject.line is not None or reject.row is not None or suffix in (".json", ".txt")
    for msg in result.messages:
        assert msg.raw_text.strip()
        assert msg.report_id == report_id_for(msg.raw_text)


@pytest.mark.parametrize(
    ("body", "deep"),
    [
        (b'{"raw_text": "[[[[[[[[[[[[[[[[["}', False),  # brackets inside a string
        (b'{"a\\"[": [[1]]}', False),  # an escaped quote does not end the string
        (b"[[[[1]]]]", True),
        (b'[{"a": [{"b": 1}]}]', True),
        (b"[[[1]]]", False),
    ],
)
def test_nesting_is_measured_on_the_raw_text(body: bytes, deep: bool) -> None:
    assert too_deep(body, 3) is deep


def test_json_nested_far_too_deep_for_the_parser_is_a_400_not_a_crash() -> None:
    body = "[" * 5_000 + "]" * 5_000  # past the parser's recursion limit
    resp = CLIENT.post("/submit", data=body, content_type="application/json")
    assert resp.status_code == 400
    assert resp.get_json()["field"] == "body"


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_json_files_nested_too_deep_are_rejected_with_a_reason(suffix: str) -> None:
    data = b"[" * 5_000 + b"]" * 5_000
    try:
        result = read_bytes(data, OPTIONS[suffix])
    except UnreadableFile as exc:
        assert "nested too deep" in exc.reason
    else:
        assert [r.reason for r in result.rejects] == [
            "invalid JSON: arrays or objects nested too deep to read"
        ]
        assert not result.messages
