"""Back end, SQL: `protocol_rules.calendar` in SQL, on seconds since the epoch (UTC).

Instants are doubles, as in the interpreter: no SQL date or timestamp type is used for the
arithmetic, so no session time zone can shift a value. Only adding calendar months goes through
the engine's own date type (`Dialect.add_months_days`: DuckDB, Spark, PostgreSQL, BigQuery and
SQL Server clamp the day to the month's end as `calendar.shift` does), applied to a whole day
number; the time of day is kept aside.

A `never` date (`calendar.NEVER`) is the sentinel `NEVER` (-1e306): below every instant and
beyond the 1e300 limit of arithmetic, so a time since it is larger than any duration and any
arithmetic with it is unknown — as the interpreter's infinities behave. `is_never` tests for
anything below -1e300.

ISO 8601 text is read by `parse_instant` with a strict pattern (the forms a record usually
has); text it does not vouch for is left to the interpreter's reader (the engines) or
reported as an error (the SQL printed for a warehouse).
"""

from __future__ import annotations

from sqlglot import exp

from ..calendar import DAY, CalendarDuration
from .sql_build import (
    Dialect,
    Expr,
    add,
    and_,
    case,
    compare,
    div,
    floor,
    in_,
    mul,
    num,
    or_,
    sub,
    to_double,
)
from .sql_stages import Relation

NEVER = -1e306
_NEVER_BELOW = -1e300


def never() -> Expr:
    return num(NEVER)


def is_never(x: Expr) -> Expr:
    return compare("<", x, num(_NEVER_BELOW))


def mod(x: Expr, n: int) -> Expr:
    """``x mod n`` (floored) of a whole double."""
    return sub(x, mul(num(n), floor(div(x, num(n)))))


def whole_days(rel: Relation, x: Expr, hint: str) -> Expr:
    """``x // DAY`` exactly (Python's floor division), for a finite instant."""
    k = rel.column(floor(div(x, num(DAY))), hint + "_k")
    start = mul(k, num(DAY))
    return case(
        (compare(">", start, x), sub(k, num(1))),
        (compare("<=", add(start, num(DAY)), x), add(k, num(1))),
        default=k,
    )


def day_of(rel: Relation, x: Expr, hint: str) -> Expr:
    """`calendar.day_of`: 00:00 UTC of the instant's day (a never date stays never)."""
    X = rel.column(x, hint)
    days = whole_days(rel, X, hint + "_day")
    return case((is_never(X), X), default=mul(days, num(DAY)))


def shift(
    rel: Relation, dialect: Dialect, x: Expr, duration: CalendarDuration, sign: int, hint: str
) -> Expr | None:
    """`calendar.shift(x, duration, sign)`; None if the dialect cannot add months."""
    months, seconds = duration.months * sign, duration.seconds * sign
    if not months:
        return add(x, num(seconds)) if seconds else x
    X = rel.column(x, hint)
    moved_from = rel.column(add(X, num(seconds)), hint + "_from") if sign < 0 and seconds else X
    whole = rel.column(whole_days(rel, moved_from, hint + "_whole"), hint + "_days")
    moved = dialect.add_months_days(whole, months)
    if moved is None:
        return None
    shifted = add(moved_from, mul(sub(to_double(moved), whole), num(DAY)))
    if sign > 0 and seconds:
        shifted = add(shifted, num(seconds))
    return case((is_never(X), X), default=shifted)


def days_from_civil(y: Expr, m: Expr, d: Expr) -> Expr:
    """Days since 1970-01-01 of year, month, day (`calendar._days_from_civil`)."""
    y2 = sub(y, case((compare("<=", m, num(2)), num(1)), default=num(0)))
    era = floor(div(y2, num(400)))
    yoe = sub(y2, mul(era, num(400)))
    shifted_month = add(m, case((compare(">", m, num(2)), num(-3)), default=num(9)))
    doy = add(floor(div(add(mul(num(153), shifted_month), num(2)), num(5))), sub(d, num(1)))
    doe = add(sub(add(mul(yoe, num(365)), floor(div(yoe, num(4)))), floor(div(yoe, num(100)))), doy)
    return sub(add(mul(era, num(146097)), doe), num(719468))


def days_in_month(y: Expr, m: Expr) -> Expr:
    leap = and_(
        compare("=", mod(y, 4), num(0)),
        or_(compare("!=", mod(y, 100), num(0)), compare("=", mod(y, 400), num(0))),
    )
    return case(
        (compare("=", m, num(2)), case((leap, num(29)), default=num(28))),
        (in_(m, [num(4), num(6), num(9), num(11)]), num(30)),
        default=num(31),
    )


# --------------------------------------------------------------------------- ISO 8601 text

_DATE = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
_TIME = "[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?"
DATE_PATTERN = f"^{_DATE}$"
DATETIME_PATTERN = f"^{_DATE}({_TIME})?$"


def _digits(dialect: Dialect, x: Expr, start: int, length: int) -> Expr:
    return to_double(dialect.substring(x, start, length))


