"""Stage 5, terminology: closures for `ir.InCodes` and `ir.ContainsCodes` (docs/language/codes.md).

Used by `evaluate`'s compiler. A code value is its canonical text; matching is the value set's
`codes.CodeMatcher`, built once per value set when the protocol is compiled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import ast
from .check import ir
from .facts import UNKNOWN as U

Fn = Callable[[list[Any], list[Any]], Any]


def build(node: ir.InCodes | ir.ContainsCodes, i: int, fns: list[Fn]) -> Fn:
    """The closure of a terminology node at slot `i`, its operand's closure in `fns`."""
    (operand,) = fns
    if isinstance(node, ir.InCodes):
        return _in_codes(i, operand, node)
    return _contains_codes(i, operand, node)


def _in_codes(i: int, operand: Fn, node: ir.InCodes) -> Fn:
    match = node.codes.matcher().match
    negated = node.negated

    def in_codes(F, V):
        x = operand(F, V)
        V[i] = r = U if x is U else (match(x) is not None) is not negated
        return r

    return in_codes


def _contains_codes(i: int, operand: Fn, node: ir.ContainsCodes) -> Fn:
    if node.mode is ast.ContainsMode.ALL:
        matchers = [m.match for m in node.codes.member_matchers()]

        def contains_all(F, V):
            s = operand(F, V)
            V[i] = r = U if s is U else all(any(m(c) for c in s) for m in matchers)
            return r

        return contains_all
    match = node.codes.matcher().match

    def contains_any(F, V):
        s = operand(F, V)
        V[i] = r = U if s is U else any(match(c) is not None for c in s)
        return r

    return contains_any
