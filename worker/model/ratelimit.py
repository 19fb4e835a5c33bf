"""The account's rate limits as a budget: how long a call must wait before it is sent. Pure: no
clock, no sleep, no I/O (``now_s`` is an argument, any monotonic seconds).

OpenAI charges a request at admission: its prompt tokens (estimated from characters) plus the
``max_completion_tokens`` it asks for, against a tokens-per-minute and a requests-per-minute
budget shared by everything using the organization's key. Each budget refills continuously and
holds at most one minute's worth. Every answer says where the shared budget stands
(``x-ratelimit-remaining-tokens`` and friends), so several workers converge through the headers
alone, without talking to each other.

Each budget is a :class:`Bucket`. An answer's headers reset it to what the server saw when it
admitted that request; this worker's own calls since then are taken off; the others' part of the
spending is estimated from how the server's figure fell faster than our own calls explain, and a
call waits for room at the rate left to us, with room for the others' calls. A 429 ("Please try
again in 1.2s.") puts a barrier before which nothing is sent.
"""

from __future__ import annotations

import json
import math
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: what a call is charged at admission, from the characters of its prompt
CHARS_PER_TOKEN = 4
#: the other workers' share is measured over at least this many seconds of answers...
FOREIGN_WINDOW_MIN_S = 0.3
#: ...and at most this many
FOREIGN_WINDOW_MAX_S = 20.0
#: a shorter wait is no wait (rounding)
MIN_WAIT_S = 0.001
#: the other workers' share is smoothed over about this many seconds
FOREIGN_SMOOTHING_S = 10.0
#: the others' part fades by e every OTHERS_FADE_S seconds without an answer, after a grace
OTHERS_GRACE_S = 3.0
OTHERS_FADE_S = 10.0
#: we always keep at least this share of the refill rate (a wrong estimate cannot starve us)
MIN_SHARE = 0.1

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_TRY_AGAIN = re.compile(r"try again in\s+((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)", re.IGNORECASE)


def parse_duration_s(text: str | None) -> float | None:
    """``"1s"``, ``"6m0s"``, ``"20ms"``, ``"1h2m3.5s"`` or plain seconds (``"0.5"``) in seconds;
    None when unreadable."""
    if text is None:
        return None
    raw = text.strip().lower()
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    parts = _DURATION.findall(raw)
    if not parts or "".join(n + u for n, u in parts) != raw:
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * scale[u] for n, u in parts)


def try_again_in_s(message: str | None) -> float | None:
    """The wait a 429's message asks for ("... Please try again in 1.2s."), if it says."""
    found = _TRY_AGAIN.search(message or "")
    return parse_duration_s(found.group(1)) if found else None


def estimate_charge(body: Mapping[str, Any]) -> int:
    """The tokens a request is charged at admission: its prompt (characters / 4, rounded up, of
    the messages and the output format) and the completion tokens it asks for."""
    chars = 0
    for message in body.get("messages") or []:
        content = message.get("content", "") if isinstance(message, Mapping) else ""
        chars += len(content) if isinstance(content, str) else len(str(content))
    response_format = body.get("response_format")
    if response_format:
        chars += len(json.dumps(response_format))
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    return math.ceil(chars / CHARS_PER_TOKEN) + int(limit)


@dataclass(frozen=True, slots=True)
class Reading:
    """What one answer's headers say about one budget."""

    limit: float | None
    remaining: float | None
    reset_s: float | None


def read_headers(headers: Mapping[str, str], kind: str) -> Reading:
    """The ``x-ratelimit-*-<kind>`` headers (``kind``: "tokens" or "requests")."""
    lower = {k.lower(): v for k, v in headers.items()}

    def number(name: str) -> float | None:
        try:
            return float(lower[f"x-ratelimit-{name}-{kind}"])
        except (KeyError, ValueError):
            return None

    return Reading(
        number("limit"),
        number("remaining"),
        parse_duration_s(lower.get(f"x-ratelimit-reset-{kind}")),
    )


@dataclass(frozen=True, slots=True)
class _Seen:
    seq: int
    at_s: float
    remaining: float


