"""The night of ``finpipe schedule`` (``ops/nightly.py``) without services: one run of every job,
the catch-up of a missed night, the Batch API jobs as ``/metrics`` counts them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.scheduler import Job
from ops import nightly
from schemas.errors import StoreUnavailable
from schemas.settings import Settings


class _Store:
    def __init__(self, last: dict[str, datetime] | None = None) -> None:
        self.last = last
        self.closed = False

    def last_run(self, name: str) -> dict[str, Any] | None:
        if self.last is None:
            raise StoreUnavailable("MongoDB unreachable")
        at = self.last.get(name)
        return {"at": at} if at else None

    def close(self) -> None:
        self.closed = True


class _Adapters:
    def __init__(self, store: _Store) -> None:
        self.settings = Settings.from_env(
            {"FINPIPE_SWEEP_CRON": "0 2 * * *", "FINPIPE_EXPORT_CRON": "30 2 * * *"}
        )
        self._store = store

    def broker(self) -> Any:
        raise AssertionError("no broker is needed")

    def store(self) -> Any:
        return self._store


def _jobs(ran: list[str]) -> list[Job]:
    def run(name: str) -> Any:
        def func() -> str:
            ran.append(name)
            if name == "sweep":
                raise RuntimeError("inbox unreadable")
            return f"{name} done"

        return func

    return [
        Job("sweep", "0 2 * * *", run("sweep"), "FINPIPE_SWEEP_CRON", "last_sweep"),
        Job("export", "30 2 * * *", run("export"), "FINPIPE_EXPORT_CRON", "last_export"),
    ]


def test_once_runs_every_job_in_order_and_names_the_ones_that_failed() -> None:
    ran: list[str] = []
    assert nightly.run_once(_jobs(ran)) == ["sweep"]
    assert ran == ["sweep", "export"]  # a failed sweep does not stop the export


def test_a_night_whose_runs_are_older_than_its_fire_times_is_caught_up_in_order() -> None:
    now = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
    store = _Store(
        {
            "last_sweep": datetime(2026, 12, 3, 2, 0, 5, tzinfo=UTC),  # yesterday's: today's missed
            "last_export": datetime(2026, 12, 4, 2, 30, 5, tzinfo=UTC),
        }
    )
    jobs = _jobs([])
    assert nightly.missed(_Adapters(store), jobs, now) == [jobs[0]]
    assert store.closed


def test_a_database_that_cannot_be_read_catches_nothing_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = _Store(None)
    now = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
    assert nightly.missed(_Adapters(store), _jobs([]), now) == []
    assert store.closed and "no catch-up" in caplog.text


def test_batch_jobs_are_counted_by_state_with_every_state_shown() -> None:
    counts = nightly.jobs_by_state([{"state": "submitted"}, {"state": "submitted"}])
    assert counts == {"building": 0, "uploaded": 0, "submitted": 2, "collected": 0}
