"""Back end, SQL: the interpreter's arithmetic, to the last bit, in plain IEEE double arithmetic.

- `clean` is `units.clean` — a value rounded to 12 significant digits exactly as Python's
  ``round(x, 12 - floor(log10(|x|)))`` rounds it: to the nearest multiple of ``10**-d`` of the
  *exact* binary value, ties to even. SQL's ROUND multiplies in floating point first, so it is
  off now and then (2.675 → 2.67 or 2.68); here the product ``x * 10**d`` is computed exactly as
  the sum of two doubles (Dekker's TwoProduct, with Veltkamp's split: no fused multiply-add is
  needed), which decides the rounding exactly; the quotient back is one correctly rounded
  division, as Python's. Every step is `+ - * /` on doubles, which every SQL engine computes
  per IEEE 754, so the same SQL gives the same bits everywhere. Exact for
  ``1e-10 <= |x| < 1e35`` (``10**d`` is a double); outside, a plain rounding (documented).
- `round_half_away` is `numeric.round_half_away`: halves away from zero *on the shortest
  decimal* of x (2.675 → 2.68), which is the nearest rounding of the exact value unless the
  shortest decimal ends in that 5.
- `times`, `divided` and `power` give NULL where the interpreter gives unknown: overflow beyond
  1e300, division by zero, 0 to a negative power, a negative number to a fractional power —
  without ever computing an infinity or a NaN (some engines raise an error for those).

The helper values are columns of a `Relation` (one CTE stage each), so each expression stays
small however often the algorithm reads a value.
"""

from __future__ import annotations

import math
import struct
import sys
from collections.abc import Callable

from sqlglot import exp

from .sql_build import (
    Expr,
    abs_,
    add,
    and_,
    case,
    compare,
    div,
    double,
    exact,
    floor,
    func,
    is_cheap,
    is_null,
    literal_value,
    mul,
    neg,
    num,
    or_,
    sub,
)
from .sql_stages import Relation

LIMIT = 1e300
#: 2**-600: scaling by a power of two is exact, so ``|a * C * b| <= LIMIT * C`` tells whether
#: ``|a * b| <= LIMIT`` without computing a product that could overflow.
_SCALE = 2.0**-600
_SCALED_LIMIT = LIMIT * _SCALE
_SPLIT = 134217729.0  # 2**27 + 1, Veltkamp's splitter for doubles
_EXACT_POWERS = 22  # 10**d is a double for 0 <= d <= 22


def clean(rel: Relation, x: Expr, hint: str) -> Expr:
    """`units.clean(x)` (NULL stays NULL)."""
    X = rel.column(x, hint)
    d = rel.column(
        case((compare("!=", X, num(0)), sub(num(12), floor(func("LOG10", abs_(X)))))),
        hint + "_digits",
    )
    exact = compare("<=", abs_(d), num(_EXACT_POWERS))
    p = rel.column(
        case((exact, func("POWER", double(10), abs_(d))), default=double(1)), hint + "_p"
    )
    ge = compare(">=", d, num(0))
    scaled = case((ge, mul(X, p)), default=div(X, p))
    m = rel.column(add(floor(scaled), num(0.5)), hint + "_half")
    a = rel.column(case((ge, X), default=m), hint + "_a")
    ah = rel.column(_high(a), hint + "_ah")
    ph = rel.column(_high(p), hint + "_ph")
    al, pl = sub(a, ah), sub(p, ph)
    product = mul(a, p)
    err = rel.column(
        add(add(add(sub(mul(ah, ph), product), mul(ah, pl)), mul(al, ph)), mul(al, pl)),
        hint + "_err",
    )
    # the exact scaled value minus the midpoint m, compared with zero exactly: t vs e
    t = rel.column(case((ge, sub(product, m)), default=sub(X, product)), hint + "_t")
    e = case((ge, neg(err)), default=err)
    n0 = sub(m, num(0.5))
    even = compare("=", sub(n0, mul(num(2), floor(div(n0, num(2))))), num(0))
    up = case(
        (compare(">", t, e), num(1)),
        (compare("<", t, e), num(0)),
        (even, num(0)),
        default=num(1),
    )
    n = rel.column(add(n0, up), hint + "_n")
    return rel.column(
        case(
            (compare("=", X, num(0)), X),
            (and_(exact, ge), div(n, p)),
            (exact, mul(n, p)),
            default=X,  # beyond the exact range: kept as it is (docs/sql.md)
        ),
        hint + "_clean",
    )


