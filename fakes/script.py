"""What the local OpenAI server answers: the actions a test scripts (a reply, an error status, a
delay, a refusal, garbage) and, by default, the echo of the rules extractor, as a careful model
would answer; the same echo answers the request lines of a Batch API job.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from worker.model.prompt import request_snippets

Snippets = list[dict[str, str]]


@dataclass
class Reply:
    """Answer with this content: a dict (sent as JSON), a string (sent as is), or a function of
    the request's snippets returning either."""

    content: dict[str, Any] | str | Callable[[Snippets], dict[str, Any] | str]
    finish_reason: str = "stop"


@dataclass
class Status:
    """Answer with an HTTP error status (429 with ``retry_after``, 500, 401, 400...)."""

    code: int
    retry_after: str | None = None
    message: str = "scripted error"
    param: str | None = None
    error_code: str | None = None
    #: the ``x-should-retry`` header ("true" or "false"), when set
    should_retry: str | None = None


@dataclass
class Delay:
    """Wait ``seconds`` before answering with ``then`` (the default behaviour when None)."""

    seconds: float
    then: Action | None = None


@dataclass
class Refuse:
    text: str = "I'm sorry, I cannot help with that."


@dataclass
class Echo:
    """Answer as the rules extractor reads each snippet. ``corrupt(text)`` true: that snippet's
    facts get a ``value_text`` absent from it; ``drop(text)`` true: its entry is left out;
    ``finish_reason`` lets an echo be marked truncated."""

    corrupt: Callable[[str], bool] | None = None
    drop: Callable[[str], bool] | None = None
    finish_reason: str = "stop"


@dataclass
class Garbage:
    """Answer ``200`` with a body that is not a chat completion at all (a proxy's HTML page, a
    cut connection's half a JSON document)."""

    body: str = "<html><body>502 Bad Gateway</body></html>"
    content_type: str = "text/html"


Action = Reply | Status | Delay | Refuse | Echo | Garbage


def malformed() -> Reply:
    """Content that is not JSON at all."""
    return Reply('{"snippets": [{"id": "s1", "facts": [')


def truncated() -> Reply:
    """A cut-off answer with ``finish_reason: "length"``."""
    return Reply('{"snippets": [{"id": "s1", "facts": [{"company": "XY', finish_reason="length")


def echo_rules(
    snippets: Snippets,
    corrupt: Callable[[str], bool] | None = None,
    drop: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """What a careful model would answer: the rules extractor's facts of each snippet."""
    from worker.rules import extract_facts

    entries = []
    for snip in snippets:
        text = snip["text"]
        if drop is not None and drop(text):
            continue
        facts = []
        for rf in extract_facts(text):
            f = rf.fact
            value_text = f.value_text
            if corrupt is not None and corrupt(text):
                value_text = "$987.6 million"
            facts.append(
                {
                    "company": f.company,
                    "metric": _metric_as_written(f.metric, f.value, f.value_text),
                    "value_text": value_text,
                    "value": float(f.value),
                    "period": f.quarter,
                    "currency": f.currency,
                }
            )
        entries.append({"id": snip["id"], "facts": facts})
    return {"snippets": entries}


_LOSS_NAMES = {
    "net income": "net loss",
    "operating income": "operating loss",
    "profit before tax": "loss before tax",
    "earnings per share": "loss per share",
    "gross profit": "gross loss",
}


def _metric_as_written(metric: str, value: Any, value_text: str) -> str:
    """A model writes "net loss" where the text does; the rules give "net income" < 0."""
    signed = any(mark in value_text.lower() for mark in ("-", "−", "(", "negative"))
    if value < 0 and not signed:
        prefix = "adjusted " if metric.startswith("adjusted ") else ""
        return prefix + _LOSS_NAMES.get(metric.removeprefix("adjusted "), metric)
    return metric


def chat_completion(body: Mapping[str, Any], content: str, finish_reason: str = "stop") -> dict:
    """A chat completion answering ``body`` with ``content``, tokens estimated at 4 chars."""
    prompt_chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
    prompt, completion = prompt_chars // 4, len(content) // 4
    return {
        "id": f"chatcmpl-batch-{next(_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
    }


def echo_answer(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The echo of the rules extractor, answering one request body (a Batch API request line)."""
    snippets = request_snippets(body.get("messages") or [])
    return 200, chat_completion(body, json.dumps(echo_rules(snippets)))


_ids = itertools.count(1)
