"""Checker pass over names inside functions and over calls: of the built-in calculation
functions, and of functions written in the language (docs/language/functions.md).

`CallChecks` is a mixin of `ExprChecker`, beside `calc.CalcChecks`: a name inside a function's
body is one of its parameters (a fact is refused, PR236); a call of a function is checked
against its signature — count (PR309), types and units (PR333, PR305) — and each argument is
converted to its parameter's declared unit, so the body sees values in the units it declares.
"""

from __future__ import annotations

from typing import Any

import attrs

from .. import ast, units
from ..suggestions import did_you_mean
from . import ir
from .calc import MATH_FUNCTIONS, SCALAR_FUNCTIONS, _a
from .types import ERROR, BoolT, ChoiceT, ErrorT, NumT, QtyT, TimeT, Type


class CallChecks:
    """Names inside functions and calls of functions (see the module docstring)."""

    def _scoped_name(self, node: ast.Name, expected: Type | None) -> ir.Node:
        """A name inside a function's body sees its parameters; elsewhere facts and defines."""
        name = node.name
        if self.params is not None:
            if name in self.params:
                index, type_ = self.params[name]
                return ir.Param(name, index, type_, source=node)
            reads_facts = name in self.define_names and self.define_reads_facts.get(name)  # type: ignore[attr-defined]
            if name in self.facts or reads_facts:  # type: ignore[attr-defined]
                what = "a fact" if name in self.facts else "a define that reads facts"  # type: ignore[attr-defined]
                self._error(  # type: ignore[attr-defined]
                    "PR236",
                    f"`{name}` is {what}, but a function sees only its parameters",
                    node.span,
                    label="not a parameter",
                    help=f"add a parameter to `{self.function_name}` and pass `{name}` "
                    "where you call it",
                )
                return ir.Const(None, ERROR, source=node)
        known = name in self.facts or name in self.define_names  # type: ignore[attr-defined]
        if not known and name in self.functions and name not in self._choices:  # type: ignore[attr-defined]
            self._error(  # type: ignore[attr-defined]
                "PR237",
                f"`{name}` is a function: call it with its arguments",
                node.span,
                help=f"write `{_signature(name, self.functions[name])}`",
            )
            return ir.Const(None, ERROR, source=node)
        if self.lenient and not known and name not in self._choices:  # type: ignore[attr-defined]
            return ir.Const(None, ERROR, source=node)  # a failed `use` explains it already
        result = self._name(node, expected)  # type: ignore[attr-defined]
        if isinstance(result, ir.DefineRef) and name in self.define_keys:
            return attrs.evolve(result, name=self.define_keys[name])
        return result

    def _any_call(self, node: ast.Call, expected: Type | None) -> ir.Node:
        from .expressions import FUNCTIONS

        function = node.function
        if function in self.functions:
            return self._user_call(node)
        if function == "first_known":
            return self._first_known(node, expected)
        if function in MATH_FUNCTIONS or (function in ("min", "max") and len(node.args) > 1):
            return self._math(node)
        if function in FUNCTIONS:
            return self._call(node)  # type: ignore[attr-defined]
        if function in self.define_names or function in self.facts:  # type: ignore[attr-defined]
            kind = "a fact" if function in self.facts else "a define"  # type: ignore[attr-defined]
            self._error(  # type: ignore[attr-defined]
                "PR237",
                f"`{function}` is {kind}, not a function",
                node.span,
                help=f"write `{function}` without arguments, or declare a function with "
                f"parameters: `define {function}(x: number) = …`",
            )
            return ir.Const(None, ERROR, source=node)
        if self.lenient:  # a failed `use` may have given it: check its arguments only
            for arg in node.args:
                self.open_check(arg)
            return ir.Const(None, ERROR, source=node)
        known = sorted({*FUNCTIONS, *SCALAR_FUNCTIONS, *self.functions})
        self._error(  # type: ignore[attr-defined]
            "PR206",
            f"unknown function `{function}`",
            node.name_span,
            help=did_you_mean(function, known)
            or "the functions are " + ", ".join(f"`{f}`" for f in known),
        )
        return ir.Const(None, ERROR, source=node)

    def _user_call(self, node: ast.Call) -> ir.Node:
        function = node.function
        info = self.functions[function]
        self.used_functions.add(function)
        if info is None:  # the function itself has an error, reported at its define
            for arg in node.args:
                self.open_check(arg)
            return ir.Const(None, ERROR, source=node)
        if len(node.args) != len(info.params):
            count = len(info.params)
            self._error(  # type: ignore[attr-defined]
                "PR309",
                f"`{function}` takes {count} argument{'s' if count != 1 else ''}, "
                f"got {len(node.args)}",
                node.span,
                help=f"write `{_signature(function, info)}`",
            )
            return ir.Const(None, ERROR, source=node)
        args = tuple(
            self._argument(arg, name, type_, function)
            for arg, (name, type_) in zip(node.args, info.params, strict=True)
        )
        if any(isinstance(a.type, ErrorT) for a in args):
            return ir.FunctionCall(info.key, args, info.body, ERROR, source=node)
        return ir.FunctionCall(info.key, args, info.body, info.type, source=node)

    def _argument(self, node: ast.Expr, name: str, wanted: Type, function: str) -> ir.Node:
        """Check an argument against its parameter's declared type, converting its unit."""
        arg = self.check(node, expected=wanted)
        got = arg.type
        if isinstance(got, ErrorT) or isinstance(wanted, ErrorT):
            return arg
        if isinstance(wanted, QtyT) and isinstance(got, QtyT):
            molar_mass = got.molar_mass
            if units.needs_molar_mass(got.unit, wanted.unit) and molar_mass is None:
                self._error(  # type: ignore[attr-defined]
                    "PR305",
                    f"argument `{name}` of `{function}` is in `{wanted.unit}`: converting "
                    f"`{got.unit}` to it needs the molar mass of the substance",
                    node.span,
                    label=f"in `{got.unit}`",
                    help="declare it on the fact, e.g. `fact x: quantity 'umol/L' molar_mass "
                    "113.12 'g/mol'`",
                )
                return ir.Const(None, ERROR, source=node)
            try:
                units.conversion(got.unit, wanted.unit, molar_mass)
            except units.UnitError:
                self._bad_argument(node, name, wanted, got, function)
                return ir.Const(None, ERROR, source=node)
            return self._convert(arg, QtyT(wanted.unit, molar_mass))  # type: ignore[attr-defined]
        if isinstance(wanted, NumT) and isinstance(got, NumT):
            if wanted.integer and not got.integer:
                self._bad_argument(node, name, wanted, got, function)
                return ir.Const(None, ERROR, source=node)
            return arg
        if (isinstance(wanted, TimeT) and isinstance(got, TimeT)) or wanted == got:
            return arg
        self._bad_argument(node, name, wanted, got, function)
        return ir.Const(None, ERROR, source=node)

    def _bad_argument(
        self, node: ast.Expr, name: str, wanted: Type, got: Type, function: str
    ) -> None:
        text = node.span.text
        if isinstance(wanted, QtyT):
            want = f"a quantity in `{wanted.unit}`"
            if isinstance(got, QtyT):
                got_text = f"in `{got.unit}`"
                help_ = (
                    f"pass a quantity of the dimension of `{wanted.unit}` "
                    f"({units.dimension(wanted.unit)}): it is converted"
                )
            else:
                got_text = _a(got)
                help_ = (
                    f"give it a unit: `{text} '{wanted.unit}'`" if isinstance(got, NumT) else None
                )
        else:
            want, got_text, help_ = _a(wanted), _a(got), f"pass {_a(wanted)}"
            if isinstance(wanted, BoolT) and isinstance(got, ChoiceT):
                help_ = f"pass a condition, e.g. `{text} = {got.choices[0]}`"
        self._error(  # type: ignore[attr-defined]
            "PR333",
            f"argument `{name}` of `{function}` must be {want}, but `{text}` is {got_text}",
            node.span,
            label=got_text,
            help=help_,
        )


def _signature(name: str, info: Any) -> str:
    if info is None:
        return f"{name}(…)"
    return f"{name}({', '.join(p for p, _ in info.params)})"
