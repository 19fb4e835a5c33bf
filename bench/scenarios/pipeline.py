"""Scenario 2: the whole worker path (RabbitMQ -> model server answering at once -> MongoDB) with
one worker, then two, against bare pymongo unordered bulk upserts of all the run's fact documents
into the same server (the ceiling; bare unordered inserts of them are printed too). The time per
1,000 reports in the first and the last quarter of the run says whether the cost per report grows
with the database.

Scenario 2b (``pipeline-rules``): 100,000 reports through one worker with the offline rules
extractor, its reports per second and the same first/last quarter comparison."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pymongo import UpdateOne

from adapters.mongo import MongoStore
from bench.common import (
    FACTS,
    Quarters,
    Row,
    bench_settings,
    cleaned,
    count_facts,
    fake_model,
    messages_for,
    model_settings,
    mongo,
    preload,
    report_texts,
    say,
    stored_reports,
    wait_for_count,
    worker,
)
from schemas.settings import Settings
from worker.extract import RulesExtractor
from worker.records import fact_document

NAME = "pipeline"
BULK = 1000


def fact_documents(texts: list[str]) -> list[dict[str, Any]]:
    """The documents the worker stores for these reports (the rules read what the model echoes)."""
    messages = messages_for(texts)
    extraction = RulesExtractor().extract(messages)
    now = datetime.now(UTC)
    return [fact_document(m, f, now) for m in messages for f in extraction[m.report_id].facts]


def _timed_batches(
    settings: Settings,
    docs: list[dict[str, Any]],
    write: Callable[[Any, list[dict[str, Any]]], Any],
) -> float:
    """Seconds for ``write(collection, batch)`` over ``docs`` in batches of 1,000, on a fresh
    ``financial_data`` with the worker's indexes."""
    store = MongoStore(settings.mongo_uri, settings.mongo_db, write_concern=settings.write_concern)
    store.ensure_indexes()
    store.close()
    with mongo(settings) as client:
        coll = client[settings.mongo_db][FACTS]
        started = time.perf_counter()
        for i in range(0, len(docs), BULK):
            write(coll, docs[i : i + BULK])
        return time.perf_counter() - started


def _upsert(coll: Any, batch: list[dict[str, Any]]) -> None:
    coll.bulk_write(
        [
            UpdateOne(
                {"_id": d["_id"]},
                {
                    "$set": {k: v for k, v in d.items() if k != "_id"},
                    "$setOnInsert": {"first_stored_at": d["extracted_at"]},
                },
                upsert=True,
            )
            for d in batch
        ],
        ordered=False,
    )


def bare_upserts(settings: Settings, docs: list[dict[str, Any]]) -> float:
    """Seconds for unordered bulk upserts of ``docs`` (the ceiling the target is set against)."""
    return _timed_batches(settings, docs, _upsert)


def bare_inserts(settings: Settings, docs: list[dict[str, Any]]) -> float:
    """Seconds for unordered bulk inserts of ``docs`` (what the store does for new facts)."""
    return _timed_batches(
        settings, docs, lambda coll, batch: coll.insert_many(batch, ordered=False)
    )


def run_workers(
    settings: Settings, texts: list[str], workers: int, label: str
) -> tuple[float, Quarters]:
    """Reports per second for ``workers`` worker processes draining a preloaded queue, from the
    moment every worker consumes until the last fact is stored; and when each quarter was."""
    with cleaned(settings):
        preload(settings, texts)
        procs = [worker(f"{label}-{i}", settings, "--burst") for i in range(workers)]
        try:
            started = max(p.wait_for_log(r"consuming ", timeout_s=600) for p in procs)
            count = stored_reports(procs)
            quarters = Quarters(len(texts), started)
            done = wait_for_count(
                count,
                len(texts),
                timeout_s=7200,
                procs=procs,
                poll_s=0.1,
                on_progress=quarters,
            )
        finally:
            for p in procs:
                p.stop()
        stored = count_facts(settings)
        if stored != len(texts):
            raise RuntimeError(f"{stored} facts stored for {len(texts)} reports")
    return len(texts) / (done - started), quarters


def quarter_row(scenario: str, params: str, quarters: Quarters) -> Row:
    first, last = quarters.per_thousand_s(1), quarters.per_thousand_s(4)
    return Row(
        scenario,
        params,
        "s per 1,000 reports, last quarter",
        last,
        "s",
        first,
        "first quarter",
        "≤ 1.5x first quarter",
        last <= 1.5 * first,
        note=f"quarters 1-4: {quarters.summary()} s per 1,000",
        ratio_unit="x",
    )


def run(quick: bool) -> list[Row]:
    n = 2_000 if quick else 20_000
    texts = report_texts(n, salt=NAME)
    with fake_model() as server:
        settings = model_settings(NAME, server)
        ceiling_settings = settings.model_copy(update={"mongo_db": f"bench_{NAME}_ceiling"})
        docs = fact_documents(texts)
        with cleaned(ceiling_settings):
            ceiling = len(docs) / bare_upserts(ceiling_settings, docs)
        say(f"  pipeline ceiling: {ceiling:,.0f} facts/s ({len(docs):,} facts, bulk upserts)")
        with cleaned(ceiling_settings):
            inserts = len(docs) / bare_inserts(ceiling_settings, docs)
        say(f"  bare inserts: {inserts:,.0f} facts/s ({len(docs):,} facts)")
        one, quarters = run_workers(settings, texts, 1, "pipeline-1")
        say(
            f"  pipeline, one worker: {one:,.0f} reports/s ({server.calls} model calls); "
            f"s per 1,000 reports by quarter: {quarters.summary()}"
        )
        two, quarters2 = run_workers(settings, texts, 2, "pipeline-2")
        say(f"  pipeline, two workers: {two:,.0f} reports/s; by quarter: {quarters2.summary()}")
    params = f"{n:,} reports (1 fact each), instant model, default batch settings"
    ceiling_label = f"bare pymongo unordered bulk upserts of all {len(docs):,} facts"
    return [
        Row(
            "2 pipeline",
            params + ", 1 worker",
            "facts/s",
            one,
            "facts/s",
            ceiling,
            ceiling_label,
            "≥ 50% of ceiling",
            one / ceiling >= 0.50,
        ),
        Row(
            "2 pipeline",
            params + ", 1 worker",
            "facts/s",
            one,
            "facts/s",
            inserts,
            f"bare pymongo unordered inserts of all {len(docs):,} facts",
            "-",
            None,
        ),
        quarter_row("2 pipeline", params + ", 1 worker", quarters),
        Row(
            "2 pipeline",
            params + ", 2 workers",
            "facts/s",
            two,
            "facts/s",
            ceiling,
            ceiling_label,
            "-",
            None,
            note=f"{two / one:.2f}x one worker on 2 cores shared with both servers",
        ),
        quarter_row("2 pipeline", params + ", 2 workers", quarters2),
    ]


def run_rules(quick: bool) -> list[Row]:
    """Scenario 2b: one worker, the rules extractor, 100,000 reports (10,000 with ``quick``)."""
    n = 10_000 if quick else 100_000
    settings = bench_settings(f"{NAME}_rules", provider="rules")
    rate, quarters = run_workers(settings, report_texts(n, salt="rules"), 1, "pipeline-rules")
    say(f"  pipeline, rules: {rate:,.0f} reports/s; s per 1,000 by quarter: {quarters.summary()}")
    params = f"{n:,} reports (1 fact each), rules extractor, 1 worker"
    return [
        Row("2b pipeline, rules", params, "reports/s", rate, "reports/s"),
        quarter_row("2b pipeline, rules", params, quarters),
    ]
