"""Read what the exporter and ``finpipe status`` need from MongoDB.

Filters and projection go into the query, not into Python. Only operations that MongoDB and
MongoDB-compatible servers without transactions (FerretDB v1) both answer correctly are used:
``find`` with projections, ``count_documents`` and ``$group`` with ``{"$sum": 1}``; sums of fields
are added up here because FerretDB v1 returns 0 for ``{"$sum": "$field"}``.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
import pymongo
import pymongo.errors
from pymongo.write_concern import WriteConcern

from schemas.errors import StoreUnavailable
from schemas.settings import Settings
from worker.export import STORED_FIELDS

log = logging.getLogger(__name__)

FACTS = "financial_data"
REPORTS = "reports"
USAGE = "llm_usage"
COUNTERS = "counters"
RUNS = "runs"

REPORT_STATUSES = ("queued", "processing", "done", "failed", "dead")


def connect(settings: Settings, *, timeout_ms: int = 5000) -> pymongo.MongoClient[dict[str, Any]]:
    """A client that connects lazily; callers close it."""
    return pymongo.MongoClient(
        settings.mongo_uri,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=max(30_000, timeout_ms),
        tz_aware=True,
    )


def database(client: pymongo.MongoClient[dict[str, Any]], settings: Settings) -> Any:
    wc: str | int = (
        int(settings.write_concern)
        if settings.write_concern.isdigit()
        else (settings.write_concern)
    )
    return client.get_database(settings.mongo_db, write_concern=WriteConcern(w=wc))


def _fail(db: Any, what: str, exc: Exception) -> StoreUnavailable:
    return StoreUnavailable(f"MongoDB {what} failed on database {db.name!r}: {exc}")


def _day_start(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


def facts_query(
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    company: str | None = None,
) -> dict[str, Any]:
    """The ``financial_data`` filter: ``since``/``until`` bound ``extracted_at`` (a date means the
    whole UTC day, both ends included; a datetime is used as is); ``company`` matches exactly,
    ignoring case."""
    query: dict[str, Any] = {}
    bounds: dict[str, datetime] = {}
    if since is not None:
        bounds["$gte"] = _aware(since) if isinstance(since, datetime) else _day_start(since)
    if until is not None:
        if isinstance(until, datetime):
            bounds["$lte"] = _aware(until)
        else:
            bounds["$lt"] = _day_start(until + timedelta(days=1))
    if bounds:
        query["extracted_at"] = bounds
    if company:
        query["company"] = {"$regex": f"^{re.escape(company)}$", "$options": "i"}
    return query


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def read_facts(
    db: Any,
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    company: str | None = None,
) -> pd.DataFrame:
    """Matching facts as an object-dtype frame with the columns ``STORED_FIELDS``."""
    query = facts_query(since=since, until=until, company=company)
    projection = {f: 1 for f in STORED_FIELDS}
    try:
        docs = list(db[FACTS].find(query, projection, batch_size=2000))
    except pymongo.errors.PyMongoError as exc:
        raise _fail(db, "fact query", exc) from exc
    log.debug("read %d fact(s) matching %s", len(docs), query)
    return pd.DataFrame(
        {f: pd.Series([d.get(f) for d in docs], dtype=object) for f in STORED_FIELDS},
        columns=list(STORED_FIELDS),
    )


def report_counts(db: Any) -> dict[str, int]:
    """Reports by status (every known status present, others as found) and ``received``."""
    try:
        groups = list(db[REPORTS].aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}]))
    except pymongo.errors.PyMongoError as exc:
        raise _fail(db, "report count", exc) from exc
    counts = {s: 0 for s in REPORT_STATUSES}
    for g in groups:
        counts[str(g["_id"])] = int(g["n"])
    counts["received"] = sum(counts.values())
    return counts


def facts_stored(db: Any) -> int:
    try:
        return int(db[FACTS].count_documents({}))
    except pymongo.errors.PyMongoError as exc:
        raise _fail(db, "fact count", exc) from exc


def usage_totals(db: Any) -> dict[str, Any]:
    """Model calls, tokens, cache hits and the estimated cost where known (calls without a cost
    are counted in ``calls_without_cost``). Missing collections count as zero."""
    fields = ("prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd")
    calls = 0
    tokens = {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0}
    cost = 0.0
    unknown_cost = 0
    try:
        for doc in db[USAGE].find({}, {f: 1 for f in fields}, batch_size=5000):
            calls += 1
            for k in tokens:
                v = doc.get(k)
                if isinstance(v, int | float) and not isinstance(v, bool):
                    tokens[k] += int(v)
            c = doc.get("cost_usd")
            if isinstance(c, int | float) and not isinstance(c, bool):
                cost += float(c)
            else:
                unknown_cost += 1
        counters = db[COUNTERS].find_one({"_id": "counters"}, {"cache_hits": 1}) or {}
    except pymongo.errors.PyMongoError as exc:
        raise _fail(db, "usage query", exc) from exc
    hits = counters.get("cache_hits")
    return {
        "model_calls": calls,
        **tokens,
        "cache_hits": int(hits) if isinstance(hits, int | float) else 0,
        "estimated_cost_usd": round(cost, 6) if calls == 0 or calls > unknown_cost else None,
        "calls_without_cost": unknown_cost,
    }


def pipeline_counts(db: Any) -> dict[str, Any]:
    """Everything ``run_report.json`` says about the pipeline as a whole."""
    return {
        "reports": report_counts(db),
        "facts_stored": facts_stored(db),
        **usage_totals(db),
    }


def last_run(db: Any, name: str) -> dict[str, Any] | None:
    """The ``runs`` document ``last_sweep`` or ``last_export`` without its ``_id``, or ``None``."""
    try:
        doc = db[RUNS].find_one({"_id": name})
    except pymongo.errors.PyMongoError as exc:
        raise _fail(db, "run lookup", exc) from exc
    if doc is None:
        return None
    doc.pop("_id", None)
    return dict(doc)


def record_export(db: Any, now: datetime, **fields: Any) -> None:
    """Remember the export just written as ``runs/last_export``."""
    try:
        db[RUNS].update_one({"_id": "last_export"}, {"$set": {"at": now, **fields}}, upsert=True)
    except pymongo.errors.PyMongoError as exc:
        raise _fail(db, "run record", exc) from exc