def _high(a: Expr) -> Expr:
    """The upper half of Veltkamp's split of `a`: ``c - (c - a)`` with ``c = 134217729 a``."""
    c = mul(num(_SPLIT), a)
    return sub(c, sub(c, a))


def round_half_away(rel: Relation, x: Expr, digits: int, hint: str) -> Expr:
    """`numeric.round_half_away(x, digits)`: NULL for NULL, and where Python's decimal quantize
    fails (a result of 28 digits or more)."""
    X = rel.column(x, hint)
    q = 10.0 ** abs(digits)  # exact for |digits| <= 22
    if abs(digits) > _EXACT_POWERS:
        return case((compare("=", X, X), X))
    ge = digits >= 0
    scaled = mul(X, double(q)) if ge else div(X, double(q))
    k = rel.column(floor(scaled), hint + "_k")
    # the candidate half: (k + 1/2) * 10**-digits, as the double nearest to it
    half = (
        div(add(mul(num(2), k), num(1)), double(2 * q))
        if ge
        else mul(add(mul(num(2), k), num(1)), double(q / 2))
    )
    # exactly: x against k + 1/2 (scaled); with the exact product when digits >= 0
    if ge:
        a, p = X, double(q)
        ah = rel.column(_high(X), hint + "_ah")
        ph = _high(p)
        product = mul(a, p)
        err = rel.column(
            add(
                add(add(sub(mul(ah, ph), product), mul(ah, sub(p, ph))), mul(sub(a, ah), ph)),
                mul(sub(a, ah), sub(p, ph)),
            ),
            hint + "_err",
        )
        t, e = sub(product, add(k, num(0.5))), neg(err)
    else:
        m = rel.column(mul(add(k, num(0.5)), double(q)), hint + "_m")
        mh = rel.column(_high(add(k, num(0.5))), hint + "_mh")
        ph = _high(double(q))
        mlow = sub(add(k, num(0.5)), mh)
        err = rel.column(
            add(
                add(add(sub(mul(mh, ph), m), mul(mh, sub(double(q), ph))), mul(mlow, ph)),
                mul(mlow, sub(double(q), ph)),
            ),
            hint + "_err",
        )
        t, e = sub(X, m), err
    positive = compare(">=", X, num(0))
    up = case(
        (compare("=", X, half), case((positive, num(1)), default=num(0))),  # the decimal's 5
        (compare(">", t, e), num(1)),
        (compare("<", t, e), num(0)),
        default=case((positive, num(1)), default=num(0)),
    )
    n = add(k, up)
    value = div(n, double(q)) if ge else mul(n, double(q))
    too_long = compare(">=", abs_(scaled), num(1e28))
    whole = compare(">=", abs_(scaled), num(2.0**48))  # beyond: kept as it is (docs/sql.md)
    return rel.column(case((too_long, null_double()), (whole, X), default=value), hint + "_round")


def null_double() -> Expr:
    """NULL typed DOUBLE."""
    return exp.Cast(this=exp.Null(), to=exp.DataType.build("DOUBLE"))


_null_double = null_double


def within_limit(value: Expr) -> Expr:
    return compare("<=", abs_(value), num(LIMIT))


