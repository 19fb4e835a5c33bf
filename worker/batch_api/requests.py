"""The JSONL input of a batch job: request lines, content-derived ids, files under the limits. Pure.

Each line is one chat completion exactly as the synchronous path would send it::

    {"custom_id": "fp-<sha256 of the body>", "method": "POST",
     "url": "/v1/chat/completions", "body": {...}}

The body comes from a callable the caller passes in (``worker.packing.pack`` cuts the snippets
into groups, and the body of a group is the engine's first call for it,
``OpenAIExtractor.first_body``), so a batch answer is interchangeable with a synchronous one
and lands under the same cache keys. The ``custom_id`` is a hash of the body: the same snippets
asked the same way get the same id in every run, identical requests are sent once, and a request
seen in a job that is still open is recognised when the job is resumed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from worker.packing import pack

T = TypeVar("T")

CHAT_COMPLETIONS_URL = "/v1/chat/completions"
#: The Batch API's limits per input file.
MAX_REQUESTS_PER_FILE = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024
#: Prefix of every ``custom_id`` (the Batch API allows up to 64 characters).
CUSTOM_ID_PREFIX = "fp-"


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, non-ASCII kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def custom_id_for(body: Mapping[str, Any]) -> str:
    """``fp-`` and the first 40 hex digits of the sha256 of the canonical body."""
    digest = hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()
    return CUSTOM_ID_PREFIX + digest[:40]


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One request line: its id, the body sent to ``url``, and the line as bytes."""

    custom_id: str
    body: Mapping[str, Any]
    url: str = CHAT_COMPLETIONS_URL

    @classmethod
    def of(cls, body: Mapping[str, Any], url: str = CHAT_COMPLETIONS_URL) -> BatchRequest:
        return cls(custom_id_for(body), body, url)

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    def line(self) -> bytes:
        """The JSONL line, newline included."""
        doc = {"custom_id": self.custom_id, "method": "POST", "url": self.url, "body": self.body}
        return (canonical_json(doc) + "\n").encode("utf-8")


@dataclass(frozen=True, slots=True)
class Planned(Generic[T]):
    """The unique requests of a run, and the groups of items each one answers (two groups whose
    bodies are identical share one request)."""

    requests: list[BatchRequest]
    groups: dict[str, list[Sequence[T]]]


def build_requests(
    groups: Iterable[Sequence[T]],
    build_body: Callable[[Sequence[T]], Mapping[str, Any]],
    *,
    url: str = CHAT_COMPLETIONS_URL,
) -> Planned[T]:
    """One request per distinct body, in first-seen order. ``groups`` are already packed (one
    group is one chat completion); ``build_body(group)`` is the body the synchronous path would
    send for it."""
    requests: list[BatchRequest] = []
    members: dict[str, list[Sequence[T]]] = {}
    for group in groups:
        if not group:
            continue
        request = BatchRequest.of(build_body(group), url)
        if request.custom_id not in members:
            requests.append(request)
            members[request.custom_id] = []
        members[request.custom_id].append(group)
    return Planned(requests, members)


@dataclass(frozen=True, slots=True)
class FilePlan:
    """Requests cut into input files, and the requests that cannot go in any file (a single line
    over the byte limit): those take the synchronous path."""

    files: list[list[BatchRequest]]
    too_large: list[BatchRequest]


def split_files(
    requests: Sequence[BatchRequest],
    *,
    max_requests: int = MAX_REQUESTS_PER_FILE,
    max_bytes: int = MAX_FILE_BYTES,
) -> FilePlan:
    """Cut ``requests`` in order into files of at most ``max_requests`` lines and ``max_bytes``
    bytes. A file holds one model and one endpoint, as the Batch API requires; duplicates (same
    ``custom_id``) are dropped, keeping the first."""
    if max_requests < 1 or max_bytes < 1:
        raise ValueError("max_requests and max_bytes must be positive")
    by_target: dict[tuple[str, str], list[BatchRequest]] = {}
    seen: set[str] = set()
    for request in requests:
        if request.custom_id in seen:
            continue
        seen.add(request.custom_id)
        by_target.setdefault((request.model, request.url), []).append(request)
    size = {r.custom_id: len(r.line()) for group in by_target.values() for r in group}
    files: list[list[BatchRequest]] = []
    too_large: list[BatchRequest] = []
    for same_target in by_target.values():
        fitting = [r for r in same_target if size[r.custom_id] <= max_bytes]
        too_large.extend(r for r in same_target if size[r.custom_id] > max_bytes)
        files.extend(
            pack(
                fitting,
                max_items=max_requests,
                max_chars=max_bytes,
                size=lambda r: size[r.custom_id],
            )
        )
    return FilePlan(files, too_large)


def file_bytes(requests: Iterable[BatchRequest]) -> bytes:
    """The JSONL input file of ``requests``."""
    return b"".join(r.line() for r in requests)
