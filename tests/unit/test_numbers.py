"""Decimals as plain text and JSON numbers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from schemas.numbers import exact_decimal, json_number, plain_decimal


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("5300000"), "5300000"),
        (Decimal("5.3E+6"), "5300000"),
        (Decimal("-1.2E+6"), "-1200000"),
        (Decimal("0.15940"), "0.1594"),
        (Decimal("1.50"), "1.5"),
        (Decimal("1E-7"), "0.0000001"),
        (Decimal("-0"), "0"),
        (Decimal("0.00"), "0"),
        (Decimal("0.45"), "0.45"),
        (Decimal("123456789012345678901234567890"), "123456789012345678901234567890"),
    ],
)
def test_decimals_are_written_exactly_without_exponents(value: Decimal, text: str) -> None:
    assert plain_decimal(value) == text
    assert exact_decimal(value) == value
    assert plain_decimal(exact_decimal(value)) == text


def test_json_numbers_are_ints_when_whole() -> None:
    assert json_number(Decimal("5.3E+6")) == 5300000
    assert isinstance(json_number(Decimal("5.3E+6")), int)
    assert json_number(Decimal("0.125")) == 0.125
