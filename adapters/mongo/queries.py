"""The filters of the MongoDB reads, built as plain documents (pure; no client here).

``adapters.mongo.reports`` runs them. They keep to what MongoDB and FerretDB v1 both answer
correctly: equality, ranges, ``$in`` and anchored case-insensitive ``$regex``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any


def facts_query(
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    company: str | None = None,
    companies: Sequence[str] | None = None,
    without_extractors: Sequence[str] = (),
) -> dict[str, Any]:
    """The ``financial_data`` filter: ``since``/``until`` bound ``extracted_at`` (a date means the
    whole UTC day, both ends included; a datetime is used as is); ``companies`` are company names
    exactly as stored (every written form of one company); without them, ``company`` matches
    exactly, ignoring case. Facts whose ``extractor`` is one of ``without_extractors`` are left
    out."""
    query: dict[str, Any] = {}
    if without_extractors:
        query["extractor"] = {"$nin": list(without_extractors)}
    bounds = _time_bounds(since, until)
    if bounds:
        query["extracted_at"] = bounds
    if companies is not None:
        query["company"] = {"$in": list(companies)}
    elif company:
        query["company"] = {"$regex": f"^{re.escape(company)}$", "$options": "i"}
    return query


def _time_bounds(since: date | datetime | None, until: date | datetime | None) -> dict[str, Any]:
    """A time field's range: a date means the whole UTC day, both ends included; a datetime is
    used as is."""
    bounds: dict[str, datetime] = {}
    if since is not None:
        bounds["$gte"] = _aware(since) if isinstance(since, datetime) else _day_start(since)
    if until is not None:
        if isinstance(until, datetime):
            bounds["$lte"] = _aware(until)
        else:
            bounds["$lt"] = _day_start(until + timedelta(days=1))
    return bounds


def unassigned_query(
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    report_ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The ``reports`` filter for reports with amounts the rules left unassigned: processed
    (``updated_at``) between ``since`` and ``until`` as ``facts_query`` bounds facts, and one of
    ``report_ids`` when given."""
    query: dict[str, Any] = {"unassigned_amounts": {"$gt": 0}}
    bounds = _time_bounds(since, until)
    if bounds:
        query["updated_at"] = bounds
    if report_ids is not None:
        query["_id"] = {"$in": list(report_ids)}
    return query


def _as_written(text: str) -> dict[str, str]:
    """Matches ``text`` ignoring case and how much whitespace separates or surrounds its words."""
    words = [re.escape(w) for w in text.split()]
    return {"$regex": r"^\s*" + r"\s+".join(words) + r"\s*$", "$options": "i"}


def fact_filter(
    *,
    report_id: str | None = None,
    companies: Sequence[str] | None = None,
    metric: str | None = None,
    period: str | None = None,
) -> dict[str, Any]:
    """The ``finpipe facts`` filter: one report; any of ``companies`` (names exactly as stored);
    a ``metric`` and a ``period`` label as written, ignoring case and spacing."""
    query: dict[str, Any] = {}
    if report_id:
        query["report_id"] = report_id
    if companies is not None:
        query["company"] = {"$in": list(companies)}
    if metric and metric.strip():
        query["metric"] = _as_written(metric)
    if period and period.strip():
        query["quarter"] = _as_written(period)
    return query


def _day_start(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def split_in(query: dict[str, Any], field: str) -> list[dict[str, Any]]:
    """``query`` as one query per value of a ``{"$in": [...]}`` on ``field`` (none for an empty
    list); a query without one is returned alone."""
    cond = query.get(field)
    if not (isinstance(cond, dict) and set(cond) == {"$in"}):
        return [query]
    return [{**query, field: value} for value in dict.fromkeys(cond["$in"])]


def sort_key(value: Any) -> tuple[int, Any]:
    """A field's place in an ascending sort, like MongoDB's for the values facts hold: missing
    and null first, then numbers, then strings (compared by code point, as UTF-8 bytes are)."""
    if value is None:
        return (0, 0)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (1, value)
    return (2, str(value))
