"""Reading what a batch job returns: the output file and the error file. Pure.

An output line carries one request's answer::

    {"id": "batch_req_...", "custom_id": "fp-...", "error": null,
     "response": {"status_code": 200, "request_id": "...", "body": {<chat completion>}}}

An error-file line carries a request the server answered with an error status (``response`` with
a 4xx/5xx ``status_code`` and an ``{"error": ...}`` body), or one it never ran (``response`` null,
``error`` ``{"code": "batch_expired" | "batch_cancelled" | ..., "message": ...}``). Lines are
matched to requests by ``custom_id``, never by position. A line that cannot be read is counted,
never guessed at; its request simply stays without an answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RequestError:
    """Why one request of a batch has no answer."""

    code: str
    message: str
    status_code: int | None = None

    def __str__(self) -> str:
        status = f"HTTP {self.status_code} " if self.status_code is not None else ""
        return f"{status}{self.code}: {self.message}"


@dataclass
class ParsedResults:
    """Answers (custom_id -> chat completion body) and errors (custom_id -> why) of one job."""

    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, RequestError] = field(default_factory=dict)
    unreadable_lines: int = 0

    def add(self, other: ParsedResults) -> None:
        for cid, error in other.errors.items():
            if cid not in self.answers:
                self.errors[cid] = error
        for cid, body in other.answers.items():
            self.answers[cid] = body
            self.errors.pop(cid, None)
        self.unreadable_lines += other.unreadable_lines


def parse_result_lines(data: bytes | str | None) -> ParsedResults:
    """Read an output or an error file (both have the same line shape). An answer wins over an
    error for the same ``custom_id``."""
    out = ParsedResults()
    if not data:
        return out
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    for raw in text.splitlines():
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            out.unreadable_lines += 1
            continue
        cid = line.get("custom_id") if isinstance(line, dict) else None
        if not isinstance(cid, str) or not cid:
            out.unreadable_lines += 1
            continue
        answer, error = _read_line(line)
        if answer is not None:
            out.answers[cid] = answer
            out.errors.pop(cid, None)
        elif cid not in out.answers:
            out.errors[cid] = error or RequestError("unreadable", "no response and no error")
    return out


def _read_line(line: Mapping[str, Any]) -> tuple[dict[str, Any] | None, RequestError | None]:
    response = line.get("response")
    error = line.get("error")
    if isinstance(response, Mapping):
        status = response.get("status_code")
        body = response.get("body")
        if status == 200 and isinstance(body, dict) and isinstance(body.get("choices"), list):
            return body, None
        if status == 200:
            return None, RequestError("unreadable", "a 200 whose body is no chat completion", 200)
        detail = body.get("error") if isinstance(body, Mapping) else None
        if isinstance(detail, Mapping):
            code = str(detail.get("code") or detail.get("type") or "error")
            message = str(detail.get("message") or "")
        else:
            code, message = "error", str(body)[:500]
        return None, RequestError(code, message, status if isinstance(status, int) else None)
    if isinstance(error, Mapping):
        return None, RequestError(
            str(error.get("code") or "error"), str(error.get("message") or "")
        )
    return None, None


def merge(parts: Iterable[ParsedResults]) -> ParsedResults:
    out = ParsedResults()
    for part in parts:
        out.add(part)
    return out
