"""What a failed model call means. Pure: no network, no clock (``now_s`` is an argument).

:class:`ApiFailure` is the client's neutral account of a failed call (the SDK's exceptions
translated at the boundary); :func:`classify` decides what finpipe does about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

FailureKind = Literal["status", "timeout", "connection", "unreadable"]


class ApiFailure(Exception):
    """A call that produced no usable completion, with what the server said."""

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        status: int | None = None,
        param: str | None = None,
        code: str | None = None,
        body_text: str = "",
        retry_after_s: float | None = None,
        should_retry: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.param = param
        self.code = code
        self.body_text = body_text
        self.retry_after_s = retry_after_s
        self.should_retry = should_retry

    def __str__(self) -> str:
        return self.message if self.status is None else f"{self.status}: {self.message}"


Verdict = Literal["transient", "config", "rejected"]


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    #: for "config": what the operator should check
    hint: str = ""


def classify(failure: ApiFailure) -> Decision:
    """Transient (retry), configuration (stop the worker) or rejected (this input is bad)."""
    if failure.kind != "status" or failure.status is None:
        return Decision("transient")
    status = failure.status
    if status in (401, 403, 404):
        return Decision("config", "check OPENAI_API_KEY, OPENAI_BASE_URL and FINPIPE_MODEL")
    if status in (408, 429) or status >= 500:
        return Decision("transient")
    if status == 400 and about_request_shape(failure):
        return Decision("config", "does the server support strict json_schema output?")
    return Decision("rejected")


def about_request_shape(failure: ApiFailure) -> bool:
    """A 400 about ``response_format`` or the model is a configuration problem, not bad input."""
    if failure.param in ("response_format", "model"):
        return True
    text = failure.message.lower()
    return "response_format" in text or "json_schema" in text


def retry_after_s(headers: Mapping[str, str], now_s: float) -> float | None:
    """``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date), if the server sent one."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(float(raw_ms) / 1000.0, 0.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now_s, 0.0)


def should_retry(headers: Mapping[str, str]) -> bool | None:
    """The server's ``x-should-retry`` header: True, False, or None when absent."""
    raw = (headers.get("x-should-retry") or "").strip().lower()
    return True if raw == "true" else False if raw == "false" else None
