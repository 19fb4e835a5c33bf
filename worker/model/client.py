"""The OpenAI SDK client: the only module that imports ``openai``.

One chat completion per :meth:`ModelClient.complete`, with the SDK's own retries off (finpipe
decides about retries, :mod:`worker.model.calls`, and waits for the rate limit itself,
:mod:`worker.model.pacing`: the SDK would resend a 429 at once). The SDK's exceptions are
translated here into :class:`~worker.model.failures.ApiFailure`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from schemas.settings import Settings
from worker.model.failures import ApiFailure, retry_after_s, should_retry

__all__ = ["BATCH_TRANSIENT", "ChatCompletion", "ModelClient", "TokenCounts", "token_counts"]


class ModelClient:
    """One HTTP client for an OpenAI-compatible server, shared by the worker's threads."""

    def __init__(self, settings: Settings) -> None:
        key = settings.openai_api_key
        self._client = openai.OpenAI(
            api_key=key.get_secret_value() if key is not None else "unset",
            base_url=settings.openai_base_url,
            timeout=settings.llm_timeout_s,
            max_retries=0,
        )

    def complete(self, body: dict[str, Any], timeout_s: float | None = None) -> ChatCompletion:
        """The completion for ``body`` (the arguments of ``chat.completions.create``), or
        :class:`ApiFailure` saying what went wrong. ``timeout_s`` replaces the client's timeout
        for this call (flex calls may queue)."""
        return self.send(body, timeout_s)[0]

    def send(
        self, body: dict[str, Any], timeout_s: float | None = None
    ) -> tuple[ChatCompletion, dict[str, str]]:
        """:meth:`complete`, with the answer's headers (``x-ratelimit-*``: the shared budget)."""
        extra: dict[str, Any] = {"timeout": timeout_s} if timeout_s is not None else {}
        try:
            raw = self._client.chat.completions.with_raw_response.create(**body, **extra)
            headers = {k.lower(): v for k, v in raw.headers.items()}
            completion = raw.parse()
        except openai.APIStatusError as exc:
            raise _status_failure(exc) from exc
        except openai.APITimeoutError as exc:
            raise ApiFailure("timeout", f"{type(exc).__name__}: {exc}") from exc
        except openai.APIConnectionError as exc:
            raise ApiFailure("connection", f"{type(exc).__name__}: {exc}") from exc
        except (json.JSONDecodeError, openai.APIResponseValidationError) as exc:
            # a 200 whose body is cut off or not the expected document
            raise _unreadable(exc) from exc
        if not isinstance(getattr(completion, "choices", None), list):
            # a 200 that is no chat completion at all (a proxy's HTML page)
            raise _unreadable(completion)
        return completion, headers

    def batch_api(self) -> openai.OpenAI:
        """The SDK client itself, for the Batch API (``files`` and ``batches``: the protocol
        ``worker.batch_api.client.BatchClient``)."""
        return self._client

    def close(self) -> None:
        self._client.close()


#: errors of the Batch API worth waiting out (the next poll tries again): a dropped connection,
#: a timeout, a 5xx, a 429
BATCH_TRANSIENT: tuple[type[BaseException], ...] = (
    openai.APIConnectionError,
    openai.InternalServerError,
    openai.RateLimitError,
)


def _status_failure(exc: openai.APIStatusError) -> ApiFailure:
    headers = exc.response.headers
    try:
        body_text = exc.response.text[:2000]
    except Exception:  # a streamed or closed body: the message is enough
        body_text = ""
    body = exc.body if isinstance(exc.body, dict) else {}
    message = body.get("message")
    return ApiFailure(
        "status",
        message if isinstance(message, str) and message else exc.message,
        status=exc.status_code,
        param=exc.param,
        code=exc.code,
        body_text=body_text,
        retry_after_s=retry_after_s(headers, time.time()),
        should_retry=should_retry(headers),
        headers={k.lower(): v for k, v in headers.items()},
    )


def _unreadable(answer: object) -> ApiFailure:
    shown = str(answer).replace("\n", " ")[:200]
    return ApiFailure("unreadable", f"the model API's answer is not a chat completion: {shown!r}")


@dataclass(frozen=True, slots=True)
class TokenCounts:
    prompt: int = 0
    completion: int = 0
    #: prompt tokens read from the prompt cache
    cached: int = 0
    #: prompt tokens written to the prompt cache (reported by some models only)
    cache_write: int = 0
    #: hidden reasoning, part of ``completion``
    reasoning: int = 0


def token_counts(completion: ChatCompletion) -> TokenCounts:
    """The usage of a completion; servers that leave out a field count 0 for it."""
    u = completion.usage
    if u is None:
        return TokenCounts()
    details = u.prompt_tokens_details
    out_details = u.completion_tokens_details
    return TokenCounts(
        prompt=int(u.prompt_tokens or 0),
        completion=int(u.completion_tokens or 0),
        cached=int(details.cached_tokens or 0) if details else 0,
        cache_write=int(getattr(details, "cache_write_tokens", 0) or 0) if details else 0,
        reasoning=int(out_details.reasoning_tokens or 0) if out_details else 0,
    )
