"""Checker pass over expressions: resolve names, infer types, place unit conversions.

`ExprChecker.check(node)` turns an `ast` expression into a typed `ir` node and appends a
diagnostic for every problem; an expression with an error gets `ErrorT`, which is compatible
with everything so that one mistake is reported once, not as a cascade.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import assert_never

from .. import ast, units
from ..diagnostics import Diagnostic, error, warning
from ..source import Span
from ..suggestions import did_you_mean
from . import ir
from .calc import CalcChecks
from .calls import CallChecks
from .codes import CodeChecks
from .time import TIME_FUNCTIONS, TimeChecks
from .types import (
    BOOL,
    DAYS,
    ERROR,
    INTEGER,
    NUMBER,
    TEXT,
    BoolT,
    ChoiceT,
    CodeT,
    ErrorT,
    NumT,
    QtyT,
    SeriesT,
    SetT,
    TextT,
    TimeT,
    Type,
    WindowT,
)
from .unit_names import substance, unit_error

AGGREGATES = {"max", "min", "mean", "sum", "latest", "earliest", "count", "exists"}
FUNCTIONS = AGGREGATES | {"time_since"} | TIME_FUNCTIONS
_ORDERED_AGGREGATES = {"max", "min", "mean", "sum"}
_EQUALITY = {ast.CompareOp.EQ, ast.CompareOp.NE}
_NOW_WORDS = {"today", "now", "current_date", "current_time"}
_NOW_HELP = (
    "write `as_of`: every time expression is relative to it, the moment the patient is "
    "evaluated at (`time_since(d)` is the time from `d` to `as_of`)"
)
SECONDS = "s"


def to_epoch(iso: str) -> float:
    """Seconds since the epoch of an ISO date or datetime; a date counts from 00:00 UTC."""
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class ExprChecker(CalcChecks, CallChecks, TimeChecks, CodeChecks):
    """Types the expressions of one protocol against its facts and already-checked defines.

    The calculation constructs (`if`, `unknown`, `^`, math functions) are checked by the
    `CalcChecks` mixin (check/calc.py), names in functions and calls by `CallChecks`
    (check/calls.py), the time expressions of the second edition by `TimeChecks`
    (check/time.py), codes and value sets by `CodeChecks` (check/codes.py).
    """

    def __init__(
        self,
        facts: Mapping[str, tuple[int, Type]],
        define_types: Callable[[str], Type | None],
        define_names: set[str],
        ranges: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        self.facts = facts
        self.ranges = ranges or {}
        self.define_types = define_types
        self.define_names = define_names
        self.diagnostics: list[Diagnostic] = []
        self.used_facts: set[str] = set()
        self.used_defines: set[str] = set()
        self.uses_time = False
        self._choices: dict[str, list[ChoiceT]] = {}
        self._each_types: list[Type] = []
        self._init_time()
        for _, type_ in facts.values():
            choice = _choice_of(type_)
            if choice:
                for name in choice.choices:
                    self._choices.setdefault(name, []).append(choice)
        self._init_calc()

    # ------------------------------------------------------------------ entry points

    def condition(self, node: ast.Expr, what: str) -> ir.Node:
        """Check an expression that must be a boolean condition (a criterion's body)."""
        result = self.check(node, BOOL)
        self._require_bool(result, what)
        return result

    def _check(self, node: ast.Expr, expected: Type | None = None) -> ir.Node:
        """Type one expression; `check` (in `CalcChecks`) wraps this with the `unknown` rule."""
        match node:
            case ast.NumberLit(value=v, is_integer=i):
                return ir.Const(int(v) if i else v, INTEGER if i else NUMBER, source=node)
            case ast.QuantityLit(value=v, unit=u):
                if not self._valid_unit(u, node.unit_span):
                    return ir.Const(v, ERROR, source=node)
                return ir.Const(v, QtyT(u), source=node)
            case ast.DurationLit(value=v):
                return ir.Const(v, QtyT(node.unit), source=node)
            case ast.DateLit(value=v, has_time=t):
                return ir.Const(to_epoch(v), TimeT(t), source=node)
            case ast.TextLit(value=v):
                return ir.Const(v, TEXT, source=node)
            case ast.BoolLit(value=v):
                return ir.Const(v, BOOL, source=node)
            case ast.Name():
                return self._scoped_name(node, expected)
            case ast.Each():
                return ir.Each(self._each_types[-1], source=node)
            case ast.Call():
                return self._any_call(node, expected)
            case ast.Not(operand=o):
                operand = self.check(o, BOOL)
                self._require_bool(operand, "the operand of `not`")
                return ir.Not(operand, BOOL, source=node)
            case ast.Logic(op=op, operands=ops):
                checked = tuple(self.check(o, BOOL) for o in ops)
                for o in checked:
                    self._require_bool(o, f"an operand of `{op.value}`")
                return ir.Logic(op, checked, BOOL, source=node)
            case ast.Comparison():
                return self._compare_unknown(node)
            case ast.Between():
                return self._between(node)
            case ast.InSet():
                return self._in_set(node)
            case ast.IsKnown(operand=o, negated=neg):
                operand = self.check(o)
                if isinstance(operand.type, WindowT):
                    self._window_misuse(operand)
                return ir.IsKnown(operand, neg, BOOL, source=node)
            case ast.Contains():
                return self._contains(node)
            case ast.Window() | ast.WindowFromTo():
                return self._time_window(node)
            case ast.Where():
                return self._where(node)
            case ast.ObservationValue():
                return self._observation_value(node)
            case ast.AsOf():
                return self._as_of(node)
            case ast.IsNever():
                return self._is_never(node)
            case ast.Quantified():
                return self._quantified(node)
            case ast.Count():
                return self._count(node)
            case ast.Arithmetic():
                return self._arithmetic(node)
            case ast.Negate(operand=o):
                operand = self.check(o)
                if isinstance(operand.type, ErrorT):
                    return ir.Negate(operand, ERROR, source=node)
                if not isinstance(operand.type, NumT | QtyT):
                    self._error("PR301", f"cannot negate {_a(operand.type)}", o.span)
                    return ir.Negate(operand, ERROR, source=node)
                if isinstance(operand, ir.Const):
                    return ir.Const(-operand.value, operand.type, source=node)
                return ir.Negate(operand, operand.type, source=node)
            case ast.If() | ast.UnknownLit() | ast.Power():
                return self._calculation(node, expected)
            case ast.CodeLit() | ast.ValueSetRef():
                return self._code_expr(node)
        assert_never(node)

    # ------------------------------------------------------------------ names

    def _name(self, node: ast.Name, expected: Type | None) -> ir.Node:
        name = node.name
        expected_choice = _choice_of(expected) if expected else None
        if expected_choice and name in expected_choice.choices:
            return ir.Const(name, expected_choice, source=node)
        if name in self.facts:
            self.used_facts.add(name)
            index, type_ = self.facts[name]
            return ir.FactRef(name, index, type_, source=node)
        if name in self.define_names:
            self.used_defines.add(name)
            type_ = self.define_types(name)
            return ir.DefineRef(name, type_ or ERROR, source=node)
        owners = self._choices.get(name, [])
        if expected_choice is None and len({o.choices for o in owners}) == 1:
            return ir.Const(name, owners[0], source=node)
        if expected_choice is not None:
            self._error(
                "PR207",
                f"`{name}` is not a choice of `{expected_choice.owner}`",
                node.span,
                label="unknown choice",
                help=did_you_mean(name, expected_choice.choices)
                or "the choices are " + ", ".join(f"`{c}`" for c in expected_choice.choices),
            )
            return ir.Const(name, ERROR, source=node)
        if owners:
            self._error(
                "PR201",
                f"`{name}` is a choice of several facts; compare it with one of them",
                node.span,
                help=f"write `{owners[0].owner} = {name}`",
            )
            return ir.Const(name, ERROR, source=node)
        if name in self.value_sets:
            return self._value_set_as_value(node)
        known = [*self.facts, *self.define_names, *self._choices]
        if self._value_types:
            known.append("value")
        self._error(
            "PR201",
            f"unknown name `{name}`",
            node.span,
            label="not a fact, define or choice this protocol declares",
            help=_NOW_HELP
            if name.lower() in _NOW_WORDS
            else did_you_mean(name, known) or f"declare it first: `fact {name}: boolean`",
        )
        return ir.Const(name, ERROR, source=node)

    # ------------------------------------------------------------------ calls

    def _call(self, node: ast.Call) -> ir.Node:
        function = node.function
        if function not in FUNCTIONS:
            self._error(
                "PR206",
                f"unknown function `{function}`",
                node.name_span,
                help=did_you_mean(function, sorted(FUNCTIONS))
                or "the functions are " + ", ".join(f"`{f}`" for f in sorted(FUNCTIONS)),
            )
            return ir.Const(None, ERROR, source=node)
        if len(node.args) != 1:
            self._error(
                "PR309",
                f"`{function}` takes one argument, got {len(node.args)}",
                node.span,
                help=f"write `{function}(serum_creatinine over last 48 hours)`"
                if function != "time_since"
                else "write `time_since(date_fact)`",
            )
            return ir.Const(None, ERROR, source=node)
        (arg_node,) = node.args
        if function == "time_since":
            return self._time_since(node, arg_node)
        if function in TIME_FUNCTIONS:
            return self._time_call(node)
        window = self._window_argument(arg_node, f"`{function}`")
        if not isinstance(window.type, WindowT):
            return ir.Aggregate(function, window, _aggregate_fallback(function), source=node)
        element = window.type.element
        if function == "count":
            return ir.Aggregate(function, window, INTEGER, source=node)
        if function == "exists":
            return ir.Aggregate(function, window, BOOL, source=node)
        if function in _ORDERED_AGGREGATES and not isinstance(element, NumT | QtyT | ErrorT):
            self._error(
                "PR301",
                f"`{function}` needs numbers or quantities, but this series holds {element}",
                arg_node.span,
                help="use `latest`, `earliest`, `count`, `exists` or `any(...)` on this series",
            )
            return ir.Aggregate(function, window, ERROR, source=node)
        result: Type = element
        if function == "mean" and isinstance(element, NumT):
            result = NUMBER
        return ir.Aggregate(function, window, result, source=node)

    def _window_argument(self, arg_node: ast.Expr, what: str) -> ir.Node:
        arg = self.check(arg_node)
        if isinstance(arg.type, WindowT | ErrorT):
            return arg
        if isinstance(arg.type, SeriesT):
            name = arg_node.span.text
            self._error(
                "PR306",
                f"{what} reads a window, not a whole series",
                arg_node.span,
                label="a series of observations",
                help=f"choose a window, e.g. `{name} over last 48 hours`",
            )
        else:
            self._error(
                "PR301",
                f"{what} reads a window of a series, not {_a(arg.type)}",
                arg_node.span,
                help="write `max(serum_creatinine over last 48 hours)`",
            )
        return ir.Const(None, ERROR, source=arg_node)

    def _time_since(self, node: ast.Call, arg_node: ast.Expr) -> ir.Node:
        self.uses_time = True
        arg = self.check(arg_node)
        if not isinstance(arg.type, TimeT | ErrorT):
            self._error(
                "PR301",
                f"`time_since` needs a date or datetime, not {_a(arg.type)}",
                arg_node.span,
                help="pass a fact declared as `date` or `datetime`",
            )
            return ir.TimeSince(arg, ERROR, source=node)
        return ir.TimeSince(arg, DAYS, source=node)

    # ------------------------------------------------------------------ comparisons

    def _comparison(self, node: ast.Comparison) -> ir.Node:
        left = self.check(node.left)
        right = self.check(node.right, expected=left.type)
        calendar = self._calendar_comparison(node, left, right)
        if calendar is not None:
            return calendar
        left, right = self._unify(left, right, node.op, node.span)
        self._check_range(left, right, node)
        return ir.Compare(node.op, left, right, BOOL, source=node)

    def _check_range(self, left: ir.Node, right: ir.Node, node: ast.Comparison) -> None:
        """PR311: a threshold outside the fact's declared range decides nothing."""
        if not (isinstance(left, ir.FactRef) and isinstance(right, ir.Const)):
            return
        bounds = self.ranges.get(left.name)
        value = right.value
        if bounds is None or isinstance(value, bool) or not isinstance(value, int | float):
            return
        low, high = bounds
        if not low <= value <= high:
            unit = f" {left.type.unit}" if isinstance(left.type, QtyT) else ""
            self.diagnostics.append(
                warning(
                    "PR311",
                    f"`{node.right.span.text}` is outside the declared range of `{left.name}` "
                    f"({low:g} to {high:g}{unit}), so this comparison never changes",
                    node.span,
                    help="check the threshold and its unit",
                )
            )

    def _between(self, node: ast.Between) -> ir.Node:
        operand = self.check(node.operand)
        low = self.check(node.low, expected=operand.type)
        high = self.check(node.high, expected=operand.type)
        calendar = self._calendar_between(node, operand, low, high)
        if calendar is not None:
            return calendar
        _, low = self._unify(operand, low, ast.CompareOp.GE, node.span)
        operand, high = self._unify(operand, high, ast.CompareOp.LE, node.span)
        if isinstance(operand.type, TimeT) and isinstance(low.type, TimeT):
            operand, low, high = self._instant_between(operand, low, high)
        constant = isinstance(low, ir.Const) and isinstance(high, ir.Const)
        if constant and _ordered(low.value, high.value) and low.value > high.value:
            self._error(
                "PR308",
                "the lower bound of `between` is above the upper bound",
                node.span,
                help="write the smaller bound first: `X between LOW and HIGH`",
            )
        return ir.Between(operand, low, high, BOOL, source=node)

    def _in_set(self, node: ast.InSet) -> ir.Node:
        operand = self.check(node.operand)
        if self.is_code_test(operand, node.items):
            return self._in_codes(node, operand)
        items = tuple(self._set_item(operand, item) for item in node.items)
        if not items:
            self._error("PR312", "the set is empty", node.span, help="list at least one value")
        return ir.InSet(operand, items, node.negated, BOOL, source=node)

    def _set_item(self, operand: ir.Node, item_node: ast.Expr) -> ir.Node:
        item = self.check(item_node, expected=operand.type)
        _, item = self._unify(operand, item, ast.CompareOp.EQ, item_node.span)
        return item

    def _unify(
        self, left: ir.Node, right: ir.Node, op: ast.CompareOp, span: Span
    ) -> tuple[ir.Node, ir.Node]:
        """Make `right` comparable with `left` (converting units), or report why not."""
        lt, rt = left.type, right.type
        if isinstance(lt, ErrorT) or isinstance(rt, ErrorT):
            return left, right
        for side in (left, right):
            if isinstance(side.type, WindowT):
                self._window_misuse(side)
                return left, right
            if isinstance(side.type, SeriesT):
                self._series_misuse(side)
                return left, right
        if isinstance(lt, NumT) and isinstance(rt, NumT):
            return left, right
        if isinstance(lt, QtyT) and isinstance(rt, QtyT):
            return left, self._convert(right, lt, about=left)
        if isinstance(lt, TimeT) and isinstance(rt, TimeT):
            return self._instants(left, right)
        if (isinstance(lt, QtyT) and isinstance(rt, NumT)) or (
            isinstance(lt, NumT) and isinstance(rt, QtyT)
        ):
            qty = lt if isinstance(lt, QtyT) else rt
            number = right if isinstance(rt, NumT) else left
            self._error(
                "PR301",
                f"cannot compare {_a(qty)} with a plain number",
                number.source.span,
                label="a number without a unit",
                help=f"give the number its unit, e.g. `{number.source.span.text} '{qty.unit}'`"
                if not qty.is_duration
                else f"write a duration, e.g. `{number.source.span.text} {_time_word(qty.unit)}`",
            )
            return left, right
        if type(lt) is type(rt) and isinstance(lt, ChoiceT | BoolT | TextT | CodeT):
            if isinstance(lt, ChoiceT) and lt != rt:
                self._error(
                    "PR301",
                    f"cannot compare {_a(lt)} with {_a(rt)}",
                    span,
                    help="compare a choice fact with one of its own choices",
                )
            elif op not in _EQUALITY:
                self._error(
                    "PR301",
                    f"`{op.value}` does not apply to {_a(lt)}; only `=` and `!=` do",
                    span,
                    help="use `=`, `!=` or `in {…}`",
                )
            return left, right
        self._error(
            "PR301",
            f"cannot compare {_a(lt)} with {_a(rt)}",
            span,
            help=_mismatch_help(lt, rt),
        )
        return left, right

    def _convert(self, node: ir.Node, target: QtyT, about: ir.Node | None = None) -> ir.Node:
        """Express `node` (a quantity) in `target.unit`; folds constants at load time.

        `about` is what `node` is compared with, to name the substance of a failed conversion.
        """
        assert isinstance(node.type, QtyT)
        source_unit = node.type.unit
        molar_mass = target.molar_mass or node.type.molar_mass
        try:
            conversion = units.conversion(source_unit, target.unit, molar_mass)
        except units.UnitError:
            self._incompatible(source_unit, target.unit, molar_mass, node, about)
            return ir.Const(None, ERROR, source=node.source)
        new_type = QtyT(target.unit, molar_mass)
        if conversion.is_identity:
            return _retype(node, new_type)
        if isinstance(node, ir.Const):
            return self._finite(conversion(node.value), new_type, node.source, target.unit)
        return ir.Convert(node, conversion, new_type, source=node.source)

    def _incompatible(
        self,
        source: str,
        target: str,
        molar_mass: float | None,
        node: ir.Node,
        about: ir.Node | None = None,
    ) -> None:
        if molar_mass is None and units.needs_molar_mass(source, target):
            facts = _fact_names(about) + _fact_names(node)
            what, clause = substance(source, target, *facts)
            example = f"fact {facts[0] if facts else 'x'}: quantity '{target}' "
            self._error(
                "PR305",
                f"converting `{source}` to `{target}` needs the molar mass of {what}",
                node.source.span,
                help=f"declare it on the fact, e.g. `{example}{clause}`"
                if clause
                else f"declare it on the fact, e.g. `{example}molar_mass 113.12 'g/mol'` "
                "(creatinine)",
            )
            return
        self._error(
            "PR304",
            f"incompatible units: `{source}` cannot be compared with `{target}`",
            node.source.span,
            label=f"{units.dimension(source)}",
            notes=(f"`{target}` measures {units.dimension(target)}",),
            help=f"write a value in `{target}` or a unit of the same dimension",
        )

    def _contains(self, node: ast.Contains) -> ir.Node:
        collection = self.check(node.collection)
        ctype = collection.type
        if self.is_code_test(collection, node.items):
            return self._contains_codes(node, collection)
        if isinstance(ctype, ErrorT):
            return ir.Contains(collection, node.mode, (), BOOL, source=node)
        if not isinstance(ctype, SetT):
            self._error(
                "PR301",
                f"`contains` reads a set, not {_a(ctype)}",
                node.collection.span,
                help="declare the fact as `set of one of …`, or compare with `=` / `in {…}`",
            )
            return ir.Contains(collection, node.mode, (), BOOL, source=node)
        element = ir.Each(ctype.element, source=node.collection)
        items = tuple(self._set_item(element, item) for item in node.items)
        if not items:
            self._error("PR312", "the set is empty", node.span, help="list at least one value")
        return ir.Contains(collection, node.mode, items, BOOL, source=node)

    # ------------------------------------------------------------------ time

    def _duration_seconds(self, duration: ir.Node) -> ir.Node:
        dtype = duration.type
        if isinstance(dtype, ErrorT):
            return duration
        if not (isinstance(dtype, QtyT) and dtype.is_duration):
            self._error(
                "PR301",
                f"a window's length must be a duration, not {_a(dtype)}",
                duration.source.span,
                help="write e.g. `over last 48 hours` or `over last 30 days`",
            )
            return ir.Const(None, ERROR, source=duration.source)
        return self._convert(duration, QtyT(SECONDS))

    def _quantified(self, node: ast.Quantified) -> ir.Node:
        window = self._window_argument(node.window, f"`{node.quantifier.value}`")
        element = window.type.element if isinstance(window.type, WindowT) else ERROR
        if element is ERROR:
            condition: ir.Node = ir.Const(None, ERROR, source=node.condition)
        else:
            self._each_types.append(element)
            condition = self.check(node.condition)
            self._each_types.pop()
        return ir.Quantified(node.quantifier, window, condition, BOOL, source=node)

    def _count(self, node: ast.Count) -> ir.Node:
        conditions = tuple(self.check(c) for c in node.conditions)
        for c in conditions:
            self._require_bool(c, f"a condition of `{node.op.value} … of`")
        if node.n > len(conditions):
            self._error(
                "PR301",
                f"`{node.op.value} {node.n} of` lists only {len(conditions)} conditions",
                node.span,
                help=f"list at least {node.n} conditions or lower the number",
            )
        return ir.Count(node.op, node.n, conditions, BOOL, source=node)

    # ------------------------------------------------------------------ arithmetic

    def _arithmetic(self, node: ast.Arithmetic) -> ir.Node:
        left = self.check(node.left)
        right = self.check(node.right)
        lt, rt, op = left.type, right.type, node.op
        if isinstance(lt, ErrorT) or isinstance(rt, ErrorT):
            return ir.Arith(op, left, right, ERROR, source=node)
        if isinstance(lt, NumT) and isinstance(rt, NumT):
            integer = lt.integer and rt.integer and op is not ast.ArithOp.DIV
            return self._fold(ir.Arith(op, left, right, NumT(integer), source=node))
        if isinstance(lt, TimeT) or isinstance(rt, TimeT):
            return self._date_arithmetic(node, left, right)
        if op in (ast.ArithOp.ADD, ast.ArithOp.SUB):
            if isinstance(lt, QtyT) and isinstance(rt, QtyT):
                right = self._convert(right, lt)
                return self._fold(ir.Arith(op, left, right, lt, source=node))
            return self._bad_arith(node, lt, rt)
        if isinstance(lt, QtyT) and isinstance(rt, NumT):
            return self._fold(ir.Arith(op, left, right, lt, source=node))
        if isinstance(lt, NumT) and isinstance(rt, QtyT):
            if op is ast.ArithOp.MUL:
                return self._fold(ir.Arith(op, left, right, rt, source=node))
            unit = self._combined_unit(units.quotient_unit, "1", rt.unit, node)
            return ir.Arith(op, left, right, QtyT(unit) if unit else ERROR, source=node)
        if isinstance(lt, QtyT) and isinstance(rt, QtyT):
            return self._quantity_product(node, left, right, lt, rt)
        return self._bad_arith(node, lt, rt)

    def _quantity_product(
        self, node: ast.Arithmetic, left: ir.Node, right: ir.Node, lt: QtyT, rt: QtyT
    ) -> ir.Node:
        op = node.op
        if op is ast.ArithOp.DIV:
            molar_mass = lt.molar_mass or rt.molar_mass
            try:
                same = units.conversion(rt.unit, lt.unit, molar_mass)
            except units.UnitError:
                same = None
            if same is not None:  # a ratio of like quantities is a plain number
                right = self._convert(right, lt)
                return ir.Arith(op, left, right, NUMBER, source=node)
        try:
            # `L/(cm.cm)` is shown as `L/m2`, the value scaled to match.
            unit, scale = units.simplified_product(
                lt.unit, "." if op is ast.ArithOp.MUL else "/", rt.unit
            )
        except units.UnitError as exc:  # beyond the bounds every unit is held to
            self._error(
                "PR315",
                f"the unit of `{node.span.text}` is out of bounds: {exc.message}",
                node.span,
                help="compute with fewer units at once, e.g. in `define`s made plain numbers",
            )
            return ir.Arith(op, left, right, ERROR, source=node)
        if units.is_dimensionless(unit):
            scale = units.conversion(unit, "1").factor
            return ir.Arith(op, left, right, NUMBER, scale, source=node)
        return ir.Arith(op, left, right, QtyT(unit), scale, source=node)

    def _combined_unit(
        self, combine: Callable[[str, str], str], a: str, b: str, node: ast.Arithmetic
    ) -> str | None:
        try:
            return combine(a, b)
        except units.UnitError as exc:  # pragma: no cover - valid units combine
            self._error("PR303", f"cannot combine units: {exc}", node.span)
            return None

    def _date_arithmetic(self, node: ast.Arithmetic, left: ir.Node, right: ir.Node) -> ir.Node:
        lt, rt, op = left.type, right.type, node.op
        if isinstance(lt, TimeT) and isinstance(rt, TimeT) and op is ast.ArithOp.SUB:
            return self._date_difference(node, left, right)
        additive = op in (ast.ArithOp.ADD, ast.ArithOp.SUB)
        if isinstance(lt, TimeT) and isinstance(rt, QtyT) and rt.is_duration and additive:
            return self._time_shift(node, left, right, 1 if op is ast.ArithOp.ADD else -1)
        if (
            isinstance(rt, TimeT)
            and isinstance(lt, QtyT)
            and lt.is_duration
            and op is ast.ArithOp.ADD
        ):
            return self._time_shift(node, right, left, 1)
        return self._bad_arith(node, lt, rt)

    def _bad_arith(self, node: ast.Arithmetic, lt: Type, rt: Type) -> ir.Node:
        help_ = None
        if {type(lt), type(rt)} == {QtyT, NumT}:
            help_ = "give the number a unit, e.g. `1 'mg/dL'`"
        self._error(
            "PR301",
            f"cannot apply `{node.op.value}` to {_a(lt)} and {_a(rt)}",
            node.span,
            help=help_,
        )
        return ir.Const(None, ERROR, source=node)

    def _fold(self, node: ir.Arith) -> ir.Node:
        """Fold arithmetic on two constants, e.g. `2 * 24 hours`."""
        left, right = node.left, node.right
        if not (isinstance(left, ir.Const) and isinstance(right, ir.Const)):
            return node
        if isinstance(left.type, ErrorT) or isinstance(right.type, ErrorT):
            return ir.Arith(node.op, left, right, ERROR, source=node.source)
        a, b = left.value, right.value
        match node.op:
            case ast.ArithOp.ADD:
                value = a + b
            case ast.ArithOp.SUB:
                value = a - b
            case ast.ArithOp.MUL:
                value = a * b
            case ast.ArithOp.DIV:
                if b == 0:
                    self._error("PR301", "division by zero", node.source.span)
                    return ir.Const(None, ERROR, source=node.source)
                value = a / b
        if isinstance(value, float):
            return self._finite(units.clean(value), node.type, node.source)
        return ir.Const(value, node.type, source=node.source)

    def _finite(
        self, value: float, type_: Type, source: ast.Expr, converted_to: str | None = None
    ) -> ir.Node:
        """A constant computed at load time, unless it overflowed to infinity (PR314)."""
        if math.isfinite(value):
            return ir.Const(value, type_, source=source)
        how = f"when converted to `{converted_to}`" if converted_to else "when computed"
        self._error(
            "PR314",
            f"`{source.span.text}` overflows {how}: it is too large a number",
            source.span,
            help="check the numbers and their units",
        )
        return ir.Const(None, ERROR, source=source)

    # ------------------------------------------------------------------ helpers

    def _require_bool(self, node: ir.Node, what: str) -> None:
        t = node.type
        if isinstance(t, BoolT | ErrorT):
            return
        if isinstance(t, WindowT):
            self._window_misuse(node)
            return
        if isinstance(t, SeriesT):
            self._series_misuse(node)
            return
        self._error(
            "PR302",
            f"{what} must be a condition (true or false), but this is {_a(t)}",
            node.source.span,
            label=f"{_a(t)}",
            help="compare it, e.g. `… < 40 '%'`, or test it with `is known`",
        )

    def _window_misuse(self, node: ir.Node) -> None:
        self._error(
            "PR307",
            "a window must be read by an aggregate or a quantifier",
            node.source.span,
            help=f"write e.g. `max({node.source.span.text})` or `any({node.source.span.text}) > …`",
        )

    def _series_misuse(self, node: ir.Node) -> None:
        text = node.source.span.text
        self._error(
            "PR306",
            f"series `{text}` can only be read through a window",
            node.source.span,
            label="a series of timestamped observations",
            help=f"write e.g. `latest({text} over last 48 hours)` or "
            f"`max({text} over last 24 hours)`",
        )

    def _valid_unit(self, unit: str, span: Span) -> bool:
        try:
            units.check_unit(unit)
            return True
        except units.UnitError as exc:
            self.diagnostics.append(unit_error(unit, exc, span))
            return False

    def _error(self, code: str, message: str, span: Span | None, **kw: object) -> None:
        self.diagnostics.append(error(code, message, span, **kw))


def _fact_names(node: ir.Node | None) -> list[str]:
    """The facts read by `node` and below it, left to right."""
    if node is None:
        return []
    if isinstance(node, ir.FactRef):
        return [node.name]
    names: list[str] = []
    for field_ in node.__attrs_attrs__:  # type: ignore[union-attr]
        value = getattr(node, field_.name)
        for child in value if isinstance(value, tuple) else (value,):
            if type(child).__module__ == ir.__name__:
                names += _fact_names(child)
    return names


def _time_word(unit: str) -> str:
    words = {u: w for w, u in ast.TIME_WORDS.items() if w.endswith("s")}
    return words.get(unit, "days")


def _a(t: object) -> str:
    """`a number`, `an integer`: a type named with its article."""
    text = str(t)
    return f"an {text}" if text[:1] in "aeiou" else f"a {text}"


def _choice_of(t: Type | None) -> ChoiceT | None:
    while isinstance(t, SeriesT | SetT | WindowT):
        t = t.element
    return t if isinstance(t, ChoiceT) else None


def _retype(node: ir.Node, new_type: QtyT) -> ir.Node:
    import attrs

    if hasattr(node, "type") and node.type == new_type:
        return node
    return attrs.evolve(node, type=new_type)  # type: ignore[arg-type]


def _ordered(a: object, b: object) -> bool:
    return isinstance(a, int | float) and isinstance(b, int | float)


def _aggregate_fallback(function: str) -> Type:
    return {"count": INTEGER, "exists": BOOL}.get(function, ERROR)


def _mismatch_help(lt: Type, rt: Type) -> str | None:
    if isinstance(lt, BoolT) or isinstance(rt, BoolT):
        return "a boolean fact is a condition by itself: write `pregnant`, or `not pregnant`"
    if isinstance(lt, TimeT) or isinstance(rt, TimeT):
        return "compare dates with dates, or use `time_since(date) > 3 months`"
    if isinstance(lt, ChoiceT) or isinstance(rt, ChoiceT):
        return "compare a choice fact with one of its choices, e.g. `aki_cause = septic`"
    return None
