from schemas.topology import Topology


def test_work_queue_is_a_quorum_queue_dead_lettering_into_the_dead_queue() -> None:
    t = Topology("finpipe.reports", delivery_limit=5)
    args = t.work_spec().arguments
    assert args["x-queue-type"] == "quorum"
    assert args["x-delivery-limit"] == 5
    assert args["x-dead-letter-exchange"] == t.dlx
    assert args["x-dead-letter-routing-key"] == t.dead_queue
    assert args["x-dead-letter-strategy"] == "at-least-once"


def test_retry_queues_expire_back_into_the_work_queue_with_growing_delays() -> None:
    t = Topology("q", retry_delays_s=(1, 4, 16))
    specs = t.retry_specs()
    assert [s.arguments["x-message-ttl"] for s in specs] == [1000, 4000, 16000]
    assert {s.arguments["x-dead-letter-routing-key"] for s in specs} == {"q"}
    assert {s.arguments["x-dead-letter-exchange"] for s in specs} == {""}


def test_every_queue_that_holds_reports_is_a_replicated_quorum_queue() -> None:
    t = Topology("q", retry_delays_s=(1, 4))
    specs = [t.work_spec(), t.dead_spec(), *t.retry_specs()]
    assert {s.arguments["x-queue-type"] for s in specs} == {"quorum"}
    for spec in t.retry_specs():
        # at-least-once dead-lettering back to the work queue needs reject-publish
        assert spec.arguments["x-dead-letter-strategy"] == "at-least-once"
        assert spec.arguments["x-overflow"] == "reject-publish"


def test_retry_step_runs_out_after_the_last_delay() -> None:
    t = Topology("q", retry_delays_s=(1, 4, 16))
    assert [t.retry_step(a) for a in (1, 2, 3, 4)] == [0, 1, 2, None]
    assert set(t.all_queues()) == {"q", "q.dead", "q.retry.1s", "q.retry.4s", "q.retry.16s"}


def test_a_retry_after_moves_the_message_to_a_long_enough_delay() -> None:
    t = Topology("q", retry_delays_s=(2, 10, 60, 300))
    assert t.retry_step(1, at_least_s=None) == 0
    assert t.retry_step(1, at_least_s=2) == 0
    assert t.retry_step(1, at_least_s=45) == 2
    assert t.retry_step(2, at_least_s=1) == 1  # never shorter than the attempt's own step
    assert t.retry_step(1, at_least_s=3600) == 3  # the longest there is
    assert t.retry_step(5, at_least_s=45) is None
