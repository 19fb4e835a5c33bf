"""Operator commands on a big store: ``finpipe status``, ``finpipe companies`` and ``finpipe facts
--company X --limit 1`` against 100,000 facts of 1,000 companies, each timed in the bench's own
process and as a process of its own (``python -m finpipe``, as an operator runs it: Python's
start-up and imports included), both against a 2 s target. A process is run ``RUNS`` times and
its median counts (the machine is shared); ``finpipe --help`` is timed the same way, the start-up
every command pays.

The facts are written through the store the worker uses (``MongoStore.save_results``, 5,000
reports a call), into a store whose running counts exist from the start, as a worker's store has
them. The time of one full count of the same collections is measured beside them: what the
commands took before they read the running counts.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

from adapters.mongo import MongoStore
from bench.common import ROOT, Row, bench_settings, cleaned, company_name, process_env, say
from schemas.settings import Settings

NAME = "operator"
TARGET_S = 2.0
COMPANIES = 1000
CHUNK = 5000
#: runs of each command as a process; the median is reported
RUNS = 3


def fact_docs(n: int, now: datetime) -> dict[str, list[dict[str, Any]]]:
    """``n`` reports of one fact each, shaped like the worker's documents."""
    out: dict[str, list[dict[str, Any]]] = {}
    for i in range(n):
        report_id = f"{i:064x}"
        company = company_name(i % COMPANIES)
        out[report_id] = [
            {
                "_id": f"{report_id[-24:]}-revenue",
                "report_id": report_id,
                "company": company,
                "metric": "revenue",
                "value": 1_000_000 + i,
                "currency": "USD",
                "unit": "currency",
                "quarter": f"Q{i % 4 + 1} {2020 + (i // 4) % 6}",
                "value_text": f"${i % 900 + 10}.5 million",
                "extractor": "rules",
                "extracted_at": now,
            }
        ]
    return out


def seed(settings: Settings, n: int) -> float:
    """Write ``n`` facts through the store; returns the seconds it took."""
    store = MongoStore.from_settings(settings, timeout_ms=30_000)
    try:
        store.ensure_indexes()
        store.running_counts().document()
        now = datetime.now(UTC)
        docs = fact_docs(n, now)
        ids = list(docs)
        started = time.perf_counter()
        for start in range(0, n, CHUNK):
            part = {rid: docs[rid] for rid in ids[start : start + CHUNK]}
            store.save_results(part, {}, now)
        return time.perf_counter() - started
    finally:
        store.close()


def timed_command(settings: Settings, *args: str) -> tuple[float, str]:
    """Seconds for ``finpipe ARGS`` run in this process (the interpreter and imports are
    already loaded: what the command itself takes); fails when the command fails."""
    from click.testing import CliRunner

    from finpipe.cli import cli

    started = time.perf_counter()
    result = CliRunner().invoke(cli, list(args), env=process_env(settings))
    seconds = time.perf_counter() - started
    if result.exit_code not in (0, 1):  # status exits 1 when a service is unreachable
        raise RuntimeError(f"finpipe {' '.join(args)} failed: {result.output[-500:]}")
    return seconds, result.stdout


def process_s(settings: Settings, *args: str) -> tuple[float, float]:
    """Seconds for ``finpipe ARGS`` as a process of its own, start-up included: the median and
    the slowest of ``RUNS`` runs; fails when the command fails."""
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "finpipe", *args],
            env=process_env(settings),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        times.append(time.perf_counter() - started)
        if done.returncode not in (0, 1):  # status exits 1 when a service is unreachable
            raise RuntimeError(f"finpipe {' '.join(args)} failed: {done.stderr[-500:]}")
    return statistics.median(times), max(times)


def full_count_s(settings: Settings) -> float:
    """Seconds for the exact counts of the old commands: facts per company, reports by
    status, facts in all."""
    store = MongoStore.from_settings(settings, timeout_ms=120_000)
    try:
        started = time.perf_counter()
        store.company_counts()
        store.report_counts()
        store.count_facts()
        return time.perf_counter() - started
    finally:
        store.close()


def run(quick: bool) -> list[Row]:
    n = 10_000 if quick else 100_000
    settings = bench_settings(NAME)
    params = f"{n:,} facts of {COMPANIES:,} companies"
    rows: list[Row] = []
    with cleaned(settings):
        say(f"  operator: writing {n:,} facts through the store")
        seed_s = seed(settings, n)
        say(f"  operator: written in {seed_s:.0f} s")
        company = company_name(7)
        commands = {
            "finpipe status": ("status", "--json"),
            "finpipe companies": ("companies", "--json"),
            f"finpipe facts --company '{company}' --limit 1": ("facts", "--company", company),
        }
        startup, startup_max = process_s(settings, "--help")
        say(f"  operator: finpipe --help as a process: {startup:.2f} s")
        for label, args in commands.items():
            if args[0] == "facts":
                args = (*args, "--limit", "1")
            seconds, out = timed_command(settings, *args)
            whole, slowest = process_s(settings, *args)
            say(f"  operator: {label}: {seconds:.2f} s ({whole:.2f} s as a process)")
            if args[0] == "facts" and company not in out:
                raise RuntimeError(f"{label} found no fact: {out[:200]}")
            rows.append(_target_row(params, f"`{label}`", seconds, "in the bench's process"))
            rows.append(
                _target_row(
                    params,
                    f"`{label}` as a process",
                    whole,
                    f"median of {RUNS}, slowest {slowest:.2f} s; "
                    f"`finpipe --help`: {startup:.2f} s (slowest {startup_max:.2f} s)",
                )
            )
        exact = full_count_s(settings)
        say(f"  operator: one full count of the collections: {exact:.1f} s")
        rows.append(
            Row(
                "operator commands",
                params,
                "full count (what status and companies read before)",
                exact,
                "s",
                note="company $group + report $group + count_documents",
            )
        )
    return rows


def _target_row(params: str, metric: str, seconds: float, note: str) -> Row:
    return Row(
        "operator commands",
        params,
        metric,
        seconds,
        "s",
        TARGET_S,
        "target",
        f"< {TARGET_S:.0f} s",
        seconds < TARGET_S,
        note=note,
    )
