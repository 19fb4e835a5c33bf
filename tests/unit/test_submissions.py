"""The submission record written off the request path: batched, readable before it is written,
never in the way of an answer."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ingest.submissions import SubmissionLog
from schemas.errors import StoreUnavailable

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


class GatedStore:
    """Records each write; the first one waits for ``gate`` (a slow database)."""

    def __init__(self, fail: bool = False) -> None:
        self.writes: list[tuple[dict[str, datetime], dict[str, Any]]] = []
        self.gate = threading.Event()
        self.started = threading.Event()
        self.fail = fail

    def mark_queued(self, received: Mapping[str, datetime], **fields: Any) -> None:
        self.started.set()
        self.gate.wait(5)
        self.writes.append((dict(received), fields))
        if self.fail:
            raise StoreUnavailable("MongoDB unreachable (test)")


def test_reports_accepted_during_a_write_go_together_in_the_next_one() -> None:
    store = GatedStore()
    log = SubmissionLog(lambda: store)
    log.add(["a"], T0)
    assert store.started.wait(5)
    later = T0 + timedelta(seconds=1)
    log.add(["b", "c"], later)
    log.add(["d", "b"], later + timedelta(seconds=1))  # "b" keeps its first time
    store.gate.set()
    assert log.flush(5)
    log.close()
    assert [w for w, _ in store.writes] == [
        {"a": T0},
        {"b": later, "c": later, "d": later + timedelta(seconds=1)},
    ]
    assert {f["channel"] for _, f in store.writes} == {"api"}


def test_a_report_not_written_yet_is_queued_at_the_time_it_was_received() -> None:
    store = GatedStore()
    log = SubmissionLog(lambda: store)
    log.add(["a"], T0)
    assert store.started.wait(5)
    log.add(["b"], T0)
    assert (log.queued_at("a"), log.queued_at("b"), log.queued_at("x")) == (T0, T0, None)
    store.gate.set()
    assert log.flush(5)
    assert log.queued_at("a") is None
    log.close()


def test_a_write_that_fails_is_logged_and_the_next_batch_is_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = GatedStore(fail=True)
    store.gate.set()
    log = SubmissionLog(lambda: store)
    log.add(["a"], T0)
    assert log.flush(5)
    log.add(["b"], T0)
    assert log.flush(5)
    log.close()
    assert [list(w) for w, _ in store.writes] == [["a"], ["b"]]
    assert "could not record 1 report(s) as queued: MongoDB unreachable (test)" in caplog.text


def test_closing_writes_what_is_left_and_later_additions_are_written_at_once() -> None:
    store = GatedStore()
    store.gate.set()
    log = SubmissionLog(lambda: store)
    log.add(["a"], T0)
    log.close()
    log.add(["b"], T0)  # a request that finished during shutdown
    assert [list(w) for w, _ in store.writes] == [["a"], ["b"]]


def test_reports_accepted_soon_after_a_write_wait_for_the_next_one_together() -> None:
    store = GatedStore()
    store.gate.set()
    log = SubmissionLog(lambda: store, write_every_s=60)
    log.add(["a"], T0)
    assert log.flush(5)
    store.started.clear()
    log.add(["b"], T0)
    log.add(["c"], T0)
    assert not store.started.wait(0.3)  # not written yet: the next write is a minute away
    assert log.queued_at("b") == T0
    log.close()  # writes what is left at once
    assert [list(w) for w, _ in store.writes] == [["a"], ["b", "c"]]
