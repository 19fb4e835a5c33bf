"""Who owns the serving threads' connections (``ingest.app.SharedAdapters``, no network)."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import pytest

from ingest.app import SharedAdapters
from schemas.errors import BrokerUnavailable


class FakePublisher:
    made: ClassVar[list[FakePublisher]] = []

    def __init__(self) -> None:
        self.closed = False
        FakePublisher.made.append(self)

    def publish_many(self, messages: Any) -> int:
        return 0

    def check(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


class FakeStore:
    made: ClassVar[int] = 0

    def __init__(self) -> None:
        FakeStore.made += 1
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def adapters() -> SharedAdapters:
    FakePublisher.made, FakeStore.made = [], 0
    return SharedAdapters(FakePublisher, FakeStore, pool_size=2)  # type: ignore[arg-type]


def test_requests_one_after_another_reuse_one_publisher_and_one_store(
    adapters: SharedAdapters,
) -> None:
    for _ in range(1000):
        with adapters.publisher() as pub:
            pub.check()
        adapters.store()
    assert len(FakePublisher.made) == 1
    assert FakeStore.made == 1


def test_concurrent_requests_keep_at_most_the_pool_size_of_publishers_open(
    adapters: SharedAdapters,
) -> None:
    inside = threading.Barrier(4)

    def request() -> None:
        with adapters.publisher():
            inside.wait(timeout=5)
        adapters.store()

    threads = [threading.Thread(target=request) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(FakePublisher.made) == 4
    assert adapters.idle_publishers() == 2
    assert sum(p.closed for p in FakePublisher.made) == 2  # the extra ones are closed
    assert FakeStore.made == 1


def test_a_publisher_that_failed_is_closed_and_never_reused(adapters: SharedAdapters) -> None:
    with pytest.raises(BrokerUnavailable), adapters.publisher():
        raise BrokerUnavailable("connection lost")
    assert FakePublisher.made[0].closed
    assert adapters.idle_publishers() == 0
    with adapters.publisher() as pub:
        assert pub is FakePublisher.made[1]


def test_close_all_closes_every_idle_publisher_and_the_store(adapters: SharedAdapters) -> None:
    with adapters.publisher():
        pass
    store = adapters.store()
    adapters.close_all()
    assert all(p.closed for p in FakePublisher.made)
    assert store.closed  # type: ignore[attr-defined]