class Bucket:
    """One budget (tokens or requests per minute) as this worker believes it stands: what the
    server said last (``remaining`` at the admission of one of our calls), refilled since at the
    rate the others leave us, minus our own calls booked since."""

    def __init__(self, per_min: float | None = None) -> None:
        self.per_min = per_min
        #: the part of the spending on this key that is not ours (other workers), 0 to 1
        self.others = 0.0
        #: what the others spend, per second (more than the refill while the bucket drains)
        self.others_per_s = 0.0
        self._seen: deque[_Seen] = deque()
        #: our reservations: (seq, planned send time, charge)
        self._own: deque[tuple[int, float, float]] = deque()
        #: the starting point without any header: a full bucket
        self._start: _Seen | None = None
        self._learned_at_s = -math.inf

    @property
    def known(self) -> bool:
        return bool(self.per_min)

    @property
    def capacity(self) -> float:
        return float(self.per_min or 0)

    @property
    def rate_per_s(self) -> float:
        return self.capacity / 60.0

    def others_at(self, now_s: float) -> float:
        """The others' part of the spending, fading while no answer tells us more (when every
        worker waits, nobody learns anything new: the estimates must not hold them all back)."""
        if not self._seen:
            return self.others
        quiet_s = max(now_s - self._seen[-1].at_s - OTHERS_GRACE_S, 0.0)
        return self.others * math.exp(-quiet_s / OTHERS_FADE_S)

    def share_per_s(self, now_s: float) -> float:
        """The refill rate the others leave us."""
        return self.rate_per_s * max(1.0 - self.others_at(now_s), MIN_SHARE)

    def _base(self, now_s: float) -> _Seen:
        if self._seen:
            return self._seen[-1]
        if self._start is None:
            self._start = _Seen(0, now_s, self.capacity)
        return self._start

    def _booked_after(self, seq: int, until_seq: int | None = None) -> float:
        return sum(c for s, _, c in self._own if s > seq and (until_seq is None or s <= until_seq))

    def level(self, now_s: float) -> float:
        """Tokens (or requests) believed free at ``now_s``, our booked calls taken off."""
        if not self.known:
            return math.inf
        base = self._base(now_s)
        elapsed_s = max(now_s - base.at_s, 0.0)
        share = self.share_per_s(now_s)
        # the others spending more than their share eat the stock (no further than to empty)
        excess = max(self.others_per_s - (self.rate_per_s - share), 0.0)
        stock = base.remaining - min(max(base.remaining, 0.0), excess * elapsed_s)
        return min(self.capacity, stock + share * elapsed_s - self._booked_after(base.seq))

    def margin(self, charge: float, now_s: float) -> float:
        """Room left for the others' calls: about as many as they send per call of ours."""
        mine = max(1.0 - self.others_at(now_s), MIN_SHARE)
        extra = charge * (1.0 - mine) / mine
        return max(min(extra, self.capacity / 4, self.capacity - charge), 0.0)

    def wait_s(self, charge: float, now_s: float) -> float:
        """How long a call of ``charge`` must wait from ``now_s`` for room (the others keep
        spending their share meanwhile)."""
        if not self.known:
            return 0.0
        charge = min(charge, self.capacity)
        deficit = charge + self.margin(charge, now_s) - self.level(now_s)
        return max(deficit, 0.0) / self.share_per_s(now_s)

    def book(self, seq: int, at_s: float, charge: float) -> None:
        self._own.append((seq, at_s, charge))
        if len(self._own) > 512:
            self._own.popleft()

    def cancel(self, seq: int) -> None:
        self._own = deque(r for r in self._own if r[0] != seq)

    def observe(self, seq: int, at_s: float, reading: Reading) -> None:
        """The server's figures as of the admission of our reservation ``seq``, sent at
        ``at_s``. Older news than what we have is ignored."""
        if reading.limit:
            self.per_min = reading.limit
        if not self.known or (self._seen and seq <= self._seen[-1].seq):
            return
        if reading.remaining is not None:
            remaining = reading.remaining
        elif reading.reset_s is not None:
            remaining = self.capacity - reading.reset_s * self.rate_per_s
        else:
            return
        seen = _Seen(seq, at_s, remaining)
        self._learn_others(seen)
        self._seen.append(seen)
        while len(self._seen) > 1 and at_s - self._seen[0].at_s > FOREIGN_WINDOW_MAX_S:
            self._seen.popleft()
        oldest = self._seen[0].seq
        while self._own and self._own[0][0] <= oldest:
            self._own.popleft()

    def _learn_others(self, seen: _Seen) -> None:
        """Compare what the key spent between an older figure and this one (the fall of the
        server's figure plus the refill) with what we booked meanwhile: the rest is the others'."""
        base = next((s for s in self._seen if seen.at_s - s.at_s >= FOREIGN_WINDOW_MIN_S), None)
        if base is None:
            return
        span_s = seen.at_s - base.at_s
        spent = min(self.capacity, base.remaining + self.rate_per_s * span_s) - seen.remaining
        ours = self._booked_after(base.seq, seen.seq)
        if spent <= 0 and ours <= 0:
            return
        theirs = max(spent - ours, 0.0)
        measured = min(theirs / max(spent, ours), 1.0 - MIN_SHARE)
        # smoothed over the answers of about FOREIGN_SMOOTHING_S seconds
        weight = min((seen.at_s - self._learned_at_s) / FOREIGN_SMOOTHING_S, 1.0)
        self._learned_at_s = seen.at_s
        self.others += weight * (measured - self.others)
        self.others_per_s += weight * (theirs / span_s - self.others_per_s)