def parse_instant(
    rel: Relation, dialect: Dialect, raw: Expr, has_time: bool, hint: str
) -> tuple[Expr, Expr] | None:
    """(seconds since the epoch or NULL, whether the text was read) of ISO 8601 text, for the
    forms ``YYYY-MM-DD`` (a date) and, for a datetime, ``YYYY-MM-DDTHH:MM[:SS[.ffffff]]``
    with ``Z`` or ``±HH:MM``. None when the dialect has no regular expressions."""
    pattern = DATETIME_PATTERN if has_time else DATE_PATTERN
    matches = dialect.regex(raw, pattern)
    if matches is None:
        return None
    ok = rel.column(case((matches, num(1)), default=num(0)), hint + "_form")
    text_ = rel.column(case((compare("=", ok, num(1)), raw)), hint + "_text")
    length = dialect.length(text_)
    y = rel.column(_digits(dialect, text_, 1, 4), hint + "_y")
    mo = rel.column(_digits(dialect, text_, 6, 2), hint + "_mo")
    d = rel.column(_digits(dialect, text_, 9, 2), hint + "_d")
    valid = [
        compare(">=", y, num(2)),
        compare("<=", y, num(9998)),  # years 1 and 9999 may leave UTC: the reader judges
        compare(">=", mo, num(1)),
        compare("<=", mo, num(12)),
        compare(">=", d, num(1)),
        compare("<=", d, days_in_month(y, mo)),
    ]
    seconds: Expr = mul(days_from_civil(y, mo, d), num(DAY))
    if has_time:
        timed = compare(">=", length, num(16))
        zulu = compare("=", dialect.substring_end(text_, 1), exp.Literal.string("Z"))
        offset = and_(
            timed,
            in_(
                dialect.substring_end(text_, 6, 1),
                [exp.Literal.string("+"), exp.Literal.string("-")],
            ),
        )
        core = rel.column(
            case((zulu, sub(length, num(1))), (offset, sub(length, num(6))), default=length),
            hint + "_core",
        )
        hh = rel.column(case((timed, _digits(dialect, text_, 12, 2)), default=num(0)), hint + "_h")
        mi = rel.column(case((timed, _digits(dialect, text_, 15, 2)), default=num(0)), hint + "_mi")
        ss = rel.column(
            case((compare(">=", core, num(19)), _digits(dialect, text_, 18, 2)), default=num(0)),
            hint + "_s",
        )
        fraction_digits = rel.column(
            case((compare(">=", core, num(21)), sub(core, num(20))), default=num(0)),
            hint + "_fd",
        )
        micros = rel.column(
            case(
                (
                    compare(">", fraction_digits, num(0)),
                    mul(
                        to_double(_substring_expr(dialect, text_, num(21), fraction_digits)),
                        _pow10(sub(num(6), fraction_digits)),
                    ),
                ),
                default=num(0),
            ),
            hint + "_us",
        )
        sign = case(
            (compare("=", dialect.substring_end(text_, 6, 1), exp.Literal.string("-")), num(-1)),
            default=num(1),
        )
        oh = rel.column(
            case((offset, _digits_end(dialect, text_, 5, 2)), default=num(0)), hint + "_oh"
        )
        om = rel.column(
            case((offset, _digits_end(dialect, text_, 2, 2)), default=num(0)), hint + "_om"
        )
        valid += [
            compare("<", hh, num(24)),
            compare("<", mi, num(60)),
            compare("<", ss, num(60)),
            compare("<", oh, num(24)),
            compare("<", om, num(60)),
        ]
        offset_seconds = mul(sign, add(mul(oh, num(3600)), mul(om, num(60))))
        whole = add(
            add(seconds, add(mul(hh, num(3600)), mul(mi, num(60)))),
            sub(ss, offset_seconds),
        )
        w = rel.column(whole, hint + "_whole")
        total = add(mul(w, num(1_000_000)), micros)
        # exact when the microseconds since the epoch fit a double's 53 bits (years 1685-2255
        # with a fraction; any year without one); otherwise the reader judges
        valid.append(
            or_(compare("=", micros, num(0)), compare("<", exp.Abs(this=total), num(2.0**53)))
        )
        seconds = case((compare("=", micros, num(0)), w), default=div(total, num(1_000_000)))
    good = rel.column(
        case((and_(compare("=", ok, num(1)), *valid), num(1)), default=num(0)), hint + "_ok"
    )
    value = rel.column(case((compare("=", good, num(1)), seconds)), hint + "_seconds")
    return value, compare("=", good, num(1))


def _pow10(n: Expr) -> Expr:
    return case(*((compare("=", n, num(k)), num(10**k)) for k in range(6)), default=num(1))


def _substring_expr(dialect: Dialect, x: Expr, start: Expr, length: Expr) -> Expr:
    return exp.Substring(this=x, start=start, length=length)


def _digits_end(dialect: Dialect, x: Expr, from_end: int, length: int) -> Expr:
    return to_double(dialect.substring_end(x, from_end, length))
