"""Waiting for the account's rate limit: the threads of one worker share one :class:`Pacer` over
one :class:`~worker.model.ratelimit.Budget` (the decisions are there; the lock, the clock, the
sleeping and the log lines are here).

A call waits before it is sent until the budget has room for its charge; a 429 for a rate limit
puts every call on hold for the time the server asks. Waiting is interruptible: once the worker
stops, a waiting call raises :class:`~schemas.errors.Interrupted` and its reports go back to the
queue unchanged. The log shows one line per stretch of waiting, not one per call; ``on_wait``
sees every call's wait (seconds, and which budget held it back) for metrics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from schemas.errors import Interrupted
from worker.model.ratelimit import Bucket, Budget, Ticket

log = logging.getLogger(__name__)

#: a waiting call looks at the budget again at least this often (answers change it)
RECHECK_S = 2.0
#: at most one log line per this many seconds about waiting, and one about 429s
LOG_EVERY_S = 30.0

#: called with the seconds a call waited and why ("tokens", "requests", "refused")
OnWait = Callable[[float, str], None]


class Pacer:
    """Thread-safe gate in front of the model API."""

    def __init__(
        self,
        budget: Budget,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_wait: OnWait | None = None,
    ) -> None:
        self.budget = budget
        self._clock = clock
        self.on_wait = on_wait
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._waiting = 0
        self._logged_wait_s = -LOG_EVERY_S
        self._logged_refusal_s = -LOG_EVERY_S
        self._refusals = 0
        #: calls admitted and refused (429) by the server, for the run's summary
        self.admitted = 0
        self.refused_calls = 0

    def now(self) -> float:
        return self._clock()

    def interrupt(self) -> None:
        """The worker is stopping: waiting calls give up, no new call waits."""
        self._stop.set()

    def acquire(self, tokens: int) -> Ticket:
        """Wait until a call of ``tokens`` may be sent, and book it. Raises
        :class:`Interrupted` when the worker stops meanwhile (the call was not sent)."""
        started = self._clock()
        reason = ""
        try:
            while True:
                if self._stop.is_set():
                    raise Interrupted("the worker is stopping; the call was not sent")
                with self._lock:
                    now = self._clock()
                    wait, why = self.budget.wait_s(tokens, now)
                    if wait <= 0:
                        return self.budget.book(tokens, now)
                    if not reason:
                        reason = why
                        self._enter(wait, why, tokens, now)
                self._stop.wait(min(wait, RECHECK_S))
        finally:
            if reason:
                with self._lock:
                    self._waiting -= 1
                if self.on_wait is not None:
                    self.on_wait(self._clock() - started, reason)

    def _enter(self, wait: float, why: str, tokens: int, now: float) -> None:
        self._waiting += 1
        if self._waiting > 1 or now - self._logged_wait_s < LOG_EVERY_S:
            return
        self._logged_wait_s = now
        bucket = self.budget.requests if why == "requests" else self.budget.tokens
        log.info(
            "model rate limit: holding calls about %.1f s for room (%s)",
            wait,
            _describe(why, bucket, tokens, now),
        )

    def answered(self, ticket: Ticket, headers: Mapping[str, str]) -> None:
        """The server answered (anything but a rate-limit 429): what its headers say."""
        with self._lock:
            self.admitted += 1
            self.budget.answered(ticket, headers, ticket.sent_s)

    def refused(self, ticket: Ticket, headers: Mapping[str, str], message: str) -> float:
        """A 429 for a rate limit: the call goes again after the wait the server asks for (every
        call waits with it). Returns that wait."""
        with self._lock:
            now = self._clock()
            self.refused_calls += 1
            wait = self.budget.refused(ticket, headers, message, now, ticket.sent_s)
            self._refusals += 1
            if now - self._logged_refusal_s < LOG_EVERY_S:
                return wait
            self._logged_refusal_s, count, self._refusals = now, self._refusals, 0
        log.warning(
            "model rate limit: %d call(s) refused (429) since the last note; holding calls "
            "%.1f s as the server asks (%s)",
            count,
            wait,
            message[:160],
        )
        return wait


def _describe(why: str, bucket: Bucket, tokens: int, now: float) -> str:
    if why == "refused":
        return "the server refused a call (429) and asked for a pause"
    unit = "requests" if why == "requests" else "tokens"
    others = f", other workers spend ~{bucket.others:.0%}" if bucket.others >= 0.05 else ""
    return (
        f"{unit}: ~{max(bucket.level(now), 0):,.0f} of {bucket.capacity:,.0f} a minute left, "
        f"a call of {tokens if unit == 'tokens' else 1:,}{others}"
    )
