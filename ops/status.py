"""The operator's view: services reachable, queue depth and consumers, dead letters, reports by
status, facts stored, model usage, last sweep and last export. ``format_status`` is pure; the
reads are the adapters' (``Broker.queue_depths``, ``MongoStore``), given by the caller.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.mongo import LAST_EXPORT, LAST_SWEEP, REPORT_STATUSES, MongoStore
from adapters.rabbitmq import Broker
from export.cells import iso_utc
from schemas.errors import ConfigError, FinpipeError
from schemas.settings import Settings, redact_url

log = logging.getLogger(__name__)


def _when(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    shown = {k: v for k, v in doc.items() if k != "report_ids"}  # the export's, too many to show
    return {k: (iso_utc(v) if isinstance(v, datetime) else v) for k, v in shown.items()}


def _one_line(exc: BaseException) -> str:
    """The error as one line: ours say what failed; a library's gets its class name too."""
    lines = str(exc).strip().splitlines()
    text = lines[0][:300] if lines else ""
    if isinstance(exc, FinpipeError):
        return text or type(exc).__name__
    log.debug("status check failed", exc_info=exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def gather_status(
    settings: Settings,
    broker: Broker,
    store: MongoStore,
    *,
    now: datetime | None = None,
    recount: bool = False,
) -> dict[str, Any]:
    """Everything ``finpipe status`` shows, as JSON-ready data. Never raises for an unreachable
    service: it is reported as such."""
    now = now or datetime.now(UTC)
    status: dict[str, Any] = {
        "checked_at": iso_utc(now),
        "services": {},
        "queue": None,
        "dead_letters": None,
        "reports": None,
        "facts_stored": None,
        "model": None,
        "last_sweep": None,
        "last_export": None,
        "batch_jobs": None,
        "missed": None,
    }
    try:
        work, dead = broker.queue_depths()
    except Exception as exc:  # whatever the client raises, the service is not usable
        status["services"]["rabbitmq"] = {
            "reachable": False,
            "url": redact_url(settings.amqp_url),
            "error": _one_line(exc),
        }
    else:
        status["services"]["rabbitmq"] = {
            "reachable": True,
            "url": redact_url(settings.amqp_url),
            "error": None,
        }
        status["queue"] = asdict(work)
        status["dead_letters"] = asdict(dead)

    try:
        store.ping()
        if recount:
            store.running_counts().recount()
        status.update(store.running_counts().status_counts(REPORT_STATUSES))
        status["model"] = store.usage_totals()
        status["last_sweep"] = _when(store.last_run(LAST_SWEEP))
        status["last_export"] = _when(store.last_run(LAST_EXPORT))
        status["missed"] = missed_runs(settings, store, now)
        status["batch_jobs"] = [open_job(d) for d in store.find_jobs(open_only=True)]
    except Exception as exc:  # any failure here means the database is not usable
        status["services"]["mongodb"] = {
            "reachable": False,
            "url": redact_url(settings.mongo_uri),
            "database": settings.mongo_db,
            "error": _one_line(exc),
        }
    else:
        status["services"]["mongodb"] = {
            "reachable": True,
            "url": redact_url(settings.mongo_uri),
            "database": settings.mongo_db,
            "error": None,
        }
    return status


#: a run still this close to its fire time may be under way (a sweep records itself at its end)
RUNNING_GRACE = timedelta(hours=1)


def missed_runs(settings: Settings, store: MongoStore, now: datetime) -> dict[str, str]:
    """The nightly runs due since their last run that did not happen (the scheduler was not
    running): ``{"sweep" or "export": fire time}``. Runs due within ``RUNNING_GRACE`` (and the
    export's ``FINPIPE_EXPORT_WAIT_S``) may still be under way and are not counted."""
    from ingest.scheduler import missed_fire

    runs = (
        ("sweep", LAST_SWEEP, settings.sweep_cron, RUNNING_GRACE),
        ("export", LAST_EXPORT, settings.export_cron, RUNNING_GRACE + _s(settings.export_wait_s)),
    )
    missed = {}
    for name, record, cron, grace in runs:
        last = (store.last_run(record) or {}).get("at")
        try:
            due = missed_fire(cron, settings.timezone, last, now - grace)
        except ConfigError:  # a bad cron expression: the scheduler refuses to start
            continue
        if due is not None:
            missed[name] = iso_utc(due)
    return missed


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def open_job(doc: dict[str, Any]) -> dict[str, Any]:
    """An open batch job as ``finpipe status`` shows it (from its stored document)."""
    parts = [
        {
            "part": p.get("index"),
            "state": p.get("state"),
            "batch_id": p.get("batch_id"),
            "remote_status": p.get("remote_status"),
            "requests": p.get("requests"),
            "completed": (p.get("counts") or {}).get("completed", 0),
        }
        for p in doc.get("parts", [])
    ]
    created = doc.get("created_at")
    return {
        "job_id": doc.get("job_id"),
        "state": doc.get("state"),
        "requests": sum(int(p["requests"] or 0) for p in parts),
        "created_at": iso_utc(datetime.fromtimestamp(created, UTC)) if created else None,
        "parts": parts,
    }


def healthy(status: dict[str, Any]) -> bool:
    return all(s.get("reachable") for s in status["services"].values())


def format_status(status: dict[str, Any]) -> str:
    """A short report for a person at a terminal."""
    lines = [f"finpipe status at {status['checked_at']}"]
    for name, svc in status["services"].items():
        state = "reachable" if svc["reachable"] else f"UNREACHABLE ({svc['error']})"
        lines.append(f"  {name:<13} {svc['url']}  {state}")
    q, d = status["queue"], status["dead_letters"]
    if q is not None:
        if q["exists"]:
            waiting = f"{q['messages']} waiting, {q['consumers']} consumer(s)"
            lines.append(f"  queue         {q['name']}: {waiting}")
        else:
            lines.append(f"  queue         {q['name']}: not declared yet")
    if d is not None:
        shown = f"{d['messages']} message(s)" if d["exists"] else "not declared yet"
        lines.append(f"  dead letters  {d['name']}: {shown}")
    r = status["reports"]
    if r is not None:
        by = ", ".join(f"{k} {v}" for k, v in r.items() if k != "received")
        lines.append(f"  reports       {r['received']} received: {by}")
    if status["facts_stored"] is not None:
        lines.append(f"  facts stored  {status['facts_stored']}")
    m = status.get("model")
    if m is not None:
        cost = m["estimated_cost_usd"]
        if m["model_calls"] == 0:
            shown_cost = "$0"
        else:
            shown_cost = "unknown" if cost is None else f"${cost:.4f}"
        lines.append(
            f"  model calls   {m['model_calls']} ({m['prompt_tokens']} prompt + "
            f"{m['completion_tokens']} completion tokens, {m['cached_tokens']} cached), "
            f"{m['cache_hits']} cache hit(s), estimated cost {shown_cost}"
        )
    for key, label in (("last_sweep", "last sweep"), ("last_export", "last export")):
        run = status[key]
        if run is None:
            shown = "never" if status["reports"] is not None else "unknown"
        else:
            extra = run.get("path") or run.get("files") or ""
            shown = f"{run.get('at', '?')} {extra}".rstrip()
        lines.append(f"  {label:<13} {shown}")
    for name, due in (status.get("missed") or {}).items():
        lines.append(
            f"  missed        the {name} due at {due} did not run (was the scheduler down?)"
        )
    jobs = status.get("batch_jobs")
    if jobs:
        lines.append(f"  batch jobs    {len(jobs)} open (finpipe batch show ID)")
        for job in jobs:
            parts = ", ".join(
                f"part {p['part']}: {p['remote_status'] or p['state']} "
                f"{p['completed']}/{p['requests']}"
                for p in job["parts"]
            )
            lines.append(f"    {job['job_id']} {job['state']} since {job['created_at']}: {parts}")
    elif jobs is not None:
        lines.append("  batch jobs    none open")
    return "\n".join(lines) + "\n"
