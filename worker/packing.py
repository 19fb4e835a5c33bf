"""Packing snippets into model calls, deciding when to flush, and backoff. Pure.

Nothing here reads the clock, sleeps or draws random numbers of its own: ``now_s`` (a monotonic
time in seconds) and the random source are arguments, so every decision is a plain function of
its inputs and is tested as a table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


def pack(
    items: Sequence[T],
    *,
    max_items: int,
    max_chars: int,
    size: Callable[[T], int],
) -> list[list[T]]:
    """Split ``items`` in order into batches of at most ``max_items`` and ``max_chars``
    (the sum of ``size``). An item larger than ``max_chars`` on its own gets a batch of its own."""
    if max_items < 1 or max_chars < 1:
        raise ValueError("max_items and max_chars must be positive")
    batches: list[list[T]] = []
    current: list[T] = []
    chars = 0
    for item in items:
        n = size(item)
        if current and (len(current) >= max_items or chars + n > max_chars):
            batches.append(current)
            current, chars = [], 0
        current.append(item)
        chars += n
    if current:
        batches.append(current)
    return batches


@dataclass
class BatchBuffer(Generic[T]):
    """Snippets waiting for a model call, from one or many reports.

    A batch leaves as soon as it is full (``max_items`` or ``max_chars``); a partial batch leaves
    once its oldest snippet has waited ``wait_ms``, so a lone report is not held back.
    """

    max_items: int
    max_chars: int
    wait_ms: int
    size: Callable[[T], int]
    _pending: list[tuple[float, T]] = field(default_factory=list)

    def add(self, item: T, now_s: float) -> None:
        self._pending.append((now_s, item))

    def __len__(self) -> int:
        return len(self._pending)

    def deadline_s(self) -> float | None:
        """When the oldest pending snippet must leave at the latest; None when nothing waits."""
        if not self._pending:
            return None
        return self._pending[0][0] + self.wait_ms / 1000.0

    def due(self, now_s: float) -> bool:
        deadline = self.deadline_s()
        return deadline is not None and now_s >= deadline

    def take(
        self, now_s: float, *, force: bool = False, max_batches: int | None = None
    ) -> list[list[T]]:
        """The batches to send now: every full batch, and the remainder when it is due (or
        ``force``, e.g. at shutdown), at most ``max_batches`` of them, oldest first. What is not
        taken keeps waiting with its arrival time.

        ``max_batches`` is the number of free slots: while every slot is busy, a due remainder
        keeps filling instead of leaving as a small batch once a slot frees up."""
        if not self._pending:
            return []
        items = [item for _, item in self._pending]
        batches = pack(items, max_items=self.max_items, max_chars=self.max_chars, size=self.size)
        last = batches[-1]
        last_full = len(last) >= self.max_items or sum(self.size(i) for i in last) >= self.max_chars
        ready = batches if (force or last_full or self.due(now_s)) else batches[:-1]
        if max_batches is not None:
            ready = ready[:max_batches]
        self._pending = self._pending[sum(len(b) for b in ready) :]
        return ready


def backoff_s(
    attempt: int,
    *,
    rand: Callable[[], float],
    base_s: float = 0.5,
    cap_s: float = 30.0,
    retry_after_s: float | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry).

    Exponential with "equal jitter": half of ``min(cap_s, base_s * 2**attempt)`` plus a random
    share of the other half (``rand()`` in [0, 1)). A server's ``Retry-After`` is a floor: we
    never come back earlier than it asked.
    """
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    ceiling = min(cap_s, base_s * (2.0**attempt))
    delay = ceiling / 2.0 + rand() * ceiling / 2.0
    if retry_after_s is not None and retry_after_s > delay:
        return retry_after_s
    return delay
