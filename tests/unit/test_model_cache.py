"""The worker's cache filter: which keys the store holds, and reads only for those."""

from __future__ import annotations

from typing import Any

import pytest

from worker.model.cache import FilteredCache, MemoryCache, cache_key
from worker.model.membership import KeySet, fingerprint


def keys(n: int, tag: str = "") -> list[str]:
    return [cache_key(f"Firm{tag}{i} reported revenue of ${i}.5 million.", "m") for i in range(n)]


class CountingCache(MemoryCache):
    """A stored cache that lists its keys and counts the reads it answers."""

    def __init__(self, entries: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.entries.update(entries or {})
        self.reads: list[list[str]] = []
        self.key_reads = 0

    def cache_keys(self) -> list[str]:
        self.key_reads += 1
        return list(self.entries)

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        self.reads.append(list(keys))
        return super().get_many(keys)


def test_key_set_holds_what_was_loaded_and_added() -> None:
    loaded, added, other = keys(100, "a"), keys(100, "b"), keys(100, "c")
    known = KeySet(loaded, merge_at=16)
    known.update(added)
    assert all(k in known for k in loaded + added)
    assert not any(k in known for k in other)
    assert len(known) == 200


@pytest.mark.parametrize("merge_at", [1, 3, 1000])
def test_key_set_answers_the_same_before_and_after_a_merge(merge_at: int) -> None:
    known = KeySet(merge_at=merge_at)
    for k in keys(50):
        known.add(k)
        known.add(k)  # adding a key twice counts it once
    assert len(known) == 50
    assert all(k in known for k in keys(50))
    assert "not a key" not in known and 42 not in known


def test_key_set_keeps_about_eight_bytes_a_key_once_merged() -> None:
    known = KeySet(keys(10_000))
    assert known.nbytes == 80_000


def test_fingerprints_are_64_bit_and_stable() -> None:
    fp = fingerprint("abc")
    assert fp == fingerprint("abc") != fingerprint("abd")
    assert 0 <= fp < 2**64


def test_filtered_cache_reads_nothing_for_keys_it_does_not_know() -> None:
    store = CountingCache()
    cache = FilteredCache(store)
    assert cache.get_many(keys(20)) == {}
    assert store.reads == []


def test_filtered_cache_reads_only_the_keys_the_store_holds() -> None:
    held = keys(5, "held")
    store = CountingCache({k: {"status": "openai", "facts": []} for k in held})
    cache = FilteredCache(store)
    asked = keys(20, "new") + held[:2]
    assert set(cache.get_many(asked)) == set(held[:2])
    assert store.reads == [held[:2]]
    assert store.key_reads == 1


def test_what_this_worker_stores_is_read_back_and_the_keys_are_listed_once() -> None:
    store = CountingCache()
    cache = FilteredCache(store)
    new = keys(3, "x")
    cache.put_many({k: {"status": "openai", "facts": []} for k in new})
    assert set(cache.get_many(new + keys(3, "y"))) == set(new)
    assert store.reads == [new]
    assert store.key_reads == 1


def test_a_key_stored_by_another_worker_after_start_up_is_a_miss() -> None:
    store = CountingCache()
    cache = FilteredCache(store)
    cache.load()
    late = keys(1, "late")
    store.put_many({late[0]: {"status": "openai", "facts": []}})
    assert cache.get_many(late) == {}  # one more model call at worst; the store keeps its answer


def test_keys_the_batch_step_wrote_after_start_up_are_read_when_asked_for_and_known_after() -> None:
    store = CountingCache()
    cache = FilteredCache(store)
    cache.load()
    batched, missing = keys(2, "batched"), keys(1, "never")
    store.put_many({k: {"status": "openai", "facts": []} for k in batched})
    found = cache.get_many(batched + missing, also=batched + missing)
    assert set(found) == set(batched)
    assert store.reads == [batched + missing]  # one read, by key
    assert set(cache.get_many(batched + missing)) == set(batched)  # known from now on
    assert store.reads[-1] == batched
    assert store.key_reads == 1


def test_a_failed_write_leaves_the_key_unknown() -> None:
    class Down(CountingCache):
        def put_many(self, entries: dict[str, dict[str, Any]]) -> None:
            raise OSError("down")

    store = Down()
    cache = FilteredCache(store)
    with pytest.raises(OSError):
        cache.put_many({keys(1)[0]: {}})
    assert keys(1)[0] not in cache.load()
