"""Back end, continued: the calculation nodes of the IR as polars expressions.

`CalcHandlers` is a mixin of the polars engine's compiler (`engines.polars._Compiler`): one
method per node — `If`, `FirstKnown`, `Unknown`, `Power`, `Math`, `Param`, `FunctionCall` —
with the semantics of their docstrings in `check.ir`, agreeing with the interpreter
(`calculate`): unknown is null, a domain error (ln of 0, overflow, a negative number to a
fractional power) is null, never NaN or inf; results of powers and of `ln`, `log10`, `exp`,
`sqrt` are rounded to 12 significant digits exactly as `units.clean` rounds them, and `round`
rounds half away from zero on the decimal digits (`numeric.round_half_away`).

A function call is inlined: its arguments are compiled in the caller's scope, then its body
with each `Param` standing for an argument. A body is shared by every call of the function, so
the compiler's cache of expressions is keyed by the calls being compiled (`call_context`).
"""

from __future__ import annotations

import polars as pl

from .. import numeric
from ..check import ir
from ..sources.population import clean, dtype
from . import series_read

_LIMIT = numeric.LIMIT


class CalcHandlers:
    """The calculation half of the polars compiler (see the module docstring)."""

    def expr(self, node: ir.Node, obs: bool = False) -> pl.Expr:  # pragma: no cover - compiler's
        raise NotImplementedError

    def _init_calc(self) -> None:
        self.call_context: tuple[int, ...] = ()  # id() of the calls whose body is compiled
        self._arguments: list[list[pl.Expr]] = []

    def _if(self, node: ir.If, obs: bool) -> pl.Expr:
        condition = self.expr(node.condition, obs)
        then, otherwise = self.expr(node.then, obs), self.expr(node.otherwise, obs)
        return (
            pl.when(condition.is_null())
            .then(_null(node))
            .when(condition)
            .then(then)
            .otherwise(otherwise)
        )

    def _first_known(self, node: ir.FirstKnown, obs: bool) -> pl.Expr:
        return pl.coalesce([self.expr(o, obs) for o in node.operands])

    def _unknown(self, node: ir.Unknown, obs: bool) -> pl.Expr:
        return _null(node)

    def _power(self, node: ir.Power, obs: bool) -> pl.Expr:
        x, y = self.expr(node.base, obs), self.expr(node.exponent, obs)
        return _cleaned(x.cast(pl.Float64).pow(y.cast(pl.Float64)))

    def _math(self, node: ir.Math, obs: bool) -> pl.Expr:
        args = [self.expr(a, obs).cast(pl.Float64) for a in node.args]
        x = args[0]
        match node.function:
            case "ln":
                return _cleaned(pl.when(x > 0).then(x.log()))
            case "log10":
                return _cleaned(pl.when(x > 0).then(x.log10()))
            case "exp":
                return _cleaned(x.exp())
            case "sqrt":
                return _cleaned(pl.when(x >= 0).then(x.sqrt()))
            case "abs":
                return x.abs()
            case "round":
                digits = int(node.args[1].value) if isinstance(node.args[1], ir.Const) else 0
                return x.map_batches(
                    lambda s: _round(s, digits), return_dtype=pl.Float64, is_elementwise=True
                )
            case "min" | "max":
                pick = pl.min_horizontal if node.function == "min" else pl.max_horizontal
                some_unknown = pl.any_horizontal([a.is_null() for a in args])
                return pl.when(some_unknown).then(_null(node)).otherwise(pick(args))
        raise AssertionError(node.function)  # pragma: no cover

    def _param(self, node: ir.Param, obs: bool) -> pl.Expr:
        return self._arguments[-1][node.index]

    def _function_call(self, node: ir.FunctionCall, obs: bool) -> pl.Expr:
        arguments = [self.expr(a, obs) for a in node.args]
        self._arguments.append(arguments)
        outer = self.call_context
        self.call_context = (*outer, id(node))
        try:
            return self.expr(node.body, obs)
        finally:
            self.call_context = outer
            self._arguments.pop()


#: The node types `CalcHandlers` compiles, and the method of each.
CALC_HANDLERS: dict[type, str] = {
    ir.If: "_if",
    ir.FirstKnown: "_first_known",
    ir.Unknown: "_unknown",
    ir.Power: "_power",
    ir.Math: "_math",
    ir.Param: "_param",
    ir.FunctionCall: "_function_call",
}


def _null(node: ir.Node) -> pl.Expr:
    return pl.lit(None, dtype=dtype(node.type))


def _cleaned(x: pl.Expr) -> pl.Expr:
    """Null for NaN, infinities and magnitudes beyond 1e300; else rounded as `units.clean`."""
    valid = x.is_finite() & (x.abs() <= _LIMIT)
    kept = pl.when(valid).then(x)
    return kept.map_batches(clean, return_dtype=pl.Float64, is_elementwise=True)


def _round(values: pl.Series, digits: int) -> pl.Series:
    out = [None if v is None else numeric.round_half_away(v, digits) for v in values.to_list()]
    return pl.Series(values.name, out, dtype=pl.Float64)


def undecided_sources(
    node: ir.If, condition: pl.Expr, defines: dict[str, ir.Node]
) -> dict[str, pl.Expr]:
    """Series an `if` read when it chose a branch that is the literal `unknown`."""
    chosen = pl.lit(False)
    if isinstance(node.then, ir.Unknown):
        chosen = chosen | condition.fill_null(False)
    if isinstance(node.otherwise, ir.Unknown):
        chosen = chosen | (~condition).fill_null(False)
    return {name: chosen for name in series_read(node.condition, defines)}


__all__ = ["CALC_HANDLERS", "CalcHandlers", "undecided_sources"]
