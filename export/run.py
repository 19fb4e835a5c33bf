"""One export run: read the facts, build the tables and charts, write the dated folder, record the
run. ``export_after_drain`` is the scheduled export; the store and the queue depth are given."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from adapters.mongo import LAST_EXPORT
from export import charts as charts_mod
from export import tables
from export.cells import iso_utc
from export.source import FactReader, read_facts
from export.writer import check_writable, write_export, writing_into
from schemas.errors import BrokerUnavailable
from schemas.settings import Settings

log = logging.getLogger(__name__)


class Depth(Protocol):
    """A queue's depth as ``adapters.rabbitmq.QueueDepth`` gives it."""

    @property
    def name(self) -> str: ...

    @property
    def messages(self) -> int: ...


def run_export(
    settings: Settings,
    store: FactReader,
    *,
    out: Path | str | None = None,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    company: str | None = None,
    queue_drained: bool | None = None,
    now: datetime | None = None,
) -> Path:
    """Read the matching facts, write ``<out or FINPIPE_EXPORT_DIR>/YYYY-MM-DD/`` (the day in
    ``FINPIPE_TIMEZONE``), point ``latest`` at it, record ``runs/last_export``; return the folder.
    ``queue_drained`` is what the caller knows about the work queue (``None``: not checked).
    Raises ``StoreUnavailable`` when MongoDB cannot be read, ``OutputNotWritable`` when the
    folder cannot be written (checked first)."""
    now = now or datetime.now(UTC)
    root = Path(out) if out is not None else settings.export_dir
    check_writable(root)
    day = now.astimezone(ZoneInfo(settings.timezone)).date()
    raw = read_facts(store, since=since, until=until, company=company)
    frames = tables.build_frames(raw)
    charts = charts_mod.chart_specs(frames.facts)
    report: dict[str, Any] = {
        "export_date": day.isoformat(),
        "generated_at": iso_utc(now),
        "filters": {"since": _iso(since), "until": _iso(until), "company": company},
        "queue_drained": queue_drained,
        "covers": tables.coverage(frames.facts),
        "pipeline": store.pipeline_counts(),
    }
    with writing_into(root):
        folder = write_export(root, day, frames, charts, report)
    n = len(frames.facts)
    if n == 0:
        log.warning(
            "export: no facts matched (since=%s, until=%s, company=%s); wrote headers-only "
            "files to %s",
            _iso(since),
            _iso(until),
            company,
            folder,
        )
    else:
        log.info(
            "export: %d fact(s), %d summary row(s), %d change(s), %d chart(s) written to %s",
            n,
            len(frames.summary),
            len(frames.pop),
            len(charts),
            folder,
        )
    store.record_run(
        LAST_EXPORT,
        now,
        path=str(folder),
        facts=n,
        charts=len(charts),
        queue_drained=queue_drained,
        filters=report["filters"],
    )
    return folder


def wait_for_drain(
    depth: Callable[[], Depth],
    timeout_s: float,
    *,
    poll_s: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Poll the work queue until it holds no ready message (True) or ``timeout_s`` passes (False).
    A queue that does not exist holds nothing. Broker errors are logged and polling goes on.
    Messages a worker holds unacknowledged are not counted by the broker's passive declare."""
    deadline = clock() + timeout_s
    name = "the work queue"
    while True:
        try:
            work = depth()
        except BrokerUnavailable as exc:
            log.warning("drain check: %s", exc)
        else:
            name = work.name
            if work.messages == 0:
                log.info("drain check: queue %s is empty", work.name)
                return True
            log.info("drain check: queue %s holds %d message(s)", work.name, work.messages)
        remaining = deadline - clock()
        if remaining <= 0:
            log.warning("drain check: queue %s not drained after %.0f s", name, timeout_s)
            return False
        sleep(min(poll_s, remaining))


def export_after_drain(settings: Settings, store: FactReader, depth: Callable[[], Depth]) -> str:
    """The scheduled export: wait up to ``FINPIPE_EXPORT_WAIT_S`` for the work queue to drain,
    then export everything; the run report says whether the queue was drained."""
    drained = wait_for_drain(depth, settings.export_wait_s)
    folder = run_export(settings, store, queue_drained=drained)
    return f"export written to {folder} (queue drained: {'yes' if drained else 'no'})"


def _iso(d: date | datetime | None) -> str | None:
    if d is None:
        return None
    if isinstance(d, datetime):
        return iso_utc(d)
    return d.isoformat()
