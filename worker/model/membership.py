"""Which extraction-cache keys the store holds, kept in the worker: a compact, exact-in-practice
membership set, so that a batch of snippets nobody has seen costs no read. Pure.

A key is kept as a 64-bit fingerprint (blake2b of the key): 8 bytes a key in a sorted array, plus a
set of the keys added since the last merge. Two different keys share a fingerprint with a
probability of about n / 2**64 (5e-14 at a million keys); such a collision only costs one read
that finds nothing, never a wrong answer.
"""

from __future__ import annotations

import hashlib
import heapq
from array import array
from bisect import bisect_left
from collections.abc import Iterable

#: keys added since the last merge that trigger the next one (a set of ints costs ~60 bytes a
#: key, the sorted array 8; merging a million-key array takes a fraction of a second)
MERGE_AT = 65_536


def fingerprint(key: str) -> int:
    """The 64-bit fingerprint of a cache key."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big")


class KeySet:
    """Cache keys by fingerprint: ``add``/``update``, ``in``, ``len``. Not thread-safe."""

    def __init__(self, keys: Iterable[str] = (), *, merge_at: int = MERGE_AT) -> None:
        self._sorted = _sorted_fingerprints(keys, merge_at)
        self._recent: set[int] = set()
        self._merge_at = merge_at

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        fp = fingerprint(key)
        if fp in self._recent:
            return True
        i = bisect_left(self._sorted, fp)
        return i < len(self._sorted) and self._sorted[i] == fp

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent)

    def add(self, key: str) -> None:
        if key in self:
            return
        self._recent.add(fingerprint(key))
        if len(self._recent) >= self._merge_at:
            self._merge()

    def update(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.add(key)

    def _merge(self) -> None:
        self._sorted = _merged([self._sorted, array("Q", sorted(self._recent))])
        self._recent = set()

    @property
    def nbytes(self) -> int:
        """Approximate memory held: the array, and the set of recent fingerprints."""
        recent = len(self._recent) * 60
        return self._sorted.buffer_info()[1] * self._sorted.itemsize + recent


def _sorted_fingerprints(keys: Iterable[str], run: int) -> array[int]:
    """The distinct fingerprints of ``keys``, sorted; built in sorted runs of ``run`` keys and
    merged, so that loading a million keys never holds them all as Python objects."""
    runs: list[array[int]] = []
    pending: set[int] = set()
    for key in keys:
        pending.add(fingerprint(key))
        if len(pending) >= run:
            runs.append(array("Q", sorted(pending)))
            pending = set()
    runs.append(array("Q", sorted(pending)))
    return runs[0] if len(runs) == 1 else _merged(runs)


def _merged(runs: list[array[int]]) -> array[int]:
    """Sorted runs into one sorted array without repeats."""
    out: array[int] = array("Q")
    last = -1
    for fp in heapq.merge(*runs):
        if fp != last:
            out.append(fp)
            last = fp
    return out
