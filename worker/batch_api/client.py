"""The part of an OpenAI client the batch runner uses, as protocols, and how its answers are read.

``openai.OpenAI`` satisfies :class:`BatchClient` as it is (``client.files`` and
``client.batches``); the runner never imports ``openai``. Answers are read by attribute, so the
SDK's pydantic objects and a test double work alike. Errors are told apart by their
``status_code`` attribute (the SDK's ``APIStatusError`` has one): a refusal that retrying cannot
change (:data:`REFUSED_STATUSES`) fails the part and sends its requests to the synchronous path;
anything else propagates, and the next run resumes from the stored state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

#: HTTP statuses of an upload or a batch creation that retrying cannot change (a server without
#: the Batch API answers 404 or 501; a file it will not take, 400 or 413).
REFUSED_STATUSES = frozenset({400, 403, 404, 405, 413, 415, 422, 501})


class FilesAPI(Protocol):
    def create(self, *, file: Any, purpose: Any) -> Any: ...

    def content(self, file_id: str) -> Any: ...

    def list(self, *, purpose: Any = ...) -> Iterable[Any]: ...


class BatchesAPI(Protocol):
    def create(
        self, *, input_file_id: str, endpoint: Any, completion_window: Any, metadata: Any
    ) -> Any: ...

    def retrieve(self, batch_id: str) -> Any: ...

    def list(self, *, limit: Any = ...) -> Iterable[Any]: ...

    def cancel(self, batch_id: str) -> Any: ...


class BatchClient(Protocol):
    @property
    def files(self) -> FilesAPI: ...

    @property
    def batches(self) -> BatchesAPI: ...


@dataclass(frozen=True, slots=True)
class RemoteBatch:
    """A batch as the server reports it."""

    id: str
    status: str
    created_at: float = 0.0
    output_file_id: str | None = None
    error_file_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def read_batch(obj: Any) -> RemoteBatch:
    counts_obj = _get(obj, "request_counts")
    counts = {
        k: int(_get(counts_obj, k) or 0)
        for k in ("total", "completed", "failed")
        if counts_obj is not None
    }
    errors_obj = _get(obj, "errors")
    errors = []
    for item in _get(errors_obj, "data") or []:
        line = _get(item, "line")
        where = f" (line {line})" if line is not None else ""
        errors.append(f"{_get(item, 'code') or 'error'}{where}: {_get(item, 'message') or ''}")
    metadata = _get(obj, "metadata") or {}
    return RemoteBatch(
        id=str(_get(obj, "id")),
        status=str(_get(obj, "status")),
        created_at=float(_get(obj, "created_at") or 0),
        output_file_id=_get(obj, "output_file_id"),
        error_file_id=_get(obj, "error_file_id"),
        counts=counts,
        metadata={str(k): str(v) for k, v in dict(metadata).items()},
        errors=errors,
    )


def read_bytes(content: Any) -> bytes:
    """The bytes of ``files.content(...)``: the SDK's binary response, bytes or text."""
    if isinstance(content, bytes):
        return content
    if isinstance(content, str):
        return content.encode("utf-8")
    data = getattr(content, "content", None)
    if isinstance(data, bytes):
        return data
    read = getattr(content, "read", None)
    if callable(read):
        out = read()
        return out if isinstance(out, bytes) else str(out).encode("utf-8")
    raise TypeError(f"cannot read file content from {type(content).__name__}")


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an SDK error carries, if any."""
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def is_refusal(exc: BaseException) -> bool:
    return status_of(exc) in REFUSED_STATUSES


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)
