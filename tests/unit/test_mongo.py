"""The store's pure parts: the facts query and the write concern (no network)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from adapters.mongo import write_concern_of
from adapters.mongo_queries import facts_query, unassigned_query


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
