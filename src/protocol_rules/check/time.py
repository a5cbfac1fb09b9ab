"""Checker pass over the time expressions of the second edition (docs/language/time.md).

A mixin of `ExprChecker`: calendar durations (duration words anchored to a date), `as_of`,
windows anchored anywhere (`over last D before T`, `from A to B`), filtered windows
(`W where C`, `value`), `consecutive`, `first_time` / `last_time`, day precision where a date
meets a datetime, and `date or never` facts (`is never`). The calendar itself is
`protocol_rules.calendar`; this module decides, from the syntax, which durations are calendar
durations and builds the IR nodes that carry them (`CalendarShift`, `CalendarCompare`, a
`Window`'s `duration`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import ast
from ..calendar import DAY, CalendarDuration, NotWhole
from ..diagnostics import warning
from . import ir
from .types import BOOL, ERROR, INTEGER, ErrorT, QtyT, SeriesT, TimeT, Type, WindowT

if TYPE_CHECKING:
    from .expressions import ExprChecker

    _Base = ExprChecker
else:
    _Base = object

#: Functions of the second edition that read a window.
TIME_FUNCTIONS = {"first_time", "last_time", "consecutive"}
_SECONDS = "s"
_FLIP = {
    ast.CompareOp.LT: ast.CompareOp.GT,
    ast.CompareOp.LE: ast.CompareOp.GE,
    ast.CompareOp.GT: ast.CompareOp.LT,
    ast.CompareOp.GE: ast.CompareOp.LE,
    ast.CompareOp.EQ: ast.CompareOp.EQ,
    ast.CompareOp.NE: ast.CompareOp.NE,
}


class TimeChecks(_Base):
    """The time half of `ExprChecker` (it inherits these methods)."""

    def _init_time(self) -> None:
        #: Types of `value` in the `where` conditions being checked, innermost last.
        self._value_types: list[Type] = []
        #: Checked define bodies by name, so that `define washout = 3 months` stays a calendar
        #: duration where it is used (filled by `check.check` as it checks the defines).
        self.define_bodies: dict[str, ir.Node] = {}

    # ------------------------------------------------------------------ calendar durations

    def calendar_of(self, node: ir.Node) -> CalendarDuration | None:
        """The calendar duration `node` is, if it is a constant written with duration words.

        `3 months`, `-2 weeks`, `2 * 3 months`, `1 year + 6 months` and defines of them are;
        quantities in quotes (`3 'mo'`) and computed durations (`time_since(x)`) are not.
        Raises `NotWhole` for a fraction of a month (`1.5 months`).
        """
        if not (isinstance(node.type, QtyT) and node.type.is_duration):
            return None
        if isinstance(node, ir.DefineRef):
            body = self.define_bodies.get(node.name)
            return self.calendar_of(body) if body is not None else None
        return self._calendar_syntax(node.source)

    def _calendar_syntax(self, expr: ast.Expr) -> CalendarDuration | None:
        match expr:
            case ast.DurationLit(value=value):
                return CalendarDuration.of(value, expr.unit)
            case ast.Negate(operand=operand):
                inner = self._calendar_syntax(operand)
                return -inner if inner is not None else None
            case ast.Arithmetic(op=ast.ArithOp.ADD | ast.ArithOp.SUB as op, left=a, right=b):
                left, right = self._calendar_syntax(a), self._calendar_syntax(b)
                if left is None or right is None:
                    return None
                return left + right if op is ast.ArithOp.ADD else left - right
            case ast.Arithmetic(op=ast.ArithOp.MUL, left=ast.NumberLit(value=k), right=d) | (
                ast.Arithmetic(op=ast.ArithOp.MUL, left=d, right=ast.NumberLit(value=k))
            ):
                inner = self._calendar_syntax(d)
                return inner.times(k) if inner is not None else None
            case ast.Arithmetic(op=ast.ArithOp.DIV, left=d, right=ast.NumberLit(value=k)) if k:
                inner = self._calendar_syntax(d)
                return inner.times(1 / k) if inner is not None else None
            case ast.Name(name=name) if name in self.define_bodies:
                return self.calendar_of(self.define_bodies[name])
        return None

    def _anchored_calendar(self, node: ir.Node) -> CalendarDuration | None:
        """`calendar_of(node)` where a date anchors it: a fraction of a month is PR320, months
        or years in a computed duration are added as a definite duration (PR325)."""
        try:
            duration = self.calendar_of(node)
        except NotWhole:
            text = node.source.span.text
            self._error(
                "PR320",
                f"`{text}` is not a whole number of calendar months",
                node.source.span,
                label="months and years step the calendar",
                help="write whole months (`1 month`), days (`45 days`), or a mean length in "
                f"quotes (`{_ucum_hint(node)}`)",
            )
            return None
        if duration is None and _is_duration(node) and _has_month_word(node.source):
            self.diagnostics.append(
                warning(
                    "PR325",
                    f"`{node.source.span.text}` is not a constant, so it counts as a definite "
                    "length here (a month is 30.4375 days), not as calendar steps",
                    node.source.span,
                    help="anchor a constant duration, e.g. `x + 3 months`, or write the "
                    "duration in quotes (`3 'mo'`) to say you mean the definite length",
                )
            )
        return duration

    # ------------------------------------------------------------------ as_of, value, never

    def _as_of(self, node: ast.AsOf) -> ir.Node:
        self.uses_time = True
        return ir.AsOf(TimeT(True), source=node)

    def _observation_value(self, node: ast.ObservationValue) -> ir.Node:
        if self._value_types:
            return ir.ObservationValue(self._value_types[-1], source=node)
        self._error(
            "PR220",
            "`value` is the value of an observation, and means something only inside `where`",
            node.span,
            label="not inside a `where` condition",
            help="filter a window with it, e.g. "
            "`count(serum_creatinine over last 7 days where value > 4 'mg/dL')`",
        )
        return ir.Const(None, ERROR, source=node)

    def _is_never(self, node: ast.IsNever) -> ir.Node:
        operand = self.check(node.operand)
        otype = operand.type
        if isinstance(otype, TimeT) and not otype.never:
            name = node.operand.span.text
            self._error(
                "PR322",
                f"`{name}` is never `never`: it is not declared `{otype} or never`",
                node.operand.span,
                label=f"{_a_type(otype)}",
                help=f"declare it `fact {name}: {otype} or never` if the patient record may say "
                '"never", or test `is unknown`'
                if isinstance(operand, ir.FactRef)
                else "test a fact declared `date or never`",
            )
        elif not isinstance(otype, TimeT | ErrorT):
            self._error(
                "PR301",
                f"`is never` tests a date, not {_a_type(otype)}",
                node.operand.span,
                help="test a fact declared `date or never`, or use `is unknown`",
            )
        return ir.IsNever(operand, BOOL, source=node)

    # ------------------------------------------------------------------ instants

    def _instants(self, left: ir.Node, right: ir.Node) -> tuple[ir.Node, ir.Node]:
        """Two instants made comparable: a datetime that meets a date counts as its UTC date."""
        lt, rt = left.type, right.type
        assert isinstance(lt, TimeT) and isinstance(rt, TimeT)
        if lt.has_time and not rt.has_time:
            return _day_of(left), right
        if rt.has_time and not lt.has_time:
            return left, _day_of(right)
        return left, right

    def _instant_between(
        self, operand: ir.Node, low: ir.Node, high: ir.Node
    ) -> tuple[ir.Node, ir.Node, ir.Node]:
        """`x between A and B` of instants: at day precision when any of the three is a date."""
        nodes = (operand, low, high)
        if all(isinstance(n.type, TimeT) and n.type.has_time for n in nodes):
            return nodes
        day = tuple(
            _day_of(n) if isinstance(n.type, TimeT) and n.type.has_time else n for n in nodes
        )
        return day[0], day[1], day[2]

    def _time_shift(
        self, node: ast.Arithmetic, instant: ir.Node, amount: ir.Node, sign: int
    ) -> ir.Node:
        """`instant ± amount`: a `CalendarShift` for duration words, else a definite `DateShift`."""
        itype = instant.type
        assert isinstance(itype, TimeT)
        duration = self._anchored_calendar(amount)
        if duration is not None:
            has_time = itype.has_time or duration.has_time
            result = TimeT(has_time, itype.never)
            return ir.CalendarShift(sign, instant, amount, duration, result, source=node)
        seconds = self._duration_seconds(amount)
        whole_days = isinstance(seconds, ir.Const) and isinstance(seconds.value, int | float)
        whole_days = whole_days and seconds.value % DAY == 0  # type: ignore[union-attr]
        result = TimeT(itype.has_time or not whole_days, itype.never)
        return ir.DateShift(sign, instant, seconds, result, source=node)

    def _date_difference(self, node: ast.Arithmetic, left: ir.Node, right: ir.Node) -> ir.Node:
        left, right = self._instants(left, right)
        return ir.DateDiff(left, right, QtyT("d"), source=node)

    # ------------------------------------------------------------------ time_since by calendar

    def _calendar_comparison(
        self, node: ast.Comparison, left: ir.Node, right: ir.Node
    ) -> ir.Node | None:
        """`time_since(x) OP D` (either way round) with D a calendar duration, else None."""
        op = node.op
        since, amount = _since(left, self.define_bodies), right
        if since is None:
            since, amount, op = _since(right, self.define_bodies), left, _FLIP[op]
        if since is None or isinstance(since.type, ErrorT):
            return None
        duration = self._anchored_calendar(amount)
        if duration is None:
            return None
        return ir.CalendarCompare(since, (op,), (amount,), (duration,), BOOL, source=node)

    def _calendar_between(
        self, node: ast.Between, operand: ir.Node, low: ir.Node, high: ir.Node
    ) -> ir.Node | None:
        """`time_since(x) between D1 and D2` with calendar durations, else None."""
        since = _since(operand, self.define_bodies)
        if since is None or isinstance(since.type, ErrorT):
            return None
        durations = (self._anchored_calendar(low), self._anchored_calendar(high))
        if durations[0] is None or durations[1] is None:
            return None
        ops = (ast.CompareOp.GE, ast.CompareOp.LE)
        return ir.CalendarCompare(since, ops, (low, high), durations, BOOL, source=node)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ windows

    def _time_window(self, node: ast.Window | ast.WindowFromTo) -> ir.Node:
        self.uses_time = True
        series = self.check(node.series)
        length: ir.Node | None = None
        duration: CalendarDuration | None = None
        end: ir.Node | None = None
        start: ir.Node | None = None
        if isinstance(node, ast.Window):
            length = self.check(node.duration)
            if _is_duration(length):
                duration = self._anchored_calendar(length)
            if duration is None:
                length = self._duration_seconds(length)
            if node.before is not None:
                end = self._bound(node.before, "before")
        else:
            start = self._bound(node.start, "from")
            end = self._bound(node.end, "to")
        type_: Type = ERROR
        if isinstance(series.type, SeriesT):
            type_ = WindowT(series.type.element)
        elif not isinstance(series.type, ErrorT):
            word = "over last" if isinstance(node, ast.Window) else "from … to"
            self._error(
                "PR301",
                f"`{word}` needs a series, but `{node.series.span.text}` is {_a_type(series.type)}",
                node.series.span,
                help="declare the fact as `series of …` to read it through a window",
            )
        return ir.Window(series, length, type_, end, start, duration, source=node)

    def _bound(self, expr: ast.Expr, word: str) -> ir.Node:
        bound = self.check(expr)
        if isinstance(bound.type, TimeT | ErrorT):
            return bound
        self._error(
            "PR321",
            f"a window bound must be a date or datetime, but `{expr.span.text}` is "
            f"{_a_type(bound.type)}",
            expr.span,
            label=f"after `{word}`",
            help="bound the window with a date fact, `as_of`, or a date such as `@2026-03-01`"
            + (
                f"; `{expr.span.text}` is a duration: write `over last {expr.span.text}`"
                if isinstance(bound.type, QtyT) and bound.type.is_duration
                else ""
            ),
        )
        return ir.Const(None, ERROR, source=expr)

    def _where(self, node: ast.Where) -> ir.Node:
        window = self._filtered_window(node.window)
        condition = self._filter_condition(window, node.condition)
        return ir.Filter(window, condition, window.type, source=node)

    def _filtered_window(self, expr: ast.Expr) -> ir.Node:
        window = self.check(expr)
        if isinstance(window.type, WindowT | ErrorT):
            return window
        if isinstance(window.type, SeriesT):
            self._series_misuse(window)
        else:
            self._error(
                "PR323",
                f"`where` filters the observations of a window, not {_a_type(window.type)}",
                expr.span,
                help="write `series over last 7 days where value > …`; to combine conditions "
                "use `and`",
            )
        return ir.Const(None, ERROR, source=expr)

    def _filter_condition(self, window: ir.Node, expr: ast.Expr) -> ir.Node:
        if not isinstance(window.type, WindowT):
            return ir.Const(None, ERROR, source=expr)
        self._value_types.append(window.type.element)
        try:
            condition = self.check(expr)
        finally:
            self._value_types.pop()
        self._require_bool(condition, "the condition of `where`")
        return condition

    def _time_call(self, node: ast.Call) -> ir.Node:
        """`first_time(W)`, `last_time(W)`, `consecutive(W where C)` (one argument, checked)."""
        (arg,) = node.args
        if node.function == "consecutive":
            return self._consecutive(node, arg)
        window = self._window_argument(arg, f"`{node.function}`")
        type_ = TimeT(True) if isinstance(window.type, WindowT) else ERROR
        return ir.Aggregate(node.function, window, type_, source=node)

    def _consecutive(self, node: ast.Call, arg: ast.Expr) -> ir.Node:
        if isinstance(arg, ast.Where):
            window = self._filtered_window(arg.window)
            condition = self._filter_condition(window, arg.condition)
            return ir.Consecutive(window, condition, INTEGER, source=node)
        checked = self.check(arg)
        body = _unwrap(checked, self.define_bodies)
        if isinstance(body, ir.Filter):
            return ir.Consecutive(body.window, body.condition, INTEGER, source=node)
        if not isinstance(checked.type, ErrorT):
            text = arg.span.text
            self._error(
                "PR324",
                "`consecutive` counts a run of observations that meet a condition, but "
                f"`{text}` has no `where`",
                arg.span,
                help=f"write `consecutive({text} where value < …)`"
                if isinstance(checked.type, WindowT)
                else "write `consecutive(egfr over last 90 days where value < 15 …)`",
            )
        return ir.Const(None, ERROR, source=node)


# --------------------------------------------------------------------------- helpers


def _is_duration(node: ir.Node) -> bool:
    return isinstance(node.type, QtyT) and node.type.is_duration


def _day_of(node: ir.Node) -> ir.Node:
    type_ = node.type
    assert isinstance(type_, TimeT)
    return ir.DayOf(node, TimeT(False, type_.never), source=node.source)


def _unwrap(node: ir.Node, defines: dict[str, ir.Node]) -> ir.Node:
    """The body behind a chain of define references."""
    seen: set[str] = set()
    while isinstance(node, ir.DefineRef) and node.name in defines and node.name not in seen:
        seen.add(node.name)
        node = defines[node.name]
    return node


def _since(node: ir.Node, defines: dict[str, ir.Node]) -> ir.Node | None:
    """The `TimeSince` that `node` is (through defines), or None."""
    body = _unwrap(node, defines)
    return body if isinstance(body, ir.TimeSince) else None


def _has_month_word(expr: ast.Expr) -> bool:
    """Whether `expr` writes months or years with words (where calendar and UCUM differ)."""
    stack = [expr]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.DurationLit) and current.unit in ("mo", "a"):
            return True
        stack.extend(ast.children(current))
    return False


def _ucum_hint(node: ir.Node) -> str:
    source = node.source
    if isinstance(source, ast.DurationLit):
        return f"{source.value:g} '{source.unit}'"
    return "1.5 'mo'"


def _a_type(t: object) -> str:
    text = str(t)
    return f"an {text}" if text[:1] in "aeiou" else f"a {text}"


def day_precision(node: ir.Node) -> bool:
    """Whether an instant node has day precision (a date)."""
    return isinstance(node.type, TimeT) and not node.type.has_time


__all__ = ["TIME_FUNCTIONS", "TimeChecks", "day_precision"]
