"""Back end, SQL: the checked IR compiled into sqlglot expressions, one method per node.

Values are SQL values of the patients relation (`sql_stages.Relation`): quantities as DOUBLE in
their unit, instants as DOUBLE seconds (`sql_time`), choices and texts as text, booleans as
SQL booleans — or, where a dialect has none, the integers 1 / 0 (`Dialect.value`). Unknown is
NULL, and the semantics are the interpreter's, node by node (each node's docstring in
`check.ir`):

- ``and``, ``or`` and ``not`` are SQL's, which is Kleene logic; a comparison with NULL is NULL;
  but ``between`` with an unknown bound, a comparison with a `never` date, ``at least n of``,
  division by zero and overflow are written out explicitly.
- Boolean nodes compile to *conditions* (usable in WHERE, WHEN, AND); `value` turns one into a
  storable value. In every dialect but SQL Server the two are the same expression.
- Defines are columns (named after the define); function calls are inlined with their
  arguments; windows and sets are read by `sql_windows` and joined back as columns.
- A construct the compiler (or the dialect) cannot express is refused with a typed
  `ScreeningError` (PR520, PR521), never approximated.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, ClassVar

import attrs
from sqlglot import exp

from .. import ast
from ..check import CheckedProtocol, ir
from ..check.types import BoolT, ChoiceT, NumT, QtyT, SeriesT, SetT, TextT, TimeT, WindowT
from .sql_build import (
    Dialect,
    Expr,
    add,
    and_,
    case,
    coalesce,
    col,
    compare,
    div,
    double,
    in_,
    is_cheap,
    is_null,
    mul,
    neg,
    not_,
    not_null,
    num,
    or_,
    sub,
    text,
)
from .sql_numeric import bounded, divided, math1, null_double, power, round_half_away, times
from .sql_stages import Relation
from .sql_time import DAY, day_of, is_never, shift

_OPS = {
    ast.CompareOp.LT: "<",
    ast.CompareOp.LE: "<=",
    ast.CompareOp.GT: ">",
    ast.CompareOp.GE: ">=",
    ast.CompareOp.EQ: "=",
    ast.CompareOp.NE: "!=",
}
#: Whether `time_since(never) OP D` holds (`evaluate_time._NEVER_HOLDS`).
_NEVER_HOLDS = {
    ast.CompareOp.LT: False,
    ast.CompareOp.LE: False,
    ast.CompareOp.GT: True,
    ast.CompareOp.GE: True,
    ast.CompareOp.EQ: False,
    ast.CompareOp.NE: True,
}


@attrs.define(eq=False)
class Scope:
    """Where an expression is computed: the patients relation, or the rows of one window
    (`value` is then the observation's value, `at` its time)."""

    rel: Relation
    key: int
    value: Expr | None = None
    at: Expr | None = None


def refuse(node: Any, why: str) -> Exception:
    from .sql import unsupported

    return unsupported(node, why)


class ExprCompiler:
    """IR -> SQL expressions (see the module docstring); windows, sets and missing facts are
    mixed in by `sql_windows.WindowReaders` and `sql_missing.MissingFacts`."""

    HANDLERS: ClassVar[dict[type, str]] = {
        ir.Const: "_const",
        ir.FactRef: "_fact",
        ir.DefineRef: "_define",
        ir.Each: "_observation",
        ir.ObservationValue: "_observation",
        ir.Not: "_not",
        ir.Logic: "_logic",
        ir.Compare: "_compare",
        ir.Between: "_between",
        ir.InSet: "_in_set",
        ir.IsKnown: "_is_known",
        ir.Contains: "_contains",
        ir.Convert: "_convert",
        ir.Arith: "_arith",
        ir.Negate: "_negate",
        ir.Window: "_bare_window",
        ir.Filter: "_bare_window",
        ir.Aggregate: "_aggregate",
        ir.Quantified: "_quantified",
        ir.Consecutive: "_consecutive",
        ir.Count: "_count",
        ir.TimeSince: "_time_since",
        ir.DateShift: "_date_shift",
        ir.DateDiff: "_date_diff",
        ir.AsOf: "_as_of",
        ir.DayOf: "_day_of",
        ir.CalendarShift: "_calendar_shift",
        ir.CalendarCompare: "_calendar_compare",
        ir.IsNever: "_is_never",
        ir.If: "_if",
        ir.FirstKnown: "_first_known",
        ir.Unknown: "_unknown",
        ir.Power: "_power",
        ir.Math: "_math",
        ir.Param: "_param",
        ir.FunctionCall: "_function_call",
    }

    dialect: Dialect
    checked: CheckedProtocol
    patients: Scope
    fact_columns: dict[str, str]
    presence_columns: dict[str, str]
    as_of_expr: Expr

    def _init_expressions(self) -> None:
        self.define_bodies = {d.name: d.body for d in self.checked.defines}
        self.define_columns: dict[str, str] = {}
        self._cache: dict[tuple[int, int, tuple[int, ...]], Expr] = {}
        self._keep: list[Any] = []  # nodes whose id() keys the cache stay alive
        self._arguments: list[list[Expr]] = []
        self.call_context: tuple[int, ...] = ()
        self._scopes = itertools.count(1)
        self._hints = itertools.count(1)

    def hint(self, what: str) -> str:
        return f"{what}_{next(self._hints)}"

    # ------------------------------------------------------------------ entry points

    def expr(self, node: ir.Node, scope: Scope | None = None) -> Expr:
        """The value of `node` (a condition for a boolean node) in `scope` (default: per
        patient)."""
        scope = scope or self.patients
        key = (id(node), scope.key, self.call_context)
        cached = self._cache.get(key)
        if cached is None:
            method = self.HANDLERS.get(type(node))
            if method is None:  # pragma: no cover - every IR node has a handler
                raise refuse(node, "this construct has no SQL form")
            self._keep.append(node)
            cached = self._cache[key] = getattr(self, method)(node, scope)
        return cached

    def value(self, node: ir.Node, scope: Scope | None = None) -> Expr:
        """`expr`, with a boolean as a storable value (for CASE branches, COALESCE, columns)."""
        e = self.expr(node, scope)
        return self.dialect.value(e) if isinstance(node.type, BoolT) else e

    def is_unknown(self, node: ir.Node, scope: Scope | None = None) -> Expr:
        scope = scope or self.patients
        return is_null(scope.rel.shared(self.value(node, scope), self.hint("value")))

    def shared(self, node: ir.Node, scope: Scope) -> Expr:
        """`expr` of a node written more than once: a column unless it is cheap (a literal, a
        column), so that the SQL says each computation once."""
        e = self.expr(node, scope)
        if not isinstance(node.type, BoolT):
            return scope.rel.shared(e, self.hint("value"))
        return self.shared_condition(e, scope)

    def shared_condition(self, c: Expr, scope: Scope) -> Expr:
        """A condition written more than once, as `shared`."""
        if is_cheap(c):
            return c
        d = self.dialect
        return d.predicate(scope.rel.column(d.value(c), self.hint("condition")))

    def _condition(self, node: ir.Node, e: Expr) -> Expr:
        """A stored value of `node` as it is used: a condition if boolean."""
        return self.dialect.predicate(e) if isinstance(node.type, BoolT) else e

    # ------------------------------------------------------------------ leaves

    def _const(self, node: ir.Const, scope: Scope) -> Expr:
        value = node.value
        match node.type:
            case BoolT():
                return self.dialect.true() if value else self.dialect.false()
            case NumT() | QtyT() | TimeT():
                if value is None:
                    return null_double()
                return double(float(value))
            case TextT() | ChoiceT():
                return text(value)
        raise refuse(node, f"a literal of type {node.type}")

    def _literal(self, node: ir.Node, scope: Scope) -> Expr:
        """A constant operand of a comparison: a plain literal (the other side gives the type)."""
        if isinstance(node, ir.Const) and isinstance(node.type, NumT | QtyT | TimeT):
            return num(float(node.value))
        return self.value(node, scope)

    def _fact(self, node: ir.FactRef, scope: Scope) -> Expr:
        if isinstance(node.type, SeriesT | SetT):
            # a series or a set as a value says whether the patient has it (1 or NULL)
            return col(self.presence_columns[node.name])
        return self._condition(node, col(self.fact_columns[node.name]))

    def _define(self, node: ir.DefineRef, scope: Scope) -> Expr:
        if isinstance(node.type, SeriesT | SetT | WindowT):
            body = self.define_bodies[node.name]
            return self.expr(body, scope)  # read through, where it is used
        column = self.define_columns.get(node.name)
        if column is None:
            body = self.define_bodies[node.name]
            e = self.value(body, self.patients)
            column = self.names.claim(node.name)
            self.patients.rel.add(column, e)
            self.define_columns[node.name] = column
        return self._condition(node, col(column))

    def _observation(self, node: ir.Node, scope: Scope) -> Expr:
        if scope.value is None:
            raise refuse(node, "an observation's value outside `any`, `all` or `where`")
        return self._condition(node, scope.value)

    def _bare_window(self, node: ir.Node, scope: Scope) -> Expr:
        raise refuse(
            node, "a window read other than by an aggregate, a quantifier or `consecutive`"
        )

    # ------------------------------------------------------------------ logic

    def _not(self, node: ir.Not, scope: Scope) -> Expr:
        return not_(self.expr(node.operand, scope))

    def _logic(self, node: ir.Logic, scope: Scope) -> Expr:
        parts = [self.expr(o, scope) for o in node.operands]
        return and_(*parts) if node.op is ast.LogicOp.AND else or_(*parts)

    def _count(self, node: ir.Count, scope: Scope) -> Expr:
        conditions = [self.shared(c, scope) for c in node.conditions]
        true = _sum([case((c, num(1)), default=num(0)) for c in conditions])
        unknown = _sum(
            [case((is_null(self.dialect.value(c)), num(1)), default=num(0)) for c in conditions]
        )
        n = num(node.n)
        t = scope.rel.column(true, self.hint("count_true"))
        u = scope.rel.column(unknown, self.hint("count_unknown"))
        if node.op is ast.CountOp.AT_LEAST:
            held = case((compare(">=", t, n), num(1)), (compare("<", add(t, u), n), num(0)))
        else:
            held = case((compare("<=", add(t, u), n), num(1)), (compare(">", t, n), num(0)))
        return self.dialect.predicate(self._bool_from_int(held))

    def _bool_from_int(self, x: Expr) -> Expr:
        """1 / 0 / NULL as a storable boolean."""
        if not self.dialect.native_booleans:
            return x
        return case((compare("=", x, num(1)), exp.true()), (compare("=", x, num(0)), exp.false()))

    # ------------------------------------------------------------------ comparisons

    def _compare(self, node: ir.Compare, scope: Scope) -> Expr:
        left, right = node.left, node.right
        op = _OPS[node.op]
        a, b = self._literal(left, scope), self._literal(right, scope)
        if isinstance(left.type, BoolT):
            a, b = self.value(left, scope), self.value(right, scope)
        if isinstance(left.type, TextT | ChoiceT) and op in ("=", "!="):
            equal = self.dialect.text_equal(a, b)
            return equal if op == "=" else not_(equal)
        if _may_be_never(left) or _may_be_never(right):
            a, b = scope.rel.shared(a, self.hint("left")), scope.rel.shared(b, self.hint("right"))
            return self._unless_never([a, b], compare(op, a, b))
        return compare(op, a, b)

    def _unless_never(self, instants: list[Expr], test: Expr) -> Expr:
        """`test`, false when an instant is `never` (even if another is unknown)."""
        nevers = [is_never(x) for x in instants]
        stored = case(
            (or_(*nevers), self.dialect.value(self.dialect.false())),
            default=self.dialect.value(test),
        )
        return self.dialect.predicate(stored)

    def _between(self, node: ir.Between, scope: Scope) -> Expr:
        rel = scope.rel
        x = rel.shared(self._literal(node.operand, scope), self.hint("between"))
        low = rel.shared(self._literal(node.low, scope), self.hint("low"))
        high = rel.shared(self._literal(node.high, scope), self.hint("high"))
        inside = and_(compare("<=", low, x), compare("<=", x, high))
        consts = isinstance(node.low, ir.Const) and isinstance(node.high, ir.Const)
        if not consts:  # an unknown bound makes it unknown, whatever x is
            stored = case(
                (or_(is_null(x), is_null(low), is_null(high)), self.dialect.null_bool()),
                default=self.dialect.value(inside),
            )
            inside = self.dialect.predicate(stored)
        if any(_may_be_never(n) for n in (node.operand, node.low, node.high)):
            return self._unless_never([x, low, high], inside)
        return inside

    def _in_set(self, node: ir.InSet, scope: Scope) -> Expr:
        # SQL's IN is the interpreter's: true on a match, else NULL if an item is NULL
        x = self._literal(node.operand, scope)
        if isinstance(node.operand.type, BoolT):
            x = self.value(node.operand, scope)
        items = [
            self._literal(i, scope) if not isinstance(i.type, BoolT) else self.value(i, scope)
            for i in node.items
        ]
        test = in_(x, items)
        return not_(test) if node.negated else test

    def _is_known(self, node: ir.IsKnown, scope: Scope) -> Expr:
        operand = node.operand
        if isinstance(operand.type, WindowT):
            raise refuse(node, "`is known` of a window")
        x = self.value(operand, scope)
        return not_null(x) if not node.negated else is_null(x)

    # ------------------------------------------------------------------ arithmetic

    def _convert(self, node: ir.Convert, scope: Scope) -> Expr:
        from .sql_numeric import clean

        c = node.conversion
        x = self.expr(node.operand, scope)
        raw = mul(x, num(c.factor))
        if c.offset:
            raw = add(raw, num(c.offset))
        return clean(scope.rel, raw, self.hint("converted"))

    def _arith(self, node: ir.Arith, scope: Scope) -> Expr:
        a, b = self.expr(node.left, scope), self.expr(node.right, scope)
        scale, rel = node.scale, scope.rel
        match node.op:
            case ast.ArithOp.ADD:
                r = add(a, b)
            case ast.ArithOp.SUB:
                r = sub(a, b)
            case ast.ArithOp.MUL:
                return times(rel, a, b, scale, self.hint("product"))
            case ast.ArithOp.DIV:
                return divided(rel, a, b, scale, self.hint("quotient"))
        if scale != 1.0:
            return times(rel, r, num(1), scale, self.hint("sum"))
        return bounded(rel, r, self.hint("sum"))

    def _negate(self, node: ir.Negate, scope: Scope) -> Expr:
        return neg(self.expr(node.operand, scope))

    # ------------------------------------------------------------------ time

    def _as_of(self, node: ir.AsOf, scope: Scope) -> Expr:
        return self.as_of_expr

    def _day_of(self, node: ir.DayOf, scope: Scope) -> Expr:
        return day_of(scope.rel, self.expr(node.operand, scope), self.hint("day"))

    def _as_of_day(self, scope: Scope) -> Expr:
        return day_of(scope.rel, self.as_of_expr, "as_of_day")

    def _time_since(self, node: ir.TimeSince, scope: Scope) -> Expr:
        now = self._as_of_day(scope) if _is_date(node.operand) else self.as_of_expr
        return div(sub(now, self.expr(node.operand, scope)), num(DAY))

    def _date_shift(self, node: ir.DateShift, scope: Scope) -> Expr:
        x, s = self.shared(node.date, scope), self.shared(node.seconds, scope)
        moved = add(x, s) if node.sign > 0 else sub(x, s)
        return case((is_null(s), null_double()), (is_never(x), x), default=moved)

    def _date_diff(self, node: ir.DateDiff, scope: Scope) -> Expr:
        x, y = self.shared(node.left, scope), self.shared(node.right, scope)
        return case(
            (and_(is_never(x), is_never(y)), null_double()), default=div(sub(x, y), num(DAY))
        )

    def _calendar_shift(self, node: ir.CalendarShift, scope: Scope) -> Expr:
        x = self.expr(node.instant, scope)
        moved = shift(scope.rel, self.dialect, x, node.duration, node.sign, self.hint("shifted"))
        if moved is None:
            raise self._no_months(node)
        return moved

    def _no_months(self, node: Any) -> Exception:
        from .sql import unsupported_dialect

        return unsupported_dialect(self.dialect, "adding calendar months", "use another dialect")

    def _is_never(self, node: ir.IsNever, scope: Scope) -> Expr:
        return is_never(self.expr(node.operand, scope))

    def _calendar_compare(self, node: ir.CalendarCompare, scope: Scope) -> Expr:
        since = node.since
        if not isinstance(since, ir.TimeSince):  # pragma: no cover - the checker builds it so
            raise refuse(node, "a calendar comparison of something else than `time_since`")
        x = scope.rel.column(self.expr(since.operand, scope), self.hint("since"))
        date = _is_date(since.operand)
        tests = []
        for op, duration in zip(node.ops, node.durations, strict=True):
            now = self._as_of_day(scope) if date and not duration.has_time else self.as_of_expr
            moved = shift(scope.rel, self.dialect, x, duration, 1, self.hint("since_shifted"))
            if moved is None:
                raise self._no_months(node)
            tests.append(compare(_OPS[op], now, moved))
        holds = all(_NEVER_HOLDS[op] for op in node.ops)
        d = self.dialect
        stored = case(
            (or_(is_null(x), is_null(self.as_of_expr)), d.null_bool()),
            (is_never(x), d.value(d.true() if holds else d.false())),
            default=d.value(and_(*tests)),
        )
        return d.predicate(stored)

    # ------------------------------------------------------------------ calculation

    def _if(self, node: ir.If, scope: Scope) -> Expr:
        c = self.shared(node.condition, scope)
        a, b = self.value(node.then, scope), self.value(node.otherwise, scope)
        result = case((c, a), (not_(c), b))
        return self._condition(node, result)

    def _first_known(self, node: ir.FirstKnown, scope: Scope) -> Expr:
        values = [self.value(o, scope) for o in node.operands]
        return self._condition(node, coalesce(*values) if len(values) > 1 else values[0])

    def _unknown(self, node: ir.Unknown, scope: Scope) -> Expr:
        if isinstance(node.type, BoolT):
            return self.dialect.predicate(self.dialect.null_bool())
        if isinstance(node.type, TextT | ChoiceT):
            return exp.Cast(this=exp.Null(), to=exp.DataType.build("VARCHAR"))
        return null_double()

    def _power(self, node: ir.Power, scope: Scope) -> Expr:
        return power(
            scope.rel,
            self.expr(node.base, scope),
            self.expr(node.exponent, scope),
            self.hint("power"),
        )

    def _math(self, node: ir.Math, scope: Scope) -> Expr:
        args = [self.expr(a, scope) for a in node.args]
        match node.function:
            case "round":
                digit_node = node.args[1] if len(node.args) > 1 else None
                if digit_node is not None and not isinstance(digit_node, ir.Const):
                    raise refuse(node, "`round` to a number of digits that is not a constant")
                digits = int(digit_node.value) if digit_node is not None else 0  # type: ignore[union-attr]
                return round_half_away(scope.rel, args[0], digits, self.hint("rounded"))
            case "min" | "max":
                return self._extremum(node.function, args, scope)
        return math1(scope.rel, node.function, args[0], self.hint(node.function))

    def _extremum(self, function: str, args: list[Expr], scope: Scope) -> Expr:
        """Python's min / max: the first smallest (largest); unknown if any is unknown."""
        columns = [scope.rel.column(a, self.hint(function)) for a in args]
        best = columns[0]
        for c in columns[1:]:
            better = compare("<", c, best) if function == "min" else compare(">", c, best)
            best = scope.rel.column(case((better, c), default=best), self.hint(function))
        return case((or_(*(is_null(c) for c in columns)), null_double()), default=best)

    def _param(self, node: ir.Param, scope: Scope) -> Expr:
        return self._condition(node, self._arguments[-1][node.index])

    def _function_call(self, node: ir.FunctionCall, scope: Scope) -> Expr:
        # an argument is written wherever the body reads its parameter
        arguments = [
            scope.rel.shared(self.value(a, scope), self.hint("argument")) for a in node.args
        ]
        self._arguments.append(arguments)
        outer = self.call_context
        self.call_context = (*outer, id(node))
        try:
            return self.expr(node.body, scope)
        finally:
            self.call_context = outer
            self._arguments.pop()

    # window readers: see sql_windows.WindowReaders
    _aggregate: Callable[..., Expr]
    _quantified: Callable[..., Expr]
    _consecutive: Callable[..., Expr]
    _contains: Callable[..., Expr]


def _sum(parts: list[Expr]) -> Expr:
    out = parts[0]
    for p in parts[1:]:
        out = add(out, p)
    return out


def _is_date(node: ir.Node) -> bool:
    return isinstance(node.type, TimeT) and not node.type.has_time


def _may_be_never(node: ir.Node) -> bool:
    return isinstance(node.type, TimeT) and node.type.never


__all__ = ["ExprCompiler", "Scope", "refuse"]
