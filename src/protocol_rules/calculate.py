"""Stage 5 of the pipeline, continued: closures for the calculation nodes of the IR.

`CalcCompiler` is a mixin of the evaluator's compiler (`evaluate._Compiler`): it turns `If`,
`FirstKnown`, `Unknown`, `Power`, `Math`, `Param` and `FunctionCall` nodes into closures
``f(F, V)`` that record their value in ``V`` like every other node. The arithmetic itself is
`numeric` (shared with the checker's constant folding); a domain error is `UNKNOWN`, and the
trace says why (see `trace`). Semantics: docs/language/calculation.md and the docstrings of
the nodes in `check.ir`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import numeric, units
from .check import ir
from .facts import UNKNOWN

U = UNKNOWN
Fn = Callable[[list[Any], list[Any]], Any]
_clean = units.clean


class CalcCompiler:
    """The calculation half of the evaluator's compiler (see the module docstring)."""

    _param_slots: list[tuple[int, ...]]
    children: list[tuple[int, ...]]

    def compile(self, node: ir.Node) -> tuple[int, Fn]:  # pragma: no cover - the compiler's
        raise NotImplementedError

    def _build_calc(self, node: ir.Node, i: int, fns: list[Fn]) -> Fn | None:
        """The closure of a calculation node, or None for any other node."""
        match node:
            case ir.If():
                return _if(i, fns)
            case ir.FirstKnown():
                return _first_known(i, fns)
            case ir.Unknown():
                return _unknown(i)
            case ir.Power():
                return _power(i, fns)
            case ir.Math(function=function):
                return _math(i, fns, function)
            case ir.Param(index=index):
                return _param(i, self._param_slots[-1][index])
            case ir.FunctionCall():
                return self._function_call(node, i)
        return None

    def _function_call(self, node: ir.FunctionCall, i: int) -> Fn:
        """Arguments in the caller's scope, then the body with each `Param` bound to them."""
        compiled = [self.compile(arg) for arg in node.args]
        slots = tuple(k for k, _ in compiled)
        self._param_slots.append(slots)
        try:
            body_index, body = self.compile(node.body)
        finally:
            self._param_slots.pop()
        self.children[i] = (*slots, body_index)
        arg_fns = [fn for _, fn in compiled]

        def call(F, V):
            for fn in arg_fns:
                fn(F, V)
            V[i] = r = body(F, V)
            return r

        return call


def _param(i: int, slot: int) -> Fn:
    def param(F, V):
        V[i] = x = V[slot]
        return x

    return param


def _if(i: int, fns: list[Fn]) -> Fn:
    condition, then, otherwise = fns

    def if_(F, V):
        c = condition(F, V)
        if c is U:
            r = U
        elif c:
            r = then(F, V)
        else:
            r = otherwise(F, V)
        V[i] = r
        return r

    return if_


def _first_known(i: int, fns: list[Fn]) -> Fn:
    def first_known(F, V):
        r = U
        for fn in fns:
            r = fn(F, V)
            if r is not U:
                break
        V[i] = r
        return r

    return first_known


def _unknown(i: int) -> Fn:
    def unknown(F, V):
        V[i] = U
        return U

    return unknown


def _power(i: int, fns: list[Fn]) -> Fn:
    base, exponent = fns
    power = numeric.power

    def power_(F, V):
        x, y = base(F, V), exponent(F, V)
        if x is U or y is U:
            r: Any = U
        else:
            r = power(x, y)
            r = U if r is None else (_clean(r) if type(r) is float else r)
        V[i] = r
        return r

    return power_


#: Functions whose value is one of their arguments (or an exact decimal): never rounded.
_EXACT = frozenset({"abs", "min", "max", "round"})


def _math(i: int, fns: list[Fn], function: str) -> Fn:
    f = numeric.FUNCTIONS[function]
    clean = (lambda x: x) if function in _EXACT else _clean
    if len(fns) == 1:
        (a,) = fns

        def math1(F, V):
            x = a(F, V)
            if x is U:
                r: Any = U
            else:
                r = f(x)
                r = U if r is None else (clean(r) if type(r) is float else r)
            V[i] = r
            return r

        return math1

    def math_n(F, V):
        xs = [fn(F, V) for fn in fns]
        if U in xs:
            r: Any = U
        else:
            r = f(*xs)
            r = U if r is None else (clean(r) if type(r) is float else r)
        V[i] = r
        return r

    return math_n


def domain_why(node: ir.Node, args: list[Any]) -> str | None:
    """Why a power or a math function of known arguments has no value (for the trace)."""
    if any(a is U or a is None for a in args):
        return None
    if isinstance(node, ir.Power):
        return numeric.why("^", args)
    if isinstance(node, ir.Math):
        return numeric.why(node.function, args)
    return None