def times(rel: Relation, a: Expr, b: Expr, scale: float = 1.0, hint: str = "product") -> Expr:
    """``a * b * scale``, NULL beyond 1e300 (never overflowing while finding out)."""
    x, y = literal_value(a), literal_value(b)
    if x is not None and y is not None:
        folded = _fold(_scaled(x * y, scale))
        if folded is not None:
            return folded
    if x is not None and y is None:
        a, b, x, y = b, a, y, x  # the literal second (a product's bits do not depend on order)
    if y is not None:
        c, literal = y, b
        return _by_literal(
            rel, a, lambda v: _scaled(v * c, scale), lambda a: _product(a, literal, scale), hint
        )
    a, b = rel.shared(a, hint + "_a"), rel.shared(b, hint + "_b")
    scaled = mul(mul(a, num(_SCALE)), b)
    if scale != 1.0:
        scaled = mul(scaled, num(scale))
    guarded = case((compare("<=", abs_(scaled), num(_SCALED_LIMIT)), _product(a, b, scale)))
    return _bounded_column(rel, guarded, hint)


def divided(rel: Relation, a: Expr, b: Expr, scale: float = 1.0, hint: str = "quotient") -> Expr:
    """``a / b * scale``, NULL for b = 0 and beyond 1e300."""
    x, y = literal_value(a), literal_value(b)
    if y is not None:
        if y == 0:
            return _null_double()
        if x is not None:
            folded = _fold(_scaled(x / y, scale))
            if folded is not None:
                return folded
        c, literal = y, b

        def quotient(a: Expr) -> Expr:
            if c == 1.0 and scale == 1.0:
                return a  # exactly a
            return div(a, literal) if scale == 1.0 else mul(div(a, literal), num(scale))

        return _by_literal(rel, a, lambda v: _scaled(v / c, scale), quotient, hint)
    a, b = rel.shared(a, hint + "_a"), rel.shared(b, hint + "_b")
    scaled = div(mul(a, num(_SCALE)), b)
    if scale != 1.0:
        scaled = mul(scaled, num(scale))
    quotient = div(a, b) if scale == 1.0 else mul(div(a, b), num(scale))
    guarded = case(
        (compare("=", b, num(0)), _null_double()),
        (compare("<=", abs_(scaled), num(_SCALED_LIMIT)), quotient),
    )
    return _bounded_column(rel, guarded, hint)


def bounded(rel: Relation, value: Expr, hint: str = "bounded") -> Expr:
    """`value`, NULL beyond 1e300 (the caller knows it cannot overflow a double)."""
    x = literal_value(value)
    if x is not None:
        folded = _fold(x)
        if folded is not None:
            return folded
    if _is_bounded(rel, value):
        return value
    if not _cheap_twice(value):
        value = rel.column(value, hint + "_raw")
    return _bounded_column(rel, case((within_limit(value), value)), hint)


def _product(a: Expr, b: Expr, scale: float) -> Expr:
    return mul(a, b) if scale == 1.0 else mul(mul(a, b), num(scale))


def _scaled(v: float, scale: float) -> float:
    return v if scale == 1.0 else v * scale


def _fold(v: float) -> Expr | None:
    """The literal a computation of literals gives, or NULL beyond 1e300 (None for a zero,
    whose sign a literal does not keep: the engine computes it)."""
    if not abs(v) <= LIMIT:
        return _null_double()
    return None if v == 0 else double(v)


def _by_literal(
    rel: Relation,
    a: Expr,
    f: Callable[[float], float],
    result: Callable[[Expr], Expr],
    hint: str,
) -> Expr:
    """`result(a)`, an operation ``f`` of `a` and a literal, NULL where ``|f(a)| > 1e300``:
    since ``|f(a)|`` grows with ``|a|`` (rounding is monotone), that is ``|a| > t`` for the
    largest double ``t`` with ``|f(t)| <= 1e300``, found here once (the scaled test of `times`
    and `divided` decides exactly that, for every double and NULL)."""
    t = _largest(lambda v: abs(f(v)) <= LIMIT)
    if t >= LIMIT and _is_bounded(rel, a):
        value = result(a)  # |a| <= 1e300 <= t: the test holds
        return value if isinstance(value, exp.Column) else _bounded_column(rel, value, hint)
    shared = rel.shared(a, hint + "_a")
    guard = compare("<=", abs_(shared), exact(t))
    return _bounded_column(rel, case((guard, result(shared))), hint)


