"""Stage 5, time half: the closures of the time nodes (docs/language/time.md).

Called by `evaluate._Compiler` for `Window`, `TimeSince`, `DateShift`, `DateDiff`, comparisons
of instants and the nodes of the second edition (`AsOf`, `DayOf`, `CalendarShift`,
`CalendarCompare`, `IsNever`, `Filter`, `Consecutive`, `first_time` / `last_time`). Same
conventions as `evaluate`: a closure ``f(F, V)`` computes its node's value from the patient's
facts ``F`` (``as_of`` in slot `now`), records it in ``V[i]`` and returns it; `UNKNOWN` flows
as a value; `NEVER` (a date known not to have happened) is handled here and nowhere else.
The calendar itself is `protocol_rules.calendar`.
"""

from __future__ import annotations

import operator
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import ast
from .calendar import DAY, NEVER, day_of, days_since, shift
from .check import ir
from .check.types import TimeT
from .diagnostics import Diagnostic, error
from .facts import FIRST_INSTANT, LAST_INSTANT, UNKNOWN, format_instant

if TYPE_CHECKING:
    from .evaluate import _Compiler

U = UNKNOWN
Fn = Callable[[list[Any], list[Any]], Any]
INF = float("inf")

COMPARE = {
    ast.CompareOp.LT: operator.lt,
    ast.CompareOp.LE: operator.le,
    ast.CompareOp.GT: operator.gt,
    ast.CompareOp.GE: operator.ge,
    ast.CompareOp.EQ: operator.eq,
    ast.CompareOp.NE: operator.ne,
}


def is_date(node: ir.Node | None) -> bool:
    """Whether `node` is an instant of day precision (a date, not a datetime)."""
    return node is not None and isinstance(node.type, TimeT) and not node.type.has_time


# --------------------------------------------------------------------------- instants


def as_of(i: int, now: int) -> Fn:
    def as_of_(F, V):
        V[i] = x = F[now]
        return x

    return as_of_


def day(i: int, fns: list[Fn]) -> Fn:
    (a,) = fns

    def day_of_(F, V):
        x = a(F, V)
        V[i] = r = x if x is U or x is NEVER else x - x % DAY
        return r

    return day_of_


def compare(i: int, fns: list[Fn], op: ast.CompareOp) -> Fn:
    """A comparison of instants: unknown with an unknown operand, false with a never one."""
    a, b = fns
    test = COMPARE[op]

    def compare_instants(F, V):
        x, y = a(F, V), b(F, V)
        if x is NEVER or y is NEVER:
            r: Any = False
        elif x is U or y is U:
            r = U
        else:
            r = test(x, y)
        V[i] = r
        return r

    return compare_instants


def between(i: int, fns: list[Fn]) -> Fn:
    a, lo, hi = fns

    def between_instants(F, V):
        x, low, high = a(F, V), lo(F, V), hi(F, V)
        if x is NEVER or low is NEVER or high is NEVER:
            r: Any = False
        elif x is U or low is U or high is U:
            r = U
        else:
            r = low <= x <= high
        V[i] = r
        return r

    return between_instants


def is_never(i: int, fns: list[Fn]) -> Fn:
    (a,) = fns

    def is_never_(F, V):
        x = a(F, V)
        V[i] = r = U if x is U else x is NEVER
        return r

    return is_never_


def time_since(i: int, fns: list[Fn], node: ir.TimeSince, now: int) -> Fn:
    (a,) = fns
    date = is_date(node.operand)

    def time_since_(F, V):
        x, as_of_ = a(F, V), F[now]
        V[i] = r = U if x is U or as_of_ is U else days_since(x, as_of_, date)
        return r

    return time_since_


def in_calendar(instant: float) -> Any:
    """`instant`, or unknown when date arithmetic left the calendar (years 1 to 9999)."""
    return instant if FIRST_INSTANT <= instant <= LAST_INSTANT else U


def _calendar_shift(instant: float, duration: Any, sign: int) -> Any:
    try:
        return in_calendar(shift(instant, duration, sign))
    except (OverflowError, ValueError):  # a month count that leaves the calendar
        return U


