"""Whether the night's work is done (``export.night``): the pure decision, the check over the
reads it is given, and the wait (no network)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from adapters.rabbitmq import QueueDepth
from export.night import Outstanding, night_check, outstanding, wait_for_night
from schemas.errors import BrokerUnavailable, StoreUnavailable

EMPTY = [QueueDepth("q", True, 0, 1), QueueDepth("q.retry.5s", True, 0)]


@pytest.mark.parametrize(
    ("depths", "published", "statuses", "left"),
    [
        (EMPTY, [], {}, Outstanding()),
        (EMPTY, ["a", "b"], {"a": "done", "b": "dead"}, Outstanding()),
        # held by a worker: in no queue's ready count, not stored
        (EMPTY, ["a", "b"], {"a": "done"}, Outstanding({}, ("b",))),
        # retried: "failed" is not an end
        (EMPTY, ["a"], {"a": "failed"}, Outstanding({}, ("a",))),
        (
            [QueueDepth("q", True, 2), QueueDepth("q.retry.5s", True, 1)],
            ["a", "a"],
            {},
            Outstanding({"q": 2, "q.retry.5s": 1}, ("a",)),
        ),
        ([QueueDepth("q", False)], [], {}, Outstanding()),
    ],
)
def test_the_night_is_done_when_every_published_report_is_stored_or_dead_and_no_queue_holds_work(
    depths: list[QueueDepth], published: list[str], statuses: dict[str, str], left: Outstanding
) -> None:
    got = outstanding(depths, published, statuses)
    assert got == left
    assert got.done == (left == Outstanding())


def test_what_is_outstanding_reads_as_one_line_and_a_report_entry() -> None:
    left = Outstanding({"q": 0, "q.retry.30s": 4}, tuple(f"r{i}" for i in range(25)))
    assert (
        left.line()
        == "25 report(s) of the sweep neither stored nor dead; 4 message(s) in q.retry.30s"
    )
    entry = left.as_dict()
    assert entry["reports_not_stored"] == 25 and len(entry["report_ids"]) == 20
    assert entry["queues"] == {"q.retry.30s": 4} and entry["unknown"] is None
    assert Outstanding().line() == "nothing"
    assert Outstanding(unknown="RabbitMQ unreachable").line() == "unknown (RabbitMQ unreachable)"


class _Store:
    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.statuses: dict[str, str] = {}
        self.asked: list[list[str]] = []
        self.down = False

    def last_run(self, name: str) -> dict[str, Any] | None:
        assert name == "last_sweep"
        return {"report_ids": self.ids}

    def report_statuses(self, report_ids: Sequence[str]) -> dict[str, str]:
        if self.down:
            raise StoreUnavailable("MongoDB unreachable")
        self.asked.append(list(report_ids))
        return {r: s for r, s in self.statuses.items() if r in report_ids}


def test_the_check_asks_only_for_reports_not_yet_settled_and_reports_errors_as_unknown() -> None:
    store = _Store(["a", "b", "c"])
    check = night_check(lambda: EMPTY, store, "last_sweep")
    store.statuses = {"a": "done"}
    assert check().reports == ("b", "c")
    store.statuses = {"a": "done", "b": "dead", "c": "done"}
    assert check().done
    assert store.asked == [["a", "b", "c"], ["b", "c"]]
    store.down = True
    assert check().unknown == "MongoDB unreachable"


def test_the_check_says_unknown_while_the_broker_is_unreachable() -> None:
    def depths() -> list[QueueDepth]:
        raise BrokerUnavailable("RabbitMQ unreachable")

    left = night_check(depths, _Store([]), "last_sweep")()
    assert not left.done and left.unknown == "RabbitMQ unreachable"


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def test_the_wait_polls_until_the_night_is_done() -> None:
    answers = iter([Outstanding({"q": 5}), Outstanding(unknown="down"), Outstanding()])
    clock = _Clock()
    assert wait_for_night(lambda: next(answers), 60, poll_s=5, clock=clock, sleep=clock.sleep).done
    assert clock.slept == [5, 5]


def test_the_wait_gives_up_after_the_timeout_with_what_was_left() -> None:
    clock = _Clock()
    left = Outstanding({}, ("a",))
    got = wait_for_night(lambda: left, 12, poll_s=5, clock=clock, sleep=clock.sleep)
    assert got == left
    assert clock.slept == [5, 5, 2]
