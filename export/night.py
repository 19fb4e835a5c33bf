"""Whether the night's work is finished, for the scheduled export to wait on.

The night's work is done when every report the last sweep published is stored (``done``) or
dead-lettered (``dead``) and the work queue and the delayed-retry queues hold nothing. A report a
worker holds unacknowledged is neither stored nor in a queue's ready count, so it is counted by
its id. ``outstanding`` is the pure decision; ``night_check`` reads the broker and the store
through the callables it is given; ``wait_for_night`` polls until done or the time runs out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from schemas.errors import FinpipeError

log = logging.getLogger(__name__)

#: the statuses that end a report's way through the pipeline
SETTLED = ("done", "dead")
#: report ids named in ``run_report.json`` (the count is always complete)
SHOWN_IDS = 20


class Depth(Protocol):
    """A queue's depth as ``adapters.rabbitmq.QueueDepth`` gives it (ready messages)."""

    @property
    def name(self) -> str: ...

    @property
    def messages(self) -> int: ...


@dataclass(frozen=True)
class Outstanding:
    """What of the night's work was not finished when last looked at: ``queued`` maps a queue
    (work or delayed-retry) to its ready messages, ``reports`` are ids the sweep published that
    are neither stored nor dead-lettered, ``unknown`` says why it could not be read."""

    queued: Mapping[str, int] = field(default_factory=dict)
    reports: tuple[str, ...] = ()
    unknown: str | None = None

    @property
    def done(self) -> bool:
        return self.unknown is None and not self.reports and not any(self.queued.values())

    def as_dict(self) -> dict[str, Any]:
        """For ``run_report.json``: every count, and the first ``SHOWN_IDS`` report ids."""
        return {
            "summary": self.line(),
            "reports_not_stored": len(self.reports),
            "report_ids": list(self.reports[:SHOWN_IDS]),
            "queues": {k: v for k, v in self.queued.items() if v},
            "unknown": self.unknown,
        }

    def line(self) -> str:
        """One line for the log and the page: what was still outstanding."""
        if self.done:
            return "nothing"
        parts = []
        if self.reports:
            parts.append(f"{len(self.reports)} report(s) of the sweep neither stored nor dead")
        parts.extend(f"{n} message(s) in {q}" for q, n in self.queued.items() if n)
        if self.unknown:
            parts.append(f"unknown ({self.unknown})")
        return "; ".join(parts)


def outstanding(
    depths: Iterable[Depth], published: Sequence[str], statuses: Mapping[str, str]
) -> Outstanding:
    """What is left: the non-empty queues of ``depths``, and the ``published`` report ids whose
    status (``statuses``, absent: never stored) is not a settled one. Pure."""
    queued = {d.name: d.messages for d in depths if d.messages}
    reports = tuple(r for r in dict.fromkeys(published) if statuses.get(r) not in SETTLED)
    return Outstanding(queued, reports)


class NightStore(Protocol):
    """What the check reads from the store (``adapters.mongo.MongoStore``)."""

    def last_run(self, name: str) -> dict[str, Any] | None: ...

    def report_statuses(self, report_ids: Sequence[str]) -> dict[str, str]: ...


def night_check(
    depths: Callable[[], Sequence[Depth]], store: NightStore, sweep_run: str
) -> Callable[[], Outstanding]:
    """A check of the night's work: the queues as ``depths`` reads them, the reports recorded
    in the ``sweep_run`` record (``report_ids``). A report once settled is not looked up again.
    Errors of either service are an ``unknown`` answer, never raised."""
    remaining: list[str] | None = None

    def check() -> Outstanding:
        nonlocal remaining
        try:
            if remaining is None:
                run = store.last_run(sweep_run) or {}
                remaining = [str(r) for r in run.get("report_ids") or []]
            queues = depths()
            result = outstanding(queues, remaining, store.report_statuses(remaining))
        except FinpipeError as exc:
            return Outstanding(unknown=str(exc))
        remaining = list(result.reports)
        return result

    return check


def wait_for_night(
    check: Callable[[], Outstanding],
    timeout_s: float,
    *,
    poll_s: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Outstanding:
    """Poll ``check`` until the night's work is done or ``timeout_s`` passes; return the last
    answer (``done`` or what was still outstanding)."""
    deadline = clock() + timeout_s
    while True:
        left = check()
        if left.done:
            log.info("drain check: the night's work is done")
            return left
        log.info("drain check: waiting for %s", left.line())
        remaining = deadline - clock()
        if remaining <= 0:
            log.warning(
                "drain check: gave up after %.0f s; still outstanding: %s", timeout_s, left.line()
            )
            return left
        sleep(min(poll_s, remaining))
