"""What a dead letter says, whatever its headers and body hold (``ops.deadletters``, no network)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from adapters.rabbitmq import Incoming
from ops.deadletters import describe, replay_headers
from schemas.topology import HEADER_ATTEMPT, HEADER_ERROR_KIND, HEADER_REASON


def letter(headers: dict[str, Any], body: bytes = b'{"raw_text": "Acme  text"}') -> Incoming:
    return Incoming(7, body, headers, "rid")


@pytest.mark.parametrize(
    "headers",
    [
        {HEADER_ATTEMPT: "abc"},
        {HEADER_ATTEMPT: -3, HEADER_REASON: b"bytes reason"},
        {HEADER_ATTEMPT: [1]},
        {"x-death": "garbage"},
        {"x-death": [{"reason": b"delivery_limit", "queue": 5}], "x-delivery-count": 5},
        {"x-death": [None]},
        {"x-finpipe-dead-at": datetime(2024, 5, 1, tzinfo=UTC), HEADER_ERROR_KIND: 3},
        {"x-finpipe-dead-at": Decimal("1.5"), HEADER_REASON: {"nested": [b"x"]}},
    ],
)
def test_any_header_a_dead_letter_carries_is_listed_shown_and_replayable(
    headers: dict[str, Any],
) -> None:
    dead = describe(letter(headers))
    json.dumps(dead.as_dict())  # `dlq list --json` prints this
    json.dumps(dead.as_dict(full=True), default=str)  # `dlq show` prints this
    assert isinstance(dead.attempts, int)
    assert dead.reason and isinstance(dead.reason, str)
    assert HEADER_ATTEMPT not in replay_headers(headers)


def test_a_malformed_attempt_header_is_named_in_the_reason() -> None:
    dead = describe(letter({HEADER_ATTEMPT: "abc", HEADER_REASON: "too slow"}))
    assert dead.attempts == 0
    assert dead.reason.startswith("too slow (header x-finpipe-attempt is 'abc'")


@pytest.mark.parametrize(
    ("body", "preview"),
    [
        (b"[" * 100_000, "[" * 100),
        (b"\xff\xfe", "\ufffd\ufffd"),
        (b'{"raw_text": {"a": 1}}', "{'a': 1}"),
        (b"[1, 2]", "[1, 2]"),
    ],
)
def test_a_body_of_any_shape_gets_a_preview(body: bytes, preview: str) -> None:
    dead = describe(letter({}, body))
    assert dead.preview == preview
    json.dumps(dead.as_dict(full=True), default=str)
