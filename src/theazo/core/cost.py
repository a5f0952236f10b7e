"""Cost arithmetic. Costs are summed exactly as integers in millionths of a minor unit
(micros); only the figure shown to users is rounded, half up, to the minor unit."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from theazo.core import defaults

MICROS = defaults.MICROS_PER_MINOR_UNIT


_MAX_AMOUNT = Decimal(defaults.MAX_AMOUNT_MINOR_UNITS)
_MAX_AMOUNT_CHARS = 64  # longer is no amount of money; parsing it would only cost time


def to_micros(amount: float | int | str | Decimal) -> int:
    """Convert an amount in minor units (possibly fractional) to micros, exactly for decimals.

    ``ValueError`` for anything that is not a finite number of at most
    ``MAX_AMOUNT_MINOR_UNITS`` either way: the sums stay far inside 64-bit integers, and a
    number like ``1e999999`` never reaches the arithmetic (where it would overflow).
    """
    text = str(amount)
    if len(text) > _MAX_AMOUNT_CHARS:
        raise ValueError(f"{text[:20]}… is not an amount")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"{amount!r} is not an amount") from exc
    if not value.is_finite():
        raise ValueError("an amount must be finite")
    if abs(value) > _MAX_AMOUNT:
        raise ValueError(f"{text} is more than {defaults.MAX_AMOUNT_MINOR_UNITS} minor units")
    return int((value * MICROS).to_integral_value(ROUND_HALF_UP))


def minor_units(micros: int) -> int:
    """Round micros to the currency's minor unit, half up."""
    return int((Decimal(micros) / MICROS).to_integral_value(ROUND_HALF_UP))


def compute_micros(wall_seconds: float, price_micros_per_second: int) -> int:
    """Compute cost of ``wall_seconds`` of sandbox time, exact to the microsecond of time."""
    if wall_seconds <= 0 or price_micros_per_second <= 0:
        return 0
    microseconds = round(wall_seconds * 1_000_000)
    return (microseconds * price_micros_per_second + 500_000) // 1_000_000


def seconds_until_spent(remaining_micros: int, price_micros_per_second: int) -> float | None:
    """How long compute alone takes to spend ``remaining_micros``; None when it never does."""
    if price_micros_per_second <= 0:
        return None
    return max(0.0, remaining_micros / price_micros_per_second)