def calendar_shift(i: int, fns: list[Fn], node: ir.CalendarShift) -> Fn:
    instant, _amount = fns
    duration, sign = node.duration, node.sign
    if not duration.months:
        seconds = sign * duration.seconds

        def shift_seconds(F, V):
            x = instant(F, V)
            V[i] = r = x if x is U or x is NEVER else in_calendar(x + seconds)
            return r

        return shift_seconds

    def shift_calendar(F, V):
        x = instant(F, V)
        V[i] = r = x if x is U or x is NEVER else _calendar_shift(x, duration, sign)
        return r

    return shift_calendar


def date_shift(i: int, fns: list[Fn], sign: int) -> Fn:
    date_fn, seconds_fn = fns

    def date_shift_(F, V):
        x, s = date_fn(F, V), seconds_fn(F, V)
        if x is U or s is U:
            r: Any = U
        else:
            r = x if x is NEVER else in_calendar(x + sign * s)
        V[i] = r
        return r

    return date_shift_


def date_diff(i: int, fns: list[Fn]) -> Fn:
    a, b = fns

    def date_diff_(F, V):
        x, y = a(F, V), b(F, V)
        if x is U or y is U or (x is NEVER and y is NEVER):
            r: Any = U
        elif x is NEVER:
            r = -INF
        elif y is NEVER:
            r = INF
        else:
            r = (x - y) / DAY
        V[i] = r
        return r

    return date_diff_


def calendar_compare(i: int, fns: list[Fn], node: ir.CalendarCompare, x_slot: int, now: int) -> Fn:
    """`time_since(x) OP D`: ``as_of OP x + D``, at day precision when ``x + D`` is a date."""
    since = fns[0]
    date = is_date(node.since.operand) if isinstance(node.since, ir.TimeSince) else False
    tests = [  # (test, duration, day precision, holds for never)
        (COMPARE[op], duration, date and not duration.has_time, _NEVER_HOLDS[op])
        for op, duration in zip(node.ops, node.durations, strict=True)
    ]

    def calendar_compare_(F, V):
        days = since(F, V)
        if days is U:
            V[i] = U
            return U
        x = V[x_slot]
        if x is NEVER:
            r = all(holds for _, _, _, holds in tests)
        else:
            moment = F[now]
            r = True
            for test, duration, day_precision, _ in tests:
                if not test(moment - moment % DAY if day_precision else moment, shift(x, duration)):
                    r = False
                    break
        V[i] = r
        return r

    return calendar_compare_


#: Whether `time_since(never) OP D` holds: never is longer ago than any duration.
_NEVER_HOLDS = {
    ast.CompareOp.LT: False,
    ast.CompareOp.LE: False,
    ast.CompareOp.GT: True,
    ast.CompareOp.GE: True,
    ast.CompareOp.EQ: False,
    ast.CompareOp.NE: True,
}


# --------------------------------------------------------------------------- windows


def window(i: int, fns: list[Fn], node: ir.Window, now: int) -> Fn:
    """Observations with ``start <= at <= end``; a date `end` covers its whole day."""
    series_fn = fns[0]
    rest = iter(fns[1:])
    start_fn = next(rest) if node.start is not None else None
    length_fn = next(rest) if node.length is not None else None
    end_fn = next(rest) if node.end is not None else None
    duration = node.duration
    end_is_date = is_date(node.end)
    if start_fn is None and end_fn is None and (duration is None or not duration.months):
        return _recent_window(i, series_fn, length_fn, duration, now)

    def window_(F, V):
        s = series_fn(F, V)
        end = F[now] if end_fn is None else end_fn(F, V)
        if start_fn is not None:
            start = start_fn(F, V)
        elif duration is not None:
            start = end if end is U or end is NEVER else shift(end, duration, -1)
        else:
            length = length_fn(F, V)  # type: ignore[misc]
            start = U if length is U or end is U or end is NEVER else end - length
        if s is U or end is U or start is U:
            V[i] = U
            return U
        if end is NEVER or start is NEVER:
            V[i] = r = ((), ())
            return r
        times, values = s
        lo = bisect_left(times, start)
        hi = bisect_left(times, end + DAY) if end_is_date else bisect_right(times, end)
        V[i] = r = (times[lo:hi], values[lo:hi])
        return r

    return window_


