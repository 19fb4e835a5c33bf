"""The RabbitMQ adapter's decisions without a broker: declaring queues (refusals, migrating the
classic retry queues of an earlier finpipe) and the confirm bookkeeping of a publisher."""

from __future__ import annotations

import pytest

from adapters.rabbitmq.policy import Backoff, Confirms, Inequivalent, Outbox, declare_queues
from schemas.errors import BrokerConfigError, PublishNotConfirmed
from schemas.message import Provenance, ReportMessage, SubmitReport
from schemas.topology import QueueSpec, Topology


class FakeQueues:
    """Queues as a broker keeps them: name -> (arguments, ready messages)."""

    def __init__(self, queues: dict[str, tuple[dict[str, object], int]] | None = None) -> None:
        self.queues = dict(queues or {})
        self.deleted: list[str] = []

    def declare(self, spec: QueueSpec) -> int:
        args, held = self.queues.setdefault(spec.name, (spec.arguments, 0))
        if args != spec.arguments:
            raise Inequivalent("406 PRECONDITION_FAILED - inequivalent arg")
        return held

    def delete_if_empty(self, name: str) -> None:
        if self.queues.get(name, ({}, 0))[1] == 0:
            self.queues.pop(name, None)
            self.deleted.append(name)


TOPOLOGY = Topology("q", retry_delays_s=(2, 10))


def classic(held_by_step: tuple[int, ...]) -> FakeQueues:
    specs = TOPOLOGY.classic_retry_specs()
    return FakeQueues({s.name: (s.arguments, n) for s, n in zip(specs, held_by_step, strict=True)})


def test_a_new_installation_gets_quorum_queues_everywhere() -> None:
    ops = FakeQueues()
    declare_queues(ops, TOPOLOGY)
    assert {args["x-queue-type"] for args, _ in ops.queues.values()} == {"quorum"}


def test_empty_classic_retry_queues_are_declared_again_as_quorum_queues() -> None:
    ops = classic((0, 0))
    declare_queues(ops, TOPOLOGY)
    assert ops.deleted == ["q.retry.2s", "q.retry.10s"]
    assert ops.queues["q.retry.10s"][0]["x-queue-type"] == "quorum"


def test_a_classic_retry_queue_holding_messages_says_how_long_to_wait() -> None:
    ops = classic((0, 3))
    with pytest.raises(BrokerConfigError) as err:
        declare_queues(ops, TOPOLOGY)
    assert str(err.value).startswith(
        "delayed-retry queue 'q.retry.10s' is a classic queue (kept by one node) from an earlier "
        "finpipe and still holds 3 message(s): they return to 'q' within 10 s; start again then"
    )
    assert ops.deleted == ["q.retry.2s"]  # the empty one is migrated already


def test_a_queue_with_other_arguments_is_refused_in_one_line_saying_what_to_do() -> None:
    ops = FakeQueues({"q": ({"x-queue-type": "quorum", "x-delivery-limit": 9}, 0)})
    with pytest.raises(BrokerConfigError) as err:
        declare_queues(ops, TOPOLOGY)
    assert "rabbitmqctl delete_queue q)" in str(err.value)
    assert "\n" not in str(err.value)


def report(n: int) -> ReportMessage:
    text = f"Firm{n} reported revenue of $1.25 million for Q2 2024."
    return ReportMessage.build(SubmitReport(raw_text=text), Provenance(channel="api"))


def test_confirms_count_acks_and_hand_back_nacked_and_returned_messages() -> None:
    c = Confirms()
    msgs = [report(i) for i in range(4)]
    for m in msgs:
        c.sent(m)
    c.returned(msgs[2].report_id)
    c.settled(1, multiple=False, nacked=True)
    c.settled(3, multiple=True, nacked=False)
    failed = [m for m, _ in c.take_failures()]
    assert (c.acked, failed, list(c.pending.values())) == (1, [msgs[0], msgs[2]], [msgs[3]])
    assert c.take_failures() == []
    assert c.new_channel() == [msgs[3]]
    assert c.pending == {}


@pytest.mark.parametrize(
    ("refusals", "delay_s"), [(1, 0.05), (2, 0.1), (3, 0.2), (6, 1.6), (7, 2.0), (30, 2.0)]
)
def test_the_backoff_doubles_from_the_first_delay_up_to_its_cap(
    refusals: int, delay_s: float
) -> None:
    assert Backoff(budget_s=30, first_s=0.05, max_s=2).delay_s(refusals) == pytest.approx(delay_s)


def test_a_nacked_message_waits_its_backoff_while_new_ones_go_first() -> None:
    a, b, c = report(1), report(2), report(3)
    box = Outbox([a, b, c], Backoff(budget_s=30, first_s=0.5, max_s=2))
    assert box.next(0.0) == a
    assert box.refused(a, "nacked by the broker", 0.0) == 0.5
    assert [box.next(0.1), box.next(0.2), box.next(0.3)] == [b, c, None]
    assert (box.done, box.next_due_at()) == (False, 0.5)
    assert box.next(0.5) == a
    assert box.refused(a, "nacked by the broker", 0.6) == pytest.approx(1.6)
    assert box.next(1.0) is None
    assert box.next(1.6) == a
    assert box.done


def test_refusals_while_a_quorum_queue_elects_a_leader_are_retried_for_the_whole_budget() -> None:
    """Three refusals in milliseconds used to end the publish; now only the budget does."""
    m = report(1)
    box = Outbox([m], Backoff(budget_s=10, first_s=0.05, max_s=2))
    now, refusals = 0.0, 0
    with pytest.raises(PublishNotConfirmed) as err:
        while True:
            assert box.next(now) == m
            now = box.refused(m, "nacked by the broker", now)
            refusals += 1
    assert now <= 10 and refusals >= 9
    assert f"nacked by the broker {refusals + 1} times in" in str(err.value)
    assert "FINPIPE_REPUBLISH_BUDGET_S=10" in str(err.value)


def test_messages_lost_with_a_connection_go_first_until_lost_too_often() -> None:
    a, b = report(1), report(2)
    box = Outbox([b], Backoff())
    assert box.lost_with_connection([a], limit=2) is None
    assert box.next(0.0) == a
    assert box.lost_with_connection([a], limit=2) is None
    assert box.lost_with_connection([a], limit=2) == a
