"""Checker pass over the calculation constructs: `if`, `unknown`, `first_known`, `^` and the
math functions (docs/language/calculation.md).

`CalcChecks` is a mixin of `ExprChecker`: the expression checker dispatches the new syntax
here, and these methods use its helpers (`check`, `_convert`, `_error`, …). Types and units are
settled at load: every branch of an `if` and every operand of `first_known` is converted to one
unit here, so the evaluator only multiplies floats. Names and calls of functions are in
`calls`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from .. import ast, numeric, units
from ..diagnostics import warning
from . import ir
from .model import FunctionInfo
from .types import (
    BOOL,
    ERROR,
    INTEGER,
    NUMBER,
    UNKNOWN_TYPE,
    ChoiceT,
    ErrorT,
    NumT,
    QtyT,
    SeriesT,
    TimeT,
    Type,
    UnknownT,
    WindowT,
)

if TYPE_CHECKING:
    from ..source import Span

#: Built-in functions of scalars (`min` and `max` with two or more arguments).
MATH_FUNCTIONS = ("ln", "log10", "exp", "sqrt", "abs", "round")
SCALAR_FUNCTIONS = (*MATH_FUNCTIONS, "min", "max", "first_known")
_ONE = QtyT("1")


def _a(t: object) -> str:
    text = str(t)
    return f"an {text}" if text[:1] in "aeiou" else f"a {text}"


def _open(t: Type) -> Type | None:
    """A type usable as the expected type of a sibling (None for the `unknown` type)."""
    return None if isinstance(t, UnknownT) else t


class CalcChecks:
    """The calculation half of `ExprChecker` (see the module docstring); names and calls of
    functions are `calls.CallChecks`."""

    # Set by `ExprChecker.__init__` through `_init_calc`; listed here for readers and tools.
    functions: dict[str, FunctionInfo | None]
    params: dict[str, tuple[int, Type]] | None
    function_name: str | None
    define_keys: dict[str, str]
    define_reads_facts: dict[str, bool]
    used_functions: set[str]
    lenient: bool
    imported: dict[str, str]

    def _init_calc(self) -> None:
        self.functions = {}  # name as called -> checked function (None: in error)
        self.params = None  # inside a function's body: parameter -> (index, type)
        self.function_name = None
        self.define_keys = {}  # a define's name as written -> its key (`kidney.x`)
        self.define_reads_facts = {}
        self.used_functions = set()
        self.lenient = False  # a `use` failed: names may be missing because of it
        self.imported: dict[str, str] = {}  # a name a library gives -> the library's label

    # ------------------------------------------------------------------ entry points

    def check(self, node: ast.Expr, expected: Type | None = None) -> ir.Node:
        """Check an expression; an `unknown` whose type nothing gives is an error (PR332)."""
        result = self._check(node, expected)  # type: ignore[attr-defined]
        if isinstance(result.type, UnknownT):
            self._error(  # type: ignore[attr-defined]
                "PR332",
                "cannot tell what type of value `unknown` stands for here",
                node.span,
                label="`unknown` of what?",
                help="use `unknown` where its type is known: a branch of `if` beside a value, "
                "an argument of `first_known` or of a function, or a comparison",
            )
            return _settle(result, ERROR)
        return result

    def open_check(self, node: ast.Expr, expected: Type | None = None) -> ir.Node:
        """Check an expression that may stay of the `unknown` type (a branch, an operand)."""
        return self._check(node, expected)  # type: ignore[attr-defined]

    def _calculation(self, node: ast.Expr, expected: Type | None) -> ir.Node:
        match node:
            case ast.If():
                return self._if(node, expected)
            case ast.UnknownLit():
                return ir.Unknown(UNKNOWN_TYPE if expected is None else expected, source=node)
            case ast.Power():
                return self._power(node)
        raise AssertionError(node)  # pragma: no cover

    # ------------------------------------------------------------------ if and first_known

    def _if(self, node: ast.If, expected: Type | None) -> ir.Node:
        condition = self.check(node.condition, BOOL)
        self._require_bool(condition, "the condition of `if`")  # type: ignore[attr-defined]
        then = self.open_check(node.then, expected)
        otherwise = self.open_check(node.otherwise, expected or _open(then.type))
        (then, otherwise), type_ = self._one_type(
            (then, otherwise), "the two branches of `if`", node.span
        )
        return ir.If(condition, then, otherwise, type_, source=node)

    def _first_known(self, node: ast.Call, expected: Type | None) -> ir.Node:
        if not node.args:
            self._error(  # type: ignore[attr-defined]
                "PR309",
                "`first_known` needs at least one argument",
                node.span,
                help="write `first_known(urea, bun * 2.14)`",
            )
            return ir.Unknown(ERROR, source=node)
        operands = []
        for arg in node.args:
            operand = self.open_check(arg, expected)
            expected = expected or _open(operand.type)
            operands.append(operand)
        checked, type_ = self._one_type(operands, "the arguments of `first_known`", node.span)
        return ir.FirstKnown(tuple(checked), type_, source=node)

    def _one_type(
        self, nodes: Sequence[ir.Node], what: str, span: Span, code: str = "PR331"
    ) -> tuple[tuple[ir.Node, ...], Type]:
        """Give `nodes` one type (converting quantities to the first one's unit), or report."""
        if any(isinstance(n.type, ErrorT) for n in nodes):
            return tuple(_settle(n, ERROR) for n in nodes), ERROR
        known = [n for n in nodes if not isinstance(n.type, UnknownT)]
        for n in known:
            if isinstance(n.type, WindowT):
                self._window_misuse(n)  # type: ignore[attr-defined]
                return tuple(nodes), ERROR
            if isinstance(n.type, SeriesT):
                self._series_misuse(n)  # type: ignore[attr-defined]
                return tuple(nodes), ERROR
        if not known:
            return tuple(nodes), UNKNOWN_TYPE
        target: Type = known[0].type
        for n in known[1:]:
            joined = self._join(target, n.type)
            if joined is None:
                self._mismatch(code, what, known[0], n, span)
                return tuple(nodes), ERROR
            target = joined
        return tuple(self._to_type(n, target) for n in nodes), target

    def _join(self, a: Type, b: Type) -> Type | None:
        """The type two values of types `a` and `b` share, or None."""
        if isinstance(a, NumT) and isinstance(b, NumT):
            return NumT(a.integer and b.integer)
        if isinstance(a, QtyT) and isinstance(b, QtyT):
            try:  # each value converts with its own substance's molar mass
                units.conversion(b.unit, a.unit, b.molar_mass or a.molar_mass)
            except units.UnitError:
                return None
            return QtyT(a.unit, a.molar_mass or b.molar_mass)
        if isinstance(a, TimeT) and isinstance(b, TimeT):
            return TimeT(a.has_time or b.has_time)
        if isinstance(a, ChoiceT) and isinstance(b, ChoiceT):
            return a if a.choices == b.choices else None
        return a if a == b else None

    def _mismatch(self, code: str, what: str, first: ir.Node, other: ir.Node, span: Span) -> None:
        a, b = first.type, other.type
        if isinstance(a, QtyT) and isinstance(b, QtyT) and units.needs_molar_mass(b.unit, a.unit):
            self._error(  # type: ignore[attr-defined]
                "PR305",
                f"converting `{b.unit}` to `{a.unit}` needs the molar mass of the substance",
                other.source.span,
                help="declare it on the fact, e.g. `fact x: quantity 'mg/dL' molar_mass "
                "113.12 'g/mol'`",
            )
            return
        detail = f"{_a(a)} and {_a(b)}"
        if isinstance(a, QtyT) and isinstance(b, QtyT):
            detail = f"quantities in `{a.unit}` and in `{b.unit}`, of different dimensions"
        self._error(  # type: ignore[attr-defined]
            code,
            f"{what} must have one type, but they are {detail}",
            span,
            label=f"{_a(b)}",
            notes=(f"`{first.source.span.text}` is {_a(a)}",),
            help="make them alike: the same kind of value, quantities of one dimension "
            "(converted for you), or `unknown`",
        )

    def _to_type(self, node: ir.Node, target: Type) -> ir.Node:
        if isinstance(node.type, UnknownT):
            return _settle(node, target)
        if isinstance(target, QtyT) and isinstance(node.type, QtyT):
            own = QtyT(target.unit, node.type.molar_mass or target.molar_mass)
            return self._convert(node, own)  # type: ignore[attr-defined]
        return node

    # ------------------------------------------------------------------ powers

    def _power(self, node: ast.Power) -> ir.Node:
        base = self.check(node.base)
        exponent = self.check(node.exponent)
        bt, et = base.type, exponent.type
        if isinstance(bt, ErrorT) or isinstance(et, ErrorT):
            return ir.Power(base, exponent, ERROR, source=node)
        if not isinstance(et, NumT):
            unit = f" '{et.unit}'" if isinstance(et, QtyT) else ""
            self._error(  # type: ignore[attr-defined]
                "PR330",
                f"the exponent of `^` must be a plain number, not {_a(et)}",
                node.exponent.span,
                label=_a(et),
                help=f"divide it by its unit to make it a number: "
                f"`({node.exponent.span.text} / 1{unit})`"
                if unit
                else "write a number, e.g. `x ^ 2`",
            )
            return ir.Power(base, exponent, ERROR, source=node)
        if isinstance(bt, QtyT) and units.is_dimensionless(bt.unit):
            base, bt = _as_number(self._convert(base, _ONE)), NUMBER  # type: ignore[attr-defined]
        if isinstance(bt, NumT):
            whole = isinstance(exponent, ir.Const) and et.integer and exponent.value >= 0
            return self._fold_calc(
                ir.Power(base, exponent, NumT(bt.integer and whole), source=node)
            )
        if isinstance(bt, QtyT):
            return self._quantity_power(node, base, exponent, bt)
        self._error(  # type: ignore[attr-defined]
            "PR330",
            f"`^` applies to numbers and quantities, not to {_a(bt)}",
            node.base.span,
            help="raise a number or a quantity: `height ^ 2`",
        )
        return ir.Power(base, exponent, ERROR, source=node)

    def _quantity_power(
        self, node: ast.Power, base: ir.Node, exponent: ir.Node, bt: QtyT
    ) -> ir.Node:
        if not (isinstance(exponent, ir.Const) and exponent.type == INTEGER):
            text = node.base.span.text
            self._error(  # type: ignore[attr-defined]
                "PR330",
                f"a quantity in `{bt.unit}` can only be raised to a whole-number constant, "
                f"not to `{node.exponent.span.text}`",
                node.span,
                label="the unit of this power would not be a unit",
                help=f"make the quantity a plain number first: "
                f"`({text} / 1 '{bt.unit}') ^ {node.exponent.span.text}`",
            )
            return ir.Power(base, exponent, ERROR, source=node)
        n = int(exponent.value)
        if n == 0:
            return ir.Power(base, exponent, NUMBER, source=node)
        try:
            unit = units.power_unit(bt.unit, n)
        except units.UnitError as exc:  # beyond the bounds every unit is held to
            self._error(  # type: ignore[attr-defined]
                "PR315",
                f"the unit of `{node.span.text}` is out of bounds: {exc.message}",
                node.span,
                help="raise to a small power, or make the quantity a plain number first",
            )
            return ir.Power(base, exponent, ERROR, source=node)
        return self._fold_calc(ir.Power(base, exponent, QtyT(unit), source=node))

    # ------------------------------------------------------------------ math functions

    def _math(self, node: ast.Call) -> ir.Node:
        function = node.function
        if function in ("min", "max"):
            return self._extremum(node)
        counts = {"round": (1, 2)}.get(function, (1, 1))
        if not counts[0] <= len(node.args) <= counts[1]:
            example = "round(x, 1)" if function == "round" else f"{function}(x)"
            self._error(  # type: ignore[attr-defined]
                "PR309",
                f"`{function}` takes {'one or two arguments' if function == 'round' else 'one argument'}, got {len(node.args)}",  # noqa: E501
                node.span,
                help=f"write `{example}`",
            )
            return ir.Math(function, (), ERROR, source=node)
        x = self.check(node.args[0])
        if isinstance(x.type, ErrorT):
            return ir.Math(function, (x,), ERROR, source=node)
        if function in ("ln", "log10", "exp"):
            return self._plain_math(node, x)
        if function == "sqrt":
            return self._sqrt(node, x)
        if not isinstance(x.type, NumT | QtyT):
            return self._bad_math(node, x, "a number or a quantity")
        if function == "abs":
            return self._fold_calc(ir.Math(function, (x,), x.type, source=node))
        digits: ir.Node = ir.Const(0, INTEGER, source=node)
        if len(node.args) == 2:
            digits = self.check(node.args[1])
            if not (isinstance(digits, ir.Const) and digits.type == INTEGER):
                if not isinstance(digits.type, ErrorT):
                    self._error(  # type: ignore[attr-defined]
                        "PR334",
                        "the number of decimal places of `round` must be a whole-number "
                        f"constant, not `{node.args[1].span.text}`",
                        node.args[1].span,
                        help="write e.g. `round(egfr, 0)` or `round(dose, 1)`",
                    )
                return ir.Math(function, (x, digits), ERROR, source=node)
        return self._fold_calc(ir.Math(function, (x, digits), x.type, source=node))

    def _plain_math(self, node: ast.Call, x: ir.Node) -> ir.Node:
        function = node.function
        if isinstance(x.type, QtyT) and units.is_dimensionless(x.type.unit):
            x = _as_number(self._convert(x, _ONE))  # type: ignore[attr-defined]
        if not isinstance(x.type, NumT):
            return self._bad_math(node, x, "a plain number")
        return self._fold_calc(ir.Math(function, (x,), NUMBER, source=node))

    def _sqrt(self, node: ast.Call, x: ir.Node) -> ir.Node:
        if isinstance(x.type, QtyT) and units.is_dimensionless(x.type.unit):
            x = _as_number(self._convert(x, _ONE))  # type: ignore[attr-defined]
        if isinstance(x.type, NumT):
            return self._fold_calc(ir.Math("sqrt", (x,), NUMBER, source=node))
        if not isinstance(x.type, QtyT):
            return self._bad_math(node, x, "a number or a quantity")
        root = units.root_unit(x.type.unit)
        if root is None:
            text = node.args[0].span.text
            self._error(  # type: ignore[attr-defined]
                "PR334",
                f"the square root of a quantity in `{x.type.unit}` has no unit",
                node.args[0].span,
                label=f"in `{x.type.unit}`",
                help="`sqrt` of a quantity needs every unit to an even power (`m2` -> `m`); "
                f"else make it a plain number first: `sqrt({text} / 1 '{x.type.unit}')`",
            )
            return ir.Math("sqrt", (x,), ERROR, source=node)
        return self._fold_calc(ir.Math("sqrt", (x,), QtyT(root), source=node))

    def _extremum(self, node: ast.Call) -> ir.Node:
        function = node.function
        args = []
        expected: Type | None = None
        for arg in node.args:
            checked = self.open_check(arg, expected)
            expected = expected or _open(checked.type)
            args.append(checked)
        converted, type_ = self._one_type(
            args, f"the arguments of `{function}`", node.span, code="PR334"
        )
        if isinstance(type_, UnknownT):
            return self.check(node.args[0])  # reports PR332
        if not isinstance(type_, NumT | QtyT | TimeT | ErrorT):
            self._error(  # type: ignore[attr-defined]
                "PR334",
                f"`{function}` compares numbers, quantities or dates, not {_a(type_)}s",
                node.span,
                help=f"write e.g. `{function}(egfr, 15 'mL/min/{{1.73_m2}}')`",
            )
            type_ = ERROR
        return self._fold_calc(ir.Math(function, converted, type_, source=node))

    def _bad_math(self, node: ast.Call, x: ir.Node, wanted: str) -> ir.Node:
        function = node.function
        text = node.args[0].span.text
        help_ = None
        if isinstance(x.type, QtyT):
            help_ = (
                f"divide it by a unit to make it a number: `{function}({text} / 1 '{x.type.unit}')`"
            )
        self._error(  # type: ignore[attr-defined]
            "PR334",
            f"`{function}` needs {wanted}, but `{text}` is {_a(x.type)}",
            node.args[0].span,
            label=_a(x.type),
            help=help_,
        )
        return ir.Math(function, (x,), ERROR, source=node)

    def _fold_calc(self, node: ir.Power | ir.Math) -> ir.Node:
        """Compute a power or a math function of constants now; a domain error is PR337."""
        args = (node.base, node.exponent) if isinstance(node, ir.Power) else node.args
        if isinstance(node.type, ErrorT) or not all(isinstance(a, ir.Const) for a in args):
            return node
        values = [a.value for a in args]  # type: ignore[union-attr]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return node
        name = "^" if isinstance(node, ir.Power) else node.function
        value = numeric.power(*values) if name == "^" else numeric.apply(name, values)
        if value is None:
            self._error(  # type: ignore[attr-defined]
                "PR337",
                numeric.why(name, values),
                node.source.span,
                help="this constant expression has no value: check the numbers",
            )
            return ir.Const(None, ERROR, source=node.source)
        if isinstance(value, float) and name not in ("abs", "min", "max", "round"):
            value = units.clean(value)  # as at run time (calculate._math, _power)
        return ir.Const(value, node.type, source=node.source)

    def _compare_unknown(self, node: ast.Comparison) -> ir.Node:
        """`x = unknown` is always unknown: a warning (PR335), then an ordinary comparison."""
        left_unknown = isinstance(node.left, ast.UnknownLit)
        if not (left_unknown or isinstance(node.right, ast.UnknownLit)):
            return self._comparison(node)  # type: ignore[attr-defined]
        other = node.right if left_unknown else node.left
        self.diagnostics.append(  # type: ignore[attr-defined]
            warning(
                "PR335",
                f"a comparison with `unknown` is always unknown, whatever `{other.span.text}` is",
                node.span,
                help=f"to test for a missing value write `{other.span.text} is unknown`",
            )
        )
        if not left_unknown:
            return self._comparison(node)  # type: ignore[attr-defined]
        right = self.check(node.right)
        left = ir.Unknown(right.type, source=node.left)
        return ir.Compare(node.op, left, right, BOOL, source=node)


def _settle(node: ir.Node, type_: Type) -> ir.Node:
    """Give a node of the `unknown` type the type its context gives it."""
    match node:
        case ir.Unknown():
            return attrs.evolve(node, type=type_)
        case ir.If(then=then, otherwise=otherwise) if isinstance(node.type, UnknownT):
            return attrs.evolve(
                node, then=_settle(then, type_), otherwise=_settle(otherwise, type_), type=type_
            )
        case ir.FirstKnown(operands=operands) if isinstance(node.type, UnknownT):
            settled = tuple(_settle(o, type_) for o in operands)
            return attrs.evolve(node, operands=settled, type=type_)
    return node


def _as_number(node: ir.Node) -> ir.Node:
    """A dimensionless quantity converted to `'1'`, typed as the plain number it is."""
    if isinstance(node, ir.Const):
        return ir.Const(node.value, NUMBER, source=node.source)
    return attrs.evolve(node, type=NUMBER)  # type: ignore[arg-type]
