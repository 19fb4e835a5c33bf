"""Faults in the storage under the MongoDB wire protocol: PostgreSQL, which FerretDB runs on when
``scripts/services.sh`` starts it. The test stops the PostgreSQL of the environment it runs in
(``FINPIPE_SERVICES_DIR``, ``FINPIPE_MONGO_PORT``, ``FINPIPE_PG_PORT``: the defaults in the normal
suite) and ends with a count check: every report stored exactly once."""

from __future__ import annotations

import re
import subprocess
import time
from typing import Any

import pymongo
import pymongo.errors
import pytest
from pymongo.uri_parser import parse_uri

from fakes.openai_server import FakeOpenAI
from schemas.topology import Topology
from tests.conftest import MONGO_URI
from tests.integration.conftest import ROOT, one_sentence_reports, publish, queue_depth, wait_until
from tests.integration.test_faults import assert_each_stored_once, services


def require_ferretdb_on_our_postgresql(mongo_client: Any) -> None:
    """Skip on a server with no PostgreSQL under it (MongoDB, FerretDB on SQLite); fail when the
    FerretDB under test is not the one ``services.sh`` manages in this environment, so that the
    test never stops a PostgreSQL other than the one under the server it counts on."""
    if "ferretdbVersion" not in mongo_client.admin.command("buildInfo"):
        pytest.skip(f"{MONGO_URI} is MongoDB itself: there is no PostgreSQL under it to stop")
    host, port = parse_uri(MONGO_URI)["nodelist"][0]
    status = subprocess.run(
        [str(ROOT / "scripts" / "services.sh"), "status"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stderr
    ours = re.search(rf"MongoDB: up on 127\.0\.0\.1:{port} \(FerretDB [^,]+, ([^)]*)\)", status)
    if host in ("127.0.0.1", "localhost") and ours:
        if ours.group(1).startswith("sqlite"):
            pytest.skip(f"the FerretDB at {MONGO_URI} runs on SQLite: no PostgreSQL to stop")
        pg = re.match(r"postgresql backend at (127\.0\.0\.1:\d+)", ours.group(1))
        if pg and f"PostgreSQL: up on {pg.group(1)} " in status:
            return
    pytest.fail(
        f"the FerretDB at {MONGO_URI} is not one that scripts/services.sh started on its "
        "PostgreSQL in this environment (set FINPIPE_SERVICES_DIR, FINPIPE_MONGO_PORT and "
        f"FINPIPE_PG_PORT as for services.sh up); services.sh status says:\n{status}",
        pytrace=False,
    )


@pytest.mark.timeout(300)
def test_postgresql_killed_for_30_seconds_under_ferretdb_delays_but_loses_nothing(
    settings, start_worker, db, mongo_client
) -> None:
    require_ferretdb_on_our_postgresql(mongo_client)
    msgs = one_sentence_reports(200, tag="pg-")
    publish(settings, msgs)
    # A model answering in 100 ms per call of 5 snippets keeps the worker busy for at least 4 s,
    # so the outage lands in the middle of the work however fast the machine is. The delayed
    # retries (5+10+20 s) bring the failed reports back just after the outage, and 40 s more
    # before any would be dead-lettered.
    with FakeOpenAI(base_ms=100) as model:
        worker = start_worker(
            FINPIPE_RETRY_DELAYS_S="5,10,20,40",
            FINPIPE_BATCH_SNIPPETS="5",
            FINPIPE_LLM_CONCURRENCY="1",
            **model.worker_env(),
        )
        wait_until(lambda: db.financial_data.count_documents({}) >= 10, 60, "work in progress")
        assert db.reports.count_documents({"status": "done"}) < 200, "finished before the fault"
        services("pg-stop", "immediate")  # a crash as far as the data is concerned
        try:
            # FerretDB still answers, but nothing it stores is reachable.
            with pytest.raises(pymongo.errors.OperationFailure):
                db.reports.find_one({"status": "done"})
            time.sleep(30)  # the outage itself
        finally:
            services("pg-start")
        wait_until(
            lambda: db.reports.count_documents({"status": "done"}) == 200, 180, "all reports"
        )
        wait_until(lambda: queue_depth(settings)[0] == 0, 60, "queue drained")
        assert worker.stop() == 0
    assert "retrying in" in worker.log()
    assert queue_depth(settings, Topology.for_settings(settings).dead_queue)[0] == 0
    assert_each_stored_once(db, msgs)
