"""Decimal numbers as plain text and as JSON values: the one definition every package uses. Pure.

Money is ``Decimal`` everywhere; these functions decide how it is written: exactly, without an
exponent and without trailing zeros ("5.3E+6" -> "5300000", "1.50" -> "1.5", "-0" -> "0").
"""

from __future__ import annotations

from decimal import Decimal


def exact_decimal(value: Decimal) -> Decimal:
    """The same number without exponent or trailing zeros: ``5.300E+6`` -> ``5300000``,
    ``1.00`` -> ``1``, ``0.1500`` -> ``0.15``."""
    if value == value.to_integral_value():
        return Decimal(int(value))
    return value.normalize()


def plain_decimal(value: Decimal) -> str:
    """A ``Decimal`` as plain text, exactly: ``5300000``, ``0.1594``, ``-1.5``; never ``5.3E+6``,
    ``0.15940`` or ``-0``."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def json_number(value: Decimal) -> int | float:
    """The value as a JSON number: an ``int`` when whole, else the shortest ``float`` equal to
    the decimal's plain text."""
    if value == value.to_integral_value():
        return int(value)
    return float(plain_decimal(value))
