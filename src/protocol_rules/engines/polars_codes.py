"""Back end, continued: the terminology nodes of the IR as polars expressions
(docs/language/codes.md).

`CodeHandlers` is a mixin of the polars engine's compiler (`engines.polars._Compiler`), its
methods named in `CODE_HANDLERS`: `InCodes` and `ContainsCodes` with the semantics of their
docstrings in `check.ir`, agreeing with the interpreter (`evaluate_codes`), and code literals
(a `Const` of type `code` is its canonical text; other constants go to the compiler's own
`_const`). A code is a String; a value set is tested with one ``is_in`` over its exact codes
(the members, and the descendants a terminology listed) and one ``str.starts_with`` per member
with `*` of a ``prefix`` system. A set of codes is a list column (the compiler's `SetStep`),
tested element-wise with ``list.eval``.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from .. import ast
from ..check import ir
from ..check.types import CodeT
from ..codes import CodeMatcher

_NULL_BOOL = pl.lit(None, dtype=pl.Boolean)


class CodeHandlers:
    """The terminology part of the polars compiler (see the module docstring)."""

    def expr(self, node: ir.Node, obs: bool = False) -> pl.Expr:  # pragma: no cover - compiler's
        raise NotImplementedError

    def _code_const(self, node: ir.Const, obs: bool) -> pl.Expr:
        if isinstance(node.type, CodeT):
            return pl.lit(node.value, dtype=pl.String)
        return self._const(node, obs)  # type: ignore[attr-defined]

    def _in_codes(self, node: ir.InCodes, obs: bool) -> pl.Expr:
        x = self.expr(node.operand, obs)
        hit = matches(x, node.codes.matcher())
        return pl.when(x.is_null()).then(_NULL_BOOL).otherwise(~hit if node.negated else hit)

    def _contains_codes(self, node: ir.ContainsCodes, obs: bool) -> pl.Expr:
        fact = self._collection_fact(node.collection, node)  # type: ignore[attr-defined]
        codes = pl.col(self._code_list(fact))
        if node.mode is ast.ContainsMode.ALL:
            tests = [
                codes.list.eval(matches(pl.element(), m)).list.any()
                for m in node.codes.member_matchers()
            ]
            result = pl.all_horizontal(tests)
        else:
            result = codes.list.eval(matches(pl.element(), node.codes.matcher())).list.any()
        return pl.when(pl.col(fact).is_null()).then(_NULL_BOOL).otherwise(result)

    def _code_list(self, fact: str) -> str:
        """The list column holding the codes of set fact `fact` (one `SetStep` per fact)."""
        from .polars import SetStep

        columns: dict[str, str] = self.set_columns  # type: ignore[attr-defined]
        column = columns.get(fact)
        if column is None:
            column = columns[fact] = self._name("set")  # type: ignore[attr-defined]
            self.steps.append(SetStep(column, fact))  # type: ignore[attr-defined]
        return column


def matches(x: pl.Expr, matcher: CodeMatcher) -> pl.Expr:
    """Whether code `x` matches a member of `matcher` (`CodeMatcher.match` is not None)."""
    exact = pl.Series(sorted(matcher.exact), dtype=pl.String)
    hit: Any = x.is_in(exact.implode())
    for prefix, _ in matcher.prefixes:
        hit = hit | x.str.starts_with(prefix)
    return hit


#: IR node -> method of `CodeHandlers`, merged into the compiler's table (after its own entry
#: for `Const`, which `_code_const` extends to codes).
CODE_HANDLERS: dict[type, str] = {
    ir.Const: "_code_const",
    ir.InCodes: "_in_codes",
    ir.ContainsCodes: "_contains_codes",
}
