"""What an operator's command loads when it starts: ``finpipe --help``, ``finpipe status``,
``finpipe companies`` and ``finpipe facts --company X`` run as a process of their own, and the
libraries they do not use (pandas and numpy above all, 0.3-0.6 s to import on a loaded machine)
are not imported (issue 28: the three commands answer within 2 s at 100,000 facts as processes).

Each case runs in a fresh interpreter: the real ``finpipe`` group and the commands' own code, with
the store and broker replaced by ones held in memory, then lists the heavy modules in
``sys.modules``. The timing itself is ``python bench/run.py --only operator``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: libraries no operator command here needs (the export, the model client, readers, the server)
HEAVY = ("pandas", "numpy", "matplotlib", "openai", "pypdf", "flask", "openpyxl", "watchdog")
#: what only the worker, the inbox and the scheduler use: ``companies`` and ``facts`` read MongoDB
#: alone (``status`` also asks RabbitMQ and the cron schedule)
NOT_FOR_READS = ("pika", "apscheduler", "prometheus_client")

PRELUDE = """
import json, sys
from collections import Counter
from datetime import UTC, datetime

from click.testing import CliRunner

from finpipe.cli import cli
from finpipe.context import Context

AT = datetime(2024, 10, 30, 6, 0, tzinfo=UTC)
DOCS = [
    {"_id": f"f{i}", "report_id": f"r{i}", "company": company, "metric": "revenue",
     "value": 1000 + i, "value_decimal": str(1000 + i), "currency": "USD", "unit": "currency",
     "quarter": "Q3 2024", "value_text": "$1,000", "extractor": "rules", "extracted_at": AT,
     "report_date": AT}
    for i, company in enumerate(["Acme Corp", "ACME CORP.", "Orion Outdoor Gear plc"])
]


class Unreachable(Exception):
    pass


class MemoryBroker:
    def queue_depths(self):
        raise Unreachable("no broker in this test")


class MemoryStore:
    def running_counts(self):
        return self

    def company_totals(self):
        return dict(Counter(d["company"] for d in DOCS))

    def status_counts(self, statuses):
        from adapters.mongo.counts import report_counts_of

        return {"reports": report_counts_of({}, statuses), "facts_stored": len(DOCS)}

    def facts(self, query, limit=0):
        names = query.get("company", {}).get("$in") or [query.get("company")]
        found = [d for d in DOCS if d["company"] in names]
        return found[:limit] if limit else found

    def ping(self):
        pass

    def usage_totals(self):
        from adapters.mongo.counts import usage_totals_of

        return usage_totals_of([], 0)

    def last_run(self, name):
        return {"at": AT}  # so that status works out the runs missed since

    def find_jobs(self, open_only=False, limit=50):
        return []

    def close(self):
        pass


Context.store = lambda self, **kwargs: MemoryStore()
Context.broker = lambda self: MemoryBroker()


def run(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output  # status: 1, the broker is unreachable
    return result.stdout
"""

HEAVY_LOADED = "\nprint(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {names})))\n"


def loaded(script: str, names: tuple[str, ...]) -> list[str]:
    """The modules of the packages ``names`` in ``sys.modules`` after ``script`` ran in a fresh
    interpreter started like ``python -m finpipe``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINPIPE_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", script + HEAVY_LOADED.format(names=set(names))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found: list[str] = json.loads(done.stdout.splitlines()[-1])
    return sorted({m.split(".")[0] for m in found})


def test_finpipe_help_loads_no_library_a_command_may_not_need() -> None:
    script = PRELUDE + "assert 'Commands:' in run('--help')\n"
    assert loaded(script, HEAVY + NOT_FOR_READS + ("pymongo",)) == []


def test_finpipe_status_loads_neither_pandas_nor_the_model_client() -> None:
    script = PRELUDE + (
        "out = json.loads(run('status', '--json'))\n"
        "assert out['facts_stored'] == 3 and 'missed' in out, out\n"
        "assert 'facts stored  3' in run('status')\n"
    )
    assert loaded(script, HEAVY) == []


@pytest.mark.parametrize("fmt", ["json", "table", "csv"])
def test_finpipe_companies_and_facts_of_a_company_load_only_what_reads_mongodb(fmt: str) -> None:
    script = PRELUDE + (
        "listed = json.loads(run('companies', '--json'))\n"
        "assert len(listed) == 2, listed\n"
        f"out = run('facts', '--company', 'acme', '--limit', '1', '--format', '{fmt}')\n"
        "assert 'Acme Corp' in out, out\n"
    )
    assert loaded(script, HEAVY + NOT_FOR_READS) == []


def test_the_check_sees_a_library_once_loaded() -> None:
    """The harness itself: a script that does import pandas is caught."""
    assert loaded(PRELUDE + "import pandas\n", HEAVY) == ["numpy", "pandas"]
