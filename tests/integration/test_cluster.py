"""Failover on a 3-node RabbitMQ cluster: ``scripts/cluster.sh`` (r1..r3@localhost, AMQP on
127.0.0.1:5681-5683), real ``finpipe worker`` processes with the rules extractor, a publisher with
confirms in the test, and a database of their own on the shared MongoDB-compatible server. Each
test stops one node while reports are in flight and ends with a count: every accepted report
stored once.

The cluster is started once per session if it is not running, and left running afterwards (the
next run starts in seconds); ``scripts/cluster.sh down`` stops it. A node a test stopped is
started again before the next test.
"""

from __future__ import annotations

import random
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import pytest

from adapters.rabbitmq import Nodes, Publisher, connect
from schemas.message import ReportMessage
from schemas.settings import Settings
from schemas.topology import HEADER_ATTEMPT, HEADER_REASON, Topology
from tests.conftest import MONGO_URI, delete_topology
from tests.integration.conftest import (
    ROOT,
    WorkerProcess,
    one_sentence_reports,
    settings_env,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CLUSTER = ROOT / "scripts" / "cluster.sh"
NODES = ("r1", "r2", "r3")


def cluster(*args: str, timeout_s: float = 240) -> str:
    """Run ``scripts/cluster.sh ARGS``; its standard output."""
    done = subprocess.run(
        [str(CLUSTER), *args], capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/cluster.sh {' '.join(args)} failed:\n{done.stderr}", pytrace=False)
    return done.stdout


def node_of(url: str) -> str:
    """``r2`` for an address on port 5682."""
    port = re.search(r":(\d+)/", url)
    assert port is not None, url
    return f"r{int(port.group(1)) - 5680}"


class KeepOrder(random.Random):
    """No shuffle: the addresses in the order given."""

    def shuffle(self, x: Any) -> None:
        return None


class Cluster:
    """The running cluster as one test sees it: which node holds what, and stopping nodes."""

    def __init__(self, url: str) -> None:
        self.urls = url.split(",")
        self.stopped: list[str] = []

    def url_of(self, node: str) -> str:
        return next(u for u in self.urls if node_of(u) == node)

    def starting_at(self, node: str) -> Nodes:
        """Every address, ``node`` first, then the others in turn."""
        i = self.urls.index(self.url_of(node))
        return Nodes([*self.urls[i:], *self.urls[:i]], rng=KeepOrder())

    def leader(self, queue: str) -> str:
        """The node holding the leader of quorum queue ``queue``."""
        asked = next(n for n in NODES if n not in self.stopped)
        out = cluster("ctl", asked, "-q", "list_queues", "name", "leader", "--no-table-headers")
        for line in out.splitlines():
            name, _, leader = line.partition("\t")
            if name == queue:
                return leader.split("@")[0]
        raise AssertionError(f"queue {queue} not found in {out!r}")

    def stop(self, node: str) -> None:
        self.stopped.append(node)
        cluster("stop", node)

    def is_down(self, node: str) -> bool:
        try:
            pika.BlockingConnection(pika.URLParameters(self.url_of(node))).close()
        except pika.exceptions.AMQPError:
            return True
        return False

    def restore(self) -> None:
        while self.stopped:
            cluster("start", self.stopped.pop())


@pytest.fixture(scope="session")
def cluster_url() -> str:
    """The cluster's ``FINPIPE_AMQP_URL``, after ``scripts/cluster.sh up`` (idempotent)."""
    cluster("up")
    return cluster("urls").strip()


@pytest.fixture
def nodes(cluster_url: str) -> Iterator[Cluster]:
    c = Cluster(cluster_url)
    yield c
    c.restore()


@pytest.fixture
def cluster_settings(
    cluster_url: str, nodes: Cluster, mongo_client: Any, tmp_path: Path
) -> Iterator[Settings]:
    """Settings for the cluster with a queue and a database of their own, removed after."""
    tag = uuid.uuid4().hex[:10]
    s = Settings.from_env(
        amqp_url=cluster_url,
        mongo_uri=MONGO_URI,
        queue=f"test.cluster.{tag}",
        mongo_db=f"test_cluster_{tag}",
        openai_api_key=None,
        provider="rules",
        batch_wait_ms=50,
        retry_delays_s="20",
        inbox=str(tmp_path / "inbox"),
        export_dir=str(tmp_path / "exports"),
    )
    yield s
    nodes.restore()  # before the clean-up: the queues' members live on every node
    delete_topology(nodes.urls[0], Topology.for_settings(s))
    mongo_client.drop_database(s.mongo_db)


@pytest.fixture
def worker(cluster_settings: Settings, tmp_path: Path) -> Iterator[Callable[[], WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        w = WorkerProcess(settings_env(cluster_settings), tmp_path / f"worker{len(started)}.log")
        started.append(w)
        wait_until(lambda: consuming_at(w), 30, "the worker consuming")
        return w

    yield start
    for w in started:
        w.stop(timeout_s=10)


@pytest.fixture
def db(cluster_settings: Settings, mongo_client: Any) -> Any:
    return mongo_client[cluster_settings.mongo_db]


def consuming_at(worker: WorkerProcess) -> list[str]:
    """The nodes the worker consumed from, in order."""
    return [node_of(m) for m in re.findall(r"consuming from RabbitMQ at (\S+)", worker.log())]


def facts(db: Any) -> int:
    return int(db.financial_data.count_documents({}))


def assert_each_stored_once(db: Any, msgs: list[ReportMessage]) -> None:
    """The count: every report done, with its one fact, none twice."""
    ids = {m.report_id for m in msgs}
    assert {r["_id"] for r in db.reports.find({"status": "done"}, {"_id": 1})} == ids
    per_report: dict[str, int] = {}
    for d in db.financial_data.find({}, {"report_id": 1}):
        per_report[d["report_id"]] = per_report.get(d["report_id"], 0) + 1
    assert per_report == dict.fromkeys(ids, 1)


def test_a_follower_node_stopped_mid_run_loses_nothing(
    cluster_settings: Settings, nodes: Cluster, worker: Callable[[], WorkerProcess], db: Any
) -> None:
    msgs = one_sentence_reports(2000, "follower")
    w = worker()
    [at] = consuming_at(w)
    topology = Topology.for_settings(cluster_settings)
    with Publisher(nodes.starting_at(at), topology) as pub:
        assert pub.publish_many(msgs[:1000]) == 1000
        follower = next(n for n in NODES if n not in {at, nodes.leader(topology.queue)})
        wait_until(lambda: facts(db) >= 100, 30, "work in progress")
        nodes.stop(follower)
        assert pub.publish_many(msgs[1000:]) == 1000
    wait_until(lambda: facts(db) >= len(msgs), 60, "every report stored")
    assert consuming_at(w) == [at]  # the worker's node stayed up: it never reconnected
    assert_each_stored_once(db, msgs)


def test_stopping_the_node_of_the_worker_and_publisher_keeps_facts_coming_within_10_s(
    cluster_settings: Settings, nodes: Cluster, worker: Callable[[], WorkerProcess], db: Any
) -> None:
    msgs = one_sentence_reports(3000, "leader")
    w = worker()
    [at] = consuming_at(w)
    down = threading.Event()
    moved_to: list[str | None] = []

    def feed() -> Iterator[ReportMessage]:
        for i, m in enumerate(msgs):
            if i == 1500:  # mid-run: the worker is busy and this publisher holds unconfirmed
                wait_until(lambda: facts(db) >= 100, 30, "work in progress")
                nodes.stop(at)
                down.set()
            yield m

    def publish() -> None:
        with Publisher(nodes.starting_at(at), Topology.for_settings(cluster_settings)) as pub:
            assert pub.publish_many(feed()) == len(msgs)
            moved_to.append(pub.connected_to)

    publisher = threading.Thread(target=publish)
    publisher.start()
    assert down.wait(60), "the node was not stopped"
    before, since = facts(db), time.monotonic()
    wait_until(lambda: facts(db) > before, 10, "facts stored while the node is down")
    progress_s = time.monotonic() - since
    assert nodes.is_down(at)
    publisher.join(60)
    assert moved_to and moved_to[0] is not None and node_of(moved_to[0]) != at
    wait_until(lambda: facts(db) >= len(msgs), 90, "every report stored")
    assert nodes.is_down(at)  # all of it done through the two other nodes
    print(f"first fact stored {progress_s:.1f} s after {at} went down")
    assert consuming_at(w)[0] == at and at not in consuming_at(w)[1:]
    assert "RabbitMQ connection lost" in w.log()
    assert_each_stored_once(db, msgs)


def test_a_delayed_retry_survives_the_stop_of_the_node_holding_it(
    cluster_settings: Settings, nodes: Cluster, worker: Callable[[], WorkerProcess], db: Any
) -> None:
    topology = Topology.for_settings(cluster_settings)
    msgs = one_sentence_reports(21, "retry")
    waiting, others = msgs[0], msgs[1:]
    w = worker()
    [at] = consuming_at(w)
    with Publisher(nodes.starting_at(at), topology) as pub:
        pub.publish_many(others)
    holder = nodes.leader(topology.retry_queue(0))  # asked before: rabbitmqctl takes seconds
    # As the worker puts a report aside after a transient failure: into the delay queue, which
    # sends it back to the work queue once its TTL (20 s; stopping a node takes seconds on a
    # loaded machine) has passed.
    conn = connect(nodes.starting_at(at))
    ch = conn.channel()
    ch.confirm_delivery()
    ch.basic_publish(
        "",
        topology.retry_queue(0),
        waiting.to_body(),
        pika.BasicProperties(
            delivery_mode=2,
            content_type="application/json",
            message_id=waiting.report_id,
            type="report",
            headers={HEADER_ATTEMPT: 1, HEADER_REASON: "model unavailable (test)"},
        ),
        mandatory=True,
    )
    conn.close()
    put_aside = time.monotonic()
    nodes.stop(holder)
    assert time.monotonic() - put_aside < 20, "stopped too late: the retry is no longer waiting"
    assert db.reports.find_one({"_id": waiting.report_id}) is None
    wait_until(lambda: facts(db) >= len(msgs), 60, "the retried report stored")
    assert nodes.is_down(holder)
    assert_each_stored_once(db, msgs)
