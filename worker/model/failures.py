"""What a failed model call means. Pure: no network, no clock (``now_s`` is an argument).

:class:`ApiFailure` is the client's neutral account of a failed call (the SDK's exceptions
translated at the boundary); :func:`classify` decides what finpipe does about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

from worker.model.formats import names_format
from worker.model.params import OPTIONAL_PARAMS

FailureKind = Literal["status", "timeout", "connection", "unreadable"]


def outcome_of(failure: ApiFailure) -> str:
    """The failure's class for metrics: ``rate_limited`` (429), ``server_error`` (5xx),
    ``refused`` (other statuses), ``timeout``, ``connection`` or ``unreadable``."""
    if failure.kind != "status":
        return str(failure.kind)
    status = failure.status or 0
    if status == 429:
        return "rate_limited"
    return "server_error" if status >= 500 else "refused"


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
        headers: Mapping[str, str] | None = None,
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
        #: the answer's headers, lower-cased (``x-ratelimit-*`` come with errors too)
        self.headers: Mapping[str, str] = headers or {}

    def __str__(self) -> str:
        return self.message if self.status is None else f"{self.status}: {self.message}"


Verdict = Literal["transient", "later", "config", "rejected", "param", "format"]
#: words with which servers say a parameter or a value is not accepted
REFUSALS = ("unsupported", "not supported", "unrecognized", "unknown", "extra", "not permitted")


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do about a failure.

    ``transient``: retry here with backoff; ``later``: retry through the broker only (the server
    said ``x-should-retry: false``); ``config``: stop the worker, ``hint`` says what to change;
    ``rejected``: this input is bad; ``param``: leave out ``param`` and ask again; ``format``:
    fall back to the next output format and ask again."""

    verdict: Verdict
    hint: str = ""
    param: str | None = None


def rate_limited(failure: ApiFailure) -> bool:
    """A 429 for the account's rate limit (``rate_limit_exceeded``): waited out in the worker,
    never a failure of the reports. Not ``insufficient_quota`` (a stop), nor a flex tier without
    capacity (``resource_unavailable``: the standard tier takes the call)."""
    if failure.status != 429 or failure.code in ("insufficient_quota", "resource_unavailable"):
        return False
    text = _text(failure)
    return failure.code == "rate_limit_exceeded" or (
        failure.code is None and "rate limit" in text and "insufficient_quota" not in text
    )


def classify(failure: ApiFailure, sent: Mapping[str, object] | None = None) -> Decision:
    """The decision for ``failure`` of a request with arguments ``sent``; the first rule that
    applies wins."""
    if failure.kind != "status" or failure.status is None:
        return Decision("transient")
    for rule in (_quota, _credentials, _format, _parameter, _server_says, _by_status):
        decision = rule(failure, sent or {})
        if decision is not None:
            return decision
    return Decision("rejected")


def _text(failure: ApiFailure) -> str:
    return f"{failure.message} {failure.body_text}".lower()


def _quota(failure: ApiFailure, sent: Mapping[str, object]) -> Decision | None:
    if failure.code == "insufficient_quota" or "insufficient_quota" in _text(failure):
        return Decision(
            "config",
            "the account behind OPENAI_API_KEY has no quota left: add credit or use another key",
        )
    return None


def _credentials(failure: ApiFailure, sent: Mapping[str, object]) -> Decision | None:
    if failure.status in (401, 403, 404):
        return Decision("config", "check OPENAI_API_KEY, OPENAI_BASE_URL and FINPIPE_MODEL")
    return None


def _format(failure: ApiFailure, sent: Mapping[str, object]) -> Decision | None:
    """A 400, 422 or 500 naming ``response_format`` or ``json_schema`` (llama-cpp-python answers
    500 with a validation error naming ``response_format.type``)."""
    if failure.status not in (400, 422, 500) or "response_format" not in sent:
        return None
    param = failure.param or ""
    text = _text(failure)
    if param.startswith("response_format") or names_format(text):
        return Decision("format")
    return None


def _parameter(failure: ApiFailure, sent: Mapping[str, object]) -> Decision | None:
    """A 400 or 422 naming an optional parameter ("Unsupported parameter: 'temperature'")."""
    if failure.status not in (400, 422):
        return None
    if failure.param in OPTIONAL_PARAMS:
        return Decision("param", param=failure.param)
    text = _text(failure)
    if any(word in text for word in REFUSALS):
        named = [name for name in OPTIONAL_PARAMS if name in text]
        sent_named = [name for name in named if name in sent]
        if named:
            # the first one named that we sent ("max_tokens ... use max_completion_tokens")
            return Decision("param", param=min(sent_named or named, key=text.index))
    if failure.param == "model":
        return Decision("config", "check FINPIPE_MODEL")
    return None


def _server_says(failure: ApiFailure, sent: Mapping[str, object]) -> Decision | None:
    """``x-should-retry`` overrides the status, as in OpenAI's own SDK."""
    if failure.should_retry is True:
        return Decision("transient")
    if failure.should_retry is False and _by_status(failure, sent) == Decision("transient"):
        return Decision("later")
    return None


def _by_status(failure: ApiFailure, sent: Mapping[str, object]) -> Decision | None:
    status = failure.status or 0
    if status in (408, 409, 429) or status >= 500:
        return Decision("transient")
    return None


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