@dataclass(frozen=True, slots=True)
class Ticket:
    """A call booked against the budgets, sent at ``sent_s``."""

    seq: int
    tokens: int
    sent_s: float


class Budget:
    """The token and request budgets of one model account, as this worker sees them. Not
    thread-safe: :class:`worker.model.pacing.Pacer` holds the lock."""

    def __init__(
        self, tokens_per_min: float | None = None, requests_per_min: float | None = None
    ) -> None:
        self.tokens = Bucket(tokens_per_min)
        self.requests = Bucket(requests_per_min)
        self._seq = 0
        #: nothing is sent before this time (a 429 asked us to wait)
        self.barrier_s = 0.0

    def wait_s(self, tokens: int, now_s: float) -> tuple[float, str]:
        """How long a call of ``tokens`` must wait before it may be sent, and which budget holds
        it back ("tokens", "requests", "refused": a 429's barrier; "" when it may go now). Ask
        again after waiting: the answers that came in meanwhile may change it."""
        waits = {
            "tokens": self.tokens.wait_s(tokens, now_s),
            "requests": self.requests.wait_s(1, now_s),
            "refused": self.barrier_s - now_s,
        }
        reason, wait = max(waits.items(), key=lambda kv: kv[1])
        return (wait, reason) if wait >= MIN_WAIT_S else (0.0, "")

    def book(self, tokens: int, now_s: float) -> Ticket:
        """The call of ``tokens`` is sent now: take it off both budgets."""
        self._seq += 1
        self.tokens.book(self._seq, now_s, tokens)
        self.requests.book(self._seq, now_s, 1)
        return Ticket(self._seq, tokens, now_s)

    def release(self, ticket: Ticket) -> None:
        """The call was never sent (or refused): it spent nothing."""
        self.tokens.cancel(ticket.seq)
        self.requests.cancel(ticket.seq)

    def answered(self, ticket: Ticket, headers: Mapping[str, str], sent_s: float) -> None:
        """The headers of the answer to ``ticket``'s call, sent at ``sent_s``."""
        self.tokens.observe(ticket.seq, sent_s, read_headers(headers, "tokens"))
        self.requests.observe(ticket.seq, sent_s, read_headers(headers, "requests"))

    def refused(
        self,
        ticket: Ticket,
        headers: Mapping[str, str],
        message: str,
        now_s: float,
        sent_s: float | None = None,
    ) -> float:
        """A 429 for a rate limit: the call spent nothing, and nothing goes out before the wait
        the server asks for (its message, ``retry-after`` style headers, or, when it says
        nothing, the time our own estimate needs). Returns that wait."""
        self.release(ticket)
        at_s = now_s if sent_s is None else sent_s
        self.tokens.observe(ticket.seq, at_s, read_headers(headers, "tokens"))
        self.requests.observe(ticket.seq, at_s, read_headers(headers, "requests"))
        wait = try_again_in_s(message)
        if wait is None:
            wait = max(self.tokens.wait_s(ticket.tokens, now_s), 1.0)
        self.barrier_s = max(self.barrier_s, now_s + wait)
        return wait
