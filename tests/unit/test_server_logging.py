"""waitress's per-request queue warnings, thinned to one line every so often."""

from __future__ import annotations

import logging

from ingest.server import EverySoOften


def record(n: int) -> logging.LogRecord:
    return logging.LogRecord(
        "waitress.queue", logging.WARNING, "", 0, "Task queue depth is %d", (n,), None
    )


def test_one_line_passes_every_interval_and_the_next_counts_those_held_back() -> None:
    now = [100.0]
    thin = EverySoOften(10.0, clock=lambda: now[0])
    passed = []
    for t, depth in [(100.0, 1), (101.0, 2), (105.0, 3), (109.9, 4), (110.0, 5), (125.0, 6)]:
        now[0] = t
        rec = record(depth)
        if thin.filter(rec):
            passed.append(rec.getMessage())
    assert passed == [
        "Task queue depth is 1",
        "Task queue depth is 5 (3 more like it in the last 10 s)",
        "Task queue depth is 6",
    ]
