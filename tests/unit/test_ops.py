"""Queue depth and the status text (no network)."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from typing import Any

import pika.exceptions
import pytest

from adapters.mongo import MongoStore
from adapters.rabbitmq import QueueDepth, queue_depth
from ops import status
from schemas.errors import BrokerUnavailable
from schemas.settings import Settings


class _Method:
    def __init__(self, messages: int, consumers: int) -> None:
        self.message_count = messages
        self.consumer_count = consumers


class _Ok:
    def __init__(self, messages: int, consumers: int) -> None:
        self.method = _Method(messages, consumers)


class _Channel:
    def __init__(self, queues: dict[str, tuple[int, int]]) -> None:
        self.queues = queues
        self.calls: list[tuple[str, bool]] = []

    def queue_declare(self, queue: str, passive: bool = False) -> _Ok:
        self.calls.append((queue, passive))
        if queue not in self.queues:
            raise pika.exceptions.ChannelClosedByBroker(404, f"NOT_FOUND - no queue '{queue}'")
        return _Ok(*self.queues[queue])


def test_queue_depth_declares_passively_and_reports_missing_queues() -> None:
    ch = _Channel({"q": (7, 2)})
    assert queue_depth(ch, "q") == QueueDepth("q", True, 7, 2)
    assert queue_depth(ch, "nope") == QueueDepth("nope", False)
    assert ch.calls == [("q", True), ("nope", True)]


def test_status_text_is_short_and_readable() -> None:
    info = {
        "checked_at": "2024-06-01T03:00:00Z",
        "services": {
            "rabbitmq": {"reachable": True, "url": "amqp://guest:***@h/", "error": None},
            "mongodb": {"reachable": False, "url": "mongodb://h", "error": "timed out"},
        },
        "queue": {"name": "finpipe.reports", "exists": True, "messages": 3, "consumers": 2},
        "dead_letters": {
            "name": "finpipe.reports.dead",
            "exists": True,
            "messages": 1,
            "consumers": 0,
        },
        "reports": None,
        "facts_stored": None,
        "last_sweep": None,
        "last_export": None,
    }
    assert status.format_status(info) == (
        "finpipe status at 2024-06-01T03:00:00Z\n"
        "  rabbitmq      amqp://guest:***@h/  reachable\n"
        "  mongodb       mongodb://h  UNREACHABLE (timed out)\n"
        "  queue         finpipe.reports: 3 waiting, 2 consumer(s)\n"
        "  dead letters  finpipe.reports.dead: 1 message(s)\n"
        "  last sweep    unknown\n"
        "  last export   unknown\n"
    )
    assert not status.healthy(info)


def quiet_status(**changes: object) -> dict[str, Any]:
    """The status of an installation with no services listed and nothing received yet."""
    return {
        "checked_at": "t",
        "services": {},
        "queue": None,
        "dead_letters": None,
        "reports": {"received": 0},
        "facts_stored": 0,
        "last_sweep": None,
        "last_export": None,
        **changes,
    }


@pytest.mark.parametrize(
    ("run", "shown"),
    [
        ({"at": "2024-07-01T06:00:00Z", "files": 3}, "2024-07-01T06:00:00Z 3"),
        (
            {"at": "2024-07-01T06:30:00Z", "path": "/x/2024-07-01"},
            "2024-07-01T06:30:00Z /x/2024-07-01",
        ),
    ],
)
def test_status_text_shows_the_last_runs(run: dict[str, object], shown: str) -> None:
    info = quiet_status(last_sweep=run)
    text = status.format_status(info)
    assert f"  last sweep    {shown}\n" in text
    assert "  last export   never\n" in text


def test_status_text_lists_open_batch_jobs() -> None:
    doc = {
        "job_id": "batch-20261130T020000Z-1a2b3c4d",
        "state": "submitted",
        "created_at": 1_796_004_000.0,
        "parts": [
            {
                "index": 0,
                "state": "submitted",
                "batch_id": "batch_9",
                "remote_status": "in_progress",
                "requests": 40,
                "counts": {"completed": 12},
            }
        ],
    }
    job = status.open_job(doc)
    assert job["requests"] == 40 and job["created_at"] == "2026-11-30T02:00:00Z"
    info = quiet_status(batch_jobs=[job])
    text = status.format_status(info)
    assert "  batch jobs    1 open (finpipe batch show ID)\n" in text
    assert (
        "    batch-20261130T020000Z-1a2b3c4d submitted since 2026-11-30T02:00:00Z: "
        "part 0: in_progress 12/40\n"
    ) in text
    info["batch_jobs"] = []
    assert "  batch jobs    none open\n" in status.format_status(info)


class _BrokenBroker:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def queue_depths(self) -> Any:
        raise self.exc


@pytest.mark.parametrize(
    "broker_error",
    [
        ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)"),
        RuntimeError("Timeout during AMQP handshake\nsecond line"),
        BrokerUnavailable("RabbitMQ unreachable at amqp://guest:***@h/"),
    ],
)
def test_status_shows_a_service_unreachable_whatever_its_client_raises(
    broker_error: Exception,
) -> None:
    settings = Settings.from_env(
        {}, mongo_uri="mongodb://127.0.0.1:27017/?tls=true&tlsCAFile=/nonexistent.pem"
    )
    store = MongoStore.from_settings(settings)
    info = status.gather_status(settings, _BrokenBroker(broker_error), store)  # type: ignore[arg-type]
    rabbit, mongo = info["services"]["rabbitmq"], info["services"]["mongodb"]
    assert not rabbit["reachable"] and not mongo["reachable"]
    assert "\n" not in rabbit["error"] and str(broker_error).splitlines()[0] in rabbit["error"]
    assert mongo["error"].startswith("FINPIPE_MONGO_URI=")
    assert "not readable" in mongo["error"]
    assert "UNREACHABLE" in status.format_status(info)
    assert not status.healthy(info)


class _Runs:
    def __init__(self, runs: dict[str, Any]) -> None:
        self.runs = runs

    def last_run(self, name: str) -> dict[str, Any] | None:
        return self.runs.get(name)


def test_status_shows_a_night_the_scheduler_missed() -> None:
    settings = Settings.from_env({"FINPIPE_EXPORT_WAIT_S": "600"})
    night = datetime(2026, 12, 3, 2, 0, 1, tzinfo=UTC)
    store = _Runs({"last_sweep": {"at": night}, "last_export": {"at": night.replace(minute=31)}})
    missed = status.missed_runs(settings, store, datetime(2026, 12, 4, 9, 0, tzinfo=UTC))  # type: ignore[arg-type]
    assert missed == {"sweep": "2026-12-04T02:00:00Z", "export": "2026-12-04T02:30:00Z"}
    text = status.format_status(quiet_status(missed=missed))
    assert "  missed        the sweep due at 2026-12-04T02:00:00Z did not run" in text
    assert "  missed        the export due at 2026-12-04T02:30:00Z did not run" in text
    # within an hour of its fire time a run may be under way; the export also waits for the night
    early = status.missed_runs(settings, store, datetime(2026, 12, 4, 3, 30, tzinfo=UTC))  # type: ignore[arg-type]
    assert early == {"sweep": "2026-12-04T02:00:00Z"}
    assert status.missed_runs(settings, _Runs({}), datetime(2026, 12, 4, 9, 0, tzinfo=UTC)) == {}  # type: ignore[arg-type]
    assert "missed" not in status.format_status(quiet_status())


@pytest.mark.parametrize(
    "uri",
    [
        "mongodb://finpipe:s3c?ret-pw@127.0.0.1:27017/",
        "mongodb://finpipe:s3c/ret-pw@127.0.0.1:27017/",
    ],
)
def test_status_hides_a_mongodb_password_with_reserved_characters(uri: str) -> None:
    settings = Settings.from_env({}, mongo_uri=uri)
    store = MongoStore.from_settings(settings)
    broken = _BrokenBroker(BrokerUnavailable("down"))
    info = status.gather_status(settings, broken, store)  # type: ignore[arg-type]
    mongo = info["services"]["mongodb"]
    assert mongo["url"] == "mongodb://finpipe:***@127.0.0.1:27017/"
    shown = status.format_status(info) + repr(info)
    assert "s3c" not in shown and "ret-pw" not in shown


def test_a_mongodb_error_never_shows_the_password_it_was_given() -> None:
    store = MongoStore.from_settings(
        Settings.from_env({}, mongo_uri="mongodb://u:s3cr#et,pw@127.0.0.1:27017/")
    )
    err = store._fail("ping", RuntimeError("auth failed for u:s3cr#et,pw at s3cr"))
    assert str(err) == (
        "MongoDB ping failed at mongodb://u:***@127.0.0.1:27017/: auth failed for u:*** at ***"
    )
