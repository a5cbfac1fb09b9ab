"""The arithmetic of the calculation functions, beside the pipeline: pure functions of floats.

Used by the checker (to fold constants at load) and by the evaluator (per patient), so that
both agree to the last bit. Every function returns None for a domain error (ln of 0, a square
root of a negative number, an overflow) — never raises, never returns inf or NaN — and `why`
says in words what went wrong, for the explanation. See docs/language/calculation.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

#: The largest magnitude a calculation may produce; beyond it the result is unknown (overflow).
LIMIT = 1e300

Number = int | float


def _finite(x: Number) -> Number | None:
    return x if -LIMIT <= x <= LIMIT else None  # False for inf and NaN too


def power(x: Number, y: Number) -> Number | None:
    """``x ** y``; an integer when both are integers and ``0 <= y <= 64``; None when undefined."""
    if isinstance(x, int) and isinstance(y, int) and 0 <= y <= 64:
        return _finite(x**y)
    if x == 0 and y < 0:
        return None  # 0 to a negative power
    if x < 0 and not float(y).is_integer():
        return None  # a negative number to a fractional power is not a real number
    try:
        result = float(x) ** float(y)
    except (OverflowError, ZeroDivisionError):
        return None
    return _finite(result)


def _ln(x: Number) -> float | None:
    return math.log(x) if x > 0 else None


def _log10(x: Number) -> float | None:
    return math.log10(x) if x > 0 else None


def _exp(x: Number) -> float | None:
    try:
        return _finite(math.exp(x))
    except OverflowError:
        return None


def _sqrt(x: Number) -> float | None:
    return math.sqrt(x) if x >= 0 else None


def round_half_away(x: Number, digits: int = 0) -> float | None:
    """`x` rounded to `digits` decimal places, halves away from zero, on its decimal digits.

    ``round_half_away(2.675, 2)`` is 2.68 (Python's `round` gives 2.67, because the binary
    float is a hair below 2.675) and ``round_half_away(-0.5)`` is -1.0.
    """
    try:
        quantum = Decimal(1).scaleb(-digits)
        rounded = Decimal(repr(float(x))).quantize(quantum, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError, OverflowError):
        return None
    return _finite(float(rounded))


def _round(x: Number, digits: Number = 0) -> float | None:
    return round_half_away(x, int(digits))


FUNCTIONS: dict[str, Callable[..., Number | None]] = {
    "ln": _ln,
    "log10": _log10,
    "exp": _exp,
    "sqrt": _sqrt,
    "abs": abs,
    "round": _round,
    "min": lambda *xs: min(xs),
    "max": lambda *xs: max(xs),
}


def apply(function: str, args: Sequence[Number]) -> Number | None:
    """A calculation function of known arguments, or None for a domain error."""
    return FUNCTIONS[function](*args)


def why(function: str, args: Sequence[Number]) -> str:
    """Why `apply(function, args)` (or `power`, for ``^``) gave no value, in words."""
    x = args[0] if args else None
    shown = ", ".join(_show(a) for a in args)
    if function in ("ln", "log10"):
        return f"`{function}` is undefined for {_show(x)} (only for numbers above 0)"
    if function == "sqrt":
        return f"`sqrt` is undefined for the negative number {_show(x)}"
    if function == "^" and len(args) == 2:
        base, exponent = args
        if base == 0 and exponent < 0:
            return "0 to a negative power is undefined"
        if base < 0 and not float(exponent).is_integer():
            return f"{_show(base)} to the power {_show(exponent)} is not a real number"
        return f"{_show(base)} ^ {_show(exponent)} is too large (beyond 1e300)"
    return f"`{function}({shown})` is too large (beyond 1e300)"


def _show(value: object) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)
