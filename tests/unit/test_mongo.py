"""The store's pure parts: the facts query and the write concern (no network)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from adapters.mongo import MongoStore, one_line, write_concern_of
from adapters.mongo.queries import facts_query, unassigned_query
from schemas.errors import ConfigError


def test_dates_bound_whole_utc_days_and_company_ignores_case() -> None:
    q = facts_query(since=date(2024, 5, 1), until=date(2024, 5, 31), company="A.B")
    assert q == {
        "extracted_at": {
            "$gte": datetime(2024, 5, 1, tzinfo=UTC),
            "$lt": datetime(2024, 6, 1, tzinfo=UTC),
        },
        "company": {"$regex": r"^A\.B$", "$options": "i"},
    }
    assert facts_query() == {}


def test_write_concern_is_majority_or_a_number_of_nodes() -> None:
    assert write_concern_of("majority").document == {"w": "majority"}
    assert write_concern_of("1").document == {"w": 1}


def test_facts_of_left_out_extractors_are_filtered_in_the_query() -> None:
    assert facts_query(without_extractors=["rules-fallback"]) == {
        "extractor": {"$nin": ["rules-fallback"]}
    }
    assert facts_query(without_extractors=()) == {}


def test_reports_with_unassigned_amounts_are_selected_by_processing_time_or_id() -> None:
    assert unassigned_query() == {"unassigned_amounts": {"$gt": 0}}
    assert unassigned_query(since=date(2024, 5, 1), report_ids=["r1"]) == {
        "unassigned_amounts": {"$gt": 0},
        "updated_at": {"$gte": datetime(2024, 5, 1, tzinfo=UTC)},
        "_id": {"$in": ["r1"]},
    }


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("mongodb://127.0.0.1:notaport", "Port contains non-digit characters"),
        ("mongodb://127.0.0.1:27017/?tls=true&tlsCAFile=/nonexistent.pem", "not readable"),
        ("mongodb://127.0.0.1:99999", "Port must be an integer between 0 and 65535"),
        ("mongodb://", "Must provide at least one hostname or IP"),
        ("mongodb://h/?authMechanism=GSSAPI", "username"),
    ],
)
def test_a_mongodb_url_pymongo_refuses_is_a_one_line_configuration_error(
    uri: str, reason: str
) -> None:
    store = MongoStore(uri, "db")
    with pytest.raises(ConfigError) as refused:
        store.validate()
    message = str(refused.value)
    assert message.startswith(f"FINPIPE_MONGO_URI='{uri}' is invalid: ")
    assert reason in message
    assert "\n" not in message


def test_a_password_in_a_refused_url_is_not_shown() -> None:
    with pytest.raises(ConfigError) as refused:
        MongoStore("mongodb://u:s3cret@127.0.0.1:notaport", "db").validate()
    assert "s3cret" not in str(refused.value)


def test_pymongo_errors_are_shown_on_one_line_without_the_topology() -> None:
    exc = ServerSelectionTimeoutError(
        "h:27017: [Errno 111] Connection refused (configured timeouts: connectTimeoutMS: 3000.0ms)"
        ", Timeout: 3.0s, Topology Description: <TopologyDescription id: 1, servers: [...]>"
    )
    assert one_line(exc) == (
        "h:27017: [Errno 111] Connection refused (configured timeouts: connectTimeoutMS: 3000.0ms)"
    )
    assert one_line(ValueError("")) == "ValueError"


def test_threads_meeting_an_unopened_store_share_one_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading
    import time

    store = MongoStore("mongodb://127.0.0.1:1", "db", timeout_ms=100)
    opened: list[object] = []
    make = store._new_client

    def slow_new_client() -> object:
        time.sleep(0.05)  # widen the window in which a second thread could open another
        client = make()
        opened.append(client)
        return client

    monkeypatch.setattr(store, "_new_client", slow_new_client)
    start = threading.Barrier(8)

    def use() -> None:
        start.wait()
        _ = store.db

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    assert len(opened) == 1


# --- running counts and split queries (pure) ---------------------------------------------------


@pytest.mark.parametrize("name", ["Acme Corp.", "$ACME", "", "100%", "a.b$c%2E", "Zoë\x00"])
def test_a_company_name_becomes_a_field_name_and_back(name: str) -> None:
    from adapters.mongo.counts import escape_key, unescape_key

    key = escape_key(name)
    assert key and "." not in key and not key.startswith("$") and "\x00" not in key
    assert unescape_key(key) == name


def test_changes_become_one_inc_and_cancel_out() -> None:
    from adapters.mongo.counts import Changes

    changes = Changes()
    changes.facts_added([{"company": "A.B"}, {"company": "A.B"}, {"company": None}])
    changes.facts_added([{"company": "A.B"}], sign=-1)
    changes.company_changed("Old", "New")
    changes.status_changed(None, "done")
    changes.status_changed("failed", "done")
    changes.status_changed("done", "done")
    assert changes.update() == {
        "$inc": {
            "facts": 2,
            "companies.cA%2EB": 1,
            "companies.cOld": -1,
            "companies.cNew": 1,
            "reports.done": 2,
            "reports.failed": -1,
        }
    }
    assert Changes().update() is None


def test_counts_read_back_leave_out_empty_companies_and_keep_every_known_status() -> None:
    from adapters.mongo.counts import (
        company_counts_of,
        facts_of,
        report_counts_of,
        summary_document,
    )

    doc = summary_document(3, {"A.B": 2, "C": 1, "Gone": 0}, {"done": 2, "dead": 1})
    doc["companies"]["cDrift"] = -1
    assert company_counts_of(doc) == {"A.B": 2, "C": 1}
    assert facts_of(doc) == 3
    assert report_counts_of(doc, ["queued", "done", "dead"]) == {
        "queued": 0,
        "done": 2,
        "dead": 1,
        "received": 3,
    }


def test_a_company_in_list_becomes_one_equality_query_each() -> None:
    from adapters.mongo.queries import split_in

    query = {"company": {"$in": ["A", "a", "A"]}, "metric": "revenue"}
    assert split_in(query, "company") == [
        {"company": "A", "metric": "revenue"},
        {"company": "a", "metric": "revenue"},
    ]
    assert split_in({"company": {"$in": []}}, "company") == []
    assert split_in({"metric": "revenue"}, "company") == [{"metric": "revenue"}]


def test_merged_answers_sort_like_mongodb_nulls_then_numbers_then_strings() -> None:
    from adapters.mongo.queries import sort_key

    assert sorted(["b", None, 2, "A", 1.5], key=sort_key) == [None, 1.5, 2, "A", "b"]
