"""Shared fixtures. Integration tests need the real services that ``scripts/services.sh up`` starts;
when a service is missing they fail with the reason, they never skip."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from schemas.settings import Settings
from schemas.topology import Topology

AMQP_URL = os.environ.get("FINPIPE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
MONGO_URI = os.environ.get("FINPIPE_MONGO_URI", "mongodb://127.0.0.1:27017")


@pytest.fixture(scope="session")
def amqp_url() -> str:
    import pika
    import pika.exceptions

    try:
        conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    except pika.exceptions.AMQPError as exc:
        pytest.fail(
            f"RabbitMQ is not reachable at {AMQP_URL} ({exc!r}); run scripts/services.sh up",
            pytrace=False,
        )
    conn.close()
    return AMQP_URL


@pytest.fixture(scope="session")
def mongo_client(amqp_url: str) -> Iterator[object]:
    import pymongo
    import pymongo.errors

    client: pymongo.MongoClient = pymongo.MongoClient(MONGO_URI, serverSelectionTimeoutMS=5000)
    try:
        client.admin.command("ping")
    except pymongo.errors.PyMongoError as exc:
        pytest.fail(
            f"MongoDB is not reachable at {MONGO_URI} ({exc!r}); run scripts/services.sh up",
            pytrace=False,
        )
    yield client
    client.close()


@pytest.fixture
def settings(amqp_url: str, mongo_client: object, tmp_path: object) -> Iterator[Settings]:
    """Settings with a queue and a database of their own, removed after the test."""
    tag = uuid.uuid4().hex[:10]
    s = Settings.from_env(
        amqp_url=amqp_url,
        mongo_uri=MONGO_URI,
        queue=f"test.{tag}",
        mongo_db=f"test_{tag}",
        openai_api_key=None,
        provider="rules",
        batch_wait_ms=50,
        inbox=os.path.join(str(tmp_path), "inbox"),
        export_dir=os.path.join(str(tmp_path), "exports"),
    )
    yield s
    delete_topology(amqp_url, Topology.for_settings(s))
    mongo_client.drop_database(s.mongo_db)  # type: ignore[attr-defined]


def delete_topology(amqp_url: str, topo: Topology) -> None:
    """Delete the work queue and every queue and exchange derived from its name."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        ch = conn.channel()
        for name in topo.all_queues():
            ch.queue_delete(name)
        for name in topo.all_exchanges():
            ch.exchange_delete(name)
    finally:
        conn.close()