_MAX = sys.float_info.max


def _largest(holds: Callable[[float], bool]) -> float:
    """The largest non-negative double for which `holds` (a monotone test: true up to some
    value, false above), by bisection on the doubles' bit patterns (ordered as the values)."""
    low, high = 0, struct.unpack("<q", struct.pack("<d", _MAX))[0]
    as_float = lambda bits: struct.unpack("<d", struct.pack("<q", bits))[0]  # noqa: E731
    if holds(as_float(high)):
        return _MAX
    while high - low > 1:
        mid = (low + high) // 2
        if holds(as_float(mid)):
            low = mid
        else:
            high = mid
    return as_float(low)


def _is_bounded(rel: Relation, e: Expr) -> bool:
    return isinstance(e, exp.Column) and e.name in rel.bounded


def _cheap_twice(e: Expr) -> bool:
    """An operation of two cheap operands (``"a" + "b"``): cheaper written twice than stored."""
    return is_cheap(e) or (
        isinstance(e, exp.Binary) and is_cheap(e.this) and is_cheap(e.expression)
    )


def _bounded_column(rel: Relation, e: Expr, hint: str) -> Expr:
    c = rel.column(e, hint)
    rel.bounded.add(c.name)
    return c


def power(rel: Relation, base: Expr, exponent: Expr, hint: str) -> Expr:
    """`numeric.power` of doubles then `clean`: NULL for 0 to a negative power, a negative
    base to a fractional power, and beyond 1e300."""
    b = rel.shared(base, hint + "_base")
    y = rel.shared(exponent, hint + "_exp")
    # |y * log10|b|| bounds the result's magnitude; 300 is exactly the limit
    big = and_(
        compare("!=", b, num(0)),
        compare(">", mul(y, func("LOG10", abs_(b))), num(300.5)),
    )
    k = literal_value(y)
    if k is None:
        whens = [
            (or_(is_null(b), is_null(y)), _null_double()),
            (and_(compare("=", b, num(0)), compare("<", y, num(0))), _null_double()),
            (and_(compare("<", b, num(0)), compare("!=", y, floor(y))), _null_double()),
        ]
    else:  # a literal exponent: its tests decided here
        whens = [(is_null(b), _null_double())]
        if k < 0:
            whens.append((compare("=", b, num(0)), _null_double()))
        if k != math.floor(k):
            whens.append((compare("<", b, num(0)), _null_double()))
    raw = case(*whens, (big, _null_double()), default=func("POWER", b, y))
    r = rel.column(raw, hint + "_pow")
    return clean(rel, case((within_limit(r), r)), hint)


def math1(rel: Relation, function: str, x: Expr, hint: str) -> Expr:
    """`ln`, `log10`, `exp`, `sqrt` (rounded by `clean`) and `abs` (exact) of a double."""
    if function == "abs":
        return abs_(x)
    x = rel.shared(x, hint + "_x")
    match function:
        case "ln":
            raw = case((compare(">", x, num(0)), func("LN", x)))
        case "log10":
            raw = case((compare(">", x, num(0)), func("LOG10", x)))
        case "sqrt":
            raw = case((compare(">=", x, num(0)), func("SQRT", x)))
        case "exp":
            e = func("EXP", x)
            raw = case((compare("<=", x, num(700)), case((within_limit(e), e))))
        case _:  # pragma: no cover - the caller dispatches
            raise AssertionError(function)
    return clean(rel, raw, hint)
