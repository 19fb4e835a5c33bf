"""Packing snippets into calls, the flush timer and backoff: pure functions, tables."""

from __future__ import annotations

import pytest

from worker.packing import BatchBuffer, backoff_s, pack


@pytest.mark.parametrize(
    ("sizes", "max_items", "max_chars", "expected"),
    [
        ([], 3, 100, []),
        ([10, 10, 10], 3, 100, [[10, 10, 10]]),
        ([10, 10, 10, 10], 3, 100, [[10, 10, 10], [10]]),
        ([60, 30, 20], 20, 100, [[60, 30], [20]]),
        ([150, 10], 20, 100, [[150], [10]]),
        ([10, 150, 10], 20, 100, [[10], [150], [10]]),
        ([50, 50, 1], 20, 100, [[50, 50], [1]]),
    ],
)
def test_pack_respects_item_and_char_budgets(
    sizes: list[int], max_items: int, max_chars: int, expected: list[list[int]]
) -> None:
    assert pack(sizes, max_items=max_items, max_chars=max_chars, size=lambda n: n) == expected


def test_twenty_one_sentence_reports_fit_one_batch() -> None:
    sentences = [f"Company {i} reported revenue of ${i}.5 million for Q1 2024." for i in range(20)]
    batches = pack(sentences, max_items=20, max_chars=12_000, size=len)
    assert [len(b) for b in batches] == [20]


def test_pack_keeps_order() -> None:
    items = list(range(45))
    batches = pack(items, max_items=20, max_chars=10**6, size=lambda _: 1)
    assert [i for b in batches for i in b] == items
    assert [len(b) for b in batches] == [20, 20, 5]


def test_pack_rejects_empty_budgets() -> None:
    with pytest.raises(ValueError):
        pack([1], max_items=0, max_chars=10, size=lambda n: n)


def _buffer(wait_ms: int = 500) -> BatchBuffer[str]:
    return BatchBuffer(max_items=3, max_chars=1000, wait_ms=wait_ms, size=len)


def test_partial_batch_waits_until_the_oldest_snippet_is_due() -> None:
    buf = _buffer()
    buf.add("a", now_s=10.0)
    buf.add("b", now_s=10.3)
    assert buf.deadline_s() == pytest.approx(10.5)
    assert buf.take(now_s=10.4) == []
    assert len(buf) == 2
    assert buf.take(now_s=10.5) == [["a", "b"]]
    assert len(buf) == 0
    assert buf.deadline_s() is None


def test_full_batch_leaves_at_once_and_the_rest_keeps_its_arrival_time() -> None:
    buf = _buffer()
    for i, t in enumerate([1.0, 1.1, 1.2, 1.3]):
        buf.add(f"s{i}", now_s=t)
    assert buf.take(now_s=1.3) == [["s0", "s1", "s2"]]
    assert len(buf) == 1
    assert buf.deadline_s() == pytest.approx(1.8)
    assert buf.take(now_s=1.79) == []
    assert buf.take(now_s=1.8) == [["s3"]]


def test_exactly_full_batch_leaves_without_waiting() -> None:
    buf = _buffer()
    for s in ("a", "b", "c"):
        buf.add(s, now_s=0.0)
    assert buf.take(now_s=0.0) == [["a", "b", "c"]]


def test_char_budget_fills_a_batch() -> None:
    buf = BatchBuffer(max_items=20, max_chars=10, wait_ms=500, size=len)
    buf.add("x" * 6, now_s=0.0)
    buf.add("y" * 6, now_s=0.0)
    assert buf.take(now_s=0.0) == [["x" * 6]]
    assert buf.take(now_s=0.0, force=True) == [["y" * 6]]


def test_zero_wait_flushes_immediately() -> None:
    buf = _buffer(wait_ms=0)
    buf.add("a", now_s=5.0)
    assert buf.due(5.0)
    assert buf.take(now_s=5.0) == [["a"]]


def test_empty_buffer_has_nothing_to_take() -> None:
    assert _buffer().take(now_s=0.0, force=True) == []


@pytest.mark.parametrize(
    ("attempt", "rand", "retry_after", "expected"),
    [
        (0, 0.0, None, 0.25),
        (0, 1.0, None, 0.5),
        (1, 0.0, None, 0.5),
        (2, 0.5, None, 1.5),
        (10, 0.0, None, 5.0),  # capped at 10 s: half of it at least
        (10, 1.0, None, 10.0),
        (0, 0.0, 3.0, 3.0),  # Retry-After is a floor
        (3, 1.0, 1.0, 4.0),  # ...not a ceiling
        (0, 0.0, 0.0, 0.25),
    ],
)
def test_backoff_is_exponential_with_jitter_and_honours_retry_after(
    attempt: int, rand: float, retry_after: float | None, expected: float
) -> None:
    got = backoff_s(attempt, rand=lambda: rand, base_s=0.5, cap_s=10.0, retry_after_s=retry_after)
    assert got == pytest.approx(expected)


def test_backoff_grows_and_stays_within_bounds() -> None:
    import random

    rng = random.Random(7)
    for attempt in range(8):
        ceiling = min(30.0, 0.5 * 2**attempt)
        d = backoff_s(attempt, rand=rng.random)
        assert ceiling / 2 <= d <= ceiling


def test_backoff_rejects_negative_attempt() -> None:
    with pytest.raises(ValueError):
        backoff_s(-1, rand=lambda: 0.0)


def test_take_hands_out_no_more_batches_than_free_slots_and_keeps_the_rest_filling() -> None:
    from worker.packing import BatchBuffer

    buf: BatchBuffer[str] = BatchBuffer(max_items=2, max_chars=1000, wait_ms=500, size=len)
    for i, item in enumerate("abcde"):
        buf.add(item, now_s=0.0 + i * 0.001)
    # Everything is due, but only one slot is free: the oldest full batch leaves.
    assert buf.take(10.0, max_batches=1) == [["a", "b"]]
    assert buf.take(10.0, max_batches=0) == []
    # The due remainder leaves once there are slots for it.
    assert buf.take(10.0, max_batches=4) == [["c", "d"], ["e"]]
    assert len(buf) == 0
