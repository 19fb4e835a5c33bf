"""Single-operation latencies of a MongoDB-compatible server on a collection of N fact-sized
documents: what one report costs the database as the collection grows.

    python bench/storage.py                                   # FINPIPE_MONGO_URI or 127.0.0.1:27017
    python bench/storage.py --uri mongodb://127.0.0.1:27018 --docs 20000

Prints one Markdown row per operation (median of the repeats); the database it uses is dropped.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import pymongo


def fact(i: int) -> dict[str, Any]:
    return {
        "_id": f"{i:08d}-{uuid.uuid4().hex}",
        "report_id": uuid.uuid4().hex * 2,
        "company": f"Company {i % 997}",
        "metric": "revenue",
        "value": 1_250_000 + i,
        "currency": "USD",
        "quarter": f"Q{i % 4 + 1} 2024",
        "value_text": f"${i % 100 + 1}.25 million",
        "snippet": f"Company {i % 997} reported revenue of ${i % 100 + 1}.25 million for Q2 2024.",
        "k": i,
    }


def median_ms(op: Callable[[int], object], repeats: int) -> float:
    times = []
    for n in range(repeats):
        started = time.perf_counter()
        op(n)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--uri", default=os.environ.get("FINPIPE_MONGO_URI", "mongodb://127.0.0.1:27017")
    )
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()

    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(args.uri)
    name = f"storage_bench_{uuid.uuid4().hex[:8]}"
    coll = client[name]["facts"]
    try:
        coll.create_index("k", name="k")
        docs = [fact(i) for i in range(args.docs)]
        started = time.perf_counter()
        coll.insert_many(docs, ordered=False)
        insert_s = time.perf_counter() - started
        ids = [d["_id"] for d in random.sample(docs, args.repeats)]
        ks = random.sample(range(args.docs), args.repeats)
        by_id = median_ms(lambda n: coll.find_one({"_id": ids[n]}), args.repeats)
        upsert = median_ms(
            lambda n: coll.update_one({"_id": ids[n]}, {"$set": {"value": n}}, upsert=True),
            args.repeats,
        )
        by_field = median_ms(lambda n: coll.find_one({"k": ks[n]}), args.repeats)
        batch = [d["_id"] for d in random.sample(docs, 20)]
        by_in = median_ms(lambda n: list(coll.find({"_id": {"$in": batch}})), 5)
        one_by_one = median_ms(lambda n: [coll.find_one({"_id": i}) for i in batch], 5)
        rows = [
            (f"`insert_many` of {args.docs:,} documents", f"{insert_s:.1f} s"),
            (f"`find_one({{_id}})` on {args.docs:,}", f"{by_id:.1f} ms"),
            (f"`update_one({{_id}}, $set, upsert=True)` on {args.docs:,}", f"{upsert:.1f} ms"),
            (f"`find_one` on an indexed non-`_id` field, {args.docs:,}", f"{by_field:.1f} ms"),
            (f"`find({{_id: {{$in: 20 ids}}}})` on {args.docs:,} (median of 5)", f"{by_in:.1f} ms"),
            (f"20 x `find_one({{_id}})` on {args.docs:,} (median of 5)", f"{one_by_one:.1f} ms"),
        ]
        print(f"| {args.uri} | median of {args.repeats} |\n|---|---|")
        for what, figure in rows:
            print(f"| {what} | {figure} |")
    finally:
        client.drop_database(name)
        client.close()


if __name__ == "__main__":
    main()