def _recent_window(i: int, series_fn: Fn, length_fn: Fn | None, duration: Any, now: int) -> Fn:
    """`S over last D` with D a fixed number of seconds: the common case, kept cheap."""
    if duration is not None:
        seconds = duration.seconds

        def window_fixed(F, V):
            s, as_of_ = series_fn(F, V), F[now]
            if s is U or as_of_ is U:
                V[i] = U
                return U
            times, values = s
            lo = bisect_left(times, as_of_ - seconds)
            hi = bisect_right(times, as_of_)
            V[i] = r = (times[lo:hi], values[lo:hi])
            return r

        return window_fixed
    assert length_fn is not None

    def window_length(F, V):
        s, length, as_of_ = series_fn(F, V), length_fn(F, V), F[now]
        if s is U or length is U or as_of_ is U:
            V[i] = U
            return U
        times, values = s
        lo = bisect_left(times, as_of_ - length)
        hi = bisect_right(times, as_of_)
        V[i] = r = (times[lo:hi], values[lo:hi])
        return r

    return window_length


def moment(i: int, window_fn: Fn, function: str) -> Fn:
    """`first_time(W)` / `last_time(W)`: the time of the earliest / latest observation."""
    index = 0 if function == "first_time" else -1

    def moment_(F, V):
        w = window_fn(F, V)
        V[i] = r = U if w is U or not w[0] else w[0][index]
        return r

    return moment_


def filtered(compiler: _Compiler, node: ir.Filter | ir.Consecutive, i: int) -> Fn:
    """`W where C` (a `Filter`) or `consecutive(W where C)`: C runs once per observation."""
    w_index, window_fn = compiler.compile(node.window)
    value_slot = compiler._slot(node)  # the observation under test, read by `value`
    detail = compiler._slot(node, ())  # per-observation results, for the trace
    compiler.details[i] = detail
    compiler.value_slots.append(value_slot)
    c_index, condition = compiler.compile(node.condition)
    compiler.value_slots.pop()
    compiler.children[i] = (w_index, c_index)

    def results(F: list[Any], V: list[Any], values: tuple[Any, ...]) -> list[Any]:
        out = []
        for x in values:
            V[value_slot] = x
            out.append(condition(F, V))
        V[detail] = tuple(out)
        return out

    if isinstance(node, ir.Consecutive):

        def consecutive(F, V):
            w = window_fn(F, V)
            V[i] = r = U if w is U else _longest_run(results(F, V, w[1]))
            return r

        return consecutive

    def filter_(F, V):
        w = window_fn(F, V)
        if w is U:
            V[i] = U
            return U
        passed = results(F, V, w[1])
        if U in passed:
            V[i] = U
            return U
        times, values = w
        V[i] = r = (
            tuple(t for t, ok in zip(times, passed, strict=True) if ok),
            tuple(x for x, ok in zip(values, passed, strict=True) if ok),
        )
        return r

    return filter_


def _longest_run(results: list[Any]) -> Any:
    """The longest run of true results, unknown if counting unknowns as true could lengthen it."""
    best_low = best_high = low = high = 0
    for r in results:
        if r is U:
            low, high = 0, high + 1
        elif r:
            low, high = low + 1, high + 1
        else:
            low = high = 0
        best_low, best_high = max(best_low, low), max(best_high, high)
    return best_low if best_low == best_high else U


def observation_value(i: int, slot: int) -> Fn:
    def value_(F, V):
        V[i] = x = V[slot]
        return x

    return value_


# --------------------------------------------------------------------------- past dates


def past_problems(
    facts: list[tuple[int, str, bool]], F: list[Any], as_of_: Any
) -> list[Diagnostic]:
    """PR421 for each `past` fact (slot, name, has_time) whose value is after `as_of`."""
    if as_of_ is U:
        return []
    problems = []
    for slot, name, has_time in facts:
        value = F[slot]
        if value is U or value is NEVER:
            continue
        limit = as_of_ if has_time else day_of(as_of_)
        if value > limit:
            problems.append(
                error(
                    "PR421",
                    f"fact `{name}`: {format_instant(value, has_time)} is after `as_of` "
                    f"({format_instant(as_of_)}), but this fact is declared `past`",
                    None,
                    path=f"$.{name}",
                    help="check the date and `as_of`; a past event cannot be in the future",
                )
            )
    return problems
