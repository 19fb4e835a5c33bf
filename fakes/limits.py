"""Rate limits as OpenAI enforces them, for the local test server (:mod:`fakes.openai_server`).

Tokens per minute and requests per minute, each a bucket that holds one minute's worth, starts
full and refills continuously. A request is charged at admission: its prompt estimated from the
characters of its messages (4 per token) plus the ``max_completion_tokens`` (or ``max_tokens``)
it asks for, however short the answer. Every answer carries the ``x-ratelimit-*`` headers; a
request over a limit gets a 429 with ``code: "rate_limit_exceeded"`` and a message ending
"Please try again in 1.2s.", and no ``retry-after`` header.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def charge_of(body: dict[str, Any]) -> int:
    """OpenAI's estimate at admission: prompt characters / 4 (the messages and the output
    format's schema) plus the completion asked for."""
    chars = sum(len(str(m.get("content", ""))) for m in body.get("messages") or [])
    if body.get("response_format"):
        chars += len(json.dumps(body["response_format"]))
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    return math.ceil(chars / 4) + int(limit)


def duration(seconds: float) -> str:
    """A duration as OpenAI's headers and messages write it: ``20ms``, ``1.2s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(math.ceil(seconds * 1000), 1)}ms"
    if seconds < 60:
        return f"{math.ceil(seconds * 1000) / 1000:g}s"
    minutes, rest = divmod(math.ceil(seconds), 60)
    return f"{minutes}m{rest}s"


@dataclass
class _Bucket:
    per_min: int
    level: float
    at: float

    def refill(self, now: float) -> None:
        self.level = min(self.per_min, self.level + self.per_min / 60 * (now - self.at))
        self.at = now

    def until(self, amount: float) -> float:
        return max(amount - self.level, 0.0) / (self.per_min / 60)


class RateLimits:
    """The shared budget of one organization; thread-safe."""

    def __init__(
        self,
        tpm: int | None = None,
        rpm: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        now = clock()
        self.tokens = _Bucket(tpm, tpm, now) if tpm else None
        self.requests = _Bucket(rpm, rpm, now) if rpm else None
        self._lock = threading.Lock()
        self.admitted = 0
        self.refused = 0
        self.admitted_tokens = 0

    def admit(self, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        """``(200, None, headers)`` when admitted (and charged), else ``(429, error, headers)``."""
        charge = charge_of(body)
        model = str(body.get("model", "?"))
        with self._lock:
            now = self._clock()
            for bucket in (self.tokens, self.requests):
                if bucket is not None:
                    bucket.refill(now)
            over = self._over(charge, model)
            if over is None:
                if self.tokens is not None:
                    self.tokens.level -= charge
                if self.requests is not None:
                    self.requests.level -= 1
                self.admitted += 1
                self.admitted_tokens += charge
            else:
                self.refused += 1
            headers = self._headers()
        if over is None:
            return 200, None, headers
        error = {"message": over, "type": "tokens", "param": None, "code": "rate_limit_exceeded"}
        return 429, {"error": error}, headers

    def _over(self, charge: int, model: str) -> str | None:
        for bucket, amount, what in (
            (self.requests, 1, "requests per min (RPM)"),
            (self.tokens, charge, "tokens per min (TPM)"),
        ):
            if bucket is not None and bucket.level < amount:
                used = bucket.per_min - max(bucket.level, 0)
                return (
                    f"Rate limit reached for {model} in organization org-fake on {what}: "
                    f"Limit {bucket.per_min}, Used {used:.0f}, Requested {amount}. "
                    f"Please try again in {duration(bucket.until(amount))}."
                )
        return None

    def _headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for bucket, kind in ((self.tokens, "tokens"), (self.requests, "requests")):
            if bucket is None:
                continue
            out[f"x-ratelimit-limit-{kind}"] = str(bucket.per_min)
            out[f"x-ratelimit-remaining-{kind}"] = str(max(math.floor(bucket.level), 0))
            out[f"x-ratelimit-reset-{kind}"] = duration(bucket.until(bucket.per_min))
        return out
