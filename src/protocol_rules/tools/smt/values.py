"""The values of the encoding: three-valued booleans, known-or-unknown scalars, sets, windows.

Unknown is a third value everywhere, as in the interpreter: a boolean is a pair of formulas
(`Tri`: "is true", "is false"; neither means unknown), a scalar is a value with a `known`
formula (`Val`). Instants may be `NEVER` and durations since a never date infinite; each
carries a formula for that. Everything here is a pure function of its inputs; the encoder
(`encode`) decides which variables exist.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import z3

from ... import ast
from ...calendar import DAY, CalendarDuration, shift

TRUE = z3.BoolVal(True)
FALSE = z3.BoolVal(False)


def is_false(e: z3.BoolRef) -> bool:
    return z3.is_false(e)


@dataclass(frozen=True)
class Tri:
    """A three-valued boolean: `t` holds when it is true, `f` when it is false (never both)."""

    t: z3.BoolRef
    f: z3.BoolRef

    @property
    def known(self) -> z3.BoolRef:
        return z3.Or(self.t, self.f)

    @property
    def unknown(self) -> z3.BoolRef:
        return z3.And(z3.Not(self.t), z3.Not(self.f))

    def equals(self, other: Tri) -> z3.BoolRef:
        """The two have the same value (both unknown counts as the same)."""
        return z3.And(self.t == other.t, self.f == other.f)


TRUE3 = Tri(TRUE, FALSE)
FALSE3 = Tri(FALSE, TRUE)
UNKNOWN3 = Tri(FALSE, FALSE)


def tri(known: z3.BoolRef, value: z3.BoolRef) -> Tri:
    return Tri(z3.And(known, value), z3.And(known, z3.Not(value)))


def tri_and(parts: Sequence[Tri]) -> Tri:
    return Tri(z3.And([p.t for p in parts]), z3.Or([p.f for p in parts]))


def tri_or(parts: Sequence[Tri]) -> Tri:
    return Tri(z3.Or([p.t for p in parts]), z3.And([p.f for p in parts]))


def tri_not(x: Tri) -> Tri:
    return Tri(x.f, x.t)


def tri_if(c: Tri, a: Tri, b: Tri) -> Tri:
    return Tri(z3.Or(z3.And(c.t, a.t), z3.And(c.f, b.t)), z3.Or(z3.And(c.t, a.f), z3.And(c.f, b.f)))


@dataclass(frozen=True)
class Val:
    """A scalar that may be unknown. `v` is a Real (numbers, quantities, instants in seconds,
    durations) or a String (choices, texts). `never`: an instant that is `NEVER`; `pinf` /
    `ninf`: a duration that is plus / minus infinity (the time since a never date)."""

    known: z3.BoolRef
    v: Any
    never: z3.BoolRef = FALSE
    pinf: z3.BoolRef = FALSE
    ninf: z3.BoolRef = FALSE

    @property
    def finite(self) -> bool:
        """Statically never infinite nor never (the common case)."""
        return is_false(self.never) and is_false(self.pinf) and is_false(self.ninf)


def val_if(c: Tri, a: Val, b: Val) -> Val:
    return Val(
        z3.Or(z3.And(c.t, a.known), z3.And(c.f, b.known)),
        z3.If(c.t, a.v, b.v),
        z3.If(c.t, a.never, b.never),
        z3.If(c.t, a.pinf, b.pinf),
        z3.If(c.t, a.ninf, b.ninf),
    )


@dataclass(frozen=True)
class SetV:
    """A set fact: `member(item)` is the formula "the set holds `item`" (a choice or a text)."""

    known: z3.BoolRef
    member: Callable[[str], z3.BoolRef]


@dataclass(frozen=True)
class Observation:
    """One observation of a series in the explicit encoding: present, its time and value."""

    present: z3.BoolRef
    at: Any  # Real seconds
    value: Any  # Real, String or Bool


@dataclass
class Window:
    """A window. Abstract encoding: `key` names its variables (count and aggregates, made on
    demand). Explicit encoding: `members` are the series' observations with, for each, the
    formula that it is in the window (in time order). `known` is false when the series or a
    bound is unknown (or, for a filter, when the condition is unknown for an observation)."""

    known: z3.BoolRef
    key: Any
    element: Any  # the element type (check.types)
    low: float | None = None  # the declared range of the elements, if any
    high: float | None = None
    members: list[tuple[z3.BoolRef, Observation]] | None = None
    parent: Window | None = None  # a filter's window, whose elements it keeps some of
    series: str | None = None  # the fact it reads
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- comparisons


def _rank(x: Val) -> Any:
    return z3.If(x.pinf, 1, z3.If(x.ninf, -1, 0))


def compare(op: ast.CompareOp, x: Val, y: Val) -> z3.BoolRef:
    """`x OP y` for two known values, infinities included (as Python floats compare)."""
    if x.finite and y.finite:
        return _plain(op, x.v, y.v)
    rx, ry = _rank(x), _rank(y)
    lt = z3.Or(rx < ry, z3.And(rx == 0, ry == 0, x.v < y.v))
    eq = z3.And(rx == ry, z3.Or(rx != 0, x.v == y.v))
    match op:
        case ast.CompareOp.LT:
            return lt
        case ast.CompareOp.LE:
            return z3.Or(lt, eq)
        case ast.CompareOp.GT:
            return z3.Not(z3.Or(lt, eq))
        case ast.CompareOp.GE:
            return z3.Not(lt)
        case ast.CompareOp.EQ:
            return eq
        case ast.CompareOp.NE:
            return z3.Not(eq)
    raise AssertionError(op)  # pragma: no cover


def _plain(op: ast.CompareOp, a: Any, b: Any) -> z3.BoolRef:
    match op:
        case ast.CompareOp.LT:
            return a < b
        case ast.CompareOp.LE:
            return a <= b
        case ast.CompareOp.GT:
            return a > b
        case ast.CompareOp.GE:
            return a >= b
        case ast.CompareOp.EQ:
            return a == b
        case ast.CompareOp.NE:
            return a != b
    raise AssertionError(op)  # pragma: no cover


# --------------------------------------------------------------------------- numbers


def real(value: float | int) -> z3.ArithRef:
    """A float of the interpreter as the decimal it prints as (`0.1` is 1/10)."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return z3.RealVal(value)
    return z3.RealVal(repr(float(value)))


def constant_value(e: Any) -> float | None:
    """The number a formula is, when it is a constant (after simplification)."""
    s = z3.simplify(e)
    if z3.is_rational_value(s):
        return s.numerator_as_long() / s.denominator_as_long()
    if z3.is_int_value(s):
        return float(s.as_long())
    return None


# --------------------------------------------------------------------------- calendar


@cache
def month_shift_bounds(months: int) -> tuple[int, int]:
    """The fewest and most days ``shift(x, months)`` can move a date, over 2000-2031.

    Month lengths repeat with the 400-year cycle; the extremes come from month ends and leap
    days, which every span of a few years shows. Widened by a day on each side (conservative).
    """
    if months == 0:
        return 0, 0
    duration = CalendarDuration(months, 0.0)
    start = 10957  # 2000-01-01
    moves = [int((shift(d * DAY, duration) - d * DAY) // DAY) for d in range(start, start + 11688)]
    return min(moves) - 1, max(moves) + 1


def first_reaching(predicate: Callable[[int], bool], low: int, high: int) -> int:
    """The least integer in [low, high] for which a monotone `predicate` holds (high + 1 if
    none)."""
    while low <= high:
        middle = (low + high) // 2
        if predicate(middle):
            high = middle - 1
        else:
            low = middle + 1
    return low
