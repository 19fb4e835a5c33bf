"""``GET /reports/<id>``: an id that cannot exist, a store that refuses, a store that is down."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask.testing import FlaskClient

from ingest.app import create_app
from schemas.errors import StoreUnavailable
from schemas.settings import Settings

REPORT_ID = "ab" * 32


class Publisher:
    def publish_many(self, messages: Any) -> int:
        return 0

    def check(self) -> None:
        return None

    def close(self) -> None:
        return None


class Store:
    """Answers every lookup with ``lookup``; ``up`` says whether a ping gets through."""

    def __init__(self, lookup: Any = None, *, up: bool = True) -> None:
        self.lookup, self.up = lookup, up
        self.asked: list[str] = []

    def report(self, report_id: str) -> dict[str, Any] | None:
        self.asked.append(report_id)
        if isinstance(self.lookup, Exception):
            raise self.lookup
        return self.lookup

    def ping(self) -> None:
        if not self.up:
            raise StoreUnavailable("MongoDB ping failed: connection refused")

    def mark_queued(self, *_: Any, **__: Any) -> None:
        return None

    def close(self) -> None:
        return None


def client_for(store: Store) -> FlaskClient:
    app = create_app(
        Settings.from_env({}),
        publisher_factory=Publisher,  # type: ignore[arg-type]
        store_factory=lambda: store,  # type: ignore[arg-type,return-value]
    )
    return app.test_client()


@pytest.mark.parametrize("bad_id", ["%00", "abc", "ag" * 32, "ab" * 32 + "c", "%E2%82%AC" * 32])
def test_an_id_that_cannot_exist_is_404_without_asking_the_database(bad_id: str) -> None:
    store = Store(StoreUnavailable("MongoDB report lookup failed: NUL in a string"))
    response = client_for(store).get(f"/reports/{bad_id}")
    assert response.status_code == 404
    assert "64 hexadecimal digits" in response.get_json()["error"]
    assert store.asked == []


def test_a_store_error_while_the_database_is_up_is_500_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Store(StoreUnavailable("MongoDB report lookup failed: invalid document"))
    response = client_for(store).get(f"/reports/{REPORT_ID}")
    assert response.status_code == 500
    assert "Retry-After" not in response.headers
    assert any(
        r.levelname == "ERROR" and "invalid document" in r.getMessage() for r in caplog.records
    )


def test_a_store_error_while_the_database_is_down_is_503() -> None:
    store = Store(StoreUnavailable("MongoDB report lookup failed: timed out"), up=False)
    response = client_for(store).get(f"/reports/{REPORT_ID}")
    assert response.status_code == 503


@pytest.mark.parametrize("asked", [REPORT_ID, REPORT_ID.upper()])
def test_a_known_report_is_returned(asked: str) -> None:
    store = Store({"_id": REPORT_ID, "status": "done", "facts": []})
    response = client_for(store).get(f"/reports/{asked}")
    assert response.status_code == 200
    assert response.get_json()["report_id"] == REPORT_ID
    assert store.asked == [REPORT_ID]


class WrittenDuringLookup(Store):
    """A database the submission record is written to, the write landing while a lookup runs:
    the lookup reads the database just before the write, which then takes the id out of memory."""

    def __init__(self) -> None:
        super().__init__()
        self.recorded: dict[str, Any] = {}
        self.looked_up = threading.Event()
        self.log: Any = None

    def mark_queued(self, received: Any, **fields: Any) -> None:
        self.looked_up.wait(5)  # the write lands once the lookup has read
        self.recorded.update(received)

    def report(self, report_id: str) -> dict[str, Any] | None:
        self.asked.append(report_id)
        found = report_id in self.recorded
        self.looked_up.set()
        assert self.log.flush(5)
        return {"_id": report_id, "status": "queued", "facts": []} if found else None


def test_a_report_recorded_during_its_lookup_still_reads_queued() -> None:
    store = WrittenDuringLookup()
    client = client_for(store)
    store.log = client.application.extensions["finpipe.adapters"].submissions
    submitted = client.post("/submit", json={"raw_text": "Lookup Corp reported revenue of $1."})
    assert submitted.status_code == 202
    response = client.get(f"/reports/{submitted.get_json()['report_id']}")
    assert response.status_code == 200
    assert response.get_json()["status"] == "queued"
